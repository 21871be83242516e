//! Faults under load against a real server: the harness notices a crash, counts the writes a
//! Redis without AOF loses to it, and finds none lost by a Redis with `appendfsync always`.
//! Needs a running Docker (see `scripts/test.sh`).

use std::time::Duration;

use session_reliability::backend::{Backend, Fault};
use session_reliability::checks::{self, RECOVERY_GOAL};
use session_reliability::faults::{self, FaultPlan};
use session_reliability::report::{FaultFigures, Report};

const PLAN: FaultPlan = FaultPlan {
    clients: 8,
    warmup: Duration::from_secs(1),
    outage: Duration::from_secs(1),
    tail: Duration::from_millis(500),
    give_up: Duration::from_secs(10),
};

async fn kill(backend: Backend) -> (FaultFigures, Vec<String>) {
    checks::count_panics();
    let running = backend.start().await.expect("the backend starts");
    let figures = faults::run(&running, Fault::Kill, PLAN)
        .await
        .expect("the fault run completes");
    let violations = checks::violations(&Report {
        faults: vec![figures.clone()],
        ..Report::default()
    });
    (figures, violations)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_of_redis_without_aof_loses_acknowledged_writes_and_they_are_counted() {
    let (figures, violations) = kill(Backend::Redis).await;
    assert!(
        figures.failed_during > 0,
        "the crash was noticed: {figures:?}"
    );
    assert!(
        figures.tally.lost > 0,
        "the sessions written since the start are gone: {figures:?}"
    );
    assert_eq!(
        (figures.tally.leaks, figures.tally.hung, figures.panics),
        (0, 0, 0),
        "{figures:?}"
    );
    assert!(!figures.durable);
    assert!(
        violations.iter().all(|v| !v.contains("lost")),
        "losses of a backend that is not durable are reported, not failed: {violations:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_of_redis_with_aof_fsync_always_loses_nothing() {
    let (figures, violations) = kill(Backend::RedisAof).await;
    assert!(
        figures.failed_during > 0,
        "the crash was noticed: {figures:?}"
    );
    assert_eq!(figures.tally.lost, 0, "{figures:?}");
    assert!(
        figures.all_back.is_some_and(|t| t <= RECOVERY_GOAL),
        "every client served again within the goal: {figures:?}"
    );
    assert_eq!(violations, Vec::<String>::new());
}
