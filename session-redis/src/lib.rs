#![doc = include_str!("../README.md")]

use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, Bytes};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, RedisError, RedisWrite, ToRedisArgs, Value};
use session_core::{Codec, Error, Id, MessagePack, Record, Result, Store, Timeout};
use time::OffsetDateTime;

mod scripts;

use scripts::Script;

const CONNECT: &str = "connect to Redis";
const CREATE: &str = "create a session";
const LOAD: &str = "load a session";
const SAVE: &str = "save a session";
const TOUCH: &str = "touch a session";
const DELETE: &str = "delete a session";

/// A session store on Redis, standalone or Redis Cluster.
///
/// Cheap to clone: clones share the connection. See the [crate documentation](crate) for the
/// data layout, the scripts and what each operation costs.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    codec: Arc<dyn Codec>,
    timeout: Duration,
}

#[derive(Clone)]
enum Connection {
    Standalone(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Connection {
    async fn query(&self, cmd: &Cmd) -> redis::RedisResult<Value> {
        // Both handles are shared, reference-counted senders: a clone is what lets concurrent
        // operations use one connection.
        let reply = match self {
            Self::Standalone(c) => c.clone().req_packed_command(cmd).await,
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.clone().req_packed_command(cmd).await,
        };
        reply?.extract_error()
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "standalone",
            #[cfg(feature = "cluster")]
            Self::Cluster(_) => "cluster",
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Connection details can carry credentials; the store shows only its settings.
        f.debug_struct("RedisStore")
            .field("connection", &self.connection.kind())
            .field("prefix", &self.prefix)
            .field("codec", &self.codec)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisStore {
    /// The key prefix of a new store: `session:`.
    pub const DEFAULT_PREFIX: &'static str = "session:";

    /// The time limit of one operation of a new store: 3 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

    /// The longest prefix [`with_prefix`](Self::with_prefix) accepts, in bytes.
    pub const MAX_PREFIX_LEN: usize = 128;

    /// Connects to a standalone Redis server, e.g. `redis://127.0.0.1:6379/0`.
    ///
    /// The connection is a [`ConnectionManager`]: one multiplexed connection shared by every
    /// clone of the store, re-established in the background when it breaks. Each connection
    /// attempt is limited to [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT), and so is this call.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the URL is invalid or the server cannot be reached in time.
    pub async fn new(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::backend(CONNECT, e))?;
        // No driver response timeout: the store's own per-operation limit bounds every call,
        // and a shorter driver limit would silently cut a longer `with_timeout`. Few retries,
        // because an operation waiting for a reconnection gives up after its timeout anyway
        // and the next one starts a fresh attempt.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Self::DEFAULT_TIMEOUT))
            .set_response_timeout(None)
            .set_number_of_retries(2);
        let manager = bounded(
            CONNECT,
            Self::DEFAULT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await?
        .map_err(|e| Error::backend(CONNECT, e))?;
        Ok(Self::from_connection_manager(manager))
    }

    /// Connects to a Redis Cluster through any of its nodes, e.g.
    /// `["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]`.
    ///
    /// The driver learns the slot map from the nodes and routes each operation to the master
    /// that owns its key, following `MOVED`/`ASK` redirections. Each connection attempt and
    /// each node's reply are limited to [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT), and so is
    /// this call.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is invalid or no node can be reached in time.
    #[cfg(feature = "cluster")]
    pub async fn cluster<T: redis::IntoConnectionInfo>(
        nodes: impl IntoIterator<Item = T>,
    ) -> Result<Self> {
        let client = redis::cluster::ClusterClient::builder(nodes)
            .connection_timeout(Self::DEFAULT_TIMEOUT)
            .response_timeout(Self::DEFAULT_TIMEOUT)
            .build()
            .map_err(|e| Error::backend(CONNECT, e))?;
        let connection = bounded(
            CONNECT,
            Self::DEFAULT_TIMEOUT,
            client.get_async_connection(),
        )
        .await?
        .map_err(|e| Error::backend(CONNECT, e))?;
        Ok(Self::from_cluster_connection(connection))
    }

    /// A store on an existing standalone connection, with the default prefix, codec and
    /// timeout.
    ///
    /// Configure the manager's own reconnection and timeouts as you need; the store's
    /// [timeout](Self::with_timeout) bounds every operation regardless.
    #[must_use]
    pub fn from_connection_manager(connection: ConnectionManager) -> Self {
        Self::with_connection(Connection::Standalone(connection))
    }

    /// A store on an existing Redis Cluster connection, with the default prefix, codec and
    /// timeout.
    #[cfg(feature = "cluster")]
    #[must_use]
    pub fn from_cluster_connection(connection: redis::cluster_async::ClusterConnection) -> Self {
        Self::with_connection(Connection::Cluster(connection))
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            prefix: Arc::from(Self::DEFAULT_PREFIX),
            codec: Arc::new(MessagePack),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Stores sessions under `{prefix}{id}` instead of `session:{id}`.
    ///
    /// The prefix is 1 to [`MAX_PREFIX_LEN`](Self::MAX_PREFIX_LEN) printable ASCII characters
    /// without spaces and without `{` or `}`: braces would make a Redis Cluster hash every
    /// session to the same slot (a hash tag), putting all of them on one master.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a prefix outside those rules.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        validate_prefix(&prefix)?;
        self.prefix = Arc::from(prefix);
        Ok(self)
    }

    /// Limits each operation to `timeout` (default [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT)).
    ///
    /// An operation that has not finished in time, because Redis is down, paused, overloaded or
    /// unreachable, fails with [`Error::Backend`] whose source is a [`session_core::Timeout`].
    /// The store stays usable: later operations work again once Redis answers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a zero timeout, which would fail every operation.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self> {
        if timeout.is_zero() {
            return Err(Error::invalid_config(
                "the Redis operation timeout must be greater than zero",
            ));
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// Encodes session data with `codec` (default [`MessagePack`]).
    ///
    /// Both built-in codecs read both built-in formats, so switching keeps stored sessions
    /// readable.
    #[must_use]
    pub fn with_codec(mut self, codec: Arc<dyn Codec>) -> Self {
        self.codec = codec;
        self
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The time limit of one operation.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The Redis key of the session `id`: the prefix followed by the id.
    #[must_use]
    pub fn key(&self, id: &Id) -> String {
        let mut key = String::with_capacity(self.prefix.len() + id.as_str().len());
        key.push_str(&self.prefix);
        key.push_str(id.as_str());
        key
    }

    fn key_arg<'a>(&'a self, id: &'a Id) -> Key<'a> {
        Key {
            prefix: &self.prefix,
            id,
        }
    }

    /// Runs `script` with `args` appended after its one key: `EVALSHA`, and `EVAL` if the
    /// server does not have the script cached (after a restart, a failover, `SCRIPT FLUSH`),
    /// which also caches it for the next call.
    async fn eval(
        &self,
        script: &Script,
        id: &Id,
        size_hint: usize,
        args: impl Fn(&mut Cmd),
    ) -> redis::RedisResult<Value> {
        let build = |command: &str, body: &str| {
            let mut cmd = Cmd::with_capacity(
                9,
                body.len() + self.prefix.len() + id.as_str().len() + size_hint + 64,
            );
            cmd.arg(command).arg(body).arg(1).arg(self.key_arg(id));
            args(&mut cmd);
            cmd
        };
        match self.connection.query(&build("EVALSHA", script.sha())).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.connection.query(&build("EVAL", script.code())).await
            }
            reply => reply,
        }
    }
}

/// The key `{prefix}{id}`, written straight into the command buffer.
struct Key<'a> {
    prefix: &'a str,
    id: &'a Id,
}

impl ToRedisArgs for Key<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let id = self.id.as_str().as_bytes();
        let mut arg = out.bufmut_for_next_arg(self.prefix.len() + id.len());
        arg.put_slice(self.prefix.as_bytes());
        arg.put_slice(id);
    }
}

/// First byte of a stored value: the layout version.
const LAYOUT_V1: u8 = 1;

/// Bytes before the data: layout version, `created_at` (i64 ms), version (u64), `expires_at`
/// (i64 ms), the numbers big-endian.
const HEADER_LEN: usize = 25;

/// Where `expires_at` sits in the header.
const EXPIRES_AT: usize = 17;

fn header(created_at: OffsetDateTime, version: u64, expires_at: i64) -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[0] = LAYOUT_V1;
    header[1..9].copy_from_slice(&unix_millis(created_at).to_be_bytes());
    header[9..EXPIRES_AT].copy_from_slice(&version.to_be_bytes());
    header[EXPIRES_AT..].copy_from_slice(&expires_at.to_be_bytes());
    header
}

