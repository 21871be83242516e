//! Concurrent requests on one session, against any store: no lost updates.

use std::sync::Arc;

use session_core::Store;

use super::*;

/// Starts a session holding `start=0` and returns the app, its gates and the cookie.
async fn started(store: Arc<dyn Store>) -> (Router, Gates, String) {
    let gates = Gates::default();
    let layer = builder(store).build().expect("valid config");
    let app = app(layer, gates.clone());
    let response = send(&app, "/set?key=start&value=0", None).await;
    let cookie = pair(&set_cookie(&response).expect("a new session sends its cookie"));
    (app, gates, cookie)
}

fn spawn_send(
    app: &Router,
    uri: String,
    cookie: String,
) -> tokio::task::JoinHandle<Response<Body>> {
    let app = app.clone();
    tokio::spawn(async move { send(&app, &uri, Some(&cookie)).await })
}

async fn stored(store: &dyn Store, cookie: &str) -> serde_json::Map<String, serde_json::Value> {
    let id = signed_id(cookie, KEY);
    let record = store
        .load(&super::id(&id))
        .await
        .expect("load works")
        .expect("the session is still stored");
    record.data.to_json().expect("json data")
}

/// Two requests load the same version, change different keys, and save one after the other:
/// the second save conflicts, reloads, re-applies its change, and both changes survive.
pub async fn different_keys_both_survive(store: Arc<dyn Store>) {
    let (app, gates, cookie) = started(Arc::clone(&store)).await;
    let mut arrivals = gates.arrivals().await;
    let release_a = gates.arm("A").await;
    let release_b = gates.arm("B").await;
    let a = spawn_send(
        &app,
        "/gated-set?key=a&value=1&gate=A".into(),
        cookie.clone(),
    );
    let b = spawn_send(
        &app,
        "/gated-set?key=b&value=2&gate=B".into(),
        cookie.clone(),
    );
    for _ in 0..2 {
        arrivals
            .recv()
            .await
            .expect("a handler arrives at its gate");
    }
    release_a.send(()).expect("A waits");
    let response_a = a.await.expect("A's task");
    release_b.send(()).expect("B waits");
    let response_b = b.await.expect("B's task");
    assert_eq!(response_a.status(), StatusCode::OK);
    assert_eq!(response_b.status(), StatusCode::OK);
    assert_eq!(set_cookie(&response_a), None, "same session: no new cookie");
    assert_eq!(set_cookie(&response_b), None, "same session: no new cookie");
    let data = stored(&*store, &cookie).await;
    assert_eq!(
        serde_json::Value::Object(data),
        serde_json::json!({"start": "0", "a": "1", "b": "2"}),
        "both concurrent changes must survive"
    );
}

/// Two requests change the same key: the one whose save runs last wins, whichever started
/// first.
pub async fn same_key_last_save_wins(store: Arc<dyn Store>) {
    for (first, second) in [("A", "B"), ("B", "A")] {
        let (app, gates, cookie) = started(Arc::clone(&store)).await;
        let mut arrivals = gates.arrivals().await;
        let mut release = [("A", gates.arm("A").await), ("B", gates.arm("B").await)]
            .into_iter()
            .collect::<HashMap<_, _>>();
        let mut tasks = HashMap::new();
        for name in ["A", "B"] {
            let uri = format!("/gated-set?key=k&value={name}&gate={name}");
            tasks.insert(name, spawn_send(&app, uri, cookie.clone()));
        }
        for _ in 0..2 {
            arrivals
                .recv()
                .await
                .expect("a handler arrives at its gate");
        }
        for name in [first, second] {
            release
                .remove(name)
                .expect("armed")
                .send(())
                .expect("waiting");
            let response = tasks.remove(name).expect("spawned").await.expect("task");
            assert_eq!(response.status(), StatusCode::OK, "request {name}");
        }
        let data = stored(&*store, &cookie).await;
        assert_eq!(
            data.get("k"),
            Some(&serde_json::json!(second)),
            "released {first} then {second}: the later save must win"
        );
        assert_eq!(data.get("start"), Some(&serde_json::json!("0")));
    }
}

/// A request changes a session that another request destroys meanwhile: its change starts a
/// new session with a new id, and the destroyed session's values are not brought back.
pub async fn change_to_vanished_session_starts_new_one(store: Arc<dyn Store>) {
    let (app, gates, cookie) = started(Arc::clone(&store)).await;
    let old_id = signed_id(&cookie, KEY);
    let mut arrivals = gates.arrivals().await;
    let release = gates.arm("A").await;
    let a = spawn_send(
        &app,
        "/gated-set?key=a&value=1&gate=A".into(),
        cookie.clone(),
    );
    arrivals.recv().await.expect("A arrives at its gate");
    let destroyed = send(&app, "/destroy", Some(&cookie)).await;
    assert_eq!(destroyed.status(), StatusCode::OK);
    release.send(()).expect("A waits");
    let response = a.await.expect("A's task");
    assert_eq!(response.status(), StatusCode::OK);
    let new_cookie = set_cookie(&response).expect("the new session's cookie");
    let new_id = signed_id(&new_cookie, KEY);
    assert_ne!(new_id, old_id, "a vanished session's id is never reused");
    assert!(
        store.load(&id(&old_id)).await.expect("load").is_none(),
        "the destroyed session stays destroyed"
    );
    let data = stored(&*store, &new_cookie).await;
    assert_eq!(
        serde_json::Value::Object(data),
        serde_json::json!({"a": "1"}),
        "only this request's change, not the destroyed values"
    );
}

