//! The cache tier over a `MemoryStore` as the durable store: the conformance suite, the
//! staleness bound across two app servers, what it serves from memory and what it evicts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::{BOUND, loads, sample};
use session_core::{Error, ExpiredDeletion, Id, Principals, Record, Result, Store};
use session_memory::{CachedStore, MemoryStore};
use time::OffsetDateTime;

/// The suite, through a cache tier (default bound) in front of a memory store.
mod conformance {
    use super::*;

    async fn setup() -> (CachedStore<MemoryStore>, ()) {
        (CachedStore::new(MemoryStore::new()), ())
    }

    session_conformance::store_tests!(setup);
    session_conformance::principal_tests!(setup);
}

/// Two app servers, each with its own cache tier, over one durable store.
fn two_servers() -> (CachedStore<MemoryStore>, CachedStore<MemoryStore>) {
    let durable = MemoryStore::new();
    let tier = |store: MemoryStore| {
        CachedStore::new(store)
            .with_max_staleness(BOUND)
            .expect("a non-zero bound")
    };
    (tier(durable.clone()), tier(durable))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_seen_everywhere_within_the_bound() {
    let (a, b) = two_servers();
    common::delete_is_seen_everywhere_within_the_bound(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_seen_everywhere_within_the_bound() {
    let (a, b) = two_servers();
    common::revocation_is_seen_everywhere_within_the_bound(&a, &b).await;
}

/// A durable store that counts the loads it answers; it keeps principals only if asked to.
struct Counting {
    inner: MemoryStore,
    loads: AtomicUsize,
    principals: bool,
}

impl Counting {
    fn new(principals: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            loads: AtomicUsize::new(0),
            principals,
        })
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for Counting {
    fn principals(&self) -> Option<&dyn Principals> {
        if self.principals {
            self.inner.principals()
        } else {
            None
        }
    }
    async fn create(&self, record: &Record) -> Result<()> {
        self.inner.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
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

/// Within the bound, loads of a session are answered from memory; once it has passed, the
/// next load reads the durable store again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_are_served_from_memory_within_the_bound() {
    let durable = Counting::new(true);
    let tier = CachedStore::new(durable.clone())
        .with_max_staleness(BOUND)
        .expect("bound");
    let record = sample(None);
    tier.create(&record).await.expect("create");
    for _ in 0..10 {
        assert_eq!(loads(&tier, &record.id).await.as_ref(), Some(&record));
    }
    assert_eq!(durable.loads(), 1, "ten loads, one durable read");
    tokio::time::sleep(BOUND + Duration::from_millis(100)).await;
    assert_eq!(loads(&tier, &record.id).await.as_ref(), Some(&record));
    assert_eq!(durable.loads(), 2, "the bound passed: read again");
    // An unknown id is not cached: a session created later elsewhere is found at once.
    let later = sample(None);
    assert!(loads(&tier, &later.id).await.is_none());
    durable
        .create(&later)
        .await
        .expect("create on another server");
    assert!(
        loads(&tier, &later.id).await.is_some(),
        "absence is not cached"
    );
}

/// A `touch` keeps the cached copy (rolling sessions touch on every request) with its new
/// expiry; a `save` or a `delete` drops it, so the next load reads the durable store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_keeps_and_writes_drop_the_cached_copy() {
    let durable = Counting::new(true);
    let tier = CachedStore::new(durable.clone());
    let mut record = sample(None);
    tier.create(&record).await.expect("create");
    loads(&tier, &record.id).await;
    assert_eq!(durable.loads(), 1);

    let later = record.expires_at + time::Duration::minutes(5);
    assert!(tier.touch(&record.id, later).await.expect("touch"));
    let loaded = loads(&tier, &record.id).await.expect("live");
    assert_eq!(durable.loads(), 1, "served from memory after a touch");
    assert_eq!(loaded.expires_at, later, "with the touched expiry");

    record.expires_at = later;
    record.data.insert("user", &"grace").expect("encode");
    tier.save(&record).await.expect("save");
    let loaded = loads(&tier, &record.id).await.expect("live");
    assert_eq!(
        durable.loads(),
        2,
        "read from the durable store after a save"
    );
    assert_eq!(loaded.version, 1);
    assert_eq!(
        loaded
            .data
            .get::<String>("user")
            .expect("decode")
            .as_deref(),
        Some("grace")
    );

    assert!(
        tier.touch(
            &record.id,
            OffsetDateTime::now_utc() - time::Duration::hours(1)
        )
        .await
        .expect("touch"),
        "touch into the past of a live session"
    );
    assert!(
        loads(&tier, &record.id).await.is_none(),
        "touched into the past: gone"
    );
    tier.delete(&record.id).await.expect("delete");
}

/// A save that conflicts, because another server saved first, drops the stale cached copy:
/// the middleware's reload then reads the durable record, and its retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_drops_the_stale_copy() {
    let (a, b) = two_servers();
    let record = sample(None);
    a.create(&record).await.expect("create");
    let mut on_a = loads(&a, &record.id).await.expect("live");
    let mut on_b = loads(&b, &record.id).await.expect("live");
    on_b.data.insert("cart", &["tea"]).expect("encode");
    b.save(&on_b).await.expect("b saves first");

    on_a.data.insert("user", &"grace").expect("encode");
    let outcome = a.save(&on_a).await;
    assert!(matches!(outcome, Err(Error::Conflict)), "{outcome:?}");
    let reloaded = loads(&a, &record.id).await.expect("live");
    assert_eq!(
        reloaded.version, 1,
        "the reload reads the durable version, not the cached 0"
    );
    assert_eq!(
        reloaded.data.get::<Vec<String>>("cart").expect("decode"),
        Some(vec!["tea".to_owned()])
    );
    let mut retry = reloaded;
    retry.data.insert("user", &"grace").expect("encode");
    a.save(&retry).await.expect("the retry saves");
}

/// A save of a session another server deleted is `NotFound`, and drops the cached copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_drops_the_cached_copy() {
    let (a, b) = two_servers();
    let record = sample(None);
    a.create(&record).await.expect("create");
    let on_a = loads(&a, &record.id).await.expect("live");
    b.delete(&record.id).await.expect("delete on b");
    let outcome = a.save(&on_a).await;
    assert!(matches!(outcome, Err(Error::NotFound)), "{outcome:?}");
    assert!(
        loads(&a, &record.id).await.is_none(),
        "gone at once after NotFound"
    );
}

/// A revocation through the tier retires what it cached, also a session it keyed by another id
/// than the one revoked (as when a hashing store sits behind it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_retires_the_cached_copies() {
    let durable = MemoryStore::new();
    let tier = CachedStore::new(durable.clone());
    let principal = format!("ada-{}", Id::random().as_str());
    let record = sample(Some(&principal));
    tier.create(&record).await.expect("create");
    loads(&tier, &record.id).await.expect("live and cached");
    // Revoked on the durable store under the hood, then through the tier by an id it never
    // cached (nothing to revoke there): the tier still drops its copy.
    assert!(
        durable
            .revoke(&principal, &record.id)
            .await
            .expect("revoke")
    );
    assert!(
        !tier
            .revoke(&principal, &Id::random())
            .await
            .expect("revoke"),
        "an unknown id"
    );
    assert!(
        loads(&tier, &record.id).await.is_none(),
        "no copy survives a revocation"
    );
}

