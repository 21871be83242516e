//! tower-sessions' stores, through their `SessionStore` trait (core 0.14 and 0.15 alike).

use async_trait::async_trait;
use serde_json::json;

use crate::harness::{Res, Subject, Workload};
use crate::payload;

macro_rules! ts_subject {
    ($(#[$doc:meta])* $name:ident, $core:ident) => {
        $(#[$doc])*
        pub(crate) struct $name<S> {
            store: S,
            ids: Vec<$core::session::Id>,
        }

        impl<S: $core::SessionStore> $name<S> {
            /// Creates `n` sessions of about `size` bytes (the same data as ours) in `store`.
            pub(crate) async fn prepare(store: S, n: usize, size: usize) -> Res<Self> {
                let mut ids = Vec::with_capacity(n);
                for i in 0..n {
                    let mut record = $core::session::Record {
                        id: $core::session::Id::default(),
                        data: payload::ts_data(&payload::object(i, size)),
                        expiry_date: super::an_hour_from_now(),
                    };
                    store.create(&mut record).await?;
                    ids.push(record.id);
                }
                Ok(Self { store, ids })
            }
        }

        #[async_trait]
        impl<S: $core::SessionStore> Subject for $name<S> {
            fn sessions(&self) -> usize {
                self.ids.len()
            }

            /// tower-sessions has no `touch`: its middleware saves the whole record instead.
            fn supports(&self, workload: Workload) -> bool {
                matches!(workload, Workload::Rw | Workload::Ro)
            }

            async fn cycle(&self, workload: Workload, _task: usize, slot: usize, n: u64) -> Res {
                let id = &self.ids[slot];
                let mut record = self.store.load(id).await?.ok_or("session vanished")?;
                if workload == Workload::Rw {
                    record.data.insert(payload::COUNTER.to_owned(), json!(n));
                    self.store.save(&record).await?;
                }
                Ok(())
            }
        }
    };
}

ts_subject!(
    /// A store on tower-sessions-core 0.15 (its memory store).
    Ts15,
    tower_sessions_core
);
ts_subject!(
    /// A store on tower-sessions-core 0.14 (the moka, Redis and sqlx stores).
    Ts14,
    tower_sessions_core_014
);
