//! express-session's stored form, for layouts that share sessions with a running Express app.
//!
//! express-session stores a session as the compact JSON of its object: the values the app set,
//! and a `cookie` object with the cookie's settings (`originalMaxAge`, `expires`, `httpOnly`,
//! `path`, ...), e.g.
//!
//! ```json
//! {"cookie":{"originalMaxAge":3600000,"expires":"2026-11-27T22:30:21.093Z","httpOnly":true,"path":"/"},"username":"JohnDoe"}
//! ```
//!
//! The Express-compatible layouts of the stores (connect-redis, connect-pg-simple and
//! connect-mongo formats) read and write exactly that, through [`encode`] and [`decode`]. The
//! values of [`Data`] are plain JSON there; the `cookie` object is the data's `cookie` key (the
//! key `session-tower` reserves for its per-session settings, with express-session's names).
//!
//! # Versions without a version field
//!
//! Express keeps no version, yet the [`Store`](crate::Store) contract's conditional save must
//! notice a concurrent Express write. The Rust side keeps its version inside the `cookie`
//! object, as the string field [`VERSION_FIELD`]. express-session rebuilds that object from its
//! known fields whenever it saves a session, so **any Express write drops the field**: a
//! session whose `cookie` carries it was last written by the Rust side, at that version. A
//! session without it was last written by Express, and its version is derived from the stored
//! text itself ([`foreign_version`]: 60 bits of a digest the backend can compute too, so a
//! save can compare in the same statement or script). Two different Express writes then give
//! two different versions, and a save over either fails with `Conflict` unless it read exactly
//! that text. The same holds for [`CREATED_FIELD`] (the Rust side's `created_at`), which an
//! Express write also drops. When the data has no `cookie` object of its own, [`encode`] writes
//! one with the record's expiry, marked [`SYNTHETIC_FIELD`] so that [`decode`] leaves it out
//! of the data again.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::clock::{from_unix_millis, unix_millis};
use crate::codec::{FormatError, value_from_json, write_json};
use crate::{Data, Error, MAX_VERSION, Result, Value};

/// The data key of the session's cookie settings, as in express-session.
pub const COOKIE_KEY: &str = "cookie";
/// The field of the `cookie` object holding the Rust side's version, as a decimal string (a
/// string, so that scripts whose numbers are doubles compare it exactly).
pub const VERSION_FIELD: &str = "rsVersion";
/// The field of the `cookie` object holding the Rust side's `created_at`, in Unix milliseconds.
pub const CREATED_FIELD: &str = "rsCreated";
/// Marks a `cookie` object the store wrote because the data had none.
pub const SYNTHETIC_FIELD: &str = "rsSynthetic";

/// A session read from express-session's JSON.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decoded {
    /// The session's values, with its `cookie` object under [`COOKIE_KEY`] unless the store
    /// synthesized it; the Rust side's fields are taken out of it.
    pub data: Data,
    /// The Rust side's version, if the Rust side wrote this text last.
    pub version: Option<u64>,
    /// The Rust side's `created_at`, if the Rust side wrote this text last.
    pub created_at: Option<OffsetDateTime>,
}

