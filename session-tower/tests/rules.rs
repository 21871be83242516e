//! The store and cookie rules of the crate documentation, one test (at least) per row, through
//! the HTTP stack with `tower::ServiceExt::oneshot`.

mod common;

use std::sync::Arc;

use common::*;
use http::StatusCode;
use session_core::Store;
use session_memory::MemoryStore;
use session_tower::Builder;
use time::Duration;

struct Setup {
    app: axum::Router,
    counts: Arc<Counts>,
    store: Arc<dyn Store>,
}

fn setup(configure: impl FnOnce(Builder) -> Builder) -> Setup {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let counting = Counting::new(Arc::clone(&store));
    let counts = Arc::clone(&counting.counts);
    let layer = configure(builder(counting)).build().expect("valid config");
    Setup {
        app: app(layer, Gates::default()),
        counts,
        store,
    }
}

impl Setup {
    /// Starts a session holding `user=ada`; returns its cookie and resets the counters.
    async fn session(&self) -> String {
        let response = send(&self.app, "/set?key=user&value=ada", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = pair(&set_cookie(&response).expect("new session's cookie"));
        self.counts.reset();
        cookie
    }

    async fn record(&self, cookie: &str) -> Option<session_core::Record> {
        let id = id(&signed_id(cookie, KEY));
        self.store.load(&id).await.expect("load works")
    }
}

const NONE: [usize; 5] = [0, 0, 0, 0, 0];
// (create, load, save, touch, delete)

// ---- Store writes ------------------------------------------------------------------------

/// S1 / C1: a handler that never uses the session costs no store call and sends no cookie,
/// whatever the request carries and however the layer is configured.
#[tokio::test]
async fn s1_unused_session_costs_no_store_call() {
    for rolling in [false, true] {
        let s = setup(|b| b.with_rolling(rolling).with_resave(true));
        let cookie = s.session().await;
        for sent in [None, Some(cookie.as_str()), Some("sid=tampered")] {
            let response = send(&s.app, "/noop", sent).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(set_cookie(&response), None, "cookie {sent:?}");
            assert_eq!(
                s.counts.snapshot(),
                NONE,
                "cookie {sent:?}, rolling {rolling}"
            );
        }
    }
}

/// S2 / C8: a new session left empty is not stored and gets no cookie; without a cookie not
/// even a load happens.
#[tokio::test]
async fn s2_new_empty_session_is_not_stored() {
    let s = setup(|b| b);
    let response = send(&s.app, "/get?key=user", None).await;
    assert_eq!(set_cookie(&response), None);
    assert_eq!(body(response).await, "none");
    assert_eq!(s.counts.snapshot(), NONE);
}

/// S2: inserting then removing leaves the new session empty: still not stored.
#[tokio::test]
async fn s2_new_session_emptied_again_is_not_stored() {
    let s = setup(|b| b);
    let response = send(&s.app, "/set?key=user&value=", None).await;
    assert!(
        set_cookie(&response).is_some(),
        "a value, even empty, is a value"
    );
    let s = setup(|b| b);
    let response = send(&s.app, "/clear", None).await;
    assert_eq!(set_cookie(&response), None);
    assert_eq!(s.counts.snapshot(), NONE);
}

/// S3 / C2: `save_uninitialized` stores the new empty session and sends its cookie.
#[tokio::test]
async fn s3_save_uninitialized_stores_empty_session() {
    let s = setup(|b| b.with_save_uninitialized(true));
    let response = send(&s.app, "/get?key=user", None).await;
    let cookie = set_cookie(&response).expect("cookie for the stored session");
    assert_eq!(s.counts.snapshot(), [1, 0, 0, 0, 0]);
    let record = s.record(&cookie).await.expect("stored");
    assert!(record.data.is_empty());
}

/// S4 / C2: a new session with values is created and its signed cookie sent, with the secure
/// default attributes.
#[tokio::test]
async fn s4_new_session_with_values_is_created_with_secure_cookie() {
    let s = setup(|b| b);
    let response = send(&s.app, "/set?key=user&value=ada", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = set_cookie(&response).expect("cookie");
    assert_eq!(s.counts.snapshot(), [1, 0, 0, 0, 0]);
    assert_eq!(
        attributes(&cookie),
        ["HttpOnly", "Path=/", "SameSite=Lax", "Secure"],
        "{cookie}"
    );
    let record = s.record(&cookie).await.expect("stored");
    assert_eq!(
        record.data.get::<String>("user").expect("decode"),
        Some("ada".into())
    );
    let in_a_day = session_core::now() + Duration::days(1);
    assert!(
        (record.expires_at - in_a_day).abs() < Duration::seconds(5),
        "default idle timeout of one day: {}",
        record.expires_at
    );
}

/// S5 / C6: a stored session that changed is saved (versioned); same id and no max_age: no
/// cookie.
#[tokio::test]
async fn s5_changed_session_is_saved_without_cookie() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let version = s.record(&cookie).await.expect("stored").version;
    let response = send(&s.app, "/set?key=user&value=bob", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
    assert_eq!(s.counts.snapshot(), [0, 1, 1, 0, 0]);
    let record = s.record(&cookie).await.expect("stored");
    assert_eq!(record.version, version + 1);
    assert_eq!(
        record.data.get::<String>("user").expect("decode"),
        Some("bob".into())
    );
}

/// S5: remove and clear are changes too; clear keeps the session and its id.
#[tokio::test]
async fn s5_remove_and_clear_are_saved() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    send(&s.app, "/set?key=other&value=1", Some(&cookie)).await;
    let response = send(&s.app, "/remove?key=other", Some(&cookie)).await;
    assert_eq!(body(response).await, "removed");
    let record = s.record(&cookie).await.expect("stored");
    assert!(!record.data.contains_key("other"));
    let response = send(&s.app, "/clear", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
    let record = s
        .record(&cookie)
        .await
        .expect("a cleared session is still stored");
    assert!(record.data.is_empty());
    assert_eq!(s.counts.snapshot()[2], 3, "three saves");
}

/// S5: writing the value already stored is no change: no save.
#[tokio::test]
async fn s5_writing_the_same_value_is_no_change() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/set?key=user&value=ada", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
    assert_eq!(s.counts.snapshot(), [0, 1, 0, 0, 0]);
}

/// S5 / C5: with a max_age, a changed session's cookie is sent again with a fresh Max-Age.
#[tokio::test]
async fn c5_changed_session_with_max_age_resends_cookie() {
    let s = setup(|b| b.with_max_age(Some(Duration::hours(1))));
    let cookie = s.session().await;
    let response = send(&s.app, "/set?key=user&value=bob", Some(&cookie)).await;
    let resent = set_cookie(&response).expect("cookie with a fresh Max-Age");
    assert_eq!(max_age(&resent), Some(3600), "{resent}");
    assert_eq!(pair(&resent), cookie, "same id, same signature");
    // Unchanged: nothing.
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
}

/// S6: `resave` saves an unchanged session.
#[tokio::test]
async fn s6_resave_saves_unchanged_session() {
    let s = setup(|b| b.with_resave(true));
    let cookie = s.session().await;
    let version = s.record(&cookie).await.expect("stored").version;
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
    assert_eq!(body(response).await, "\"ada\"");
    assert_eq!(s.counts.snapshot(), [0, 1, 1, 0, 0]);
    assert_eq!(
        s.record(&cookie).await.expect("stored").version,
        version + 1
    );
}

/// S7: an unchanged session whose idle expiry would move by at least 1 % of the idle timeout
/// is touched (expiry only, same version).
#[tokio::test]
async fn s7_unchanged_session_is_touched_when_expiry_moves() {
    let s = setup(|b| b.with_idle_timeout(Some(Duration::seconds(2))));
    let cookie = s.session().await;
    let before = s.record(&cookie).await.expect("stored");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
    assert_eq!(s.counts.snapshot(), [0, 1, 0, 1, 0]);
    let after = s.record(&cookie).await.expect("stored");
    assert!(after.expires_at >= before.expires_at + Duration::milliseconds(100));
    assert_eq!(after.version, before.version, "a touch is not a save");
}

/// S7: `touch()` moves the expiry even by a little; with max_age it resends the cookie.
#[tokio::test]
async fn s7_touch_forces_expiry_move_and_cookie() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let response = send(&s.app, "/touch", Some(&cookie)).await;
    assert_eq!(
        set_cookie(&response),
        None,
        "no max_age: nothing to refresh"
    );
    assert_eq!(s.counts.snapshot(), [0, 1, 0, 1, 0]);

