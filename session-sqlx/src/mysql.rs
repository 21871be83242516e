//! MySQL and MariaDB: their SQL, their errors, and building a store from a pool or a URL.

use std::sync::Arc;

use session_core::{Error, Result};
use sqlx::MySql;
use sqlx::error::DatabaseError;
use sqlx::mysql::{
    MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions, MySqlQueryResult,
};

use crate::dialect::{Class, Dialect, Save, SizeLimit, Statements, sealed::Sealed};
use crate::store::store_traits;
use crate::table::TableName;
use crate::{MySqlStore, SqlStore};

/// The database's clock, in milliseconds since the Unix epoch: the start of the statement
/// (`UTC_TIMESTAMP`, like `NOW`, is fixed for the whole statement). It is computed from the UTC
/// time by date arithmetic, so no session `time_zone` (named, offset or `SYSTEM`) enters it;
/// `UNIX_TIMESTAMP(NOW(3))` would convert through the session's zone, which is ambiguous in
/// the hour a daylight-saving zone repeats.
const NOW: &str =
    "(TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)";

/// Bytes of a `create` or `save` packet besides the session data: the statement id, the id,
/// three integers, parameter types and headers, with room to spare.
const PACKET_OVERHEAD: usize = 1024;

/// `ER_LOCK_WAIT_TIMEOUT`: a row lock was not granted within `innodb_lock_wait_timeout`.
const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `ER_LOCK_DEADLOCK`: the statement was chosen to resolve a deadlock.
const DEADLOCK: u16 = 1213;
/// `ER_DUP_KEYNAME`: an index of that name exists.
const DUPLICATE_INDEX: u16 = 1061;
/// `ER_DUP_FIELDNAME`: a column of that name exists.
const DUPLICATE_COLUMN: u16 = 1060;

/// The `principal` column: the principal's UTF-8 bytes, compared byte for byte. A binary
/// string because every text collation of MySQL and MariaDB that is not `_bin` ignores case or
/// accents, and the `_bin` ones (`utf8mb4_bin`) are `PAD SPACE`: `'ada'` would find the
/// sessions of `'ADA'`, `'äda'` or `'ada '`. 256 bytes is
/// [`MAX_PRINCIPAL_LEN`](session_core::MAX_PRINCIPAL_LEN).
const PRINCIPAL_COLUMN: &str = "principal VARBINARY(256) NULL";

/// The stored principal as text for the driver, which reads no binary string as a `String`.
const PRINCIPAL_TEXT: &str = "CONVERT(principal USING utf8mb4)";

impl Dialect for MySql {}

