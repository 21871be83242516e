//! connect-mongo's layout (`express_compatible`) against documents written exactly as
//! connect-mongo writes them: Rust reads what Express wrote, a Rust save over it succeeds once,
//! an Express write in between makes a Rust save conflict, and what Rust writes has
//! connect-mongo's shape.
//!
//! The "Express side" here is the raw driver issuing connect-mongo's own commands (`set`:
//! `updateOne({_id}, {$set: {_id, session, expires}}, {upsert: true})`; `touch`:
//! `updateOne({_id}, {$set: {expires}})`; `get`: `findOne({_id, $or: [{expires: {$exists:
//! false}}, {expires: {$gt: now}}]})`), with express-session's JSON as captured from real runs.

use mongodb::bson::{DateTime, Document, doc};
use serde_json::{Value as Json, json};
use session_core::express::{self, CREATED_FIELD, VERSION_FIELD, js_date};
use session_core::{Error, Id, Record, Store, now};
use session_mongo::MongoStore;
use session_testcontainers::{self as containers, Container};
use sha1::{Digest, Sha1};
use time::{Duration, OffsetDateTime};

async fn store_on(container: &Container) -> MongoStore {
    let store = MongoStore::connect(container.url())
        .await
        .unwrap_or_else(|e| panic!("MongoStore::connect({}) failed: {e:?}", container.url()))
        .express_compatible();
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate failed: {e:?}"));
    store
}

fn raw(store: &MongoStore) -> mongodb::Collection<Document> {
    store.collection().clone_with_type()
}

fn bson_date(t: OffsetDateTime) -> DateTime {
    DateTime::from_millis(session_core::clock::unix_millis(t))
}

/// express-session's JSON for a logged-in user, as express-session 1.19 writes it.
fn express_text(username: &str, expires: OffsetDateTime) -> String {
    format!(
        r#"{{"cookie":{{"originalMaxAge":3600000,"expires":"{}","httpOnly":true,"path":"/"}},"username":"{username}"}}"#,
        js_date(expires)
    )
}

/// connect-mongo's `set`: an upsert that `$set`s the three fields.
async fn express_set(store: &MongoStore, id: &Id, text: &str, expires: OffsetDateTime) {
    raw(store)
        .update_one(
            doc! { "_id": id.as_str() },
            doc! { "$set": { "_id": id.as_str(), "session": text, "expires": bson_date(expires) } },
        )
        .upsert(true)
        .await
        .expect("connect-mongo's set");
}

/// connect-mongo's `touch`: only `expires` moves.
async fn express_touch(store: &MongoStore, id: &Id, expires: OffsetDateTime) {
    let result = raw(store)
        .update_one(
            doc! { "_id": id.as_str() },
            doc! { "$set": { "expires": bson_date(expires) } },
        )
        .await
        .expect("connect-mongo's touch");
    assert_eq!(result.matched_count, 1, "the session to touch exists");
}

/// connect-mongo's `get`, then express-session's `JSON.parse`.
async fn express_get(store: &MongoStore, id: &Id) -> Option<Json> {
    let found = raw(store)
        .find_one(doc! {
            "_id": id.as_str(),
            "$or": [ { "expires": { "$exists": false } }, { "expires": { "$gt": DateTime::now() } } ],
        })
        .await
        .expect("connect-mongo's get")?;
    let text = found.get_str("session").expect("session is a string");
    Some(serde_json::from_str(text).expect("session is JSON"))
}

/// The stored document, as it is.
async fn stored(store: &MongoStore, id: &Id) -> Document {
    raw(store)
        .find_one(doc! { "_id": id.as_str() })
        .await
        .expect("find")
        .expect("the document")
}

/// The version the Rust side gives a text Express wrote: 60 bits of its SHA-1.
fn foreign_version(text: &str) -> u64 {
    let hex: String = Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    express::foreign_version(&hex).expect("40 hex digits")
}

/// What express-session's `Cookie#toJSON` keeps of a stored cookie: its own fields only.
fn as_express_rewrites_it(text: &str, change: impl FnOnce(&mut Json)) -> String {
    let mut json: Json = serde_json::from_str(text).expect("stored JSON");
    json["cookie"]
        .as_object_mut()
        .expect("a cookie object")
        .retain(|k, _| !k.starts_with("rs"));
    change(&mut json);
    serde_json::to_string(&json).expect("JSON")
}

