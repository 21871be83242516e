#![allow(unreachable_pub, dead_code)] // shared by several test crates, each using part of it
//! The self-test's reference store: a model of a backend with its own clock (an in-memory
//! table behind a mutex) and of an app-side handle with an injectable clock and a time limit.
//! It follows the contract, unless built with a [`Bug`]: one realistic mistake per rule of
//! the suite, which the self-test checks that rule catches.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value as Json;
use session_core::clock::{Clock, SystemClock};
use session_core::{
    DEFAULT_TIMEOUT, Data, Error, ExpiredDeletion, Id, MAX_VERSION, Principals, Record, Result,
    Store, Value, check_principal, check_version, timed,
};
use time::OffsetDateTime;
use tokio::sync::watch;

/// One planted mistake each; [`Bug::rule`] names the rule that must catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    // store_tests!
    CreateResetsVersion,
    CreateOverwrites,
    CreateCheckThenInsert,
    CreateBlockedByExpiredRow,
    CreateOverExpiredNotAtomic,
    DeleteLeavesTombstone,
    LoadUnknownIsError,
    LoadIgnoresExpiry,
    CreateRejectsExpired,
    EmptyDataNotStored,
    LargeDataTruncated,
    TextLosesNonLatin1,
    CapacityEvictsOldest,
    SaveKeepsVersion,
    SaveOverwritesCreatedAt,
    SaveIgnoresVersion,
    SaveUpserts,
    SaveMissingReturnsOk,
    SaveRevivesExpired,
    SaveCheckThenWrite,
    SaveWritesAfterVersionBump,
    TouchBumpsVersion,
    TouchReadThenWrite,
    TouchAlwaysTrue,
    TouchReportsLiveAfter,
    TouchNeverShortens,
    DeleteWrongKey,
    DeleteUnknownIsNotFound,
    CreateSkipsVersionCheck,
    VersionWraps,
    LoadCachesPastExpiry,
    // skew_tests!
    LoadHidesByAppClock,
    WritesRecheckAppClock,
    CreatePurgesByAppClock,
    LoadFiltersByAppClock,
    WritesJudgeByAppClock,
    CreateRefusesByAppClock,
    // cleanup_tests!
    CleanupFiltersAfterLimit,
    CleanupIgnoresLimit,
    CleanupGraceWrongSign,
    CleanupUsesAppClock,
    // outage_tests!
    HangIgnoresTimeout,
    LoadSwallowsErrors,
    NeverReconnects,
    // principal_tests!
    PrincipalsNotExposed,
    PrincipalUnchecked,
    SaveKeepsStoredPrincipal,
    ListingIgnoresCase,
    ListingIgnoresExpiry,
    ListingTrustsIndex,
    ListingTrustsIndexPrincipal,
    RevokeByPrincipalOnly,
    RevokeIgnoresPrincipal,
    RevokeOnlyUnindexes,
    RevokeAllDeletesKept,
    CreateIndexesBeforeWriting,
    RevokeAllUsesCachedListing,
}

use Bug::*;

impl Bug {
    pub const ALL: &[Bug] = &[
        CreateResetsVersion,
        CreateOverwrites,
        CreateCheckThenInsert,
        CreateBlockedByExpiredRow,
        CreateOverExpiredNotAtomic,
        DeleteLeavesTombstone,
        LoadUnknownIsError,
        LoadIgnoresExpiry,
        CreateRejectsExpired,
        EmptyDataNotStored,
        LargeDataTruncated,
        TextLosesNonLatin1,
        CapacityEvictsOldest,
        SaveKeepsVersion,
        SaveOverwritesCreatedAt,
        SaveIgnoresVersion,
        SaveUpserts,
        SaveMissingReturnsOk,
        SaveRevivesExpired,
        SaveCheckThenWrite,
        SaveWritesAfterVersionBump,
        TouchBumpsVersion,
        TouchReadThenWrite,
        TouchAlwaysTrue,
        TouchReportsLiveAfter,
        TouchNeverShortens,
        DeleteWrongKey,
        DeleteUnknownIsNotFound,
        CreateSkipsVersionCheck,
        VersionWraps,
        LoadCachesPastExpiry,
        LoadHidesByAppClock,
        WritesRecheckAppClock,
        CreatePurgesByAppClock,
        LoadFiltersByAppClock,
        WritesJudgeByAppClock,
        CreateRefusesByAppClock,
        CleanupFiltersAfterLimit,
        CleanupIgnoresLimit,
        CleanupGraceWrongSign,
        CleanupUsesAppClock,
        HangIgnoresTimeout,
        LoadSwallowsErrors,
        NeverReconnects,
        PrincipalsNotExposed,
        PrincipalUnchecked,
        SaveKeepsStoredPrincipal,
        ListingIgnoresCase,
        ListingIgnoresExpiry,
        ListingTrustsIndex,
        ListingTrustsIndexPrincipal,
        RevokeByPrincipalOnly,
        RevokeIgnoresPrincipal,
        RevokeOnlyUnindexes,
        RevokeAllDeletesKept,
        CreateIndexesBeforeWriting,
        RevokeAllUsesCachedListing,
    ];

