//! The store, once for every database: options, the operations, time limits, retries on
//! contention, error mapping and row decoding. The SQL comes from the [`Dialect`].

use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use session_core::clock::{self, Clock};
use session_core::{
    Codec, Error, Id, MessagePack, Record, Result, check_principal, check_timeout, check_version,
};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row as _,
    Type,
};
use time::OffsetDateTime;

use crate::dialect::{Class, Dialect, Save, SizeLimit, Statements};
use crate::layout::ForeignLayout;
use crate::schema::{self, Column, Layout};
use crate::table::TableName;

/// Attempts of one statement that the database aborts because of contention, before the
/// operation fails with [`Error::Contention`].
pub(crate) const ATTEMPTS: u32 = 4;

/// A session store on an SQL database, one type for every database: use it through
/// [`PostgresStore`](crate::PostgresStore), [`MySqlStore`](crate::MySqlStore) or
/// [`SqliteStore`](crate::SqliteStore).
///
/// Build it from a pool you already have (`new`) or from a URL (`connect`), then call
/// [`migrate`](Self::migrate) once at startup. Cheap to clone: clones share the pool. See the
/// [crate docs](crate) for the schema, the clock rule and the semantics of each operation.
pub struct SqlStore<DB: Dialect> {
    pool: Pool<DB>,
    name: TableName,
    sql: Arc<Statements>,
    codec: Arc<dyn Codec>,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    /// The size limit read from the server ([`SizeLimit::Setting`]), shared by clones.
    size_limit: Arc<OnceLock<usize>>,
    /// Another layout of the table (the Express-compatible one), which then runs every
    /// operation; `None`: the store's own.
    layout: Option<Arc<dyn ForeignLayout<DB>>>,
}

impl<DB: Dialect> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            name: self.name.clone(),
            sql: Arc::clone(&self.sql),
            codec: Arc::clone(&self.codec),
            timeout: self.timeout,
            clock: Arc::clone(&self.clock),
            size_limit: Arc::clone(&self.size_limit),
            layout: self.layout.clone(),
        }
    }
}

impl<DB: Dialect> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(DB::STORE)
            .field("schema", &self.name.schema)
            .field("table", &self.name.table)
            .field("codec", &self.codec)
            .field("timeout", &self.timeout)
            .field("clock", &self.clock)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<DB: Dialect> SqlStore<DB> {
    /// A store on `pool` with the defaults: table `sessions`, MessagePack, a time limit of
    /// [`DEFAULT_TIMEOUT`](session_core::DEFAULT_TIMEOUT) per operation, the system clock.
    pub(crate) fn with_pool(pool: Pool<DB>) -> Self {
        let name = TableName::default();
        Self {
            sql: Arc::new(DB::statements(&name)),
            pool,
            name,
            codec: Arc::new(MessagePack),
            timeout: session_core::DEFAULT_TIMEOUT,
            clock: clock::system(),
            size_limit: Arc::new(OnceLock::new()),
            layout: None,
        }
    }

    /// The pool the store runs on.
    #[must_use]
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Keeps sessions in the table `table` instead of `sessions`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] unless `table` is 1 to 48 ASCII letters, digits and
    /// underscores, not starting with a digit.
    pub fn with_table(mut self, table: &str) -> Result<Self> {
        self.name = self.name.with_table(table)?;
        self.sql = Arc::new(DB::statements(&self.name));
        self.layout = self.layout.map(|layout| layout.for_table(&self.name));
        Ok(self)
    }

    /// Qualifies the table with `schema`: a PostgreSQL schema, a MySQL database, or an SQLite
    /// schema (`main`, `temp`, an attached database). Without it the table is found as the
    /// connection finds unqualified names (PostgreSQL's `search_path`, MySQL's current
    /// database, SQLite's `main`). The schema must exist.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] unless `schema` is 1 to 48 ASCII letters, digits and
    /// underscores, not starting with a digit.
    pub fn with_schema(mut self, schema: &str) -> Result<Self> {
        self.name = self.name.with_schema(schema)?;
        self.sql = Arc::new(DB::statements(&self.name));
        self.layout = self.layout.map(|layout| layout.for_table(&self.name));
        Ok(self)
    }

    /// The table the sessions are kept in.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.name.table
    }

    /// The schema the table is qualified with, if any.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.name.schema.as_deref()
    }

    /// Encodes session data with `codec` instead of [`MessagePack`]. Both built-in codecs read
    /// both formats, so switching keeps stored sessions readable.
    #[must_use]
    pub fn with_codec(mut self, codec: impl Codec) -> Self {
        self.codec = Arc::new(codec);
        self
    }

    /// Bounds every operation, waiting for a pooled connection and retries included, to
    /// `timeout` (default [`DEFAULT_TIMEOUT`](session_core::DEFAULT_TIMEOUT)). An operation
    /// that takes longer fails with [`Error::Backend`] whose source is a
    /// [`Timeout`](session_core::Timeout).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a zero `timeout`, which would fail every operation.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self> {
        self.timeout = check_timeout(timeout)?;
        Ok(self)
    }

    /// The time limit of one operation.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets the app's clock (default: the system clock), for tests of app servers whose clocks
    /// are wrong.
    ///
    /// No operation of this store reads it: the **database's** clock decides every expiry (see
    /// the [crate docs](crate#one-clock-decides-expiry)), and the app's clock only computes
    /// the `expires_at` of the records it hands in. A store built with a skewed clock
    /// therefore behaves exactly like one with the right clock, which is what
    /// `session_conformance::skew_tests!` checks.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The statements of the store's table.
    pub(crate) fn statements(&self) -> &Statements {
        &self.sql
    }

    /// Keeps the sessions in the table `table` (a valid name, in the same schema) in the
    /// layout `layout` builds for it, which runs every operation from then on; `with_table` and
    /// `with_schema` still rename the table.
    // Only PostgreSQL has another layout (connect-pg-simple's).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn with_layout(
        mut self,
        table: &str,
        layout: impl FnOnce(&TableName) -> Arc<dyn ForeignLayout<DB>>,
    ) -> Self {
        table.clone_into(&mut self.name.table);
        self.sql = Arc::new(DB::statements(&self.name));
        self.layout = Some(layout(&self.name));
        self
    }

    /// The layout set with [`Self::with_layout`], if any.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn layout(&self) -> Option<&Arc<dyn ForeignLayout<DB>>> {
        self.layout.as_ref()
    }

    /// Runs `operation` within the store's time limit.
    pub(crate) async fn timed<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        session_core::timed(what, self.timeout, operation).await?
    }
}

