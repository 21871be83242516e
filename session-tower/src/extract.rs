//! The axum extractor.

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::{Error, Session};

/// Takes the request's [`Session`]; fails with [`Error::MissingLayer`] (a 500 response) when
/// the route is not behind a [`SessionLayer`](crate::SessionLayer).
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(Error::MissingLayer)
    }
}