/// The numbers of a stored header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    created_at: i64,
    version: u64,
    expires_at: i64,
}

/// A stored value, header then data, written into the command buffer as one argument without
/// first joining the two.
struct StoredValue<'a> {
    header: [u8; HEADER_LEN],
    data: &'a [u8],
}

impl ToRedisArgs for StoredValue<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.bufmut_for_next_arg(HEADER_LEN + self.data.len());
        arg.put_slice(&self.header);
        arg.put_slice(self.data);
    }
}

/// A `PXAT`/`PEXPIREAT` time that has passed: Redis stores nothing, or deletes the key.
const PAST: i64 = 1;

/// The Redis expiry time of a record expiring at `expires_at`, as seen at `now` (both ms).
///
/// Redis removes a key once its expiry time has *passed*; a session is expired *at* its
/// `expires_at`. Setting the key's expiry 1 ms earlier makes the two agree.
fn redis_expiry(expires_at: i64, now: i64) -> i64 {
    if expires_at <= now {
        PAST
    } else {
        (expires_at - 1).max(PAST)
    }
}

fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Err(Error::invalid_config(
            "the Redis key prefix must not be empty: sessions would share the keyspace with \
             every other key",
        ));
    }
    if prefix.len() > RedisStore::MAX_PREFIX_LEN {
        return Err(Error::invalid_config(format!(
            "the Redis key prefix is {} bytes long; at most {} are allowed",
            prefix.len(),
            RedisStore::MAX_PREFIX_LEN
        )));
    }
    if let Some(c) = prefix
        .chars()
        .find(|&c| !c.is_ascii_graphic() || c == '{' || c == '}')
    {
        return Err(Error::invalid_config(format!(
            "the Redis key prefix contains {c:?}; use printable ASCII without spaces or braces"
        )));
    }
    Ok(())
}

