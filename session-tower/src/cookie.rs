//! The session cookie: finding it in a request, checking its signature, and writing `Set-Cookie`.
//!
//! The value has express-session's format, so a Rust service and an Express one sharing a key
//! read each other's cookies: `s:` + id + `.` + signature, URL-encoded, where the signature is
//! HMAC-SHA256(key, id) in standard base64 without padding (43 characters).
//!
//! The `cookie` crate formats `Set-Cookie` with its attributes, except in Express-compatible
//! mode, where `Set-Cookie` is written as Express writes it: its attribute order (the crate's
//! is fixed and differs) and `Expires` without `Max-Age` (the date by `httpdate`). Also written
//! by hand:
//!
//! - express's signature: no crate signs in express's format (the `cookie` crate's signed jar
//!   uses its own), and the value is escaped exactly as express's `encodeURIComponent` does
//!   (the `cookie` crate's encoding leaves `+` as is), so both sides emit identical cookies;
//! - reading the `Cookie` header, which every request does: measured on the middleware
//!   benchmark's cookie, the `cookie` crate's `split_parse_encoded` (which allocates the decoded
//!   name and value of every cookie) took 0.3-0.6 µs per request where this code takes 0.08-0.09
//!   µs, and `split_parse` plus the `percent-encoding` crate's decoder 0.25-0.5 µs; on the
//!   benchmark's read handler that was +0.6 µs of p50 latency (20.6 -> 21.2 µs, bare axum
//!   18.4 µs), a quarter of the layer's own cost. Here the header is split in place, nothing is
//!   allocated, and only the signature's few escapes are decoded, into a stack buffer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderValue;
use http::header::COOKIE;
use session_core::Id;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;
/// Length of the tag in unpadded base64.
const TAG_B64_LEN: usize = 43;
/// Longest cookie value even looked at. A genuine one is at most 3 + 128 + 1 + 3 × 43 = 261
/// bytes; anything longer is refused before any decoding or hashing.
pub(crate) const MAX_VALUE_LEN: usize = 320;
/// How many cookies with the session's name are checked at most: each check costs an HMAC, and
/// a request should not be able to make the layer compute many.
pub(crate) const MAX_CANDIDATES: usize = 8;

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
    /// Cookies with the name, but each unsigned, tampered, malformed, oversized or signed by no
    /// key of the ring: as if there were none, except that it may be cleared.
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

    /// The cookie value for `id`, signed with the current key, escaped as express's
    /// `encodeURIComponent` does (`:` → `%3A`, `+` → `%2B`, `/` → `%2F`; the id's URL-safe
    /// alphabet and the dot need no escape).
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

    /// The request's session cookie: every cookie called `name` in the `Cookie` headers is
    /// tried in order until one verifies (a sibling subdomain can plant a cookie with the same
    /// name, which the browser may send first), at most [`MAX_CANDIDATES`] of them.
    pub(crate) fn read(&self, headers: &http::HeaderMap, name: &str) -> Incoming {
        let mut seen = 0;
        for value in candidates(headers, name) {
            if seen == MAX_CANDIDATES {
                return Incoming::Invalid;
            }
            seen += 1;
            let verified = self.verify(value);
            if matches!(verified, Incoming::Valid { .. }) {
                return verified;
            }
        }
        if seen == 0 {
            Incoming::Absent
        } else {
            Incoming::Invalid
        }
    }
}

/// The values of the cookies called `name` in the request's `Cookie` headers, as sent, in
/// order. Other cookies' bytes are never looked at beyond the `;` that ends them.
fn candidates<'a>(
    headers: &'a http::HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    let name = name.as_bytes();
    headers.get_all(COOKIE).iter().flat_map(move |header| {
        header
            .as_bytes()
            .split(|&b| b == b';')
            .filter_map(move |pair| {
                let rest = pair.trim_ascii_start().strip_prefix(name)?;
                let value = rest.trim_ascii_start().strip_prefix(b"=")?;
                Some(value.trim_ascii())
            })
    })
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
    fn to_cookie(self) -> cookie::SameSite {
        match self {
            Self::Strict => cookie::SameSite::Strict,
            Self::Lax => cookie::SameSite::Lax,
            Self::None => cookie::SameSite::None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }

    /// As express-session's `cookie.sameSite` option holds it.
    pub(crate) fn express_name(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Lax => "lax",
            Self::None => "none",
        }
    }
}

