//! Interleaved rounds: every contender runs the same workload for the same time, in turn,
//! several times; results are compared round by round, so drift on a shared machine hits
//! every contender alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::task::JoinSet;

use crate::cpu::{Load, Meter, ServerCpu, Snapshot};
use crate::numbers::median;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Workload {
    /// `load`, change one value, `save`.
    Rw,
    /// `load` only.
    Ro,
    /// `touch` only.
    Touch,
    /// `load` of a session the cache tier holds (for a store without one, `load`).
    Hit,
    /// `load` of a session the cache tier does not hold, which it then caches (for a store
    /// without one, `load`).
    Miss,
    /// Loads in a rhythm per session (so many per staleness bound), one in ten followed by a
    /// save: the cache tier against the store it fronts.
    Mixed,
    /// One HTTP request to a handler that reads one session value.
    #[value(skip)]
    HttpRead,
    /// One HTTP request to a handler that writes one session value.
    #[value(skip)]
    HttpWrite,
}

impl Workload {
    pub(crate) const STORE: [Self; 3] = [Self::Rw, Self::Ro, Self::Touch];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rw => "rw",
            Self::Ro => "ro",
            Self::Touch => "touch",
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Mixed => "mixed",
            Self::HttpRead => "read handler",
            Self::HttpWrite => "write handler",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Rw => "load, change one value, save",
            Self::Ro => "load only",
            Self::Touch => "touch only (move the expiry)",
            Self::Hit => "load of a session the cache holds",
            Self::Miss => "load of a session the cache does not hold, which it then caches",
            Self::Mixed => {
                "loads in a rhythm per session, so many per staleness bound; one in ten also saves"
            }
            Self::HttpRead => "GET a handler that reads one session value",
            Self::HttpWrite => "GET a handler that writes one session value",
        }
    }
}

/// The part a contender plays in a comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Role {
    /// This workspace's code: the numerator of every ratio.
    #[default]
    Ours,
    /// The raw driver moving the same bytes: the limit.
    Floor,
    /// Another library (tower-sessions), or the app without sessions.
    #[value(alias = "tower-sessions")]
    Peer,
    /// A variant shown for context, with no target (the floor without its expiry index).
    Reference,
    /// Our store behind the cache tier, `session_memory::CachedStore`, against it alone.
    Cached,
    /// Our store behind `session_hashed::HashedIds`, against it alone.
    Hashed,
    /// Our store in its Express-compatible layout, against its native one.
    Express,
}

/// What a contender does: a cycle of a workload on one of its prepared sessions.
#[async_trait]
pub(crate) trait Subject: Send + Sync {
    /// How many prepared sessions there are (slots `0..sessions()`).
    fn sessions(&self) -> usize;
    /// Whether it can run `workload` at all (by default: the store workloads).
    fn supports(&self, workload: Workload) -> bool {
        Workload::STORE.contains(&workload)
    }
    /// One cycle, by task `task` on session `slot`; `n` differs on every call of a task.
    async fn cycle(&self, workload: Workload, task: usize, slot: usize, n: u64) -> Res;
    /// How long to run, unmeasured, before each measured run, so that state which builds up
    /// with time (a cache's) is measured in its steady state.
    fn settle(&self) -> Duration {
        Duration::ZERO
    }
    /// What it has counted so far (loads, cache misses, ...); nothing by default.
    fn counts(&self) -> Counts {
        Counts::default()
    }
}

/// What a subject counts as it runs, for the report: since the subject was made, or (in
/// [`Run`] and [`Measured`]) during measured runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Loads through the subject's store.
    pub(crate) loads: u64,
    /// Of those, the ones the durable store answered (behind a cache: the misses).
    pub(crate) backend_loads: u64,
    /// Intervals between two loads of one session in a rhythm, and their sum in ns.
    pub(crate) intervals: u64,
    pub(crate) interval_ns: u64,
    /// Cycles that waited for a session to be due, every session being in the rhythm.
    pub(crate) waits: u64,
}

