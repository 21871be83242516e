//! The Lua scripts behind `save` and `touch`.
//!
//! Redis runs a script atomically, so each check and the write it guards cannot interleave with
//! another client's command. Each script touches only `KEYS[1]`, so it runs on one Redis Cluster
//! slot, and reads only the 25-byte header of the stored value, never the data. Lua strings are
//! indexed from 1: the header's bytes 0, 1..9, 9..17 and 17..25 (layout, `created_at`, version,
//! `expires_at`) are `1`, `2..9`, `10..17` and `18..25` there.
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
