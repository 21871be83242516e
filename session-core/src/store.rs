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
/// them against a real backend, one named test per rule (the rules in italics). Each rule is
/// proven able to fail: the suite's self-test plants one bug per rule in a reference store and
/// checks that the rule catches it.
///
/// - **`create`** inserts only. If a *live* record with the same id exists it fails with
///   [`Error::AlreadyExists`](crate::Error::AlreadyExists) and leaves that record untouched.
///   It is atomic: of any number of concurrent `create`s of one id, exactly one succeeds, also
///   when the id holds an expired record. A record with the same id that has *expired* (whether
///   or not the backend has removed it yet) does not block `create`. The stored version is the
///   record's version.
///   *Suite: `create_then_load_round_trips`, `create_existing_live_id_fails`,
///   `concurrent_creates_exactly_one_wins`, `create_over_expired_record_succeeds`,
///   `concurrent_creates_over_expired_record_exactly_one_wins`, `create_after_delete_succeeds`.*
/// - **`load`** returns the live record (id, data, `created_at`, `expires_at`, `version` as
///   stored) or `None`. It never returns an expired record, whether or not the backend's own
///   cleanup has run yet. An unknown id is `Ok(None)`, not an error.
///   *Suite: `load_unknown_id_is_none`, `load_expired_record_is_none`, `empty_data_round_trips`,
///   `large_record_round_trips`, `unicode_and_binary_values_round_trip`,
///   `thousand_records_coexist`.*
/// - **`save`** replaces the data and `expires_at` of an existing live record **only if its stored
///   version equals `record.version`**; the stored version becomes `record.version + 1`, and the
///   stored `created_at` is kept whatever the record passed in carries. If the versions differ
///   it fails with [`Error::Conflict`](crate::Error::Conflict) and changes nothing; if there is
///   no live record it fails with [`Error::NotFound`](crate::Error::NotFound) and creates
///   nothing, also when a `delete` runs concurrently. A write is never dropped silently.
///   *Suite: `save_current_version_bumps_version`, `save_keeps_stored_created_at`,
///   `save_stale_version_conflicts`, `save_after_delete_is_not_found`,
///   `save_unknown_id_is_not_found`, `save_over_expired_record_is_not_found`,
///   `concurrent_saves_of_one_version_exactly_one_wins`, `save_racing_delete_never_revives`.*
/// - **`touch`** moves the `expires_at` of a live record without rewriting its data and without
///   changing its version, and returns whether the record was live. A `touch` that runs
///   concurrently with a `save` never puts back the data the `save` replaced. Touching a live
///   record to an instant in the past returns `true` and makes the record unloadable.
///   *Suite: `touch_moves_expiry_only`, `touch_racing_save_keeps_saved_data`,
///   `touch_unknown_id_reports_absence`, `touch_into_past_reports_presence`,
///   `touch_into_past_makes_record_unloadable`.*
/// - **`delete`** removes the record; deleting an unknown id succeeds.
///   *Suite: `delete_removes`, `delete_unknown_id_is_ok`.*
/// - **Versions** are in `0..=`[`MAX_VERSION`](crate::MAX_VERSION) (`i64::MAX`, what every
///   backend stores natively). `create` of a record with a larger version, and `save` of a
///   record at `MAX_VERSION` (which has no successor), fail with
///   [`Error::VersionOutOfRange`](crate::Error::VersionOutOfRange) and write nothing
///   ([`check_version`](crate::check_version), [`Record::next_version`]).
///   *Suite: `create_beyond_max_version_is_refused`, `save_at_max_version_is_refused`.*
/// - **Instants** are preserved to at least the millisecond (see [`crate::now`];
///   [`clock::unix_millis`](crate::clock::unix_millis) is the stored form).
/// - **Expiry**: a record is expired at and after its `expires_at`. **One clock decides**: a
///   backend that has a clock (SQL `now()`, Redis TTLs and `TIME`, MongoDB `$$NOW`) decides
///   whether a record is expired, in the same statement or script that acts on it, in `load`,
///   `create`, `save`, `touch` and cleanup alike; the app's [`Clock`](crate::Clock) only
///   computes new `expires_at` values. App servers whose clocks disagree by minutes then agree
///   on which sessions are live: one running fast neither hides nor deletes live sessions, one
///   running slow never revives expired ones. A store without a clock of its own (in-process
///   memory) uses the app's clock. Backends with native expiry (Redis TTLs, MongoDB TTL
///   indexes, moka) use it; the others also implement [`ExpiredDeletion`] so a cleanup task can
///   remove expired rows.
///   *Suite: `expires_in_real_time`; with `skew_tests!`: `fast_host_loads_live_sessions`,
///   `fast_host_touches_and_saves_live_sessions`, `fast_host_cannot_create_over_live_sessions`,
///   `slow_host_never_loads_expired_sessions`,
///   `slow_host_never_touches_or_saves_expired_sessions`,
///   `slow_host_creates_over_expired_sessions`.*
/// - **Errors**: backend failures are [`Error::Backend`](crate::Error::Backend) with the driver's
///   error as `source`, returned in bounded time: every operation has a time limit (default
///   [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT); a zero limit is refused when the store is
///   built, see [`check_timeout`](crate::check_timeout)), and the store works again once the
///   backend answers, without being rebuilt. Contention the backend resolves by aborting a
///   transaction (deadlock, serialization failure) is retried a bounded number of times, then
///   reported as [`Error::Contention`](crate::Error::Contention). Stored data that does not
///   decode, including a stored column of the wrong type, is [`Error::Decode`](crate::Error::Decode).
///   A record larger than the backend accepts is [`Error::TooLarge`](crate::Error::TooLarge),
///   found before the round trip. Nothing panics on input a user or a server controls.
///   *Suite, with `outage_tests!`: `paused_backend_fails_every_operation_in_time`,
///   `backend_recovers_after_outage`.*
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// This store's [`Principals`] capability, if it has one: listing and revoking the
    /// sessions of one principal. A store that implements [`Principals`] returns `Some(self)`;
    /// the default is `None`.
    fn principals(&self) -> Option<&dyn Principals> {
        None
    }

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
            fn principals(&self) -> Option<&dyn Principals> {
                (**self).principals()
            }
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

