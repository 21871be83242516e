//! Entry points for the fuzz targets of the repository's `fuzz/` crate, behind the `fuzzing`
//! feature (off by default): thin wrappers over the private code that turns a row's columns
//! back into a record, in the native layout and (with `postgres`) connect-pg-simple's. No
//! database is involved. Not part of the API: hidden from the docs, and changing whenever the
//! code they wrap changes.

use session_core::{Codec, Id, Record, Result};

/// The record a native-layout row holds: `data` (the codec's bytes), `created_at` and
/// `expires_at` (Unix milliseconds), `version` and `principal`, as `load` reads them.
///
/// # Errors
///
/// As `load`: [`session_core::Error::Decode`] for columns no store writes.
pub fn decode_native(
    codec: &dyn Codec,
    id: &Id,
    data: Vec<u8>,
    created_at: i64,
    expires_at: i64,
    version: i64,
    principal: Option<String>,
) -> Result<Record> {
    crate::store::record_of(
        codec,
        id.clone(),
        (data, created_at, expires_at, version, principal),
    )
}

/// The record a connect-pg-simple row holds: the `sess` text, its MD5 in hex as PostgreSQL's
/// `md5` writes it, `expire` and the database's `now` (Unix milliseconds), as `load` reads them.
///
/// # Errors
///
/// As `load`: [`session_core::Error::Decode`] for a text that is not express-session's JSON.
#[cfg(feature = "postgres")]
pub fn decode_express(id: &Id, sess: &str, digest: &str, expires: i64, now: i64) -> Result<Record> {
    crate::express::record_of(id, sess, digest, expires, now)
}
