#![doc = include_str!("../README.md")]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::RawDocumentBuf;
use mongodb::options::{
    Acknowledgment, ClientOptions, CollectionOptions, ReadConcern, ReadPreference,
    SelectionCriteria, WriteConcern,
};
use mongodb::{Client, Collection};
use session_core::{Clock, Codec, DEFAULT_TIMEOUT, Error, MessagePack, Result, check_timeout};

mod document;
mod express;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod names;
mod principals;
mod store;

/// How sessions are laid out in their documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// This crate's own: the codec's blob, `created` and `version` fields.
    Native,
    /// connect-mongo's: express-session's JSON as a string, versions inside it.
    Express,
}

/// A session store on MongoDB, one document per session.
///
/// Cheap to clone: clones share the driver's connection pool.
#[derive(Clone)]
pub struct MongoStore {
    collection: Collection<RawDocumentBuf>,
    codec: Arc<dyn Codec>,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    layout: Layout,
    /// Slots for driver operations running at once, shared by clones (see `store::timed`).
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("namespace", &self.collection.namespace().to_string())
            .field("codec", &self.codec)
            .field("timeout", &self.timeout)
            .field("clock", &self.clock)
            .field("layout", &self.layout)
            .finish()
    }
}

impl MongoStore {
    /// The database used unless the URL names one or [`Self::with_database`] is called.
    pub const DEFAULT_DATABASE: &'static str = "sessions";
    /// The collection used unless [`Self::with_collection`] is called.
    pub const DEFAULT_COLLECTION: &'static str = "sessions";
    /// The database [`Self::express_compatible`] picks when the URL or client names none:
    /// connect-mongo's, which takes the Node driver's default.
    pub const EXPRESS_DEFAULT_DATABASE: &'static str = "test";
    /// Connect timeout applied by [`Self::connect`] unless the URL sets one
    /// (`connectTimeoutMS`).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Server selection timeout applied by [`Self::connect`] unless the URL sets one
    /// (`serverSelectionTimeoutMS`; the driver's own default is 30 s).
    pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
    /// The largest stored document MongoDB accepts (16 MiB); a record whose document would be
    /// larger fails with [`Error::TooLarge`] before the round trip.
    pub const MAX_DOCUMENT_SIZE: usize = document::MAX_DOCUMENT_SIZE;