/// The sessions of one principal (a user): list them, revoke them ("log out everywhere").
///
/// An optional capability beside [`Store`], implemented with the backend's own index (an SQL
/// column and index, a MongoDB field and index, a Redis sorted set per principal, a map in
/// memory). A store that implements it returns `Some(self)` from [`Store::principals`], so that
/// code holding an `Arc<dyn Store>` (the middleware) can find it.
///
/// # Contract
///
/// - `create` and `save` keep the record's `principal` (checked with
///   [`check_principal`](crate::check_principal)) and `load` returns it; a `save` with another
///   principal, or none, moves the session out of the old principal's sessions at once.
/// - [`sessions_of`](Principals::sessions_of) returns exactly the live sessions whose stored
///   principal is the one asked for, as `load` would return them: never an expired, deleted or
///   moved session, whatever the state of the backend's index.
/// - [`revoke`](Principals::revoke) deletes one session of the principal, by the id
///   `sessions_of` gave (a store that keeps ids in another form, e.g. hashed, gives that
///   form), and refuses one of another principal.
/// - [`revoke_all`](Principals::revoke_all) makes every live session of the principal, except
///   the one it keeps, unloadable before it returns; a session created after it returns is not
///   affected. A session whose `create` finished before `revoke_all` started is revoked.
/// - The index does not grow without bound: entries of expired or deleted sessions are removed
///   eventually (by the backend's expiry, or when the principal is listed or revoked).
///
/// *Suite, with `principal_tests!`: `principal_round_trips`,
/// `listing_sees_exactly_the_live_sessions_of_a_principal`, `expired_sessions_are_never_listed`,
/// `deleted_sessions_are_never_listed`, `changing_the_principal_moves_the_session`,
/// `revoke_removes_only_that_session`, `revoke_refuses_another_principals_session`,
/// `revoked_sessions_are_unloadable_at_once`, `revoke_all_keeps_the_named_session`,
/// `concurrent_creates_and_revokes_are_consistent`.*
#[async_trait]
pub trait Principals: Send + Sync {
    /// The live sessions of `principal`, in no particular order.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) if the backend fails,
    /// [`Error::Decode`](crate::Error::Decode) for a corrupt stored record.
    async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>>;

    /// Deletes the session `id`, as [`sessions_of`](Principals::sessions_of) returned it, if
    /// it is a live session of `principal`, and returns whether it was; a session of another
    /// principal is left alone.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) if the backend fails.
    async fn revoke(&self, principal: &str, id: &Id) -> Result<bool>;

    /// Deletes every live session of `principal` except `keep` (e.g. the current one, for "log
    /// out other devices"), and returns how many it deleted.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) if the backend fails; sessions deleted before
    /// the failure stay deleted.
    async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64>;
}

/// Removal of expired records, for backends without native expiry (SQL databases).
///
/// [`cleanup::spawn`](crate::cleanup::spawn) runs it periodically.
///
/// # Contract
///
/// - A batch deletes only records that are expired **by the backend's clock** (the same clock
///   [`Store`] decides expiry with), never a live one, whatever the app server's clock says.
/// - A batch deletes at most `limit` records and returns how many it deleted.
/// - Batches repeated until one returns less than its limit leave no expired record behind.
///
/// *Suite, with `cleanup_tests!`: `cleanup_removes_every_expired_record`,
/// `cleanup_honours_batch_limit`, `cleanup_never_deletes_live_records`,
/// `cleanup_on_fast_host_keeps_live_records`.*
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
