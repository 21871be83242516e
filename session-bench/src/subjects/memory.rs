//! The in-process floor: moka itself, holding each session's bytes behind an `Arc`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache;
use session_core::Id;
use time::OffsetDateTime;

use super::an_hour_from_now;
use crate::harness::{Res, Subject, Workload};
use crate::payload;

/// What the floor caches: the encoded session and when it expires.
struct Entry {
    expires_at: OffsetDateTime,
    bytes: Bytes,
}

/// Per-entry expiry, as any session cache needs (and as our store and tower-sessions' moka
/// store configure it), so the floor pays for the same policy.
struct AtExpiry;

fn remaining(e: &Entry) -> Duration {
    (e.expires_at - OffsetDateTime::now_utc())
        .try_into()
        .unwrap_or(Duration::ZERO)
}

impl Expiry<Id, Arc<Entry>> for AtExpiry {
    fn expire_after_create(&self, _: &Id, e: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(remaining(e))
    }

    fn expire_after_update(
        &self,
        _: &Id,
        e: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(remaining(e))
    }
}

/// Raw moka: `get` (ro), `get` + `insert` of the same `Arc` (rw), `get` + `insert` of a new
/// `Arc` with the new expiry (touch).
pub(crate) struct MokaFloor {
    cache: Cache<Id, Arc<Entry>>,
    ids: Vec<Id>,
}

impl MokaFloor {
    pub(crate) async fn prepare(n: usize, size: usize, capacity: u64) -> Res<Self> {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(AtExpiry)
            .build();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let id = Id::random();
            let entry = Entry {
                expires_at: an_hour_from_now(),
                bytes: Bytes::from(payload::bytes(&payload::object(i, size))),
            };
            cache.insert(id.clone(), Arc::new(entry)).await;
            ids.push(id);
        }
        Ok(Self { cache, ids })
    }
}

#[async_trait]
impl Subject for MokaFloor {
    fn sessions(&self) -> usize {
        self.ids.len()
    }

    async fn cycle(&self, workload: Workload, _task: usize, slot: usize, _n: u64) -> Res {
        let id = &self.ids[slot];
        let entry = self.cache.get(id).await.ok_or("session vanished")?;
        match workload {
            Workload::Rw => self.cache.insert(id.clone(), entry).await,
            Workload::Touch => {
                let moved = Entry {
                    expires_at: an_hour_from_now(),
                    bytes: entry.bytes.clone(),
                };
                self.cache.insert(id.clone(), Arc::new(moved)).await;
            }
            _ => {}
        }
        Ok(())
    }
}
