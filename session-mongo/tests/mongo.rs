//! MongoDB-specific behaviour beyond the shared suite: the document layout, corrupt documents,
//! the TTL index, codecs and namespaces, and bounded failure when the server is gone.

use std::error::Error as _;
use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::options::IndexOptions;
use session_core::{Codec, Error, Id, MessagePack, Record, Store, Timeout, now};
use session_mongo::MongoStore;
use session_testcontainers::{self as containers, Container};

/// How long a failing call may take before the test calls it a hang: far above every timeout
/// the store is configured with, so it only catches a store that never answers.
const HANG: Duration = Duration::from_secs(60);

async fn store_on(container: &Container) -> MongoStore {
    let store = MongoStore::connect(container.url())
        .await
        .unwrap_or_else(|e| panic!("MongoStore::connect({}) failed: {e:?}", container.url()));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate failed: {e:?}"));
    store
}

fn raw(store: &MongoStore) -> mongodb::Collection<Document> {
    store.collection().clone_with_type()
}

fn sample() -> Record {
    let mut record = Record::new(Id::random(), time::Duration::hours(1));
    record.data.insert("user", "ada").expect("encode");
    record.data.insert("visits", &3).expect("encode");
    record
}

fn millis(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("in range")
}

async fn ttl_of_expires_index(store: &MongoStore) -> Vec<(String, Option<Duration>)> {
    let mut cursor = store
        .collection()
        .list_indexes()
        .await
        .expect("list indexes");
    let mut found = Vec::new();
    while cursor.advance().await.expect("next index") {
        let index = cursor.deserialize_current().expect("an index model");
        if index.keys.contains_key("expires") {
            let options = index.options.unwrap_or_default();
            found.push((options.name.unwrap_or_default(), options.expire_after));
        }
    }
    found
}

fn assert_backend(result: Result<impl std::fmt::Debug, Error>, what: &str) -> Error {
    match result {
        Err(e @ Error::Backend { .. }) => e,
        other => panic!("{what} returned {other:?}, expected Err(Backend)"),
    }
}

#[tokio::test]
async fn documents_have_the_documented_layout() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let mut record = sample();
    record.version = 41;
    store.create(&record).await.expect("create");
    let stored = raw(&store)
        .find_one(doc! { "_id": record.id.as_str() })
        .await
        .expect("find")
        .expect("the created document");
    let expected_blob = MessagePack.encode(&record.data).expect("encode");
    assert_eq!(
        stored.get("data"),
        Some(&Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: expected_blob
        })),
        "data: {stored:?}"
    );
    assert_eq!(
        stored.get("created"),
        Some(&Bson::DateTime(DateTime::from_millis(millis(
            record.created_at
        )))),
        "created: {stored:?}"
    );
    assert_eq!(
        stored.get("expires"),
        Some(&Bson::DateTime(DateTime::from_millis(millis(
            record.expires_at
        )))),
        "expires: {stored:?}"
    );
    assert_eq!(
        stored.get("version"),
        Some(&Bson::Int64(41)),
        "version: {stored:?}"
    );
    assert_eq!(stored.len(), 5, "no other fields: {stored:?}");

    let mut changed = store.load(&record.id).await.expect("load").expect("live");
    changed.data.insert("visits", &4).expect("encode");
    store.save(&changed).await.expect("save");
    let saved = raw(&store)
        .find_one(doc! { "_id": record.id.as_str() })
        .await
        .expect("find")
        .expect("the saved document");
    assert_eq!(
        saved.get("version"),
        Some(&Bson::Int64(42)),
        "version after save: {saved:?}"
    );
    assert_eq!(
        saved.get("created"),
        stored.get("created"),
        "save keeps created"
    );
}