impl Counts {
    /// The counts since `earlier`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            loads: self.loads.saturating_sub(earlier.loads),
            backend_loads: self.backend_loads.saturating_sub(earlier.backend_loads),
            intervals: self.intervals.saturating_sub(earlier.intervals),
            interval_ns: self.interval_ns.saturating_sub(earlier.interval_ns),
            waits: self.waits.saturating_sub(earlier.waits),
        }
    }

    fn add(&mut self, other: Self) {
        self.loads += other.loads;
        self.backend_loads += other.backend_loads;
        self.intervals += other.intervals;
        self.interval_ns += other.interval_ns;
        self.waits += other.waits;
    }

    /// The share of loads not answered by the durable store; `None` without loads.
    pub(crate) fn hit_ratio(&self) -> Option<f64> {
        (self.loads > 0)
            .then(|| 1.0 - self.backend_loads.min(self.loads) as f64 / self.loads as f64)
    }

    /// The mean interval between two loads of one session; `None` without any.
    pub(crate) fn mean_interval(&self) -> Option<Duration> {
        (self.intervals > 0).then(|| Duration::from_nanos(self.interval_ns / self.intervals))
    }
}

/// A subject with its name and part in the comparison.
#[derive(Clone)]
pub(crate) struct Contender {
    pub(crate) label: String,
    pub(crate) role: Role,
    pub(crate) subject: Arc<dyn Subject>,
    /// The server it talks to, when that server reports its CPU time.
    pub(crate) server: Option<Arc<dyn ServerCpu>>,
}

impl Contender {
    pub(crate) fn new(
        label: impl Into<String>,
        role: Role,
        subject: impl Subject + 'static,
    ) -> Self {
        Self {
            label: label.into(),
            role,
            subject: Arc::new(subject),
            server: None,
        }
    }

    /// Counts `server`'s CPU time in this contender's cost.
    pub(crate) fn on(mut self, server: &Arc<dyn ServerCpu>) -> Self {
        self.server = Some(Arc::clone(server));
        self
    }
}

/// How long and how often to run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) rounds: usize,
    pub(crate) round: Duration,
    pub(crate) warmup: Duration,
}

/// One contender's results over all rounds.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    pub(crate) label: String,
    pub(crate) role: Role,
    /// Cycles per second, one per round.
    pub(crate) throughput: Vec<f64>,
    /// This process's CPU time per cycle in µs, one per round.
    pub(crate) cpu: Vec<f64>,
    /// The server's CPU time per cycle in µs, one per round; empty when not measured.
    pub(crate) server_cpu: Vec<f64>,
    /// Every cycle's latency in nanoseconds, all rounds pooled, sorted.
    pub(crate) latencies: Vec<u32>,
    /// Latency quantiles (p50, p99) reported per round by an external load generator, used
    /// when there are no individual latencies.
    pub(crate) reported: Vec<(Duration, Duration)>,
    /// What the subject counted, all rounds together.
    pub(crate) counts: Counts,
}

impl Measured {
    pub(crate) fn new(label: &str, role: Role) -> Self {
        let label = label.to_owned();
        Self {
            label,
            role,
            ..Self::default()
        }
    }

    /// Adds one round.
    pub(crate) fn push(&mut self, run: Run) {
        let cycles = run.cycles.max(1) as f64;
        self.throughput
            .push(run.cycles as f64 / run.elapsed.as_secs_f64());
        self.cpu.push(run.cpu.as_secs_f64() * 1e6 / cycles);
        if let Some(server) = run.server_cpu {
            self.server_cpu.push(server.as_secs_f64() * 1e6 / cycles);
        }
        self.latencies.extend(run.latencies);
        self.counts.add(run.counts);
    }

    pub(crate) fn median_throughput(&self) -> f64 {
        median(&self.throughput)
    }

    /// CPU µs per cycle in round `r`: this process's, plus the server's when it was measured.
    fn total_cpu(&self, r: usize) -> f64 {
        self.cpu[r] + self.server_cpu.get(r).copied().unwrap_or(0.0)
    }

    /// Latency quantile `p` in µs.
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            // The median over rounds of what the load generator reported.
            let pick = |q: &(Duration, Duration)| if p < 0.9 { q.0 } else { q.1 };
            let v: Vec<f64> = self
                .reported
                .iter()
                .map(|q| pick(q).as_secs_f64() * 1e6)
                .collect();
            return median(&v);
        }
        let idx = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies[idx]) / 1e3
    }
}

/// The results of one workload at one concurrency, for every contender.
#[derive(Debug)]
pub(crate) struct Comparison {
    pub(crate) workload: Workload,
    pub(crate) tasks: usize,
    pub(crate) results: Vec<Measured>,
    /// How busy the machine was while this comparison ran.
    pub(crate) load: Load,
}

impl Comparison {
    /// The first contender with `role`, or whose label contains `needle` when it is given.
    pub(crate) fn find(&self, role: Role, needle: Option<&str>) -> Option<&Measured> {
        self.results
            .iter()
            .find(|m| m.role == role && needle.is_none_or(|n| m.label.contains(n)))
    }
}