    let s = setup(|b| b.with_max_age(Some(Duration::minutes(5))));
    let cookie = s.session().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let response = send(&s.app, "/touch", Some(&cookie)).await;
    let resent = set_cookie(&response).expect("cookie refreshed by touch");
    assert_eq!(max_age(&resent), Some(300), "{resent}");
}

/// S8: an unchanged session whose expiry would move by less than the threshold is left alone:
/// a read costs one load.
#[tokio::test]
async fn s8_unchanged_session_small_move_costs_one_load() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "\"ada\"");
    assert_eq!(s.counts.snapshot(), [0, 1, 0, 0, 0]);
}

/// S8: without an idle timeout the expiry is fixed (absolute), so nothing is ever touched,
/// rolling or not.
#[tokio::test]
async fn s8_absolute_only_never_touches() {
    let s = setup(|b| {
        b.with_idle_timeout(None)
            .with_absolute_timeout(Some(Duration::seconds(10)))
            .with_rolling(true)
    });
    let cookie = s.session().await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert!(
        set_cookie(&response).is_some(),
        "rolling still resends the cookie"
    );
    assert_eq!(s.counts.snapshot(), [0, 1, 0, 0, 0]);
}

/// S9: with `destroy_when_emptied` (express-session's `unset: 'destroy'`), a stored session
/// that a request leaves without values is deleted and its cookie cleared.
#[tokio::test]
async fn s9_emptied_session_is_destroyed_with_destroy_when_emptied() {
    let s = setup(|b| b.with_destroy_when_emptied(true));
    let cookie = s.session().await;
    let response = send(&s.app, "/remove?key=user", Some(&cookie)).await;
    let cleared = set_cookie(&response).expect("clearing cookie");
    assert!(is_clearing(&cleared), "{cleared}");
    assert_eq!(s.counts.snapshot(), [0, 1, 1, 0, 1], "saved, then deleted");
    assert!(s.record(&cookie).await.is_none());

    // Without the option, an emptied session stays (S5).
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/clear", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
    assert!(s.record(&cookie).await.is_some());
}

