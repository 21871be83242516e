//! The whole conformance suite against `MemoryStore`.

async fn setup() -> (session_memory::MemoryStore, ()) {
    (session_memory::MemoryStore::new(), ())
}

session_conformance::store_tests!(setup);