/// `a` / `b` in throughput, round by round.
pub(crate) fn per_round(a: &Measured, b: &Measured) -> Vec<f64> {
    a.throughput
        .iter()
        .zip(&b.throughput)
        .map(|(x, y)| x / y)
        .collect()
}

/// `b`'s CPU time per cycle / `a`'s, round by round: like the throughput ratio, above 1 when
/// `a` costs less. The server's CPU time counts when both sides measured it.
pub(crate) fn cpu_per_round(a: &Measured, b: &Measured) -> Vec<f64> {
    let both = !a.server_cpu.is_empty() && !b.server_cpu.is_empty();
    (0..a.cpu.len().min(b.cpu.len()))
        .map(|r| {
            if both {
                b.total_cpu(r) / a.total_cpu(r)
            } else {
                b.cpu[r] / a.cpu[r]
            }
        })
        .collect()
}

/// Runs every contender that supports `workload`, `timing.rounds` times in rotating order
/// (A B C, B C A, C A B, ...), after one warm-up run each; a subject that asks to settle runs
/// that long, unmeasured, before each of its rounds.
pub(crate) async fn compare(
    contenders: &[Contender],
    workload: Workload,
    tasks: usize,
    timing: Timing,
) -> Res<Comparison> {
    let active: Vec<&Contender> = contenders
        .iter()
        .filter(|c| c.subject.supports(workload))
        .collect();
    for c in &active {
        run(c, workload, tasks, timing.warmup).await?;
    }
    let mut results: Vec<Measured> = active
        .iter()
        .map(|c| Measured::new(&c.label, c.role))
        .collect();
    let start = Snapshot::take();
    for round in 0..timing.rounds {
        for k in 0..active.len() {
            let i = (round + k) % active.len();
            let settle = active[i].subject.settle();
            if !settle.is_zero() {
                run(active[i], workload, tasks, settle).await?;
            }
            results[i].push(run(active[i], workload, tasks, timing.round).await?);
        }
    }
    let load = Load::between(&start, &Snapshot::take());
    for m in &mut results {
        m.latencies.sort_unstable();
    }
    Ok(Comparison {
        workload,
        tasks,
        results,
        load,
    })
}

/// One run's raw numbers.
pub(crate) struct Run {
    pub(crate) cycles: u64,
    pub(crate) elapsed: Duration,
    /// This process's CPU time during the run.
    pub(crate) cpu: Duration,
    /// The server's, when it reports it.
    pub(crate) server_cpu: Option<Duration>,
    pub(crate) latencies: Vec<u32>,
    /// What the subject counted during the run.
    pub(crate) counts: Counts,
}