impl Sealed for MySql {
    const STORE: &'static str = "MySqlStore";
    const SIZE_LIMIT: SizeLimit = SizeLimit::Setting {
        overhead: PACKET_OVERHEAD,
    };
    // Ids compare byte for byte: the server's default collation is case-insensitive and
    // would let `abc` find the session of `ABC`.
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("id", "varchar collate ascii_bin"),
        ("data", "longblob"),
        ("created_at", "bigint"),
        ("expires_at", "bigint"),
        ("version", "bigint"),
    ];
    const PRINCIPAL: &'static str = "varbinary";

    fn statements(name: &TableName) -> Statements {
        let t = name.qualified('`');
        let index = name.expiry_index();
        let principal_index = name.principal_index();
        let schema = match &name.schema {
            Some(schema) => format!("'{schema}'"),
            None => "DATABASE()".to_owned(),
        };
        let table = &name.table;
        let sql = |s: String| -> Arc<str> { s.into() };
        Statements {
            prepare: vec![sql(format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
                 data LONGBLOB NOT NULL, \
                 created_at BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, \
                 version BIGINT NOT NULL, \
                 {PRINCIPAL_COLUMN}, \
                 INDEX `{index}` (expires_at), \
                 INDEX `{principal_index}` (principal)) ENGINE = InnoDB"
            ))],
            columns: sql(format!(
                "SELECT CAST(COLUMN_NAME AS CHAR), \
                 CAST(CONCAT(DATA_TYPE, IF(COLLATION_NAME IS NULL, '', \
                 CONCAT(' collate ', COLLATION_NAME))) AS CHAR), \
                 CAST(COLUMN_KEY = 'PRI' AS SIGNED), CAST(IS_NULLABLE = 'YES' AS SIGNED) \
                 FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = '{table}' \
                 ORDER BY ORDINAL_POSITION"
            )),
            // A table made by other means may lack the index, and MySQL has no
            // `CREATE INDEX IF NOT EXISTS`.
            has_expiry_index: Some(sql(format!(
                "SELECT COUNT(*) FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = '{table}' \
                 AND COLUMN_NAME = 'expires_at' AND SEQ_IN_INDEX = 1"
            ))),
            create_index: sql(format!("CREATE INDEX `{index}` ON {t} (expires_at)")),
            // MySQL has no `ADD COLUMN IF NOT EXISTS` either (MariaDB has); another instance
            // adding it first is `DUPLICATE_COLUMN`. InnoDB adds a nullable last column
            // without rebuilding the table (MySQL 8.0.12+, MariaDB 10.3+).
            add_principal: sql(format!("ALTER TABLE {t} ADD COLUMN {PRINCIPAL_COLUMN}")),
            has_principal_index: Some(sql(format!(
                "SELECT COUNT(*) FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = '{table}' \
                 AND COLUMN_NAME = 'principal' AND SEQ_IN_INDEX = 1"
            ))),
            create_principal_index: sql(format!(
                "CREATE INDEX `{principal_index}` ON {t} (principal)"
            )),
            size_limit: Some(sql("SELECT CAST(@@max_allowed_packet AS SIGNED)".to_owned())),
            // One statement, atomic: a new id is inserted; on a duplicate the row is locked
            // and its expiry checked, an expired row replaced column by column (`expires_at`
            // last, since later assignments see earlier ones). A live row is left as it is,
            // and `LAST_INSERT_ID(expires_at)` marks that outcome: sqlx connects with
            // CLIENT_FOUND_ROWS, under which "inserted" and "left unchanged" both count one
            // affected row, but the OK packet's insert id is the marker (a live row's
            // `expires_at` is later than now, so never 0) only when the live branch ran.
            create: sql(format!(
                "INSERT INTO {t} (id, data, created_at, expires_at, version, principal) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE \
                 data = IF(expires_at <= {NOW}, VALUES(data), data), \
                 created_at = IF(expires_at <= {NOW}, VALUES(created_at), created_at), \
                 version = IF(expires_at <= {NOW}, VALUES(version), version), \
                 principal = IF(expires_at <= {NOW}, VALUES(principal), principal), \
                 expires_at = IF(expires_at <= {NOW}, VALUES(expires_at), \
                 LAST_INSERT_ID(expires_at))"
            )),
            load: sql(format!(
                "SELECT data, created_at, expires_at, version, {PRINCIPAL_TEXT} FROM {t} \
                 WHERE id = ? AND expires_at > {NOW}"
            )),
            // The server counts matched rows (CLIENT_FOUND_ROWS), so a save that changes no
            // value still reports its row.
            save: Save::ThenCheck {
                update: sql(format!(
                    "UPDATE {t} SET data = ?, expires_at = ?, version = ?, principal = ? \
                     WHERE id = ? AND version = ? AND expires_at > {NOW}"
                )),
                is_live: sql(format!(
                    "SELECT 1 FROM {t} WHERE id = ? AND expires_at > {NOW}"
                )),
            },
            // Matched rows again: touching to the stored instant still reports the record.
            touch: sql(format!(
                "UPDATE {t} SET expires_at = ? WHERE id = ? AND expires_at > {NOW}"
            )),
            delete: sql(format!("DELETE FROM {t} WHERE id = ?")),
            // In index order, so the batch is a range scan of the expiry index and two
            // cleaners lock rows in the same order.
            delete_expired: sql(format!(
                "DELETE FROM {t} WHERE expires_at <= {NOW} ORDER BY expires_at LIMIT ?"
            )),
            // The bound principal is text and the column a binary string, so the comparison
            // is byte for byte, and on the column as stored, so the index serves it.
            sessions_of: sql(format!(
                "SELECT id, data, created_at, expires_at, version, {PRINCIPAL_TEXT} FROM {t} \
                 WHERE principal = ? AND expires_at > {NOW}"
            )),
            revoke: sql(format!(
                "DELETE FROM {t} WHERE id = ? AND principal = ? AND expires_at > {NOW}"
            )),
            // A locking read, as every InnoDB DELETE: it sees the latest committed rows, so
            // every session whose create had committed when it started.
            revoke_all: sql(format!(
                "DELETE FROM {t} WHERE principal = ? AND expires_at > {NOW} \
                 AND NOT (id <=> ?)"
            )),
        }
    }

    fn classify(error: &dyn DatabaseError) -> Class {
        let Some(error) = error.try_downcast_ref::<MySqlDatabaseError>() else {
            return Class::Other;
        };
        match error.number() {
            // In autocommit, InnoDB rolls back the whole statement for both: nothing written.
            DEADLOCK | LOCK_WAIT_TIMEOUT => Class::Contention,
            DUPLICATE_INDEX => Class::IndexExists,
            DUPLICATE_COLUMN => Class::ColumnExists,
            _ => Class::Other,
        }
    }

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    fn created(result: &MySqlQueryResult) -> bool {
        result.last_insert_id() == 0
    }
}

store_traits!(MySql);

impl SqlStore<MySql> {
    /// A store on `pool`, keeping sessions in the table `sessions` of the connection's
    /// database, encoded with MessagePack, each operation bounded by
    /// [`DEFAULT_TIMEOUT`](session_core::DEFAULT_TIMEOUT).
    #[must_use]
    pub fn new(pool: MySqlPool) -> Self {
        Self::with_pool(pool)
    }

    /// Connects a new pool to `url` (`mysql://user:password@host:port/database`, for MySQL
    /// and MariaDB alike) and builds a store on it, as [`MySqlStore::new`].
    ///
    /// The pool waits at most [`DEFAULT_ACQUIRE_TIMEOUT`](crate::DEFAULT_ACQUIRE_TIMEOUT) for a
    /// connection, so an exhausted pool or an unreachable server is an error, not a hang. For
    /// other pool settings build the pool yourself and use [`MySqlStore::new`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `url` is not a MySQL URL, [`Error::Backend`] if no
    /// connection can be made.
    pub async fn connect(url: &str) -> Result<MySqlStore> {
        let options: MySqlConnectOptions = url
            .parse()
            .map_err(|e| Error::invalid_config(format!("not a valid MySQL connection URL: {e}")))?;
        let pool = MySqlPoolOptions::new()
            .acquire_timeout(crate::DEFAULT_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| Error::backend("connect to MySQL", e))?;
        Ok(Self::new(pool))
    }
}
