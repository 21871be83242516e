//! connect-pg-simple's layout: the table `"session"(sid, sess json, expire timestamp)` holding
//! express-session's JSON, with the Rust side's version inside that JSON (see
//! [`session_core::express`]). See the crate documentation's "Express-compatible layout".

use std::fmt;
use std::sync::Arc;

use session_core::clock::{from_unix_millis, unix_millis};
use session_core::express::{self, Decoded};
use session_core::{Error, Id, Record, Result, check_version, timed};
use sqlx::error::DatabaseError;
use sqlx::{AssertSqlSafe, Postgres};
use time::OffsetDateTime;

use crate::dialect::sealed::Sealed as _;
use crate::layout::ForeignLayout;
use crate::store::{map_error, retry};
use crate::table::TableName;
use crate::{PostgresStore, SqlStore};

const MIGRATE: &str = "migrate the sessions table";
const CREATE: &str = "create a session";
const LOAD: &str = "load a session";
const SAVE: &str = "save a session";
const TOUCH: &str = "touch a session";
const DELETE: &str = "delete a session";
const DELETE_EXPIRED: &str = "delete expired sessions";

/// connect-pg-simple's default table.
const DEFAULT_TABLE: &str = "session";

/// The time zone of the `expire` column unless [`SqlStore::with_time_zone`] says otherwise.
const DEFAULT_TIME_ZONE: &str = "UTC";

/// The longest time zone name accepted (the longest in the IANA database has 32 characters).
const MAX_TIME_ZONE_LEN: usize = 64;

/// The largest `json` value PostgreSQL stores: 1 GiB less one byte.
const MAX_JSON: usize = (1 << 30) - 1;

/// Serialises concurrent `migrate` calls of this layout, as the store's own `migrate` does.
const MIGRATE_LOCK: i64 = 0x5e55_e4b2_5e55_e4b2;

/// Versions from [`express::foreign_version`] have 60 bits; a version at or above this has no
/// digest form, so no text Express wrote can be at that version.
const DIGEST_VERSIONS: u64 = 1 << 60;

// What the save statement reports.
const SAVED: i64 = 0;
const CONFLICT: i64 = 1;
const NOT_FOUND: i64 = 2;
const CORRUPT: i64 = 3;
/// The statement could not decide in SQL: the Rust side reads the text under a row lock.
const IN_RUST: i64 = 4;

/// The database's clock as an instant, in milliseconds since the Unix epoch (for the
/// `created_at` of a session Express wrote last).
const NOW_MILLIS: &str = "floor(extract(epoch from statement_timestamp())::numeric * 1000)::bigint";

/// Whether the stored text has an escape that PostgreSQL's JSON operators refuse to read
/// (`\u0000`, and surrogates, which they check): such a text is compared in Rust instead.
/// (An escaped backslash followed by `u0000` matches too, which only costs the slower path.)
const UNREADABLE_IN_SQL: &str = r"sess::text ~ E'\\\\u(0000|[dD][89abcdefABCDEF])'";

/// Whether the version of the stored text, whose `cookie` is an object, is the expected one:
/// its `rsVersion` (`$4`, decimal), or when it has none (Express wrote it last), the first 15
/// hex digits of its MD5 (`$5`).
const VERSION_MATCHES: &str = "CASE WHEN sess -> 'cookie' -> 'rsVersion' IS NULL \
     THEN left(md5(sess::text), 15) = $5 \
     ELSE json_typeof(sess -> 'cookie' -> 'rsVersion') = 'string' \
     AND sess -> 'cookie' ->> 'rsVersion' = $4 END";

/// Whether the stored `rsCreated`, if any, is the record's `created_at` (`$6`, decimal
/// milliseconds): a save keeps the stored one.
const CREATED_MATCHES: &str =
    "(sess -> 'cookie' -> 'rsCreated' IS NULL OR sess -> 'cookie' ->> 'rsCreated' = $6)";

