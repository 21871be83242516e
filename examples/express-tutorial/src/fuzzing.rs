//! Entry points for the fuzz targets of the repository's `fuzz/` crate, behind the `fuzzing`
//! feature (off by default): the parsing and checking of `POST /login`'s body, which the targets
//! could not reach otherwise. Not part of the API: hidden from the docs, and changing whenever
//! the code they wrap changes.

use axum::Json;
use axum::http::StatusCode;

use crate::login::{self, Credentials, Login};

/// What `POST /login` does with a JSON `body` (its `Content-Type` already JSON): the status of
/// the refusal for a body that is not the login JSON or that names another account, or `200 OK`
/// with the username the session would keep.
pub fn login(credentials: &Credentials, body: &[u8]) -> (StatusCode, Option<String>) {
    let login: Login = match Json::<Login>::from_bytes(body) {
        Ok(Json(login)) => login,
        Err(rejection) => return (login::bad_request(&rejection).status(), None),
    };
    if credentials.accept(&login) {
        (StatusCode::OK, Some(login.username))
    } else {
        (login::invalid_credentials().status(), None)
    }
}
