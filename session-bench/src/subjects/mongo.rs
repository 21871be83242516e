//! The MongoDB floor: `find_one` and `update_one` of a document holding the stored bytes.

use async_trait::async_trait;
use mongodb::Collection;
use mongodb::bson::{Binary, DateTime, RawDocumentBuf, doc, spec::BinarySubtype};
use session_core::Id;

use super::{an_hour_from_now_millis, fill};
use crate::harness::{Contender, Res, Role, Subject, Workload};
use crate::payload;

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
}

impl MongoFloor {
    /// The floor, and the reference: the floor on a collection without the TTL index.
    pub(crate) async fn contenders(url: &str, n: usize, size: usize) -> Res<[Contender; 2]> {
        Ok([
            Contender::new(
                "floor: driver find_one / update_one",
                Role::Floor,
                Self::prepare(url, n, size, true).await?,
            ),
            Contender::new(
                "reference: the floor without the TTL index",
                Role::Reference,
                Self::prepare(url, n, size, false).await?,
            ),
        ])
    }

    /// `ttl_index`: whether the collection has the TTL index on the expiry that our store
    /// creates (and any MongoDB session store needs, to expire sessions natively).
    async fn prepare(url: &str, n: usize, size: usize, ttl_index: bool) -> Res<Self> {
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
        let ids = (0..n).map(|_| Id::random().to_string()).collect();
        let documents = collection.clone_with_type::<mongodb::bson::Document>();
        let ids = fill(ids, 16, |i, id| {
            let documents = documents.clone();
            async move {
                documents
                    .insert_one(doc! {
                        "_id": id,
                        "d": binary(payload::bytes(&payload::object(i, size))),
                        "e": DateTime::from_millis(an_hour_from_now_millis()),
                    })
                    .await?;
                Ok(())
            }
        })
        .await?;
        Ok(Self { collection, ids })
    }
}

#[async_trait]
impl Subject for MongoFloor {
    fn sessions(&self) -> usize {
        self.ids.len()
    }

    async fn cycle(&self, workload: Workload, _task: usize, slot: usize, _n: u64) -> Res {
        let id = self.ids[slot].as_str();
        let live = doc! { "_id": id, "e": { "$gt": DateTime::now() } };
        if workload == Workload::Touch {
            let done = self
                .collection
                .update_one(
                    live,
                    doc! { "$set": { "e": DateTime::from_millis(an_hour_from_now_millis()) } },
                )
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
                    doc! { "$set": { "d": binary(bytes), "e": DateTime::from_millis(an_hour_from_now_millis()) } },
                )
                .await?;
        }
        Ok(())
    }
}
