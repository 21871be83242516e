//! The indexes `migrate` creates: the TTL index on the expiry field (how MongoDB removes
//! expired sessions by itself) and, in the native layout, the index on principals.

use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;
use session_core::{Error, Result};

use crate::document::field;
use crate::store::{error_code, simple_collation};
use crate::{Layout, MongoStore};

/// `createIndexes` codes for "an index on these keys exists with other options or another name".
const INDEX_OPTIONS_CONFLICT: i32 = 85;
const INDEX_KEY_SPECS_CONFLICT: i32 = 86;
/// `listIndexes` of a collection that does not exist.
const NAMESPACE_NOT_FOUND: i32 = 26;

/// `{expires: 1}`, `expireAfterSeconds: 0`: MongoDB deletes a document once its `expires` has
/// passed, by its own clock.
fn ttl_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! { field::EXPIRES: 1 })
        .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
        .build()
}

/// An existing index does the TTL index's job: the same key and a TTL of zero.
fn is_ttl_index(index: &IndexModel) -> bool {
    let ttl = index.options.as_ref().and_then(|o| o.expire_after);
    same_keys(&index.keys, &doc! { field::EXPIRES: 1 }) && ttl == Some(Duration::ZERO)
}

/// `{principal: 1}`, sparse (sessions without a principal are not in it) and with byte-wise
/// comparison (the collation the principal queries use, whatever the collection's default).
fn principal_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! { field::PRINCIPAL: 1 })
        .options(
            IndexOptions::builder()
                .sparse(true)
                .collation(simple_collation())
                .build(),
        )
        .build()
}

/// The index is on `principal` alone, ascending: what the principal queries look up.
fn on_principal(index: &IndexModel) -> bool {
    same_keys(&index.keys, &doc! { field::PRINCIPAL: 1 })
}

/// An index on `principal` serves the principal queries: sparse or not, not unique (a
/// principal has many sessions), over every document (no partial filter), visible to the
/// planner, comparing strings byte-wise.
fn serves_principals(index: &IndexModel) -> bool {
    let options = index.options.clone().unwrap_or_default();
    let simple = options
        .collation
        .as_ref()
        .is_none_or(|collation| collation.locale == "simple");
    on_principal(index)
        && options.unique != Some(true)
        && options.partial_filter_expression.is_none()
        && options.hidden != Some(true)
        && simple
}

/// A unique index on `principal` would make `create` of a user's second session fail.
fn is_unique(index: &IndexModel) -> bool {
    index
        .options
        .as_ref()
        .is_some_and(|options| options.unique == Some(true))
}

impl MongoStore {
    /// Creates the indexes the store relies on; run it once at startup. Running it again is a
    /// no-op, and an equivalent index that already exists under another name is accepted.
    ///
    /// - the TTL index on the expiry field (`{expires: 1}`, `expireAfterSeconds: 0`), so
    ///   MongoDB removes expired sessions by itself, by its own clock;
    /// - in the native layout, the index on principals (`{principal: 1}`, sparse, simple
    ///   collation), which [listing and revocation](session_core::Principals) use. Without
    ///   it they still work, by scanning the whole collection.
    ///
    /// On a collection with sessions already in it, MongoDB builds the principal index while
    /// the collection stays readable and writable; sessions stored before principals existed
    /// have no `principal` field and are not in it.
    ///
    /// An index on `principal` that already exists is used if it can serve the queries (sparse
    /// or not, under any name). If it cannot (partial, hidden, another collation), the store
    /// creates its own, which the server may refuse beside it: drop that index then.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the server cannot be reached, or refuses an index because one on
    /// the same key exists with other options (for example another `expireAfterSeconds` on
    /// `expires`): drop that index and run this again. [`Error::InvalidConfig`] if a unique index on `principal` exists, which
    /// would allow one session per user.
    pub async fn migrate(&self) -> Result<()> {
        self.ensure_ttl_index().await?;
        if self.layout == Layout::Native {
            self.ensure_principal_index().await?;
        }
        Ok(())
    }

