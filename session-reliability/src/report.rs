//! The figures of a run and their Markdown report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer (or the 404 of a read that finds no value, a definite answer too).
    Ok,
    /// Another status, or the connection failed.
    Failed,
    /// No answer within the hang limit.
    Hung,
}

/// One request of one client.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// When it was sent.
    pub start: Instant,
    /// When its answer (or its failure) arrived.
    pub end: Instant,
    /// How it ended.
    pub outcome: Outcome,
}

/// Counts over the requests of one or many clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed (not hung).
    pub failed: u64,
    /// Requests without an answer within the hang limit.
    pub hung: u64,
    /// Acknowledged writes that a later read did not show.
    pub lost: u64,
    /// Reads that showed another client's value (or one nobody wrote).
    pub leaks: u64,
    /// The first few leaks, for the report.
    pub leak_examples: Vec<String>,
}

impl Tally {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.hung += other.hung;
        self.lost += other.lost;
        self.leaks += other.leaks;
        for example in &other.leak_examples {
            if self.leak_examples.len() < 5 {
                self.leak_examples.push(example.clone());
            }
        }
    }
}

/// Latency percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latency {
    /// The percentiles of `samples` (nearest rank); zero for none.
    #[must_use]
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let rank = |p: usize| samples[(samples.len() * p).div_ceil(100).saturating_sub(1)];
        Self {
            p50: rank(50),
            p99: rank(99),
            max: samples[samples.len() - 1],
        }
    }
}

/// One fault injected into one backend under load.
#[derive(Debug, Clone)]
pub struct FaultFigures {
    /// The backend's name.
    pub backend: String,
    /// Whether the backend promises to keep every acknowledged write through the fault.
    pub durable: bool,
    /// The fault's name.
    pub fault: String,
    /// Concurrent clients.
    pub clients: usize,
    /// From the fault's start to the backend's return.
    pub outage: Duration,
    /// Every request of the run.
    pub tally: Tally,
    /// Requests that failed or hung, ending after the fault started.
    pub failed_during: u64,
    /// Requests that failed or hung before the fault (a healthy backend: should be 0).
    pub failed_before: u64,
    /// From the backend's return to the end of the first successful request after it.
    pub first_success: Option<Duration>,
    /// From the backend's return until every client had a successful request again.
    pub all_back: Option<Duration>,
    /// Panics during the run.
    pub panics: u64,
    /// Clients whose values could not be read back at the end (so nothing could be checked).
    pub unverified: u64,
    /// The command that reproduces this row.
    pub command: String,
}

/// Many clients, each checking its own values, on one store without faults.
#[derive(Debug, Clone)]
pub struct LoadFigures {
    /// The backend's name.
    pub backend: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Requests per client.
    pub requests_per_client: usize,
    /// Every request of the run.
    pub tally: Tally,
    /// Of the failed and hung requests, those that took the stores' time limit per operation
    /// ([`session_core::DEFAULT_TIMEOUT`]) or longer: requests that waited for a store busier
    /// than the clients' demand allows (in its connection pool or its server) and ran out of
    /// time, rather than being refused at once.
    pub failed_at_limit: u64,
    /// Latency of every request.
    pub latency: Latency,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Panics during the run.
    pub panics: u64,
    /// Clients whose values could not be read back at the end.
    pub unverified: u64,
    /// The command that reproduces this row.
    pub command: String,
}

/// Concurrent requests on one session, spread over two app servers.
#[derive(Debug, Clone, Default)]
pub struct OneSessionFigures {
    /// The backend's name.
    pub backend: String,
    /// Requests sent at once, in each of the two parts.
    pub concurrent: usize,
    /// Writes of different keys acknowledged.
    pub keys_acked: u64,
    /// Of those, keys a later read did not show with the written value.
    pub keys_lost: u64,
    /// Writes of different keys that failed.
    pub keys_failed: u64,
    /// `Session::update` increments of one counter acknowledged.
    pub counter_acked: u64,
    /// The counter read afterwards.
    pub counter_final: u64,
    /// Acknowledged increments the counter does not show.
    pub counter_lost: u64,
    /// How far the counter exceeds the increments attempted (never possible).
    pub counter_excess: u64,
    /// Increments that failed.
    pub counter_failed: u64,
    /// Latency of the concurrent requests.
    pub latency: Latency,
    /// Panics during the run.
    pub panics: u64,
    /// The command that reproduces this row.
    pub command: String,
}

