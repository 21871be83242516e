//! The sessions of a principal: one sorted set per principal, `{prefix}principal:{principal}`,
//! whose members are session ids scored by their `expires_at` plus
//! [`RedisStore::INDEX_HEADROOM`] (Unix ms). See the crate documentation's "Sessions of a user".
//!
//! The index and a session live in different Cluster slots (a session's key is found by its id
//! alone), so no command updates both atomically. Three rules keep it correct anyway:
//!
//! - the index holds every live session of the principal with a score at least its expiry: a
//!   session's stored value says up to when its entry is known to reach (`indexed_until`, the
//!   score its writer added it with, which `ZADD GT` never lowers), and a write that would set
//!   the session's expiry past that, or give it another principal, first adds it to the index;
//! - the only entries ever removed are those more than [`RedisStore::INDEX_GRACE`] past their
//!   score by Redis's clock, whose sessions have expired;
//! - listing and revocation check each session's stored principal, so an entry of a session
//!   that was deleted, expired or moved to another principal is never listed nor revoked.

use std::sync::LazyLock;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use redis::Value;
use session_core::{Error, Id, Principals, Record, Result, check_principal, timed};

use crate::connection::driver_error;
use crate::layout::{CorruptRecord, INDEX_INFIX, IndexKey, MAX_INDEXED_UNTIL, UnexpectedReply};
use crate::scripts::{self, Script};
use crate::{Layout, RedisStore};

const LIST: &str = "list the sessions of a principal";
const REVOKE: &str = "revoke a session of a principal";
const REVOKE_ALL: &str = "revoke the sessions of a principal";

/// How many session commands listing and `revoke_all` keep in flight: enough to fill the
/// pipeline of a multiplexed connection, few enough not to flood a server.
const IN_FLIGHT: usize = 64;

static INDEX_ADD_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::INDEX_ADD));
static INDEX_LIST_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::INDEX_LIST));
static REVOKE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::REVOKE));

/// [`RedisStore::INDEX_GRACE`] in milliseconds, as the index scripts take it.
const GRACE_MS: u64 = {
    let millis = RedisStore::INDEX_GRACE.as_millis();
    assert!(millis > 0 && millis < 1 << 53, "a grace Lua's numbers hold");
    millis as u64
};

/// [`RedisStore::INDEX_HEADROOM`] in milliseconds.
const HEADROOM_MS: i64 = {
    let millis = RedisStore::INDEX_HEADROOM.as_millis();
    assert!(millis < 1 << 53, "a headroom Lua's numbers hold");
    millis as i64
};

/// The score of a session expiring at `expires` (Unix ms) in its principal's index: that plus
/// the headroom, within `0..=MAX_INDEXED_UNTIL` (a session expiring after the year 285,000 gets
/// a score below its expiry).
pub(crate) fn index_score(expires: i64) -> i64 {
    expires
        .saturating_add(HEADROOM_MS)
        .clamp(0, MAX_INDEXED_UNTIL)
}

impl RedisStore {
    /// How long an entry of a principal's index stays past its score: one minute. Pruning
    /// removes an entry only once Redis's clock is this far past its score, so a Cluster master
    /// whose clock runs up to this much ahead of another's still never removes the entry of a
    /// session that the other master keeps live.
    pub const INDEX_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

    /// How far past a session's expiry its entry in its principal's index reaches: one hour.
    /// A `touch` or `save` that keeps the session its principal's, with an expiry within what
    /// the entry covers, does not write the index (one round trip); one that moves the expiry
    /// further first moves the entry to an hour past the new expiry. The price: an entry stays
    /// this much longer after its session expires.
    pub const INDEX_HEADROOM: std::time::Duration = std::time::Duration::from_secs(3600);

    /// The Redis key of the index of `principal`'s sessions: the prefix, `principal:`, then the
    /// principal. Session ids never contain `:`, so it is never the key of a session.
    #[must_use]
    pub fn principal_key(&self, principal: &str) -> String {
        let mut out =
            String::with_capacity(self.prefix.len() + INDEX_INFIX.len() + principal.len());
        out.push_str(&self.prefix);
        out.push_str(INDEX_INFIX);
        out.push_str(principal);
        out
    }

    fn index_key<'a>(&'a self, principal: &'a str) -> IndexKey<'a> {
        IndexKey {
            prefix: &self.prefix,
            principal,
        }
    }

    /// Adds the session `id` to `principal`'s index with at least the score `score` (see
    /// [`index_score`]), prunes the index and moves its own expiry past its latest entry.
    pub(crate) async fn index_add(
        &self,
        principal: &str,
        id: &Id,
        score: i64,
    ) -> redis::RedisResult<()> {
        let key = self.index_key(principal);
        self.connection
            .eval(
                &INDEX_ADD_SCRIPT,
                key,
                key.len() + id.as_str().len() + 48,
                |cmd| {
                    cmd.arg(score).arg(id.as_str()).arg(GRACE_MS);
                },
            )
            .await
            .map(drop)
    }

