//! connect-mongo's layout: `{_id, session: "<express-session's JSON>", expires: Date}`, with
//! the Rust side's version inside the JSON (see [`session_core::express`]).

use std::fmt;

use mongodb::bson::{Document, RawBsonRef, RawDocumentBuf, doc};
use session_core::express::{self, Decoded};
use session_core::{Error, Id, Record, Result};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;

use crate::MongoStore;
use crate::document::{MAX_DOCUMENT_SIZE, bad, bson_date, field, instant};
use crate::store::{live, live_session, server_now, simple_collation};

/// The field of the aggregation reply that carries the server's clock.
pub(crate) const NOW: &str = "now";

/// How many times `save` reads the session and tries its conditional write before it reports
/// [`Error::Contention`]. The write misses only when the stored text changed (or the session
/// went) between the read and the write; the next read then nearly always decides (`Conflict`,
/// `NotFound`), so more than two attempts are needed only under a stream of writes that each
/// leave a text of the very version this save expects.
const SAVE_ATTEMPTS: usize = 4;

/// The BSON size of a document whose id is `id_len` bytes long and whose JSON text is
/// `text_len` bytes long: the size MongoDB compares with its 16 MiB limit.
pub(crate) fn document_size(id_len: usize, text_len: usize) -> usize {
    let element = |key: &str, value: usize| (2 + key.len()).saturating_add(value);
    let string = |len: usize| len.saturating_add(5); // int32 length, bytes, NUL
    [
        4,
        element(field::ID, string(id_len)),
        element(field::SESSION, string(text_len)),
        element(field::EXPIRES, 8),
        1,
    ]
    .into_iter()
    .fold(0, usize::saturating_add)
}

/// express-session's JSON for `record`, with `version` and `created_at` as the Rust side's
/// fields.
///
/// # Errors
///
/// [`Error::Encode`] from [`express::encode`], [`Error::TooLarge`] if the document would exceed
/// [`MAX_DOCUMENT_SIZE`].
fn session_text(record: &Record, version: u64, created_at: OffsetDateTime) -> Result<String> {
    let bytes = express::encode(&record.data, version, created_at, record.expires_at)?;
    let size = document_size(record.id.as_str().len(), bytes.len());
    if size > MAX_DOCUMENT_SIZE {
        return Err(Error::TooLarge {
            size,
            limit: MAX_DOCUMENT_SIZE,
        });
    }
    // serde_json writes UTF-8; a failure here would be a bug there, reported, not a panic.
    String::from_utf8(bytes).map_err(Error::encode)
}

/// The whole document `create` stores for `record`, exactly as connect-mongo writes one.
pub(crate) fn new_document(record: &Record) -> Result<Document> {
    let text = session_text(record, record.version, record.created_at)?;
    Ok(doc! {
        field::ID: record.id.as_str(),
        field::SESSION: text,
        field::EXPIRES: bson_date(record.expires_at),
    })
}

/// The version of a stored text: the Rust side's `rsVersion` if it wrote the text last, else
/// the first 60 bits of the text's SHA-1 ([`express::foreign_version`]).
fn version_of(decoded: &Decoded, text: &str) -> Result<u64> {
    match decoded.version {
        Some(version) => Ok(version),
        None => express::foreign_version(&sha1_hex(text)),
    }
}

