//! The store's operations: one command or one script each, expiry decided by Redis; a session
//! with a principal is first added to that principal's index when the index does not cover it
//! yet (see [`crate::principals`]).
//!
//! No operation reads a clock. A record's `expires_at` becomes the key's expiry (1 ms earlier,
//! see [`key_expiry`]) and Redis, with its own clock, hides and removes the key once that has
//! passed: `GET`, `SET NX` and the scripts see an expired session as no key at all.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use redis::{Cmd, Value};
use session_core::clock::unix_millis;
use session_core::{Error, Id, Principals, Record, Result, Store, check_version, timed};
use time::OffsetDateTime;

use crate::connection::driver_error;
use crate::layout::{
    CorruptRecord, Indexed, StoredValue, TEMP_TTL_MS, UnexpectedReply, key_expiry, parse_header,
    parse_principal, temp_key,
};
use crate::principals::index_score;
use crate::scripts::{self, Script};
use crate::{Layout, RedisStore};

const CREATE: &str = "create a session";
const LOAD: &str = "load a session";
const SAVE: &str = "save a session";
const TOUCH: &str = "touch a session";
const DELETE: &str = "delete a session";

/// How many times `touch` adds a session to its principal's index and tries again, when a
/// concurrent `save` keeps changing the principal in between.
const TOUCH_ATTEMPTS: usize = 3;

static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::SAVE));
static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::TOUCH));

/// The start of this process's temporary-key nonces: random, so that app servers sharing a
/// Redis do not pick the same names; then counted up, so that one process never repeats one.
static NONCE: LazyLock<AtomicU64> = LazyLock::new(|| {
    // Uniqueness, not secrecy, is what counts: without the OS's generator, the time will do.
    let seed = getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Truncation keeps the fast-moving low bits.
        #[allow(clippy::cast_possible_truncation)]
        let nanos = nanos as u64;
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    AtomicU64::new(seed)
});

/// A nonce no other save of this process uses (until 2^64 saves).
fn next_nonce() -> u64 {
    NONCE.fetch_add(1, Ordering::Relaxed)
}

/// [`scripts::TEMP_GONE`]: the temporary key had expired before the save's script ran.
#[derive(Debug, Clone, Copy)]
struct TempGone;

impl std::fmt::Display for TempGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the new value's temporary key expired before the save's script ran; nothing was \
             written"
        )
    }
}

impl std::error::Error for TempGone {}

/// `touch` found another principal on each of its attempts: concurrent saves kept moving the
/// session between principals.
#[derive(Debug, Clone, Copy)]
struct PrincipalKeptChanging;

impl std::fmt::Display for PrincipalKeptChanging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the session's principal changed on each of {TOUCH_ATTEMPTS} attempts"
        )
    }
}

impl std::error::Error for PrincipalKeptChanging {}

impl RedisStore {
    /// `GET` of the session `id`.
    pub(crate) fn get(&self, id: &Id) -> Cmd {
        let mut cmd = Cmd::with_capacity(2, self.prefix.len() + id.as_str().len() + 8);
        cmd.arg("GET").arg(self.key_arg(id));
        cmd
    }

    /// The record in a `GET` reply, `None` for no key.
    pub(crate) fn decode_reply(
        &self,
        operation: &'static str,
        id: &Id,
        reply: Value,
    ) -> Result<Option<Record>> {
        match reply {
            // Never written, deleted, or expired by Redis's clock.
            Value::Nil => Ok(None),
            Value::BulkString(value) => decode(id, &Bytes::from(value), &*self.codec).map(Some),
            _ => Err(Error::backend(operation, UnexpectedReply(operation))),
        }
    }
}

fn corrupt_principal() -> Error {
    Error::decode(CorruptRecord("the stored principal is not valid"))
}

/// The record stored under `id` as `value`, in either native layout.
pub(crate) fn decode(id: &Id, value: &Bytes, codec: &dyn session_core::Codec) -> Result<Record> {
    let header = parse_header(value)?;
    let (principal, data_at) = parse_principal(&header, value)?;
    let data = codec.decode(value.slice(data_at..))?;
    Ok(Record::from_parts(
        id.clone(),
        data,
        header.created_at()?,
        header.expires_at()?,
        header.version,
    )
    .with_principal(principal))
}

