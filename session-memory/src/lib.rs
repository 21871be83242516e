#![doc = include_str!("../README.md")]

use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;
use session_core::{Error, Id, Record, Result, Store};
use time::OffsetDateTime;

/// An in-process session store on a bounded moka cache.
///
/// Cheap to clone: clones share the same cache.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<Id, Record>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Expires each entry at its record's `expires_at`.
struct AtRecordExpiry;

fn remaining(record: &Record) -> Duration {
    (record.expires_at - OffsetDateTime::now_utc())
        .try_into()
        .unwrap_or(Duration::ZERO)
}

impl Expiry<Id, Record> for AtRecordExpiry {
    fn expire_after_create(&self, _: &Id, record: &Record, _: Instant) -> Option<Duration> {
        Some(remaining(record))
    }

    fn expire_after_update(
        &self,
        _: &Id,
        record: &Record,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(remaining(record))
    }
}

impl MemoryStore {
    /// The default capacity: 100,000 sessions.
    pub const DEFAULT_MAX_CAPACITY: u64 = 100_000;

    /// A store holding at most [`Self::DEFAULT_MAX_CAPACITY`] sessions.
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_capacity(Self::DEFAULT_MAX_CAPACITY)
    }

    /// A store holding at most `max_capacity` sessions. When full, moka evicts the entries
    /// least likely to be used again (TinyLFU), live or not: size it for your peak.
    #[must_use]
    pub fn with_max_capacity(max_capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(max_capacity)
                .expire_after(AtRecordExpiry)
                .build(),
        }
    }

    /// The number of entries, including expired ones not yet evicted (an estimate, as moka's).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create(&self, record: &Record) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let mut outcome = Ok(());
        self.cache
            .entry_by_ref(&record.id)
            .and_compute_with(|existing| {
                let live = existing.is_some_and(|e| !e.value().is_expired_at(now));
                let op = if live {
                    outcome = Err(Error::AlreadyExists);
                    Op::Nop
                } else if record.is_expired_at(now) {
                    // Never store what is already dead; clear an expired leftover.
                    Op::Remove
                } else {
                    Op::Put(record.clone())
                };
                std::future::ready(op)
            })
            .await;
        outcome
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        Ok(self.cache.get(id).await.filter(|r| !r.is_expired()))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let mut outcome = Ok(());
        self.cache
            .entry_by_ref(&record.id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if !e.value().is_expired_at(now) => {
                        let stored = e.into_value();
                        if stored.version != record.version {
                            outcome = Err(Error::Conflict);
                            Op::Nop
                        } else if record.is_expired_at(now) {
                            Op::Remove
                        } else {
                            let mut next = record.clone();
                            next.created_at = stored.created_at;
                            next.version = stored.version + 1;
                            Op::Put(next)
                        }
                    }
                    _ => {
                        outcome = Err(Error::NotFound);
                        Op::Nop
                    }
                };
                std::future::ready(op)
            })
            .await;
        outcome
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let now = OffsetDateTime::now_utc();
        let mut found = false;
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if !e.value().is_expired_at(now) => {
                        found = true;
                        if expires_at <= now {
                            Op::Remove
                        } else {
                            let mut next = e.into_value();
                            next.expires_at = expires_at;
                            Op::Put(next)
                        }
                    }
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        Ok(found)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.cache.invalidate(id).await;
        Ok(())
    }
}