    /// The ids in `principal`'s index, after pruning it.
    async fn indexed_ids(&self, operation: &'static str, principal: &str) -> Result<Vec<Id>> {
        let key = self.index_key(principal);
        let reply = self
            .connection
            .eval(&INDEX_LIST_SCRIPT, key, key.len() + 16, |cmd| {
                cmd.arg(GRACE_MS);
            })
            .await
            .map_err(|e| driver_error(operation, e))?;
        let Value::Array(members) = reply else {
            return Err(Error::backend(operation, UnexpectedReply(operation)));
        };
        // Only this store writes members, and only ids; anything else has no session to find.
        Ok(members
            .into_iter()
            .filter_map(|member| match member {
                Value::BulkString(bytes) => String::from_utf8(bytes).ok()?.parse().ok(),
                _ => None,
            })
            .collect())
    }

    /// Deletes the session `id` if its stored principal is `principal`.
    async fn revoke_one(&self, operation: &'static str, principal: &str, id: &Id) -> Result<bool> {
        let reply = self
            .connection
            .eval(
                &REVOKE_SCRIPT,
                self.key_arg(id),
                self.prefix.len() + id.as_str().len() + principal.len(),
                |cmd| {
                    cmd.arg(principal);
                },
            )
            .await
            .map_err(|e| driver_error(operation, e))?;
        match reply {
            Value::Int(scripts::REVOKED) => Ok(true),
            Value::Int(scripts::NOT_REVOKED) => Ok(false),
            Value::Int(scripts::CORRUPT) => Err(Error::decode(CorruptRecord(
                "the stored value does not start with a session header",
            ))),
            _ => Err(Error::backend(operation, UnexpectedReply(operation))),
        }
    }

    /// Refuses the principal operations in connect-redis's layout, which stores no principal,
    /// and a principal no session can have.
    fn check_principals(&self, principal: &str) -> Result<()> {
        if self.layout == Layout::Express {
            return Err(Error::invalid_config(
                "the Express-compatible layout keeps no principal: sessions of a principal are \
                 listed and revoked only in the native layout",
            ));
        }
        check_principal(principal).map(drop)
    }
}

/// Listing and revocation through the principal's index. See the crate documentation,
/// "Sessions of a user".
///
/// # Errors
///
/// Beyond those of the trait, every method fails with [`Error::InvalidConfig`] on a store in
/// the [Express-compatible layout](RedisStore::express_compatible), which keeps no principal
/// (and whose [`Store::principals`](session_core::Store::principals) is `None`), and with
/// [`Error::Encode`] for a principal that [`check_principal`] refuses (no session has one).
#[async_trait]
impl Principals for RedisStore {
    async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>> {
        self.check_principals(principal)?;
        timed(LIST, self.timeout, async {
            let ids = self.indexed_ids(LIST, principal).await?;
            let records: Vec<Option<Record>> = stream::iter(ids)
                .map(|id| async move {
                    let reply = self
                        .connection
                        .query(&self.get(&id))
                        .await
                        .map_err(|e| driver_error(LIST, e))?;
                    self.decode_reply(LIST, &id, reply)
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect()
                .await?;
            // What `load` returns, kept only while the session is still this principal's: an
            // entry outlives a move to another principal until pruning.
            Ok(records
                .into_iter()
                .flatten()
                .filter(|record| record.principal.as_deref() == Some(principal))
                .collect())
        })
        .await?
    }

    async fn revoke(&self, principal: &str, id: &Id) -> Result<bool> {
        self.check_principals(principal)?;
        timed(REVOKE, self.timeout, self.revoke_one(REVOKE, principal, id)).await?
    }

    async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64> {
        self.check_principals(principal)?;
        timed(REVOKE_ALL, self.timeout, async {
            // A session whose `create` has returned is in the index already (`create` adds it
            // first), so this finds it.
            let ids = self.indexed_ids(REVOKE_ALL, principal).await?;
            let outcomes: Vec<Result<bool>> = stream::iter(ids)
                .filter(|id| std::future::ready(Some(id) != keep))
                .map(|id| async move { self.revoke_one(REVOKE_ALL, principal, &id).await })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            // Every session gets its attempt, so one failure leaves no other session behind.
            let mut revoked = 0;
            let mut failure = None;
            for outcome in outcomes {
                match outcome {
                    Ok(true) => revoked += 1,
                    Ok(false) => {}
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            failure.map_or(Ok(revoked), Err)
        })
        .await?
    }
}
