//! The store operations. Every expiry decision is the server's: see [`live`].

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::Collation;
use session_core::{Error, Id, Principals, Record, Result, Store, check_version};
use time::OffsetDateTime;

use crate::document::{bson_date, data_blob, decode_record, field, new_document, stored_version};
use crate::{Layout, MongoStore, express};

/// How many driver operations of one store (and its clones) run at once; callers beyond wait
/// for a slot within their time limit. Ten times the driver's default pool (10 connections),
/// so it never limits a server that keeps up, and bounds the operations left running in the
/// background (see [`MongoStore::timed`]) when one does not.
pub(crate) const MAX_IN_FLIGHT: usize = 100;

/// A driver operation still running this many times the store's time limit after it started
/// is dropped: the bound on background work for a server that never answers.
pub(crate) const ABANDON_AFTER: u32 = 6;

/// MongoDB's "duplicate key" error code.
const DUPLICATE_KEY: i32 = 11000;

/// The server's clock, as an aggregation expression: `$$NOW`, the instant the server started
/// the operation, the same for every document it looks at.
///
/// Taken through milliseconds and back (`$toDate` of `$toLong`), which changes nothing on
/// MongoDB (a BSON date *is* milliseconds since the epoch) and makes comparisons work on
/// servers that hold `$$NOW` in a form their comparisons with stored dates get wrong: the
/// wire-compatible stand-in this crate is tested against answers `false` to every comparison
/// of a stored date with a bare `$$NOW`. See the crate docs, "One clock decides expiry".
pub(crate) fn server_now() -> Document {
    doc! { "$toDate": { "$toLong": "$$NOW" } }
}

/// "The document is live by the server's clock": its `expires` is after the server's now.
///
/// In aggregation order a value of another type compares by type: a missing field, numbers,
/// strings and the like sort below every date (not live, so `create` may replace the document);
/// timestamps and the few types above dates sort above (live, and `load` then reports the
/// field as `Error::Decode`).
pub(crate) fn live() -> Document {
    doc! { "$gt": [format!("${}", field::EXPIRES), server_now()] }
}

/// The filter of one live session.
pub(crate) fn live_session(id: &Id) -> Document {
    doc! { field::ID: id.as_str(), "$expr": live() }
}

/// Byte-wise string comparison, whatever default collation the collection was created with: a
/// case-insensitive one would let one principal's query match another's, and a changed text
/// match the one read.
pub(crate) fn simple_collation() -> Collation {
    Collation::builder().locale("simple").build()
}

