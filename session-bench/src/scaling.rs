//! Scaling: throughput as the number of sessions grows (memory and Redis), throughput in bytes
//! as sessions grow larger, and the memory store's resident memory per session.

use std::fmt::Write as _;
use std::sync::Arc;

use session_core::Store;
use session_memory::MemoryStore;
use session_redis::RedisStore;

use crate::args::{Args, Backend};
use crate::harness::{Comparison, Res, Subject, Timing, Workload, compare, median, micros, rate};
use crate::payload;
use crate::report::Report;
use crate::servers::Servers;
use crate::subjects::memory::MokaFloor;
use crate::subjects::ours::Ours;
use crate::subjects::redis::{Conn, RedisFloor};

/// Tasks of the scaling runs: the middle of the store suite's range.
const TASKS: usize = 16;

/// Tasks in quick mode, which may run in a debug build on a busy machine: fewer operations in
/// flight keep each one well inside the stores' time limits with 64 KiB sessions.
const QUICK_TASKS: usize = 4;

fn tasks(args: &Args) -> usize {
    if args.quick { QUICK_TASKS } else { TASKS }
}

pub(crate) async fn run(args: &Args, servers: &mut Servers, report: &mut Report) -> Res {
    let counts = counts(args.scale_max);
    report.text(&format!(
        "## Scaling\n\nrw and ro cycles at {} tasks, {} interleaved rounds of {} ms.\n",
        tasks(args),
        args.timing.rounds,
        args.timing.round.as_millis()
    ));
    if args.wants(Backend::Memory) {
        resident_memory(args, report)?;
        let mut ours: Vec<Arc<dyn Subject>> = Vec::new();
        let mut floor: Vec<Arc<dyn Subject>> = Vec::new();
        for &n in &counts {
            eprintln!("[scaling] memory: preparing {n} sessions");
            let capacity = 2 * n as u64;
            let store = MemoryStore::with_max_capacity(capacity)?;
            let label = format!("ours: MemoryStore, {} sessions", thousands(n));
            ours.push(Arc::new(
                Ours::prepare(label, Arc::new(store), n, args.size).await?,
            ));
            floor.push(Arc::new(
                MokaFloor::prepare(n, args.size, capacity)
                    .await?
                    .with_sessions_in_label(),
            ));
        }
        by_count(report, "memory", &ours, &floor, args.timing, tasks(args)).await?;
    }
    if args.wants(Backend::Redis) {
        let url = servers.redis(args).await?;
        let mut ours: Vec<Arc<dyn Subject>> = Vec::new();
        let mut floor: Vec<Arc<dyn Subject>> = Vec::new();
        for (i, &n) in counts.iter().enumerate() {
            eprintln!("[scaling] redis: preparing {n} sessions");
            // A database per count and contender, so that each has a keyspace of its own size.
            let (db_ours, db_floor) = (1 + 2 * i, 2 + 2 * i);
            let store = RedisStore::connect(&with_database(&url, db_ours)?).await?;
            let label = format!("ours: RedisStore, {} sessions (db {db_ours})", thousands(n));
            ours.push(Arc::new(
                Ours::prepare(label, Arc::new(store), n, args.size).await?,
            ));
            let conn = Conn::standalone(&with_database(&url, db_floor)?).await?;
            floor.push(Arc::new(
                RedisFloor::prepare(conn, n, args.size)
                    .await?
                    .with_sessions_in_label(),
            ));
        }
        by_count(report, "redis", &ours, &floor, args.timing, tasks(args)).await?;
    }
    if args.wants(Backend::Memory) {
        by_size(args, report, Backend::Memory, servers).await?;
    }
    if args.wants(Backend::Redis) {
        by_size(args, report, Backend::Redis, servers).await?;
    }
    Ok(())
}

