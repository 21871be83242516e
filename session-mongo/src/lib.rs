#![doc = include_str!("../README.md")]

use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, RawBsonRef, RawDocumentBuf, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use session_core::{Codec, Error, Id, MessagePack, Record, Result, Store, Timeout};
use time::OffsetDateTime;

/// Field names of the stored document (see the crate docs for the layout).
mod field {
    pub(crate) const ID: &str = "_id";
    pub(crate) const DATA: &str = "data";
    pub(crate) const CREATED: &str = "created";
    pub(crate) const EXPIRES: &str = "expires";
    pub(crate) const VERSION: &str = "version";
}

/// MongoDB's "duplicate key" error code.
const DUPLICATE_KEY: i32 = 11000;
/// `createIndexes` codes for "an index on these keys exists with other options or another name".
const INDEX_OPTIONS_CONFLICT: i32 = 85;
const INDEX_KEY_SPECS_CONFLICT: i32 = 86;

/// A session store on MongoDB, one document per session.
///
/// Cheap to clone: clones share the driver's connection pool.
#[derive(Clone)]
pub struct MongoStore {
    collection: Collection<RawDocumentBuf>,
    codec: Arc<dyn Codec>,
    operation_timeout: Duration,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("namespace", &self.collection.namespace().to_string())
            .field("codec", &self.codec)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

impl MongoStore {
    /// The database used unless the URL names one or [`Self::with_database`] is called.
    pub const DEFAULT_DATABASE: &'static str = "sessions";
    /// The collection used unless [`Self::with_collection`] is called.
    pub const DEFAULT_COLLECTION: &'static str = "sessions";
    /// How long one store operation may take, end to end, before it fails.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
    /// Connect timeout applied by [`Self::connect`] and [`Self::from_options`] unless the URL or
    /// the options set one (`connectTimeoutMS`).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Server selection timeout applied by [`Self::connect`] and [`Self::from_options`] unless the
    /// URL or the options set one (`serverSelectionTimeoutMS`; the driver's own default is 30 s).
    pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

    /// A store on an existing client, in the client's default database (the one named in its
    /// URL) or else [`Self::DEFAULT_DATABASE`], collection [`Self::DEFAULT_COLLECTION`].
    ///
    /// The client's own connect and server selection timeouts are used as they are; the
    /// operation timeout still bounds every call.
    #[must_use]
    pub fn new(client: Client) -> Self {
        let database = client
            .default_database()
            .unwrap_or_else(|| client.database(Self::DEFAULT_DATABASE));
        Self::from_collection(database.collection::<RawDocumentBuf>(Self::DEFAULT_COLLECTION))
    }