fn no_header() -> Error {
    Error::decode(CorruptRecord(
        "the stored value does not start with a session header",
    ))
}

/// The principal a native-layout write of a record expiring at `expires` stores, with the score
/// its index entry gets; none in connect-redis's layout, which has no place for one.
fn indexed<'a>(store: &RedisStore, record: &'a Record, expires: i64) -> Option<Indexed<'a>> {
    match store.layout {
        Layout::Native => record.principal.as_deref().map(|principal| Indexed {
            principal,
            until: index_score(expires),
        }),
        Layout::Express => None,
    }
}

#[async_trait]
impl Store for RedisStore {
    /// `Some` in the native layout; connect-redis's layout keeps no principal.
    fn principals(&self) -> Option<&dyn Principals> {
        match self.layout {
            Layout::Native => Some(self),
            Layout::Express => None,
        }
    }

    async fn create(&self, record: &Record) -> Result<()> {
        if self.layout == Layout::Express {
            return self.express_create(record).await;
        }
        check_version(record.version)?;
        let data = self.codec.encode(&record.data)?;
        let expires = unix_millis(record.expires_at);
        let indexed = indexed(self, record, expires);
        let value = StoredValue::new(record.created_at, record.version, expires, indexed, &data)?;
        let key = self.key_arg(&record.id);
        let mut cmd = Cmd::with_capacity(
            6,
            self.prefix.len() + record.id.as_str().len() + value.len() + 48,
        );
        // NX: Redis treats a key whose expiry has passed as absent, so only a live record
        // blocks the create. An expiry Redis finds has passed stores nothing.
        cmd.arg("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PXAT")
            .arg(key_expiry(expires));
        let reply = timed(CREATE, self.timeout, async {
            // The index first: a `revoke_all` that starts once `create` has returned finds the
            // session. If the `SET` then fails or finds a live session, the entry is one that
            // listing skips (it checks each session) and pruning removes.
            if let Some(indexed) = indexed {
                self.index_add(indexed.principal, &record.id, indexed.until)
                    .await?;
            }
            self.connection.query(&cmd).await
        })
        .await?
        .map_err(|e| driver_error(CREATE, e))?;
        match reply {
            Value::Okay => Ok(()),
            Value::Nil => Err(Error::AlreadyExists),
            _ => Err(Error::backend(CREATE, UnexpectedReply(CREATE))),
        }
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        if self.layout == Layout::Express {
            return self.express_load(id).await;
        }
        let reply = timed(LOAD, self.timeout, self.connection.query(&self.get(id)))
            .await?
            .map_err(|e| driver_error(LOAD, e))?;
        // The key is live by Redis's clock, which is the one that decides: the header's
        // `expires_at` is not compared with the app's clock (a host running fast would hide
        // live sessions).
        self.decode_reply(LOAD, id, reply)
    }

