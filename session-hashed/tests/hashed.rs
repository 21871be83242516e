//! What `HashedIds` promises beyond the suite: the inner store never sees a raw id (checked on
//! a recording store, and on every key and value of a Redis server), `load` answers under the
//! caller's id, the at-rest id is stable and keyed, and short keys are refused.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use session_core::{Error, Id, Principals, Record, Result, Store};
use session_hashed::HashedIds;
use session_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const KEY: &[u8; 32] = b"an example key of 32 bytes, test";
const HOUR: Duration = Duration::hours(1);

fn session(principal: Option<&str>) -> Record {
    let mut record = Record::new(Id::random(), HOUR);
    record.data.insert("user", &"ada").expect("encode");
    record.principal = principal.map(str::to_owned);
    record
}

/// A memory store that notes every id it is given or gives back.
#[derive(Default)]
struct Recording {
    inner: MemoryStore,
    seen: Mutex<Vec<String>>,
}

impl Recording {
    fn see(&self, id: &Id) {
        self.seen
            .lock()
            .expect("not poisoned")
            .push(id.as_str().to_owned());
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

#[async_trait]
impl Store for Recording {
    fn principals(&self) -> Option<&dyn Principals> {
        Some(self)
    }
    async fn create(&self, record: &Record) -> Result<()> {
        self.see(&record.id);
        self.inner.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.see(id);
        let loaded = self.inner.load(id).await?;
        if let Some(record) = &loaded {
            self.see(&record.id);
        }
        Ok(loaded)
    }
    async fn save(&self, record: &Record) -> Result<()> {
        self.see(&record.id);
        self.inner.save(record).await
    }
    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        self.see(id);
        self.inner.touch(id, expires_at).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.see(id);
        self.inner.delete(id).await
    }
}

#[async_trait]
impl Principals for Recording {
    async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>> {
        let listed = self.inner.sessions_of(principal).await?;
        for record in &listed {
            self.see(&record.id);
        }
        Ok(listed)
    }
    async fn revoke(&self, principal: &str, id: &Id) -> Result<bool> {
        self.see(id);
        self.inner.revoke(principal, id).await
    }
    async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64> {
        if let Some(id) = keep {
            self.see(id);
        }
        self.inner.revoke_all(principal, keep).await
    }
}

/// Every operation, principals included, reaches the inner store with at-rest ids only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_store_never_sees_a_raw_id() {
    let recording = Arc::new(Recording::default());
    let store = HashedIds::new(recording.clone(), KEY).expect("key");
    let ada = format!("ada-{}", Id::random().as_str());
    let sessions: Vec<Record> = (0..4).map(|_| session(Some(&ada))).collect();
    let anonymous = session(None);
    for record in sessions.iter().chain([&anonymous]) {
        store.create(record).await.expect("create");
    }
    let outcome = store.create(&sessions[0]).await;
    assert!(matches!(outcome, Err(Error::AlreadyExists)), "{outcome:?}");
    let mut loaded = store
        .load(&sessions[0].id)
        .await
        .expect("load")
        .expect("live");
    loaded.data.insert("visits", &2).expect("encode");
    store.save(&loaded).await.expect("save");
    assert!(
        store
            .touch(&sessions[1].id, session_core::now() + HOUR)
            .await
            .expect("touch")
    );
    let listed = store.sessions_of(&ada).await.expect("sessions_of");
    assert_eq!(listed.len(), 4);
    assert!(store.revoke(&ada, &listed[0].id).await.expect("revoke"));
    store
        .revoke_all(&ada, Some(&sessions[3].id))
        .await
        .expect("revoke_all");
    store.delete(&sessions[3].id).await.expect("delete");
    store.delete(&anonymous.id).await.expect("delete");

    let seen = recording.seen();
    for record in sessions.iter().chain([&anonymous]) {
        assert!(
            !seen.iter().any(|s| s == record.id.as_str()),
            "the inner store saw the raw id {:?}",
            record.id
        );
        let at_rest = store.at_rest_id(&record.id);
        assert!(
            seen.iter().any(|s| s == at_rest.as_str()),
            "the inner store never saw the at-rest id of {:?}: nothing reached it?",
            record.id
        );
    }
}

/// `load` answers under the caller's id; the inner store holds the session under the at-rest
/// id only; a wrapper with another key over the same store finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_answers_under_the_callers_id() {
    let inner = MemoryStore::new();
    let store = HashedIds::new(inner.clone(), KEY).expect("key");
    let record = session(Some("ada"));
    store.create(&record).await.expect("create");
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        loaded, record,
        "the record as created, under the caller's id"
    );

    let at_rest = store.at_rest_id(&record.id);
    assert!(inner.load(&record.id).await.expect("load").is_none());
    let stored = inner.load(&at_rest).await.expect("load").expect("stored");
    assert_eq!(stored.id, at_rest);
    assert_eq!(stored.data, record.data);

    let other_key = HashedIds::new(inner, &[1u8; 32]).expect("key");
    assert!(
        other_key.load(&record.id).await.expect("load").is_none(),
        "another key hashes to another at-rest id"
    );
}

