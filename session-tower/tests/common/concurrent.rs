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
