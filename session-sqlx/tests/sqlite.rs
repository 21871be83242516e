//! `SqliteStore`: the conformance suites on a file and in memory (with MessagePack and JSON,
//! skewed app clocks, cleanup), persistence across a restart, cleanup, corrupt data, locks held
//! by other connections, timeouts, the schema check and configuration.
#![cfg(feature = "sqlite")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use session_core::{Clock, Error, ExpiredDeletion, Json, Store};
use session_sqlx::SqliteStore;
use sqlx::sqlite::SqlitePoolOptions;
use tempfile::TempDir;

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

fn file_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("sessions.db").display())
}

async fn file_store(dir: &TempDir) -> SqliteStore {
    let store = SqliteStore::connect(&file_url(dir))
        .await
        .expect("open an SQLite file");
    store.migrate().await.expect("migrate");
    store
}

mod file {
    async fn setup() -> (session_sqlx::SqliteStore, tempfile::TempDir) {
        let dir = super::temp_dir();
        (super::file_store(&dir).await, dir)
    }

    session_conformance::store_tests!(setup);
    session_conformance::principal_tests!(setup);
}

/// A second handle on the same database whose app clock is `clock`.
fn with_clock(store: &SqliteStore, clock: Arc<dyn Clock>) -> SqliteStore {
    store.clone().with_clock(clock)
}

mod json {
    async fn setup() -> (session_sqlx::SqliteStore, tempfile::TempDir) {
        let dir = super::temp_dir();
        (
            super::file_store(&dir).await.with_codec(session_core::Json),
            dir,
        )
    }

    session_conformance::store_tests!(setup);
    session_conformance::principal_tests!(setup);
}

mod skew {
    async fn setup() -> (session_sqlx::SqliteStore, tempfile::TempDir) {
        let dir = super::temp_dir();
        (super::file_store(&dir).await, dir)
    }

    session_conformance::skew_tests!(setup, super::with_clock);
}

mod cleanup {
    /// A store on a fresh table of its own: the rules count what cleanup deletes.
    async fn setup() -> (session_sqlx::SqliteStore, tempfile::TempDir) {
        let dir = super::temp_dir();
        let store = super::file_store(&dir)
            .await
            .with_table(&super::common::random_table())
            .expect("valid table name");
        store.migrate().await.expect("migrate the fresh table");
        (store, dir)
    }

    session_conformance::cleanup_tests!(setup, super::with_clock);
}

mod memory {
    async fn setup() -> (session_sqlx::SqliteStore, ()) {
        let store = session_sqlx::SqliteStore::connect("sqlite::memory:")
            .await
            .expect("open an in-memory database");
        store.migrate().await.expect("migrate");
        (store, ())
    }

    session_conformance::store_tests!(setup);
    session_conformance::principal_tests!(setup);
}

#[tokio::test]
async fn sessions_persist_across_a_restart() {
    let dir = temp_dir();
    let record = common::live_record();
    {
        let store = file_store(&dir).await;
        store.create(&record).await.expect("create");
        store.pool().close().await;
    }
    let reopened = file_store(&dir).await;
    let loaded = reopened
        .load(&record.id)
        .await
        .expect("load")
        .expect("the record survives closing the pool");
    assert_eq!(loaded, record);
}

#[tokio::test]
async fn in_memory_databases_are_private_to_their_pool() {
    let a = SqliteStore::connect("sqlite::memory:").await.expect("open");
    let b = SqliteStore::connect("sqlite::memory:").await.expect("open");
    a.migrate().await.expect("migrate");
    b.migrate().await.expect("migrate");
    let record = common::live_record();
    a.create(&record).await.expect("create");
    assert!(a.clone().load(&record.id).await.expect("load").is_some());
    assert!(b.load(&record.id).await.expect("load").is_none());
}

