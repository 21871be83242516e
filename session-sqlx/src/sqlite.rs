//! SQLite: its SQL, its errors, and building a store from a pool or a URL.

use std::sync::Arc;

use session_core::{Error, Result};
use sqlx::Sqlite;
use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use crate::dialect::{Class, Dialect, Save, SizeLimit, Statements, sealed::Sealed};
use crate::store::store_traits;
use crate::table::TableName;
use crate::{SqlStore, SqliteStore};

/// The database's clock, in milliseconds since the Unix epoch. SQLite reads the clock once per
/// statement step, so every use in one statement agrees. Julian-day arithmetic works on every
/// SQLite version (`unixepoch('subsec')` needs 3.42); the rounding absorbs the floating-point
/// error, far below a millisecond.
const NOW: &str = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

/// SQLite's default `SQLITE_MAX_LENGTH`, the largest value or row it stores, which the bundled
/// build keeps.
const MAX_LENGTH: usize = 1_000_000_000;

/// Bytes of a row besides the session data: the id, three integers and the record header.
const ROW_OVERHEAD: usize = 1024;

/// `SQLITE_BUSY` and `SQLITE_LOCKED`, the primary result codes of a lock that was not
/// granted (after the connection's busy timeout): nothing was written.
const BUSY: u32 = 5;
const LOCKED: u32 = 6;
/// `SQLITE_ERROR`, the generic result code (e.g. an `ADD COLUMN` of a column that exists).
const ERROR: u32 = 1;

impl Dialect for Sqlite {}

impl Sealed for Sqlite {
    const STORE: &'static str = "SqliteStore";
    const SIZE_LIMIT: SizeLimit = SizeLimit::Fixed(MAX_LENGTH - ROW_OVERHEAD);
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("id", "text"),
        ("data", "blob"),
        ("created_at", "integer"),
        ("expires_at", "integer"),
        ("version", "integer"),
    ];
    const PRINCIPAL: &'static str = "text";

    fn statements(name: &TableName) -> Statements {
        let t = name.qualified('"');
        let table = &name.table;
        // SQLite names the index's schema on the index, and the table bare.
        let index = match &name.schema {
            Some(schema) => format!("\"{schema}\".\"{}\"", name.expiry_index()),
            None => format!("\"{}\"", name.expiry_index()),
        };
        let principal_index = match &name.schema {
            Some(schema) => format!("\"{schema}\".\"{}\"", name.principal_index()),
            None => format!("\"{}\"", name.principal_index()),
        };
        let table_info = match &name.schema {
            Some(schema) => format!("pragma_table_info('{table}', '{schema}')"),
            None => format!("pragma_table_info('{table}')"),
        };
        let sql = |s: String| -> Arc<str> { s.into() };
        Statements {
            prepare: vec![sql(format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id TEXT NOT NULL PRIMARY KEY, \
                 data BLOB NOT NULL, \
                 created_at INTEGER NOT NULL, \
                 expires_at INTEGER NOT NULL, \
                 version INTEGER NOT NULL, \
                 principal TEXT)"
            ))],
            columns: sql(format!(
                "SELECT name, type, CAST(pk > 0 AS INTEGER), CAST(\"notnull\" = 0 AS INTEGER) \
                 FROM {table_info} ORDER BY cid"
            )),
            add_principal: sql(format!("ALTER TABLE {t} ADD COLUMN principal TEXT")),
            has_expiry_index: None,
            create_index: sql(format!(
                "CREATE INDEX IF NOT EXISTS {index} ON \"{table}\" (expires_at)"
            )),
            // Partial: sessions without a principal cost the index nothing; SQLite uses it for
            // `principal = ?`, which implies `principal IS NOT NULL`.
            has_principal_index: None,
            create_principal_index: sql(format!(
                "CREATE INDEX IF NOT EXISTS {principal_index} ON \"{table}\" (principal) \
                 WHERE principal IS NOT NULL"
            )),
            size_limit: None,
            // In DO UPDATE, bare column names are the stored row's: a live row is left alone
            // and the statement changes nothing.
            create: sql(format!(
                "INSERT INTO {t} (id, data, created_at, expires_at, version, principal) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at, \
                 version = excluded.version, principal = excluded.principal \
                 WHERE expires_at <= {NOW}"
            )),
            load: sql(format!(
                "SELECT data, created_at, expires_at, version, principal FROM {t} \
                 WHERE id = ?1 AND expires_at > {NOW}"
            )),
            save: Save::ThenCheck {
                update: sql(format!(
                    "UPDATE {t} SET data = ?1, expires_at = ?2, version = ?3, principal = ?4 \
                     WHERE id = ?5 AND version = ?6 AND expires_at > {NOW}"
                )),
                is_live: sql(format!(
                    "SELECT 1 FROM {t} WHERE id = ?1 AND expires_at > {NOW}"
                )),
            },
            touch: sql(format!(
                "UPDATE {t} SET expires_at = ?1 WHERE id = ?2 AND expires_at > {NOW}"
            )),
            delete: sql(format!("DELETE FROM {t} WHERE id = ?1")),
            // `DELETE ... LIMIT` needs a compile-time option SQLite is not usually built with.
            delete_expired: sql(format!(
                "DELETE FROM {t} WHERE id IN (\
                 SELECT id FROM {t} WHERE expires_at <= {NOW} ORDER BY expires_at LIMIT ?1)"
            )),
            sessions_of: sql(format!(
                "SELECT id, data, created_at, expires_at, version, principal FROM {t} \
                 WHERE principal = ?1 AND expires_at > {NOW}"
            )),
            revoke: sql(format!(
                "DELETE FROM {t} WHERE id = ?1 AND principal = ?2 AND expires_at > {NOW}"
            )),
            // SQLite has one writer at a time: the statement sees every committed create.
            revoke_all: sql(format!(
                "DELETE FROM {t} WHERE principal = ?1 AND expires_at > {NOW} AND id IS NOT ?2"
            )),
        }
    }

    fn classify(error: &dyn DatabaseError) -> Class {
        // The code is the extended result code; its low byte is the primary one.
        let primary = error
            .code()
            .and_then(|code| code.parse::<u32>().ok())
            .map(|code| code & 0xff);
        match primary {
            Some(BUSY | LOCKED) => Class::Contention,
            // SQLite has no code of its own for this; the message is stable.
            Some(ERROR) if error.message().starts_with("duplicate column name") => {
                Class::ColumnExists
            }
            _ => Class::Other,
        }
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn created(result: &SqliteQueryResult) -> bool {
        result.rows_affected() > 0
    }
}

