//! The rules of `outage_tests!`: a backend that stops answering makes every operation fail in
//! bounded time, and the store works again once the backend is back.
//!
//! Each takes a store built with [`OUTAGE_TIMEOUT`] and the [`Outage`] switch of its backend.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{BoxFuture, FutureExt, join_all};
use serde_json::json;
use session_core::{Error, Store, now};

use crate::support::*;
use crate::{DynOutage, OUTAGE_SLACK, OUTAGE_TIMEOUT, Outage, RECOVERY_TIME};

/// An operation's outcome, with its value printed, and how long it took (`None`: it did not
/// return within the limit).
type Outcome = (
    &'static str,
    Option<Result<String, Error>>,
    std::time::Duration,
);

async fn bounded(
    name: &'static str,
    limit: std::time::Duration,
    op: BoxFuture<'_, Result<String, Error>>,
) -> Outcome {
    let start = Instant::now();
    let result = tokio::time::timeout(limit, op).await.ok();
    (name, result, start.elapsed())
}

/// While the backend is paused, `create`, `load`, `save`, `touch` and `delete` each fail with a
/// transient error (`Error::is_transient`) within [`OUTAGE_TIMEOUT`] plus [`OUTAGE_SLACK`]; none
/// returns `Ok`.
pub async fn paused_backend_fails_every_operation_in_time(
    store: Arc<dyn Store>,
    outage: &impl Outage,
) {
    paused_backend_fails_every_operation_in_time_dyn(store, outage).await;
}

// The rules' bodies take the switch as a trait object: generic bodies awaiting `Outage`'s
// futures trip the compiler's check that the rule's own future is `Send`.
async fn paused_backend_fails_every_operation_in_time_dyn(
    store: Arc<dyn Store>,
    outage: &dyn DynOutage,
) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;
    let fresh = sample(HOUR);
    let mut changed = record.clone();
    insert(&mut changed.data, "user", &json!("changed"));
    let limit = OUTAGE_TIMEOUT + OUTAGE_SLACK;
    let store = &*store;

    outage.pause_boxed().await;
    // Concurrently, so that the rule takes one time limit rather than five.
    let outcomes = join_all([
        bounded(
            "create",
            limit,
            store
                .create(&fresh)
                .map(|r| r.map(|()| "()".into()))
                .boxed(),
        ),
        bounded(
            "load",
            limit,
            store
                .load(&record.id)
                .map(|r| r.map(|v| format!("{v:?}")))
                .boxed(),
        ),
        bounded(
            "save",
            limit,
            store
                .save(&changed)
                .map(|r| r.map(|()| "()".into()))
                .boxed(),
        ),
        bounded(
            "touch",
            limit,
            store
                .touch(&record.id, now() + HOUR)
                .map(|r| r.map(|v| format!("{v:?}")))
                .boxed(),
        ),
        bounded(
            "delete",
            limit,
            store
                .delete(&record.id)
                .map(|r| r.map(|()| "()".into()))
                .boxed(),
        ),
    ])
    .await;
    outage.resume_boxed().await;

    let broken: Vec<String> = outcomes
        .iter()
        .filter_map(|(name, result, took)| match result {
            None => Some(format!("{name} did not return within {limit:?}")),
            Some(Ok(value)) => Some(format!(
                "{name} returned Ok({value}) after {took:?} while the backend was paused"
            )),
            Some(Err(e)) if !e.is_transient() => Some(format!(
                "{name} failed after {took:?} with {e} ({e:?}), which is not transient"
            )),
            Some(Err(_)) => None,
        })
        .collect();
    assert!(
        broken.is_empty(),
        "with the backend paused and a store timeout of {OUTAGE_TIMEOUT:?}, every operation must \
         fail with a transient error within {limit:?}: {broken:#?}"
    );
}

/// After the backend was paused (and an operation failed) and is resumed, the same store handle
/// works again within [`RECOVERY_TIME`]: load, save, touch, create and delete all succeed.
pub async fn backend_recovers_after_outage(store: Arc<dyn Store>, outage: &impl Outage) {
    backend_recovers_after_outage_dyn(store, outage).await;
}

async fn backend_recovers_after_outage_dyn(store: Arc<dyn Store>, outage: &dyn DynOutage) {
    let record = sample(HOUR);
    create_ok(&*store, &record).await;

    outage.pause_boxed().await;
    // One operation meets the outage, so the store has a failed request, and perhaps a broken
    // connection, behind it. Its outcome is the other rule's business.
    let _ = tokio::time::timeout(OUTAGE_TIMEOUT + OUTAGE_SLACK, store.load(&record.id)).await;
    outage.resume_boxed().await;

    let resumed = Instant::now();
    loop {
        let attempt = tokio::time::timeout(OUTAGE_TIMEOUT + OUTAGE_SLACK, store.load(&record.id));
        let last = match attempt.await {
            Ok(Ok(Some(loaded))) => {
                assert_same(&loaded, &record, "after the outage");
                break;
            }
            Ok(other) => format!("{other:?}"),
            Err(_) => "no answer".to_owned(),
        };
        if resumed.elapsed() > RECOVERY_TIME {
            panic!(
                "the store still fails {:?} after the backend was resumed (last load: {last})",
                resumed.elapsed()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let mut changed = record.clone();
    insert(&mut changed.data, "user", &json!("after the outage"));
    save_ok(&*store, &changed).await;
    match store.touch(&record.id, now() + HOUR + HOUR).await {
        Ok(true) => {}
        other => panic!("touch after the outage returned {other:?}, expected Ok(true)"),
    }
    let fresh = sample(HOUR);
    create_ok(&*store, &fresh).await;
    delete_ok(&*store, &fresh.id).await;
    load_none(&*store, &fresh.id, "it was deleted after the outage").await;
}
