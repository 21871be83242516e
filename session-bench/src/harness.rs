//! Interleaved rounds: every contender runs the same workload for the same time, in turn,
//! several times; results are compared round by round, so drift on a shared machine hits
//! every contender alike.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::task::JoinSet;

/// Any error, with its cause kept.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A result whose error is [`BoxError`].
pub(crate) type Res<T = ()> = Result<T, BoxError>;

/// `e` prefixed with `what`, its causes spelled out (a string error has no `source`).
pub(crate) fn context(what: impl std::fmt::Display, e: &BoxError) -> BoxError {
    let mut message = format!("{what}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message.into()
}

/// What one cycle does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workload {
    /// `load`, change one value, `save`.
    Rw,
    /// `load` only.
    Ro,
    /// `touch` only.
    Touch,
    /// One HTTP request to a handler that reads one session value.
    HttpRead,
    /// One HTTP request to a handler that writes one session value.
    HttpWrite,
}

impl Workload {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rw => "rw",
            Self::Ro => "ro",
            Self::Touch => "touch",
            Self::HttpRead => "read handler",
            Self::HttpWrite => "write handler",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Rw => "load, change one value, save",
            Self::Ro => "load only",
            Self::Touch => "touch only (move the expiry)",
            Self::HttpRead => "GET a handler that reads one session value",
            Self::HttpWrite => "GET a handler that writes one session value",
        }
    }
}

/// The part a contender plays in a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// This workspace's code: the numerator of every ratio.
    Ours,
    /// The raw driver moving the same bytes: the limit.
    Floor,
    /// Another library (tower-sessions), or the app without sessions.
    Peer,
    /// A variant shown for context, with no target (the floor without its expiry index).
    Reference,
}

/// One contender: something that can run a cycle of a workload on a prepared session.
#[async_trait]
pub(crate) trait Subject: Send + Sync {
    /// Name in the tables.
    fn label(&self) -> String;
    /// Its part in the comparison.
    fn role(&self) -> Role;
    /// How many prepared sessions there are (slots `0..sessions()`).
    fn sessions(&self) -> usize;
    /// Whether it can run `workload` at all.
    fn supports(&self, workload: Workload) -> bool {
        let _ = workload;
        true
    }
    /// One cycle, by task `task` on session `slot`; `n` differs on every call of a task.
    async fn cycle(&self, workload: Workload, task: usize, slot: usize, n: u64) -> Res;
}

/// How long and how often to run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) rounds: usize,
    pub(crate) round: Duration,
    pub(crate) warmup: Duration,
}

/// One contender's results over all rounds.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) label: String,
    pub(crate) role: Role,
    /// Cycles per second, one per round.
    pub(crate) throughput: Vec<f64>,
    /// Every cycle's latency in nanoseconds, all rounds pooled, sorted.
    pub(crate) latencies: Vec<u32>,
    /// Latency quantiles (p50, p99) reported per round by an external load generator, used
    /// when there are no individual latencies.
    pub(crate) reported: Vec<(Duration, Duration)>,
}

impl Measured {
    pub(crate) fn median_throughput(&self) -> f64 {
        median(&self.throughput)
    }

    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            // The median over rounds of what the load generator reported.
            let pick = |q: &(Duration, Duration)| if p < 0.9 { q.0 } else { q.1 };
            let mut v: Vec<Duration> = self.reported.iter().map(pick).collect();
            v.sort();
            return v.get(v.len() / 2).copied().unwrap_or_default();
        }
        let idx = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        Duration::from_nanos(u64::from(self.latencies[idx]))
    }
}

/// The results of one workload at one concurrency, for every contender.
#[derive(Debug)]
pub(crate) struct Comparison {
    pub(crate) workload: Workload,
    pub(crate) tasks: usize,
    pub(crate) results: Vec<Measured>,
}

