//! The Redis floor: `GET` and `SET` of the stored bytes under a plain string key; and the
//! Redis servers' CPU time.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Value};
use session_core::Id;

use super::{an_hour_from_now_millis, fill};
use crate::cpu::ServerCpu;
use crate::harness::{Res, Subject, Workload};
use crate::payload;

/// A shared multiplexed connection, to one server or to a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Standalone(MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Conn {
    pub(crate) async fn standalone(url: &str) -> Res<Self> {
        let client = redis::Client::open(url)?;
        Ok(Self::Standalone(
            client.get_multiplexed_async_connection().await?,
        ))
    }

    pub(crate) async fn cluster(urls: &[String]) -> Res<Self> {
        let client = redis::cluster::ClusterClient::new(urls.to_vec())?;
        Ok(Self::Cluster(client.get_async_connection().await?))
    }

    async fn query(&self, cmd: &Cmd) -> redis::RedisResult<Value> {
        let reply = match self {
            Self::Standalone(c) => c.clone().req_packed_command(cmd).await,
            Self::Cluster(c) => c.clone().req_packed_command(cmd).await,
        };
        reply?.extract_error()
    }
}

/// The raw driver: `GET` (ro), `GET` + `SET .. PXAT` of the bytes it got (rw), `PEXPIREAT`
/// (touch).
pub(crate) struct RedisFloor {
    conn: Conn,
    keys: Vec<String>,
}

impl RedisFloor {
    pub(crate) async fn prepare(conn: Conn, n: usize, size: usize) -> Res<Self> {
        let keys = (0..n)
            .map(|_| format!("bench-floor:{}", Id::random()))
            .collect();
        let keys = fill(keys, 64, |i, key| {
            let conn = conn.clone();
            async move {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key)
                    .arg(payload::bytes(&payload::object(i, size)))
                    .arg("PXAT")
                    .arg(an_hour_from_now_millis());
                conn.query(&cmd).await?;
                Ok(())
            }
        })
        .await?;
        Ok(Self { conn, keys })
    }
}

#[async_trait]
impl Subject for RedisFloor {
    fn sessions(&self) -> usize {
        self.keys.len()
    }

    async fn cycle(&self, workload: Workload, _task: usize, slot: usize, _n: u64) -> Res {
        let key = &self.keys[slot];
        if workload == Workload::Touch {
            let mut cmd = redis::cmd("PEXPIREAT");
            cmd.arg(key).arg(an_hour_from_now_millis());
            return match self.conn.query(&cmd).await? {
                Value::Int(1) => Ok(()),
                _ => Err("session vanished".into()),
            };
        }
        let mut get = redis::cmd("GET");
        get.arg(key);
        let Value::BulkString(bytes) = self.conn.query(&get).await? else {
            return Err("session vanished".into());
        };
        if workload == Workload::Rw {
            let mut set = redis::cmd("SET");
            set.arg(key)
                .arg(bytes)
                .arg("PXAT")
                .arg(an_hour_from_now_millis());
            self.conn.query(&set).await?;
        }
        Ok(())
    }
}

/// The CPU time of one Redis server, or of every node of a cluster, from `INFO cpu`.
pub(crate) struct RedisCpu(Vec<MultiplexedConnection>);

impl RedisCpu {
    /// Connects to each of `urls` (every node of a cluster).
    pub(crate) async fn connect(urls: &[String]) -> Res<Self> {
        let mut nodes = Vec::with_capacity(urls.len());
        for url in urls {
            let client = redis::Client::open(url.as_str())?;
            nodes.push(client.get_multiplexed_async_connection().await?);
        }
        Ok(Self(nodes))
    }
}

#[async_trait]
impl ServerCpu for RedisCpu {
    async fn cpu_time(&self) -> Res<Duration> {
        let mut total = Duration::ZERO;
        for node in &self.0 {
            let info: String = redis::cmd("INFO")
                .arg("cpu")
                .query_async(&mut node.clone())
                .await?;
            total += info_cpu(&info).ok_or("INFO cpu has no used_cpu_sys / used_cpu_user")?;
        }
        Ok(total)
    }
}

/// `used_cpu_sys` + `used_cpu_user` (the whole server process) from an `INFO cpu` reply.
fn info_cpu(info: &str) -> Option<Duration> {
    let field = |name: &str| {
        info.lines().find_map(|l| {
            l.trim()
                .strip_prefix(name)?
                .strip_prefix(':')?
                .parse::<f64>()
                .ok()
        })
    };
    Some(Duration::from_secs_f64(
        field("used_cpu_sys")? + field("used_cpu_user")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_cpu_adds_system_and_user_time_of_the_whole_server() {
        let info = "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\n\
                    used_cpu_sys_children:9.0\r\nused_cpu_sys_main_thread:1.0\r\n";
        assert_eq!(info_cpu(info), Some(Duration::from_millis(3750)));
        assert_eq!(info_cpu("# CPU\r\nused_cpu_sys:1.0\r\n"), None);
    }
}