#[tokio::test]
async fn migrate_is_idempotent_and_creates_the_expiry_index() {
    let dir = temp_dir();
    let store = SqliteStore::connect(&file_url(&dir))
        .await
        .expect("open")
        .with_schema("main")
        .and_then(|s| s.with_table("web_sessions"))
        .expect("valid names");
    store.migrate().await.expect("first migrate");
    store.migrate().await.expect("second migrate");
    let index: Option<String> = sqlx::query_scalar(
        "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = 'web_sessions_expires_at_idx'",
    )
    .fetch_optional(store.pool())
    .await
    .expect("read the schema");
    assert_eq!(index.as_deref(), Some("web_sessions"));
    let record = common::live_record();
    store.create(&record).await.expect("create");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM web_sessions")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(rows, 1, "the record is in the configured table");
}

#[tokio::test]
async fn unsafe_table_and_schema_names_are_rejected() {
    let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
    for bad in ["", "sessions; DROP TABLE users", "a\"b", "1abc", "a.b"] {
        assert!(
            matches!(store.clone().with_table(bad), Err(Error::InvalidConfig(_))),
            "table name {bad:?} must be rejected"
        );
        assert!(
            matches!(store.clone().with_schema(bad), Err(Error::InvalidConfig(_))),
            "schema name {bad:?} must be rejected"
        );
    }
}

#[tokio::test]
async fn invalid_urls_are_configuration_errors() {
    match SqliteStore::connect("postgres://localhost/db").await {
        Err(Error::InvalidConfig(_)) => {}
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_data_is_a_decode_error() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    let pool = store.pool().clone();
    common::corrupt_data_is_a_decode_error(&store, |id| async move {
        sqlx::query("UPDATE sessions SET data = ?1 WHERE id = ?2")
            .bind(common::GARBAGE)
            .bind(id.as_str())
            .execute(&pool)
            .await
            .expect("overwrite the data column");
    })
    .await;
}

#[tokio::test]
async fn expired_rows_are_deleted_in_bounded_batches() {
    let dir = temp_dir();
    common::expired_rows_are_deleted_in_bounded_batches(&file_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_task_deletes_in_batches_and_survives_a_failing_round() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    let pool = store.pool().clone();
    common::cleanup_task_deletes_in_batches_and_survives_a_failing_round(
        store,
        async {
            sqlx::query("ALTER TABLE sessions RENAME TO sessions_away")
                .execute(&pool)
                .await
                .expect("rename the table away");
        },
        async {
            sqlx::query("ALTER TABLE sessions_away RENAME TO sessions")
                .execute(&pool)
                .await
                .expect("rename the table back");
        },
    )
    .await;
}

#[tokio::test]
async fn the_json_codec_stores_readable_json() {
    let dir = temp_dir();
    let store = file_store(&dir).await.with_codec(Json);
    let record = common::live_record();
    store.create(&record).await.expect("create");
    let raw: Vec<u8> = sqlx::query_scalar("SELECT data FROM sessions WHERE id = ?1")
        .bind(record.id.as_str())
        .fetch_one(store.pool())
        .await
        .expect("read the data column");
    assert_eq!(
        std::str::from_utf8(&raw).expect("UTF-8"),
        r#"{"v":1,"data":{"user":"ada"}}"#
    );
    assert_eq!(store.load(&record.id).await.expect("load"), Some(record));
}

#[tokio::test]
async fn an_exhausted_pool_is_an_error_not_a_hang() {
    let dir = temp_dir();
    file_store(&dir).await.pool().close().await;
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(200))
        .connect(&file_url(&dir))
        .await
        .expect("open");
    let store = SqliteStore::new(pool.clone());
    let held = pool.acquire().await.expect("take the only connection");
    let error = common::within_a_minute(
        "load on an exhausted pool",
        store.load(&session_core::Id::random()),
    )
    .await
    .expect_err("no connection is free");
    assert!(
        matches!(common::sqlx_source(&error), Some(sqlx::Error::PoolTimedOut)),
        "expected a pool timeout as the source, got {error:?}"
    );
    drop(held);
    assert!(
        store
            .load(&session_core::Id::random())
            .await
            .expect("load")
            .is_none()
    );
}

#[tokio::test]
async fn operations_are_bounded_by_the_store_timeout() {
    let dir = temp_dir();
    file_store(&dir).await.pool().close().await;
    // The pool would wait a minute; the store gives up after 200 ms.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .connect(&file_url(&dir))
        .await
        .expect("open");
    let store = SqliteStore::new(pool.clone())
        .with_timeout(Duration::from_millis(200))
        .expect("a valid timeout");
    let held = pool.acquire().await.expect("take the only connection");
    let error = common::within_a_minute(
        "create on a busy pool",
        store.create(&common::live_record()),
    )
    .await
    .expect_err("the store times out");
    assert!(
        common::is_timeout(&error),
        "expected a store timeout, got {error:?}"
    );
    let error = store
        .delete_expired_batch(10)
        .await
        .expect_err("the store times out");
    assert!(
        common::is_timeout(&error),
        "expected a store timeout, got {error:?}"
    );
    drop(held);
}

#[tokio::test]
async fn touch_to_the_stored_instant_reports_the_record() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    common::touch_to_the_stored_instant_reports_the_record(&store).await;
}

