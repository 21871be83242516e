//! The SQLite store.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use session_core::{Error, ExpiredDeletion, Id, Record, Result, Store};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;

use crate::common::{
    Settings, TableName, config_methods, instant, millis, now_millis, version_from_db,
    version_to_db,
};

/// A session store on SQLite.
///
/// Build it from a pool you already have ([`SqliteStore::new`]) or from a URL
/// ([`SqliteStore::connect`]), then call [`SqliteStore::migrate`] once at startup. Cheap to
/// clone: clones share the pool. See the [crate docs](crate) for the schema and the semantics of
/// each operation.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    name: TableName,
    settings: Settings,
    sql: Arc<Sql>,
}

/// The statements, built once per table name.
struct Sql {
    create_table: Arc<str>,
    create_index: Arc<str>,
    create: Arc<str>,
    load: Arc<str>,
    save: Arc<str>,
    is_live: Arc<str>,
    touch: Arc<str>,
    delete: Arc<str>,
    delete_expired: Arc<str>,
}

impl Sql {
    fn new(name: &TableName) -> Self {
        let t = name.qualified('"');
        // SQLite names the index's schema on the index, and the table bare.
        let index = match &name.schema {
            Some(schema) => format!("\"{schema}\".\"{}\"", name.expiry_index()),
            None => format!("\"{}\"", name.expiry_index()),
        };
        let table = &name.table;
        Self {
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id TEXT NOT NULL PRIMARY KEY, \
                 data BLOB NOT NULL, \
                 created_at INTEGER NOT NULL, \
                 expires_at INTEGER NOT NULL, \
                 version INTEGER NOT NULL)"
            )
            .into(),
            create_index: format!("CREATE INDEX IF NOT EXISTS {index} ON \"{table}\" (expires_at)")
                .into(),
            // In DO UPDATE, bare column names are the stored row's: a live row is left alone
            // and the statement changes nothing.
            create: format!(
                "INSERT INTO {t} (id, data, created_at, expires_at, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at, \
                 version = excluded.version \
                 WHERE expires_at <= ?6"
            )
            .into(),
            load: format!(
                "SELECT data, created_at, expires_at, version FROM {t} \
                 WHERE id = ?1 AND expires_at > ?2"
            )
            .into(),
            save: format!(
                "UPDATE {t} SET data = ?1, expires_at = ?2, version = version + 1 \
                 WHERE id = ?3 AND version = ?4 AND expires_at > ?5"
            )
            .into(),
            is_live: format!("SELECT 1 FROM {t} WHERE id = ?1 AND expires_at > ?2").into(),
            touch: format!("UPDATE {t} SET expires_at = ?1 WHERE id = ?2 AND expires_at > ?3")
                .into(),
            delete: format!("DELETE FROM {t} WHERE id = ?1").into(),
            // `DELETE ... LIMIT` needs a compile-time option SQLite is not usually built with.
            delete_expired: format!(
                "DELETE FROM {t} WHERE id IN (\
                 SELECT id FROM {t} WHERE expires_at <= ?1 LIMIT ?2)"
            )
            .into(),
        }
    }
}

fn query(sql: &Arc<str>) -> sqlx::query::Query<'static, Sqlite, SqliteArguments> {
    sqlx::query(AssertSqlSafe(Arc::clone(sql)))
}

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

impl SqliteStore {
    /// A store on `pool`, keeping sessions in the table `sessions`, encoded with MessagePack,
    /// each operation bounded by [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT).
    ///
    /// An in-memory database lives as long as one of its connections: give it a pool that
    /// keeps one open (as [`SqliteStore::connect`] does), or the sessions vanish.
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        let name = TableName::default();
        Self {
            sql: Arc::new(Sql::new(&name)),
            pool,
            name,
            settings: Settings::default(),
        }
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
    pub async fn connect(url: &str) -> Result<Self> {
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

    /// Creates the table and the index on its expiry column if they do not exist. Safe to run
    /// at every startup.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a statement fails (e.g. a read-only database).
    pub async fn migrate(&self) -> Result<()> {
        const WHAT: &str = "create the sessions table";
        self.settings
            .timed(WHAT, async {
                let fail = |e| Error::backend(WHAT, e);
                let mut tx = self.pool.begin().await.map_err(fail)?;
                query(&self.sql.create_table)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                query(&self.sql.create_index)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                tx.commit().await.map_err(fail)
            })
            .await
    }

    async fn save_inner(&self, record: &Record) -> Result<()> {
        const WHAT: &str = "save a session";
        let data = self.settings.codec.encode(&record.data)?;
        let now = now_millis()?;
        let saved = query(&self.sql.save)
            .bind(data.as_slice())
            .bind(millis(record.expires_at)?)
            .bind(record.id.as_str())
            .bind(version_to_db(record.version)?)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| Error::backend(WHAT, e))?;
        if saved.rows_affected() > 0 {
            return Ok(());
        }
        // Nothing matched: a live row means another version (someone saved first).
        let live = query(&self.sql.is_live)
            .bind(record.id.as_str())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Error::backend(WHAT, e))?;
        Err(if live.is_some() {
            Error::Conflict
        } else {
            Error::NotFound
        })
    }
}

config_methods!(
    SqliteStore,
    SqlitePool,
    "Qualifies the table with the schema `schema`: `main`, `temp`, or the name of an attached \
     database."
);

#[async_trait]
impl Store for SqliteStore {
    async fn create(&self, record: &Record) -> Result<()> {
        const WHAT: &str = "create a session";
        let data = self.settings.codec.encode(&record.data)?;
        let statement = query(&self.sql.create)
            .bind(record.id.as_str())
            .bind(data.as_slice())
            .bind(millis(record.created_at)?)
            .bind(millis(record.expires_at)?)
            .bind(version_to_db(record.version)?)
            .bind(now_millis()?);
        let done = self
            .settings
            .run(WHAT, statement.execute(&self.pool))
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::AlreadyExists);
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        const WHAT: &str = "load a session";
        let statement = sqlx::query_as::<_, (Vec<u8>, i64, i64, i64)>(AssertSqlSafe(Arc::clone(
            &self.sql.load,
        )))
        .bind(id.as_str())
        .bind(now_millis()?);
        let row = self
            .settings
            .run(WHAT, statement.fetch_optional(&self.pool))
            .await?;
        let Some((data, created_at, expires_at, version)) = row else {
            return Ok(None);
        };
        Ok(Some(Record::from_parts(
            id.clone(),
            self.settings.codec.decode(Bytes::from(data))?,
            instant(created_at)?,
            instant(expires_at)?,
            version_from_db(version)?,
        )))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.settings
            .timed("save a session", self.save_inner(record))
            .await
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        const WHAT: &str = "touch a session";
        let statement = query(&self.sql.touch)
            .bind(millis(expires_at)?)
            .bind(id.as_str())
            .bind(now_millis()?);
        let done = self
            .settings
            .run(WHAT, statement.execute(&self.pool))
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        const WHAT: &str = "delete a session";
        let statement = query(&self.sql.delete).bind(id.as_str());
        self.settings
            .run(WHAT, statement.execute(&self.pool))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for SqliteStore {
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        const WHAT: &str = "delete expired sessions";
        let statement = query(&self.sql.delete_expired)
            .bind(now_millis()?)
            .bind(i64::from(limit));
        let done = self
            .settings
            .run(WHAT, statement.execute(&self.pool))
            .await?;
        Ok(done.rows_affected())
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