/// S10 / C10: a cookie whose session was regenerated by another request (its old id is a
/// tombstone) reads as an empty session, costs no write, and gets no cookie, neither cleared
/// nor replaced; a change is refused with 409 and no cookie.
#[tokio::test]
async fn s10_superseded_session_reads_empty_and_refuses_changes() {
    let s = setup(|b| b.with_rolling(true).with_max_age(Some(Duration::hours(1))));
    let old = s.session().await;
    let response = send(&s.app, "/regenerate", Some(&old)).await;
    assert!(set_cookie(&response).is_some());
    s.counts.reset();

    let response = send(&s.app, "/get?key=user", Some(&old)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookie(&response), None, "C10: the cookie is left alone");
    assert_eq!(body(response).await, "none");
    let response = send(&s.app, "/touch", Some(&old)).await;
    assert_eq!(set_cookie(&response), None);
    assert_eq!(s.counts.snapshot(), [0, 2, 0, 0, 0], "loads only");

    for uri in [
        "/set?key=user&value=eve",
        "/incr?key=n",
        "/remember?days=1",
        "/swallow",
    ] {
        let response = send(&s.app, uri, Some(&old)).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{uri}");
        assert_eq!(set_cookie(&response), None, "{uri}");
    }
    assert_eq!(
        s.counts.snapshot()[0] + s.counts.snapshot()[2],
        0,
        "no write"
    );

    // destroy() still ends it and clears the cookie; a login from it starts a new session.
    let response = send(&s.app, "/login?user=bob", Some(&old)).await;
    let new = set_cookie(&response).expect("a new session");
    assert_eq!(s.record(&new).await.expect("stored").data.len(), 1);
    let response = send(&s.app, "/destroy", Some(&old)).await;
    let cleared = set_cookie(&response).expect("clearing cookie");
    assert!(is_clearing(&cleared), "{cleared}");
    assert!(s.record(&old).await.is_none(), "the tombstone is gone too");
}