/// 10k, 100k, 1M (or fewer, up to `max`; at least two points).
fn counts(max: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = [10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    if counts.len() < 2 {
        counts = vec![(max / 10).max(TASKS), max.max(2 * TASKS)];
    }
    counts
}

pub(crate) fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `url` with its database number replaced by `db`.
fn with_database(url: &str, db: usize) -> Res<String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or("the scaling run needs a redis:// URL")?;
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    Ok(format!("redis://{host}/{db}"))
}

/// Interleaved rounds over stores of different sizes, ours and the floor alike; each is
/// compared with the same contender at the smallest count, and ours with the floor.
async fn by_count(
    report: &mut Report,
    backend: &str,
    ours: &[Arc<dyn Subject>],
    floor: &[Arc<dyn Subject>],
    timing: Timing,
    tasks: usize,
) -> Res {
    let mut out = format!(
        "### {backend}: session count\n\nEach contender at each count against itself at the \
         smallest count, per round; and ours against the floor at the same count.\n\n\
         | workload | contender | cycles/s | p50 µs | p99 µs | / smallest count, per round | \
         median | ours / floor |\n|---|---|---:|---:|---:|---|---:|---:|\n"
    );
    let subjects: Vec<Arc<dyn Subject>> = ours.iter().chain(floor).cloned().collect();
    let k = ours.len();
    for workload in [Workload::Rw, Workload::Ro] {
        eprintln!("[scaling] {backend}: {} by session count", workload.name());
        let c = compare(&subjects, workload, tasks, timing).await?;
        let per_round = |a: usize, b: usize| -> Vec<f64> {
            c.results[a]
                .throughput
                .iter()
                .zip(&c.results[b].throughput)
                .map(|(x, y)| x / y)
                .collect()
        };
        for (i, m) in c.results.iter().enumerate() {
            let base = if i < k { 0 } else { k };
            let ratios = per_round(i, base);
            let to_floor = if i < k {
                format!("**{:.2}**", median(&per_round(i, i + k)))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | **{:.2}** | {to_floor} |",
                workload.name(),
                m.label,
                rate(m.median_throughput()),
                micros(m.percentile(0.5)),
                micros(m.percentile(0.99)),
                ratios
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                median(&ratios),
            );
        }
        let largest = k - 1;
        report.check(
            format!(
                "{backend} {} at {tasks} tasks: {} / {}",
                workload.name(),
                c.results[largest].label,
                c.results[0].label
            ),
            Some(median(&per_round(largest, 0))),
            0.8,
        );
    }
    report.text(&out);
    Ok(())
}

/// Ours and the floor with sessions of 1, 16 and 64 KiB.
async fn by_size(args: &Args, report: &mut Report, backend: Backend, servers: &mut Servers) -> Res {
    // Fewer, larger sessions: the point is their size, and 64 KiB times 10,000 per contender
    // would be gigabytes.
    let n = args.sessions.clamp(TASKS, 2_000);
    let tasks = tasks(args);
    let mut out = format!(
        "### {}: session size\n\n{n} sessions per contender; bytes/s = cycles/s × encoded \
         session size.\n\n| workload | size | contender | cycles/s | bytes/s | p50 µs | p99 µs | \
         ours / floor |\n|---|---:|---|---:|---:|---:|---:|---:|\n",
        backend.name()
    );
    for kib in [1, 16, 64] {
        let size = kib * 1024;
        let encoded = payload::bytes(&payload::object(0, size)).len();
        eprintln!("[scaling] {}: {kib} KiB sessions", backend.name());
        let subjects: Vec<Arc<dyn Subject>> = match backend {
            Backend::Memory => {
                let capacity = 2 * n as u64;
                vec![
                    Arc::new(
                        Ours::prepare(
                            "ours: MemoryStore",
                            Arc::new(MemoryStore::with_max_capacity(capacity)?),
                            n,
                            size,
                        )
                        .await?,
                    ),
                    Arc::new(MokaFloor::prepare(n, size, capacity).await?),
                ]
            }
            _ => {
                let url = servers.redis(args).await?;
                let store: Arc<dyn Store> =
                    Arc::new(RedisStore::connect(&with_database(&url, 8)?).await?);
                let conn = Conn::standalone(&with_database(&url, 9)?).await?;
                vec![
                    Arc::new(Ours::prepare("ours: RedisStore", store, n, size).await?),
                    Arc::new(RedisFloor::prepare(conn, n, size).await?),
                ]
            }
        };
        for workload in [Workload::Rw, Workload::Ro] {
            let c: Comparison = compare(&subjects, workload, tasks, args.timing).await?;
            let to_floor = c.median_ratio(crate::harness::Role::Floor);
            for m in &c.results {
                let _ = writeln!(
                    out,
                    "| {} | {encoded} B | {} | {} | {}B/s | {} | {} | {} |",
                    workload.name(),
                    m.label,
                    rate(m.median_throughput()),
                    rate(m.median_throughput() * encoded as f64),
                    micros(m.percentile(0.5)),
                    micros(m.percentile(0.99)),
                    match (m.role, to_floor) {
                        (crate::harness::Role::Floor, Some(r)) => format!("**{r:.2}**"),
                        _ => String::new(),
                    }
                );
            }
        }
    }
    report.text(&out);
    Ok(())
}

