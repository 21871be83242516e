//! Shared by the HTTP-level tests: a test app, a store that counts (and can fail), and helpers
//! that read cookies the way a browser and express-session would.
#![allow(dead_code, unreachable_pub)]

pub mod concurrent;
pub mod principals;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use session_core::{Id, Record, Store};
use session_tower::{Builder, Session, SessionLayer};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::sync::{Mutex, mpsc, oneshot};
use tower::ServiceExt as _;

pub const KEY: &[u8] = b"the current signing key, 32+ bytes long";
pub const OLD_KEY: &[u8] = b"the previous signing key, also 32+ bytes";

/// How many times each store operation ran, and switches to make every operation, or every
/// write, fail.
#[derive(Default)]
pub struct Counts {
    pub create: AtomicUsize,
    pub load: AtomicUsize,
    pub save: AtomicUsize,
    pub touch: AtomicUsize,
    pub delete: AtomicUsize,
    pub fail: AtomicBool,
    pub fail_writes: AtomicBool,
}

impl Counts {
    /// (create, load, save, touch, delete)
    pub fn snapshot(&self) -> [usize; 5] {
        [
            self.create.load(Ordering::SeqCst),
            self.load.load(Ordering::SeqCst),
            self.save.load(Ordering::SeqCst),
            self.touch.load(Ordering::SeqCst),
            self.delete.load(Ordering::SeqCst),
        ]
    }

    pub fn reset(&self) {
        for c in [
            &self.create,
            &self.load,
            &self.save,
            &self.touch,
            &self.delete,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }

    pub fn fail(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    /// Makes create, save, touch and delete fail while load works (a read-only replica, a
    /// Redis out of memory).
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }
}

/// Wraps a store, counting calls.
#[derive(Clone)]
pub struct Counting {
    pub inner: Arc<dyn Store>,
    pub counts: Arc<Counts>,
}

impl Counting {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            counts: Arc::default(),
        }
    }

    fn check(&self, counter: &AtomicUsize, write: bool) -> session_core::Result<()> {
        counter.fetch_add(1, Ordering::SeqCst);
        if self.counts.fail.load(Ordering::SeqCst) {
            return Err(session_core::Error::backend(
                "reach the test store",
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "test store is down"),
            ));
        }
        if write && self.counts.fail_writes.load(Ordering::SeqCst) {
            return Err(session_core::Error::backend(
                "write to the test store",
                std::io::Error::new(
                    std::io::ErrorKind::ReadOnlyFilesystem,
                    "test store is read-only",
                ),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Counting {
    async fn create(&self, record: &Record) -> session_core::Result<()> {
        self.check(&self.counts.create, true)?;
        self.inner.create(record).await
    }
    async fn load(&self, id: &Id) -> session_core::Result<Option<Record>> {
        self.check(&self.counts.load, false)?;
        self.inner.load(id).await
    }
    async fn save(&self, record: &Record) -> session_core::Result<()> {
        self.check(&self.counts.save, true)?;
        self.inner.save(record).await
    }
    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> session_core::Result<bool> {
        self.check(&self.counts.touch, true)?;
        self.inner.touch(id, expires_at).await
    }
    async fn delete(&self, id: &Id) -> session_core::Result<()> {
        self.check(&self.counts.delete, true)?;
        self.inner.delete(id).await
    }
}

/// Gates that hold a handler after it changed the session, until the test releases it.
#[derive(Clone, Default)]
pub struct Gates {
    arrived: Arc<Mutex<Option<mpsc::UnboundedSender<String>>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Receiver<()>>>>,
}

impl Gates {
    /// Prepares gate `name`; returns what the test uses to learn of arrivals and to release.
    pub async fn arm(&self, name: &str) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().await.insert(name.to_owned(), rx);
        tx
    }

    pub async fn arrivals(&self) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.arrived.lock().await = Some(tx);
        rx
    }

    async fn pass(&self, name: &str) {
        let gate = self.waiting.lock().await.remove(name);
        if let Some(tx) = self.arrived.lock().await.as_ref() {
            let _ = tx.send(name.to_owned());
        }
        if let Some(gate) = gate {
            let _ = gate.await;
        }
    }
}

type Params = Query<HashMap<String, String>>;

fn param<'a>(q: &'a Params, name: &str) -> &'a str {
    q.get(name).map(String::as_str).unwrap_or_default()
}

