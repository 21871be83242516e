//! The one Lua script: the conditional `save`.
//!
//! Redis runs a script atomically, so the version check and the write cannot interleave with
//! another client's command. The script touches only `KEYS[1]`, so it runs on one Redis Cluster
//! slot. It reads only the 17-byte header of the stored value, never the data.

/// The record was written (or, when its expiry has passed, deleted).
pub(crate) const OK: i64 = 0;
/// The stored version differs from the expected one; nothing was written.
pub(crate) const CONFLICT: i64 = 1;
/// There is no live record; nothing was written.
pub(crate) const NOT_FOUND: i64 = 2;
/// The key holds something that is not a record of this layout; nothing was written.
pub(crate) const CORRUPT: i64 = 3;

/// `save`. KEYS: the session key. ARGV: the expected version (8 bytes, big-endian), the new
/// value (header with the next version, then the data), the expiry for `PXAT`.
///
/// `created_at` is kept as stored: the new value normally carries the same bytes, and when it
/// does not, the stored ones are put back in.
pub(crate) const SAVE: &str = r"
local key = KEYS[1]
local head = redis.call('GETRANGE', key, 0, 16)
if head == '' then
  if redis.call('EXISTS', key) == 1 then return 3 end
  return 2
end
if #head < 17 or string.byte(head, 1) ~= 1 then return 3 end
if string.sub(head, 10, 17) ~= ARGV[1] then return 1 end
local value = ARGV[2]
if string.sub(value, 2, 9) ~= string.sub(head, 2, 9) then
  value = string.sub(head, 1, 9) .. string.sub(value, 10)
end
redis.call('SET', key, value, 'PXAT', ARGV[3])
return 0
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