// ---- Cookies -----------------------------------------------------------------------------

/// C2: a valid cookie for an id the store does not know is never adopted: values go to a new
/// session with a new id.
#[tokio::test]
async fn c2_unknown_id_is_never_adopted() {
    let s = setup(|b| b);
    let planted = session_core::Id::random().to_string();
    let response = send(
        &s.app,
        "/set?key=user&value=eve",
        Some(&cookie_for(&planted, KEY)),
    )
    .await;
    let cookie = set_cookie(&response).expect("new session's cookie");
    let issued = signed_id(&cookie, KEY);
    assert_ne!(issued, planted);
    assert!(s.store.load(&id(&planted)).await.expect("load").is_none());
}

/// C3: a cookie signed with an older key of the ring is accepted and re-signed with the first.
#[tokio::test]
async fn c3_older_key_is_accepted_and_resigned() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let old = session_tower::SessionLayer::builder(Arc::clone(&store))
        .with_signing_key(OLD_KEY)
        .build()
        .expect("valid");
    let old_app = app(old, Gates::default());
    let response = send(&old_app, "/set?key=user&value=ada", None).await;
    let old_cookie = pair(&set_cookie(&response).expect("cookie"));
    let session_id = signed_id(&old_cookie, OLD_KEY);

    let rotated = session_tower::SessionLayer::builder(Arc::clone(&store))
        .with_signing_keys([KEY, OLD_KEY])
        .build()
        .expect("valid");
    let rotated_app = app(rotated, Gates::default());
    let response = send(&rotated_app, "/get?key=user", Some(&old_cookie)).await;
    let resigned = set_cookie(&response).expect("re-signed cookie");
    assert_eq!(body(response).await, "\"ada\"");
    assert_eq!(
        signed_id(&resigned, KEY),
        session_id,
        "same session, current key"
    );

    let response = send(&rotated_app, "/get?key=user", Some(&pair(&resigned))).await;
    assert_eq!(
        set_cookie(&response),
        None,
        "current key: nothing to re-sign"
    );
    assert_eq!(body(response).await, "\"ada\"");

    // Once the old key leaves the ring, its cookies are worthless.
    let current_only = session_tower::SessionLayer::builder(Arc::clone(&store))
        .with_signing_key(KEY)
        .build()
        .expect("valid");
    let current_app = app(current_only, Gates::default());
    let response = send(&current_app, "/get?key=user", Some(&old_cookie)).await;
    assert_eq!(body(response).await, "none");
}

/// C4: `rolling` sends the cookie on every response of a request that used the session.
#[tokio::test]
async fn c4_rolling_resends_cookie() {
    let s = setup(|b| {
        b.with_rolling(true)
            .with_max_age(Some(Duration::minutes(10)))
    });
    let cookie = s.session().await;
    for _ in 0..2 {
        let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
        let resent = set_cookie(&response).expect("rolling cookie");
        assert_eq!(pair(&resent), cookie);
        assert_eq!(max_age(&resent), Some(600), "{resent}");
    }
}

/// C6: same id, unchanged, no rolling: no cookie (already covered for changes in S5).
#[tokio::test]
async fn c6_unchanged_session_sends_no_cookie() {
    let s = setup(|b| b.with_max_age(Some(Duration::minutes(10))));
    let cookie = s.session().await;
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
}

/// C9: setting the session's own lifetime sends the cookie again with its Max-Age, or without
/// one for a browser-session cookie; later unchanged requests send nothing.
#[tokio::test]
async fn c9_lifetime_change_resends_cookie_with_its_max_age() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/remember?days=2", Some(&cookie)).await;
    let set = set_cookie(&response).expect("cookie with the session's Max-Age");
    assert_eq!(pair(&set), cookie);
    assert_eq!(max_age(&set), Some(2 * 24 * 3600));
    assert_eq!(s.counts.snapshot(), [0, 1, 1, 0, 0], "a change: saved");
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
    let response = send(&s.app, "/browser-session", Some(&cookie)).await;
    let set = set_cookie(&response).expect("cookie without Max-Age");
    assert_eq!(max_age(&set), None, "{set}");
}

