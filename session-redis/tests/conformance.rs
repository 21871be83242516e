//! The conformance suite against a standalone Redis in a container: every store rule with the
//! default MessagePack codec and again with JSON, the clock-skew rules, the sessions of a
//! principal and the outage rules.

use std::sync::Arc;

use session_core::{Clock, Json};
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

async fn setup() -> (RedisStore, Container) {
    let container = containers::redis().await;
    (connect(&container).await, container)
}

/// Another app server on the same Redis, whose clock is `clock`.
fn with_clock(store: &RedisStore, clock: Arc<dyn Clock>) -> RedisStore {
    store.clone().with_clock(clock)
}

session_conformance::store_tests!(setup);
session_conformance::skew_tests!(setup, with_clock);
session_conformance::principal_tests!(setup);

/// The store rules once more with the JSON codec.
mod json {
    use super::*;

    async fn setup() -> (RedisStore, Container) {
        let container = containers::redis().await;
        (connect(&container).await.with_codec(Json), container)
    }

    session_conformance::store_tests!(setup);
}

/// The outage rules: a paused Redis fails every operation within the store's timeout, and the
/// same store works again once it is unpaused.
mod outage {
    use super::*;

    async fn setup() -> (RedisStore, Container) {
        let container = containers::redis().await;
        let store = connect(&container)
            .await
            .with_timeout(session_conformance::OUTAGE_TIMEOUT)
            .expect("a non-zero timeout");
        (store, container)
    }

    session_conformance::outage_tests!(setup);
}