/// connect-pg-simple's layout on one table, with `expire` in one time zone.
pub(crate) struct Express {
    /// The table, as messages name it.
    label: String,
    zone: String,
    sql: Sql,
}

impl fmt::Debug for Express {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpressLayout")
            .field("table", &self.label)
            .field("time_zone", &self.zone)
            .finish_non_exhaustive()
    }
}

/// The statements of one table and time zone. Every expiry decision compares `expire` with the
/// database's clock, `statement_timestamp()` seen in the time zone.
struct Sql {
    /// Fails with 22023 if PostgreSQL does not know the time zone.
    check_zone: Arc<str>,
    lock: Arc<str>,
    create_table: Arc<str>,
    /// (name, type, in the primary key 0/1) of each column; no rows if there is no table.
    columns: Arc<str>,
    /// How many indexes start with `expire`.
    has_expiry_index: Arc<str>,
    create_index: Arc<str>,
    /// sid, text, expires (ms).
    create: Arc<str>,
    /// sid -> text, its MD5, expire (ms), the database's now (ms).
    load: Arc<str>,
    /// text, expires (ms), sid, expected version, expected digest, created (ms) -> outcome.
    save: Arc<str>,
    /// sid -> text, its MD5; locks the live row.
    lock_row: Arc<str>,
    /// text, expires (ms), sid.
    write_row: Arc<str>,
    /// expires (ms), sid.
    touch: Arc<str>,
    /// sid.
    delete: Arc<str>,
    /// limit.
    delete_expired: Arc<str>,
}

impl Express {
    fn new(name: &TableName, zone: String) -> Self {
        let label = match &name.schema {
            Some(schema) => format!("`{schema}.{}`", name.table),
            None => format!("`{}`", name.table),
        };
        let sql = Sql::new(name, &zone);
        Self { label, zone, sql }
    }
}