/// The `Priority` attribute of the session cookie (a Chromium extension, also set by
/// express-session's `cookie.priority`): which cookies the browser evicts last when a site
/// has too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Evicted first.
    Low,
    /// What the browser assumes without the attribute.
    Medium,
    /// Evicted last: a session cookie is usually worth keeping over others.
    High,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
        }
    }

    /// As express-session's `cookie.priority` option holds it.
    pub(crate) fn express_name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// The session cookie's name and attributes, as one request sends them
/// ([`Session::cookie`](crate::Session::cookie)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieSettings {
    /// The cookie's name.
    pub name: String,
    /// `Path`.
    pub path: String,
    /// `Domain`, if any (else the cookie goes back to the exact host only).
    pub domain: Option<String>,
    /// `HttpOnly`: out of reach of scripts.
    pub http_only: bool,
    /// `Secure`, as decided for this request.
    pub secure: bool,
    /// `SameSite`, if sent.
    pub same_site: Option<SameSite>,
    /// `Partitioned`.
    pub partitioned: bool,
    /// `Priority`, if sent.
    pub priority: Option<Priority>,
}

/// The cookie's attributes, as configured; `Secure` is decided per request.
#[derive(Debug, Clone)]
pub(crate) struct Attributes {
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) http_only: bool,
    pub(crate) same_site: Option<SameSite>,
    pub(crate) partitioned: bool,
    pub(crate) priority: Option<Priority>,
    /// `Set-Cookie` as Express writes it ([`Attributes::set_expires`]).
    pub(crate) express: bool,
}

