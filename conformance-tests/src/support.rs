//! What the rules share: sample records and operations that panic with the values involved.

use serde_json::{Value as Json, json};
use session_core::{Data, Id, Record, Store, now};
use time::Duration;

pub(crate) const HOUR: Duration = Duration::hours(1);

/// A live record with a few typical values.
pub(crate) fn sample(ttl: Duration) -> Record {
    let mut record = Record::new(Id::random(), ttl);
    insert(&mut record.data, "user", &json!("ada"));
    insert(&mut record.data, "visits", &json!(3));
    insert(
        &mut record.data,
        "profile",
        &json!({"roles": ["admin", "dev"], "age": 36, "active": true, "ratio": 0.25, "none": null}),
    );
    record
}

/// [`sample`] with another record's id.
pub(crate) fn sample_with_id(id: &Id, ttl: Duration) -> Record {
    let mut record = sample(ttl);
    record.id = id.clone();
    record
}

pub(crate) fn insert(data: &mut Data, key: &str, value: &Json) {
    if let Err(e) = data.insert(key, value) {
        panic!("encoding the test value for {key:?} failed: {e}");
    }
}

pub(crate) fn json_of(data: &Data) -> serde_json::Map<String, Json> {
    match data.to_json() {
        Ok(map) => map,
        Err(e) => panic!("stored data does not decode to JSON: {e}"),
    }
}

pub(crate) async fn create_ok(store: &dyn Store, record: &Record) {
    if let Err(e) = store.create(record).await {
        panic!("create({:?}) failed: {e} ({e:?})", record.id);
    }
}

pub(crate) async fn load_some(store: &dyn Store, id: &Id) -> Record {
    match store.load(id).await {
        Ok(Some(r)) => r,
        Ok(None) => panic!("load({id:?}) returned None for a live record"),
        Err(e) => panic!("load({id:?}) failed: {e} ({e:?})"),
    }
}

pub(crate) async fn load_none(store: &dyn Store, id: &Id, why: &str) {
    match store.load(id).await {
        Ok(None) => {}
        Ok(Some(r)) => panic!("load({id:?}) returned a record ({r:?}) but {why}"),
        Err(e) => panic!("load({id:?}) failed: {e} ({e:?})"),
    }
}

pub(crate) async fn save_ok(store: &dyn Store, record: &Record) {
    if let Err(e) = store.save(record).await {
        panic!(
            "save({:?}) at version {} failed: {e} ({e:?})",
            record.id, record.version
        );
    }
}

pub(crate) async fn delete_ok(store: &dyn Store, id: &Id) {
    if let Err(e) = store.delete(id).await {
        panic!("delete({id:?}) failed: {e} ({e:?})");
    }
}

/// Expires a live record by touching it an hour into the past.
pub(crate) async fn expire(store: &dyn Store, id: &Id) {
    if let Err(e) = store.touch(id, now() - HOUR).await {
        panic!("touch({id:?}) into the past failed: {e} ({e:?})");
    }
}

/// Creates `record`, which expires within a couple of seconds, and waits until it has expired
/// by the backend's clock (plus a margin). A real expiry rather than an already-expired record,
/// because a store may refuse to keep a record that is expired when written, and the rules
/// that use this need the expired record to be there.
pub(crate) async fn create_and_let_expire(store: &dyn Store, records: &[Record]) {
    for record in records {
        create_ok(store, record).await;
    }
    let last = records
        .iter()
        .map(|r| r.expires_at)
        .max()
        .unwrap_or_else(now);
    wait_until(last + EXPIRY_MARGIN).await;
}

/// How long past an expiry the rules wait before they call a record expired: covers a
/// backend's clock being a little behind the test host's and coarse timers.
pub(crate) const EXPIRY_MARGIN: Duration = Duration::milliseconds(600);

/// How long the records that [`create_and_let_expire`] waits for live.
pub(crate) const SHORT_TTL: Duration = Duration::milliseconds(1500);

pub(crate) async fn wait_until(instant: time::OffsetDateTime) {
    let wait = instant - time::OffsetDateTime::now_utc();
    if wait.is_positive() {
        tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
    }
}

pub(crate) fn assert_same(loaded: &Record, expected: &Record, context: &str) {
    assert_eq!(loaded.id, expected.id, "{context}: id");
    assert_eq!(
        json_of(&loaded.data),
        json_of(&expected.data),
        "{context}: data"
    );
    assert_eq!(
        loaded.created_at, expected.created_at,
        "{context}: created_at"
    );
    assert_eq!(
        loaded.expires_at, expected.expires_at,
        "{context}: expires_at"
    );
    assert_eq!(loaded.version, expected.version, "{context}: version");
}
