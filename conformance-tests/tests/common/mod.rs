#![allow(unreachable_pub, dead_code)] // shared by several test crates, each using part of it
//! A straightforward in-memory store (a mutex around a map) that follows the contract, with
//! switches that break it on purpose, to check that the suite catches broken stores.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use session_core::{Error, Id, Record, Result, Store};
use time::OffsetDateTime;

/// Ways to break the contract.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// `create` overwrites a live record instead of failing with `AlreadyExists`.
    pub create_overwrites: bool,
    /// `save` ignores the version: last writer wins, never `Conflict`.
    pub save_ignores_version: bool,
    /// `load` returns expired records.
    pub load_returns_expired: bool,
}

#[derive(Default)]
pub struct ReferenceStore {
    records: Mutex<HashMap<Id, Record>>,
    faults: Faults,
}

impl ReferenceStore {
    pub fn with_faults(faults: Faults) -> Self {
        Self {
            records: Mutex::default(),
            faults,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn live(map: &HashMap<Id, Record>, id: &Id) -> Option<Record> {
    map.get(id).filter(|r| !r.is_expired()).cloned()
}

#[async_trait]
impl Store for ReferenceStore {
    async fn create(&self, record: &Record) -> Result<()> {
        // Yield first so concurrent creates really interleave on the runtime.
        tokio::task::yield_now().await;
        let mut map = self.lock();
        if live(&map, &record.id).is_some() && !self.faults.create_overwrites {
            return Err(Error::AlreadyExists);
        }
        map.insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let map = self.lock();
        if self.faults.load_returns_expired {
            return Ok(map.get(id).cloned());
        }
        Ok(live(&map, id))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        tokio::task::yield_now().await;
        let mut map = self.lock();
        let stored = live(&map, &record.id).ok_or(Error::NotFound)?;
        if stored.version != record.version && !self.faults.save_ignores_version {
            return Err(Error::Conflict);
        }
        let mut next = record.clone();
        next.created_at = stored.created_at;
        next.version = stored.version + 1;
        map.insert(record.id.clone(), next);
        Ok(())
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let mut map = self.lock();
        match live(&map, id) {
            Some(mut r) => {
                r.expires_at = expires_at;
                map.insert(id.clone(), r);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.lock().remove(id);
        Ok(())
    }
}
