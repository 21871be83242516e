//! Entry points for the fuzz targets of the repository's `fuzz/` crate, behind the `fuzzing`
//! feature (off by default): thin wrappers over the layer's private parsers, which the targets
//! could not reach otherwise. Not part of the API: hidden from the docs, and changing whenever
//! the code they wrap changes.

use http::HeaderMap;
use session_core::{Data, Id};

use crate::cookie::{Incoming, KeyRing};
use crate::meta::Meta;

/// What a request's session cookie turned out to be (the layer's private `Incoming`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cookie {
    /// No cookie with the session cookie's name.
    Absent,
    /// Cookies with the name, none correctly signed by a key of the ring.
    Invalid,
    /// A correctly signed id; `stale_key` when signed with a key other than the first.
    Valid {
        /// The id the cookie carries.
        id: Id,
        /// Signed with a key other than the first.
        stale_key: bool,
    },
}

impl From<Incoming> for Cookie {
    fn from(incoming: Incoming) -> Self {
        match incoming {
            Incoming::Absent => Self::Absent,
            Incoming::Invalid => Self::Invalid,
            Incoming::Valid { id, stale_key } => Self::Valid { id, stale_key },
        }
    }
}

/// A ring of signing keys, as [`Builder::with_signing_keys`](crate::Builder::with_signing_keys)
/// and [`Builder::express_compatible`](crate::Builder::express_compatible) build it (without
/// their length checks: any non-empty key is taken).
#[derive(Debug, Clone)]
pub struct Keys(KeyRing);

impl Keys {
    /// The ring of `keys`, the first one signing.
    pub fn new<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> Self {
        let keys: Vec<Vec<u8>> = keys.into_iter().map(|k| k.as_ref().to_vec()).collect();
        Self(KeyRing::new(&keys))
    }

    /// The cookie value the layer sends for `id`.
    #[must_use]
    pub fn sign(&self, id: &Id) -> String {
        self.0.sign(id)
    }

    /// One cookie value, as sent (possibly URL-encoded and quoted).
    #[must_use]
    pub fn verify(&self, raw: &[u8]) -> Cookie {
        self.0.verify(raw).into()
    }

    /// The session cookie called `name` in a request's `Cookie` headers.
    #[must_use]
    pub fn read(&self, headers: &HeaderMap, name: &str) -> Cookie {
        self.0.read(headers, name).into()
    }
}

/// The layer's own settings of a stored session (its `cookie` object), as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCookie(Meta);

impl StoredCookie {
    /// Takes the `cookie` object out of `data` as the layer reads it in its default mode.
    pub fn split(data: &mut Data) -> Self {
        Self(Meta::split(data))
    }

    /// Takes the `cookie` object out of `data` as the layer reads it in Express-compatible mode.
    pub fn split_express(data: &mut Data) -> Self {
        Self(Meta::split_express(data))
    }

    /// `data` with this object put back as the default mode stores it.
    ///
    /// # Errors
    ///
    /// As the layer's write: a value the data model cannot hold.
    pub fn join(&self, data: &Data) -> session_core::Result<Data> {
        self.0.join(data)
    }

    /// The session's idle timeout, or `default`.
    #[must_use]
    pub fn idle_timeout(&self, default: Option<time::Duration>) -> Option<time::Duration> {
        self.0.idle_timeout(default)
    }

    /// The session cookie's `Max-Age`, or `default`.
    #[must_use]
    pub fn max_age(&self, default: Option<time::Duration>) -> Option<time::Duration> {
        self.0.max_age(default)
    }
}
