//! A Redis Cluster in one container.

use std::fmt;

use testcontainers::core::ContainerPort;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::ports;
use crate::service::REDIS;
use crate::start::{Readiness, run_with_free_ports};

/// Masters in [`redis_cluster`].
const MASTERS: usize = 3;

/// A Redis Cluster of three masters (no replicas) in one container, removed when dropped.
///
/// Each node listens on a host port chosen before the container starts, is published on that
/// same port and announces `127.0.0.1`, so the addresses in `CLUSTER SLOTS` / `MOVED` replies
/// are reachable from the test.
pub struct RedisCluster {
    inner: ContainerAsync<GenericImage>,
    image: String,
    ports: Vec<u16>,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("image", &self.image)
            .field("id", &self.inner.id())
            .field("ports", &self.ports)
            .finish()
    }
}

/// Starts a Redis Cluster with three masters covering all slots (the Redis image, from
/// `TC_IMAGE_REDIS`; it needs `redis-server`, `redis-cli` and `sh`) and waits until every node
/// reports `cluster_state:ok`.
///
/// # Panics
///
/// When the container cannot be started or the cluster is not ready within two minutes.
pub async fn redis_cluster() -> RedisCluster {
    let image = REDIS.images().image();
    let (inner, ports) = run_with_free_ports(
        &REDIS,
        "Redis Cluster",
        &image,
        MASTERS,
        Readiness::Stdout(READY),
        |request, ports| {
            let mut cmd = vec!["sh".to_owned(), "-c".to_owned(), SCRIPT.to_owned()];
            cmd.push("cluster".to_owned()); // $0 of the script
            cmd.extend(ports.iter().map(u16::to_string));
            let mut request = request.with_cmd(cmd);
            for &port in ports {
                request = request.with_mapped_port(port, ContainerPort::Tcp(port));
            }
            request
        },
    )
    .await;
    RedisCluster {
        inner,
        image,
        ports,
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        ports::release(&self.ports);
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

    /// The image the container runs.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Freezes every node at once (`docker pause` of the one container): the whole cluster
    /// stops answering, as in a network partition. Also available as
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

    /// Resumes every node frozen by [`pause`](Self::pause) (`docker unpause`). Also
    /// available as [`Outage::resume`](session_conformance::Outage::resume).
    ///
    /// # Panics
    ///
    /// When Docker refuses, e.g. because the container is not paused.
    pub async fn unpause(&self) {
        if let Err(e) = self.inner.unpause().await {
            panic!("{}", self.failed("unpause", &e));
        }
    }

    fn failed(&self, action: &str, error: &dyn fmt::Display) -> String {
        format!(
            "could not {action} the Redis Cluster test container {} (image `{}`, ports {:?}): \
             {error}\nIs Docker running? `docker logs {}` shows the cluster's log while the \
             test runs.",
            self.inner.id(),
            self.image,
            self.ports,
            self.inner.id(),
        )
    }
}

/// Runs in the container (`sh -c SCRIPT cluster PORT...`): one node per port, then
/// `redis-cli --cluster create`, then waits for every node to see the cluster healthy.
/// Logs go to files so that the readiness line stays unambiguous.
const SCRIPT: &str = r#"
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

/// Readiness line of [`SCRIPT`].
const READY: &str = "redis cluster is up";