/// `tasks` tasks cycle on their own share of the sessions (task `t` uses slots `t`, `t + tasks`,
/// ... in a pseudo-random order) until `duration` has passed; no two tasks touch one session, so
/// versioned saves never conflict.
pub(crate) async fn run(
    contender: &Contender,
    workload: Workload,
    tasks: usize,
    duration: Duration,
) -> Res<Run> {
    let sessions = contender.subject.sessions();
    if sessions < tasks {
        return Err(format!("{sessions} sessions cannot feed {tasks} tasks").into());
    }
    let counted = contender.subject.counts();
    let meter = Meter::start(contender.server.as_ref()).await?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = JoinSet::new();
    for task in 0..tasks {
        let subject = Arc::clone(&contender.subject);
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
    let (cpu, server_cpu) = meter.stop().await?;
    Ok(Run {
        cycles: all.len() as u64,
        elapsed: end - start,
        cpu,
        server_cpu,
        latencies: all,
        counts: contender.subject.counts().since(counted),
    })
}

/// A tiny deterministic generator: each task visits its sessions in the same order every run.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn measured(role: Role, throughput: Vec<f64>, cpu: Vec<f64>) -> Measured {
        Measured {
            throughput,
            cpu,
            ..Measured::new(&format!("{role:?}"), role)
        }
    }

    fn comparison(results: Vec<Measured>) -> Comparison {
        let load = Load::between(&Snapshot::take(), &Snapshot::take());
        Comparison {
            workload: Workload::Rw,
            tasks: 1,
            results,
            load,
        }
    }

    #[test]
    fn ratios_pair_rounds_not_medians() {
        let c = comparison(vec![
            measured(Role::Ours, vec![10.0, 40.0, 30.0], vec![2.0, 2.0, 4.0]),
            measured(Role::Floor, vec![20.0, 40.0, 10.0], vec![1.0, 3.0, 2.0]),
        ]);
        let (ours, floor) = (&c.results[0], &c.results[1]);
        assert_eq!(per_round(ours, floor), vec![0.5, 1.0, 3.0]);
        assert_eq!(cpu_per_round(ours, floor), vec![0.5, 1.5, 0.5]);
        assert!(
            c.find(Role::Floor, None)
                .is_some_and(|m| m.label == "Floor")
        );
        assert!(c.find(Role::Floor, Some("nothing")).is_none());
        assert!(c.find(Role::Peer, None).is_none());
    }

    #[test]
    fn server_cpu_counts_only_when_both_sides_have_it() {
        let mut ours = measured(Role::Ours, vec![1.0], vec![2.0]);
        let mut floor = measured(Role::Floor, vec![1.0], vec![1.0]);
        ours.server_cpu = vec![6.0];
        assert_eq!(cpu_per_round(&ours, &floor), vec![0.5]);
        let mut ours = measured(Role::Ours, vec![1.0], vec![2.0]);
        ours.server_cpu = vec![6.0];
        floor = measured(Role::Floor, vec![1.0], vec![1.0]);
        floor.server_cpu = vec![1.0];
        assert_eq!(cpu_per_round(&ours, &floor), vec![0.25]);
    }

    #[test]
    fn percentiles_come_from_pooled_latencies_or_reported_ones() {
        let mut m = measured(Role::Ours, vec![1.0], vec![1.0]);
        m.latencies = (1..=100).map(|n| n * 1000).collect();
        assert_eq!(m.percentile(0.5), 51.0);
        assert_eq!(m.percentile(0.99), 99.0);
        let mut r = measured(Role::Peer, vec![1.0], vec![1.0]);
        r.reported = vec![
            (Duration::from_micros(5), Duration::from_micros(50)),
            (Duration::from_micros(7), Duration::from_micros(70)),
            (Duration::from_micros(6), Duration::from_micros(60)),
        ];
        assert_eq!(r.percentile(0.5), 6.0);
        assert_eq!(r.percentile(0.99), 60.0);
    }

    /// Counts its cycles per slot.
    struct Counter(Arc<Vec<AtomicU64>>);

    #[async_trait]
    impl Subject for Counter {
        fn sessions(&self) -> usize {
            self.0.len()
        }
        async fn cycle(&self, _: Workload, task: usize, slot: usize, _: u64) -> Res {
            if slot % 4 != task {
                return Err(format!("task {task} got slot {slot}").into());
            }
            self.0[slot].fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tasks_keep_to_their_own_sessions_and_cover_them() {
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..40).map(|_| 0.into()).collect());
        let counter = Contender::new("counter", Role::Ours, Counter(Arc::clone(&counts)));
        let run = run(&counter, Workload::Rw, 4, Duration::from_millis(50))
            .await
            .expect("no task may touch another task's session");
        let total: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(run.cycles, total);
        assert_eq!(run.latencies.len() as u64, total);
        assert!(run.cpu > Duration::ZERO, "the run used CPU time");
        assert!(
            counts.iter().all(|c| c.load(Ordering::Relaxed) > 0),
            "every session is visited"
        );
    }

    /// Counts its cycles as loads, and asks to settle before each measured run.
    struct Settling(AtomicU64);

    #[async_trait]
    impl Subject for Settling {
        fn sessions(&self) -> usize {
            1
        }
        async fn cycle(&self, _: Workload, _: usize, _: usize, _: u64) -> Res {
            self.0.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        }
        fn settle(&self) -> Duration {
            Duration::from_millis(5)
        }
        fn counts(&self) -> Counts {
            Counts {
                loads: self.0.load(Ordering::Relaxed),
                ..Counts::default()
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settling_runs_before_each_round_and_only_measured_cycles_count() {
        let subject = Contender::new("settling", Role::Ours, Settling(AtomicU64::new(0)));
        let timing = Timing {
            rounds: 3,
            round: Duration::from_millis(5),
            warmup: Duration::from_millis(5),
        };
        let c = compare(std::slice::from_ref(&subject), Workload::Rw, 1, timing)
            .await
            .expect("runs");
        let m = &c.results[0];
        let measured: u64 = m.latencies.len() as u64;
        assert_eq!(
            m.counts.loads, measured,
            "the counts are the measured runs'"
        );
        // A run has at least one cycle: the warm-up, and a settling run before each round.
        let all = subject.subject.counts().loads;
        assert!(
            all > measured + 3,
            "{all} cycles in all, {measured} measured"
        );
    }
}
