//! session-tower's cookie in Express-compatible mode (`connect.sid`, express-session's short
//! secrets): any `Cookie` headers never panic, and a cookie verifies only as the id it was
//! signed for. The same bytes as a stored session's `cookie` object, as express-session writes
//! it: read back without panicking, its timeouts computed without overflow.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header::COOKIE};
use libfuzzer_sys::fuzz_target;
use session_core::{Codec, Id, Json};
use session_tower::fuzzing::{Cookie, Keys, StoredCookie};

/// express-session's own example secret, then an older one: the first signs, both verify.
const SECRETS: [&[u8]; 2] = [b"keyboard cat", b"old secret"];

fuzz_target!(|data: &[u8]| {
    let ring = Keys::new(SECRETS);
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n').take(4) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    if let Cookie::Valid { id, .. } = ring.read(&headers, "connect.sid") {
        assert!(
            data.windows(id.as_str().len())
                .any(|w| w == id.as_str().as_bytes()),
            "verified an id the input does not carry"
        );
        let again = ring.sign(&id);
        assert_eq!(
            ring.verify(again.as_bytes()),
            Cookie::Valid {
                id,
                stale_key: false
            }
        );
    }
    if let Some(id) = std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse::<Id>().ok())
    {
        let older = Keys::new([SECRETS[1]]).sign(&id);
        assert_eq!(
            ring.verify(older.as_bytes()),
            Cookie::Valid {
                id,
                stale_key: true
            }
        );
    }
    let Ok(mut values) = Json.decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let stored = StoredCookie::split_express(&mut values);
    let _ = stored.idle_timeout(Some(time::Duration::days(1)));
    let _ = stored.max_age(Some(time::Duration::days(1)));
});