    /// The rule named for catching this bug.
    pub fn rule(self) -> &'static str {
        match self {
            CreateResetsVersion => "create_then_load_round_trips",
            CreateOverwrites => "create_existing_live_id_fails",
            CreateCheckThenInsert => "concurrent_creates_exactly_one_wins",
            CreateBlockedByExpiredRow => "create_over_expired_record_succeeds",
            CreateOverExpiredNotAtomic => "concurrent_creates_over_expired_record_exactly_one_wins",
            DeleteLeavesTombstone => "create_after_delete_succeeds",
            LoadUnknownIsError => "load_unknown_id_is_none",
            LoadIgnoresExpiry | CreateRejectsExpired => "load_expired_record_is_none",
            EmptyDataNotStored => "empty_data_round_trips",
            LargeDataTruncated => "large_record_round_trips",
            TextLosesNonLatin1 => "unicode_and_binary_values_round_trip",
            CapacityEvictsOldest => "thousand_records_coexist",
            SaveKeepsVersion => "save_current_version_bumps_version",
            SaveOverwritesCreatedAt => "save_keeps_stored_created_at",
            SaveIgnoresVersion => "save_stale_version_conflicts",
            SaveUpserts => "save_after_delete_is_not_found",
            SaveMissingReturnsOk => "save_unknown_id_is_not_found",
            SaveRevivesExpired => "save_over_expired_record_is_not_found",
            SaveCheckThenWrite => "concurrent_saves_of_one_version_exactly_one_wins",
            SaveWritesAfterVersionBump => "save_racing_delete_never_revives",
            TouchBumpsVersion => "touch_moves_expiry_only",
            TouchReadThenWrite => "touch_racing_save_keeps_saved_data",
            TouchAlwaysTrue => "touch_unknown_id_reports_absence",
            TouchReportsLiveAfter => "touch_into_past_reports_presence",
            TouchNeverShortens => "touch_into_past_makes_record_unloadable",
            DeleteWrongKey => "delete_removes",
            DeleteUnknownIsNotFound => "delete_unknown_id_is_ok",
            CreateSkipsVersionCheck => "create_beyond_max_version_is_refused",
            VersionWraps => "save_at_max_version_is_refused",
            LoadCachesPastExpiry => "expires_in_real_time",
            LoadHidesByAppClock => "fast_host_loads_live_sessions",
            WritesRecheckAppClock => "fast_host_touches_and_saves_live_sessions",
            CreatePurgesByAppClock => "fast_host_cannot_create_over_live_sessions",
            LoadFiltersByAppClock => "slow_host_never_loads_expired_sessions",
            WritesJudgeByAppClock => "slow_host_never_touches_or_saves_expired_sessions",
            CreateRefusesByAppClock => "slow_host_creates_over_expired_sessions",
            CleanupFiltersAfterLimit => "cleanup_removes_every_expired_record",
            CleanupIgnoresLimit => "cleanup_honours_batch_limit",
            CleanupGraceWrongSign => "cleanup_never_deletes_live_records",
            CleanupUsesAppClock => "cleanup_on_fast_host_keeps_live_records",
            HangIgnoresTimeout | LoadSwallowsErrors => {
                "paused_backend_fails_every_operation_in_time"
            }
            NeverReconnects => "backend_recovers_after_outage",
            PrincipalsNotExposed | PrincipalUnchecked | SaveKeepsStoredPrincipal => {
                "principal_round_trips"
            }
            ListingIgnoresCase => "listing_sees_exactly_the_live_sessions_of_a_principal",
            ListingIgnoresExpiry => "expired_sessions_are_never_listed",
            ListingTrustsIndex => "deleted_sessions_are_never_listed",
            ListingTrustsIndexPrincipal => "changing_the_principal_moves_the_session",
            RevokeByPrincipalOnly => "revoke_removes_only_that_session",
            RevokeIgnoresPrincipal => "revoke_refuses_another_principals_session",
            RevokeOnlyUnindexes => "revoked_sessions_are_unloadable_at_once",
            RevokeAllDeletesKept => "revoke_all_keeps_the_named_session",
            CreateIndexesBeforeWriting | RevokeAllUsesCachedListing => {
                "concurrent_creates_and_revokes_are_consistent"
            }
        }
    }

    /// The other rules this bug fails (besides [`Bug::rule`]), as observed and explained in the
    /// suite's README.
    pub fn also(self) -> &'static [&'static str] {
        match self {
            CreateBlockedByExpiredRow => &[
                "concurrent_creates_over_expired_record_exactly_one_wins",
                "slow_host_creates_over_expired_sessions",
            ],
            CreateCheckThenInsert => &["concurrent_creates_over_expired_record_exactly_one_wins"],
            CreateOverwrites => &[
                "concurrent_creates_exactly_one_wins",
                "concurrent_creates_over_expired_record_exactly_one_wins",
                "fast_host_cannot_create_over_live_sessions",
            ],
            CreateResetsVersion => &[
                "create_beyond_max_version_is_refused",
                "save_at_max_version_is_refused",
            ],
            DeleteWrongKey => &[
                "backend_recovers_after_outage",
                "create_after_delete_succeeds",
                "deleted_sessions_are_never_listed",
                "save_after_delete_is_not_found",
                "save_racing_delete_never_revives",
            ],
            ListingTrustsIndex => &["changing_the_principal_moves_the_session"],
            LoadFiltersByAppClock => &["fast_host_loads_live_sessions"],
            LoadIgnoresExpiry => &[
                "expires_in_real_time",
                "save_over_expired_record_is_not_found",
                "slow_host_never_loads_expired_sessions",
                "slow_host_never_touches_or_saves_expired_sessions",
                "touch_into_past_makes_record_unloadable",
            ],
            LoadUnknownIsError => &[
                "backend_recovers_after_outage",
                "concurrent_creates_and_revokes_are_consistent",
                "create_beyond_max_version_is_refused",
                "delete_removes",
                "expires_in_real_time",
                "load_expired_record_is_none",
                "principal_round_trips",
                "revoke_all_keeps_the_named_session",
                "revoked_sessions_are_unloadable_at_once",
                "save_after_delete_is_not_found",
                "save_over_expired_record_is_not_found",
                "save_racing_delete_never_revives",
                "save_unknown_id_is_not_found",
                "slow_host_never_loads_expired_sessions",
                "slow_host_never_touches_or_saves_expired_sessions",
                "touch_into_past_makes_record_unloadable",
                "touch_unknown_id_reports_absence",
            ],
            RevokeOnlyUnindexes => &[
                "concurrent_creates_and_revokes_are_consistent",
                "revoke_all_keeps_the_named_session",
                "revoke_removes_only_that_session",
            ],
            SaveIgnoresVersion => &["concurrent_saves_of_one_version_exactly_one_wins"],
            SaveKeepsStoredPrincipal => &["changing_the_principal_moves_the_session"],
            SaveKeepsVersion => &[
                "changing_the_principal_moves_the_session",
                "concurrent_saves_of_one_version_exactly_one_wins",
                "fast_host_touches_and_saves_live_sessions",
                "listing_sees_exactly_the_live_sessions_of_a_principal",
                "principal_round_trips",
                "save_stale_version_conflicts",
                "touch_racing_save_keeps_saved_data",
            ],
            SaveMissingReturnsOk => &[
                "revoked_sessions_are_unloadable_at_once",
                "save_after_delete_is_not_found",
                "save_over_expired_record_is_not_found",
                "slow_host_never_touches_or_saves_expired_sessions",
            ],
            SaveRevivesExpired => &["slow_host_never_touches_or_saves_expired_sessions"],
            SaveUpserts => &[
                "revoked_sessions_are_unloadable_at_once",
                "save_racing_delete_never_revives",
                "save_unknown_id_is_not_found",
            ],
            TouchAlwaysTrue => &[
                "delete_removes",
                "expires_in_real_time",
                "revoked_sessions_are_unloadable_at_once",
                "slow_host_never_touches_or_saves_expired_sessions",
            ],
            TouchBumpsVersion => &[
                "fast_host_touches_and_saves_live_sessions",
                "touch_racing_save_keeps_saved_data",
            ],
            TouchNeverShortens => &[
                "concurrent_creates_over_expired_record_exactly_one_wins",
                "create_over_expired_record_succeeds",
                "expired_sessions_are_never_listed",
                "save_over_expired_record_is_not_found",
            ],
            WritesJudgeByAppClock => &["fast_host_touches_and_saves_live_sessions"],
            _ => &[],
        }
    }
}

