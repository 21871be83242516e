//! The session record and its data.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::{Duration, OffsetDateTime};

use crate::{Error, Id, Result};

/// One stored session: its id, its data, when it was created, when it expires, and the version
/// the store uses to detect concurrent saves.
///
/// Instants are kept to the millisecond: every store must preserve at least that precision
/// (Redis `PXAT` and BSON dates have no more), and [`Record::new`] and [`now`] produce
/// whole milliseconds so that a round trip through any store is exact.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The session id.
    pub id: Id,
    /// The session's values.
    pub data: Data,
    /// When the session was first created.
    pub created_at: OffsetDateTime,
    /// When the session expires; a store never returns a record at or past this instant.
    pub expires_at: OffsetDateTime,
    /// The version of the stored record this copy was read as; see [`Store::save`](crate::Store::save).
    pub version: u64,
    /// Whose session this is (e.g. a user id), if the app said so at login. Stores that
    /// implement [`Principals`](crate::Principals) keep it and index it, so that an app can list
    /// and revoke the sessions of one user; others may ignore it. See [`check_principal`].
    pub principal: Option<String>,
}

impl Record {
    /// A new, empty record created now and expiring after `ttl`, at version 0.
    #[must_use]
    pub fn new(id: Id, ttl: Duration) -> Self {
        let created_at = now();
        Self {
            id,
            data: Data::new(),
            created_at,
            expires_at: created_at.saturating_add(ttl),
            version: 0,
            principal: None,
        }
    }

    /// A record from its stored parts, as an adapter's `load` builds it.
    #[must_use]
    pub fn from_parts(
        id: Id,
        data: Data,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
        version: u64,
    ) -> Self {
        Self {
            id,
            data,
            created_at,
            expires_at,
            version,
            principal: None,
        }
    }

    /// The record with `principal` set, as an adapter's `load` adds the stored one.
    #[must_use]
    pub fn with_principal(mut self, principal: Option<String>) -> Self {
        self.principal = principal;
        self
    }

    /// The version a successful [`Store::save`](crate::Store::save) of this record stores:
    /// `version + 1`.
    ///
    /// # Errors
    ///
    /// [`Error::VersionOutOfRange`] if `version` is [`MAX_VERSION`] or above: there is no
    /// next version, and the save must write nothing.
    pub fn next_version(&self) -> Result<u64> {
        check_version(self.version)?;
        if self.version == MAX_VERSION {
            return Err(Error::VersionOutOfRange(self.version));
        }
        Ok(self.version + 1)
    }

    /// Whether the record has expired at `now` (expiry is exclusive: a record expiring at
    /// exactly `now` is expired).
    #[must_use]
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    /// Whether the record has expired now.
    #[must_use]
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(OffsetDateTime::now_utc())
    }
}

/// The largest version a store keeps: `i64::MAX`, what every backend stores natively (SQL
/// `BIGINT`, BSON `int64`). See the [contract](crate::Store#contract).
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// Checks that `version` is within `0..=MAX_VERSION`, as `create` must before writing.
///
/// # Errors
///
/// [`Error::VersionOutOfRange`] otherwise.
pub fn check_version(version: u64) -> Result<u64> {
    if version > MAX_VERSION {
        return Err(Error::VersionOutOfRange(version));
    }
    Ok(version)
}

/// The longest principal a store accepts, in bytes.
pub const MAX_PRINCIPAL_LEN: usize = 256;

/// Checks a record's principal: 1 to [`MAX_PRINCIPAL_LEN`] bytes of UTF-8 without control
/// characters, so that every backend can index it and logs can show it.
///
/// # Errors
///
/// [`Error::Encode`] otherwise; stores check it in `create` and `save` before writing.
pub fn check_principal(principal: &str) -> Result<&str> {
    if principal.is_empty() || principal.len() > MAX_PRINCIPAL_LEN {
        return Err(Error::encode(crate::codec::FormatError(
            "a principal must be 1 to 256 bytes long",
        )));
    }
    if principal.chars().any(char::is_control) {
        return Err(Error::encode(crate::codec::FormatError(
            "a principal must not contain control characters",
        )));
    }
    Ok(principal)
}

