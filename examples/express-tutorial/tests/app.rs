//! The tutorial's routes over HTTP (tower's `oneshot`), on the memory and SQLite stores.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::*;
use express_tutorial::{Credentials, SessionSettings, StoreInfo, Tutorial, open_store, router};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[tokio::test]
async fn get_session_without_data_answers_no_session_data_found() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app);
    assert_eq!(
        browser.get("/get-session").await,
        (StatusCode::OK, "No session data found".into())
    );
    assert_eq!(browser.cookie, None, "nothing stored, no cookie");
}

#[tokio::test]
async fn set_session_stores_username_johndoe_and_answers_session_data_set() {
    let (store, app) = memory_app();
    let mut browser = Browser::new(app);
    assert_eq!(
        browser.get("/set-session").await,
        (StatusCode::OK, "Session data set".into())
    );
    assert_eq!(
        stored_values(&*store, &browser.session_id()).await,
        Some(json!({ "username": "JohnDoe" })),
        "exactly the key and value the Express tutorial stores"
    );
}

#[tokio::test]
async fn get_session_after_set_session_answers_hello_johndoe() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app);
    browser.get("/set-session").await;
    assert_eq!(
        browser.get("/get-session").await,
        (StatusCode::OK, "Hello, JohnDoe".into())
    );
}

#[tokio::test]
async fn clear_session_destroys_the_session_and_answers_session_data_cleared() {
    let (store, app) = memory_app();
    let mut browser = Browser::new(app);
    browser.get("/set-session").await;
    let id = browser.session_id();
    assert_eq!(
        browser.get("/clear-session").await,
        (StatusCode::OK, "Session data cleared".into())
    );
    assert_eq!(
        stored_values(&*store, &id).await,
        None,
        "deleted from the store"
    );
    assert_eq!(browser.cookie, None, "the cookie is cleared");
    assert_eq!(browser.get("/get-session").await.1, "No session data found");
}

#[tokio::test]
async fn login_with_the_tutorial_credentials_stores_username_and_answers_user_logged_in() {
    let (store, app) = memory_app();
    let mut browser = Browser::new(app.clone());
    browser.get("/").await;
    assert_eq!(browser.cookie, None, "nothing stored before the login");
    let (status, text) = browser.login(&credentials("JohnDoe", "password123")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "User logged in"));
    assert_eq!(
        stored_values(&*store, &browser.session_id()).await,
        Some(json!({ "username": "JohnDoe" })),
        "exactly the key an Express app reads"
    );
    assert_eq!(browser.get("/get-session").await.1, "Hello, JohnDoe");
}

#[tokio::test]
async fn login_gives_a_new_id_and_the_old_one_is_worthless() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app.clone());
    browser.get("/set-session").await;
    let before = browser.cookie.clone().expect("cookie");
    let old_id = browser.session_id();
    browser.login(&credentials("JohnDoe", "password123")).await;
    assert_ne!(browser.cookie.as_ref(), Some(&before), "a new id at login");
    assert_ne!(browser.session_id(), old_id);
    let mut stale = Browser::new(app);
    stale.cookie = Some(before);
    assert_eq!(stale.get("/get-session").await.1, "No session data found");
}

#[tokio::test]
async fn login_starts_the_session_afresh_without_values_from_before() {
    let (store, app) = memory_app();
    let mut browser = Browser::new(app);
    browser.get("/set-session").await;
    // A value from before the login that the app did not put there (planted, or a cart).
    let mut record = store
        .load(&browser.session_id())
        .await
        .expect("the store answers")
        .expect("the session is stored");
    record.data.insert("planted", &true).expect("encodable");
    store.save(&record).await.expect("saved");
    browser.login(&credentials("JohnDoe", "password123")).await;
    assert_eq!(
        stored_values(&*store, &browser.session_id()).await,
        Some(json!({ "username": "JohnDoe" })),
        "only what the login stored"
    );
}

