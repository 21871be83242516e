//! The Express tutorial's app: its session setup, then its routes in the tutorial's order.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Form, Json, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use session_core::{Error, Store};
use session_tower::{SameSite, Session, SessionLayer};
use time::Duration;

use crate::login::{self, Credentials, Login};
use crate::page;
use crate::store::StoreInfo;

/// The session key the tutorial's routes use; an Express app sharing the store reads it too.
pub const USERNAME: &str = "username";

/// The session key under which login keeps the browser's `User-Agent`, for the page's list of
/// the user's sessions (kept only where that list is available, see [`router`]).
pub const USER_AGENT: &str = "user_agent";

/// The longest `User-Agent` kept, in bytes: a header is the client's to choose, and every
/// byte of it would be stored and loaded with the session on each request.
const MAX_USER_AGENT_LEN: usize = 200;

/// How the app sets up sessions (express-session's options). The page shows what the layer
/// does with them, read from the session handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// The cookie's name.
    pub cookie_name: String,
    /// The cookie's `HttpOnly`: scripts cannot read it.
    pub http_only: bool,
    /// The cookie's `Secure`: sent back over HTTPS only.
    pub secure: bool,
    /// The cookie's `SameSite`.
    pub same_site: SameSite,
    /// The cookie's `Max-Age`.
    pub max_age: Duration,
    /// How long an unused session lives on the server.
    pub idle_timeout: Duration,
    /// How long a session lives on the server at most, however active.
    pub absolute_timeout: Duration,
}

impl SessionSettings {
    /// The app's settings when it listens on `listen`.
    ///
    /// The app serves plain http, and a browser never sends a `Secure` cookie back over http:
    /// on a loopback address the cookie is not `Secure` (safe enough for a demo); on any other
    /// address it stays `Secure`, the library's default, and HTTPS must be put in front.
    #[must_use]
    pub fn for_address(listen: SocketAddr) -> Self {
        Self {
            cookie_name: session_tower::Builder::DEFAULT_NAME.to_owned(),
            http_only: true,
            secure: !listen.ip().is_loopback(),
            same_site: SameSite::Lax,
            max_age: Duration::hours(1),
            idle_timeout: Duration::hours(1),
            absolute_timeout: Duration::days(1),
        }
    }

    /// These settings with express-session's cookie name (`connect.sid`), for sessions shared
    /// with the Express app (`express/app.js`, which has the same settings in its words).
    #[must_use]
    pub fn express(self) -> Self {
        Self {
            cookie_name: session_tower::Builder::EXPRESS_NAME.to_owned(),
            ..self
        }
    }
}

/// How the cookie is signed, and whose sessions these are.
#[derive(Clone, PartialEq, Eq)]
pub enum Signing {
    /// The layer's own: one signing key of at least [`session_tower::MIN_KEY_LEN`] bytes.
    Key(Vec<u8>),
    /// Sessions shared with an Express app (`--express`): express-session's cookie and stored
    /// form, signed with the Express app's secrets (the first signs, all verify). The store
    /// must use its Express-compatible layout ([`open_express_store`](crate::open_express_store)).
    Express(Vec<Vec<u8>>),
}

impl std::fmt::Debug for Signing {
    /// Never shows the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(_) => f.write_str("Key(..)"),
            Self::Express(secrets) => write!(f, "Express({} secrets)", secrets.len()),
        }
    }
}

/// Everything the app is made of besides its routes.
#[derive(Clone)]
pub struct Tutorial {
    /// Where sessions live.
    pub store: Arc<dyn Store>,
    /// Which store that is, for the page.
    pub store_info: StoreInfo,
    /// How the cookie is signed.
    pub signing: Signing,
    /// The session setup.
    pub settings: SessionSettings,
    /// The account `/login` accepts.
    pub credentials: Credentials,
}

