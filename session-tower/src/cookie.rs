//! The session cookie: finding it in a request, checking its signature, and writing `Set-Cookie`.
//!
//! The value has express-session's format, so a Rust service and an Express one sharing a key
//! read each other's cookies: `s:` + id + `.` + signature, URL-encoded, where the signature is
//! HMAC-SHA256(key, id) in standard base64 without padding (43 characters).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderValue;
use http::header::COOKIE;
use session_core::Id;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;
/// Length of the tag in unpadded base64.
const TAG_B64_LEN: usize = 43;
/// Longest cookie value even looked at. A genuine one is at most 3 + 128 + 1 + 3 × 43 = 261
/// bytes; anything longer is refused before any decoding or hashing.
pub(crate) const MAX_VALUE_LEN: usize = 320;

/// The signing keys, each held as an HMAC state already keyed, so that signing or verifying
/// costs one clone and two SHA-256 compressions, not a rehash of the key.
#[derive(Clone)]
pub(crate) struct KeyRing {
    keys: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing({} keys)", self.keys.len())
    }
}

/// What the request's session cookie turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// No cookie with the session cookie's name.
    Absent,
    /// A cookie with the name, but unsigned, tampered, malformed, oversized or signed by no key
    /// of the ring: as if there were none, except that it may be cleared.
    Invalid,
    /// A correctly signed id; `stale_key` when signed with a key other than the current one.
    Valid { id: Id, stale_key: bool },
}

impl Incoming {
    pub(crate) fn id(&self) -> Option<&Id> {
        match self {
            Self::Valid { id, .. } => Some(id),
            _ => None,
        }
    }

    pub(crate) fn is_present(&self) -> bool {
        !matches!(self, Self::Absent)
    }
}

impl KeyRing {
    /// Keys must already be validated (non-empty ring, each key long enough).
    pub(crate) fn new(keys: &[Vec<u8>]) -> Self {
        Self {
            keys: keys
                .iter()
                .filter_map(|k| Hmac::<Sha256>::new_from_slice(k).ok())
                .collect(),
        }
    }

    fn tag(key: &Hmac<Sha256>, message: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = key.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// The cookie value for `id`, signed with the current key, URL-encoded.
    pub(crate) fn sign(&self, id: &Id) -> String {
        let mut tag_b64 = [0u8; TAG_B64_LEN];
        let tag = self
            .keys
            .first()
            .map(|k| Self::tag(k, id.as_str().as_bytes()));
        let written = tag
            .and_then(|tag| STANDARD_NO_PAD.encode_slice(tag, &mut tag_b64).ok())
            .unwrap_or(0);
        let mut out = String::with_capacity(4 + id.as_str().len() + 3 * TAG_B64_LEN);
        out.push_str("s%3A");
        out.push_str(id.as_str());
        out.push('.');
        for &b in &tag_b64[..written] {
            match b {
                b'+' => out.push_str("%2B"),
                b'/' => out.push_str("%2F"),
                _ => out.push(char::from(b)),
            }
        }
        out
    }

    /// Checks a raw cookie value (as sent, possibly URL-encoded and quoted).
    pub(crate) fn verify(&self, raw: &[u8]) -> Incoming {
        if raw.len() > MAX_VALUE_LEN {
            return Incoming::Invalid;
        }
        let raw = match raw {
            [b'"', inner @ .., b'"'] => inner,
            _ => raw,
        };
        // Only `:`, `+` and `/` are ever escaped (`encodeURIComponent` of `s:`, an id of the
        // URL-safe alphabet, a dot, and standard base64), so the id is read as is and only the
        // prefix and the tag are decoded, without copying the whole value.
        let signed = if let Some(rest) = raw.strip_prefix(b"s:") {
            rest
        } else if raw.len() >= 4 && raw[..4].eq_ignore_ascii_case(b"s%3a") {
            &raw[4..]
        } else {
            return Incoming::Invalid;
        };
        let Some(dot) = signed.iter().rposition(|&b| b == b'.') else {
            return Incoming::Invalid;
        };
        let (id, tag_escaped) = (&signed[..dot], &signed[dot + 1..]);
        let mut tag_b64 = [0u8; TAG_B64_LEN];
        if percent_decode(tag_escaped, &mut tag_b64) != Some(TAG_B64_LEN) {
            return Incoming::Invalid;
        }
        // Room for the decoder's length estimate; a canonical 43-character tag decodes to 32.
        let mut tag = [0u8; TAG_LEN + 3];
        if STANDARD_NO_PAD.decode_slice(tag_b64, &mut tag) != Ok(TAG_LEN) {
            return Incoming::Invalid;
        }
        let Some(index) = self
            .keys
            .iter()
            .position(|key| tags_equal(&Self::tag(key, id), &tag[..TAG_LEN]))
        else {
            return Incoming::Invalid;
        };
        match std::str::from_utf8(id)
            .ok()
            .and_then(|s| s.parse::<Id>().ok())
        {
            Some(id) => Incoming::Valid {
                id,
                stale_key: index != 0,
            },
            None => Incoming::Invalid,
        }
    }
}

/// Compares two tags in constant time: the differences of every byte are accumulated without
/// branching, and only the total goes through `subtle`'s comparison.
fn tags_equal(expected: &[u8; TAG_LEN], given: &[u8]) -> bool {
    if given.len() != TAG_LEN {
        return false;
    }
    let mut diff = 0u64;
    for (a, b) in expected.chunks_exact(8).zip(given.chunks_exact(8)) {
        let word = |chunk: &[u8]| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            u64::from_ne_bytes(bytes)
        };
        diff |= word(a) ^ word(b);
    }
    bool::from(diff.ct_eq(&0))
}

