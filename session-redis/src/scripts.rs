//! The Lua scripts behind `save` and `touch`, the sessions of a principal, and the
//! Express-compatible layout's `load`.
//!
//! Redis runs a script atomically, so each check and the write it guards cannot interleave with
//! another client's command. Each script touches only `KEYS[1]`, so it runs on one Redis Cluster
//! slot. The native layout's scripts read only the 25-byte header of the stored value (and, in
//! layout 2, `indexed_until` and the principal after it), never the data. Lua strings are
//! indexed from 1: the header's bytes 0, 1..9, 9..17 and 17..25 (layout, `created_at`, version,
//! `expires_at`) are `1`, `2..9`, `10..17` and `18..25` there; in layout 2, `indexed_until` is
//! `26..33`, the principal's length `34..35`, and the principal follows from `36`.
//!
//! No session script takes "now" from the app or reads `TIME`: a key whose expiry time has
//! passed by Redis's clock reads as no key (`GETRANGE` returns an empty string), and a `PXAT` or
//! `PEXPIREAT` time that has passed by that clock deletes the key. The index scripts read `TIME`
//! to prune the entries of sessions that have expired by it.

use session_core::MAX_PRINCIPAL_LEN;

#[cfg(test)]
use crate::layout::MAX_INDEXED_UNTIL;
use crate::layout::PRINCIPAL_AT;

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
/// `save`, `touch`: the principal's index does not cover the new expiry yet; nothing was
/// written. The store adds the session to the index, then calls again saying so. `touch`
/// replies `{INDEX_FIRST, stored principal}`, the principal whose index it needs.
pub(crate) const INDEX_FIRST: i64 = 4;
/// `revoke`: the session was a live session of the principal and is deleted.
pub(crate) const REVOKED: i64 = 1;
/// `revoke`: no live session, or one of another principal or of none; nothing was deleted.
pub(crate) const NOT_REVOKED: i64 = 0;

/// The last byte of a stored value the scripts read: the header, `indexed_until`, the
/// principal's length and the longest principal, `PRINCIPAL_AT + MAX_PRINCIPAL_LEN - 1`.
const _: () = assert!(PRINCIPAL_AT + MAX_PRINCIPAL_LEN - 1 == 290);

/// A Lua function `parse(head)` of the first 291 bytes of a stored value (see
/// [`PRINCIPAL_AT`]): `nil` for an empty value (no key), `false` for a value that is not a record
/// of the native layout, `''` for a record without a principal (layout 1), else the record's
/// principal and its `indexed_until` (layout 2). A macro, so that `concat!` can put it at the
/// head of each script.
macro_rules! parse_head {
    () => {
        r"
local function parse(head)
  if head == '' then return nil end
  local layout = string.byte(head, 1)
  if #head < 25 or (layout ~= 1 and layout ~= 2) then return false end
  if layout == 1 then return '', -1 end
  if #head < 35 or string.byte(head, 26) >= 128 then return false end
  local covered = 0
  for i = 26, 33 do covered = covered * 256 + string.byte(head, i) end
  if covered > 9007199254740992 then return false end
  local n = string.byte(head, 34) * 256 + string.byte(head, 35)
  if n < 1 or #head < 35 + n then return false end
  return string.sub(head, 36, 35 + n), covered
end
"
    };
}

/// A Lua function `prune(key, grace)`: removes the index entries whose score (Unix ms) is more
/// than `grace` ms before Redis's `TIME`.
macro_rules! prune_index {
    () => {
        r"
local function prune(key, grace)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%.0f', now - grace))
end
"
    };
}

/// `save`. KEYS: the session key. ARGV: the expected version (8 bytes, big-endian), the new
/// value (header with the next version and the new `expires_at`, then, with a principal,
/// `indexed_until`, the principal and the data), the key's expiry for `PXAT`, the new principal
/// (empty for none), the new `expires_at` (Unix ms, decimal), and `1` if the store has just added
/// the session to that principal's index with the value's `indexed_until` as its score (else
/// empty).
///
/// `created_at` is kept as stored: the new value normally carries the same bytes, and when it
/// does not, the stored ones are put back in (after the new value's own layout byte: a save can
/// turn a layout 1 record into a layout 2 one, and back). A save with a principal writes only if
/// that principal's index covers the new expiry: the store has just added it, or the stored
/// record has the same principal and an `indexed_until` at or after the new `expires_at` (which
/// the new value then keeps); otherwise the reply is `INDEX_FIRST`.
pub(crate) const SAVE: &str = concat!(
    parse_head!(),
    r"
local key = KEYS[1]
local head = redis.call('GETRANGE', key, 0, 290)
if head == '' then
  if redis.call('EXISTS', key) == 1 then return 3 end
  return 2
end
local principal, covered = parse(head)
if not principal then return 3 end
if string.sub(head, 10, 17) ~= ARGV[1] then return 1 end
local value = ARGV[2]
if string.sub(value, 2, 9) ~= string.sub(head, 2, 9) then
  value = string.sub(value, 1, 1) .. string.sub(head, 2, 9) .. string.sub(value, 10)
end
if ARGV[4] ~= '' and ARGV[6] ~= '1' then
  if principal ~= ARGV[4] or tonumber(ARGV[5]) > covered then return 4 end
  value = string.sub(value, 1, 25) .. string.sub(head, 26, 33) .. string.sub(value, 34)
end
redis.call('SET', key, value, 'PXAT', ARGV[3])
return 0
"
);

