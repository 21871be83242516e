//! Behaviour specific to the Redis store, against a standalone Redis in a container: the data
//! layout and expiry, the clock rule, versions, corrupt records, error replies, size limits, the
//! script cache, and timeouts on a paused server.

use std::time::Duration;

use bytes::{BufMut, Bytes};
use redis::RedisError;
use redis::aio::MultiplexedConnection;
use session_core::clock::{Clock, OffsetClock};
use session_core::{Codec, Error, Id, Json, MAX_VERSION, Record, Store, Timeout, Value, now};
use session_redis::RedisStore;
use session_testcontainers::{self as containers, Container};

const HOUR: time::Duration = time::Duration::hours(1);

async fn setup() -> (RedisStore, MultiplexedConnection, Container) {
    let container = containers::redis().await;
    let store = match RedisStore::connect(container.url()).await {
        Ok(store) => store,
        Err(e) => panic!(
            "cannot connect to the Redis container at {}: {e} ({e:?})",
            container.url()
        ),
    };
    let raw = redis::Client::open(container.url())
        .expect("container URL")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to the container");
    (store, raw, container)
}

fn sample() -> Record {
    let mut record = Record::new(Id::random(), HOUR);
    record.data.insert("user", &"ada").expect("encode");
    record.data.insert("visits", &3).expect("encode");
    record
}

fn millis(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("in range")
}

async fn value(raw: &mut MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(raw)
        .await
        .expect("GET")
}

async fn expire_time(raw: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(raw)
        .await
        .expect("PEXPIRETIME")
}

async fn exists(raw: &mut MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(raw)
        .await
        .expect("EXISTS")
        == 1
}

/// The 25-byte header: layout 1, `created_at` ms, version, `expires_at` ms, big-endian.
fn header(created_ms: i64, version: u64, expires_ms: i64) -> Vec<u8> {
    let mut header = vec![1];
    header.extend_from_slice(&created_ms.to_be_bytes());
    header.extend_from_slice(&version.to_be_bytes());
    header.extend_from_slice(&expires_ms.to_be_bytes());
    header
}

/// A session is a string `{prefix}{id}`: a 25-byte header then the encoded data, the key
/// expiring 1 ms before `expires_at` (Redis deletes a key once its expiry has passed; a session
/// is expired at it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_is_header_then_data_with_ttl() {
    let (store, mut raw, _container) = setup().await;
    let store = store.with_prefix("app1:sess:").expect("valid prefix");
    let mut record = sample();
    record.version = 41;
    store.create(&record).await.expect("create");
    let key = format!("app1:sess:{}", record.id.as_str());
    assert_eq!(store.key(&record.id), key);
    let stored = value(&mut raw, &key).await.expect("the key exists");
    let mut expected = header(millis(record.created_at), 41, millis(record.expires_at));
    expected.extend(
        session_core::MessagePack
            .encode(&record.data)
            .expect("encode"),
    );
    assert_eq!(stored, expected, "stored value of {key}");
    assert_eq!(
        expire_time(&mut raw, &key).await,
        millis(record.expires_at) - 1,
        "the key expires 1 ms before the record's expiry"
    );
    assert!(
        !exists(&mut raw, &format!("session:{}", record.id.as_str())).await,
        "nothing is written under the default prefix"
    );
}

/// `touch` moves the key's expiry and the header's `expires_at` together; the data, version and
/// `created_at` bytes stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_moves_the_ttl_only() {
    let (store, mut raw, _container) = setup().await;
    let record = sample();
    store.create(&record).await.expect("create");
    let key = store.key(&record.id);
    let before = value(&mut raw, &key).await.expect("the key exists");
    let later = now() + time::Duration::hours(5);
    assert!(store.touch(&record.id, later).await.expect("touch"));
    let after = value(&mut raw, &key).await.expect("the key exists");
    assert_eq!(after.len(), before.len());
    assert_eq!(
        after[..17],
        before[..17],
        "layout, created_at, version kept"
    );
    assert_eq!(
        after[17..25],
        millis(later).to_be_bytes(),
        "expires_at moved"
    );
    assert_eq!(after[25..], before[25..], "data kept");
    assert_eq!(
        expire_time(&mut raw, &key).await,
        millis(later) - 1,
        "TTL moved"
    );
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.expires_at, later);
}

