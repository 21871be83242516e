//! The Express-compatible layout (connect-redis's), against Redis in containers: the whole
//! conformance suite on a standalone server (store, clock-skew and outage rules) and on a Redis
//! Cluster, then the layout itself: sessions written exactly as connect-redis writes them load
//! in Rust, Rust writes exactly connect-redis's shape, and a write by either side is never lost
//! to a Rust save that did not read it.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use serde_json::json;
use session_core::express::foreign_version;
use session_core::{Clock, Error, Id, Record, Store, now};
use session_redis::RedisStore;
use session_testcontainers::{self as containers, Container};
use time::OffsetDateTime;

const HOUR: time::Duration = time::Duration::hours(1);

async fn connect(container: &Container) -> RedisStore {
    match RedisStore::connect(container.url()).await {
        Ok(store) => store.express_compatible(),
        Err(e) => panic!(
            "cannot connect to the Redis container at {}: {e} ({e:?})",
            container.url()
        ),
    }
}

async fn setup() -> (RedisStore, Container) {
    let container = containers::redis().await;
    (connect(&container).await, container)
}

/// Another app server on the same Redis, whose clock is `clock`.
fn with_clock(store: &RedisStore, clock: Arc<dyn Clock>) -> RedisStore {
    store.clone().with_clock(clock)
}

session_conformance::store_tests!(setup);
session_conformance::skew_tests!(setup, with_clock);

/// The outage rules: a paused Redis fails every operation within the store's timeout, and the
/// same store works again once it is unpaused.
mod outage {
    use super::*;

    async fn setup() -> (RedisStore, Container) {
        let container = containers::redis().await;
        let store = connect(&container)
            .await
            .with_timeout(session_conformance::OUTAGE_TIMEOUT)
            .expect("a non-zero timeout");
        (store, container)
    }

    session_conformance::outage_tests!(setup);
}

/// The store rules on a Redis Cluster (3 masters): every operation is one key, so one slot.
#[cfg(feature = "cluster")]
mod cluster {
    use session_testcontainers::RedisCluster;

    use super::*;

    async fn setup() -> (RedisStore, RedisCluster) {
        let cluster = containers::redis_cluster().await;
        let urls = cluster.urls();
        let store = match RedisStore::connect_cluster(urls.iter().map(String::as_str)).await {
            Ok(store) => store.express_compatible(),
            Err(e) => panic!("cannot connect to the Redis Cluster at {urls:?}: {e} ({e:?})"),
        };
        (store, cluster)
    }

    session_conformance::store_tests!(setup);
}

// ---------------------------------------------------------------------------------------------
// The layout.

async fn setup_raw() -> (RedisStore, MultiplexedConnection, Container) {
    let container = containers::redis().await;
    let store = connect(&container).await;
    let raw = redis::Client::open(container.url())
        .expect("container URL")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to the container");
    (store, raw, container)
}

fn millis(t: OffsetDateTime) -> i64 {
    session_core::clock::unix_millis(t)
}

/// `cookie.expires` as JavaScript's `toISOString` writes it.
fn js_date(t: OffsetDateTime) -> String {
    session_core::express::js_date(t)
}

/// A session as express-session 1.19 serializes it (`JSON.stringify`, cookie first, unset
/// optional cookie fields left out), with `originalMaxAge` 1 hour and the app's `username`.
fn express_json(expires: OffsetDateTime, username: &str) -> String {
    format!(
        r#"{{"cookie":{{"originalMaxAge":3600000,"expires":"{}","httpOnly":true,"path":"/"}},"username":"{username}"}}"#,
        js_date(expires)
    )
}

/// What connect-redis 9 sends to save a session: `SET key json EX ceil((expires - now) / 1000)`.
async fn connect_redis_set(
    raw: &mut MultiplexedConnection,
    key: &str,
    json: &str,
    expires: OffsetDateTime,
) {
    let ms = millis(expires) - millis(now());
    let ttl = (ms + 999).div_euclid(1000);
    assert!(
        ttl > 0,
        "connect-redis deletes instead of saving a TTL of {ttl}"
    );
    let () = redis::cmd("SET")
        .arg(key)
        .arg(json)
        .arg("EX")
        .arg(ttl)
        .query_async(raw)
        .await
        .expect("SET as connect-redis");
}