#[tokio::test]
async fn corrupt_documents_load_as_decode_errors() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let later = DateTime::from_millis(millis(now() + time::Duration::hours(1)));
    let blob = |bytes: Vec<u8>| Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    };
    let corrupt = [
        (
            "undecodable blob",
            doc! { "data": blob(vec![0xff, 0xfe, 0x00]), "created": later, "expires": later, "version": 0_i64 },
        ),
        (
            "truncated blob",
            doc! { "data": blob(vec![0x01, 0x82, 0xa1]), "created": later, "expires": later, "version": 0_i64 },
        ),
        (
            "empty blob",
            doc! { "data": blob(vec![]), "created": later, "expires": later, "version": 0_i64 },
        ),
        (
            "data as a string",
            doc! { "data": "{\"v\":1,\"data\":{}}", "created": later, "expires": later, "version": 0_i64 },
        ),
        (
            "data missing",
            doc! { "created": later, "expires": later, "version": 0_i64 },
        ),
        (
            "created missing",
            doc! { "data": blob(vec![0x01, 0x80]), "expires": later, "version": 0_i64 },
        ),
        (
            "created as a string",
            doc! { "data": blob(vec![0x01, 0x80]), "created": "yesterday", "expires": later, "version": 0_i64 },
        ),
        (
            "negative version",
            doc! { "data": blob(vec![0x01, 0x80]), "created": later, "expires": later, "version": -3_i64 },
        ),
        (
            "version as a string",
            doc! { "data": blob(vec![0x01, 0x80]), "created": later, "expires": later, "version": "1" },
        ),
    ];
    for (what, mut document) in corrupt {
        let id = Id::random();
        document.insert("_id", id.as_str());
        raw(&store)
            .insert_one(document)
            .await
            .expect("insert a corrupt document");
        match store.load(&id).await {
            Err(Error::Decode(_)) => {}
            other => {
                panic!("load of a document with {what} returned {other:?}, expected Err(Decode)")
            }
        }
    }
    // The same bytes with a valid layout load: the errors above come from the corruption.
    let id = Id::random();
    raw(&store)
        .insert_one(doc! { "_id": id.as_str(), "data": blob(vec![0x01, 0x80]), "created": later, "expires": later, "version": 0_i64 })
        .await
        .expect("insert");
    let loaded = store.load(&id).await.expect("load").expect("live");
    assert!(loaded.data.is_empty(), "empty map blob: {loaded:?}");
}

#[tokio::test]
async fn migrate_creates_the_ttl_index_idempotently() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    store.migrate().await.expect("a second migrate succeeds");
    assert_eq!(
        ttl_of_expires_index(&store).await,
        vec![("expires_1".to_owned(), Some(Duration::ZERO))],
        "exactly one TTL index on expires"
    );
}

#[tokio::test]
async fn migrate_accepts_the_same_index_under_another_name() {
    let container = containers::mongo().await;
    let store = MongoStore::connect(container.url())
        .await
        .expect("connect")
        .with_collection("by_hand");
    let by_hand = IndexModel::builder()
        .keys(doc! { "expires": 1 })
        .options(
            IndexOptions::builder()
                .name("made_by_hand".to_owned())
                .expire_after(Duration::ZERO)
                .build(),
        )
        .build();
    store
        .collection()
        .create_index(by_hand)
        .await
        .expect("create the index by hand");
    store
        .migrate()
        .await
        .expect("migrate accepts an equivalent index");
    assert_eq!(
        ttl_of_expires_index(&store).await,
        vec![("made_by_hand".to_owned(), Some(Duration::ZERO))],
        "the hand-made index is kept and no second one is added"
    );
}

#[tokio::test]
async fn migrate_refuses_an_index_with_another_ttl() {
    let container = containers::mongo().await;
    let store = MongoStore::connect(container.url())
        .await
        .expect("connect")
        .with_collection("other_ttl");
    let other = IndexModel::builder()
        .keys(doc! { "expires": 1 })
        .options(
            IndexOptions::builder()
                .expire_after(Duration::from_secs(3600))
                .build(),
        )
        .build();
    store
        .collection()
        .create_index(other)
        .await
        .expect("create the index by hand");
    let e = assert_backend(
        store.migrate().await,
        "migrate over an index with another TTL",
    );
    assert!(
        e.source().is_some_and(|s| s.is::<mongodb::error::Error>()),
        "the driver's error is the source: {e:?}"
    );
}