/// express-session's JSON for `data`, with the Rust side's `version` and `created_at` in its
/// `cookie` object. When `data` has no `cookie` object, one is written with `expires_at`
/// (so that Express can read the session) and marked synthetic.
///
/// # Errors
///
/// [`Error::Encode`] if a value has no JSON form (e.g. a map with integer keys), or if `data`'s
/// `cookie` value is not a JSON object.
pub fn encode(
    data: &Data,
    version: u64,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<Vec<u8>> {
    let mut cookie = match data.get_value(COOKIE_KEY) {
        Some(value) => match value.to_json() {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(Error::encode(FormatError(
                    "the session's `cookie` value must be a JSON object in express-session's format",
                )));
            }
        },
        None => {
            let mut map = serde_json::Map::new();
            map.insert("originalMaxAge".into(), serde_json::Value::Null);
            map.insert("expires".into(), js_date(expires_at).into());
            map.insert("httpOnly".into(), true.into());
            map.insert("path".into(), "/".into());
            map.insert(SYNTHETIC_FIELD.into(), true.into());
            map
        }
    };
    cookie.insert(VERSION_FIELD.into(), version.to_string().into());
    cookie.insert(CREATED_FIELD.into(), unix_millis(created_at).into());

    let mut out = Vec::with_capacity(
        64 + data
            .iter()
            .map(|(k, v)| k.len() + 4 + v.as_msgpack().len() * 2)
            .sum::<usize>(),
    );
    out.extend_from_slice(b"{\"cookie\":");
    serde_json::to_writer(&mut out, &cookie).map_err(Error::encode)?;
    for (key, value) in data.iter().filter(|(k, _)| *k != COOKIE_KEY) {
        out.push(b',');
        serde_json::to_writer(&mut out, key).map_err(Error::encode)?;
        out.push(b':');
        write_json(&mut out, value)?;
    }
    out.push(b'}');
    Ok(out)
}

/// Reads express-session's JSON.
///
/// # Errors
///
/// [`Error::Decode`] if `bytes` is not a JSON object, has no `cookie` object (express-session
/// itself fails on such a session), or carries Rust-side fields of the wrong form.
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let object: BTreeMap<String, &RawValue> =
        serde_json::from_slice(bytes).map_err(Error::decode)?;
    let mut data = BTreeMap::new();
    let mut version = None;
    let mut created_at = None;
    let mut has_cookie = false;
    for (key, raw) in object {
        if key != COOKIE_KEY {
            data.insert(key, value_from_json(raw.get())?);
            continue;
        }
        has_cookie = true;
        let mut cookie: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(raw.get()).map_err(|_| {
                Error::decode(FormatError("the session's `cookie` is not a JSON object"))
            })?;
        if let Some(v) = cookie.remove(VERSION_FIELD) {
            let parsed = v
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|v| *v <= MAX_VERSION)
                .ok_or_else(|| {
                    Error::decode(FormatError(
                        "the cookie's rsVersion is not a decimal version string",
                    ))
                })?;
            version = Some(parsed);
        }
        if let Some(c) = cookie.remove(CREATED_FIELD) {
            let millis = c.as_i64().ok_or_else(|| {
                Error::decode(FormatError("the cookie's rsCreated is not an integer"))
            })?;
            created_at = Some(from_unix_millis(millis)?);
        }
        let synthetic = cookie.remove(SYNTHETIC_FIELD).is_some();
        if !synthetic {
            let value = Value::encode(&serde_json::Value::Object(cookie))?;
            data.insert(key, value);
        }
    }
    if !has_cookie {
        return Err(Error::decode(FormatError(
            "express-session data without a `cookie` object",
        )));
    }
    Ok(Decoded {
        data: data.into_iter().collect(),
        version,
        created_at,
    })
}

/// The version of a session Express wrote last: the first 60 bits (15 hex digits) of a digest
/// of the stored text, given in lowercase or uppercase hex.
///
/// Each layout uses a digest its backend computes natively (e.g. SHA-1 in a Redis script, MD5
/// in PostgreSQL), so a conditional save compares in the same script or statement.
///
/// # Errors
///
/// [`Error::Decode`] if `digest_hex` has fewer than 15 hex digits.
pub fn foreign_version(digest_hex: &str) -> Result<u64> {
    digest_hex
        .get(..15)
        .and_then(|prefix| u64::from_str_radix(prefix, 16).ok())
        .ok_or_else(|| Error::decode(FormatError("a digest needs at least 15 hex digits")))
}