/// `save` writes the data, the next version and the new expiry, and keeps `created_at` as
/// stored even when the saved record says otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_rewrites_data_expiry_and_version() {
    let (store, mut raw, _container) = setup().await;
    let record = sample();
    store.create(&record).await.expect("create");
    let key = store.key(&record.id);
    let mut changed = record.clone();
    changed.data.insert("visits", &4).expect("encode");
    changed.expires_at = now() + time::Duration::hours(2);
    changed.created_at = now() - time::Duration::days(1);
    store.save(&changed).await.expect("save");
    let stored = value(&mut raw, &key).await.expect("the key exists");
    let mut expected = header(millis(record.created_at), 1, millis(changed.expires_at));
    expected.extend(
        session_core::MessagePack
            .encode(&changed.data)
            .expect("encode"),
    );
    assert_eq!(
        stored, expected,
        "created_at kept, version bumped, new data"
    );
    assert_eq!(
        expire_time(&mut raw, &key).await,
        millis(changed.expires_at) - 1
    );
}

/// A record that is already expired is never written, by `create` or by `save`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_on_arrival_is_not_written() {
    let (store, mut raw, _container) = setup().await;
    let mut dead = sample();
    dead.expires_at = now() - time::Duration::seconds(1);
    store
        .create(&dead)
        .await
        .expect("create of an expired record");
    assert!(
        !exists(&mut raw, &store.key(&dead.id)).await,
        "an expired record must not be written"
    );

    let live = sample();
    store.create(&live).await.expect("create");
    let mut expired = live.clone();
    expired.expires_at = now() - time::Duration::seconds(1);
    store
        .save(&expired)
        .await
        .expect("save with a past expiry succeeds");
    assert!(
        !exists(&mut raw, &store.key(&live.id)).await,
        "saving a past expiry deletes the record"
    );
    let mut blocked = sample();
    blocked.id = live.id.clone();
    store
        .create(&blocked)
        .await
        .expect("create after that save");
    blocked.expires_at = now() - time::Duration::seconds(1);
    let outcome = store.create(&blocked).await;
    assert!(
        matches!(outcome, Err(Error::AlreadyExists)),
        "an expired create over a live record still reports it: {outcome:?}"
    );
}

async fn set_raw(raw: &mut MultiplexedConnection, key: &str, bytes: &[u8], expiry: Option<i64>) {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(bytes);
    if let Some(at) = expiry {
        cmd.arg("PXAT").arg(at);
    }
    let _: () = cmd.query_async(raw).await.expect("SET raw bytes");
}

