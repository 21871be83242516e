//! A background task that removes expired records from stores without native expiry.
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn session_core::ExpiredDeletion>) -> session_core::Result<()> {
//! use std::time::Duration;
//! use session_core::cleanup::{self, CleanupConfig};
//!
//! // Every 10 minutes ± 25 %, in batches of 1000 rows; stops when `task` is dropped.
//! let task = cleanup::spawn(store, CleanupConfig::new(Duration::from_secs(600)))?;
//! # drop(task); Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{Error, ExpiredDeletion, Result};

/// How often and how much the cleanup task deletes.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupConfig {
    period: Duration,
    jitter: f64,
    batch_size: u32,
}

impl Default for CleanupConfig {
    /// Every 10 minutes ± 25 %, batches of 1000.
    fn default() -> Self {
        Self::new(Duration::from_secs(600))
    }
}

impl CleanupConfig {
    /// Runs every `period`, ± 25 % jitter, in batches of 1000.
    #[must_use]
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            jitter: 0.25,
            batch_size: crate::store::DEFAULT_BATCH,
        }
    }

    /// The fraction of `period` by which each wait varies at random (0 to 1), so that several
    /// instances of an application do not all clean up at the same moment.
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// How many records one delete statement removes at most.
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.period.is_zero() {
            return Err(Error::invalid_config(
                "cleanup period must be greater than zero",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::invalid_config(
                "cleanup jitter must be between 0 and 1",
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid_config(
                "cleanup batch size must be at least 1",
            ));
        }
        Ok(())
    }

    /// The next wait: `period` scaled by a random factor in `[1 - jitter, 1 + jitter]`.
    fn next_wait(&self) -> Duration {
        let mut b = [0u8; 8];
        let unit = match getrandom::fill(&mut b) {
            Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
            Err(_) => 0.5,
        };
        self.period
            .mul_f64(1.0 - self.jitter + 2.0 * self.jitter * unit)
    }
}

/// The running cleanup task; dropping it (or calling [`CleanupTask::stop`]) stops it.
#[derive(Debug)]
#[must_use = "the cleanup task stops when this handle is dropped"]
pub struct CleanupTask {
    handle: JoinHandle<()>,
}

impl CleanupTask {
    /// Stops the task now.
    pub fn stop(self) {
        // Drop aborts.
    }

    /// Whether the task has stopped.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl Drop for CleanupTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts a task on the current tokio runtime that, after each jittered wait, deletes expired
/// records in batches until a batch comes back short. A failing round is logged (`tracing`, at
/// `warn`) and the task keeps going; it never panics.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a zero period or batch size, a jitter outside 0..=1, or when
/// called outside a tokio runtime.
pub fn spawn<S: ExpiredDeletion + ?Sized>(
    store: Arc<S>,
    config: CleanupConfig,
) -> Result<CleanupTask> {
    config.validate()?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::invalid_config("the cleanup task must be spawned inside a tokio runtime")
    })?;
    let handle = runtime.spawn(async move {
        loop {
            tokio::time::sleep(config.next_wait()).await;
            match run_once(&*store, config.batch_size).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "deleted expired sessions"),
                Err(error) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "deleting expired sessions failed; will retry next round"
                ),
            }
        }
    });
    Ok(CleanupTask { handle })
}

/// One cleanup round: batches of `batch_size` until a batch deletes fewer. Returns the total.
///
/// # Errors
///
/// The first failing batch's error; batches before it stay deleted.
pub async fn run_once<S: ExpiredDeletion + ?Sized>(store: &S, batch_size: u32) -> Result<u64> {
    let mut total = 0;
    loop {
        let n = store.delete_expired_batch(batch_size.max(1)).await?;
        total += n;
        if n < u64::from(batch_size) {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Holds `expired` records; fails the rounds listed in `fail_rounds`.
    struct Fake {
        expired: Mutex<u64>,
        calls: Mutex<Vec<u32>>,
        fail_rounds: Vec<usize>,
    }

    #[async_trait::async_trait]
    impl ExpiredDeletion for Fake {
        async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
            let mut calls = self.calls.lock().expect("lock");
            calls.push(limit);
            if self.fail_rounds.contains(&calls.len()) {
                return Err(Error::backend(
                    "delete expired sessions",
                    std::io::Error::other("injected"),
                ));
            }
            let mut expired = self.expired.lock().expect("lock");
            let n = (*expired).min(u64::from(limit));
            *expired -= n;
            Ok(n)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deletes_in_batches_and_survives_a_failing_round() {
        let store = Arc::new(Fake {
            expired: Mutex::new(25),
            calls: Mutex::new(Vec::new()),
            fail_rounds: vec![1],
        });
        let task = spawn(
            store.clone(),
            CleanupConfig::new(Duration::from_secs(10))
                .with_batch_size(10)
                .with_jitter(0.0),
        )
        .expect("valid config");
        // First round fails on its first batch; the second round deletes 10 + 10 + 5.
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(*store.expired.lock().expect("lock"), 0);
        assert_eq!(
            store.calls.lock().expect("lock").as_slice(),
            &[10, 10, 10, 10]
        );
        assert!(
            !task.is_finished(),
            "the task must keep running after an error"
        );
        task.stop();
    }

    #[tokio::test]
    async fn invalid_config_is_an_error() {
        let store = Arc::new(Fake {
            expired: Mutex::new(0),
            calls: Mutex::new(vec![]),
            fail_rounds: vec![],
        });
        for bad in [
            CleanupConfig::new(Duration::ZERO),
            CleanupConfig::default().with_jitter(1.5),
            CleanupConfig::default().with_batch_size(0),
        ] {
            assert!(matches!(
                spawn(store.clone(), bad),
                Err(Error::InvalidConfig(_))
            ));
        }
    }

    #[test]
    fn jitter_stays_in_range() {
        let c = CleanupConfig::new(Duration::from_secs(100)).with_jitter(0.5);
        for _ in 0..1000 {
            let w = c.next_wait();
            assert!(
                w >= Duration::from_secs(50) && w <= Duration::from_secs(150),
                "{w:?}"
            );
        }
    }
}