async fn get(raw: &mut MultiplexedConnection, key: &str) -> Option<String> {
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

/// The first 60 bits of the text's SHA-1, computed by Redis itself.
async fn redis_digest_version(raw: &mut MultiplexedConnection, text: &str) -> u64 {
    let hex: String = redis::cmd("EVAL")
        .arg("return redis.sha1hex(ARGV[1])")
        .arg(0)
        .arg(text)
        .query_async(raw)
        .await
        .expect("redis.sha1hex");
    foreign_version(&hex).expect("a 40-digit digest")
}

/// The stored text as express-session rebuilds it when it saves: the app's values kept, the
/// `cookie` object rebuilt from express-session's own fields (so the Rust side's are dropped),
/// and `changes` applied.
fn as_express_rewrites(stored: &str, changes: &[(&str, serde_json::Value)]) -> String {
    let mut session: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(stored).expect("stored JSON");
    let cookie = session
        .get_mut("cookie")
        .and_then(serde_json::Value::as_object_mut)
        .expect("a cookie object");
    cookie.retain(|k, _| {
        [
            "originalMaxAge",
            "partitioned",
            "priority",
            "expires",
            "secure",
            "httpOnly",
            "domain",
            "path",
            "sameSite",
        ]
        .contains(&k.as_str())
    });
    for (key, value) in changes {
        session.insert((*key).to_owned(), value.clone());
    }
    serde_json::to_string(&session).expect("JSON")
}

/// A session written by connect-redis loads in Rust: its values as plain JSON, its `cookie`
/// object, the key's expiry as `expires_at`, and as version the first 60 bits of the text's
/// SHA-1 (the same digest Redis computes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_written_session_loads() {
    let (store, mut raw, _container) = setup_raw().await;
    let id: Id = "xuPkBiPkSJh0hqy8vj3TvDkBjzODO9ch"
        .parse()
        .expect("an express-session id");
    let key = format!("sess:{}", id.as_str());
    let expires = now() + HOUR;
    let text = express_json(expires, "JohnDoe");
    connect_redis_set(&mut raw, &key, &text, expires).await;

    let before = now();
    let loaded = store.load(&id).await.expect("load").expect("live");
    assert_eq!(
        loaded.data.get::<String>("username").expect("decode"),
        Some("JohnDoe".to_owned())
    );
    let cookie = loaded
        .data
        .get::<serde_json::Value>("cookie")
        .expect("decode")
        .expect("the cookie object is data");
    assert_eq!(
        cookie,
        json!({"originalMaxAge": 3_600_000, "expires": js_date(expires), "httpOnly": true, "path": "/"})
    );
    assert_eq!(
        loaded.version,
        redis_digest_version(&mut raw, &text).await,
        "the version of a text Express wrote"
    );
    assert_eq!(
        millis(loaded.expires_at),
        expire_time(&mut raw, &key).await + 1,
        "expires_at is the key's expiry (the session expires 1 ms after the key's time)"
    );
    let since = loaded.created_at - before;
    assert!(
        since >= -time::Duration::seconds(5) && since <= time::Duration::seconds(5),
        "no created_at is stored: Redis's clock at load stands in ({since} from the test's clock)"
    );
}

/// A Rust save over a session Express wrote succeeds once; a second save from the same load
/// (a stale version) conflicts and leaves the first one's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_save_over_express_session_succeeds_once() {
    let (store, mut raw, _container) = setup_raw().await;
    let id = Id::random();
    let key = store.key(&id);
    let expires = now() + HOUR;
    connect_redis_set(&mut raw, &key, &express_json(expires, "JohnDoe"), expires).await;

    let loaded = store.load(&id).await.expect("load").expect("live");
    let mut first = loaded.clone();
    first.data.insert("visits", &1).expect("encode");
    store.save(&first).await.expect("save over Express's text");
    let mut second = loaded.clone();
    second.data.insert("visits", &2).expect("encode");
    assert!(
        matches!(store.save(&second).await, Err(Error::Conflict)),
        "a second save at the version Express's text had"
    );

    let now_stored = store.load(&id).await.expect("load").expect("live");
    assert_eq!(now_stored.version, loaded.version + 1);
    assert_eq!(
        now_stored.data.get::<i64>("visits").expect("decode"),
        Some(1)
    );
    assert_eq!(
        now_stored.data.get::<String>("username").expect("decode"),
        Some("JohnDoe".to_owned()),
        "Express's values are kept"
    );
}

