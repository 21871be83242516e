//! Checks shared by the per-database test files; each file uses the ones its database needs.
#![allow(dead_code)]

use std::future::Future;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use session_core::cleanup::{self, CleanupConfig};
use session_core::{Error, ExpiredDeletion, Id, Principals, Record, Result, Store, now};
use time::Duration;

/// A live record with a little data.
pub(crate) fn live_record() -> Record {
    let mut record = Record::new(Id::random(), Duration::hours(1));
    record
        .data
        .insert("user", "ada")
        .expect("encode a test value");
    record
}

/// A table name no other test uses: `sessions_` and 16 random hex digits.
pub(crate) fn random_table() -> String {
    format!(
        "sessions_{:016x}",
        std::hash::RandomState::new().hash_one(Id::random().as_str())
    )
}

/// A record that expired a minute ago.
pub(crate) fn expired_record() -> Record {
    let mut record = live_record();
    record.created_at = now() - Duration::hours(1);
    record.expires_at = now() - Duration::minutes(1);
    record
}

/// The driver error an `Error::Backend` keeps as its source, if it is an sqlx error.
pub(crate) fn sqlx_source(error: &Error) -> Option<&sqlx::Error> {
    std::error::Error::source(error)?.downcast_ref::<sqlx::Error>()
}

/// Whether `error` is a backend error whose source is the store's own operation timeout.
pub(crate) fn is_timeout(error: &Error) -> bool {
    matches!(error, Error::Backend { .. })
        && std::error::Error::source(error)
            .is_some_and(|s| s.downcast_ref::<session_core::Timeout>().is_some())
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after 60 s.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

/// Runs `operation`, failing the test if it does not finish in 60 s (a hang, not slowness).
pub(crate) async fn within_a_minute<T>(what: &str, operation: impl Future<Output = T>) -> T {
    match tokio::time::timeout(StdDuration::from_secs(60), operation).await {
        Ok(value) => value,
        Err(_) => panic!("{what} hung for a minute instead of returning"),
    }
}

/// `delete_expired_batch(limit)` deletes at most `limit` expired rows per call and never a
/// live one.
pub(crate) async fn expired_rows_are_deleted_in_bounded_batches<S: Store + ExpiredDeletion>(
    store: &S,
) {
    let live = live_record();
    store.create(&live).await.expect("create a live record");
    for _ in 0..5 {
        store
            .create(&expired_record())
            .await
            .expect("create an expired record");
    }
    let mut batches = Vec::new();
    for _ in 0..4 {
        batches.push(
            store
                .delete_expired_batch(2)
                .await
                .expect("delete expired records"),
        );
    }
    assert_eq!(batches, [2, 2, 1, 0], "rows deleted per batch of at most 2");
    assert!(
        store.load(&live.id).await.expect("load").is_some(),
        "the live record must survive cleanup"
    );
}

/// Wraps a store and records what each `delete_expired_batch` call returned.
struct Recording<S> {
    inner: S,
    outcomes: Mutex<Vec<std::result::Result<u64, String>>>,
}

impl<S> Recording<S> {
    fn outcomes(&self) -> Vec<std::result::Result<u64, String>> {
        self.outcomes.lock().expect("outcomes lock").clone()
    }
}

#[async_trait::async_trait]
impl<S: ExpiredDeletion> ExpiredDeletion for Recording<S> {
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        let outcome = self.inner.delete_expired_batch(limit).await;
        self.outcomes
            .lock()
            .expect("outcomes lock")
            .push(outcome.as_ref().map(|n| *n).map_err(ToString::to_string));
        outcome
    }
}