/// The error code the server attached to a failed command or write, if any.
pub(crate) fn error_code(error: &mongodb::error::Error) -> Option<i32> {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

/// What the upsert of `create` did.
enum Upsert {
    /// Inserted the document, or replaced an expired one.
    Written,
    /// Left the stored document as it was.
    Unchanged,
    /// Lost a race to insert the same `_id`.
    DuplicateKey,
}

impl MongoStore {
    /// Runs one driver call under the store's time limit, naming the operation in the error.
    ///
    /// `call` gets a clone of the collection (cheap: clones share the client) and its future
    /// runs in a task of its own, so the limit ends the *wait*, never the driver's operation:
    /// the driver's pool handles an operation dropped after its command was sent badly (the
    /// connection is given up mid-reply), and with many such drops under an overload its
    /// connections stopped carrying operations for minutes (see `RELIABILITY.md`). An
    /// operation past the limit finishes in the background and puts its connection back.
    ///
    /// That background work is bounded twice: at most [`MAX_IN_FLIGHT`] operations of a store
    /// (and its clones) run at once, a caller waiting for a slot within its own limit (nothing
    /// has been sent while it waits, so giving up there cancels nothing); and a task still
    /// running [`ABANDON_AFTER`] times the limit after it started is dropped after all, the last
    /// resort for a server that never answers and a connection the driver never fails.
    pub(crate) async fn timed<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T>
    where
        F: FnOnce(Collection<RawDocumentBuf>) -> Fut,
        Fut: Future<Output = mongodb::error::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let collection = self.collection.clone();
        let in_flight = Arc::clone(&self.in_flight);
        let abandon = self.timeout.saturating_mul(ABANDON_AFTER);
        let joined = session_core::timed(operation, self.timeout, async move {
            // The semaphore is never closed, so this only waits.
            let slot = in_flight.acquire_owned().await.ok();
            let future = call(collection);
            tokio::spawn(async move {
                let _slot = slot;
                tokio::time::timeout(abandon, future).await
            })
            .await
        })
        .await?;
        match joined {
            Ok(Ok(done)) => done.map_err(|e| Error::backend(operation, e)),
            // Only after `abandon`, long after this caller's own limit: not seen in practice.
            Ok(Err(elapsed)) => Err(Error::backend(operation, elapsed)),
            // The driver panicked, or the runtime is shutting down.
            Err(join) => Err(Error::backend(operation, join)),
        }
    }

    /// One upsert of `create`: by `_id`, keep the stored document if it is live, else put in
    /// the new one. An update pipeline, because MongoDB refuses `$expr` in the filter of an
    /// upsert, and `$$NOW` is only available in expressions.
    async fn upsert_if_expired(&self, id: &Id, document: Document) -> Result<Upsert> {
        let replace = doc! {
            "$replaceWith": {
                "$cond": { "if": live(), "then": "$$ROOT", "else": { "$literal": document } }
            }
        };
        let filter = doc! { field::ID: id.as_str() };
        self.timed("create a session", |sessions| async move {
            match sessions
                .update_one(filter, vec![replace])
                .upsert(true)
                .await
            {
                Ok(result) if result.upserted_id.is_some() || result.modified_count > 0 => {
                    Ok(Upsert::Written)
                }
                Ok(_) => Ok(Upsert::Unchanged),
                Err(e) if error_code(&e) == Some(DUPLICATE_KEY) => Ok(Upsert::DuplicateKey),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

#[async_trait]
impl Store for MongoStore {
    /// `Some` in the native layout; connect-mongo's layout keeps no principal.
    fn principals(&self) -> Option<&dyn Principals> {
        match self.layout {
            Layout::Native => Some(self),
            Layout::Express => None,
        }
    }

    async fn create(&self, record: &Record) -> Result<()> {
        let version = stored_version(check_version(record.version)?)?;
        let document = || -> Result<Document> {
            match self.layout {
                Layout::Native => Ok(new_document(
                    record,
                    data_blob(&*self.codec, record)?,
                    version,
                )),
                Layout::Express => express::new_document(record),
            }
        };
        let mut first = Some(document()?);
        // Two attempts: MongoDB retries an upsert that lost a race to insert the same `_id`
        // by itself, and so does this, once, for servers that report it instead (the second
        // attempt then sees the winner's document and decides by its expiry).
        for _ in 0..2 {
            let new = match first.take() {
                Some(new) => new,
                None => document()?,
            };
            match self.upsert_if_expired(&record.id, new).await? {
                Upsert::Written => return Ok(()),
                Upsert::DuplicateKey => continue,
                Upsert::Unchanged => {
                    // Kept: a live document, or an expired one equal to this record in every
                    // field (writing it again changes nothing, so the server reports no
                    // change). Only the second is a success; on this rare path, one more
                    // round trip asks which.
                    let mut same = document()?;
                    same.insert("$expr", doc! { "$not": [live()] });
                    let found = self
                        .timed(
                            "check a session after a create found one",
                            |sessions| async move {
                                sessions
                                    .find_one(same)
                                    .projection(doc! { field::ID: 1 })
                                    .await
                            },
                        )
                        .await?;
                    return if found.is_some() {
                        Ok(())
                    } else {
                        Err(Error::AlreadyExists)
                    };
                }
            }
        }
        Err(Error::AlreadyExists)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        if self.layout == Layout::Express {
            return self.load_express(id).await;
        }
        // The TTL monitor runs about once a minute, so the query itself hides expired documents.
        let filter = live_session(id);
        let found = self
            .timed("load a session", |sessions| async move {
                sessions.find_one(filter).await
            })
            .await?;
        found
            .map(|document| decode_record(id, document, &*self.codec))
            .transpose()
    }

    async fn save(&self, record: &Record) -> Result<()> {
        if self.layout == Layout::Express {
            return self.save_express(record).await;
        }
        let current = stored_version(record.version)?;
        let next = stored_version(record.next_version()?)?;
        // Also checks the principal, before anything is written.
        let data = data_blob(&*self.codec, record)?;
        // One round trip that decides both conditions on the server: the filter finds the live
        // document, and the pipeline writes only if its version is still `current`. Otherwise
        // every field is set to itself and the server reports the document unmodified.
        let same_version =
            doc! { "$eq": [format!("${}", field::VERSION), { "$literal": current }] };
        let pick = |key: &str, new: Bson| -> Bson {
            Bson::Document(doc! {
                "$cond": [same_version.clone(), new, format!("${key}")]
            })
        };
        let literal = |new: Bson| Bson::Document(doc! { "$literal": new });
        // No principal: `$$REMOVE` leaves the field out (a kept absent field stays absent), so
        // the session leaves the sparse index as it leaves its old principal's sessions.
        let principal = match &record.principal {
            Some(principal) => literal(Bson::String(principal.clone())),
            None => Bson::String("$$REMOVE".to_owned()),
        };
        let filter = live_session(&record.id);
        let update = doc! {
            "$set": {
                field::DATA: pick(field::DATA, literal(Bson::Binary(data))),
                field::EXPIRES: pick(
                    field::EXPIRES,
                    literal(Bson::DateTime(bson_date(record.expires_at))),
                ),
                field::VERSION: pick(field::VERSION, literal(Bson::Int64(next))),
                field::PRINCIPAL: pick(field::PRINCIPAL, principal),
            }
        };
        let result = self
            .timed("save a session", |sessions| async move {
                sessions.update_one(filter, vec![update]).await
            })
            .await?;
        if result.matched_count == 0 {
            Err(Error::NotFound)
        } else if result.modified_count == 0 {
            Err(Error::Conflict)
        } else {
            Ok(())
        }
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let filter = live_session(id);
        let update = doc! { "$set": { field::EXPIRES: bson_date(expires_at) } };
        let result = self
            .timed("touch a session", |sessions| async move {
                sessions.update_one(filter, update).await
            })
            .await?;
        Ok(result.matched_count > 0)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let filter = doc! { field::ID: id.as_str() };
        self.timed("delete a session", |sessions| async move {
            sessions.delete_one(filter).await
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    const LIMIT: Duration = Duration::from_millis(100);

    /// A store on a client that never contacts a server (the driver connects lazily): these
    /// tests run `timed` with futures of their own.
    async fn store() -> MongoStore {
        MongoStore::connect("mongodb://127.0.0.1:1/")
            .await
            .expect("connect is lazy")
            .with_timeout(LIMIT)
            .expect("a positive timeout")
    }

    fn is_timeout(error: &Error) -> bool {
        matches!(error, Error::Backend { source, .. } if source.is::<session_core::Timeout>())
    }

    #[tokio::test(start_paused = true)]
    async fn an_operation_past_the_limit_fails_the_caller_but_runs_to_its_end() {
        let store = store().await;
        let finished = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&finished);
        let result = store
            .timed("test", |_| async move {
                tokio::time::sleep(LIMIT * 3).await;
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(is_timeout(&result.expect_err("past the limit")));
        assert!(!finished.load(Ordering::SeqCst), "the caller did not wait");
        tokio::time::sleep(LIMIT * 3).await;
        assert!(
            finished.load(Ordering::SeqCst),
            "the operation was not dropped at the caller's limit"
        );
        assert_eq!(store.in_flight.available_permits(), MAX_IN_FLIGHT);
    }

    #[tokio::test(start_paused = true)]
    async fn an_operation_that_never_ends_is_dropped_after_the_abandon_limit() {
        let store = store().await;
        let result = store
            .timed("test", |_| {
                std::future::pending::<mongodb::error::Result<()>>()
            })
            .await;
        assert!(is_timeout(&result.expect_err("past the limit")));
        assert_eq!(store.in_flight.available_permits(), MAX_IN_FLIGHT - 1);
        tokio::time::sleep(LIMIT * ABANDON_AFTER).await;
        assert_eq!(
            store.in_flight.available_permits(),
            MAX_IN_FLIGHT,
            "the slot was given back"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_max_in_flight_operations_run_at_once_across_clones() {
        let store = store().await;
        let started = Arc::new(AtomicUsize::new(0));
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..MAX_IN_FLIGHT + 5 {
            let store = store.clone();
            let started = Arc::clone(&started);
            calls.spawn(async move {
                store
                    .timed("test", |_| {
                        started.fetch_add(1, Ordering::SeqCst);
                        std::future::pending::<mongodb::error::Result<()>>()
                    })
                    .await
            });
        }
        let results = calls.join_all().await;
        assert_eq!(results.len(), MAX_IN_FLIGHT + 5);
        assert!(results.iter().all(|r| r.as_ref().is_err_and(is_timeout)));
        assert_eq!(
            started.load(Ordering::SeqCst),
            MAX_IN_FLIGHT,
            "the calls beyond the bound waited for a slot and timed out without starting"
        );
    }
}