/// Where and how a run was made.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// The command line.
    pub command: String,
    /// When it started (UTC).
    pub date: String,
    /// CPUs and their model.
    pub machine: String,
    /// `/proc/loadavg` at the start.
    pub load_before: String,
    /// `/proc/loadavg` at the end.
    pub load_after: String,
    /// `release` or `debug`.
    pub profile: &'static str,
    /// The run's parameters in words.
    pub plan: String,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Where and how.
    pub meta: Meta,
    /// One row per backend and fault.
    pub faults: Vec<FaultFigures>,
    /// One row per store.
    pub loads: Vec<LoadFigures>,
    /// One row per store.
    pub one_session: Vec<OneSessionFigures>,
}

/// `1.234 s`.
#[must_use]
pub fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// `12.3 ms`.
fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn maybe(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_owned(), seconds)
}

impl FaultFigures {
    /// One line for the progress output.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} failed during the fault, first success {} and every client {} after \
             the return; lost {}, hung {}, leaks {}, panics {}, unverified {}",
            self.tally.requests,
            self.failed_during,
            maybe(self.first_success),
            maybe(self.all_back),
            self.tally.lost,
            self.tally.hung,
            self.tally.leaks,
            self.panics,
            self.unverified,
        )
    }
}

impl LoadFigures {
    /// One line for the progress output.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} failed ({} at the time limit); p50 {}, p99 {}; lost {}, hung {}, \
             leaks {}, panics {}, unverified {}",
            self.tally.requests,
            self.tally.failed,
            self.failed_at_limit,
            millis(self.latency.p50),
            millis(self.latency.p99),
            self.tally.lost,
            self.tally.hung,
            self.tally.leaks,
            self.panics,
            self.unverified,
        )
    }
}

impl OneSessionFigures {
    /// One line for the progress output.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "different keys: {} acked, {} lost, {} failed; update: {} acked, counter {}, {} lost, \
             {} failed",
            self.keys_acked,
            self.keys_lost,
            self.keys_failed,
            self.counter_acked,
            self.counter_final,
            self.counter_lost,
            self.counter_failed,
        )
    }
}

