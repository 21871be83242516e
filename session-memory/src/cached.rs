//! `CachedStore`: a moka tier in front of a durable store, whose reads are at most a bounded
//! time stale.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use session_core::{Clock, Error, ExpiredDeletion, Id, Principals, Record, Result, Store};
use time::OffsetDateTime;

/// Stripes of write counters: a load populates the cache only if no write to an id of its
/// stripe finished while it read the durable store. More stripes make that rarer.
const STRIPES: usize = 256;

/// A read-through cache tier in front of a durable [`Store`], for read-heavy apps.
///
/// `load` answers from an in-process moka cache when it can, and otherwise from the durable
/// store, whose answer it caches; every write goes to the durable store, which keeps deciding
/// everything (the conditional `save`, expiry, principals). A cached session is served for at
/// most [`max_staleness`](Self::max_staleness) after the durable read that fetched it began, so
/// a session destroyed or revoked on any app server stops being served on this one within that
/// bound; on this server itself, a write or revocation through this handle (or a clone) is seen
/// at once. See the [crate documentation](crate#a-cache-tier-cachedstore) for the choice of
/// mechanism.
///
/// Cheap to clone when `S` is: clones share the cache.
#[derive(Clone)]
pub struct CachedStore<S> {
    inner: S,
    cache: Cache<Id, Cached>,
    /// Bumped after every write of an id of the stripe, see [`STRIPES`].
    stripes: Arc<[AtomicU64]>,
    /// Bumped after every revocation: an entry read under an older generation is not served.
    generation: Arc<AtomicU64>,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    max_staleness: Duration,
}

impl<S: fmt::Debug> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.inner)
            .field("entries", &self.cache.entry_count())
            .field("max_capacity", &self.max_capacity())
            .field("max_staleness", &self.max_staleness)
            .field("clock", &self.clock)
            .finish()
    }
}

/// One cached session.
#[derive(Clone)]
struct Cached {
    record: Record,
    /// When the durable read that fetched it began, plus the staleness bound: never served at
    /// or after this instant.
    deadline: Instant,
    /// The revocation generation when that read began.
    generation: u64,
    /// How long moka keeps the entry from this write: to the deadline, or to the record's
    /// expiry by the app's clock if that comes first.
    ttl: Duration,
}

impl Cached {
    fn ttl(deadline: Instant, record: &Record, now: OffsetDateTime) -> Duration {
        let until_expiry = (record.expires_at - now)
            .try_into()
            .unwrap_or(Duration::ZERO);
        deadline
            .saturating_duration_since(Instant::now())
            .min(until_expiry)
    }
}

struct CachedExpiry;

impl Expiry<Id, Cached> for CachedExpiry {
    fn expire_after_create(&self, _: &Id, entry: &Cached, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &Id,
        entry: &Cached,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

fn cache(max_capacity: u64) -> Cache<Id, Cached> {
    Cache::builder()
        .max_capacity(max_capacity)
        .eviction_policy(EvictionPolicy::lru())
        .expire_after(CachedExpiry)
        .build()
}

impl<S: Store> CachedStore<S> {
    /// The default staleness bound: 1 second.
    pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(1);
    /// The default capacity: 100,000 sessions.
    pub const DEFAULT_MAX_CAPACITY: u64 = 100_000;

    /// A cache tier in front of `inner`, holding at most [`Self::DEFAULT_MAX_CAPACITY`]
    /// sessions, each for at most [`Self::DEFAULT_MAX_STALENESS`].
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            cache: cache(Self::DEFAULT_MAX_CAPACITY),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            generation: Arc::new(AtomicU64::new(0)),
            hasher: RandomState::new(),
            clock: session_core::clock::system(),
            max_staleness: Self::DEFAULT_MAX_STALENESS,
        }
    }

    /// Serves a cached session for at most `max_staleness` after the durable read that
    /// fetched it began (default [`Self::DEFAULT_MAX_STALENESS`]).
    ///
    /// This is the longest a session destroyed, revoked, expired early or changed on another
    /// app server can still be served by this one, and the longest a request here can read
    /// data older than what another server saved. Longer bounds serve more loads from memory.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for zero, which would cache nothing.
    pub fn with_max_staleness(mut self, max_staleness: Duration) -> Result<Self> {
        if max_staleness.is_zero() {
            return Err(Error::invalid_config(
                "a cache tier's max_staleness must be greater than zero: a zero bound caches \
                 nothing",
            ));
        }
        self.max_staleness = max_staleness;
        Ok(self)
    }

    /// Holds at most `max_capacity` sessions (default [`Self::DEFAULT_MAX_CAPACITY`]),
    /// evicting the least recently used. Call it before cloning: it starts a new, empty cache.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for zero, which would cache nothing.
    pub fn with_max_capacity(mut self, max_capacity: u64) -> Result<Self> {
        if max_capacity == 0 {
            return Err(Error::invalid_config(
                "a cache tier's max_capacity must be at least 1: a zero capacity caches nothing",
            ));
        }
        self.cache = cache(max_capacity);
        Ok(self)
    }

    /// Uses `clock` instead of the system clock to cut a cached entry's life at its record's
    /// `expires_at`. The durable store's clock still decides expiry: the cache never answers
    /// "expired" by itself, it asks the durable store.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

impl<S> CachedStore<S> {
    /// The staleness bound.
    #[must_use]
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// The largest number of sessions the cache keeps.
    #[must_use]
    pub fn max_capacity(&self) -> u64 {
        self.cache.policy().max_capacity().unwrap_or(u64::MAX)
    }

