//! The whole conformance suite against `MongoStore` in connect-mongo's layout
//! (`express_compatible`) on a MongoDB container: the store rules, app servers with skewed
//! clocks, and a paused server. Not the principal rules: connect-mongo's documents keep no
//! principal (`tests/principals.rs` checks that this layout says so).

use std::sync::Arc;

use session_core::Clock;
use session_mongo::MongoStore;
use session_testcontainers::{self as containers, Container};

async fn store_on(container: &Container) -> MongoStore {
    let store = MongoStore::connect(container.url())
        .await
        .unwrap_or_else(|e| panic!("MongoStore::connect({}) failed: {e:?}", container.url()))
        .express_compatible();
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
