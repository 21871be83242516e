//! The sessions of a principal in this store's own layout and index, against a standalone Redis
//! in a container (the suite's `principal_tests!` run in `conformance.rs` and `cluster.rs`): the
//! principal stored after the header, records written before principals still loading, the
//! sorted set per principal, its scores, when it is written, its pruning and its expiry, and the
//! checks that keep stale entries out of sight.

use redis::aio::MultiplexedConnection;
use session_core::{Codec, Error, Id, MessagePack, Principals, Record, Store, now};
use session_redis::RedisStore;
use session_testcontainers::{self as containers, Container};

const HOUR: time::Duration = time::Duration::hours(1);

async fn connect(container: &Container) -> RedisStore {
    match RedisStore::connect(container.url()).await {
        Ok(store) => store,
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

/// The store, a raw connection to its server, and the container.
async fn setup_raw() -> (RedisStore, MultiplexedConnection, Container) {
    let (store, container) = setup().await;
    let raw = redis::Client::open(container.url())
        .expect("container URL")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to the container");
    (store, raw, container)
}

fn millis(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("in range")
}

/// A fresh principal, so that no two cases share an index.
fn principal() -> String {
    format!("user-{}", Id::random().as_str())
}

fn session_of(principal: &str, lifetime: time::Duration) -> Record {
    let mut record = Record::new(Id::random(), lifetime).with_principal(Some(principal.to_owned()));
    record.data.insert("user", &principal).expect("encode");
    record
}

async fn value(raw: &mut MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(raw)
        .await
        .expect("GET")
}

async fn score(raw: &mut MultiplexedConnection, key: &str, id: &Id) -> Option<i64> {
    redis::cmd("ZSCORE")
        .arg(key)
        .arg(id.as_str())
        .query_async::<Option<f64>>(raw)
        .await
        .expect("ZSCORE")
        .map(|score| {
            assert_eq!(score.fract(), 0.0, "scores are whole milliseconds");
            #[expect(clippy::cast_possible_truncation, reason = "checked to be whole")]
            let score = score as i64;
            score
        })
}

async fn members(raw: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    let mut members: Vec<String> = redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(raw)
        .await
        .expect("ZRANGE");
    members.sort();
    members
}

async fn zadd(raw: &mut MultiplexedConnection, key: &str, score: i64, member: &str) {
    let _: i64 = redis::cmd("ZADD")
        .arg(key)
        .arg(score)
        .arg(member)
        .query_async(raw)
        .await
        .expect("ZADD");
}

async fn expire_time(raw: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(raw)
        .await
        .expect("PEXPIRETIME")
}

/// Redis's clock, Unix ms.
async fn redis_now(raw: &mut MultiplexedConnection) -> i64 {
    let (seconds, micros): (i64, i64) = redis::cmd("TIME").query_async(raw).await.expect("TIME");
    seconds * 1000 + micros / 1000
}

/// The 25-byte header: layout, `created_at` ms, version, `expires_at` ms, big-endian.
fn header(layout: u8, created_ms: i64, version: u64, expires_ms: i64) -> Vec<u8> {
    let mut header = vec![layout];
    header.extend_from_slice(&created_ms.to_be_bytes());
    header.extend_from_slice(&version.to_be_bytes());
    header.extend_from_slice(&expires_ms.to_be_bytes());
    header
}

/// `RedisStore::INDEX_HEADROOM` in ms.
fn headroom() -> i64 {
    i64::try_from(RedisStore::INDEX_HEADROOM.as_millis()).expect("small")
}

/// `RedisStore::INDEX_GRACE` in ms.
fn grace() -> i64 {
    i64::try_from(RedisStore::INDEX_GRACE.as_millis()).expect("small")
}

/// How many `ZADD`s the server has run, scripts' included.
async fn zadds(raw: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .expect("INFO commandstats");
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_zadd:calls="))
        .map_or(0, |rest| {
            rest.split(',')
                .next()
                .and_then(|calls| calls.parse().ok())
                .expect("a call count")
        })
}

/// The `indexed_until` stored in a layout 2 value.
fn indexed_until(value: &[u8]) -> i64 {
    assert_eq!(value[0], 2, "a layout 2 value");
    i64::from_be_bytes(value[25..33].try_into().expect("8 bytes"))
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn ids(records: &[Record]) -> Vec<String> {
    sorted(records.iter().map(|r| r.id.as_str().to_owned()).collect())
}

/// A session with a principal is layout 2: the header (first byte 2), `indexed_until` (its index
/// entry's score, 8 bytes big-endian), the principal's length (two bytes, big-endian), the
/// principal, then the data, exactly as without one otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_principal_is_stored_after_the_header() {
    let (store, mut raw, _container) = setup_raw().await;
    let who = "ada lovelace {tag} é";
    let mut record = session_of(who, HOUR);
    record.version = 7;
    store.create(&record).await.expect("create");
    let stored = value(&mut raw, &store.key(&record.id))
        .await
        .expect("the key exists");
    let mut expected = header(2, millis(record.created_at), 7, millis(record.expires_at));
    let indexed_until = millis(record.expires_at) + headroom();
    expected.extend_from_slice(&indexed_until.to_be_bytes());
    expected.extend_from_slice(&u16::try_from(who.len()).expect("short").to_be_bytes());
    expected.extend_from_slice(who.as_bytes());
    expected.extend(MessagePack.encode(&record.data).expect("encode"));
    assert_eq!(
        stored, expected,
        "stored value of a session with a principal"
    );
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.principal.as_deref(), Some(who));

    // Saved without a principal, it is layout 1 again: what earlier releases read.
    let mut anonymous = loaded.clone().with_principal(None);
    anonymous.data.remove("user");
    store
        .save(&anonymous)
        .await
        .expect("save without a principal");
    let stored = value(&mut raw, &store.key(&record.id))
        .await
        .expect("the key exists");
    assert_eq!(stored[0], 1, "no principal, layout 1");
    assert_eq!(
        &stored[25..],
        MessagePack
            .encode(&anonymous.data)
            .expect("encode")
            .as_slice(),
        "the data right after the header"
    );
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.principal, None);
    assert_eq!(loaded.version, 8);
}