/// Runs `attempt` until it succeeds, fails for a reason other than contention, or has been
/// aborted because of contention [`ATTEMPTS`] times; `classify` reads the errors.
pub(crate) async fn retry<T, Fut>(
    what: &'static str,
    classify: impl Fn(&dyn sqlx::error::DatabaseError) -> Class,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let contention =
            matches!(&error, sqlx::Error::Database(e) if classify(&**e) == Class::Contention);
        if !contention {
            return Err(map_error(what, error));
        }
        if attempts >= ATTEMPTS {
            return Err(Error::Contention {
                operation: what,
                source: error.into(),
            });
        }
        tokio::time::sleep(backoff(attempts)).await;
    }
}

/// How long to wait before attempt `attempts + 1`: 5, 10, 20 ms ..., plus up to 5 ms of
/// jitter so that the transactions that collided do not collide again in step.
fn backoff(attempts: u32) -> Duration {
    let jitter = std::hash::RandomState::new().hash_one(attempts) % 5_000;
    Duration::from_millis(5 << attempts.saturating_sub(1).min(6)) + Duration::from_micros(jitter)
}

/// The store's error for an sqlx error that is not contention: a value that does not decode
/// (a column of the wrong type, a NULL) is [`Error::Decode`], the rest [`Error::Backend`].
pub(crate) fn map_error(what: &'static str, error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => Error::decode(error),
        other => Error::backend(what, other),
    }
}

pub(crate) fn statement<DB: Database>(
    sql: &Arc<str>,
) -> sqlx::query::Query<'static, DB, <DB as Database>::Arguments> {
    sqlx::query(AssertSqlSafe(Arc::clone(sql)))
}

/// A record's version as stored (a signed 64-bit column); `check_version` has bounded it.
fn stored_version(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| Error::VersionOutOfRange(version))
}

/// A record's principal as stored, after [`check_principal`]: `create` and `save` refuse one
/// it refuses before writing anything.
fn stored_principal(record: &Record) -> Result<Option<&str>> {
    record.principal.as_deref().map(check_principal).transpose()
}

/// The record a live row of the native layout holds, its data read with `codec` (see
/// [`SqlStore::record`]).
///
/// # Errors
///
/// As [`SqlStore::record`].
pub(crate) fn record_of(
    codec: &dyn Codec,
    id: Id,
    (data, created_at, expires_at, version, principal): Row,
) -> Result<Record> {
    let principal = principal
        .map(|p| match check_principal(&p) {
            Ok(_) => Ok(p),
            Err(_) => Err(Error::decode(
                "the stored principal is empty, too long or has control characters",
            )),
        })
        .transpose()?;
    Ok(Record::from_parts(
        id,
        codec.decode(Bytes::from(data))?,
        clock::from_unix_millis(created_at)?,
        clock::from_unix_millis(expires_at)?,
        u64::try_from(version).map_err(Error::decode)?,
    )
    .with_principal(principal))
}

