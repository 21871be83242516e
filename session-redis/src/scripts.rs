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
/// [`SAVE`]: the temporary key holding the new value had expired; nothing was written.
pub(crate) const TEMP_GONE: i64 = 5;
/// `save`, `touch`: the principal's index does not cover the new expiry yet; nothing was
/// written. The store adds the session to the index, then calls again saying so. `touch`
/// replies `{INDEX_FIRST, stored principal}`, the principal whose index it needs.
pub(crate) const INDEX_FIRST: i64 = 4;
/// `revoke`: the session was a live session of the principal and is deleted.
pub(crate) const REVOKED: i64 = 1;
/// `revoke`: no live session, or one of another principal or of none; nothing was deleted.
pub(crate) const NOT_REVOKED: i64 = 0;

/// What the scripts' `read` has written in: where the principal starts and its longest length.
const _: () = assert!(PRINCIPAL_AT == 35 && MAX_PRINCIPAL_LEN == 256);

/// A Lua function `read(key)`: `nil` for no key, `false` for a value that is not a record of
/// the native layout, `''` for a record without a principal (layout 1), else the record's
/// principal and its `indexed_until` (layout 2); the value's first 35 bytes (header,
/// `indexed_until`, the principal's length; see [`PRINCIPAL_AT`]) as the third result. It reads
/// those 35 bytes and then, in layout 2, just the principal: every byte a script reads becomes a
/// Lua string, which the server hashes. A macro, so that `concat!` can put it at the head of
/// each script.
macro_rules! read_head {
    () => {
        r"
local function read(key)
  local head = redis.call('GETRANGE', key, 0, 34)
  if head == '' then return nil, nil, head end
  local layout = string.byte(head, 1)
  if #head < 25 or (layout ~= 1 and layout ~= 2) then return false, nil, head end
  if layout == 1 then return '', -1, head end
  if #head < 35 or string.byte(head, 26) >= 128 then return false, nil, head end
  local covered = 0
  for i = 26, 33 do covered = covered * 256 + string.byte(head, i) end
  if covered > 9007199254740992 then return false, nil, head end
  local n = string.byte(head, 34) * 256 + string.byte(head, 35)
  if n < 1 or n > 256 then return false, nil, head end
  local principal = redis.call('GETRANGE', key, 35, 34 + n)
  if #principal < n then return false, nil, head end
  return principal, covered, head
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

/// `save`, of a new value the store has just written under a temporary key with a plain `SET`
/// (in the same pipeline). KEYS: the session key, the temporary key (same Cluster slot, see
/// [`crate::layout::temp_key`]). ARGV: the expected version (8 bytes, big-endian), the new
/// value's `created_at` (its bytes 1..9), the key's expiry for `PEXPIREAT`, the new principal
/// (empty for none), the new `expires_at` (Unix ms, decimal), and `1` if the store has just added
/// the session to that principal's index with the value's `indexed_until` as its score (else
/// empty).
///
/// The new value carries the next version and the new `expires_at` (and, with a principal,
/// `indexed_until` and the principal). `created_at` is kept as stored: the new value normally
/// carries the same bytes, and when it does not, the stored ones are written into the temporary
/// value (`SETRANGE`). A save with a principal writes only if that principal's index covers the
/// new expiry: the store has just added it, or the stored record has the same principal and an
/// `indexed_until` at or after the new `expires_at` (which the new value then keeps, also by
/// `SETRANGE`); otherwise the reply is `INDEX_FIRST`. Then the temporary key is renamed over the
/// session key and gets the session's expiry (an expiry that has passed deletes it).
///
/// The value never becomes a Lua string: every script argument does, and the server hashes
/// each byte of it and copies it, and a `SET` inside the script would copy it again; that made
/// a save cost the server 25 to 50 times a plain `SET` at 16 and 64 KiB (BENCHMARKS.md). Every
/// reply but `OK` deletes the temporary key; `TEMP_GONE` means it had expired (its short TTL
/// clears one whose script never ran) and nothing was written.
pub(crate) const SAVE: &str = concat!(
    read_head!(),
    r"
local key = KEYS[1]
local temp = KEYS[2]
local function fail(code)
  redis.call('DEL', temp)
  return code
end
local principal, covered, head = read(key)
if principal == nil then
  if redis.call('EXISTS', key) == 1 then return fail(3) end
  return fail(2)
end
if not principal then return fail(3) end
if string.sub(head, 10, 17) ~= ARGV[1] then return fail(1) end
local fixes = {}
if ARGV[2] ~= string.sub(head, 2, 9) then
  fixes[#fixes + 1] = {1, string.sub(head, 2, 9)}
end
if ARGV[4] ~= '' and ARGV[6] ~= '1' then
  if principal ~= ARGV[4] or tonumber(ARGV[5]) > covered then return fail(4) end
  fixes[#fixes + 1] = {25, string.sub(head, 26, 33)}
end
if #fixes > 0 then
  -- SETRANGE would create a missing key: check first.
  if redis.call('EXISTS', temp) == 0 then return 5 end
  for _, fix in ipairs(fixes) do redis.call('SETRANGE', temp, fix[1], fix[2]) end
end
local moved = redis.pcall('RENAME', temp, key)
if type(moved) == 'table' and moved.err then
  if redis.call('EXISTS', temp) == 0 then return 5 end
  return moved
end
redis.call('PEXPIREAT', key, ARGV[3])
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
    read_head!(),
    r"
local key = KEYS[1]
local principal, covered = read(key)
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
    read_head!(),
    r"
local key = KEYS[1]
local principal = read(key)
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
        let last = PRINCIPAL_AT - 1;
        for script in [SAVE, TOUCH, REVOKE] {
            assert!(script.contains(&format!("GETRANGE', key, 0, {last})")));
            assert!(script.contains(&format!("GETRANGE', key, {PRINCIPAL_AT}, {last} + n)")));
            assert!(script.contains(&format!("n > {MAX_PRINCIPAL_LEN}")));
            assert!(script.contains(&format!("layout ~= {LAYOUT_V1} and layout ~= {LAYOUT_V2}")));
            assert!(script.contains(&format!("#head < {HEADER_LEN}")));
            assert!(script.contains(&format!("#head < {PRINCIPAL_AT}")));
            assert!(script.contains(&format!("covered > {MAX_INDEXED_UNTIL}")));
        }
    }
}

/// [`SAVE`] against a Redis in a container, where the store cannot reach: a temporary
/// key that has expired before the script runs.
#[cfg(test)]
mod against_redis {
    use redis::aio::MultiplexedConnection;

    use super::*;
    use crate::layout::header;

    async fn connect() -> (MultiplexedConnection, session_testcontainers::Container) {
        let container = session_testcontainers::redis().await;
        let raw = redis::Client::open(container.url())
            .expect("container URL")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to the container");
        (raw, container)
    }

    async fn eval(raw: &mut MultiplexedConnection, keys: [&str; 2], args: &[&[u8]]) -> i64 {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SAVE).arg(2).arg(keys[0]).arg(keys[1]);
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.query_async(raw).await.expect("EVAL of SAVE")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_vanished_temporary_key_writes_nothing_and_creates_nothing() {
        let (mut raw, _container) = connect().await;
        let created = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("instant");
        let mut stored = header(created, 7, 4_000_000_000_000, false).to_vec();
        stored.extend_from_slice(b"data");
        let _: () = redis::cmd("SET")
            .arg("s:1")
            .arg(&stored)
            .query_async(&mut raw)
            .await
            .expect("SET");
        let version = 7u64.to_be_bytes();
        let other_created = 1u64.to_be_bytes();
        // The plain case (RENAME finds no key) and the one that would first fix the
        // temporary value's `created_at` (SETRANGE would create the key).
        for created_bytes in [&stored[1..9], &other_created[..]] {
            let reply = eval(
                &mut raw,
                ["s:1", "{s:1}:save:gone"],
                &[
                    &version,
                    created_bytes,
                    b"4000000000000",
                    b"",
                    b"4000000000001",
                    b"",
                ],
            )
            .await;
            assert_eq!(reply, TEMP_GONE);
            let now: Vec<u8> = redis::cmd("GET")
                .arg("s:1")
                .query_async(&mut raw)
                .await
                .expect("GET");
            assert_eq!(now, stored, "the session is as it was");
            let temp: i64 = redis::cmd("EXISTS")
                .arg("{s:1}:save:gone")
                .query_async(&mut raw)
                .await
                .expect("EXISTS");
            assert_eq!(temp, 0, "no temporary key was created");
        }
    }
}
