//! The store suite: per backend, our store against the floor and tower-sessions.

use std::sync::Arc;

use session_memory::MemoryStore;

use crate::args::{Args, Backend};
use crate::harness::{Comparison, Res, Subject, Workload, compare};
use crate::report::Report;
use crate::subjects::memory::MokaFloor;
use crate::subjects::ours::Ours;
use crate::subjects::ts::{Ts14, Ts15};

/// Runs every selected backend; the first failure stops the run.
pub(crate) async fn run(args: &Args, report: &mut Report) -> Res {
    report.text(&format!(
        "## Stores\n\n{} sessions of {} bytes per contender; tasks {:?}; {} interleaved rounds of \
         {} ms after a {} ms warm-up each. cycles/s is the median over rounds; p50/p99 pool \
         every cycle of every round. Ratios are ours / that contender, per round, then their \
         median.\n",
        args.sessions,
        args.size,
        args.tasks,
        args.timing.rounds,
        args.timing.round.as_millis(),
        args.timing.warmup.as_millis(),
    ));
    for backend in args.backends.clone() {
        eprintln!("[stores] {}: preparing", backend.name());
        let (subjects, note) = match backend {
            Backend::Memory => memory(args).await?,
            other => {
                return Err(format!("backend {} is not wired in yet", other.name()).into());
            }
        };
        let mut comparisons = Vec::new();
        for workload in [Workload::Rw, Workload::Ro, Workload::Touch] {
            for &tasks in &args.tasks {
                eprintln!("[stores] {}: {} at {tasks} tasks", backend.name(), workload.name());
                comparisons.push(compare(&subjects, workload, tasks, args.timing).await?);
            }
        }
        report.comparisons(backend.name(), &note, &comparisons);
        report.store_targets(backend.name(), &comparisons);
        drop(subjects);
        let _: &[Comparison] = &comparisons;
    }
    Ok(())
}

async fn memory(args: &Args) -> Res<(Vec<Arc<dyn Subject>>, String)> {
    let (n, size) = (args.sessions, args.size);
    let capacity = (2 * n as u64).max(MemoryStore::DEFAULT_MAX_CAPACITY);
    let ours = Ours::prepare(
        "ours: MemoryStore",
        Arc::new(MemoryStore::with_max_capacity(capacity)),
        n,
        size,
    )
    .await?;
    let floor = MokaFloor::prepare(n, size, capacity).await?;
    let moka = Ts14::prepare(
        "tower-sessions MokaStore",
        tower_sessions_moka_store::MokaStore::new(Some(capacity)),
        n,
        size,
    )
    .await?;
    let mem = Ts15::prepare(
        "tower-sessions MemoryStore",
        tower_sessions_memory_store::MemoryStore::default(),
        n,
        size,
    )
    .await?;
    let note = format!(
        "In-process. Floor: a moka cache of `Arc`s of the encoded bytes with the same capacity \
         ({capacity}) and per-entry expiry policy as ours."
    );
    Ok((
        vec![Arc::new(ours), Arc::new(floor), Arc::new(moka), Arc::new(mem)],
        note,
    ))
}