/// A value written before principals existed (layout 1, as earlier releases wrote it) loads
/// with no principal, can be touched, and a save that gives it a principal makes it that
/// principal's session, keeping its stored `created_at`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_before_principals_still_load() {
    let (store, mut raw, _container) = setup_raw().await;
    let id = Id::random();
    let created = now() - time::Duration::minutes(5);
    let expires = now() + HOUR;
    let mut data = session_core::Data::new();
    data.insert("visits", &3).expect("encode");
    let mut old = header(1, millis(created), 4, millis(expires));
    old.extend(MessagePack.encode(&data).expect("encode"));
    let _: () = redis::cmd("SET")
        .arg(store.key(&id))
        .arg(&old)
        .arg("PXAT")
        .arg(millis(expires) - 1)
        .query_async(&mut raw)
        .await
        .expect("SET an old record");

    let loaded = store.load(&id).await.expect("load").expect("live");
    assert_eq!(loaded.principal, None, "an old record has no principal");
    assert_eq!(loaded.version, 4);
    assert_eq!(loaded.created_at, created);
    assert_eq!(loaded.data.get::<i64>("visits").expect("decode"), Some(3));
    let later = now() + 2 * HOUR;
    assert!(store.touch(&id, later).await.expect("touch an old record"));

    // Login: the same session gets a principal. The record handed to save carries another
    // `created_at`; the stored one is kept, and the layout byte is the new value's.
    let who = principal();
    let mut login = loaded.with_principal(Some(who.clone()));
    login.expires_at = later;
    login.created_at = now();
    store.save(&login).await.expect("save with a principal");
    let stored = value(&mut raw, &store.key(&id))
        .await
        .expect("the key exists");
    assert_eq!(stored[0], 2, "now layout 2");
    assert_eq!(
        &stored[1..9],
        &millis(created).to_be_bytes(),
        "created_at kept"
    );
    let reloaded = store.load(&id).await.expect("load").expect("live");
    assert_eq!(reloaded.principal.as_deref(), Some(who.as_str()));
    assert_eq!(reloaded.created_at, created);
    assert_eq!(
        ids(&store.sessions_of(&who).await.expect("list")),
        vec![id.as_str().to_owned()]
    );
}

