//! The contenders: our stores, the raw drivers (the floor), tower-sessions' stores.

pub(crate) mod memory;
pub(crate) mod mongo;
pub(crate) mod ours;
pub(crate) mod redis;
pub(crate) mod sql;
pub(crate) mod ts;
#[cfg(feature = "tower-sessions-stores")]
pub(crate) mod ts_net;

use std::future::Future;

use tokio::task::JoinSet;

use crate::harness::Res;

/// Runs `make(i)` for every `i < n`, at most `parallel` at a time, and fails on the first error.
pub(crate) async fn fill<F, Fut>(n: usize, parallel: usize, make: F) -> Res
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Res> + Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..n {
        if set.len() >= parallel
            && let Some(done) = set.join_next().await
        {
            done??;
        }
        set.spawn(make(i));
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(())
}

/// The expiry every cycle that moves it uses: an hour from now.
pub(crate) fn an_hour_from_now() -> time::OffsetDateTime {
    session_core::now() + time::Duration::HOUR
}