/// The cleanup task deletes 10 expired rows in batches of 3 and keeps running through rounds
/// that fail while `break_table` is in effect, until `restore_table` undoes it.
pub(crate) async fn cleanup_task_deletes_in_batches_and_survives_a_failing_round<S, B, R>(
    store: S,
    break_table: B,
    restore_table: R,
) where
    S: Store + ExpiredDeletion + Clone,
    B: Future<Output = ()>,
    R: Future<Output = ()>,
{
    let live: Vec<Record> = (0..2).map(|_| live_record()).collect();
    for record in &live {
        store.create(record).await.expect("create a live record");
    }
    for _ in 0..10 {
        store
            .create(&expired_record())
            .await
            .expect("create an expired record");
    }

    break_table.await;
    let recording = Arc::new(Recording {
        inner: store.clone(),
        outcomes: Mutex::new(Vec::new()),
    });
    let task = cleanup::spawn(
        recording.clone(),
        CleanupConfig::new(StdDuration::from_millis(100))
            .with_batch_size(3)
            .with_jitter(0.0),
    )
    .expect("valid cleanup config");
    eventually("a cleanup round fails on the broken table", || {
        recording.outcomes().iter().any(|o| o.is_err())
    })
    .await;
    restore_table.await;
    eventually("the cleanup task deletes every expired row", || {
        let outcomes = recording.outcomes();
        let last_error = outcomes.iter().rposition(|o| o.is_err()).unwrap_or(0);
        outcomes[last_error + 1..]
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .sum::<u64>()
            >= 10
    })
    .await;
    assert!(!task.is_finished(), "the task must survive a failing round");
    task.stop();

    let outcomes = recording.outcomes();
    let last_error = outcomes.iter().rposition(|o| o.is_err()).unwrap_or(0);
    let round: Vec<u64> = outcomes[last_error + 1..]
        .iter()
        .take(4)
        .map(|o| *o.as_ref().expect("no errors after the last one"))
        .collect();
    assert_eq!(
        round,
        [3, 3, 3, 1],
        "the first round after the table came back deletes in batches of 3 ({outcomes:?})"
    );
    assert_eq!(
        store.delete_expired().await.expect("delete expired"),
        0,
        "nothing expired is left"
    );
    for record in &live {
        assert!(
            store.load(&record.id).await.expect("load").is_some(),
            "live records survive cleanup"
        );
    }
}

/// `load` of a row whose data column holds garbage returns `Error::Decode`; `corrupt` overwrites
/// the data of the given id with bytes that no codec reads.
pub(crate) async fn corrupt_data_is_a_decode_error<S, F, Fut>(store: &S, corrupt: F)
where
    S: Store,
    F: FnOnce(Id) -> Fut,
    Fut: Future<Output = ()>,
{
    let record = live_record();
    store.create(&record).await.expect("create");
    corrupt(record.id.clone()).await;
    match store.load(&record.id).await {
        Err(Error::Decode(_)) => {}
        other => panic!("load of corrupt data returned {other:?}, expected Err(Decode)"),
    }
}

/// The bytes `corrupt_data_is_a_decode_error` writes: an unknown format byte, then junk.
pub(crate) const GARBAGE: &[u8] = b"\xff\x00\x13 not a session";

/// A store that reads through a connection with another time zone setting sees the same
/// instants and the same expiry decisions as the one that wrote.
pub(crate) async fn instants_do_not_depend_on_the_time_zone<S: Store>(writer: &S, reader: &S) {
    let record = live_record();
    writer.create(&record).await.expect("create");
    let loaded = reader
        .load(&record.id)
        .await
        .expect("load")
        .expect("the record is live");
    assert_eq!(loaded.created_at, record.created_at, "created_at");
    assert_eq!(loaded.expires_at, record.expires_at, "expires_at");

    // An instant two seconds in the past is past in every time zone.
    let soon_past = now() - Duration::seconds(2);
    assert!(
        reader.touch(&record.id, soon_past).await.expect("touch"),
        "touch of a live record"
    );
    assert!(
        writer.load(&record.id).await.expect("load").is_none(),
        "a record touched into the past is expired for every connection"
    );
}

/// While the server is stopped, operations fail (in bounded time); once it is back, the same
/// store works again and the record written before is still there.
pub(crate) async fn store_recovers_after_the_server_restarts<S, Stop, Start>(
    store: &S,
    stop: Stop,
    start: Start,
) where
    S: Store,
    Stop: Future<Output = ()>,
    Start: Future<Output = ()>,
{
    let before = live_record();
    store.create(&before).await.expect("create before the stop");
    stop.await;

    let load = within_a_minute("load on a stopped server", store.load(&before.id)).await;
    assert!(
        matches!(load, Err(Error::Backend { .. })),
        "load on a stopped server returned {load:?}, expected Err(Backend)"
    );
    let create = within_a_minute("create on a stopped server", store.create(&live_record())).await;
    assert!(
        matches!(create, Err(Error::Backend { .. })),
        "create on a stopped server returned {create:?}, expected Err(Backend)"
    );
    let save = within_a_minute("save on a stopped server", store.save(&before)).await;
    assert!(
        matches!(save, Err(Error::Backend { .. })),
        "save on a stopped server returned {save:?}, expected Err(Backend)"
    );

    start.await;
    let loaded = within_a_minute("load after the restart", store.load(&before.id))
        .await
        .expect("load after the restart")
        .expect("the record written before the stop");
    assert_eq!(loaded.version, before.version);
    store.save(&loaded).await.expect("save after the restart");
    let after = live_record();
    store
        .create(&after)
        .await
        .expect("create after the restart");
    assert!(store.load(&after.id).await.expect("load").is_some());
}

