//! The whole conformance suite against a standalone Redis in a container.

use session_redis::RedisStore;
use session_testcontainers::{self as containers, Container};

async fn setup() -> (RedisStore, Container) {
    let container = containers::redis().await;
    let store = match RedisStore::new(container.url()).await {
        Ok(store) => store,
        Err(e) => panic!(
            "cannot connect to the Redis container at {}: {e} ({e:?})",
            container.url()
        ),
    };
    (store, container)
}

session_conformance::store_tests!(setup);
