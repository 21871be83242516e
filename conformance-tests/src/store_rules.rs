//! The rules of `store_tests!`: one `pub async fn` per rule of the `Store` contract, in the
//! contract's order.
//!
//! Each takes the store as `Arc<dyn Store>`, uses fresh random ids (so rules never collide and
//! never need to wipe the store), and panics with the values involved when the store breaks the
//! rule.

use std::sync::Arc;

use serde_json::json;
use session_core::{Error, Id, MAX_VERSION, Record, Store, now};
use time::Duration;
use tokio::sync::Barrier;

use crate::support::*;

/// Rounds of each race rule: enough that a store with a read-then-write gap loses at least one.
const RACE_ROUNDS: usize = 64;

/// How many times each of the two racing operations of `round` yields before it starts: every
/// combination of 0 to 3 comes up, so that each operation sometimes starts first and sometimes
/// lands inside the other's round trip.
fn lags(round: usize) -> (usize, usize) {
    (round % 4, (round / 4) % 4)
}

async fn stagger(yields: usize) {
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
}

/// `create` then `load` returns the same id, data, `created_at`, `expires_at` and version.
pub async fn create_then_load_round_trips(store: Arc<dyn Store>) {
    let mut record = sample(HOUR);
    record.version = 7;
    create_ok(&*store, &record).await;
    let loaded = load_some(&*store, &record.id).await;
    assert_same(&loaded, &record, "after create");
}

/// `create` of an id that is live fails with `AlreadyExists` and leaves the original untouched.
pub async fn create_existing_live_id_fails(store: Arc<dyn Store>) {
    let original = sample(HOUR);
    create_ok(&*store, &original).await;
    let mut intruder = Record::new(original.id.clone(), Duration::hours(2));
    insert(&mut intruder.data, "user", &json!("mallory"));
    match store.create(&intruder).await {
        Err(Error::AlreadyExists) => {}
        other => {
            panic!("second create of a live id returned {other:?}, expected Err(AlreadyExists)")
        }
    }
    let loaded = load_some(&*store, &original.id).await;
    assert_same(&loaded, &original, "original after a rejected create");
}

/// Of 32 concurrent `create`s of one id, exactly one succeeds and the others get `AlreadyExists`.
pub async fn concurrent_creates_exactly_one_wins(store: Arc<dyn Store>) {
    race_creates(&store, &Id::random(), "a new id").await;
}

/// `create` over a record with the same id that has expired (cleanup not yet run) succeeds.
pub async fn create_over_expired_record_succeeds(store: Arc<dyn Store>) {
    let old = sample(HOUR);
    create_ok(&*store, &old).await;
    expire(&*store, &old.id).await;
    let mut new = sample_with_id(&old.id, HOUR);
    insert(&mut new.data, "user", &json!("grace"));
    create_ok(&*store, &new).await;
    let loaded = load_some(&*store, &new.id).await;
    assert_same(&loaded, &new, "record created over an expired one");
}

/// Of 32 concurrent `create`s over an expired record with the same id, exactly one succeeds and
/// the others get `AlreadyExists`.
pub async fn concurrent_creates_over_expired_record_exactly_one_wins(store: Arc<dyn Store>) {
    let old = sample(HOUR);
    create_ok(&*store, &old).await;
    expire(&*store, &old.id).await;
    race_creates(&store, &old.id, "an id holding an expired record").await;
}