#[tokio::test]
async fn create_over_an_identical_expired_row_succeeds() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    common::create_over_an_identical_expired_row_succeeds(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_racing_delete_of_expired_row_never_reports_a_live_record() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    common::create_racing_delete_of_expired_row_never_reports_a_live_record(&store).await;
}

async fn execute(pool: &sqlx::SqlitePool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn migrate_reports_what_is_wrong_with_an_existing_table() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    let pool = store.pool().clone();
    common::migrate_reports_what_is_wrong(
        async |table| store.clone().with_table(table)?.migrate().await,
        |sql| {
            let pool = pool.clone();
            async move { execute(&pool, &sql).await }
        },
        |table| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await
                    .expect("count the rows")
            }
        },
        &[
            (
                // connect-sqlite3's table.
                "CREATE TABLE {table} (sid PRIMARY KEY, expired, sess)",
                &["column `id` is missing", "column `expires_at` is missing"],
            ),
            (
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BLOB NOT NULL, \
                 created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
                &["column `version` is missing"],
            ),
            (
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data TEXT NOT NULL, \
                 created_at INTEGER NOT NULL, expires_at DATETIME NOT NULL, \
                 version INTEGER NOT NULL)",
                &[
                    "column `data` is `text`, expected `blob`",
                    "column `expires_at` is `datetime`, expected `integer`",
                ],
            ),
            (
                "CREATE TABLE {table} (id TEXT NOT NULL, data BLOB NOT NULL, \
                 created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, \
                 version INTEGER NOT NULL)",
                &["there is no primary key, expected `id`"],
            ),
            (
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BLOB NOT NULL, \
                 created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, \
                 version INTEGER NOT NULL, principal BLOB)",
                &["column `principal` is `blob`, expected `text`"],
            ),
            (
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BLOB NOT NULL, \
                 created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, \
                 version INTEGER NOT NULL, principal TEXT NOT NULL)",
                &["column `principal` is NOT NULL, expected it to allow NULL"],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn wrongly_typed_columns_are_decode_errors() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    let pool = store.pool().clone();
    // SQLite keeps whatever is stored; a column holding the wrong type does not decode.
    let put = |sql: &'static str| {
        let pool = pool.clone();
        move |id: session_core::Id| async move {
            sqlx::query(sql)
                .bind(id.as_str())
                .execute(&pool)
                .await
                .expect("insert a row");
        }
    };
    common::wrongly_typed_row_is_a_decode_error(
        &store,
        "text in created_at",
        put("INSERT INTO sessions (id, data, created_at, expires_at, version) VALUES (?1, x'80', 'yesterday', 9000000000000, 0)"),
    )
    .await;
    common::wrongly_typed_row_is_a_decode_error(
        &store,
        "text in version",
        put("INSERT INTO sessions (id, data, created_at, expires_at, version) VALUES (?1, x'80', 0, 9000000000000, 'first')"),
    )
    .await;
    common::wrongly_typed_row_is_a_decode_error(
        &store,
        "a real number in expires_at",
        put("INSERT INTO sessions (id, data, created_at, expires_at, version) VALUES (?1, x'80', 0, 9000000000000.5, 0)"),
    )
    .await;
    common::wrongly_typed_row_is_a_decode_error(
        &store,
        "a blob in principal",
        put("INSERT INTO sessions VALUES (?1, x'80', 0, 9000000000000, 0, x'616461')"),
    )
    .await;
    common::wrongly_typed_row_is_a_decode_error(
        &store,
        "an empty principal",
        put("INSERT INTO sessions VALUES (?1, x'80', 0, 9000000000000, 0, '')"),
    )
    .await;
}