/// Garbage under a session key is `Error::Decode` for `load`, `save` and `touch`, never a panic,
/// and is never overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_records_are_decode_errors() {
    let (store, mut raw, _container) = setup().await;
    let future = millis(now() + HOUR);
    let noise: Vec<u8> = (0..=255u8).rev().collect();
    let mut undecodable = header(0, 0, future);
    undecodable.extend_from_slice(b"\x01\xffgarbage");
    let mut unknown_layout = header(0, 0, future);
    unknown_layout[0] = 0x7f;
    let cases: [(&str, &[u8]); 5] = [
        ("short garbage", b"\x00\xffnot a session"),
        ("random bytes", &noise),
        ("header then undecodable data", &undecodable),
        ("unknown layout byte", &unknown_layout),
        ("empty value", b""),
    ];
    for (what, bytes) in cases {
        let id = Id::random();
        let key = store.key(&id);
        set_raw(&mut raw, &key, bytes, Some(future)).await;
        let outcome = store.load(&id).await;
        assert!(
            matches!(outcome, Err(Error::Decode(_))),
            "{what}: load returned {outcome:?}"
        );
        let mut record = sample();
        record.id = id.clone();
        let outcome = store.save(&record).await;
        // Undecodable data behind a valid header is a valid record as far as `save` is
        // concerned (it replaces the data without reading it).
        if what == "header then undecodable data" {
            assert!(outcome.is_ok(), "{what}: save returned {outcome:?}");
        } else {
            assert!(
                matches!(outcome, Err(Error::Decode(_))),
                "{what}: save returned {outcome:?}"
            );
            assert_eq!(
                value(&mut raw, &key).await.as_deref(),
                Some(bytes),
                "{what}: save must not overwrite it"
            );
        }
        let outcome = store.touch(&id, now() + HOUR).await;
        match what {
            "header then undecodable data" => assert!(
                matches!(outcome, Ok(true)),
                "{what}: touch returned {outcome:?}"
            ),
            // An empty string reads like a missing key to the header check.
            "empty value" => assert!(
                matches!(outcome, Ok(false)),
                "{what}: touch returned {outcome:?}"
            ),
            _ => {
                assert!(
                    matches!(outcome, Err(Error::Decode(_))),
                    "{what}: touch returned {outcome:?}"
                );
                assert_eq!(
                    value(&mut raw, &key).await.as_deref(),
                    Some(bytes),
                    "{what}: touch must not write into it"
                );
            }
        }
        let outcome = store.create(&record).await;
        assert!(
            matches!(outcome, Err(Error::AlreadyExists)),
            "{what}: create returned {outcome:?}"
        );
        store.delete(&id).await.expect("delete removes any value");
        assert!(!exists(&mut raw, &key).await, "{what}: deleted");
    }

    // A key of another type: load, save and touch say so, create does not overwrite it.
    let id = Id::random();
    let key = store.key(&id);
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("owner")
        .arg("someone else")
        .query_async(&mut raw)
        .await
        .expect("HSET foreign");
    let outcome = store.load(&id).await;
    assert!(
        matches!(outcome, Err(Error::Decode(_))),
        "hash: load returned {outcome:?}"
    );
    let mut record = sample();
    record.id = id.clone();
    let outcome = store.save(&record).await;
    assert!(
        matches!(outcome, Err(Error::Decode(_))),
        "hash: save returned {outcome:?}"
    );
    let outcome = store.touch(&id, now() + HOUR).await;
    assert!(
        matches!(outcome, Err(Error::Decode(_))),
        "hash: touch returned {outcome:?}"
    );
    let outcome = store.create(&record).await;
    assert!(
        matches!(outcome, Err(Error::AlreadyExists)),
        "hash: create returned {outcome:?}"
    );
    let owner: Option<String> = redis::cmd("HGET")
        .arg(&key)
        .arg("owner")
        .query_async(&mut raw)
        .await
        .expect("HGET");
    assert_eq!(owner.as_deref(), Some("someone else"), "never overwritten");
}

/// After `SCRIPT FLUSH` (a restart, a failover) `save` and `touch` send their scripts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_script_cache_is_reloaded() {
    let (store, mut raw, _container) = setup().await;
    let record = sample();
    store.create(&record).await.expect("create");
    for attempt in 0..3 {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut raw)
            .await
            .expect("SCRIPT FLUSH");
        let mut current = store.load(&record.id).await.expect("load").expect("live");
        current.data.insert("attempt", &attempt).expect("encode");
        store.save(&current).await.expect("save after SCRIPT FLUSH");
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut raw)
            .await
            .expect("SCRIPT FLUSH");
        assert!(
            store
                .touch(&record.id, now() + HOUR)
                .await
                .expect("touch after SCRIPT FLUSH"),
            "touch of a live record"
        );
        // And the script is cached again: the next save from a stale version still conflicts.
        let outcome = store.save(&current).await;
        assert!(
            matches!(outcome, Err(Error::Conflict)),
            "stale save after reload: {outcome:?}"
        );
    }
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.version, 3);
    assert_eq!(loaded.data.get::<i32>("attempt").expect("decode"), Some(2));
}

/// A store built with the JSON codec writes JSON and reads what a MessagePack store wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_codec_writes_json_and_reads_both() {
    let (store, mut raw, _container) = setup().await;
    let json_store = store.clone().with_codec(Json);
    let record = sample();
    json_store.create(&record).await.expect("create as JSON");
    let stored = value(&mut raw, &store.key(&record.id))
        .await
        .expect("the key exists");
    let data = &stored[25..];
    assert!(
        data.starts_with(b"{\"v\":1,\"data\":{"),
        "{}",
        String::from_utf8_lossy(data)
    );
    let loaded = store
        .load(&record.id)
        .await
        .expect("MessagePack store reads JSON")
        .expect("live");
    assert_eq!(loaded.data, record.data);
    let other = sample();
    store.create(&other).await.expect("create as MessagePack");
    let loaded = json_store
        .load(&other.id)
        .await
        .expect("JSON store reads MessagePack")
        .expect("live");
    assert_eq!(loaded.data, other.data);
}

