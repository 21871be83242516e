//! The stored document: its fields, its size, and decoding it back into a record.

use std::fmt;

use bytes::Bytes;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, DateTime, Document, RawBsonRef, RawDocumentBuf, doc};
use session_core::clock::{from_unix_millis, unix_millis};
use session_core::{Codec, Error, Id, Record, Result, check_principal};
use time::OffsetDateTime;

/// Field names of the stored documents (see the crate docs for the layouts).
pub(crate) mod field {
    pub(crate) const ID: &str = "_id";
    /// connect-mongo's layout: express-session's JSON text.
    pub(crate) const SESSION: &str = "session";
    pub(crate) const DATA: &str = "data";
    pub(crate) const CREATED: &str = "created";
    pub(crate) const EXPIRES: &str = "expires";
    pub(crate) const VERSION: &str = "version";
    /// Whose session it is; absent when the record has no principal (and in documents written
    /// before principals existed). Indexed by [`MongoStore::migrate`](crate::MongoStore::migrate).
    pub(crate) const PRINCIPAL: &str = "principal";
}

/// The largest document MongoDB stores: 16 MiB, its `maxBsonObjectSize`.
pub(crate) const MAX_DOCUMENT_SIZE: usize = 16 * 1024 * 1024;

/// The BSON size of a stored session document whose id is `id_len` bytes long, whose data
/// blob is `data_len` bytes long and whose principal, if any, is `principal_len` bytes long:
/// the size MongoDB compares with its 16 MiB limit.
///
/// Computed rather than measured so that a record is refused before its document is built.
pub(crate) fn document_size(id_len: usize, data_len: usize, principal_len: Option<usize>) -> usize {
    // An element is a type byte, the key as a C string, then the value.
    let element = |key: &str, value: usize| (2 + key.len()).saturating_add(value);
    let string = |len: usize| len.saturating_add(5); // int32 length, bytes, NUL
    let binary = |len: usize| len.saturating_add(5); // int32 length, subtype, bytes
    // int32 length, the elements, the terminating NUL.
    [
        4,
        element(field::ID, string(id_len)),
        element(field::DATA, binary(data_len)),
        element(field::CREATED, 8),
        element(field::EXPIRES, 8),
        element(field::VERSION, 8),
        principal_len.map_or(0, |len| element(field::PRINCIPAL, string(len))),
        1,
    ]
    .into_iter()
    .fold(0, usize::saturating_add)
}

