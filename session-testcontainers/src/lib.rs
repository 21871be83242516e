//! Real servers for adapter tests: one fresh container per call, removed when dropped.
//!
//! [`redis`], [`postgres`], [`mariadb`] and [`mongo`] each start a container with
//! [testcontainers](https://docs.rs/testcontainers), wait until the server accepts connections
//! and return a [`Container`] whose [`url`](Container::url) reaches it through `127.0.0.1`.
//! [`redis_cluster`] starts a three-master Redis Cluster. The container lives as long as the
//! returned value: keep it alive for the whole test (the second half of a
//! `session_conformance::store_tests!` setup's return value is the place), and never in a
//! `static`, which is never dropped and so leaks the container.
//!
//! ```no_run
//! use session_testcontainers as containers;
//!
//! # async fn demo() {
//! let server = containers::postgres().await;
//! let url = server.url(); // postgres://postgres:postgres@127.0.0.1:PORT/postgres
//! # let _ = url;
//! # }
//! ```
//!
//! # Images
//!
//! The image is read from an environment variable when the fixture runs (not at build time),
//! and defaults to the official image:
//!
//! | fixture | variable | default | URL |
//! |---|---|---|---|
//! | [`redis`], [`redis_cluster`] | `TC_IMAGE_REDIS` | `redis:7` | `redis://127.0.0.1:PORT` |
//! | [`postgres`] | `TC_IMAGE_POSTGRES` | `postgres:15` | `postgres://postgres:postgres@127.0.0.1:PORT/postgres` |
//! | [`mariadb`] | `TC_IMAGE_MARIADB` | `mariadb:10.11` | `mysql://root:root@127.0.0.1:PORT/test` |
//! | [`mongo`] | `TC_IMAGE_MONGO` | `mongo:7` | `mongodb://127.0.0.1:PORT/?directConnection=true` |
//!
//! Another image must behave like the official one: the same environment variables
//! (`POSTGRES_PASSWORD`, `MARIADB_ROOT_PASSWORD`, `MARIADB_DATABASE`) and the same readiness
//! lines in its log (Redis: `Ready to accept connections` on stdout; PostgreSQL:
//! `database system is ready to accept connections` on stderr; MariaDB: `ready for connections`
//! and then `port: 3306` on stderr; MongoDB: `Waiting for connections` on stdout). The stand-ins
//! built by the repository's `scripts/test-images/build.sh` do (`tc-local/redis:7`, ...).
//!
//! # Failures
//!
//! Nothing here skips: every function and method **panics** with a message that says what to
//! check (is Docker running, which image, which variable) when the container cannot be started,
//! stopped, paused or resumed, so a test without its server fails instead of passing silently.
//!
//! # Faults
//!
//! [`Container::pause`] freezes the server (connections hang, as with a network partition),
//! [`Container::stop`] shuts it down (connections are refused), [`Container::unpause`] and
//! [`Container::start`] bring it back. The host port is chosen before the container is created
//! and published as is, so [`Container::url`] stays valid across a stop and start.
//!
//! Containers started while the environment variable `SESSION_RS_TEST_RUN` is set carry the
//! label `session-rs.test-run` with its value, so that a test runner can remove what a killed
//! test process leaked (`scripts/test.sh` does).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::core::logs::LogFrame;
use testcontainers::core::logs::consumer::LogConsumer;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::AsyncBufReadExt;

/// How long a container may take from start to ready. Generous: CI machines have two cores and
/// run many tests at once.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Host ports are picked below Linux's ephemeral range (32768 and up), so that neither the
/// kernel (for outgoing connections) nor another "port 0" listener takes a port while its
/// container is stopped; Redis Cluster also needs `port + 10000` for its bus.
const HOST_PORTS: std::ops::Range<u16> = 15000..32000;

/// How often a start is retried when the chosen host port was taken in the meantime.
const PORT_ATTEMPTS: usize = 5;

/// Masters in [`redis_cluster`].
const CLUSTER_MASTERS: usize = 3;

/// Label carrying `SESSION_RS_TEST_RUN`, for cleaning up after killed test processes.
const RUN_LABEL: &str = "session-rs.test-run";
/// Label unique to one start attempt, to find (and remove) a container whose start failed.
const ATTEMPT_LABEL: &str = "session-rs.fixture";

