//! What the layer keeps about a session inside its record, under one reserved key.
//!
//! The key is `cookie`, as in express-session, whose stored sessions keep the cookie's settings
//! in a `cookie` object (`originalMaxAge`, `expires`, ...). The fields share its names where
//! they mean the same; fields the layer does not know are ignored when read. In
//! Express-compatible mode the whole object is written in express-session's shape
//! ([`Meta::join_express`]), with the layer's own fields beside Express's, which an Express
//! write drops.

use serde::{Deserialize, Deserializer, Serialize};
use session_core::{Data, Value};
use time::{Duration, OffsetDateTime};

use crate::cookie::Attributes;

/// The key under which the layer keeps its per-session settings in the record's data.
/// Handlers cannot read or write it: [`Session::insert`](crate::Session::insert) refuses it
/// and reads never see it.
pub const RESERVED_KEY: &str = "cookie";

/// How long the old id of a regenerated session stays a tombstone (see
/// [`Session::regenerate`](crate::Session::regenerate)): a request still carrying the old cookie
/// within this time neither clears the browser's cookie nor issues a competing one.
pub const TOMBSTONE_TTL: Duration = Duration::minutes(1);

/// The reserved object. Absent fields mean "the layer's configuration"; an explicit `null`
/// means "none" (a browser-session cookie, no idle timeout).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meta {
    /// The cookie's `Max-Age` in milliseconds, `null` for a browser-session cookie
    /// (express-session's name and unit).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_millis"
    )]
    pub(crate) original_max_age: Option<Option<u64>>,
    /// The idle timeout in milliseconds, `null` for none (absolute timeout only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_millis"
    )]
    pub(crate) idle_timeout: Option<Option<u64>>,
    /// The record is a tombstone: its session was regenerated under a new id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) regenerated: bool,
    /// The session's [handle](crate::SessionInfo::handle), written with a principal: a store
    /// that lists sessions under another form of their id (hashed at rest) still lets the
    /// layer tell which listed session is the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) handle: Option<String>,
    /// When the session's current id was issued by a renewal
    /// ([`Builder::with_renewal_timeout`](crate::Builder::with_renewal_timeout)), in Unix
    /// milliseconds; absent: when the session was created (or last regenerated), its
    /// `created_at`, which a renewal keeps for the absolute timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id_issued_at: Option<i64>,
}

/// A number of milliseconds as JavaScript may have written it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Millis {
    Whole(u64),
    /// Negative or fractional.
    Other(f64),
}

/// A field that is present, even as `null`, is `Some`. Any number is read as milliseconds, at
/// least 1: express-session writes whatever its `Date` arithmetic gave.
fn present_millis<'de, D>(deserializer: D) -> Result<Option<Option<u64>>, D::Error>
where
    D: Deserializer<'de>,
{
    let millis = Option::<Millis>::deserialize(deserializer)?.map(|m| match m {
        Millis::Whole(ms) => ms.max(1),
        // The cast saturates: NaN and negatives give 0, then 1.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Millis::Other(ms) => (ms.round() as u64).max(1),
    });
    Ok(Some(millis))
}

/// One write of a session's `cookie` object in express-session's shape: what the layer's
/// settings and the session's lifetime give for this request.
pub(crate) struct ExpressCookie<'a> {
    /// The cookie's `Max-Age` in milliseconds; `None` for a browser-session cookie.
    pub(crate) original_max_age: Option<u64>,
    /// When the cookie expires in the browser (now + `Max-Age`).
    pub(crate) expires: Option<OffsetDateTime>,
    /// The session's idle timeout in milliseconds.
    pub(crate) idle_timeout: Option<u64>,
    /// Whether that idle timeout is the session's own rather than the layer's.
    pub(crate) own_idle_timeout: bool,
    /// `Secure`, as decided for this request.
    pub(crate) secure: bool,
    pub(crate) attributes: &'a Attributes,
}

/// express-session's `Cookie#toJSON`, field for field and in its order, then the layer's own
/// fields (which express-session leaves out when it writes the session).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExpressObject<'a> {
    original_max_age: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partitioned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<&'static str>,
    expires: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    secure: bool,
    http_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    same_site: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout: Option<Option<u64>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    regenerated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_issued_at: Option<i64>,
}

