//! PostgreSQL: its SQL, its errors, and building a store from a pool or a URL.

use std::sync::Arc;

use session_core::{Error, Result};
use sqlx::Postgres;
use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};

use crate::dialect::{Class, Dialect, Save, SizeLimit, Statements, sealed::Sealed};
use crate::store::store_traits;
use crate::table::TableName;
use crate::{PostgresStore, SqlStore};

/// The database's clock, in milliseconds since the Unix epoch: the start of the current
/// statement. `statement_timestamp()` is stable within a statement, so an index scan can
/// compare with it (a volatile `clock_timestamp()` could not).
const NOW: &str = "(floor(extract(epoch from statement_timestamp()) * 1000))::bigint";

/// Serialises concurrent `migrate` calls (several instances starting at once), whose
/// `CREATE TABLE IF NOT EXISTS` could otherwise collide in the catalog.
const MIGRATE_LOCK: i64 = 0x5e55_1071_5e55_1071;

/// The largest `bytea` value PostgreSQL stores: 1 GiB less one byte.
const MAX_BYTEA: usize = (1 << 30) - 1;

impl Dialect for Postgres {}

impl Sealed for Postgres {
    const STORE: &'static str = "PostgresStore";
    const SIZE_LIMIT: SizeLimit = SizeLimit::Fixed(MAX_BYTEA);
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("id", "text"),
        ("data", "bytea"),
        ("created_at", "bigint"),
        ("expires_at", "bigint"),
        ("version", "bigint"),
    ];
    const PRINCIPAL: &'static str = "text";

    fn statements(name: &TableName) -> Statements {
        let t = name.qualified('"');
        let index = name.expiry_index();
        let principal_index = name.principal_index();
        let sql = |s: String| -> Arc<str> { s.into() };
        Statements {
            prepare: vec![
                sql(format!("SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")),
                sql(format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     id TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, \
                     data BYTEA NOT NULL, \
                     created_at BIGINT NOT NULL, \
                     expires_at BIGINT NOT NULL, \
                     version BIGINT NOT NULL, \
                     principal TEXT COLLATE \"C\")"
                )),
            ],
            // `to_regclass` finds the table as the statements do (through `search_path`
            // when no schema is configured).
            columns: sql(format!(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                 CASE WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid \
                 AND i.indisprimary AND a.attnum = ANY (i.indkey)) THEN 1 ELSE 0 END::bigint, \
                 (NOT a.attnotnull)::int::bigint \
                 FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass('{t}') AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum"
            )),
            // Adding a nullable column without a default changes only the catalog: no row is
            // rewritten, however large the table.
            add_principal: sql(format!(
                "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS principal TEXT COLLATE \"C\""
            )),
            has_expiry_index: None,
            create_index: sql(format!(
                "CREATE INDEX IF NOT EXISTS \"{index}\" ON {t} (expires_at)"
            )),
            // Partial: sessions without a principal cost the index nothing. `principal = $1`
            // implies `principal IS NOT NULL` (the operator is strict), so the planner uses it.
            has_principal_index: None,
            create_principal_index: sql(format!(
                "CREATE INDEX IF NOT EXISTS \"{principal_index}\" ON {t} (principal) \
                 WHERE principal IS NOT NULL"
            )),
            size_limit: None,
            // The conflicting row is locked and its expiry checked in the same statement, so
            // of concurrent creates exactly one writes; over a live row the update is skipped
            // and no row is affected.
            create: sql(format!(
                "INSERT INTO {t} AS s (id, data, created_at, expires_at, version, principal) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, \
                 created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, \
                 version = EXCLUDED.version, principal = EXCLUDED.principal \
                 WHERE s.expires_at <= {NOW}"
            )),
            load: sql(format!(
                "SELECT data, created_at, expires_at, version, principal FROM {t} \
                 WHERE id = $1 AND expires_at > {NOW}"
            )),
            // One round trip whatever the outcome: when the update matches nothing, the same
            // statement tells a live row at another version from no live row. That check is a
            // locking read: it waits for a concurrent writer and looks at the row as it is
            // then, not as the statement's snapshot had it, so a row deleted meanwhile is
            // `NotFound`, not `Conflict`. (Evaluated only when nothing was saved.)
            save: Save::Reporting(sql(format!(
                "WITH saved AS (\
                 UPDATE {t} SET data = $1, expires_at = $2, version = $3, principal = $4 \
                 WHERE id = $5 AND version = $6 AND expires_at > {NOW} RETURNING 1) \
                 SELECT (CASE WHEN EXISTS (SELECT 1 FROM saved) THEN 0 \
                 WHEN EXISTS (SELECT 1 FROM {t} WHERE id = $5 AND expires_at > {NOW} \
                 FOR SHARE) THEN 1 ELSE 2 END)::bigint"
            ))),
            touch: sql(format!(
                "UPDATE {t} SET expires_at = $1 WHERE id = $2 AND expires_at > {NOW}"
            )),
            delete: sql(format!("DELETE FROM {t} WHERE id = $1")),
            // SKIP LOCKED: rows a session request holds are left for the next round, and two
            // cleaners never wait on each other. The outer condition re-checks each row.
            delete_expired: sql(format!(
                "DELETE FROM {t} WHERE id IN (\
                 SELECT id FROM {t} WHERE expires_at <= {NOW} \
                 ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
                 AND expires_at <= {NOW}"
            )),
            // Through the principal index; the database's clock keeps the live rows.
            sessions_of: sql(format!(
                "SELECT id, data, created_at, expires_at, version, principal FROM {t} \
                 WHERE principal = $1 AND expires_at > {NOW}"
            )),
            revoke: sql(format!(
                "DELETE FROM {t} WHERE id = $1 AND principal = $2 AND expires_at > {NOW}"
            )),
            // One statement: its snapshot holds every session whose create had committed when
            // it started, and a row a concurrent save is changing is re-checked once that save
            // commits (still this principal's and live, or left alone).
            revoke_all: sql(format!(
                "DELETE FROM {t} WHERE principal = $1 AND expires_at > {NOW} \
                 AND id IS DISTINCT FROM $2"
            )),
        }
    }

    fn classify(error: &dyn DatabaseError) -> Class {
        match error.code().as_deref() {
            // serialization_failure, deadlock_detected, lock_not_available.
            Some("40001" | "40P01" | "55P03") => Class::Contention,
            _ => Class::Other,
        }
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn created(result: &PgQueryResult) -> bool {
        result.rows_affected() > 0
    }
}

store_traits!(Postgres);

impl SqlStore<Postgres> {
    /// A store on `pool`, keeping sessions in the table `sessions` of the connection's search
    /// path, encoded with MessagePack, each operation bounded by
    /// [`DEFAULT_TIMEOUT`](session_core::DEFAULT_TIMEOUT).
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_pool(pool)
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
    pub async fn connect(url: &str) -> Result<PostgresStore> {
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
}