#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// A log line the server prints when it accepts connections.
#[derive(Clone, Copy, Debug)]
struct Ready {
    stream: Stream,
    text: &'static str,
}

/// What differs between the services.
#[derive(Debug)]
struct Service {
    name: &'static str,
    image_var: &'static str,
    default_image: &'static str,
    port: u16,
    env: &'static [(&'static str, &'static str)],
    /// Waited for in order after the first start. The last one appears exactly once per start
    /// (also with the official images, whose first start runs a temporary server), so after a
    /// restart number n its n+1st occurrence means ready.
    ready: &'static [Ready],
    url: fn(u16) -> String,
}

const REDIS: Service = Service {
    name: "Redis",
    image_var: "TC_IMAGE_REDIS",
    default_image: "redis:7",
    port: 6379,
    env: &[],
    ready: &[Ready {
        stream: Stream::Stdout,
        text: "Ready to accept connections",
    }],
    url: |port| format!("redis://127.0.0.1:{port}"),
};

const POSTGRES: Service = Service {
    name: "PostgreSQL",
    image_var: "TC_IMAGE_POSTGRES",
    default_image: "postgres:15",
    port: 5432,
    env: &[("POSTGRES_PASSWORD", "postgres")],
    // On stderr only: the official image's temporary set-up server logs its copy to stdout.
    ready: &[Ready {
        stream: Stream::Stderr,
        text: "database system is ready to accept connections",
    }],
    url: |port| format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
};

const MARIADB: Service = Service {
    name: "MariaDB",
    image_var: "TC_IMAGE_MARIADB",
    default_image: "mariadb:10.11",
    port: 3306,
    env: &[
        ("MARIADB_ROOT_PASSWORD", "root"),
        ("MARIADB_DATABASE", "test"),
    ],
    // The official image's temporary set-up server is also "ready for connections", but on
    // port 0: only the line naming port 3306 belongs to the real server.
    ready: &[
        Ready {
            stream: Stream::Stderr,
            text: "ready for connections",
        },
        Ready {
            stream: Stream::Stderr,
            text: "port: 3306",
        },
    ],
    url: |port| format!("mysql://root:root@127.0.0.1:{port}/test"),
};

const MONGO: Service = Service {
    name: "MongoDB",
    image_var: "TC_IMAGE_MONGO",
    default_image: "mongo:7",
    port: 27017,
    env: &[],
    ready: &[Ready {
        stream: Stream::Stdout,
        text: "Waiting for connections",
    }],
    url: |port| format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
};

/// A server in a container, removed when this value is dropped.
///
/// Every method panics, with the reason, when Docker refuses the operation (see the
/// [module documentation](self#failures)).
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
        release_ports(&[self.port]);
    }
}

/// Starts a Redis server (image from `TC_IMAGE_REDIS`, default `redis:7`).
///
/// URL: `redis://127.0.0.1:PORT`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn redis() -> Container {
    Container::start_new(&REDIS).await
}

/// Starts a PostgreSQL server (image from `TC_IMAGE_POSTGRES`, default `postgres:15`).
///
/// URL: `postgres://postgres:postgres@127.0.0.1:PORT/postgres`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn postgres() -> Container {
    Container::start_new(&POSTGRES).await
}

/// Starts a MariaDB server (image from `TC_IMAGE_MARIADB`, default `mariadb:10.11`), with the
/// database `test`.
///
/// URL: `mysql://root:root@127.0.0.1:PORT/test`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn mariadb() -> Container {
    Container::start_new(&MARIADB).await
}

/// Starts a MongoDB server (image from `TC_IMAGE_MONGO`, default `mongo:7`), standalone.
///
/// URL: `mongodb://127.0.0.1:PORT/?directConnection=true`.
///
/// # Panics
///
/// When the container cannot be started or does not become ready within two minutes.
pub async fn mongo() -> Container {
    Container::start_new(&MONGO).await
}

