#![doc = include_str!("../README.md")]

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use session_core::{Error, ExpiredDeletion, Id, Principals, Record, Result, Store};
use sha2::Sha256;
use time::OffsetDateTime;

/// What the MAC covers before the id, so that a key also used for something else (against
/// advice) never yields, from the same id, a value that other use produces.
const CONTEXT: &[u8] = b"session-rs/hashed-id/v1\0";

/// A [`Store`] wrapper under which the backend only ever sees a keyed hash of each session id.
///
/// Every operation replaces the caller's id with its [at-rest id](Self::at_rest_id) before it
/// reaches the inner store, and [`load`](Store::load) puts the caller's id back in the record
/// it returns. See the [crate documentation](crate) for the threat model.
///
/// Cheap to clone when `S` is.
#[derive(Clone)]
pub struct HashedIds<S> {
    inner: S,
    /// HMAC-SHA256 already keyed: cloning it skips the key schedule on every operation.
    mac: Hmac<Sha256>,
}

impl<S: fmt::Debug> fmt::Debug for HashedIds<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashedIds")
            .field("inner", &self.inner)
            .field("key", &"(redacted)")
            .finish()
    }
}

impl<S> HashedIds<S> {
    /// The shortest key [`new`](Self::new) accepts: 32 bytes, the output size of SHA-256.
    pub const MIN_KEY_LEN: usize = 32;

    /// Wraps `inner`, hashing ids with HMAC-SHA256 under `key`.
    ///
    /// Use a key of your own for this (not the cookie-signing secret), drawn from a CSPRNG and
    /// kept as a secret, the same on every app server. Changing it makes every stored session
    /// unreachable, as if everyone had logged out.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a key shorter than [`Self::MIN_KEY_LEN`] bytes.
    pub fn new(inner: S, key: &[u8]) -> Result<Self> {
        if key.len() < Self::MIN_KEY_LEN {
            return Err(Error::invalid_config(format!(
                "the key that hashes session ids must be at least {} bytes, got {}",
                Self::MIN_KEY_LEN,
                key.len()
            )));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| Error::invalid_config("HMAC-SHA256 refused the key"))?;
        Ok(Self { inner, mac })
    }

    /// The id under which the inner store keeps the session `id`: HMAC-SHA256 of it under the
    /// key, URL-safe base64 without padding (43 characters, a valid [`Id`]).
    ///
    /// [`Principals::sessions_of`] lists sessions under these ids; an app that wants to mark
    /// the current session in such a list compares with `at_rest_id` of its own id.
    #[must_use]
    pub fn at_rest_id(&self, id: &Id) -> Id {
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        mac.update(id.as_str().as_bytes());
        let encoded = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        match Id::try_from(encoded) {
            Ok(id) => id,
            // 43 characters of the URL-safe alphabet are always a valid id.
            Err(e) => unreachable!("a base64 HMAC-SHA256 is a valid id: {e}"),
        }
    }

    /// The inner store.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// `record` as the inner store keeps it: under its at-rest id.
    fn at_rest(&self, record: &Record) -> Record {
        let mut stored = record.clone();
        stored.id = self.at_rest_id(&record.id);
        stored
    }
}

#[async_trait]
impl<S: Store> Store for HashedIds<S> {
    fn principals(&self) -> Option<&dyn Principals> {
        self.inner.principals().map(|_| self as &dyn Principals)
    }

    async fn create(&self, record: &Record) -> Result<()> {
        self.inner.create(&self.at_rest(record)).await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let loaded = self.inner.load(&self.at_rest_id(id)).await?;
        Ok(loaded.map(|mut record| {
            record.id = id.clone();
            record
        }))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.inner.save(&self.at_rest(record)).await
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        self.inner.touch(&self.at_rest_id(id), expires_at).await
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.inner.delete(&self.at_rest_id(id)).await
    }
}

/// The sessions of a principal, under their at-rest ids: the raw ids are nowhere to be found
/// (that is the point), so [`sessions_of`](Principals::sessions_of) lists at-rest ids and
/// [`revoke`](Principals::revoke) takes them back as they are. [`revoke_all`]'s `keep` is the
/// caller's own id (the session of the current request), hashed here.
///
/// Callable when the inner store keeps principals ([`Store::principals`] says so); otherwise
/// every method fails with [`Error::InvalidConfig`].
///
/// [`revoke_all`]: Principals::revoke_all
#[async_trait]
impl<S: Store> Principals for HashedIds<S> {
    async fn sessions_of(&self, principal: &str) -> Result<Vec<Record>> {
        self.inner_principals()?.sessions_of(principal).await
    }

    async fn revoke(&self, principal: &str, id: &Id) -> Result<bool> {
        self.inner_principals()?.revoke(principal, id).await
    }

    async fn revoke_all(&self, principal: &str, keep: Option<&Id>) -> Result<u64> {
        let keep = keep.map(|id| self.at_rest_id(id));
        self.inner_principals()?
            .revoke_all(principal, keep.as_ref())
            .await
    }
}

impl<S: Store> HashedIds<S> {
    fn inner_principals(&self) -> Result<&dyn Principals> {
        self.inner.principals().ok_or_else(|| {
            Error::invalid_config(
                "the store behind HashedIds does not keep the sessions of a principal",
            )
        })
    }
}

/// Cleanup works on expiry alone, never on ids: forwarded as it is.
#[async_trait]
impl<S: Store + ExpiredDeletion> ExpiredDeletion for HashedIds<S> {
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        self.inner.delete_expired_batch(limit).await
    }

    async fn delete_expired(&self) -> Result<u64> {
        self.inner.delete_expired().await
    }
}

// Shared across tasks and used as `Arc<dyn Store>`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HashedIds<std::sync::Arc<dyn Store>>>();
};