    /// A store on an existing collection handle, keeping its read and write concerns.
    #[must_use]
    pub fn from_collection<T: Send + Sync>(collection: Collection<T>) -> Self {
        Self {
            collection: collection.clone_with_type(),
            codec: Arc::new(MessagePack),
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// A store on a new client for `url` (`mongodb://…` or `mongodb+srv://…`), with the default
    /// connect and server selection timeouts unless the URL sets them.
    ///
    /// The driver connects lazily: this does not contact the server (a `mongodb+srv` URL is
    /// resolved in DNS, though). Call [`Self::migrate`] at startup to check the connection and
    /// create the TTL index.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the URL is invalid or cannot be resolved.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = ClientOptions::parse(url)
            .await
            .map_err(|e| Error::backend("parse the MongoDB URL", e))?;
        Self::from_options(options)
    }

    /// A store on a new client built from `options`, with the default connect and server
    /// selection timeouts where `options` leaves them unset.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the driver rejects the options.
    pub fn from_options(mut options: ClientOptions) -> Result<Self> {
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

    /// Uses the database `name` (same collection name).
    ///
    /// The collection handle is rebuilt from the client, so read and write concerns set on a
    /// collection given to [`Self::from_collection`] are not kept: pick the namespace there.
    #[must_use]
    pub fn with_database(mut self, name: &str) -> Self {
        let collection = self.collection.name().to_owned();
        self.collection = self
            .collection
            .client()
            .database(name)
            .collection(&collection);
        self
    }

    /// Uses the collection `name` (same database); see [`Self::with_database`] about concerns.
    #[must_use]
    pub fn with_collection(mut self, name: &str) -> Self {
        let database = self.collection.namespace().db;
        self.collection = self
            .collection
            .client()
            .database(&database)
            .collection(name);
        self
    }

    /// Encodes session data with `codec` instead of [`MessagePack`]. Both built-in codecs read
    /// each other's output, so switching keeps stored sessions readable.
    #[must_use]
    pub fn with_codec(mut self, codec: impl Codec) -> Self {
        self.codec = Arc::new(codec);
        self
    }

    /// Fails any single store operation that takes longer than `timeout` (default
    /// [`Self::DEFAULT_OPERATION_TIMEOUT`]) with [`Error::Backend`] whose source is
    /// [`Timeout`]. The abandoned operation's connection is closed by the driver, not reused.
    #[must_use]
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The collection sessions are kept in.
    #[must_use]
    pub fn collection(&self) -> &Collection<RawDocumentBuf> {
        &self.collection
    }

    /// Creates the TTL index on the expiry field (`{expires: 1}`, `expireAfterSeconds: 0`), so
    /// MongoDB removes expired sessions by itself. Run it once at startup; running it again is a
    /// no-op, and an equivalent index that already exists under another name is accepted.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the server cannot be reached, or if an index on `expires` exists with
    /// other options (for example another `expireAfterSeconds`): drop that index and run this
    /// again.
    pub async fn migrate(&self) -> Result<()> {
        const OPERATION: &str = "create the TTL index on sessions";
        let model = IndexModel::builder()
            .keys(doc! { field::EXPIRES: 1 })
            .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
            .build();
        let created = self
            .timed(OPERATION, self.collection.create_index(model))
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if index_conflict(&e) && self.has_ttl_index().await? => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether an index with exactly the keys and TTL that [`Self::migrate`] wants exists.
    async fn has_ttl_index(&self) -> Result<bool> {
        let wanted = doc! { field::EXPIRES: 1 };
        self.timed("list the indexes of sessions", async {
            let mut cursor = self.collection.list_indexes().await?;
            while cursor.advance().await? {
                let index = cursor.deserialize_current()?;
                let ttl = index.options.as_ref().and_then(|o| o.expire_after);
                if same_keys(&index.keys, &wanted) && ttl == Some(Duration::ZERO) {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    /// Runs one driver call under the operation timeout, naming it in the error.
    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.operation_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::backend(operation, e)),
            Err(_) => Err(Error::backend(operation, Timeout(self.operation_timeout))),
        }
    }

    fn data_field(&self, record: &Record) -> Result<Binary> {
        Ok(Binary {
            subtype: BinarySubtype::Generic,
            bytes: self.codec.encode(&record.data)?,
        })
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn create(&self, record: &Record) -> Result<()> {
        let now = bson_date(session_core::now());
        // Upsert on "this id, not live": an expired leftover is overwritten in place; with no
        // document it inserts; with a live one the filter misses and the insert of the same _id
        // fails with E11000. The server serialises all three on the _id index, so concurrent
        // creates of one id cannot both succeed. `$not: {$gt}` is the exact complement of the
        // live filter in `load`, so a document `load` cannot see never blocks `create`.
        let filter = doc! {
            field::ID: record.id.as_str(),
            field::EXPIRES: { "$not": { "$gt": now } },
        };
        let update = doc! {
            "$set": {
                field::DATA: self.data_field(record)?,
                field::CREATED: bson_date(record.created_at),
                field::EXPIRES: bson_date(record.expires_at),
                field::VERSION: stored_version(record.version)?,
            }
        };
        let inserted = self
            .timed("create a session", async {
                match self
                    .collection
                    .update_one(filter, update)
                    .upsert(true)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e) if error_code(&e) == Some(DUPLICATE_KEY) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await?;
        if inserted {
            Ok(())
        } else {
            Err(Error::AlreadyExists)
        }
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        // The TTL monitor runs about once a minute, so the query itself hides expired documents.
        let filter = doc! {
            field::ID: id.as_str(),
            field::EXPIRES: { "$gt": bson_date(session_core::now()) },
        };
        let found = self
            .timed("load a session", self.collection.find_one(filter))
            .await?;
        found
            .map(|document| decode_record(id, document, &*self.codec))
            .transpose()
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let now = bson_date(session_core::now());
        let filter = doc! {
            field::ID: record.id.as_str(),
            field::VERSION: stored_version(record.version)?,
            field::EXPIRES: { "$gt": now },
        };
        let next = record
            .version
            .checked_add(1)
            .ok_or_else(|| Error::encode(VersionOutOfRange(record.version)))?;
        let update = doc! {
            "$set": {
                field::DATA: self.data_field(record)?,
                field::EXPIRES: bson_date(record.expires_at),
                field::VERSION: stored_version(next)?,
            }
        };
        let result = self
            .timed("save a session", self.collection.update_one(filter, update))
            .await?;
        if result.matched_count > 0 {
            return Ok(());
        }
        // The write missed: one more round trip, on this rare path only, tells a newer version
        // (Conflict) from a missing or expired document (NotFound).
        let live = doc! { field::ID: record.id.as_str(), field::EXPIRES: { "$gt": now } };
        let exists = self
            .timed(
                "check a session after a failed save",
                self.collection
                    .find_one(live)
                    .projection(doc! { field::VERSION: 1 }),
            )
            .await?;
        Err(if exists.is_some() {
            Error::Conflict
        } else {
            Error::NotFound
        })
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        let filter = doc! {
            field::ID: id.as_str(),
            field::EXPIRES: { "$gt": bson_date(session_core::now()) },
        };
        let update = doc! { "$set": { field::EXPIRES: bson_date(expires_at) } };
        let result = self
            .timed(
                "touch a session",
                self.collection.update_one(filter, update),
            )
            .await?;
        Ok(result.matched_count > 0)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.timed(
            "delete a session",
            self.collection.delete_one(doc! { field::ID: id.as_str() }),
        )
        .await?;
        Ok(())
    }
}

/// The error code the server attached to a failed command or write, if any.
fn error_code(error: &mongodb::error::Error) -> Option<i32> {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

fn index_conflict(error: &Error) -> bool {
    let Error::Backend { source, .. } = error else {
        return false;
    };
    source
        .downcast_ref::<mongodb::error::Error>()
        .and_then(error_code)
        .is_some_and(|code| code == INDEX_OPTIONS_CONFLICT || code == INDEX_KEY_SPECS_CONFLICT)
}

/// Index keys compared by name and direction, whatever numeric type the server sent back.
fn same_keys(a: &Document, b: &Document) -> bool {
    let direction = |v: &Bson| match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    };
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
            ka == kb && direction(va).is_some() && direction(va) == direction(vb)
        })
}

/// A record's instant as a BSON date (milliseconds since the epoch, UTC).
fn bson_date(t: OffsetDateTime) -> DateTime {
    let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
    // Every OffsetDateTime fits: ±9999 years is about ±3.2e14 ms.
    DateTime::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
}

fn instant(date: DateTime) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(date.timestamp_millis()) * 1_000_000)
        .map_err(Error::decode)
}

/// Versions are stored as BSON Int64.
fn stored_version(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| Error::encode(VersionOutOfRange(version)))
}

/// A version that BSON's signed 64-bit integers cannot hold.
#[derive(Debug)]
struct VersionOutOfRange(u64);

impl fmt::Display for VersionOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session version {} does not fit in a BSON Int64", self.0)
    }
}

impl std::error::Error for VersionOutOfRange {}

/// A stored document that does not have the layout this crate writes.
#[derive(Debug)]
struct BadDocument {
    field: &'static str,
    problem: &'static str,
}

impl fmt::Display for BadDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored session document: `{}` {}",
            self.field, self.problem
        )
    }
}

