//! Behaviour specific to the memory store: what it keeps when full, the clock it decides expiry
//! with, the version range, and its options.

use std::time::Duration as StdDuration;

use session_core::clock::{Clock, OffsetClock};
use session_core::{Error, Id, MAX_VERSION, Record, Store, now};
use session_memory::MemoryStore;
use time::Duration;

const HOUR: Duration = Duration::hours(1);

fn store(capacity: u64) -> MemoryStore {
    MemoryStore::with_max_capacity(capacity).expect("a non-zero capacity")
}

fn sample(ttl: Duration) -> Record {
    let mut record = Record::new(Id::random(), ttl);
    record.data.insert("user", &"ada").expect("encode");
    record
}

async fn create(store: &MemoryStore, ttl: Duration) -> Id {
    let record = sample(ttl);
    store.create(&record).await.expect("create");
    record.id
}

async fn loadable(store: &MemoryStore, id: &Id) -> bool {
    store.load(id).await.expect("load").is_some()
}

/// Far more creates than the capacity: each created session is loadable right after its
/// `create`, the count never stays above the capacity, and the sessions created last (the most
/// recently used) are all still there. moka's default admission policy (TinyLFU) fails this:
/// it rejects new entries of a full cache after `create` returned `Ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_store_keeps_every_recent_session() {
    const CAPACITY: u64 = 64;
    let store = store(CAPACITY);
    let mut ids = Vec::new();
    for i in 0..20 * CAPACITY {
        let id = create(&store, HOUR).await;
        assert!(
            loadable(&store, &id).await,
            "session {i} must be loadable right after its create returned Ok"
        );
        ids.push(id);
        if i % 10 == 9 {
            store.run_pending_tasks().await;
            assert!(
                store.entry_count() <= CAPACITY,
                "after {} creates and maintenance the store holds {} sessions, over its \
                 capacity of {CAPACITY}",
                i + 1,
                store.entry_count()
            );
        }
    }
    store.run_pending_tasks().await;
    assert_eq!(
        store.entry_count(),
        CAPACITY,
        "a full store holds exactly its capacity"
    );
    let first_recent = ids.len() - CAPACITY as usize;
    for (i, id) in ids.iter().enumerate().skip(first_recent) {
        assert!(
            loadable(&store, id).await,
            "session {i}, one of the {CAPACITY} most recently created, was dropped"
        );
    }
}

/// When full, the store evicts the least recently used sessions: a session loaded after the
/// others were created outlives them, and the oldest unused ones go first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_store_evicts_the_least_recently_used() {
    const CAPACITY: usize = 16;
    let store = store(CAPACITY as u64);
    let mut old = Vec::new();
    for _ in 0..CAPACITY {
        old.push(create(&store, HOUR).await);
        store.run_pending_tasks().await;
    }
    // The first session created becomes the most recently used.
    assert!(loadable(&store, &old[0]).await);
    store.run_pending_tasks().await;
    let mut new = Vec::new();
    for _ in 0..CAPACITY / 2 {
        new.push(create(&store, HOUR).await);
        store.run_pending_tasks().await;
    }
    assert_eq!(store.entry_count(), CAPACITY as u64);
    // Evicted: the 8 least recently used, sessions 1..=8. Kept: session 0 (loaded), 9..16, and
    // every new one.
    let mut kept = Vec::new();
    for (i, id) in old.iter().enumerate() {
        kept.push((i, loadable(&store, id).await));
    }
    let expected: Vec<(usize, bool)> = (0..CAPACITY)
        .map(|i| (i, i == 0 || i > CAPACITY / 2))
        .collect();
    assert_eq!(
        kept, expected,
        "(session, still loadable) for the sessions created first"
    );
    for (i, id) in new.iter().enumerate() {
        assert!(loadable(&store, id).await, "new session {i} was dropped");
    }
}

/// Expired sessions make room before live ones: a full store whose most recent sessions have
/// expired evicts those, not the older live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_store_drops_expired_sessions_first() {
    const CAPACITY: usize = 16;
    let store = store(CAPACITY as u64);
    let mut live = Vec::new();
    for _ in 0..CAPACITY / 2 {
        live.push(create(&store, HOUR).await);
    }
    for _ in 0..CAPACITY / 2 {
        create(&store, Duration::milliseconds(100)).await;
    }
    store.run_pending_tasks().await;
    // moka's timer wheel checks expiry in ticks of about one second.
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    for _ in 0..CAPACITY / 2 {
        live.push(create(&store, HOUR).await);
    }
    store.run_pending_tasks().await;
    assert_eq!(
        store.entry_count(),
        CAPACITY as u64,
        "the expired sessions are gone"
    );
    for (i, id) in live.iter().enumerate() {
        assert!(loadable(&store, id).await, "live session {i} was evicted");
    }
}