impl Container {
    async fn start_new(service: &'static Service) -> Container {
        let image = image_for(service);
        let (inner, ports) = run_with_free_ports(service, &image, 1, |request, ports| {
            let mut request = request
                .with_mapped_port(ports[0], ContainerPort::Tcp(service.port))
                .with_startup_timeout(READY_TIMEOUT);
            for (name, value) in service.env {
                request = request.with_env_var(*name, *value);
            }
            request
        })
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

    /// Freezes every process of the container (`docker pause`): connections stay open but
    /// nothing answers, as in a network partition.
    ///
    /// # Panics
    ///
    /// When Docker refuses, e.g. because the container is not running.
    pub async fn pause(&self) {
        if let Err(e) = self.inner.pause().await {
            panic!("{}", self.failed("pause", &e));
        }
    }

    /// Resumes a container frozen by [`pause`](Self::pause) (`docker unpause`).
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

/// A Redis Cluster of three masters (no replicas) in one container, removed when dropped.
///
/// Each node listens on a host port chosen before the container starts, is published on that
/// same port and announces `127.0.0.1`, so the addresses in `CLUSTER SLOTS` / `MOVED` replies
/// are reachable from the test.
pub struct RedisCluster {
    inner: ContainerAsync<GenericImage>,
    ports: Vec<u16>,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("id", &self.inner.id())
            .field("ports", &self.ports)
            .finish()
    }
}

/// Starts a Redis Cluster with three masters covering all slots (image from `TC_IMAGE_REDIS`,
/// default `redis:7`; the image needs `redis-server`, `redis-cli` and `sh`) and waits until
/// every node reports `cluster_state:ok`.
///
/// # Panics
///
/// When the container cannot be started or the cluster is not ready within two minutes.
pub async fn redis_cluster() -> RedisCluster {
    let image = image_for(&REDIS);
    let (inner, ports) = run_with_free_ports(&REDIS, &image, CLUSTER_MASTERS, |request, ports| {
        let mut cmd = vec!["sh".to_owned(), "-c".to_owned(), CLUSTER_SCRIPT.to_owned()];
        cmd.push("cluster".to_owned()); // $0 of the script
        cmd.extend(ports.iter().map(u16::to_string));
        let mut request = request.with_cmd(cmd).with_startup_timeout(READY_TIMEOUT);
        for &port in ports {
            request = request.with_mapped_port(port, ContainerPort::Tcp(port));
        }
        request
    })
    .await;
    RedisCluster { inner, ports }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        release_ports(&self.ports);
    }
}

impl RedisCluster {
    /// One `redis://127.0.0.1:PORT` URL per master; a cluster client needs any of them.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The container's Docker id.
    pub fn id(&self) -> &str {
        self.inner.id()
    }
}

/// Runs in the container (`sh -c SCRIPT cluster PORT...`): one node per port, then
/// `redis-cli --cluster create`, then waits for every node to see the cluster healthy.
/// Logs go to files so that the readiness line stays unambiguous.
const CLUSTER_SCRIPT: &str = r#"
set -e
pids=
for port in "$@"; do
  redis-server --port "$port" --bind 0.0.0.0 --protected-mode no \
    --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
    --cluster-announce-ip 127.0.0.1 --cluster-node-timeout 5000 \
    --save '' --appendonly no --dir /tmp --logfile "/tmp/redis-$port.log" &
  pids="$pids $!"
done
trap 'kill $pids 2>/dev/null; exit 0' TERM INT
nodes=
for port in "$@"; do
  until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.1; done
  nodes="$nodes 127.0.0.1:$port"
done
redis-cli --cluster create $nodes --cluster-replicas 0 --cluster-yes >/tmp/cluster-create.log 2>&1 ||
  { cat /tmp/cluster-create.log; exit 1; }
for port in "$@"; do
  until redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
done
echo "redis cluster is up"
wait
"#;

/// Readiness line of [`CLUSTER_SCRIPT`].
const CLUSTER_READY: &str = "redis cluster is up";

/// The image for `service`: its variable if set and not empty, else the official image.
fn image_for(service: &Service) -> String {
    match std::env::var(service.image_var) {
        Ok(image) if !image.trim().is_empty() => image.trim().to_owned(),
        _ => service.default_image.to_owned(),
    }
}