impl std::fmt::Debug for Tutorial {
    /// Never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tutorial")
            .field("store_info", &self.store_info)
            .field("signing", &self.signing)
            .field("settings", &self.settings)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The session layer: express-session's `app.use(session({ ... }))`.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if the signing key is too short, or an Express secret empty.
pub fn session_layer(tutorial: &Tutorial) -> Result<SessionLayer, Error> {
    let settings = &tutorial.settings;
    let builder = SessionLayer::builder(Arc::clone(&tutorial.store));
    let builder = match &tutorial.signing {
        Signing::Key(key) => builder.with_signing_key(key),
        Signing::Express(secrets) => builder.express_compatible(secrets),
    };
    builder
        .with_name(&settings.cookie_name)
        .with_http_only(settings.http_only)
        .with_secure(settings.secure)
        .with_same_site(Some(settings.same_site))
        .with_max_age(Some(settings.max_age))
        .with_idle_timeout(Some(settings.idle_timeout))
        .with_absolute_timeout(Some(settings.absolute_timeout))
        .build()
}

/// The app: the tutorial's routes behind the session layer, and a page at `/` showing the
/// session.
///
/// Beyond the tutorial, a login marks the session as the user's
/// ([`Session::set_principal`]) and keeps the browser's `User-Agent`, so the page lists the
/// user's sessions ("Your sessions") with a button to log out each other device and one to log
/// out all of them (`POST /sessions/revoke`, `POST /sessions/revoke-others`). With a store
/// that keeps no index of a user's sessions (the Express-compatible layouts) the page says the
/// list is not available and the two routes answer `501`.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if the signing key is too short.
pub fn router(tutorial: Tutorial) -> Result<Router, Error> {
    let layer = session_layer(&tutorial)?;
    Ok(routes().layer(layer).with_state(Arc::new(tutorial)))
}

/// The routes alone, for a caller that adds its own before the session layer
/// ([`session_layer`]) and the state.
pub fn routes() -> Router<Arc<Tutorial>> {
    Router::new()
        .route("/", get(page))
        .route("/set-session", get(set_session))
        .route("/get-session", get(get_session))
        .route("/clear-session", get(clear_session))
        .route("/login", post(login))
        .route("/sessions/revoke", post(revoke_session))
        .route("/sessions/revoke-others", post(revoke_other_sessions))
}

async fn set_session(session: Session) -> Result<&'static str, session_tower::Error> {
    session
        .insert(USERNAME, Credentials::TUTORIAL_USERNAME)
        .await?;
    Ok("Session data set")
}

async fn get_session(session: Session) -> Result<String, session_tower::Error> {
    Ok(match session.get::<String>(USERNAME).await? {
        Some(username) => format!("Hello, {username}"),
        None => "No session data found".to_owned(),
    })
}

async fn clear_session(session: Session) -> Result<&'static str, session_tower::Error> {
    session.destroy().await?;
    Ok("Session data cleared")
}

async fn login(
    State(tutorial): State<Arc<Tutorial>>,
    session: Session,
    headers: HeaderMap,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<Response, session_tower::Error> {
    let Json(login) = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(login::bad_request(&rejection)),
    };
    if !tutorial.credentials.accept(&login) {
        return Ok(login::invalid_credentials());
    }
    // A new id and no values at login (express-session's `regenerate`): an id or a value
    // anyone saw or planted before is worthless now.
    session.regenerate_empty().await?;
    session.insert(USERNAME, &login.username).await?;
    // Whose session this is: listed among the user's sessions, revoked with them.
    session.set_principal(&login.username).await?;
    // What the list shows of each device; not stored where there is no list, so an Express
    // app sharing the store reads exactly the tutorial's values.
    if tutorial.store.principals().is_some()
        && let Some(agent) = user_agent(&headers)
    {
        session.insert(USER_AGENT, &agent).await?;
    }
    Ok("User logged in".into_response())
}

/// The request's `User-Agent`, cut to [`MAX_USER_AGENT_LEN`] bytes; `None` without one.
fn user_agent(headers: &HeaderMap) -> Option<String> {
    let agent = String::from_utf8_lossy(headers.get(header::USER_AGENT)?.as_bytes());
    let mut end = agent.len().min(MAX_USER_AGENT_LEN);
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    Some(agent[..end].to_owned())
}

/// The form of `POST /sessions/revoke`: the handle the page listed.
#[derive(serde::Deserialize)]
struct Revoke {
    handle: String,
}

/// Logs out one of the user's devices, then back to the page. A handle of a session that is
/// not the user's, or gone, changes nothing.
async fn revoke_session(
    session: Session,
    Form(revoke): Form<Revoke>,
) -> Result<Response, session_tower::Error> {
    match session.revoke_session(&revoke.handle).await {
        Ok(_) => Ok(Redirect::to("/").into_response()),
        Err(session_tower::Error::PrincipalsUnsupported) => Ok(unavailable()),
        Err(e) => Err(e),
    }
}

/// Logs out every other device of the user, then back to the page.
async fn revoke_other_sessions(session: Session) -> Result<Response, session_tower::Error> {
    match session.revoke_other_sessions().await {
        Ok(_) => Ok(Redirect::to("/").into_response()),
        Err(session_tower::Error::PrincipalsUnsupported) => Ok(unavailable()),
        Err(e) => Err(e),
    }
}

fn unavailable() -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        "The list of your sessions is not available with this store",
    )
        .into_response()
}

async fn page(
    State(tutorial): State<Arc<Tutorial>>,
    session: Session,
) -> Result<Response, session_tower::Error> {
    page::render(&tutorial, &session).await
}