impl Report {
    /// The report as Markdown: how it was made, then one table per scenario, then the leaks
    /// seen (if any) and what failed the run.
    #[must_use]
    pub fn markdown(&self, violations: &[String]) -> String {
        let m = &self.meta;
        let mut out = String::new();
        let _ = writeln!(out, "# session-reliability run\n");
        let _ = writeln!(out, "- command: `{}`", m.command);
        let _ = writeln!(out, "- date: {}", m.date);
        let _ = writeln!(out, "- machine: {}", m.machine);
        let _ = writeln!(
            out,
            "- load average (1, 5, 15 min): {} at the start, {} at the end",
            m.load_before, m.load_after
        );
        let _ = writeln!(out, "- build: {}", m.profile);
        let _ = writeln!(out, "- plan: {}", m.plan);
        if !self.faults.is_empty() {
            let _ = writeln!(
                out,
                "\n## Faults under load\n\n\
                 | backend | fault | clients | outage | requests | failed during fault | failed before | first success after return | every client back | lost acked writes | hung | leaks | panics | unverified | reproduce |\n\
                 |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
            );
            for f in &self.faults {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | `{}` |",
                    f.backend,
                    f.fault,
                    f.clients,
                    seconds(f.outage),
                    f.tally.requests,
                    f.failed_during,
                    f.failed_before,
                    maybe(f.first_success),
                    maybe(f.all_back),
                    f.tally.lost,
                    f.tally.hung,
                    f.tally.leaks,
                    f.panics,
                    f.unverified,
                    f.command,
                );
            }
        }
        if !self.loads.is_empty() {
            let _ = writeln!(
                out,
                "\n## Many clients\n\n\
                 | store | clients x requests | requests | failed | of which at the time limit | lost acked writes | leaks | hung | p50 | p99 | max | requests/s | panics | unverified | reproduce |\n\
                 |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
            );
            for l in &self.loads {
                let rate = l.tally.requests as f64 / l.elapsed.as_secs_f64().max(1e-9);
                let _ = writeln!(
                    out,
                    "| {} | {} x {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | `{}` |",
                    l.backend,
                    l.clients,
                    l.requests_per_client,
                    l.tally.requests,
                    l.tally.failed,
                    l.failed_at_limit,
                    l.tally.lost,
                    l.tally.leaks,
                    l.tally.hung,
                    millis(l.latency.p50),
                    millis(l.latency.p99),
                    millis(l.latency.max),
                    rate,
                    l.panics,
                    l.unverified,
                    l.command,
                );
            }
            if self.loads.iter().any(|l| l.tally.failed + l.tally.hung > 0) {
                let _ = writeln!(
                    out,
                    "\nFailed requests are reported here, not failed: where the clients ask more \
                     than a store serves, requests wait (in its connection pool or its server) \
                     and fail at the time limit per operation ({}). The checks still cover every \
                     acknowledged write.",
                    seconds(session_core::DEFAULT_TIMEOUT)
                );
            }
        }
        if !self.one_session.is_empty() {
            let _ = writeln!(
                out,
                "\n## Concurrent requests on one session (two app servers)\n\n\
                 | store | at once | different keys: acked / lost / failed | update of one key: acked / final / lost / failed | p50 | p99 | panics | reproduce |\n\
                 |---|--:|--:|--:|--:|--:|--:|---|"
            );
            for o in &self.one_session {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} / {} / {} | {} / {} / {} / {} | {} | {} | {} | `{}` |",
                    o.backend,
                    o.concurrent,
                    o.keys_acked,
                    o.keys_lost,
                    o.keys_failed,
                    o.counter_acked,
                    o.counter_final,
                    o.counter_lost,
                    o.counter_failed,
                    millis(o.latency.p50),
                    millis(o.latency.p99),
                    o.panics,
                    o.command,
                );
            }
        }
        let leaks: Vec<&String> = self
            .faults
            .iter()
            .map(|f| &f.tally)
            .chain(self.loads.iter().map(|l| &l.tally))
            .flat_map(|t| &t.leak_examples)
            .collect();
        if !leaks.is_empty() {
            let _ = writeln!(out, "\n## Leaks seen\n");
            for leak in leaks {
                let _ = writeln!(out, "- {leak}");
            }
        }
        let _ = writeln!(out, "\n## Result\n");
        if violations.is_empty() {
            let _ = writeln!(
                out,
                "Passed: every must-be-0 figure is 0 and every client was back within the goal."
            );
        } else {
            for v in violations {
                let _ = writeln!(out, "- FAILED: {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let latency = Latency::of((1..=100).rev().map(ms).collect());
        assert_eq!(latency.p50, ms(50));
        assert_eq!(latency.p99, ms(99));
        assert_eq!(latency.max, ms(100));
        assert_eq!(Latency::of(vec![ms(7)]).p99, ms(7));
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }

    #[test]
    fn tallies_add_up_and_keep_a_few_examples() {
        let one = Tally {
            requests: 3,
            failed: 1,
            hung: 1,
            lost: 2,
            leaks: 4,
            leak_examples: vec!["x".into(); 4],
        };
        let mut sum = Tally::default();
        sum.add(&one);
        sum.add(&one);
        assert_eq!(
            (sum.requests, sum.failed, sum.hung, sum.lost, sum.leaks),
            (6, 2, 2, 4, 8)
        );
        assert_eq!(sum.leak_examples.len(), 5);
    }

    #[test]
    fn the_report_names_every_row_and_what_failed() {
        let report = Report {
            faults: vec![FaultFigures {
                backend: "PostgreSQL".into(),
                durable: true,
                fault: "pause".into(),
                clients: 64,
                outage: Duration::from_secs(10),
                tally: Tally::default(),
                failed_during: 12,
                failed_before: 0,
                first_success: Some(Duration::from_millis(30)),
                all_back: None,
                panics: 0,
                unverified: 0,
                command: "cargo run -- faults".into(),
            }],
            ..Report::default()
        };
        let text = report.markdown(&["PostgreSQL / pause: something".into()]);
        assert!(text.contains("| `cargo run -- faults` |"), "{text}");
        assert!(
            text.contains("| PostgreSQL | pause | 64 | 10.000 s |"),
            "{text}"
        );
        assert!(text.contains("| 0.030 s | never |"), "{text}");
        assert!(
            text.contains("- FAILED: PostgreSQL / pause: something"),
            "{text}"
        );
        assert!(!text.contains("## Many clients"), "{text}");
    }

    #[test]
    fn a_load_row_shows_failures_at_the_time_limit_and_says_why() {
        let row = |failed, failed_at_limit| LoadFigures {
            backend: "MongoDB".into(),
            clients: 1000,
            requests_per_client: 100,
            tally: Tally {
                requests: 102_000,
                failed,
                ..Tally::default()
            },
            failed_at_limit,
            latency: Latency::default(),
            elapsed: Duration::from_secs(100),
            panics: 0,
            unverified: 0,
            command: "cargo run -- load".into(),
        };
        let failing = Report {
            loads: vec![row(900, 850)],
            ..Report::default()
        }
        .markdown(&[]);
        assert!(
            failing.contains("| MongoDB | 1000 x 100 | 102000 | 900 | 850 | 0 |"),
            "{failing}"
        );
        assert!(failing.contains("fail at the time limit"), "{failing}");
        let passing = Report {
            loads: vec![row(0, 0)],
            ..Report::default()
        }
        .markdown(&[]);
        assert!(!passing.contains("fail at the time limit"), "{passing}");
    }
}
