//! What a run costs besides its wall time, and how busy the machine was meanwhile: CPU time
//! moves far less with the neighbours' load than throughput does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::harness::Res;

/// CPU time this process has used so far, on all its threads: `CLOCK_PROCESS_CPUTIME_ID`, the
/// nanosecond-precise sum that `getrusage(RUSAGE_SELF)` splits into user and system time.
/// Through rustix because the workspace forbids `unsafe` (so no direct `libc` call), and
/// rustix is already in the dependency tree.
pub(crate) fn process_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// A server that can say how much CPU time it has used (Redis: `INFO cpu`), so that the cost
/// of a network store's operation counts the server's side too.
#[async_trait]
pub(crate) trait ServerCpu: Send + Sync {
    /// Total CPU time the server has used so far.
    async fn cpu_time(&self) -> Res<Duration>;
}

/// Measures the CPU time of a piece of work: this process's, and a server's when given.
pub(crate) struct Meter<'a> {
    server: Option<(&'a dyn ServerCpu, Duration)>,
    ours: Duration,
}

impl<'a> Meter<'a> {
    pub(crate) async fn start(server: Option<&'a Arc<dyn ServerCpu>>) -> Res<Self> {
        let server = match server {
            Some(s) => Some((&**s, s.cpu_time().await?)),
            None => None,
        };
        Ok(Self {
            server,
            ours: process_time(),
        })
    }

    /// This process's CPU time since the start, and the server's.
    pub(crate) async fn stop(self) -> Res<(Duration, Option<Duration>)> {
        let ours = process_time() - self.ours;
        let server = match self.server {
            Some((s, before)) => Some(s.cpu_time().await?.saturating_sub(before)),
            None => None,
        };
        Ok((ours, server))
    }
}

/// The machine at one instant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    at: Instant,
    /// 1-minute load average (`/proc/loadavg`), NaN where unknown.
    loadavg: f64,
    /// Busy time of all CPUs together (`/proc/stat`), if known.
    busy: Option<Duration>,
    /// This process's CPU time.
    ours: Duration,
}

impl Snapshot {
    pub(crate) fn take() -> Self {
        Self {
            at: Instant::now(),
            loadavg: loadavg().unwrap_or(f64::NAN),
            busy: busy_time(),
            ours: process_time(),
        }
    }
}

/// How busy the machine was between two snapshots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    /// 1-minute load averages at the start and at the end (they include this process).
    pub(crate) before: f64,
    pub(crate) after: f64,
    /// Cores kept busy by everything but this process (servers in containers included), on
    /// average; NaN where `/proc/stat` cannot be read.
    pub(crate) others: f64,
}

impl Load {
    pub(crate) fn between(start: &Snapshot, end: &Snapshot) -> Self {
        let wall = (end.at - start.at).as_secs_f64();
        let others = match (start.busy, end.busy) {
            (Some(a), Some(b)) if wall > 0.0 => {
                let ours = (end.ours - start.ours).as_secs_f64();
                ((b.saturating_sub(a)).as_secs_f64() - ours).max(0.0) / wall
            }
            _ => f64::NAN,
        };
        Self {
            before: start.loadavg,
            after: end.loadavg,
            others,
        }
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1}→{:.1}, others {:.1} cores",
            self.before, self.after, self.others
        )
    }
}

fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The busy time of all CPUs from the first line of `/proc/stat`: every column but idle and
/// iowait (guest time is already inside user time).
fn busy_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    busy_ticks(stat.lines().next()?).map(|ticks| {
        let hz = rustix::param::clock_ticks_per_second().max(1);
        Duration::from_secs_f64(ticks as f64 / hz as f64)
    })
}

fn busy_ticks(line: &str) -> Option<u64> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    (v.len() >= 4).then(|| at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_time_grows_with_work() {
        let before = process_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(process_time() > before, "{x}");
    }

    #[test]
    fn busy_ticks_leave_out_idle_and_iowait() {
        assert_eq!(busy_ticks("cpu  10 1 5 1000 7 2 3 4 0 0"), Some(25));
        assert_eq!(busy_ticks("cpu0 10 1 5 1000"), None);
        assert_eq!(busy_ticks("intr 1 2 3"), None);
    }
}