/// A round trip to the backend: the gap a read-then-write implementation leaves open.
const ROUND_TRIP: Duration = Duration::from_millis(10);

/// How many rows the backend of [`Bug::CapacityEvictsOldest`] holds.
const CAPACITY: usize = 512;

/// How long the read cache of [`Bug::LoadCachesPastExpiry`] serves a record.
const CACHE_FOR: Duration = Duration::from_secs(10);

/// The ids a listing gave, and when.
type Listing = (Vec<Id>, Instant);

/// The stored form of a record.
#[derive(Clone)]
struct Row {
    record: Record,
    /// A soft delete ([`Bug::DeleteLeavesTombstone`]).
    deleted: bool,
    /// Insertion order ([`Bug::CapacityEvictsOldest`]).
    seq: u64,
}

/// What the backend stores.
#[derive(Default)]
struct Table {
    rows: HashMap<Id, Row>,
    /// The principal index: each principal's sessions, with the summary the index keeps of each
    /// (a copy of the record as last written). As in a backend whose `delete` knows only the
    /// id, entries of deleted, expired and moved sessions stay until a listing or a revocation
    /// prunes them; the contract allows it, since listing checks every record.
    index: HashMap<String, HashMap<Id, Record>>,
}

impl Table {
    /// Removes `principal`'s index entry of `id`, and the principal's map once it is empty.
    fn unindex(&mut self, principal: &str, id: &Id) {
        if let Some(ids) = self.index.get_mut(principal) {
            ids.remove(id);
            if ids.is_empty() {
                self.index.remove(principal);
            }
        }
    }
}