/// `name[:tag]` into name and tag (`latest` when absent); a `:` before the last `/` belongs
/// to a registry's port. A digest (`name@sha256:...`) comes back together by `name:tag`.
fn split_image(image: &str) -> (&str, &str) {
    let last_part = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[last_part..].rfind(':') {
        Some(colon) => (&image[..last_part + colon], &image[last_part + colon + 1..]),
        None => (image, "latest"),
    }
}

/// Starts a container of `image` whose request `configure` completes with `count` free host
/// ports, retrying with other ports when one was taken in the meantime. Panics with advice when
/// it cannot start, after removing what the failed attempt left behind.
async fn run_with_free_ports(
    service: &'static Service,
    image: &str,
    count: usize,
    configure: impl Fn(
        testcontainers::ContainerRequest<GenericImage>,
        &[u16],
    ) -> testcontainers::ContainerRequest<GenericImage>,
) -> (ContainerAsync<GenericImage>, Vec<u16>) {
    let (name, tag) = split_image(image);
    let cluster = count > 1;
    let mut last_error = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let ports = match free_ports(count) {
            Ok(ports) => ports,
            Err(e) => panic!("could not find {count} free TCP port(s) on 127.0.0.1: {e}"),
        };
        let attempt = unique_token();
        let mut base = GenericImage::new(name, tag);
        if cluster {
            base = base.with_wait_for(WaitFor::message_on_stdout(CLUSTER_READY));
        } else {
            for ready in service.ready {
                base = base.with_wait_for(match ready.stream {
                    Stream::Stdout => WaitFor::message_on_stdout(ready.text),
                    Stream::Stderr => WaitFor::message_on_stderr(ready.text),
                });
            }
        }
        let tail = LogTail::default();
        let mut request = base
            .with_label(ATTEMPT_LABEL, attempt.clone())
            .with_log_consumer(tail.clone())
            // Loopback only, whatever the daemon's default (`dockerd --ip`) is.
            .with_host_config_modifier(|host| {
                for bindings in host.port_bindings.iter_mut().flat_map(|m| m.values_mut()) {
                    for binding in bindings.iter_mut().flatten() {
                        binding.host_ip = Some(Ipv4Addr::LOCALHOST.to_string());
                    }
                }
            });
        if let Ok(run) = std::env::var("SESSION_RS_TEST_RUN") {
            request = request.with_label(RUN_LABEL, run);
        }
        let request = configure(request, &ports);
        let error = match request.start().await {
            Ok(container) => return (container, ports),
            Err(e) => e,
        };
        remove_attempt(&attempt).await;
        let text = format!("{error:?}");
        release_ports(&ports);
        if text.contains("port is already allocated") || text.contains("address already in use") {
            last_error = text;
            continue;
        }
        panic!(
            "{}",
            start_advice(service, image, cluster, &error, &tail.render())
        );
    }
    panic!(
        "could not start the {} test container from image `{image}`: the chosen host ports were \
         taken {PORT_ATTEMPTS} times in a row; last error: {last_error}",
        service.name
    );
}

fn start_advice(
    service: &Service,
    image: &str,
    cluster: bool,
    error: &dyn fmt::Debug,
    log_tail: &str,
) -> String {
    let what = if cluster {
        "Redis Cluster"
    } else {
        service.name
    };
    format!(
        "could not start the {what} test container from image `{image}`: {error:?}\n\
         What to check:\n\
         - Is Docker running? `docker info` must answer (`bash scripts/test.sh` in the \
           session-rs repository installs and starts it when run as root).\n\
         - Is the image there? `docker image inspect {image}`, or `docker pull {image}`. The \
           image comes from the environment variable {var} (default `{default}`); without a \
           container registry, build the stand-ins with `bash scripts/test-images/build.sh` and \
           set {var}=tc-local/{short} (scripts/test.sh does both).\n\
         - Another image must print the official image's readiness lines (see the \
           session_testcontainers documentation).{log_tail}",
        var = service.image_var,
        default = service.default_image,
        short = service.default_image,
    )
}

/// Removes what a failed start attempt left behind: testcontainers removes a container that
/// started but never became ready, not one that was created and then failed to start (a host
/// port taken in the meantime, say).
async fn remove_attempt(attempt: &str) {
    let Ok(docker) = Docker::connect_with_local_defaults() else {
        return;
    };
    let filters = HashMap::from([("label", vec![format!("{ATTEMPT_LABEL}={attempt}")])]);
    let list = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let Ok(found) = docker.list_containers(Some(list)).await else {
        return;
    };
    for id in found.into_iter().filter_map(|c| c.id) {
        let remove = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        // Best effort: the panic that follows is the report.
        let _ = docker.remove_container(&id, Some(remove)).await;
    }
}