#[tokio::test]
async fn json_codec_database_and_collection_are_honoured() {
    let container = containers::mongo().await;
    let store = MongoStore::connect(container.url())
        .await
        .expect("connect")
        .with_database("app")
        .with_collection("web_sessions")
        .with_codec(session_core::Json);
    store.migrate().await.expect("migrate");
    assert_eq!(
        store.collection().namespace().to_string(),
        "app.web_sessions"
    );
    let record = sample();
    store.create(&record).await.expect("create");
    let stored = raw(&store)
        .find_one(doc! { "_id": record.id.as_str() })
        .await
        .expect("find")
        .expect("the document is in app.web_sessions");
    let Some(Bson::Binary(blob)) = stored.get("data") else {
        panic!("data is not binary: {stored:?}");
    };
    let text = std::str::from_utf8(&blob.bytes).expect("the JSON codec writes UTF-8");
    assert!(text.starts_with("{\"v\":1,"), "JSON blob: {text}");
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        loaded.data.get::<String>("user").expect("decode"),
        Some("ada".into())
    );
    // The default collection of the same database holds nothing.
    let default = MongoStore::connect(container.url())
        .await
        .expect("connect")
        .with_database("app");
    assert_eq!(default.load(&record.id).await.expect("load"), None);
}

#[tokio::test]
async fn closed_port_fails_in_bounded_time() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.local_addr().expect("local address").port()
    };
    // The listener is dropped: nothing listens on the port any more.
    let store = MongoStore::connect(&format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true"
    ))
    .await
    .expect("connect is lazy and succeeds");
    let record = sample();
    let outcome = tokio::time::timeout(HANG, async {
        (
            store.create(&record).await,
            store.load(&record.id).await,
            store.migrate().await,
        )
    })
    .await
    .expect("a store on a closed port must fail, not hang");
    assert_backend(outcome.0, "create on a closed port");
    let e = assert_backend(outcome.1, "load on a closed port");
    assert_backend(outcome.2, "migrate on a closed port");
    assert!(
        e.source().is_some_and(|s| s.is::<mongodb::error::Error>()),
        "the driver's server selection error is the source: {e:?}"
    );
}

#[tokio::test]
async fn paused_server_times_out_then_recovers() {
    let container = containers::mongo().await;
    let store = store_on(&container)
        .await
        .with_operation_timeout(Duration::from_secs(1));
    let record = sample();
    store.create(&record).await.expect("create");
    container.pause().await;
    let outcome = tokio::time::timeout(HANG, store.load(&record.id))
        .await
        .expect("a load from a paused server must time out, not hang");
    let e = assert_backend(outcome, "load from a paused server");
    assert_eq!(
        e.source().and_then(|s| s.downcast_ref::<Timeout>()),
        Some(&Timeout(Duration::from_secs(1))),
        "the operation timeout fired: {e:?}"
    );
    container.unpause().await;
    let loaded = tokio::time::timeout(HANG, store.load(&record.id))
        .await
        .expect("load after unpause must not hang")
        .expect("load after unpause succeeds");
    assert_eq!(
        loaded.map(|r| r.id),
        Some(record.id),
        "the record is still there"
    );
}

#[tokio::test]
async fn stopped_server_fails_in_bounded_time_then_recovers() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    store.create(&sample()).await.expect("create");
    container.stop().await;
    let record = sample();
    let outcome = tokio::time::timeout(HANG, store.create(&record))
        .await
        .expect("create on a stopped server must fail, not hang");
    assert_backend(outcome, "create on a stopped server");
    container.start().await;
    // The server's data may not survive a restart; the store must work again either way.
    tokio::time::timeout(HANG, store.create(&record))
        .await
        .expect("create after restart must not hang")
        .expect("create after restart succeeds");
    let loaded = store.load(&record.id).await.expect("load after restart");
    assert_eq!(loaded.map(|r| r.id), Some(record.id));
}
