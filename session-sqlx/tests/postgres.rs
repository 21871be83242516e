//! `PostgresStore` against PostgreSQL in a container: the conformance suite, a server restart,
//! time zones, cleanup, corrupt data, timeouts and configuration.
#![cfg(feature = "postgres")]

mod common;

use std::time::Duration;

use session_core::{Error, Store};
use session_sqlx::PostgresStore;
use session_testcontainers::{self as containers, Container};
use sqlx::Executor as _;
use sqlx::postgres::PgPoolOptions;

async fn setup() -> (PostgresStore, Container) {
    let server = containers::postgres().await;
    let store = PostgresStore::connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e:?}", server.url()));
    store.migrate().await.expect("migrate");
    (store, server)
}

mod conformance {
    session_conformance::store_tests!(super::setup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_after_the_server_restarts() {
    let (store, server) = setup().await;
    let store = store.with_timeout(Duration::from_secs(8));
    common::store_recovers_after_the_server_restarts(&store, server.stop(), server.start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instants_do_not_depend_on_the_session_time_zone() {
    let (writer, server) = setup().await;
    // UTC+12:45 (+13:45 in summer): nowhere near the writer's UTC, which sqlx sets at connect.
    let pool = PgPoolOptions::new()
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute("SET TIME ZONE 'Pacific/Chatham'")
                    .await
                    .map(drop)
            })
        })
        .connect(server.url())
        .await
        .expect("connect");
    let zone: String = sqlx::query_scalar("SHOW TimeZone")
        .fetch_one(&pool)
        .await
        .expect("read the session time zone");
    assert_eq!(zone, "Pacific/Chatham", "the reader's session time zone");
    let reader = PostgresStore::new(pool);
    common::instants_do_not_depend_on_the_time_zone(&writer, &reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_data_is_a_decode_error() {
    let (store, _server) = setup().await;
    let pool = store.pool().clone();
    common::corrupt_data_is_a_decode_error(&store, |id| async move {
        sqlx::query("UPDATE sessions SET data = $1 WHERE id = $2")
            .bind(common::GARBAGE)
            .bind(id.as_str())
            .execute(&pool)
            .await
            .expect("overwrite the data column");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_are_deleted_in_bounded_batches() {
    let (store, _server) = setup().await;
    common::expired_rows_are_deleted_in_bounded_batches(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_task_deletes_in_batches_and_survives_a_failing_round() {
    let (store, _server) = setup().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_operation_times_out_and_the_pool_recovers() {
    let (store, _server) = setup().await;
    let store = store.with_timeout(Duration::from_millis(500));
    let record = common::live_record();
    store.create(&record).await.expect("create");

    // Another transaction holds the row, so the save waits for its lock.
    let mut blocker = store.pool().begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE")
        .bind(record.id.as_str())
        .execute(&mut *blocker)
        .await
        .expect("lock the row");
    let error = common::within_a_minute("save of a locked row", store.save(&record))
        .await
        .expect_err("the save cannot finish while the row is locked");
    assert!(
        common::is_timeout(&error),
        "expected a store timeout, got {error:?}"
    );
    blocker.rollback().await.expect("release the row");

    // The client stopped waiting, but the server may still apply the statement once the lock
    // is released: the record is at either version, and the pool works normally again.
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert!(
        [record.version, record.version + 1].contains(&loaded.version),
        "version {} after a timed-out save from {}",
        loaded.version,
        record.version
    );
    store
        .save(&loaded)
        .await
        .expect("save from the loaded version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_and_honours_schema_and_table() {
    let (store, _server) = setup().await;
    sqlx::query("CREATE SCHEMA auth")
        .execute(store.pool())
        .await
        .expect("create a schema");
    let custom = store
        .clone()
        .with_schema("auth")
        .and_then(|s| s.with_table("web_sessions"))
        .expect("valid names");
    // Several instances starting at once.
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let custom = custom.clone();
            tokio::spawn(async move { custom.migrate().await })
        })
        .collect();
    for run in runs {
        run.await
            .expect("migrate task")
            .expect("concurrent migrate");
    }
    custom.migrate().await.expect("migrate again");
    let index: Option<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_indexes \
         WHERE schemaname = 'auth' AND indexname = 'web_sessions_expires_at_idx'",
    )
    .fetch_optional(store.pool())
    .await
    .expect("read the catalog");
    assert_eq!(index.as_deref(), Some("web_sessions"));

    let record = common::live_record();
    custom.create(&record).await.expect("create");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.web_sessions")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(rows, 1, "the record is in auth.web_sessions");
    assert!(
        store.load(&record.id).await.expect("load").is_none(),
        "the default table is another table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_urls_are_configuration_errors() {
    match PostgresStore::connect("not a url").await {
        Err(Error::InvalidConfig(_)) => {}
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_to_the_stored_instant_reports_the_record() {
    let (store, _server) = setup().await;
    common::touch_to_the_stored_instant_reports_the_record(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_over_an_identical_expired_row_succeeds() {
    let (store, _server) = setup().await;
    common::create_over_an_identical_expired_row_succeeds(&store).await;
}
