//! Scaling: throughput as the number of sessions grows (memory and Redis), as sessions grow
//! larger, and the memory store's resident memory per session.

use std::fmt::Write as _;
use std::sync::Arc;

use session_memory::MemoryStore;
use session_redis::RedisStore;

use crate::args::{Args, Backend};
use crate::cpu::ServerCpu;
use crate::harness::{Contender, Res, Role, Workload, compare, cpu_per_round, per_round};
use crate::numbers::{list, median, micros, rate, spread, thousands};
use crate::payload;
use crate::report::Report;
use crate::servers::Servers;
use crate::subjects::memory::MokaFloor;
use crate::subjects::ours::Ours;
use crate::subjects::redis::{Conn, RedisCpu, RedisFloor};
use crate::targets;

/// Tasks of the scaling runs: the middle of the store suite's range.
const TASKS: usize = 16;

/// Tasks in quick mode, which may run in a debug build on a busy machine: fewer operations in
/// flight keep each one well inside the stores' time limits with 64 KiB sessions.
const QUICK_TASKS: usize = 4;

pub(crate) async fn run(args: &Args, servers: &mut Servers, report: &mut Report) -> Res {
    let tasks = if args.quick { QUICK_TASKS } else { TASKS };
    let counts = counts(args.scale_max);
    report.text(&format!(
        "## Scaling\n\nrw and ro cycles at {tasks} tasks, {} interleaved rounds of {} ms.\n",
        args.timing().rounds,
        args.timing().round.as_millis()
    ));
    let mut places = Vec::new();
    if args.wants(Backend::Memory) {
        resident_memory(args, report)?;
        places.push(Place::Memory);
    }
    if args.wants(Backend::Redis) {
        let url = servers.url(Backend::Redis, args).await?;
        let server = Arc::new(RedisCpu::connect(std::slice::from_ref(&url)).await?);
        places.push(Place::Redis { url, server });
    }
    for place in &places {
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        for (i, &n) in counts.iter().enumerate() {
            eprintln!("[scaling] {}: preparing {n} sessions", place.name());
            // A Redis database per count and contender, so each keyspace has its own size.
            for (mut c, all) in pair(place, n, args.size, 1 + 2 * i)
                .await?
                .into_iter()
                .zip([&mut ours, &mut floor])
            {
                c.label = format!("{}, {} sessions", c.label, thousands(n));
                all.push(c);
            }
        }
        by_count(report, place.name(), (ours, floor), args, tasks).await?;
    }
    for place in &places {
        by_size(args, report, place, tasks).await?;
    }
    Ok(())
}

/// Where the scaling runs keep their sessions.
enum Place {
    Memory,
    /// Two databases of one Redis server per pair, whose CPU time counts.
    Redis {
        url: String,
        server: Arc<RedisCpu>,
    },
}

impl Place {
    fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis { .. } => "redis",
        }
    }
}

/// Ours and the floor with `n` sessions of `size` bytes (in Redis: databases `db` and
/// `db + 1`).
async fn pair(place: &Place, n: usize, size: usize, db: usize) -> Res<[Contender; 2]> {
    Ok(match place {
        Place::Memory => {
            let capacity = 2 * n as u64;
            let store = Arc::new(MemoryStore::with_max_capacity(capacity)?);
            let floor = MokaFloor::prepare(n, size, capacity).await?;
            [
                Contender::new(
                    "ours: MemoryStore",
                    Role::Ours,
                    Ours::prepare(store, n, size).await?,
                ),
                Contender::new("floor: moka get (+ insert)", Role::Floor, floor),
            ]
        }
        Place::Redis { url, server } => {
            let server: Arc<dyn ServerCpu> = Arc::clone(server) as _;
            let store = Arc::new(RedisStore::connect(&with_database(url, db)?).await?);
            let conn = Conn::standalone(&with_database(url, db + 1)?).await?;
            let floor = RedisFloor::prepare(conn, n, size).await?;
            let (ours, floor_label) = (
                format!("ours: RedisStore (db {db})"),
                format!("floor: redis-rs GET / SET (db {})", db + 1),
            );
            [
                Contender::new(ours, Role::Ours, Ours::prepare(store, n, size).await?).on(&server),
                Contender::new(floor_label, Role::Floor, floor).on(&server),
            ]
        }
    })
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
    (ours, floor): (Vec<Contender>, Vec<Contender>),
    args: &Args,
    tasks: usize,
) -> Res {
    let mut out = format!(
        "### {backend}: session count\n\nEach contender at each count against itself at the \
         smallest count, per round; and ours against the floor at the same count.\n\n\
         | workload | contender | cycles/s | CPU µs/cycle | p50 µs | p99 µs | / smallest count, \
         per round | median | ours / floor | load |\n|---|---|---:|---:|---:|---:|---|---:|---:|---|\n"
    );
    let k = ours.len();
    let contenders: Vec<Contender> = ours.into_iter().chain(floor).collect();
    for workload in [Workload::Rw, Workload::Ro] {
        eprintln!("[scaling] {backend}: {} by session count", workload.name());
        let c = compare(&contenders, workload, tasks, args.timing()).await?;
        for (i, m) in c.results.iter().enumerate() {
            let ratios = per_round(m, &c.results[if i < k { 0 } else { k }]);
            let to_floor = if i < k {
                format!("**{:.2}**", median(&per_round(m, &c.results[i + k])))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | **{:.2}** | {to_floor} | {} |",
                workload.name(),
                m.label,
                rate(m.median_throughput()),
                micros(median(&m.cpu)),
                micros(m.percentile(0.5)),
                micros(m.percentile(0.99)),
                list(&ratios),
                median(&ratios),
                if i == 0 {
                    c.load.to_string()
                } else {
                    String::new()
                },
            );
        }
        let (largest, smallest) = (&c.results[k - 1], &c.results[0]);
        report.check(
            format!(
                "{backend} {} at {tasks} tasks: {} / {}",
                workload.name(),
                largest.label,
                smallest.label
            ),
            (largest, smallest),
            c.load,
            targets::LARGEST_COUNT_VS_SMALLEST,
        );
        let _ = writeln!(
            out,
            "| {} | CPU ratio, largest / smallest count | | | | | | {} | | |",
            workload.name(),
            spread(&cpu_per_round(largest, smallest)),
        );
    }
    report.text(&out);
    Ok(())
}

