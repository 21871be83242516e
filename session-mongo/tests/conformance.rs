//! The whole conformance suite against `MongoStore` on a MongoDB container (the image named by
//! `TC_IMAGE_MONGO`, by default the official `mongo`).

use session_mongo::MongoStore;
use session_testcontainers::{self as containers, Container};

async fn setup() -> (MongoStore, Container) {
    let container = containers::mongo().await;
    let store = MongoStore::connect(container.url())
        .await
        .unwrap_or_else(|e| panic!("MongoStore::connect({}) failed: {e:?}", container.url()));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate failed: {e:?}"));
    (store, container)
}

session_conformance::store_tests!(setup);
