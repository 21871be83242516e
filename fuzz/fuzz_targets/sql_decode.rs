//! session-sqlx's stored rows, as `load` reads them back. The first byte picks the layout (bit
//! 0: connect-pg-simple's, else the native one) and the codec (bit 1: JSON, else MessagePack).
//!
//! Native: `created_at`, `expires_at`, `version` (8 bytes each, big-endian), a principal length
//! byte (255: NULL) and the principal, then the data column. Express: `expire` and the
//! database's `now` (8 bytes each), 16 bytes whose hex is the text's MD5, then the `sess` text.
//!
//! Any row never panics; a native row that decodes is written again (MessagePack) and reads
//! back as the same record; an Express text that decodes is written again at its version and
//! reads back with the same version, instants and data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::clock::unix_millis;
use session_core::{Codec, Id, Json, MessagePack, express};
use session_sqlx::fuzzing::{decode_express, decode_native};

fn i64_at(bytes: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, row)) = data.split_first() else {
        return;
    };
    let id: Id = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
        .parse()
        .expect("a valid id");
    if mode & 1 == 1 {
        let (Some(expires), Some(now), Some(digest), Some(sess)) = (
            i64_at(row, 0),
            i64_at(row, 8),
            row.get(16..32).map(hex),
            row.get(32..).and_then(|s| std::str::from_utf8(s).ok()),
        ) else {
            return;
        };
        let Ok(record) = decode_express(&id, sess, &digest, expires, now) else {
            return;
        };
        let Ok(text) = express::encode(
            &record.data,
            record.version,
            record.created_at,
            record.expires_at,
        ) else {
            return;
        };
        let text = String::from_utf8(text).expect("express-session's JSON is UTF-8");
        let again =
            decode_express(&id, &text, &digest, expires, now).expect("decode what encode wrote");
        assert_eq!(again.version, record.version);
        assert_eq!(again.created_at, record.created_at);
        assert_eq!(again.expires_at, record.expires_at);
        assert_eq!(again.data.to_json().ok(), record.data.to_json().ok());
        return;
    }
    let (Some(created_at), Some(expires_at), Some(version), Some(&len)) =
        (i64_at(row, 0), i64_at(row, 8), i64_at(row, 16), row.get(24))
    else {
        return;
    };
    let (principal, data_at) = if len == 255 {
        (None, 25)
    } else {
        let end = 25 + usize::from(len);
        let Some(principal) = row.get(25..end).and_then(|p| std::str::from_utf8(p).ok()) else {
            return;
        };
        (Some(principal.to_owned()), end)
    };
    let codec: &dyn Codec = if mode & 2 == 2 { &Json } else { &MessagePack };
    let Ok(record) = decode_native(
        codec,
        &id,
        row[data_at..].to_vec(),
        created_at,
        expires_at,
        version,
        principal,
    ) else {
        return;
    };
    // A row as `create` writes it.
    let Ok(bytes) = MessagePack.encode(&record.data) else {
        return;
    };
    let again = decode_native(
        &MessagePack,
        &id,
        bytes,
        unix_millis(record.created_at),
        unix_millis(record.expires_at),
        i64::try_from(record.version).expect("a version read from an i64"),
        record.principal.clone(),
    )
    .expect("decode what encode wrote");
    assert_eq!(again, record);
});