#[tokio::test]
async fn login_with_wrong_credentials_is_401_invalid_credentials_and_stores_nothing() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app);
    for (username, password) in [
        ("JohnDoe", "wrong"),
        ("someone", "password123"),
        ("johndoe", "password123"),
        ("", ""),
    ] {
        let (status, text) = browser.login(&credentials(username, password)).await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::UNAUTHORIZED, "Invalid credentials"),
            "{username:?} / {password:?}"
        );
        assert_eq!(browser.cookie, None, "no session for a failed login");
    }
}

#[tokio::test]
async fn login_accepts_overridden_credentials_and_refuses_the_tutorials() {
    let store: Arc<dyn session_core::Store> = Arc::new(session_memory::MemoryStore::new());
    let mut tutorial = tutorial(store, "memory");
    tutorial.credentials = Credentials::new("alice", "down the rabbit hole");
    let mut browser = Browser::new(router(tutorial).expect("valid app"));
    let (status, _) = browser.login(&credentials("JohnDoe", "password123")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = browser
        .login(&credentials("alice", "down the rabbit hole"))
        .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "User logged in"));
    assert_eq!(browser.get("/get-session").await.1, "Hello, alice");
}

#[tokio::test]
async fn login_from_a_cross_site_text_plain_form_is_415_not_a_login() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app);
    // What an HTML form on another site can post without a preflight: the body is the
    // tutorial's valid JSON, only the content type gives it away.
    let body = credentials("JohnDoe", "password123");
    for content_type in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let (status, text) = browser
            .request(Method::POST, "/login", content_type, &body)
            .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {text}"
        );
        assert_eq!(
            text, "Send the login as JSON, with Content-Type: application/json",
            "{content_type:?}"
        );
        assert_eq!(browser.cookie, None, "{content_type:?}: not logged in");
    }
    assert_eq!(browser.get("/get-session").await.1, "No session data found");
}

const INVALID_REQUEST: &str =
    r#"Invalid login request: send JSON {"username": "...", "password": "..."}"#;

/// Words serde_json's messages are made of; none may reach the client.
fn assert_no_parser_internals(body: &str, text: &str) {
    for word in [
        "line",
        "column",
        "EOF",
        "expected",
        "missing field",
        "invalid type",
    ] {
        assert!(!text.contains(word), "{body:?} answered {text:?}");
    }
}

#[tokio::test]
async fn login_with_malformed_json_is_400_without_parser_internals() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app);
    for body in [
        "{\"username\": ",
        "not json",
        "",
        "{\"username\": \"JohnDoe\",}",
    ] {
        let (status, text) = browser.login(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {text}");
        assert_eq!(text, INVALID_REQUEST, "{body:?}");
        assert_no_parser_internals(body, &text);
        assert_eq!(browser.cookie, None, "{body:?}: no session");
    }
}

#[tokio::test]
async fn login_with_json_of_another_shape_is_422_without_parser_internals() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app);
    for body in [
        r#"{"username": "JohnDoe"}"#,
        r#"{"username": "JohnDoe", "password": 123}"#,
        r#""JohnDoe""#,
    ] {
        let (status, text) = browser.login(body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}: {text}");
        assert_eq!(text, INVALID_REQUEST, "{body:?}");
        assert_no_parser_internals(body, &text);
        assert_eq!(browser.cookie, None, "{body:?}: no session");
    }
}

