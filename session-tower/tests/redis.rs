//! No lost updates, logins racing other requests, and per-session lifetimes against a real
//! Redis server in a container (RedisStore's versioned save is a server-side script, so this
//! exercises the conflict path across a network round trip), and the sessions of a user over
//! its per-principal index.

mod common;

use std::sync::Arc;

use session_core::Store;
use session_redis::RedisStore;

async fn redis() -> (Arc<dyn Store>, session_testcontainers::Container) {
    let container = session_testcontainers::redis().await;
    let store = RedisStore::connect(container.url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Redis at {}: {e:?}", container.url()));
    (Arc::new(store), container)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_different_keys_both_survive() {
    let (store, _container) = redis().await;
    common::concurrent::different_keys_both_survive(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_same_key_last_save_wins() {
    let (store, _container) = redis().await;
    common::concurrent::same_key_last_save_wins(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_change_to_destroyed_session_starts_new_one() {
    let (store, _container) = redis().await;
    common::concurrent::change_to_vanished_session_starts_new_one(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_writers_lose_nothing() {
    let (store, _container) = redis().await;
    common::concurrent::many_concurrent_writers_lose_nothing(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_hundred_concurrent_increments_end_at_100() {
    let (store, _container) = redis().await;
    common::concurrent::hundred_concurrent_increments_end_at_100(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_login_with_parallel_requests_ends_logged_in() {
    let (store, _container) = redis().await;
    common::concurrent::login_with_parallel_requests_ends_logged_in(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_regenerate_keeps_a_concurrent_save() {
    let (store, _container) = redis().await;
    common::concurrent::regenerate_keeps_a_concurrent_save(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_remember_me_lifetime_is_stored_with_the_session() {
    let (store, _container) = redis().await;
    common::concurrent::remember_me_lifetime_is_stored_with_the_session(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_listing_shows_only_live_sessions_of_the_principal() {
    let (store, _container) = redis().await;
    common::principals::listing_shows_only_live_sessions_of_the_principal(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_revoke_one_from_another_device_makes_it_anonymous() {
    let (store, _container) = redis().await;
    common::principals::revoke_one_from_another_device(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_revoke_others_keeps_the_current() {
    let (store, _container) = redis().await;
    common::principals::revoke_others_keeps_the_current(store).await;
}