/// `touch`. KEYS: the session key. ARGV: the new `expires_at` (8 bytes, big-endian), the key's
/// expiry for `PEXPIREAT`, the new `expires_at` (Unix ms, decimal), the principal to whose index
/// the store has just added the session (empty for none) and the score it used (8 bytes,
/// big-endian; empty for none).
///
/// Writes the 8 bytes of `expires_at` in place (`SETRANGE` keeps the key's expiry) and moves the
/// key's expiry; the data and the version are not rewritten. A key whose expiry has passed reads
/// as absent. An expiry in the past deletes the key. A record with a principal is touched only if
/// that principal's index covers the new expiry: its `indexed_until` is at or after it, or the
/// store has just added it to that principal's index (and the new `indexed_until` is written
/// too). Otherwise nothing is written and the reply is `{INDEX_FIRST, stored principal}`.
pub(crate) const TOUCH: &str = concat!(
    parse_head!(),
    r"
local key = KEYS[1]
local principal, covered = parse(redis.call('GETRANGE', key, 0, 290))
if principal == nil then return 0 end
if principal == false then return 3 end
if principal ~= '' then
  if principal == ARGV[4] then
    redis.call('SETRANGE', key, 25, ARGV[5])
  elseif tonumber(ARGV[3]) > covered then
    return {4, principal}
  end
end
redis.call('SETRANGE', key, 17, ARGV[1])
redis.call('PEXPIREAT', key, ARGV[2])
return 1
"
);

/// `revoke`. KEYS: the session key. ARGV: the principal.
///
/// Deletes the session if its stored principal is `ARGV[1]` (`REVOKED`); no key, or a session
/// without that principal, is `NOT_REVOKED`; a value that is not a record of the native layout
/// is `CORRUPT`, left alone.
pub(crate) const REVOKE: &str = concat!(
    parse_head!(),
    r"
local key = KEYS[1]
local principal = parse(redis.call('GETRANGE', key, 0, 290))
if principal == nil then return 0 end
if principal == false then return 3 end
if principal ~= ARGV[1] then return 0 end
redis.call('UNLINK', key)
return 1
"
);

/// Adding to a principal's index, before the session write. KEYS: the index key. ARGV: the
/// score (the session's `expires_at` plus the headroom, Unix ms, decimal), the session's id, the
/// grace (ms, decimal).
///
/// `ZADD GT` raises an entry's score and never lowers it, so the score stays at least that of
/// every write that added it, whatever their order. Then the entries more than the
/// grace past their expiry by Redis's `TIME` are pruned, and the index key expires the grace
/// after its latest entry (so an index no session writes to any more disappears by itself).
pub(crate) const INDEX_ADD: &str = concat!(
    prune_index!(),
    r"
local key = KEYS[1]
local grace = tonumber(ARGV[3])
redis.call('ZADD', key, 'GT', ARGV[1], ARGV[2])
prune(key, grace)
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', key, string.format('%.0f', tonumber(last[2]) + grace))
end
return 0
"
);

/// Reading a principal's index, for listing and revocation. KEYS: the index key. ARGV: the
/// grace (ms, decimal). Prunes as [`INDEX_ADD`] does, then returns every id left.
pub(crate) const INDEX_LIST: &str = concat!(
    prune_index!(),
    r"
local key = KEYS[1]
prune(key, tonumber(ARGV[1]))
return redis.call('ZRANGE', key, 0, -1)
"
);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{HEADER_LEN, LAYOUT_V1, LAYOUT_V2};

    #[test]
    fn scripts_read_the_header_and_the_longest_principal() {
        let end = PRINCIPAL_AT + MAX_PRINCIPAL_LEN - 1;
        for script in [SAVE, TOUCH, REVOKE] {
            assert!(script.contains(&format!("GETRANGE', key, 0, {end})")));
            assert!(script.contains(&format!("layout ~= {LAYOUT_V1} and layout ~= {LAYOUT_V2}")));
            assert!(script.contains(&format!("#head < {HEADER_LEN}")));
            assert!(script.contains(&format!("#head < {PRINCIPAL_AT}")));
            assert!(script.contains(&format!("covered > {MAX_INDEXED_UNTIL}")));
        }
    }
}