/// The encoded data of `record` as the BSON binary the document stores.
///
/// # Errors
///
/// [`Error::Encode`] from the codec or for a principal [`check_principal`] refuses,
/// [`Error::TooLarge`] if the whole document would exceed [`MAX_DOCUMENT_SIZE`].
pub(crate) fn data_blob(codec: &dyn Codec, record: &Record) -> Result<Binary> {
    let principal_len = match &record.principal {
        Some(principal) => Some(check_principal(principal)?.len()),
        None => None,
    };
    let bytes = codec.encode(&record.data)?;
    let size = document_size(record.id.as_str().len(), bytes.len(), principal_len);
    if size > MAX_DOCUMENT_SIZE {
        return Err(Error::TooLarge {
            size,
            limit: MAX_DOCUMENT_SIZE,
        });
    }
    Ok(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

/// The whole document `create` stores for `record`, with its data already encoded (by
/// [`data_blob`], which also checked the principal).
pub(crate) fn new_document(record: &Record, data: Binary, version: i64) -> Document {
    let mut document = doc! {
        field::ID: record.id.as_str(),
        field::DATA: data,
        field::CREATED: bson_date(record.created_at),
        field::EXPIRES: bson_date(record.expires_at),
        field::VERSION: version,
    };
    // No principal, no field: the index on it is sparse, so such sessions cost it nothing.
    if let Some(principal) = &record.principal {
        document.insert(field::PRINCIPAL, principal.as_str());
    }
    document
}

/// A record's instant as a BSON date (milliseconds since the epoch, UTC).
pub(crate) fn bson_date(t: OffsetDateTime) -> DateTime {
    DateTime::from_millis(unix_millis(t))
}

/// A stored BSON date as an instant.
pub(crate) fn instant(date: DateTime) -> Result<OffsetDateTime> {
    from_unix_millis(date.timestamp_millis())
}

/// A version as stored: BSON Int64.
///
/// # Errors
///
/// [`Error::VersionOutOfRange`] above [`session_core::MAX_VERSION`], which is `i64::MAX`.
pub(crate) fn stored_version(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| Error::VersionOutOfRange(version))
}

/// A stored document that does not have the layout this crate writes; names the field.
#[derive(Debug)]
pub(crate) struct BadDocument {
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

impl std::error::Error for BadDocument {}

pub(crate) fn bad(field: &'static str, problem: &'static str) -> Error {
    Error::decode(BadDocument { field, problem })
}

/// The record a stored document holds.
///
/// # Errors
///
/// [`Error::Decode`] naming the field when a field is missing or of the wrong BSON type, or when
/// the codec cannot read the data.
pub(crate) fn decode_record(
    id: &Id,
    document: RawDocumentBuf,
    codec: &dyn Codec,
) -> Result<Record> {
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
    let principal = stored_principal(&document)?;
    let data = codec.decode(Bytes::from(document.into_bytes()).slice(range))?;
    Ok(
        Record::from_parts(id.clone(), data, created_at, expires_at, version)
            .with_principal(principal),
    )
}

/// The principal of a stored document: `None` when the field is absent (documents written
/// before principals existed, or sessions without one) or null.
///
/// # Errors
///
/// [`Error::Decode`] naming the field if it is another type, or a string that
/// [`check_principal`] refuses (which no store writes, and which `save` could not write back).
fn stored_principal(document: &RawDocumentBuf) -> Result<Option<String>> {
    match document.get(field::PRINCIPAL).map_err(Error::decode)? {
        None | Some(RawBsonRef::Null) => Ok(None),
        Some(RawBsonRef::String(principal)) => match check_principal(principal) {
            Ok(principal) => Ok(Some(principal.to_owned())),
            Err(_) => Err(bad(field::PRINCIPAL, "is not a valid principal")),
        },
        Some(_) => Err(bad(field::PRINCIPAL, "is not a string")),
    }
}

/// The id of a stored document, as a listing reads it from `_id`.
///
/// # Errors
///
/// [`Error::Decode`] naming the field if `_id` is not a string, or not a valid [`Id`].
pub(crate) fn stored_id(document: &RawDocumentBuf) -> Result<Id> {
    match document.get(field::ID).map_err(Error::decode)? {
        Some(RawBsonRef::String(id)) => {
            Id::try_from(id).map_err(|_| bad(field::ID, "is not a valid session id"))
        }
        Some(_) => Err(bad(field::ID, "is not a string")),
        None => Err(bad(field::ID, "is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{Bson, rawdoc};
    use session_core::{Data, Json, MessagePack, now};

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
    fn versions_beyond_i64_are_out_of_range() {
        assert_eq!(stored_version(7).expect("fits"), 7);
        assert!(matches!(
            stored_version(u64::MAX),
            Err(Error::VersionOutOfRange(u64::MAX))
        ));
    }

    /// No principal, a short one, and the longest accepted (256 bytes of two-byte characters).
    fn principals() -> [Option<String>; 3] {
        [None, Some("u".into()), Some("é".repeat(128))]
    }

    #[test]
    fn computed_size_is_the_encoded_size() {
        for principal in principals() {
            let mut record = Record::new(Id::random(), time::Duration::hours(1))
                .with_principal(principal.clone());
            for len in [0, 1, 127, 128, 70_000] {
                record.data.insert("k", &"x".repeat(len)).expect("encode");
                let data = data_blob(&MessagePack, &record).expect("small enough");
                let data_len = data.bytes.len();
                let document = new_document(&record, data, i64::MAX);
                let encoded = RawDocumentBuf::from_document(&document).expect("encodes");
                assert_eq!(
                    document_size(
                        record.id.as_str().len(),
                        data_len,
                        principal.as_ref().map(String::len)
                    ),
                    encoded.as_bytes().len(),
                    "data of {data_len} bytes, principal {principal:?}"
                );
            }
        }
    }

    #[test]
    fn records_over_the_document_limit_are_too_large() {
        for principal in principals() {
            let principal_len = principal.as_ref().map(String::len);
            let mut record =
                Record::new(Id::random(), time::Duration::hours(1)).with_principal(principal);
            // One string value sized so that the document lands exactly on the limit, then one
            // byte over. MessagePack's header is the same size for every string of 64 KiB and
            // up.
            let fixed = document_size(record.id.as_str().len(), 0, principal_len);
            let overhead = {
                record
                    .data
                    .insert("k", &"x".repeat(70_000))
                    .expect("encode");
                MessagePack.encode(&record.data).expect("encode").len() - 70_000
            };
            let exact = MAX_DOCUMENT_SIZE - fixed - overhead;
            record.data.insert("k", &"x".repeat(exact)).expect("encode");
            let data = data_blob(&MessagePack, &record).expect("exactly at the limit is accepted");
            assert_eq!(
                document_size(record.id.as_str().len(), data.bytes.len(), principal_len),
                MAX_DOCUMENT_SIZE
            );
            record
                .data
                .insert("k", &"x".repeat(exact + 1))
                .expect("encode");
            match data_blob(&MessagePack, &record) {
                Err(Error::TooLarge { size, limit }) => {
                    assert_eq!((size, limit), (MAX_DOCUMENT_SIZE + 1, MAX_DOCUMENT_SIZE));
                }
                other => panic!("one byte over the limit gave {other:?}, expected TooLarge"),
            }
        }
    }

    #[test]
    fn invalid_principals_are_refused_before_encoding() {
        for bad in ["", "a\nb", &"x".repeat(session_core::MAX_PRINCIPAL_LEN + 1)] {
            let record = Record::new(Id::random(), time::Duration::hours(1))
                .with_principal(Some(bad.to_owned()));
            assert!(
                matches!(data_blob(&MessagePack, &record), Err(Error::Encode(_))),
                "principal {bad:?} was accepted"
            );
        }
    }

    #[test]
    fn stored_principals_decode_and_bad_ones_name_the_field() {
        let with = |principal: Bson| {
            let mut document = Document::new();
            document.insert(field::ID, "abc");
            document.insert(field::PRINCIPAL, principal);
            RawDocumentBuf::from_document(&document).expect("a valid document")
        };
        assert_eq!(
            stored_principal(&sample_document(blob(vec![0x01, 0x80]))).expect("no field"),
            None,
            "a document written before principals"
        );
        assert_eq!(stored_principal(&with(Bson::Null)).expect("null"), None);
        assert_eq!(
            stored_principal(&with(Bson::String("ada".into()))).expect("a string"),
            Some("ada".to_owned())
        );
        for (value, expected) in [
            (Bson::Int32(7), "`principal` is not a string"),
            (
                Bson::String(String::new()),
                "`principal` is not a valid principal",
            ),
            (
                Bson::String("a\u{1}b".into()),
                "`principal` is not a valid principal",
            ),
        ] {
            match stored_principal(&with(value.clone())) {
                Err(e @ Error::Decode(_)) => {
                    let cause = std::error::Error::source(&e)
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    assert!(cause.contains(expected), "{value:?}: {cause:?}");
                }
                other => panic!("{value:?} gave {other:?}, expected Decode"),
            }
        }
    }

    #[test]
    fn stored_ids_must_be_valid_ids() {
        let id = Id::random();
        assert_eq!(
            stored_id(&rawdoc! { "_id": id.as_str() }).expect("a valid id"),
            id
        );
        for document in [
            rawdoc! { "_id": 5_i32 },
            rawdoc! { "_id": "not an id!" },
            rawdoc! {},
        ] {
            assert!(
                matches!(stored_id(&document), Err(Error::Decode(_))),
                "{document:?}"
            );
        }
    }

    #[test]
    fn a_stored_document_decodes() {
        let mut data = Data::new();
        data.insert("user", &"ada").expect("encode");
        let bytes = MessagePack.encode(&data).expect("encode");
        let id = Id::random();
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
        let record = decode_record(&Id::random(), sample_document(blob(bytes)), &MessagePack)
            .expect("the MessagePack codec reads JSON blobs");
        assert_eq!(record.data.get::<i32>("n").expect("decode"), Some(5));
    }

    #[test]
    fn corrupt_documents_are_decode_errors_naming_the_field() {
        let valid = || Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![0x01, 0x80],
        };
        let garbage = [
            (sample_document(blob(vec![0xff, 0x00, 0x13])), None),
            (sample_document(blob(vec![])), None),
            (sample_document(blob(vec![0x01, 0x85])), None),
            (
                sample_document(Bson::String("not binary".into())),
                Some("`data` is not BSON binary"),
            ),
            (rawdoc! { "_id": "abc" }, Some("`created` is missing")),
            (
                rawdoc! {
                    "_id": "abc", "data": valid(), "created": "yesterday",
                    "expires": DateTime::now(), "version": 1_i64,
                },
                Some("`created` is not a date"),
            ),
            (
                rawdoc! {
                    "_id": "abc", "data": valid(), "created": DateTime::now(),
                    "expires": 5_i64, "version": 1_i64,
                },
                Some("`expires` is not a date"),
            ),
            (
                rawdoc! {
                    "_id": "abc", "data": valid(), "created": DateTime::now(),
                    "expires": DateTime::now(), "version": -1_i64,
                },
                Some("`version` is not a non-negative integer"),
            ),
            (
                rawdoc! {
                    "_id": "abc", "data": valid(), "created": DateTime::now(),
                    "expires": DateTime::now(), "version": 1.5,
                },
                Some("`version` is not a non-negative integer"),
            ),
            (
                rawdoc! {
                    "_id": "abc", "created": DateTime::now(),
                    "expires": DateTime::now(), "version": 1_i64,
                },
                Some("`data` is missing"),
            ),
        ];
        for (document, names) in garbage {
            let shown = format!("{document:?}");
            match decode_record(&Id::random(), document, &MessagePack) {
                Err(e @ Error::Decode(_)) => {
                    if let Some(expected) = names {
                        let cause = std::error::Error::source(&e)
                            .map(ToString::to_string)
                            .unwrap_or_default();
                        assert!(
                            cause.contains(expected),
                            "{shown}: the error says {cause:?}, expected it to say {expected:?}"
                        );
                    }
                }
                other => panic!("{shown} decoded as {other:?}, expected Err(Decode)"),
            }
        }
    }
}
