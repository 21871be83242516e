//! The connection to Redis: connecting, sending one command or script, and classifying the
//! driver's errors.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, Value};
use session_core::{DEFAULT_TIMEOUT, Error, Result, timed};

use crate::scripts::Script;

const CONNECT: &str = "connect to Redis";

/// A standalone or a Cluster connection; both are shared, reference-counted handles.
#[derive(Clone)]
pub(crate) enum Connection {
    Standalone(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(crate::cluster::Cluster),
}

impl Connection {
    /// A [`ConnectionManager`] on a standalone server.
    pub(crate) async fn standalone(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::backend(CONNECT, e))?;
        // No driver response timeout: the store's own per-operation limit bounds every call,
        // and a shorter driver limit would silently cut a longer `with_timeout`. Few retries,
        // because an operation waiting for a reconnection gives up after its timeout anyway
        // and the next one starts a fresh attempt.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_TIMEOUT))
            .set_response_timeout(None)
            .set_number_of_retries(2);
        let manager = timed(
            CONNECT,
            DEFAULT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await?
        .map_err(|e| Error::backend(CONNECT, e))?;
        Ok(Self::Standalone(manager))
    }

    /// A Cluster connection through any of `nodes`.
    #[cfg(feature = "cluster")]
    pub(crate) async fn cluster<T: redis::IntoConnectionInfo>(
        nodes: impl IntoIterator<Item = T>,
    ) -> Result<Self> {
        let client = redis::cluster::ClusterClient::builder(nodes)
            .connection_timeout(DEFAULT_TIMEOUT)
            .response_timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(|e| Error::backend(CONNECT, e))?;
        let connection = timed(CONNECT, DEFAULT_TIMEOUT, client.get_async_connection())
            .await?
            .map_err(|e| Error::backend(CONNECT, e))?;
        Ok(Self::Cluster(crate::cluster::Cluster::rebuildable(
            client, connection,
        )))
    }

    /// Sends `cmd` and returns its reply, an error reply as `Err`.
    pub(crate) async fn query(&self, cmd: &Cmd) -> redis::RedisResult<Value> {
        // Both handles are shared, reference-counted senders: a clone is what lets concurrent
        // operations use one connection.
        let reply = match self {
            Self::Standalone(c) => c.clone().req_packed_command(cmd).await,
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.query(cmd).await,
        };
        reply?.extract_error()
    }

    /// Runs `script` on `key` with `args` appended: `EVALSHA`, and `EVAL` if the server does not
    /// have the script cached (after a restart, a failover, `SCRIPT FLUSH`), which also caches
    /// it for the next call.
    pub(crate) async fn eval(
        &self,
        script: &Script,
        key: impl redis::ToRedisArgs + Copy,
        size_hint: usize,
        args: impl Fn(&mut Cmd),
    ) -> redis::RedisResult<Value> {
        let build = |command: &str, body: &str| {
            let mut cmd = Cmd::with_capacity(9, body.len() + size_hint + 64);
            cmd.arg(command).arg(body).arg(1).arg(key);
            args(&mut cmd);
            cmd
        };
        match self.query(&build("EVALSHA", script.sha())).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.query(&build("EVAL", script.code())).await
            }
            reply => reply,
        }
    }

    /// Sends `first`, then `script` on `keys` with `args` appended, as one pipeline (one round
    /// trip; on Redis Cluster every key must be in one slot), and returns the script's reply;
    /// `first`'s error reply, if any, as `Err`. Like [`eval`](Self::eval), `EVALSHA` first and,
    /// if the server does not have the script, `EVAL` (alone: `first` has run by then).
    pub(crate) async fn eval_after(
        &self,
        first: Cmd,
        script: &Script,
        keys: [&[u8]; 2],
        args: impl Fn(&mut Cmd),
    ) -> redis::RedisResult<Value> {
        let build = |command: &str, body: &str| {
            let mut cmd = Cmd::with_capacity(10, body.len() + keys[0].len() + keys[1].len() + 160);
            cmd.arg(command).arg(body).arg(2).arg(keys[0]).arg(keys[1]);
            args(&mut cmd);
            cmd
        };
        let mut pipeline = Pipeline::with_capacity(2);
        pipeline.add_command(first);
        pipeline.add_command(build("EVALSHA", script.sha()));
        let replies = match self {
            Self::Standalone(c) => c.clone().req_packed_commands(&pipeline, 0, 2).await,
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.pipeline(&pipeline).await,
        }?;
        let mut replies = replies.into_iter();
        let (Some(first), Some(second)) = (replies.next(), replies.next()) else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "a pipeline of two commands got fewer replies",
            )));
        };
        first.extract_error()?;
        match second.extract_error() {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.query(&build("EVAL", script.code())).await
            }
            reply => reply,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "standalone",
            #[cfg(feature = "cluster")]
            Self::Cluster(_) => "cluster",
        }
    }
}

/// Maps a driver error. A key of another type under a session key (`WRONGTYPE`) is a foreign
/// record, [`Error::Decode`]; everything else (connection errors, `OOM`, `READONLY`, `CLUSTERDOWN`
/// and other error replies) is [`Error::Backend`] with the driver's error as its source.
pub(crate) fn driver_error(operation: &'static str, e: RedisError) -> Error {
    if e.code() == Some("WRONGTYPE") {
        Error::decode(e)
    } else {
        Error::backend(operation, e)
    }
}
