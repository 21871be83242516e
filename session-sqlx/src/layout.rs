//! Another layout of the sessions table than the store's own: a table that another program
//! shares, such as connect-pg-simple's for Express ([`crate::SqlStore::express_compatible`]).
//!
//! A store with a layout hands every operation to it; the store's options (pool, time limit,
//! table and schema names) stay the store's, and the layout reads them from the store it is
//! given.

use std::fmt;
use std::sync::Arc;

use session_core::{Id, Record, Result};
use time::OffsetDateTime;

use crate::SqlStore;
use crate::dialect::Dialect;
use crate::table::TableName;

/// The operations of a table layout, on the store that runs them.
#[async_trait::async_trait]
pub(crate) trait ForeignLayout<DB: Dialect>: Send + Sync + fmt::Debug {
    /// The same layout on the table `name` (after `with_table` or `with_schema`).
    fn for_table(&self, name: &TableName) -> Arc<dyn ForeignLayout<DB>>;

    /// Creates or checks the table, as [`SqlStore::migrate`].
    async fn migrate(&self, store: &SqlStore<DB>) -> Result<()>;

    /// [`session_core::Store::create`].
    async fn create(&self, store: &SqlStore<DB>, record: &Record) -> Result<()>;

    /// [`session_core::Store::load`].
    async fn load(&self, store: &SqlStore<DB>, id: &Id) -> Result<Option<Record>>;

    /// [`session_core::Store::save`].
    async fn save(&self, store: &SqlStore<DB>, record: &Record) -> Result<()>;

    /// [`session_core::Store::touch`].
    async fn touch(
        &self,
        store: &SqlStore<DB>,
        id: &Id,
        expires_at: OffsetDateTime,
    ) -> Result<bool>;

    /// [`session_core::Store::delete`].
    async fn delete(&self, store: &SqlStore<DB>, id: &Id) -> Result<()>;

    /// [`session_core::ExpiredDeletion::delete_expired_batch`].
    async fn delete_expired_batch(&self, store: &SqlStore<DB>, limit: u32) -> Result<u64>;
}
