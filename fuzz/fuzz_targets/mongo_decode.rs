//! session-mongo's stored documents, as `load` reads them back. The first byte picks the layout
//! (bit 0: connect-mongo's `session` text, else the native document) and the codec (bit 1:
//! JSON, else MessagePack); the rest is the BSON document. Any bytes never panic; a document
//! that decodes is written again as `create` writes it (native: MessagePack) and reads back as
//! the same record (Express: the same version, instants and data).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{Codec, Id, Json, MessagePack};
use session_mongo::fuzzing::{decode_express, decode_native, encode_express, encode_native};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bson)) = data.split_first() else {
        return;
    };
    let id: Id = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
        .parse()
        .expect("a valid id");
    if mode & 1 == 1 {
        let Ok(record) = decode_express(&id, bson) else {
            return;
        };
        let Ok(written) = encode_express(&record, record.created_at) else {
            return;
        };
        let again = decode_express(&id, &written).expect("decode what encode wrote");
        assert_eq!(again.version, record.version);
        assert_eq!(again.created_at, record.created_at);
        assert_eq!(again.expires_at, record.expires_at);
        assert_eq!(again.data.to_json().ok(), record.data.to_json().ok());
        return;
    }
    let codec: &dyn Codec = if mode & 2 == 2 { &Json } else { &MessagePack };
    let Ok(record) = decode_native(&id, bson, codec) else {
        return;
    };
    let Ok(written) = encode_native(&record, &MessagePack) else {
        return;
    };
    let again = decode_native(&id, &written, &MessagePack).expect("decode what encode wrote");
    assert_eq!(again, record);
});
