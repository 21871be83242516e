//! The markdown report: printed as it is produced, kept for `--out`; and the targets it checks.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cpu::Load;
use crate::harness::{Comparison, Measured, Role, Workload, cpu_per_round, per_round};
use crate::numbers::{list, median, micros, rate, spread};

/// What a measured ratio should be.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

impl Bound {
    fn holds(self, v: f64) -> bool {
        match self {
            Self::AtLeast(t) => v >= t,
            Self::AtMost(t) => v <= t,
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AtLeast(t) => write!(f, "≥ {t:.2}"),
            Self::AtMost(t) => write!(f, "≤ {t:.2}"),
        }
    }
}

/// One line of the summary: a measured ratio against its target.
struct Check {
    what: String,
    bound: Bound,
    /// Per-round throughput ratios, or the one measured value.
    throughput: Vec<f64>,
    /// Per-round CPU-time ratios (empty for a single measurement).
    cpu: Vec<f64>,
    /// Whether a server's CPU time is inside the CPU ratios.
    with_server: bool,
    load: Option<Load>,
}

impl Check {
    fn verdict(&self) -> &'static str {
        let by_throughput = self.bound.holds(median(&self.throughput));
        if self.cpu.is_empty() {
            return if by_throughput { "met" } else { "**missed**" };
        }
        match (by_throughput, self.bound.holds(median(&self.cpu))) {
            (true, true) => "met",
            (false, false) => "**missed**",
            (true, false) => "met by throughput only",
            (false, true) => "met by CPU time only",
        }
    }
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

    /// Records that `a` / `b` (throughput, and `b`'s CPU time per cycle / `a`'s) should meet
    /// `bound`.
    pub(crate) fn check(
        &mut self,
        what: String,
        (a, b): (&Measured, &Measured),
        load: Load,
        bound: Bound,
    ) {
        self.checks.push(Check {
            what,
            bound,
            throughput: per_round(a, b),
            cpu: cpu_per_round(a, b),
            with_server: !a.server_cpu.is_empty() && !b.server_cpu.is_empty(),
            load: Some(load),
        });
    }

    /// Records that ours in `c` against the contender with `role` (and `needle` in its label)
    /// should meet `bound`; nothing when either is missing (left out with `--contenders`).
    pub(crate) fn check_against(
        &mut self,
        scope: &str,
        c: &Comparison,
        role: Role,
        needle: Option<&str>,
        bound: Bound,
    ) {
        let (Some(ours), Some(other)) = (c.find(Role::Ours, None), c.find(role, needle)) else {
            return;
        };
        let (workload, tasks) = (c.workload.name(), c.tasks);
        let what = format!(
            "{scope} {workload} at {tasks} tasks: ours / {}",
            other.label
        );
        self.check(what, (ours, other), c.load, bound);
    }

    /// Records a single measured value (no rounds) against `bound`.
    pub(crate) fn check_value(&mut self, what: String, value: f64, bound: Bound) {
        self.checks.push(Check {
            what,
            bound,
            throughput: vec![value],
            cpu: Vec::new(),
            with_server: false,
            load: None,
        });
    }

    /// The summary of every target, and the whole report as markdown.
    pub(crate) fn finish(&mut self) -> String {
        if !self.checks.is_empty() {
            let mut out = String::from(
                "### Targets\n\nRatios are ours / the other, so above 1 is better: throughput \
                 per round, and CPU time per cycle (the other's / ours, this process; \
                 \"+ server\" where a Redis server's CPU time is counted too). Each is the \
                 median over rounds [interquartile range]. Load: the 1-minute load average \
                 before → after the comparison (this process included), and the cores kept \
                 busy by everything else meanwhile. A target is met when both medians meet \
                 it; where only one does, noise or the server decides, and the line says \
                 which.\n\n\
                 | measured | target | throughput ratio | CPU-time ratio | load | verdict |\n\
                 |---|---|---|---|---|---|\n",
            );
            let mut met = 0;
            for c in &self.checks {
                met += usize::from(c.verdict() == "met");
                let cpu = if c.cpu.is_empty() {
                    String::new()
                } else if c.with_server {
                    format!("{} + server", spread(&c.cpu))
                } else {
                    spread(&c.cpu)
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {cpu} | {} | {} |",
                    c.what,
                    c.bound,
                    spread(&c.throughput),
                    c.load.map(|l| l.to_string()).unwrap_or_default(),
                    c.verdict(),
                );
            }
            let _ = writeln!(out, "\n{met} of {} targets met.\n", self.checks.len());
            self.text(&out);
        }
        self.body.clone()
    }
}

