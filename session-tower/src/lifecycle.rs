//! The session life cycle as `tracing` events: created, renewed, destroyed, revoked, expired,
//! and rejected cookies, at `INFO` under the target [`TARGET`] (see the crate documentation,
//! *Logging*).
//!
//! A session is named by its [handle](crate::SessionInfo::handle), a hash of its id, never by
//! the id: the id is a bearer secret and logs are read by more people than the store. The handle
//! is the one the sessions listing shows, so an event can be matched with a session a user
//! sees on a "your sessions" page, and with the same session's events on every instance.

use session_core::Id;

use crate::principals::handle_of;

/// The `tracing` target of the life-cycle events.
pub(crate) const TARGET: &str = "session_tower::lifecycle";

/// A new session was stored.
pub(crate) fn created(id: &Id) {
    tracing::info!(target: TARGET, event = "created", session = %handle_of(id), "session created");
}

/// A stored session went on under a new id; `reason`: `"regenerate"` or `"renewal timeout"`.
pub(crate) fn renewed(previous: &Id, id: &Id, reason: &'static str) {
    tracing::info!(
        target: TARGET,
        event = "renewed",
        session = %handle_of(id),
        previous = %handle_of(previous),
        reason,
        "session renewed under a new id"
    );
}

/// The session was ended by its own request (`destroy`, or emptied under
/// `with_destroy_when_emptied`).
pub(crate) fn destroyed(id: &Id) {
    tracing::info!(target: TARGET, event = "destroyed", session = %handle_of(id), "session destroyed");
}

/// Another session of the same principal was ended by this one's request.
pub(crate) fn revoked(handle: &str, by: Option<&Id>) {
    tracing::info!(
        target: TARGET,
        event = "revoked",
        session = handle,
        by = %by.map_or_else(String::new, handle_of),
        "session revoked"
    );
}

/// Every other session of the principal was ended by this one's request.
pub(crate) fn revoked_others(count: u64, by: Option<&Id>) {
    tracing::info!(
        target: TARGET,
        event = "revoked",
        count,
        by = %by.map_or_else(String::new, handle_of),
        "other sessions of the principal revoked"
    );
}

/// A correctly signed cookie named a session the store no longer returns: expired, or ended
/// meanwhile (`found` false), or one past the absolute timeout, deleted now (`found` true).
pub(crate) fn expired(id: &Id, found: bool) {
    if found {
        tracing::info!(target: TARGET, event = "expired", session = %handle_of(id), "session past its absolute timeout, deleted");
    } else {
        tracing::info!(target: TARGET, event = "expired", session = %handle_of(id), "session cookie names no live session (expired or ended)");
    }
}

/// A request carried cookies with the session's name, none correctly signed: tampered,
/// forged, signed with a retired key, or malformed. Nothing of the value is logged.
pub(crate) fn rejected() {
    tracing::info!(target: TARGET, event = "rejected", "session cookie rejected: bad signature or malformed");
}