/// No lost update: a Rust save at a version read before an Express write conflicts, whether the
/// Rust side or Express wrote the text it read; after a reload the save goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_write_makes_older_rust_save_conflict() {
    let (store, mut raw, _container) = setup_raw().await;
    let mut record = Record::new(Id::random(), HOUR);
    let cookie = json!({"originalMaxAge": 3_600_000, "expires": js_date(record.expires_at), "httpOnly": true, "path": "/"});
    record.data.insert("cookie", &cookie).expect("encode");
    record.data.insert("username", "JohnDoe").expect("encode");
    store.create(&record).await.expect("create");
    let key = store.key(&record.id);

    // 1. The Rust side wrote last: its version is `rsVersion`.
    let rust_read = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(rust_read.version, record.version);
    let stored = get(&mut raw, &key).await.expect("stored");
    let express_text = as_express_rewrites(&stored, &[("username", json!("Express1"))]);
    connect_redis_set(&mut raw, &key, &express_text, record.expires_at).await;
    let mut late = rust_read.clone();
    late.data.insert("username", "Rust").expect("encode");
    assert!(
        matches!(store.save(&late).await, Err(Error::Conflict)),
        "a save from before Express's write must conflict"
    );
    assert_eq!(
        get(&mut raw, &key).await.as_deref(),
        Some(express_text.as_str()),
        "Express's write is kept byte for byte"
    );

    // 2. Express wrote last: its version is the digest; another Express write changes it.
    let express_read = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        express_read.data.get::<String>("username").expect("decode"),
        Some("Express1".to_owned())
    );
    let express_text2 = as_express_rewrites(&express_text, &[("username", json!("Express2"))]);
    connect_redis_set(&mut raw, &key, &express_text2, record.expires_at).await;
    let mut late = express_read.clone();
    late.data.insert("username", "Rust").expect("encode");
    assert!(
        matches!(store.save(&late).await, Err(Error::Conflict)),
        "a save from before Express's second write must conflict"
    );

    // 3. Reloaded, the Rust save goes through on top of Express's data.
    let mut fresh = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        fresh.version,
        redis_digest_version(&mut raw, &express_text2).await
    );
    fresh.data.insert("visits", &1).expect("encode");
    store.save(&fresh).await.expect("save after reload");
    let last = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        last.data.get::<String>("username").expect("decode"),
        Some("Express2".to_owned())
    );
    assert_eq!(last.data.get::<i64>("visits").expect("decode"), Some(1));
    assert_eq!(last.version, fresh.version + 1);
}

