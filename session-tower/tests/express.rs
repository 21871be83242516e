//! Express-compatible mode (`Builder::express_compatible`): the cookie, the secrets and the
//! stored `cookie` object as express-session has them, one test per case, through the HTTP
//! stack. The cross-side tests against a real Express app are in `examples/express-tutorial`.

mod common;

use std::sync::Arc;
use std::time::SystemTime;

use common::*;
use http::StatusCode;
use session_core::{Data, Record, Store};
use session_memory::MemoryStore;
use session_tower::{Builder, SessionLayer};
use time::{Duration, OffsetDateTime};

const SECRET: &str = "your-secret-key";
const OLDER_SECRET: &str = "an-older-secret";
const NAME: &str = "connect.sid";

struct Setup {
    app: axum::Router,
    counts: Arc<Counts>,
    store: Arc<dyn Store>,
}

/// An Express-compatible layer over a memory store, set up like the tutorial's Express app
/// (`maxAge` one hour, plain http), then `configure`d.
fn setup(configure: impl FnOnce(Builder) -> Builder) -> Setup {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let counting = Counting::new(Arc::clone(&store));
    let counts = Arc::clone(&counting.counts);
    let builder = SessionLayer::builder(counting)
        .express_compatible([SECRET, OLDER_SECRET])
        .with_secure(false)
        .with_max_age(Some(Duration::HOUR))
        .with_idle_timeout(Some(Duration::HOUR));
    let layer = configure(builder).build().expect("valid config");
    Setup {
        app: app(layer, Gates::default()),
        counts,
        store,
    }
}

