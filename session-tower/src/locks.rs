//! One save at a time per session within this process.
//!
//! Versioned saves already make concurrent requests safe; this only makes them cheap. Without
//! it, N requests of one session finishing together each reload and retry until their turn, up
//! to N rounds; with it, a request's save either succeeds or conflicts with a save that ran
//! before it, and its retry (under the same lock) meets no other request of this process.
//! Requests on other app servers still conflict, and are retried a bounded number of times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use session_core::Id;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The locks of the sessions being saved now; an entry lives while someone holds or awaits it.
#[derive(Default)]
pub(crate) struct SaveLocks {
    map: Mutex<HashMap<Id, Arc<AsyncMutex<()>>>>,
}

impl std::fmt::Debug for SaveLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaveLocks").finish_non_exhaustive()
    }
}

/// Held while one session is saved; the entry goes when the last holder or waiter leaves.
pub(crate) struct SaveLock<'a> {
    locks: &'a SaveLocks,
    id: Id,
    guard: Option<OwnedMutexGuard<()>>,
}

impl SaveLocks {
    /// Waits for the lock of session `id`.
    pub(crate) async fn lock(&self, id: &Id) -> SaveLock<'_> {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(id.clone()).or_default())
        };
        // Built before waiting, so that a request dropped while it waits still cleans up.
        let mut lock = SaveLock {
            locks: self,
            id: id.clone(),
            guard: None,
        };
        lock.guard = Some(mutex.lock_owned().await);
        lock
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for SaveLock<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let mut map = self
            .locks
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Under the map's lock nobody can take a new reference: one left is the map's own.
        if map
            .get(&self.id)
            .is_some_and(|mutex| Arc::strong_count(mutex) == 1)
        {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_is_locked_alone_and_entries_go_away() {
        let locks = SaveLocks::default();
        let a = Id::random();
        let b = Id::random();
        let held = locks.lock(&a).await;
        let other = locks.lock(&b).await;
        assert_eq!(locks.len(), 2);
        let waiting = locks.lock(&a);
        tokio::pin!(waiting);
        assert!(
            futures_poll_once(waiting.as_mut()).await.is_none(),
            "a second lock of one session waits"
        );
        drop(held);
        let second = waiting.await;
        drop(second);
        drop(other);
        assert_eq!(locks.len(), 0, "no entry outlives its users");
    }

    #[tokio::test]
    async fn a_waiter_dropped_while_waiting_leaves_no_entry() {
        let locks = SaveLocks::default();
        let id = Id::random();
        let held = locks.lock(&id).await;
        {
            let waiting = locks.lock(&id);
            tokio::pin!(waiting);
            assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        }
        drop(held);
        assert_eq!(locks.len(), 0);
    }

    /// Polls a future once: its output if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
