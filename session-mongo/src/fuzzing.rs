//! Entry points for the fuzz targets of the repository's `fuzz/` crate, behind the `fuzzing`
//! feature (off by default): thin wrappers over the private code that turns a stored BSON
//! document back into a record, in both layouts, and over the code that builds the documents,
//! for round trips. No server is involved. Not part of the API: hidden from the docs, and
//! changing whenever the code they wrap changes.

use mongodb::bson::RawDocumentBuf;
use session_core::{Codec, Error, Id, Record, Result};
use time::OffsetDateTime;

use crate::document::{self, field};

fn raw(bytes: &[u8]) -> Result<RawDocumentBuf> {
    RawDocumentBuf::from_bytes(bytes.to_vec()).map_err(Error::decode)
}

/// The record a native-layout document (BSON bytes) holds, as `load` decodes it.
///
/// # Errors
///
/// [`Error::Decode`] for bytes that are not a BSON document, or a document no store writes.
pub fn decode_native(id: &Id, bson: &[u8], codec: &dyn Codec) -> Result<Record> {
    document::decode_record(id, raw(bson)?, codec)
}

/// The native-layout document `create` stores for `record`, as BSON bytes.
///
/// # Errors
///
/// As `create`: the codec's, a principal the store refuses, a version out of range, or a
/// document over MongoDB's limit.
pub fn encode_native(record: &Record, codec: &dyn Codec) -> Result<Vec<u8>> {
    let data = document::data_blob(codec, record)?;
    let version = document::stored_version(record.version)?;
    let document = document::new_document(record, data, version);
    Ok(RawDocumentBuf::from_document(&document)
        .map_err(Error::encode)?
        .into_bytes())
}

/// The record connect-mongo's layout gives for `load`'s reply (BSON bytes with the `session`
/// text, `expires`, and the server's `now`).
///
/// # Errors
///
/// [`Error::Decode`] for bytes that are not a BSON document, or a reply whose fields are
/// missing, of the wrong type, or not express-session's JSON.
pub fn decode_express(id: &Id, bson: &[u8]) -> Result<Record> {
    crate::express::decode_reply(id, &raw(bson)?)
}

/// `load`'s reply for the document connect-mongo's layout stores for `record`, the server's
/// clock reading `now`, as BSON bytes.
///
/// # Errors
///
/// As `create`: data express-session's JSON cannot hold.
pub fn encode_express(record: &Record, now: OffsetDateTime) -> Result<Vec<u8>> {
    let mut document = crate::express::new_document(record)?;
    document.remove(field::ID);
    document.insert(crate::express::NOW, document::bson_date(now));
    Ok(RawDocumentBuf::from_document(&document)
        .map_err(Error::encode)?
        .into_bytes())
}