/// In front of a store that keeps no principals, the tier has none either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_follow_the_durable_store() {
    let with = CachedStore::new(Counting::new(true));
    assert!(with.principals().is_some());
    let without = CachedStore::new(Counting::new(false));
    assert!(without.principals().is_none());
    let outcome = without.sessions_of("ada").await;
    assert!(
        matches!(outcome, Err(Error::InvalidConfig(_))),
        "{outcome:?}"
    );
}

/// A durable store with cleanup: the tier forwards it.
struct Cleaning;

#[async_trait]
impl Store for Cleaning {
    async fn create(&self, _: &Record) -> Result<()> {
        Ok(())
    }
    async fn load(&self, _: &Id) -> Result<Option<Record>> {
        Ok(None)
    }
    async fn save(&self, _: &Record) -> Result<()> {
        Err(Error::NotFound)
    }
    async fn touch(&self, _: &Id, _: OffsetDateTime) -> Result<bool> {
        Ok(false)
    }
    async fn delete(&self, _: &Id) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for Cleaning {
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        Ok(u64::from(limit) / 2)
    }
}

#[tokio::test]
async fn cleanup_goes_to_the_durable_store() {
    let tier = CachedStore::new(Cleaning);
    assert_eq!(tier.delete_expired_batch(10).await.expect("cleanup"), 5);
}

#[test]
fn zero_settings_are_refused() {
    let zero = CachedStore::new(MemoryStore::new()).with_max_staleness(Duration::ZERO);
    assert!(matches!(zero, Err(Error::InvalidConfig(_))), "{zero:?}");
    let zero = CachedStore::new(MemoryStore::new()).with_max_capacity(0);
    assert!(matches!(zero, Err(Error::InvalidConfig(_))), "{zero:?}");
    let tier = CachedStore::new(MemoryStore::new())
        .with_max_capacity(7)
        .and_then(|t| t.with_max_staleness(Duration::from_millis(250)))
        .expect("valid settings");
    assert_eq!(tier.max_capacity(), 7);
    assert_eq!(tier.max_staleness(), Duration::from_millis(250));
    let default = CachedStore::new(MemoryStore::new());
    assert_eq!(
        default.max_staleness(),
        CachedStore::<MemoryStore>::DEFAULT_MAX_STALENESS
    );
    assert_eq!(
        default.max_capacity(),
        CachedStore::<MemoryStore>::DEFAULT_MAX_CAPACITY
    );
}