/// Decodes `%XX` escapes of `input` into `out`, returning the decoded length; `None` for a
/// broken escape or a result longer than `out`.
fn percent_decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    let mut i = 0;
    while i < input.len() {
        let byte = if input[i] == b'%' {
            let hi = hex(*input.get(i + 1)?)?;
            let lo = hex(*input.get(i + 2)?)?;
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            input[i - 1]
        };
        *out.get_mut(len)? = byte;
        len += 1;
    }
    Some(len)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The value of the first cookie called `name` in the request's `Cookie` headers, as sent.
pub(crate) fn find<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    headers.get_all(COOKIE).iter().find_map(|header| {
        header.as_bytes().split(|&b| b == b';').find_map(|pair| {
            let pair = pair.trim_ascii_start();
            let rest = pair.strip_prefix(name)?;
            let value = rest.trim_ascii_start().strip_prefix(b"=")?;
            Some(value.trim_ascii())
        })
    })
}

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent only with requests from the same site.
    Strict,
    /// Also sent on top-level navigations from other sites (links), not on cross-site
    /// subrequests or form posts: the default, and what browsers assume without the attribute.
    Lax,
    /// Sent with every request, including cross-site ones; requires `Secure`.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

/// The cookie's attributes, rendered once when the layer is built.
#[derive(Debug, Clone)]
pub(crate) struct Attributes {
    /// `; Domain=..; Path=..`
    scope: String,
    /// `; HttpOnly; Secure; SameSite=..`
    flags: String,
}

impl Attributes {
    pub(crate) fn new(
        path: &str,
        domain: Option<&str>,
        http_only: bool,
        secure: bool,
        same_site: Option<SameSite>,
    ) -> Self {
        let mut scope = String::new();
        if let Some(domain) = domain {
            let _ = write!(scope, "; Domain={domain}");
        }
        let _ = write!(scope, "; Path={path}");
        let mut flags = String::new();
        if http_only {
            flags.push_str("; HttpOnly");
        }
        if secure {
            flags.push_str("; Secure");
        }
        if let Some(same_site) = same_site {
            let _ = write!(flags, "; SameSite={}", same_site.as_str());
        }
        Self { scope, flags }
    }

    /// `Set-Cookie` carrying `value`, for `max_age` seconds or for the browser session.
    pub(crate) fn set(&self, name: &str, value: &str, max_age: Option<i64>) -> Option<HeaderValue> {
        let mut out = String::with_capacity(
            name.len() + value.len() + self.scope.len() + self.flags.len() + 24,
        );
        out.push_str(name);
        out.push('=');
        out.push_str(value);
        out.push_str(&self.scope);
        if let Some(seconds) = max_age {
            let _ = write!(out, "; Max-Age={seconds}");
        }
        out.push_str(&self.flags);
        HeaderValue::try_from(out).ok()
    }

