//! The sessions of a user on MemoryStore: the principal is saved with the session and survives
//! regenerate, the listing is the user's live sessions with the current one marked, revocation
//! logs other devices out, and a store without the capability gives a typed error.

mod common;

use std::sync::Arc;

use common::principals::{Device, agents, app, handle_of, layer, routes};
use common::{Jar, builder};
use http::StatusCode;
use session_core::{Id, Record, Store};
use session_hashed::HashedIds;
use session_memory::MemoryStore;
use session_tower::{Error, Session};
use time::Duration;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

/// The records the store lists for `principal`.
async fn listed(store: &Arc<dyn Store>, principal: &str) -> Vec<Record> {
    store
        .principals()
        .expect("MemoryStore keeps principals")
        .sessions_of(principal)
        .await
        .expect("sessions_of")
}

#[tokio::test]
async fn set_principal_is_saved_and_listed() {
    let store = memory();
    let app = app(layer(Arc::clone(&store)));
    let mut laptop = Device::new("laptop");
    laptop.login(&app, "alice").await;
    let stored = listed(&store, "alice").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].principal.as_deref(), Some("alice"));
    assert_eq!(
        laptop.whoami(&app).await,
        "alice",
        "read back on the next request"
    );
    let list = laptop.sessions(&app).await;
    assert_eq!(
        agents(&list),
        (vec!["laptop".into()], vec!["laptop".into()])
    );
}

#[tokio::test]
async fn a_change_of_principal_alone_is_saved() {
    let store = memory();
    let app = app(layer(Arc::clone(&store)));
    let mut device = Device::new("laptop");
    device.send(&app, "GET", "/visit").await;
    assert!(device.jar.cookie().is_some(), "a stored session");
    let (status, _) = device
        .send(&app, "POST", "/set-principal-only?user=alice")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed(&store, "alice").await.len(),
        1,
        "saved with no other change"
    );
    device
        .send(&app, "POST", "/set-principal-only?user=bob")
        .await;
    assert!(listed(&store, "alice").await.is_empty(), "moved off alice");
    assert_eq!(listed(&store, "bob").await.len(), 1, "moved to bob");
    device.send(&app, "POST", "/clear-principal").await;
    assert!(listed(&store, "bob").await.is_empty(), "cleared");
    assert_eq!(device.whoami(&app).await, "anonymous");
}

#[tokio::test]
async fn a_principal_alone_stores_a_new_session() {
    let store = memory();
    let app = app(layer(Arc::clone(&store)));
    let mut device = Device::new("laptop");
    device
        .send(&app, "POST", "/set-principal-only?user=alice")
        .await;
    assert!(device.jar.cookie().is_some(), "the session was stored");
    assert_eq!(device.whoami(&app).await, "alice");
}

#[tokio::test]
async fn regenerate_then_set_principal_marks_the_new_id() {
    let store = memory();
    let app = app(layer(Arc::clone(&store)));
    let mut device = Device::new("laptop");
    device.send(&app, "GET", "/visit").await;
    let (_, old_id) = device.send(&app, "GET", "/id").await;
    device.login(&app, "alice").await; // regenerate_empty, then set_principal
    let (_, new_id) = device.send(&app, "GET", "/id").await;
    assert_ne!(old_id, new_id, "a new id");
    let stored = listed(&store, "alice").await;
    let ids: Vec<&str> = stored.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec![new_id.as_str()], "only the new id is alice's");
}

#[tokio::test]
async fn set_principal_then_regenerate_keeps_it_on_the_new_id() {
    let store = memory();
    let app = app(layer(Arc::clone(&store)));
    let mut device = Device::new("laptop");
    device.send(&app, "GET", "/visit").await;
    let (_, old_id) = device.send(&app, "GET", "/id").await;
    let (status, text) = device
        .send(&app, "POST", "/login?user=alice&order=principal-first")
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, new_id) = device.send(&app, "GET", "/id").await;
    assert_ne!(old_id, new_id, "a new id");
    assert_eq!(device.whoami(&app).await, "alice");
    let stored = listed(&store, "alice").await;
    let ids: Vec<&str> = stored.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![new_id.as_str()],
        "the new id carries it, the old does not"
    );
    let list = device.sessions(&app).await;
    assert_eq!(
        agents(&list),
        (vec!["laptop".into()], vec!["laptop".into()])
    );
}

