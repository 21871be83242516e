//! The cache tier's contenders: loads that hit, loads that miss, and the mixed workload, whose
//! sessions are loaded in a rhythm.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use session_core::{Id, Record, Result, Store};
use session_memory::CachedStore;
use time::OffsetDateTime;

use crate::harness::{Counts, Res, Subject, Workload};
use crate::payload;

/// A store that counts the loads that reach it: behind a cache tier, its misses.
#[derive(Clone)]
pub(crate) struct Counting<S> {
    inner: S,
    loads: Arc<AtomicU64>,
}

impl<S> Counting<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            loads: Arc::default(),
        }
    }
}

#[async_trait]
impl<S: Store> Store for Counting<S> {
    async fn create(&self, record: &Record) -> Result<()> {
        self.inner.create(record).await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.loads.fetch_add(1, Relaxed);
        self.inner.load(id).await
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.inner.save(record).await
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        self.inner.touch(id, expires_at).await
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.inner.delete(id).await
    }
}

/// `durable` behind a cache tier holding each copy for at most `bound`, and the counter of
/// the loads that reach `durable`.
pub(crate) fn tier<S: Store>(
    durable: S,
    bound: Duration,
    capacity: u64,
) -> Res<(Arc<dyn Store>, Arc<AtomicU64>)> {
    let counting = Counting::new(durable);
    let misses = Arc::clone(&counting.loads);
    let tier = CachedStore::new(counting)
        .with_max_staleness(bound)?
        .with_max_capacity(capacity)?;
    Ok((Arc::new(tier), misses))
}

/// The staleness bound of the hit and miss runs: long enough that no copy times out.
const LONG: Duration = Duration::from_secs(3600);

/// Loads through a cache tier: of random sessions it all holds (hits), or of sessions swept in
/// order through a cache that holds a sixteenth of them, so that least-recently-used eviction
/// has dropped each one long before its next turn (misses: the durable load, then the copy's
/// insertion and, the cache being full, an eviction).
pub(crate) struct CachedLoads {
    store: Arc<dyn Store>,
    ids: Arc<[Id]>,
    backend_loads: Arc<AtomicU64>,
    loads: AtomicU64,
    /// The next session of the sweep (misses); `None`: random sessions (hits).
    sweep: Option<AtomicUsize>,
}

impl CachedLoads {
    /// Hits: a tier in front of `durable` that holds every one of `ids` (loaded once here).
    pub(crate) async fn hits(durable: impl Store, ids: Arc<[Id]>) -> Res<Self> {
        let (store, backend_loads) = tier(durable, LONG, 2 * ids.len() as u64)?;
        for id in ids.iter() {
            store
                .load(id)
                .await?
                .ok_or("a prepared session is missing")?;
        }
        Ok(Self {
            store,
            ids,
            backend_loads,
            loads: AtomicU64::new(0),
            sweep: None,
        })
    }

    /// Misses: a tier in front of `durable` with room for a sixteenth of `ids`.
    pub(crate) fn misses(durable: impl Store, ids: Arc<[Id]>) -> Res<Self> {
        let capacity = (ids.len() as u64 / 16).max(1);
        let (store, backend_loads) = tier(durable, LONG, capacity)?;
        Ok(Self {
            store,
            ids,
            backend_loads,
            loads: AtomicU64::new(0),
            sweep: Some(AtomicUsize::new(0)),
        })
    }
}

#[async_trait]
impl Subject for CachedLoads {
    fn sessions(&self) -> usize {
        self.ids.len()
    }

    fn supports(&self, workload: Workload) -> bool {
        workload
            == if self.sweep.is_some() {
                Workload::Miss
            } else {
                Workload::Hit
            }
    }

    async fn cycle(&self, _: Workload, _task: usize, slot: usize, _n: u64) -> Res {
        // Loads never conflict, so the sweep may hand one session to two tasks.
        let slot = match &self.sweep {
            Some(next) => next.fetch_add(1, Relaxed) % self.ids.len(),
            None => slot,
        };
        self.store
            .load(&self.ids[slot])
            .await?
            .ok_or("session vanished")?;
        self.loads.fetch_add(1, Relaxed);
        Ok(())
    }

    fn counts(&self) -> Counts {
        Counts {
            loads: self.loads.load(Relaxed),
            backend_loads: self.backend_loads.load(Relaxed),
            ..Counts::default()
        }
    }
}

