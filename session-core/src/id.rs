//! Session ids.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Random bytes in a generated id: 192 bits, 32 characters once encoded (as Express makes them).
const RANDOM_BYTES: usize = 24;

/// A session id: an opaque string of the URL-safe base64 alphabet (`A-Z a-z 0-9 - _`).
///
/// Ids are bearer secrets: whoever holds one holds the session. [`Id::random`] draws 192 bits
/// from the operating system's CSPRNG. Parsing accepts any id of that alphabet between
/// [`Id::MIN_LEN`] and [`Id::MAX_LEN`] characters, so ids made by other systems (Express makes
/// 32-character ids) can be read, and rejects everything else. `Debug` shows only a prefix, so an
/// id that ends up in a log cannot be replayed.
///
/// ```
/// use session_core::Id;
///
/// let id = Id::random();
/// assert_eq!(id.as_str().len(), 32);
/// let parsed: Id = id.as_str().parse()?;
/// assert_eq!(parsed, id);
/// assert!("not an id!".parse::<Id>().is_err());
/// # Ok::<(), session_core::InvalidId>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(Arc<str>);

impl Id {
    /// The shortest id [`FromStr`] accepts.
    pub const MIN_LEN: usize = 16;
    /// The longest id [`FromStr`] accepts.
    pub const MAX_LEN: usize = 128;

    /// A new id of 192 random bits from the operating system's CSPRNG, URL-safe base64.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes. A session id made from anything
    /// weaker would be a vulnerability, so there is no fallback.
    #[must_use]
    pub fn random() -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        Self(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// The id as a string, e.g. to build a storage key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not a valid [`Id`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidId {
    /// Too short or too long.
    #[error("session id must be {min} to {max} characters long, got {len}", min = Id::MIN_LEN, max = Id::MAX_LEN)]
    Length {
        /// The length found.
        len: usize,
    },
    /// A character outside `A-Z a-z 0-9 - _`.
    #[error(
        "session id may only contain A-Z, a-z, 0-9, '-' and '_' (found a character outside that set at byte {position})"
    )]
    Character {
        /// Byte offset of the first bad character.
        position: usize,
    },
}

fn validate(s: &str) -> Result<(), InvalidId> {
    if !(Id::MIN_LEN..=Id::MAX_LEN).contains(&s.len()) {
        return Err(InvalidId::Length { len: s.len() });
    }
    match s
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        Some(position) => Err(InvalidId::Character { position }),
        None => Ok(()),
    }
}

impl FromStr for Id {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        validate(s)?;
        Ok(Self(s.into()))
    }
}

impl TryFrom<String> for Id {
    type Error = InvalidId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        validate(&s)?;
        Ok(Self(s.into()))
    }
}

impl TryFrom<&str> for Id {
    type Error = InvalidId;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Id {
    /// Writes the whole id: use it to build storage keys and cookies, not log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Id {
    /// Shows the first four characters only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.0.get(..4).unwrap_or_default();
        write!(f, "Id({prefix}…)")
    }
}

impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_32_url_safe_chars_and_distinct() {
        let a = Id::random();
        let b = Id::random();
        assert_eq!(a.as_str().len(), 32, "{a}");
        assert!(validate(a.as_str()).is_ok(), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn express_ids_parse() {
        // Shape of an id made by express-session (uid-safe, 24 bytes).
        let id: Id = "mX4q2Wc8m9-Jx_0vB3nKx7Lq2Zp5Rt1a".parse().expect("valid");
        assert_eq!(id.as_str(), "mX4q2Wc8m9-Jx_0vB3nKx7Lq2Zp5Rt1a");
    }

    #[test]
    fn bad_ids_are_rejected_with_a_reason() {
        assert_eq!("short".parse::<Id>(), Err(InvalidId::Length { len: 5 }));
        assert_eq!(
            "a".repeat(129).parse::<Id>(),
            Err(InvalidId::Length { len: 129 })
        );
        assert_eq!(
            "abcdefghijklmnop/".parse::<Id>(),
            Err(InvalidId::Character { position: 16 })
        );
        assert_eq!(
            "abcdefghijklmnop=".parse::<Id>(),
            Err(InvalidId::Character { position: 16 })
        );
        assert!("abcdefghijklmnoé".parse::<Id>().is_err());
    }

    #[test]
    fn debug_redacts() {
        let id = Id::random();
        let shown = format!("{id:?}");
        assert!(!shown.contains(id.as_str()), "{shown}");
        assert!(shown.starts_with("Id("), "{shown}");
    }
}
