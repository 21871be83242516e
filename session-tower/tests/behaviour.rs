//! Timeouts, store failures, configuration errors, concurrency on MemoryStore, and a real
//! server on a socket.

mod common;

use std::sync::Arc;

use common::*;
use http::StatusCode;
use session_core::{Data, Id, Record, Store};
use session_memory::MemoryStore;
use session_tower::{PeerAddr, Priority, SameSite, SessionLayer};
use time::Duration;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

// ---- Timeouts ----------------------------------------------------------------------------

/// Idle timeout: use keeps the session alive past the timeout; a pause longer than it ends it.
#[tokio::test]
async fn idle_timeout_slides_with_use_and_ends_after_a_pause() {
    let layer = builder(memory())
        .with_idle_timeout(Some(Duration::milliseconds(800)))
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = pair(&set_cookie(&response).expect("cookie"));
    for _ in 0..3 {
        sleep_ms(500).await;
        let response = send(&app, "/get?key=user", Some(&cookie)).await;
        assert_eq!(
            body(response).await,
            "\"ada\"",
            "used within the idle timeout"
        );
    }
    sleep_ms(1000).await;
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "none", "idle longer than the timeout");
}

/// Absolute timeout: however active, the session ends when it is reached.
#[tokio::test]
async fn absolute_timeout_ends_an_active_session() {
    let layer = builder(memory())
        .with_absolute_timeout(Some(Duration::milliseconds(900)))
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = pair(&set_cookie(&response).expect("cookie"));
    sleep_ms(400).await;
    let response = send(&app, "/set-int?key=n&value=1", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    sleep_ms(300).await;
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "\"ada\"");
    sleep_ms(400).await;
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "none", "past the absolute timeout");
}

/// Absolute timeout is checked by the layer too: a record the store still returns (stored
/// under a longer timeout) is ended and deleted once past the configured one.
#[tokio::test]
async fn absolute_timeout_is_enforced_on_load() {
    let store = memory();
    let created = session_core::now() - Duration::hours(2);
    let id = Id::random();
    let mut data = Data::new();
    data.insert("user", &"ada").expect("encode");
    let record = Record::from_parts(
        id.clone(),
        data,
        created,
        session_core::now() + Duration::hours(1),
        0,
    );
    store.create(&record).await.expect("create");
    let layer = builder(Arc::clone(&store))
        .with_absolute_timeout(Some(Duration::hours(1)))
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/get?key=user", Some(&cookie_for(id.as_str(), KEY))).await;
    assert_eq!(body(response).await, "none");
    assert!(store.load(&id).await.expect("load").is_none(), "deleted");
}

/// The cookie's Max-Age never outlives the absolute timeout.
#[tokio::test]
async fn max_age_is_capped_by_absolute_timeout() {
    let layer = builder(memory())
        .with_max_age(Some(Duration::hours(1)))
        .with_absolute_timeout(Some(Duration::minutes(10)))
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = set_cookie(&response).expect("cookie");
    let max_age: i64 = cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .expect("Max-Age")
        .parse()
        .expect("number");
    assert!((595..=600).contains(&max_age), "{cookie}");
}

// ---- Store failures ----------------------------------------------------------------------

fn failing() -> (axum::Router, Arc<Counts>, Arc<dyn Store>) {
    let store = memory();
    let counting = Counting::new(Arc::clone(&store));
    let counts = Arc::clone(&counting.counts);
    let layer = builder(counting).build().expect("valid");
    (app(layer, Gates::default()), counts, store)
}

/// A load failure propagated with `?` is a 500, and the layer does not start a session.
#[tokio::test]
async fn load_failure_is_a_500_not_a_fresh_session() {
    let (app, counts, _) = failing();
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = pair(&set_cookie(&response).expect("cookie"));
    counts.fail(true);
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(set_cookie(&response), None, "no fresh session");
    assert_eq!(body(response).await, "session store unavailable");
    counts.fail(false);
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(
        body(response).await,
        "\"ada\"",
        "the session survived the outage"
    );
}