fn parse_instant(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[tokio::test]
async fn page_shows_the_store_expiry_cookie_attributes_and_values() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app);
    // The page shows instants to the second.
    let before = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid");
    browser.login(&credentials("JohnDoe", "password123")).await;
    let after = OffsetDateTime::now_utc();
    let set_cookie = browser.last_set_cookie.clone().expect("a cookie at login");
    let (status, page) = browser.get("/").await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(text_of(&page, "status"), "Logged in as ");
    assert_eq!(text_of(&page, "username"), "JohnDoe");
    let values: serde_json::Value =
        serde_json::from_str(&unescape(text_of(&page, "session"))).expect("JSON values");
    assert_eq!(values, json!({ "username": "JohnDoe" }));
    assert_eq!(
        text_of(&page, "store-kind"),
        "memory (this process only: lost on restart)"
    );
    assert_eq!(text_of(&page, "store-url"), "memory");

    // When it ends: the store's expiry (an hour after the login) and the absolute end (a
    // day after the session began, at the login).
    let idle = parse_instant(text_of(&page, "expires-idle"));
    assert!(
        before + time::Duration::HOUR <= idle && idle <= after + time::Duration::HOUR,
        "idle expiry {idle} not an hour after the login ({before}..{after})"
    );
    let absolute = parse_instant(text_of(&page, "expires-absolute"));
    assert!(
        before + time::Duration::DAY <= absolute && absolute <= after + time::Duration::DAY,
        "absolute expiry {absolute} not a day after the login ({before}..{after})"
    );

    // The cookie as the page describes it, and as the login response sent it.
    assert_eq!(text_of(&page, "cookie-name"), "sid");
    assert!(set_cookie.starts_with("sid="), "{set_cookie}");
    assert_eq!(text_of(&page, "cookie-http-only"), "yes");
    assert!(set_cookie.contains("; HttpOnly"), "{set_cookie}");
    assert_eq!(text_of(&page, "cookie-secure"), "no");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert_eq!(text_of(&page, "cookie-same-site"), "Lax");
    assert!(set_cookie.contains("; SameSite=Lax"), "{set_cookie}");
    assert_eq!(text_of(&page, "cookie-max-age"), "3600");
    assert!(set_cookie.contains("; Max-Age=3600"), "{set_cookie}");
}

#[tokio::test]
async fn page_before_anything_is_stored_says_so_and_sets_no_cookie() {
    let (_, app) = memory_app();
    let mut browser = Browser::new(app);
    let (status, page) = browser.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&page, "status"), "Not logged in.");
    assert!(
        text_of(&page, "not-stored").starts_with("not yet"),
        "{page}"
    );
    assert!(!page.contains("id=\"expires-idle\""), "{page}");
    assert!(page.contains(r#"<form id="login">"#));
    assert_eq!(
        text_of(&page, "cookie-name"),
        "sid",
        "the cookie it would set"
    );
    assert_eq!(browser.cookie, None, "viewing the page stores nothing");
}

#[tokio::test]
async fn page_escapes_values_from_the_session() {
    let store: Arc<dyn session_core::Store> = Arc::new(session_memory::MemoryStore::new());
    let mut tutorial = tutorial(store, "memory");
    let name = r#"<script>alert('x') & "y"</script>"#;
    tutorial.credentials = Credentials::new(name, "a password");
    let mut browser = Browser::new(router(tutorial).expect("valid app"));
    let (status, _) = browser.login(&credentials(name, "a password")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = browser.get("/").await;
    assert!(!page.contains("<script>alert"), "{page}");
    let escaped = text_of(&page, "username");
    assert!(!escaped.contains(['\'', '"']), "{escaped}");
    assert_eq!(unescape(escaped), name, "shown as text");
}

#[tokio::test]
async fn cookie_is_secure_except_on_loopback() {
    async fn set_cookie(listen: &str) -> String {
        let store: Arc<dyn session_core::Store> = Arc::new(session_memory::MemoryStore::new());
        let settings = SessionSettings::for_address(listen.parse().expect("address"));
        assert_eq!(settings.secure, listen.starts_with("0.0.0.0"), "{listen}");
        let app = router(Tutorial {
            settings,
            ..tutorial(store, "memory")
        })
        .expect("valid app");
        let mut browser = Browser::new(app);
        browser.get("/set-session").await;
        browser.last_set_cookie.expect("a cookie")
    }
    for loopback in ["127.0.0.1:3000", "[::1]:3000"] {
        let cookie = set_cookie(loopback).await;
        assert!(!cookie.contains("Secure"), "{loopback}: {cookie}");
        assert!(cookie.contains("; HttpOnly"), "{cookie}");
    }
    let cookie = set_cookie("0.0.0.0:3000").await;
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let cookie = {
        let opened = open_store(&url).await.expect("sqlite store");
        assert_eq!(opened.info.kind, "SQLite");
        let mut browser = Browser::new(router(tutorial(opened.store, &url)).expect("app"));
        browser.login(&credentials("JohnDoe", "password123")).await;
        browser.cookie.expect("cookie")
    };
    // A new process would open the file again with the same key.
    let opened = open_store(&url).await.expect("sqlite store, again");
    let mut browser = Browser::new(router(tutorial(opened.store, &url)).expect("app"));
    browser.cookie = Some(cookie);
    let (_, page) = browser.get("/").await;
    assert_eq!(text_of(&page, "username"), "JohnDoe");
    assert_eq!(text_of(&page, "store-kind"), "SQLite");
    assert_eq!(text_of(&page, "store-url"), url);
}

#[tokio::test]
async fn unknown_store_scheme_is_a_clear_error_without_the_password() {
    let error = open_store("cassandra://app:s3cret@127.0.0.1")
        .await
        .expect_err("unknown");
    let message = error.to_string();
    assert!(message.contains("unknown session store URL"), "{message}");
    assert!(
        message.contains("sqlite://"),
        "lists the choices: {message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert_eq!(StoreInfo::of("cassandra://127.0.0.1"), None);
}

// ---- Your sessions: the user's devices, listed and logged out -------------------------------

const LOGIN: &str = r#"{"username":"JohnDoe","password":"password123"}"#;
const FORM: &str = "application/x-www-form-urlencoded";

/// A client of `app` logged in as the tutorial's user, sending `agent`.
async fn device(app: &axum::Router, agent: &str) -> Browser {
    let mut browser = Browser::with_agent(app.clone(), agent);
    let (status, text) = browser.login(LOGIN).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "User logged in"));
    browser
}

/// The rows of the page's "Your sessions" table: (user agent, this device?, handle).
fn session_rows(page: &str) -> Vec<(String, bool, Option<String>)> {
    page.split("<tr class=\"session\">")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").expect("the row ends")];
            let (_, cell) = row
                .split_once("class=\"session-agent\">")
                .expect("a user agent cell");
            let agent = unescape(&cell[..cell.find('<').expect("the cell ends")]);
            let handle = row
                .split_once("name=\"handle\" value=\"")
                .map(|(_, rest)| rest[..rest.find('"').expect("the value ends")].to_owned());
            (agent, row.contains("this device"), handle)
        })
        .collect()
}

