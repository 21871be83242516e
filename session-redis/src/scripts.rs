//! The Lua scripts behind `create`, `save` and `touch`.
//!
//! Redis runs a script atomically, so each check and the write it guards cannot interleave with
//! another client's command. Every script touches only `KEYS[1]`, so it runs on one Redis
//! Cluster slot. Instants are Unix milliseconds, exact in Lua's doubles; versions are compared
//! as the decimal strings they are stored as, never converted to numbers, so all of `u64` is
//! exact. `now` is the client's clock, the same clock `load` checks expiry against.

/// The script ran and wrote (or, for an already expired record, deleted) the record.
pub(crate) const OK: i64 = 0;
/// `create`: a live record has this id.
pub(crate) const EXISTS: i64 = 1;
/// `save`: the stored version differs.
pub(crate) const CONFLICT: i64 = 1;
/// `save`: no live record.
pub(crate) const NOT_FOUND: i64 = 2;
/// `touch`: no live record.
pub(crate) const ABSENT: i64 = 0;
/// `touch`: the record was live.
pub(crate) const PRESENT: i64 = 1;
/// The key holds something that is not a readable session record; nothing was written.
pub(crate) const CORRUPT: i64 = 3;

/// `create`. KEYS: the session key. ARGV: data, created ms, expires ms, version, now ms.
///
/// A live record blocks the create; an expired one Redis has not dropped yet is replaced; a
/// hash without a readable expiry is left alone. A record that is already expired is not
/// written.
pub(crate) const CREATE: &str = r"
local key, now, expires = KEYS[1], tonumber(ARGV[5]), tonumber(ARGV[3])
local stored = redis.call('HGET', key, 'e')
if stored then
  local e = tonumber(stored)
  if not e then return 3 end
  if e > now then return 1 end
  redis.call('UNLINK', key)
elseif redis.call('EXISTS', key) == 1 then
  return 3
end
if expires <= now then return 0 end
redis.call('HSET', key, 'd', ARGV[1], 'c', ARGV[2], 'e', ARGV[3], 'v', ARGV[4])
redis.call('PEXPIREAT', key, ARGV[3])
return 0
";

/// `save`. KEYS: the session key. ARGV: expected version, next version, data, expires ms,
/// now ms.
///
/// Replaces data, expiry and version of a live record at the expected version; `c` is kept.
/// Saving an expiry that has already passed deletes the record.
pub(crate) const SAVE: &str = r"
local key, now, expires = KEYS[1], tonumber(ARGV[5]), tonumber(ARGV[4])
local stored = redis.call('HMGET', key, 'v', 'e')
if not stored[1] and not stored[2] then return 2 end
local e = tonumber(stored[2])
if not stored[1] or not e then return 3 end
if e <= now then return 2 end
if stored[1] ~= ARGV[1] then return 1 end
if expires <= now then
  redis.call('UNLINK', key)
  return 0
end
redis.call('HSET', key, 'd', ARGV[3], 'e', ARGV[4], 'v', ARGV[2])
redis.call('PEXPIREAT', key, ARGV[4])
return 0
";

/// `touch`. KEYS: the session key. ARGV: expires ms, now ms.
///
/// Moves the `e` field and the key's TTL together; data and version are not rewritten.
/// Touching a live record to an instant that has passed deletes it (and reports it existed).
pub(crate) const TOUCH: &str = r"
local key, now, expires = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[1])
local stored = redis.call('HGET', key, 'e')
if not stored then return 0 end
local e = tonumber(stored)
if not e then return 3 end
if e <= now then return 0 end
if expires <= now then
  redis.call('UNLINK', key)
  return 1
end
redis.call('HSET', key, 'e', ARGV[1])
redis.call('PEXPIREAT', key, ARGV[1])
return 1
";

/// A script's body and its SHA-1, the name `EVALSHA` calls it by.
#[derive(Debug)]
pub(crate) struct Script {
    code: &'static str,
    sha: String,
}

impl Script {
    pub(crate) fn new(code: &'static str) -> Self {
        Self {
            code,
            sha: redis::Script::new(code).get_hash().to_owned(),
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn sha(&self) -> &str {
        &self.sha
    }
}
