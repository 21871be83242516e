//! `Id` parsing: never panics; what parses round-trips and stays within the documented charset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::Id;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<Id>() {
        assert_eq!(id.as_str(), text);
        assert!((Id::MIN_LEN..=Id::MAX_LEN).contains(&text.len()));
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        // Debug never prints the whole id.
        assert!(!format!("{id:?}").contains(text));
    }
});