/// The test app. Every route that uses the session uses the extractor; `/noop` does not.
pub fn app(layer: SessionLayer, gates: Gates) -> Router {
    Router::new()
        .route("/noop", get(|| async { "nothing" }))
        .route(
            "/get",
            get(|session: Session, q: Params| async move {
                let value: Option<serde_json::Value> = session.get(param(&q, "key")).await?;
                Ok::<_, session_tower::Error>(match value {
                    Some(v) => v.to_string(),
                    None => "none".to_owned(),
                })
            }),
        )
        .route(
            "/set",
            get(|session: Session, q: Params| async move {
                session.insert(param(&q, "key"), param(&q, "value")).await?;
                Ok::<_, session_tower::Error>("set")
            }),
        )
        .route(
            "/set-int",
            get(|session: Session, q: Params| async move {
                let value: i64 = param(&q, "value").parse().unwrap_or_default();
                session.insert(param(&q, "key"), &value).await?;
                Ok::<_, session_tower::Error>("set")
            }),
        )
        .route(
            "/remove",
            get(|session: Session, q: Params| async move {
                let old = session.remove(param(&q, "key")).await?;
                Ok::<_, session_tower::Error>(if old.is_some() { "removed" } else { "absent" })
            }),
        )
        .route(
            "/clear",
            get(|session: Session| async move {
                session.clear().await?;
                Ok::<_, session_tower::Error>("cleared")
            }),
        )
        .route(
            "/destroy",
            get(|session: Session| async move {
                session.destroy().await?;
                Ok::<_, session_tower::Error>("destroyed")
            }),
        )
        .route(
            "/regenerate",
            get(|session: Session| async move {
                session.regenerate().await?;
                Ok::<_, session_tower::Error>(session.id().await?.to_string())
            }),
        )
        .route(
            "/regenerate-empty",
            get(|session: Session| async move {
                session.regenerate_empty().await?;
                session.insert("user", "ada").await?;
                Ok::<_, session_tower::Error>(session.id().await?.to_string())
            }),
        )
        .route(
            "/login",
            get(|session: Session, q: Params| async move {
                session.regenerate().await?;
                session.insert("user", param(&q, "user")).await?;
                Ok::<_, session_tower::Error>("logged in")
            }),
        )
        .route(
            "/gated-login",
            get(
                |State(gates): State<Gates>, session: Session, q: Params| async move {
                    // Loads the session, then waits before regenerating it.
                    session.get::<serde_json::Value>("user").await?;
                    gates.pass(param(&q, "gate")).await;
                    session.regenerate().await?;
                    session.insert("user", param(&q, "user")).await?;
                    Ok::<_, session_tower::Error>("logged in")
                },
            ),
        )
        .route(
            "/incr",
            get(|session: Session, q: Params| async move {
                let n = session
                    .update(param(&q, "key"), |n: Option<u64>| n.unwrap_or(0) + 1)
                    .await?;
                Ok::<_, session_tower::Error>(n.to_string())
            }),
        )
        .route(
            "/remember",
            get(|session: Session, q: Params| async move {
                let days: i64 = param(&q, "days").parse().unwrap_or(30);
                session
                    .set_max_age(Some(time::Duration::days(days)))
                    .await?;
                session
                    .set_idle_timeout(Some(time::Duration::days(days)))
                    .await?;
                Ok::<_, session_tower::Error>("remembered")
            }),
        )
        .route(
            "/browser-session",
            get(|session: Session| async move {
                session.set_max_age(None).await?;
                Ok::<_, session_tower::Error>("browser session")
            }),
        )
        .route(
            "/forget",
            get(|session: Session| async move {
                session.reset_lifetime().await?;
                Ok::<_, session_tower::Error>("forgotten")
            }),
        )
        .route(
            "/lifetime",
            get(|session: Session| async move {
                let idle = session.idle_timeout().await?;
                let max_age = session.max_age().await?;
                let minutes = |d: Option<time::Duration>| {
                    d.map_or("none".to_owned(), |d| d.whole_minutes().to_string())
                };
                Ok::<_, session_tower::Error>(format!(
                    "idle {} max-age {}",
                    minutes(idle),
                    minutes(max_age)
                ))
            }),
        )
        .route(
            "/reload-after-delete",
            get(|session: Session| async move {
                session.insert("unsaved", "1").await?;
                let id = session.id().await?;
                // Another request (or an admin) ends the session meanwhile.
                session
                    .store()
                    .delete(&id)
                    .await
                    .map_err(session_tower::Error::Value)?;
                let found = session.reload().await?;
                let after = session.is_empty().await?;
                Ok::<_, session_tower::Error>(format!("found {found} empty {after}"))
            }),
        )
        .route(
            "/current-id",
            get(|session: Session| async move {
                let before = session.current_id();
                let loaded = session.id().await?;
                let after = session.current_id();
                Ok::<_, session_tower::Error>(format!(
                    "{} {} {}",
                    before.is_some(),
                    after.as_ref() == Some(&loaded),
                    loaded
                ))
            }),
        )
        .route(
            "/set-reserved",
            get(|session: Session| async move {
                match session.insert(session_tower::RESERVED_KEY, "mine").await {
                    Err(session_tower::Error::InvalidArgument(_)) => "refused",
                    Err(_) => "other error",
                    Ok(()) => "accepted",
                }
            }),
        )
        .route(
            "/data",
            get(|session: Session| async move {
                let data = session.data().await?;
                Ok::<_, session_tower::Error>(data.keys().collect::<Vec<_>>().join(","))
            }),
        )
        .route(
            "/gated-get",
            get(
                |State(gates): State<Gates>, session: Session, q: Params| async move {
                    let value: Option<serde_json::Value> = session.get(param(&q, "key")).await?;
                    gates.pass(param(&q, "gate")).await;
                    Ok::<_, session_tower::Error>(match value {
                        Some(v) => v.to_string(),
                        None => "none".to_owned(),
                    })
                },
            ),
        )
        .route(
            "/touch",
            get(|session: Session| async move {
                session.touch().await?;
                Ok::<_, session_tower::Error>("touched")
            }),
        )
        .route(
            "/id",
            get(|session: Session| async move {
                Ok::<_, session_tower::Error>(session.id().await?.to_string())
            }),
        )
        .route(
            "/save-then-set",
            get(|session: Session, q: Params| async move {
                session.insert("early", "yes").await?;
                session.save().await?;
                session.insert(param(&q, "key"), param(&q, "value")).await?;
                Ok::<_, session_tower::Error>("saved")
            }),
        )
        .route(
            "/reload",
            get(|session: Session, q: Params| async move {
                session.insert(param(&q, "key"), "discarded").await?;
                session.reload().await?;
                let value: Option<String> = session.get(param(&q, "key")).await?;
                Ok::<_, session_tower::Error>(value.unwrap_or_else(|| "none".to_owned()))
            }),
        )
        .route(
            "/swallow",
            get(|session: Session| async move {
                // A handler that ignores a store failure: the layer must not start a session.
                let user: Option<String> = session.get("user").await.ok().flatten();
                let _ = session.insert("visited", "yes").await;
                user.unwrap_or_else(|| "anonymous".to_owned())
            }),
        )
        .route(
            "/gated-set",
            get(
                |State(gates): State<Gates>, session: Session, q: Params| async move {
                    session.insert(param(&q, "key"), param(&q, "value")).await?;
                    gates.pass(param(&q, "gate")).await;
                    Ok::<_, session_tower::Error>("set")
                },
            ),
        )
        .with_state(gates)
        .layer(layer)
}