/// The mixed workload: every session in a rhythm, loaded once per `period` (the staleness
/// bound divided by the loads per bound it should get), one request in ten followed by a
/// `save` of a changed value.
///
/// A cycle therefore cannot just take the next session, as the other workloads do: how many
/// sessions a task can keep in its rhythm depends on how fast the contender serves them (and,
/// through the hit ratio, on the rhythm itself). So each task keeps a rotation of its own
/// sessions, earliest due first. It serves the first if it is due; if none is due, it is ahead,
/// and takes a new session into the rotation; one it has fallen behind on by more than a
/// quarter period (a stall, or the gap between two rounds) leaves the rotation. The rotation
/// thus holds as many sessions as the task can serve at that rhythm, and the load count is
/// closed-loop as in every other workload. Only when every session of the task is in the
/// rotation does it wait for the first to be due (counted: the throughput is then capped by
/// the sessions prepared, not by the contender).
pub(crate) struct Mixed {
    store: Arc<dyn Store>,
    ids: Arc<[Id]>,
    period: Duration,
    settle: Duration,
    /// The loads that reached the durable store, behind a tier; `None`: every load does.
    backend_loads: Option<Arc<AtomicU64>>,
    rotations: Vec<Mutex<Rotation>>,
    loads: AtomicU64,
    intervals: AtomicU64,
    interval_ns: AtomicU64,
    waits: AtomicU64,
}

/// One task's sessions.
struct Rotation {
    /// In the rhythm, earliest due first (each is due a period after its last load began,
    /// so pushing at the back keeps the order).
    due: VecDeque<Due>,
    /// Out of it: the slots to take in next, last first.
    idle: Vec<usize>,
    requests: u64,
}

struct Due {
    at: Instant,
    slot: usize,
    /// When its last load began.
    last: Instant,
}

/// What a task does next.
enum Next {
    Serve {
        slot: usize,
        last: Option<Instant>,
        save: bool,
    },
    Wait(Instant),
}

impl Mixed {
    /// `tasks` tasks, each over its share of `ids` (task `t`: `t`, `t + tasks`, ...), loading
    /// each session in its rotation once per `period`; `settle` before each measured run.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        backend_loads: Option<Arc<AtomicU64>>,
        ids: Arc<[Id]>,
        tasks: usize,
        period: Duration,
        settle: Duration,
    ) -> Self {
        let rotations = (0..tasks)
            .map(|t| {
                Mutex::new(Rotation {
                    due: VecDeque::new(),
                    idle: (t..ids.len()).step_by(tasks).rev().collect(),
                    requests: 0,
                })
            })
            .collect();
        Self {
            store,
            ids,
            period,
            settle,
            backend_loads,
            rotations,
            loads: AtomicU64::new(0),
            intervals: AtomicU64::new(0),
            interval_ns: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        }
    }

    fn next(&self, rotation: &Mutex<Rotation>) -> Res<Next> {
        let mut r = rotation.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while let Some(first) = r.due.front()
            && now > first.at + self.period / 4
        {
            let slot = first.slot;
            r.due.pop_front();
            r.idle.push(slot);
        }
        let save = r.requests % 10 == 9;
        let first = r.due.front().map(|d| (d.at, d.slot, d.last));
        let next = match first {
            Some((at, slot, last)) if at <= now => {
                r.due.pop_front();
                Next::Serve {
                    slot,
                    last: Some(last),
                    save,
                }
            }
            first => match r.idle.pop() {
                Some(slot) => Next::Serve {
                    slot,
                    last: None,
                    save,
                },
                None => Next::Wait(first.ok_or("a task without sessions")?.0),
            },
        };
        if matches!(next, Next::Serve { .. }) {
            r.requests += 1;
        }
        Ok(next)
    }
}

#[async_trait]
impl Subject for Mixed {
    fn sessions(&self) -> usize {
        self.ids.len()
    }

    fn supports(&self, workload: Workload) -> bool {
        workload == Workload::Mixed
    }

