//! The TTL index on the expiry field: how MongoDB removes expired sessions by itself.

use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;
use session_core::{Error, Result};

use crate::MongoStore;
use crate::document::field;
use crate::store::error_code;

/// `createIndexes` codes for "an index on these keys exists with other options or another name".
const INDEX_OPTIONS_CONFLICT: i32 = 85;
const INDEX_KEY_SPECS_CONFLICT: i32 = 86;

impl MongoStore {
    /// Creates the TTL index on the expiry field (`{expires: 1}`, `expireAfterSeconds: 0`), so
    /// MongoDB removes expired sessions by itself, by its own clock. Run it once at startup;
    /// running it again is a no-op, and an equivalent index that already exists under another
    /// name is accepted.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the server cannot be reached, or if an index on `expires` exists with
    /// other options (for example another `expireAfterSeconds`): drop that index and run this
    /// again.
    pub async fn migrate(&self) -> Result<()> {
        const OPERATION: &str = "create the TTL index on sessions";
        let model = IndexModel::builder()
            .keys(doc! { field::EXPIRES: 1 })
            .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
            .build();
        let created = self
            .timed(OPERATION, self.collection.create_index(model))
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if index_conflict(&e) && self.has_ttl_index().await? => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether an index with exactly the keys and TTL that [`Self::migrate`] wants exists.
    async fn has_ttl_index(&self) -> Result<bool> {
        let wanted = doc! { field::EXPIRES: 1 };
        self.timed("list the indexes of sessions", async {
            let mut cursor = self.collection.list_indexes().await?;
            while cursor.advance().await? {
                let index = cursor.deserialize_current()?;
                let ttl = index.options.as_ref().and_then(|o| o.expire_after);
                if same_keys(&index.keys, &wanted) && ttl == Some(Duration::ZERO) {
                    return Ok(true);
                }
            }
            Ok(false)
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
