//! The sessions of a principal beyond the shared rules: the `principal` field and its index,
//! documents stored before principals existed, pruning, collations, and the Express layout,
//! which keeps no principal.

use std::error::Error as _;
use std::sync::{Arc, Mutex};

use mongodb::IndexModel;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::{ClientOptions, Collation, CollationStrength, IndexOptions};
use session_core::{Error, Id, Principals, Record, Store, now};
use session_mongo::MongoStore;
use session_testcontainers::{self as containers, Container};

async fn connect(container: &Container) -> MongoStore {
    MongoStore::connect(container.url())
        .await
        .unwrap_or_else(|e| panic!("MongoStore::connect({}) failed: {e:?}", container.url()))
}

async fn store_on(container: &Container) -> MongoStore {
    let store = connect(container).await;
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate failed: {e:?}"));
    store
}

fn raw(store: &MongoStore) -> mongodb::Collection<Document> {
    store.collection().clone_with_type()
}

async fn stored(store: &MongoStore, id: &Id) -> Option<Document> {
    raw(store)
        .find_one(doc! { "_id": id.as_str() })
        .await
        .expect("find the raw document")
}

async fn stored_with_principal(store: &MongoStore, principal: &str) -> u64 {
    raw(store)
        .count_documents(doc! { "principal": principal })
        .await
        .expect("count documents")
}

fn session_of(principal: &str) -> Record {
    let mut record = Record::new(Id::random(), time::Duration::hours(1))
        .with_principal(Some(principal.to_owned()));
    record.data.insert("user", principal).expect("encode");
    record
}

fn expired_session_of(principal: &str) -> Record {
    let mut record = session_of(principal);
    record.expires_at = now() - time::Duration::minutes(1);
    record
}

/// The MessagePack codec's blob of empty data, as stored in `data`.
fn empty_data() -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![0x01, 0x80],
    }
}

fn principal_of(document: &Document) -> Option<&Bson> {
    document.get("principal")
}

fn millis(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("in range")
}

/// The indexes on `principal`: name, sparse, unique.
async fn principal_indexes(store: &MongoStore) -> Vec<(String, bool, bool)> {
    let mut cursor = store
        .collection()
        .list_indexes()
        .await
        .expect("list indexes");
    let mut found = Vec::new();
    while cursor.advance().await.expect("next index") {
        let index = cursor.deserialize_current().expect("an index model");
        if index.keys.contains_key("principal") {
            let options = index.options.unwrap_or_default();
            found.push((
                options.name.unwrap_or_default(),
                options.sparse == Some(true),
                options.unique == Some(true),
            ));
        }
    }
    found
}

#[tokio::test]
async fn the_principal_is_a_field_of_the_document_and_indexed() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    assert!(store.principals().is_some(), "the native layout lists");
    assert_eq!(
        principal_indexes(&store).await,
        vec![("principal_1".to_owned(), true, false)],
        "migrate creates one sparse, non-unique index on principal"
    );
    store.migrate().await.expect("a second migrate succeeds");
    assert_eq!(principal_indexes(&store).await.len(), 1, "and adds none");

    let record = session_of("ada");
    store.create(&record).await.expect("create");
    let document = stored(&store, &record.id).await.expect("the document");
    assert_eq!(
        principal_of(&document),
        Some(&Bson::String("ada".into())),
        "{document:?}"
    );
    assert_eq!(
        document.len(),
        6,
        "the five fields and principal: {document:?}"
    );
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(loaded.principal.as_deref(), Some("ada"));
    assert_eq!(loaded, record);

    // Without a principal, no field (so the sparse index holds no entry for it).
    let anonymous = Record::new(Id::random(), time::Duration::hours(1));
    store.create(&anonymous).await.expect("create");
    let document = stored(&store, &anonymous.id).await.expect("the document");
    assert_eq!(principal_of(&document), None, "{document:?}");
}

