//! The suite catches stores that break the contract: each broken store fails the rules that
//! describe what it breaks, and passes the others.

mod common;

use std::sync::Arc;

use common::{Faults, ReferenceStore};
use session_conformance::RULES;
use session_core::Store;

/// Runs every rule against a fresh store with `faults`; returns the names of the rules that failed.
async fn failing_rules(faults: Faults) -> Vec<&'static str> {
    let mut failed = Vec::new();
    for rule in RULES {
        let store: Arc<dyn Store> = Arc::new(ReferenceStore::with_faults(faults));
        if tokio::spawn((rule.check)(store)).await.is_err() {
            failed.push(rule.name);
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_store_fails_no_rule() {
    assert_eq!(failing_rules(Faults::default()).await, Vec::<&str>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_overwrites_on_create_fails_the_create_rules() {
    let failed = failing_rules(Faults {
        create_overwrites: true,
        ..Faults::default()
    })
    .await;
    assert_eq!(
        failed,
        [
            "create_existing_live_id_fails",
            "concurrent_creates_exactly_one_wins"
        ],
        "rules failed by a store whose create overwrites"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_versions_fails_the_save_rules() {
    let failed = failing_rules(Faults {
        save_ignores_version: true,
        ..Faults::default()
    })
    .await;
    assert_eq!(
        failed,
        [
            "save_stale_version_conflicts",
            "concurrent_saves_of_one_version_exactly_one_wins"
        ],
        "rules failed by a store whose save ignores versions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_returns_expired_records_fails_the_expiry_rules() {
    let failed = failing_rules(Faults {
        load_returns_expired: true,
        ..Faults::default()
    })
    .await;
    for rule in [
        "load_expired_record_is_none",
        "touch_into_past_makes_record_unloadable",
        "expires_in_real_time",
    ] {
        assert!(
            failed.contains(&rule),
            "{rule} should fail; failed: {failed:?}"
        );
    }
}
