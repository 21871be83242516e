//! The suite, through the public macro, against a correct reference store: every rule passes.

mod common;

async fn setup() -> (common::ReferenceStore, ()) {
    (common::ReferenceStore::default(), ())
}

session_conformance::store_tests!(setup);

#[test]
fn the_rule_table_lists_every_rule_once() {
    let mut names: Vec<_> = session_conformance::RULES.iter().map(|r| r.name).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate rule names");
    assert!(count >= 20, "only {count} rules");
}
