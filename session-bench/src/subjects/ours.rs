//! Any of our stores, through `Arc<dyn Store>` as the middleware holds it.

use std::sync::Arc;

use async_trait::async_trait;
use session_core::{Id, Record, Store};

use super::{an_hour_from_now, fill};
use crate::harness::{Res, Subject, Workload};
use crate::payload;

/// One of our stores with its prepared sessions.
pub(crate) struct Ours {
    store: Arc<dyn Store>,
    ids: Vec<Id>,
}

impl Ours {
    /// Creates `n` sessions of about `size` bytes in `store`.
    pub(crate) async fn prepare(store: Arc<dyn Store>, n: usize, size: usize) -> Res<Self> {
        let ids = create(&store, n, size).await?;
        Ok(Self { store, ids })
    }
}

/// Creates `n` sessions of about `size` bytes, an hour long, in `store`, and returns their ids.
pub(crate) async fn create(store: &Arc<dyn Store>, n: usize, size: usize) -> Res<Vec<Id>> {
    let ids = (0..n).map(|_| Id::random()).collect();
    fill(ids, 64, |i, id| {
        let store = Arc::clone(store);
        async move {
            let mut record = Record::new(id, time::Duration::HOUR);
            record.data = payload::data(&payload::object(i, size));
            store.create(&record).await?;
            Ok(())
        }
    })
    .await
}

#[async_trait]
impl Subject for Ours {
    fn sessions(&self) -> usize {
        self.ids.len()
    }

    /// The store workloads, and the cache tier's loads (a store without a cache just loads).
    fn supports(&self, workload: Workload) -> bool {
        Workload::STORE.contains(&workload) || matches!(workload, Workload::Hit | Workload::Miss)
    }

    async fn cycle(&self, workload: Workload, _task: usize, slot: usize, n: u64) -> Res {
        let id = &self.ids[slot];
        match workload {
            Workload::Touch => {
                if !self.store.touch(id, an_hour_from_now()).await? {
                    return Err("session vanished".into());
                }
            }
            _ => {
                let mut record = self.store.load(id).await?.ok_or("session vanished")?;
                if workload == Workload::Rw {
                    record.data.insert(payload::COUNTER, &n)?;
                    self.store.save(&record).await?;
                }
            }
        }
        Ok(())
    }
}