#[tokio::test]
async fn a_principal_survives_a_stored_session_regenerated_in_a_later_request() {
    let store = memory();
    let layer = builder(Arc::clone(&store)).build().expect("valid");
    let app = axum::Router::new()
        .route(
            "/regenerate",
            axum::routing::post(|session: Session| async move {
                session.regenerate().await?;
                Ok::<_, Error>("regenerated")
            }),
        )
        .merge(routes())
        .layer(layer);
    let mut device = Device::new("laptop");
    device.login(&app, "alice").await;
    let (_, before) = device.send(&app, "GET", "/id").await;
    device.send(&app, "POST", "/regenerate").await;
    let (_, after) = device.send(&app, "GET", "/id").await;
    assert_ne!(before, after);
    let stored = listed(&store, "alice").await;
    let ids: Vec<&str> = stored.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec![after.as_str()]);
}

#[tokio::test]
async fn listing_shows_only_live_sessions_of_the_principal_with_current_right() {
    common::principals::listing_shows_only_live_sessions_of_the_principal(memory()).await;
}

#[tokio::test]
async fn listing_leaves_out_expired_and_destroyed_sessions() {
    let store = memory();
    let app = app(layer(Arc::clone(&store)));
    let mut laptop = Device::new("laptop");
    laptop.login(&app, "alice").await;
    let mut phone = Device::new("phone");
    phone.login(&app, "alice").await;
    // Logging out (destroy) takes the phone's session off the list.
    let logout = axum::Router::new()
        .route(
            "/logout",
            axum::routing::post(|session: Session| async move {
                session.destroy().await?;
                Ok::<_, Error>("bye")
            }),
        )
        .layer(layer(Arc::clone(&store)));
    phone.send(&logout, "POST", "/logout").await;
    // A session of alice about to expire.
    let expiring = Record::new(Id::random(), Duration::milliseconds(150))
        .with_principal(Some("alice".to_owned()));
    store.create(&expiring).await.expect("create");
    assert_eq!(
        laptop.sessions(&app).await.len(),
        2,
        "the laptop and the expiring one"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let list = laptop.sessions(&app).await;
    assert_eq!(
        agents(&list),
        (vec!["laptop".into()], vec!["laptop".into()]),
        "{list:?}"
    );
}

#[tokio::test]
async fn revoke_one_from_another_device_makes_it_anonymous() {
    common::principals::revoke_one_from_another_device(memory()).await;
}

#[tokio::test]
async fn revoke_others_keeps_the_current() {
    common::principals::revoke_others_keeps_the_current(memory()).await;
}

#[tokio::test]
async fn revoking_the_current_session_acts_like_destroy() {
    let store = memory();
    let app = app(layer(Arc::clone(&store)));
    let mut laptop = Device::new("laptop");
    laptop.login(&app, "alice").await;
    let (_, id) = laptop.send(&app, "GET", "/id").await;
    let handle = handle_of(&laptop.sessions(&app).await, "laptop");
    let cookie = laptop.jar.cookie().expect("logged in").to_owned();
    let (status, revoked) = laptop
        .send(&app, "POST", &format!("/revoke?handle={handle}"))
        .await;
    assert_eq!((status, revoked.as_str()), (StatusCode::OK, "true"));
    assert_eq!(laptop.jar.cookie(), None, "the response drops the cookie");
    assert!(
        listed(&store, "alice").await.is_empty(),
        "nothing saved back"
    );
    let id = common::id(&id);
    assert!(
        store.load(&id).await.expect("load").is_none(),
        "no resurrecting save"
    );
    let mut replay = Device::new("laptop");
    replay.jar = Jar::holding(&cookie);
    assert_eq!(
        replay.whoami(&app).await,
        "anonymous",
        "the old cookie is worthless"
    );
}

#[tokio::test]
async fn store_without_principals_gives_a_typed_error() {
    // `Counting` forwards the Store operations but not the capability.
    let store = common::Counting::new(memory());
    let layer = builder(store).build().expect("valid");
    let typed = axum::Router::new()
        .route(
            "/typed",
            axum::routing::get(|session: Session| async move {
                session.set_principal("alice").await.expect("set");
                let listing = session.sessions_of_principal().await;
                let revoke = session.revoke_session("00").await;
                let others = session.revoke_other_sessions().await;
                format!(
                    "{} {} {}",
                    matches!(listing, Err(Error::PrincipalsUnsupported)),
                    matches!(revoke, Err(Error::PrincipalsUnsupported)),
                    matches!(others, Err(Error::PrincipalsUnsupported)),
                )
            }),
        )
        .merge(routes())
        .layer(layer);
    let mut device = Device::new("laptop");
    let (_, text) = device.send(&typed, "GET", "/typed").await;
    assert_eq!(text, "true true true");
    let (status, text) = device.send(&typed, "GET", "/sessions").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "as a response: {text}");
}