    /// The durable store behind the cache.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The number of cached sessions (an estimate, as moka's).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    fn stripe(&self, id: &Id) -> &AtomicU64 {
        // `STRIPES` divides 2^64, so the reduction is uniform; the cast keeps the low bits.
        let i = (self.hasher.hash_one(id) % STRIPES as u64) as usize;
        &self.stripes[i]
    }

    /// After a write of `id` to the durable store: keeps loads of `id` that read before the
    /// write from caching what they read, and drops the cached copy.
    ///
    /// The bump comes before the removal, and both the removal and a load's insertion run
    /// inside moka's per-key `and_compute_with`: either the load's insertion runs first and the
    /// removal drops it, or it runs after the bump and sees it.
    async fn evict(&self, id: &Id) {
        self.stripe(id).fetch_add(1, Ordering::SeqCst);
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                std::future::ready(if existing.is_some() {
                    Op::Remove
                } else {
                    Op::Nop
                })
            })
            .await;
    }

    /// After a revocation: no entry read before it is served again. Revocations are rare and
    /// may name ids this tier does not key by (e.g. the at-rest ids of a hashing store
    /// behind it), so they retire the whole cache rather than look for the right entries.
    fn retire_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl<S: Store> CachedStore<S> {
    fn inner_principals(&self) -> Result<&dyn Principals> {
        self.inner.principals().ok_or_else(|| {
            Error::invalid_config(
                "the store behind this cache tier does not keep the sessions of a principal",
            )
        })
    }
}

#[async_trait]
impl<S: Store> Store for CachedStore<S> {
    fn principals(&self) -> Option<&dyn Principals> {
        self.inner.principals().map(|_| self as &dyn Principals)
    }

    async fn create(&self, record: &Record) -> Result<()> {
        let outcome = self.inner.create(record).await;
        self.evict(&record.id).await;
        outcome
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(cached) = self.cache.get(id).await
            && cached.generation == generation
            && Instant::now() < cached.deadline
            // Expired by the app's clock: let the durable store's clock decide.
            && !cached.record.is_expired_at(self.clock.now())
        {
            return Ok(Some(cached.record));
        }
        let stripe = self.stripe(id);
        let epoch = stripe.load(Ordering::SeqCst);
        let deadline = Instant::now() + self.max_staleness;
        let loaded = self.inner.load(id).await?;
        let Some(record) = &loaded else {
            return Ok(None);
        };
        let ttl = Cached::ttl(deadline, record, self.clock.now());
        if !ttl.is_zero() {
            let cached = Cached {
                record: record.clone(),
                deadline,
                generation,
                ttl,
            };
            self.cache
                .entry_by_ref(id)
                .and_compute_with(|_| {
                    std::future::ready(if stripe.load(Ordering::SeqCst) == epoch {
                        Op::Put(cached)
                    } else {
                        Op::Nop
                    })
                })
                .await;
        }
        Ok(loaded)
    }

    async fn save(&self, record: &Record) -> Result<()> {
        // Whatever the outcome (saved, `Conflict`, `NotFound`, a failure that may or may not
        // have written), the cached copy is no longer the durable one: the next load, e.g. the
        // middleware's reload after a conflict, reads the durable store.
        let outcome = self.inner.save(record).await;
        self.evict(&record.id).await;
        outcome
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let outcome = self.inner.touch(id, expires_at).await;
        self.stripe(id).fetch_add(1, Ordering::SeqCst);
        let now = self.clock.now();
        let touched = matches!(outcome, Ok(true)) && expires_at > now;
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                let op = match existing {
                    // A touch changes the expiry alone: keep serving the cached data (rolling
                    // sessions touch on every request), within the same deadline.
                    Some(e) if touched => {
                        let mut cached = e.into_value();
                        cached.record.expires_at = expires_at;
                        cached.ttl = Cached::ttl(cached.deadline, &cached.record, now);
                        if cached.ttl.is_zero() {
                            Op::Remove
                        } else {
                            Op::Put(cached)
                        }
                    }
                    Some(_) => Op::Remove,
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        outcome
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let outcome = self.inner.delete(id).await;
        self.evict(id).await;
        outcome
    }
}

/// Listing and revocation go to the durable store; a revocation also retires what this tier
/// has cached. Callable when the durable store keeps principals ([`Store::principals`] says
/// so); otherwise every method fails with [`Error::InvalidConfig`].
#[async_trait]
impl<S: Store> Principals for CachedStore<S> {
    async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>> {
        self.inner_principals()?.sessions_of(principal).await
    }

    async fn revoke(&self, principal: &str, id: &Id) -> Result<bool> {
        let outcome = self.inner_principals()?.revoke(principal, id).await;
        self.retire_all();
        self.evict(id).await;
        outcome
    }

    async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64> {
        let outcome = self.inner_principals()?.revoke_all(principal, keep).await;
        self.retire_all();
        outcome
    }
}

/// Forwards to the durable store: the cache never serves an entry past its record's expiry
/// by the app's clock, so removing expired records needs nothing from it.
#[async_trait]
impl<S: Store + ExpiredDeletion> ExpiredDeletion for CachedStore<S> {
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        self.inner.delete_expired_batch(limit).await
    }

    async fn delete_expired(&self) -> Result<u64> {
        self.inner.delete_expired().await
    }
}
