//! One server in one container: the fixtures and their faults.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::KillContainerOptionsBuilder;
use testcontainers::core::ContainerPort;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::AsyncBufReadExt;

use crate::ports;
use crate::service::{MARIADB, MONGO, POSTGRES, REDIS, Ready, Service, Stream};
use crate::start::{READY_TIMEOUT, Readiness, run_with_free_ports};

/// A server in a container, removed when this value is dropped.
///
/// Every method panics, with the reason, when Docker refuses the operation (see the
/// [crate documentation](crate#failures)).
pub struct Container {
    inner: ContainerAsync<GenericImage>,
    service: &'static Service,
    image: String,
    port: u16,
    url: String,
    /// How many times the server was started, to tell its newest readiness line from old ones.
    starts: AtomicUsize,
}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container")
            .field("service", &self.service.name)
            .field("image", &self.image)
            .field("id", &self.inner.id())
            .field("url", &self.url)
            .finish()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        ports::release(&[self.port]);
    }
}

/// Starts a Redis server (image from `TC_IMAGE_REDIS`, see the [crate
/// documentation](crate#images)).
///
/// URL: `redis://127.0.0.1:PORT`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn redis() -> Container {
    Container::start_new(&REDIS, &[]).await
}

/// Starts a Redis server that writes every change to its append-only file and `fsync`s it
/// before answering (`--appendonly yes --appendfsync always`): a durable Redis, whose
/// acknowledged writes survive [`Container::kill`] and [`Container::restart`]. Image from
/// `TC_IMAGE_REDIS`, as [`redis`].
///
/// URL: `redis://127.0.0.1:PORT`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn redis_aof() -> Container {
    Container::start_new(&REDIS, REDIS_AOF).await
}

/// The command of [`redis_aof`]: both images run `redis-server` with these arguments.
const REDIS_AOF: &[&str] = &[
    "redis-server",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

/// Starts a PostgreSQL server (image from `TC_IMAGE_POSTGRES`, see the [crate
/// documentation](crate#images)).
///
/// URL: `postgres://postgres:postgres@127.0.0.1:PORT/postgres`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn postgres() -> Container {
    Container::start_new(&POSTGRES, &[]).await
}

/// Starts a MariaDB server with the database `test` (image from `TC_IMAGE_MARIADB`, see the
/// [crate documentation](crate#images)).
///
/// URL: `mysql://root:root@127.0.0.1:PORT/test`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn mariadb() -> Container {
    Container::start_new(&MARIADB, &[]).await
}

/// Starts a standalone MongoDB server (image from `TC_IMAGE_MONGO`, see the [crate
/// documentation](crate#images)).
///
/// URL: `mongodb://127.0.0.1:PORT/?directConnection=true`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn mongo() -> Container {
    Container::start_new(&MONGO, &[]).await
}

impl Container {
    /// Starts `service`'s image, with `cmd` as its command unless empty (the image's own).
    async fn start_new(service: &'static Service, cmd: &[&str]) -> Container {
        let image = service.images().image();
        let (inner, ports) = run_with_free_ports(
            service,
            service.name,
            &image,
            1,
            Readiness::Service,
            |request, ports| {
                let mut request =
                    request.with_mapped_port(ports[0], ContainerPort::Tcp(service.port));
                for (name, value) in service.env {
                    request = request.with_env_var(*name, *value);
                }
                if !cmd.is_empty() {
                    request = request.with_cmd(cmd.iter().copied());
                }
                request
            },
        )
        .await;
        Container {
            inner,
            service,
            url: (service.url)(ports[0]),
            port: ports[0],
            image,
            starts: AtomicUsize::new(1),
        }
    }

    /// The URL that reaches the server from the test, through `127.0.0.1` and the published
    /// port; the same before and after [`stop`](Self::stop) and [`start`](Self::start).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The container's Docker id (for `docker logs ID` when a test fails).
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// The image the container runs (from the service's `TC_IMAGE_*` variable or the default).
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Freezes every process of the container (`docker pause`): connections stay open but
    /// nothing answers, as in a network partition. Also available as
    /// [`Outage::pause`](session_conformance::Outage::pause).
    ///
    /// # Panics
    ///
    /// When Docker refuses, e.g. because the container is not running.
    pub async fn pause(&self) {
        if let Err(e) = self.inner.pause().await {
            panic!("{}", self.failed("pause", &e));
        }
    }