    async fn cycle(&self, _: Workload, task: usize, _slot: usize, n: u64) -> Res {
        let rotation = self.rotations.get(task).ok_or_else(|| {
            format!(
                "the mixed workload was prepared for {} tasks",
                self.rotations.len()
            )
        })?;
        let (slot, last, save) = loop {
            match self.next(rotation)? {
                Next::Serve { slot, last, save } => break (slot, last, save),
                Next::Wait(at) => {
                    self.waits.fetch_add(1, Relaxed);
                    tokio::time::sleep_until(at.into()).await;
                }
            }
        };
        let start = Instant::now();
        if let Some(last) = last {
            let interval = u64::try_from((start - last).as_nanos()).unwrap_or(u64::MAX);
            self.intervals.fetch_add(1, Relaxed);
            self.interval_ns.fetch_add(interval, Relaxed);
        }
        let id = &self.ids[slot];
        let mut record = self.store.load(id).await?.ok_or("session vanished")?;
        self.loads.fetch_add(1, Relaxed);
        if save {
            record.data.insert(payload::COUNTER, &n)?;
            self.store.save(&record).await?;
        }
        let mut r = rotation.lock().unwrap_or_else(PoisonError::into_inner);
        r.due.push_back(Due {
            at: start + self.period,
            slot,
            last: start,
        });
        Ok(())
    }

    fn settle(&self) -> Duration {
        self.settle
    }

    fn counts(&self) -> Counts {
        let loads = self.loads.load(Relaxed);
        Counts {
            loads,
            backend_loads: self
                .backend_loads
                .as_ref()
                .map_or(loads, |b| b.load(Relaxed)),
            intervals: self.intervals.load(Relaxed),
            interval_ns: self.interval_ns.load(Relaxed),
            waits: self.waits.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use session_memory::MemoryStore;

    use super::*;
    use crate::harness::{Contender, Role, run};
    use crate::subjects::ours::create;

    async fn sessions(store: &Arc<dyn Store>, n: usize) -> Arc<[Id]> {
        create(store, n, 256)
            .await
            .expect("sessions are created")
            .into()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hits_never_reach_the_durable_store_and_misses_always_do() {
        let durable: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let ids = sessions(&durable, 320).await;
        let hits = CachedLoads::hits(Arc::clone(&durable), Arc::clone(&ids))
            .await
            .expect("the tier is warmed");
        let misses = CachedLoads::misses(durable, ids).expect("a tier");
        for (subject, workload, expected) in
            [(hits, Workload::Hit, 1.0), (misses, Workload::Miss, 0.0)]
        {
            assert!(subject.supports(workload));
            let c = Contender::new("tier", Role::Cached, subject);
            let run = run(&c, workload, 4, Duration::from_millis(50))
                .await
                .expect("loads succeed");
            assert_eq!(run.counts.loads, run.cycles, "{workload:?}");
            let ratio = run.counts.hit_ratio().expect("loads were counted");
            assert!(
                (ratio - expected).abs() < 0.01,
                "{workload:?}: hit ratio {ratio}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_mixed_rhythm_loads_each_session_once_per_period_and_saves_one_in_ten() {
        let durable: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let ids = sessions(&durable, 2_000).await;
        let period = Duration::from_millis(20);
        let (store, misses) = tier(Arc::clone(&durable), 4 * period, 10_000).expect("a tier");
        let mixed = Mixed::new(store, Some(misses), Arc::clone(&ids), 2, period, 4 * period);
        let c = Contender::new("tier", Role::Cached, mixed);
        run(&c, Workload::Mixed, 2, c.subject.settle())
            .await
            .expect("settles");
        let r = run(&c, Workload::Mixed, 2, Duration::from_millis(200))
            .await
            .expect("runs");
        let interval = r
            .counts
            .mean_interval()
            .expect("sessions were loaded again");
        // A session late by more than a quarter period leaves the rotation, so only a task
        // stalled between picking a session and loading it stretches an interval further; the
        // margin is for a busy machine.
        assert!(
            interval >= period && interval < period * 2,
            "a session's loads are {interval:?} apart, the period is {period:?}"
        );
        // Four loads per bound: the first of each bound misses (the copy is a bound old), the
        // others hit, but for the load after each save (one request in ten), which misses as
        // well: about 0.65. Never above 3/4, which only a copy served past its bound gives; the
        // lower margin is for a busy machine, where late sessions leave and come back cold.
        let hit_ratio = r.counts.hit_ratio().expect("loads were counted");
        assert!((0.25..=0.76).contains(&hit_ratio), "hit ratio {hit_ratio}");
        // Each task saves on its 10th, 20th, ... request; a save bumps the version by one.
        let mut saves = 0;
        for id in ids.iter() {
            saves += durable
                .load(id)
                .await
                .expect("loads")
                .expect("live")
                .version;
        }
        let loads = c.subject.counts().loads;
        assert!(
            ((loads / 10).saturating_sub(2)..=loads / 10).contains(&saves),
            "{saves} saves in {loads} requests"
        );
    }
}
