//! express-session's stored JSON: arbitrary bytes never panic; what decodes re-encodes (with
//! the version and creation time it carried) and decodes back to the same session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{express, now};

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = express::decode(data) else {
        return;
    };
    let version = decoded.version.unwrap_or(0);
    let created = decoded.created_at.unwrap_or_else(now);
    let Ok(text) = express::encode(&decoded.data, version, created, now()) else {
        // Only data whose `cookie` is not an object, or values JSON cannot hold, refuse.
        return;
    };
    let again = express::decode(&text).expect("decode what encode wrote");
    assert_eq!(again.version, Some(version));
    assert_eq!(again.created_at, Some(created));
    assert_eq!(again.data.to_json().ok(), decoded.data.to_json().ok());
});