/// Many requests at once, each changing its own key: every change survives.
pub async fn many_concurrent_writers_lose_nothing(store: Arc<dyn Store>) {
    const WRITERS: usize = 8;
    let (app, _gates, cookie) = started(Arc::clone(&store)).await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| spawn_send(&app, format!("/set?key=k{i}&value={i}"), cookie.clone()))
        .collect();
    for task in tasks {
        let response = task.await.expect("task");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let data = stored(&*store, &cookie).await;
    for i in 0..WRITERS {
        assert_eq!(
            data.get(&format!("k{i}")),
            Some(&serde_json::json!(i.to_string())),
            "change of writer {i} lost; stored: {data:?}"
        );
    }
}

/// 100 requests at once, each incrementing one counter with `update`: the counter ends at
/// exactly 100.
pub async fn hundred_concurrent_increments_end_at_100(store: Arc<dyn Store>) {
    const REQUESTS: usize = 100;
    let (app, _gates, cookie) = started(Arc::clone(&store)).await;
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| spawn_send(&app, "/incr?key=n".to_owned(), cookie.clone()))
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let response = task.await.expect("task");
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
        assert_eq!(set_cookie(&response), None, "request {i}: same session");
    }
    let data = stored(&*store, &cookie).await;
    assert_eq!(
        data.get("n"),
        Some(&serde_json::json!(REQUESTS)),
        "every increment counted; stored: {data:?}"
    );
    assert_eq!(data.get("start"), Some(&serde_json::json!("0")));
}

/// A login (`regenerate`) while reads and writes carrying the old cookie are in flight, and
/// after it: whatever order the browser handles the responses in, it ends on the logged-in
/// session, and the old id never reaches the new session's data.
pub async fn login_with_parallel_requests_ends_logged_in(store: Arc<dyn Store>) {
    let gates = Gates::default();
    let layer = builder(Arc::clone(&store)).build().expect("valid config");
    let app = app(layer, gates.clone());
    let response = send(&app, "/set?key=cart&value=tea", None).await;
    let old = pair(&set_cookie(&response).expect("the anonymous session's cookie"));
    let old_id = signed_id(&old, KEY);

    // In flight: requests that loaded the session before the login and finish after it.
    let mut arrivals = gates.arrivals().await;
    let in_flight = [
        ("read 1", "/gated-get?key=cart&gate=R1", "R1"),
        ("write 1", "/gated-set?key=w1&value=1&gate=W1", "W1"),
        ("read 2", "/gated-get?key=user&gate=R2", "R2"),
        ("write 2", "/gated-set?key=user&value=eve&gate=W2", "W2"),
    ];
    let mut waiting = Vec::new();
    for (what, uri, gate) in in_flight {
        let release = gates.arm(gate).await;
        waiting.push((what, release, spawn_send(&app, uri.to_owned(), old.clone())));
    }
    for _ in 0..in_flight.len() {
        arrivals
            .recv()
            .await
            .expect("a request arrives at its gate");
    }

    let login = send(&app, "/login?user=ada", Some(&old)).await;
    assert_eq!(login.status(), StatusCode::OK);
    let login_cookies = set_cookies(&login);
    let new = pair(login_cookies.first().expect("the login's new cookie"));
    let new_id = signed_id(&new, KEY);
    assert_ne!(new_id, old_id);

    // Sent by the browser after the login, before its response arrived: still the old cookie.
    let mut responses = vec![("login".to_owned(), StatusCode::OK, login_cookies)];
    for (what, uri) in [
        ("late read", "/get?key=cart"),
        ("late write", "/set?key=late&value=1"),
    ] {
        let response = send(&app, uri, Some(&old)).await;
        responses.push((what.to_owned(), response.status(), set_cookies(&response)));
    }
    for (what, release, task) in waiting {
        release.send(()).expect("the request waits at its gate");
        let response = task.await.expect("task");
        responses.push((what.to_owned(), response.status(), set_cookies(&response)));
    }

    for (what, status, cookies) in &responses[1..] {
        assert!(
            cookies.is_empty(),
            "{what}: a request with the old cookie neither clears it nor issues another: {cookies:?}"
        );
        let expected = if what.contains("write") {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        };
        assert_eq!(
            *status, expected,
            "{what}: a refused change is not a silent success"
        );
    }
    for order in permutations(responses.len()) {
        let mut jar = Jar::holding(&old);
        for &i in &order {
            jar.receive(&responses[i].2);
        }
        let names: Vec<&str> = order.iter().map(|&i| responses[i].0.as_str()).collect();
        assert_eq!(
            jar.cookie(),
            Some(new.as_str()),
            "delivered in order {names:?}"
        );
    }

    let response = send(&app, "/get?key=user", Some(&new)).await;
    assert_eq!(body(response).await, "\"ada\"", "logged in");
    let response = send(&app, "/get?key=cart", Some(&new)).await;
    assert_eq!(
        body(response).await,
        "\"tea\"",
        "regenerate keeps the values"
    );
    let response = send(&app, "/get?key=w1", Some(&new)).await;
    assert_eq!(
        body(response).await,
        "none",
        "a refused write is not applied"
    );

    let tombstone = store
        .load(&id(&old_id))
        .await
        .expect("load works")
        .expect("the old id holds a tombstone for a while");
    assert!(
        !tombstone.data.contains_key("user") && !tombstone.data.contains_key("cart"),
        "the old id holds none of the session's values: {:?}",
        tombstone.data
    );
    for key in ["user", "cart"] {
        let response = send(&app, &format!("/get?key={key}"), Some(&old)).await;
        assert_eq!(body(response).await, "none", "{key} through the old cookie");
    }
}

