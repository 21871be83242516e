//! Shared by the HTTP tests: the app on a store, and a client with a one-cookie jar.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use express_tutorial::{
    Credentials, SessionSettings, Signing, StoreInfo, Tutorial, open_store, router,
};
use http_body_util::BodyExt as _;
use session_core::{Id, Store};
use tower::ServiceExt as _;

pub const KEY: &[u8] = b"a test signing key that is long enough";

pub fn loopback() -> SocketAddr {
    "127.0.0.1:3000".parse().expect("address")
}

/// The app as `main` builds it, on `store`, with the tutorial's account.
pub fn tutorial(store: Arc<dyn Store>, url: &str) -> Tutorial {
    Tutorial {
        store,
        store_info: StoreInfo::of(url).expect("a known store URL"),
        signing: Signing::Key(KEY.to_vec()),
        settings: SessionSettings::for_address(loopback()),
        credentials: Credentials::default(),
    }
}

pub fn app(store: Arc<dyn Store>) -> Router {
    router(tutorial(store, "memory")).expect("valid app")
}

/// A memory store and the app on it.
pub fn memory_app() -> (Arc<dyn Store>, Router) {
    let store: Arc<dyn Store> = Arc::new(session_memory::MemoryStore::new());
    (Arc::clone(&store), app(store))
}

/// A client with a one-cookie jar.
pub struct Browser {
    pub app: Router,
    /// `name=value` of the session cookie the client holds.
    pub cookie: Option<String>,
    /// The last `Set-Cookie` header received.
    pub last_set_cookie: Option<String>,
    /// The `User-Agent` the client sends, if any.
    pub agent: Option<String>,
}

impl Browser {
    pub fn new(app: Router) -> Self {
        Self {
            app,
            cookie: None,
            last_set_cookie: None,
            agent: None,
        }
    }

    /// A client that sends `agent` as its `User-Agent`.
    pub fn with_agent(app: Router, agent: &str) -> Self {
        Self {
            agent: Some(agent.to_owned()),
            ..Self::new(app)
        }
    }

    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(agent) = &self.agent {
            request = request.header(header::USER_AGENT, agent);
        }
        let request = request.body(Body::from(body.to_owned())).expect("request");
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        self.keep_cookie(&response);
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8(bytes.to_vec()).expect("utf-8"))
    }

    fn keep_cookie(&mut self, response: &Response<Body>) {
        if let Some(set) = response.headers().get(header::SET_COOKIE) {
            let set = set.to_str().expect("ascii").to_owned();
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            self.cookie = (!set.contains("Max-Age=0")).then_some(pair);
            self.last_set_cookie = Some(set);
        }
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, String) {
        self.request(Method::GET, path, None, "").await
    }

    /// `POST /login` with a JSON body, as the page's script sends it.
    pub async fn login(&mut self, body: &str) -> (StatusCode, String) {
        self.request(Method::POST, "/login", Some("application/json"), body)
            .await
    }

    /// The session id in the cookie the client holds.
    pub fn session_id(&self) -> Id {
        let cookie = self.cookie.as_deref().expect("a session cookie");
        let value = cookie.split_once('=').expect("name=value").1;
        let signed = value.strip_prefix("s%3A").expect("express's s: prefix");
        let id = signed.rsplit_once('.').expect("id.signature").0;
        id.parse().expect("a valid id")
    }
}

pub fn credentials(username: &str, password: &str) -> String {
    serde_json::json!({ "username": username, "password": password }).to_string()
}

/// The values the app's routes put in the session, as the store holds them, or `None` if the
/// store does not hold the session. Leaves out the layer's own `cookie` object (express-session
/// keeps one under that name too).
pub async fn stored_values(store: &dyn Store, id: &Id) -> Option<serde_json::Value> {
    let record = store.load(id).await.expect("the store answers")?;
    let mut values = record.data.to_json().expect("JSON values");
    values.remove("cookie");
    Some(serde_json::Value::Object(values))
}

/// The text inside the element with `id="{id}"` of `page` (elements without nested markup).
pub fn text_of<'a>(page: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page: {page}"));
    let rest = &page[start..];
    let open_end = rest.find('>').expect("the tag ends") + 1;
    let rest = &rest[open_end..];
    &rest[..rest.find('<').expect("the element ends")]
}

/// HTML text back to what it shows.
pub fn unescape(html: &str) -> String {
    [
        ("&lt;", "<"),
        ("&#60;", "<"),
        ("&gt;", ">"),
        ("&#62;", ">"),
        ("&quot;", "\""),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&amp;", "&"),
        ("&#38;", "&"),
    ]
    .iter()
    .fold(html.to_owned(), |text, (entity, c)| text.replace(entity, c))
}

/// The tutorial's whole flow on `store`, and the session surviving a new app on `reopened`
/// (another process on the same database).
pub async fn tutorial_flow(store: Arc<dyn Store>, reopened: impl AsyncFnOnce() -> Arc<dyn Store>) {
    let mut browser = Browser::new(app(Arc::clone(&store)));
    assert_eq!(browser.get("/get-session").await.1, "No session data found");
    assert_eq!(browser.get("/set-session").await.1, "Session data set");
    assert_eq!(browser.get("/get-session").await.1, "Hello, JohnDoe");
    let (status, text) = browser.login(&credentials("JohnDoe", "password123")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "User logged in"));
    assert_eq!(
        stored_values(&*store, &browser.session_id()).await,
        Some(serde_json::json!({ "username": "JohnDoe" })),
        "exactly the keys an Express app reads"
    );

    let logged_in = browser.cookie.clone();
    let mut restarted = Browser::new(app(reopened().await));
    restarted.cookie = logged_in.clone();
    let (_, page) = restarted.get("/").await;
    assert_eq!(text_of(&page, "username"), "JohnDoe", "{page}");
    assert_eq!(
        restarted.get("/clear-session").await.1,
        "Session data cleared"
    );
    assert_eq!(restarted.cookie, None, "cookie cleared");
    let mut stale = Browser::new(restarted.app.clone());
    stale.cookie = logged_in;
    assert_eq!(stale.get("/get-session").await.1, "No session data found");
}

/// Opens `url` or fails saying why.
pub async fn open(url: &str) -> Arc<dyn Store> {
    open_store(url)
        .await
        .unwrap_or_else(|e| panic!("open_store({url}) failed: {e:?}"))
        .store
}