/// C7: destroy deletes the session (without loading it) and clears the cookie.
#[tokio::test]
async fn c7_destroy_deletes_and_clears_cookie() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/destroy", Some(&cookie)).await;
    let cleared = set_cookie(&response).expect("clearing cookie");
    assert!(is_clearing(&cleared), "{cleared}");
    assert_eq!(s.counts.snapshot(), [0, 0, 0, 0, 1]);
    assert!(s.record(&cookie).await.is_none(), "deleted from the store");
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "none");
}

/// C7: a used session that turns out unknown, or a bad cookie, is cleared from the browser
/// when nothing replaces it.
#[tokio::test]
async fn c7_stale_or_bad_cookie_is_cleared_when_session_used() {
    let s = setup(|b| b);
    let unknown = cookie_for(session_core::Id::random().as_str(), KEY);
    for cookie in [unknown.as_str(), "sid=garbage"] {
        let response = send(&s.app, "/get?key=user", Some(cookie)).await;
        let cleared = set_cookie(&response).expect("clearing cookie");
        assert!(is_clearing(&cleared), "{cleared}");
    }
}

/// C7: destroy then insert: the values go to a new session with a new id and its cookie.
#[tokio::test]
async fn c7_destroy_then_insert_starts_new_session() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let layer = builder(Arc::clone(&s.store)).build().expect("valid");
    let app = axum::Router::new()
        .route(
            "/logout",
            axum::routing::get(|session: session_tower::Session| async move {
                session.destroy().await?;
                session.insert("flash", "bye").await?;
                Ok::<_, session_tower::Error>("ok")
            }),
        )
        .layer(layer);
    let response = send(&app, "/logout", Some(&cookie)).await;
    let new = set_cookie(&response).expect("new session cookie");
    assert_ne!(signed_id(&new, KEY), signed_id(&cookie, KEY));
    assert!(s.record(&cookie).await.is_none());
}

/// C8: destroying without any cookie sends nothing.
#[tokio::test]
async fn c8_destroy_without_cookie_sends_nothing() {
    let s = setup(|b| b);
    let response = send(&s.app, "/destroy", None).await;
    assert_eq!(set_cookie(&response), None);
    assert_eq!(s.counts.snapshot(), NONE);
}

// ---- Reading the cookie ------------------------------------------------------------------

/// R1: tampered, unsigned, malformed, oversized and wrong-key cookies start a fresh session
/// with a new id, cost no store lookup, and are never an error.
#[tokio::test]
async fn r1_bad_cookies_start_fresh_sessions() {
    let s = setup(|b| b);
    let good = s.session().await;
    let genuine_id = signed_id(&good, KEY);
    let value = good.trim_start_matches("sid=").to_owned();
    let flipped = {
        let mut v = value.clone().into_bytes();
        let i = v.len() - 2;
        v[i] = if v[i] == b'a' { b'b' } else { b'a' };
        String::from_utf8(v).expect("ascii")
    };
    let cases = [
        ("tampered signature", format!("sid={flipped}")),
        ("unsigned id", format!("sid={genuine_id}")),
        ("signed with another key", cookie_for(&genuine_id, OLD_KEY)),
        ("malformed", "sid=s%3A.".to_owned()),
        ("broken escape", "sid=s%3%".to_owned()),
        ("oversized", format!("sid={}", "a".repeat(8000))),
        (
            "url-safe signature",
            format!("sid={}", value.replace("%2B", "-").replace("%2F", "_")),
        ),
        ("padded signature", format!("sid={value}=")),
        ("empty", "sid=".to_owned()),
    ];
    for (what, cookie) in cases {
        if cookie == good {
            continue; // a signature without + or / has no url-safe variant
        }
        s.counts.reset();
        let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        assert_eq!(body(response).await, "none", "{what}");
        assert_eq!(s.counts.snapshot()[1], 0, "{what}: no store lookup");
        let response = send(&s.app, "/set?key=user&value=mallory", Some(&cookie)).await;
        let issued = set_cookie(&response).expect("a new session's cookie");
        assert_ne!(
            signed_id(&issued, KEY),
            genuine_id,
            "{what}: never the client's id"
        );
    }
    // The genuine session is untouched.
    let response = send(&s.app, "/get?key=user", Some(&good)).await;
    assert_eq!(body(response).await, "\"ada\"");
}

