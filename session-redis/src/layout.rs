//! How a session is kept in Redis: the key, the stored value (a 25-byte header, what the
//! principal's index covers and the principal if the session has one, then the data), the key's
//! expiry, and the key of a principal's index. See the crate documentation's "Data layout".

use std::fmt;

use bytes::BufMut;
use redis::{RedisWrite, ToRedisArgs};
use session_core::clock::{from_unix_millis, unix_millis};
use session_core::{Error, Id, MAX_PRINCIPAL_LEN, MAX_VERSION, Result, check_principal};
use time::OffsetDateTime;

/// First byte of a stored value without a principal: the header, then the data. Values
/// written before principals existed have this layout, and sessions without a principal keep
/// it, so that they stay readable by earlier releases.
pub(crate) const LAYOUT_V1: u8 = 1;

/// First byte of a stored value with a principal: the header, `indexed_until` (`i64` ms,
/// big-endian, never negative: the principal's index holds this session with at least this
/// score), the principal's length (`u16` big-endian), the principal (UTF-8), then the data.
pub(crate) const LAYOUT_V2: u8 = 2;

/// Bytes before the data (before `indexed_until`, in [`LAYOUT_V2`]): layout version,
/// `created_at` (i64 ms), version (u64), `expires_at` (i64 ms), the numbers big-endian.
pub(crate) const HEADER_LEN: usize = 25;

/// Where `expires_at` sits in the header.
pub(crate) const EXPIRES_AT: usize = 17;

/// The bytes of `indexed_until` in [`LAYOUT_V2`], right after the header.
pub(crate) const INDEXED_UNTIL_LEN: usize = 8;

/// The bytes of a principal's length in [`LAYOUT_V2`], after `indexed_until`.
pub(crate) const PRINCIPAL_LEN_LEN: usize = 2;

/// The largest `indexed_until` stored, 2^53: the scripts read it as a Lua number, a double.
pub(crate) const MAX_INDEXED_UNTIL: i64 = 1 << 53;

/// Where the principal starts in [`LAYOUT_V2`].
pub(crate) const PRINCIPAL_AT: usize = HEADER_LEN + INDEXED_UNTIL_LEN + PRINCIPAL_LEN_LEN;

/// The largest stored value (header and data) a store sends: Redis's default
/// `proto-max-bulk-len`, 512 MiB. A larger argument makes the server reply with a protocol
/// error and drop the connection, so the store refuses it before the round trip.
pub(crate) const MAX_VALUE_LEN: usize = 512 * 1024 * 1024;

/// What a principal's index key holds between the prefix and the principal. Session ids never
/// contain `:`, so no index key is ever the key of a session.
pub(crate) const INDEX_INFIX: &str = "principal:";

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

/// What a temporary key of a save holds after the session key (or after `{session key}`):
/// session ids never contain `:`, so no temporary key is the key of a session or of an index.
pub(crate) const TEMP_INFIX: &str = ":save:";

/// How long a temporary key lives, in ms: the script that renames it runs right after it is
/// written, in the same pipeline; the expiry only clears one that a client wrote and then never
/// ran the script for (the connection dropped between the two).
pub(crate) const TEMP_TTL_MS: u64 = 60_000;

/// The temporary key a save writes its value under before [`crate::scripts::SAVE`]
/// renames it over `key`: `{key}:save:{nonce}`, unique to the save (`nonce`) and in `key`'s
/// Redis Cluster slot, which a script needs of every key it touches.
///
/// A key's slot is the hash of its hash tag, the bytes between its first `{` and the first `}`
/// after it, when there are any. Session keys hold no braces (prefixes with braces are refused,
/// ids are URL-safe base64), so `{key}` makes the whole session key the temporary key's hash
/// tag, and both hash the same bytes.
pub(crate) fn temp_key(key: &[u8], nonce: u64) -> Vec<u8> {
    debug_assert!(!key.contains(&b'{') && !key.contains(&b'}'));
    let mut temp = Vec::with_capacity(key.len() + TEMP_INFIX.len() + 18);
    temp.push(b'{');
    temp.extend_from_slice(key);
    temp.push(b'}');
    temp.extend_from_slice(TEMP_INFIX.as_bytes());
    temp.extend_from_slice(format!("{nonce:016x}").as_bytes());
    temp
}

/// The key `{prefix}principal:{principal}` of a principal's index.
#[derive(Clone, Copy)]
pub(crate) struct IndexKey<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) principal: &'a str,
}

impl IndexKey<'_> {
    pub(crate) fn len(&self) -> usize {
        self.prefix.len() + INDEX_INFIX.len() + self.principal.len()
    }
}

impl ToRedisArgs for IndexKey<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.bufmut_for_next_arg(self.len());
        arg.put_slice(self.prefix.as_bytes());
        arg.put_slice(INDEX_INFIX.as_bytes());
        arg.put_slice(self.principal.as_bytes());
    }
}

