//! The stores under test, each on its own server (a container, or a file for SQLite), and the
//! faults each can suffer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use express_tutorial::StoreInfo;
use session_core::Store;
use session_core::cleanup::CleanupTask;
use session_testcontainers::{Container, RedisCluster};
use sqlx::Connection as _;

/// A store and the server it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Backend {
    /// PostgreSQL in a container.
    Postgres,
    /// MariaDB in a container.
    Mariadb,
    /// SQLite in a file of a temporary directory.
    Sqlite,
    /// Redis in a container, with AOF and `appendfsync always`.
    RedisAof,
    /// Redis in a container as it starts by default: snapshots only, no AOF. Not durable: a
    /// crash loses the writes since the last snapshot. A reference that shows the checks
    /// catching lost writes; not in the default set.
    Redis,
    /// MongoDB in a container (the stand-in where no registry is reachable).
    Mongo,
    /// A Redis Cluster of three masters with a replica each, in a container.
    RedisCluster,
    /// The in-process memory store: a reference without faults (not durable).
    Memory,
}

impl Backend {
    /// Every durable backend, the default set.
    pub const DURABLE: [Backend; 6] = [
        Backend::Postgres,
        Backend::Mariadb,
        Backend::Sqlite,
        Backend::RedisAof,
        Backend::Mongo,
        Backend::RedisCluster,
    ];

    /// The faults this backend can suffer.
    #[must_use]
    pub fn faults(self) -> &'static [Fault] {
        match self {
            Backend::Postgres
            | Backend::Mariadb
            | Backend::RedisAof
            | Backend::Redis
            | Backend::Mongo => &[Fault::Pause, Fault::Stop, Fault::Kill],
            Backend::RedisCluster => &[Fault::Pause, Fault::Failover],
            Backend::Sqlite => &[Fault::Lock],
            Backend::Memory => &[],
        }
    }

    /// Whether every acknowledged write survives every fault this backend suffers; where
    /// not, lost writes are reported but do not fail the run.
    #[must_use]
    pub fn durable(self) -> bool {
        !matches!(self, Backend::Redis | Backend::Memory)
    }

    /// Starts the backend's server.
    ///
    /// # Errors
    ///
    /// When the SQLite directory cannot be made. A container that cannot start panics with
    /// the reason (see `session-testcontainers`).
    pub async fn start(self) -> Result<Running, String> {
        let server = match self {
            Backend::Postgres => Server::Container(session_testcontainers::postgres().await),
            Backend::Mariadb => Server::Container(session_testcontainers::mariadb().await),
            Backend::RedisAof => Server::Container(session_testcontainers::redis_aof().await),
            Backend::Redis => Server::Container(session_testcontainers::redis().await),
            Backend::Mongo => Server::Container(session_testcontainers::mongo().await),
            Backend::RedisCluster => {
                Server::Cluster(session_testcontainers::redis_cluster_with_replicas().await)
            }
            Backend::Sqlite => Server::Sqlite(
                tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?,
            ),
            Backend::Memory => Server::InProcess(Arc::new(session_memory::MemoryStore::new())),
        };
        Ok(Running {
            backend: self,
            name: self.to_string(),
            server,
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Mariadb => "MariaDB",
            Backend::Sqlite => "SQLite (file)",
            Backend::RedisAof => "Redis (AOF, fsync always)",
            Backend::Redis => "Redis (no AOF, not durable)",
            Backend::Mongo => "MongoDB",
            Backend::RedisCluster => "Redis Cluster (3 masters + 3 replicas)",
            Backend::Memory => "memory",
        })
    }
}

/// What goes wrong with a backend while the clients run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// Frozen (`docker pause`) for the outage, then resumed: connections stay open, nothing
    /// answers, as in a network partition.
    Pause,
    /// A clean shutdown (`docker stop`), down for the outage, then started again.
    Stop,
    /// A crash (`docker kill`, `SIGKILL`), down for the outage, then started again.
    Kill,
    /// One master of the Redis Cluster shut down; its replica takes over after the cluster's
    /// node timeout. The outage is however long that takes.
    Failover,
    /// Another connection holds SQLite's write lock (`BEGIN EXCLUSIVE`) for the outage.
    Lock,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Pause => "pause",
            Fault::Stop => "stop + start",
            Fault::Kill => "kill + start",
            Fault::Failover => "master stopped, replica takes over",
            Fault::Lock => "write lock held",
        })
    }
}

enum Server {
    Container(Container),
    Cluster(RedisCluster),
    Sqlite(tempfile::TempDir),
    /// One store in this process for every app of the run, as a shared server would be.
    InProcess(Arc<dyn Store>),
}

