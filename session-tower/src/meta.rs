//! What the layer keeps about a session inside its record, under one reserved key.
//!
//! The key is `cookie`, as in express-session, whose stored sessions keep the cookie's settings
//! in a `cookie` object (`originalMaxAge`, `expires`, ...). The fields share its names where
//! they mean the same, so that an Express-compatible layout can map that object; fields it does
//! not know are ignored when read, and Express ignores ours.

use serde::{Deserialize, Deserializer, Serialize};
use session_core::{Data, Value};
use time::Duration;

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
        deserialize_with = "present"
    )]
    pub(crate) original_max_age: Option<Option<u64>>,
    /// The idle timeout in milliseconds, `null` for none (absolute timeout only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub(crate) idle_timeout: Option<Option<u64>>,
    /// The record is a tombstone: its session was regenerated under a new id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) regenerated: bool,
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
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

    #[test]
    fn tombstone_is_marked() {
        let mut data = Meta::tombstone().join(&Data::new()).expect("encode");
        assert!(Meta::split(&mut data).regenerated);
    }
}
