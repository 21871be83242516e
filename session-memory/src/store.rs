//! `MemoryStore`: the cache, its entries and the `Store` operations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
    pub(crate) cache: Cache<Id, Arc<Slot>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Principal to the ids of its sessions (see [`PrincipalIndex`]).
    pub(crate) index: Arc<PrincipalIndex>,
    /// The last stamp drawn: every write that gives a session its principal draws the next one.
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

/// What the cache holds for one session: its current value behind a lock of its own.
///
/// `save` and `touch` change a live value in place under this lock (a lookup and a short
/// critical section, no write through the cache), so of concurrent writes of one id each sees
/// the one before it. Writes that must change what the cache holds (`create`, `delete`, the
/// revocations, and a `save` or `touch` that moves the expiry past what the cache was told)
/// run inside moka's per-key `and_compute_with` and take this lock there too.
pub(crate) struct Slot {
    /// `None` once the slot has left the cache (deleted, revoked, replaced by a `create` over
    /// an expired record, expired or evicted by the cache): a write that looked the slot up
    /// before that finds it empty and treats the id as absent, so it never writes to a value
    /// nobody can load again.
    value: Mutex<Option<Entry>>,
    /// How long the cache keeps the slot from its last insertion, in nanoseconds: what
    /// [`EntryExpiry`] tells moka. Set before every insertion.
    ttl_nanos: AtomicU64,
}

/// The current value of one session.
pub(crate) struct Entry {
    pub(crate) record: Record,
    /// Drawn from the store's counter when this value was given its principal; its index
    /// entry carries the same stamp. Unused (0) while the record has no principal.
    pub(crate) stamp: u64,
    /// Until when the cache keeps the slot at least, by this process's monotonic clock: a
    /// write whose record lives longer must tell the cache (through `and_compute_with`).
    kept_until: Instant,
}

impl Entry {
    /// The index entry this value has, if its record has a principal.
    pub(crate) fn indexed(&self) -> Option<(String, u64)> {
        self.record.principal.clone().map(|p| (p, self.stamp))
    }

    /// Whether the slot stays in the cache for as long as a record expiring at `expires_at`
    /// lives by `now`, so that the write can happen in place.
    fn keeps(&self, expires_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        Instant::now()
            .checked_add(remaining(expires_at, now))
            .is_some_and(|t| t <= self.kept_until)
    }
}

/// A record's remaining lifetime at `now`; zero if it has expired.
fn remaining(expires_at: OffsetDateTime, now: OffsetDateTime) -> Duration {
    (expires_at - now).try_into().unwrap_or(Duration::ZERO)
}

/// The longest extra time the cache keeps a slot past its record's expiry.
const MAX_SLACK: Duration = Duration::from_secs(60);

/// How long the cache keeps a slot whose record lives `remaining` more: that, plus a
/// sixteenth of it (at most [`MAX_SLACK`]), so that a rolling session whose expiry moves a
/// little on every request is written in place rather than through the cache, while an
/// expired session is dropped soon after its expiry.
fn cache_lifetime(remaining: Duration) -> Duration {
    remaining.saturating_add((remaining / 16).min(MAX_SLACK))
}