/// A write lock held by another connection makes SQLite answer `SQLITE_BUSY` once the
/// connection's busy timeout passes (zero here): the store tries again a few times and then
/// reports `Contention`, having written nothing.
#[tokio::test]
async fn a_write_lock_held_elsewhere_is_contention() {
    let dir = temp_dir();
    file_store(&dir).await.pool().close().await;
    let options: sqlx::sqlite::SqliteConnectOptions = file_url(&dir).parse().expect("URL");
    let pool = SqlitePoolOptions::new()
        .connect_with(options.busy_timeout(Duration::ZERO))
        .await
        .expect("open");
    let store = SqliteStore::new(pool.clone());
    let mut holder = pool.acquire().await.expect("a second connection");
    execute_on(&mut holder, "BEGIN IMMEDIATE").await;
    let record = common::live_record();
    match store.create(&record).await {
        Err(Error::Contention { operation, .. }) => assert_eq!(operation, "create a session"),
        other => panic!("create while another connection writes returned {other:?}"),
    }
    execute_on(&mut holder, "COMMIT").await;
    store
        .create(&record)
        .await
        .expect("create once the lock is released");
    assert!(store.load(&record.id).await.expect("load").is_some());
}

async fn execute_on(connection: &mut sqlx::SqliteConnection, sql: &'static str) {
    sqlx::raw_sql(sql)
        .execute(connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn a_zero_timeout_is_refused() {
    let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
    assert!(matches!(
        store.clone().with_timeout(Duration::ZERO),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(
        store.timeout(),
        session_core::DEFAULT_TIMEOUT,
        "the default time limit"
    );
}

#[tokio::test]
async fn sessions_stored_before_principals_still_load() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    let pool = store.pool().clone();
    let table = common::random_table();
    // The table as the store made it before it kept principals.
    execute(
        &pool,
        &format!(
            "CREATE TABLE {table} (id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL, \
             created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, \
             version INTEGER NOT NULL); \
             CREATE INDEX {table}_expires_at_idx ON {table} (expires_at)"
        ),
    )
    .await;
    let old = store.clone().with_table(&table).expect("valid name");
    common::sessions_stored_before_principals_still_load(
        &old,
        async || old.migrate().await,
        |record| {
            let (pool, table) = (pool.clone(), table.clone());
            async move {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} (id, data, created_at, expires_at, version) \
                     VALUES (?1, ?2, ?3, ?4, ?5)"
                )))
                .bind(record.id.as_str())
                .bind(common::encoded(&record))
                .bind(session_core::clock::unix_millis(record.created_at))
                .bind(session_core::clock::unix_millis(record.expires_at))
                .bind(i64::try_from(record.version).expect("a small version"))
                .execute(&pool)
                .await
                .expect("insert a session as the old store did");
            }
        },
    )
    .await;

    let (kind, not_null): (String, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT type, \"notnull\" FROM pragma_table_info('{table}') WHERE name = 'principal'"
    )))
    .fetch_one(&pool)
    .await
    .expect("the principal column exists");
    assert_eq!((kind.as_str(), not_null), ("TEXT", 0), "a nullable text");
    let index: String = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1 || '_principal_idx'",
    )
    .bind(&table)
    .fetch_one(&pool)
    .await
    .expect("the principal index exists");
    assert!(
        index.ends_with("(principal) WHERE principal IS NOT NULL"),
        "a partial index on the principal: {index}"
    );
}

#[tokio::test]
async fn a_principals_rows_leave_with_delete_revoke_and_cleanup() {
    let dir = temp_dir();
    let store = file_store(&dir).await;
    let pool = store.pool().clone();
    common::a_principals_rows_leave_with_delete_revoke_and_cleanup(&store, |principal| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar("SELECT count(*) FROM sessions WHERE principal = ?1")
                .bind(principal)
                .fetch_one(&pool)
                .await
                .expect("count the principal's rows")
        }
    })
    .await;
}
