//! The Express session tutorial's app, in Rust: the routes, the store chosen by URL, and the
//! signing key. `main.rs` runs it; the tests drive the same code.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use session_core::{Error, Store, cleanup::CleanupTask};
use session_tower::{Session, SessionLayer};
use subtle::ConstantTimeEq as _;
use time::Duration;

/// The demo account (also in the README): the only credentials `/login` accepts.
pub const DEMO_USERNAME: &str = "JohnDoe";
/// The demo account's password.
pub const DEMO_PASSWORD: &str = "tutorial";

/// The store used when neither `--store` nor `SESSION_STORE` names one: a file beside the app,
/// so sessions survive a restart.
pub const DEFAULT_STORE: &str = "sqlite://express-tutorial.db";

/// A store opened from a URL, with the cleanup task SQL stores need (dropping it stops it).
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Deletes expired rows periodically, for stores without native expiry.
    pub cleanup: Option<CleanupTask>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("cleanup", &self.cleanup.is_some())
            .finish_non_exhaustive()
    }
}

/// Opens the store a URL names: `memory`, `sqlite://file.db` (or `sqlite::memory:`),
/// `redis://`, `postgres://`, `mysql://`, `mongodb://` (or `mongodb+srv://`). SQL tables and
/// MongoDB indexes are created if missing.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for an unknown scheme or one this build leaves out (its cargo
/// feature is off), [`Error::Backend`] if the store cannot be reached.
pub async fn open_store(url: &str) -> Result<OpenedStore, Error> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    match scheme {
        "memory" => Ok(plain(session_memory::MemoryStore::new())),
        "sqlite" => sqlite(url).await,
        "redis" | "rediss" => redis(url).await,
        "postgres" | "postgresql" => postgres(url).await,
        "mysql" | "mariadb" => mysql(url).await,
        "mongodb" | "mongodb+srv" => mongodb(url).await,
        _ => Err(Error::invalid_config(format!(
            "unknown session store URL {url:?}: use memory, sqlite://FILE, redis://, postgres://, mysql:// or mongodb://"
        ))),
    }
}

fn plain(store: impl Store) -> OpenedStore {
    OpenedStore {
        store: Arc::new(store),
        cleanup: None,
    }
}

#[allow(dead_code)]
fn not_in_this_build(feature: &str) -> Error {
    Error::invalid_config(format!(
        "this store is not supported in this build: rebuild with `--features {feature}`"
    ))
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn with_cleanup<S>(store: S) -> Result<OpenedStore, Error>
where
    S: Store + session_core::ExpiredDeletion,
{
    use session_core::cleanup::{self, CleanupConfig};
    let store = Arc::new(store);
    let cleanup = cleanup::spawn(
        Arc::clone(&store),
        CleanupConfig::new(std::time::Duration::from_secs(600)),
    )?;
    Ok(OpenedStore {
        store,
        cleanup: Some(cleanup),
    })
}

#[cfg(feature = "sqlite")]
async fn sqlite(url: &str) -> Result<OpenedStore, Error> {
    let store = session_sqlx::SqliteStore::connect(url).await?;
    store.migrate().await?;
    with_cleanup(store)
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite(_: &str) -> Result<OpenedStore, Error> {
    Err(not_in_this_build("sqlite"))
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str) -> Result<OpenedStore, Error> {
    let store = session_sqlx::PostgresStore::connect(url).await?;
    store.migrate().await?;
    with_cleanup(store)
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_: &str) -> Result<OpenedStore, Error> {
    Err(not_in_this_build("postgres"))
}

#[cfg(feature = "mysql")]
async fn mysql(url: &str) -> Result<OpenedStore, Error> {
    // sqlx knows MariaDB by its MySQL scheme.
    let url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_owned(),
    };
    let store = session_sqlx::MySqlStore::connect(&url).await?;
    store.migrate().await?;
    with_cleanup(store)
}

#[cfg(not(feature = "mysql"))]
async fn mysql(_: &str) -> Result<OpenedStore, Error> {
    Err(not_in_this_build("mysql"))
}

#[cfg(feature = "redis")]
async fn redis(url: &str) -> Result<OpenedStore, Error> {
    Ok(plain(session_redis::RedisStore::new(url).await?))
}

#[cfg(not(feature = "redis"))]
async fn redis(_: &str) -> Result<OpenedStore, Error> {
    Err(not_in_this_build("redis"))
}

#[cfg(feature = "mongodb")]
async fn mongodb(url: &str) -> Result<OpenedStore, Error> {
    let store = session_mongo::MongoStore::connect(url).await?;
    store.migrate().await?;
    Ok(plain(store))
}

#[cfg(not(feature = "mongodb"))]
async fn mongodb(_: &str) -> Result<OpenedStore, Error> {
    Err(not_in_this_build("mongodb"))
}

/// The signing key: read from `path`, or made of 384 random bits and written there (readable
/// by the owner only) the first time, so that cookies stay valid across restarts.
///
/// # Errors
///
/// An I/O error if the file cannot be read or created, or `InvalidData` if it holds less than
/// 32 bytes.
pub fn load_or_create_key(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    match std::fs::read(path) {
        Ok(key) => {
            let key = key.trim_ascii().to_vec();
            if key.len() < session_tower::MIN_KEY_LEN {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the key file {} holds {} bytes; at least {} are needed",
                        path.display(),
                        key.len(),
                        session_tower::MIN_KEY_LEN
                    ),
                ));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut random = [0u8; 48];
            getrandom::fill(&mut random).map_err(std::io::Error::other)?;
            let key: String = random.iter().map(|b| format!("{b:02x}")).collect();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path)?;
            file.write_all(key.as_bytes())?;
            file.write_all(b"\n")?;
            Ok(key.into_bytes())
        }
        Err(e) => Err(e),
    }
}