    async fn save(&self, record: &Record) -> Result<()> {
        if self.layout == Layout::Express {
            return self.express_save(record).await;
        }
        let next = record.next_version()?;
        let data = self.codec.encode(&record.data)?;
        let expires = unix_millis(record.expires_at);
        let indexed = indexed(self, record, expires);
        let value = StoredValue::new(record.created_at, next, expires, indexed, &data)?;
        let expected = record.version.to_be_bytes();
        let expiry = key_expiry(expires);
        let principal = indexed.map_or("", |indexed| indexed.principal);
        let reply = timed(SAVE, self.timeout, async {
            // A session that stays its principal's within what the index covers is one round
            // trip. Otherwise (a login, a move to another principal, an expiry past what the
            // index covers) the script writes nothing and asks for the index first, as `create`
            // does. The old principal's index keeps its entry until pruning: listing and
            // revocation check the stored principal, so the session leaves the old principal's
            // sessions as the script commits.
            let mut added = false;
            loop {
                let flag = if added { "1" } else { "" };
                let key = self.key_bytes(&record.id);
                // The value goes to a temporary key with a plain `SET` and the script renames
                // it over the session key once its checks pass: the value never becomes a Lua
                // string (see `scripts::SAVE`).
                let temp = temp_key(&key, next_nonce());
                let mut set = Cmd::with_capacity(5, temp.len() + value.len() + 32);
                set.arg("SET")
                    .arg(&temp[..])
                    .arg(&value)
                    .arg("PX")
                    .arg(TEMP_TTL_MS);
                let reply = self
                    .connection
                    .eval_after(set, &SAVE_SCRIPT, [&key, &temp], |cmd| {
                        cmd.arg(&expected[..])
                            .arg(value.created_at_bytes())
                            .arg(expiry)
                            .arg(principal)
                            .arg(expires)
                            .arg(flag);
                    })
                    .await?;
                match (reply, indexed) {
                    (Value::Int(scripts::INDEX_FIRST), Some(indexed)) if !added => {
                        self.index_add(indexed.principal, &record.id, indexed.until)
                            .await?;
                        added = true;
                    }
                    (reply, _) => return Ok(reply),
                }
            }
        })
        .await?
        .map_err(|e| driver_error(SAVE, e))?;
        match reply {
            Value::Int(scripts::OK) => Ok(()),
            Value::Int(scripts::CONFLICT) => Err(Error::Conflict),
            Value::Int(scripts::NOT_FOUND) => Err(Error::NotFound),
            Value::Int(scripts::CORRUPT) => Err(no_header()),
            Value::Int(scripts::TEMP_GONE) => Err(Error::backend(SAVE, TempGone)),
            _ => Err(Error::backend(SAVE, UnexpectedReply(SAVE))),
        }
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        if self.layout == Layout::Express {
            return self.express_touch(id, expires_at).await;
        }
        let expires = unix_millis(expires_at);
        let expiry = key_expiry(expires);
        let expires_bytes = expires.to_be_bytes();
        let score = index_score(expires);
        let score_bytes = score.to_be_bytes();
        timed(TOUCH, self.timeout, async {
            // One round trip, unless the session has a principal whose index does not cover the
            // new expiry: then the script answers with that principal and writes nothing, and
            // the touch moves the expiry only once the index covers it, so the index never
            // holds an entry that pruning could remove while the session lives.
            let mut added = String::new();
            for _ in 0..TOUCH_ATTEMPTS {
                let reply = self
                    .connection
                    .eval(
                        &TOUCH_SCRIPT,
                        self.key_arg(id),
                        self.prefix.len() + id.as_str().len() + added.len() + 64,
                        |cmd| {
                            cmd.arg(&expires_bytes[..])
                                .arg(expiry)
                                .arg(expires)
                                .arg(&added)
                                .arg(if added.is_empty() {
                                    &[][..]
                                } else {
                                    &score_bytes[..]
                                });
                        },
                    )
                    .await
                    .map_err(|e| driver_error(TOUCH, e))?;
                match reply {
                    Value::Int(scripts::PRESENT) => return Ok(true),
                    Value::Int(scripts::ABSENT) => return Ok(false),
                    Value::Int(scripts::CORRUPT) => return Err(no_header()),
                    Value::Array(parts) => match parts.as_slice() {
                        [
                            Value::Int(scripts::INDEX_FIRST),
                            Value::BulkString(principal),
                        ] => {
                            let principal = String::from_utf8(principal.clone())
                                .map_err(|_| corrupt_principal())?;
                            self.index_add(&principal, id, score)
                                .await
                                .map_err(|e| driver_error(TOUCH, e))?;
                            added = principal;
                        }
                        _ => return Err(Error::backend(TOUCH, UnexpectedReply(TOUCH))),
                    },
                    _ => return Err(Error::backend(TOUCH, UnexpectedReply(TOUCH))),
                }
            }
            Err(Error::Contention {
                operation: TOUCH,
                source: Box::new(PrincipalKeptChanging),
            })
        })
        .await?
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        // Both layouts: connect-redis's destroy is a `DEL` of the key too.
        let mut cmd = Cmd::with_capacity(2, self.prefix.len() + id.as_str().len() + 8);
        // UNLINK frees a large record's memory off the main thread.
        cmd.arg("UNLINK").arg(self.key_arg(id));
        let reply = timed(DELETE, self.timeout, self.connection.query(&cmd))
            .await?
            .map_err(|e| driver_error(DELETE, e))?;
        match reply {
            Value::Int(_) => Ok(()),
            _ => Err(Error::backend(DELETE, UnexpectedReply(DELETE))),
        }
    }
}