/// The injected clock, not the host's, decides expiry: on a store whose clock is 10 minutes
/// fast, a record the host calls live for 5 more minutes is expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_clock_decides_expiry() {
    let fast = OffsetClock::new(Duration::minutes(10));
    let store = store(100).with_clock(fast);

    let mut expired_by_app_clock = sample(HOUR);
    expired_by_app_clock.expires_at = now() + Duration::minutes(5);
    store
        .create(&expired_by_app_clock)
        .await
        .expect("create of a record that is already expired writes nothing");
    assert!(
        !loadable(&store, &expired_by_app_clock.id).await,
        "expired by the store's clock: never returned"
    );
    store.run_pending_tasks().await;
    assert_eq!(store.entry_count(), 0, "nothing was written");

    let mut live = sample(HOUR);
    live.expires_at = fast.now() + Duration::minutes(5);
    store.create(&live).await.expect("create");
    assert!(
        loadable(&store, &live.id).await,
        "live by the store's clock"
    );
    // An instant in the host's future but in the store's past.
    let outcome = store.touch(&live.id, now() + Duration::minutes(5)).await;
    assert!(
        matches!(outcome, Ok(true)),
        "touch into the store's past reports the live record: {outcome:?}"
    );
    assert!(
        !loadable(&store, &live.id).await,
        "touched into the store's past: unloadable"
    );

    let mut saved = sample(HOUR);
    saved.expires_at = fast.now() + Duration::minutes(5);
    store.create(&saved).await.expect("create");
    saved.expires_at = now() + Duration::minutes(5);
    store.save(&saved).await.expect("save into the past");
    assert!(
        !loadable(&store, &saved.id).await,
        "saved with an expiry in the store's past: unloadable"
    );
}

/// The cache keeps an entry as long as the injected clock says the record lives: on a store
/// whose clock is 10 minutes slow, a record expiring 2 s from the store's now (10 minutes ago
/// for the host) is kept, and dropped once those 2 s have passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_lifetime_follows_the_injected_clock() {
    let slow = OffsetClock::new(Duration::minutes(-10));
    let store = store(100).with_clock(slow);
    let mut record = sample(HOUR);
    record.expires_at = slow.now() + Duration::seconds(2);
    store.create(&record).await.expect("create");
    store.run_pending_tasks().await;
    assert!(
        loadable(&store, &record.id).await,
        "live by the store's clock, although the host calls it expired"
    );
    assert_eq!(store.entry_count(), 1);

    tokio::time::sleep(StdDuration::from_millis(2100)).await;
    assert!(
        !loadable(&store, &record.id).await,
        "expired by the store's clock"
    );
    // moka's timer wheel checks expiry in ticks of about one second.
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    store.run_pending_tasks().await;
    assert_eq!(
        store.entry_count(),
        0,
        "the cache dropped the expired entry"
    );
}

/// A `save` or `touch` that moves the expiry well past the first one tells the cache, not only
/// the record: the session outlives its first expiry in the cache too, while one left alone is
/// dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_expiries_keep_sessions_in_the_cache() {
    let store = store(100);
    let short = Duration::milliseconds(300);
    let left = create(&store, short).await;
    let touched = create(&store, short).await;
    assert!(store.touch(&touched, now() + HOUR).await.expect("touch"));
    let saved = create(&store, short).await;
    let mut record = store.load(&saved).await.expect("load").expect("live");
    record.expires_at = now() + HOUR;
    store.save(&record).await.expect("save");

    // moka's timer wheel checks expiry in ticks of about one second.
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    store.run_pending_tasks().await;
    assert!(!loadable(&store, &left).await, "expired");
    assert!(loadable(&store, &touched).await, "touched an hour ahead");
    let reloaded = store
        .load(&saved)
        .await
        .expect("load")
        .expect("saved an hour ahead");
    assert_eq!(reloaded.version, 1);
    assert_eq!(
        store.entry_count(),
        2,
        "the cache dropped the expired session and kept the two others"
    );
}

/// `create` refuses a version above `MAX_VERSION` and writes nothing; a record at
/// `MAX_VERSION` is created, but cannot be saved (no next version) and stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_stay_in_range() {
    let store = store(100);
    let mut beyond = sample(HOUR);
    beyond.version = MAX_VERSION + 1;
    let outcome = store.create(&beyond).await;
    assert!(
        matches!(outcome, Err(Error::VersionOutOfRange(v)) if v == MAX_VERSION + 1),
        "create beyond MAX_VERSION: {outcome:?}"
    );
    assert!(!loadable(&store, &beyond.id).await, "nothing was written");
    beyond.version = u64::MAX;
    let outcome = store.create(&beyond).await;
    assert!(
        matches!(outcome, Err(Error::VersionOutOfRange(_))),
        "create at u64::MAX: {outcome:?}"
    );

    let mut last = sample(HOUR);
    last.version = MAX_VERSION;
    store.create(&last).await.expect("create at MAX_VERSION");
    let mut changed = last.clone();
    changed.data.insert("user", &"grace").expect("encode");
    let outcome = store.save(&changed).await;
    assert!(
        matches!(outcome, Err(Error::VersionOutOfRange(v)) if v == MAX_VERSION),
        "save at MAX_VERSION: {outcome:?}"
    );
    let stored = store
        .load(&last.id)
        .await
        .expect("load")
        .expect("still live");
    assert_eq!(stored, last, "the failed save changed nothing");

    let mut before_last = sample(HOUR);
    before_last.version = MAX_VERSION - 1;
    store.create(&before_last).await.expect("create");
    store.save(&before_last).await.expect("save to MAX_VERSION");
    let stored = store
        .load(&before_last.id)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(stored.version, MAX_VERSION);
}

/// A zero capacity would drop every session: refused.
#[test]
fn zero_capacity_is_refused() {
    let outcome = MemoryStore::with_max_capacity(0);
    assert!(
        matches!(outcome, Err(Error::InvalidConfig(_))),
        "{outcome:?}"
    );
    assert_eq!(store(7).max_capacity(), 7);
    assert_eq!(
        MemoryStore::new().max_capacity(),
        MemoryStore::DEFAULT_MAX_CAPACITY
    );
}