/// The index of a principal is a sorted set under `principal_key`: each write that adds a
/// session scores it at its `expires_at` plus `INDEX_HEADROOM` (Unix ms), never lowering a
/// score, and the set expires `INDEX_GRACE` after its latest entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_a_sorted_set_scored_by_expiry() {
    let (store, mut raw, _container) = setup_raw().await;
    let store = store.with_prefix("app:").expect("valid prefix");
    let who = principal();
    let key = store.principal_key(&who);
    assert_eq!(key, format!("app:principal:{who}"));

    let first = session_of(&who, HOUR);
    store.create(&first).await.expect("create");
    let first_score = millis(first.expires_at) + headroom();
    assert_eq!(score(&mut raw, &key, &first.id).await, Some(first_score));
    assert_eq!(expire_time(&mut raw, &key).await, first_score + grace());

    let second = session_of(&who, 3 * HOUR);
    store.create(&second).await.expect("create");
    let second_score = millis(second.expires_at) + headroom();
    assert_eq!(
        expire_time(&mut raw, &key).await,
        second_score + grace(),
        "the index lives as long as its latest entry"
    );

    // A session moved to this principal is added with its own score.
    let other = principal();
    let mut moved = session_of(&other, 5 * HOUR);
    store.create(&moved).await.expect("create");
    let created_score = millis(moved.expires_at) + headroom();
    moved.principal = Some(who.clone());
    moved.expires_at = now() + time::Duration::minutes(10);
    store.save(&moved).await.expect("move to this principal");
    assert_eq!(
        score(&mut raw, &key, &moved.id).await,
        Some(millis(moved.expires_at) + headroom())
    );
    assert_eq!(
        score(&mut raw, &store.principal_key(&other), &moved.id).await,
        Some(created_score),
        "the old principal's entry stays until pruning"
    );

    // `ZADD GT` never lowers a score: a session moved away and back with a shorter expiry
    // keeps its entry's higher score.
    let mut away = store.load(&first.id).await.expect("load").expect("live");
    away.principal = Some(other.clone());
    store.save(&away).await.expect("move away");
    let mut back = store.load(&first.id).await.expect("load").expect("live");
    back.principal = Some(who.clone());
    back.expires_at = now() + time::Duration::minutes(10);
    store.save(&back).await.expect("move back");
    assert_eq!(score(&mut raw, &key, &first.id).await, Some(first_score));

    // Sessions without a principal write no index.
    let anonymous = Record::new(Id::random(), HOUR);
    store.create(&anonymous).await.expect("create");
    let mut indexes: Vec<String> = redis::cmd("KEYS")
        .arg("app:principal:*")
        .query_async(&mut raw)
        .await
        .expect("KEYS");
    indexes.sort();
    assert_eq!(indexes, sorted(vec![key, store.principal_key(&other)]));
}

