//! What the cache tier's tests share: the staleness-bound checks, run over memory and Redis.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use session_core::{Id, Principals, Record, Store};
use session_memory::CachedStore;

pub const HOUR: time::Duration = time::Duration::hours(1);

/// The bound the tests set: long enough that a load right after a write on another server
/// surely still finds its cached copy, short enough to wait out.
pub const BOUND: Duration = Duration::from_millis(1500);

pub fn sample(principal: Option<&str>) -> Record {
    let mut record = Record::new(Id::random(), HOUR);
    record.data.insert("user", &"ada").expect("encode");
    record.principal = principal.map(str::to_owned);
    record
}

pub async fn loads(store: &dyn Store, id: &Id) -> Option<Record> {
    store.load(id).await.expect("load")
}

/// After `destroy` (a delete, a revocation) ran through `a` and returned at `done`, `b` (a
/// second app server's cache tier over the same durable store, which cached the session at
/// `cached_at` or just before) may still serve it, but only while a load starts before `cached_at + BOUND`
/// (which is before `done + BOUND`), and never once that has passed.
///
/// Also checks that `b` did serve it from memory right after `destroy`: else the test would
/// pass for a tier that caches nothing.
async fn watch_until_gone(b: &dyn Store, id: &Id, cached_at: Instant, done: Instant, what: &str) {
    let stale = b.load(id).await.expect("load");
    assert!(
        stale.is_some(),
        "right after {what} on the other server, the second server's cache tier still serves \
         its copy (cached {:?} before): it caches",
        done - cached_at
    );
    let mut last_served = None;
    loop {
        let started = Instant::now();
        let served = b.load(id).await.expect("load").is_some();
        if served {
            last_served = Some(started);
            assert!(
                started < cached_at + BOUND,
                "the second server served the session after {what} in a load that started \
                 {:?} after it cached the session ({:?} after {what} returned): over the bound \
                 of {BOUND:?}",
                started - cached_at,
                started - done
            );
        }
        if started > done + BOUND + Duration::from_millis(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last = last_served.map(|t| t - done);
    assert!(
        !served_now(b, id).await,
        "{what}: still served once the bound passed (last served {last:?} after it)"
    );
}

async fn served_now(b: &dyn Store, id: &Id) -> bool {
    b.load(id).await.expect("load").is_some()
}

/// A session deleted through one cache tier is not served by another over the same durable
/// store later than the bound after the delete returned.
pub async fn delete_is_seen_everywhere_within_the_bound<S: Store>(
    a: &CachedStore<S>,
    b: &CachedStore<S>,
) {
    let record = sample(None);
    a.create(&record).await.expect("create");
    assert!(
        loads(b, &record.id).await.is_some(),
        "live on the second server"
    );
    // After the load that cached it returned: no later than that load's durable read began.
    let cached_at = Instant::now();
    a.delete(&record.id).await.expect("delete");
    let done = Instant::now();
    assert!(
        loads(a, &record.id).await.is_none(),
        "the server that deleted it serves it no more, at once"
    );
    watch_until_gone(b, &record.id, cached_at, done, "a delete").await;
}

/// Sessions revoked with `revoke_all` through one cache tier are not served by another over
/// the same durable store later than the bound after it returned.
pub async fn revocation_is_seen_everywhere_within_the_bound<S: Store>(
    a: &CachedStore<S>,
    b: &CachedStore<S>,
) {
    let principal = format!("ada-{}", Id::random().as_str());
    let record = sample(Some(&principal));
    a.create(&record).await.expect("create");
    // Cached on both servers.
    assert!(
        loads(a, &record.id).await.is_some(),
        "live on the first server"
    );
    assert!(
        loads(b, &record.id).await.is_some(),
        "live on the second server"
    );
    let cached_at = Instant::now();
    let n = a.revoke_all(&principal, None).await.expect("revoke_all");
    let done = Instant::now();
    assert_eq!(n, 1, "revoke_all revoked the one session");
    assert!(
        loads(a, &record.id).await.is_none(),
        "the server that revoked it serves it no more, at once"
    );
    watch_until_gone(b, &record.id, cached_at, done, "revoke_all").await;
}
