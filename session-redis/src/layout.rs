//! How a session is kept in Redis: the key, the stored value (a 25-byte header, then the data),
//! and the key's expiry. See the crate documentation's "Data layout".

use std::fmt;

use bytes::BufMut;
use redis::{RedisWrite, ToRedisArgs};
use session_core::clock::{from_unix_millis, unix_millis};
use session_core::{Error, Id, MAX_VERSION, Result};
use time::OffsetDateTime;

/// First byte of a stored value: the layout version.
pub(crate) const LAYOUT_V1: u8 = 1;

/// Bytes before the data: layout version, `created_at` (i64 ms), version (u64), `expires_at`
/// (i64 ms), the numbers big-endian.
pub(crate) const HEADER_LEN: usize = 25;

/// Where `expires_at` sits in the header.
pub(crate) const EXPIRES_AT: usize = 17;

/// The largest stored value (header and data) a store sends: Redis's default
/// `proto-max-bulk-len`, 512 MiB. A larger argument makes the server reply with a protocol
/// error and drop the connection, so the store refuses it before the round trip.
pub(crate) const MAX_VALUE_LEN: usize = 512 * 1024 * 1024;

/// The key `{prefix}{id}`, written straight into the command buffer.
#[derive(Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) id: &'a Id,
}

impl ToRedisArgs for Key<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let id = self.id.as_str().as_bytes();
        let mut arg = out.bufmut_for_next_arg(self.prefix.len() + id.len());
        arg.put_slice(self.prefix.as_bytes());
        arg.put_slice(id);
    }
}

/// The header of a record with these fields.
pub(crate) fn header(
    created_at: OffsetDateTime,
    version: u64,
    expires_at: i64,
) -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[0] = LAYOUT_V1;
    header[1..9].copy_from_slice(&unix_millis(created_at).to_be_bytes());
    header[9..EXPIRES_AT].copy_from_slice(&version.to_be_bytes());
    header[EXPIRES_AT..].copy_from_slice(&expires_at.to_be_bytes());
    header
}

/// The numbers of a stored header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) created_at: i64,
    pub(crate) version: u64,
    pub(crate) expires_at: i64,
}

impl Header {
    pub(crate) fn created_at(&self) -> Result<OffsetDateTime> {
        from_unix_millis(self.created_at)
    }

    pub(crate) fn expires_at(&self) -> Result<OffsetDateTime> {
        from_unix_millis(self.expires_at)
    }
}

/// The header of a stored value.
///
/// # Errors
///
/// [`Error::Decode`] for a value shorter than a header, an unknown layout, or a version
/// outside `0..=MAX_VERSION` (no store writes one).
pub(crate) fn parse_header(value: &[u8]) -> Result<Header> {
    let header: &[u8; HEADER_LEN] = value
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| {
            Error::decode(CorruptRecord("the value is shorter than a session header"))
        })?;
    if header[0] != LAYOUT_V1 {
        return Err(Error::decode(UnknownLayout(header[0])));
    }
    let number = |at: usize| {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&header[at..at + 8]);
        bytes
    };
    let version = u64::from_be_bytes(number(9));
    if version > MAX_VERSION {
        return Err(Error::decode(CorruptRecord(
            "the stored version is beyond the largest version a store writes",
        )));
    }
    Ok(Header {
        created_at: i64::from_be_bytes(number(1)),
        version,
        expires_at: i64::from_be_bytes(number(EXPIRES_AT)),
    })
}

/// A stored value, header then data, written into the command buffer as one argument without
/// first joining the two.
pub(crate) struct StoredValue<'a> {
    pub(crate) header: [u8; HEADER_LEN],
    pub(crate) data: &'a [u8],
}

impl StoredValue<'_> {
    /// The value itself if Redis accepts an argument of its size.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] over [`MAX_VALUE_LEN`].
    pub(crate) fn checked(self) -> Result<Self> {
        check_size(HEADER_LEN + self.data.len())?;
        Ok(self)
    }
}

/// Refuses a stored value of `size` bytes over [`MAX_VALUE_LEN`].
pub(crate) fn check_size(size: usize) -> Result<()> {
    if size > MAX_VALUE_LEN {
        return Err(Error::TooLarge {
            size,
            limit: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

impl ToRedisArgs for StoredValue<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.bufmut_for_next_arg(HEADER_LEN + self.data.len());
        arg.put_slice(&self.header);
        arg.put_slice(self.data);
    }
}

/// The smallest `PXAT`/`PEXPIREAT` time Redis accepts, long past: Redis stores nothing, or
/// deletes the key.
pub(crate) const PAST: i64 = 1;

/// The key's expiry time (`PXAT`, `PEXPIREAT`) of a record expiring at `expires_at` (Unix ms):
/// 1 ms earlier.
///
/// Redis removes a key once its expiry time has *passed* (its clock is beyond it); a session is
/// expired *at* its `expires_at`. Setting the key's expiry 1 ms earlier makes the two agree. No
/// clock is read here: whether that time has passed is for Redis to decide.
pub(crate) fn key_expiry(expires_at: i64) -> i64 {
    expires_at.saturating_sub(1).max(PAST)
}

/// The reply shape the store did not expect (a server or proxy that is not Redis-compatible).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnexpectedReply(pub(crate) &'static str);

impl fmt::Display for UnexpectedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected reply from Redis to {}", self.0)
    }
}