impl Setup {
    /// Starts a session holding `user=ada`; returns its `Set-Cookie` and resets the counters.
    async fn session(&self) -> String {
        let response = send(&self.app, "/set?key=user&value=ada", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let set = set_cookie(&response).expect("new session's cookie");
        self.counts.reset();
        set
    }

    async fn record(&self, id: &str) -> Record {
        self.store
            .load(&common::id(id))
            .await
            .expect("load works")
            .expect("the session is stored")
    }

    /// The stored `cookie` object of session `id`.
    async fn cookie_object(&self, id: &str) -> serde_json::Value {
        self.record(id)
            .await
            .data
            .get::<serde_json::Value>("cookie")
            .expect("decodes")
            .expect("a cookie object is stored")
    }
}

/// The id in an Express `Set-Cookie` (or `Cookie` pair), after checking it is signed with
/// `secret` exactly as express-session signs it.
fn express_id(set_cookie: &str, secret: &str) -> String {
    let pair = pair(set_cookie);
    let value = pair
        .strip_prefix("connect.sid=")
        .unwrap_or_else(|| panic!("not the connect.sid cookie: {set_cookie}"));
    let id = value
        .strip_prefix("s%3A")
        .and_then(|rest| rest.rsplit_once('.'))
        .map(|(id, _)| id.to_owned())
        .unwrap_or_else(|| panic!("not an express-session value: {value}"));
    assert_eq!(
        value,
        express_value(&id, secret.as_bytes()),
        "signed with {secret:?}"
    );
    id
}

/// The `Expires` of a `Set-Cookie`.
fn expires(set_cookie: &str) -> OffsetDateTime {
    let date = set_cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Expires="))
        .unwrap_or_else(|| panic!("no Expires in {set_cookie}"));
    let at: SystemTime = httpdate::parse_http_date(date).expect("an HTTP date");
    OffsetDateTime::from(at)
}

/// Asserts `at` is `offset` after some instant of `[before, after]`, to the second
/// (`toUTCString` drops the milliseconds).
fn assert_near(
    at: OffsetDateTime,
    before: OffsetDateTime,
    after: OffsetDateTime,
    offset: Duration,
) {
    assert!(
        at >= before + offset - Duration::SECOND && at <= after + offset,
        "{at} is not {offset} after [{before}, {after}]"
    );
}

/// The cookie object Express writes, with an `originalMaxAge` of `max_age`.
fn express_written(max_age: Duration) -> serde_json::Value {
    let expires = session_core::express::js_date(OffsetDateTime::now_utc() + max_age);
    serde_json::json!({
        "originalMaxAge": max_age.whole_milliseconds() as u64,
        "expires": expires,
        "httpOnly": true,
        "path": "/",
        "sameSite": "lax"
    })
}

/// Stores a session as an Express app would have left it: the id, `username`, and Express's
/// cookie object with `max_age`.
async fn store_express_session(store: &dyn Store, id: &str, max_age: Duration) {
    let mut data = Data::new();
    data.insert("cookie", &express_written(max_age))
        .expect("encode");
    data.insert("username", "JohnDoe").expect("encode");
    let record = Record::from_parts(
        common::id(id),
        data,
        OffsetDateTime::now_utc(),
        OffsetDateTime::now_utc() + max_age,
        0,
    );
    store.create(&record).await.expect("create");
}

// ---- Cookie and secrets -------------------------------------------------------------------

#[tokio::test]
async fn express_cookie_is_connect_sid_signed_as_express_signs() {
    let s = setup(|b| b);
    let set = s.session().await;
    assert!(set.starts_with("connect.sid=s%3A"), "{set}");
    let id = express_id(&set, SECRET);
    assert_eq!(id.len(), 32, "express-session's id length: 24 random bytes");
}

#[tokio::test]
async fn express_short_secrets_are_accepted_with_a_warning_the_default_mode_refuses_them() {
    let refused = SessionLayer::builder(MemoryStore::new())
        .with_signing_key(SECRET)
        .build()
        .expect_err("the default mode needs 32 bytes");
    assert!(refused.to_string().contains("15 bytes"), "{refused}");

    let capture = LogCapture::start();
    SessionLayer::builder(MemoryStore::new())
        .express_compatible([SECRET])
        .build()
        .expect("Express-compatible mode takes the Express app's secret");
    let logs = capture.logs.text();
    assert!(
        logs.contains("WARN") && logs.contains("secret 0 is 15 bytes long"),
        "{logs}"
    );
    let quiet = LogCapture::start();
    SessionLayer::builder(MemoryStore::new())
        .express_compatible([[7u8; 32]])
        .build()
        .expect("a long secret");
    assert!(!quiet.logs.text().contains("WARN"), "{}", quiet.logs.text());
}

#[tokio::test]
async fn express_empty_secret_is_refused() {
    let error = SessionLayer::builder(MemoryStore::new())
        .express_compatible([SECRET, ""])
        .build()
        .expect_err("an empty secret");
    assert!(error.to_string().contains("secret 1 is empty"), "{error}");
    let none = SessionLayer::builder(MemoryStore::new())
        .express_compatible(Vec::<String>::new())
        .build()
        .expect_err("no secret");
    assert!(
        none.to_string().contains("signing key is required"),
        "{none}"
    );
}

/// A cookie express-session 1.19 (cookie-signature 1.0.7) set for this id with the secret
/// `your-secret-key`, captured from a real run.
#[tokio::test]
async fn express_cookie_set_by_express_verifies() {
    let s = setup(|b| b);
    let id = "RustWrittenSessionId0123456789abcd";
    store_express_session(&*s.store, id, Duration::HOUR).await;
    let cookie = "connect.sid=s%3ARustWrittenSessionId0123456789abcd.S5X3cEMEc1Zp1ahbEJYVf4ggQno4lQ1EIg51AmTMatw";
    let response = send(&s.app, "/get?key=username", Some(cookie)).await;
    assert_eq!(body(response).await, "\"JohnDoe\"");
}

#[tokio::test]
async fn express_secret_array_first_signs_every_secret_verifies() {
    let s = setup(|b| b);
    let id = "SessionSignedWithTheOlderSecret1";
    store_express_session(&*s.store, id, Duration::HOUR).await;
    let old = format!("{NAME}={}", express_value(id, OLDER_SECRET.as_bytes()));
    let response = send(&s.app, "/get?key=username", Some(&old)).await;
    let set = set_cookie(&response).expect("re-signed with the first secret");
    assert_eq!(body(response).await, "\"JohnDoe\"");
    assert_eq!(express_id(&set, SECRET), id);

    let unknown = format!("{NAME}={}", express_value(id, b"a secret neither app has"));
    let response = send(&s.app, "/get?key=username", Some(&unknown)).await;
    assert_eq!(body(response).await, "none");
}

#[tokio::test]
async fn express_set_cookie_has_expires_in_express_order_and_no_max_age() {
    let s = setup(|b| b);
    let before = OffsetDateTime::now_utc();
    let set = s.session().await;
    let after = OffsetDateTime::now_utc();
    let date = set
        .split("; ")
        .find_map(|a| a.strip_prefix("Expires="))
        .expect("Expires");
    assert_eq!(
        set,
        format!(
            "{}; Path=/; Expires={date}; HttpOnly; SameSite=Lax",
            pair(&set)
        )
    );
    assert!(date.ends_with(" GMT"), "{date}");
    assert_near(expires(&set), before, after, Duration::HOUR);

    let secure = setup(|b| b.with_secure(true).with_domain("example.org"));
    let set = secure.session().await;
    let names: Vec<&str> = set
        .split("; ")
        .skip(1)
        .map(|a| a.split('=').next().unwrap_or(a))
        .collect();
    assert_eq!(
        names,
        [
            "Domain", "Path", "Expires", "HttpOnly", "Secure", "SameSite"
        ]
    );
}

#[tokio::test]
async fn express_browser_session_cookie_has_no_expires() {
    let s = setup(|b| b.with_max_age(None));
    let set = s.session().await;
    assert_eq!(
        set,
        format!("{}; Path=/; HttpOnly; SameSite=Lax", pair(&set))
    );
}

#[tokio::test]
async fn express_tampered_unsigned_and_wrong_secret_cookies_are_no_cookie() {
    let s = setup(|b| b);
    let set = s.session().await;
    let id = express_id(&set, SECRET);
    let good = pair(&set);
    let tampered = {
        let mut bytes = good.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("ascii")
    };
    for cookie in [
        tampered,
        format!("{NAME}={id}"),
        format!("{NAME}=s%3A{id}"),
        format!("{NAME}={}", express_value(&id, b"wrong")),
    ] {
        s.counts.reset();
        let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
        assert_eq!(body(response).await, "none", "{cookie}");
        assert_eq!(s.counts.snapshot()[1], 0, "no store lookup for {cookie}");
    }
}

// ---- The stored cookie object -------------------------------------------------------------

#[tokio::test]
async fn express_stored_cookie_object_has_express_shape() {
    let s = setup(|b| b);
    let set = s.session().await;
    let id = express_id(&set, SECRET);
    let object = s.cookie_object(&id).await;
    let expires_text = object["expires"].as_str().expect("expires is a string");
    assert_eq!(
        object,
        serde_json::json!({
            "originalMaxAge": 3_600_000,
            "expires": expires_text,
            "httpOnly": true,
            "path": "/",
            "sameSite": "lax"
        })
    );
    let stored_expires = session_core::express::parse_js_date(expires_text).expect("ISO date");
    assert_eq!(
        session_core::express::js_date(stored_expires),
        expires_text,
        "toISOString's form"
    );
    assert_eq!(
        stored_expires.unix_timestamp(),
        expires(&set).unix_timestamp(),
        "the same instant as the Set-Cookie"
    );

    let secure = setup(|b| b.with_secure(true).with_domain("example.org"));
    let id = express_id(&secure.session().await, SECRET);
    let object = secure.cookie_object(&id).await;
    assert_eq!(object["secure"], true);
    assert_eq!(object["domain"], "example.org");
}

#[tokio::test]
async fn express_session_written_by_express_is_read_with_its_max_age() {
    // Remember me on the Express side: `req.session.cookie.maxAge = 30 days`.
    let s = setup(|b| b.with_absolute_timeout(Some(Duration::days(60))));
    let id = "ExpressRememberedSessionId012345";
    store_express_session(&*s.store, id, Duration::days(30)).await;
    let cookie = format!("{NAME}={}", express_value(id, SECRET.as_bytes()));
    let before = OffsetDateTime::now_utc();
    let response = send(&s.app, "/incr?key=visits", Some(&cookie)).await;
    let after = OffsetDateTime::now_utc();
    assert_eq!(response.status(), StatusCode::OK);
    let set = set_cookie(&response).expect("changed, with a Max-Age: sent again");
    assert_near(expires(&set), before, after, Duration::days(30));
    let record = s.record(id).await;
    assert_near(
        record.expires_at,
        before,
        after + Duration::SECOND,
        Duration::days(30),
    );
    let lifetime = body(send(&s.app, "/lifetime", Some(&cookie)).await).await;
    assert_eq!(lifetime, "idle 43200 max-age 43200");
    let object = s.cookie_object(id).await;
    assert_eq!(object["originalMaxAge"], 2_592_000_000_u64);
    assert!(object.get("idleTimeout").is_none(), "{object}");
}

#[tokio::test]
async fn express_remember_me_on_the_rust_side_is_written_for_express() {
    let s = setup(|b| b.with_absolute_timeout(Some(Duration::days(60))));
    let set = s.session().await;
    let id = express_id(&set, SECRET);
    let before = OffsetDateTime::now_utc();
    send(&s.app, "/remember?days=30", Some(&pair(&set))).await;
    let after = OffsetDateTime::now_utc();
    let object = s.cookie_object(&id).await;
    assert_eq!(object["originalMaxAge"], 2_592_000_000_u64);
    assert!(
        object.get("idleTimeout").is_none(),
        "equal to the max age: {object}"
    );
    let expires_at = session_core::express::parse_js_date(object["expires"].as_str().expect("set"))
        .expect("ISO date");
    assert_near(
        expires_at,
        before,
        after + Duration::SECOND,
        Duration::days(30),
    );
}

#[tokio::test]
async fn express_idle_timeout_other_than_max_age_is_kept_in_the_cookie_object() {
    let s = setup(|b| b.with_idle_timeout(Some(Duration::minutes(30))));
    let set = s.session().await;
    let id = express_id(&set, SECRET);
    let object = s.cookie_object(&id).await;
    assert_eq!(object["idleTimeout"], 1_800_000);
    assert_eq!(object["originalMaxAge"], 3_600_000);
    let lifetime = body(send(&s.app, "/lifetime", Some(&pair(&set))).await).await;
    assert_eq!(lifetime, "idle 30 max-age 60");
}

#[tokio::test]
async fn express_tombstone_lives_as_long_as_its_cookie_says() {
    let s = setup(|b| b);
    let set = s.session().await;
    let old = express_id(&set, SECRET);
    let before = OffsetDateTime::now_utc();
    send(&s.app, "/regenerate", Some(&pair(&set))).await;
    let after = OffsetDateTime::now_utc();
    let object = s.cookie_object(&old).await;
    assert_eq!(object["regenerated"], true);
    assert_eq!(object["originalMaxAge"], 60_000, "the tombstone's minute");
    let expires_at = session_core::express::parse_js_date(object["expires"].as_str().expect("set"))
        .expect("ISO date");
    assert_near(
        expires_at,
        before,
        after + Duration::SECOND,
        Duration::MINUTE,
    );
}

#[tokio::test]
async fn express_default_mode_stores_no_cookie_object() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let layer = SessionLayer::builder(Arc::clone(&store))
        .with_signing_key(KEY)
        .with_max_age(Some(Duration::HOUR))
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let set = set_cookie(&response).expect("cookie");
    assert!(
        set.contains("Max-Age=3600") && !set.contains("Expires"),
        "{set}"
    );
    let id = common::id(&signed_id(&set, KEY));
    let record = store.load(&id).await.expect("load").expect("stored");
    assert_eq!(record.data.keys().collect::<Vec<_>>(), ["user"]);
}