/// CPU µs per cycle, median over rounds: this process's, then the server's when measured.
fn cpu_cell(m: &Measured) -> String {
    let own = micros(median(&m.cpu));
    if m.server_cpu.is_empty() {
        own
    } else {
        format!("{own} + {}", micros(median(&m.server_cpu)))
    }
}

/// The markdown table of a group of comparisons (one workload, several concurrencies).
pub(crate) fn table(comparisons: &[&Comparison]) -> String {
    let mut out = String::from(
        "| tasks | contender | cycles/s | CPU µs/cycle | p50 µs | p99 µs | ours/this, per round \
         | median | CPU ratio | load |\n|---:|---|---:|---:|---:|---:|---|---:|---|---|\n",
    );
    for c in comparisons {
        let ours = c.find(Role::Ours, None);
        for (i, m) in c.results.iter().enumerate() {
            let (rounds, med, cpu) = match ours {
                Some(ours) if m.role != Role::Ours => {
                    let r = per_round(ours, m);
                    let med = format!("**{:.2}**", median(&r));
                    (list(&r), med, spread(&cpu_per_round(ours, m)))
                }
                _ => Default::default(),
            };
            let load = if i == 0 {
                c.load.to_string()
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {rounds} | {med} | {cpu} | {load} |",
                c.tasks,
                m.label,
                rate(m.median_throughput()),
                cpu_cell(m),
                micros(m.percentile(0.50)),
                micros(m.percentile(0.99)),
            );
        }
    }
    out
}

/// One comparison of a variants table, and the setting it ran with.
pub(crate) struct Setting<'a> {
    /// The table's first column: the workload, and for the mixed one its rhythm.
    pub(crate) name: String,
    pub(crate) comparison: &'a Comparison,
    /// The staleness bound of a mixed run, to state the rhythm it reached.
    pub(crate) bound: Option<Duration>,
}