fn later() -> OffsetDateTime {
    // Whole milliseconds, as a BSON date and a JavaScript date hold them.
    session_core::truncate_to_millis(now() + Duration::hours(1))
}

#[tokio::test]
async fn express_compatible_uses_connect_mongos_default_place_and_ttl_index() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    assert!(store.is_express_compatible());
    assert_eq!(
        store.collection().namespace().to_string(),
        "test.sessions",
        "connect-mongo's default: the URL's database, else the driver's `test`"
    );
    let mut cursor = store.collection().list_indexes().await.expect("indexes");
    let mut ttl = None;
    while cursor.advance().await.expect("next index") {
        let index = cursor.deserialize_current().expect("an index model");
        if index.keys == doc! { "expires": 1 } {
            ttl = index.options.and_then(|o| o.expire_after);
        }
    }
    assert_eq!(
        ttl,
        Some(std::time::Duration::ZERO),
        "connect-mongo's TTL index: {{expires: 1}}, expireAfterSeconds 0"
    );
    let named = MongoStore::connect(&container.url().replacen("/?", "/app?", 1))
        .await
        .expect("connect")
        .express_compatible()
        .with_collection("web_sessions")
        .expect("a valid name");
    assert_eq!(
        named.collection().namespace().to_string(),
        "app.web_sessions"
    );
}

#[tokio::test]
async fn a_session_express_wrote_loads_in_rust() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let id = Id::random();
    let expires = later();
    let text = express_text("JohnDoe", expires);
    express_set(&store, &id, &text, expires).await;

    let before = now();
    let record = store.load(&id).await.expect("load").expect("live");
    let after = now();
    assert_eq!(
        record.data.get::<String>("username").expect("a string"),
        Some("JohnDoe".to_owned()),
        "req.session.username is get::<String>(\"username\")"
    );
    let cookie: Json = record
        .data
        .get("cookie")
        .expect("JSON")
        .expect("express-session's cookie object is kept");
    assert_eq!(
        cookie,
        json!({"originalMaxAge": 3_600_000, "expires": js_date(expires), "httpOnly": true, "path": "/"})
    );
    assert_eq!(record.expires_at, expires, "expiry from `expires`");
    assert_eq!(
        record.version,
        foreign_version(&text),
        "the version of a text Express wrote is 60 bits of its SHA-1"
    );
    // No created_at is stored: the server's clock at load stands in (the container runs on
    // this host, so the two clocks agree to well within a minute).
    assert!(
        record.created_at > before - Duration::minutes(1)
            && record.created_at < after + Duration::minutes(1),
        "created_at {} is the load's server time (host: {before} .. {after})",
        record.created_at
    );
}

#[tokio::test]
async fn a_rust_save_over_an_express_session_succeeds_once() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let id = Id::random();
    let expires = later();
    express_set(&store, &id, &express_text("JohnDoe", expires), expires).await;

    let loaded = store.load(&id).await.expect("load").expect("live");
    let mut changed = loaded.clone();
    changed.data.insert("username", "JaneDoe").expect("encode");
    changed.expires_at = expires + Duration::minutes(30);
    store
        .save(&changed)
        .await
        .expect("a save at the loaded version");

    let document = stored(&store, &id).await;
    assert_eq!(
        document.get_datetime("expires").expect("a date"),
        &bson_date(changed.expires_at)
    );
    let json = express_get(&store, &id)
        .await
        .expect("Express still reads it");
    assert_eq!(json["username"], "JaneDoe");
    assert_eq!(json["cookie"]["originalMaxAge"], 3_600_000, "{json}");
    assert_eq!(
        json["cookie"][VERSION_FIELD],
        (loaded.version + 1).to_string()
    );
    assert_eq!(
        json["cookie"][CREATED_FIELD],
        session_core::clock::unix_millis(loaded.created_at),
        "the created_at the load gave is kept from now on"
    );

    assert!(
        matches!(store.save(&changed).await, Err(Error::Conflict)),
        "a second save at the same version conflicts"
    );
    let reloaded = store.load(&id).await.expect("load").expect("live");
    assert_eq!(reloaded.version, loaded.version + 1);
    assert_eq!(reloaded.created_at, loaded.created_at);
    assert_eq!(
        reloaded.data.get::<String>("username").expect("a string"),
        Some("JaneDoe".to_owned())
    );
}