/// The header of a record with these fields, in [`LAYOUT_V2`] if it has a principal.
pub(crate) fn header(
    created_at: OffsetDateTime,
    version: u64,
    expires_at: i64,
    with_principal: bool,
) -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[0] = if with_principal { LAYOUT_V2 } else { LAYOUT_V1 };
    header[1..9].copy_from_slice(&unix_millis(created_at).to_be_bytes());
    header[9..EXPIRES_AT].copy_from_slice(&version.to_be_bytes());
    header[EXPIRES_AT..].copy_from_slice(&expires_at.to_be_bytes());
    header
}

/// The numbers of a stored header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) layout: u8,
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
    let layout = header[0];
    if layout != LAYOUT_V1 && layout != LAYOUT_V2 {
        return Err(Error::decode(UnknownLayout(layout)));
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
        layout,
        created_at: i64::from_be_bytes(number(1)),
        version,
        expires_at: i64::from_be_bytes(number(EXPIRES_AT)),
    })
}

/// The principal stored after a [`LAYOUT_V2`] header, and where the data starts; no
/// principal, and the data right after the header, in [`LAYOUT_V1`].
///
/// # Errors
///
/// [`Error::Decode`] for a value too short for `indexed_until` and the principal's length, an
/// `indexed_until` outside `0..=MAX_INDEXED_UNTIL`, a length that runs past the value, or a principal that is not
/// UTF-8 or that [`check_principal`] refuses (no store writes any of these).
pub(crate) fn parse_principal(header: &Header, value: &[u8]) -> Result<(Option<String>, usize)> {
    if header.layout == LAYOUT_V1 {
        return Ok((None, HEADER_LEN));
    }
    let fixed = value.get(HEADER_LEN..PRINCIPAL_AT).ok_or_else(|| {
        Error::decode(CorruptRecord(
            "the value is too short for a principal's length",
        ))
    })?;
    let mut until = [0; INDEXED_UNTIL_LEN];
    until.copy_from_slice(&fixed[..INDEXED_UNTIL_LEN]);
    if !(0..=MAX_INDEXED_UNTIL).contains(&i64::from_be_bytes(until)) {
        return Err(Error::decode(CorruptRecord(
            "the instant the principal's index covers is out of range",
        )));
    }
    let len = usize::from(u16::from_be_bytes([
        fixed[INDEXED_UNTIL_LEN],
        fixed[INDEXED_UNTIL_LEN + 1],
    ]));
    let principal = value
        .get(PRINCIPAL_AT..PRINCIPAL_AT + len)
        .ok_or_else(|| Error::decode(CorruptRecord("the principal runs past the value")))?;
    let principal = std::str::from_utf8(principal)
        .ok()
        .and_then(|p| check_principal(p).ok())
        .ok_or_else(|| Error::decode(CorruptRecord("the stored principal is not valid")))?;
    Ok((Some(principal.to_owned()), PRINCIPAL_AT + len))
}

/// The principal of a session to store, and the score its index entry is known to have.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Indexed<'a> {
    pub(crate) principal: &'a str,
    /// The score the writer added the session with (see `index_score`), in
    /// `0..=MAX_INDEXED_UNTIL`.
    pub(crate) until: i64,
}

/// A stored value, header, `indexed_until` and principal (if any) and data, written into the
/// command buffer as one argument without first joining them.
pub(crate) struct StoredValue<'a> {
    header: [u8; HEADER_LEN],
    /// The principal, its length (checked by [`StoredValue::new`]) and `indexed_until`.
    indexed: Option<(Indexed<'a>, u16)>,
    data: &'a [u8],
}

impl<'a> StoredValue<'a> {
    /// The value of a record with these fields, in [`LAYOUT_V2`] if it has a principal.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] for a principal [`check_principal`] refuses; [`Error::TooLarge`] over
    /// [`MAX_VALUE_LEN`].
    pub(crate) fn new(
        created_at: OffsetDateTime,
        version: u64,
        expires_at: i64,
        indexed: Option<Indexed<'a>>,
        data: &'a [u8],
    ) -> Result<Self> {
        let indexed = match indexed {
            Some(indexed) => {
                check_principal(indexed.principal)?;
                // Never fails: MAX_PRINCIPAL_LEN fits in the two length bytes (asserted below).
                let len = u16::try_from(indexed.principal.len()).map_err(|_| {
                    Error::encode(TooLong("the principal does not fit its two length bytes"))
                })?;
                Some((
                    Indexed {
                        until: indexed.until.clamp(0, MAX_INDEXED_UNTIL),
                        ..indexed
                    },
                    len,
                ))
            }
            None => None,
        };
        let value = Self {
            header: header(created_at, version, expires_at, indexed.is_some()),
            indexed,
            data,
        };
        check_size(value.len())?;
        Ok(value)
    }