#[tokio::test]
async fn save_sets_moves_and_removes_the_principal() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let record = Record::new(Id::random(), time::Duration::hours(1));
    store.create(&record).await.expect("create");

    let login = record.clone().with_principal(Some("ada".into()));
    store.save(&login).await.expect("save with a principal");
    let document = stored(&store, &record.id).await.expect("the document");
    assert_eq!(principal_of(&document), Some(&Bson::String("ada".into())));

    let mut moved = store.load(&record.id).await.expect("load").expect("live");
    moved.principal = Some("grace".into());
    store
        .save(&moved)
        .await
        .expect("save with another principal");
    assert_eq!(stored_with_principal(&store, "ada").await, 0);
    assert_eq!(stored_with_principal(&store, "grace").await, 1);

    let mut logout = store.load(&record.id).await.expect("load").expect("live");
    logout.principal = None;
    store.save(&logout).await.expect("save without a principal");
    let document = stored(&store, &record.id).await.expect("the document");
    assert_eq!(
        principal_of(&document),
        None,
        "the field is gone: {document:?}"
    );
    assert!(
        store.sessions_of("grace").await.expect("list").is_empty(),
        "no longer grace's"
    );

    // A save that conflicts leaves the principal (present or absent) as it was.
    let stale = logout.clone().with_principal(Some("mallory".into()));
    assert!(matches!(store.save(&stale).await, Err(Error::Conflict)));
    let document = stored(&store, &record.id).await.expect("the document");
    assert_eq!(principal_of(&document), None, "{document:?}");
    let mut current = store.load(&record.id).await.expect("load").expect("live");
    current.principal = Some("ada".into());
    store.save(&current).await.expect("save");
    let stale = current.with_principal(None);
    assert!(matches!(store.save(&stale).await, Err(Error::Conflict)));
    let document = stored(&store, &record.id).await.expect("the document");
    assert_eq!(principal_of(&document), Some(&Bson::String("ada".into())));
}

#[tokio::test]
async fn documents_stored_before_principals_load_list_and_save() {
    let container = containers::mongo().await;
    // The collection as the previous release left it: sessions, and only the TTL index.
    let store = connect(&container).await;
    let later = DateTime::from_millis(millis(now() + time::Duration::hours(1)));
    let created = DateTime::from_millis(millis(now()));
    let old = Id::random();
    raw(&store)
        .insert_one(doc! {
            "_id": old.as_str(),
            "data": empty_data(),
            "created": created,
            "expires": later,
            "version": 3_i64,
        })
        .await
        .expect("insert an old document");
    store.migrate().await.expect("migrate over old sessions");
    assert_eq!(principal_indexes(&store).await.len(), 1);

    let loaded = store.load(&old).await.expect("load").expect("live");
    assert_eq!(loaded.principal, None);
    assert_eq!(loaded.version, 3);
    // Logging in on an old session gives it a principal; it is then listed.
    store
        .save(&loaded.with_principal(Some("ada".into())))
        .await
        .expect("save");
    let listed = store.sessions_of("ada").await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, old);
    assert_eq!(listed[0].version, 4);
    // A null principal (written by hand) reads as none.
    let nulled = Id::random();
    raw(&store)
        .insert_one(doc! {
            "_id": nulled.as_str(),
            "data": empty_data(),
            "created": created, "expires": later, "version": 0_i64, "principal": Bson::Null,
        })
        .await
        .expect("insert");
    assert_eq!(
        store
            .load(&nulled)
            .await
            .expect("load")
            .map(|r| r.principal),
        Some(None)
    );
}

#[tokio::test]
async fn a_principal_that_is_not_a_valid_string_is_a_decode_error() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let later = DateTime::from_millis(millis(now() + time::Duration::hours(1)));
    for principal in [Bson::Int64(42), Bson::String(String::new())] {
        let id = Id::random();
        raw(&store)
            .insert_one(doc! {
                "_id": id.as_str(),
                "data": empty_data(),
                "created": later, "expires": later, "version": 0_i64,
                "principal": principal.clone(),
            })
            .await
            .expect("insert");
        match store.load(&id).await {
            Err(e @ Error::Decode(_)) => {
                let cause = e.source().map(ToString::to_string).unwrap_or_default();
                assert!(cause.contains("`principal`"), "{principal:?}: {cause}");
            }
            other => panic!("principal {principal:?} loaded as {other:?}, expected Decode"),
        }
    }
}

