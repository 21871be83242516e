//! The sessions of a user over HTTP, one function per case so that each store's test file
//! runs the same cases: devices are cookie jars, each logging in as a user.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode, header};
use session_core::Store;
use session_tower::{Session, SessionLayer};

use super::{Jar, Params, body, builder, param, send_request, set_cookies};

/// The app: login (principal and user agent), the listing as JSON, revocation.
pub fn app(layer: SessionLayer) -> Router {
    routes().layer(layer)
}

/// The app's routes, without the layer.
pub fn routes() -> Router {
    Router::new()
        .route(
            "/login",
            post(|session: Session, q: Params, headers: http::HeaderMap| async move {
                let user = param(&q, "user");
                let agent = headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("unknown")
                    .to_owned();
                // Both login orders an app may write.
                if q.get("order").map(String::as_str) == Some("principal-first") {
                    session.insert("user_agent", &agent).await?;
                    session.set_principal(user).await?;
                    session.regenerate().await?;
                } else {
                    session.regenerate_empty().await?;
                    session.set_principal(user).await?;
                    session.insert("user_agent", &agent).await?;
                }
                Ok::<_, session_tower::Error>("logged in")
            }),
        )
        .route(
            "/whoami",
            get(|session: Session| async move {
                Ok::<_, session_tower::Error>(
                    session
                        .principal()
                        .await?
                        .unwrap_or_else(|| "anonymous".to_owned()),
                )
            }),
        )
        .route(
            "/id",
            get(|session: Session| async move {
                Ok::<_, session_tower::Error>(session.id().await?.as_str().to_owned())
            }),
        )
        .route(
            "/sessions",
            get(|session: Session| async move {
                let mut list = Vec::new();
                for info in session.sessions_of_principal().await? {
                    list.push(serde_json::json!({
                        "handle": info.handle,
                        "current": info.current,
                        "user_agent": info.get::<String>("user_agent")?,
                        "created_at": info.created_at.unix_timestamp(),
                        "expires_at": info.expires_at.unix_timestamp(),
                        "has_last_active": info.last_active.is_some(),
                        "reserved_key_hidden": info.get_value(session_tower::RESERVED_KEY).is_none(),
                    }));
                }
                Ok::<_, session_tower::Error>(serde_json::Value::Array(list).to_string())
            }),
        )
        .route(
            "/revoke",
            post(|session: Session, q: Params| async move {
                let revoked = session.revoke_session(param(&q, "handle")).await?;
                Ok::<_, session_tower::Error>(revoked.to_string())
            }),
        )
        .route(
            "/revoke-others",
            post(|session: Session| async move {
                let revoked = session.revoke_other_sessions().await?;
                Ok::<_, session_tower::Error>(revoked.to_string())
            }),
        )
        .route(
            "/set-principal-only",
            post(|session: Session, q: Params| async move {
                session.set_principal(param(&q, "user")).await?;
                Ok::<_, session_tower::Error>("set")
            }),
        )
        .route(
            "/clear-principal",
            post(|session: Session| async move {
                session.clear_principal().await?;
                Ok::<_, session_tower::Error>("cleared")
            }),
        )
        .route(
            "/visit",
            get(|session: Session| async move {
                session.insert("visited", &true).await?;
                Ok::<_, session_tower::Error>("visited")
            }),
        )
}

/// A browser: its cookie jar and user agent.
pub struct Device {
    pub jar: Jar,
    agent: String,
}

impl Device {
    pub fn new(agent: &str) -> Self {
        Self {
            jar: Jar::default(),
            agent: agent.to_owned(),
        }
    }

    /// A request from this device; its cookie jar takes the response's cookies.
    pub async fn send(&mut self, app: &Router, method: &str, uri: &str) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::USER_AGENT, &self.agent);
        if let Some(cookie) = self.jar.cookie() {
            request = request.header(header::COOKIE, cookie);
        }
        let response = send_request(app, request.body(Body::empty()).expect("valid request")).await;
        self.jar.receive(&set_cookies(&response));
        let status = response.status();
        (status, body(response).await)
    }

    pub async fn login(&mut self, app: &Router, user: &str) {
        let (status, text) = self.send(app, "POST", &format!("/login?user={user}")).await;
        assert_eq!(status, StatusCode::OK, "login as {user}: {text}");
    }

    pub async fn whoami(&mut self, app: &Router) -> String {
        self.send(app, "GET", "/whoami").await.1
    }

    /// The listing this device sees.
    pub async fn sessions(&mut self, app: &Router) -> Vec<serde_json::Value> {
        let (status, text) = self.send(app, "GET", "/sessions").await;
        assert_eq!(status, StatusCode::OK, "listing: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("listing {text:?}: {e}"))
    }
}