/// `t` as JavaScript's `Date.prototype.toISOString` writes it: UTC, milliseconds, `Z`.
#[must_use]
pub fn js_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses a date as JavaScript writes it in JSON (`2026-11-27T22:30:21.093Z`, or any RFC 3339
/// date-time).
///
/// # Errors
///
/// [`Error::Decode`] for anything else.
pub fn parse_js_date(text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(Error::decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::now;
    use time::Duration;

    #[test]
    fn express_written_session_decodes_without_rust_fields() {
        let text = br#"{"cookie":{"originalMaxAge":3600000,"expires":"2026-11-27T22:30:21.093Z","httpOnly":true,"path":"/"},"username":"JohnDoe"}"#;
        let decoded = decode(text).expect("express JSON");
        assert_eq!(decoded.version, None);
        assert_eq!(decoded.created_at, None);
        assert_eq!(
            decoded.data.get::<String>("username").expect("decode"),
            Some("JohnDoe".to_owned())
        );
        let cookie = decoded
            .data
            .get::<serde_json::Value>(COOKIE_KEY)
            .expect("decode")
            .expect("cookie kept");
        assert_eq!(cookie["originalMaxAge"], 3_600_000);
    }

    #[test]
    fn rust_written_session_round_trips_version_and_created() {
        let mut data = Data::new();
        data.insert("username", "JohnDoe").expect("encode");
        let created = now() - Duration::minutes(5);
        let text = encode(&data, 42, created, now() + Duration::hours(1)).expect("encode");
        assert!(
            text.starts_with(b"{\"cookie\":{"),
            "cookie first, as Express writes it"
        );
        let decoded = decode(&text).expect("decode");
        assert_eq!(decoded.version, Some(42));
        assert_eq!(decoded.created_at, Some(created));
        assert_eq!(decoded.data, data, "the synthetic cookie is left out");
    }

    #[test]
    fn an_express_write_drops_the_rust_fields() {
        // What express-session's Cookie#toJSON keeps: its own fields, none of ours.
        let mut data = Data::new();
        data.insert(
            COOKIE_KEY,
            &serde_json::json!({"originalMaxAge": 1000, "path": "/"}),
        )
        .expect("encode");
        let text = encode(&data, 7, now(), now()).expect("encode");
        let mut json: serde_json::Value = serde_json::from_slice(&text).expect("json");
        let cookie = json["cookie"].as_object_mut().expect("object");
        cookie
            .retain(|k, _| ["originalMaxAge", "expires", "httpOnly", "path"].contains(&k.as_str()));
        let rewritten = serde_json::to_vec(&json).expect("json");
        let decoded = decode(&rewritten).expect("decode");
        assert_eq!(decoded.version, None);
        assert_eq!(decoded.created_at, None);
    }

    #[test]
    fn malformed_sessions_are_decode_errors() {
        for text in [
            &b"not json"[..],
            b"[]",
            br#"{"username":"x"}"#,
            br#"{"cookie":"x"}"#,
            br#"{"cookie":{"rsVersion":5}}"#,
            br#"{"cookie":{"rsVersion":"-1"}}"#,
            br#"{"cookie":{"rsVersion":"9223372036854775808"}}"#,
            br#"{"cookie":{"rsCreated":"soon"}}"#,
        ] {
            assert!(
                matches!(decode(text), Err(Error::Decode(_))),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn non_object_cookie_value_is_an_encode_error() {
        let mut data = Data::new();
        data.insert(COOKIE_KEY, "text").expect("encode");
        assert!(matches!(
            encode(&data, 0, now(), now()),
            Err(Error::Encode(_))
        ));
    }

    #[test]
    fn foreign_version_takes_60_bits() {
        assert_eq!(
            foreign_version("ffffffffffffffffffff").expect("hex"),
            (1 << 60) - 1
        );
        assert_eq!(foreign_version("000000000000001abc").expect("hex"), 1);
        assert!(foreign_version("abc").is_err());
        assert!(foreign_version("zzzzzzzzzzzzzzzzzz").is_err());
    }

    #[test]
    fn dates_as_javascript_writes_them() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_795_127_421_093_000_000).expect("t");
        assert_eq!(js_date(t), "2026-11-19T22:30:21.093Z");
        assert_eq!(parse_js_date(&js_date(t)).expect("parse"), t);
    }
}
