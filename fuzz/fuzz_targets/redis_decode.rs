//! session-redis's stored values, as `load` reads them back. The first byte picks the layout
//! (bit 0: connect-redis's JSON, else the native header + principal + data) and the codec (bit
//! 1: JSON, else MessagePack); the rest is the value. Any value never panics; a native value
//! that decodes is written again (MessagePack) and reads back as the same record; an Express
//! text that decodes is written again at its version and reads back with the same version,
//! creation time and data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{Codec, Id, Json, MessagePack, express, now};
use session_redis::fuzzing::{decode_express, decode_native, encode_native};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, value)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let Ok((decoded, version)) = decode_express(value) else {
            return;
        };
        let created = decoded.created_at.unwrap_or_else(now);
        let Ok(text) = express::encode(&decoded.data, version, created, now()) else {
            return;
        };
        let (again, again_version) = decode_express(&text).expect("decode what encode wrote");
        assert_eq!(again_version, version);
        assert_eq!(again.created_at, Some(created));
        assert_eq!(again.data.to_json().ok(), decoded.data.to_json().ok());
        return;
    }
    let id: Id = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
        .parse()
        .expect("a valid id");
    let codec: &dyn Codec = if mode & 2 == 2 { &Json } else { &MessagePack };
    let Ok(record) = decode_native(&id, value, codec) else {
        return;
    };
    let Ok(written) = encode_native(&record, &MessagePack) else {
        return;
    };
    let again = decode_native(&id, &written, &MessagePack).expect("decode what encode wrote");
    assert_eq!(again, record);
});
