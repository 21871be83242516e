//! The store's operations: one command or one script each, expiry decided by Redis.
//!
//! No operation reads a clock. A record's `expires_at` becomes the key's expiry (1 ms earlier,
//! see [`key_expiry`]) and Redis, with its own clock, hides and removes the key once that has
//! passed: `GET`, `SET NX` and the scripts see an expired session as no key at all.

use std::sync::LazyLock;

use async_trait::async_trait;
use bytes::Bytes;
use redis::{Cmd, Value};
use session_core::clock::unix_millis;
use session_core::{Error, Id, Record, Result, Store, check_version, timed};
use time::OffsetDateTime;

use crate::connection::driver_error;
use crate::layout::{
    CorruptRecord, HEADER_LEN, StoredValue, UnexpectedReply, header, key_expiry, parse_header,
};
use crate::scripts::{self, Script};
use crate::{Layout, RedisStore};

const CREATE: &str = "create a session";
const LOAD: &str = "load a session";
const SAVE: &str = "save a session";
const TOUCH: &str = "touch a session";
const DELETE: &str = "delete a session";

static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::SAVE));
static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::TOUCH));

fn no_header() -> Error {
    Error::decode(CorruptRecord(
        "the stored value does not start with a session header",
    ))
}

#[async_trait]
impl Store for RedisStore {
    async fn create(&self, record: &Record) -> Result<()> {
        if self.layout == Layout::Express {
            return self.express_create(record).await;
        }
        check_version(record.version)?;
        let data = self.codec.encode(&record.data)?;
        let expires = unix_millis(record.expires_at);
        let value = StoredValue {
            header: header(record.created_at, record.version, expires),
            data: &data,
        }
        .checked()?;
        let key = self.key_arg(&record.id);
        let mut cmd = Cmd::with_capacity(
            6,
            self.prefix.len() + record.id.as_str().len() + HEADER_LEN + data.len() + 48,
        );
        // NX: Redis treats a key whose expiry has passed as absent, so only a live record
        // blocks the create. An expiry Redis finds has passed stores nothing.
        cmd.arg("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PXAT")
            .arg(key_expiry(expires));
        let reply = timed(CREATE, self.timeout, self.connection.query(&cmd))
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
        let mut cmd = Cmd::with_capacity(2, self.prefix.len() + id.as_str().len() + 8);
        cmd.arg("GET").arg(self.key_arg(id));
        let reply = timed(LOAD, self.timeout, self.connection.query(&cmd))
            .await?
            .map_err(|e| driver_error(LOAD, e))?;
        let value = match reply {
            // Never written, deleted, or expired by Redis's clock.
            Value::Nil => return Ok(None),
            Value::BulkString(value) => Bytes::from(value),
            _ => return Err(Error::backend(LOAD, UnexpectedReply(LOAD))),
        };
        // The key is live by Redis's clock, which is the one that decides: the header's
        // `expires_at` is not compared with the app's clock (a host running fast would hide
        // live sessions).
        let header = parse_header(&value)?;
        let data = self.codec.decode(value.slice(HEADER_LEN..))?;
        Ok(Some(Record::from_parts(
            id.clone(),
            data,
            header.created_at()?,
            header.expires_at()?,
            header.version,
        )))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        if self.layout == Layout::Express {
            return self.express_save(record).await;
        }
        let next = record.next_version()?;
        let data = self.codec.encode(&record.data)?;
        let expires = unix_millis(record.expires_at);
        let value = StoredValue {
            header: header(record.created_at, next, expires),
            data: &data,
        }
        .checked()?;
        let expected = record.version.to_be_bytes();
        let expiry = key_expiry(expires);
        let reply = timed(
            SAVE,
            self.timeout,
            self.connection.eval(
                &SAVE_SCRIPT,
                self.key_arg(&record.id),
                self.prefix.len() + record.id.as_str().len() + HEADER_LEN + data.len(),
                |cmd| {
                    cmd.arg(&expected[..]).arg(&value).arg(expiry);
                },
            ),
        )
        .await?
        .map_err(|e| driver_error(SAVE, e))?;
        match reply {
            Value::Int(scripts::OK) => Ok(()),
            Value::Int(scripts::CONFLICT) => Err(Error::Conflict),
            Value::Int(scripts::NOT_FOUND) => Err(Error::NotFound),
            Value::Int(scripts::CORRUPT) => Err(no_header()),
            _ => Err(Error::backend(SAVE, UnexpectedReply(SAVE))),
        }
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        if self.layout == Layout::Express {
            return self.express_touch(id, expires_at).await;
        }
        let expires = unix_millis(expires_at);
        let expiry = key_expiry(expires);
        let expires = expires.to_be_bytes();
        let reply = timed(
            TOUCH,
            self.timeout,
            self.connection.eval(
                &TOUCH_SCRIPT,
                self.key_arg(id),
                self.prefix.len() + id.as_str().len() + 32,
                |cmd| {
                    cmd.arg(&expires[..]).arg(expiry);
                },
            ),
        )
        .await?
        .map_err(|e| driver_error(TOUCH, e))?;
        match reply {
            Value::Int(scripts::PRESENT) => Ok(true),
            Value::Int(scripts::ABSENT) => Ok(false),
            Value::Int(scripts::CORRUPT) => Err(no_header()),
            _ => Err(Error::backend(TOUCH, UnexpectedReply(TOUCH))),
        }
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
