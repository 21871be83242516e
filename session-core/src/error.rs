//! The one error type every store returns.

use std::borrow::Cow;

/// A boxed error from a driver, codec or other underlying library, kept as `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a session store.
///
/// Backend-specific errors (a Redis reply error, an sqlx error, a MongoDB error, a timeout)
/// are mapped privately inside each adapter to [`Error::Backend`], with the driver's error
/// kept as [`std::error::Error::source`] so callers can still downcast to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `create` found a live record with the same id; nothing was written.
    #[error("a live session with this id already exists")]
    AlreadyExists,

    /// The record does not exist (never created, deleted, or expired).
    #[error("session not found (deleted or expired)")]
    NotFound,

    /// `save` found a stored version different from the record's: someone else saved first.
    #[error("session was saved by someone else since it was loaded (version conflict)")]
    Conflict,

    /// Session data could not be encoded.
    #[error("failed to encode session data")]
    Encode(#[source] BoxError),

    /// Stored bytes could not be decoded into session data (corrupt or foreign record).
    #[error("failed to decode session data")]
    Decode(#[source] BoxError),

    /// The backend failed: connection refused, timed out, reply error, and so on.
    #[error("session store backend failed while trying to {operation}")]
    Backend {
        /// What the store was doing, e.g. `"load a session"`.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// A store or middleware was configured with an invalid value.
    #[error("invalid configuration: {0}")]
    InvalidConfig(Cow<'static, str>),
}

impl Error {
    /// Wraps a driver error as [`Error::Backend`].
    pub fn backend(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            operation,
            source: source.into(),
        }
    }

    /// Builds [`Error::InvalidConfig`].
    pub fn invalid_config(message: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidConfig(message.into())
    }

    /// Wraps any error as [`Error::Decode`].
    pub fn decode(source: impl Into<BoxError>) -> Self {
        Self::Decode(source.into())
    }

    /// Wraps any error as [`Error::Encode`].
    pub fn encode(source: impl Into<BoxError>) -> Self {
        Self::Encode(source.into())
    }
}

/// The error an operation returns when it did not finish within its configured timeout.
///
/// Adapters wrap it in [`Error::Backend`]; callers can find it with
/// `std::error::Error::source(..).and_then(|e| e.downcast_ref::<Timeout>())`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("operation timed out after {0:?}")]
pub struct Timeout(pub std::time::Duration);