#[tokio::test]
async fn an_express_write_makes_an_older_rust_save_conflict() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    // A session the Rust side created and wrote last.
    let mut record = Record::new(Id::random(), Duration::hours(1));
    record
        .data
        .insert(
            "cookie",
            &json!({"originalMaxAge": 3_600_000, "expires": js_date(record.expires_at), "httpOnly": true, "path": "/"}),
        )
        .expect("encode");
    record.data.insert("username", "JohnDoe").expect("encode");
    store.create(&record).await.expect("create");
    let rust_copy = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(rust_copy.version, 0);

    // Express saves the session: its JSON without the Rust side's fields.
    let text = stored(&store, &record.id)
        .await
        .get_str("session")
        .expect("a string")
        .to_owned();
    let express_write = as_express_rewrites_it(&text, |json| json["cart"] = json!(["book"]));
    express_set(&store, &record.id, &express_write, record.expires_at).await;

    let mut lost = rust_copy.clone();
    lost.data.insert("username", "Mallory").expect("encode");
    assert!(
        matches!(store.save(&lost).await, Err(Error::Conflict)),
        "the Rust copy predates the Express write"
    );
    assert_eq!(
        stored(&store, &record.id).await.get_str("session"),
        Ok(express_write.as_str()),
        "the Express write is still there, untouched"
    );

    // Reload and re-apply, as the middleware does on Conflict: both writes survive.
    let mut merged = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(merged.version, foreign_version(&express_write));
    merged.data.insert("username", "Mallory").expect("encode");
    store.save(&merged).await.expect("save after reload");
    let json = express_get(&store, &record.id).await.expect("live");
    assert_eq!(json["username"], "Mallory");
    assert_eq!(json["cart"], json!(["book"]));
}

#[tokio::test]
async fn an_express_touch_keeps_the_version() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let id = Id::random();
    let expires = later();
    express_set(&store, &id, &express_text("JohnDoe", expires), expires).await;
    let loaded = store.load(&id).await.expect("load").expect("live");

    let slid = expires + Duration::hours(1);
    express_touch(&store, &id, slid).await;
    let touched = store.load(&id).await.expect("load").expect("live");
    assert_eq!(touched.expires_at, slid, "the TTL slid");
    assert_eq!(touched.version, loaded.version, "the text did not change");
    let mut changed = loaded;
    changed.data.insert("visits", &1).expect("encode");
    store
        .save(&changed)
        .await
        .expect("a touch is not a write: the save goes through");
}

#[tokio::test]
async fn a_rust_touch_moves_only_expires() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let id = Id::random();
    let expires = later();
    let text = express_text("JohnDoe", expires);
    express_set(&store, &id, &text, expires).await;

    let slid = expires + Duration::hours(2);
    assert!(store.touch(&id, slid).await.expect("touch"));
    let document = stored(&store, &id).await;
    assert_eq!(
        document.get_str("session"),
        Ok(text.as_str()),
        "the text is kept"
    );
    assert_eq!(document.get_datetime("expires"), Ok(&bson_date(slid)));
    let loaded = store.load(&id).await.expect("load").expect("live");
    assert_eq!(loaded.version, foreign_version(&text));
}