// ---- When Set-Cookie is sent --------------------------------------------------------------

/// express-session's `shouldSetCookie`: a new id when the session is saved; the same id when
/// `rolling`, or when the session changed and the cookie has an expiry.
#[tokio::test]
async fn express_set_cookie_is_sent_when_express_session_sends_it() {
    let s = setup(|b| b);
    assert!(
        set_cookie(&send(&s.app, "/get?key=user", None).await).is_none(),
        "a new, empty session is not saved and gets no cookie"
    );
    let cookie = pair(&s.session().await);
    assert!(
        set_cookie(&send(&s.app, "/get?key=user", Some(&cookie)).await).is_none(),
        "unchanged"
    );
    assert!(
        set_cookie(&send(&s.app, "/set?key=user&value=bob", Some(&cookie)).await).is_some(),
        "changed, with an expiry"
    );

    let browser = setup(|b| b.with_max_age(None));
    let cookie = pair(&browser.session().await);
    assert!(
        set_cookie(&send(&browser.app, "/set?key=user&value=bob", Some(&cookie)).await).is_none(),
        "changed, without an expiry"
    );

    let rolling = setup(|b| b.with_rolling(true));
    let cookie = pair(&rolling.session().await);
    assert!(
        set_cookie(&send(&rolling.app, "/get?key=user", Some(&cookie)).await).is_some(),
        "rolling"
    );
}

