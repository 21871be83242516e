//! Any of our stores, through `Arc<dyn Store>` as the middleware holds it.

use std::sync::Arc;

use async_trait::async_trait;
use session_core::{Id, Record, Store};

use super::{an_hour_from_now, fill};
use crate::harness::{Res, Role, Subject, Workload};
use crate::payload;

/// One of our stores with its prepared sessions.
pub(crate) struct Ours {
    label: String,
    store: Arc<dyn Store>,
    ids: Vec<Id>,
}

impl Ours {
    /// Creates `n` sessions of about `size` bytes in `store`.
    pub(crate) async fn prepare(
        label: impl Into<String>,
        store: Arc<dyn Store>,
        n: usize,
        size: usize,
    ) -> Res<Self> {
        let ids: Arc<Vec<Id>> = Arc::new((0..n).map(|_| Id::random()).collect());
        fill(n, 64, |i| {
            let store = Arc::clone(&store);
            let ids = Arc::clone(&ids);
            async move {
                let mut record = Record::new(ids[i].clone(), time::Duration::HOUR);
                record.data = payload::data(&payload::object(i, size));
                store.create(&record).await?;
                Ok(())
            }
        })
        .await?;
        let ids = Arc::try_unwrap(ids).unwrap_or_else(|shared| (*shared).clone());
        Ok(Self {
            label: label.into(),
            store,
            ids,
        })
    }
}

#[async_trait]
impl Subject for Ours {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn role(&self) -> Role {
        Role::Ours
    }

    fn sessions(&self) -> usize {
        self.ids.len()
    }

    async fn cycle(&self, workload: Workload, _task: usize, slot: usize, n: u64) -> Res {
        let id = &self.ids[slot];
        match workload {
            Workload::Rw => {
                let mut record = self.store.load(id).await?.ok_or("session vanished")?;
                record.data.insert(crate::payload::COUNTER, &n)?;
                self.store.save(&record).await?;
            }
            Workload::Ro => {
                self.store.load(id).await?.ok_or("session vanished")?;
            }
            Workload::Touch => {
                if !self.store.touch(id, an_hour_from_now()).await? {
                    return Err("session vanished".into());
                }
            }
            Workload::HttpRead | Workload::HttpWrite => return Err("not a store workload".into()),
        }
        Ok(())
    }
}
