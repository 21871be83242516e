//! connect-redis's layout: the string `{prefix}{id}` holding express-session's JSON, expiring
//! with the session, the Rust side's version inside the JSON (see [`session_core::express`]).
//! See the crate documentation's "Express-compatible layout".

use std::sync::LazyLock;

use redis::{Cmd, Value};
use session_core::clock::{from_unix_millis, unix_millis};
use session_core::express::{self, Decoded};
use session_core::{Error, Id, Record, Result, check_version, timed};
use time::OffsetDateTime;

use crate::RedisStore;
use crate::connection::driver_error;
use crate::layout::{CorruptRecord, UnexpectedReply, check_size, key_expiry};
use crate::scripts::{self, Script};

const CREATE: &str = "create a session";
const LOAD: &str = "load a session";
const SAVE: &str = "save a session";
const TOUCH: &str = "touch a session";

static LOAD_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::EXPRESS_LOAD));
static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::EXPRESS_SAVE));
static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::EXPRESS_TOUCH));

/// The expiry a key without one (connect-redis's `disableTTL`) loads with, counted from Redis's
/// clock: one day, connect-redis's default TTL. The Rust side's next write gives the key a real
/// expiry.
const NO_TTL_LIFETIME: time::Duration = time::Duration::days(1);

/// Versions from [`express::foreign_version`] have 60 bits; a version at or above this has no
/// digest form, so no text Express wrote can be at that version.
const DIGEST_VERSIONS: u64 = 1 << 60;

fn not_express() -> Error {
    Error::decode(CorruptRecord(
        "the stored value is not express-session's JSON with a `cookie` object",
    ))
}

/// express-session's JSON for `record` at `version`, checked against Redis's argument limit.
fn text(record: &Record, version: u64, created_at: OffsetDateTime) -> Result<Vec<u8>> {
    let text = express::encode(&record.data, version, created_at, record.expires_at)?;
    check_size(text.len())?;
    Ok(text)
}

/// The SHA-1 of `bytes` in lowercase hex, as Redis's `redis.sha1hex` writes it.
fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

/// The version of a stored text: the Rust side's `rsVersion` if it wrote the text last, else the
/// first 60 bits of the text's SHA-1.
pub(crate) fn version_of(decoded: &Decoded, stored: &[u8]) -> Result<u64> {
    match decoded.version {
        Some(version) => Ok(version),
        None => express::foreign_version(&sha1_hex(stored)),
    }
}

/// A `TIME` reply's seconds and microseconds as an instant, whole milliseconds.
fn redis_time(seconds: &[u8], micros: &[u8]) -> Option<OffsetDateTime> {
    let number = |bytes: &[u8]| std::str::from_utf8(bytes).ok()?.parse::<i64>().ok();
    let millis = number(seconds)?
        .checked_mul(1000)?
        .checked_add(number(micros)? / 1000)?;
    from_unix_millis(millis).ok()
}

impl RedisStore {
    pub(crate) async fn express_create(&self, record: &Record) -> Result<()> {
        check_version(record.version)?;
        let value = text(record, record.version, record.created_at)?;
        let mut cmd = Cmd::with_capacity(
            6,
            self.prefix.len() + record.id.as_str().len() + value.len() + 48,
        );
        // As in the native layout: NX lets only a live key block the create, and an expiry
        // that has passed by Redis's clock stores nothing.
        cmd.arg("SET")
            .arg(self.key_arg(&record.id))
            .arg(&value)
            .arg("NX")
            .arg("PXAT")
            .arg(key_expiry(unix_millis(record.expires_at)));
        let reply = timed(CREATE, self.timeout, self.connection.query(&cmd))
            .await?
            .map_err(|e| driver_error(CREATE, e))?;
        match reply {
            Value::Okay => Ok(()),
            Value::Nil => Err(Error::AlreadyExists),
            _ => Err(Error::backend(CREATE, UnexpectedReply(CREATE))),
        }
    }

    pub(crate) async fn express_load(&self, id: &Id) -> Result<Option<Record>> {
        let reply = timed(
            LOAD,
            self.timeout,
            self.connection
                .eval(&LOAD_SCRIPT, self.key_arg(id), 0, |_| {}),
        )
        .await?
        .map_err(|e| driver_error(LOAD, e))?;
        let unexpected = || Error::backend(LOAD, UnexpectedReply(LOAD));
        let parts = match reply {
            // Never written, deleted, or expired by Redis's clock. (The script's `false` is a nil
            // reply over RESP2, a boolean over RESP3.)
            Value::Nil | Value::Boolean(false) => return Ok(None),
            Value::Array(parts) => parts,
            _ => return Err(unexpected()),
        };
        let [
            Value::BulkString(value),
            Value::Int(key_expires),
            Value::BulkString(seconds),
            Value::BulkString(micros),
        ] = parts.as_slice()
        else {
            return Err(unexpected());
        };
        let now = redis_time(seconds, micros).ok_or_else(unexpected)?;
        let decoded = express::decode(value)?;
        let version = version_of(&decoded, value)?;
        // A session Express wrote last has no `created_at`: Redis's clock now stands in, so an
        // absolute timeout counts from the Rust side's next write.
        let created_at = decoded.created_at.unwrap_or(now);
        let expires_at = if *key_expires < 0 {
            now.checked_add(NO_TTL_LIFETIME).ok_or_else(unexpected)?
        } else {
            // The key expires 1 ms before the session (see `key_expiry`).
            from_unix_millis(key_expires.saturating_add(1))?
        };
        Ok(Some(Record::from_parts(
            id.clone(),
            decoded.data,
            created_at,
            expires_at,
            version,
        )))
    }

