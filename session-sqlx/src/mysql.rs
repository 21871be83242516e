//! The MySQL and MariaDB store.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use session_core::{Error, ExpiredDeletion, Id, Record, Result, Store};
use sqlx::AssertSqlSafe;
use sqlx::error::ErrorKind;
use sqlx::mysql::{MySql, MySqlArguments, MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use time::OffsetDateTime;

use crate::common::{
    Settings, TableName, config_methods, instant, millis, now_millis, version_from_db,
    version_to_db,
};

/// A session store on MySQL or MariaDB.
///
/// Build it from a pool you already have ([`MySqlStore::new`]) or from a URL
/// ([`MySqlStore::connect`]), then call [`MySqlStore::migrate`] once at startup. Cheap to
/// clone: clones share the pool. See the [crate docs](crate) for the schema and the semantics of
/// each operation.
#[derive(Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    name: TableName,
    settings: Settings,
    sql: Arc<Sql>,
}

/// The statements, built once per table name.
struct Sql {
    create_table: Arc<str>,
    insert: Arc<str>,
    replace_expired: Arc<str>,
    load: Arc<str>,
    save: Arc<str>,
    is_live: Arc<str>,
    touch: Arc<str>,
    delete: Arc<str>,
    delete_expired: Arc<str>,
}

impl Sql {
    fn new(name: &TableName) -> Self {
        let t = name.qualified('`');
        let index = name.expiry_index();
        Self {
            // Ids are case-sensitive: a case-insensitive collation (the server default) would let
            // `abc` find `ABC`'s session.
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
                 data LONGBLOB NOT NULL, \
                 created_at BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, \
                 version BIGINT NOT NULL, \
                 INDEX `{index}` (expires_at)) ENGINE = InnoDB"
            )
            .into(),
            insert: format!(
                "INSERT INTO {t} (id, data, created_at, expires_at, version) \
                 VALUES (?, ?, ?, ?, ?)"
            )
            .into(),
            replace_expired: format!(
                "UPDATE {t} SET data = ?, created_at = ?, expires_at = ?, version = ? \
                 WHERE id = ? AND expires_at <= ?"
            )
            .into(),
            load: format!(
                "SELECT data, created_at, expires_at, version FROM {t} \
                 WHERE id = ? AND expires_at > ?"
            )
            .into(),
            save: format!(
                "UPDATE {t} SET data = ?, expires_at = ?, version = version + 1 \
                 WHERE id = ? AND version = ? AND expires_at > ?"
            )
            .into(),
            is_live: format!("SELECT 1 FROM {t} WHERE id = ? AND expires_at > ?").into(),
            touch: format!("UPDATE {t} SET expires_at = ? WHERE id = ? AND expires_at > ?").into(),
            delete: format!("DELETE FROM {t} WHERE id = ?").into(),
            delete_expired: format!("DELETE FROM {t} WHERE expires_at <= ? LIMIT ?").into(),
        }
    }
}

fn query(sql: &Arc<str>) -> sqlx::query::Query<'static, MySql, MySqlArguments> {
    sqlx::query(AssertSqlSafe(Arc::clone(sql)))
}

impl MySqlStore {
    /// A store on `pool`, keeping sessions in the table `sessions` of the connection's
    /// database, encoded with MessagePack, each operation bounded by
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT).
    #[must_use]
    pub fn new(pool: MySqlPool) -> Self {
        let name = TableName::default();
        Self {
            sql: Arc::new(Sql::new(&name)),
            pool,
            name,
            settings: Settings::default(),
        }
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
    pub async fn connect(url: &str) -> Result<Self> {
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

    /// Creates the table, with its index on the expiry column, if it does not exist. Safe to
    /// run at every startup; the database named by [`MySqlStore::with_schema`], if any, must
    /// exist.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the statement fails (e.g. missing privileges).
    pub async fn migrate(&self) -> Result<()> {
        const WHAT: &str = "create the sessions table";
        self.settings
            .timed(WHAT, async {
                query(&self.sql.create_table)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| Error::backend(WHAT, e))
            })
            .await?;
        Ok(())
    }
}

config_methods!(
    MySqlStore,
    MySqlPool,
    "Qualifies the table with the database `schema` instead of the connection's database."
);

impl MySqlStore {
    async fn create_inner(&self, record: &Record) -> Result<()> {
        const WHAT: &str = "create a session";
        let data = self.settings.codec.encode(&record.data)?;
        let created_at = millis(record.created_at)?;
        let expires_at = millis(record.expires_at)?;
        let version = version_to_db(record.version)?;
        let inserted = query(&self.sql.insert)
            .bind(record.id.as_str())
            .bind(data.as_slice())
            .bind(created_at)
            .bind(expires_at)
            .bind(version)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.kind() == ErrorKind::UniqueViolation => {
                // The id is taken. Replace the row only if it has expired: the update locks the
                // row and re-checks its expiry, so of concurrent creates over one expired row
                // exactly one matches. (The server counts matched rows, so a row that expired
                // with these very values still counts as replaced.)
                let replaced = query(&self.sql.replace_expired)
                    .bind(data.as_slice())
                    .bind(created_at)
                    .bind(expires_at)
                    .bind(version)
                    .bind(record.id.as_str())
                    .bind(now_millis()?)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| Error::backend(WHAT, e))?;
                if replaced.rows_affected() == 0 {
                    return Err(Error::AlreadyExists);
                }
                Ok(())
            }
            Err(e) => Err(Error::backend(WHAT, e)),
        }
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

#[async_trait]
impl Store for MySqlStore {
    async fn create(&self, record: &Record) -> Result<()> {
        self.settings
            .timed("create a session", self.create_inner(record))
            .await
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
        // The server counts matched rows (sqlx sets CLIENT_FOUND_ROWS), so touching to the
        // stored instant still reports the record.
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
impl ExpiredDeletion for MySqlStore {
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        const WHAT: &str = "delete expired sessions";
        let statement = query(&self.sql.delete_expired)
            .bind(now_millis()?)
            .bind(limit);
        let done = self
            .settings
            .run(WHAT, statement.execute(&self.pool))
            .await?;
        Ok(done.rows_affected())
    }
}
