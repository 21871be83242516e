//! The MongoDB floor: `find_one` and `update_one` of a document holding the stored bytes.

use std::sync::Arc;

use async_trait::async_trait;
use mongodb::Collection;
use mongodb::bson::{Binary, DateTime, RawDocumentBuf, doc, spec::BinarySubtype};
use session_core::Id;

use super::{an_hour_from_now, fill};
use crate::harness::{Res, Role, Subject, Workload};
use crate::payload;

fn date(t: time::OffsetDateTime) -> DateTime {
    DateTime::from_millis((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn binary(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

/// The raw driver on raw documents: `find_one` of a live `_id` (ro), then `update_one` `$set`
/// of the same bytes and expiry (rw), or of the expiry alone (touch).
pub(crate) struct MongoFloor {
    collection: Collection<RawDocumentBuf>,
    ids: Vec<String>,
    ttl_index: bool,
}

impl MongoFloor {
    /// `ttl_index`: whether the collection has the TTL index on the expiry that our store
    /// creates (and any MongoDB session store needs, to expire sessions natively).
    pub(crate) async fn prepare(url: &str, n: usize, size: usize, ttl_index: bool) -> Res<Self> {
        let client = mongodb::Client::with_uri_str(url).await?;
        let name = if ttl_index { "floor" } else { "floor_noindex" };
        let collection = client
            .database("session_bench")
            .collection::<RawDocumentBuf>(name);
        collection.drop().await?;
        if ttl_index {
            let model = mongodb::IndexModel::builder()
                .keys(doc! { "e": 1 })
                .options(
                    mongodb::options::IndexOptions::builder()
                        .expire_after(std::time::Duration::ZERO)
                        .build(),
                )
                .build();
            collection.create_index(model).await?;
        }
        let ids: Arc<Vec<String>> = Arc::new((0..n).map(|_| Id::random().to_string()).collect());
        fill(n, 16, |i| {
            let (collection, ids) = (
                collection.clone_with_type::<mongodb::bson::Document>(),
                Arc::clone(&ids),
            );
            async move {
                collection
                    .insert_one(doc! {
                        "_id": ids[i].as_str(),
                        "d": binary(payload::bytes(&payload::object(i, size))),
                        "e": date(an_hour_from_now()),
                    })
                    .await?;
                Ok(())
            }
        })
        .await?;
        let ids = Arc::try_unwrap(ids).unwrap_or_else(|s| (*s).clone());
        Ok(Self {
            collection,
            ids,
            ttl_index,
        })
    }
}

#[async_trait]
impl Subject for MongoFloor {
    fn label(&self) -> String {
        if self.ttl_index {
            "floor: driver find_one / update_one".into()
        } else {
            "reference: the floor without the TTL index".into()
        }
    }

    fn role(&self) -> Role {
        if self.ttl_index {
            Role::Floor
        } else {
            Role::Reference
        }
    }

    fn sessions(&self) -> usize {
        self.ids.len()
    }

    async fn cycle(&self, workload: Workload, _task: usize, slot: usize, _n: u64) -> Res {
        let id = self.ids[slot].as_str();
        let live = doc! { "_id": id, "e": { "$gt": date(session_core::now()) } };
        if workload == Workload::Touch {
            let done = self
                .collection
                .update_one(live, doc! { "$set": { "e": date(an_hour_from_now()) } })
                .await?;
            return if done.matched_count == 1 {
                Ok(())
            } else {
                Err("session vanished".into())
            };
        }
        let found = self
            .collection
            .find_one(live)
            .await?
            .ok_or("session vanished")?;
        if workload == Workload::Rw {
            let bytes = found.get_binary("d")?.bytes.to_vec();
            self.collection
                .update_one(
                    doc! { "_id": id },
                    doc! { "$set": { "d": binary(bytes), "e": date(an_hour_from_now()) } },
                )
                .await?;
        }
        Ok(())
    }
}