/// The current time in UTC, truncated to whole milliseconds (the precision every store keeps).
#[must_use]
pub fn now() -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc())
}

/// `t` in UTC with its sub-millisecond part dropped.
#[must_use]
pub fn truncate_to_millis(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000_000).unwrap_or(t)
}

/// One value of session data, held in its encoded (MessagePack) form.
///
/// Values are decoded only when read and encoded only when written, and a record is encoded by
/// concatenating the values it already holds: a request that reads one key of a large session
/// pays for that key alone. Cloning is a reference-count increment.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Value(Bytes);

impl Value {
    /// Encodes `value` (maps as maps with field names, so the data stays JSON-like).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if `value`'s `Serialize` implementation fails.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        let bytes = rmp_serde::to_vec_named(value).map_err(Error::encode)?;
        // The encoder's buffer grows by doubling: shrunk to the value, it neither keeps up to
        // twice its size alive for as long as the session lives, nor needs the separate
        // reference-count block `Bytes` adds to a vector with spare capacity.
        Ok(Self(Bytes::from(bytes.into_boxed_slice())))
    }

    /// Decodes the value as a `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the stored value does not have `T`'s shape.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        rmp_serde::from_slice(&self.0).map_err(Error::decode)
    }

    /// Wraps bytes that are already one complete MessagePack value.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if `bytes` is not exactly one well-formed MessagePack value.
    pub fn from_msgpack(bytes: Bytes) -> Result<Self> {
        let len = crate::codec::msgpack_value_len(&bytes, 0)?;
        if len != bytes.len() {
            return Err(Error::decode(crate::codec::FormatError(
                "trailing bytes after a MessagePack value",
            )));
        }
        Ok(Self(bytes))
    }

    /// Internal: bytes known to be one well-formed value.
    pub(crate) fn from_trusted(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The MessagePack encoding of the value.
    #[must_use]
    pub fn as_msgpack(&self) -> &[u8] {
        &self.0
    }

    /// The value as a JSON tree (for display and debugging; typed access is [`Value::decode`]).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the value has no JSON equivalent (e.g. a map with integer keys).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        self.decode()
    }
}

impl fmt::Debug for Value {
    /// Shows the size only: session values are often secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({} bytes)", self.0.len())
    }
}

/// A session's values: string keys to JSON-like values, with typed access through serde.
///
/// Cloning is cheap (the map is shared until one copy is changed).
///
/// Kept as one vector of entries sorted by key, each key shared (`Arc<str>`): sessions hold a
/// handful of keys, for which a vector is smaller than a tree and as quick to search, and the
/// first change after a clone copies the vector with a reference-count increment per entry
/// rather than a new string per key.
///
/// ```
/// use session_core::Data;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Cart { items: Vec<String> }
///
/// let mut data = Data::new();
/// data.insert("user", &"ada")?;
/// data.insert("cart", &Cart { items: vec!["tea".into()] })?;
/// assert_eq!(data.get::<String>("user")?, Some("ada".to_owned()));
/// assert_eq!(data.get::<Cart>("cart")?.map(|c| c.items.len()), Some(1));
/// assert!(data.remove("user").is_some());
/// assert_eq!(data.get::<String>("user")?, None);
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Data {
    /// Sorted by key, keys unique.
    entries: Arc<Vec<(Arc<str>, Value)>>,
}