/// The backend: a table and a clock of its own (the host's), and a switch that freezes it.
struct Backend {
    table: Mutex<Table>,
    seq: AtomicU64,
    paused: watch::Sender<bool>,
}

/// The backend's clock.
fn backend_now() -> OffsetDateTime {
    session_core::now()
}

impl Backend {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits while the backend is paused: a frozen server answers nothing.
    async fn gate(&self) {
        let mut paused = self.paused.subscribe();
        let _ = paused.wait_for(|p| !*p).await;
    }

    fn row(&self, record: Record) -> Row {
        Row {
            record,
            deleted: false,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Whether `row` is live at `now`.
fn live(row: &Row, now: OffsetDateTime) -> bool {
    !row.deleted && row.record.expires_at > now
}

/// An app server's handle on a [`Backend`].
#[derive(Clone)]
pub struct ReferenceStore {
    backend: Arc<Backend>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    bug: Option<Bug>,
    /// Set after a failure by [`Bug::NeverReconnects`].
    broken: Arc<AtomicBool>,
    /// [`Bug::LoadCachesPastExpiry`]'s read cache.
    cache: Arc<Mutex<HashMap<Id, (Record, Instant)>>>,
    /// [`Bug::RevokeAllUsesCachedListing`]'s cache of the ids each principal's listing gave.
    listings: Arc<Mutex<HashMap<String, Listing>>>,
}

impl Default for ReferenceStore {
    fn default() -> Self {
        Self::new(None)
    }
}

impl ReferenceStore {
    /// A store over a new, empty backend.
    pub fn new(bug: Option<Bug>) -> Self {
        Self {
            backend: Arc::new(Backend {
                table: Mutex::default(),
                seq: AtomicU64::new(0),
                paused: watch::Sender::new(false),
            }),
            clock: Arc::new(SystemClock),
            timeout: DEFAULT_TIMEOUT,
            bug,
            broken: Arc::default(),
            cache: Arc::default(),
            listings: Arc::default(),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Another app server's handle on the same backend, whose clock is `clock`.
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            broken: Arc::default(),
            cache: Arc::default(),
            listings: Arc::default(),
            ..self.clone()
        }
    }

    /// The switch that pauses this store's backend.
    pub fn switch(&self) -> Switch {
        Switch(self.backend.clone())
    }

    fn has(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    fn app_now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Runs one operation the way a driver does: it waits for the backend, within the time
    /// limit.
    async fn op<T>(&self, name: &'static str, work: impl Future<Output = Result<T>>) -> Result<T> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::backend(name, "connection lost and never reopened"));
        }
        let reached = async {
            self.backend.gate().await;
            work.await
        };
        let result = if self.has(HangIgnoresTimeout) {
            reached.await
        } else {
            timed(name, self.timeout, reached).await.and_then(|r| r)
        };
        if self.has(NeverReconnects) && matches!(result, Err(Error::Backend { .. })) {
            self.broken.store(true, Ordering::SeqCst);
        }
        result
    }

    fn forget(&self, id: &Id) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// The data as this backend stores it.
    fn stored_data(&self, data: &Data) -> Data {
        if self.has(LargeDataTruncated) {
            let mut size = 0;
            return data
                .iter()
                .take_while(|(key, value)| {
                    size += key.len() + value.as_msgpack().len();
                    size <= 65_535
                })
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect();
        }
        if self.has(TextLosesNonLatin1) {
            return data
                .iter()
                .map(|(key, value)| {
                    let json = value.to_json().unwrap_or(Json::Null);
                    (
                        latin1(key),
                        Value::encode(&latin1_json(json)).unwrap_or_else(|_| value.clone()),
                    )
                })
                .collect();
        }
        data.clone()
    }

    /// Writes `record` and its index entry.
    fn insert(&self, table: &mut Table, record: Record) {
        self.write(table, record, true);
    }

    /// Writes `record`, and its index entry if `index`.
    fn write(&self, table: &mut Table, mut record: Record, index: bool) {
        let rows = &mut table.rows;
        if self.has(EmptyDataNotStored) && record.data.is_empty() {
            rows.remove(&record.id);
            return;
        }
        record.data = self.stored_data(&record.data);
        if let (true, Some(principal)) = (index, &record.principal) {
            table
                .index
                .entry(principal.clone())
                .or_default()
                .insert(record.id.clone(), record.clone());
        }
        let row = self.backend.row(record);
        rows.insert(row.record.id.clone(), row);
        if self.has(CapacityEvictsOldest)
            && rows.len() > CAPACITY
            && let Some(oldest) = rows
                .values()
                .min_by_key(|r| r.seq)
                .map(|r| r.record.id.clone())
        {
            rows.remove(&oldest);
        }
    }

    /// Whether the stored row blocks a `create` (the correct rule: a live one does).
    fn blocks_create(&self, row: &Row) -> bool {
        let now = backend_now();
        if self.has(CreateBlockedByExpiredRow) {
            return !row.deleted;
        }
        if self.has(DeleteLeavesTombstone) {
            return row.record.expires_at > now;
        }
        if self.has(CreateRefusesByAppClock)
            && !row.deleted
            && row.record.expires_at > self.app_now()
        {
            return true;
        }
        live(row, now)
    }

    /// Whether the stored row counts as live for `save` and `touch`.
    fn writable(&self, row: &Row) -> bool {
        if self.has(WritesJudgeByAppClock) {
            return live(row, self.app_now());
        }
        let live = live(row, backend_now());
        if self.has(WritesRecheckAppClock) {
            return live && row.record.expires_at > self.app_now();
        }
        live
    }

    /// Refuses a principal the contract refuses.
    fn check_principal(&self, record: &Record) -> Result<()> {
        match &record.principal {
            Some(principal) if !self.has(PrincipalUnchecked) => {
                check_principal(principal).map(drop)
            }
            _ => Ok(()),
        }
    }

    async fn create_inner(&self, record: &Record) -> Result<()> {
        self.check_principal(record)?;
        if let (true, Some(principal)) = (self.has(CreateIndexesBeforeWriting), &record.principal) {
            // Index first, record in a second round trip: a listing or revocation in between
            // prunes the entry of a record not written yet.
            self.backend
                .lock()
                .index
                .entry(principal.clone())
                .or_default()
                .insert(record.id.clone(), record.clone());
            tokio::time::sleep(ROUND_TRIP).await;
        }
        if !self.has(CreateSkipsVersionCheck) {
            check_version(record.version)?;
        }
        if self.has(CreateRejectsExpired) && record.expires_at <= backend_now() {
            return Err(Error::backend("create a session", "invalid expire time"));
        }
        let mut record = record.clone();
        if self.has(CreateResetsVersion) {
            record.version = 0;
        }
        if self.has(CreateCheckThenInsert) {
            let taken = self
                .backend
                .lock()
                .rows
                .get(&record.id)
                .is_some_and(|r| self.blocks_create(r));
            if taken {
                return Err(Error::AlreadyExists);
            }
            tokio::time::sleep(ROUND_TRIP).await;
            self.insert(&mut self.backend.lock(), record);
            return Ok(());
        }
        if self.has(CreateOverExpiredNotAtomic) {
            let expired_row = {
                let table = self.backend.lock();
                match table.rows.get(&record.id) {
                    Some(row) if self.blocks_create(row) => return Err(Error::AlreadyExists),
                    Some(_) => true,
                    None => false,
                }
            };
            if expired_row {
                // Delete the expired row, then insert: two statements.
                tokio::time::sleep(ROUND_TRIP).await;
                self.backend.lock().rows.remove(&record.id);
                tokio::time::sleep(ROUND_TRIP).await;
                self.insert(&mut self.backend.lock(), record);
                return Ok(());
            }
        }
        let mut table = self.backend.lock();
        if self.has(CreatePurgesByAppClock)
            && table
                .rows
                .get(&record.id)
                .is_some_and(|r| r.record.expires_at <= self.app_now())
        {
            table.rows.remove(&record.id);
        }
        if !self.has(CreateOverwrites)
            && table
                .rows
                .get(&record.id)
                .is_some_and(|r| self.blocks_create(r))
        {
            return Err(Error::AlreadyExists);
        }
        // With the index written first, this round trip writes the record alone.
        let index = !self.has(CreateIndexesBeforeWriting);
        self.write(&mut table, record, index);
        Ok(())
    }

    async fn load_inner(&self, id: &Id) -> Result<Option<Record>> {
        if self.has(LoadCachesPastExpiry) {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((record, at)) = cache.get(id)
                && at.elapsed() < CACHE_FOR
            {
                return Ok(Some(record.clone()));
            }
        }
        let found = {
            let table = self.backend.lock();
            table
                .rows
                .get(id)
                .filter(|row| {
                    if row.deleted {
                        false
                    } else if self.has(LoadIgnoresExpiry) {
                        true
                    } else if self.has(LoadFiltersByAppClock) {
                        row.record.expires_at > self.app_now()
                    } else {
                        live(row, backend_now())
                    }
                })
                .map(|row| row.record.clone())
        };
        let found =
            found.filter(|r| !(self.has(LoadHidesByAppClock) && r.expires_at <= self.app_now()));
        if self.has(LoadUnknownIsError) && found.is_none() {
            return Err(Error::NotFound);
        }
        if let (true, Some(record)) = (self.has(LoadCachesPastExpiry), &found) {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), (record.clone(), Instant::now()));
        }
        Ok(found)
    }

    fn next_version(&self, record: &Record) -> Result<u64> {
        if self.has(VersionWraps) {
            return Ok(if record.version >= MAX_VERSION {
                0
            } else {
                record.version + 1
            });
        }
        record.next_version()
    }

    /// The record a successful save of `record` over `stored` stores.
    fn saved(&self, record: &Record, stored: &Record, next: u64) -> Record {
        let mut saved = record.clone();
        if !self.has(SaveOverwritesCreatedAt) {
            saved.created_at = stored.created_at;
        }
        if self.has(SaveKeepsStoredPrincipal) {
            saved.principal.clone_from(&stored.principal);
        }
        saved.version = if self.has(SaveKeepsVersion) {
            stored.version
        } else {
            next
        };
        saved
    }

    async fn save_inner(&self, record: &Record) -> Result<()> {
        self.check_principal(record)?;
        let next = self.next_version(record)?;
        if self.has(SaveCheckThenWrite) {
            let stored = self.check_save(&self.backend.lock().rows, record)?;
            tokio::time::sleep(ROUND_TRIP).await;
            let mut table = self.backend.lock();
            if table.rows.contains_key(&record.id) {
                let saved = self.saved(record, &stored, next);
                self.insert(&mut table, saved);
            }
            return Ok(());
        }
        if self.has(SaveWritesAfterVersionBump) {
            let stored = {
                let mut table = self.backend.lock();
                let stored = self.check_save(&table.rows, record)?;
                if let Some(row) = table.rows.get_mut(&record.id) {
                    row.record.version = next;
                }
                stored
            };
            tokio::time::sleep(ROUND_TRIP).await;
            let saved = self.saved(record, &stored, next);
            self.insert(&mut self.backend.lock(), saved);
            return Ok(());
        }
        let mut table = self.backend.lock();
        let stored = match self.check_save(&table.rows, record) {
            Err(Error::NotFound) if self.has(SaveMissingReturnsOk) => return Ok(()),
            Err(Error::NotFound)
                if self.has(SaveUpserts) && !table.rows.contains_key(&record.id) =>
            {
                record.clone()
            }
            other => other?,
        };
        let saved = self.saved(record, &stored, next);
        self.insert(&mut table, saved);
        Ok(())
    }

    /// The stored record if `record` may replace it.
    fn check_save(&self, rows: &HashMap<Id, Row>, record: &Record) -> Result<Record> {
        let row = rows
            .get(&record.id)
            .filter(|row| self.writable(row) || (self.has(SaveRevivesExpired) && !row.deleted))
            .ok_or(Error::NotFound)?;
        if row.record.version != record.version && !self.has(SaveIgnoresVersion) {
            return Err(Error::Conflict);
        }
        Ok(row.record.clone())
    }

    async fn touch_inner(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        if self.has(TouchReadThenWrite) {
            let read = self
                .backend
                .lock()
                .rows
                .get(id)
                .filter(|row| self.writable(row))
                .cloned();
            let Some(mut row) = read else {
                return Ok(false);
            };
            tokio::time::sleep(ROUND_TRIP).await;
            row.record.expires_at = expires_at;
            self.backend.lock().rows.insert(id.clone(), row);
            return Ok(true);
        }
        let mut table = self.backend.lock();
        let table = &mut *table;
        let Some(row) = table.rows.get_mut(id).filter(|row| self.writable(row)) else {
            return Ok(self.has(TouchAlwaysTrue));
        };
        row.record.expires_at = if self.has(TouchNeverShortens) {
            row.record.expires_at.max(expires_at)
        } else {
            expires_at
        };
        if self.has(TouchBumpsVersion) {
            row.record.version += 1;
        }
        if let Some(summary) = row
            .record
            .principal
            .as_ref()
            .and_then(|p| table.index.get_mut(p))
            .and_then(|ids| ids.get_mut(id))
        {
            summary.clone_from(&row.record);
        }
        if self.has(TouchReportsLiveAfter) {
            return Ok(live(row, backend_now()));
        }
        Ok(true)
    }

    async fn delete_inner(&self, id: &Id) -> Result<()> {
        let mut table = self.backend.lock();
        let rows = &mut table.rows;
        if self.has(DeleteWrongKey) {
            return Ok(());
        }
        if self.has(DeleteLeavesTombstone) {
            if let Some(row) = rows.get_mut(id) {
                row.deleted = true;
            }
            return Ok(());
        }
        if rows.remove(id).is_none() && self.has(DeleteUnknownIsNotFound) {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn delete_expired_inner(&self, limit: u32) -> Result<u64> {
        let mut table = self.backend.lock();
        let rows = &mut table.rows;
        let now = if self.has(CleanupUsesAppClock) {
            self.app_now()
        } else if self.has(CleanupGraceWrongSign) {
            backend_now() + time::Duration::minutes(1)
        } else {
            backend_now()
        };
        let expired = |row: &Row| row.record.expires_at <= now;
        let limit = if self.has(CleanupIgnoresLimit) {
            usize::MAX
        } else {
            limit as usize
        };
        let doomed: Vec<Id> = if self.has(CleanupFiltersAfterLimit) {
            // `SELECT id ... ORDER BY created LIMIT n`, then `DELETE ... WHERE id IN (..) AND
            // expired`: live rows use up the batch.
            let mut oldest: Vec<&Row> = rows.values().collect();
            oldest.sort_by_key(|r| r.seq);
            oldest
                .into_iter()
                .take(limit)
                .filter(|r| expired(r))
                .map(|r| r.record.id.clone())
                .collect()
        } else {
            rows.values()
                .filter(|r| expired(r))
                .take(limit)
                .map(|r| r.record.id.clone())
                .collect()
        };
        for id in &doomed {
            rows.remove(id);
        }
        Ok(doomed.len() as u64)
    }
}

fn latin1(s: &str) -> String {
    s.chars()
        .map(|c| if u32::from(c) <= 0xff { c } else { '?' })
        .collect()
}

fn latin1_json(value: Json) -> Json {
    match value {
        Json::String(s) => Json::String(latin1(&s)),
        Json::Array(items) => Json::Array(items.into_iter().map(latin1_json).collect()),
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| (latin1(&k), latin1_json(v)))
                .collect(),
        ),
        other => other,
    }
}

#[async_trait]
impl Store for ReferenceStore {
    fn principals(&self) -> Option<&dyn Principals> {
        if self.has(PrincipalsNotExposed) {
            return None;
        }
        Some(self)
    }

