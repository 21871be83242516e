//! `MySqlStore` against MariaDB in a container: the conformance suites (with MessagePack and
//! JSON, skewed app clocks, cleanup, outages), a server restart, time zones, cleanup, corrupt
//! data, the one-statement create, size limits, contention, timeouts, the schema check and
//! configuration.
#![cfg(feature = "mysql")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use session_core::{Clock, Error, ExpiredDeletion, Store};
use session_sqlx::MySqlStore;
use session_testcontainers::{self as containers, Container};
use sqlx::Row as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

async fn setup() -> (MySqlStore, Container) {
    let server = containers::mariadb().await;
    let store = MySqlStore::connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e:?}", server.url()));
    store.migrate().await.expect("migrate");
    (store, server)
}

/// A second handle on the same table whose app clock is `clock`.
fn with_clock(store: &MySqlStore, clock: Arc<dyn Clock>) -> MySqlStore {
    store.clone().with_clock(clock)
}

mod conformance {
    session_conformance::store_tests!(super::setup);
    session_conformance::principal_tests!(super::setup);
}

mod json {
    async fn setup() -> (session_sqlx::MySqlStore, super::Container) {
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
    async fn setup() -> (session_sqlx::MySqlStore, super::Container) {
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
    async fn setup() -> (session_sqlx::MySqlStore, super::Container) {
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
    let reader = MySqlStore::new(pool_in_zone(server.url(), "+12:45").await);
    common::instants_do_not_depend_on_the_time_zone(&writer, &reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_data_is_a_decode_error() {
    let (store, _server) = setup().await;
    let pool = store.pool().clone();
    common::corrupt_data_is_a_decode_error(&store, |id| async move {
        sqlx::query("UPDATE sessions SET data = ? WHERE id = ?")
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
            sqlx::query("RENAME TABLE sessions TO sessions_away")
                .execute(&pool)
                .await
                .expect("rename the table away");
        },
        async {
            sqlx::query("RENAME TABLE sessions_away TO sessions")
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
    sqlx::query("SELECT 1 FROM sessions WHERE id = ? FOR UPDATE")
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
async fn ids_are_case_sensitive_and_looked_up_by_primary_key() {
    let (store, _server) = setup().await;
    let record = common::live_record();
    store.create(&record).await.expect("create");
    let swapped: String = record
        .id
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    let swapped: session_core::Id = swapped.parse().expect("still an id");
    assert_ne!(swapped, record.id);
    assert!(
        store.load(&swapped).await.expect("load").is_none(),
        "an id differing only in case must not find the session"
    );
    let mut other = common::live_record();
    other.id = swapped;
    store
        .create(&other)
        .await
        .expect("an id differing only in case is another session");

    // The bound id (the connection's character set) must not defeat the ascii key.
    let plan = sqlx::query("EXPLAIN SELECT data FROM sessions WHERE id = ? AND expires_at > ?")
        .bind(record.id.as_str())
        .bind(0_i64)
        .fetch_one(store.pool())
        .await
        .expect("explain the load");
    let key: Option<String> = plan.try_get("key").expect("the plan's key column");
    assert_eq!(key.as_deref(), Some("PRIMARY"), "load uses the primary key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_and_honours_schema_and_table() {
    let (store, _server) = setup().await;
    sqlx::query("CREATE DATABASE auth")
        .execute(store.pool())
        .await
        .expect("create a database");
    let custom = store
        .clone()
        .with_schema("auth")
        .and_then(|s| s.with_table("web_sessions"))
        .expect("valid names");
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
        "SELECT CAST(column_name AS CHAR) FROM information_schema.statistics \
         WHERE table_schema = 'auth' AND table_name = 'web_sessions' \
         AND index_name = 'web_sessions_expires_at_idx'",
    )
    .fetch_optional(store.pool())
    .await
    .expect("read the catalog");
    assert_eq!(index.as_deref(), Some("expires_at"));

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
    match MySqlStore::connect("not a url").await {
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

async fn execute(pool: &sqlx::MySqlPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A pool whose connections use the session time zone `zone`.
async fn pool_in_zone(url: &str, zone: &str) -> sqlx::MySqlPool {
    let options: MySqlConnectOptions = url.parse().expect("URL");
    let pool = MySqlPoolOptions::new()
        .connect_with(options.timezone(Some(zone.to_owned())))
        .await
        .expect("connect");
    let set: String = sqlx::query_scalar("SELECT @@session.time_zone")
        .fetch_one(&pool)
        .await
        .expect("read the session time zone");
    assert_eq!(set, zone, "the session time zone");
    pool
}

/// The database's clock in the statements does not move with the session time zone: through
/// connections 12:45 ahead of and 11 hours behind UTC, a record that expired 30 seconds ago
/// is expired and one that expires in 30 seconds is live, for load, touch, save, create and
/// cleanup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_does_not_depend_on_the_session_time_zone() {
    let (writer, server) = setup().await;
    for zone in ["+12:45", "-11:00"] {
        let store = MySqlStore::new(pool_in_zone(server.url(), zone).await);
        let mut live = common::live_record();
        live.expires_at = session_core::now() + time::Duration::seconds(30);
        let mut expired = common::live_record();
        expired.expires_at = session_core::now() - time::Duration::seconds(30);
        store.create(&live).await.expect("create a live record");
        store
            .create(&expired)
            .await
            .expect("create an expired record");

        assert!(
            store.load(&live.id).await.expect("load").is_some(),
            "{zone}: a record live for 30 s more is loaded"
        );
        assert!(
            store.load(&expired.id).await.expect("load").is_none(),
            "{zone}: a record expired 30 s ago is not loaded"
        );
        assert!(
            !store
                .touch(&expired.id, live.expires_at)
                .await
                .expect("touch"),
            "{zone}: an expired record is not touched"
        );
        assert!(
            matches!(store.create(&live).await, Err(Error::AlreadyExists)),
            "{zone}: create over a live record"
        );
        store
            .save(&live)
            .await
            .unwrap_or_else(|e| panic!("{zone}: save of a live record: {e:?}"));
        assert_eq!(
            store.delete_expired().await.expect("cleanup"),
            1,
            "{zone}: cleanup deletes the expired record only"
        );
        assert!(writer.load(&live.id).await.expect("load").is_some());
        writer.delete(&live.id).await.expect("delete");
    }
}

/// `create`'s outcome comes from the OK packet of its one statement; on one connection, a
/// refused create (which sets the marker) does not make the next create look refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_outcomes_do_not_leak_between_statements_on_one_connection() {
    let (store, server) = setup().await;
    let pool = MySqlPoolOptions::new()
        .max_connections(1)
        .connect(server.url())
        .await
        .expect("connect");
    let single = MySqlStore::new(pool);
    let first = common::live_record();
    single.create(&first).await.expect("create");
    assert!(matches!(
        single.create(&first).await,
        Err(Error::AlreadyExists)
    ));
    let second = common::live_record();
    single
        .create(&second)
        .await
        .expect("a new id after a refused create");
    let expired = common::expired_record();
    single.create(&expired).await.expect("create expired");
    assert!(matches!(
        single.create(&first).await,
        Err(Error::AlreadyExists)
    ));
    let mut over = common::live_record();
    over.id = expired.id.clone();
    single
        .create(&over)
        .await
        .expect("create over an expired row after a refused create");
    assert_eq!(store.load(&over.id).await.expect("load"), Some(over));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_over_max_allowed_packet_are_too_large() {
    let (_store, server) = setup().await;
    const PACKET: usize = 1 << 20;
    let admin = MySqlPoolOptions::new()
        .max_connections(1)
        .connect(server.url())
        .await
        .expect("connect");
    execute(&admin, &format!("SET GLOBAL max_allowed_packet = {PACKET}")).await;
    // New connections read the new global value.
    let store = MySqlStore::connect(server.url()).await.expect("connect");
    let packet: i64 = sqlx::query_scalar("SELECT CAST(@@max_allowed_packet AS SIGNED)")
        .fetch_one(store.pool())
        .await
        .expect("read max_allowed_packet");
    assert_eq!(packet, PACKET as i64);
    common::records_over_the_size_limit_are_too_large(&store, PACKET).await;
}

/// A deadlock between cleanup and another transaction makes InnoDB roll back the smaller of
/// the two (the cleanup batch); the store runs the batch again instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlocks_are_retried() {
    let (store, _server) = setup().await;
    let first = common::expired_record();
    let second = common::expired_record();
    store.create(&first).await.expect("create");
    let mut later = common::expired_record();
    later.expires_at = first.expires_at + time::Duration::seconds(10);
    later.id = second.id.clone();
    store.create(&later).await.expect("create");
    execute(store.pool(), "CREATE TABLE ballast (n INT PRIMARY KEY)").await;

    // The other transaction is large (100 inserted rows), so InnoDB picks the batch as victim.
    let mut other = store.pool().begin().await.expect("begin");
    let rows: Vec<String> = (1..=100).map(|n| format!("({n})")).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ballast VALUES {}",
        rows.join(", ")
    )))
    .execute(&mut *other)
    .await
    .expect("insert ballast");
    sqlx::query("SELECT 1 FROM sessions WHERE id = ? FOR UPDATE")
        .bind(second.id.as_str())
        .execute(&mut *other)
        .await
        .expect("lock the later row");
    // Cleanup locks the first row (in expiry order), then waits for the second.
    let cleanup = {
        let store = store
            .clone()
            .with_timeout(Duration::from_secs(30))
            .expect("timeout");
        tokio::spawn(async move { store.delete_expired_batch(10).await })
    };
    common::within_a_minute("cleanup waiting for the locked row", async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
            )
            .fetch_one(store.pool())
            .await
            .expect("read INNODB_TRX");
            if waiting > 0 {
                break;
            }
            assert!(
                !cleanup.is_finished(),
                "cleanup finished without waiting for the lock"
            );
            // InnoDB refreshes what INNODB_TRX shows only when nobody read it for 100 ms.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    // Now the other transaction wants the first row: a cycle.
    sqlx::query("SELECT 1 FROM sessions WHERE id = ? FOR UPDATE")
        .bind(first.id.as_str())
        .execute(&mut *other)
        .await
        .expect("the large transaction survives the deadlock");
    other.commit().await.expect("commit");
    let deleted = cleanup
        .await
        .expect("cleanup task")
        .expect("cleanup succeeds after the deadlock");
    assert_eq!(deleted, 2, "the retried batch deletes both expired rows");
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
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await
                    .expect("count the rows")
            }
        },
        &[
            (
                // express-mysql-session's table.
                "CREATE TABLE {table} (session_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL, \
                 expires INT(11) UNSIGNED NOT NULL, data MEDIUMTEXT COLLATE utf8mb4_bin, \
                 PRIMARY KEY (session_id))",
                &[
                    "column `id` is missing",
                    "column `data` is `mediumtext collate utf8mb4_bin`, expected `longblob`",
                    "column `expires_at` is missing",
                ],
            ),
            (
                "CREATE TABLE {table} (id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin \
                 PRIMARY KEY, data LONGBLOB NOT NULL, created_at BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL)",
                &["column `version` is missing"],
            ),
            (
                // Ids must compare exactly: a case-insensitive collation is refused.
                "CREATE TABLE {table} (id VARCHAR(128) PRIMARY KEY, data LONGBLOB NOT NULL, \
                 created_at BIGINT NOT NULL, expires_at DATETIME NOT NULL, \
                 version BIGINT NOT NULL) DEFAULT CHARSET = utf8mb4 COLLATE utf8mb4_general_ci",
                &[
                    "column `id` is `varchar collate utf8mb4_general_ci`, expected `varchar collate ascii_bin`",
                    "column `expires_at` is `datetime`, expected `bigint`",
                ],
            ),
            (
                "CREATE TABLE {table} (id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin \
                 NOT NULL, data LONGBLOB NOT NULL, created_at BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, version BIGINT NOT NULL, \
                 PRIMARY KEY (id, version))",
                &["the primary key is (id, version), expected `id` alone"],
            ),
            (
                // `utf8mb4_bin` is PAD SPACE: `ada` would find the sessions of `ada `.
                "CREATE TABLE {table} (id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin \
                 PRIMARY KEY, data LONGBLOB NOT NULL, created_at BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, version BIGINT NOT NULL, \
                 principal VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin)",
                &["column `principal` is `varchar collate utf8mb4_bin`, expected `varbinary`"],
            ),
            (
                "CREATE TABLE {table} (id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin \
                 PRIMARY KEY, data LONGBLOB NOT NULL, created_at BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, version BIGINT NOT NULL, \
                 principal VARBINARY(256) NOT NULL)",
                &["column `principal` is NOT NULL, expected it to allow NULL"],
            ),
        ],
    )
    .await;

    // A table made by hand with the documented layout but no index is accepted, and gets it.
    let table = common::random_table();
    execute(
        &pool,
        &format!(
            "CREATE TABLE {table} (id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin \
             PRIMARY KEY, data LONGBLOB NOT NULL, created_at BIGINT NOT NULL, \
             expires_at BIGINT NOT NULL, version BIGINT NOT NULL)"
        ),
    )
    .await;
    let by_hand = store.clone().with_table(&table).expect("valid name");
    by_hand.migrate().await.expect("migrate accepts the layout");
    by_hand.migrate().await.expect("and again, with the index");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(INDEX_NAME AS CHAR) FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'expires_at'",
    )
    .bind(&table)
    .fetch_all(&pool)
    .await
    .expect("read the catalog");
    assert_eq!(indexes, [format!("{table}_expires_at_idx")]);
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
            "CREATE TABLE {table} (id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin \
             PRIMARY KEY, data LONGBLOB, created_at TEXT NOT NULL, expires_at BIGINT NOT NULL, \
             version BIGINT NOT NULL, principal VARBINARY(256))"
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
                 VALUES (?, ?, ?, UNIX_TIMESTAMP() * 1000 + 3600000, 0)"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_is_refused() {
    let pool = sqlx::MySqlPool::connect_lazy("mysql://localhost/db").expect("a lazy pool");
    assert!(matches!(
        MySqlStore::new(pool).with_timeout(Duration::ZERO),
        Err(Error::InvalidConfig(_))
    ));
}

/// A pool whose connections' clock (`NOW()`, `UTC_TIMESTAMP()`) is fixed `offset_secs` away.
async fn pool_with_clock(url: &str, offset_secs: i64) -> sqlx::MySqlPool {
    MySqlPoolOptions::new()
        .after_connect(move |connection, _| {
            Box::pin(async move {
                sqlx::query("SET timestamp = UNIX_TIMESTAMP() + ?")
                    .bind(offset_secs)
                    .execute(connection)
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
    let ahead = MySqlStore::new(pool_with_clock(server.url(), 86_400).await);
    let behind = MySqlStore::new(pool_with_clock(server.url(), -86_400).await);
    common::the_database_clock_decides_expiry(&store, &ahead, &behind).await;
}

/// The table as the store made it before it kept principals.
const TABLE_BEFORE_PRINCIPALS: &str = "CREATE TABLE {table} (id VARCHAR(128) CHARACTER SET ascii \
     COLLATE ascii_bin NOT NULL PRIMARY KEY, data LONGBLOB NOT NULL, created_at BIGINT NOT NULL, \
     expires_at BIGINT NOT NULL, version BIGINT NOT NULL, \
     INDEX `{table}_expires_at_idx` (expires_at)) ENGINE = InnoDB";

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
                     VALUES (?, ?, ?, ?, ?)"
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

    let (kind, nullable): (String, String) = sqlx::query_as(
        "SELECT CAST(COLUMN_TYPE AS CHAR), CAST(IS_NULLABLE AS CHAR) \
         FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'principal'",
    )
    .bind(&table)
    .fetch_one(&pool)
    .await
    .expect("the principal column exists");
    assert_eq!(
        (kind.as_str(), nullable.as_str()),
        ("varbinary(256)", "YES"),
        "a nullable binary string"
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(INDEX_NAME AS CHAR) FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'principal'",
    )
    .bind(&table)
    .fetch_all(&pool)
    .await
    .expect("read the catalog");
    assert_eq!(indexes, [format!("{table}_principal_idx")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principals_rows_leave_with_delete_revoke_and_cleanup() {
    let (store, _server) = setup().await;
    let pool = store.pool().clone();
    common::a_principals_rows_leave_with_delete_revoke_and_cleanup(&store, |principal| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE principal = ?")
                .bind(principal)
                .fetch_one(&pool)
                .await
                .expect("count the principal's rows")
        }
    })
    .await;
}