impl Comparison {
    /// Ours / `other`, round by round (each round ran every contender back to back).
    pub(crate) fn ratios(&self, other: usize) -> Vec<f64> {
        let Some(ours) = self.results.iter().find(|m| m.role == Role::Ours) else {
            return Vec::new();
        };
        ours.throughput
            .iter()
            .zip(&self.results[other].throughput)
            .map(|(a, b)| a / b)
            .collect()
    }

    /// The median of [`Self::ratios`] against the first contender with `role`.
    pub(crate) fn median_ratio(&self, role: Role) -> Option<f64> {
        let i = self.results.iter().position(|m| m.role == role)?;
        Some(median(&self.ratios(i)))
    }

    /// The median ratio against the peer whose label contains `needle`.
    pub(crate) fn median_ratio_to(&self, needle: &str) -> Option<f64> {
        let i = self
            .results
            .iter()
            .position(|m| m.role != Role::Ours && m.label.contains(needle))?;
        Some(median(&self.ratios(i)))
    }
}

pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Runs every subject that supports `workload`, `timing.rounds` times in rotating order
/// (A B C, B C A, C A B, ...), after one warm-up run each.
pub(crate) async fn compare(
    subjects: &[Arc<dyn Subject>],
    workload: Workload,
    tasks: usize,
    timing: Timing,
) -> Res<Comparison> {
    let active: Vec<&Arc<dyn Subject>> = subjects.iter().filter(|s| s.supports(workload)).collect();
    for s in &active {
        run(Arc::clone(s), workload, tasks, timing.warmup).await?;
    }
    let mut results: Vec<Measured> = active
        .iter()
        .map(|s| Measured {
            label: s.label(),
            role: s.role(),
            throughput: vec![0.0; timing.rounds],
            latencies: Vec::new(),
            reported: Vec::new(),
        })
        .collect();
    for round in 0..timing.rounds {
        for k in 0..active.len() {
            let i = (round + k) % active.len();
            let r = run(Arc::clone(active[i]), workload, tasks, timing.round).await?;
            results[i].throughput[round] = r.cycles as f64 / r.elapsed.as_secs_f64();
            results[i].latencies.extend(r.latencies);
        }
    }
    for m in &mut results {
        m.latencies.sort_unstable();
    }
    Ok(Comparison {
        workload,
        tasks,
        results,
    })
}

/// One run's raw numbers.
pub(crate) struct Run {
    pub(crate) cycles: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<u32>,
}