/// The handle the page lists for `agent`'s session.
fn handle_for(page: &str, agent: &str) -> String {
    session_rows(page)
        .into_iter()
        .find(|(a, _, _)| a == agent)
        .and_then(|(_, _, handle)| handle)
        .unwrap_or_else(|| panic!("no revoke button for {agent}: {page}"))
}

#[tokio::test]
async fn login_marks_the_session_as_the_users_and_keeps_its_user_agent() {
    let (store, app) = memory_app();
    let laptop = device(&app, "laptop/1.0").await;
    assert_eq!(
        stored_values(&*store, &laptop.session_id()).await,
        Some(json!({ "username": "JohnDoe", "user_agent": "laptop/1.0" }))
    );
    let listed = store
        .principals()
        .expect("the memory store keeps principals")
        .sessions_of("JohnDoe")
        .await
        .expect("listing");
    let ids: Vec<_> = listed.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, vec![laptop.session_id()], "the session is JohnDoe's");
}

#[tokio::test]
async fn page_lists_your_sessions_with_this_device_marked_and_no_session_ids() {
    let (_, app) = memory_app();
    let mut laptop = device(&app, "laptop/1.0").await;
    let phone = device(&app, "phone/2.0").await;
    let (_, page) = laptop.get("/").await;
    let mut rows: Vec<(String, bool)> = session_rows(&page)
        .into_iter()
        .map(|(agent, current, handle)| {
            assert_eq!(handle.is_none(), current, "a button for other devices only");
            (agent, current)
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![("laptop/1.0".into(), true), ("phone/2.0".into(), false)],
        "{page}"
    );
    for id in [laptop.session_id(), phone.session_id()] {
        assert!(!page.contains(id.as_str()), "the page shows a session id");
    }
    assert!(page.contains("id=\"revoke-others\""), "{page}");
    assert!(
        !Browser::new(app).get("/").await.1.contains("Your sessions"),
        "nobody logged in, no list"
    );
}

#[tokio::test]
async fn revoking_another_device_from_the_page_makes_it_anonymous() {
    let (_, app) = memory_app();
    let mut laptop = device(&app, "laptop/1.0").await;
    let mut phone = device(&app, "phone/2.0").await;
    let (_, page) = laptop.get("/").await;
    let handle = handle_for(&page, "phone/2.0");
    let (status, _) = laptop
        .request(
            Method::POST,
            "/sessions/revoke",
            Some(FORM),
            &format!("handle={handle}"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "back to the page");
    assert_eq!(phone.get("/get-session").await.1, "No session data found");
    assert_eq!(laptop.get("/get-session").await.1, "Hello, JohnDoe");
    let (_, page) = laptop.get("/").await;
    assert_eq!(session_rows(&page).len(), 1, "{page}");
}

#[tokio::test]
async fn log_out_other_devices_keeps_this_one() {
    let (_, app) = memory_app();
    let mut laptop = device(&app, "laptop/1.0").await;
    let mut phone = device(&app, "phone/2.0").await;
    let mut tablet = device(&app, "tablet/3.0").await;
    let (status, _) = phone
        .request(Method::POST, "/sessions/revoke-others", None, "")
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/get-session").await.1, "Hello, JohnDoe");
    assert_eq!(laptop.get("/get-session").await.1, "No session data found");
    assert_eq!(tablet.get("/get-session").await.1, "No session data found");
    let (_, page) = phone.get("/").await;
    let rows = session_rows(&page);
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("phone/2.0", true));
}

#[tokio::test]
async fn session_routes_change_state_only_through_post() {
    let (_, app) = memory_app();
    let mut laptop = device(&app, "laptop/1.0").await;
    let mut phone = device(&app, "phone/2.0").await;
    for path in ["/sessions/revoke-others", "/sessions/revoke"] {
        let (status, _) = laptop.get(path).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    assert_eq!(phone.get("/get-session").await.1, "Hello, JohnDoe");
}

/// A store in a layout without a principal index, as connect-redis's, connect-pg-simple's
/// and connect-mongo's are: every operation, no `principals()`.
struct NoIndex(session_memory::MemoryStore);

#[async_trait::async_trait]
impl session_core::Store for NoIndex {
    async fn create(&self, record: &session_core::Record) -> session_core::Result<()> {
        self.0.create(record).await
    }
    async fn load(
        &self,
        id: &session_core::Id,
    ) -> session_core::Result<Option<session_core::Record>> {
        self.0.load(id).await
    }
    async fn save(&self, record: &session_core::Record) -> session_core::Result<()> {
        self.0.save(record).await
    }
    async fn touch(&self, id: &session_core::Id, at: OffsetDateTime) -> session_core::Result<bool> {
        self.0.touch(id, at).await
    }
    async fn delete(&self, id: &session_core::Id) -> session_core::Result<()> {
        self.0.delete(id).await
    }
}

#[tokio::test]
async fn express_mode_says_your_sessions_are_not_available() {
    let store: Arc<dyn session_core::Store> = Arc::new(NoIndex(session_memory::MemoryStore::new()));
    let tutorial = Tutorial {
        signing: express_tutorial::Signing::Express(vec![b"your-secret-key".to_vec()]),
        settings: SessionSettings::for_address(loopback()).express(),
        ..tutorial(Arc::clone(&store), "memory")
    };
    let app = router(tutorial).expect("valid app");
    let mut laptop = device(&app, "laptop/1.0").await;
    assert_eq!(
        stored_values(&*store, &laptop.session_id()).await,
        Some(json!({ "username": "JohnDoe" })),
        "exactly what the Express app stores: no user agent without the list"
    );
    let (status, page) = laptop.get("/").await;
    assert_eq!(status, StatusCode::OK, "the page still works: {page}");
    assert!(page.contains("Your sessions"), "{page}");
    assert!(page.contains("id=\"sessions-unavailable\""), "{page}");
    assert!(session_rows(&page).is_empty(), "{page}");
    for (path, body) in [
        ("/sessions/revoke-others", ""),
        ("/sessions/revoke", "handle=00"),
    ] {
        let (status, text) = laptop.request(Method::POST, path, Some(FORM), body).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{path}: {text}");
    }
    assert_eq!(
        laptop.get("/get-session").await.1,
        "Hello, JohnDoe",
        "still logged in"
    );
}