pub fn layer(store: Arc<dyn Store>) -> SessionLayer {
    builder(store).build().expect("valid layer")
}

/// The listing's user agents, sorted, with the one marked current.
pub fn agents(list: &[serde_json::Value]) -> (Vec<String>, Vec<String>) {
    let mut all: Vec<String> = list
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap_or("?").to_owned())
        .collect();
    all.sort();
    let current = list
        .iter()
        .filter(|s| s["current"] == true)
        .map(|s| s["user_agent"].as_str().unwrap_or("?").to_owned())
        .collect();
    (all, current)
}

/// The handle of the listed session of `agent`.
pub fn handle_of(list: &[serde_json::Value], agent: &str) -> String {
    list.iter()
        .find(|s| s["user_agent"] == agent)
        .and_then(|s| s["handle"].as_str())
        .unwrap_or_else(|| panic!("no session of {agent} in {list:?}"))
        .to_owned()
}

/// Two devices of one user, one of another: each sees exactly its user's sessions, itself
/// marked current, with the app's values and without the layer's reserved object.
pub async fn listing_shows_only_live_sessions_of_the_principal(store: Arc<dyn Store>) {
    let app = app(layer(store));
    let (mut laptop, mut phone, mut other) = (
        Device::new("laptop"),
        Device::new("phone"),
        Device::new("bob-pc"),
    );
    laptop.login(&app, "alice").await;
    phone.login(&app, "alice").await;
    other.login(&app, "bob").await;
    let list = laptop.sessions(&app).await;
    assert_eq!(
        agents(&list),
        (vec!["laptop".into(), "phone".into()], vec!["laptop".into()]),
        "{list:?}"
    );
    for session in &list {
        assert_eq!(session["reserved_key_hidden"], true, "{session}");
        assert_eq!(session["has_last_active"], true, "{session}");
        assert!(
            session["created_at"].as_i64() < session["expires_at"].as_i64(),
            "{session}"
        );
    }
    let list = phone.sessions(&app).await;
    assert_eq!(
        agents(&list).1,
        vec!["phone".to_owned()],
        "the phone is current on its own listing: {list:?}"
    );
    let list = other.sessions(&app).await;
    assert_eq!(
        agents(&list),
        (vec!["bob-pc".into()], vec!["bob-pc".into()]),
        "{list:?}"
    );
}

/// A device whose session another device revoked is anonymous on its next request.
pub async fn revoke_one_from_another_device(store: Arc<dyn Store>) {
    let app = app(layer(store));
    let (mut laptop, mut phone) = (Device::new("laptop"), Device::new("phone"));
    laptop.login(&app, "alice").await;
    phone.login(&app, "alice").await;
    let list = laptop.sessions(&app).await;
    let phone_handle = handle_of(&list, "phone");
    let (status, revoked) = laptop
        .send(&app, "POST", &format!("/revoke?handle={phone_handle}"))
        .await;
    assert_eq!((status, revoked.as_str()), (StatusCode::OK, "true"));
    assert_eq!(
        phone.whoami(&app).await,
        "anonymous",
        "the phone is logged out"
    );
    assert_eq!(laptop.whoami(&app).await, "alice", "the laptop is not");
    let list = laptop.sessions(&app).await;
    assert_eq!(agents(&list).0, vec!["laptop".to_owned()], "{list:?}");
    let (_, again) = laptop
        .send(&app, "POST", &format!("/revoke?handle={phone_handle}"))
        .await;
    assert_eq!(again, "false", "a revoked handle names nothing");
}

/// "Log out other devices" ends every other session of the user and keeps this one.
pub async fn revoke_others_keeps_the_current(store: Arc<dyn Store>) {
    let app = app(layer(store));
    let mut devices: Vec<Device> = ["laptop", "phone", "tablet"]
        .into_iter()
        .map(Device::new)
        .collect();
    for device in &mut devices {
        device.login(&app, "alice").await;
    }
    let mut bob = Device::new("bob-pc");
    bob.login(&app, "bob").await;
    let (status, count) = devices[0].send(&app, "POST", "/revoke-others").await;
    assert_eq!((status, count.as_str()), (StatusCode::OK, "2"));
    assert_eq!(devices[0].whoami(&app).await, "alice");
    assert_eq!(devices[1].whoami(&app).await, "anonymous");
    assert_eq!(devices[2].whoami(&app).await, "anonymous");
    assert_eq!(
        bob.whoami(&app).await,
        "bob",
        "another user's session is kept"
    );
    let list = devices[0].sessions(&app).await;
    assert_eq!(
        agents(&list),
        (vec!["laptop".into()], vec!["laptop".into()]),
        "{list:?}"
    );
}