/// R2: several cookies with the session's name (a sibling subdomain can plant one, and the
/// browser may send it first): each is tried until one verifies, and the one that verified is
/// never cleared.
#[tokio::test]
async fn r2_several_cookies_with_the_name_use_the_one_that_verifies() {
    let s = setup(|b| b);
    let good = s.session().await;
    let other_key = cookie_for(session_core::Id::random().as_str(), OLD_KEY);
    for header in [
        format!("sid=planted; {good}"),
        format!("{good}; sid=planted"),
        format!("{other_key}; sid=s%3Agarbage; {good}"),
    ] {
        let response = send(&s.app, "/get?key=user", Some(&header)).await;
        assert_eq!(set_cookie(&response), None, "{header}: nothing cleared");
        assert_eq!(body(response).await, "\"ada\"", "{header}");
        let response = send(&s.app, "/set?key=seen&value=1", Some(&header)).await;
        assert_eq!(
            set_cookie(&response),
            None,
            "{header}: same session, no new cookie"
        );
    }
    // In two Cookie headers (HTTP/2 may split them).
    let request = http::Request::get("/get?key=user")
        .header(http::header::COOKIE, "sid=planted")
        .header(http::header::COOKIE, good.as_str())
        .body(axum::body::Body::empty())
        .expect("request");
    let response = send_request(&s.app, request).await;
    assert_eq!(body(response).await, "\"ada\"");
}

/// R1: a Cookie header that is not even UTF-8 is just no session.
#[tokio::test]
async fn r1_non_utf8_cookie_header_is_no_session() {
    let s = setup(|b| b);
    let request = http::Request::get("/get?key=user")
        .header(
            http::header::COOKIE,
            http::HeaderValue::from_bytes(b"sid=\xff\xfe; x=1").expect("opaque bytes"),
        )
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(s.app.clone(), request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "none");
}

/// R1: express-session's cookie for the same id and secret is ours too (same format).
#[tokio::test]
async fn r1_express_format_cookie_is_read() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let session_id = signed_id(&cookie, KEY);
    // As a browser may send it back from Express: the `s:` prefix not escaped, quoted.
    let unescaped = express_value(&session_id, KEY)
        .replace("%3A", ":")
        .replace("%2B", "+")
        .replace("%2F", "/");
    for sent in [
        format!("sid={unescaped}"),
        format!("sid=\"{}\"", express_value(&session_id, KEY)),
    ] {
        let response = send(&s.app, "/get?key=user", Some(&sent)).await;
        assert_eq!(body(response).await, "\"ada\"", "{sent}");
    }
}

// ---- Handle operations -------------------------------------------------------------------

/// `save()` writes a new session mid-request; later changes are saved at the end; one cookie.
#[tokio::test]
async fn explicit_save_then_more_changes() {
    let s = setup(|b| b);
    let response = send(&s.app, "/save-then-set?key=late&value=1", None).await;
    let cookie = set_cookie(&response).expect("exactly one cookie");
    assert_eq!(s.counts.snapshot(), [1, 0, 1, 0, 0]);
    let record = s.record(&cookie).await.expect("stored");
    assert_eq!(
        record.data.get::<String>("early").expect("decode"),
        Some("yes".into())
    );
    assert_eq!(
        record.data.get::<String>("late").expect("decode"),
        Some("1".into())
    );
}

/// `reload()` discards unsaved changes and reads the stored values again.
#[tokio::test]
async fn reload_discards_unsaved_changes() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/reload?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "ada");
    assert_eq!(s.counts.snapshot(), [0, 2, 0, 0, 0], "two loads, no save");
}

