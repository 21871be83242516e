//! The cache tier over Redis in a container as the durable store: the conformance suite, and
//! the staleness bound across two app servers, each with its own connection and cache.

mod common;

use session_memory::CachedStore;
use session_redis::RedisStore;
use session_testcontainers::{self as containers, Container};

async fn connect(container: &Container) -> RedisStore {
    match RedisStore::connect(container.url()).await {
        Ok(store) => store,
        Err(e) => panic!(
            "cannot connect to the Redis container at {}: {e} ({e:?})",
            container.url()
        ),
    }
}

async fn setup() -> (CachedStore<RedisStore>, Container) {
    let container = containers::redis().await;
    (CachedStore::new(connect(&container).await), container)
}

session_conformance::store_tests!(setup);
session_conformance::principal_tests!(setup);

/// Two app servers, each with its own connection and cache tier, over one Redis.
async fn two_servers() -> (CachedStore<RedisStore>, CachedStore<RedisStore>, Container) {
    let container = containers::redis().await;
    let tier = |store: RedisStore| {
        CachedStore::new(store)
            .with_max_staleness(common::BOUND)
            .expect("a non-zero bound")
    };
    let a = tier(connect(&container).await);
    let b = tier(connect(&container).await);
    (a, b, container)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_seen_everywhere_within_the_bound() {
    let (a, b, _container) = two_servers().await;
    common::delete_is_seen_everywhere_within_the_bound(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_seen_everywhere_within_the_bound() {
    let (a, b, _container) = two_servers().await;
    common::revocation_is_seen_everywhere_within_the_bound(&a, &b).await;
}

/// Another app server on the same Redis, with its own cache tier, whose clock is `clock`.
fn with_clock(
    store: &CachedStore<RedisStore>,
    clock: std::sync::Arc<dyn session_core::Clock>,
) -> CachedStore<RedisStore> {
    CachedStore::new(store.inner().clone().with_clock(clock.clone())).with_clock(clock)
}

session_conformance::skew_tests!(setup, with_clock);