impl Sql {
    fn new(name: &TableName, zone: &str) -> Self {
        let t = name.qualified('"');
        // connect-pg-simple's own name for its table's index, which it keeps for other tables
        // too; those get one of their own so that two tables of a schema can both have one.
        let index = if name.table == DEFAULT_TABLE {
            "IDX_session_expire".to_owned()
        } else {
            format!("IDX_{}_expire", name.table)
        };
        let now = format!("(statement_timestamp() AT TIME ZONE '{zone}')");
        // `expire` for an instant in Unix milliseconds (exact to the microsecond), and back.
        let expire_of = |param: u8| {
            format!("(to_timestamp(${param}::bigint::float8 / 1000) AT TIME ZONE '{zone}')")
        };
        let expire_millis = format!(
            "floor(extract(epoch from (expire AT TIME ZONE '{zone}'))::numeric * 1000)::bigint"
        );
        let sql = |s: String| -> Arc<str> { s.into() };
        Self {
            check_zone: sql(format!(
                "SELECT (statement_timestamp() AT TIME ZONE '{zone}')::text"
            )),
            lock: sql(format!("SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")),
            // connect-pg-simple's `table.sql`; its primary key is named `session_pkey` there,
            // which is PostgreSQL's own name for the key of `session`.
            create_table: sql(format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 sid varchar NOT NULL COLLATE \"default\", \
                 sess json NOT NULL, \
                 expire timestamp(6) NOT NULL, \
                 PRIMARY KEY (sid))"
            )),
            columns: sql(format!(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                 CASE WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid \
                 AND i.indisprimary AND a.attnum = ANY (i.indkey)) THEN 1 ELSE 0 END::bigint \
                 FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass('{t}') AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum"
            )),
            has_expiry_index: sql(format!(
                "SELECT count(*) FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                 WHERE i.indrelid = to_regclass('{t}') AND a.attname = 'expire'"
            )),
            create_index: sql(format!(
                "CREATE INDEX IF NOT EXISTS \"{index}\" ON {t} (expire)"
            )),
            // As in the store's own layout: the conflicting row is locked and its expiry
            // checked in the same statement, so a live row is left alone (no row affected).
            create: sql(format!(
                "INSERT INTO {t} AS s (sid, sess, expire) VALUES ($1, $2::json, {}) \
                 ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expire = EXCLUDED.expire \
                 WHERE s.expire <= {now}",
                expire_of(3)
            )),
            load: sql(format!(
                "SELECT sess::text, md5(sess::text), {expire_millis}, {NOW_MILLIS} FROM {t} \
                 WHERE sid = $1 AND expire > {now}"
            )),
            // One round trip in the common case. The update's condition is the compare of
            // compare-and-set: PostgreSQL evaluates it again on the row as a concurrent writer
            // left it, so it reads the version of what is stored when it writes. When nothing
            // was saved, a locking read of the live row says why; `CASE` keeps the JSON
            // operators away from texts they cannot read, and hands those, and a `created_at`
            // to keep, to the Rust side.
            save: sql(format!(
                "WITH saved AS (\
                 UPDATE {t} SET sess = $1::json, expire = {expire} \
                 WHERE sid = $3 AND expire > {now} AND CASE \
                 WHEN {UNREADABLE_IN_SQL} THEN false \
                 WHEN json_typeof(sess -> 'cookie') IS DISTINCT FROM 'object' THEN false \
                 ELSE ({VERSION_MATCHES}) AND {CREATED_MATCHES} END \
                 RETURNING 1) \
                 SELECT (CASE WHEN EXISTS (SELECT 1 FROM saved) THEN {SAVED} \
                 ELSE coalesce((SELECT CASE \
                 WHEN {UNREADABLE_IN_SQL} THEN {IN_RUST} \
                 WHEN json_typeof(sess -> 'cookie') IS DISTINCT FROM 'object' THEN {CORRUPT} \
                 WHEN sess -> 'cookie' -> 'rsVersion' IS NOT NULL \
                 AND json_typeof(sess -> 'cookie' -> 'rsVersion') <> 'string' THEN {CORRUPT} \
                 WHEN ({VERSION_MATCHES}) THEN {IN_RUST} \
                 ELSE {CONFLICT} END \
                 FROM {t} WHERE sid = $3 AND expire > {now} FOR SHARE), {NOT_FOUND}) END)::bigint",
                expire = expire_of(2)
            )),
            lock_row: sql(format!(
                "SELECT sess::text, md5(sess::text) FROM {t} \
                 WHERE sid = $1 AND expire > {now} FOR UPDATE"
            )),
            write_row: sql(format!(
                "UPDATE {t} SET sess = $1::json, expire = {} WHERE sid = $3",
                expire_of(2)
            )),
            // connect-pg-simple's touch: the expiry moves, the text stays byte for byte, so
            // neither side's version changes.
            touch: sql(format!(
                "UPDATE {t} SET expire = {} WHERE sid = $2 AND expire > {now}",
                expire_of(1)
            )),
            delete: sql(format!("DELETE FROM {t} WHERE sid = $1")),
            delete_expired: sql(format!(
                "DELETE FROM {t} WHERE sid IN (\
                 SELECT sid FROM {t} WHERE expire <= {now} \
                 ORDER BY expire LIMIT $1 FOR UPDATE SKIP LOCKED) \
                 AND expire <= {now}"
            )),
        }
    }
}

fn q(sql: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    AssertSqlSafe(Arc::clone(sql))
}

/// Checks a time zone name before it goes into the statements: 1 to [`MAX_TIME_ZONE_LEN`]
/// ASCII letters, digits and `/_+-:.`, nothing that could end an SQL string.
fn check_zone(zone: &str) -> Result<&str> {
    let valid = !zone.is_empty()
        && zone.len() <= MAX_TIME_ZONE_LEN
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-:.".contains(c));
    if valid {
        Ok(zone)
    } else {
        Err(Error::invalid_config(format!(
            "time zone {zone:?} is not a time zone name: use 1 to {MAX_TIME_ZONE_LEN} ASCII \
             letters, digits and `/_+-:.`, e.g. `UTC` or `Europe/Berlin`"
        )))
    }
}