    /// Resumes a container frozen by [`pause`](Self::pause) (`docker unpause`). Also available
    /// as [`Outage::resume`](session_conformance::Outage::resume).
    ///
    /// # Panics
    ///
    /// When Docker refuses, e.g. because the container is not paused.
    pub async fn unpause(&self) {
        if let Err(e) = self.inner.unpause().await {
            panic!("{}", self.failed("unpause", &e));
        }
    }

    /// Shuts the server down (`docker stop`: a termination signal, a kill after ten seconds).
    /// Its data stays in the container for [`start`](Self::start); connections are refused
    /// meanwhile.
    ///
    /// # Panics
    ///
    /// When Docker refuses.
    pub async fn stop(&self) {
        if let Err(e) = self.inner.stop().await {
            panic!("{}", self.failed("stop", &e));
        }
    }

    /// Kills the server at once (`docker kill`, `SIGKILL`), as a crash or a power cut of the
    /// server process would: no shutdown, nothing flushed that the server had not written
    /// already. Its files stay in the container for [`start`](Self::start).
    ///
    /// # Panics
    ///
    /// When Docker refuses, e.g. because the container is not running.
    pub async fn kill(&self) {
        let kill = async {
            let docker = Docker::connect_with_local_defaults()?;
            let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
            docker
                .kill_container(self.inner.id(), Some(options))
                .await?;
            // `docker kill` returns when the signal is sent; wait until the container is down.
            while self.inner.is_running().await.unwrap_or(false) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Ok::<_, testcontainers::bollard::errors::Error>(())
        };
        if let Err(e) = kill.await {
            panic!("{}", self.failed("kill", &e));
        }
    }

    /// [`stop`](Self::stop), then [`start`](Self::start): the server shuts down cleanly and
    /// comes back with its data, on the same [`url`](Self::url).
    ///
    /// # Panics
    ///
    /// As [`stop`](Self::stop) and [`start`](Self::start).
    pub async fn restart(&self) {
        self.stop().await;
        self.start().await;
    }

    /// Starts the server of a [`stop`](Self::stop)ped container again and waits until it accepts
    /// connections, on the same host port as before. Does nothing if it is running.
    ///
    /// # Panics
    ///
    /// When Docker refuses (say, the port was taken while the container was stopped) or the
    /// server is not ready within two minutes.
    pub async fn start(&self) {
        match self.inner.is_running().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => panic!("{}", self.failed("inspect", &e)),
        }
        let starts = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        if let Err(e) = self.inner.start().await {
            panic!("{}", self.failed("start", &e));
        }
        let Some(last) = self.service.ready.last() else {
            return;
        };
        match tokio::time::timeout(READY_TIMEOUT, self.log_line(*last, starts)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{}", self.failed("start", &e)),
            Err(_) => panic!("{}", self.failed("start", &"not ready within two minutes")),
        }
    }

    /// Waits until `ready.text` appeared `times` times in the log.
    async fn log_line(&self, ready: Ready, times: usize) -> Result<(), String> {
        let mut log = match ready.stream {
            Stream::Stdout => self.inner.stdout(true),
            Stream::Stderr => self.inner.stderr(true),
        };
        let needle = ready.text.as_bytes();
        let mut seen = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            match log.read_until(b'\n', &mut line).await {
                Ok(0) => return Err(format!("the server exited before logging {:?}", ready.text)),
                Ok(_) if line.windows(needle.len()).any(|w| w == needle) => {
                    seen += 1;
                    if seen >= times {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(format!("reading the container log failed: {e}")),
            }
        }
    }

    fn failed(&self, action: &str, error: &dyn fmt::Display) -> String {
        format!(
            "could not {action} the {} test container {} (image `{}`, {}): {error}\n\
             Is Docker running? `docker logs {}` shows the server's log while the test runs.",
            self.service.name,
            self.inner.id(),
            self.image,
            self.url,
            self.inner.id(),
        )
    }
}