/// The at-rest id is HMAC-SHA256 under the key of a fixed context and the id, URL-safe base64:
/// stable across releases (else stored sessions would be lost), different under other keys.
#[test]
fn at_rest_id_is_a_stable_keyed_hash() {
    let store = HashedIds::new(MemoryStore::new(), KEY).expect("key");
    let id: Id = "abcdefghijklmnopqrstuvwxyzABCDEF".parse().expect("an id");
    // Computed independently of this crate (Python's hmac module).
    assert_eq!(
        store.at_rest_id(&id).as_str(),
        "c2F1irX4Bx749rrewe8glqExhdK0oQqNueXN8Mn_iFA"
    );
    let other = HashedIds::new(MemoryStore::new(), &[KEY.as_slice(), b"!"].concat()).expect("key");
    assert_ne!(other.at_rest_id(&id), store.at_rest_id(&id));
    let random = Id::random();
    assert_eq!(store.at_rest_id(&random), store.at_rest_id(&random));
    assert_ne!(store.at_rest_id(&random), store.at_rest_id(&id));
}

#[test]
fn short_keys_are_refused() {
    for len in [0, 16, 31] {
        let outcome = HashedIds::new(MemoryStore::new(), &vec![7u8; len]);
        assert!(
            matches!(outcome, Err(Error::InvalidConfig(_))),
            "a {len}-byte key: {outcome:?}"
        );
    }
    for len in [32, 64, 200] {
        assert!(
            HashedIds::new(MemoryStore::new(), &vec![7u8; len]).is_ok(),
            "{len} bytes"
        );
    }
    let store = HashedIds::new(MemoryStore::new(), KEY).expect("key");
    assert!(
        !format!("{store:?}").contains("example key"),
        "Debug shows no key: {store:?}"
    );
}

/// A store without cleanup or principals: the wrapper has none either.
struct Plain(MemoryStore);

#[async_trait]
impl Store for Plain {
    async fn create(&self, record: &Record) -> Result<()> {
        self.0.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.0.load(id).await
    }
    async fn save(&self, record: &Record) -> Result<()> {
        self.0.save(record).await
    }
    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        self.0.touch(id, expires_at).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.0.delete(id).await
    }
}

#[tokio::test]
async fn principals_follow_the_inner_store() {
    assert!(
        HashedIds::new(MemoryStore::new(), KEY)
            .expect("key")
            .principals()
            .is_some()
    );
    let plain = HashedIds::new(Plain(MemoryStore::new()), KEY).expect("key");
    assert!(plain.principals().is_none());
    let outcome = plain.revoke_all("ada", None).await;
    assert!(
        matches!(outcome, Err(Error::InvalidConfig(_))),
        "{outcome:?}"
    );
}

/// A Redis server behind `HashedIds` holds no raw id, in any key or value, after sessions with
/// principals were created, saved, touched, listed and revoked.
mod redis_server {
    use super::*;
    use redis::AsyncCommands;
    use session_redis::RedisStore;
    use session_testcontainers as containers;

    /// Every key of the server and every string in its values.
    async fn everything(url: &str) -> Vec<(String, Vec<Vec<u8>>)> {
        let client = redis::Client::open(url).expect("a Redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the Redis container");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        let mut found = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("TYPE");
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![conn.get(&key).await.expect("GET")],
                "set" => conn.smembers(&key).await.expect("SMEMBERS"),
                "zset" => conn.zrange(&key, 0, -1).await.expect("ZRANGE"),
                "list" => conn.lrange(&key, 0, -1).await.expect("LRANGE"),
                "hash" => {
                    let pairs: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&key).await.expect("HGETALL");
                    pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
                }
                other => panic!("key {key:?} has type {other}, which this test cannot read"),
            };
            found.push((key, values));
        }
        found
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_holds_no_raw_id() {
        let container = containers::redis().await;
        let redis = match RedisStore::connect(container.url()).await {
            Ok(store) => store,
            Err(e) => panic!("cannot connect to {}: {e} ({e:?})", container.url()),
        };
        let store = HashedIds::new(redis, KEY).expect("key");
        let ada = format!("ada-{}", Id::random().as_str());
        let sessions: Vec<Record> = (0..4).map(|_| session(Some(&ada))).collect();
        for record in &sessions {
            store.create(record).await.expect("create");
        }
        let anonymous = session(None);
        store.create(&anonymous).await.expect("create");
        let loaded = store
            .load(&sessions[0].id)
            .await
            .expect("load")
            .expect("live");
        store.save(&loaded).await.expect("save");
        assert!(
            store
                .touch(&sessions[1].id, session_core::now() + HOUR)
                .await
                .expect("touch")
        );
        // The listing's order is the order its loads complete in: revoke the first session by
        // the (at-rest) id the listing gives for it, whatever its place in the list.
        let listed = store.sessions_of(&ada).await.expect("sessions_of");
        let first = store.at_rest_id(&sessions[0].id);
        assert!(
            listed.iter().any(|record| record.id == first),
            "the listing holds the first session"
        );
        assert!(store.revoke(&ada, &first).await.expect("revoke"));

        let contents = everything(container.url()).await;
        for record in sessions.iter().chain([&anonymous]) {
            let raw = record.id.as_str();
            for (key, values) in &contents {
                assert!(
                    !key.contains(raw),
                    "the key {key:?} holds the raw id {raw:?}"
                );
                assert!(
                    !values.iter().any(|v| contains(v, raw)),
                    "the value of {key:?} holds the raw id {raw:?}"
                );
            }
        }
        // Not vacuous: the sessions are there, under their at-rest ids.
        for record in &sessions[1..] {
            let at_rest = store.at_rest_id(&record.id);
            assert!(
                contents
                    .iter()
                    .any(|(key, values)| key.contains(at_rest.as_str())
                        || values.iter().any(|v| contains(v, at_rest.as_str()))),
                "Redis holds nothing under the at-rest id of {:?}: {:?}",
                record.id,
                contents.iter().map(|(k, _)| k).collect::<Vec<_>>()
            );
        }
        assert!(store.load(&sessions[1].id).await.expect("load").is_some());
    }
}
