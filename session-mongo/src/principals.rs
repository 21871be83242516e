//! The sessions of a principal: the `principal` field, its index, listing and revocation.
//!
//! The index is the documents' own: MongoDB keeps an index entry exactly as long as its
//! document, so a deleted session leaves nothing behind, and an expired one goes with its
//! document when the TTL monitor removes it. Every query still decides liveness with the
//! server's clock ([`live`]), since the TTL monitor runs only about once a minute.

use async_trait::async_trait;
use mongodb::bson::{Document, doc};
use session_core::{Error, Id, Principals, Record, Result};

use crate::document::{decode_record, field, stored_id};
use crate::store::{live, simple_collation};
use crate::{Layout, MongoStore};

/// The filter of the live sessions of `principal`: the equality the index serves, and the
/// server's clock for liveness.
fn live_sessions_of(principal: &str) -> Document {
    doc! { field::PRINCIPAL: principal, "$expr": live() }
}

impl MongoStore {
    /// Refuses the principal operations in connect-mongo's layout, which stores no principal.
    fn check_native(&self) -> Result<()> {
        match self.layout {
            Layout::Native => Ok(()),
            Layout::Express => Err(Error::invalid_config(
                "the Express-compatible layout keeps no principal: sessions of a principal \
                 are listed and revoked only in the native layout",
            )),
        }
    }
}

/// Listing and revocation by the `principal` field. See the crate docs, "Sessions of a user".
///
/// # Errors
///
/// Beyond those of the trait, every method fails with [`Error::InvalidConfig`] on a store in
/// the [Express-compatible layout](MongoStore::express_compatible), which keeps no principal
/// (and whose [`Store::principals`](session_core::Store::principals) is `None`).
#[async_trait]
impl Principals for MongoStore {
    async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>> {
        self.check_native()?;
        let filter = live_sessions_of(principal);
        let documents = self
            .timed("list the sessions of a principal", |sessions| async move {
                let mut cursor = sessions.find(filter).collation(simple_collation()).await?;
                let mut documents = Vec::new();
                while cursor.advance().await? {
                    documents.push(cursor.current().to_raw_document_buf());
                }
                Ok(documents)
            })
            .await?;
        documents
            .into_iter()
            .map(|document| {
                let id = stored_id(&document)?;
                decode_record(&id, document, &*self.codec)
            })
            .collect()
    }

    async fn revoke(&self, principal: &str, id: &Id) -> Result<bool> {
        self.check_native()?;
        let mut filter = live_sessions_of(principal);
        filter.insert(field::ID, id.as_str());
        let result = self
            .timed("revoke a session of a principal", |sessions| async move {
                sessions
                    .delete_one(filter)
                    .collation(simple_collation())
                    .await
            })
            .await?;
        Ok(result.deleted_count > 0)
    }

    async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64> {
        self.check_native()?;
        // First the principal's expired documents, which the TTL monitor would remove within
        // about a minute anyway: a principal revoked now leaves nothing behind, and this
        // failing leaves every session as it was, so the caller can simply retry.
        let expired = doc! { field::PRINCIPAL: principal, "$expr": { "$not": [live()] } };
        self.timed(
            "remove the expired sessions of a principal",
            |sessions| async move {
                sessions
                    .delete_many(expired)
                    .collation(simple_collation())
                    .await
            },
        )
        .await?;
        // Then every live one but `keep`. One command, so every session whose `create` was
        // acknowledged before it started is in the index it walks.
        let mut filter = live_sessions_of(principal);
        if let Some(keep) = keep {
            filter.insert(field::ID, doc! { "$ne": keep.as_str() });
        }
        let result = self
            .timed(
                "revoke the sessions of a principal",
                |sessions| async move {
                    sessions
                        .delete_many(filter)
                        .collation(simple_collation())
                        .await
                },
            )
            .await?;
        Ok(result.deleted_count)
    }
}
