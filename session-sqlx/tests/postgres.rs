//! `PostgresStore` against PostgreSQL in a container: the conformance suites (with MessagePack
//! and JSON, skewed app clocks, cleanup, outages), a server restart, time zones, cleanup,
//! corrupt data, contention, timeouts, the schema check and configuration.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use session_core::{Clock, Error, Store};
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

/// A second handle on the same table whose app clock is `clock`.
fn with_clock(store: &PostgresStore, clock: Arc<dyn Clock>) -> PostgresStore {
    store.clone().with_clock(clock)
}

mod conformance {
    session_conformance::store_tests!(super::setup);
    session_conformance::principal_tests!(super::setup);
}

mod json {
    async fn setup() -> (session_sqlx::PostgresStore, super::Container) {
        let (store, server) = super::setup().await;
        (store.with_codec(session_core::Json), server)
    }

    session_conformance::store_tests!(setup);
    session_conformance::principal_tests!(setup);
}

mod skew {
    session_conformance::skew_tests!(super::setup, super::with_clock);
}

mod cleanup {
    /// A store on a fresh table of its own: the rules count what cleanup deletes.
    async fn setup() -> (session_sqlx::PostgresStore, super::Container) {
        let (store, server) = super::setup().await;
        let store = store
            .with_table(&super::common::random_table())
            .expect("valid table name");
        store.migrate().await.expect("migrate the fresh table");
        (store, server)
    }

    session_conformance::cleanup_tests!(setup, super::with_clock);
}

mod outage {
    async fn setup() -> (session_sqlx::PostgresStore, super::Container) {
        let (store, server) = super::setup().await;
        let store = store
            .with_timeout(session_conformance::OUTAGE_TIMEOUT)
            .expect("a valid timeout");
        (store, server)
    }

    session_conformance::outage_tests!(setup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_after_the_server_restarts() {
    let (store, server) = setup().await;
    let store = store
        .with_timeout(Duration::from_secs(8))
        .expect("a valid timeout");
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
    let store = store
        .with_timeout(Duration::from_millis(500))
        .expect("a valid timeout");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_racing_delete_of_expired_row_never_reports_a_live_record() {
    let (store, _server) = setup().await;
    common::create_racing_delete_of_expired_row_never_reports_a_live_record(&store).await;
}

async fn execute(pool: &sqlx::PgPool, sql: &str) {
    pool.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_reports_what_is_wrong_with_an_existing_table() {
    let (store, _server) = setup().await;
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
                // connect-pg-simple's table.
                "CREATE TABLE {table} (sid VARCHAR NOT NULL PRIMARY KEY, sess JSON NOT NULL, \
                 expire TIMESTAMP(6) NOT NULL)",
                &[
                    "column `id` is missing",
                    "column `data` is missing",
                    "column `version` is missing",
                ],
            ),
            (
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BYTEA NOT NULL, \
                 created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
                &["column `version` is missing"],
            ),
            (
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BYTEA NOT NULL, \
                 created_at BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, \
                 version INTEGER NOT NULL)",
                &[
                    "column `expires_at` is `timestamp with time zone`, expected `bigint`",
                    "column `version` is `integer`, expected `bigint`",
                ],
            ),
            (
                "CREATE TABLE {table} (id TEXT NOT NULL, data BYTEA NOT NULL, \
                 created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, version BIGINT NOT NULL)",
                &["there is no primary key, expected `id`"],
            ),
            (
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BYTEA NOT NULL, \
                 created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, version BIGINT NOT NULL, \
                 principal BIGINT)",
                &["column `principal` is `bigint`, expected `text`"],
            ),
            (
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BYTEA NOT NULL, \
                 created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, version BIGINT NOT NULL, \
                 principal TEXT NOT NULL)",
                &["column `principal` is NOT NULL, expected it to allow NULL"],
            ),
        ],
    )
    .await;

    // A table made by hand with the documented layout is accepted, and gets its index.
    let table = common::random_table();
    execute(
        &pool,
        &format!(
            "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BYTEA NOT NULL, \
             created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, version BIGINT NOT NULL)"
        ),
    )
    .await;
    let by_hand = store.clone().with_table(&table).expect("valid name");
    by_hand.migrate().await.expect("migrate accepts the layout");
    let index: Option<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(expires_at)'",
    )
    .bind(&table)
    .fetch_optional(&pool)
    .await
    .expect("read the catalog");
    assert_eq!(index, Some(format!("{table}_expires_at_idx")));
    let record = common::live_record();
    by_hand.create(&record).await.expect("create");
    assert_eq!(by_hand.load(&record.id).await.expect("load"), Some(record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrongly_typed_columns_are_decode_errors() {
    let (store, _server) = setup().await;
    let pool = store.pool().clone();
    // A table made by other means, without `migrate`'s check.
    let table = common::random_table();
    execute(
        &pool,
        &format!(
            "CREATE TABLE {table} (id TEXT PRIMARY KEY, data BYTEA, created_at TEXT NOT NULL, \
             expires_at BIGINT NOT NULL, version BIGINT NOT NULL, principal TEXT)"
        ),
    )
    .await;
    let foreign = store.clone().with_table(&table).expect("valid name");
    let insert = |data: Option<&'static [u8]>, created_at: &'static str| {
        let pool = pool.clone();
        let table = table.clone();
        move |id: session_core::Id| async move {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (id, data, created_at, expires_at, version) \
                 VALUES ($1, $2, $3, \
                 (extract(epoch from now()) * 1000)::bigint + 3600000, 0)"
            )))
            .bind(id.as_str())
            .bind(data)
            .bind(created_at)
            .execute(&pool)
            .await
            .expect("insert a row");
        }
    };
    common::wrongly_typed_row_is_a_decode_error(
        &foreign,
        "text in created_at",
        insert(Some(b"\x81\xa1v\x01"), "yesterday"),
    )
    .await;
    common::wrongly_typed_row_is_a_decode_error(&foreign, "NULL data", insert(None, "0")).await;
}

