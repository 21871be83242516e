#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README links every store; with only some databases enabled, the others do not exist.
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(rustdoc::broken_intra_doc_links)
)]

use std::time::Duration;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod dialect;
#[cfg(feature = "postgres")]
mod express;
#[cfg(all(
    feature = "fuzzing",
    any(feature = "postgres", feature = "mysql", feature = "sqlite")
))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod layout;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod principals;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod store;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod table;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub use dialect::Dialect;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub use store::SqlStore;

/// A session store on MySQL or MariaDB: [`SqlStore`] on sqlx's MySQL driver.
///
/// Build it with [`MySqlStore::connect`] or [`MySqlStore::new`], then call
/// [`SqlStore::migrate`] once at startup.
#[cfg(feature = "mysql")]
pub type MySqlStore = SqlStore<sqlx::MySql>;

/// A session store on PostgreSQL: [`SqlStore`] on sqlx's PostgreSQL driver.
///
/// Build it with [`PostgresStore::connect`] or [`PostgresStore::new`], then call
/// [`SqlStore::migrate`] once at startup.
#[cfg(feature = "postgres")]
pub type PostgresStore = SqlStore<sqlx::Postgres>;

/// A session store on SQLite: [`SqlStore`] on sqlx's SQLite driver.
///
/// Build it with [`SqliteStore::connect`] or [`SqliteStore::new`], then call
/// [`SqlStore::migrate`] once at startup.
#[cfg(feature = "sqlite")]
pub type SqliteStore = SqlStore<sqlx::Sqlite>;

/// How long a pool opened by a store's `connect` waits for a free or new connection: 5 seconds,
/// so that a pool used outside the store does not wait longer than the store's own
/// [`DEFAULT_TIMEOUT`](session_core::DEFAULT_TIMEOUT).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

// Stores are shared between request handlers and the cleanup task.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
const _: () = {
    const fn assert_send_sync<T: Send + Sync + Clone>() {}
    #[cfg(feature = "postgres")]
    assert_send_sync::<PostgresStore>();
    #[cfg(feature = "mysql")]
    assert_send_sync::<MySqlStore>();
    #[cfg(feature = "sqlite")]
    assert_send_sync::<SqliteStore>();
};
