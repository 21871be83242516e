//! The memory store's index of principals: for each principal, the ids of its sessions, each
//! with the stamp of the cache write that put it there.
//!
//! The stamp is what keeps the index right when moka reports a removal late: every write that
//! gives a session its principal (a `create`, or a `save` that changes it) draws a new stamp,
//! and an index entry is removed only by a removal of the value that carries its stamp. A late
//! "expired" notice for an old value of an id therefore never removes the index entry a newer
//! write of the same id made.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use session_core::Id;

#[derive(Default)]
pub(crate) struct PrincipalIndex {
    map: Mutex<HashMap<String, HashMap<Id, u64>>>,
}

impl PrincipalIndex {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<Id, u64>>> {
        // Every critical section below leaves the map consistent, so a panic elsewhere while
        // the lock was held cannot have left it half-changed.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the value stamped `stamp` holds `id` for `principal`.
    pub(crate) fn add(&self, principal: &str, id: &Id, stamp: u64) {
        let mut map = self.lock();
        match map.get_mut(principal) {
            Some(ids) => {
                ids.insert(id.clone(), stamp);
            }
            None => {
                map.insert(principal.to_owned(), HashMap::from([(id.clone(), stamp)]));
            }
        }
    }

    /// Removes `id` from `principal`'s sessions if the index entry is the one the value stamped
    /// `stamp` made.
    pub(crate) fn remove_if(&self, principal: &str, id: &Id, stamp: u64) {
        let mut map = self.lock();
        let Some(ids) = map.get_mut(principal) else {
            return;
        };
        if ids.get(id) == Some(&stamp) {
            ids.remove(id);
            if ids.is_empty() {
                map.remove(principal);
            }
        }
    }

    /// The ids of `principal`'s sessions with their stamps, as the index has them now.
    pub(crate) fn ids_of(&self, principal: &str) -> Vec<(Id, u64)> {
        self.lock()
            .get(principal)
            .map(|ids| ids.iter().map(|(id, s)| (id.clone(), *s)).collect())
            .unwrap_or_default()
    }

    /// The number of index entries, over all principals.
    pub(crate) fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }
}
