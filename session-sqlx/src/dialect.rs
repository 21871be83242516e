//! What differs between the databases: the SQL text, how a result or an error reads, and the
//! size limit. Everything else lives once, in [`crate::store`].

use std::sync::Arc;

use sqlx::Database;
use sqlx::error::DatabaseError;

use crate::table::TableName;

/// A database [`SqlStore`](crate::SqlStore) runs on: implemented for [`sqlx::Postgres`],
/// [`sqlx::MySql`] and [`sqlx::Sqlite`] (each behind its feature), and sealed.
///
/// It carries each database's SQL and error classification; the store's code is shared.
pub trait Dialect: Database + sealed::Sealed {}

pub(crate) mod sealed {
    use super::{Class, DatabaseError, SizeLimit, Statements, TableName};

    /// The items of [`Dialect`](super::Dialect), out of reach so that only this crate
    /// implements it.
    pub trait Sealed: sqlx::Database {
        /// The store's name in `Debug` output and messages, e.g. `PostgresStore`.
        const STORE: &'static str;

        /// The largest encoded session the database accepts.
        const SIZE_LIMIT: SizeLimit;

        /// The statements, for one table.
        fn statements(table: &TableName) -> Statements;

        /// What an error the database returned means to the store.
        fn classify(error: &dyn DatabaseError) -> Class;

        /// Rows affected (on MySQL: matched) by a statement.
        fn rows_affected(result: &Self::QueryResult) -> u64;

        /// Whether `create`'s statement wrote the record (`false`: a live record holds the id).
        fn created(result: &Self::QueryResult) -> bool;

        /// The columns the store needs, each with the type `migrate` accepts, lower case, as
        /// the `columns` statement reports it.
        const COLUMNS: &'static [(&'static str, &'static str)];

        /// The type of the nullable `principal` column, as `COLUMNS` gives types: `migrate`
        /// adds the column to a table made before it existed.
        const PRINCIPAL: &'static str;
    }
}

/// An error the database returned, as the store treats it.
// Each database uses some of the variants; with only some databases enabled, others go unused.
#[cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code)
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The database aborted the statement to resolve contention (deadlock, serialization
    /// failure, lock not available): nothing was written, and trying again may pass.
    Contention,
    /// `migrate`'s `CREATE INDEX` found an index of that name: another instance made it.
    IndexExists,
    /// `migrate`'s `ADD COLUMN` found a column of that name: another instance added it.
    ColumnExists,
    /// Anything else: a backend failure.
    Other,
}

/// How large an encoded session the database accepts.
// Each database uses some of the variants; with only some databases enabled, others go unused.
#[cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code)
)]
#[derive(Clone, Copy, Debug)]
pub enum SizeLimit {
    /// A fixed number of bytes.
    Fixed(usize),
    /// A server setting, read once per store with [`Statements::size_limit`], less this many
    /// bytes for the rest of the statement.
    Setting {
        /// Bytes of the message that are not session data (id, integers, headers).
        overhead: usize,
    },
}

/// How `save` tells a stale version from a missing record.
// Each database uses some of the variants; with only some databases enabled, others go unused.
#[cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code)
)]
pub(crate) enum Save {
    /// One statement that saves and returns 0 (saved), 1 (stale version) or 2 (no live
    /// record) as a BIGINT.
    Reporting(Arc<str>),
    /// An update (saved if it matched a row), then a query for a live row with that id (one
    /// row: stale version; none: no live record).
    ThenCheck {
        /// The conditional update.
        update: Arc<str>,
        /// Whether a live row has the id.
        is_live: Arc<str>,
    },
}

/// The statements of one table, built once per table name.
///
/// Every statement binds its parameters in the order given, so that the shared code binds them
/// without knowing the database; every expiry decision in them compares `expires_at` with the
/// database's own clock, in milliseconds since the Unix epoch.
pub struct Statements {
    /// Run in order in `migrate`'s transaction before the layout is checked (a lock, the
    /// `CREATE TABLE IF NOT EXISTS`).
    pub(crate) prepare: Vec<Arc<str>>,
    /// Reads the table's columns: rows of (name TEXT, type TEXT, in the primary key BIGINT
    /// 0/1, nullable BIGINT 0/1), no parameters; no rows if the table does not exist.
    pub(crate) columns: Arc<str>,
    /// Adds the nullable `principal` column to a table made before it existed: the rows
    /// already there keep no principal.
    pub(crate) add_principal: Arc<str>,
    /// Counts the indexes whose first column is `expires_at` (BIGINT); `None`: the index
    /// statement can run every time.
    pub(crate) has_expiry_index: Option<Arc<str>>,
    /// Creates the index on `expires_at`.
    pub(crate) create_index: Arc<str>,
    /// Counts the indexes whose first column is `principal` (BIGINT); `None`: the index
    /// statement can run every time.
    pub(crate) has_principal_index: Option<Arc<str>>,
    /// Creates the index on `principal`.
    pub(crate) create_principal_index: Arc<str>,
    /// Reads the size limit setting (BIGINT) for [`SizeLimit::Setting`].
    pub(crate) size_limit: Option<Arc<str>>,
    /// Inserts, or replaces an expired row: id, data, created_at, expires_at, version,
    /// principal (or NULL).
    pub(crate) create: Arc<str>,
    /// The live row's data, created_at, expires_at, version, principal (TEXT or NULL): id.
    pub(crate) load: Arc<str>,
    /// data, expires_at, next version, principal (or NULL), id, expected version.
    pub(crate) save: Save,
    /// Moves a live row's expiry: expires_at, id.
    pub(crate) touch: Arc<str>,
    /// id.
    pub(crate) delete: Arc<str>,
    /// Deletes at most `limit` expired rows: limit.
    pub(crate) delete_expired: Arc<str>,
    /// The live rows of a principal, through its index: id, then the columns of `load`:
    /// principal.
    pub(crate) sessions_of: Arc<str>,
    /// Deletes the row if it is live and of the principal: id, principal.
    pub(crate) revoke: Arc<str>,
    /// Deletes the principal's live rows but the one kept: principal, kept id (or NULL).
    pub(crate) revoke_all: Arc<str>,
}