    /// Creates the TTL index; if the server refuses because an index on the same keys (or
    /// with the same name) exists, succeeds when an existing one is equivalent.
    async fn ensure_ttl_index(&self) -> Result<()> {
        let created = self
            .timed("create the TTL index on sessions", |sessions| async move {
                sessions.create_index(ttl_index()).await
            })
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if index_conflict(&e) && self.has_index(is_ttl_index).await? => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates the index on principals unless one that serves the queries exists; refuses a
    /// unique one.
    ///
    /// Decided from the list of indexes rather than from the server's reply to
    /// `createIndexes`: which option differences make two indexes on one key conflict varies
    /// between servers (a collation, for one, may make them distinct), and a unique index must
    /// be refused even where the server would let both exist.
    async fn ensure_principal_index(&self) -> Result<()> {
        let existing = self.indexes().await?;
        if let Some(unique) = existing.iter().find(|i| on_principal(i) && is_unique(i)) {
            let name = unique
                .options
                .as_ref()
                .and_then(|o| o.name.clone())
                .unwrap_or_default();
            return Err(Error::invalid_config(format!(
                "the index {name:?} on `principal` of {} is unique, so a user could have only \
                 one session: drop it and run migrate again",
                self.collection.namespace()
            )));
        }
        if existing.iter().any(serves_principals) {
            return Ok(());
        }
        self.timed(
            "create the index on the principals of sessions",
            |sessions| async move { sessions.create_index(principal_index()).await },
        )
        .await?;
        Ok(())
    }

    /// Whether an index for which `equivalent` holds exists.
    async fn has_index(&self, equivalent: fn(&IndexModel) -> bool) -> Result<bool> {
        Ok(self.indexes().await?.iter().any(equivalent))
    }

    /// The collection's indexes (none if the collection does not exist yet).
    async fn indexes(&self) -> Result<Vec<IndexModel>> {
        self.timed("list the indexes of sessions", |sessions| async move {
            let mut indexes = Vec::new();
            let mut cursor = match sessions.list_indexes().await {
                Ok(cursor) => cursor,
                Err(e) if error_code(&e) == Some(NAMESPACE_NOT_FOUND) => return Ok(indexes),
                Err(e) => return Err(e),
            };
            while cursor.advance().await? {
                indexes.push(cursor.deserialize_current()?);
            }
            Ok(indexes)
        })
        .await
    }
}

fn index_conflict(error: &Error) -> bool {
    let Error::Backend { source, .. } = error else {
        return false;
    };
    source
        .downcast_ref::<mongodb::error::Error>()
        .and_then(error_code)
        .is_some_and(|code| code == INDEX_OPTIONS_CONFLICT || code == INDEX_KEY_SPECS_CONFLICT)
}

/// Index keys compared by name and direction, whatever numeric type the server sent back.
fn same_keys(a: &Document, b: &Document) -> bool {
    let direction = |v: &Bson| match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    };
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
            ka == kb && direction(va).is_some() && direction(va) == direction(vb)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_options(keys: Document, options: IndexOptions) -> IndexModel {
        IndexModel::builder().keys(keys).options(options).build()
    }

    #[test]
    fn the_wanted_indexes_are_their_own_equivalents() {
        assert!(is_ttl_index(&ttl_index()));
        assert!(serves_principals(&principal_index()));
    }

    #[test]
    fn only_indexes_that_serve_the_principal_queries_are_accepted() {
        let key = || doc! { "principal": 1 };
        let plain = IndexModel::builder().keys(key()).build();
        assert!(serves_principals(&plain), "a plain, non-sparse index");
        let refused = [
            IndexOptions::builder().unique(true).build(),
            IndexOptions::builder()
                .partial_filter_expression(doc! { "principal": { "$gt": "m" } })
                .build(),
            IndexOptions::builder().hidden(true).build(),
            IndexOptions::builder()
                .collation(
                    mongodb::options::Collation::builder()
                        .locale("en")
                        .strength(mongodb::options::CollationStrength::Secondary)
                        .build(),
                )
                .build(),
        ];
        for options in refused {
            let shown = format!("{options:?}");
            assert!(!serves_principals(&with_options(key(), options)), "{shown}");
        }
        assert!(!serves_principals(
            &IndexModel::builder()
                .keys(doc! { "principal": 1, "expires": 1 })
                .build()
        ));
        assert!(!serves_principals(
            &IndexModel::builder().keys(doc! { "principal": -1 }).build()
        ));
    }

    #[test]
    fn keys_compare_across_number_types() {
        assert!(same_keys(
            &doc! { "expires": 1 },
            &doc! { "expires": 1_i64 }
        ));
        assert!(same_keys(&doc! { "expires": 1.0 }, &doc! { "expires": 1 }));
        assert!(!same_keys(&doc! { "expires": -1 }, &doc! { "expires": 1 }));
        assert!(!same_keys(
            &doc! { "expires": 1, "x": 1 },
            &doc! { "expires": 1 }
        ));
        assert!(!same_keys(&doc! { "other": 1 }, &doc! { "expires": 1 }));
    }
}
