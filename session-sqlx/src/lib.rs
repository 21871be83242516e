#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README links every store; with only some databases enabled, the others do not exist.
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(rustdoc::broken_intra_doc_links)
)]

use std::time::Duration;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod common;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// How long an operation may take, waiting for a pooled connection included, unless the store
/// is configured otherwise with `with_timeout`: 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a pool opened by a store's `connect` waits for a free or new connection before the
/// operation fails: 5 seconds.
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
