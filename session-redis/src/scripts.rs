//! The Lua scripts behind `save` and `touch`, and the Express-compatible layout's `load`.
//!
//! Redis runs a script atomically, so each check and the write it guards cannot interleave with
//! another client's command. Each script touches only `KEYS[1]`, so it runs on one Redis Cluster
//! slot. The native layout's scripts read only the 25-byte header of the stored value, never the
//! data. Lua strings are indexed from 1: the header's bytes 0, 1..9, 9..17 and 17..25 (layout,
//! `created_at`, version, `expires_at`) are `1`, `2..9`, `10..17` and `18..25` there.
//!
//! No script takes "now" from the app or reads `TIME`: a key whose expiry time has passed by
//! Redis's clock reads as no key (`GETRANGE` returns an empty string), and a `PXAT` or
//! `PEXPIREAT` time that has passed by that clock deletes the key.

/// The record was written (or, when its expiry has passed, deleted).
pub(crate) const OK: i64 = 0;
/// The stored version differs from the expected one; nothing was written.
pub(crate) const CONFLICT: i64 = 1;
/// There is no live record; nothing was written.
pub(crate) const NOT_FOUND: i64 = 2;
/// `touch`: there is no live record.
pub(crate) const ABSENT: i64 = 0;
/// `touch`: the record was live and its expiry moved.
pub(crate) const PRESENT: i64 = 1;
/// The key holds something that is not a record of this layout; nothing was written.
pub(crate) const CORRUPT: i64 = 3;

/// `save`. KEYS: the session key. ARGV: the expected version (8 bytes, big-endian), the new
/// value (header with the next version and the new `expires_at`, then the data), the key's
/// expiry for `PXAT`.
///
/// `created_at` is kept as stored: the new value normally carries the same bytes, and when it
/// does not, the stored ones are put back in.
pub(crate) const SAVE: &str = r"
local key = KEYS[1]
local head = redis.call('GETRANGE', key, 0, 24)
if head == '' then
  if redis.call('EXISTS', key) == 1 then return 3 end
  return 2
end
if #head < 25 or string.byte(head, 1) ~= 1 then return 3 end
if string.sub(head, 10, 17) ~= ARGV[1] then return 1 end
local value = ARGV[2]
if string.sub(value, 2, 9) ~= string.sub(head, 2, 9) then
  value = string.sub(head, 1, 9) .. string.sub(value, 10)
end
redis.call('SET', key, value, 'PXAT', ARGV[3])
return 0
";

/// `touch`. KEYS: the session key. ARGV: the new `expires_at` (8 bytes, big-endian), the key's
/// expiry for `PEXPIREAT`.
///
/// Writes the 8 bytes of `expires_at` in place (`SETRANGE` keeps the key's expiry) and moves the
/// key's expiry; the data and the version are not rewritten. A key whose expiry has passed reads
/// as absent. An expiry in the past deletes the key.
pub(crate) const TOUCH: &str = r"
local key = KEYS[1]
local head = redis.call('GETRANGE', key, 0, 24)
if head == '' then return 0 end
if #head < 25 or string.byte(head, 1) ~= 1 then return 3 end
redis.call('SETRANGE', key, 17, ARGV[1])
redis.call('PEXPIREAT', key, ARGV[2])
return 1
";

/// `created_at` (Express layout `save`): the version matches but the stored `rsCreated` differs
/// from the record's; the reply is `{4, stored rsCreated}` and nothing was written.
pub(crate) const CREATED_DIFFERS: i64 = 4;

/// Express layout `load`. KEYS: the session key. Returns nil for no key, else the stored text,
/// the key's expiry (`PEXPIRETIME`: Unix ms, -1 for none) and Redis's `TIME` (seconds and
/// microseconds, as strings).
///
/// `TIME` stands in for the `created_at` of a session Express wrote last, and for the expiry of
/// a key connect-redis wrote without one (its `disableTTL` option).
pub(crate) const EXPRESS_LOAD: &str = r"
local key = KEYS[1]
local value = redis.call('GET', key)
if not value then return false end
local now = redis.call('TIME')
return {value, redis.call('PEXPIRETIME', key), now[1], now[2]}
";

/// Express layout `save`. KEYS: the session key. ARGV: the expected version as a decimal
/// string; the same version as 15 lowercase hex digits (empty when it is `2^60` or above, which
/// no digest gives); the record's `created_at` in Unix ms, decimal; the new text; the key's
/// expiry for `PXAT`.
///
/// The stored version is the cookie's `rsVersion` if the Rust side wrote the text last, else the
/// first 15 hex digits of the text's SHA-1 (`session_core::express::foreign_version`): compared
/// as strings, because Lua's numbers are doubles. The stored `created_at` (`rsCreated`) is kept:
/// when the new text carries another one, the script writes nothing and returns
/// `{CREATED_DIFFERS, stored}`, and the store sends the text again with the stored one. A key
/// whose text is not express-session's JSON with a `cookie` object is `CORRUPT`.
pub(crate) const EXPRESS_SAVE: &str = r"
local key = KEYS[1]
local stored = redis.call('GET', key)
if not stored then return 2 end
local ok, session = pcall(cjson.decode, stored)
if not ok or type(session) ~= 'table' then return 3 end
local cookie = session['cookie']
if type(cookie) ~= 'table' then return 3 end
local version = cookie['rsVersion']
if version == nil then
  if string.sub(redis.sha1hex(stored), 1, 15) ~= ARGV[2] then return 1 end
elseif type(version) ~= 'string' then
  return 3
elseif version ~= ARGV[1] then
  return 1
end
local created = cookie['rsCreated']
if created ~= nil then
  if type(created) ~= 'number' or created ~= math.floor(created) then return 3 end
  created = string.format('%.0f', created)
  if created ~= ARGV[3] then return {4, created} end
end
redis.call('SET', key, ARGV[4], 'PXAT', ARGV[5])
return 0
";

/// Express layout `touch`. KEYS: the session key. ARGV: the key's expiry for `PEXPIREAT`.
///
/// Like connect-redis's own touch (`EXPIRE`), it moves the key's expiry and leaves the text as
/// it is, so neither side's version changes. A key of another type is `CORRUPT`.
pub(crate) const EXPRESS_TOUCH: &str = r"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then return 0 end
if kind ~= 'string' then return 3 end
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
