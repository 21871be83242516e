//! session-tower's cookie in its default mode: any `Cookie` headers never panic, and a cookie
//! verifies only as the id it was signed for; whatever verifies re-signs to a cookie that
//! verifies the same way. The same bytes as a stored session's `cookie` object: read back
//! without panicking, and written back it reads as the same settings.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header::COOKIE};
use libfuzzer_sys::fuzz_target;
use session_core::{Codec, Id, Json};
use session_tower::fuzzing::{Cookie, Keys, StoredCookie};

/// Two keys of [`session_tower::MIN_KEY_LEN`] bytes: the first signs, both verify.
const CURRENT: &[u8] = b"fuzz-current-key-0123456789abcdef0123456789abcdef";
const OLDER: &[u8] = b"fuzz-older-key-0123456789abcdef0123456789abcdef01";

fuzz_target!(|data: &[u8]| {
    let ring = Keys::new([CURRENT, OLDER]);
    // Each line is one `Cookie` header.
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n').take(4) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    if let Cookie::Valid { id, .. } = ring.read(&headers, "sid") {
        // Only a cookie this ring signed verifies: its id is in the input as is.
        assert!(
            data.windows(id.as_str().len())
                .any(|w| w == id.as_str().as_bytes()),
            "verified an id the input does not carry"
        );
        let again = ring.sign(&id);
        assert_eq!(
            ring.verify(again.as_bytes()),
            Cookie::Valid {
                id: id.clone(),
                stale_key: false
            }
        );
        let older = Keys::new([OLDER]).sign(&id);
        assert_eq!(
            ring.verify(older.as_bytes()),
            Cookie::Valid {
                id,
                stale_key: true
            }
        );
    }
    // One value on its own, as the layer verifies each candidate.
    if let Cookie::Valid { id, .. } = ring.verify(data) {
        assert!(
            data.windows(id.as_str().len())
                .any(|w| w == id.as_str().as_bytes())
        );
    }
    // What parses as an id signs and verifies, and only with a key of the ring.
    if let Some(id) = std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse::<Id>().ok())
    {
        let signed = ring.sign(&id);
        assert_eq!(
            ring.verify(signed.as_bytes()),
            Cookie::Valid {
                id: id.clone(),
                stale_key: false
            }
        );
        assert_eq!(
            Keys::new([b"another-key-entirely-0123456789abcdef0123456789"])
                .verify(signed.as_bytes()),
            Cookie::Invalid
        );
    }
    // The stored `cookie` object, read as the default mode reads it, then written back.
    let Ok(mut values) = Json.decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let stored = StoredCookie::split(&mut values);
    let _ = stored.idle_timeout(Some(time::Duration::days(1)));
    let _ = stored.max_age(None);
    if let Ok(mut written) = stored.join(&values) {
        assert_eq!(StoredCookie::split(&mut written), stored);
        assert_eq!(written, values);
    }
});