impl Data {
    /// Empty data.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The value under `key`, decoded as `T`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the stored value does not have `T`'s shape.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get_value(key).map(Value::decode).transpose()
    }

    /// The encoded value under `key`.
    #[must_use]
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.entries[i].1)
    }

    /// Where `key` is (`Ok`), or where it would go (`Err`).
    fn position(&self, key: &str) -> std::result::Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| (**k).cmp(key))
    }

    /// Encodes `value` and stores it under `key`, replacing any previous value.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if `value`'s `Serialize` implementation fails; the data is unchanged.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<()> {
        let value = Value::encode(value)?;
        self.insert_value(key, value);
        Ok(())
    }

    /// Stores an already encoded value under `key`, returning the previous one.
    pub fn insert_value(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.position(&key) {
            // An existing key keeps its shared string.
            Ok(i) => Some(std::mem::replace(
                &mut Arc::make_mut(&mut self.entries)[i].1,
                value,
            )),
            Err(i) => {
                Arc::make_mut(&mut self.entries).insert(i, (Arc::from(key), value));
                None
            }
        }
    }

    /// Removes the value under `key`, returning it.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key).ok()?;
        Some(Arc::make_mut(&mut self.entries).remove(i).1)
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.entries = Arc::default();
        }
    }

    /// Whether there is a value under `key`.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// The number of values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no values.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| &**k)
    }

    /// The keys and encoded values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    /// The whole data as a JSON object (for display and debugging).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if a value has no JSON equivalent.
    pub fn to_json(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        self.iter()
            .map(|(k, v)| Ok((k.to_owned(), v.to_json()?)))
            .collect()
    }

    pub(crate) fn from_map(entries: BTreeMap<String, Value>) -> Self {
        // A map's entries come sorted by key, each key once.
        Self {
            entries: Arc::new(
                entries
                    .into_iter()
                    .map(|(k, v)| (Arc::from(k), v))
                    .collect(),
            ),
        }
    }
}

impl fmt::Debug for Data {
    /// Shows the keys and value sizes, never the values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Data {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        Self::from_map(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_bounded_printable_text() {
        assert!(check_principal("user-42").is_ok());
        assert!(check_principal(&"é".repeat(128)).is_ok());
        for bad in ["", "a\nb", "\u{0}", &"x".repeat(MAX_PRINCIPAL_LEN + 1)] {
            assert!(
                matches!(check_principal(bad), Err(Error::Encode(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn clone_is_copy_on_write() {
        let mut a = Data::new();
        a.insert("k", &1u32).expect("encode");
        let b = a.clone();
        a.insert("k", &2u32).expect("encode");
        assert_eq!(a.get::<u32>("k").expect("decode"), Some(2));
        assert_eq!(b.get::<u32>("k").expect("decode"), Some(1));
    }

    #[test]
    fn keys_stay_sorted_and_unique_whatever_the_order_of_writes() {
        let mut a = Data::new();
        for (k, v) in [("b", 1u32), ("a", 2), ("c", 3)] {
            assert!(
                a.insert_value(k, Value::encode(&v).expect("encode"))
                    .is_none()
            );
        }
        let previous = a.insert_value("b", Value::encode(&4u32).expect("encode"));
        assert_eq!(
            previous.map(|v| v.decode::<u32>().expect("decode")),
            Some(1)
        );
        assert_eq!(a.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(a.get::<u32>("b").expect("decode"), Some(4));
        assert!(a.contains_key("c") && !a.contains_key("d"));

        assert_eq!(
            a.remove("a").map(|v| v.decode::<u32>().expect("decode")),
            Some(2)
        );
        assert!(a.remove("a").is_none());
        assert_eq!(a.keys().collect::<Vec<_>>(), ["b", "c"]);

        let mut b = Data::new();
        b.insert("c", &3u32).expect("encode");
        b.insert("b", &4u32).expect("encode");
        assert_eq!(a, b, "the same keys and values, written in another order");
        let c: Data = [
            ("c", Value::encode(&3u32).expect("encode")),
            ("b", b.get_value("b").cloned().expect("b")),
        ]
        .into_iter()
        .collect();
        assert_eq!(c, b, "collected from unsorted pairs");
    }

    #[test]
    fn wrong_type_is_a_decode_error() {
        let mut a = Data::new();
        a.insert("k", &"text").expect("encode");
        assert!(matches!(a.get::<u64>("k"), Err(Error::Decode(_))));
    }

    #[test]
    fn truncation_keeps_whole_milliseconds() {
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).expect("valid");
        assert_eq!(
            truncate_to_millis(t).unix_timestamp_nanos(),
            1_700_000_000_123_000_000
        );
    }

    #[test]
    fn value_from_msgpack_rejects_partial_and_trailing_bytes() {
        let v = Value::encode(&vec![1, 2, 3]).expect("encode");
        let bytes = Bytes::copy_from_slice(v.as_msgpack());
        assert!(Value::from_msgpack(bytes.clone()).is_ok());
        assert!(Value::from_msgpack(bytes.slice(..bytes.len() - 1)).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Value::from_msgpack(Bytes::from(longer)).is_err());
    }
}
