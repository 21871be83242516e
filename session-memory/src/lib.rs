#![doc = include_str!("../README.md")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use session_core::{Clock, Error, Id, Record, Result, Store, check_version};
use time::OffsetDateTime;

/// An in-process session store on a bounded moka cache.
///
/// Cheap to clone: clones share the same cache. See the [crate documentation](crate) for the
/// eviction rule and the clock.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<Id, Entry>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .field("max_capacity", &self.max_capacity())
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// What the cache holds for one session.
#[derive(Clone)]
struct Entry {
    record: Record,
    /// How long moka keeps the entry after this write: the record's remaining lifetime by the
    /// clock of the store handle that wrote it. Kept with the record (rather than computed by
    /// the cache's `Expiry` from a clock of its own) so that every handle on the cache decides
    /// expiry with its own clock, and the cache never drops an entry that clock calls live.
    ttl: Duration,
}

impl Entry {
    fn new(record: Record, now: OffsetDateTime) -> Self {
        // A negative remainder (already expired) does not convert: zero.
        let ttl = (record.expires_at - now)
            .try_into()
            .unwrap_or(Duration::ZERO);
        Self { record, ttl }
    }
}

/// Expires each entry after the lifetime its writer computed.
struct EntryExpiry;

impl Expiry<Id, Entry> for EntryExpiry {
    fn expire_after_create(&self, _: &Id, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &Id,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl MemoryStore {
    /// The default capacity: 100,000 sessions.
    pub const DEFAULT_MAX_CAPACITY: u64 = 100_000;

    /// A store holding at most [`Self::DEFAULT_MAX_CAPACITY`] sessions, on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::build(Self::DEFAULT_MAX_CAPACITY)
    }

    /// A store holding at most `max_capacity` sessions, on the system clock.
    ///
    /// When it is full, the least recently used sessions are evicted, live or not (see the
    /// [crate documentation](crate)): size it for your peak.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a capacity of zero, which would drop every session.
    pub fn with_max_capacity(max_capacity: u64) -> Result<Self> {
        if max_capacity == 0 {
            return Err(Error::invalid_config(
                "a memory store's max_capacity must be at least 1: a zero capacity drops every \
                 session it accepts",
            ));
        }
        Ok(Self::build(max_capacity))
    }

    fn build(max_capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(max_capacity)
                // LRU admits every new entry. moka's default, TinyLFU, may reject a new entry
                // once the cache is full, after `create` has already returned `Ok`.
                .eviction_policy(EvictionPolicy::lru())
                .expire_after(EntryExpiry)
                .build(),
            clock: session_core::clock::system(),
        }
    }

    /// Decides expiry with `clock` instead of the system clock (default
    /// [`SystemClock`](session_core::SystemClock)), e.g. an
    /// [`OffsetClock`](session_core::clock::OffsetClock) in tests.
    ///
    /// The memory store has no clock of its own, so this clock decides everything: whether a
    /// record is expired in `load`, `create`, `save` and `touch`, and how long the cache keeps
    /// each entry. The returned store shares the cache with `self` and its clones.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The largest number of sessions the store keeps.
    #[must_use]
    pub fn max_capacity(&self) -> u64 {
        // Always set by `build`.
        self.cache.policy().max_capacity().unwrap_or(u64::MAX)
    }

    /// The number of entries, including expired ones not yet evicted (an estimate, as moka's:
    /// exact after [`run_pending_tasks`](Self::run_pending_tasks)).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Runs the cache's pending maintenance now: records recent uses, removes expired
    /// entries, then evicts the least recently used ones down to the capacity.
    ///
    /// The cache does this by itself, in batches, as operations arrive; call this when you need
    /// an exact [`entry_count`](Self::entry_count), e.g. in tests.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create(&self, record: &Record) -> Result<()> {
        check_version(record.version)?;
        let now = self.clock.now();
        let mut outcome = Ok(());
        self.cache
            .entry_by_ref(&record.id)
            .and_compute_with(|existing| {
                let live = existing.is_some_and(|e| !e.value().record.is_expired_at(now));
                let op = if live {
                    outcome = Err(Error::AlreadyExists);
                    Op::Nop
                } else if record.is_expired_at(now) {
                    // Never store what is already dead; clear an expired leftover.
                    Op::Remove
                } else {
                    Op::Put(Entry::new(record.clone(), now))
                };
                std::future::ready(op)
            })
            .await;
        outcome
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(entry) = self.cache.get(id).await else {
            return Ok(None);
        };
        if entry.record.is_expired_at(self.clock.now()) {
            return Ok(None);
        }
        Ok(Some(entry.record))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let next_version = record.next_version()?;
        let now = self.clock.now();
        let mut outcome = Ok(());
        self.cache
            .entry_by_ref(&record.id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if !e.value().record.is_expired_at(now) => {
                        let stored = &e.value().record;
                        if stored.version != record.version {
                            outcome = Err(Error::Conflict);
                            Op::Nop
                        } else if record.is_expired_at(now) {
                            Op::Remove
                        } else {
                            let mut next = record.clone();
                            next.created_at = stored.created_at;
                            next.version = next_version;
                            Op::Put(Entry::new(next, now))
                        }
                    }
                    _ => {
                        outcome = Err(Error::NotFound);
                        Op::Nop
                    }
                };
                std::future::ready(op)
            })
            .await;
        outcome
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let now = self.clock.now();
        let mut found = false;
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if !e.value().record.is_expired_at(now) => {
                        found = true;
                        if expires_at <= now {
                            Op::Remove
                        } else {
                            let mut next = e.into_value().record;
                            next.expires_at = expires_at;
                            Op::Put(Entry::new(next, now))
                        }
                    }
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        Ok(found)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.cache.invalidate(id).await;
        Ok(())
    }
}

// The store is shared across tasks and used as `Arc<dyn Store>`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemoryStore>();
};
