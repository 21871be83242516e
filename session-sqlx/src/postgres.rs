//! The PostgreSQL store.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use session_core::{Error, ExpiredDeletion, Id, Record, Result, Store};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor as _};
use time::OffsetDateTime;

use crate::common::{
    Settings, TableName, config_methods, instant, millis, now_millis, version_from_db,
    version_to_db,
};

/// A session store on PostgreSQL.
///
/// Build it from a pool you already have ([`PostgresStore::new`]) or from a URL
/// ([`PostgresStore::connect`]), then call [`PostgresStore::migrate`] once at startup. Cheap to
/// clone: clones share the pool. See the [crate docs](crate) for the schema and the semantics of
/// each operation.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
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
    touch: Arc<str>,
    delete: Arc<str>,
    delete_expired: Arc<str>,
}

/// What `save`'s statement reports.
const SAVED: i32 = 0;
const STALE_VERSION: i32 = 1;

/// Serialises concurrent `migrate` calls (several instances starting at once), whose
/// `CREATE TABLE IF NOT EXISTS` could otherwise collide in the catalog.
const MIGRATE_LOCK: i64 = 0x5e55_1071_5e55_1071;

impl Sql {
    fn new(name: &TableName) -> Self {
        let t = name.qualified('"');
        let index = name.expiry_index();
        Self {
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, \
                 data BYTEA NOT NULL, \
                 created_at BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, \
                 version BIGINT NOT NULL)"
            )
            .into(),
            create_index: format!("CREATE INDEX IF NOT EXISTS \"{index}\" ON {t} (expires_at)")
                .into(),
            // The conflicting row is locked and its expiry re-checked, so of concurrent creates
            // exactly one writes; over a live row the update is skipped and no row is affected.
            create: format!(
                "INSERT INTO {t} AS s (id, data, created_at, expires_at, version) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, \
                 created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, \
                 version = EXCLUDED.version \
                 WHERE s.expires_at <= $6"
            )
            .into(),
            load: format!(
                "SELECT data, created_at, expires_at, version FROM {t} \
                 WHERE id = $1 AND expires_at > $2"
            )
            .into(),
            // One round trip whatever the outcome: when the update matches nothing, the same
            // statement tells a live row at another version (conflict) from no live row.
            save: format!(
                "WITH saved AS (\
                 UPDATE {t} SET data = $1, expires_at = $2, version = version + 1 \
                 WHERE id = $3 AND version = $4 AND expires_at > $5 RETURNING 1) \
                 SELECT CASE WHEN EXISTS (SELECT 1 FROM saved) THEN {SAVED} \
                 WHEN EXISTS (SELECT 1 FROM {t} WHERE id = $3 AND expires_at > $5) \
                 THEN {STALE_VERSION} ELSE 2 END"
            )
            .into(),
            touch: format!("UPDATE {t} SET expires_at = $1 WHERE id = $2 AND expires_at > $3")
                .into(),
            delete: format!("DELETE FROM {t} WHERE id = $1").into(),
            // SKIP LOCKED: rows a session request holds are left for the next round, and two
            // cleaners never wait on each other.
            delete_expired: format!(
                "DELETE FROM {t} WHERE id IN (\
                 SELECT id FROM {t} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
            )
            .into(),
        }
    }
}

fn query(
    sql: &Arc<str>,
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(AssertSqlSafe(Arc::clone(sql)))
}

impl PostgresStore {
    /// A store on `pool`, keeping sessions in the table `sessions` of the connection's search
    /// path, encoded with MessagePack, each operation bounded by
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT).
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        let name = TableName::default();
        Self {
            sql: Arc::new(Sql::new(&name)),
            pool,
            name,
            settings: Settings::default(),
        }
    }

    /// Connects a new pool to `url` (`postgres://user:password@host:port/database`) and builds
    /// a store on it, as [`PostgresStore::new`].
    ///
    /// The pool waits at most [`DEFAULT_ACQUIRE_TIMEOUT`](crate::DEFAULT_ACQUIRE_TIMEOUT) for a
    /// connection, so an exhausted pool or an unreachable server is an error, not a hang. For
    /// other pool settings build the pool yourself and use [`PostgresStore::new`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `url` is not a PostgreSQL URL, [`Error::Backend`] if no
    /// connection can be made.
    pub async fn connect(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(|e| {
            Error::invalid_config(format!("not a valid PostgreSQL connection URL: {e}"))
        })?;
        let pool = PgPoolOptions::new()
            .acquire_timeout(crate::DEFAULT_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| Error::backend("connect to PostgreSQL", e))?;
        Ok(Self::new(pool))
    }

    /// Creates the table and the index on its expiry column if they do not exist. Safe to run
    /// at every startup and from several instances at once; the schema, if one is configured,
    /// must exist.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a statement fails (e.g. missing privileges).
    pub async fn migrate(&self) -> Result<()> {
        const WHAT: &str = "create the sessions table";
        self.settings
            .timed(WHAT, async {
                let fail = |e| Error::backend(WHAT, e);
                let mut tx = self.pool.begin().await.map_err(fail)?;
                tx.execute(sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATE_LOCK))
                    .await
                    .map_err(fail)?;
                tx.execute(query(&self.sql.create_table))
                    .await
                    .map_err(fail)?;
                tx.execute(query(&self.sql.create_index))
                    .await
                    .map_err(fail)?;
                tx.commit().await.map_err(fail)
            })
            .await
    }
}

config_methods!(
    PostgresStore,
    PgPool,
    "Qualifies the table with the PostgreSQL schema `schema` instead of following the \
     connection's `search_path`."
);

#[async_trait]
impl Store for PostgresStore {
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
        const WHAT: &str = "save a session";
        let data = self.settings.codec.encode(&record.data)?;
        let statement = sqlx::query_scalar::<_, i32>(AssertSqlSafe(Arc::clone(&self.sql.save)))
            .bind(data.as_slice())
            .bind(millis(record.expires_at)?)
            .bind(record.id.as_str())
            .bind(version_to_db(record.version)?)
            .bind(now_millis()?);
        let outcome = self
            .settings
            .run(WHAT, statement.fetch_one(&self.pool))
            .await?;
        match outcome {
            SAVED => Ok(()),
            STALE_VERSION => Err(Error::Conflict),
            _ => Err(Error::NotFound),
        }
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
impl ExpiredDeletion for PostgresStore {
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