/// Under REPEATABLE READ a statement whose row another transaction changed meanwhile fails with
/// a serialization failure (40001); the store tries again, on a fresh snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialization_failures_are_retried() {
    let (store, server) = setup().await;
    let pool = PgPoolOptions::new()
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute("SET default_transaction_isolation = 'repeatable read'")
                    .await
                    .map(drop)
            })
        })
        .connect(server.url())
        .await
        .expect("connect");
    let repeatable = PostgresStore::new(pool);
    let record = common::live_record();
    store.create(&record).await.expect("create");

    for operation in ["touch", "save"] {
        let mut blocker = store.pool().begin().await.expect("begin");
        sqlx::query("UPDATE sessions SET expires_at = expires_at + 1 WHERE id = $1")
            .bind(record.id.as_str())
            .execute(&mut *blocker)
            .await
            .expect("change the row");
        let current = store.load(&record.id).await.expect("load").expect("live");
        let waiting = {
            let repeatable = repeatable.clone();
            let current = current.clone();
            tokio::spawn(async move {
                match operation {
                    "touch" => repeatable
                        .touch(&current.id, current.expires_at)
                        .await
                        .map(|found| assert!(found, "touch finds the live record")),
                    _ => repeatable.save(&current).await,
                }
            })
        };
        // The store's statement waits for the row lock before the blocker commits.
        common::within_a_minute("the statement waiting for the row lock", async {
            loop {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                )
                .fetch_one(store.pool())
                .await
                .expect("read pg_stat_activity");
                if waiting > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        blocker.commit().await.expect("commit the change");
        waiting
            .await
            .expect("the operation's task")
            .unwrap_or_else(|e| panic!("{operation} after a serialization failure: {e:?}"));
    }
    let loaded = store.load(&record.id).await.expect("load").expect("live");
    assert_eq!(
        loaded.version,
        record.version + 1,
        "the save was applied once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_is_refused() {
    let pool = sqlx::PgPool::connect_lazy("postgres://localhost/db").expect("a lazy pool");
    let store = PostgresStore::new(pool);
    assert!(matches!(
        store.with_timeout(Duration::ZERO),
        Err(Error::InvalidConfig(_))
    ));
}

/// A pool whose connections find `statement_timestamp()` in `schema` (a function shifted from
/// the real one) before `pg_catalog`'s.
async fn pool_with_clock(url: &str, schema: &'static str) -> sqlx::PgPool {
    PgPoolOptions::new()
        .after_connect(move |connection, _| {
            Box::pin(async move {
                connection
                    .execute(sqlx::AssertSqlSafe(format!(
                        "SET search_path = {schema}, public, pg_catalog"
                    )))
                    .await
                    .map(drop)
            })
        })
        .connect(url)
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_clock_decides_expiry() {
    let (store, server) = setup().await;
    for (schema, shift) in [
        ("ahead", "+ interval '1 day'"),
        ("behind", "- interval '1 day'"),
    ] {
        execute(
            store.pool(),
            &format!(
                "CREATE SCHEMA {schema}; \
                 CREATE FUNCTION {schema}.statement_timestamp() RETURNS timestamptz \
                 LANGUAGE sql STABLE AS $$ SELECT pg_catalog.statement_timestamp() {shift} $$"
            ),
        )
        .await;
    }
    let ahead = PostgresStore::new(pool_with_clock(server.url(), "ahead").await);
    let behind = PostgresStore::new(pool_with_clock(server.url(), "behind").await);
    common::the_database_clock_decides_expiry(&store, &ahead, &behind).await;
}

/// The table as the store made it before it kept principals.
const TABLE_BEFORE_PRINCIPALS: &str = "CREATE TABLE {table} (id TEXT COLLATE \"C\" NOT NULL \
     PRIMARY KEY, data BYTEA NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, \
     version BIGINT NOT NULL); CREATE INDEX {table}_expires_at_idx ON {table} (expires_at)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stored_before_principals_still_load() {
    let (store, _server) = setup().await;
    let pool = store.pool().clone();
    let table = common::random_table();
    execute(&pool, &TABLE_BEFORE_PRINCIPALS.replace("{table}", &table)).await;
    let old = store.clone().with_table(&table).expect("valid name");
    common::sessions_stored_before_principals_still_load(
        &old,
        async || old.migrate().await,
        |record| {
            let (pool, table) = (pool.clone(), table.clone());
            async move {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} (id, data, created_at, expires_at, version) \
                     VALUES ($1, $2, $3, $4, $5)"
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

    let (kind, not_null): (String, bool) = sqlx::query_as(
        "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute \
         WHERE attrelid = to_regclass($1) AND attname = 'principal'",
    )
    .bind(&table)
    .fetch_one(&pool)
    .await
    .expect("the principal column exists");
    assert_eq!(
        (kind.as_str(), not_null),
        ("text", false),
        "a nullable text"
    );
    let index: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexname = $1 || '_principal_idx'",
    )
    .bind(&table)
    .fetch_one(&pool)
    .await
    .expect("the principal index exists");
    assert!(
        index.ends_with("(principal) WHERE (principal IS NOT NULL)"),
        "a partial index on the principal: {index}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principals_rows_leave_with_delete_revoke_and_cleanup() {
    let (store, _server) = setup().await;
    let pool = store.pool().clone();
    common::a_principals_rows_leave_with_delete_revoke_and_cleanup(&store, |principal| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar("SELECT count(*) FROM sessions WHERE principal = $1")
                .bind(principal)
                .fetch_one(&pool)
                .await
                .expect("count the principal's rows")
        }
    })
    .await;
}

/// connect-pg-simple's table has no principal column: a store in that layout does not offer
/// the capability, and its methods say why instead of running SQL on a column that is not
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_express_compatible_layout_has_no_principals() {
    use session_core::Principals as _;
    let pool = sqlx::PgPool::connect_lazy("postgres://localhost/db").expect("a lazy pool");
    let native = PostgresStore::new(pool);
    assert!(native.principals().is_some(), "the store's own layout");
    let express = native.express_compatible();
    assert!(
        express.principals().is_none(),
        "Store::principals() in the Express layout"
    );
    let ada = common::random_principal();
    let id = session_core::Id::random();
    for (what, outcome) in [
        ("sessions_of", express.sessions_of(&ada).await.map(drop)),
        ("revoke", express.revoke(&ada, &id).await.map(drop)),
        ("revoke_all", express.revoke_all(&ada, None).await.map(drop)),
    ] {
        assert!(
            matches!(outcome, Err(Error::InvalidConfig(_))),
            "{what} in the Express layout returned {outcome:?}, expected InvalidConfig"
        );
    }
}
