//! The Redis Cluster connection: redis-rs's `ClusterConnection`, replaced by a fresh one from
//! the seed nodes when every operation has been failing for a while.
//!
//! Why: after a master fails and its replica takes over, the driver's connection usually
//! follows (it refreshes its slot map on `MOVED` and on connection errors), but now and then
//! it does not and every later operation fails, although the cluster is healthy and a new
//! connection to it works at once (see `RELIABILITY.md`, the Redis Cluster failover). The
//! store cannot repair the driver's internal state, but it can stop using it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisResult, ServerErrorKind, Value};
use session_core::{DEFAULT_TIMEOUT, timed};

/// Consecutive failed operations (connection errors, cluster redirections that did not
/// resolve, operations cut by the store's timeout) after which the connection is rebuilt. Any
/// success resets the count, so a cluster that serves some operations keeps its connection.
pub(crate) const REBUILD_AFTER_FAILURES: u32 = 16;

/// The least time between two rebuilds: a connection being replaced gets this long to prove
/// itself, and a cluster that is really down is not flooded with connection attempts.
pub(crate) const REBUILD_INTERVAL: Duration = DEFAULT_TIMEOUT;

const REBUILD: &str = "rebuild the Redis Cluster connection";

/// A shared Cluster connection; clones share it and its failure count.
#[derive(Clone)]
pub(crate) struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    /// The client the connection was made with; `None` for a connection the application
    /// built ([`crate::RedisStore::new_cluster`]), which the store cannot rebuild.
    client: Option<ClusterClient>,
    connection: RwLock<ClusterConnection>,
    health: Health,
    /// Set while a rebuild runs, so only one does.
    rebuilding: AtomicBool,
}

impl Cluster {
    /// Connects through `client` and keeps it for rebuilds.
    pub(crate) fn rebuildable(client: ClusterClient, connection: ClusterConnection) -> Self {
        Self::with(Some(client), connection)
    }

    /// Wraps a connection the store did not make; it is never rebuilt.
    pub(crate) fn fixed(connection: ClusterConnection) -> Self {
        Self::with(None, connection)
    }

    fn with(client: Option<ClusterClient>, connection: ClusterConnection) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                connection: RwLock::new(connection),
                health: Health::default(),
                rebuilding: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `cmd` on the current connection and counts the outcome; a reply that is an error
    /// stays a `Value` (the caller extracts it).
    pub(crate) async fn query(&self, cmd: &Cmd) -> RedisResult<Value> {
        let mut connection = self.connection();
        let mut attempt = self.attempt();
        let reply = connection.req_packed_command(cmd).await;
        attempt.settle(match &reply {
            Ok(value) => is_routing_failure_reply(value),
            Err(e) => is_routing_failure(e),
        });
        reply
    }

    /// Sends the commands of `pipeline` (all on one slot) together and counts the outcome as
    /// [`query`](Self::query) does: a failure if any reply says the node was not reached.
    pub(crate) async fn pipeline(&self, pipeline: &Pipeline) -> RedisResult<Vec<Value>> {
        let mut connection = self.connection();
        let mut attempt = self.attempt();
        let replies = connection
            .req_packed_commands(pipeline, 0, pipeline.len())
            .await;
        attempt.settle(match &replies {
            Ok(values) => values.iter().any(is_routing_failure_reply),
            Err(e) => is_routing_failure(e),
        });
        replies
    }

    /// A clone of the current connection's shared handle: the lock is never held across an
    /// await.
    fn connection(&self) -> ClusterConnection {
        self.inner
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The count of an operation about to start. Dropped unsettled when the store's timeout
    /// cancels the operation: that counts as a failure too, since a wedged connection may
    /// never answer at all.
    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            cluster: self,
            settled: false,
        }
    }

    fn failed(&self) {
        if self.inner.health.failure(Instant::now()) {
            self.rebuild();
        }
    }

    /// Replaces the connection with a fresh one from the seed nodes, in the background (the
    /// operation that triggered it has its own deadline) and bounded by
    /// [`DEFAULT_TIMEOUT`]; the old one ends when its last in-flight operation does.
    fn rebuild(&self) {
        let Some(client) = self.inner.client.clone() else {
            return;
        };
        // Outside a Tokio runtime (a store dropped during shutdown) there is nothing to do.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        runtime.spawn(async move {
            if let Ok(Ok(connection)) =
                timed(REBUILD, DEFAULT_TIMEOUT, client.get_async_connection()).await
            {
                *inner
                    .connection
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = connection;
                inner.health.success();
            }
            // On failure the next failures try again after `REBUILD_INTERVAL`.
            inner.rebuilding.store(false, Ordering::Release);
        });
    }
}