    /// `Set-Cookie` that makes the browser drop the cookie.
    pub(crate) fn clear(&self, name: &str) -> Option<HeaderValue> {
        let mut out = String::with_capacity(name.len() + self.scope.len() + self.flags.len() + 64);
        out.push_str(name);
        out.push('=');
        out.push_str(&self.scope);
        out.push_str("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        out.push_str(&self.flags);
        HeaderValue::try_from(out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&[u8]]) -> KeyRing {
        KeyRing::new(&keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>())
    }

    const KEY_A: &[u8] = b"0123456789abcdef0123456789abcdef";
    const KEY_B: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn sign_then_verify_round_trips() {
        let keys = ring(&[KEY_A]);
        let id = Id::random();
        let value = keys.sign(&id);
        assert!(value.starts_with("s%3A"), "{value}");
        assert_eq!(
            keys.verify(value.as_bytes()),
            Incoming::Valid {
                id,
                stale_key: false
            }
        );
    }

    #[test]
    fn older_key_verifies_as_stale() {
        let id = Id::random();
        let old = ring(&[KEY_B]).sign(&id);
        assert_eq!(
            ring(&[KEY_A, KEY_B]).verify(old.as_bytes()),
            Incoming::Valid {
                id,
                stale_key: true
            }
        );
        assert_eq!(ring(&[KEY_A]).verify(old.as_bytes()), Incoming::Invalid);
    }

    #[test]
    fn unencoded_and_quoted_values_verify() {
        let keys = ring(&[KEY_A]);
        let id = Id::random();
        let decoded = keys
            .sign(&id)
            .replace("%3A", ":")
            .replace("%2B", "+")
            .replace("%2F", "/");
        assert!(matches!(
            keys.verify(decoded.as_bytes()),
            Incoming::Valid { .. }
        ));
        let quoted = format!("\"{}\"", keys.sign(&id));
        assert!(matches!(
            keys.verify(quoted.as_bytes()),
            Incoming::Valid { .. }
        ));
    }

    #[test]
    fn bad_values_are_invalid() {
        let keys = ring(&[KEY_A]);
        let id = Id::random();
        let good = keys.sign(&id);
        let flipped = {
            let mut v = good.clone().into_bytes();
            let last = v.len() - 1;
            v[last] = if v[last] == b'A' { b'B' } else { b'A' };
            v
        };
        let cases: Vec<Vec<u8>> = vec![
            id.as_str().as_bytes().to_vec(),
            format!("s%3A{id}").into_bytes(),
            good.replacen("s%3A", "", 1).into_bytes(),
            flipped,
            format!("{good}=").into_bytes(),
            format!("{good}A").into_bytes(),
            "s%3A%ZZ.abc".as_bytes().to_vec(),
            "%".as_bytes().to_vec(),
            vec![b'a'; MAX_VALUE_LEN + 1],
            Vec::new(),
        ];
        let url_safe = good.replace("%2B", "-").replace("%2F", "_");
        let cases = cases
            .into_iter()
            .chain((url_safe != good).then(|| url_safe.into_bytes()));
        for case in cases {
            assert_eq!(
                keys.verify(&case),
                Incoming::Invalid,
                "{:?}",
                String::from_utf8_lossy(&case)
            );
        }
    }

    #[test]
    fn tags_equal_needs_every_byte() {
        let tag = [7u8; TAG_LEN];
        assert!(tags_equal(&tag, &tag));
        for i in 0..TAG_LEN {
            let mut other = tag;
            other[i] ^= 1;
            assert!(!tags_equal(&tag, &other), "byte {i}");
        }
        assert!(!tags_equal(&tag, &tag[..TAG_LEN - 1]));
    }

    #[test]
    fn tag_matches_express_cookie_signature() {
        // cookie-signature's own test vector: sign('hello', 'tobiiscool').
        let key = Hmac::<Sha256>::new_from_slice(b"tobiiscool").expect("any key length");
        assert_eq!(
            STANDARD_NO_PAD.encode(KeyRing::tag(&key, b"hello")),
            "DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
        );
    }

    #[test]
    fn a_signed_string_that_is_not_an_id_is_invalid() {
        let keys = ring(&[KEY_A]);
        let tag = KeyRing::tag(&keys.keys[0], b"short");
        let value = format!("s:short.{}", STANDARD_NO_PAD.encode(tag));
        assert_eq!(keys.verify(value.as_bytes()), Incoming::Invalid);
    }

    #[test]
    fn find_takes_the_first_cookie_with_the_exact_name() {
        let mut headers = http::HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("sidx=1; a=b"));
        headers.append(
            COOKIE,
            HeaderValue::from_static("x=y;  sid = first ; sid=second"),
        );
        assert_eq!(find(&headers, "sid"), Some(&b"first"[..]));
        assert_eq!(find(&headers, "si"), None);
        assert_eq!(find(&headers, "sidx"), Some(&b"1"[..]));
    }

    #[test]
    fn set_cookie_has_every_attribute_in_order() {
        let attrs = Attributes::new("/app", Some("example.org"), true, true, Some(SameSite::Lax));
        let header = attrs.set("sid", "v", Some(60)).expect("valid header");
        assert_eq!(
            header,
            "sid=v; Domain=example.org; Path=/app; Max-Age=60; HttpOnly; Secure; SameSite=Lax"
        );
        let cleared = attrs.clear("sid").expect("valid header");
        assert_eq!(
            cleared,
            "sid=; Domain=example.org; Path=/app; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
        );
    }
}
