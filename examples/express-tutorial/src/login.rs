//! What `POST /login` accepts: the one demo account, and the JSON body it must come in.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

/// The one account `/login` accepts: the Express tutorial's `JohnDoe` / `password123` unless
/// the command line or environment says otherwise.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    /// Never shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Default for Credentials {
    fn default() -> Self {
        Self::new(Self::TUTORIAL_USERNAME, Self::TUTORIAL_PASSWORD)
    }
}

impl Credentials {
    /// The Express tutorial's username.
    pub const TUTORIAL_USERNAME: &'static str = "JohnDoe";
    /// The Express tutorial's password.
    pub const TUTORIAL_PASSWORD: &'static str = "password123";

    /// An account with this username and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The account's username.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether `login` names this account. Both fields are always compared, each in time that
    /// does not depend on where it differs (only on its length), so a wrong guess does not
    /// tell how much of it was right.
    pub(crate) fn accept(&self, login: &Login) -> bool {
        let username = login.username.as_bytes().ct_eq(self.username.as_bytes());
        let password = login.password.as_bytes().ct_eq(self.password.as_bytes());
        bool::from(username & password)
    }
}

/// The body of `POST /login`: `{"username": "...", "password": "..."}`.
#[derive(Deserialize)]
pub(crate) struct Login {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// The answer to a `POST /login` body that is not the login JSON. The status is axum's (415
/// without `Content-Type: application/json`, 400 for malformed JSON, 422 for JSON of another
/// shape); the text is ours: the parser's message would show its internals to any client.
pub(crate) fn bad_request(rejection: &JsonRejection) -> Response {
    let message = match rejection {
        // A cross-site HTML form can post text/plain or form data without asking; only a
        // script of this site's origin can send JSON. Refusing anything else stops login CSRF.
        JsonRejection::MissingJsonContentType(_) => {
            "Send the login as JSON, with Content-Type: application/json"
        }
        _ => r#"Invalid login request: send JSON {"username": "...", "password": "..."}"#,
    };
    tracing::debug!(%rejection, "login request refused");
    (rejection.status(), message).into_response()
}

/// The answer to a login with the wrong username or password. The Express tutorial answers it
/// with `200 OK`; a 401 tells clients (and the page's script) that the login failed.
pub(crate) fn invalid_credentials() -> Response {
    (StatusCode::UNAUTHORIZED, "Invalid credentials").into_response()
}

#[cfg(test)]
mod tests {
    use super::{Credentials, Login};

    fn login(username: &str, password: &str) -> Login {
        Login {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    #[test]
    fn credentials_accept_only_the_exact_account() {
        let account = Credentials::default();
        assert!(account.accept(&login("JohnDoe", "password123")));
        for (username, password) in [
            ("JohnDoe", "password12"),
            ("JohnDoe", "password1234"),
            ("JohnDoe", "Password123"),
            ("johndoe", "password123"),
            ("", ""),
            ("JohnDoe", ""),
        ] {
            assert!(
                !account.accept(&login(username, password)),
                "{username:?} / {password:?}"
            );
        }
    }

    #[test]
    fn credentials_can_be_replaced() {
        let account = Credentials::new("alice", "correct horse");
        assert!(account.accept(&login("alice", "correct horse")));
        assert!(!account.accept(&login("JohnDoe", "password123")));
        assert!(!format!("{account:?}").contains("horse"), "{account:?}");
    }
}