/// A save another request made to the old session after the login loaded it, but before the
/// login replaced the old id, is kept in the new session.
pub async fn regenerate_keeps_a_concurrent_save(store: Arc<dyn Store>) {
    let (app, gates, old) = started(Arc::clone(&store)).await;
    let mut arrivals = gates.arrivals().await;
    let release = gates.arm("L").await;
    let login = spawn_send(&app, "/gated-login?user=ada&gate=L".into(), old.clone());
    arrivals
        .recv()
        .await
        .expect("the login arrives at its gate");
    let response = send(&app, "/set?key=added&value=meanwhile", Some(&old)).await;
    assert_eq!(response.status(), StatusCode::OK);
    release.send(()).expect("the login waits");
    let login = login.await.expect("login task");
    assert_eq!(login.status(), StatusCode::OK);
    let new = pair(&set_cookie(&login).expect("the new session's cookie"));
    let data = stored(&*store, &new).await;
    assert_eq!(
        serde_json::Value::Object(data),
        serde_json::json!({"start": "0", "added": "meanwhile", "user": "ada"})
    );
}

/// A session's own lifetime ("remember me") is stored with it: another app server (another
/// layer on the same store) honours it on later requests, and it can be reset.
pub async fn remember_me_lifetime_is_stored_with_the_session(store: Arc<dyn Store>) {
    let first = app(
        builder(Arc::clone(&store)).build().expect("valid"),
        Gates::default(),
    );
    let second = app(
        builder(Arc::clone(&store)).build().expect("valid"),
        Gates::default(),
    );
    let response = send(&first, "/set?key=user&value=ada", None).await;
    let set = set_cookie(&response).expect("cookie");
    assert_eq!(
        max_age(&set),
        None,
        "the layer's default: browser-session cookie"
    );
    let cookie = pair(&set);

    let response = send(&first, "/remember?days=7", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let set = set_cookie(&response).expect("the cookie is sent again with its Max-Age");
    assert_eq!(pair(&set), cookie, "same session");
    assert_eq!(max_age(&set), Some(7 * 24 * 3600));
    let in_a_week = session_core::now() + time::Duration::days(7);
    let record = store
        .load(&id(&signed_id(&cookie, KEY)))
        .await
        .expect("load")
        .expect("stored");
    assert!(
        (record.expires_at - in_a_week).abs() < time::Duration::minutes(1),
        "the idle timeout of a week moves the server-side expiry: {}",
        record.expires_at
    );

    // Another app server: the session's own settings hold there too.
    let response = send(&second, "/lifetime", Some(&cookie)).await;
    assert_eq!(body(response).await, "idle 10080 max-age 10080");
    let response = send(&second, "/touch", Some(&cookie)).await;
    let set = set_cookie(&response).expect("a touched session with a Max-Age resends it");
    assert_eq!(max_age(&set), Some(7 * 24 * 3600), "{set}");
    let response = send(&second, "/data", Some(&cookie)).await;
    assert_eq!(
        body(response).await,
        "user",
        "the reserved key is invisible"
    );

    let response = send(&second, "/browser-session", Some(&cookie)).await;
    let set = set_cookie(&response).expect("sent again as a browser-session cookie");
    assert_eq!(max_age(&set), None, "{set}");
    let response = send(&first, "/lifetime", Some(&cookie)).await;
    assert_eq!(body(response).await, "idle 10080 max-age none");

    let response = send(&first, "/forget", Some(&cookie)).await;
    assert!(
        set_cookie(&response).is_some(),
        "a lifetime change sends the cookie"
    );
    let response = send(&second, "/lifetime", Some(&cookie)).await;
    assert_eq!(
        body(response).await,
        "idle 1440 max-age none",
        "the layer's again"
    );
    let record = store
        .load(&id(&signed_id(&cookie, KEY)))
        .await
        .expect("load")
        .expect("stored");
    assert!(
        record.expires_at < session_core::now() + time::Duration::days(2),
        "back to the layer's idle timeout of a day: {}",
        record.expires_at
    );
}

/// Every order of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut order = rest.clone();
            order.insert(at, n - 1);
            out.push(order);
        }
    }
    out
}
