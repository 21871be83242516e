//! The markdown report: printed as it is produced, kept for `--out`.

use std::fmt::Write as _;

use crate::harness::{Comparison, Role, Workload, table};

/// One line of the summary: a measured ratio against its target.
struct Check {
    what: String,
    ratio: f64,
    target: f64,
}

/// The report so far.
#[derive(Default)]
pub(crate) struct Report {
    body: String,
    checks: Vec<Check>,
}

impl Report {
    /// Adds (and prints) free text.
    pub(crate) fn text(&mut self, text: &str) {
        println!("{text}");
        self.body.push_str(text);
        self.body.push('\n');
    }

    /// Adds one table per workload of `comparisons`, under `title`.
    pub(crate) fn comparisons(&mut self, title: &str, note: &str, comparisons: &[Comparison]) {
        let mut out = format!("### {title}\n\n");
        if !note.is_empty() {
            let _ = writeln!(out, "{note}\n");
        }
        let mut workloads: Vec<Workload> = Vec::new();
        for c in comparisons {
            if !workloads.contains(&c.workload) {
                workloads.push(c.workload);
            }
        }
        for w in workloads {
            let group: Vec<&Comparison> = comparisons.iter().filter(|c| c.workload == w).collect();
            let _ = writeln!(out, "**{}** ({}):\n", w.name(), w.describe());
            out.push_str(&table(&group));
            out.push('\n');
        }
        self.text(&out);
    }

    /// Records that `ratio` (ours / something) should be at least `target`.
    pub(crate) fn check(&mut self, what: String, ratio: Option<f64>, target: f64) {
        if let Some(ratio) = ratio {
            self.checks.push(Check {
                what,
                ratio,
                target,
            });
        }
    }

    /// Records the store targets of `comparisons` for `backend`.
    pub(crate) fn store_targets(&mut self, backend: &str, comparisons: &[Comparison]) {
        let memory = backend == "memory";
        for c in comparisons {
            let (floor_target, peer_target) = match (memory, c.workload) {
                (true, Workload::Ro) => (Some(0.5), Some(1.0)),
                (true, Workload::Rw) => (Some(0.9), Some(1.0)),
                (false, Workload::Ro | Workload::Rw) => (Some(0.7), Some(1.0)),
                _ => (None, None),
            };
            let at = format!("{backend} {} at {} tasks", c.workload.name(), c.tasks);
            if let Some(t) = floor_target {
                self.check(
                    format!("{at}: ours / floor"),
                    c.median_ratio(Role::Floor),
                    t,
                );
            }
            if let Some(t) = peer_target {
                for (i, m) in c.results.iter().enumerate() {
                    if m.role == Role::Peer {
                        let r = crate::harness::median(&c.ratios(i));
                        self.check(format!("{at}: ours / {}", m.label), Some(r), t);
                    }
                }
            }
        }
    }

    /// The summary of every target, and the whole report as markdown.
    pub(crate) fn finish(&mut self) -> String {
        if !self.checks.is_empty() {
            let mut out = String::from(
                "### Targets\n\n| measured | median ratio | target | |\n|---|---:|---:|---|\n",
            );
            let mut missed = 0;
            for c in &self.checks {
                let ok = c.ratio >= c.target;
                missed += usize::from(!ok);
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | >= {:.2} | {} |",
                    c.what,
                    c.ratio,
                    c.target,
                    if ok { "met" } else { "**missed**" }
                );
            }
            let _ = writeln!(
                out,
                "\n{} of {} targets met.\n",
                self.checks.len() - missed,
                self.checks.len()
            );
            self.text(&out);
        }
        self.body.clone()
    }
}
