//! Record decoding for every codec: arbitrary bytes never panic; whatever decodes re-encodes
//! with each codec and decodes back to the same data.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use session_core::{Codec, Json, MessagePack};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let Ok(decoded) = MessagePack.decode(bytes.clone()) else {
        // Both built-in codecs read both formats: they must agree on what is invalid.
        assert!(Json.decode(bytes).is_err());
        return;
    };
    assert_eq!(Json.decode(bytes).ok().as_ref(), Some(&decoded));
    let packed = MessagePack
        .encode(&decoded)
        .expect("re-encode what decoded");
    assert_eq!(
        MessagePack.decode(Bytes::from(packed)).ok().as_ref(),
        Some(&decoded)
    );
    // The JSON codec refuses what JSON cannot hold (maps with non-string keys, NaN); what it
    // writes reads back as the same JSON. (Binary values become arrays of numbers, which read
    // back as the same bytes through serde, so only JSON-viewable data is compared.)
    if let Ok(json) = Json.encode(&decoded) {
        let again = Json
            .decode(Bytes::from(json))
            .expect("decode what the JSON codec wrote");
        if let Ok(expected) = decoded.to_json() {
            assert_eq!(again.to_json().ok(), Some(expected));
        }
    }
});