/// `tasks` tasks cycle on their own share of the sessions (task `t` uses slots `t`, `t + tasks`,
/// ... in a pseudo-random order) until `duration` has passed; no two tasks touch one session, so
/// versioned saves never conflict.
pub(crate) async fn run(
    subject: Arc<dyn Subject>,
    workload: Workload,
    tasks: usize,
    duration: Duration,
) -> Res<Run> {
    let sessions = subject.sessions();
    if sessions < tasks {
        return Err(format!("{} sessions cannot feed {tasks} tasks", sessions).into());
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = JoinSet::new();
    for task in 0..tasks {
        let subject = Arc::clone(&subject);
        set.spawn(async move {
            let share = (sessions - task).div_ceil(tasks);
            let mut rng = XorShift::new(task as u64);
            let mut latencies = Vec::with_capacity(1 << 12);
            let mut n = 0u64;
            loop {
                let slot = task + (rng.next() % share as u64) as usize * tasks;
                let t0 = Instant::now();
                subject.cycle(workload, task, slot, n).await?;
                let t1 = Instant::now();
                latencies.push(u32::try_from((t1 - t0).as_nanos()).unwrap_or(u32::MAX));
                n += 1;
                if t1 >= deadline {
                    return Ok::<_, BoxError>((latencies, t1));
                }
            }
        });
    }
    let mut all = Vec::new();
    let mut end = start;
    while let Some(joined) = set.join_next().await {
        let (latencies, finished) = joined??;
        all.extend(latencies);
        end = end.max(finished);
    }
    Ok(Run {
        cycles: all.len() as u64,
        elapsed: end - start,
        latencies: all,
    })
}

/// A tiny deterministic generator: each task visits its sessions in the same order every run.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Formats cycles/s compactly: 812k, 1.23M.
pub(crate) fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Formats a latency in microseconds with sensible precision.
pub(crate) fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn ratio_list(ratios: &[f64]) -> String {
    ratios
        .iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The markdown table of a group of comparisons (one workload, several concurrencies).
pub(crate) fn table(comparisons: &[&Comparison]) -> String {
    let mut out = String::from(
        "| tasks | contender | cycles/s | p50 µs | p99 µs | ours/this, per round | median |\n\
         |---:|---|---:|---:|---:|---|---:|\n",
    );
    for c in comparisons {
        for (i, m) in c.results.iter().enumerate() {
            let (per_round, med) = if m.role == Role::Ours {
                (String::new(), String::new())
            } else {
                let r = c.ratios(i);
                (ratio_list(&r), format!("**{:.2}**", median(&r)))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                c.tasks,
                m.label,
                rate(m.median_throughput()),
                micros(m.percentile(0.50)),
                micros(m.percentile(0.99)),
                per_round,
                med,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(role: Role, throughput: Vec<f64>) -> Measured {
        Measured {
            label: format!("{role:?}"),
            role,
            throughput,
            latencies: Vec::new(),
            reported: Vec::new(),
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ratios_pair_rounds_not_medians() {
        let c = Comparison {
            workload: Workload::Rw,
            tasks: 1,
            results: vec![
                measured(Role::Ours, vec![10.0, 40.0, 30.0]),
                measured(Role::Floor, vec![20.0, 40.0, 10.0]),
            ],
        };
        assert_eq!(c.ratios(1), vec![0.5, 1.0, 3.0]);
        assert_eq!(c.median_ratio(Role::Floor), Some(1.0));
        assert_eq!(c.median_ratio(Role::Peer), None);
    }

    #[test]
    fn percentiles_come_from_pooled_latencies_or_reported_ones() {
        let mut m = measured(Role::Ours, vec![1.0]);
        m.latencies = (1..=100).collect();
        assert_eq!(m.percentile(0.5), Duration::from_nanos(51));
        assert_eq!(m.percentile(0.99), Duration::from_nanos(99));
        let mut r = measured(Role::Peer, vec![1.0]);
        r.reported = vec![
            (Duration::from_micros(5), Duration::from_micros(50)),
            (Duration::from_micros(7), Duration::from_micros(70)),
            (Duration::from_micros(6), Duration::from_micros(60)),
        ];
        assert_eq!(r.percentile(0.5), Duration::from_micros(6));
        assert_eq!(r.percentile(0.99), Duration::from_micros(60));
    }

    /// Counts its cycles per slot.
    struct Counter(Vec<std::sync::atomic::AtomicU64>);

    #[async_trait]
    impl Subject for Counter {
        fn label(&self) -> String {
            "counter".into()
        }
        fn role(&self) -> Role {
            Role::Ours
        }
        fn sessions(&self) -> usize {
            self.0.len()
        }
        async fn cycle(&self, _: Workload, task: usize, slot: usize, _: u64) -> Res {
            if slot % 4 != task {
                return Err(format!("task {task} got slot {slot}").into());
            }
            self.0[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::task::yield_now().await;
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tasks_keep_to_their_own_sessions_and_cover_them() {
        let counter = Arc::new(Counter((0..40).map(|_| 0.into()).collect()));
        let run = run(
            Arc::clone(&counter) as Arc<dyn Subject>,
            Workload::Rw,
            4,
            Duration::from_millis(50),
        )
        .await
        .expect("no task may touch another task's session");
        let total: u64 = counter
            .0
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        assert_eq!(run.cycles, total);
        assert_eq!(run.latencies.len() as u64, total);
        assert!(
            counter
                .0
                .iter()
                .all(|c| c.load(std::sync::atomic::Ordering::Relaxed) > 0),
            "every session is visited"
        );
    }
}
