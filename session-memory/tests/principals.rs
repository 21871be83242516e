//! The memory store's index of principals: what removes its entries (delete, revoke, a move to
//! another principal, the cache's expiry and eviction), and that the removal notice of an old
//! value never removes the entry of a newer one.

use std::time::Duration as StdDuration;

use session_core::{Id, Principals, Record, Store};
use session_memory::MemoryStore;
use time::Duration;

const HOUR: Duration = Duration::hours(1);

fn principal() -> String {
    format!("ada-{}", Id::random().as_str())
}

fn session(principal: &str, ttl: Duration) -> Record {
    let mut record = Record::new(Id::random(), ttl);
    record.principal = Some(principal.to_owned());
    record
}

async fn listed_ids(store: &MemoryStore, principal: &str) -> Vec<Id> {
    let mut ids: Vec<Id> = store
        .sessions_of(principal)
        .await
        .expect("sessions_of")
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

/// Deletes, revocations and moves take sessions out of the index at once; sessions without a
/// principal never enter it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_keep_the_index_exact() {
    let store = MemoryStore::new();
    let (ada, grace) = (principal(), principal());
    let sessions: Vec<Record> = (0..6).map(|_| session(&ada, HOUR)).collect();
    for record in &sessions {
        store.create(record).await.expect("create");
    }
    store
        .create(&Record::new(Id::random(), HOUR))
        .await
        .expect("create an anonymous session");
    assert_eq!(store.index_len(), 6, "six sessions with a principal");

    store.delete(&sessions[0].id).await.expect("delete");
    assert!(store.revoke(&ada, &sessions[1].id).await.expect("revoke"));
    let mut moved = sessions[2].clone();
    moved.principal = Some(grace.clone());
    store
        .save(&moved)
        .await
        .expect("save with another principal");
    let mut anonymous = sessions[3].clone();
    anonymous.principal = None;
    store
        .save(&anonymous)
        .await
        .expect("save with no principal");
    assert!(
        store
            .touch(&sessions[4].id, session_core::now() - HOUR)
            .await
            .expect("touch"),
        "touch into the past"
    );
    assert_eq!(
        store.index_len(),
        2,
        "left: the session moved to {grace:?} and one untouched session of {ada:?}"
    );
    assert_eq!(listed_ids(&store, &ada).await, vec![sessions[5].id.clone()]);
    assert_eq!(
        listed_ids(&store, &grace).await,
        vec![sessions[2].id.clone()]
    );

    assert_eq!(store.revoke_all(&ada, None).await.expect("revoke_all"), 1);
    assert_eq!(store.revoke_all(&grace, None).await.expect("revoke_all"), 1);
    assert_eq!(store.index_len(), 0, "every session revoked");
}

/// Sessions that expire leave the index when the cache drops them, without anyone listing or
/// revoking their principal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_leave_the_index() {
    let store = MemoryStore::new();
    let ada = principal();
    for _ in 0..20 {
        store
            .create(&session(&ada, Duration::milliseconds(200)))
            .await
            .expect("create");
    }
    let live = session(&ada, HOUR);
    store.create(&live).await.expect("create");
    assert_eq!(store.index_len(), 21);
    // moka's timer wheel checks expiry in ticks of about one second.
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    store.run_pending_tasks().await;
    assert_eq!(
        store.index_len(),
        1,
        "only the live session is left in the index"
    );
    assert_eq!(listed_ids(&store, &ada).await, vec![live.id]);
}

/// Sessions evicted from a full store leave the index, and the listing shows exactly the
/// sessions still loadable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_sessions_leave_the_index() {
    const CAPACITY: u64 = 16;
    let store = MemoryStore::with_max_capacity(CAPACITY).expect("capacity");
    let ada = principal();
    let mut ids = Vec::new();
    for _ in 0..4 * CAPACITY {
        let record = session(&ada, HOUR);
        store.create(&record).await.expect("create");
        ids.push(record.id);
        store.run_pending_tasks().await;
    }
    store.run_pending_tasks().await;
    assert_eq!(store.entry_count(), CAPACITY);
    assert_eq!(
        store.index_len(),
        CAPACITY as usize,
        "the index holds what the cache holds"
    );
    let mut loadable = Vec::new();
    for id in &ids {
        if store.load(id).await.expect("load").is_some() {
            loadable.push(id.clone());
        }
    }
    loadable.sort();
    assert_eq!(listed_ids(&store, &ada).await, loadable);
}

/// An id created again after its first session expired, before the cache dropped that one: the
/// cache's notice that the old value left does not take the new session out of the index (each
/// index entry carries the stamp of the write that made it, and only the removal of that value
/// removes it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_notice_of_an_old_value_spares_the_new_one() {
    let store = MemoryStore::new();
    let ada = principal();
    let old = session(&ada, Duration::milliseconds(200));
    store.create(&old).await.expect("create");
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    let mut new = session(&ada, HOUR);
    new.id = old.id.clone();
    store
        .create(&new)
        .await
        .expect("create over the expired session");
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    store.run_pending_tasks().await;
    assert_eq!(listed_ids(&store, &ada).await, vec![new.id.clone()]);
    assert_eq!(store.index_len(), 1);
    assert_eq!(store.revoke_all(&ada, None).await.expect("revoke_all"), 1);
}

/// Handles with other clocks share the index with the store they came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_share_the_index() {
    let store = MemoryStore::new();
    let other = store
        .clone()
        .with_clock(session_core::clock::OffsetClock::new(Duration::seconds(1)));
    let ada = principal();
    let record = session(&ada, HOUR);
    store.create(&record).await.expect("create");
    assert_eq!(listed_ids(&other, &ada).await, vec![record.id.clone()]);
    assert!(other.revoke(&ada, &record.id).await.expect("revoke"));
    assert!(store.load(&record.id).await.expect("load").is_none());
}