/// The markdown table of variants of one store (behind a cache tier or a wrapper, in another
/// layout) against the store alone, ours. Unlike [`table`], ratios are this / ours, so above 1
/// means the variant is faster (CPU: costs less). A hit-ratio column appears when a contender
/// counted its loads, and the loads per session per bound that a mixed run reached when one
/// ran.
pub(crate) fn variant_table(settings: &[Setting<'_>]) -> String {
    let counted = settings
        .iter()
        .any(|s| s.comparison.results.iter().any(|m| m.counts.loads > 0));
    let rhythm = settings.iter().any(|s| s.bound.is_some());
    let mut head = String::from(
        "| workload | tasks | contender | cycles/s | CPU µs/cycle | p50 µs | p99 µs |",
    );
    let mut rule = String::from("|---|---:|---|---:|---:|---:|---:|");
    if counted {
        head.push_str(" hit ratio |");
        rule.push_str("---:|");
    }
    if rhythm {
        head.push_str(" loads per session per bound |");
        rule.push_str("---:|");
    }
    head.push_str(" this/ours, per round | median | CPU ratio | load |");
    rule.push_str("---|---:|---|---|");
    let mut out = format!("{head}\n{rule}\n");
    for s in settings {
        let c = s.comparison;
        let ours = c.find(Role::Ours, None);
        for (i, m) in c.results.iter().enumerate() {
            let mut extra = String::new();
            if counted {
                let hits = m.counts.hit_ratio().map(|h| format!("{h:.2}"));
                let _ = write!(extra, " {} |", hits.as_deref().unwrap_or("–"));
            }
            if rhythm {
                let reached = s
                    .bound
                    .zip(m.counts.mean_interval())
                    .map(|(bound, interval)| {
                        let per_bound = bound.as_secs_f64() / interval.as_secs_f64();
                        if m.counts.waits > 0 {
                            format!("{per_bound:.1} (sessions ran out)")
                        } else {
                            format!("{per_bound:.1}")
                        }
                    });
                let _ = write!(extra, " {} |", reached.as_deref().unwrap_or("–"));
            }
            let (rounds, med, cpu) = match ours {
                Some(ours) if m.role != Role::Ours => {
                    let r = per_round(m, ours);
                    let med = format!("**{:.2}**", median(&r));
                    (list(&r), med, spread(&cpu_per_round(m, ours)))
                }
                _ => Default::default(),
            };
            let (name, load) = if i == 0 {
                (s.name.as_str(), c.load.to_string())
            } else {
                ("", String::new())
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} |{extra} {rounds} | {med} | {cpu} | {load} |",
                c.tasks,
                m.label,
                rate(m.median_throughput()),
                cpu_cell(m),
                micros(m.percentile(0.50)),
                micros(m.percentile(0.99)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Snapshot;

    fn measured(role: Role, throughput: Vec<f64>, cpu: Vec<f64>) -> Measured {
        Measured {
            throughput,
            cpu,
            ..Measured::new(&format!("{role:?}"), role)
        }
    }

    #[test]
    fn a_target_is_met_when_both_medians_meet_it() {
        let load = Load::between(&Snapshot::take(), &Snapshot::take());
        let mut report = Report::default();
        let ours = measured(Role::Ours, vec![9.0, 9.0, 9.0], vec![1.0, 1.0, 1.0]);
        let fast_floor = measured(Role::Floor, vec![10.0, 10.0, 10.0], vec![0.5, 0.5, 0.5]);
        let cheap_floor = measured(Role::Floor, vec![20.0, 20.0, 20.0], vec![0.95, 0.95, 0.95]);
        report.check(
            "throughput only".into(),
            (&ours, &fast_floor),
            load,
            Bound::AtLeast(0.85),
        );
        report.check(
            "neither".into(),
            (&ours, &fast_floor),
            load,
            Bound::AtLeast(0.95),
        );
        report.check(
            "cpu only".into(),
            (&ours, &cheap_floor),
            load,
            Bound::AtLeast(0.9),
        );
        report.check_value("size".into(), 2.79, Bound::AtMost(1.5));
        let verdicts: Vec<&str> = report.checks.iter().map(Check::verdict).collect();
        assert_eq!(
            verdicts,
            [
                "met by throughput only",
                "**missed**",
                "met by CPU time only",
                "**missed**"
            ]
        );
        let text = report.finish();
        assert!(text.contains("0 of 4 targets met."), "{text}");
        assert!(
            text.contains("| size | ≤ 1.50 | 2.79 [2.79–2.79] |"),
            "{text}"
        );
    }

    #[test]
    fn variant_tables_divide_the_variant_by_ours_and_show_what_was_counted() {
        use crate::harness::{Comparison, Counts};
        let ours = measured(Role::Ours, vec![10.0, 20.0], vec![4.0, 4.0]);
        let mut cached = measured(Role::Cached, vec![40.0, 60.0], vec![1.0, 2.0]);
        cached.counts = Counts {
            loads: 100,
            backend_loads: 25,
            intervals: 4,
            interval_ns: 4 * 25_000_000,
            waits: 0,
        };
        let c = Comparison {
            workload: Workload::Mixed,
            tasks: 16,
            results: vec![ours, cached],
            load: Load::between(&Snapshot::take(), &Snapshot::take()),
        };
        let table = variant_table(&[Setting {
            name: "mixed, 4 per 100 ms".into(),
            comparison: &c,
            bound: Some(Duration::from_millis(100)),
        }]);
        let row = table.lines().nth(3).expect("a row per contender");
        // Hit ratio 1 - 25/100; a load every 25 ms is 4 per 100 ms; 40/10 and 60/20 per round.
        assert!(
            row.contains("| 0.75 | 4.0 | 4.00 3.00 | **3.50** | 3.00 [2.50–3.50] |"),
            "{table}"
        );
        assert!(
            table
                .lines()
                .nth(2)
                .is_some_and(|l| l.contains("| – | – |")),
            "{table}"
        );
    }
}
