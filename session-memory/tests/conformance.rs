//! The whole conformance suite against `MemoryStore`: the store rules and the principal rules.

async fn setup() -> (session_memory::MemoryStore, ()) {
    (session_memory::MemoryStore::new(), ())
}

session_conformance::store_tests!(setup);
session_conformance::principal_tests!(setup);