/// The columns of a live row as `load` and `sessions_of` read them: data, created_at,
/// expires_at, version, principal.
pub(crate) type Row = (Vec<u8>, i64, i64, i64, Option<String>);

/// The operations, written once. The bounds say what the shared code needs from a driver:
/// pools that execute, and text, bytes and 64-bit integers that bind and decode.
impl<DB: Dialect> SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    DB::Arguments: IntoArguments<DB>,
{
    /// Creates the table and its indexes (on the expiry and principal columns) if they do not
    /// exist, and checks that an existing table has the layout the store needs; to a table
    /// made before principals existed it adds the nullable `principal` column (its rows keep
    /// no principal). Safe to run at every startup and from several instances at once; the
    /// schema, if one is configured, must exist.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the table exists with another layout, naming every missing
    /// column, wrong type, non-nullable `principal` and primary key problem (the table is left
    /// as it is);
    /// [`Error::Backend`] if a statement fails (e.g. missing privileges), or takes longer
    /// than the store's timeout.
    pub async fn migrate(&self) -> Result<()> {
        if let Some(layout) = &self.layout {
            return layout.migrate(self).await;
        }
        const WHAT: &str = "migrate the sessions table";
        let fail = |e| map_error(WHAT, e);
        self.timed(WHAT, async {
            let mut tx = self.pool.begin().await.map_err(fail)?;
            for sql in &self.sql.prepare {
                tx.execute(statement::<DB>(sql)).await.map_err(fail)?;
            }
            let columns: Vec<Column> = sqlx::query_as::<DB, (String, String, i64, i64)>(
                AssertSqlSafe(Arc::clone(&self.sql.columns)),
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(fail)?
            .into_iter()
            .map(Column::from)
            .collect();
            let layout = Layout {
                columns: DB::COLUMNS,
                principal: DB::PRINCIPAL,
            };
            if schema::check(&self.qualified_name(), &columns, layout)? {
                // A table from before principals: its rows get NULL, no principal.
                match tx.execute(statement::<DB>(&self.sql.add_principal)).await {
                    Ok(_) => {}
                    // Another instance added it meanwhile.
                    Err(sqlx::Error::Database(e)) if DB::classify(&*e) == Class::ColumnExists => {}
                    Err(e) => return Err(fail(e)),
                }
            }
            for (has_index, create_index) in [
                (&self.sql.has_expiry_index, &self.sql.create_index),
                (
                    &self.sql.has_principal_index,
                    &self.sql.create_principal_index,
                ),
            ] {
                let indexed = match has_index {
                    Some(sql) => {
                        sqlx::query_scalar::<DB, i64>(AssertSqlSafe(Arc::clone(sql)))
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(fail)?
                            > 0
                    }
                    None => false,
                };
                if !indexed {
                    match tx.execute(statement::<DB>(create_index)).await {
                        Ok(_) => {}
                        // Another instance created it meanwhile.
                        Err(sqlx::Error::Database(e))
                            if DB::classify(&*e) == Class::IndexExists => {}
                        Err(e) => return Err(fail(e)),
                    }
                }
            }
            tx.commit().await.map_err(fail)
        })
        .await
    }

    fn qualified_name(&self) -> String {
        match &self.name.schema {
            Some(schema) => format!("`{schema}.{}`", self.name.table),
            None => format!("`{}`", self.name.table),
        }
    }

    /// Encodes the record's data and checks it against the database's size limit.
    async fn encode(&self, what: &'static str, record: &Record) -> Result<Vec<u8>> {
        let data = self.codec.encode(&record.data)?;
        let limit = self.size_limit(what).await?;
        if data.len() > limit {
            return Err(Error::TooLarge {
                size: data.len(),
                limit,
            });
        }
        Ok(data)
    }

    /// The largest encoded session the database accepts; a server setting is read once.
    async fn size_limit(&self, what: &'static str) -> Result<usize> {
        let overhead = match DB::SIZE_LIMIT {
            SizeLimit::Fixed(limit) => return Ok(limit),
            SizeLimit::Setting { overhead } => overhead,
        };
        if let Some(limit) = self.size_limit.get() {
            return Ok(*limit);
        }
        let Some(sql) = &self.sql.size_limit else {
            return Ok(usize::MAX);
        };
        let setting = retry(what, DB::classify, || {
            sqlx::query_scalar::<DB, i64>(AssertSqlSafe(Arc::clone(sql))).fetch_one(&self.pool)
        })
        .await?;
        let limit = usize::try_from(setting)
            .unwrap_or(0)
            .saturating_sub(overhead);
        Ok(*self.size_limit.get_or_init(|| limit))
    }

    /// Runs a statement, again on contention (see [`retry`]).
    pub(crate) async fn execute(
        &self,
        what: &'static str,
        build: impl Fn() -> sqlx::query::Query<'static, DB, DB::Arguments>,
    ) -> Result<DB::QueryResult> {
        retry(what, DB::classify, || build().execute(&self.pool)).await
    }

    pub(crate) async fn create(&self, record: &Record) -> Result<()> {
        if let Some(layout) = &self.layout {
            return layout.create(self, record).await;
        }
        const WHAT: &str = "create a session";
        let version = stored_version(check_version(record.version)?)?;
        let principal = stored_principal(record)?;
        self.timed(WHAT, async {
            let data = self.encode(WHAT, record).await?;
            let done = self
                .execute(WHAT, || {
                    statement::<DB>(&self.sql.create)
                        .bind(record.id.as_str())
                        .bind(data.as_slice())
                        .bind(clock::unix_millis(record.created_at))
                        .bind(clock::unix_millis(record.expires_at))
                        .bind(version)
                        .bind(principal)
                })
                .await?;
            if DB::created(&done) {
                Ok(())
            } else {
                Err(Error::AlreadyExists)
            }
        })
        .await
    }

    pub(crate) async fn load(&self, id: &Id) -> Result<Option<Record>> {
        if let Some(layout) = &self.layout {
            return layout.load(self, id).await;
        }
        const WHAT: &str = "load a session";
        let row = self
            .timed(
                WHAT,
                retry(WHAT, DB::classify, || {
                    sqlx::query_as::<DB, Row>(AssertSqlSafe(Arc::clone(&self.sql.load)))
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                }),
            )
            .await?;
        row.map(|row| self.record(id.clone(), row)).transpose()
    }

    /// The record a live row holds.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] for data the codec cannot read, an instant or version out of range,
    /// or a stored principal [`check_principal`] refuses (which no store writes).
    pub(crate) fn record(&self, id: Id, row: Row) -> Result<Record> {
        record_of(&*self.codec, id, row)
    }

    pub(crate) async fn save(&self, record: &Record) -> Result<()> {
        if let Some(layout) = &self.layout {
            return layout.save(self, record).await;
        }
        const WHAT: &str = "save a session";
        let version = stored_version(record.version)?;
        let next = stored_version(record.next_version()?)?;
        let principal = stored_principal(record)?;
        self.timed(WHAT, async {
            let data = self.encode(WHAT, record).await?;
            let update = |sql| {
                statement::<DB>(sql)
                    .bind(data.as_slice())
                    .bind(clock::unix_millis(record.expires_at))
                    .bind(next)
                    .bind(principal)
                    .bind(record.id.as_str())
                    .bind(version)
            };
            // 0: saved, 1: a live record at another version, 2: no live record.
            let outcome = match &self.sql.save {
                Save::Reporting(sql) => {
                    let row =
                        retry(WHAT, DB::classify, || update(sql).fetch_one(&self.pool)).await?;
                    row.try_get::<i64, _>(0).map_err(|e| map_error(WHAT, e))?
                }
                Save::ThenCheck {
                    update: sql,
                    is_live,
                } => {
                    if DB::rows_affected(&self.execute(WHAT, || update(sql)).await?) > 0 {
                        0
                    } else {
                        let live = retry(WHAT, DB::classify, || {
                            statement::<DB>(is_live)
                                .bind(record.id.as_str())
                                .fetch_optional(&self.pool)
                        })
                        .await?;
                        if live.is_some() { 1 } else { 2 }
                    }
                }
            };
            match outcome {
                0 => Ok(()),
                1 => Err(Error::Conflict),
                _ => Err(Error::NotFound),
            }
        })
        .await
    }

    pub(crate) async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        if let Some(layout) = &self.layout {
            return layout.touch(self, id, expires_at).await;
        }
        const WHAT: &str = "touch a session";
        let done = self
            .timed(
                WHAT,
                self.execute(WHAT, || {
                    statement::<DB>(&self.sql.touch)
                        .bind(clock::unix_millis(expires_at))
                        .bind(id.as_str())
                }),
            )
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    pub(crate) async fn delete(&self, id: &Id) -> Result<()> {
        if let Some(layout) = &self.layout {
            return layout.delete(self, id).await;
        }
        const WHAT: &str = "delete a session";
        self.timed(
            WHAT,
            self.execute(WHAT, || statement::<DB>(&self.sql.delete).bind(id.as_str())),
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        if let Some(layout) = &self.layout {
            return layout.delete_expired_batch(self, limit).await;
        }
        const WHAT: &str = "delete expired sessions";
        let done = self
            .timed(
                WHAT,
                self.execute(WHAT, || {
                    statement::<DB>(&self.sql.delete_expired).bind(i64::from(limit))
                }),
            )
            .await?;
        Ok(DB::rows_affected(&done))
    }
}

/// `Store`, `ExpiredDeletion` and `Principals` for one database, forwarding to the shared operations.
macro_rules! store_traits {
    ($db:ty) => {
        #[async_trait::async_trait]
        impl session_core::Store for $crate::SqlStore<$db> {
            fn principals(&self) -> Option<&dyn session_core::Principals> {
                // Another program's layout (Express's) has no principal column.
                match self.layout() {
                    None => Some(self),
                    Some(_) => None,
                }
            }

            async fn create(&self, record: &session_core::Record) -> session_core::Result<()> {
                self.create(record).await
            }

            async fn load(
                &self,
                id: &session_core::Id,
            ) -> session_core::Result<Option<session_core::Record>> {
                self.load(id).await
            }

            async fn save(&self, record: &session_core::Record) -> session_core::Result<()> {
                self.save(record).await
            }

            async fn touch(
                &self,
                id: &session_core::Id,
                expires_at: time::OffsetDateTime,
            ) -> session_core::Result<bool> {
                self.touch(id, expires_at).await
            }

            async fn delete(&self, id: &session_core::Id) -> session_core::Result<()> {
                self.delete(id).await
            }
        }

        #[async_trait::async_trait]
        impl session_core::ExpiredDeletion for $crate::SqlStore<$db> {
            async fn delete_expired_batch(&self, limit: u32) -> session_core::Result<u64> {
                self.delete_expired_batch(limit).await
            }
        }

        #[async_trait::async_trait]
        impl session_core::Principals for $crate::SqlStore<$db> {
            async fn sessions_of(
                &self,
                principal: &str,
            ) -> session_core::Result<Vec<session_core::Record>> {
                self.sessions_of(principal).await
            }

            async fn revoke(
                &self,
                principal: &str,
                id: &session_core::Id,
            ) -> session_core::Result<bool> {
                self.revoke(principal, id).await
            }

            async fn revoke_all(
                &self,
                principal: &str,
                keep: Option<&session_core::Id>,
            ) -> session_core::Result<u64> {
                self.revoke_all(principal, keep).await
            }
        }
    };
}
pub(crate) use store_traits;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn contention(_: &dyn sqlx::error::DatabaseError) -> Class {
        Class::Contention
    }

    /// A database error for the retry loop; `classify` above decides what it means.
    #[derive(Debug)]
    struct Aborted;

    impl fmt::Display for Aborted {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("transaction aborted")
        }
    }

