//! Shared by the HTTP tests: the app on a store, and a client with a one-cookie jar.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use express_tutorial::{DEMO_PASSWORD, DEMO_USERNAME, open_store, router, session_layer};
use http_body_util::BodyExt as _;
use session_core::Store;
use tower::ServiceExt as _;

pub const KEY: &[u8] = b"a test signing key that is long enough";

pub fn loopback() -> SocketAddr {
    "127.0.0.1:3000".parse().expect("address")
}

pub fn app(store: Arc<dyn Store>) -> Router {
    router(session_layer(store, KEY, loopback()).expect("valid layer"))
}

pub async fn memory_app() -> Router {
    app(open_store("memory").await.expect("memory store").store)
}

/// A client with a one-cookie jar.
pub struct Browser {
    pub app: Router,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(app: Router) -> Self {
        Self { app, cookie: None }
    }

    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: &str,
    ) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
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
            let set = set.to_str().expect("ascii");
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            if set.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, String) {
        self.request(Method::GET, path, "").await
    }

    pub async fn login(&mut self, body: &str) -> (StatusCode, String) {
        self.request(Method::POST, "/login", body).await
    }
}

pub fn credentials(username: &str, password: &str) -> String {
    serde_json::json!({ "username": username, "password": password }).to_string()
}

/// The tutorial's whole flow on `store`, and the session surviving a new app on `reopened`
/// (another process on the same database).
pub async fn tutorial_flow(store: Arc<dyn Store>, reopened: impl AsyncFnOnce() -> Arc<dyn Store>) {
    let mut browser = Browser::new(app(store));
    assert_eq!(browser.get("/get-session").await.1, "No session data found");
    assert_eq!(browser.get("/set-session").await.1, "Session data set");
    let (status, text) = browser.get("/get-session").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("\"JohnDoe\""), "{text}");
    let (status, text) = browser
        .login(&credentials(DEMO_USERNAME, DEMO_PASSWORD))
        .await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "Logged in as JohnDoe")
    );

    let logged_in = browser.cookie.clone();
    let mut restarted = Browser::new(app(reopened().await));
    restarted.cookie = logged_in.clone();
    let (_, page) = restarted.get("/").await;
    assert!(
        page.contains(r#"<strong id="username">JohnDoe</strong>"#),
        "{page}"
    );
    assert_eq!(restarted.get("/clear-session").await.1, "Session cleared");
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