/// Runs `future` for at most `limit`.
async fn bounded<T>(
    operation: &'static str,
    limit: Duration,
    future: impl Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| Error::backend(operation, Timeout(limit)))
}

/// Maps a driver error: a key of another type under a session key is a foreign record.
fn driver_error(operation: &'static str, e: RedisError) -> Error {
    if e.code() == Some("WRONGTYPE") {
        Error::decode(e)
    } else {
        Error::backend(operation, e)
    }
}

/// Milliseconds since the Unix epoch, rounded down (the precision Redis expiry has).
fn unix_millis(t: OffsetDateTime) -> i64 {
    let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
    // `OffsetDateTime` spans years -9999..=9999, well inside i64 milliseconds.
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

fn now_millis() -> i64 {
    unix_millis(OffsetDateTime::now_utc())
}

/// The reply shape the store did not expect (a server or proxy that is not Redis-compatible).
#[derive(Debug, Clone, Copy)]
struct UnexpectedReply(&'static str);

impl fmt::Display for UnexpectedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected reply from Redis to {}", self.0)
    }
}

impl std::error::Error for UnexpectedReply {}

/// A stored value that is not a well-formed session record.
#[derive(Debug, Clone, Copy)]
struct CorruptRecord(&'static str);

impl fmt::Display for CorruptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt session record in Redis: {}", self.0)
    }
}

impl std::error::Error for CorruptRecord {}

/// A stored value whose first byte names a layout this version does not read.
#[derive(Debug, Clone, Copy)]
struct UnknownLayout(u8);

impl fmt::Display for UnknownLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown session record layout (first byte {:#04x})",
            self.0
        )
    }
}

impl std::error::Error for UnknownLayout {}

/// A record at the largest version cannot be saved again.
#[derive(Debug, Clone, Copy)]
struct VersionOverflow;

impl fmt::Display for VersionOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the session version cannot be incremented past u64::MAX")
    }
}

impl std::error::Error for VersionOverflow {}

fn instant(millis: i64, field: &'static str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| Error::decode(CorruptRecord(field)))
}

static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::SAVE));
static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::TOUCH));