    /// A store on a new client for `url` (`mongodb://…` or `mongodb+srv://…`), with the default
    /// connect and server selection timeouts unless the URL sets them.
    ///
    /// Whatever read preference, read concern or write concern the URL names, the store reads
    /// from the primary and writes with `w: "majority", j: true` (see the crate docs).
    ///
    /// The driver connects lazily: this does not contact the server (a `mongodb+srv` URL is
    /// resolved in DNS, though). Call [`Self::migrate`] at startup to check the connection and
    /// create the TTL index.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the URL is invalid or cannot be resolved.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| Error::backend("parse the MongoDB URL", e))?;
        options
            .connect_timeout
            .get_or_insert(Self::DEFAULT_CONNECT_TIMEOUT);
        options
            .server_selection_timeout
            .get_or_insert(Self::DEFAULT_SERVER_SELECTION_TIMEOUT);
        let client = Client::with_options(options)
            .map_err(|e| Error::backend("create a MongoDB client", e))?;
        Ok(Self::new(client))
    }

    /// A store on an existing client, in the client's default database (the one named in its
    /// URL) or else [`Self::DEFAULT_DATABASE`], collection [`Self::DEFAULT_COLLECTION`].
    ///
    /// The client's own connect and server selection timeouts are used as they are; the
    /// store's [timeout](Self::with_timeout) still bounds every call. Its read preference and
    /// concerns are not: the store reads from the primary and writes with `w: "majority",
    /// j: true`.
    #[must_use]
    pub fn new(client: Client) -> Self {
        let database = client.default_database().map_or_else(
            || Self::DEFAULT_DATABASE.to_owned(),
            |db| db.name().to_owned(),
        );
        Self {
            collection: open(&client, &database, Self::DEFAULT_COLLECTION),
            codec: Arc::new(MessagePack),
            timeout: DEFAULT_TIMEOUT,
            clock: session_core::clock::system(),
            layout: Layout::Native,
            in_flight: Arc::new(tokio::sync::Semaphore::new(store::MAX_IN_FLIGHT)),
        }
    }

    /// Switches to connect-mongo's layout, so that an Express app using `express-session` with
    /// `connect-mongo` and this store share their sessions: documents
    /// `{_id: sid, session: "<express-session's JSON>", expires: Date}` in connect-mongo's
    /// default place, the collection [`Self::DEFAULT_COLLECTION`] (`sessions`) of the client's
    /// default database (the one its URL names), else [`Self::EXPRESS_DEFAULT_DATABASE`]
    /// (`test`). Call [`Self::with_database`] and [`Self::with_collection`] after it for
    /// connect-mongo's `dbName` and `collectionName`.
    ///
    /// The stored form is fixed by express-session, so the [codec](Self::with_codec) is not
    /// used. See the crate docs, "Express-compatible layout", for the versions the Rust side
    /// keeps inside that JSON and what is not shared.
    #[must_use]
    pub fn express_compatible(mut self) -> Self {
        let client = self.collection.client();
        let database = client.default_database().map_or_else(
            || Self::EXPRESS_DEFAULT_DATABASE.to_owned(),
            |db| db.name().to_owned(),
        );
        self.collection = open(client, &database, Self::DEFAULT_COLLECTION);
        self.layout = Layout::Express;
        self
    }

    /// Whether the store uses connect-mongo's layout ([`Self::express_compatible`]).
    #[must_use]
    pub fn is_express_compatible(&self) -> bool {
        self.layout == Layout::Express
    }

    /// Uses the database `name` (same collection name).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if MongoDB does not allow `name` as a database name (empty,
    /// 64 bytes or longer, or containing one of `/\. "$*<>:|?` or NUL), or if the namespace
    /// `name.collection` would be longer than 255 bytes.
    pub fn with_database(mut self, name: &str) -> Result<Self> {
        names::check_database(name)?;
        let collection = self.collection.name().to_owned();
        names::check_collection(name, &collection)?;
        self.collection = open(self.collection.client(), name, &collection);
        Ok(self)
    }

    /// Uses the collection `name` (same database).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if MongoDB does not allow `name` as a collection name (empty,
    /// containing `$` or NUL, or starting with `system.`), or if the namespace `database.name`
    /// would be longer than 255 bytes.
    pub fn with_collection(mut self, name: &str) -> Result<Self> {
        let database = self.collection.namespace().db;
        names::check_collection(&database, name)?;
        self.collection = open(self.collection.client(), &database, name);
        Ok(self)
    }

    /// Encodes session data with `codec` instead of [`MessagePack`]. Both built-in codecs read
    /// each other's output, so switching keeps stored sessions readable.
    ///
    /// Not used by the [Express-compatible layout](Self::express_compatible), whose stored
    /// form is express-session's JSON.
    #[must_use]
    pub fn with_codec(mut self, codec: impl Codec) -> Self {
        self.codec = Arc::new(codec);
        self
    }

    /// Fails any single store operation that takes longer than `timeout` (default
    /// [`session_core::DEFAULT_TIMEOUT`]) with [`Error::Backend`] whose source is
    /// [`session_core::Timeout`]. The abandoned operation's connection is closed by the driver,
    /// not reused.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a zero duration, which would fail every operation.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self> {
        self.timeout = check_timeout(timeout)?;
        Ok(self)
    }

    /// Sets the app server's clock (default: the host's).
    ///
    /// This store makes no decision with it: whether a session is expired is decided by the
    /// MongoDB server's clock in every operation, and the `expires_at` of a record is computed
    /// by the caller. It is taken so that every store has the same options, and so that
    /// tests can run a store on a host whose clock is wrong and check that it changes nothing.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The time limit of one store operation.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The collection sessions are kept in, with the store's read preference and concerns.
    #[must_use]
    pub fn collection(&self) -> &Collection<RawDocumentBuf> {
        &self.collection
    }
}