    impl std::error::Error for Aborted {}

    impl sqlx::error::DatabaseError for Aborted {
        fn message(&self) -> &str {
            "transaction aborted"
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn aborted() -> sqlx::Error {
        sqlx::Error::Database(Box::new(Aborted))
    }

    #[tokio::test]
    async fn contention_is_retried_then_reported() {
        let calls = AtomicU32::new(0);
        let outcome: Result<()> = retry("save a session", contention, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(aborted()) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
        assert!(
            matches!(
                outcome,
                Err(Error::Contention {
                    operation: "save a session",
                    ..
                })
            ),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn an_attempt_after_contention_can_succeed() {
        let calls = AtomicU32::new(0);
        let outcome = retry("touch a session", contention, || {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move { if call < 2 { Err(aborted()) } else { Ok(call) } }
        })
        .await;
        assert_eq!(outcome.expect("the third attempt succeeds"), 2);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let outcome: Result<()> = retry(
            "load a session",
            |_| Class::Other,
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(aborted()) }
            },
        )
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(outcome, Err(Error::Backend { .. })), "{outcome:?}");
        let decode: Result<()> = retry("load a session", contention, || async {
            Err(sqlx::Error::Decode("not a number".into()))
        })
        .await;
        assert!(matches!(decode, Err(Error::Decode(_))), "{decode:?}");
    }

    #[test]
    fn backoff_grows_and_stays_short() {
        assert!(backoff(1) >= Duration::from_millis(5) && backoff(1) < Duration::from_millis(10));
        assert!(backoff(3) >= Duration::from_millis(20));
        assert!(backoff(100) < Duration::from_millis(330));
    }
}
