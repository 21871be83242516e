//! Entry points for the fuzz targets of the repository's `fuzz/` crate, behind the `fuzzing`
//! feature (off by default): thin wrappers over the private code that turns a stored value back
//! into a record, in both layouts, and over the native layout's writer, for round trips. No
//! server is involved. Not part of the API: hidden from the docs, and changing whenever the code
//! they wrap changes.

use bytes::Bytes;
use redis::ToRedisArgs;
use session_core::clock::unix_millis;
use session_core::express::{self, Decoded};
use session_core::{Codec, Error, Id, Record, Result};

use crate::layout::{Indexed, StoredValue};

/// The record a native-layout value (header, principal if any, then the codec's data) holds,
/// as `load` decodes a `GET` reply.
///
/// # Errors
///
/// As `load`: [`Error::Decode`] for a value no store writes.
pub fn decode_native(id: &Id, value: &[u8], codec: &dyn Codec) -> Result<Record> {
    crate::ops::decode(id, &Bytes::copy_from_slice(value), codec)
}

/// The native-layout value a write of `record` stores (with its principal, if any), as sent to
/// Redis.
///
/// # Errors
///
/// As a write: the codec's, a principal the store refuses, or a value over Redis's limit.
pub fn encode_native(record: &Record, codec: &dyn Codec) -> Result<Vec<u8>> {
    let data = codec.encode(&record.data)?;
    let expires = unix_millis(record.expires_at);
    let indexed = record.principal.as_deref().map(|principal| Indexed {
        principal,
        until: crate::principals::index_score(expires),
    });
    let value = StoredValue::new(record.created_at, record.version, expires, indexed, &data)?;
    let mut args = value.to_redis_args();
    match (args.pop(), args.is_empty()) {
        (Some(value), true) => Ok(value),
        _ => Err(Error::encode("a stored value is one argument")),
    }
}

/// connect-redis's layout: the session, version and creation time `load` reads from a stored
/// text (the version from `rsVersion`, or the text's digest when Express wrote it last).
///
/// # Errors
///
/// As `load`: [`Error::Decode`] for a text that is not express-session's JSON.
pub fn decode_express(value: &[u8]) -> Result<(Decoded, u64)> {
    let decoded = express::decode(value)?;
    let version = crate::express::version_of(&decoded, value)?;
    Ok((decoded, version))
}