/// Invalid options are rejected with `InvalidConfig`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_are_rejected() {
    let (store, _raw, _container) = setup().await;
    for bad in ["", "a b", "{tag}", "x".repeat(200).as_str()] {
        let outcome = store.clone().with_prefix(bad);
        assert!(
            matches!(outcome, Err(Error::InvalidConfig(_))),
            "prefix {bad:?}: {outcome:?}"
        );
    }
    let outcome = store.clone().with_timeout(Duration::ZERO);
    assert!(
        matches!(outcome, Err(Error::InvalidConfig(_))),
        "zero timeout: {outcome:?}"
    );
    assert_eq!(store.prefix(), RedisStore::DEFAULT_PREFIX);
    assert_eq!(store.timeout(), session_core::DEFAULT_TIMEOUT);
}

/// Connecting to a port where nothing listens fails with a backend error, in bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_backend_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    let outcome = guard(RedisStore::connect(&format!("redis://127.0.0.1:{port}"))).await;
    assert!(
        matches!(outcome, Err(Error::Backend { .. })),
        "connect to a closed port: {outcome:?}"
    );
    let outcome = guard(RedisStore::connect("not a url")).await;
    assert!(
        matches!(outcome, Err(Error::Backend { .. })),
        "invalid URL: {outcome:?}"
    );
}

/// Fails the test instead of hanging if a call never returns.
async fn guard<T>(call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), call).await {
        Ok(outcome) => outcome,
        Err(_) => panic!("the call did not return within 60 s: it hangs"),
    }
}

fn assert_timed_out<T: std::fmt::Debug>(outcome: session_core::Result<T>, limit: Duration) {
    match outcome {
        Err(Error::Backend { source, operation }) => {
            let timeout = source.downcast_ref::<Timeout>();
            assert_eq!(
                timeout,
                Some(&Timeout(limit)),
                "{operation}: the source must be the store's Timeout, got {source:?}"
            );
        }
        other => panic!("expected Err(Backend {{ source: Timeout }}), got {other:?}"),
    }
}