impl Slot {
    /// A slot holding `entry`, told to the cache to keep for `ttl`.
    fn new(entry: Entry, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            value: Mutex::new(Some(entry)),
            ttl_nanos: AtomicU64::new(nanos(ttl)),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Entry>> {
        // Every critical section leaves the value whole (they assign complete values), so a
        // panic while the lock was held cannot have left it half-changed.
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ttl(&self) -> Duration {
        Duration::from_nanos(self.ttl_nanos.load(Ordering::Relaxed))
    }
}

/// `ttl` from now by the monotonic clock; now itself if that is beyond what the platform's
/// `Instant` holds (the in-place writes then always go through the cache).
fn deadline(ttl: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(ttl).unwrap_or(now)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Expires each slot after the lifetime its last writer computed.
struct EntryExpiry;

impl Expiry<Id, Arc<Slot>> for EntryExpiry {
    fn expire_after_create(&self, _: &Id, slot: &Arc<Slot>, _: Instant) -> Option<Duration> {
        Some(slot.ttl())
    }

    fn expire_after_update(
        &self,
        _: &Id,
        slot: &Arc<Slot>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.ttl())
    }
}

/// What a write that goes through the cache does to a live record.
pub(crate) enum Write {
    /// Nothing.
    Keep,
    /// Replace the record; the slot is told to the cache again with its new lifetime.
    Replace(Record),
    /// Remove the session.
    Remove,
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
                // Expired and evicted slots are emptied here, so that a write that looked one
                // up before it left finds it gone, and leave the index. A replaced slot is
                // not touched: the write that replaced it (a `create` over an expired record,
                // or a write that put the same slot back with a new lifetime) does all that.
                .eviction_listener(move |id: Arc<Id>, slot: Arc<Slot>, cause| {
                    if cause != RemovalCause::Replaced
                        && let Some((principal, stamp)) =
                            slot.lock().take().and_then(|e| e.indexed())
                    {
                        listener_index.remove_if(&principal, &id, stamp);
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

    /// The value of a new slot holding `record`, put in the index under a new stamp if it has
    /// a principal, and the lifetime to tell the cache.
    ///
    /// Called inside the write's `and_compute_with`, so that writes of one id reach the index
    /// in the order they reach the cache. Adding before the cache write (and removing the
    /// replaced value's entry after it, see [`Self::unindex`]) errs towards an index entry too
    /// many, which listing re-checks and prunes, and never towards a live session missing from
    /// it, even if the caller drops the future half-way.
    fn new_entry(&self, record: Record, now: OffsetDateTime) -> (Entry, Duration) {
        let ttl = cache_lifetime(remaining(record.expires_at, now));
        let mut entry = Entry {
            record,
            stamp: 0,
            kept_until: deadline(ttl),
        };
        if let Some(principal) = &entry.record.principal {
            entry.stamp = self.next_stamp();
            self.index.add(principal, &entry.record.id, entry.stamp);
        }
        (entry, ttl)
    }

    /// Replaces a live entry's record by `next` in place, under the slot's lock, and keeps the
    /// index in step: a changed principal is indexed under a new stamp and the old index entry
    /// removed; an unchanged one keeps its entry and stamp (the slot is the same value).
    fn replace(&self, entry: &mut Entry, next: Record) {
        if next.principal != entry.record.principal {
            let old = entry.indexed();
            if let Some(principal) = &next.principal {
                entry.stamp = self.next_stamp();
                self.index.add(principal, &next.id, entry.stamp);
            }
            self.unindex(&next.id, old);
        }
        entry.record = next;
    }

    /// Removes the index entry of a value that a write replaced or removed.
    pub(crate) fn unindex(&self, id: &Id, replaced: Option<(String, u64)>) {
        if let Some((principal, stamp)) = replaced {
            self.index.remove_if(&principal, id, stamp);
        }
    }

    /// Applies `write` to the live entry of `id` inside `and_compute_with`, for the writes that
    /// change what the cache holds: `write` gets the entry (with the slot locked) and returns
    /// what to do with it and its own outcome. A replaced record's slot is told to the cache
    /// again with its new lifetime; a removed one is emptied and removed. Without a live entry
    /// (absent, emptied, or expired by `now`) `write` is not called and `absent` is returned.
    pub(crate) async fn write_through<T>(
        &self,
        id: &Id,
        now: OffsetDateTime,
        absent: T,
        write: impl FnOnce(&Entry) -> (Write, T),
    ) -> T {
        let mut outcome = absent;
        let mut removed = None;
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                let op = match &existing {
                    None => Op::Nop,
                    Some(e) => {
                        let slot = e.value();
                        let mut value = slot.lock();
                        match value.as_mut() {
                            Some(entry) if !entry.record.is_expired_at(now) => {
                                let (next, result) = write(entry);
                                outcome = result;
                                match next {
                                    Write::Keep => Op::Nop,
                                    Write::Remove => {
                                        removed = value.take().and_then(|e| e.indexed());
                                        Op::Remove
                                    }
                                    Write::Replace(next) => {
                                        let ttl = cache_lifetime(remaining(next.expires_at, now));
                                        entry.kept_until = deadline(ttl);
                                        slot.ttl_nanos.store(nanos(ttl), Ordering::Relaxed);
                                        self.replace(entry, next);
                                        Op::Put(Arc::clone(slot))
                                    }
                                }
                            }
                            _ => Op::Nop,
                        }
                    }
                };
                std::future::ready(op)
            })
            .await;
        self.unindex(id, removed);
        outcome
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

/// What a `save` or `touch` found under the slot's lock.
enum InPlace<T> {
    /// Done in place, with this outcome.
    Done(T),
    /// The record must be removed, or kept longer than the cache was told: the write goes
    /// through the cache.
    ThroughCache,
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
                let live = existing.as_ref().is_some_and(|e| {
                    let mut value = e.value().lock();
                    if value.as_ref().is_some_and(|v| !v.record.is_expired_at(now)) {
                        true
                    } else {
                        // An expired leftover: emptied, so that no write that looked it up
                        // earlier can change it, and replaced below.
                        replaced = value.take().and_then(|v| v.indexed());
                        false
                    }
                });
                let op = if live {
                    outcome = Err(Error::AlreadyExists);
                    Op::Nop
                } else if record.is_expired_at(now) {
                    // Never store what is already dead; clear an expired leftover.
                    Op::Remove
                } else {
                    let (entry, ttl) = self.new_entry(record.clone(), now);
                    Op::Put(Slot::new(entry, ttl))
                };
                std::future::ready(op)
            })
            .await;
        self.unindex(&record.id, replaced);
        outcome
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(slot) = self.cache.get(id).await else {
            return Ok(None);
        };
        let now = self.clock.now();
        Ok(slot
            .lock()
            .as_ref()
            .filter(|e| !e.record.is_expired_at(now))
            .map(|e| e.record.clone()))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let next_version = record.next_version()?;
        if let Some(principal) = &record.principal {
            check_principal(principal)?;
        }
        let now = self.clock.now();
        // The new value: the caller's record with the stored `created_at` and the next version.
        let next = |stored: &Record| {
            let mut next = record.clone();
            next.created_at = stored.created_at;
            next.version = next_version;
            next
        };
        let Some(slot) = self.cache.get(&record.id).await else {
            return Err(Error::NotFound);
        };
        let in_place = match slot.lock().as_mut() {
            Some(e) if !e.record.is_expired_at(now) => {
                if e.record.version != record.version {
                    InPlace::Done(Err(Error::Conflict))
                } else if record.is_expired_at(now) || !e.keeps(record.expires_at, now) {
                    InPlace::ThroughCache
                } else {
                    let next = next(&e.record);
                    self.replace(e, next);
                    InPlace::Done(Ok(()))
                }
            }
            _ => InPlace::Done(Err(Error::NotFound)),
        };
        match in_place {
            InPlace::Done(outcome) => outcome,
            InPlace::ThroughCache => {
                self.write_through(&record.id, now, Err(Error::NotFound), |e| {
                    if e.record.version != record.version {
                        (Write::Keep, Err(Error::Conflict))
                    } else if record.is_expired_at(now) {
                        (Write::Remove, Ok(()))
                    } else {
                        (Write::Replace(next(&e.record)), Ok(()))
                    }
                })
                .await
            }
        }
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let now = self.clock.now();
        let Some(slot) = self.cache.get(id).await else {
            return Ok(false);
        };
        let in_place = match slot.lock().as_mut() {
            Some(e) if !e.record.is_expired_at(now) => {
                if expires_at > now && e.keeps(expires_at, now) {
                    e.record.expires_at = expires_at;
                    InPlace::Done(true)
                } else {
                    InPlace::ThroughCache
                }
            }
            _ => InPlace::Done(false),
        };
        match in_place {
            InPlace::Done(found) => Ok(found),
            InPlace::ThroughCache => Ok(self
                .write_through(id, now, false, |e| {
                    if expires_at <= now {
                        (Write::Remove, true)
                    } else {
                        let mut next = e.record.clone();
                        next.expires_at = expires_at;
                        (Write::Replace(next), true)
                    }
                })
                .await),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let mut removed = None;
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) => {
                        removed = e.value().lock().take().and_then(|v| v.indexed());
                        Op::Remove
                    }
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        self.unindex(id, removed);
        Ok(())
    }
}