/// Counts one operation's outcome when settled or dropped.
struct Attempt<'a> {
    cluster: &'a Cluster,
    settled: bool,
}

impl Attempt<'_> {
    fn settle(&mut self, failed: bool) {
        self.settled = true;
        if failed {
            self.cluster.failed();
        } else {
            self.cluster.inner.health.success();
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.cluster.failed();
        }
    }
}

/// Whether a reply is an error that says the command did not reach a master owning its key.
fn is_routing_failure_reply(value: &Value) -> bool {
    match value {
        Value::ServerError(e) => is_routing_failure(&RedisError::from(e.clone())),
        _ => false,
    }
}

/// Whether `e` says the operation did not reach a master that owns its key: a connection
/// error, a timeout, no connection for the slot, or a cluster error reply (`MOVED`/`ASK` the
/// driver gave up following, `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`, `LOADING`).
/// Other error replies (`NOSCRIPT`, `WRONGTYPE`, `OOM`, ...) come from a node that took the
/// command, so the connection works.
pub(crate) fn is_routing_failure(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Io
            | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::Moved
                    | ServerErrorKind::Ask
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::BusyLoading
            )
    ) || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
}

/// The failure count and when the last rebuild started.
#[derive(Debug, Default)]
struct Health {
    failures: AtomicU32,
    last_rebuild: Mutex<Option<Instant>>,
}

impl Health {
    fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    /// Counts a failure at `now`; `true` when a rebuild should start (and records it).
    fn failure(&self, now: Instant) -> bool {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures < REBUILD_AFTER_FAILURES {
            return false;
        }
        let mut last = self
            .last_rebuild
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| now.saturating_duration_since(t) < REBUILD_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_starts_after_enough_consecutive_failures_and_not_again_too_soon() {
        let health = Health::default();
        let start = Instant::now();
        for _ in 1..REBUILD_AFTER_FAILURES {
            assert!(!health.failure(start), "too early for a rebuild");
        }
        assert!(
            health.failure(start),
            "the threshold failure starts a rebuild"
        );
        assert!(
            !health.failure(start + REBUILD_INTERVAL / 2),
            "a second rebuild waits for the interval"
        );
        assert!(
            health.failure(start + REBUILD_INTERVAL),
            "after the interval a still failing connection is rebuilt again"
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let health = Health::default();
        let now = Instant::now();
        for _ in 1..REBUILD_AFTER_FAILURES {
            assert!(!health.failure(now));
        }
        health.success();
        for _ in 1..REBUILD_AFTER_FAILURES {
            assert!(!health.failure(now), "the count started over");
        }
        assert!(health.failure(now));
    }

    #[test]
    fn only_failures_to_reach_a_master_count() {
        let routing = [
            RedisError::from((ErrorKind::Io, "connection dropped")),
            RedisError::from((ErrorKind::ClusterConnectionNotFound, "no connection")),
            RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)),
            RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            RedisError::from((ErrorKind::Server(ServerErrorKind::ClusterDown), "down")),
            RedisError::from((ErrorKind::Server(ServerErrorKind::Moved), "moved")),
        ];
        for e in &routing {
            assert!(is_routing_failure(e), "{e} counts");
        }
        let answered = [
            RedisError::from((ErrorKind::Server(ServerErrorKind::NoScript), "no script")),
            RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "ERR")),
            RedisError::from((ErrorKind::Extension, "WRONGTYPE")),
        ];
        for e in &answered {
            assert!(!is_routing_failure(e), "{e} does not count");
        }
    }
}