/// With the Redis container paused, every operation returns a timeout error instead of
/// hanging; after unpausing, the same store works again without being rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_redis_times_out_and_the_store_recovers() {
    let (store, _raw, container) = setup().await;
    let limit = Duration::from_millis(500);
    let store = store.with_timeout(limit).expect("valid timeout");
    let record = sample();
    store
        .create(&record)
        .await
        .expect("create before the pause");

    // One load is already waiting for its reply when the server freezes.
    let in_flight = {
        let store = store.clone();
        let id = record.id.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = store.load(&id).await {
                    return e;
                }
            }
        })
    };
    container.pause().await;
    let in_flight = guard(in_flight).await.expect("the load task panicked");
    assert_timed_out::<()>(Err(in_flight), limit);

    assert_timed_out(guard(store.load(&record.id)).await, limit);
    assert_timed_out(guard(store.create(&sample())).await, limit);
    assert_timed_out(guard(store.save(&record)).await, limit);
    assert_timed_out(guard(store.touch(&record.id, now() + HOUR)).await, limit);
    assert_timed_out(guard(store.delete(&Id::random())).await, limit);

    container.unpause().await;
    let mut recovered = None;
    // The replies to the abandoned calls arrive first; the next calls get their own.
    for _ in 0..20 {
        match guard(store.load(&record.id)).await {
            Ok(found) => {
                recovered = Some(found);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let loaded = recovered
        .expect("the store works again after unpause")
        .expect("the record survived the pause");
    assert_eq!(loaded.data, record.data);
    store.save(&loaded).await.expect("save after unpause");
}

/// With the Redis container stopped, operations fail with a backend error instead of hanging;
/// once it is started again, the same store reconnects by itself and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_redis_fails_and_the_store_reconnects() {
    let (store, _raw, container) = setup().await;
    let store = store
        .with_timeout(Duration::from_secs(2))
        .expect("valid timeout");
    store
        .create(&sample())
        .await
        .expect("create before the stop");

    container.stop().await;
    let outcome = guard(store.load(&Id::random())).await;
    assert!(
        matches!(outcome, Err(Error::Backend { .. })),
        "load with Redis stopped: {outcome:?}"
    );
    let outcome = guard(store.create(&sample())).await;
    assert!(
        matches!(outcome, Err(Error::Backend { .. })),
        "create with Redis stopped: {outcome:?}"
    );

    container.start().await;
    let record = sample();
    let mut created = Err(Error::NotFound);
    // The first calls may still meet the broken connection or a reconnection in progress.
    for _ in 0..40 {
        created = guard(store.create(&record)).await;
        if created.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    created.expect("the store reconnects after the restart");
    let loaded = guard(store.load(&record.id))
        .await
        .expect("load after the restart")
        .expect("live");
    assert_eq!(loaded.data, record.data);
}

/// Redis's clock decides expiry, never the app's: a store whose app clock is 10 minutes fast
/// writes, loads, saves and touches a session that expires in 5 minutes (already past by its
/// own clock), and the key expires 1 ms before `expires_at` whatever that clock says. One
/// whose clock is 10 minutes slow cannot store, touch or save a session Redis calls expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_clock_decides_expiry_whatever_the_app_clock() {
    let (store, mut raw, _container) = setup().await;
    let fast = store
        .clone()
        .with_clock(OffsetClock::new(time::Duration::minutes(10)));
    let mut record = sample();
    record.expires_at = now() + time::Duration::minutes(5);
    fast.create(&record).await.expect("create on the fast host");
    let key = store.key(&record.id);
    assert_eq!(
        expire_time(&mut raw, &key).await,
        millis(record.expires_at) - 1,
        "create: the key expires with the record"
    );
    let mut loaded = fast
        .load(&record.id)
        .await
        .expect("load")
        .expect("live by Redis's clock: the fast host must see it");
    assert_eq!(loaded, record);
    loaded.data.insert("visits", &4).expect("encode");
    fast.save(&loaded).await.expect("save on the fast host");
    assert_eq!(
        expire_time(&mut raw, &key).await,
        millis(record.expires_at) - 1,
        "save: the key still expires with the record"
    );
    let later = now() + time::Duration::minutes(6);
    assert!(
        fast.touch(&record.id, later).await.expect("touch"),
        "touch on the fast host finds the live record"
    );
    assert_eq!(
        expire_time(&mut raw, &key).await,
        millis(later) - 1,
        "touch moves the key's expiry"
    );
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!((loaded.version, loaded.expires_at), (1, later));

    let slow_clock = OffsetClock::new(time::Duration::minutes(-10));
    let slow = store.clone().with_clock(slow_clock);
    let mut expired = sample();
    expired.expires_at = now() - time::Duration::seconds(1);
    assert!(
        expired.expires_at > slow_clock.now() + time::Duration::minutes(9),
        "the slow host calls it live"
    );
    slow.create(&expired)
        .await
        .expect("create of an expired record succeeds");
    assert!(
        !exists(&mut raw, &store.key(&expired.id)).await,
        "Redis stores nothing"
    );
    assert!(
        !slow
            .touch(&expired.id, now() + HOUR)
            .await
            .expect("touch on the slow host"),
        "nothing to touch"
    );
    let outcome = slow.save(&expired).await;
    assert!(
        matches!(outcome, Err(Error::NotFound)),
        "save on the slow host: {outcome:?}"
    );
    assert!(
        !exists(&mut raw, &store.key(&expired.id)).await,
        "neither touch nor save revived it"
    );
}

/// Touching a live session to an instant in the past reports it (`Ok(true)`) and deletes the
/// key; a second touch finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_into_the_past_deletes_the_key() {
    let (store, mut raw, _container) = setup().await;
    let record = sample();
    store.create(&record).await.expect("create");
    let outcome = store
        .touch(&record.id, now() - time::Duration::seconds(1))
        .await;
    assert!(
        matches!(outcome, Ok(true)),
        "touch into the past: {outcome:?}"
    );
    assert!(
        !exists(&mut raw, &store.key(&record.id)).await,
        "the key is deleted"
    );
    assert_eq!(store.load(&record.id).await.expect("load"), None);
    let outcome = store.touch(&record.id, now() + HOUR).await;
    assert!(matches!(outcome, Ok(false)), "second touch: {outcome:?}");
}