/// `regenerate()`: new id, values kept, the old id a tombstone holding nothing, new cookie.
#[tokio::test]
async fn regenerate_changes_id_keeps_values_and_tombstones_old() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/regenerate", Some(&cookie)).await;
    let new = set_cookie(&response).expect("new cookie");
    let reported = body(response).await;
    let new_id = signed_id(&new, KEY);
    assert_eq!(reported, new_id, "the handler sees the new id");
    assert_ne!(new_id, signed_id(&cookie, KEY));
    assert_eq!(
        s.counts.snapshot(),
        [1, 1, 1, 0, 0],
        "load, tombstone, create"
    );
    let tombstone = s.record(&cookie).await.expect("the old id is a tombstone");
    assert_eq!(
        tombstone.data.keys().collect::<Vec<_>>(),
        [session_tower::RESERVED_KEY],
        "the tombstone holds no value"
    );
    assert!(
        tombstone.expires_at <= session_core::now() + session_tower::TOMBSTONE_TTL,
        "short-lived: {}",
        tombstone.expires_at
    );
    let record = s.record(&new).await.expect("new id stored");
    assert_eq!(
        record.data.get::<String>("user").expect("decode"),
        Some("ada".into())
    );
    let response = send(&s.app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "none", "the old cookie is worthless");
}

/// `regenerate_empty()`: new id, no values from before, old id a tombstone.
#[tokio::test]
async fn regenerate_empty_starts_without_values() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    send(&s.app, "/set?key=cart&value=tea", Some(&cookie)).await;
    let response = send(&s.app, "/regenerate-empty", Some(&cookie)).await;
    let new = set_cookie(&response).expect("new cookie");
    assert_ne!(signed_id(&new, KEY), signed_id(&cookie, KEY));
    let record = s.record(&new).await.expect("new id stored");
    assert_eq!(
        record.data.keys().collect::<Vec<_>>(),
        ["user"],
        "only what was inserted after"
    );
    let response = send(&s.app, "/get?key=cart", Some(&cookie)).await;
    assert_eq!(body(response).await, "none");
}

/// `reload()` of a session that vanished meanwhile reports it, and the handle then holds a
/// new, empty session; the store is reachable from the handle.
#[tokio::test]
async fn reload_of_a_vanished_session_reports_it() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/reload-after-delete", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = set_cookie(&response).expect("nothing kept: the cookie is cleared");
    assert!(is_clearing(&cleared), "{cleared}");
    assert_eq!(body(response).await, "found false empty true");
    assert!(s.record(&cookie).await.is_none());
    // And a session still there: found.
    let cookie = s.session().await;
    let response = send(&s.app, "/reload?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "ada");
}

/// The id is readable without an await once the request knows it (not before the first use).
#[tokio::test]
async fn current_id_is_readable_without_await_once_known() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/current-id", Some(&cookie)).await;
    assert_eq!(
        body(response).await,
        format!("false true {}", signed_id(&cookie, KEY))
    );
}

/// The reserved key can be neither written nor seen by handlers.
#[tokio::test]
async fn reserved_key_is_refused_and_invisible() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let response = send(&s.app, "/set-reserved", Some(&cookie)).await;
    assert_eq!(body(response).await, "refused");
    send(&s.app, "/remember?days=2", Some(&cookie)).await;
    let response = send(&s.app, "/get?key=cookie", Some(&cookie)).await;
    assert_eq!(body(response).await, "none");
    let response = send(&s.app, "/data", Some(&cookie)).await;
    assert_eq!(body(response).await, "user");
    let stored = s.record(&cookie).await.expect("stored");
    assert!(stored.data.contains_key(session_tower::RESERVED_KEY));
}

/// `update` writing the value already there is no change: no save.
#[tokio::test]
async fn update_to_the_same_value_is_no_change() {
    let s = setup(|b| b);
    let cookie = s.session().await;
    let app = axum::Router::new()
        .route(
            "/same",
            axum::routing::get(|session: session_tower::Session| async move {
                let user = session
                    .update("user", |old: Option<String>| old.unwrap_or_default())
                    .await?;
                Ok::<_, session_tower::Error>(user)
            }),
        )
        .layer(
            builder(Counting {
                inner: Arc::clone(&s.store),
                counts: Arc::clone(&s.counts),
            })
            .build()
            .expect("valid"),
        );
    let response = send(&app, "/same", Some(&cookie)).await;
    assert_eq!(body(response).await, "ada");
    assert_eq!(s.counts.snapshot(), [0, 1, 0, 0, 0]);
}