/// A duration as stored: whole milliseconds, at least 1.
pub(crate) fn to_millis(duration: Duration) -> u64 {
    u64::try_from(duration.whole_milliseconds())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A stored duration; absurd values saturate rather than fail.
pub(crate) fn from_millis(millis: u64) -> Duration {
    Duration::milliseconds(i64::try_from(millis).unwrap_or(i64::MAX))
}

impl Meta {
    /// The marker of a tombstone.
    pub(crate) fn tombstone() -> Self {
        Self {
            regenerated: true,
            ..Self::default()
        }
    }

    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Takes the reserved key out of `data`. A value there that is not the reserved object
    /// (written before the key was reserved) is dropped with a warning: the key is the layer's.
    pub(crate) fn split(data: &mut Data) -> Self {
        let Some(value) = data.remove(RESERVED_KEY) else {
            return Self::default();
        };
        value.decode().unwrap_or_else(|error| {
            tracing::warn!(
                error = %crate::error::Chain(&error),
                "session value under the reserved key {RESERVED_KEY:?} is not the layer's; ignored"
            );
            Self::default()
        })
    }

    /// `data` with the reserved object put back, as it is stored.
    pub(crate) fn join(&self, data: &Data) -> Result<Data, session_core::Error> {
        if self.is_default() {
            return Ok(data.clone());
        }
        let mut data = data.clone();
        data.insert_value(RESERVED_KEY, Value::encode(self)?);
        Ok(data)
    }

    /// Takes the reserved key out of `data` as written in Express-compatible mode: a session
    /// whose `cookie` object has an `originalMaxAge` and no `idleTimeout` (express-session
    /// wrote it last, or the two were equal) lives that long without use, as express-session's
    /// stores keep it (their expiry is the cookie's).
    pub(crate) fn split_express(data: &mut Data) -> Self {
        let mut meta = Self::split(data);
        if meta.idle_timeout.is_none()
            && let Some(Some(max_age)) = meta.original_max_age
        {
            meta.idle_timeout = Some(Some(max_age));
        }
        meta
    }

    /// `data` with the reserved object put back in express-session's shape (see
    /// [`Meta::split_express`] for the idle timeout, written only where it differs from the
    /// cookie's `Max-Age`).
    pub(crate) fn join_express(
        &self,
        data: &Data,
        cookie: &ExpressCookie<'_>,
    ) -> Result<Data, session_core::Error> {
        let attributes = cookie.attributes;
        let idle_timeout = match cookie.original_max_age {
            Some(max_age) => (cookie.idle_timeout != Some(max_age)).then_some(cookie.idle_timeout),
            None => cookie.own_idle_timeout.then_some(cookie.idle_timeout),
        };
        let object = ExpressObject {
            original_max_age: cookie.original_max_age,
            partitioned: attributes.partitioned,
            priority: attributes.priority.map(crate::Priority::express_name),
            expires: cookie.expires.map(session_core::express::js_date),
            secure: cookie.secure,
            http_only: attributes.http_only,
            domain: attributes.domain.as_deref(),
            path: &attributes.path,
            same_site: attributes.same_site.map(crate::SameSite::express_name),
            idle_timeout,
            regenerated: self.regenerated,
            id_issued_at: self.id_issued_at,
        };
        let mut data = data.clone();
        data.insert_value(RESERVED_KEY, Value::encode(&object)?);
        Ok(data)
    }

    /// When the session's current id was issued: its renewal, or else `created_at` (a stored
    /// time out of range counts as `created_at` too).
    pub(crate) fn id_issued_at(&self, created_at: OffsetDateTime) -> OffsetDateTime {
        self.id_issued_at
            .and_then(|ms| session_core::clock::from_unix_millis(ms).ok())
            .unwrap_or(created_at)
    }

    /// This session's idle timeout, or the layer's.
    pub(crate) fn idle_timeout(&self, default: Option<Duration>) -> Option<Duration> {
        self.idle_timeout.map_or(default, |ms| ms.map(from_millis))
    }

    /// This session's cookie `Max-Age`, or the layer's.
    pub(crate) fn max_age(&self, default: Option<Duration>) -> Option<Duration> {
        self.original_max_age
            .map_or(default, |ms| ms.map(from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_set_fields_differ() {
        let mut data = Data::new();
        data.insert(
            RESERVED_KEY,
            &serde_json::json!({"originalMaxAge": null, "idleTimeout": 5000}),
        )
        .expect("encode");
        let meta = Meta::split(&mut data);
        assert!(data.is_empty(), "the reserved key is taken out");
        assert_eq!(meta.original_max_age, Some(None));
        assert_eq!(meta.idle_timeout, Some(Some(5000)));
        assert!(!meta.regenerated);
        assert_eq!(meta.max_age(Some(Duration::HOUR)), None);
        assert_eq!(meta.idle_timeout(None), Some(Duration::seconds(5)));
        assert_eq!(
            Meta::default().max_age(Some(Duration::HOUR)),
            Some(Duration::HOUR)
        );
    }

    #[test]
    fn express_cookie_object_is_read() {
        let mut data = Data::new();
        data.insert(
            RESERVED_KEY,
            &serde_json::json!({
                "originalMaxAge": 2_592_000_000_u64,
                "expires": "2030-01-01T00:00:00.000Z",
                "httpOnly": true,
                "path": "/"
            }),
        )
        .expect("encode");
        data.insert("username", &"JohnDoe").expect("encode");
        let meta = Meta::split(&mut data);
        assert_eq!(meta.max_age(None), Some(Duration::days(30)));
        assert_eq!(meta.idle_timeout, None);
        assert_eq!(data.keys().collect::<Vec<_>>(), ["username"]);
    }

    #[test]
    fn join_round_trips_and_default_adds_nothing() {
        let mut data = Data::new();
        data.insert("user", &"ada").expect("encode");
        assert_eq!(
            Meta::default().join(&data).expect("encode"),
            data,
            "no reserved key for the layer's defaults"
        );
        let meta = Meta {
            original_max_age: Some(None),
            ..Meta::default()
        };
        let mut stored = meta.join(&data).expect("encode");
        assert_eq!(
            stored
                .get::<serde_json::Value>(RESERVED_KEY)
                .expect("decode"),
            Some(serde_json::json!({"originalMaxAge": null}))
        );
        assert_eq!(Meta::split(&mut stored), meta);
        assert_eq!(stored, data);
    }

    #[test]
    fn a_foreign_value_under_the_key_is_ignored() {
        let mut data = Data::new();
        data.insert(RESERVED_KEY, &"chocolate chip")
            .expect("encode");
        assert_eq!(Meta::split(&mut data), Meta::default());
        assert!(data.is_empty());
    }

    fn express_cookie(attributes: &Attributes) -> ExpressCookie<'_> {
        ExpressCookie {
            original_max_age: Some(3_600_000),
            expires: Some(
                OffsetDateTime::from_unix_timestamp_nanos(1_795_818_621_093_000_000)
                    .expect("valid instant"),
            ),
            idle_timeout: Some(3_600_000),
            own_idle_timeout: false,
            secure: false,
            attributes,
        }
    }

    fn plain_attributes() -> Attributes {
        Attributes {
            path: "/".to_owned(),
            domain: None,
            http_only: true,
            same_site: None,
            partitioned: false,
            priority: None,
            express: true,
        }
    }

    fn cookie_json(data: &Data) -> String {
        data.get::<serde_json::Value>(RESERVED_KEY)
            .expect("decode")
            .expect("cookie object")
            .to_string()
    }

    #[test]
    fn express_object_is_what_express_session_writes() {
        let attributes = plain_attributes();
        let mut data = Data::new();
        data.insert("username", &"JohnDoe").expect("encode");
        let joined = Meta::default()
            .join_express(&data, &express_cookie(&attributes))
            .expect("encode");
        // Captured from express-session 1.19 (cookie.maxAge 1 h), keys in any order.
        let express: serde_json::Value = serde_json::from_str(
            r#"{"originalMaxAge":3600000,"expires":"2026-11-27T22:30:21.093Z","httpOnly":true,"path":"/"}"#,
        )
        .expect("json");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&cookie_json(&joined)).expect("json"),
            express
        );
        assert_eq!(
            joined.get::<String>("username").expect("decode").as_deref(),
            Some("JohnDoe")
        );
    }

    #[test]
    fn express_object_carries_every_set_attribute() {
        let attributes = Attributes {
            path: "/app".to_owned(),
            domain: Some("example.org".to_owned()),
            same_site: Some(crate::SameSite::Strict),
            partitioned: true,
            priority: Some(crate::Priority::Low),
            ..plain_attributes()
        };
        let cookie = ExpressCookie {
            secure: true,
            original_max_age: None,
            expires: None,
            ..express_cookie(&attributes)
        };
        let joined = Meta::tombstone()
            .join_express(&Data::new(), &cookie)
            .expect("encode");
        let object: serde_json::Value = serde_json::from_str(&cookie_json(&joined)).expect("json");
        assert_eq!(
            object,
            serde_json::json!({
                "originalMaxAge": null, "partitioned": true, "priority": "low", "expires": null,
                "secure": true, "httpOnly": true, "domain": "example.org", "path": "/app",
                "sameSite": "strict", "regenerated": true
            })
        );
    }

    #[test]
    fn express_idle_timeout_is_written_only_where_it_differs_from_max_age() {
        let attributes = plain_attributes();
        let round_trip = |cookie: ExpressCookie<'_>| {
            let mut data = Meta::default()
                .join_express(&Data::new(), &cookie)
                .expect("encode");
            let written = cookie_json(&data);
            (written, Meta::split_express(&mut data))
        };
        // Equal: left out, and read back from originalMaxAge.
        let (written, meta) = round_trip(express_cookie(&attributes));
        assert!(!written.contains("idleTimeout"), "{written}");
        assert_eq!(meta.idle_timeout, Some(Some(3_600_000)));
        // Different: written.
        let (written, meta) = round_trip(ExpressCookie {
            idle_timeout: Some(60_000),
            ..express_cookie(&attributes)
        });
        assert!(written.contains(r#""idleTimeout":60000"#), "{written}");
        assert_eq!(meta.idle_timeout, Some(Some(60_000)));
        // No Max-Age: written only if the session has its own, else the layer's applies.
        let (written, meta) = round_trip(ExpressCookie {
            original_max_age: None,
            expires: None,
            ..express_cookie(&attributes)
        });
        assert!(!written.contains("idleTimeout"), "{written}");
        assert_eq!(meta.idle_timeout, None);
        let (written, meta) = round_trip(ExpressCookie {
            original_max_age: None,
            expires: None,
            idle_timeout: None,
            own_idle_timeout: true,
            ..express_cookie(&attributes)
        });
        assert!(written.contains(r#""idleTimeout":null"#), "{written}");
        assert_eq!(meta.idle_timeout, Some(None));
    }

    #[test]
    fn express_written_max_age_becomes_the_idle_timeout() {
        let mut data = Data::new();
        data.insert(
            RESERVED_KEY,
            &serde_json::json!({"originalMaxAge": 2_591_999_999_u64, "expires": null}),
        )
        .expect("encode");
        let meta = Meta::split_express(&mut data);
        assert_eq!(meta.original_max_age, Some(Some(2_591_999_999)));
        assert_eq!(meta.idle_timeout, Some(Some(2_591_999_999)));
    }

    #[test]
    fn any_number_javascript_writes_is_read_as_milliseconds() {
        for (written, read) in [
            (serde_json::json!(1500.4), 1500),
            (serde_json::json!(-20), 1),
            (serde_json::json!(0), 1),
            (serde_json::json!(42), 42),
        ] {
            let mut data = Data::new();
            data.insert(
                RESERVED_KEY,
                &serde_json::json!({ "originalMaxAge": written }),
            )
            .expect("encode");
            assert_eq!(
                Meta::split(&mut data).original_max_age,
                Some(Some(read)),
                "{written}"
            );
        }
    }

    #[test]
    fn tombstone_is_marked() {
        let mut data = Meta::tombstone().join(&Data::new()).expect("encode");
        assert!(Meta::split(&mut data).regenerated);
    }
}
