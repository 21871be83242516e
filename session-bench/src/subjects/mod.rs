//! The contenders: our stores, the raw drivers (the floor), tower-sessions' stores.

pub(crate) mod cache;
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

/// Stores session `i` under `keys[i]` with `put(i, key)`, at most `parallel` at a time, and
/// hands the keys back; the first error stops it.
pub(crate) async fn fill<K, F, Fut>(keys: Vec<K>, parallel: usize, put: F) -> Res<Vec<K>>
where
    K: Clone,
    F: Fn(usize, K) -> Fut,
    Fut: Future<Output = Res> + Send + 'static,
{
    let mut set = JoinSet::new();
    for (i, key) in keys.iter().enumerate() {
        if set.len() >= parallel
            && let Some(done) = set.join_next().await
        {
            done??;
        }
        set.spawn(put(i, key.clone()));
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(keys)
}

/// The expiry every cycle that moves it uses: an hour from now.
pub(crate) fn an_hour_from_now() -> time::OffsetDateTime {
    session_core::now() + time::Duration::HOUR
}

/// `an_hour_from_now` in Unix milliseconds, as the floors store it.
pub(crate) fn an_hour_from_now_millis() -> i64 {
    session_core::clock::unix_millis(an_hour_from_now())
}
