//! The rules of `skew_tests!`: app servers whose clocks are wrong by [`SKEW`](crate::SKEW)
//! agree with the backend on which sessions are live, because the backend's clock decides.
//!
//! Each takes [`Hosts`]: three handles on one backend, with exact, fast and slow app clocks.
//! "Live" records expire five minutes from now (by the test host's clock, which a backend on the
//! same machine or network shares to within seconds); "expired" records had a real expiry of
//! 1.5 seconds that the rule waited out.

use serde_json::json;
use session_core::{Error, Record, Store, now};
use time::Duration;

use crate::Hosts;
use crate::support::*;

/// How long the "live" records of these rules have left: well inside [`SKEW`](crate::SKEW), so
/// the fast host's clock calls them expired.
const LIVE_FOR: Duration = Duration::minutes(5);

/// A record that expires [`LIVE_FOR`] from now, created through the exact host.
async fn live_record(store: &dyn Store) -> Record {
    let record = sample(LIVE_FOR);
    create_ok(store, &record).await;
    record
}

/// A record that has expired by the backend's clock, created through the exact host.
async fn expired_record(store: &dyn Store) -> Record {
    let record = sample(SHORT_TTL);
    create_and_let_expire(store, std::slice::from_ref(&record)).await;
    record
}

/// A host whose clock runs fast loads a session that is live by the backend's clock.
pub async fn fast_host_loads_live_sessions(hosts: Hosts) {
    let record = live_record(&*hosts.store).await;
    match hosts.fast.load(&record.id).await {
        Ok(Some(loaded)) => assert_same(&loaded, &record, "loaded by the fast host"),
        other => panic!(
            "a host whose clock is 10 minutes fast loaded a session live for 5 more minutes as {other:?}, expected the record"
        ),
    }
}

/// A host whose clock runs fast can touch and save a session that is live by the backend's
/// clock.
pub async fn fast_host_touches_and_saves_live_sessions(hosts: Hosts) {
    let record = live_record(&*hosts.store).await;
    let later = now() + LIVE_FOR + Duration::minutes(1);
    match hosts.fast.touch(&record.id, later).await {
        Ok(true) => {}
        other => panic!(
            "the fast host's touch of a session live for 5 more minutes returned {other:?}, expected Ok(true)"
        ),
    }
    let mut changed = record.clone();
    insert(&mut changed.data, "user", &json!("saved by the fast host"));
    changed.expires_at = later;
    if let Err(e) = hosts.fast.save(&changed).await {
        panic!(
            "the fast host's save of a session live for 5 more minutes failed: {e} ({e:?}), expected Ok"
        );
    }
    let mut expected = changed.clone();
    expected.version = record.version + 1;
    assert_same(
        &load_some(&*hosts.store, &record.id).await,
        &expected,
        "after the fast host's touch and save",
    );
}

/// A host whose clock runs fast cannot `create` over a session that is live by the backend's
/// clock: `AlreadyExists`, and the session is untouched.
pub async fn fast_host_cannot_create_over_live_sessions(hosts: Hosts) {
    let record = live_record(&*hosts.store).await;
    let mut intruder = sample_with_id(&record.id, crate::support::HOUR);
    insert(&mut intruder.data, "user", &json!("mallory"));
    match hosts.fast.create(&intruder).await {
        Err(Error::AlreadyExists) => {}
        other => panic!(
            "the fast host's create over a session live for 5 more minutes returned {other:?}, expected Err(AlreadyExists)"
        ),
    }
    assert_same(
        &load_some(&*hosts.store, &record.id).await,
        &record,
        "the live session after the fast host's create",
    );
}

/// A host whose clock runs slow never loads a session that has expired by the backend's clock.
pub async fn slow_host_never_loads_expired_sessions(hosts: Hosts) {
    let record = expired_record(&*hosts.store).await;
    load_none(
        &*hosts.slow,
        &record.id,
        "it expired by the backend's clock (the slow host's clock says it has 10 minutes left)",
    )
    .await;
}

/// A host whose clock runs slow never touches or saves a session that has expired by the
/// backend's clock: `touch` is `Ok(false)`, `save` is `NotFound`, and the session stays gone.
pub async fn slow_host_never_touches_or_saves_expired_sessions(hosts: Hosts) {
    let record = expired_record(&*hosts.store).await;
    match hosts
        .slow
        .touch(&record.id, now() + crate::support::HOUR)
        .await
    {
        Ok(false) => {}
        other => panic!(
            "the slow host's touch of an expired session returned {other:?}, expected Ok(false)"
        ),
    }
    let mut changed = record.clone();
    changed.expires_at = now() + crate::support::HOUR;
    match hosts.slow.save(&changed).await {
        Err(Error::NotFound) => {}
        other => panic!(
            "the slow host's save of an expired session returned {other:?}, expected Err(NotFound)"
        ),
    }
    load_none(
        &*hosts.store,
        &record.id,
        "it expired, and the slow host's touch and save must not revive it",
    )
    .await;
}

/// A host whose clock runs slow can `create` over a session that has expired by the backend's
/// clock.
pub async fn slow_host_creates_over_expired_sessions(hosts: Hosts) {
    let record = expired_record(&*hosts.store).await;
    let mut new = sample_with_id(&record.id, crate::support::HOUR);
    insert(&mut new.data, "user", &json!("grace"));
    if let Err(e) = hosts.slow.create(&new).await {
        panic!("the slow host's create over an expired session failed: {e} ({e:?}), expected Ok");
    }
    assert_same(
        &load_some(&*hosts.store, &record.id).await,
        &new,
        "the record the slow host created over an expired one",
    );
}