/// A column of connect-pg-simple's table: its name, its type, and which types to accept.
type Expected = (&'static str, &'static str, fn(&str) -> bool);

/// What is wrong with a table, by its columns (name, type, in the primary key), compared with
/// connect-pg-simple's: every problem, or nothing.
fn problems(columns: &[(String, String, i64)]) -> Vec<String> {
    if columns.is_empty() {
        return vec!["the table does not exist".to_owned()];
    }
    let expected: [Expected; 3] = [
        ("sid", "character varying", |kind| {
            kind == "character varying" || kind.starts_with("character varying(") || kind == "text"
        }),
        ("sess", "json", |kind| kind == "json"),
        ("expire", "timestamp(6) without time zone", |kind| {
            kind == "timestamp(6) without time zone" || kind == "timestamp without time zone"
        }),
    ];
    let mut problems = Vec::new();
    for (name, kind, accepts) in expected {
        match columns.iter().find(|(found, ..)| found == name) {
            None => problems.push(format!("column `{name}` is missing")),
            Some((_, found, _)) if !accepts(&found.trim().to_ascii_lowercase()) => {
                problems.push(format!("column `{name}` is `{found}`, expected `{kind}`"));
            }
            Some(_) => {}
        }
    }
    let key: Vec<&str> = columns
        .iter()
        .filter(|(.., key)| *key != 0)
        .map(|(name, ..)| name.as_str())
        .collect();
    if key != ["sid"] && columns.iter().any(|(name, ..)| name == "sid") {
        problems.push(if key.is_empty() {
            "there is no primary key, expected `sid`".to_owned()
        } else {
            format!(
                "the primary key is ({}), expected `sid` alone",
                key.join(", ")
            )
        });
    }
    problems
}

/// express-session's JSON for `record` at `version`, as text within PostgreSQL's limit.
fn text(record: &Record, version: u64, created_at: OffsetDateTime) -> Result<String> {
    let bytes = express::encode(&record.data, version, created_at, record.expires_at)?;
    if bytes.len() > MAX_JSON {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: MAX_JSON,
        });
    }
    String::from_utf8(bytes).map_err(Error::encode)
}

/// The version of a stored text: the Rust side's `rsVersion` if it wrote the text last, else
/// the first 60 bits of the text's MD5 (`digest`, as PostgreSQL's `md5` writes it).
fn version_of(decoded: &Decoded, digest: &str) -> Result<u64> {
    match decoded.version {
        Some(version) => Ok(version),
        None => express::foreign_version(digest),
    }
}

/// The text a save of `record` writes over `stored` (whose MD5 is `digest`): at version
/// `next`, keeping the stored `created_at`.
///
/// # Errors
///
/// [`Error::Conflict`] if `stored` is not at the record's version; [`Error::Decode`] if it is
/// not express-session's JSON.
fn rewrite(record: &Record, next: u64, stored: &str, digest: &str) -> Result<String> {
    let decoded = express::decode(stored.as_bytes())?;
    if version_of(&decoded, digest)? != record.version {
        return Err(Error::Conflict);
    }
    text(
        record,
        next,
        decoded.created_at.unwrap_or(record.created_at),
    )
}

/// The record a live row holds: the stored text `sess`, its MD5 `digest`, `expire` and the
/// database's `now` (both Unix milliseconds).
///
/// # Errors
///
/// [`Error::Decode`] if `stored` is not express-session's JSON, or an instant is out of range.
pub(crate) fn record_of(
    id: &Id,
    stored: &str,
    digest: &str,
    expires: i64,
    now: i64,
) -> Result<Record> {
    let decoded = express::decode(stored.as_bytes())?;
    let version = version_of(&decoded, digest)?;
    // Express stores no `created_at`: for a session it wrote last, the database's clock stands
    // in, so an absolute timeout counts from the Rust side's next write.
    let created_at = match decoded.created_at {
        Some(created_at) => created_at,
        None => from_unix_millis(now)?,
    };
    Ok(Record::from_parts(
        id.clone(),
        decoded.data,
        created_at,
        from_unix_millis(expires)?,
        version,
    ))
}

