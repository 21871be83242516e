//! The Redis floor: `GET` and `SET` of the stored bytes under a plain string key.

use async_trait::async_trait;
use redis::aio::ConnectionLike;
use redis::{Cmd, Value};
use session_core::Id;

use super::{an_hour_from_now, fill};
use crate::harness::{Res, Role, Subject, Workload};
use crate::payload;

/// A shared multiplexed connection, to one server or to a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Standalone(redis::aio::MultiplexedConnection),
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

fn key(id: &Id) -> String {
    format!("bench-floor:{id}")
}

fn unix_millis(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The raw driver: `GET` (ro), `GET` + `SET .. PXAT` of the bytes it got (rw), `PEXPIREAT`
/// (touch).
pub(crate) struct RedisFloor {
    conn: Conn,
    keys: Vec<String>,
    count_in_label: bool,
}

impl RedisFloor {
    pub(crate) async fn prepare(conn: Conn, n: usize, size: usize) -> Res<Self> {
        let keys: Vec<String> = (0..n).map(|_| key(&Id::random())).collect();
        let shared = std::sync::Arc::new(keys);
        fill(n, 64, |i| {
            let conn = conn.clone();
            let keys = std::sync::Arc::clone(&shared);
            async move {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&keys[i])
                    .arg(payload::bytes(&payload::object(i, size)))
                    .arg("PXAT")
                    .arg(unix_millis(an_hour_from_now()));
                conn.query(&cmd).await?;
                Ok(())
            }
        })
        .await?;
        let keys = std::sync::Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone());
        Ok(Self {
            conn,
            keys,
            count_in_label: false,
        })
    }

    /// Names the number of sessions in the label (for the scaling tables).
    pub(crate) fn with_sessions_in_label(mut self) -> Self {
        self.count_in_label = true;
        self
    }
}

#[async_trait]
impl Subject for RedisFloor {
    fn label(&self) -> String {
        if self.count_in_label {
            format!(
                "floor: redis-rs, {} sessions",
                crate::scaling::thousands(self.keys.len())
            )
        } else {
            "floor: redis-rs GET / SET / PEXPIREAT".into()
        }
    }

    fn role(&self) -> Role {
        Role::Floor
    }

    fn sessions(&self) -> usize {
        self.keys.len()
    }

    async fn cycle(&self, workload: Workload, _task: usize, slot: usize, _n: u64) -> Res {
        let key = &self.keys[slot];
        if workload == Workload::Touch {
            let mut cmd = redis::cmd("PEXPIREAT");
            cmd.arg(key).arg(unix_millis(an_hour_from_now()));
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
                .arg(unix_millis(an_hour_from_now()));
            self.conn.query(&set).await?;
        }
        Ok(())
    }
}