/// A layer over `store` with the test key and plain-http-friendly defaults unchanged.
pub fn builder(store: impl Store) -> Builder {
    SessionLayer::builder(store).with_signing_key(KEY)
}

/// One request through the app.
pub async fn send(app: &Router, uri: &str, cookie: Option<&str>) -> Response<Body> {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send_request(app, request.body(Body::empty()).expect("valid request")).await
}

/// A prepared request through the app.
pub async fn send_request(app: &Router, request: Request<Body>) -> Response<Body> {
    app.clone()
        .oneshot(request)
        .await
        .expect("the router is infallible")
}

/// The attributes of a Set-Cookie after `name=value`, sorted (their order means nothing).
pub fn attributes(set_cookie: &str) -> Vec<String> {
    let mut attributes: Vec<String> = set_cookie.split("; ").skip(1).map(str::to_owned).collect();
    attributes.sort();
    attributes
}

/// The `Max-Age` of a Set-Cookie, if any.
pub fn max_age(set_cookie: &str) -> Option<i64> {
    set_cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .map(|v| v.parse().expect("Max-Age is a number"))
}

/// A browser's cookie jar, for the session cookie only: a Set-Cookie replaces it, a clearing
/// one removes it.
#[derive(Debug, Clone, Default)]
pub struct Jar(Option<String>);