fn not_express() -> Error {
    Error::decode("the stored `sess` is not express-session's JSON with a `cookie` object")
}

/// A data exception (SQLSTATE class 22), such as a JSON text the operators cannot read.
fn is_data_exception(error: &dyn DatabaseError) -> bool {
    error.code().is_some_and(|code| code.starts_with("22"))
}

impl SqlStore<Postgres> {
    /// Switches to connect-pg-simple's layout, so that an Express app using `express-session`
    /// with `connect-pg-simple` and this store share their sessions: the table
    /// `"session"(sid varchar PRIMARY KEY, sess json NOT NULL, expire timestamp(6) NOT NULL)`
    /// with the index `"IDX_session_expire"`, in the configured schema if any. Call
    /// [`with_table`](Self::with_table) and [`with_schema`](Self::with_schema) after it for
    /// connect-pg-simple's `tableName` and `schemaName`, and
    /// [`with_time_zone`](Self::with_time_zone) if the Express app's connections do not use
    /// UTC.
    ///
    /// The stored form is fixed by express-session, so the [codec](Self::with_codec) is not
    /// used, and a record's principal is not stored. See the crate docs, "Express-compatible
    /// layout", for the versions the Rust side keeps inside that JSON and what is not shared.
    #[must_use]
    pub fn express_compatible(self) -> Self {
        self.with_layout(DEFAULT_TABLE, |name| {
            Arc::new(Express::new(name, DEFAULT_TIME_ZONE.to_owned()))
        })
    }

    /// Reads and writes connect-pg-simple's `expire` column, a `timestamp` without time zone,
    /// as wall-clock time in `zone` (default `UTC`): the `TimeZone` setting of the Express
    /// app's connections, which is the server's default unless the app sets one. A zone
    /// without daylight saving time (such as UTC) is best: in the hour a clock repeats,
    /// `expire` is ambiguous, for connect-pg-simple too.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] unless the store is
    /// [Express-compatible](Self::express_compatible), or if `zone` is not 1 to 64 ASCII
    /// letters, digits and `/_+-:.`. [`migrate`](Self::migrate) fails with
    /// [`Error::InvalidConfig`] if PostgreSQL does not know the zone.
    pub fn with_time_zone(self, zone: &str) -> Result<Self> {
        let zone = check_zone(zone)?;
        if !self.is_express_compatible() {
            return Err(Error::invalid_config(
                "with_time_zone sets the time zone of connect-pg-simple's `expire` column: call \
                 express_compatible() first",
            ));
        }
        let table = self.table().to_owned();
        Ok(self.with_layout(&table, |name| Arc::new(Express::new(name, zone.to_owned()))))
    }

    /// Whether the store uses connect-pg-simple's layout ([`Self::express_compatible`]).
    #[must_use]
    pub fn is_express_compatible(&self) -> bool {
        self.layout().is_some()
    }
}

#[async_trait::async_trait]
impl ForeignLayout<Postgres> for Express {
    fn for_table(&self, name: &TableName) -> Arc<dyn ForeignLayout<Postgres>> {
        Arc::new(Self::new(name, self.zone.clone()))
    }