    /// The header's `created_at` bytes (big-endian Unix ms), as a script compares them.
    pub(crate) fn created_at_bytes(&self) -> &[u8] {
        &self.header[1..9]
    }

    /// The stored value's length in bytes.
    pub(crate) fn len(&self) -> usize {
        let principal = self.indexed.map_or(0, |(indexed, _)| {
            PRINCIPAL_AT - HEADER_LEN + indexed.principal.len()
        });
        HEADER_LEN + principal + self.data.len()
    }
}

const _: () = assert!(MAX_PRINCIPAL_LEN <= u16::MAX as usize);

impl ToRedisArgs for StoredValue<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.bufmut_for_next_arg(self.len());
        arg.put_slice(&self.header);
        if let Some((indexed, len)) = self.indexed {
            arg.put_i64(indexed.until);
            arg.put_u16(len);
            arg.put_slice(indexed.principal.as_bytes());
        }
        arg.put_slice(self.data);
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

/// A field of a record that the layout cannot hold.
#[derive(Debug, Clone, Copy)]
struct TooLong(&'static str);

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for TooLong {}

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
    fn temp_keys_are_unique_per_nonce_and_never_a_session_key() {
        let key = b"session:abc";
        let a = temp_key(key, 1);
        assert_ne!(a, temp_key(key, 2));
        assert_eq!(a, b"{session:abc}:save:0000000000000001");
        assert!(!a.starts_with(b"session:"), "outside the prefix's keyspace");
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn a_temp_key_is_in_its_session_keys_cluster_slot() {
        use redis::cluster_routing::Slot;
        for prefix in ["session:", "sess:", "a:b:c-"] {
            let id = Id::random();
            let key = format!("{prefix}{}", id.as_str());
            let temp = temp_key(key.as_bytes(), u64::MAX);
            assert_eq!(
                Slot::for_key(&temp),
                Slot::for_key(&key),
                "{}",
                String::from_utf8_lossy(&temp)
            );
        }
    }

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
    fn index_key_is_prefix_infix_principal() {
        let mut cmd = Cmd::new();
        cmd.arg(IndexKey {
            prefix: "p:",
            principal: "ada {x}",
        });
        let args: Vec<_> = cmd.args_iter().collect();
        let [redis::Arg::Simple(bytes)] = args.as_slice() else {
            panic!("the key must be one plain argument");
        };
        assert_eq!(*bytes, b"p:principal:ada {x}");
    }

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let created = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000)
            .expect("valid instant");
        let mut value = header(created, MAX_VERSION, -7, false).to_vec();
        value.extend_from_slice(b"data");
        let parsed = parse_header(&value).expect("well-formed");
        assert_eq!(
            parsed,
            Header {
                layout: LAYOUT_V1,
                created_at: 1_700_000_000_123,
                version: MAX_VERSION,
                expires_at: -7
            }
        );
        assert_eq!(parsed.created_at().expect("in range"), created);
        assert_eq!(
            parse_header(&header(created, 3, 9, true))
                .expect("well-formed")
                .layout,
            LAYOUT_V2
        );
        assert!(matches!(
            parse_header(&value[..HEADER_LEN - 1]),
            Err(Error::Decode(_))
        ));
        assert!(matches!(parse_header(b""), Err(Error::Decode(_))));
        let mut beyond = header(created, MAX_VERSION + 1, 0, false).to_vec();
        assert!(
            matches!(parse_header(&beyond), Err(Error::Decode(_))),
            "a version beyond MAX_VERSION is corrupt"
        );
        beyond[9..17].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(parse_header(&beyond), Err(Error::Decode(_))));
        for unknown in [0, 3, 0xff] {
            value[0] = unknown;
            assert!(
                matches!(parse_header(&value), Err(Error::Decode(_))),
                "layout {unknown} is unknown"
            );
        }
    }

    #[test]
    fn out_of_range_instants_are_decode_errors() {
        let header = Header {
            layout: LAYOUT_V1,
            created_at: i64::MAX,
            version: 0,
            expires_at: i64::MIN,
        };
        assert!(matches!(header.created_at(), Err(Error::Decode(_))));
        assert!(matches!(header.expires_at(), Err(Error::Decode(_))));
    }

    fn argument(value: StoredValue<'_>) -> Vec<u8> {
        let mut cmd = Cmd::new();
        cmd.arg(value);
        let args: Vec<_> = cmd.args_iter().collect();
        let [redis::Arg::Simple(bytes)] = args.as_slice() else {
            panic!("the value must be one plain argument");
        };
        bytes.to_vec()
    }

    #[test]
    fn stored_value_is_one_argument_of_header_then_data() {
        let created = OffsetDateTime::UNIX_EPOCH;
        let bytes = argument(StoredValue::new(created, 5, 9, None, b"abc").expect("valid"));
        assert_eq!(&bytes[..HEADER_LEN], &header(created, 5, 9, false));
        assert_eq!(&bytes[HEADER_LEN..], b"abc");
        let header = parse_header(&bytes).expect("well-formed");
        assert_eq!(
            parse_principal(&header, &bytes).expect("no principal"),
            (None, HEADER_LEN)
        );
    }

    fn indexed(principal: &str, until: i64) -> Option<Indexed<'_>> {
        Some(Indexed { principal, until })
    }

    #[test]
    fn stored_value_with_a_principal_is_header_until_length_principal_data() {
        let created = OffsetDateTime::UNIX_EPOCH;
        let longest = "é".repeat(MAX_PRINCIPAL_LEN / 2);
        for principal in ["ada", longest.as_str()] {
            let value = StoredValue::new(created, 5, 9, indexed(principal, 77), b"abc");
            let bytes = argument(value.expect("valid"));
            assert_eq!(&bytes[..HEADER_LEN], &header(created, 5, 9, true));
            assert_eq!(&bytes[HEADER_LEN..HEADER_LEN + 8], &77_i64.to_be_bytes());
            let len = u16::try_from(principal.len()).expect("short");
            assert_eq!(&bytes[HEADER_LEN + 8..PRINCIPAL_AT], &len.to_be_bytes());
            let data_at = PRINCIPAL_AT + principal.len();
            assert_eq!(&bytes[PRINCIPAL_AT..data_at], principal.as_bytes());
            assert_eq!(&bytes[data_at..], b"abc");
            let header = parse_header(&bytes).expect("well-formed");
            assert_eq!(
                parse_principal(&header, &bytes).expect("a principal"),
                (Some(principal.to_owned()), data_at)
            );
        }
        // An index score below zero (a session expiring before 1970) is stored as zero, which
        // covers no live session either.
        let bytes = argument(StoredValue::new(created, 5, 9, indexed("ada", -5), b"").expect("ok"));
        assert_eq!(&bytes[HEADER_LEN..HEADER_LEN + 8], &0_i64.to_be_bytes());
    }

    #[test]
    fn invalid_principals_are_refused_before_anything_is_sent() {
        let too_long = "p".repeat(MAX_PRINCIPAL_LEN + 1);
        for bad in ["", "tab\t", too_long.as_str()] {
            assert!(
                matches!(
                    StoredValue::new(OffsetDateTime::UNIX_EPOCH, 0, 0, indexed(bad, 0), b""),
                    Err(Error::Encode(_))
                ),
                "principal {bad:?} was accepted"
            );
        }
    }

    #[test]
    fn corrupt_stored_principals_are_decode_errors() {
        let head = header(OffsetDateTime::UNIX_EPOCH, 0, 0, true);
        let stored = |until: i64, len: u16, principal: &[u8]| {
            let mut value = head.to_vec();
            value.extend_from_slice(&until.to_be_bytes());
            value.extend_from_slice(&len.to_be_bytes());
            value.extend_from_slice(principal);
            value
        };
        let good = stored(9, 3, b"adadata");
        let parsed = parse_header(&good).expect("well-formed");
        assert_eq!(
            parse_principal(&parsed, &good).expect("valid"),
            (Some("ada".to_owned()), PRINCIPAL_AT + 3)
        );
        let cases = [
            (good[..HEADER_LEN].to_vec(), "nothing after the header"),
            (good[..PRINCIPAL_AT - 1].to_vec(), "half a length"),
            (stored(-1, 3, b"ada"), "a negative indexed_until"),
            (
                stored(MAX_INDEXED_UNTIL + 1, 3, b"ada"),
                "an indexed_until beyond 2^53",
            ),
            (stored(9, 9, b"ada"), "a length past the value"),
            (stored(9, 0, b""), "an empty principal"),
            (stored(9, 2, &[0xc3, 0x28]), "a principal that is not UTF-8"),
            (stored(9, 3, b"a\nb"), "a control character"),
        ];
        for (value, what) in cases {
            assert!(
                matches!(parse_principal(&parsed, &value), Err(Error::Decode(_))),
                "{what} was accepted"
            );
        }
    }

    #[test]
    fn values_over_the_bulk_limit_are_too_large() {
        assert!(check_size(MAX_VALUE_LEN).is_ok());
        assert!(matches!(
            check_size(MAX_VALUE_LEN + 1),
            Err(Error::TooLarge { size, limit }) if size == MAX_VALUE_LEN + 1 && limit == MAX_VALUE_LEN
        ));
        let small = StoredValue::new(OffsetDateTime::UNIX_EPOCH, 0, 0, indexed("ada", 1), b"abc")
            .expect("small");
        assert_eq!(small.len(), HEADER_LEN + 8 + 2 + 3 + 3);
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