/// express-session leaves the browser's cookie alone on `destroy`; the layer clears it, as
/// Express's `res.clearCookie` would (no `Max-Age`, an `Expires` in 1970).
#[tokio::test]
async fn express_destroy_clears_the_cookie_as_express_clear_cookie() {
    let s = setup(|b| b);
    let set = s.session().await;
    let id = express_id(&set, SECRET);
    let response = send(&s.app, "/destroy", Some(&pair(&set))).await;
    assert_eq!(
        set_cookie(&response).as_deref(),
        Some("connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax")
    );
    assert!(
        s.store
            .load(&common::id(&id))
            .await
            .expect("load")
            .is_none()
    );
}

/// The renewal timeout in Express-compatible mode: a session due for renewal, whether this
/// layer or the Express app wrote it last, gets a new id whose cookie Express verifies (its
/// `Expires`, its secret); the new id's record is an express-session session with its values
/// and a valid `cookie` object (plus the id's issue time, `idIssuedAt`, which express-session
/// ignores and drops at its next write); the old id holds the tombstone an Express app reads
/// as an empty session.
#[tokio::test]
async fn express_renewal_timeout_renews_to_a_session_express_reads() {
    let s = setup(|b| b.with_renewal_timeout(Duration::milliseconds(600)));
    let set = s.session().await;
    let old = express_id(&set, SECRET);
    store_express_session(
        &*s.store,
        "express-written-session-id-0123456789",
        Duration::HOUR,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let express_cookie = format!(
        "{NAME}={}",
        express_value("express-written-session-id-0123456789", SECRET.as_bytes())
    );

    for (cookie, key, value) in [
        (pair(&set), "user", "\"ada\""),
        (express_cookie, "username", "\"JohnDoe\""),
    ] {
        let old = express_id(&cookie, SECRET);
        let response = send(&s.app, &format!("/get?key={key}"), Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let renewed = set_cookie(&response).expect("renewed");
        assert_eq!(body(response).await, value);
        let new = express_id(&renewed, SECRET);
        assert_ne!(new, old);
        expires(&renewed);
        let again = send(&s.app, &format!("/get?key={key}"), Some(&pair(&renewed))).await;
        assert_eq!(body(again).await, value);
        let object = s.cookie_object(&new).await;
        assert_eq!(object["originalMaxAge"], 3_600_000, "{object}");
        assert_eq!(object["httpOnly"], true);
        assert!(object["expires"].is_string(), "{object}");
        assert!(object["idIssuedAt"].is_i64(), "{object}");
        assert_eq!(s.cookie_object(&old).await["regenerated"], true);
        let stored = s.record(&new).await;
        assert_eq!(
            stored.data.keys().filter(|k| *k != "cookie").count(),
            1,
            "the values, nothing else"
        );
    }
    assert_eq!(s.cookie_object(&old).await["regenerated"], true);
}
