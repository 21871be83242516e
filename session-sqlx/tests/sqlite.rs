//! `SqliteStore`: the conformance suite on a file and in memory, persistence across a restart,
//! cleanup, corrupt data, timeouts and configuration.
#![cfg(feature = "sqlite")]

mod common;

use std::time::Duration;

use session_core::{Error, ExpiredDeletion, Json, Store};
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
    let store = SqliteStore::new(pool.clone()).with_timeout(Duration::from_millis(200));
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