#[tokio::test]
async fn invalid_principals_write_nothing() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let record = session_of("ada");
    for bad in ["", "a\nb", &"x".repeat(session_core::MAX_PRINCIPAL_LEN + 1)] {
        let invalid = record.clone().with_principal(Some(bad.to_owned()));
        assert!(
            matches!(store.create(&invalid).await, Err(Error::Encode(_))),
            "create with principal {bad:?}"
        );
        assert_eq!(stored(&store, &record.id).await, None, "nothing created");
    }
    store.create(&record).await.expect("create");
    let before = stored(&store, &record.id).await;
    let mut invalid = record.clone().with_principal(Some("a\u{7}b".into()));
    invalid.data.insert("user", "mallory").expect("encode");
    assert!(matches!(store.save(&invalid).await, Err(Error::Encode(_))));
    assert_eq!(stored(&store, &record.id).await, before, "nothing saved");
}

#[tokio::test]
async fn revocation_leaves_no_document_of_the_principal_behind() {
    let container = containers::mongo().await;
    let store = store_on(&container).await;
    let keep = session_of("ada");
    let live = session_of("ada");
    let deleted = session_of("ada");
    for record in [&keep, &live, &deleted] {
        store.create(record).await.expect("create");
    }
    // Expired documents the TTL monitor has not removed yet: of ada, and of someone else.
    let expired = [expired_session_of("ada"), expired_session_of("ada")];
    let others = expired_session_of("grace");
    for record in expired.iter().chain([&others]) {
        store
            .create(record)
            .await
            .expect("create an expired record");
    }
    store.delete(&deleted.id).await.expect("delete");
    assert_eq!(
        stored_with_principal(&store, "ada").await,
        4,
        "a deleted session leaves no document; expired ones wait for the TTL monitor"
    );

    let listed = store.sessions_of("ada").await.expect("list");
    let mut ids: Vec<_> = listed.iter().map(|r| r.id.as_str().to_owned()).collect();
    ids.sort();
    let mut expected = vec![keep.id.as_str().to_owned(), live.id.as_str().to_owned()];
    expected.sort();
    assert_eq!(ids, expected, "only the live sessions are listed");

    assert!(
        !store
            .revoke("ada", &expired[0].id)
            .await
            .expect("revoke an expired session"),
        "an expired session is not revoked"
    );
    assert_eq!(
        store
            .revoke_all("ada", Some(&keep.id))
            .await
            .expect("revoke all"),
        1,
        "counts the live sessions it deleted"
    );
    assert_eq!(
        stored_with_principal(&store, "ada").await,
        1,
        "only the kept session remains, expired documents pruned"
    );
    assert!(stored(&store, &keep.id).await.is_some());
    assert!(
        stored(&store, &others.id).await.is_some(),
        "another principal's expired session is left to the TTL monitor"
    );
}

/// The commands the driver sent, as its command monitor saw them.
type Sent = Arc<Mutex<Vec<Document>>>;

/// A store on a client that records every command it sends.
async fn monitored(container: &Container, collection: &str) -> (MongoStore, Sent) {
    let sent = Sent::default();
    let mut options = ClientOptions::parse(container.url())
        .await
        .expect("a valid URL");
    let log = Arc::clone(&sent);
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event {
            log.lock().expect("the log").push(started.command);
        }
    }));
    let client = mongodb::Client::with_options(options).expect("a client");
    let store = MongoStore::new(client)
        .with_collection(collection)
        .expect("a valid name");
    (store, sent)
}

/// The collations of the `find` and `delete` commands in `sent`, one per query.
fn query_collations(sent: &Sent) -> Vec<(String, Option<Document>)> {
    let collation = |d: &Document| d.get_document("collation").ok().cloned();
    let mut found = Vec::new();
    for command in sent.lock().expect("the log").iter() {
        if command.contains_key("find") {
            found.push(("find".to_owned(), collation(command)));
        } else if let Ok(deletes) = command.get_array("deletes") {
            for delete in deletes {
                let statement = delete.as_document().expect("a delete statement");
                found.push(("delete".to_owned(), collation(statement)));
            }
        }
    }
    found
}

