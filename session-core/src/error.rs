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

    /// The backend rolled the operation back because of contention with other transactions
    /// (a deadlock, a serialization failure), and the store's own bounded retries met it
    /// again. Nothing was written; retrying later may succeed.
    #[error(
        "session store backend aborted the attempt to {operation} because of contention; nothing was written"
    )]
    Contention {
        /// What the store was doing, e.g. `"save a session"`.
        operation: &'static str,
        /// The driver's error from the last attempt.
        #[source]
        source: BoxError,
    },

    /// The encoded record is larger than the backend accepts (e.g. MongoDB's 16 MiB document
    /// limit, MySQL's `max_allowed_packet`). Found before the round trip; nothing was written.
    #[error("encoded session is {size} bytes, over this store's limit of {limit} bytes")]
    TooLarge {
        /// The size of the encoded record, in bytes.
        size: usize,
        /// The largest size the store accepts, in bytes.
        limit: usize,
    },

    /// The record's version is outside `0..=`[`MAX_VERSION`](crate::MAX_VERSION) (on `create`),
    /// or is `MAX_VERSION` itself so that it has no successor (on `save`). Nothing was written.
    #[error("session version {0} is out of range (at most {max})", max = crate::MAX_VERSION)]
    VersionOutOfRange(u64),

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

    /// Whether the operation failed for a reason that may pass if it is tried again later
    /// (a backend failure, a timeout, contention), as opposed to a verdict about the record
    /// (`AlreadyExists`, `NotFound`, `Conflict`) or about its contents.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Backend { .. } | Self::Contention { .. })
    }

    /// Whether the error is, or wraps, a [`Timeout`].
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            if e.is::<Timeout>() {
                return true;
            }
            source = e.source();
        }
        false
    }
}

/// Runs `operation` with a time limit: its output, or [`Error::Backend`] with a [`Timeout`]
/// source when it has not finished within `limit`.
///
/// Every store bounds each call to its backend with this, so an outage is an error in bounded
/// time rather than a hung request.
///
/// # Errors
///
/// [`Error::Backend`] (source [`Timeout`]) when the limit passes first.
pub async fn timed<T>(
    operation: &'static str,
    limit: std::time::Duration,
    future: impl std::future::Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| Error::backend(operation, Timeout(limit)))
}

/// The time limit of one store operation unless configured otherwise: 5 seconds, for every
/// store of this workspace.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks a store's operation time limit: a zero limit would fail every operation.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a zero duration.
pub fn check_timeout(limit: std::time::Duration) -> Result<std::time::Duration> {
    if limit.is_zero() {
        return Err(Error::invalid_config(
            "a store's timeout must be greater than zero: a zero timeout fails every operation",
        ));
    }
    Ok(limit)
}

/// The error an operation returns when it did not finish within its configured timeout.
///
/// Adapters wrap it in [`Error::Backend`]; callers can find it with
/// `std::error::Error::source(..).and_then(|e| e.downcast_ref::<Timeout>())`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("operation timed out after {0:?}")]
pub struct Timeout(pub std::time::Duration);