/// Measures the memory store's resident memory per session in a child process, so that memory
/// this process freed earlier cannot hide the growth.
fn resident_memory(args: &Args, report: &mut Report) -> Res {
    let n = args.scale_max;
    eprintln!("[scaling] memory: resident memory of {n} sessions (child process)");
    let exe = std::env::current_exe()?;
    let output = std::process::Command::new(exe)
        .args([RSS_PROBE, &n.to_string(), &args.size.to_string()])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "the resident-memory probe failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let text = String::from_utf8(output.stdout)?;
    report.text(&format!("### memory: resident memory\n\n{}\n", text.trim()));
    Ok(())
}

/// The hidden first argument that runs [`probe`] instead of the benchmark.
pub(crate) const RSS_PROBE: &str = "__rss-probe";

fn rss_bytes() -> Res<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("no resident size in /proc/self/statm")?
        .parse()?;
    // Every Linux this runs on has 4 KiB pages; the report states the assumption.
    Ok(pages * 4096)
}

/// The child's side: fills a memory store with `n` sessions of `size` bytes and prints the
/// growth of its resident set.
pub(crate) async fn probe(n: usize, size: usize) -> Res {
    let encoded = payload::bytes(&payload::object(0, size)).len();
    let store = MemoryStore::with_max_capacity(2 * n as u64)?;
    let before = rss_bytes()?;
    let subject = Ours::prepare("probe", Arc::new(store.clone()), n, size).await?;
    let after = rss_bytes()?;
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "| sessions | encoded session | resident growth | per session | overhead per session |\n\
         |---:|---:|---:|---:|---:|\n\
         | {} | {encoded} B | {:.0} MiB | {per:.0} B | {:.0} B ({:.2}x the encoded size) |",
        thousands(subject.sessions()),
        (after - before) as f64 / (1024.0 * 1024.0),
        per - encoded as f64,
        per / encoded as f64,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_numbers_replace_the_url_path() {
        assert_eq!(
            with_database("redis://127.0.0.1:6379", 3).expect("url"),
            "redis://127.0.0.1:6379/3"
        );
        assert_eq!(
            with_database("redis://127.0.0.1:6379/0", 5).expect("url"),
            "redis://127.0.0.1:6379/5"
        );
        assert!(with_database("rediss://host", 1).is_err());
    }

    #[test]
    fn counts_have_at_least_two_points() {
        assert_eq!(counts(1_000_000), vec![10_000, 100_000, 1_000_000]);
        assert_eq!(counts(10_000), vec![1_000, 10_000]);
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