/// A store failure the handler turns into a response (with `?`) is logged at error level
/// with its cause (the response carries no details).
#[tokio::test]
async fn store_failure_is_logged_with_its_cause() {
    let capture = LogCapture::start();
    let (app, counts, _) = failing();
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = pair(&set_cookie(&response).expect("cookie"));
    counts.fail(true);
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let logged = capture.logs.text();
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains("session store failed to load a session"),
        "what failed: {logged}"
    );
    assert!(
        logged.contains("test store is down"),
        "the driver's cause: {logged}"
    );
    assert!(
        !logged.contains(&signed_id(&cookie, KEY)),
        "no session id in logs: {logged}"
    );
}

/// A store failure the handler handles itself is not logged at error level (only at debug):
/// the application decided it was not an error.
#[tokio::test]
async fn handled_store_error_is_not_logged_at_error_level() {
    let capture = LogCapture::start();
    let (app, counts, _) = failing();
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = pair(&set_cookie(&response).expect("cookie"));
    counts.fail(true);
    let response = send(&app, "/swallow", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "anonymous");
    let logged = capture.logs.text();
    assert!(!logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains("DEBUG") && logged.contains("test store is down"),
        "still traceable at debug: {logged}"
    );
}

/// A failed touch does not fail a read: a store that reads but cannot write (out of memory, a
/// read-only replica) still serves pages; the failure is logged at warn with its cause and
/// without the id. A failed save of a change still fails the response.
#[tokio::test]
async fn failed_touch_does_not_fail_a_read() {
    let store = memory();
    let counting = Counting::new(Arc::clone(&store));
    let counts = Arc::clone(&counting.counts);
    let layer = builder(counting)
        .with_idle_timeout(Some(Duration::seconds(2)))
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = pair(&set_cookie(&response).expect("cookie"));
    counts.fail_writes(true);
    sleep_ms(100).await;

    let capture = LogCapture::start();
    counts.reset();
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookie(&response), None);
    assert_eq!(body(response).await, "\"ada\"", "the read is served");
    assert_eq!(counts.snapshot(), [0, 1, 0, 1, 0], "the touch was tried");
    let logged = capture.logs.text();
    assert!(logged.contains("WARN"), "{logged}");
    assert!(!logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains("test store is read-only"),
        "the cause: {logged}"
    );
    assert!(
        !logged.contains(&signed_id(&cookie, KEY)),
        "no session id in logs: {logged}"
    );

    let response = send(&app, "/set?key=user&value=bob", Some(&cookie)).await;
    assert_eq!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "a change that was not kept is an error"
    );
    counts.fail_writes(false);
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(body(response).await, "\"ada\"");
}

/// A failure while writing after the handler replaces the handler's success with the error
/// status: the change was not kept, so the client must not be told it was.
#[tokio::test]
async fn write_failure_after_the_handler_is_an_error_response() {
    let (app, counts, _) = failing();
    counts.fail(true);
    let response = send(&app, "/set?key=user&value=ada", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(set_cookie(&response), None);
    assert_eq!(counts.snapshot()[0], 1, "the create was tried");
}

/// The error status is configurable, for failures in the handler and after it.
#[tokio::test]
async fn error_status_is_configurable() {
    let store = memory();
    let counting = Counting::new(Arc::clone(&store));
    let counts = Arc::clone(&counting.counts);
    let layer = builder(counting)
        .with_error_status(StatusCode::SERVICE_UNAVAILABLE)
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = pair(&set_cookie(&response).expect("cookie"));
    counts.fail(true);
    let response = send(&app, "/get?key=user", Some(&cookie)).await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "in the handler"
    );
    let response = send(&app, "/set?key=user&value=bob", None).await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "after the handler"
    );
}

