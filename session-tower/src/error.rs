//! What a session operation can fail with.

/// A failed session operation.
///
/// With the `axum` feature it is also a response: handlers can use `?` on session calls. A
/// store failure then becomes the layer's configured error status (500 by default).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session store failed; the cause is the store's error and has been logged.
    #[error("session store failed to {operation}")]
    Store {
        /// What the layer was doing, e.g. `"load a session"`.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: session_core::Error,
    },

    /// A value could not be encoded, or the stored value does not have the requested type.
    #[error("session value error")]
    Value(#[source] session_core::Error),

    /// The request did not pass through a [`SessionLayer`](crate::SessionLayer).
    #[error("no session in this request: is the SessionLayer installed around this route?")]
    MissingLayer,
}

impl Error {
    /// Wraps a store error, logging it with its causes: the response will not carry them.
    pub(crate) fn store(operation: &'static str, source: session_core::Error) -> Self {
        let error = Self::Store { operation, source };
        tracing::error!(error = %Chain(&error), "session store failure");
        error
    }

    /// Whether the session store failed (rather than the request's use of a value).
    #[must_use]
    pub fn is_store(&self) -> bool {
        matches!(self, Self::Store { .. })
    }
}

/// Shows an error and each of its sources, `: `-separated.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Marks a response made from a store failure, so that the layer gives it its configured status.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreFailure;

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Error {
    fn into_response(self) -> axum_core::response::Response {
        use http::StatusCode;
        let (status, message) = match &self {
            Self::Store { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "session store unavailable",
            ),
            Self::Value(source) => {
                tracing::error!(error = %Chain(source), "session value error");
                (StatusCode::INTERNAL_SERVER_ERROR, "session data error")
            }
            Self::MissingLayer => {
                tracing::error!("{self}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "session middleware missing",
                )
            }
        };
        let mut response = (status, message).into_response();
        if self.is_store() {
            response.extensions_mut().insert(StoreFailure);
        }
        response
    }
}
