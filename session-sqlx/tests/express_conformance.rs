//! The whole conformance suite against `PostgresStore` in connect-pg-simple's layout
//! (`express_compatible`) on a PostgreSQL container: the store rules, app servers with skewed
//! clocks, cleanup of expired rows (on a fresh table) and a paused server. Not the principal
//! rules: connect-pg-simple's table keeps no principal.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;

use session_core::Clock;
use session_sqlx::PostgresStore;
use session_testcontainers::{self as containers, Container};

async fn store_on(container: &Container) -> PostgresStore {
    let store = PostgresStore::connect(container.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e:?}", container.url()))
        .express_compatible();
    store.migrate().await.expect("migrate");
    store
}

async fn setup() -> (PostgresStore, Container) {
    let container = containers::postgres().await;
    (store_on(&container).await, container)
}

/// A second handle on the same table whose app clock is `clock`.
fn with_clock(store: &PostgresStore, clock: Arc<dyn Clock>) -> PostgresStore {
    store.clone().with_clock(clock)
}

session_conformance::store_tests!(setup);
session_conformance::skew_tests!(setup, with_clock);

mod cleanup {
    /// A store on a fresh table of its own: the rules count what cleanup deletes.
    async fn setup() -> (session_sqlx::PostgresStore, super::Container) {
        let (store, server) = super::setup().await;
        let store = store
            .with_table(&super::common::random_table())
            .expect("valid table name");
        store.migrate().await.expect("migrate the fresh table");
        (store, server)
    }

    session_conformance::cleanup_tests!(setup, super::with_clock);
}

/// A paused server: every operation fails within the store's timeout, then works again.
mod outage {
    async fn setup() -> (session_sqlx::PostgresStore, super::Container) {
        let (store, server) = super::setup().await;
        let store = store
            .with_timeout(session_conformance::OUTAGE_TIMEOUT)
            .expect("a valid timeout");
        (store, server)
    }

    session_conformance::outage_tests!(setup);
}