#[async_trait]
impl Store for RedisStore {
    async fn create(&self, record: &Record) -> Result<()> {
        let data = self.codec.encode(&record.data)?;
        let expires = unix_millis(record.expires_at);
        let expiry = redis_expiry(expires, now_millis());
        let mut cmd = Cmd::with_capacity(
            6,
            self.prefix.len() + record.id.as_str().len() + HEADER_LEN + data.len() + 48,
        );
        // NX: Redis treats a key whose expiry has passed as absent, so only a live record
        // blocks the create. An expiry in the past stores nothing.
        cmd.arg("SET")
            .arg(self.key_arg(&record.id))
            .arg(StoredValue {
                header: header(record.created_at, record.version, expires),
                data: &data,
            })
            .arg("NX")
            .arg("PXAT")
            .arg(expiry);
        let reply = bounded(CREATE, self.timeout, self.connection.query(&cmd))
            .await?
            .map_err(|e| driver_error(CREATE, e))?;
        match reply {
            Value::Okay => Ok(()),
            Value::Nil => Err(Error::AlreadyExists),
            _ => Err(Error::backend(CREATE, UnexpectedReply(CREATE))),
        }
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut cmd = Cmd::with_capacity(2, self.prefix.len() + id.as_str().len() + 8);
        cmd.arg("GET").arg(self.key_arg(id));
        let reply = bounded(LOAD, self.timeout, self.connection.query(&cmd))
            .await?
            .map_err(|e| driver_error(LOAD, e))?;
        let value = match reply {
            Value::Nil => return Ok(None),
            Value::BulkString(value) => Bytes::from(value),
            _ => return Err(Error::backend(LOAD, UnexpectedReply(LOAD))),
        };
        let header = parse_header(&value)?;
        // Redis has already dropped the key if its own clock says the record expired; the
        // application's clock, which computed `expires_at`, must agree that it is live.
        if header.expires_at <= now_millis() {
            return Ok(None);
        }
        let data = self.codec.decode(value.slice(HEADER_LEN..))?;
        Ok(Some(Record::from_parts(
            id.clone(),
            data,
            instant(header.created_at, "the creation time is out of range")?,
            instant(header.expires_at, "the expiry time is out of range")?,
            header.version,
        )))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let next = record
            .version
            .checked_add(1)
            .ok_or_else(|| Error::encode(VersionOverflow))?;
        let data = self.codec.encode(&record.data)?;
        let expires = unix_millis(record.expires_at);
        let expiry = redis_expiry(expires, now_millis());
        let value = StoredValue {
            header: header(record.created_at, next, expires),
            data: &data,
        };
        let expected = record.version.to_be_bytes();
        let reply = bounded(
            SAVE,
            self.timeout,
            self.eval(&SAVE_SCRIPT, &record.id, HEADER_LEN + data.len(), |cmd| {
                cmd.arg(&expected[..]).arg(&value).arg(expiry);
            }),
        )
        .await?
        .map_err(|e| driver_error(SAVE, e))?;
        match reply {
            Value::Int(scripts::OK) => Ok(()),
            Value::Int(scripts::CONFLICT) => Err(Error::Conflict),
            Value::Int(scripts::NOT_FOUND) => Err(Error::NotFound),
            Value::Int(scripts::CORRUPT) => Err(Error::decode(CorruptRecord(
                "the stored value does not start with a session header",
            ))),
            _ => Err(Error::backend(SAVE, UnexpectedReply(SAVE))),
        }
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let expires = unix_millis(expires_at);
        let expiry = redis_expiry(expires, now_millis());
        let expires = expires.to_be_bytes();
        let reply = bounded(
            TOUCH,
            self.timeout,
            self.eval(&TOUCH_SCRIPT, id, 32, |cmd| {
                cmd.arg(&expires[..]).arg(expiry);
            }),
        )
        .await?
        .map_err(|e| driver_error(TOUCH, e))?;
        match reply {
            Value::Int(scripts::PRESENT) => Ok(true),
            Value::Int(scripts::ABSENT) => Ok(false),
            Value::Int(scripts::CORRUPT) => Err(Error::decode(CorruptRecord(
                "the stored value does not start with a session header",
            ))),
            _ => Err(Error::backend(TOUCH, UnexpectedReply(TOUCH))),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let mut cmd = Cmd::with_capacity(2, self.prefix.len() + id.as_str().len() + 8);
        // UNLINK frees a large record's memory off the main thread.
        cmd.arg("UNLINK").arg(self.key_arg(id));
        let reply = bounded(DELETE, self.timeout, self.connection.query(&cmd))
            .await?
            .map_err(|e| driver_error(DELETE, e))?;
        match reply {
            Value::Int(_) => Ok(()),
            _ => Err(Error::backend(DELETE, UnexpectedReply(DELETE))),
        }
    }
}

/// The header of a stored value.
fn parse_header(value: &[u8]) -> Result<Header> {
    let header: &[u8; HEADER_LEN] = value
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| {
            Error::decode(CorruptRecord("the value is shorter than a session header"))
        })?;
    if header[0] != LAYOUT_V1 {
        return Err(Error::decode(UnknownLayout(header[0])));
    }
    let number = |at: usize| {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&header[at..at + 8]);
        bytes
    };
    Ok(Header {
        created_at: i64::from_be_bytes(number(1)),
        version: u64::from_be_bytes(number(9)),
        expires_at: i64::from_be_bytes(number(EXPIRES_AT)),
    })
}

