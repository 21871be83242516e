//! The whole conformance suite against `MongoStore` on a MongoDB container (the image named by
//! `TC_IMAGE_MONGO`, by default the official `mongo`): the store and principal rules with each
//! built-in codec, app servers with skewed clocks, and a paused server.

use std::sync::Arc;

use session_core::{Clock, Json};
use session_mongo::MongoStore;
use session_testcontainers::{self as containers, Container};

async fn store_on(container: &Container) -> MongoStore {
    let store = MongoStore::connect(container.url())
        .await
        .unwrap_or_else(|e| panic!("MongoStore::connect({}) failed: {e:?}", container.url()));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate failed: {e:?}"));
    store
}

async fn setup() -> (MongoStore, Container) {
    let container = containers::mongo().await;
    (store_on(&container).await, container)
}

fn with_clock(store: &MongoStore, clock: Arc<dyn Clock>) -> MongoStore {
    store.clone().with_clock(clock)
}

session_conformance::store_tests!(setup);
session_conformance::skew_tests!(setup, with_clock);
session_conformance::principal_tests!(setup);

/// The store and principal rules again with data encoded as JSON.
mod json {
    use super::*;

    async fn setup() -> (MongoStore, Container) {
        let container = containers::mongo().await;
        (store_on(&container).await.with_codec(Json), container)
    }

    session_conformance::store_tests!(setup);
    session_conformance::principal_tests!(setup);
}

/// A paused server: every operation fails within the store's timeout, then works again.
mod outage {
    use super::*;

    async fn setup() -> (MongoStore, Container) {
        let container = containers::mongo().await;
        let store = store_on(&container)
            .await
            .with_timeout(session_conformance::OUTAGE_TIMEOUT)
            .expect("a positive timeout");
        (store, container)
    }

    session_conformance::outage_tests!(setup);
}
