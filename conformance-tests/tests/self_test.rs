//! Every rule can fail: the reference store passes every rule of every macro, and each planted
//! bug is caught by the rule named for it (and fails exactly the other rules listed for it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{Bug, ReferenceStore};
use session_conformance::{
    CLEANUP_RULES, CleanupStore, Hosts, OUTAGE_RULES, OUTAGE_TIMEOUT, Outaged, PRINCIPAL_RULES,
    PrincipalStore, RULES, SKEW, SKEW_RULES,
};
use session_core::Store;
use session_core::clock::OffsetClock;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How many planted bugs the self-test runs at once.
const CONCURRENT_BUGS: usize = 8;

/// Three handles on one fresh backend, with exact, fast and slow app clocks.
fn hosts(bug: Option<Bug>) -> (ReferenceStore, ReferenceStore, ReferenceStore) {
    let store = ReferenceStore::new(bug);
    let fast = store.with_clock(Arc::new(OffsetClock::new(SKEW)));
    let slow = store.with_clock(Arc::new(OffsetClock::new(-SKEW)));
    (store, fast, slow)
}

fn message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Runs every rule of every macro, concurrently, each against a fresh store with `bug`; returns
/// the rules that failed, with their messages.
async fn failures(bug: Option<Bug>) -> BTreeMap<&'static str, String> {
    let mut runs = JoinSet::new();
    for rule in RULES {
        let store: Arc<dyn Store> = Arc::new(ReferenceStore::new(bug));
        runs.spawn(async move { (rule.name, tokio::spawn((rule.check)(store)).await) });
    }
    for rule in SKEW_RULES {
        let (store, fast, slow) = hosts(bug);
        let hosts: Hosts = Hosts {
            store: Arc::new(store),
            fast: Arc::new(fast),
            slow: Arc::new(slow),
        };
        runs.spawn(async move { (rule.name, tokio::spawn((rule.check)(hosts)).await) });
    }
    for rule in CLEANUP_RULES {
        let (store, fast, slow) = hosts(bug);
        let hosts: Hosts<dyn CleanupStore> = Hosts {
            store: Arc::new(store),
            fast: Arc::new(fast),
            slow: Arc::new(slow),
        };
        runs.spawn(async move { (rule.name, tokio::spawn((rule.check)(hosts)).await) });
    }
    for rule in OUTAGE_RULES {
        let store = ReferenceStore::new(bug).with_timeout(OUTAGE_TIMEOUT);
        let case = Outaged {
            outage: Box::new(store.switch()),
            store: Arc::new(store),
        };
        runs.spawn(async move { (rule.name, tokio::spawn((rule.check)(case)).await) });
    }
    for rule in PRINCIPAL_RULES {
        let store: Arc<dyn PrincipalStore> = Arc::new(ReferenceStore::new(bug));
        runs.spawn(async move { (rule.name, tokio::spawn((rule.check)(store)).await) });
    }
    let mut failed = BTreeMap::new();
    while let Some(run) = runs.join_next().await {
        let (name, outcome) = run.expect("the task that runs a rule does not panic");
        if let Err(e) = outcome {
            let why = if e.is_panic() {
                message(e.into_panic())
            } else {
                e.to_string()
            };
            failed.insert(name, why);
        }
    }
    failed
}

fn all_rule_names() -> Vec<&'static str> {
    RULES
        .iter()
        .map(|r| r.name)
        .chain(SKEW_RULES.iter().map(|r| r.name))
        .chain(CLEANUP_RULES.iter().map(|r| r.name))
        .chain(OUTAGE_RULES.iter().map(|r| r.name))
        .chain(PRINCIPAL_RULES.iter().map(|r| r.name))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_store_fails_no_rule() {
    let failed = failures(None).await;
    assert!(failed.is_empty(), "the correct store failed: {failed:#?}");
}

/// The rules of `principal_tests!` draw their own principals, so they can share a backend: all
/// of them at once, on one store, pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principal_rules_share_one_backend() {
    let store: Arc<dyn PrincipalStore> = Arc::new(ReferenceStore::default());
    let mut runs = JoinSet::new();
    for rule in PRINCIPAL_RULES {
        let store = store.clone();
        runs.spawn(async move { (rule.name, tokio::spawn((rule.check)(store)).await) });
    }
    let mut failed = BTreeMap::new();
    while let Some(run) = runs.join_next().await {
        let (name, outcome) = run.expect("the task that runs a rule does not panic");
        if let Err(e) = outcome {
            failed.insert(name, message(e.into_panic()));
        }
    }
    assert!(
        failed.is_empty(),
        "rules sharing one store failed: {failed:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bug_fails_its_rule_and_exactly_the_rules_listed_for_it() {
    // A bounded number of bugs at a time: all of them at once starve the runtime long enough
    // to upset the rules that measure real time (a 1.5 s expiry, a 1 s timeout).
    let slots = Arc::new(Semaphore::new(CONCURRENT_BUGS));
    let mut runs = JoinSet::new();
    // Last first: the outage bugs, whose rules wait longest, start at once.
    for &bug in Bug::ALL.iter().rev() {
        let slots = slots.clone();
        runs.spawn(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (bug, failures(Some(bug)).await)
        });
    }
    let mut wrong = Vec::new();
    while let Some(run) = runs.join_next().await {
        let (bug, failed) = run.expect("a bug's run does not panic");
        let expected: BTreeSet<&str> = std::iter::once(bug.rule())
            .chain(bug.also().iter().copied())
            .collect();
        let got: BTreeSet<&str> = failed.keys().copied().collect();
        if got != expected {
            wrong.push(format!(
                "{bug:?} (named for {}):\n  missing {:?}\n  extra {:?}\n  messages: {failed:#?}",
                bug.rule(),
                expected.difference(&got).collect::<Vec<_>>(),
                got.difference(&expected).collect::<Vec<_>>(),
            ));
        }
    }
    wrong.sort();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn every_rule_has_a_planted_bug() {
    let names = all_rule_names();
    let named: BTreeSet<&str> = Bug::ALL.iter().map(|b| b.rule()).collect();
    let without: Vec<_> = names.iter().filter(|n| !named.contains(*n)).collect();
    assert!(
        without.is_empty(),
        "rules no planted bug proves: {without:?}"
    );
    for bug in Bug::ALL {
        for rule in std::iter::once(bug.rule()).chain(bug.also().iter().copied()) {
            assert!(
                names.contains(&rule),
                "{bug:?} names {rule}, which is not a rule"
            );
        }
    }
}

#[test]
fn rule_names_are_unique() {
    let names = all_rule_names();
    let unique: BTreeSet<_> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "duplicate rule names in {names:?}"
    );
}
