//! The rules of `cleanup_tests!`: the contract of `session_core::ExpiredDeletion`.
//!
//! Each takes [`Hosts`] over an empty namespace, so the counts cleanup returns are exact. The
//! expired records had a real expiry of 1.5 seconds that the rule waited out: a store may drop
//! a record that is already expired when written, and these rules need the rows to be there.

use session_core::{Record, Store, now};
use time::Duration;

use crate::support::*;
use crate::{CleanupStore, Hosts};

/// The batch size the rules ask for: small, so that several batches are needed.
const BATCH: u32 = 10;

/// How many expired records the rules make: two and a half batches.
const EXPIRED: usize = 25;

/// Records that expire within [`SHORT_TTL`].
fn short_lived(n: usize) -> Vec<Record> {
    (0..n).map(|_| sample(SHORT_TTL)).collect()
}

/// Creates `records` (live ones) through `store`.
async fn create_all(store: &dyn Store, records: &[Record]) {
    for record in records {
        create_ok(store, record).await;
    }
}

/// Checks that every record in `records` still loads unchanged.
async fn all_load(store: &dyn Store, records: &[Record], context: &str) {
    for (i, record) in records.iter().enumerate() {
        match store.load(&record.id).await {
            Ok(Some(loaded)) => assert_same(&loaded, record, context),
            other => panic!(
                "{context}: live record #{i} (expires at {}, now {}) loaded as {other:?}",
                record.expires_at,
                now()
            ),
        }
    }
}

async fn batch(store: &dyn CleanupStore, limit: u32) -> u64 {
    match store.delete_expired_batch(limit).await {
        Ok(n) => n,
        Err(e) => panic!("delete_expired_batch({limit}) failed: {e} ({e:?})"),
    }
}

/// Batches of `delete_expired_batch` repeated until one deletes less than its limit remove
/// every expired record: they delete exactly as many as expired, and a further batch finds
/// nothing.
pub async fn cleanup_removes_every_expired_record(hosts: Hosts<dyn CleanupStore>) {
    let live: Vec<Record> = (0..5).map(|_| sample(HOUR)).collect();
    create_all(&*hosts.store, &live).await;
    create_and_let_expire(&*hosts.store, &short_lived(EXPIRED)).await;
    let mut deleted = Vec::new();
    loop {
        let n = batch(&*hosts.store, BATCH).await;
        deleted.push(n);
        if n < u64::from(BATCH) {
            break;
        }
        assert!(
            deleted.len() <= EXPIRED,
            "batches of {BATCH} keep deleting ({deleted:?}) with only {EXPIRED} expired records"
        );
    }
    assert_eq!(
        deleted.iter().sum::<u64>(),
        EXPIRED as u64,
        "records deleted by batches {deleted:?} of {BATCH}, with {EXPIRED} expired"
    );
    assert_eq!(
        batch(&*hosts.store, BATCH).await,
        0,
        "a batch after cleanup finished found more expired records"
    );
    all_load(&*hosts.store, &live, "after cleanup").await;
}

/// `delete_expired_batch(limit)` deletes at most `limit` records and reports what it deleted:
/// with 25 expired records, batches of 10 delete 10, 10, 5, then 0.
pub async fn cleanup_honours_batch_limit(hosts: Hosts<dyn CleanupStore>) {
    create_and_let_expire(&*hosts.store, &short_lived(EXPIRED)).await;
    let mut deleted = Vec::new();
    for _ in 0..4 {
        deleted.push(batch(&*hosts.store, BATCH).await);
    }
    assert_eq!(
        deleted,
        [10, 10, 5, 0],
        "records deleted by successive batches of {BATCH}, with {EXPIRED} expired"
    );
}

/// Cleanup never deletes a live record, not even one that expires soon: of expired and
/// short-lived live records, it deletes exactly the expired ones.
pub async fn cleanup_never_deletes_live_records(hosts: Hosts<dyn CleanupStore>) {
    let live: Vec<Record> = (0..10)
        .map(|_| sample(SHORT_TTL + Duration::seconds(30)))
        .collect();
    create_all(&*hosts.store, &live).await;
    create_and_let_expire(&*hosts.store, &short_lived(10)).await;
    let deleted = match hosts.store.delete_expired().await {
        Ok(n) => n,
        Err(e) => panic!("delete_expired failed: {e} ({e:?})"),
    };
    all_load(
        &*hosts.store,
        &live,
        "records live for 30 more seconds, after cleanup",
    )
    .await;
    assert_eq!(deleted, 10, "records deleted, with 10 expired and 10 live");
}

/// Cleanup run by a host whose clock is [`SKEW`](crate::SKEW) fast deletes no record that is
/// live by the backend's clock.
pub async fn cleanup_on_fast_host_keeps_live_records(hosts: Hosts<dyn CleanupStore>) {
    let live: Vec<Record> = (0..10).map(|_| sample(Duration::minutes(5))).collect();
    create_all(&*hosts.store, &live).await;
    let deleted = match hosts.fast.delete_expired().await {
        Ok(n) => n,
        Err(e) => panic!("delete_expired on the fast host failed: {e} ({e:?})"),
    };
    all_load(
        &*hosts.store,
        &live,
        "records live for 5 more minutes, after the fast host's cleanup",
    )
    .await;
    assert_eq!(
        deleted, 0,
        "records the fast host's cleanup deleted, with none expired"
    );
}