#[tokio::test]
async fn concurrent_rust_saves_over_an_express_session_exactly_one_wins() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let id = Id::random();
    let expires = later();
    express_set(&store, &id, &express_text("JohnDoe", expires), expires).await;
    let loaded = store.load(&id).await.expect("load").expect("live");

    let saves = (0..8).map(|i| {
        let store = store.clone();
        let mut mine = loaded.clone();
        mine.data.insert("writer", &i).expect("encode");
        tokio::spawn(async move { store.save(&mine).await })
    });
    let mut wins = 0;
    for save in saves.collect::<Vec<_>>() {
        match save.await.expect("the task ran") {
            Ok(()) => wins += 1,
            Err(Error::Conflict) => {}
            other => panic!("a concurrent save returned {other:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one save of one version wins");
    let after = store.load(&id).await.expect("load").expect("live");
    assert_eq!(after.version, loaded.version + 1);
}

#[tokio::test]
async fn rust_writes_connect_mongos_shape() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let mut record = Record::new(Id::random(), Duration::hours(1));
    record.data.insert("username", "JohnDoe").expect("encode");
    record.version = 5;
    store.create(&record).await.expect("create");

    let document = stored(&store, &record.id).await;
    let keys: Vec<&str> = document.keys().map(String::as_str).collect();
    assert_eq!(keys, ["_id", "session", "expires"], "{document:?}");
    assert_eq!(document.get_str("_id"), Ok(record.id.as_str()));
    assert_eq!(
        document.get_datetime("expires"),
        Ok(&bson_date(record.expires_at))
    );
    let text = document
        .get_str("session")
        .expect("a string, not an object");
    assert!(text.starts_with(r#"{"cookie":{"#), "cookie first: {text}");
    let json: Json = serde_json::from_str(text).expect("JSON");
    assert_eq!(json["username"], "JohnDoe", "a plain JSON value: {text}");
    let cookie = json["cookie"].as_object().expect("a cookie object");
    assert_eq!(
        cookie.get("expires"),
        Some(&json!(js_date(record.expires_at))),
        "express-session can read the cookie's expiry: {text}"
    );
    assert_eq!(cookie.get(VERSION_FIELD), Some(&json!("5")));
    assert_eq!(
        express_get(&store, &record.id).await,
        Some(json.clone()),
        "connect-mongo's get finds it"
    );

    // A session with express-session's cookie object keeps it, and a save keeps the shape.
    let mut loaded = store.load(&record.id).await.expect("load").expect("live");
    loaded
        .data
        .insert(
            "cookie",
            &json!({"originalMaxAge": 60_000, "expires": js_date(loaded.expires_at), "httpOnly": true, "path": "/", "sameSite": "lax"}),
        )
        .expect("encode");
    store.save(&loaded).await.expect("save");
    let document = stored(&store, &record.id).await;
    let keys: Vec<&str> = document.keys().map(String::as_str).collect();
    assert_eq!(keys, ["_id", "session", "expires"], "{document:?}");
    let text = document.get_str("session").expect("a string");
    let json: Json = serde_json::from_str(text).expect("JSON");
    assert_eq!(
        as_express_rewrites_it(text, |_| {}),
        serde_json::to_string(&json!({
            "cookie": {"originalMaxAge": 60_000, "expires": js_date(loaded.expires_at), "httpOnly": true, "path": "/", "sameSite": "lax"},
            "username": "JohnDoe",
        }))
        .expect("JSON"),
        "without the Rust side's fields it is what express-session writes: {text}"
    );
    assert_eq!(json["cookie"][VERSION_FIELD], "6");
}

#[tokio::test]
async fn sessions_express_cannot_read_either_are_decode_errors() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let expires = later();
    for (what, session) in [
        ("invalid JSON", mongodb::bson::Bson::from("{\"cookie\":")),
        (
            "no cookie object",
            mongodb::bson::Bson::from(r#"{"username":"JohnDoe"}"#),
        ),
        ("a cookie that is not an object", r#"{"cookie":1}"#.into()),
        (
            "an object, as connect-mongo's stringify: false writes it",
            doc! { "cookie": { "path": "/" } }.into(),
        ),
    ] {
        let id = Id::random();
        raw(&store)
            .insert_one(
                doc! { "_id": id.as_str(), "session": session, "expires": bson_date(expires) },
            )
            .await
            .expect("insert");
        match store.load(&id).await {
            Err(Error::Decode(_)) => {}
            other => panic!("load of a session with {what} returned {other:?}, expected Decode"),
        }
        let mut record = Record::new(id.clone(), Duration::hours(1));
        record.data.insert("username", "x").expect("encode");
        match store.save(&record).await {
            Err(Error::Decode(_)) => {}
            other => panic!("save over a session with {what} returned {other:?}, expected Decode"),
        }
    }
}

#[tokio::test]
async fn expired_express_sessions_are_gone_for_rust() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let id = Id::random();
    let past = session_core::truncate_to_millis(now() - Duration::seconds(1));
    express_set(&store, &id, &express_text("JohnDoe", past), past).await;
    assert_eq!(store.load(&id).await.expect("load"), None);
    assert!(!store.touch(&id, later()).await.expect("touch"));
    let record = Record::new(id.clone(), Duration::hours(1));
    assert!(matches!(store.save(&record).await, Err(Error::NotFound)));
    store
        .create(&record)
        .await
        .expect("an expired session's id can be created again");
}