/// Runs 32 concurrent `create`s of `id` and checks that exactly one won and is what is stored.
async fn race_creates(store: &Arc<dyn Store>, id: &Id, what: &str) {
    let start = Arc::new(Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            let mut record = sample_with_id(id, HOUR);
            insert(&mut record.data, "writer", &json!(i));
            tokio::spawn(async move {
                start.wait().await;
                (i, store.create(&record).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await {
            Ok((i, Ok(()))) => winners.push(i),
            Ok((_, Err(Error::AlreadyExists))) => {}
            Ok((i, Err(e))) => {
                panic!("create #{i} failed with {e} ({e:?}), expected Ok or AlreadyExists")
            }
            Err(e) => panic!("a create task panicked: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "concurrent creates over {what} that succeeded: {winners:?}"
    );
    let loaded = load_some(&**store, id).await;
    assert_eq!(
        loaded.data.get::<i64>("writer").ok().flatten(),
        Some(winners[0]),
        "the stored record must be the winner's"
    );
}

/// `create` after `delete` of the same id succeeds.
pub async fn create_after_delete_succeeds(store: Arc<dyn Store>) {
    let old = sample(HOUR);
    create_ok(&*store, &old).await;
    delete_ok(&*store, &old.id).await;
    let mut new = sample_with_id(&old.id, HOUR);
    insert(&mut new.data, "user", &json!("grace"));
    create_ok(&*store, &new).await;
    assert_same(
        &load_some(&*store, &new.id).await,
        &new,
        "record created after delete",
    );
}

/// `load` of an id that was never created is `Ok(None)`.
pub async fn load_unknown_id_is_none(store: Arc<dyn Store>) {
    load_none(&*store, &Id::random(), "the id was never created").await;
}

/// `create` of an already-expired record succeeds, and `load` of it is `None`, even before any
/// cleanup has run.
pub async fn load_expired_record_is_none(store: Arc<dyn Store>) {
    let mut record = sample(HOUR);
    record.created_at = now() - Duration::hours(2);
    record.expires_at = now() - Duration::seconds(1);
    // Whether the store keeps the record or drops it at once, `create` itself succeeds: the
    // middleware may well write a session whose expiry passed while the request ran.
    if let Err(e) = store.create(&record).await {
        panic!("create of a record that expired a second ago failed: {e} ({e:?}), expected Ok");
    }
    load_none(&*store, &record.id, "it expired a second ago").await;
}

/// A record with no data round trips.
pub async fn empty_data_round_trips(store: Arc<dyn Store>) {
    let record = Record::new(Id::random(), HOUR);
    create_ok(&*store, &record).await;
    assert_same(
        &load_some(&*store, &record.id).await,
        &record,
        "empty record",
    );
}

/// A record with 1 MiB of data round trips through create, load and save.
pub async fn large_record_round_trips(store: Arc<dyn Store>) {
    let mut record = Record::new(Id::random(), HOUR);
    let chunk: String = (0..1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for i in 0..1024 {
        insert(&mut record.data, &format!("k{i:04}"), &json!(chunk));
    }
    create_ok(&*store, &record).await;
    let mut loaded = load_some(&*store, &record.id).await;
    assert_eq!(loaded.data.len(), 1024, "number of keys in a 1 MiB record");
    assert_same(&loaded, &record, "1 MiB record");
    insert(&mut loaded.data, "k0000", &json!("changed"));
    save_ok(&*store, &loaded).await;
    let again = load_some(&*store, &record.id).await;
    assert_eq!(
        again.data.get::<String>("k0000").ok().flatten().as_deref(),
        Some("changed")
    );
    assert_eq!(
        again.data.get::<String>("k1023").ok().flatten(),
        Some(chunk)
    );
}

/// Unicode keys and values, control characters, NUL bytes and all 256 byte values round trip.
pub async fn unicode_and_binary_values_round_trip(store: Arc<dyn Store>) {
    let mut record = Record::new(Id::random(), HOUR);
    let all_bytes: Vec<u8> = (0..=255).collect();
    let tricky = "nul\0 tab\t nl\n quote\" backslash\\ ünïcödé 日本語 😀 \u{202e}rtl \u{ffff}";
    record
        .data
        .insert("bytes", &all_bytes)
        .unwrap_or_else(|e| panic!("encode: {e}"));
    record
        .data
        .insert("tricky", tricky)
        .unwrap_or_else(|e| panic!("encode: {e}"));
    record
        .data
        .insert("ключ 🔑", &json!({"ñ": ["😀", "\0"]}))
        .unwrap_or_else(|e| panic!("encode: {e}"));
    record
        .data
        .insert("", &json!("empty key"))
        .unwrap_or_else(|e| panic!("encode: {e}"));
    record
        .data
        .insert("big", &json!([u64::MAX, i64::MIN, 1.0e300, -0.5]))
        .unwrap_or_else(|e| panic!("encode: {e}"));
    create_ok(&*store, &record).await;
    let loaded = load_some(&*store, &record.id).await;
    assert_same(&loaded, &record, "unicode and binary values");
    assert_eq!(
        loaded.data.get::<Vec<u8>>("bytes").ok().flatten(),
        Some(all_bytes),
        "bytes value"
    );
    assert_eq!(
        loaded
            .data
            .get::<String>("tricky")
            .ok()
            .flatten()
            .as_deref(),
        Some(tricky),
        "tricky string"
    );
}

/// 1000 records with distinct ids coexist: each loads with its own data.
pub async fn thousand_records_coexist(store: Arc<dyn Store>) {
    let records: Vec<Record> = (0..1000)
        .map(|i| {
            let mut r = Record::new(Id::random(), HOUR);
            insert(&mut r.data, "n", &json!(i));
            r
        })
        .collect();
    let records = Arc::new(records);
    // 8 writers and then 8 readers, each over its own slice.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (store, records) = (store.clone(), records.clone());
        tasks.push(tokio::spawn(async move {
            for r in records.iter().skip(w).step_by(8) {
                create_ok(&*store, r).await;
            }
        }));
    }
    for t in tasks.drain(..) {
        if let Err(e) = t.await {
            panic!("a writer panicked: {e}");
        }
    }
    for w in 0..8 {
        let (store, records) = (store.clone(), records.clone());
        tasks.push(tokio::spawn(async move {
            for r in records.iter().skip(w).step_by(8) {
                let loaded = load_some(&*store, &r.id).await;
                assert_eq!(
                    loaded.data.get::<i64>("n").ok().flatten(),
                    r.data.get::<i64>("n").ok().flatten(),
                    "record {:?} holds another record's data",
                    r.id
                );
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// `save` with the stored version succeeds, stores the new data and expiry, keeps `created_at`,
/// and bumps the version by one.
pub async fn save_current_version_bumps_version(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    let mut changed = load_some(&*store, &record.id).await;
    insert(&mut changed.data, "visits", &json!(4));
    changed.data.remove("profile");
    changed.expires_at = now() + Duration::hours(3);
    save_ok(&*store, &changed).await;
    let loaded = load_some(&*store, &record.id).await;
    let mut expected = changed.clone();
    expected.version = record.version + 1;
    assert_same(&loaded, &expected, "after save");
    // And again from the new version.
    let mut again = loaded;
    insert(&mut again.data, "visits", &json!(5));
    save_ok(&*store, &again).await;
    assert_eq!(
        load_some(&*store, &record.id).await.version,
        record.version + 2,
        "version after two saves"
    );
}

/// `save` keeps the stored `created_at`, whatever `created_at` the saved record carries.
pub async fn save_keeps_stored_created_at(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    let mut changed = load_some(&*store, &record.id).await;
    changed.created_at = record.created_at - Duration::days(3);
    insert(&mut changed.data, "visits", &json!(4));
    save_ok(&*store, &changed).await;
    let loaded = load_some(&*store, &record.id).await;
    assert_eq!(
        loaded.created_at, record.created_at,
        "created_at after a save whose record carried {}",
        changed.created_at
    );
    assert_eq!(
        loaded.data.get::<i64>("visits").ok().flatten(),
        Some(4),
        "the saved data must be stored"
    );
}

/// `save` with a stale version fails with `Conflict` and changes nothing.
pub async fn save_stale_version_conflicts(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    let mut first = record.clone();
    let mut second = record.clone();
    insert(&mut first.data, "user", &json!("first"));
    save_ok(&*store, &first).await;
    insert(&mut second.data, "user", &json!("second"));
    second.expires_at = now() + Duration::hours(5);
    match store.save(&second).await {
        Err(Error::Conflict) => {}
        other => panic!(
            "save at stale version {} returned {other:?}, expected Err(Conflict)",
            second.version
        ),
    }
    let loaded = load_some(&*store, &record.id).await;
    let mut expected = first.clone();
    expected.version = record.version + 1;
    assert_same(&loaded, &expected, "after a conflicting save");
}

/// `save` of a record that was deleted fails with `NotFound` and does not recreate it.
pub async fn save_after_delete_is_not_found(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    if let Err(e) = store.delete(&record.id).await {
        panic!("delete failed: {e} ({e:?})");
    }
    match store.save(&record).await {
        Err(Error::NotFound) => {}
        other => panic!("save after delete returned {other:?}, expected Err(NotFound)"),
    }
    load_none(
        &*store,
        &record.id,
        "save after delete must not recreate it",
    )
    .await;
}

/// `save` of an id that was never created fails with `NotFound` and does not create it.
pub async fn save_unknown_id_is_not_found(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    match store.save(&record).await {
        Err(Error::NotFound) => {}
        other => panic!("save of a never-created id returned {other:?}, expected Err(NotFound)"),
    }
    load_none(&*store, &record.id, "save must not create").await;
}

/// `save` over a record that has expired fails with `NotFound` and does not revive it.
pub async fn save_over_expired_record_is_not_found(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    expire(&*store, &record.id).await;
    let mut revived = record.clone();
    revived.expires_at = now() + HOUR;
    match store.save(&revived).await {
        Err(Error::NotFound) => {}
        other => panic!("save over an expired record returned {other:?}, expected Err(NotFound)"),
    }
    load_none(
        &*store,
        &record.id,
        "save must not revive an expired record",
    )
    .await;
}

/// Of 16 concurrent `save`s from the same version, exactly one succeeds; the others get `Conflict`.
pub async fn concurrent_saves_of_one_version_exactly_one_wins(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    let start = Arc::new(Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            let mut mine = record.clone();
            insert(&mut mine.data, "writer", &json!(i));
            tokio::spawn(async move {
                start.wait().await;
                (i, store.save(&mine).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await {
            Ok((i, Ok(()))) => winners.push(i),
            Ok((_, Err(Error::Conflict))) => {}
            Ok((i, Err(e))) => panic!("save #{i} failed with {e} ({e:?}), expected Ok or Conflict"),
            Err(e) => panic!("a save task panicked: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "saves that succeeded: {winners:?}");
    let loaded = load_some(&*store, &record.id).await;
    assert_eq!(
        loaded.version,
        record.version + 1,
        "version after one successful save"
    );
    assert_eq!(
        loaded.data.get::<i64>("writer").ok().flatten(),
        Some(winners[0]),
        "stored writer"
    );
}

/// A `save` racing a `delete` of the same record never revives it: over many rounds, the save
/// returns `Ok` or `NotFound` and afterwards the record is gone.
pub async fn save_racing_delete_never_revives(store: Arc<dyn Store>) {
    for round in 0..RACE_ROUNDS {
        let record = sample(HOUR);
        create_ok(&*store, &record).await;
        let mut changed = record.clone();
        insert(&mut changed.data, "round", &json!(round));
        let (saver, deleter) = (store.clone(), store.clone());
        let id = record.id.clone();
        let (save_lag, delete_lag) = lags(round);
        let save = async move {
            stagger(save_lag).await;
            saver.save(&changed).await
        };
        let delete = async move {
            stagger(delete_lag).await;
            deleter.delete(&id).await
        };
        // Start them in alternating order so either may reach the backend first.
        let (saved, deleted) = if round % 2 == 0 {
            let save = tokio::spawn(save);
            let delete = tokio::spawn(delete);
            (save.await, delete.await)
        } else {
            let delete = tokio::spawn(delete);
            let save = tokio::spawn(save);
            (save.await, delete.await)
        };
        let (saved, deleted) = match (saved, deleted) {
            (Ok(saved), Ok(deleted)) => (saved, deleted),
            _ => panic!("round {round}: a save or delete task panicked"),
        };
        if let Err(e) = deleted {
            panic!("round {round}: delete failed: {e} ({e:?})");
        }
        match saved {
            Ok(()) | Err(Error::NotFound) => {}
            Err(e) => panic!(
                "round {round}: save racing a delete failed with {e} ({e:?}), expected Ok or NotFound"
            ),
        }
        load_none(
            &*store,
            &record.id,
            &format!("round {round}: it was deleted (the racing save returned {saved:?})"),
        )
        .await;
    }
}

/// `touch` moves `expires_at` (a later load shows it) without changing data or version, and
/// returns `true`.
pub async fn touch_moves_expiry_only(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    let later = now() + Duration::hours(6);
    match store.touch(&record.id, later).await {
        Ok(true) => {}
        other => panic!("touch of a live record returned {other:?}, expected Ok(true)"),
    }
    let loaded = load_some(&*store, &record.id).await;
    let mut expected = record.clone();
    expected.expires_at = later;
    assert_same(&loaded, &expected, "after touch");
    // Touching does not change the version, so a save from the original version still works.
    save_ok(&*store, &record).await;
}

/// A `touch` racing a `save` of the same record never puts back the data the save replaced: over
/// many rounds, the stored data is the saved data and the version went up exactly once.
pub async fn touch_racing_save_keeps_saved_data(store: Arc<dyn Store>) {
    for round in 0..RACE_ROUNDS {
        let record = sample(HOUR);
        create_ok(&*store, &record).await;
        let mut changed = record.clone();
        insert(&mut changed.data, "user", &json!("saved"));
        insert(&mut changed.data, "round", &json!(round));
        changed.expires_at = now() + Duration::hours(2);
        let (saver, toucher) = (store.clone(), store.clone());
        let (saved_record, id) = (changed.clone(), record.id.clone());
        let later = now() + Duration::hours(3);
        let (save_lag, touch_lag) = lags(round);
        let save = async move {
            stagger(save_lag).await;
            saver.save(&saved_record).await
        };
        let touch = async move {
            stagger(touch_lag).await;
            toucher.touch(&id, later).await
        };
        let (saved, touched) = if round % 2 == 0 {
            let save = tokio::spawn(save);
            let touch = tokio::spawn(touch);
            (save.await, touch.await)
        } else {
            let touch = tokio::spawn(touch);
            let save = tokio::spawn(save);
            (save.await, touch.await)
        };
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!(
                "round {round}: save racing a touch failed with {e} ({e:?}); touch must not change the version"
            ),
            Err(_) => panic!("round {round}: the save task panicked"),
        }
        match touched {
            Ok(Ok(true)) => {}
            other => {
                panic!("round {round}: touch racing a save returned {other:?}, expected Ok(true)")
            }
        }
        let loaded = load_some(&*store, &record.id).await;
        assert_eq!(
            json_of(&loaded.data),
            json_of(&changed.data),
            "round {round}: data after a touch raced a save (the save's data must stay)"
        );
        assert_eq!(
            loaded.version,
            record.version + 1,
            "round {round}: version after one save and one touch"
        );
    }
}

/// `touch` of an unknown id returns `false` and creates nothing.
pub async fn touch_unknown_id_reports_absence(store: Arc<dyn Store>) {
    let id = Id::random();
    match store.touch(&id, now() + HOUR).await {
        Ok(false) => {}
        other => panic!("touch of an unknown id returned {other:?}, expected Ok(false)"),
    }
    load_none(&*store, &id, "touch must not create").await;
}

/// `touch` of a live record to an instant in the past returns `true`: the record was there.
pub async fn touch_into_past_reports_presence(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    match store.touch(&record.id, now() - Duration::seconds(1)).await {
        Ok(true) => {}
        other => {
            panic!("touch of a live record into the past returned {other:?}, expected Ok(true)")
        }
    }
}

/// `touch` to an instant in the past makes the record unloadable.
pub async fn touch_into_past_makes_record_unloadable(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    match store.touch(&record.id, now() - Duration::seconds(1)).await {
        Ok(_) => {}
        Err(e) => panic!("touch into the past failed: {e} ({e:?})"),
    }
    load_none(&*store, &record.id, "it was touched to a past instant").await;
}

/// `delete` removes the record.
pub async fn delete_removes(store: Arc<dyn Store>) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    if let Err(e) = store.delete(&record.id).await {
        panic!("delete failed: {e} ({e:?})");
    }
    load_none(&*store, &record.id, "it was deleted").await;
    match store.touch(&record.id, now() + HOUR).await {
        Ok(false) => {}
        other => panic!("touch after delete returned {other:?}, expected Ok(false)"),
    }
}

/// `delete` of an unknown id succeeds.
pub async fn delete_unknown_id_is_ok(store: Arc<dyn Store>) {
    if let Err(e) = store.delete(&Id::random()).await {
        panic!("delete of an unknown id failed: {e} ({e:?})");
    }
}

/// `create` of a record whose version is above `MAX_VERSION` fails with `VersionOutOfRange` and
/// writes nothing; a record at `MAX_VERSION` itself is created.
pub async fn create_beyond_max_version_is_refused(store: Arc<dyn Store>) {
    for version in [MAX_VERSION + 1, u64::MAX] {
        let mut record = sample(HOUR);
        record.version = version;
        match store.create(&record).await {
            Err(Error::VersionOutOfRange(v)) if v == version => {}
            other => panic!(
                "create at version {version} returned {other:?}, expected Err(VersionOutOfRange({version}))"
            ),
        }
        load_none(
            &*store,
            &record.id,
            &format!("create at version {version} was refused and must write nothing"),
        )
        .await;
    }
    let mut top = sample(HOUR);
    top.version = MAX_VERSION;
    create_ok(&*store, &top).await;
    assert_same(
        &load_some(&*store, &top.id).await,
        &top,
        "record created at MAX_VERSION",
    );
}

/// `save` of a record at `MAX_VERSION` (which has no successor) fails with `VersionOutOfRange`
/// and changes nothing.
pub async fn save_at_max_version_is_refused(store: Arc<dyn Store>) {
    let mut record = sample(HOUR);
    record.version = MAX_VERSION;
    create_ok(&*store, &record).await;
    let mut changed = record.clone();
    insert(&mut changed.data, "user", &json!("changed"));
    match store.save(&changed).await {
        Err(Error::VersionOutOfRange(v)) if v == MAX_VERSION => {}
        other => panic!(
            "save at MAX_VERSION returned {other:?}, expected Err(VersionOutOfRange({MAX_VERSION}))"
        ),
    }
    assert_same(
        &load_some(&*store, &record.id).await,
        &record,
        "record after a refused save at MAX_VERSION",
    );
}

/// A record with a short lifetime is loadable before its expiry and gone after it, in real time.
pub async fn expires_in_real_time(store: Arc<dyn Store>) {
    let record = sample(SHORT_TTL);
    create_ok(&*store, &record).await;
    load_some(&*store, &record.id).await;
    wait_until(record.expires_at + EXPIRY_MARGIN).await;
    load_none(&*store, &record.id, "its expiry passed").await;
    match store.touch(&record.id, now() + HOUR).await {
        Ok(false) => {}
        other => panic!(
            "touch after expiry returned {other:?}, expected Ok(false): expired records stay dead"
        ),
    }
}