    async fn create(&self, record: &Record) -> Result<()> {
        self.forget(&record.id);
        self.op("create a session", async {
            // Yield first so concurrent creates really interleave on the runtime.
            tokio::task::yield_now().await;
            self.create_inner(record).await
        })
        .await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let result = self.op("load a session", self.load_inner(id)).await;
        match result {
            Err(e) if self.has(LoadSwallowsErrors) && e.is_transient() => Ok(None),
            other => other,
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.forget(&record.id);
        self.op("save a session", async {
            tokio::task::yield_now().await;
            self.save_inner(record).await
        })
        .await
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        self.forget(id);
        self.op("touch a session", self.touch_inner(id, expires_at))
            .await
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.forget(id);
        self.op("delete a session", self.delete_inner(id)).await
    }
}

/// Principals equal but for case, as under a case-insensitive collation.
fn same_but_case(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

impl ReferenceStore {
    /// Whether `row` is a live session of `principal`, as `revoke` and `revoke_all` judge it.
    fn revocable(row: &Row, principal: &str) -> bool {
        live(row, backend_now()) && row.record.principal.as_deref() == Some(principal)
    }

    /// Whether a listing of `principal` shows `row` (the correct rule: a live session of
    /// `principal`).
    fn lists(&self, row: &Row, principal: &str) -> bool {
        let live = if self.has(ListingIgnoresExpiry) {
            !row.deleted
        } else {
            live(row, backend_now())
        };
        let owned = match row.record.principal.as_deref() {
            _ if self.has(ListingTrustsIndexPrincipal) => true,
            Some(p) if self.has(ListingIgnoresCase) => same_but_case(p, principal),
            Some(p) => p == principal,
            None => false,
        };
        live && owned
    }

    fn sessions_of_inner(&self, principal: &str) -> Vec<Record> {
        let mut table = self.backend.lock();
        let found: Vec<Record> = if self.has(ListingTrustsIndex) {
            let now = backend_now();
            table
                .index
                .get(principal)
                .into_iter()
                .flat_map(|ids| ids.values())
                .filter(|summary| summary.expires_at > now)
                .cloned()
                .collect()
        } else {
            let keys: Vec<String> = if self.has(ListingIgnoresCase) {
                table
                    .index
                    .keys()
                    .filter(|k| same_but_case(k, principal))
                    .cloned()
                    .collect()
            } else {
                vec![principal.to_owned()]
            };
            let mut found = Vec::new();
            for key in keys {
                let ids: Vec<Id> = table
                    .index
                    .get(&key)
                    .map(|ids| ids.keys().cloned().collect())
                    .unwrap_or_default();
                for id in ids {
                    match table.rows.get(&id) {
                        Some(row) if self.lists(row, principal) => found.push(row.record.clone()),
                        // Deleted, expired or moved: the entry goes.
                        _ => table.unindex(&key, &id),
                    }
                }
            }
            found
        };
        if self.has(RevokeAllUsesCachedListing) {
            let ids = found.iter().map(|r| r.id.clone()).collect();
            self.listings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(principal.to_owned(), (ids, Instant::now()));
        }
        found
    }

    fn revoke_inner(&self, principal: &str, id: &Id) -> bool {
        self.forget(id);
        let mut table = self.backend.lock();
        if self.has(RevokeByPrincipalOnly) {
            // `DELETE ... WHERE principal = ?`, the id's condition lost.
            let ids: Vec<Id> = table
                .index
                .get(principal)
                .map(|ids| ids.keys().cloned().collect())
                .unwrap_or_default();
            let mut any = false;
            for id in ids {
                if table
                    .rows
                    .get(&id)
                    .is_some_and(|row| Self::revocable(row, principal))
                {
                    table.rows.remove(&id);
                    table.unindex(principal, &id);
                    any = true;
                }
            }
            return any;
        }
        let revocable = table.rows.get(id).is_some_and(|row| {
            if self.has(RevokeIgnoresPrincipal) {
                live(row, backend_now())
            } else {
                Self::revocable(row, principal)
            }
        });
        if revocable && !self.has(RevokeOnlyUnindexes) {
            table.rows.remove(id);
        }
        // A revoked session's entry, or a stale one.
        table.unindex(principal, id);
        revocable
    }

    async fn revoke_all_inner(&self, principal: &str, keep: Option<&Id>) -> u64 {
        let cached = self
            .listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(principal)
            .filter(|(_, at)| self.has(RevokeAllUsesCachedListing) && at.elapsed() < CACHE_FOR)
            .map(|(ids, _)| ids.clone());
        // One round trip lists the principal's live sessions (pruning stale entries), a second
        // deletes them: sessions created in between stay, and are listed.
        let ids = match cached {
            Some(ids) => ids,
            None => {
                let mut table = self.backend.lock();
                let ids: Vec<Id> = table
                    .index
                    .get(principal)
                    .map(|ids| ids.keys().cloned().collect())
                    .unwrap_or_default();
                let mut live = Vec::new();
                for id in ids {
                    if table
                        .rows
                        .get(&id)
                        .is_some_and(|row| Self::revocable(row, principal))
                    {
                        live.push(id);
                    } else {
                        table.unindex(principal, &id);
                    }
                }
                live
            }
        };
        tokio::time::sleep(ROUND_TRIP).await;
        let mut table = self.backend.lock();
        let mut deleted = 0;
        for id in ids {
            if keep == Some(&id) && !self.has(RevokeAllDeletesKept) {
                continue;
            }
            if table
                .rows
                .get(&id)
                .is_some_and(|row| Self::revocable(row, principal))
            {
                if !self.has(RevokeOnlyUnindexes) {
                    table.rows.remove(&id);
                }
                table.unindex(principal, &id);
                self.forget(&id);
                deleted += 1;
            }
        }
        deleted
    }
}

#[async_trait]
impl Principals for ReferenceStore {
    async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>> {
        self.op("list the sessions of a principal", async {
            Ok(self.sessions_of_inner(principal))
        })
        .await
    }

    async fn revoke(&self, principal: &str, id: &Id) -> Result<bool> {
        self.op("revoke a session", async {
            Ok(self.revoke_inner(principal, id))
        })
        .await
    }

    async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64> {
        self.op("revoke the sessions of a principal", async {
            Ok(self.revoke_all_inner(principal, keep).await)
        })
        .await
    }
}

#[async_trait]
impl ExpiredDeletion for ReferenceStore {
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        self.op("delete expired sessions", self.delete_expired_inner(limit))
            .await
    }
}

/// Pauses and resumes a [`ReferenceStore`]'s backend.
pub struct Switch(Arc<Backend>);

impl session_conformance::Outage for Switch {
    async fn pause(&self) {
        self.0.paused.send_replace(true);
    }

    async fn resume(&self) {
        self.0.paused.send_replace(false);
    }
}
