//! The tutorial's routes over HTTP (tower's `oneshot`), on the memory and SQLite stores.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use express_tutorial::{
    DEMO_PASSWORD, DEMO_USERNAME, load_or_create_key, open_store, router, session_layer,
};
use tower::ServiceExt as _;

#[tokio::test]
async fn set_get_clear_as_in_the_express_tutorial() {
    let mut browser = Browser::new(memory_app().await);
    assert_eq!(
        browser.get("/get-session").await,
        (StatusCode::OK, "No session data found".into())
    );
    assert_eq!(browser.cookie, None, "nothing stored, no cookie");
    assert_eq!(
        browser.get("/set-session").await,
        (StatusCode::OK, "Session data set".into())
    );
    assert!(browser.cookie.is_some());
    let (status, text) = browser.get("/get-session").await;
    assert_eq!(status, StatusCode::OK);
    let user: serde_json::Value = text
        .strip_prefix("Session data: ")
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| panic!("not session data: {text}"));
    assert_eq!(user, serde_json::json!({"name": "JohnDoe", "age": 30}));
    assert_eq!(
        browser.get("/clear-session").await,
        (StatusCode::OK, "Session cleared".into())
    );
    assert_eq!(browser.cookie, None, "the cookie is cleared");
    assert_eq!(browser.get("/get-session").await.1, "No session data found");
}

#[tokio::test]
async fn login_regenerates_the_id_and_the_page_shows_the_name() {
    let mut browser = Browser::new(memory_app().await);
    browser.get("/set-session").await;
    let before = browser.cookie.clone().expect("cookie");
    let (status, text) = browser
        .login(&credentials(DEMO_USERNAME, DEMO_PASSWORD))
        .await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "Logged in as JohnDoe")
    );
    let after = browser.cookie.clone().expect("cookie");
    assert_ne!(before, after, "a new id at login");
    let (status, page) = browser.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"Logged in as <strong id="username">JohnDoe</strong>"#),
        "{page}"
    );
    assert!(page.contains("&quot;age&quot;: 30"), "values kept: {page}");

    // The id from before the login is worthless.
    let mut stale = Browser::new(browser.app.clone());
    stale.cookie = Some(before);
    assert_eq!(stale.get("/get-session").await.1, "No session data found");
}

#[tokio::test]
async fn bad_logins_are_clear_errors_and_store_nothing() {
    let mut browser = Browser::new(memory_app().await);
    let cases = [
        (
            "{\"username\": ",
            StatusCode::BAD_REQUEST,
            "Invalid login request",
        ),
        ("not json", StatusCode::BAD_REQUEST, "Invalid login request"),
        ("", StatusCode::BAD_REQUEST, "Invalid login request"),
        (
            r#"{"username":"JohnDoe"}"#,
            StatusCode::BAD_REQUEST,
            "missing field `password`",
        ),
        (
            &credentials(DEMO_USERNAME, "wrong"),
            StatusCode::UNAUTHORIZED,
            "Invalid username or password",
        ),
        (
            &credentials("someone", DEMO_PASSWORD),
            StatusCode::UNAUTHORIZED,
            "Invalid username or password",
        ),
    ];
    for (body, status, message) in cases {
        let (got_status, text) = browser.login(body).await;
        assert_eq!(got_status, status, "{body:?}: {text}");
        assert!(text.contains(message), "{body:?}: {text}");
        assert_eq!(
            browser.cookie, None,
            "{body:?}: no session for a failed login"
        );
    }
}

#[tokio::test]
async fn anonymous_page_offers_the_login_form() {
    let mut browser = Browser::new(memory_app().await);
    let (status, page) = browser.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Not logged in."));
    assert!(page.contains(r#"<form id="login">"#));
    assert_eq!(browser.cookie, None, "viewing the page stores nothing");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let cookie = {
        let opened = open_store(&url).await.expect("sqlite store");
        let mut browser = Browser::new(app(opened.store));
        browser
            .login(&credentials(DEMO_USERNAME, DEMO_PASSWORD))
            .await;
        browser.cookie.expect("cookie")
    };
    // A new process would open the file again with the same key.
    let opened = open_store(&url).await.expect("sqlite store, again");
    let mut browser = Browser::new(app(opened.store));
    browser.cookie = Some(cookie);
    let (_, page) = browser.get("/").await;
    assert!(
        page.contains(r#"<strong id="username">JohnDoe</strong>"#),
        "{page}"
    );
}

#[tokio::test]
async fn unknown_store_scheme_is_a_clear_error() {
    let error = open_store("cassandra://127.0.0.1")
        .await
        .expect_err("unknown");
    let message = error.to_string();
    assert!(message.contains("unknown session store URL"), "{message}");
    assert!(
        message.contains("sqlite://"),
        "lists the choices: {message}"
    );
}

#[tokio::test]
async fn cookie_is_secure_except_on_loopback() {
    async fn set_cookie(listen: &str) -> String {
        let layer = session_layer(
            Arc::new(session_memory::MemoryStore::new()),
            KEY,
            listen.parse().expect("address"),
        )
        .expect("valid");
        let request = Request::get("/set-session")
            .body(Body::empty())
            .expect("request");
        let response = router(layer).oneshot(request).await.expect("infallible");
        let header = response.headers().get(header::SET_COOKIE).expect("cookie");
        header.to_str().expect("ascii").to_owned()
    }
    for loopback in ["127.0.0.1:3000", "[::1]:3000"] {
        let cookie = set_cookie(loopback).await;
        assert!(!cookie.contains("Secure"), "{loopback}: {cookie}");
        assert!(cookie.contains("HttpOnly; SameSite=Lax"), "{cookie}");
    }
    let cookie = set_cookie("0.0.0.0:3000").await;
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[test]
fn key_file_is_created_private_and_reused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("key");
    let key = load_or_create_key(&path).expect("created");
    assert!(key.len() >= 32);
    assert_eq!(load_or_create_key(&path).expect("read back"), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read the key: {mode:o}");
    }
    std::fs::write(&path, "too short").expect("write");
    let error = load_or_create_key(&path).expect_err("short key refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}