impl Jar {
    pub fn holding(cookie: &str) -> Self {
        Self(Some(cookie.to_owned()))
    }

    pub fn receive(&mut self, set_cookies: &[String]) {
        for set_cookie in set_cookies {
            if is_clearing(set_cookie) {
                self.0 = None;
            } else {
                self.0 = Some(pair(set_cookie));
            }
        }
    }

    pub fn cookie(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

pub async fn body(response: Response<Body>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8 body")
}

/// Every Set-Cookie of a response.
pub fn set_cookies(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii Set-Cookie").to_owned())
        .collect()
}

/// The single Set-Cookie of a response, or None; fails if there are several.
pub fn set_cookie(response: &Response<Body>) -> Option<String> {
    let all = set_cookies(response);
    assert!(all.len() <= 1, "more than one Set-Cookie: {all:?}");
    all.into_iter().next()
}

/// `name=value` of a Set-Cookie, as a browser would send it back.
pub fn pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .expect("split yields one item")
        .to_owned()
}

/// Signs `id` the way express-session does, computed here independently of the crate.
pub fn express_value(id: &str, key: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(id.as_bytes());
    let tag = STANDARD_NO_PAD.encode(mac.finalize().into_bytes());
    let raw = format!("s:{id}.{tag}");
    raw.replace(':', "%3A")
        .replace('+', "%2B")
        .replace('/', "%2F")
}

/// The session id in a Set-Cookie, after checking its signature with `key`.
pub fn signed_id(set_cookie: &str, key: &[u8]) -> String {
    let pair = pair(set_cookie);
    let (_, value) = pair.split_once('=').expect("name=value");
    let decoded = value.replace("%3A", ":");
    let id = decoded
        .strip_prefix("s:")
        .and_then(|rest| rest.rsplit_once('.'))
        .map(|(id, _)| id.to_owned())
        .unwrap_or_else(|| panic!("not an express-style signed value: {value}"));
    assert_eq!(
        value,
        express_value(&id, key),
        "cookie value is not id signed with the expected key"
    );
    id
}

/// A cookie header carrying `id` signed with `key`.
pub fn cookie_for(id: &str, key: &[u8]) -> String {
    format!("sid={}", express_value(id, key))
}

/// Whether a Set-Cookie clears the cookie.
pub fn is_clearing(set_cookie: &str) -> bool {
    set_cookie.starts_with("sid=;") && set_cookie.contains("Max-Age=0")
}

pub fn id(s: &str) -> Id {
    s.parse().expect("a valid id")
}

/// What `tracing` logged while a [`LogCapture`] was in scope, on this thread.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("log buffer").clone()).expect("utf-8 logs")
    }
}

/// Captures the logs (from `DEBUG` up) of everything run on this thread until dropped: use it
/// in a current-thread test runtime, where the whole request runs on the test's thread.
pub struct LogCapture {
    pub logs: LogBuffer,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    pub fn start() -> Self {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        Self {
            logs,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }
}