/// Versions stay in `0..=MAX_VERSION`: `create` beyond it and `save` at it are refused before
/// the round trip and write nothing; a stored version beyond it is a corrupt record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_stay_in_range() {
    let (store, mut raw, _container) = setup().await;
    let mut beyond = sample();
    beyond.version = MAX_VERSION + 1;
    let outcome = store.create(&beyond).await;
    assert!(
        matches!(outcome, Err(Error::VersionOutOfRange(v)) if v == MAX_VERSION + 1),
        "create beyond MAX_VERSION: {outcome:?}"
    );
    assert!(
        !exists(&mut raw, &store.key(&beyond.id)).await,
        "nothing written"
    );

    let mut last = sample();
    last.version = MAX_VERSION;
    store.create(&last).await.expect("create at MAX_VERSION");
    let key = store.key(&last.id);
    let before = value(&mut raw, &key).await.expect("the key exists");
    let mut changed = last.clone();
    changed.data.insert("visits", &4).expect("encode");
    let outcome = store.save(&changed).await;
    assert!(
        matches!(outcome, Err(Error::VersionOutOfRange(v)) if v == MAX_VERSION),
        "save at MAX_VERSION: {outcome:?}"
    );
    assert_eq!(
        value(&mut raw, &key).await.as_deref(),
        Some(before.as_slice()),
        "the refused save wrote nothing"
    );
    let loaded = store.load(&last.id).await.expect("load").expect("live");
    assert_eq!(loaded.version, MAX_VERSION);

    let mut before_last = sample();
    before_last.version = MAX_VERSION - 1;
    store.create(&before_last).await.expect("create");
    store.save(&before_last).await.expect("save to MAX_VERSION");
    let loaded = store
        .load(&before_last.id)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(loaded.version, MAX_VERSION);

    let id = Id::random();
    let mut stored = header(millis(now()), MAX_VERSION + 1, millis(now() + HOUR));
    stored.extend(
        session_core::MessagePack
            .encode(&sample().data)
            .expect("encode"),
    );
    set_raw(
        &mut raw,
        &store.key(&id),
        &stored,
        Some(millis(now() + HOUR)),
    )
    .await;
    let outcome = store.load(&id).await;
    assert!(
        matches!(outcome, Err(Error::Decode(_))),
        "a stored version beyond MAX_VERSION: {outcome:?}"
    );
}

/// The error reply an operation failed with, from the `RedisError` kept as the source of
/// `Error::Backend`.
fn reply_code<T: std::fmt::Debug>(outcome: session_core::Result<T>) -> String {
    match outcome {
        Err(Error::Backend { source, operation }) => match source.downcast_ref::<RedisError>() {
            Some(e) => e.code().unwrap_or("(no code)").to_owned(),
            None => panic!("{operation}: the source must be the RedisError, got {source:?}"),
        },
        other => panic!("expected Err(Backend {{ source: RedisError }}), got {other:?}"),
    }
}

async fn config_set(raw: &mut MultiplexedConnection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(raw)
        .await
        .expect("CONFIG SET");
}

/// Over `maxmemory` (with the default `noeviction` policy) Redis refuses writes with `OOM`:
/// `create`, `save` and `touch` fail with `Error::Backend` whose source is that reply, and write
/// nothing; `load` and `delete` still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_replies_are_backend_errors() {
    let (store, mut raw, _container) = setup().await;
    let record = sample();
    store.create(&record).await.expect("create");
    let key = store.key(&record.id);
    let before = value(&mut raw, &key).await.expect("the key exists");
    config_set(&mut raw, "maxmemory-policy", "noeviction").await;
    config_set(&mut raw, "maxmemory", "1").await;

    let fresh = sample();
    assert_eq!(reply_code(store.create(&fresh).await), "OOM", "create");
    assert_eq!(reply_code(store.save(&record).await), "OOM", "save");
    assert_eq!(
        reply_code(store.touch(&record.id, now() + HOUR * 2).await),
        "OOM",
        "touch"
    );
    assert!(
        !exists(&mut raw, &store.key(&fresh.id)).await,
        "create wrote nothing"
    );
    assert_eq!(
        value(&mut raw, &key).await.as_deref(),
        Some(before.as_slice()),
        "save and touch wrote nothing"
    );
    let loaded = store.load(&record.id).await.expect("load under OOM");
    assert_eq!(loaded, Some(record.clone()));

    config_set(&mut raw, "maxmemory", "0").await;
    store.save(&record).await.expect("save once memory is back");
    store.delete(&record.id).await.expect("delete");
}

/// A replica refuses writes with `READONLY` (as a demoted master does after a failover):
/// every write fails with `Error::Backend` whose source is that reply; `load` still reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_replies_are_backend_errors() {
    let (store, mut raw, _container) = setup().await;
    let record = sample();
    store.create(&record).await.expect("create");
    // A replica of a master that does not exist: it keeps its data and serves reads.
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(1)
        .query_async(&mut raw)
        .await
        .expect("REPLICAOF");

    assert_eq!(
        reply_code(store.create(&sample()).await),
        "READONLY",
        "create"
    );
    assert_eq!(reply_code(store.save(&record).await), "READONLY", "save");
    assert_eq!(
        reply_code(store.touch(&record.id, now() + HOUR).await),
        "READONLY",
        "touch"
    );
    assert_eq!(
        reply_code(store.delete(&record.id).await),
        "READONLY",
        "delete"
    );
    let loaded = store.load(&record.id).await.expect("load from the replica");
    assert_eq!(loaded, Some(record.clone()));

    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut raw)
        .await
        .expect("REPLICAOF NO ONE");
    store.save(&record).await.expect("save on the master again");
}