/// Touching a record to the instant it already expires at still reports it (MySQL counts
/// matched rows, not changed ones, under sqlx).
pub(crate) async fn touch_to_the_stored_instant_reports_the_record<S: Store>(store: &S) {
    let record = live_record();
    store.create(&record).await.expect("create");
    assert!(
        store
            .touch(&record.id, record.expires_at)
            .await
            .expect("touch"),
        "touch to the stored expiry of a live record must return true"
    );
}

/// `create` of a record identical to an expired stored one succeeds: replacing it changes no
/// value, which must not be mistaken for a live row.
pub(crate) async fn create_over_an_identical_expired_row_succeeds<S: Store>(store: &S) {
    let record = expired_record();
    store
        .create(&record)
        .await
        .expect("create an expired record");
    store
        .create(&record)
        .await
        .expect("create the same expired record again");
    let mut live = record.clone();
    live.expires_at = now() + Duration::hours(1);
    store
        .create(&live)
        .await
        .expect("create a live record over the expired one");
    match store.create(&live).await {
        Err(Error::AlreadyExists) => {}
        other => panic!("create over the live record returned {other:?}, expected AlreadyExists"),
    }
}

/// `create` over an *expired* row never reports `AlreadyExists` while a `delete` of that row
/// runs concurrently: at no moment was there a live record with that id. (A `create` that
/// first tries an `INSERT` and, on a duplicate, a second statement that replaces an expired
/// row, finds nothing to replace when the delete slips in between.)
pub(crate) async fn create_racing_delete_of_expired_row_never_reports_a_live_record<S>(store: &S)
where
    S: Store,
{
    const ROUNDS: usize = 300;
    let mut wrong = Vec::new();
    for round in 0..ROUNDS {
        let expired = expired_record();
        store
            .create(&expired)
            .await
            .expect("create an expired record");
        let mut live = live_record();
        live.id = expired.id.clone();
        let (created, deleted) = tokio::join!(store.create(&live), store.delete(&expired.id));
        deleted.expect("delete");
        if let Err(e) = created {
            wrong.push(format!("round {round}: {e:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "create over an expired row racing its delete failed in {} of {ROUNDS} rounds: {:?}",
        wrong.len(),
        wrong
    );
}

/// `migrate` on a table that exists with another layout fails with `InvalidConfig` naming the
/// problem, and leaves the table as it was. Each case is the DDL of a table (with `{table}` for
/// its name) and the phrases the error must contain; `migrate` runs a store's `migrate` on
/// the named table, `execute` runs SQL on the store's database, `rows` counts a table's rows.
pub(crate) async fn migrate_reports_what_is_wrong<E, EF, R, RF>(
    migrate: impl AsyncFn(&str) -> Result<()>,
    execute: E,
    rows: R,
    cases: &[(&str, &[&str])],
) where
    E: Fn(String) -> EF,
    EF: Future<Output = ()>,
    R: Fn(String) -> RF,
    RF: Future<Output = i64>,
{
    for (ddl, phrases) in cases {
        let table = random_table();
        execute(ddl.replace("{table}", &table)).await;
        match migrate(&table).await {
            Err(Error::InvalidConfig(message)) => {
                for phrase in *phrases {
                    assert!(
                        message.contains(phrase),
                        "migrate over `{ddl}`: the error must say {phrase:?}, it says: {message}"
                    );
                }
                assert!(
                    message.contains(&table),
                    "the error names the table: {message}"
                );
            }
            other => panic!("migrate over `{ddl}` returned {other:?}, expected InvalidConfig"),
        }
        assert_eq!(
            rows(table.clone()).await,
            0,
            "the foreign table `{table}` is still there, untouched"
        );
    }
}

/// `load` of a row with a column of the wrong type is `Error::Decode`; `corrupt` puts such a
/// row (id given) in place.
pub(crate) async fn wrongly_typed_row_is_a_decode_error<S, F, Fut>(
    store: &S,
    what: &str,
    corrupt: F,
) where
    S: Store,
    F: FnOnce(Id) -> Fut,
    Fut: Future<Output = ()>,
{
    let id = Id::random();
    corrupt(id.clone()).await;
    match store.load(&id).await {
        Err(Error::Decode(_)) => {}
        other => panic!("load of a row with {what} returned {other:?}, expected Err(Decode)"),
    }
}

/// A record whose data alone encodes to about `bytes` bytes.
pub(crate) fn record_of_size(bytes: usize) -> Record {
    let mut record = live_record();
    record
        .data
        .insert("blob", &"x".repeat(bytes))
        .expect("encode a large value");
    record
}

/// A record too large for the database is `TooLarge` before any round trip, on `create` and
/// `save`, and nothing is written; one within `limit` is stored.
pub(crate) async fn records_over_the_size_limit_are_too_large<S: Store>(store: &S, limit: usize) {
    let small = record_of_size(limit / 2);
    store.create(&small).await.expect("create within the limit");
    let loaded = store.load(&small.id).await.expect("load").expect("live");
    assert_eq!(loaded.data, small.data, "the record within the limit");

    let big = record_of_size(limit + limit / 2);
    match store.create(&big).await {
        Err(Error::TooLarge { size, limit: l }) => {
            assert!(size > limit, "size {size} is the encoded size");
            assert!(l <= limit, "limit {l} is at most the server's {limit}");
        }
        other => panic!(
            "create of {} bytes returned {other:?}, expected TooLarge",
            limit * 3 / 2
        ),
    }
    assert!(
        store.load(&big.id).await.expect("load").is_none(),
        "nothing was written"
    );
    let mut grown = loaded.clone();
    grown.data = big.data.clone();
    match store.save(&grown).await {
        Err(Error::TooLarge { .. }) => {}
        other => panic!("save of a too large record returned {other:?}, expected TooLarge"),
    }
    let after = store.load(&small.id).await.expect("load").expect("live");
    assert_eq!(
        after.version, loaded.version,
        "the failed save wrote nothing"
    );
    // The connection is still usable: the record was refused before it was sent.
    store.save(&loaded).await.expect("save within the limit");
}

/// The database's clock decides every expiry, not the host's: `db_ahead` and `db_behind` are
/// handles on `host`'s table whose **database sessions** run a day ahead and a day behind
/// (the app's clock is right everywhere).
pub(crate) async fn the_database_clock_decides_expiry<S: Store + ExpiredDeletion>(
    host: &S,
    db_ahead: &S,
    db_behind: &S,
) {
    // Live for another hour by the host's clock; long expired for the database ahead.
    let live = live_record();
    host.create(&live).await.expect("create");
    assert!(
        db_ahead.load(&live.id).await.expect("load").is_none(),
        "the database a day ahead says the record has expired"
    );
    assert!(
        !db_ahead
            .touch(&live.id, live.expires_at)
            .await
            .expect("touch"),
        "touch on the database a day ahead finds no live record"
    );
    assert!(
        matches!(db_ahead.save(&live).await, Err(Error::NotFound)),
        "save on the database a day ahead finds no live record"
    );
    // Expired a minute ago by the host's clock; live for the database behind.
    let expired = expired_record();
    host.create(&expired)
        .await
        .expect("create an expired record");
    let loaded = db_behind
        .load(&expired.id)
        .await
        .expect("load")
        .expect("the database a day behind says the record is live");
    assert_eq!(loaded.version, expired.version);
    assert!(
        matches!(db_behind.create(&expired).await, Err(Error::AlreadyExists)),
        "create on the database a day behind meets a live record"
    );
    assert_eq!(
        db_behind.delete_expired().await.expect("cleanup"),
        0,
        "cleanup on the database a day behind deletes nothing"
    );
    assert_eq!(
        db_ahead.delete_expired().await.expect("cleanup"),
        2,
        "cleanup on the database a day ahead deletes both records"
    );
    let mut again = live_record();
    again.id = live.id.clone();
    host.create(&again)
        .await
        .expect("the id is free once cleanup removed the row");
}

/// A record's data as the store writes it by default (MessagePack).
pub(crate) fn encoded(record: &Record) -> Vec<u8> {
    session_core::Codec::encode(&session_core::MessagePack, &record.data).expect("encode")
}

/// A principal no other test uses.
pub(crate) fn random_principal() -> String {
    format!("ada-{}", Id::random().as_str())
}

/// Sessions a store wrote before it kept principals still load, with no principal, once
/// `migrate` has added the column; they can log in (a `save` with a principal) and are then
/// listed. `store` is on a table of the old layout, not yet migrated, `migrate` runs its
/// `migrate`, and `insert_old` writes a record into the table as the old store did (no
/// `principal` column).
pub(crate) async fn sessions_stored_before_principals_still_load<S, F, Fut>(
    store: &S,
    migrate: impl AsyncFn() -> Result<()>,
    insert_old: F,
) where
    S: Store + Principals,
    F: Fn(Record) -> Fut,
    Fut: Future<Output = ()>,
{
    let old: Vec<Record> = (0..3).map(|_| live_record()).collect();
    for record in &old {
        insert_old(record.clone()).await;
    }
    migrate()
        .await
        .expect("migrate adds the principal column to a table from before principals");
    migrate().await.expect("migrate again");
    for record in &old {
        let loaded = store
            .load(&record.id)
            .await
            .expect("load a session stored before principals")
            .expect("the old session is live");
        assert_eq!(&loaded, record, "the old session, with no principal");
    }

    // Login on an old session: saved with a principal, it joins the principal's sessions.
    let ada = random_principal();
    assert!(
        store.sessions_of(&ada).await.expect("list").is_empty(),
        "no session has the principal yet"
    );
    let login = old[0].clone().with_principal(Some(ada.clone()));
    store
        .save(&login)
        .await
        .expect("save an old session with a principal");
    let listed = store.sessions_of(&ada).await.expect("list");
    assert_eq!(
        listed.len(),
        1,
        "the logged-in old session is listed: {listed:?}"
    );
    assert_eq!(listed[0].id, login.id);
    assert_eq!(listed[0].principal.as_deref(), Some(ada.as_str()));
    assert_eq!(listed[0].version, login.version + 1);

    // The others are untouched, and a new session of the principal is listed beside it.
    for record in &old[1..] {
        let loaded = store.load(&record.id).await.expect("load").expect("live");
        assert_eq!(loaded.principal, None, "an old session nobody saved");
    }
    let new = live_record().with_principal(Some(ada.clone()));
    store
        .create(&new)
        .await
        .expect("create after the migration");
    assert_eq!(
        store.revoke_all(&ada, None).await.expect("revoke all"),
        2,
        "the old session that logged in and the new one"
    );
    for record in &old[1..] {
        assert!(
            store.load(&record.id).await.expect("load").is_some(),
            "revoke_all leaves sessions without a principal alone"
        );
    }
}

/// The rows of a principal leave the table, and so its index, when they are deleted, revoked
/// or expired and cleaned up: nothing of a principal stays behind for ever. `rows_of` counts
/// the rows holding a principal, live or not, by SQL.
pub(crate) async fn a_principals_rows_leave_with_delete_revoke_and_cleanup<S, R, RF>(
    store: &S,
    rows_of: R,
) where
    S: Store + Principals + ExpiredDeletion,
    R: Fn(String) -> RF,
    RF: Future<Output = i64>,
{
    let ada = random_principal();
    let mine = |record: Record| record.with_principal(Some(ada.clone()));
    let live: Vec<Record> = (0..4).map(|_| mine(live_record())).collect();
    let expired: Vec<Record> = (0..3).map(|_| mine(expired_record())).collect();
    for record in live.iter().chain(&expired) {
        store
            .create(record)
            .await
            .expect("create a session of the principal");
    }
    let touched = &live[3];
    assert!(
        store
            .touch(&touched.id, now() - Duration::seconds(1))
            .await
            .expect("touch into the past"),
        "touch of a live session"
    );
    assert_eq!(
        rows_of(ada.clone()).await,
        7,
        "every row of the principal is stored"
    );
    assert_eq!(
        store.sessions_of(&ada).await.expect("list").len(),
        3,
        "only the live ones are listed, before any cleanup"
    );

    store.delete(&live[0].id).await.expect("delete");
    assert!(store.revoke(&ada, &live[1].id).await.expect("revoke"));
    assert_eq!(
        rows_of(ada.clone()).await,
        5,
        "a deleted and a revoked session leave the table at once"
    );

    let removed = store.delete_expired().await.expect("cleanup");
    assert!(
        removed >= 4,
        "cleanup removed {removed} rows, expected the principal's 4 expired"
    );
    assert_eq!(
        rows_of(ada.clone()).await,
        1,
        "cleanup removes the principal's expired rows (3 expired, 1 touched into the past)"
    );
    assert_eq!(store.revoke_all(&ada, None).await.expect("revoke all"), 1);
    assert_eq!(rows_of(ada).await, 0, "nothing of the principal is left");
}