/// A `touch` or `save` that keeps a session its principal's with an expiry within what its
/// index entry covers (`indexed_until`) writes no index and keeps `indexed_until`; one past it
/// first moves the entry to the new expiry plus the headroom, and stores that. A touch into
/// the past needs no index either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_written_only_when_it_does_not_cover_the_expiry() {
    let (store, mut raw, _container) = setup_raw().await;
    let who = principal();
    let key = store.principal_key(&who);
    let record = session_of(&who, HOUR);
    store.create(&record).await.expect("create");
    let session_key = store.key(&record.id);
    let covered = millis(record.expires_at) + headroom();
    let stored = value(&mut raw, &session_key).await.expect("live");
    assert_eq!(indexed_until(&stored), covered);

    // Within the headroom: one round trip each, no ZADD.
    let before = zadds(&mut raw).await;
    let within = record.expires_at + time::Duration::minutes(30);
    assert!(store.touch(&record.id, within).await.expect("touch"));
    let mut saved = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(saved.expires_at, within);
    saved.data.insert("visits", &1).expect("encode");
    saved.expires_at = record.expires_at + time::Duration::minutes(50);
    store.save(&saved).await.expect("save within the headroom");
    assert_eq!(zadds(&mut raw).await, before, "no index write");
    let stored = value(&mut raw, &session_key).await.expect("live");
    assert_eq!(indexed_until(&stored), covered, "indexed_until kept");
    assert_eq!(score(&mut raw, &key, &record.id).await, Some(covered));

    // Past it: the entry first.
    let later = now() + 5 * HOUR;
    assert!(store.touch(&record.id, later).await.expect("touch"));
    assert_eq!(zadds(&mut raw).await, before + 1, "one index write");
    let covered = millis(later) + headroom();
    assert_eq!(score(&mut raw, &key, &record.id).await, Some(covered));
    let stored = value(&mut raw, &session_key).await.expect("live");
    assert_eq!(indexed_until(&stored), covered);
    assert_eq!(
        store
            .load(&record.id)
            .await
            .expect("load")
            .expect("live")
            .expires_at,
        later
    );
    let mut saved = store.load(&record.id).await.expect("load").expect("live");
    saved.expires_at = later + 2 * HOUR;
    store.save(&saved).await.expect("save past the headroom");
    assert_eq!(zadds(&mut raw).await, before + 2, "one index write");
    let covered = millis(saved.expires_at) + headroom();
    assert_eq!(score(&mut raw, &key, &record.id).await, Some(covered));
    let stored = value(&mut raw, &session_key).await.expect("live");
    assert_eq!(indexed_until(&stored), covered);

    // A login (a principal where there was none) always writes the index.
    let anonymous = Record::new(Id::random(), HOUR);
    store.create(&anonymous).await.expect("create");
    let login = anonymous.clone().with_principal(Some(who.clone()));
    store.save(&login).await.expect("login");
    assert_eq!(zadds(&mut raw).await, before + 3, "one index write");
    assert_eq!(
        score(&mut raw, &key, &anonymous.id).await,
        Some(millis(anonymous.expires_at) + headroom())
    );

    // Into the past: deleted, no index write.
    assert!(
        store
            .touch(&record.id, now() - time::Duration::seconds(1))
            .await
            .expect("touch into the past")
    );
    assert_eq!(zadds(&mut raw).await, before + 3);
    assert!(store.load(&record.id).await.expect("load").is_none());
}

/// Entries more than `INDEX_GRACE` past their score by Redis's clock are removed whenever the
/// index is listed, revoked from or written to; younger ones stay (a Cluster master's clock may
/// run ahead) but are never listed, since their sessions have expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_pruned_when_listed_or_written() {
    let (store, mut raw, _container) = setup_raw().await;
    let who = principal();
    let key = store.principal_key(&who);
    let grace = grace();
    let live = session_of(&who, HOUR);
    store.create(&live).await.expect("create");

    // Three ways to the index: listing, revoke_all, and a write to it (a create).
    for round in 0..3 {
        let old = plant(&mut raw, &key, grace + 60_000).await;
        let young = plant(&mut raw, &key, grace / 2).await;
        assert_eq!(
            members(&mut raw, &key).await,
            sorted(vec![
                old.clone(),
                young.clone(),
                live.id.as_str().to_owned()
            ])
        );
        match round {
            0 => {
                let listed = store.sessions_of(&who).await.expect("list");
                assert_eq!(ids(&listed), vec![live.id.as_str().to_owned()]);
            }
            1 => {
                let keep = live.id.clone();
                assert_eq!(
                    store
                        .revoke_all(&who, Some(&keep))
                        .await
                        .expect("revoke all"),
                    0
                );
            }
            _ => {
                let another = session_of(&who, HOUR);
                store.create(&another).await.expect("create");
            }
        }
        let left = members(&mut raw, &key).await;
        assert!(
            !left.contains(&old),
            "round {round}: the old entry is pruned"
        );
        assert!(
            left.contains(&young),
            "round {round}: an entry within the grace stays"
        );
        let _: i64 = redis::cmd("ZREM")
            .arg(&key)
            .arg(&young)
            .query_async(&mut raw)
            .await
            .expect("ZREM");
    }
}

