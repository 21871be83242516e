//! The conformance suite through `HashedIds`: the store rules and the principal rules, over
//! `MemoryStore` and over Redis in a container.

use session_hashed::HashedIds;

const KEY: &[u8; 32] = b"an example key of 32 bytes, test";

/// Over the in-process memory store.
mod memory {
    use super::*;
    use session_memory::MemoryStore;

    async fn setup() -> (HashedIds<MemoryStore>, ()) {
        let store = HashedIds::new(MemoryStore::new(), KEY).expect("a 32-byte key");
        (store, ())
    }

    session_conformance::store_tests!(setup);
    session_conformance::principal_tests!(setup);
}

/// Over a standalone Redis.
mod redis {
    use super::*;
    use session_redis::RedisStore;
    use session_testcontainers::{self as containers, Container};

    async fn setup() -> (HashedIds<RedisStore>, Container) {
        let container = containers::redis().await;
        let store = match RedisStore::connect(container.url()).await {
            Ok(store) => store,
            Err(e) => panic!(
                "cannot connect to the Redis container at {}: {e} ({e:?})",
                container.url()
            ),
        };
        (
            HashedIds::new(store, KEY).expect("a 32-byte key"),
            container,
        )
    }

    session_conformance::store_tests!(setup);
    session_conformance::principal_tests!(setup);
}