/// The session layer the app uses.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if the key is too short.
pub fn session_layer(
    store: Arc<dyn Store>,
    key: &[u8],
    listen: SocketAddr,
) -> Result<SessionLayer, Error> {
    SessionLayer::builder(store)
        .with_signing_key(key)
        // A Secure cookie never comes back over plain http, and this app serves plain http.
        // On a loopback address that is safe enough for a demo; anywhere else keep the
        // library's default (Secure) and put the app behind HTTPS.
        .with_secure(!listen.ip().is_loopback())
        .with_max_age(Some(Duration::hours(1)))
        .with_idle_timeout(Some(Duration::hours(1)))
        .build()
}

/// The app's routes, behind `layer`.
pub fn router(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/set-session", get(set_session))
        .route("/get-session", get(get_session))
        .route("/clear-session", get(clear_session))
        .route("/login", post(login))
        .layer(layer)
}

#[derive(Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
}

async fn set_session(session: Session) -> Result<&'static str, session_tower::Error> {
    let user = User {
        name: DEMO_USERNAME.to_owned(),
        age: 30,
    };
    session.insert("user", &user).await?;
    Ok("Session data set")
}

async fn get_session(session: Session) -> Result<String, session_tower::Error> {
    Ok(match session.get::<serde_json::Value>("user").await? {
        Some(user) => format!("Session data: {user}"),
        None => "No session data found".to_owned(),
    })
}

async fn clear_session(session: Session) -> Result<&'static str, session_tower::Error> {
    session.destroy().await?;
    Ok("Session cleared")
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(session: Session, body: Bytes) -> Result<Response, session_tower::Error> {
    let login: Login = match serde_json::from_slice(&body) {
        Ok(login) => login,
        Err(e) => {
            let message = format!(
                "Invalid login request ({e}). Send JSON: {{\"username\": \"...\", \"password\": \"...\"}}"
            );
            return Ok((StatusCode::BAD_REQUEST, message).into_response());
        }
    };
    let username_ok = login.username.as_bytes().ct_eq(DEMO_USERNAME.as_bytes());
    let password_ok = login.password.as_bytes().ct_eq(DEMO_PASSWORD.as_bytes());
    if !bool::from(username_ok & password_ok) {
        return Ok((StatusCode::UNAUTHORIZED, "Invalid username or password").into_response());
    }
    // A new id at login: an id anyone saw or planted before is worthless now.
    session.regenerate().await?;
    session.insert("username", &login.username).await?;
    Ok(format!("Logged in as {}", login.username).into_response())
}

async fn index(session: Session) -> Result<Response, session_tower::Error> {
    let data = session.data().await?;
    let username: Option<String> = session.get("username").await?;
    let shown = data
        .to_json()
        .ok()
        .and_then(|map| serde_json::to_string_pretty(&map).ok())
        .unwrap_or_else(|| "(values that are not JSON)".to_owned());
    let status = match &username {
        Some(name) => format!(
            "Logged in as <strong id=\"username\">{}</strong>.",
            escape(name)
        ),
        None => "Not logged in.".to_owned(),
    };
    // Filled in one pass, so that text from the session can never be taken for a placeholder.
    let mut page = String::with_capacity(PAGE.len() + status.len() + shown.len());
    let mut rest = PAGE;
    for (placeholder, value) in [("{status}", status), ("{session}", escape(&shown))] {
        if let Some((before, after)) = rest.split_once(placeholder) {
            page.push_str(before);
            page.push_str(&value);
            rest = after;
        }
    }
    page.push_str(rest);
    // The page shows one visitor's session: no shared cache may keep it.
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response())
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sessions: the Express tutorial in Rust</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
pre { background: #f4f4f4; padding: .75rem; }
label { display: block; margin: .5rem 0; }
#message { color: #b00; }
</style>
</head>
<body>
<h1>Sessions</h1>
<p id="status">{status}</p>
<h2>This session holds</h2>
<pre id="session">{session}</pre>
<h2>Log in</h2>
<form id="login">
<label>Username <input name="username" id="login-username" autocomplete="username"></label>
<label>Password <input name="password" id="login-password" type="password" autocomplete="current-password"></label>
<button type="submit" id="login-submit">Log in</button>
</form>
<p id="message"></p>
<h2>Routes</h2>
<ul>
<li><a href="/set-session">/set-session</a> stores a user object</li>
<li><a href="/get-session">/get-session</a> shows it</li>
<li><a href="/clear-session" id="clear">/clear-session</a> destroys the session</li>
</ul>
<script>
document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch('/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: form.get('username'), password: form.get('password') }),
  });
  if (response.ok) {
    location.reload();
  } else {
    document.getElementById('message').textContent = await response.text();
  }
});
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<script>alert('x') & "y"</script>"#),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