/// Adds an entry `age` ms past its score by Redis's clock to the index `key`; returns its id.
async fn plant(raw: &mut MultiplexedConnection, key: &str, age: i64) -> String {
    let id = Id::random();
    let now = redis_now(raw).await;
    zadd(raw, key, now - age, id.as_str()).await;
    id.as_str().to_owned()
}

/// An index whose every session has expired disappears by itself: Redis expires the set the
/// grace after its latest entry, and pruning removes its last entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_of_expired_sessions_disappears() {
    let (store, mut raw, _container) = setup_raw().await;
    let who = principal();
    let key = store.principal_key(&who);
    // Expired on arrival, its score (expiry plus headroom) past the grace: the write adds it,
    // prunes it, and the empty set is no key at all; the session itself is never stored.
    let expired = session_of(&who, -(HOUR + time::Duration::minutes(5)));
    store.create(&expired).await.expect("create");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0, "nothing left of the index");
    assert!(store.load(&expired.id).await.expect("load").is_none());
    assert!(store.sessions_of(&who).await.expect("list").is_empty());
}

/// An entry outlives a move to another principal, a delete and a revoke, until pruning; none of
/// them shows in the old principal's listing nor is revoked in its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_entries_are_never_listed_nor_revoked() {
    let (store, mut raw, _container) = setup_raw().await;
    let (ada, bob) = (principal(), principal());
    let moved = session_of(&ada, HOUR);
    let deleted = session_of(&ada, HOUR);
    let logged_out = session_of(&ada, HOUR);
    let kept = session_of(&ada, HOUR);
    for record in [&moved, &deleted, &logged_out, &kept] {
        store.create(record).await.expect("create");
    }
    let mut to_bob = store.load(&moved.id).await.expect("load").expect("live");
    to_bob.principal = Some(bob.clone());
    store.save(&to_bob).await.expect("move to bob");
    let mut logout = store
        .load(&logged_out.id)
        .await
        .expect("load")
        .expect("live");
    logout.principal = None;
    store.save(&logout).await.expect("log out");
    store.delete(&deleted.id).await.expect("delete");

    assert_eq!(
        members(&mut raw, &store.principal_key(&ada)).await.len(),
        4,
        "the entries stay until pruning"
    );
    assert_eq!(
        ids(&store.sessions_of(&ada).await.expect("list")),
        vec![kept.id.as_str().to_owned()]
    );
    assert_eq!(
        ids(&store.sessions_of(&bob).await.expect("list")),
        vec![moved.id.as_str().to_owned()]
    );
    assert!(
        !store.revoke(&ada, &moved.id).await.expect("revoke"),
        "bob's session is not ada's to revoke"
    );
    assert!(
        !store.revoke(&ada, &logged_out.id).await.expect("revoke"),
        "a session without a principal is not ada's"
    );
    assert_eq!(
        store.revoke_all(&ada, None).await.expect("revoke all"),
        1,
        "only the session still ada's"
    );
    assert!(store.load(&moved.id).await.expect("load").is_some());
    assert!(store.load(&logged_out.id).await.expect("load").is_some());
    assert!(store.load(&kept.id).await.expect("load").is_none());
}

/// A touch of a session whose principal a save has changed extends the new principal's index,
/// not the old one's: the touch script names the stored principal, and touches once the store
/// has extended that principal's entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_extends_the_index_of_the_stored_principal() {
    let (store, mut raw, _container) = setup_raw().await;
    let (ada, bob) = (principal(), principal());
    let record = session_of(&ada, HOUR);
    store.create(&record).await.expect("create");
    let mut moved = store.load(&record.id).await.expect("load").expect("live");
    moved.principal = Some(bob.clone());
    store.save(&moved).await.expect("move");
    let later = now() + 4 * HOUR;
    assert!(store.touch(&record.id, later).await.expect("touch"));
    assert_eq!(
        score(&mut raw, &store.principal_key(&bob), &record.id).await,
        Some(millis(later) + headroom())
    );
    assert_eq!(
        score(&mut raw, &store.principal_key(&ada), &record.id).await,
        Some(millis(record.expires_at) + headroom()),
        "the old principal's entry is not extended"
    );
}