store_traits!(Sqlite);

/// Whether an SQLite URL names an in-memory database, as sqlx reads it: `:memory:` as the
/// database, or `mode=memory` among the parameters.
fn is_in_memory(url: &str) -> bool {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|param| param == "mode=memory")
}

impl SqlStore<Sqlite> {
    /// A store on `pool`, keeping sessions in the table `sessions`, encoded with MessagePack,
    /// each operation bounded by [`DEFAULT_TIMEOUT`](session_core::DEFAULT_TIMEOUT).
    ///
    /// An in-memory database lives as long as one of its connections: give it a pool that
    /// keeps one open (as [`SqliteStore::connect`] does), or the sessions vanish.
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self::with_pool(pool)
    }

    /// Opens a new pool on `url` and builds a store on it, as [`SqliteStore::new`].
    ///
    /// - `sqlite://path/to/sessions.db` (or `sqlite:sessions.db`): a file, created if missing
    ///   (unless the URL sets `mode`), in WAL journal mode with `synchronous = NORMAL`: committed
    ///   sessions survive a crash of the process, and readers do not block the writer.
    /// - `sqlite::memory:`: a database private to this pool, gone when the pool closes. The pool
    ///   holds exactly one connection, kept open for the pool's lifetime.
    ///
    /// The pool waits at most [`DEFAULT_ACQUIRE_TIMEOUT`](crate::DEFAULT_ACQUIRE_TIMEOUT) for a
    /// connection; SQLite itself waits up to 5 seconds for another connection's write lock.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `url` is not an SQLite URL (starting with `sqlite:`),
    /// [`Error::Backend`] if the database cannot be opened.
    pub async fn connect(url: &str) -> Result<SqliteStore> {
        // sqlx would take anything else for a file name.
        if !url.starts_with("sqlite:") {
            return Err(Error::invalid_config(
                "an SQLite URL starts with `sqlite:` (`sqlite://path/to/file.db` or `sqlite::memory:`)",
            ));
        }
        let options: SqliteConnectOptions = url
            .parse()
            .map_err(|e| Error::invalid_config(format!("not a valid SQLite URL: {e}")))?;
        let in_memory = is_in_memory(url);
        let pool = SqlitePoolOptions::new().acquire_timeout(crate::DEFAULT_ACQUIRE_TIMEOUT);
        let (pool, options) = if in_memory {
            // One connection that never closes: it *is* the database.
            let pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (pool, options)
        } else {
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            let options = if url.contains("mode=") {
                options
            } else {
                options.create_if_missing(true)
            };
            (pool, options)
        };
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| Error::backend("open the SQLite database", e))?;
        Ok(Self::new(pool))
    }
}

#[cfg(test)]
mod tests {
    use super::is_in_memory;

    #[test]
    fn in_memory_urls_are_recognised() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://sessions?mode=memory",
            "sqlite://sessions?cache=shared&mode=memory",
        ] {
            assert!(is_in_memory(url), "{url}");
        }
        for url in [
            "sqlite://sessions.db",
            "sqlite:sessions.db?mode=rwc",
            "sqlite:///tmp/memory.db",
        ] {
            assert!(!is_in_memory(url), "{url}");
        }
    }
}