/// The SHA-1 of `text` in lowercase hex, as `sha1sum` and Redis's `redis.sha1hex` write it.
fn sha1_hex(text: &str) -> String {
    use std::fmt::Write as _;
    Sha1::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(40), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The stored JSON text of a document.
fn session_field(document: &RawDocumentBuf) -> Result<&str> {
    match document.get(field::SESSION).map_err(Error::decode)? {
        Some(RawBsonRef::String(text)) => Ok(text),
        // connect-mongo's `stringify: false` stores an object instead.
        Some(_) => Err(bad(field::SESSION, "is not a string of JSON")),
        None => Err(bad(field::SESSION, "is missing")),
    }
}

/// The date field `key` of a reply.
fn date(document: &RawDocumentBuf, key: &'static str) -> Result<OffsetDateTime> {
    match document.get(key).map_err(Error::decode)? {
        Some(RawBsonRef::DateTime(d)) => instant(d),
        Some(_) => Err(bad(key, "is not a date")),
        None => Err(bad(key, "is missing")),
    }
}

/// The record `load` returns for a reply holding `session`, `expires` and the server's `now`.
///
/// A session Express wrote last carries no `created_at`: the server's `now` stands in for it,
/// so that an absolute timeout counts from the Rust side's next write.
pub(crate) fn decode_reply(id: &Id, reply: &RawDocumentBuf) -> Result<Record> {
    let text = session_field(reply)?;
    let expires_at = date(reply, field::EXPIRES)?;
    let decoded = express::decode(text.as_bytes())?;
    let version = version_of(&decoded, text)?;
    let created_at = match decoded.created_at {
        Some(created_at) => created_at,
        None => date(reply, NOW)?,
    };
    Ok(Record::from_parts(
        id.clone(),
        decoded.data,
        created_at,
        expires_at,
        version,
    ))
}

/// `save` kept finding a text of the expected version that changed before its write landed.
#[derive(Debug)]
struct KeptChanging;

impl fmt::Display for KeptChanging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the stored session changed between the read and the conditional write \
             {SAVE_ATTEMPTS} times in a row"
        )
    }
}

impl std::error::Error for KeptChanging {}

impl MongoStore {
    /// `load` in connect-mongo's layout: one aggregation that finds the live document and
    /// reads the server's clock.
    pub(crate) async fn load_express(&self, id: &Id) -> Result<Option<Record>> {
        let pipeline = [
            doc! { "$match": live_session(id) },
            doc! { "$limit": 1 },
            doc! {
                "$project": {
                    field::ID: 0,
                    field::SESSION: 1,
                    field::EXPIRES: 1,
                    NOW: server_now(),
                }
            },
        ];
        let reply = self
            .timed("load a session", |sessions| async move {
                let mut cursor = sessions
                    .aggregate(pipeline)
                    .with_type::<RawDocumentBuf>()
                    .await?;
                if cursor.advance().await? {
                    Ok(Some(cursor.current().to_raw_document_buf()))
                } else {
                    Ok(None)
                }
            })
            .await?;
        reply.map(|reply| decode_reply(id, &reply)).transpose()
    }

