//! The `Store` trait: the contract every session backend implements.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{Id, Record, Result};

/// A place to keep sessions: memory, Redis, an SQL database, MongoDB, or your own.
///
/// The trait is object safe and used as `Arc<dyn Store>` by the middleware; it is implemented
/// for `Arc<T>` and `Box<T>` of any store.
///
/// # Contract
///
/// Every implementation must follow these rules; the `session-conformance` crate checks each of
/// them against a real backend, one named test per rule.
///
/// - **`create`** inserts only. If a *live* record with the same id exists it fails with
///   [`Error::AlreadyExists`](crate::Error::AlreadyExists) and leaves that record untouched.
///   It is atomic: of any number of concurrent `create`s of one id, exactly one succeeds. A
///   record with the same id that has *expired* (whether or not the backend has removed it yet)
///   does not block `create`. The stored version is the record's version.
///   *Suite: `create_then_load_round_trips`, `create_existing_live_id_fails`,
///   `concurrent_creates_exactly_one_wins`, `create_over_expired_record_succeeds`,
///   `create_after_delete_succeeds`.*
/// - **`load`** returns the live record (id, data, `created_at`, `expires_at`, `version` as
///   stored) or `None`. It never returns an expired record, whether or not the backend's own
///   cleanup has run yet. An unknown id is `Ok(None)`, not an error.
///   *Suite: `load_unknown_id_is_none`, `load_expired_record_is_none`, `empty_data_round_trips`,
///   `large_record_round_trips`, `unicode_and_binary_values_round_trip`,
///   `thousand_records_coexist`.*
/// - **`save`** replaces the data and `expires_at` of an existing live record **only if its stored
///   version equals `record.version`**; the stored version becomes `record.version + 1`
///   (`created_at` is kept as stored). If the versions differ it fails with
///   [`Error::Conflict`](crate::Error::Conflict) and changes nothing; if there is no live record it
///   fails with [`Error::NotFound`](crate::Error::NotFound). A write is never dropped silently.
///   *Suite: `save_current_version_bumps_version`, `save_stale_version_conflicts`,
///   `save_after_delete_is_not_found`, `save_unknown_id_is_not_found`,
///   `save_over_expired_record_is_not_found`, `concurrent_saves_of_one_version_exactly_one_wins`.*
/// - **`touch`** moves the `expires_at` of a live record without rewriting its data and without
///   changing its version, and returns whether the record existed. Touching to an instant in the
///   past makes the record unloadable.
///   *Suite: `touch_moves_expiry_only`, `touch_unknown_id_reports_absence`,
///   `touch_into_past_makes_record_unloadable`.*
/// - **`delete`** removes the record; deleting an unknown id succeeds.
///   *Suite: `delete_removes`, `delete_unknown_id_is_ok`.*
/// - **Instants** are preserved to at least the millisecond (see [`crate::now`]).
/// - **Expiry**: a record is expired at and after its `expires_at`. Backends with native expiry
///   (Redis TTLs, MongoDB TTL indexes, moka) use it; the others also implement
///   [`ExpiredDeletion`] so a cleanup task can remove expired rows.
///   *Suite: `expires_in_real_time`.*
/// - **Errors**: backend failures are [`Error::Backend`](crate::Error::Backend) with the driver's
///   error as `source`, returned in bounded time (operations have timeouts); stored bytes that do
///   not decode are [`Error::Decode`](crate::Error::Decode). Nothing panics on input a user or a
///   server controls.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new record; see the [contract](Store#contract).
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) if a live record has this id;
    /// [`Error::Encode`](crate::Error::Encode) or [`Error::Backend`](crate::Error::Backend).
    async fn create(&self, record: &Record) -> Result<()>;

    /// The live record with this id, or `None`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`](crate::Error::Decode) for a corrupt stored record,
    /// [`Error::Backend`](crate::Error::Backend) if the backend fails.
    async fn load(&self, id: &Id) -> Result<Option<Record>>;

    /// Replaces the stored record if its version is still `record.version`; the stored version
    /// becomes `record.version + 1`.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`](crate::Error::Conflict) if someone saved first,
    /// [`Error::NotFound`](crate::Error::NotFound) if the record is gone,
    /// [`Error::Encode`](crate::Error::Encode) or [`Error::Backend`](crate::Error::Backend).
    async fn save(&self, record: &Record) -> Result<()>;

    /// Moves the expiry of a live record, keeping data and version; `Ok(false)` if there was none.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) if the backend fails.
    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool>;

    /// Removes the record; an unknown id is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) if the backend fails.
    async fn delete(&self, id: &Id) -> Result<()>;
}

macro_rules! forward_store {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: Store + ?Sized> Store for $ptr<T> {
            async fn create(&self, record: &Record) -> Result<()> {
                (**self).create(record).await
            }
            async fn load(&self, id: &Id) -> Result<Option<Record>> {
                (**self).load(id).await
            }
            async fn save(&self, record: &Record) -> Result<()> {
                (**self).save(record).await
            }
            async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
                (**self).touch(id, expires_at).await
            }
            async fn delete(&self, id: &Id) -> Result<()> {
                (**self).delete(id).await
            }
        }
    )*};
}
forward_store!(Arc, Box);

/// Removal of expired records, for backends without native expiry (SQL databases).
///
/// [`cleanup::spawn`](crate::cleanup::spawn) runs it periodically.
#[async_trait]
pub trait ExpiredDeletion: Send + Sync + 'static {
    /// Deletes at most `limit` expired records and returns how many it deleted.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) if the backend fails.
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64>;

    /// Deletes every expired record, in batches of [`DEFAULT_BATCH`], and returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) if a batch fails; earlier batches stay deleted.
    async fn delete_expired(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.delete_expired_batch(DEFAULT_BATCH).await?;
            total += n;
            if n < u64::from(DEFAULT_BATCH) {
                return Ok(total);
            }
        }
    }
}

/// Batch size of [`ExpiredDeletion::delete_expired`].
pub const DEFAULT_BATCH: u32 = 1000;

#[async_trait]
impl<T: ExpiredDeletion + ?Sized> ExpiredDeletion for Arc<T> {
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        (**self).delete_expired_batch(limit).await
    }
}
