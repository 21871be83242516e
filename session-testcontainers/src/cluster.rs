//! A Redis Cluster in one container.

use std::fmt;
use std::time::Duration;

use testcontainers::core::{CmdWaitFor, ContainerPort, ExecCommand};
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::ports;
use crate::service::REDIS;
use crate::start::{Readiness, run_with_free_ports};

/// Masters in [`redis_cluster`] and [`redis_cluster_with_replicas`].
const MASTERS: usize = 3;

/// How long a node may be unreachable before the others count it as failed (and a replica of
/// a failed master takes over): Redis's `cluster-node-timeout`.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`RedisCluster::stop_master`] waits for a replica to take over at most.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);

/// A Redis Cluster of three masters, with or without a replica each, in one container, removed
/// when dropped.
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
    start(0).await
}

/// Starts a Redis Cluster of three masters with one replica each (six nodes; the Redis image,
/// from `TC_IMAGE_REDIS`, as [`redis_cluster`]) and waits until every node reports
/// `cluster_state:ok` and every replica is in sync with its master. When a master fails, its
/// replica takes over after [`NODE_TIMEOUT`] (see [`RedisCluster::stop_master`]).
///
/// # Panics
///
/// When the container cannot be started or the cluster is not ready within two minutes.
pub async fn redis_cluster_with_replicas() -> RedisCluster {
    start(1).await
}

async fn start(replicas: usize) -> RedisCluster {
    let image = REDIS.images().image();
    let (inner, ports) = run_with_free_ports(
        &REDIS,
        "Redis Cluster",
        &image,
        MASTERS * (1 + replicas),
        Readiness::Stdout(READY),
        |request, ports| {
            let mut cmd = vec!["sh".to_owned(), "-c".to_owned(), SCRIPT.to_owned()];
            cmd.push("cluster".to_owned()); // $0 of the script
            cmd.push(replicas.to_string());
            cmd.push(NODE_TIMEOUT.as_millis().to_string());
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
    /// One `redis://127.0.0.1:PORT` URL per node (per master without replicas); a cluster
    /// client needs any of them.
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

    /// Shuts one master down (`SHUTDOWN NOSAVE`: it stops taking writes, lets its replica
    /// catch up, and exits) and waits until the other nodes count it as failed and its replica
    /// serves its slots (`cluster_state:ok` again): a failover, as when a master's machine is
    /// taken down. Returns the stopped master's port. Needs
    /// [`redis_cluster_with_replicas`]; the stopped node is not started again.
    ///
    /// Between the shutdown and the failover (about [`NODE_TIMEOUT`]) the master's slots do
    /// not answer.
    ///
    /// # Panics
    ///
    /// When Docker refuses, no running master has a replica, or no replica took over within
    /// a minute.
    pub async fn stop_master(&self) -> u16 {
        let script = format!("{STOP_MASTER}\n{WAIT_FOR_FAILOVER}");
        let mut cmd = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            script,
            "failover".to_owned(),
        ];
        cmd.extend(self.ports.iter().map(u16::to_string));
        let run = async {
            let mut exec = self
                .inner
                .exec(ExecCommand::new(cmd).with_cmd_ready_condition(CmdWaitFor::exit()))
                .await
                .map_err(|e| e.to_string())?;
            let out = exec.stdout_to_vec().await.map_err(|e| e.to_string())?;
            let err = exec.stderr_to_vec().await.map_err(|e| e.to_string())?;
            let out = String::from_utf8_lossy(&out);
            match (exec.exit_code().await, out.trim().parse::<u16>()) {
                (Ok(Some(0)), Ok(port)) => Ok(port),
                (code, _) => Err(format!(
                    "the failover script ended with {code:?}: {out}{}",
                    String::from_utf8_lossy(&err)
                )),
            }
        };
        match tokio::time::timeout(FAILOVER_TIMEOUT, run).await {
            Ok(Ok(port)) => port,
            Ok(Err(e)) => panic!("{}", self.failed("fail a master of", &e)),
            Err(_) => panic!(
                "{}",
                self.failed("fail a master of", &"no replica took over within a minute")
            ),
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

/// Runs in the container (`sh -c SCRIPT cluster REPLICAS NODE_TIMEOUT_MS PORT...`): one node
/// per port, then `redis-cli --cluster create`, then waits for every node to see the cluster
/// healthy and every replica to be in sync. Logs go to files so that the readiness line stays
/// unambiguous.
const SCRIPT: &str = r#"
set -e
replicas=$1
timeout=$2
shift 2
pids=
for port in "$@"; do
  redis-server --port "$port" --bind 0.0.0.0 --protected-mode no \
    --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
    --cluster-announce-ip 127.0.0.1 --cluster-node-timeout "$timeout" \
    --save '' --appendonly no --dir /tmp --logfile "/tmp/redis-$port.log" &
  pids="$pids $!"
done
trap 'kill $pids 2>/dev/null; exit 0' TERM INT
nodes=
for port in "$@"; do
  until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.1; done
  nodes="$nodes 127.0.0.1:$port"
done
redis-cli --cluster create $nodes --cluster-replicas "$replicas" --cluster-yes >/tmp/cluster-create.log 2>&1 ||
  { cat /tmp/cluster-create.log; exit 1; }
for port in "$@"; do
  until redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
  if redis-cli -p "$port" role | head -n 1 | grep -q slave; then
    until redis-cli -p "$port" info replication | grep -q 'master_link_status:up'; do sleep 0.1; done
  fi
done
echo "redis cluster is up"
wait
"#;

/// The first half of [`RedisCluster::stop_master`]'s script (`sh -c ... failover PORT...`):
/// shuts down the first master that has a replica, and prints its port.
const STOP_MASTER: &str = r#"
set -e
stopped=
for port in "$@"; do
  if redis-cli -p "$port" role | head -n 1 | grep -q master &&
     [ "$(redis-cli -p "$port" info replication | sed -n 's/^connected_slaves:\([0-9]*\).*/\1/p')" -gt 0 ]; then
    stopped=$port
    break
  fi
done
[ -n "$stopped" ] || { echo >&2 'no running master with a replica'; exit 1; }
redis-cli -p "$stopped" shutdown nosave >/dev/null 2>&1 || true
while redis-cli -p "$stopped" ping >/dev/null 2>&1; do sleep 0.05; done
"#;

/// The second half: waits until every other node flags the stopped master `fail`, sees it
/// without slots, and reports `cluster_state:ok` (its replica took over), then prints its port.
const WAIT_FOR_FAILOVER: &str = r#"
for port in "$@"; do
  [ "$port" = "$stopped" ] && continue
  until redis-cli -p "$port" cluster nodes |
          awk -v node="127.0.0.1:$stopped@" 'index($2, node) == 1 && $3 ~ /(^|,)fail(,|$)/ && NF == 8 { found = 1 } END { exit !found }' &&
        redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok'; do
    sleep 0.05
  done
done
echo "$stopped"
"#;

/// Readiness line of [`SCRIPT`].
const READY: &str = "redis cluster is up";
