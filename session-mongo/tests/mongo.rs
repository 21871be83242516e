//! MongoDB-specific behaviour beyond the shared suite: the document layout, corrupt documents,
//! the TTL index, codecs and namespaces, and bounded failure when the server is gone.

use std::error::Error as _;
use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::options::{
    Acknowledgment, IndexOptions, ReadConcern, ReadPreference, SelectionCriteria, WriteConcern,
};
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
        .with_collection("by_hand")
        .expect("a valid name");
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
        .with_collection("other_ttl")
        .expect("a valid name");
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
        .expect("a valid name")
        .with_collection("web_sessions")
        .expect("a valid name")
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
        .with_database("app")
        .expect("a valid name");
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
    .expect("connect is lazy and succeeds")
    // Longer than the server selection timeout, so that the driver's own error is the one seen.
    .with_timeout(Duration::from_secs(30))
    .expect("a positive timeout");
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
        .with_timeout(Duration::from_secs(1))
        .expect("a positive timeout");
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

#[tokio::test]
async fn a_url_asking_for_secondaries_gives_a_store_on_the_primary() {
    // Only a standalone server runs here, so this checks the collection handle's read
    // preference and concerns, and that the store works with them, not a lagging secondary.
    let container = containers::mongo().await;
    let url = format!(
        "{}&readPreference=secondary&readConcernLevel=available&w=1",
        container.url()
    );
    let store = MongoStore::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let collection = store.collection();
    assert!(
        matches!(
            collection.selection_criteria(),
            Some(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        ),
        "reads go to the primary: {:?}",
        collection.selection_criteria()
    );
    assert_eq!(
        collection.write_concern(),
        Some(
            &WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build()
        )
    );
    assert_eq!(collection.read_concern(), Some(&ReadConcern::local()));
    let record = sample();
    store
        .create(&record)
        .await
        .expect("create with w: majority, j: true");
    store.delete(&record.id).await.expect("delete");
    assert_eq!(
        store.load(&record.id).await.expect("load"),
        None,
        "a deleted session is gone for the next read"
    );
}

#[tokio::test]
async fn records_over_16_mib_are_too_large_and_write_nothing() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let huge = |record: &mut Record, len: usize| {
        record
            .data
            .insert("blob", &"x".repeat(len))
            .expect("encode");
    };

    let mut record = sample();
    huge(&mut record, MongoStore::MAX_DOCUMENT_SIZE);
    match store.create(&record).await {
        Err(Error::TooLarge { size, limit }) => {
            assert_eq!(limit, MongoStore::MAX_DOCUMENT_SIZE);
            assert!(size > limit, "size {size} over limit {limit}");
        }
        other => panic!("create of a 16 MiB value returned {other:?}, expected TooLarge"),
    }
    assert_eq!(store.load(&record.id).await.expect("load"), None);

    let small = sample();
    store.create(&small).await.expect("create");
    let mut grown = small.clone();
    huge(&mut grown, MongoStore::MAX_DOCUMENT_SIZE);
    assert!(
        matches!(store.save(&grown).await, Err(Error::TooLarge { .. })),
        "save of a 16 MiB value"
    );
    assert_eq!(
        store.load(&small.id).await.expect("load"),
        Some(small),
        "the stored record is untouched"
    );
}

#[tokio::test]
async fn a_record_of_almost_16_mib_round_trips() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let mut record = sample();
    // 64 KiB under the limit: the whole document, with its other fields, fits.
    record
        .data
        .insert("blob", &"y".repeat(MongoStore::MAX_DOCUMENT_SIZE - 65_536))
        .expect("encode");
    store.create(&record).await.expect("create near the limit");
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded, record);
    store.save(&loaded).await.expect("save near the limit");
}

#[tokio::test]
async fn expires_of_another_type_sorts_by_type() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let later = DateTime::from_millis(millis(now() + time::Duration::hours(1)));
    let blob = Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![0x01, 0x80],
    };
    // Below dates in BSON order: never live, so load misses it and create replaces it.
    let below = Id::random();
    raw(&store)
        .insert_one(doc! { "_id": below.as_str(), "data": blob.clone(), "created": later, "expires": "tomorrow", "version": 0_i64 })
        .await
        .expect("insert");
    assert_eq!(store.load(&below).await.expect("load"), None);
    let mut record = sample();
    record.id = below.clone();
    store
        .create(&record)
        .await
        .expect("create over a document that is not live");
    assert_eq!(
        store.load(&below).await.expect("load").map(|r| r.version),
        Some(record.version)
    );
    // Above dates (a timestamp): live by the server, and load says which field is wrong.
    let above = Id::random();
    raw(&store)
        .insert_one(doc! {
            "_id": above.as_str(), "data": blob, "created": later,
            "expires": mongodb::bson::Timestamp { time: 1, increment: 1 }, "version": 0_i64,
        })
        .await
        .expect("insert");
    match store.load(&above).await {
        Err(e @ Error::Decode(_)) => {
            let cause = e.source().map(ToString::to_string).unwrap_or_default();
            assert!(
                cause.contains("`expires`"),
                "the error names the field: {cause}"
            );
        }
        other => panic!("load of a timestamp expiry returned {other:?}, expected Decode"),
    }
}

#[tokio::test]
async fn creating_the_same_record_twice() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    // Live: the second create finds a live record and changes nothing.
    let live = sample();
    store.create(&live).await.expect("create");
    assert!(
        matches!(store.create(&live).await, Err(Error::AlreadyExists)),
        "a live record blocks an identical create"
    );
    // Expired: the identical expired document does not block it (the server reports no change,
    // and the store then checks that what is stored is this record, expired).
    let mut expired = sample();
    expired.expires_at = now() - time::Duration::minutes(1);
    store
        .create(&expired)
        .await
        .expect("create an expired record");
    store
        .create(&expired)
        .await
        .expect("create over an identical expired record");
    let stored = raw(&store)
        .find_one(doc! { "_id": expired.id.as_str() })
        .await
        .expect("find")
        .expect("the document");
    assert_eq!(
        stored.get("expires"),
        Some(&Bson::DateTime(DateTime::from_millis(millis(
            expired.expires_at
        ))))
    );
}