    async fn migrate(&self, store: &PostgresStore) -> Result<()> {
        let fail = |e| map_error(MIGRATE, e);
        timed(MIGRATE, store.timeout(), async {
            let mut tx = store.pool().begin().await.map_err(fail)?;
            match sqlx::query(q(&self.sql.check_zone)).execute(&mut *tx).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("22023") => {
                    return Err(Error::invalid_config(format!(
                        "PostgreSQL does not know the time zone {:?} given to with_time_zone",
                        self.zone
                    )));
                }
                Err(e) => return Err(fail(e)),
            }
            for sql in [&self.sql.lock, &self.sql.create_table] {
                sqlx::query(q(sql)).execute(&mut *tx).await.map_err(fail)?;
            }
            let columns: Vec<(String, String, i64)> = sqlx::query_as(q(&self.sql.columns))
                .fetch_all(&mut *tx)
                .await
                .map_err(fail)?;
            let problems = problems(&columns);
            if !problems.is_empty() {
                return Err(Error::invalid_config(format!(
                    "the table {} does not have connect-pg-simple's layout, so it is left as it \
                     is: {}. Give the store a table of its own (`with_table`), or change this \
                     one to the layout in the crate documentation",
                    self.label,
                    problems.join("; ")
                )));
            }
            let indexes: i64 = sqlx::query_scalar(q(&self.sql.has_expiry_index))
                .fetch_one(&mut *tx)
                .await
                .map_err(fail)?;
            if indexes == 0 {
                sqlx::query(q(&self.sql.create_index))
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
            }
            tx.commit().await.map_err(fail)
        })
        .await?
    }

    async fn create(&self, store: &PostgresStore, record: &Record) -> Result<()> {
        check_version(record.version)?;
        let text = text(record, record.version, record.created_at)?;
        let done = timed(
            CREATE,
            store.timeout(),
            retry(CREATE, Postgres::classify, || {
                sqlx::query(q(&self.sql.create))
                    .bind(record.id.as_str())
                    .bind(text.as_str())
                    .bind(unix_millis(record.expires_at))
                    .execute(store.pool())
            }),
        )
        .await??;
        if done.rows_affected() > 0 {
            Ok(())
        } else {
            Err(Error::AlreadyExists)
        }
    }

    async fn load(&self, store: &PostgresStore, id: &Id) -> Result<Option<Record>> {
        let row = timed(
            LOAD,
            store.timeout(),
            retry(LOAD, Postgres::classify, || {
                sqlx::query_as::<Postgres, (String, String, i64, i64)>(q(&self.sql.load))
                    .bind(id.as_str())
                    .fetch_optional(store.pool())
            }),
        )
        .await??;
        let Some((stored, digest, expires, now)) = row else {
            return Ok(None);
        };
        record_of(id, &stored, &digest, expires, now).map(Some)
    }

    async fn save(&self, store: &PostgresStore, record: &Record) -> Result<()> {
        let next = record.next_version()?;
        let text = text(record, next, record.created_at)?;
        let expected = record.version.to_string();
        let digest = if record.version < DIGEST_VERSIONS {
            format!("{:015x}", record.version)
        } else {
            String::new()
        };
        let created = unix_millis(record.created_at).to_string();
        let expires = unix_millis(record.expires_at);
        timed(SAVE, store.timeout(), async {
            let outcome = retry(SAVE, Postgres::classify, || async {
                let outcome = sqlx::query_scalar::<Postgres, i64>(q(&self.sql.save))
                    .bind(text.as_str())
                    .bind(expires)
                    .bind(record.id.as_str())
                    .bind(expected.as_str())
                    .bind(digest.as_str())
                    .bind(created.as_str())
                    .fetch_one(store.pool())
                    .await;
                match outcome {
                    // A text the JSON operators refuse all the same (e.g. escapes a database
                    // in another encoding than UTF-8 cannot hold): the Rust side reads it.
                    Err(sqlx::Error::Database(e)) if is_data_exception(&*e) => Ok(IN_RUST),
                    other => other,
                }
            })
            .await?;
            match outcome {
                SAVED => Ok(()),
                CONFLICT => Err(Error::Conflict),
                NOT_FOUND => Err(Error::NotFound),
                CORRUPT => Err(not_express()),
                IN_RUST => self.save_in_rust(store, record, next).await,
                other => Err(Error::backend(
                    SAVE,
                    format!("the save statement answered {other}"),
                )),
            }
        })
        .await?
    }

    async fn touch(
        &self,
        store: &PostgresStore,
        id: &Id,
        expires_at: OffsetDateTime,
    ) -> Result<bool> {
        let done = timed(
            TOUCH,
            store.timeout(),
            retry(TOUCH, Postgres::classify, || {
                sqlx::query(q(&self.sql.touch))
                    .bind(unix_millis(expires_at))
                    .bind(id.as_str())
                    .execute(store.pool())
            }),
        )
        .await??;
        Ok(done.rows_affected() > 0)
    }

    async fn delete(&self, store: &PostgresStore, id: &Id) -> Result<()> {
        timed(
            DELETE,
            store.timeout(),
            retry(DELETE, Postgres::classify, || {
                sqlx::query(q(&self.sql.delete))
                    .bind(id.as_str())
                    .execute(store.pool())
            }),
        )
        .await??;
        Ok(())
    }

    async fn delete_expired_batch(&self, store: &PostgresStore, limit: u32) -> Result<u64> {
        let done = timed(
            DELETE_EXPIRED,
            store.timeout(),
            retry(DELETE_EXPIRED, Postgres::classify, || {
                sqlx::query(q(&self.sql.delete_expired))
                    .bind(i64::from(limit))
                    .execute(store.pool())
            }),
        )
        .await??;
        Ok(done.rows_affected())
    }
}