/// A started backend; its server is removed when this is dropped.
pub struct Running {
    backend: Backend,
    name: String,
    server: Server,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A store opened on a running backend, as the app opens it.
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Store>,
    /// What the app's page says about it.
    pub info: StoreInfo,
    /// The SQL stores' cleanup task, stopped when dropped.
    pub cleanup: Option<CleanupTask>,
}

impl Running {
    /// A store of this process, named `name` in the report, suffering no faults: for the
    /// harness's own tests, which plant bugs in a store to see the checks catch them.
    #[must_use]
    pub fn in_process(name: impl Into<String>, store: Arc<dyn Store>) -> Self {
        Self {
            backend: Backend::Memory,
            name: name.into(),
            server: Server::InProcess(store),
        }
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Its name in the report.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn sqlite_url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}", dir.path().join("sessions.db").display())
    }

    /// Opens a store on the backend the way the tutorial app does
    /// ([`express_tutorial::open_store`], from the URL; for Redis Cluster, whose URL list the
    /// app does not take, `RedisStore::connect_cluster`).
    ///
    /// # Errors
    ///
    /// When the store cannot connect or create its table.
    pub async fn open(&self) -> Result<Opened, String> {
        let url = match &self.server {
            Server::Container(c) => c.url().to_owned(),
            Server::Sqlite(dir) => Self::sqlite_url(dir),
            Server::Cluster(cluster) => {
                let urls = cluster.urls();
                let store =
                    session_redis::RedisStore::connect_cluster(urls.iter().map(String::as_str))
                        .await
                        .map_err(|e| format!("Redis Cluster: {}", chain(&e)))?;
                return Ok(Opened {
                    store: Arc::new(store),
                    info: StoreInfo {
                        kind: "Redis Cluster",
                        url: urls.join(","),
                    },
                    cleanup: None,
                });
            }
            Server::InProcess(store) => {
                return Ok(Opened {
                    store: Arc::clone(store),
                    info: StoreInfo {
                        kind: "memory (this process only)",
                        url: "memory".into(),
                    },
                    cleanup: None,
                });
            }
        };
        let opened = express_tutorial::open_store(&url)
            .await
            .map_err(|e| format!("{}: {}", self.name, chain(&e)))?;
        Ok(Opened {
            store: opened.store,
            info: opened.info,
            cleanup: opened.cleanup,
        })
    }

    /// Injects `fault` and returns when the backend is back: resumed, started and ready, taken
    /// over by a replica, or unlocked. `outage` is how long it stays down (not for
    /// [`Fault::Failover`], which takes what the cluster takes).
    ///
    /// # Errors
    ///
    /// When the fault does not apply to this backend, or the SQLite lock cannot be taken.
    /// Docker's refusals panic with the reason (see `session-testcontainers`).
    pub async fn inject(&self, fault: Fault, outage: Duration) -> Result<(), String> {
        match (&self.server, fault) {
            (Server::Container(c), Fault::Pause) => {
                c.pause().await;
                tokio::time::sleep(outage).await;
                c.unpause().await;
            }
            (Server::Container(c), Fault::Stop) => {
                c.stop().await;
                tokio::time::sleep(outage).await;
                c.start().await;
            }
            (Server::Container(c), Fault::Kill) => {
                c.kill().await;
                tokio::time::sleep(outage).await;
                c.start().await;
            }
            (Server::Cluster(c), Fault::Pause) => {
                c.pause().await;
                tokio::time::sleep(outage).await;
                c.unpause().await;
            }
            (Server::Cluster(c), Fault::Failover) => {
                c.stop_master().await;
            }
            (Server::Sqlite(dir), Fault::Lock) => {
                let url = Self::sqlite_url(dir);
                let mut lock = sqlx::SqliteConnection::connect(&url)
                    .await
                    .map_err(|e| format!("SQLite {url}: {}", chain(&e)))?;
                sqlx::raw_sql("BEGIN EXCLUSIVE")
                    .execute(&mut lock)
                    .await
                    .map_err(|e| format!("SQLite BEGIN EXCLUSIVE: {}", chain(&e)))?;
                tokio::time::sleep(outage).await;
                sqlx::raw_sql("COMMIT")
                    .execute(&mut lock)
                    .await
                    .map_err(|e| format!("SQLite COMMIT: {}", chain(&e)))?;
            }
            _ => return Err(format!("{} cannot suffer a {fault}", self.name)),
        }
        Ok(())
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