impl Attributes {
    fn build<'a>(&'a self, name: &'a str, value: &'a str, secure: bool) -> cookie::Cookie<'a> {
        let mut cookie = cookie::Cookie::new(name, value);
        cookie.set_path(self.path.as_str());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.as_str());
        }
        cookie.set_http_only(self.http_only);
        cookie.set_secure(secure);
        cookie.set_same_site(self.same_site.map(SameSite::to_cookie));
        cookie.set_partitioned(self.partitioned);
        cookie
    }

    fn header(&self, cookie: &cookie::Cookie<'_>) -> Option<HeaderValue> {
        // The `cookie` crate has no `Priority`; it is one attribute at the end.
        let mut out = cookie.to_string();
        if let Some(priority) = self.priority {
            out.push_str("; Priority=");
            out.push_str(priority.as_str());
        }
        HeaderValue::try_from(out).ok()
    }

    /// `Set-Cookie` carrying `value` (already escaped), for `max_age` or for the browser
    /// session.
    pub(crate) fn set(
        &self,
        name: &str,
        value: &str,
        max_age: Option<Duration>,
        secure: bool,
    ) -> Option<HeaderValue> {
        let mut cookie = self.build(name, value, secure);
        if let Some(max_age) = max_age {
            cookie.set_max_age(max_age);
        }
        self.header(&cookie)
    }

    /// `Set-Cookie` carrying `value` (already escaped) as Express writes it: attributes in the
    /// order of the `cookie` package express-session uses (Domain, Path, Expires, HttpOnly,
    /// Secure, Partitioned, Priority, SameSite), `Expires` as JavaScript's `toUTCString`
    /// (whole seconds, `GMT`), no `Max-Age`; no `Expires` for a browser-session cookie.
    pub(crate) fn set_expires(
        &self,
        name: &str,
        value: &str,
        expires: Option<OffsetDateTime>,
        secure: bool,
    ) -> Option<HeaderValue> {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(160);
        // Writing to a String cannot fail.
        let _ = write!(out, "{name}={value}");
        if let Some(domain) = &self.domain {
            let _ = write!(out, "; Domain={domain}");
        }
        let _ = write!(out, "; Path={}", self.path);
        if let Some(expires) = expires {
            // Before 1970 only for a cookie being cleared; httpdate starts there.
            let at = std::time::SystemTime::from(expires.max(OffsetDateTime::UNIX_EPOCH));
            let _ = write!(out, "; Expires={}", httpdate::fmt_http_date(at));
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if secure {
            out.push_str("; Secure");
        }
        if self.partitioned {
            out.push_str("; Partitioned");
        }
        if let Some(priority) = self.priority {
            let _ = write!(out, "; Priority={}", priority.as_str());
        }
        if let Some(same_site) = self.same_site {
            let _ = write!(out, "; SameSite={}", same_site.as_str());
        }
        HeaderValue::try_from(out).ok()
    }

    /// `Set-Cookie` that makes the browser drop the cookie: `Max-Age=0` and an `Expires` in
    /// the past, or in Express-compatible mode exactly what Express's `clearCookie` sends (an
    /// `Expires` in 1970, no `Max-Age`).
    pub(crate) fn clear(&self, name: &str, secure: bool) -> Option<HeaderValue> {
        if self.express {
            return self.set_expires(name, "", Some(OffsetDateTime::UNIX_EPOCH), secure);
        }
        let mut cookie = self.build(name, "", secure);
        cookie.set_max_age(Duration::ZERO);
        cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
        self.header(&cookie)
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

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in values {
            headers.append(COOKIE, HeaderValue::from_str(value).expect("valid header"));
        }
        headers
    }

    #[test]
    fn sign_then_read_round_trips() {
        let keys = ring(&[KEY_A]);
        let id = Id::random();
        let value = keys.sign(&id);
        assert!(value.starts_with("s%3A"), "{value}");
        assert_eq!(
            keys.read(&headers(&[&format!("sid={value}")]), "sid"),
            Incoming::Valid {
                id,
                stale_key: false
            }
        );
    }

    #[test]
    fn older_key_verifies_as_stale() {
        let id = Id::random();
        let old = format!("sid={}", ring(&[KEY_B]).sign(&id));
        assert_eq!(
            ring(&[KEY_A, KEY_B]).read(&headers(&[&old]), "sid"),
            Incoming::Valid {
                id,
                stale_key: true
            }
        );
        assert_eq!(
            ring(&[KEY_A]).read(&headers(&[&old]), "sid"),
            Incoming::Invalid
        );
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
        let quoted = format!("\"{}\"", keys.sign(&id));
        for value in [decoded, quoted] {
            assert!(
                matches!(
                    keys.read(&headers(&[&format!("sid={value}")]), "sid"),
                    Incoming::Valid { .. }
                ),
                "{value}"
            );
        }
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
            String::from_utf8(v).expect("ascii")
        };
        let mut cases: Vec<String> = vec![
            id.as_str().to_owned(),
            format!("s%3A{id}"),
            good.replacen("s%3A", "", 1),
            flipped,
            format!("{good}="),
            format!("{good}A"),
            "s%3A%ZZ.abc".to_owned(),
            "%".to_owned(),
            "a".repeat(MAX_VALUE_LEN + 1),
            String::new(),
        ];
        let url_safe = good.replace("%2B", "-").replace("%2F", "_");
        if url_safe != good {
            cases.push(url_safe);
        }
        for case in cases {
            assert_eq!(
                keys.read(&headers(&[&format!("sid={case}")]), "sid"),
                Incoming::Invalid,
                "{case:?}"
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
    fn read_matches_the_exact_name_across_headers() {
        let keys = ring(&[KEY_A]);
        let id = Id::random();
        let good = keys.sign(&id);
        let found = keys.read(
            &headers(&["sidx=1; a=b", &format!("x=y;  sid = {good} ; z=1")]),
            "sid",
        );
        assert!(matches!(found, Incoming::Valid { .. }), "{found:?}");
        assert_eq!(
            keys.read(&headers(&["sidx=1; a=b"]), "sid"),
            Incoming::Absent
        );
        assert_eq!(keys.read(&headers(&["si=1"]), "sid"), Incoming::Absent);
    }

    #[test]
    fn read_tries_every_cookie_with_the_name() {
        let keys = ring(&[KEY_A]);
        let id = Id::random();
        let good = format!("sid={}", keys.sign(&id));
        let other = format!("sid={}", ring(&[KEY_B]).sign(&Id::random()));
        for header in [
            format!("sid=planted; {good}"),
            format!("{other}; sid=x; {good}"),
            format!("{good}; sid=planted"),
        ] {
            assert_eq!(
                keys.read(&headers(&[&header]), "sid"),
                Incoming::Valid {
                    id: id.clone(),
                    stale_key: false
                },
                "{header}"
            );
        }
        let split = keys.read(&headers(&["sid=planted", &good]), "sid");
        assert!(matches!(split, Incoming::Valid { .. }), "across headers");
    }

    #[test]
    fn read_checks_a_bounded_number_of_candidates() {
        let keys = ring(&[KEY_A]);
        let good = format!("sid={}", keys.sign(&Id::random()));
        let planted = ["sid=x"; MAX_CANDIDATES].join("; ");
        assert_eq!(
            keys.read(&headers(&[&format!("{planted}; {good}")]), "sid"),
            Incoming::Invalid
        );
    }

    #[test]
    fn other_cookies_with_raw_utf8_do_not_hide_the_session_cookie() {
        let keys = ring(&[KEY_A]);
        let good = format!("sid={}", keys.sign(&Id::random()));
        let mut headers = http::HeaderMap::new();
        let mut raw = b"name=caf\xc3\xa9; bad=\xff\xfe; ".to_vec();
        raw.extend_from_slice(good.as_bytes());
        headers.append(COOKIE, HeaderValue::from_bytes(&raw).expect("opaque bytes"));
        assert!(matches!(keys.read(&headers, "sid"), Incoming::Valid { .. }));
    }

    fn attributes() -> Attributes {
        Attributes {
            path: "/app".to_owned(),
            domain: Some("example.org".to_owned()),
            http_only: true,
            same_site: Some(SameSite::Lax),
            partitioned: false,
            priority: None,
            express: false,
        }
    }

    fn parts(header: &HeaderValue) -> Vec<String> {
        let mut parts: Vec<String> = header
            .to_str()
            .expect("ascii")
            .split("; ")
            .map(str::to_owned)
            .collect();
        parts[1..].sort();
        parts
    }

    #[test]
    fn set_cookie_has_every_attribute() {
        let header = attributes()
            .set("sid", "v", Some(Duration::seconds(60)), true)
            .expect("valid header");
        assert_eq!(
            parts(&header),
            [
                "sid=v",
                "Domain=example.org",
                "HttpOnly",
                "Max-Age=60",
                "Path=/app",
                "SameSite=Lax",
                "Secure"
            ]
        );
        let cleared = attributes().clear("sid", false).expect("valid header");
        assert_eq!(
            parts(&cleared),
            [
                "sid=",
                "Domain=example.org",
                "Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                "HttpOnly",
                "Max-Age=0",
                "Path=/app",
                "SameSite=Lax"
            ]
        );
    }

    fn express_attributes() -> Attributes {
        Attributes {
            express: true,
            partitioned: true,
            priority: Some(Priority::High),
            ..attributes()
        }
    }

    #[test]
    fn express_set_cookie_has_express_order_and_expires_without_max_age() {
        // 2026-11-27T22:30:21.093Z: the fraction of a second is dropped, as by `toUTCString`.
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_795_818_621_093_000_000)
            .expect("valid instant");
        let header = express_attributes()
            .set_expires("connect.sid", "v", Some(at), true)
            .expect("valid header");
        assert_eq!(
            header.to_str().expect("ascii"),
            "connect.sid=v; Domain=example.org; Path=/app; Expires=Fri, 27 Nov 2026 22:30:21 GMT; \
             HttpOnly; Secure; Partitioned; Priority=High; SameSite=Lax"
        );
        let session_cookie = Attributes {
            domain: None,
            partitioned: false,
            priority: None,
            same_site: None,
            ..express_attributes()
        }
        .set_expires("connect.sid", "v", None, false)
        .expect("valid header");
        assert_eq!(
            session_cookie.to_str().expect("ascii"),
            "connect.sid=v; Path=/app; HttpOnly",
            "a browser-session cookie has no Expires"
        );
    }

    #[test]
    fn express_clear_is_express_clear_cookie() {
        let attrs = Attributes {
            domain: None,
            partitioned: false,
            priority: None,
            path: "/".to_owned(),
            ..express_attributes()
        };
        assert_eq!(
            attrs
                .clear("connect.sid", false)
                .expect("valid header")
                .to_str()
                .expect("ascii"),
            "connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn express_names_of_same_site_and_priority() {
        assert_eq!(
            [SameSite::Strict, SameSite::Lax, SameSite::None].map(SameSite::express_name),
            ["strict", "lax", "none"]
        );
        assert_eq!(
            [Priority::Low, Priority::Medium, Priority::High].map(Priority::express_name),
            ["low", "medium", "high"]
        );
    }

    #[test]
    fn partitioned_and_priority_are_written() {
        let attrs = Attributes {
            partitioned: true,
            priority: Some(Priority::High),
            ..attributes()
        };
        let header = attrs.set("sid", "v", None, true).expect("valid header");
        let parts = parts(&header);
        assert!(parts.contains(&"Partitioned".to_owned()), "{parts:?}");
        assert!(parts.contains(&"Priority=High".to_owned()), "{parts:?}");
        assert!(!parts.iter().any(|p| p.starts_with("Max-Age")), "{parts:?}");
    }
}