fn bad(field: &'static str, problem: &'static str) -> Error {
    Error::decode(BadDocument { field, problem })
}

impl std::error::Error for BadDocument {}

fn decode_record(id: &Id, document: RawDocumentBuf, codec: &dyn Codec) -> Result<Record> {
    let date = |key: &'static str| -> Result<OffsetDateTime> {
        match document.get(key).map_err(Error::decode)? {
            Some(RawBsonRef::DateTime(d)) => instant(d),
            Some(_) => Err(bad(key, "is not a date")),
            None => Err(bad(key, "is missing")),
        }
    };
    let created_at = date(field::CREATED)?;
    let expires_at = date(field::EXPIRES)?;
    let version = match document.get(field::VERSION).map_err(Error::decode)? {
        Some(RawBsonRef::Int64(v)) => u64::try_from(v).ok(),
        Some(RawBsonRef::Int32(v)) => u64::try_from(v).ok(),
        _ => None,
    }
    .ok_or_else(|| bad(field::VERSION, "is not a non-negative integer"))?;
    let range = match document.get(field::DATA).map_err(Error::decode)? {
        Some(RawBsonRef::Binary(binary)) => {
            // The blob borrows from the document's buffer: find where, so the codec gets a
            // slice of that buffer rather than a copy.
            let whole = document.as_bytes();
            let start = binary
                .bytes
                .as_ptr()
                .addr()
                .wrapping_sub(whole.as_ptr().addr());
            start
                .checked_add(binary.bytes.len())
                .filter(|&end| end <= whole.len())
                .map(|end| start..end)
                .ok_or_else(|| bad(field::DATA, "lies outside the document"))?
        }
        Some(_) => return Err(bad(field::DATA, "is not BSON binary")),
        None => return Err(bad(field::DATA, "is missing")),
    };
    let data = codec.decode(Bytes::from(document.into_bytes()).slice(range))?;
    Ok(Record::from_parts(
        id.clone(),
        data,
        created_at,
        expires_at,
        version,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::rawdoc;
    use session_core::{Data, Json, now};

    fn sample_document(data: Bson) -> RawDocumentBuf {
        let mut document = Document::new();
        document.insert(field::ID, "abc");
        document.insert(field::DATA, data);
        document.insert(field::CREATED, bson_date(now()));
        document.insert(field::EXPIRES, bson_date(now() + time::Duration::hours(1)));
        document.insert(field::VERSION, 3_i64);
        RawDocumentBuf::from_document(&document).expect("a valid document")
    }

    fn blob(bytes: Vec<u8>) -> Bson {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes,
        })
    }

    fn id() -> Id {
        Id::random()
    }

    #[test]
    fn instants_round_trip_to_the_millisecond() {
        for t in [
            now(),
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::UNIX_EPOCH - time::Duration::milliseconds(1_500),
        ] {
            assert_eq!(instant(bson_date(t)).expect("in range"), t);
        }
    }

    #[test]
    fn dates_outside_time_range_are_decode_errors() {
        assert!(matches!(
            instant(DateTime::from_millis(i64::MAX)),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn versions_beyond_i64_are_encode_errors() {
        assert_eq!(stored_version(7).expect("fits"), 7);
        assert!(matches!(stored_version(u64::MAX), Err(Error::Encode(_))));
    }

    #[test]
    fn a_stored_document_decodes() {
        let mut data = Data::new();
        data.insert("user", &"ada").expect("encode");
        let bytes = MessagePack.encode(&data).expect("encode");
        let id = id();
        let record = decode_record(&id, sample_document(blob(bytes)), &MessagePack)
            .expect("a well-formed document decodes");
        assert_eq!(record.id, id);
        assert_eq!(record.version, 3);
        assert_eq!(
            record.data.get::<String>("user").expect("decode"),
            Some("ada".into())
        );
    }

    #[test]
    fn json_blobs_decode_with_either_codec() {
        let mut data = Data::new();
        data.insert("n", &5).expect("encode");
        let bytes = Json.encode(&data).expect("encode");
        let record = decode_record(&id(), sample_document(blob(bytes)), &MessagePack)
            .expect("the MessagePack codec reads JSON blobs");
        assert_eq!(record.data.get::<i32>("n").expect("decode"), Some(5));
    }

    #[test]
    fn corrupt_documents_are_decode_errors() {
        let garbage = [
            sample_document(blob(vec![0xff, 0x00, 0x13])),
            sample_document(blob(vec![])),
            sample_document(blob(vec![0x01, 0x85])),
            sample_document(Bson::String("not binary".into())),
            rawdoc! { "_id": "abc" },
            rawdoc! {
                "_id": "abc",
                "data": Binary { subtype: BinarySubtype::Generic, bytes: vec![0x01, 0x80] },
                "created": "yesterday",
                "expires": DateTime::now(),
                "version": 1_i64,
            },
            rawdoc! {
                "_id": "abc",
                "data": Binary { subtype: BinarySubtype::Generic, bytes: vec![0x01, 0x80] },
                "created": DateTime::now(),
                "expires": DateTime::now(),
                "version": -1_i64,
            },
            rawdoc! {
                "_id": "abc",
                "data": Binary { subtype: BinarySubtype::Generic, bytes: vec![0x01, 0x80] },
                "created": DateTime::now(),
                "expires": DateTime::now(),
                "version": 1.5,
            },
        ];
        for document in garbage {
            let shown = format!("{document:?}");
            match decode_record(&id(), document, &MessagePack) {
                Err(Error::Decode(_)) => {}
                other => panic!("{shown} decoded as {other:?}, expected Err(Decode)"),
            }
        }
    }

    #[test]
    fn keys_compare_across_number_types() {
        assert!(same_keys(
            &doc! { "expires": 1 },
            &doc! { "expires": 1_i64 }
        ));
        assert!(same_keys(&doc! { "expires": 1.0 }, &doc! { "expires": 1 }));
        assert!(!same_keys(&doc! { "expires": -1 }, &doc! { "expires": 1 }));
        assert!(!same_keys(
            &doc! { "expires": 1, "x": 1 },
            &doc! { "expires": 1 }
        ));
        assert!(!same_keys(&doc! { "other": 1 }, &doc! { "expires": 1 }));
    }
}