impl std::error::Error for UnexpectedReply {}

/// A stored value that is not a well-formed session record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CorruptRecord(pub(crate) &'static str);

impl fmt::Display for CorruptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt session record in Redis: {}", self.0)
    }
}

impl std::error::Error for CorruptRecord {}

/// A stored value whose first byte names a layout this version does not read.
#[derive(Debug, Clone, Copy)]
struct UnknownLayout(u8);

impl fmt::Display for UnknownLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown session record layout (first byte {:#04x})",
            self.0
        )
    }
}

impl std::error::Error for UnknownLayout {}

#[cfg(test)]
mod tests {
    use redis::Cmd;

    use super::*;

    #[test]
    fn key_argument_is_prefix_then_id() {
        let id = Id::random();
        let mut cmd = Cmd::new();
        cmd.arg(Key {
            prefix: "p:",
            id: &id,
        });
        let args: Vec<_> = cmd.args_iter().collect();
        assert_eq!(args.len(), 1);
        let redis::Arg::Simple(bytes) = args[0] else {
            panic!("the key must be a plain argument");
        };
        assert_eq!(bytes, format!("p:{}", id.as_str()).as_bytes());
    }

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let created = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000)
            .expect("valid instant");
        let mut value = header(created, MAX_VERSION, -7).to_vec();
        value.extend_from_slice(b"data");
        let parsed = parse_header(&value).expect("well-formed");
        assert_eq!(
            parsed,
            Header {
                created_at: 1_700_000_000_123,
                version: MAX_VERSION,
                expires_at: -7
            }
        );
        assert_eq!(parsed.created_at().expect("in range"), created);
        assert!(matches!(
            parse_header(&value[..HEADER_LEN - 1]),
            Err(Error::Decode(_))
        ));
        assert!(matches!(parse_header(b""), Err(Error::Decode(_))));
        let mut beyond = header(created, MAX_VERSION + 1, 0).to_vec();
        assert!(
            matches!(parse_header(&beyond), Err(Error::Decode(_))),
            "a version beyond MAX_VERSION is corrupt"
        );
        beyond[9..17].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(parse_header(&beyond), Err(Error::Decode(_))));
        value[0] = 2;
        assert!(matches!(parse_header(&value), Err(Error::Decode(_))));
    }

    #[test]
    fn out_of_range_instants_are_decode_errors() {
        let header = Header {
            created_at: i64::MAX,
            version: 0,
            expires_at: i64::MIN,
        };
        assert!(matches!(header.created_at(), Err(Error::Decode(_))));
        assert!(matches!(header.expires_at(), Err(Error::Decode(_))));
    }

    #[test]
    fn stored_value_is_one_argument_of_header_then_data() {
        let mut cmd = Cmd::new();
        cmd.arg(StoredValue {
            header: [9; HEADER_LEN],
            data: b"abc",
        });
        let args: Vec<_> = cmd.args_iter().collect();
        assert_eq!(args.len(), 1);
        let redis::Arg::Simple(bytes) = args[0] else {
            panic!("the value must be a plain argument");
        };
        assert_eq!(&bytes[..HEADER_LEN], &[9; HEADER_LEN]);
        assert_eq!(&bytes[HEADER_LEN..], b"abc");
    }

    #[test]
    fn values_over_the_bulk_limit_are_too_large() {
        assert!(check_size(MAX_VALUE_LEN).is_ok());
        assert!(matches!(
            check_size(MAX_VALUE_LEN + 1),
            Err(Error::TooLarge { size, limit }) if size == MAX_VALUE_LEN + 1 && limit == MAX_VALUE_LEN
        ));
        let small = StoredValue {
            header: [0; HEADER_LEN],
            data: b"abc",
        };
        assert!(small.checked().is_ok());
    }

    #[test]
    fn key_expiry_is_one_millisecond_early_and_never_reads_a_clock() {
        assert_eq!(key_expiry(1_000), 999);
        // However far in the past: Redis, not the app, finds it has passed.
        assert_eq!(key_expiry(2), 1);
        assert_eq!(key_expiry(1), PAST);
        assert_eq!(key_expiry(-5), PAST);
        assert_eq!(key_expiry(i64::MIN), PAST);
        assert_eq!(key_expiry(i64::MAX), i64::MAX - 1);
    }
}
