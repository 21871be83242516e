//! Behaviour specific to the Redis store, against a standalone Redis in a container: the data
//! layout and expiry, corrupt records, the script cache, and timeouts on a paused server.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use session_core::{Codec, Error, Id, Json, Record, Store, Timeout, now};
use session_redis::RedisStore;
use session_testcontainers::{self as containers, Container};

const HOUR: time::Duration = time::Duration::hours(1);

async fn setup() -> (RedisStore, MultiplexedConnection, Container) {
    let container = containers::redis().await;
    let store = match RedisStore::new(container.url()).await {
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
    let json_store = store.clone().with_codec(Arc::new(Json));
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
    assert_eq!(store.timeout(), RedisStore::DEFAULT_TIMEOUT);
}

/// Connecting to a port where nothing listens fails with a backend error, in bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_backend_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    let outcome = guard(RedisStore::new(&format!("redis://127.0.0.1:{port}"))).await;
    assert!(
        matches!(outcome, Err(Error::Backend { .. })),
        "connect to a closed port: {outcome:?}"
    );
    let outcome = guard(RedisStore::new("not a url")).await;
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