/// Ours and the floor with sessions of 1, 16 and 64 KiB.
async fn by_size(args: &Args, report: &mut Report, place: &Place, tasks: usize) -> Res {
    // Fewer, larger sessions: the point is their size, and 64 KiB times 10,000 per contender
    // would be gigabytes.
    let n = args.sessions.clamp(TASKS, 2_000);
    for kib in [1, 16, 64] {
        let size = kib * 1024;
        let encoded = payload::bytes(&payload::object(0, size)).len();
        eprintln!("[scaling] {}: {kib} KiB sessions", place.name());
        let contenders = pair(place, n, size, 8).await?;
        let mut comparisons = Vec::new();
        for workload in [Workload::Rw, Workload::Ro] {
            let c = compare(&contenders, workload, tasks, args.timing()).await?;
            if place.name() == "redis" && workload == Workload::Rw && kib > 1 {
                let scope = format!("redis {kib} KiB");
                report.check_against(&scope, &c, Role::Floor, None, targets::REDIS_LARGE_SESSIONS);
            }
            comparisons.push(c);
        }
        let title = format!("{}: {kib} KiB sessions", place.name());
        let note = format!(
            "{n} sessions of {encoded} bytes per contender (bytes/s: cycles/s × {encoded})."
        );
        report.comparisons(&title, &note, &comparisons);
    }
    Ok(())
}

/// Measures the memory store's resident memory per session in a child process, so that memory
/// this process freed earlier cannot hide the growth; and the floor's (moka holding the same
/// encoded bytes), which shows what the cache itself costs per entry.
fn resident_memory(args: &Args, report: &mut Report) -> Res {
    let n = args.scale_max;
    let encoded = payload::bytes(&payload::object(0, args.size)).len() as f64;
    let mut rows = String::new();
    let mut ours_per = 0.0;
    for (subject, label) in [
        (PROBE_OURS, "ours: MemoryStore"),
        (PROBE_FLOOR, "floor: moka"),
    ] {
        eprintln!("[scaling] memory: resident memory of {n} sessions, {label} (child process)");
        let output = std::process::Command::new(std::env::current_exe()?)
            .args([RSS_PROBE, &n.to_string(), &args.size.to_string(), subject])
            .output()?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("the resident-memory probe failed: {stderr}").into());
        }
        let growth: f64 = String::from_utf8(output.stdout)?.trim().parse()?;
        let per = growth / n as f64;
        if subject == PROBE_OURS {
            ours_per = per;
        }
        writeln!(
            rows,
            "| {label} | {} | {encoded} B | {:.0} MiB | {per:.0} B | {:.0} B ({:.2}x the encoded \
             size) |",
            thousands(n),
            growth / (1024.0 * 1024.0),
            per - encoded,
            per / encoded,
        )?;
    }
    report.text(&format!(
        "### memory: resident memory\n\n\
         Each line is a child process holding only that cache, filled with the sessions and \
         their ids; the floor is moka with the same capacity and expiry policy holding each \
         session's encoded bytes, so its overhead is what the cache and the ids cost per \
         entry before any store logic.\n\n\
         | contender | sessions | encoded session | resident growth | per session | overhead per session |\n\
         |---|---:|---:|---:|---:|---:|\n{rows}"
    ));
    report.check_value(
        format!(
            "memory: resident bytes per session / encoded size, {} sessions",
            thousands(n)
        ),
        ours_per / encoded,
        targets::MEMORY_RESIDENT,
    );
    Ok(())
}

/// The probe's subject argument: our memory store.
pub(crate) const PROBE_OURS: &str = "ours";
/// The probe's subject argument: the moka floor.
pub(crate) const PROBE_FLOOR: &str = "floor";

/// The hidden first argument that runs [`probe`] instead of the benchmark.
pub(crate) const RSS_PROBE: &str = "__rss-probe";

fn rss_bytes() -> Res<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("no resident size in /proc/self/statm")?
        .parse()?;
    Ok(pages * rustix::param::page_size() as u64)
}

/// The child's side: fills our memory store (`subject` [`PROBE_OURS`]) or the moka floor
/// ([`PROBE_FLOOR`]) with `n` sessions of `size` bytes and prints the growth of its resident set
/// in bytes.
pub(crate) async fn probe(n: usize, size: usize, subject: &str) -> Res {
    let before = rss_bytes()?;
    let after = match subject {
        PROBE_OURS => {
            let store = MemoryStore::with_max_capacity(2 * n as u64)?;
            let subject = Ours::prepare(Arc::new(store), n, size).await?;
            let after = rss_bytes()?;
            drop(subject);
            after
        }
        PROBE_FLOOR => {
            let subject = MokaFloor::prepare(n, size, 2 * n as u64).await?;
            let after = rss_bytes()?;
            drop(subject);
            after
        }
        other => return Err(format!("unknown probe subject {other:?}").into()),
    };
    println!("{}", after.saturating_sub(before));
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
    }
}