#[tokio::test]
async fn principals_compare_byte_wise_whatever_the_collections_collation() {
    let container = containers::mongo().await;
    let (store, sent) = monitored(&container, "case_insensitive").await;
    store
        .collection()
        .client()
        .database(&store.collection().namespace().db)
        .create_collection("case_insensitive")
        .collation(
            Collation::builder()
                .locale("en")
                .strength(CollationStrength::Secondary)
                .build(),
        )
        .await
        .expect("create a case-insensitive collection");
    store.migrate().await.expect("migrate");
    let lower = session_of("ada");
    let upper = session_of("ADA");
    store.create(&lower).await.expect("create");
    store.create(&upper).await.expect("create");
    sent.lock().expect("the log").clear();

    let listed = store.sessions_of("ada").await.expect("list");
    assert_eq!(
        listed.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![lower.id.clone()],
        "ada's sessions are not ADA's"
    );
    assert!(
        !store.revoke("ada", &upper.id).await.expect("revoke"),
        "ADA's session is not ada's to revoke"
    );
    assert_eq!(store.revoke_all("ada", None).await.expect("revoke all"), 1);
    let collations = query_collations(&sent);
    assert!(
        store.load(&upper.id).await.expect("load").is_some(),
        "ADA is still logged in"
    );
    // What decides the above on MongoDB (a server that ignores the collection's default
    // collation passes it either way): every query asks for byte-wise comparison.
    let simple = Some(doc! { "locale": "simple" });
    let kinds: Vec<&str> = collations.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["find", "delete", "delete", "delete"],
        "sessions_of, revoke, revoke_all's two deletes"
    );
    for (kind, collation) in &collations {
        assert_eq!(collation, &simple, "the collation of a {kind}");
    }
}

#[tokio::test]
async fn migrate_accepts_an_equivalent_principal_index_and_refuses_a_unique_one() {
    let container = containers::mongo().await;
    let by_hand = |name: &str, unique: bool| {
        IndexModel::builder()
            .keys(doc! { "principal": 1 })
            .options(
                IndexOptions::builder()
                    .name(name.to_owned())
                    .unique(unique)
                    .build(),
            )
            .build()
    };

    let plain = connect(&container)
        .await
        .with_collection("plain_index")
        .expect("a valid name");
    plain
        .collection()
        .create_index(by_hand("made_by_hand", false))
        .await
        .expect("create the index by hand");
    plain
        .migrate()
        .await
        .expect("a plain index on principal serves the queries");
    assert_eq!(
        principal_indexes(&plain).await,
        vec![("made_by_hand".to_owned(), false, false)],
        "the hand-made index is kept and no second one is added"
    );

    let unique = connect(&container)
        .await
        .with_collection("unique_index")
        .expect("a valid name");
    unique
        .collection()
        .create_index(by_hand("one_session_each", true))
        .await
        .expect("create the index by hand");
    match unique.migrate().await {
        Err(Error::InvalidConfig(message)) => assert!(
            message.contains("one_session_each") && message.contains("unique"),
            "the message names the index: {message}"
        ),
        other => panic!("migrate over a unique principal index returned {other:?}"),
    }
}

#[tokio::test]
async fn the_express_layout_keeps_no_principal() {
    let container = containers::mongo().await;
    let store = connect(&container).await.express_compatible();
    store.migrate().await.expect("migrate");
    assert!(store.principals().is_none(), "connect-mongo's layout");
    assert!(
        principal_indexes(&store).await.is_empty(),
        "no principal index in connect-mongo's collection"
    );
    let record = session_of("ada");
    store.create(&record).await.expect("create");
    let document = stored(&store, &record.id).await.expect("the document");
    assert_eq!(principal_of(&document), None, "{document:?}");
    assert_eq!(
        store
            .load(&record.id)
            .await
            .expect("load")
            .map(|r| r.principal),
        Some(None)
    );
    let id = Id::random();
    for outcome in [
        store.sessions_of("ada").await.map(|_| ()),
        store.revoke("ada", &id).await.map(|_| ()),
        store.revoke_all("ada", None).await.map(|_| ()),
    ] {
        assert!(
            matches!(outcome, Err(Error::InvalidConfig(_))),
            "{outcome:?}"
        );
    }
}
