#![doc = include_str!("../README.md")]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use session_core::{Clock, Codec, DEFAULT_TIMEOUT, Error, Id, MessagePack, Result, check_timeout};

#[cfg(feature = "cluster")]
mod cluster;
mod connection;
mod express;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod layout;
mod ops;
mod principals;
mod scripts;

use connection::Connection;
use layout::Key;

/// A session store on Redis, standalone or Redis Cluster.
///
/// Cheap to clone: clones share the connection. See the [crate documentation](crate) for the
/// clock rule, the data layout, what each operation costs and the errors.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    codec: Arc<dyn Codec>,
    timeout: Duration,
    /// Kept for [`Debug`] and for the common option set; never read for a decision (Redis's
    /// clock decides expiry, and the records carry their own `expires_at`).
    clock: Arc<dyn Clock>,
    layout: Layout,
}

/// What a stored value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// This crate's own: a 25-byte header, the principal if there is one, then the codec's
    /// data.
    Native,
    /// connect-redis's: express-session's JSON, the Rust side's version inside it.
    Express,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Connection details can carry credentials; the store shows only its settings.
        f.debug_struct("RedisStore")
            .field("connection", &self.connection.kind())
            .field("prefix", &self.prefix)
            .field("codec", &self.codec)
            .field("timeout", &self.timeout)
            .field("clock", &self.clock)
            .field("layout", &self.layout)
            .finish()
    }
}

impl RedisStore {
    /// The key prefix of a new store: `session:`.
    pub const DEFAULT_PREFIX: &'static str = "session:";

    /// The key prefix [`express_compatible`](Self::express_compatible) sets: `sess:`,
    /// connect-redis's default.
    pub const EXPRESS_PREFIX: &'static str = "sess:";

    /// The longest prefix [`with_prefix`](Self::with_prefix) accepts, in bytes.
    pub const MAX_PREFIX_LEN: usize = 128;

    /// The largest stored value (25-byte header, principal and encoded data) the store writes,
    /// in bytes: 512 MiB, Redis's default `proto-max-bulk-len`. A larger record fails with
    /// [`Error::TooLarge`] before it is sent.
    pub const MAX_VALUE_LEN: usize = layout::MAX_VALUE_LEN;