/// A handler that swallows the failure still gets no silently fresh session from the layer.
#[tokio::test]
async fn swallowed_failure_never_creates_a_session() {
    let (app, counts, _) = failing();
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = pair(&set_cookie(&response).expect("cookie"));
    counts.fail(true);
    counts.reset();
    let response = send(&app, "/swallow", Some(&cookie)).await;
    assert_eq!(set_cookie(&response), None);
    let [create, load, save, touch, delete] = counts.snapshot();
    assert_eq!((create, save, touch, delete), (0, 0, 0, 0));
    assert_eq!(load, 2, "each use retried the load, none replaced it");
}

/// A route using the extractor without the layer answers 500 with a message.
#[tokio::test]
async fn extractor_without_layer_is_a_clear_500() {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|_session: session_tower::Session| async { "unreachable" }),
    );
    let response = send(&app, "/", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body(response).await, "session middleware missing");
}

// ---- Configuration -----------------------------------------------------------------------

#[test]
fn invalid_configuration_is_an_error_at_build_time() {
    let cases: Vec<(&str, session_tower::Builder)> = vec![
        ("no key", SessionLayer::builder(MemoryStore::new())),
        (
            "short key",
            SessionLayer::builder(MemoryStore::new()).with_signing_key(b"short"),
        ),
        (
            "one short key in the ring",
            SessionLayer::builder(MemoryStore::new()).with_signing_keys([KEY, b"short".as_slice()]),
        ),
        ("empty name", builder(MemoryStore::new()).with_name("")),
        (
            "name with space",
            builder(MemoryStore::new()).with_name("my sid"),
        ),
        ("path with ;", builder(MemoryStore::new()).with_path("/a;b")),
        (
            "relative path",
            builder(MemoryStore::new()).with_path("app"),
        ),
        (
            "domain with ;",
            builder(MemoryStore::new()).with_domain("a.org; x"),
        ),
        (
            "SameSite=None without Secure",
            builder(MemoryStore::new())
                .with_same_site(Some(SameSite::None))
                .with_secure(false),
        ),
        (
            "__Host- with a domain",
            builder(MemoryStore::new())
                .with_name("__Host-sid")
                .with_domain("a.org"),
        ),
        (
            "__Secure- without Secure",
            builder(MemoryStore::new())
                .with_name("__Secure-sid")
                .with_secure(false),
        ),
        (
            "no timeout at all",
            builder(MemoryStore::new())
                .with_idle_timeout(None)
                .with_absolute_timeout(None),
        ),
        (
            "zero idle timeout",
            builder(MemoryStore::new()).with_idle_timeout(Some(Duration::ZERO)),
        ),
        (
            "negative max age",
            builder(MemoryStore::new()).with_max_age(Some(Duration::seconds(-1))),
        ),
        (
            "success as error status",
            builder(MemoryStore::new()).with_error_status(StatusCode::OK),
        ),
        (
            "Partitioned without Secure",
            builder(MemoryStore::new())
                .with_partitioned(true)
                .with_secure(false),
        ),
        (
            "SameSite=None with Secure decided per request",
            builder(MemoryStore::new())
                .with_same_site(Some(SameSite::None))
                .with_secure_auto(),
        ),
        (
            "__Host- with Secure decided per request",
            builder(MemoryStore::new())
                .with_name("__Host-sid")
                .with_secure_auto(),
        ),
        (
            "a trusted proxy that is not an address",
            builder(MemoryStore::new())
                .with_secure_auto()
                .with_trusted_proxies(["proxy.internal"]),
        ),
        (
            "trusted proxies without secure auto",
            builder(MemoryStore::new()).with_trusted_proxies(["10.0.0.1"]),
        ),
    ];
    for (what, builder) in cases {
        match builder.build() {
            Err(session_core::Error::InvalidConfig(message)) => {
                assert!(!message.is_empty(), "{what}");
            }
            Err(other) => panic!("{what}: wrong error {other:?}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    builder(MemoryStore::new())
        .with_name("__Host-sid")
        .build()
        .expect("__Host- with the secure defaults is valid");
}

#[test]
fn builder_debug_hides_keys() {
    let shown = format!("{:?}", builder(MemoryStore::new()));
    assert!(!shown.contains("signing key"), "{shown}");
    assert!(shown.contains("1 keys"), "{shown}");
}

#[tokio::test]
async fn cookie_attributes_follow_the_configuration() {
    let layer = builder(memory())
        .with_name("app.sid")
        .with_secure(false)
        .with_http_only(false)
        .with_same_site(Some(SameSite::Strict))
        .with_path("/app")
        .with_domain("example.org")
        .with_max_age(Some(Duration::minutes(1)))
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = set_cookie(&response).expect("cookie");
    assert!(cookie.starts_with("app.sid=s%3A"), "{cookie}");
    assert_eq!(
        attributes(&cookie),
        [
            "Domain=example.org",
            "Max-Age=60",
            "Path=/app",
            "SameSite=Strict"
        ]
    );
}

/// `Partitioned` and `Priority` are sent when configured.
#[tokio::test]
async fn cookie_partitioned_and_priority_are_sent() {
    let layer = builder(memory())
        .with_same_site(Some(SameSite::None))
        .with_partitioned(true)
        .with_priority(Some(Priority::High))
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let response = send(&app, "/set?key=user&value=ada", None).await;
    let cookie = set_cookie(&response).expect("cookie");
    assert_eq!(
        attributes(&cookie),
        [
            "HttpOnly",
            "Partitioned",
            "Path=/",
            "Priority=High",
            "SameSite=None",
            "Secure"
        ]
    );
    let response = send(&app, "/destroy", Some(&pair(&cookie))).await;
    let cleared = set_cookie(&response).expect("clearing cookie");
    assert!(
        cleared.contains("; Partitioned") && cleared.contains("; Priority=High"),
        "the clearing cookie matches the one it clears: {cleared}"
    );
}

// ---- Secure behind a proxy ---------------------------------------------------------------

fn behind_proxy() -> axum::Router {
    let layer = builder(memory())
        .with_secure_auto()
        .with_trusted_proxies(["10.0.0.0/8", "::1"])
        .build()
        .expect("valid");
    app(layer, Gates::default())
}

/// One new session through `app` from `peer` with `headers`; its Set-Cookie.
async fn cookie_from(
    app: &axum::Router,
    peer: Option<&str>,
    headers: &[(&str, &str)],
    connect_info: bool,
) -> String {
    let mut request = http::Request::get("/set?key=user&value=ada");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request
        .body(axum::body::Body::empty())
        .expect("valid request");
    if let Some(peer) = peer {
        let address: std::net::SocketAddr = peer.parse().expect("socket address");
        if connect_info {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(address));
        } else {
            request.extensions_mut().insert(PeerAddr(address));
        }
    }
    let response = send_request(app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    set_cookie(&response).expect("a new session's cookie")
}

/// `Secure` follows the scheme a trusted proxy reports, from `X-Forwarded-Proto` or
/// `Forwarded`, with the peer from axum's `ConnectInfo` or a `PeerAddr`.
#[tokio::test]
async fn secure_auto_follows_a_trusted_proxy() {
    let app = behind_proxy();
    let https = [("x-forwarded-proto", "https")];
    for connect_info in [true, false] {
        let cookie = cookie_from(&app, Some("10.1.2.3:4000"), &https, connect_info).await;
        assert!(cookie.contains("; Secure"), "{cookie}");
    }
    let forwarded = [("forwarded", "for=198.51.100.7;proto=https")];
    let cookie = cookie_from(&app, Some("[::1]:4000"), &forwarded, true).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    let http = [("x-forwarded-proto", "http")];
    let cookie = cookie_from(&app, Some("10.1.2.3:4000"), &http, true).await;
    assert!(
        !cookie.contains("Secure"),
        "plain http behind the proxy: {cookie}"
    );
    let cookie = cookie_from(&app, Some("10.1.2.3:4000"), &[], true).await;
    assert!(!cookie.contains("Secure"), "no header: {cookie}");
}

/// Forwarding headers from a peer that is not a trusted proxy, or from an unknown peer, are
/// ignored: a client cannot choose the attribute.
#[tokio::test]
async fn secure_auto_ignores_an_untrusted_peer() {
    let app = behind_proxy();
    for headers in [
        &[("x-forwarded-proto", "https")][..],
        &[("forwarded", "for=10.0.0.1;proto=https")][..],
    ] {
        let cookie = cookie_from(&app, Some("203.0.113.5:4000"), headers, true).await;
        assert!(!cookie.contains("Secure"), "untrusted peer: {cookie}");
        let cookie = cookie_from(&app, None, headers, true).await;
        assert!(!cookie.contains("Secure"), "unknown peer: {cookie}");
    }
    let layer = builder(memory()).with_secure_auto().build().expect("valid");
    let no_proxies = common::app(layer, Gates::default());
    let https = [("x-forwarded-proto", "https")];
    let cookie = cookie_from(&no_proxies, Some("10.1.2.3:4000"), &https, true).await;
    assert!(!cookie.contains("Secure"), "no trusted proxies: {cookie}");
}

/// Through a real server serving with `ConnectInfo`, the loopback proxy's header is believed.
#[tokio::test]
async fn secure_auto_behind_a_real_proxy_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let layer = builder(memory())
        .with_secure_auto()
        .with_trusted_proxies(["127.0.0.1"])
        .build()
        .expect("valid");
    let app = app(layer, Gates::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    for (proto, secure) in [("https", true), ("http", false)] {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let request = format!(
            "GET /set?key=user&value=ada HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: {proto}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let cookie = response
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: "))
            .unwrap_or_else(|| panic!("Set-Cookie header in {response}"));
        assert_eq!(cookie.contains("; Secure"), secure, "{proto}: {cookie}");
    }
    server.abort();
}

// ---- Concurrency (MemoryStore; the Redis run is in tests/redis.rs) -----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_different_keys_both_survive() {
    common::concurrent::different_keys_both_survive(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_same_key_last_save_wins() {
    common::concurrent::same_key_last_save_wins(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_change_to_destroyed_session_starts_new_one() {
    common::concurrent::change_to_vanished_session_starts_new_one(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_nothing() {
    common::concurrent::many_concurrent_writers_lose_nothing(memory()).await;
}

// ---- Real apps: logins racing other requests, read-modify-write, "remember me" ------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_increments_end_at_100() {
    common::concurrent::hundred_concurrent_increments_end_at_100(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_parallel_requests_ends_logged_in() {
    common::concurrent::login_with_parallel_requests_ends_logged_in(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_keeps_a_concurrent_save() {
    common::concurrent::regenerate_keeps_a_concurrent_save(memory()).await;
}

#[tokio::test]
async fn remember_me_lifetime_is_stored_with_the_session() {
    common::concurrent::remember_me_lifetime_is_stored_with_the_session(memory()).await;
}

// ---- A real server -----------------------------------------------------------------------

/// Through hyper on a loopback socket: cookie issued, sent back, read.
#[tokio::test]
async fn real_server_round_trip() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let layer = builder(memory()).build().expect("valid");
    let app = app(layer, Gates::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    async fn get(address: std::net::SocketAddr, path: &str, cookie: Option<&str>) -> String {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{cookie}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    let first = get(address, "/set?key=user&value=ada", None).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let set_cookie = first
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("Set-Cookie header");
    let second = get(address, "/get?key=user", Some(&pair(set_cookie))).await;
    assert!(second.ends_with("\"ada\""), "{second}");
    assert!(!second.contains("set-cookie"), "{second}");
    server.abort();
}