// The store is shared across tasks and used as `Arc<dyn Store>`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RedisStore>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_validated() {
        for good in ["session:", "app1:sess:", "a", "x-y_z.w/"] {
            assert!(validate_prefix(good).is_ok(), "{good:?} should be accepted");
        }
        let too_long = "p".repeat(RedisStore::MAX_PREFIX_LEN + 1);
        for bad in [
            "",
            "with space:",
            "{tag}:",
            "a}",
            "tab\t",
            "ünï:",
            too_long.as_str(),
        ] {
            assert!(
                matches!(validate_prefix(bad), Err(Error::InvalidConfig(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn key_argument_is_prefix_then_id() {
        let id = Id::random();
        let mut cmd = Cmd::new();
        cmd.arg(Key {
            prefix: "p:",
            id: &id,
        });
        let args: Vec<_> = cmd.args_iter().collect();
        assert_eq!(args.len(), 1);
        let redis::Arg::Simple(bytes) = args[0] else {
            panic!("the key must be a plain argument");
        };
        assert_eq!(bytes, format!("p:{}", id.as_str()).as_bytes());
    }

    #[test]
    fn millis_round_down_and_back() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_999_999)
            .expect("valid instant");
        assert_eq!(unix_millis(t), 1_700_000_000_123);
        let before_epoch =
            OffsetDateTime::from_unix_timestamp_nanos(-1_500_000).expect("valid instant");
        assert_eq!(unix_millis(before_epoch), -2);
        assert_eq!(
            instant(1_700_000_000_123, "x").expect("in range"),
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000)
                .expect("valid instant")
        );
        assert!(matches!(instant(i64::MAX, "x"), Err(Error::Decode(_))));
    }

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let created = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000)
            .expect("valid instant");
        let mut value = header(created, u64::MAX, -7).to_vec();
        value.extend_from_slice(b"data");
        assert_eq!(
            parse_header(&value).expect("well-formed"),
            Header {
                created_at: 1_700_000_000_123,
                version: u64::MAX,
                expires_at: -7
            }
        );
        assert!(matches!(
            parse_header(&value[..HEADER_LEN - 1]),
            Err(Error::Decode(_))
        ));
        assert!(matches!(parse_header(b""), Err(Error::Decode(_))));
        value[0] = 2;
        assert!(matches!(parse_header(&value), Err(Error::Decode(_))));
    }

    #[test]
    fn stored_value_is_one_argument_of_header_then_data() {
        let mut cmd = Cmd::new();
        cmd.arg(StoredValue {
            header: [9; HEADER_LEN],
            data: b"abc",
        });
        let args: Vec<_> = cmd.args_iter().collect();
        assert_eq!(args.len(), 1);
        let redis::Arg::Simple(bytes) = args[0] else {
            panic!("the value must be a plain argument");
        };
        assert_eq!(&bytes[..HEADER_LEN], &[9; HEADER_LEN]);
        assert_eq!(&bytes[HEADER_LEN..], b"abc");
    }

    #[test]
    fn redis_expiry_is_one_millisecond_early_and_past_is_past() {
        assert_eq!(redis_expiry(1_000, 500), 999);
        assert_eq!(redis_expiry(501, 500), 500);
        assert_eq!(redis_expiry(500, 500), PAST);
        assert_eq!(redis_expiry(-5, 500), PAST);
        assert_eq!(redis_expiry(1, -10), PAST);
    }
}
