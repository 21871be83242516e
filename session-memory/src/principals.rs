//! The sessions of a principal in the memory store: listing and revocation over the index.

use async_trait::async_trait;
use moka::ops::compute::Op;
use session_core::{Id, Principals, Record, Result};

use crate::MemoryStore;
use crate::store::Write;

impl MemoryStore {
    /// Removes `principal`'s index entry for `id` stamped `stamp` unless the cache holds the
    /// value it was made for. Runs inside `and_compute_with` and with the slot locked, so no
    /// write of `id` is half-way (its index entry added, its value not yet in the cache or
    /// the slot) while it decides.
    async fn prune(&self, principal: &str, id: &Id, stamp: u64) {
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|existing| {
                let current = existing.is_some_and(|e| {
                    e.value().lock().as_ref().is_some_and(|v| {
                        v.stamp == stamp && v.record.principal.as_deref() == Some(principal)
                    })
                });
                if !current {
                    self.index.remove_if(principal, id, stamp);
                }
                std::future::ready(Op::Nop)
            })
            .await;
    }
}

#[async_trait]
impl Principals for MemoryStore {
    async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>> {
        let now = self.clock.now();
        let mut sessions = Vec::new();
        for (id, stamp) in self.index.ids_of(principal) {
            let found = match self.cache.get(&id).await {
                Some(slot) => slot.lock().as_ref().and_then(|e| {
                    (e.record.principal.as_deref() == Some(principal))
                        .then(|| (!e.record.is_expired_at(now)).then(|| e.record.clone()))
                }),
                None => None,
            };
            match found {
                Some(live) => {
                    // An expired one leaves the index when the cache drops it.
                    sessions.extend(live);
                }
                // Removed, or moved to another principal, by a write that is half-way or
                // whose caller dropped it after it updated the index: check under the lock.
                _ => self.prune(principal, &id, stamp).await,
            }
        }
        Ok(sessions)
    }

    async fn revoke(&self, principal: &str, id: &Id) -> Result<bool> {
        let now = self.clock.now();
        Ok(self
            .write_through(id, now, false, |e| {
                if e.record.principal.as_deref() == Some(principal) {
                    (Write::Remove, true)
                } else {
                    (Write::Keep, false)
                }
            })
            .await)
    }

    async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64> {
        let mut count = 0;
        for (id, stamp) in self.index.ids_of(principal) {
            if Some(&id) == keep {
                continue;
            }
            if self.revoke(principal, &id).await? {
                count += 1;
            } else {
                self.prune(principal, &id, stamp).await;
            }
        }
        Ok(count)
    }
}