/// What Rust writes is connect-redis's shape: a string under `sess:{id}`, express-session's JSON
/// with the `cookie` object first (the Rust side's `rsVersion` and `rsCreated` in it, which
/// express-session ignores), the values as plain JSON, and a key expiring with the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_writes_connect_redis_shape() {
    let (store, mut raw, _container) = setup_raw().await;
    assert_eq!(store.prefix(), "sess:");
    assert!(store.is_express_compatible());
    let mut record = Record::new(Id::random(), HOUR);
    record.version = 12;
    let cookie = json!({"originalMaxAge": 3_600_000, "expires": js_date(record.expires_at), "httpOnly": true, "path": "/"});
    record.data.insert("cookie", &cookie).expect("encode");
    record.data.insert("username", "JohnDoe").expect("encode");
    record
        .data
        .insert("cart", &json!({"items": [1, 2], "total": 9.5}))
        .expect("encode");
    store.create(&record).await.expect("create");

    let key = format!("sess:{}", record.id.as_str());
    assert_eq!(store.key(&record.id), key);
    let kind: String = redis::cmd("TYPE")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .expect("TYPE");
    assert_eq!(kind, "string");
    let text = get(&mut raw, &key).await.expect("stored under sess:{id}");
    assert!(
        text.starts_with(r#"{"cookie":{"#),
        "cookie first, as JSON.stringify writes express-session's object: {text}"
    );
    let stored: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let mut expected_cookie = cookie.clone();
    expected_cookie["rsVersion"] = json!("12");
    expected_cookie["rsCreated"] = json!(millis(record.created_at));
    assert_eq!(
        stored,
        json!({
            "cookie": expected_cookie,
            "username": "JohnDoe",
            "cart": {"items": [1, 2], "total": 9.5},
        }),
        "stored text {text}"
    );
    assert_eq!(
        expire_time(&mut raw, &key).await,
        millis(record.expires_at) - 1,
        "the key expires with the session"
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .expect("KEYS");
    assert_eq!(keys, vec![key], "one key per session, nothing else");

    // A save keeps the shape, bumps rsVersion and moves the expiry.
    let mut changed = store.load(&record.id).await.expect("load").expect("live");
    changed.expires_at = now() + time::Duration::hours(2);
    store.save(&changed).await.expect("save");
    let stored: serde_json::Value =
        serde_json::from_str(&get(&mut raw, &store.key(&record.id)).await.expect("stored"))
            .expect("JSON");
    assert_eq!(stored["cookie"]["rsVersion"], json!("13"));
    assert_eq!(stored["username"], json!("JohnDoe"));
    assert_eq!(
        expire_time(&mut raw, &store.key(&record.id)).await,
        millis(changed.expires_at) - 1
    );
}

/// Data without a `cookie` object (a session the Rust side made outside express mode) is
/// written with one, so that express-session can read it; it marks itself and is left out of
/// the data on load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_without_cookie_gets_a_readable_one() {
    let (store, mut raw, _container) = setup_raw().await;
    let mut record = Record::new(Id::random(), HOUR);
    record.data.insert("username", "JohnDoe").expect("encode");
    store.create(&record).await.expect("create");
    let stored: serde_json::Value =
        serde_json::from_str(&get(&mut raw, &store.key(&record.id)).await.expect("stored"))
            .expect("JSON");
    assert_eq!(
        stored["cookie"]["expires"],
        json!(js_date(record.expires_at))
    );
    assert_eq!(stored["cookie"]["path"], json!("/"));
    assert_eq!(stored["cookie"]["httpOnly"], json!(true));
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        loaded.data, record.data,
        "no cookie key appears in the data"
    );
}

/// Rust's `touch` is connect-redis's: the key's expiry moves, the text stays byte for byte, so
/// the version (here a digest of Express's text) is unchanged and a save from before the touch
/// still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_moves_only_the_key_expiry() {
    let (store, mut raw, _container) = setup_raw().await;
    let id = Id::random();
    let key = store.key(&id);
    let expires = now() + HOUR;
    let text = express_json(expires, "JohnDoe");
    connect_redis_set(&mut raw, &key, &text, expires).await;
    let loaded = store.load(&id).await.expect("load").expect("live");

    let later = now() + time::Duration::hours(5);
    assert!(
        store.touch(&id, later).await.expect("touch"),
        "a live session"
    );
    assert_eq!(get(&mut raw, &key).await.as_deref(), Some(text.as_str()));
    assert_eq!(expire_time(&mut raw, &key).await, millis(later) - 1);
    let touched = store.load(&id).await.expect("load").expect("live");
    assert_eq!(touched.expires_at, later);
    assert_eq!(touched.version, loaded.version);
    store
        .save(&loaded)
        .await
        .expect("save from before the touch");
}

/// Express's own touch (`EXPIRE`, for an unmodified session) keeps the Rust side's version: a
/// Rust save from before it goes through, and the key's new expiry is what loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_touch_keeps_the_rust_version() {
    let (store, mut raw, _container) = setup_raw().await;
    let record = Record::new(Id::random(), HOUR);
    store.create(&record).await.expect("create");
    let key = store.key(&record.id);
    let () = redis::cmd("EXPIRE")
        .arg(&key)
        .arg(7200)
        .query_async(&mut raw)
        .await
        .expect("EXPIRE as connect-redis's touch");
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.version, record.version);
    assert_eq!(
        millis(loaded.expires_at),
        expire_time(&mut raw, &key).await + 1
    );
    assert!(loaded.expires_at > record.expires_at + time::Duration::minutes(59));
    store.save(&record).await.expect("save at the same version");
}