/// The collection `database.name` on `client`, with the read preference and concerns every
/// store operation needs, whatever the client was configured with.
fn open(client: &Client, database: &str, name: &str) -> Collection<RawDocumentBuf> {
    let options = CollectionOptions::builder()
        // A secondary may lag: it could still serve a session that was just logged out.
        .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        // On the primary, `local` sees every acknowledged write at once. (`majority` may lag
        // the writes it acknowledged by a moment outside causally consistent sessions, and
        // `available` may return orphaned copies on a sharded cluster.)
        .read_concern(ReadConcern::local())
        // A write is acknowledged once a majority of the replica set has it in its journal, so
        // a failover cannot roll back a session the app was told is created, saved or deleted.
        .write_concern(
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build(),
        )
        .build();
    client
        .database(database)
        .collection_with_options(name, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_zero_timeout_is_refused() {
        let store = MongoStore::connect("mongodb://127.0.0.1:1/")
            .await
            .expect("connect is lazy");
        assert!(matches!(
            store.clone().with_timeout(Duration::ZERO),
            Err(Error::InvalidConfig(_))
        ));
        let store = store
            .with_timeout(Duration::from_millis(1500))
            .expect("a positive timeout");
        assert_eq!(store.timeout(), Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn the_default_timeout_is_the_workspace_default() {
        let store = MongoStore::connect("mongodb://127.0.0.1:1/")
            .await
            .expect("connect is lazy");
        assert_eq!(store.timeout(), DEFAULT_TIMEOUT);
    }

    #[tokio::test]
    async fn bad_names_are_refused_and_good_ones_kept() {
        let store = MongoStore::connect("mongodb://127.0.0.1:1/app")
            .await
            .expect("connect is lazy");
        assert_eq!(store.collection().namespace().to_string(), "app.sessions");
        assert!(matches!(
            store.clone().with_database("bad.name"),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            store.clone().with_collection("$cmd"),
            Err(Error::InvalidConfig(_))
        ));
        let store = store
            .with_database("other")
            .expect("valid")
            .with_collection("web")
            .expect("valid");
        assert_eq!(store.collection().namespace().to_string(), "other.web");
        // A long collection name that fits one database but not a longer one.
        let store = store.with_collection(&"c".repeat(249)).expect("255 bytes");
        assert!(matches!(
            store.with_database("longer"),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[tokio::test]
    async fn express_compatible_picks_connect_mongos_default_place() {
        let bare = MongoStore::connect("mongodb://127.0.0.1:1/")
            .await
            .expect("connect is lazy");
        assert!(!bare.is_express_compatible());
        assert_eq!(
            bare.collection().namespace().to_string(),
            "sessions.sessions"
        );
        let bare = bare.express_compatible();
        assert!(bare.is_express_compatible());
        assert_eq!(bare.collection().namespace().to_string(), "test.sessions");
        assert_primary_majority(&bare);

        let named = MongoStore::connect("mongodb://127.0.0.1:1/app")
            .await
            .expect("connect is lazy")
            .with_collection("before")
            .expect("valid")
            .express_compatible();
        assert_eq!(
            named.collection().namespace().to_string(),
            "app.sessions",
            "the URL's database, connect-mongo's collection"
        );
        let named = named
            .with_database("web")
            .expect("valid")
            .with_collection("express_sessions")
            .expect("valid");
        assert!(
            named.is_express_compatible(),
            "names do not change the layout"
        );
        assert_eq!(
            named.collection().namespace().to_string(),
            "web.express_sessions"
        );
    }

    /// The store's read preference and concerns, whatever the client asked for.
    fn assert_primary_majority(store: &MongoStore) {
        let collection = store.collection();
        assert!(
            matches!(
                collection.selection_criteria(),
                Some(SelectionCriteria::ReadPreference(ReadPreference::Primary))
            ),
            "reads go to the primary: {:?}",
            collection.selection_criteria()
        );
        assert_eq!(
            collection.write_concern(),
            Some(
                &WriteConcern::builder()
                    .w(Acknowledgment::Majority)
                    .journal(true)
                    .build()
            ),
            "writes are acknowledged by a majority, journaled"
        );
        assert_eq!(collection.read_concern(), Some(&ReadConcern::local()));
    }

    const SECONDARY: &str = "mongodb://127.0.0.1:1/app?readPreference=secondary\
        &readConcernLevel=available&w=1&journal=false";

    #[tokio::test]
    async fn a_url_asking_for_secondaries_still_reads_from_the_primary() {
        let store = MongoStore::connect(SECONDARY)
            .await
            .expect("connect is lazy");
        assert!(
            matches!(
                store.collection().client().selection_criteria(),
                Some(SelectionCriteria::ReadPreference(
                    ReadPreference::Secondary { .. }
                ))
            ),
            "the client keeps what the URL asked for"
        );
        assert_primary_majority(&store);
        let store = store
            .with_database("other")
            .expect("valid")
            .with_collection("web")
            .expect("valid");
        assert_primary_majority(&store);
    }

    #[tokio::test]
    async fn a_client_asking_for_secondaries_still_reads_from_the_primary() {
        let options = ClientOptions::parse(SECONDARY).await.expect("valid URL");
        let client = Client::with_options(options).expect("a client");
        assert_primary_majority(&MongoStore::new(client));
    }
}
