//! `MemoryStore`: the cache, its entries and the `Store` operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use session_core::{
    Clock, Error, Id, Principals, Record, Result, Store, check_principal, check_version,
};
use time::OffsetDateTime;

use crate::index::PrincipalIndex;

/// An in-process session store on a bounded moka cache.
///
/// Cheap to clone: clones share the same cache. See the [crate documentation](crate) for the
/// eviction rule and the clock.
#[derive(Clone)]
pub struct MemoryStore {
    pub(crate) cache: Cache<Id, Entry>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Principal to the ids of its sessions (see [`PrincipalIndex`]).
    pub(crate) index: Arc<PrincipalIndex>,
    /// The last stamp drawn: every write of an entry draws the next one.
    stamps: Arc<AtomicU64>,
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
pub(crate) struct Entry {
    pub(crate) record: Record,
    /// How long moka keeps the entry after this write: the record's remaining lifetime by the
    /// clock of the store handle that wrote it. Kept with the record (rather than computed by
    /// the cache's `Expiry` from a clock of its own) so that every handle on the cache decides
    /// expiry with its own clock, and the cache never drops an entry that clock calls live.
    ttl: Duration,
    /// Drawn from the store's counter when this value was written; the index entry of a
    /// session with a principal carries the same stamp.
    pub(crate) stamp: u64,
}

impl Entry {
    fn new(record: Record, now: OffsetDateTime, stamp: u64) -> Self {
        // A negative remainder (already expired) does not convert: zero.
        let ttl = (record.expires_at - now)
            .try_into()
            .unwrap_or(Duration::ZERO);
        Self { record, ttl, stamp }
    }

    /// The index entry this value has, if its record has a principal.
    pub(crate) fn indexed(&self) -> Option<(String, u64)> {
        self.record.principal.clone().map(|p| (p, self.stamp))
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
        let index = Arc::new(PrincipalIndex::default());
        let listener_index = Arc::clone(&index);
        Self {
            cache: Cache::builder()
                .max_capacity(max_capacity)
                // LRU admits every new entry. moka's default, TinyLFU, may reject a new entry
                // once the cache is full, after `create` has already returned `Ok`.
                .eviction_policy(EvictionPolicy::lru())
                .expire_after(EntryExpiry)
                // Expired, evicted and removed values leave the index here. A replaced value
                // is not: the write that replaced it updates the index itself.
                .eviction_listener(move |id: Arc<Id>, entry: Entry, cause| {
                    if cause != RemovalCause::Replaced
                        && let Some(principal) = &entry.record.principal
                    {
                        listener_index.remove_if(principal, &id, entry.stamp);
                    }
                })
                .build(),
            clock: session_core::clock::system(),
            index,
            stamps: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A stamp no write has drawn before.
    fn next_stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Puts `record` in the index under a new stamp, and returns the entry to cache.
    ///
    /// Called inside the write's `and_compute_with`, so that writes of one id reach the index
    /// in the order they reach the cache. Adding before the cache write (and removing the
    /// replaced value's entry after it, see [`Self::unindex`]) errs towards an index entry too
    /// many, which listing re-checks and prunes, and never towards a live session missing from
    /// it, even if the caller drops the future half-way.
    fn indexed_entry(&self, record: Record, now: OffsetDateTime) -> Entry {
        let entry = Entry::new(record, now, self.next_stamp());
        if let Some(principal) = &entry.record.principal {
            self.index.add(principal, &entry.record.id, entry.stamp);
        }
        entry
    }

    /// Removes the index entry of a value that a write replaced or removed.
    pub(crate) fn unindex(&self, id: &Id, replaced: Option<(String, u64)>) {
        if let Some((principal, stamp)) = replaced {
            self.index.remove_if(&principal, id, stamp);
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

    /// The number of entries in the index of principals, over all principals: sessions with a
    /// principal, plus those removed so recently that the cache has not yet reported it.
    ///
    /// For monitoring and tests: after [`run_pending_tasks`](Self::run_pending_tasks) it is the
    /// number of cached sessions that have a principal.
    #[must_use]
    pub fn index_len(&self) -> usize {
        self.index.len()
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
    fn principals(&self) -> Option<&dyn Principals> {
        Some(self)
    }

    async fn create(&self, record: &Record) -> Result<()> {
        check_version(record.version)?;
        if let Some(principal) = &record.principal {
            check_principal(principal)?;
        }
        let now = self.clock.now();
        let mut outcome = Ok(());
        let mut replaced = None;
        self.cache
            .entry_by_ref(&record.id)
            .and_compute_with(|existing| {
                let live = existing
                    .as_ref()
                    .is_some_and(|e| !e.value().record.is_expired_at(now));
                let op = if live {
                    outcome = Err(Error::AlreadyExists);
                    Op::Nop
                } else {
                    replaced = existing.and_then(|e| e.value().indexed());
                    if record.is_expired_at(now) {
                        // Never store what is already dead; clear an expired leftover.
                        Op::Remove
                    } else {
                        Op::Put(self.indexed_entry(record.clone(), now))
                    }
                };
                std::future::ready(op)
            })
            .await;
        self.unindex(&record.id, replaced);
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
        if let Some(principal) = &record.principal {
            check_principal(principal)?;
        }
        let now = self.clock.now();
        let mut outcome = Ok(());
        let mut replaced = None;
        self.cache
            .entry_by_ref(&record.id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if !e.value().record.is_expired_at(now) => {
                        let stored = &e.value().record;
                        if stored.version != record.version {
                            outcome = Err(Error::Conflict);
                            Op::Nop
                        } else {
                            replaced = e.value().indexed();
                            if record.is_expired_at(now) {
                                Op::Remove
                            } else {
                                let mut next = record.clone();
                                next.created_at = stored.created_at;
                                next.version = next_version;
                                Op::Put(self.indexed_entry(next, now))
                            }
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
        self.unindex(&record.id, replaced);
        outcome
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let now = self.clock.now();
        let mut found = false;
        let mut replaced = None;
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if !e.value().record.is_expired_at(now) => {
                        found = true;
                        replaced = e.value().indexed();
                        if expires_at <= now {
                            Op::Remove
                        } else {
                            let mut next = e.into_value().record;
                            next.expires_at = expires_at;
                            Op::Put(self.indexed_entry(next, now))
                        }
                    }
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        self.unindex(id, replaced);
        Ok(found)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let mut replaced = None;
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) => {
                        replaced = e.value().indexed();
                        Op::Remove
                    }
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        self.unindex(id, replaced);
        Ok(())
    }
}