/// The last lines a container logged, kept for the message when it fails to become ready (by
/// then testcontainers has removed it, and its log with it).
#[derive(Clone, Default)]
struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    const LINES: usize = 30;

    fn render(&self) -> String {
        let lines = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.is_empty() {
            return String::from("\nThe container logged nothing.");
        }
        let mut text = String::from("\nLast lines the container logged:");
        for line in lines.iter() {
            text.push_str("\n  ");
            text.push_str(line);
        }
        text
    }
}

impl LogConsumer for LogTail {
    fn accept<'a>(&'a self, record: &'a LogFrame) -> BoxFuture<'a, ()> {
        let (stream, bytes) = match record {
            LogFrame::StdOut(bytes) => ("stdout", bytes),
            LogFrame::StdErr(bytes) => ("stderr", bytes),
        };
        let mut lines = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for line in String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            if lines.len() == Self::LINES {
                lines.pop_front();
            }
            lines.push_back(format!("[{stream}] {line}"));
        }
        Box::pin(std::future::ready(()))
    }
}

/// Ports handed out by this process and not yet released, so that two fixtures of one test
/// binary never pick the same port between the check and the container's start.
static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

fn free_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut ports = Vec::with_capacity(count);
    let span = u64::from(HOST_PORTS.end - HOST_PORTS.start);
    for _ in 0..1000 {
        if ports.len() == count {
            break;
        }
        let offset = u16::try_from(random() % span).unwrap_or(0);
        let port = HOST_PORTS.start + offset;
        if taken.contains(&port) || ports.contains(&port) {
            continue;
        }
        // Free now; the container publishes it a moment later (a race the caller retries).
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            ports.push(port);
        }
    }
    if ports.len() < count {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free port in {HOST_PORTS:?} after 1000 tries"),
        ));
    }
    taken.extend(&ports);
    Ok(ports)
}

fn release_ports(ports: &[u16]) {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for port in ports {
        taken.remove(port);
    }
}

/// Random enough to keep concurrent test processes apart (no dependency for it).
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one((std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)))
}

fn unique_token() -> String {
    format!("{}-{:016x}", std::process::id(), random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_into_name_and_tag() {
        assert_eq!(split_image("redis:7"), ("redis", "7"));
        assert_eq!(
            split_image("tc-local/mariadb:10.11"),
            ("tc-local/mariadb", "10.11")
        );
        assert_eq!(split_image("mongo"), ("mongo", "latest"));
        assert_eq!(
            split_image("localhost:5000/pg"),
            ("localhost:5000/pg", "latest")
        );
        assert_eq!(
            split_image("localhost:5000/pg:16"),
            ("localhost:5000/pg", "16")
        );
    }

    #[test]
    fn start_failures_say_what_to_check() {
        let message = start_advice(&MARIADB, "example/maria:1", false, &"boom", "\nlog tail");
        for expected in [
            "MariaDB",
            "`example/maria:1`",
            "boom",
            "docker info",
            "TC_IMAGE_MARIADB",
            "`mariadb:10.11`",
            "scripts/test-images/build.sh",
            "TC_IMAGE_MARIADB=tc-local/mariadb:10.11",
            "log tail",
        ] {
            assert!(
                message.contains(expected),
                "{expected:?} missing from: {message}"
            );
        }
    }

    #[test]
    fn free_ports_are_distinct_and_below_the_ephemeral_range() {
        let ports = free_ports(3).expect("three free ports");
        assert_eq!(ports.iter().collect::<BTreeSet<_>>().len(), 3, "{ports:?}");
        assert!(ports.iter().all(|p| HOST_PORTS.contains(p)), "{ports:?}");
        let again = free_ports(3).expect("three more");
        assert!(
            again.iter().all(|p| !ports.contains(p)),
            "{ports:?} then {again:?}"
        );
        release_ports(&ports);
        release_ports(&again);
    }
}