#[tokio::test]
async fn a_handle_is_not_the_id() {
    let app = app(layer(memory()));
    let mut laptop = Device::new("laptop");
    laptop.login(&app, "alice").await;
    let (_, id) = laptop.send(&app, "GET", "/id").await;
    let list = laptop.sessions(&app).await;
    let handle = handle_of(&list, "laptop");
    assert_eq!(handle.len(), 32, "{handle}");
    assert!(handle.bytes().all(|b| b.is_ascii_hexdigit()), "{handle}");
    assert!(
        !handle.contains(&id) && !id.contains(&handle),
        "{handle} vs {id}"
    );
    let text = serde_json::to_string(&list).expect("json");
    assert!(
        !text.contains(&id),
        "the listing shows no session id: {text}"
    );
}

#[tokio::test]
async fn an_invalid_principal_is_refused() {
    let layer = builder(memory()).build().expect("valid");
    let probe = axum::Router::new()
        .route(
            "/bad",
            axum::routing::get(|session: Session| async move {
                let results = [
                    session.set_principal("").await,
                    session.set_principal("a".repeat(257)).await,
                    session.set_principal("line\nbreak").await,
                ];
                let refused = results
                    .iter()
                    .all(|r| matches!(r, Err(Error::InvalidArgument(_))));
                format!("{refused} {:?}", session.principal().await.ok().flatten())
            }),
        )
        .layer(layer);
    let mut device = Device::new("laptop");
    let (_, text) = device.send(&probe, "GET", "/bad").await;
    assert_eq!(text, "true None");
    assert_eq!(device.jar.cookie(), None, "nothing stored");
}

/// Through `HashedIds` the store lists ids hashed at rest; the layer still marks the current
/// session and revokes by handle.
#[tokio::test]
async fn hashed_ids_keep_current_and_revocation_right() {
    let store: Arc<dyn Store> =
        Arc::new(HashedIds::new(MemoryStore::new(), &[7; 32]).expect("a 32-byte key"));
    let app = app(layer(store));
    let (mut laptop, mut phone) = (Device::new("laptop"), Device::new("phone"));
    laptop.login(&app, "alice").await;
    phone.login(&app, "alice").await;
    let list = laptop.sessions(&app).await;
    assert_eq!(
        agents(&list),
        (vec!["laptop".into(), "phone".into()], vec!["laptop".into()])
    );
    let (_, revoked) = laptop
        .send(
            &app,
            "POST",
            &format!("/revoke?handle={}", handle_of(&list, "phone")),
        )
        .await;
    assert_eq!(revoked, "true");
    assert_eq!(phone.whoami(&app).await, "anonymous");
    phone.login(&app, "alice").await;
    let (_, count) = phone.send(&app, "POST", "/revoke-others").await;
    assert_eq!(count, "1");
    assert_eq!(laptop.whoami(&app).await, "anonymous");
    assert_eq!(phone.whoami(&app).await, "alice");
}
