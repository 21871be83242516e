//! Time: the app's clock, and the Unix-millisecond form every store keeps instants in.
//!
//! # One clock decides expiry
//!
//! Several app servers share one backend, and their clocks disagree by seconds or minutes. If
//! each server decided "is this session expired?" with its own clock, a server running fast
//! would hide live sessions (and its cleanup would delete them), and one running slow would
//! revive expired ones. So a store whose backend has a clock (SQL `now()`, Redis key TTLs and
//! `TIME`, MongoDB `$$NOW` and TTL indexes) lets the **backend** decide, in the statement or
//! script that acts on the record. The app's [`Clock`] only computes new instants: the
//! `expires_at` of a record it creates, saves or touches. A store without a clock of its own
//! (the in-process memory store) uses the app's clock for both, which is the same thing there.
//!
//! Stores take a [`Clock`] (`with_clock`) so that tests can run one app server with a skewed
//! clock against a shared backend; [`OffsetClock`] is that skewed clock.

use std::fmt;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::{Error, Result, truncate_to_millis};

/// A source of the current time for the app side of a store or middleware.
///
/// Implementations return UTC instants truncated to whole milliseconds (the precision every
/// store keeps; see [`crate::now`]).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant, in UTC, whole milliseconds.
    fn now(&self) -> OffsetDateTime;
}

/// The host's clock: [`crate::now`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        crate::now()
    }
}

/// The host's clock shifted by a fixed offset: an app server whose clock is wrong, for tests.
///
/// ```
/// use session_core::clock::{Clock, OffsetClock, SystemClock};
/// use time::Duration;
///
/// let fast = OffsetClock::new(Duration::minutes(10));
/// assert!(fast.now() > SystemClock.now() + Duration::minutes(9));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetClock {
    offset: Duration,
}

impl OffsetClock {
    /// A clock `offset` ahead of the host's (behind it when `offset` is negative).
    #[must_use]
    pub const fn new(offset: Duration) -> Self {
        Self { offset }
    }

    /// The offset from the host's clock.
    #[must_use]
    pub const fn offset(&self) -> Duration {
        self.offset
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        truncate_to_millis(crate::now().saturating_add(self.offset))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

/// The default clock as a shareable handle, for stores' and middlewares' fields.
#[must_use]
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// `t` as whole milliseconds since the Unix epoch (sub-millisecond parts are dropped, towards
/// negative infinity), the form every store keeps instants in.
///
/// Saturates at `i64::MIN` / `i64::MAX`, far outside any instant `time` can represent by
/// default.
#[must_use]
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    let nanos = t.unix_timestamp_nanos();
    let millis = nanos.div_euclid(1_000_000);
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

/// The instant `millis` milliseconds after the Unix epoch, in UTC.
///
/// # Errors
///
/// [`Error::Decode`] if `millis` is outside the range `time` represents (years -9999 to 9999):
/// a stored instant that cannot be real.
pub fn from_unix_millis(millis: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| Error::decode(OutOfRange(millis)))
}

#[derive(Debug)]
struct OutOfRange(i64);

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored instant {} ms since the Unix epoch is out of range",
            self.0
        )
    }
}

impl std::error::Error for OutOfRange {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_and_truncate() {
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).expect("valid");
        assert_eq!(unix_millis(t), 1_700_000_000_123);
        assert_eq!(
            from_unix_millis(1_700_000_000_123).expect("in range"),
            truncate_to_millis(t)
        );
    }

    #[test]
    fn millis_before_the_epoch_round_down() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000).expect("valid");
        assert_eq!(unix_millis(t), -2);
    }

    #[test]
    fn out_of_range_millis_are_a_decode_error() {
        assert!(matches!(from_unix_millis(i64::MAX), Err(Error::Decode(_))));
        assert!(matches!(from_unix_millis(i64::MIN), Err(Error::Decode(_))));
    }

    #[test]
    fn offset_clock_is_shifted() {
        let slow = OffsetClock::new(Duration::minutes(-10));
        let diff = SystemClock.now() - slow.now();
        assert!(
            diff >= Duration::minutes(10) && diff < Duration::minutes(10) + Duration::seconds(5),
            "{diff}"
        );
    }
}