/// A record whose stored value would exceed Redis's default `proto-max-bulk-len` (512 MiB) is
/// `Error::TooLarge`, found before anything is sent: nothing is written and the connection
/// stays usable. (The test holds about 1 GiB of memory for a moment.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_over_the_bulk_limit_are_too_large() {
    let (store, mut raw, _container) = setup().await;
    let payload = RedisStore::MAX_VALUE_LEN;
    let mut bin = Vec::with_capacity(payload + 5);
    bin.put_u8(0xc6); // MessagePack bin 32
    bin.put_u32(u32::try_from(payload).expect("fits"));
    bin.resize(payload + 5, 0x5a);
    let big = Value::from_msgpack(Bytes::from(bin)).expect("one MessagePack value");
    let mut record = sample();
    record.data.insert_value("big", big);

    let outcome = store.create(&record).await;
    match outcome {
        Err(Error::TooLarge { size, limit }) => {
            assert_eq!(limit, RedisStore::MAX_VALUE_LEN);
            assert!(size > limit, "size {size} over limit {limit}");
        }
        other => panic!("create of a record over 512 MiB: {other:?}"),
    }
    assert!(
        !exists(&mut raw, &store.key(&record.id)).await,
        "nothing written"
    );

    let small = sample();
    store
        .create(&small)
        .await
        .expect("the connection is still usable");
    let mut grown = small.clone();
    grown.data = record.data.clone();
    let outcome = store.save(&grown).await;
    assert!(
        matches!(outcome, Err(Error::TooLarge { .. })),
        "save of a record over 512 MiB: {outcome:?}"
    );
    drop((record, grown));
    let loaded = store.load(&small.id).await.expect("load").expect("live");
    assert_eq!(loaded, small, "the refused save changed nothing");
}

/// Every key in the database whose name says it is a save's temporary key.
async fn temporary_keys(raw: &mut MultiplexedConnection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*:save:*")
        .query_async(raw)
        .await
        .expect("KEYS");
    keys.sort();
    keys
}

/// A save sends the new value to a temporary key with a plain `SET` and the script renames it
/// over the session key: whatever the outcome (written, conflict, no key, corrupt, an expiry
/// that has passed, a principal's index added first), no temporary key is left behind, and the
/// written value is the one the store meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_leave_no_temporary_keys() {
    let (store, mut raw, _container) = setup().await;
    let record = sample();
    store.create(&record).await.expect("create");
    let mut current = store.load(&record.id).await.expect("load").expect("live");
    current.data.insert("visits", &4).expect("encode");
    store.save(&current).await.expect("save");
    let saved = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(saved.version, 1);
    assert_eq!(saved.data.get::<i32>("visits").expect("decode"), Some(4));

    let stale = store.save(&current).await;
    assert!(matches!(stale, Err(Error::Conflict)), "stale: {stale:?}");
    let absent = store.save(&sample()).await;
    assert!(matches!(absent, Err(Error::NotFound)), "absent: {absent:?}");
    let corrupt_id = Id::random();
    set_raw(&mut raw, &store.key(&corrupt_id), b"not a session", None).await;
    let mut foreign = sample();
    foreign.id = corrupt_id;
    let corrupt = store.save(&foreign).await;
    assert!(
        matches!(corrupt, Err(Error::Decode(_))),
        "corrupt: {corrupt:?}"
    );

    let mut with_principal = saved.clone();
    with_principal.principal = Some("ada".into());
    store
        .save(&with_principal)
        .await
        .expect("save with a new principal");
    let mut expired = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(expired.principal.as_deref(), Some("ada"));
    expired.expires_at = now() - HOUR;
    store.save(&expired).await.expect("save into the past");
    assert!(
        !exists(&mut raw, &store.key(&record.id)).await,
        "a save into the past deletes the session"
    );
    assert_eq!(temporary_keys(&mut raw).await, Vec::<String>::new());
}