/// A session Express destroyed (`DEL`) is gone for the Rust side: load is `None`, save is
/// `NotFound`, touch reports absence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_destroy_logs_out_on_the_rust_side() {
    let (store, mut raw, _container) = setup_raw().await;
    let record = Record::new(Id::random(), HOUR);
    store.create(&record).await.expect("create");
    let () = redis::cmd("DEL")
        .arg(store.key(&record.id))
        .query_async(&mut raw)
        .await
        .expect("DEL as connect-redis's destroy");
    assert!(store.load(&record.id).await.expect("load").is_none());
    assert!(matches!(store.save(&record).await, Err(Error::NotFound)));
    assert!(!store.touch(&record.id, now() + HOUR).await.expect("touch"));
}

/// A key connect-redis wrote without an expiry (its `disableTTL`) loads with `expires_at` one
/// day after Redis's clock; the Rust side's next write gives the key an expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_without_expiry_loads_for_a_day() {
    let (store, mut raw, _container) = setup_raw().await;
    let id = Id::random();
    let key = store.key(&id);
    let () = redis::cmd("SET")
        .arg(&key)
        .arg(express_json(now() + HOUR, "JohnDoe"))
        .query_async(&mut raw)
        .await
        .expect("SET without expiry");
    let loaded = store.load(&id).await.expect("load").expect("live");
    let ahead = loaded.expires_at - now();
    assert!(
        ahead > time::Duration::hours(23) && ahead <= time::Duration::hours(24),
        "expires_at {ahead} ahead"
    );
    store.save(&loaded).await.expect("save");
    assert_eq!(
        expire_time(&mut raw, &key).await,
        millis(loaded.expires_at) - 1
    );
}

/// What express-session itself fails on (no `cookie` object, invalid JSON, a key of another
/// type) is `Error::Decode` for every operation that reads it, and nothing is overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_values_are_decode_errors() {
    let (store, mut raw, _container) = setup_raw().await;
    for bad in [
        r#"{"username":"JohnDoe"}"#,
        "not json",
        r#"{"cookie":"text"}"#,
        "[]",
        r#"{"cookie":{"rsVersion":7}}"#,
    ] {
        let id = Id::random();
        let key = store.key(&id);
        connect_redis_set(&mut raw, &key, bad, now() + HOUR).await;
        assert!(
            matches!(store.load(&id).await, Err(Error::Decode(_))),
            "load of {bad}"
        );
        let record = Record::new(id.clone(), HOUR);
        assert!(
            matches!(store.save(&record).await, Err(Error::Decode(_))),
            "save over {bad}"
        );
        assert_eq!(
            get(&mut raw, &key).await.as_deref(),
            Some(bad),
            "{bad} kept"
        );
    }

    let id = Id::random();
    let key = store.key(&id);
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg("f")
        .arg("v")
        .query_async(&mut raw)
        .await
        .expect("HSET");
    assert!(matches!(store.load(&id).await, Err(Error::Decode(_))));
    assert!(matches!(
        store.save(&Record::new(id.clone(), HOUR)).await,
        Err(Error::Decode(_))
    ));
    assert!(matches!(
        store.touch(&id, now() + HOUR).await,
        Err(Error::Decode(_))
    ));
    store.delete(&id).await.expect("delete removes anything");
    assert!(get(&mut raw, &key).await.is_none());
}

/// connect-redis's `prefix` option: `with_prefix` after `express_compatible` changes the key;
/// the codec option does not change the stored form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_is_configurable_and_codec_unused() {
    let (store, mut raw, _container) = setup_raw().await;
    let store = store
        .with_prefix("myapp:")
        .expect("valid prefix")
        .with_codec(session_core::MessagePack);
    let mut record = Record::new(Id::random(), HOUR);
    record.data.insert("username", "JohnDoe").expect("encode");
    store.create(&record).await.expect("create");
    let text = get(&mut raw, &format!("myapp:{}", record.id.as_str()))
        .await
        .expect("stored under the configured prefix");
    let stored: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(stored["username"], json!("JohnDoe"));
    assert!(
        get(&mut raw, &format!("sess:{}", record.id.as_str()))
            .await
            .is_none()
    );
}