    /// `save` in connect-mongo's layout.
    ///
    /// MongoDB has no digest to compute the version of a text Express wrote, so the version
    /// check is done here: read the live document, compare the version of its text with the
    /// record's, then write only if the text is still exactly the one read (a compare-and-set
    /// on the whole text, in the filter of one `update_one`). A write that misses means the
    /// text changed or the session went in between; the next read decides.
    pub(crate) async fn save_express(&self, record: &Record) -> Result<()> {
        let next = record.next_version()?;
        // Encoded before the first round trip, so that a record too large or without a JSON
        // form fails before anything is read or written.
        let mut created_at = record.created_at;
        let mut text = session_text(record, next, created_at)?;
        for _ in 0..SAVE_ATTEMPTS {
            let filter = live_session(&record.id);
            let Some(stored) = self
                .timed("read a session to save it", |sessions| async move {
                    sessions
                        .find_one(filter)
                        .projection(doc! { field::ID: 0, field::SESSION: 1 })
                        .await
                })
                .await?
            else {
                return Err(Error::NotFound);
            };
            let stored_text = session_field(&stored)?;
            let decoded = express::decode(stored_text.as_bytes())?;
            if version_of(&decoded, stored_text)? != record.version {
                return Err(Error::Conflict);
            }
            // The stored `created_at` is kept. After an Express write there is none, and the
            // record's (the instant it was loaded) is the best there is.
            let kept = decoded.created_at.unwrap_or(record.created_at);
            if kept != created_at {
                created_at = kept;
                text = session_text(record, next, created_at)?;
            }
            let filter = doc! {
                field::ID: record.id.as_str(),
                field::SESSION: stored_text,
                "$expr": live(),
            };
            let update = doc! {
                "$set": {
                    field::SESSION: text.as_str(),
                    field::EXPIRES: bson_date(record.expires_at),
                }
            };
            let result = self
                .timed("save a session", |sessions| async move {
                    sessions
                        .update_one(filter, update)
                        .collation(simple_collation())
                        .await
                })
                .await?;
            if result.matched_count > 0 {
                return Ok(());
            }
        }
        Err(Error::Contention {
            operation: "save a session",
            source: Box::new(KeptChanging),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::express::VERSION_FIELD;
    use session_core::now;

    #[test]
    fn computed_size_is_the_encoded_size() {
        let mut record = Record::new(Id::random(), time::Duration::hours(1));
        for len in [0, 1, 127, 128, 70_000] {
            record.data.insert("k", &"x".repeat(len)).expect("encode");
            let document = new_document(&record).expect("small enough");
            let text_len = document.get_str(field::SESSION).expect("a string").len();
            let encoded = RawDocumentBuf::from_document(&document).expect("encodes");
            assert_eq!(
                document_size(record.id.as_str().len(), text_len),
                encoded.as_bytes().len(),
                "text of {text_len} bytes"
            );
        }
    }

    #[test]
    fn records_over_the_document_limit_are_too_large() {
        let mut record = Record::new(Id::random(), time::Duration::hours(1));
        record
            .data
            .insert("k", &"x".repeat(MAX_DOCUMENT_SIZE))
            .expect("encode");
        match new_document(&record) {
            Err(Error::TooLarge { size, limit }) => {
                assert_eq!(limit, MAX_DOCUMENT_SIZE);
                assert!(size > limit, "{size} over {limit}");
            }
            other => panic!("a 16 MiB value gave {other:?}, expected TooLarge"),
        }
    }

    #[test]
    fn sha1_hex_is_the_usual_digest() {
        // `printf abc | sha1sum`
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn versions_come_from_rs_version_else_from_the_digest() {
        let express_text = r#"{"cookie":{"originalMaxAge":1000,"path":"/"},"user":"ada"}"#;
        let decoded = express::decode(express_text.as_bytes()).expect("decode");
        assert_eq!(
            version_of(&decoded, express_text).expect("a version"),
            express::foreign_version(&sha1_hex(express_text)).expect("hex")
        );
        let record = Record::new(Id::random(), time::Duration::hours(1));
        let rust_text = session_text(&record, 9, now()).expect("encode");
        assert!(rust_text.contains(&format!(r#""{VERSION_FIELD}":"9""#)));
        let decoded = express::decode(rust_text.as_bytes()).expect("decode");
        assert_eq!(version_of(&decoded, &rust_text).expect("a version"), 9);
    }

    #[test]
    fn replies_of_the_wrong_shape_are_decode_errors_naming_the_field() {
        let later = mongodb::bson::DateTime::now();
        let cases = [
            (
                mongodb::bson::rawdoc! { "expires": later, "now": later },
                "`session` is missing",
            ),
            (
                mongodb::bson::rawdoc! {
                    "session": { "cookie": {} }, "expires": later, "now": later,
                },
                "`session` is not a string of JSON",
            ),
            (
                mongodb::bson::rawdoc! {
                    "session": r#"{"cookie":{}}"#, "expires": "soon", "now": later,
                },
                "`expires` is not a date",
            ),
        ];
        for (reply, expected) in cases {
            match decode_reply(&Id::random(), &reply) {
                Err(e @ Error::Decode(_)) => {
                    let cause = std::error::Error::source(&e)
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    assert!(cause.contains(expected), "{cause:?} for {reply:?}");
                }
                other => panic!("{reply:?} gave {other:?}, expected Decode"),
            }
        }
    }
}