    pub(crate) async fn express_save(&self, record: &Record) -> Result<()> {
        let next = record.next_version()?;
        let expected = record.version.to_string();
        let expected_digest = if record.version < DIGEST_VERSIONS {
            format!("{:015x}", record.version)
        } else {
            String::new()
        };
        let expiry = key_expiry(unix_millis(record.expires_at));
        let mut created_at = record.created_at;
        // The second attempt carries the stored `created_at`. If that one too hears "created
        // differs", the text changed in between while keeping its version: someone else wrote.
        for _ in 0..2 {
            let value = text(record, next, created_at)?;
            let created = unix_millis(created_at).to_string();
            let reply = timed(
                SAVE,
                self.timeout,
                self.connection.eval(
                    &SAVE_SCRIPT,
                    self.key_arg(&record.id),
                    value.len() + 64,
                    |cmd| {
                        cmd.arg(&expected)
                            .arg(&expected_digest)
                            .arg(&created)
                            .arg(&value)
                            .arg(expiry);
                    },
                ),
            )
            .await?
            .map_err(|e| driver_error(SAVE, e))?;
            match reply {
                Value::Int(scripts::OK) => return Ok(()),
                Value::Int(scripts::CONFLICT) => return Err(Error::Conflict),
                Value::Int(scripts::NOT_FOUND) => return Err(Error::NotFound),
                Value::Int(scripts::CORRUPT) => return Err(not_express()),
                Value::Array(parts) => match parts.as_slice() {
                    [
                        Value::Int(scripts::CREATED_DIFFERS),
                        Value::BulkString(stored),
                    ] => {
                        created_at = std::str::from_utf8(stored)
                            .ok()
                            .and_then(|s| s.parse::<i64>().ok())
                            .map(from_unix_millis)
                            .ok_or_else(not_express)??;
                    }
                    _ => return Err(Error::backend(SAVE, UnexpectedReply(SAVE))),
                },
                _ => return Err(Error::backend(SAVE, UnexpectedReply(SAVE))),
            }
        }
        Err(Error::Conflict)
    }

    pub(crate) async fn express_touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let expiry = key_expiry(unix_millis(expires_at));
        let reply = timed(
            TOUCH,
            self.timeout,
            self.connection
                .eval(&TOUCH_SCRIPT, self.key_arg(id), 32, |cmd| {
                    cmd.arg(expiry);
                }),
        )
        .await?
        .map_err(|e| driver_error(TOUCH, e))?;
        match reply {
            Value::Int(scripts::PRESENT) => Ok(true),
            Value::Int(scripts::ABSENT) => Ok(false),
            Value::Int(scripts::CORRUPT) => Err(not_express()),
            _ => Err(Error::backend(TOUCH, UnexpectedReply(TOUCH))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored text as `load` reads it.
    fn decode_for_test(value: &[u8]) -> (Decoded, u64) {
        let decoded = express::decode(value).expect("express-session's JSON");
        let version = version_of(&decoded, value).expect("a version");
        (decoded, version)
    }

    #[test]
    fn sha1_hex_matches_the_known_digest() {
        // `printf abc | sha1sum`
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn express_text_has_the_digest_version_and_rust_text_its_own() {
        let express_text = br#"{"cookie":{"originalMaxAge":3600000,"expires":"2026-11-27T22:30:21.093Z","httpOnly":true,"path":"/"},"username":"JohnDoe"}"#;
        let (decoded, version) = decode_for_test(express_text);
        assert_eq!(decoded.version, None);
        assert_eq!(
            version,
            express::foreign_version(&sha1_hex(express_text)).expect("hex")
        );
        assert!(version < DIGEST_VERSIONS);

        let mut record = Record::new(Id::random(), time::Duration::hours(1));
        record.data = decoded.data;
        let rust_text = text(&record, 9, record.created_at).expect("encode");
        let (decoded, version) = decode_for_test(&rust_text);
        assert_eq!((decoded.version, version), (Some(9), 9));
    }

    #[test]
    fn redis_time_is_whole_milliseconds() {
        let t = redis_time(b"1795127421", b"093999").expect("valid");
        assert_eq!(unix_millis(t), 1_795_127_421_093);
        assert!(redis_time(b"x", b"0").is_none());
        assert!(redis_time(b"1", b"").is_none());
        assert!(redis_time(i64::MAX.to_string().as_bytes(), b"0").is_none());
    }
}