/// Members that are not session ids (written by something else) are skipped; a member whose
/// key holds something that is not a session is `Error::Decode` from listing and `revoke`,
/// while `revoke_all` still revokes every other session before reporting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_index_members_and_corrupt_sessions() {
    let (store, mut raw, _container) = setup_raw().await;
    let who = principal();
    let key = store.principal_key(&who);
    let session = session_of(&who, HOUR);
    store.create(&session).await.expect("create");
    let far = millis(now() + HOUR);
    zadd(&mut raw, &key, far, "not an id: spaces and a colon").await;
    assert_eq!(
        ids(&store.sessions_of(&who).await.expect("list")),
        vec![session.id.as_str().to_owned()]
    );

    let corrupt = Id::random();
    zadd(&mut raw, &key, far, corrupt.as_str()).await;
    let _: () = redis::cmd("SET")
        .arg(store.key(&corrupt))
        .arg("not a session")
        .query_async(&mut raw)
        .await
        .expect("SET garbage");
    let listed = store.sessions_of(&who).await;
    assert!(matches!(listed, Err(Error::Decode(_))), "{listed:?}");
    let revoked = store.revoke(&who, &corrupt).await;
    assert!(matches!(revoked, Err(Error::Decode(_))), "{revoked:?}");
    let revoked = store.revoke_all(&who, None).await;
    assert!(matches!(revoked, Err(Error::Decode(_))), "{revoked:?}");
    assert!(
        store.load(&session.id).await.expect("load").is_none(),
        "the real session is revoked all the same"
    );
    assert!(
        value(&mut raw, &store.key(&corrupt)).await.is_some(),
        "the foreign value is left alone"
    );
}

/// Principals no session can have are refused before any round trip, by writes and by the
/// principal operations alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_principals_are_refused() {
    let (store, mut raw, _container) = setup_raw().await;
    let too_long = "p".repeat(session_core::MAX_PRINCIPAL_LEN + 1);
    for bad in ["", "line\nbreak", too_long.as_str()] {
        let record = session_of(bad, HOUR);
        let created = store.create(&record).await;
        assert!(
            matches!(created, Err(Error::Encode(_))),
            "{bad:?}: {created:?}"
        );
        assert!(
            value(&mut raw, &store.key(&record.id)).await.is_none(),
            "{bad:?}: nothing written"
        );
        let listed = store.sessions_of(bad).await;
        assert!(
            matches!(listed, Err(Error::Encode(_))),
            "{bad:?}: {listed:?}"
        );
        let revoked = store.revoke_all(bad, None).await;
        assert!(
            matches!(revoked, Err(Error::Encode(_))),
            "{bad:?}: {revoked:?}"
        );
    }
    let record = session_of("ada", HOUR);
    store.create(&record).await.expect("create");
    let mut bad = record.clone().with_principal(Some(String::new()));
    bad.data.insert("x", &1).expect("encode");
    let saved = store.save(&bad).await;
    assert!(matches!(saved, Err(Error::Encode(_))), "{saved:?}");
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.version, record.version, "nothing saved");
}

/// connect-redis's layout keeps no principal: `principals()` is `None`, the principal operations
/// are `Error::InvalidConfig`, and a record's principal is not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_express_layout_keeps_no_principal() {
    let (native, _container) = setup().await;
    assert!(native.principals().is_some());
    let store = native.express_compatible();
    assert!(store.principals().is_none());
    let who = principal();
    let record = session_of(&who, HOUR);
    store.create(&record).await.expect("create");
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.principal, None);
    assert!(matches!(
        store.sessions_of(&who).await,
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        store.revoke(&who, &record.id).await,
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        store.revoke_all(&who, None).await,
        Err(Error::InvalidConfig(_))
    ));
}