    /// Connects to a standalone Redis server, e.g. `redis://127.0.0.1:6379/0`.
    ///
    /// The connection is a [`ConnectionManager`]: one multiplexed connection shared by every
    /// clone of the store, re-established in the background when it breaks. Each connection
    /// attempt is limited to [`session_core::DEFAULT_TIMEOUT`], and so is this call.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the URL is invalid or the server cannot be reached in time.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(Self::with_connection(Connection::standalone(url).await?))
    }

    /// Connects to a Redis Cluster through any of its nodes, e.g.
    /// `["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]`.
    ///
    /// The driver learns the slot map from the nodes and routes each operation to the master
    /// that owns its key, following `MOVED`/`ASK` redirections. Each connection attempt and
    /// each node's reply are limited to [`session_core::DEFAULT_TIMEOUT`], and so is this call.
    ///
    /// When 16 operations in a row fail to reach a master (connection errors, cluster errors,
    /// operations cut by the store's timeout), the store replaces the driver's connection with
    /// a fresh one from `nodes`, in the background and at most once per
    /// [`session_core::DEFAULT_TIMEOUT`]: after a failover the driver's connection could stay
    /// stuck although the cluster was healthy again.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is invalid or no node can be reached in time.
    #[cfg(feature = "cluster")]
    pub async fn connect_cluster<T: redis::IntoConnectionInfo>(
        nodes: impl IntoIterator<Item = T>,
    ) -> Result<Self> {
        Ok(Self::with_connection(Connection::cluster(nodes).await?))
    }

    /// A store on an existing standalone connection, with the default prefix, codec and
    /// timeout.
    ///
    /// Configure the manager's own reconnection and timeouts as you need; the store's
    /// [timeout](Self::with_timeout) bounds every operation regardless.
    #[must_use]
    pub fn new(connection: ConnectionManager) -> Self {
        Self::with_connection(Connection::Standalone(connection))
    }

    /// A store on an existing Redis Cluster connection, with the default prefix, codec and
    /// timeout. Unlike [`connect_cluster`](Self::connect_cluster)'s, this connection is never
    /// replaced: the store has no client to build another.
    #[cfg(feature = "cluster")]
    #[must_use]
    pub fn new_cluster(connection: redis::cluster_async::ClusterConnection) -> Self {
        Self::with_connection(Connection::Cluster(cluster::Cluster::fixed(connection)))
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            prefix: Arc::from(Self::DEFAULT_PREFIX),
            codec: Arc::new(MessagePack),
            timeout: DEFAULT_TIMEOUT,
            clock: session_core::clock::system(),
            layout: Layout::Native,
        }
    }

    /// Switches to connect-redis's layout, so that an Express app using `express-session` with
    /// `connect-redis` and this store share their sessions: each session is the string
    /// `sess:{id}` holding express-session's JSON, expiring with the session. Call
    /// [`with_prefix`](Self::with_prefix) after it for connect-redis's `prefix` option.
    ///
    /// The stored form is fixed by express-session, so the [codec](Self::with_codec) is not
    /// used. Needs Redis 7.0 or later (`PEXPIRETIME`). See the crate documentation,
    /// [Express-compatible layout](crate#express-compatible-layout), for how the Rust side keeps
    /// its version inside that JSON and what is not shared.
    #[must_use]
    pub fn express_compatible(mut self) -> Self {
        self.layout = Layout::Express;
        self.prefix = Arc::from(Self::EXPRESS_PREFIX);
        self
    }

    /// Whether the store uses connect-redis's layout ([`express_compatible`](Self::express_compatible)).
    #[must_use]
    pub fn is_express_compatible(&self) -> bool {
        self.layout == Layout::Express
    }

    /// Stores sessions under `{prefix}{id}` instead of `session:{id}` (`sess:{id}` in the
    /// [Express-compatible layout](Self::express_compatible), which this option overrides when
    /// called after it).
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

    /// Limits each operation to `timeout` (default [`session_core::DEFAULT_TIMEOUT`]).
    ///
    /// An operation that has not finished in time, because Redis is down, paused, overloaded or
    /// unreachable, fails with [`Error::Backend`] whose source is a [`session_core::Timeout`].
    /// The store stays usable: later operations work again once Redis answers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a zero timeout, which would fail every operation.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self> {
        self.timeout = check_timeout(timeout)?;
        Ok(self)
    }

    /// Encodes session data with `codec` (default [`MessagePack`]).
    ///
    /// Both built-in codecs read both built-in formats, so switching keeps stored sessions
    /// readable. Not used by the [Express-compatible layout](Self::express_compatible), whose
    /// stored form is express-session's JSON.
    #[must_use]
    pub fn with_codec(mut self, codec: impl Codec) -> Self {
        self.codec = Arc::new(codec);
        self
    }

    /// Sets the app's clock (default [`SystemClock`](session_core::SystemClock)), e.g. a
    /// skewed [`OffsetClock`](session_core::clock::OffsetClock) in tests.
    ///
    /// The Redis store reads it for nothing: Redis's clock decides every expiry (through the
    /// keys' expiry times), and the `expires_at` of each record comes from the caller, who
    /// computed it with the app's clock. So a store on an app server whose clock is wrong
    /// behaves exactly like one whose clock is right; the option exists so that every store
    /// takes the same options and the conformance suite's `skew_tests!` can show that.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
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

    /// The key of the session `id`, as bytes.
    fn key_bytes(&self, id: &Id) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + id.as_str().len());
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(id.as_str().as_bytes());
        key
    }

    fn key_arg<'a>(&'a self, id: &'a Id) -> Key<'a> {
        Key {
            prefix: &self.prefix,
            id,
        }
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
}