impl Express {
    /// `save` when the statement could not decide: in a transaction, lock the live row, read
    /// its text in Rust, and write over it if it is at the record's version.
    async fn save_in_rust(&self, store: &PostgresStore, record: &Record, next: u64) -> Result<()> {
        let expires = unix_millis(record.expires_at);
        retry(SAVE, Postgres::classify, || async {
            let mut tx = store.pool().begin().await?;
            let row: Option<(String, String)> = sqlx::query_as(q(&self.sql.lock_row))
                .bind(record.id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let Some((stored, digest)) = row else {
                return Ok(Err(Error::NotFound));
            };
            let text = match rewrite(record, next, &stored, &digest) {
                Ok(text) => text,
                // Dropping the transaction rolls it back.
                Err(e) => return Ok(Err(e)),
            };
            sqlx::query(q(&self.sql.write_row))
                .bind(text.as_str())
                .bind(expires)
                .bind(record.id.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use session_core::now;
    use time::Duration;

    use super::*;

    const EXPRESS_TEXT: &str = r#"{"cookie":{"originalMaxAge":3600000,"expires":"2026-11-27T22:30:21.093Z","httpOnly":true,"path":"/"},"username":"JohnDoe"}"#;

    fn column(name: &str, kind: &str, key: bool) -> (String, String, i64) {
        (name.to_owned(), kind.to_owned(), i64::from(key))
    }

    fn connect_pg_simple_table() -> Vec<(String, String, i64)> {
        vec![
            column("sid", "character varying", true),
            column("sess", "json", false),
            column("expire", "timestamp(6) without time zone", false),
        ]
    }

    #[test]
    fn connect_pg_simple_table_passes() {
        assert_eq!(problems(&connect_pg_simple_table()), Vec::<String>::new());
        let mut variant = connect_pg_simple_table();
        variant[0].1 = "character varying(255)".to_owned();
        variant[2].1 = "timestamp without time zone".to_owned();
        variant.push(column("user_id", "bigint", false));
        assert_eq!(problems(&variant), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_named() {
        let native = vec![
            column("id", "text", true),
            column("data", "bytea", false),
            column("expires_at", "bigint", false),
        ];
        assert_eq!(
            problems(&native),
            [
                "column `sid` is missing",
                "column `sess` is missing",
                "column `expire` is missing"
            ]
        );
        let mut wrong = connect_pg_simple_table();
        wrong[1].1 = "jsonb".to_owned();
        wrong[2].1 = "timestamp with time zone".to_owned();
        wrong[0].2 = 0;
        assert_eq!(
            problems(&wrong),
            [
                "column `sess` is `jsonb`, expected `json`",
                "column `expire` is `timestamp with time zone`, expected `timestamp(6) without time zone`",
                "there is no primary key, expected `sid`",
            ]
        );
        let mut composite = connect_pg_simple_table();
        composite[2].2 = 1;
        assert_eq!(
            problems(&composite),
            ["the primary key is (sid, expire), expected `sid` alone"]
        );
        assert_eq!(problems(&[]), ["the table does not exist"]);
    }

    #[test]
    fn time_zones_are_plain_names() {
        for good in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+3",
            "UTC-03:30",
        ] {
            assert_eq!(check_zone(good).ok(), Some(good));
        }
        for bad in [
            "",
            "UTC'; DROP TABLE session; --",
            "Europe\\Berlin",
            "a b",
            "é",
            &"A".repeat(65),
        ] {
            assert!(
                matches!(check_zone(bad), Err(Error::InvalidConfig(_))),
                "{bad:?} must be refused"
            );
        }
    }

    fn record_at(version: u64) -> Record {
        let mut record = Record::new(Id::random(), Duration::hours(1));
        record.version = version;
        record.data.insert("visits", &1).expect("encode");
        record
    }

    #[test]
    fn rewrite_over_express_text_needs_its_digest_version() {
        let digest = "0123456789abcdef0123456789abcdef";
        let version = express::foreign_version(digest).expect("hex");
        let text = rewrite(&record_at(version), version + 1, EXPRESS_TEXT, digest)
            .expect("the record read this text");
        let decoded = express::decode(text.as_bytes()).expect("JSON");
        assert_eq!(decoded.version, Some(version + 1));
        assert!(matches!(
            rewrite(&record_at(version - 1), version, EXPRESS_TEXT, digest),
            Err(Error::Conflict)
        ));
    }

    #[test]
    fn rewrite_keeps_the_stored_created_at() {
        let mut stored = record_at(7);
        stored.created_at = now() - Duration::days(2);
        let stored_text = text(&stored, 7, stored.created_at).expect("encode");
        let mut saving = record_at(7);
        saving.id = stored.id.clone();
        let written = rewrite(&saving, 8, &stored_text, "").expect("same version");
        let decoded = express::decode(written.as_bytes()).expect("JSON");
        assert_eq!(decoded.version, Some(8));
        assert_eq!(decoded.created_at, Some(stored.created_at));
        assert!(matches!(
            rewrite(&record_at(6), 7, &stored_text, ""),
            Err(Error::Conflict)
        ));
    }

    #[test]
    fn rewrite_refuses_what_express_cannot_read() {
        for stored in [r#"{"username":"x"}"#, "[]", r#"{"cookie":{"rsVersion":7}}"#] {
            assert!(
                matches!(
                    rewrite(&record_at(7), 8, stored, "0123456789abcdef"),
                    Err(Error::Decode(_))
                ),
                "{stored}"
            );
        }
    }

    #[test]
    fn statements_use_the_time_zone_and_connect_pg_simple_names() {
        let name = TableName::default()
            .with_table(DEFAULT_TABLE)
            .expect("valid name");
        let express = Express::new(&name, "Europe/Berlin".to_owned());
        assert!(
            express
                .sql
                .create_index
                .contains("\"IDX_session_expire\" ON \"session\"")
        );
        assert!(express.sql.load.contains("AT TIME ZONE 'Europe/Berlin'"));
        let other = TableName::default()
            .with_schema("auth")
            .and_then(|n| n.with_table("web_session"))
            .expect("valid names");
        let express = Express::new(&other, DEFAULT_TIME_ZONE.to_owned());
        assert!(
            express
                .sql
                .create_index
                .contains("\"IDX_web_session_expire\" ON \"auth\".\"web_session\"")
        );
        assert_eq!(express.label, "`auth.web_session`");
    }
}
