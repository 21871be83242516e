//! The sessions of a user: marking a session with its principal, listing and revoking the
//! principal's other sessions (see the crate documentation, "Sessions of a user").

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use session_core::{Data, Id, Principals, Record, Value, check_principal};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Error;
use crate::config::Config;
use crate::meta::Meta;
use crate::session::{Session, writable};
use crate::state::{Loaded, Status};

/// What the hash of a handle covers before the id, so that a handle is never the hash of the
/// id that another use of SHA-256 over ids (a store's own) produces.
const HANDLE_CONTEXT: &[u8] = b"session-tower/handle/v1\0";

/// A session's handle: the first 128 bits of SHA-256 of its id, in hex. An id carries at least
/// 128 random bits, so the handle tells nothing of it; no key is needed, and so no key
/// rotation changes it.
pub(crate) fn handle_of(id: &Id) -> String {
    let digest = Sha256::new()
        .chain_update(HANDLE_CONTEXT)
        .chain_update(id.as_str().as_bytes())
        .finalize();
    let mut hex = String::with_capacity(32);
    for byte in &digest[..16] {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// One live session of the current principal, as [`Session::sessions_of_principal`] lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Names the session for [`Session::revoke_session`]: 32 hex digits of a hash of its id,
    /// never the id itself (a session id is a bearer secret; a page listing sessions must not
    /// hand out another device's).
    pub handle: String,
    /// When the session was created (at login, for a session regenerated then).
    pub created_at: OffsetDateTime,
    /// When the session ends if it is not used again.
    pub expires_at: OffsetDateTime,
    /// When the session was last used, **derived**: its expiry minus its idle timeout, no
    /// earlier than its creation. The layer moves the expiry only when the move is worth a
    /// write, so this can lag the last request by that much; for a session whose expiry has
    /// reached its absolute deadline it is a lower bound. `None` without an idle timeout. An
    /// app that needs it exact keeps a value of its own in the data, written on each request.
    pub last_active: Option<OffsetDateTime>,
    /// Whether this is the session of the current request.
    pub current: bool,
    /// The session's values as the app stored them (e.g. a `user_agent` kept at login).
    pub data: Data,
}

impl SessionInfo {
    /// The value under `key`, decoded as `T`; `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if the value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.data.get(key).map_err(Error::Value)
    }

    /// The encoded value under `key`.
    #[must_use]
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.data.get_value(key)
    }
}

/// The principals capability of the layer's store, or the error that says there is none.
fn capability(config: &Config) -> Result<&dyn Principals, Error> {
    config
        .store
        .principals()
        .ok_or(Error::PrincipalsUnsupported)
}

/// A listed session of the principal: its info, and its id as the store listed it.
struct Listed {
    info: SessionInfo,
    id: Id,
}

impl Session {
    /// Marks this session as `principal`'s (a user id, at login), so that
    /// [`Session::sessions_of_principal`] lists it among that user's sessions and
    /// [`Session::revoke_other_sessions`] on another device can end it. Stored with the
    /// session, like a value: setting another principal is a change that is saved. It
    /// survives [`Session::regenerate`], whether set before or after it;
    /// [`Session::regenerate_empty`] drops it, so call this after that one.
    ///
    /// ```
    /// # async fn login(session: session_tower::Session, user: &str) -> Result<(), session_tower::Error> {
    /// session.regenerate_empty().await?;
    /// session.set_principal(user).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A store without the [`Principals`] capability (e.g. an Express-compatible layout) may
    /// not keep it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty principal, one longer than
    /// [`MAX_PRINCIPAL_LEN`](session_core::MAX_PRINCIPAL_LEN) bytes or one with control
    /// characters; [`Error::Store`] if loading fails; [`Error::Superseded`].
    pub async fn set_principal(&self, principal: impl Into<String>) -> Result<(), Error> {
        let principal = principal.into();
        check_principal(&principal).map_err(|e| {
            Error::InvalidArgument(format!("invalid principal: {}", crate::error::Chain(&e)).into())
        })?;
        self.change_principal(Some(principal)).await
    }

    /// Removes this session's principal: it is no longer listed among anyone's sessions.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails; [`Error::Superseded`].
    pub async fn clear_principal(&self) -> Result<(), Error> {
        self.change_principal(None).await
    }

    /// This session's principal, if it has one.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn principal(&self) -> Result<Option<String>, Error> {
        self.with_loaded(|s| s.record.principal.clone()).await
    }

    async fn change_principal(&self, principal: Option<String>) -> Result<(), Error> {
        self.with_loaded(move |s| {
            writable(s)?;
            if s.record.principal != principal {
                s.record.principal.clone_from(&principal);
                s.changes.principal = Some(principal);
                s.changed = true;
            }
            Ok(())
        })
        .await?
    }

    /// The live sessions of this session's principal, this one included once it is stored
    /// (a session made during this request is stored after the handler; call
    /// [`Session::save`] first to list it). Empty when the session has no principal.
    ///
    /// ```
    /// # async fn page(session: session_tower::Session) -> Result<String, session_tower::Error> {
    /// let mut page = String::new();
    /// for device in session.sessions_of_principal().await? {
    ///     let agent: Option<String> = device.get("user_agent")?;
    ///     let marker = if device.current { " (this device)" } else { "" };
    ///     page += &format!("{} since {}{marker}\n", agent.unwrap_or_default(), device.created_at);
    /// }
    /// # Ok(page)
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::PrincipalsUnsupported`] if the layer's store does not keep the sessions of a
    /// principal; [`Error::Store`] if loading or listing fails.
    pub async fn sessions_of_principal(&self) -> Result<Vec<SessionInfo>, Error> {
        Ok(self
            .listed()
            .await?
            .into_iter()
            .map(|listed| listed.info)
            .collect())
    }

    /// Ends the session of this principal that `handle` names (from
    /// [`Session::sessions_of_principal`]): its device's next request is anonymous. Returns
    /// whether there was such a session; a handle of another principal's session, or of one
    /// gone meanwhile, gives `false` and changes nothing. Revoking the current session is
    /// [`Session::destroy`]: the response drops the cookie, nothing of it is saved.
    ///
    /// # Errors
    ///
    /// [`Error::PrincipalsUnsupported`] if the layer's store does not keep the sessions of a
    /// principal; [`Error::Store`] if listing or deleting fails.
    pub async fn revoke_session(&self, handle: &str) -> Result<bool, Error> {
        let listed = self.listed().await?;
        let Some(target) = listed.into_iter().find(|l| l.info.handle == handle) else {
            return Ok(false);
        };
        if target.info.current {
            self.destroy().await?;
            return Ok(true);
        }
        let shared = self.shared();
        let principals = capability(&shared.config)?;
        let principal = self.principal().await?.unwrap_or_default();
        let revoked = principals
            .revoke(&principal, &target.id)
            .await
            .map_err(|e| shared.store_error("revoke a session", e))?;
        if revoked {
            crate::lifecycle::revoked(handle, self.current_id().as_ref());
        }
        Ok(revoked)
    }

    /// Ends every other session of this principal ("log out other devices", or after a
    /// password change) and returns how many it ended; this one stays. Nothing to do without
    /// a principal.
    ///
    /// # Errors
    ///
    /// [`Error::PrincipalsUnsupported`] if the layer's store does not keep the sessions of a
    /// principal; [`Error::Store`] if loading or revoking fails (sessions ended before the
    /// failure stay ended).
    pub async fn revoke_other_sessions(&self) -> Result<u64, Error> {
        let shared = self.shared();
        let principals = capability(&shared.config)?;
        let (principal, keep) = self
            .with_loaded(|s| {
                let keep = (s.status == Status::Stored).then(|| s.record.id.clone());
                (s.record.principal.clone(), keep)
            })
            .await?;
        let Some(principal) = principal else {
            return Ok(0);
        };
        let count = principals
            .revoke_all(&principal, keep.as_ref())
            .await
            .map_err(|e| shared.store_error("revoke sessions", e))?;
        if count > 0 {
            crate::lifecycle::revoked_others(count, keep.as_ref());
        }
        Ok(count)
    }

    /// The live sessions of this session's principal, with their ids as listed.
    async fn listed(&self) -> Result<Vec<Listed>, Error> {
        let shared = self.shared();
        let config = &*shared.config;
        let principals = capability(config)?;
        let (principal, current) = self
            .with_loaded(|s| {
                let current = (s.status == Status::Stored).then(|| handle_of(&s.record.id));
                (s.record.principal.clone(), current)
            })
            .await?;
        let Some(principal) = principal else {
            return Ok(Vec::new());
        };
        let records = principals
            .sessions_of(&principal)
            .await
            .map_err(|e| shared.store_error("list the sessions of a principal", e))?;
        let now = session_core::now();
        Ok(records
            .into_iter()
            .filter_map(|record| listed(config, record, current.as_deref(), now))
            .collect())
    }

    /// Runs `f` on the loaded session.
    async fn with_loaded<R>(&self, f: impl FnOnce(&mut Loaded) -> R) -> Result<R, Error> {
        let shared = self.shared();
        let mut state = shared.lock().await;
        let loaded = shared.ensure(&mut state).await?;
        Ok(f(loaded))
    }
}

/// A record as the listing shows it; `None` for one a load would not return as a session (a
/// tombstone, or one past the layer's absolute timeout).
fn listed(
    config: &Config,
    mut record: Record,
    current: Option<&str>,
    now: OffsetDateTime,
) -> Option<Listed> {
    let meta = if config.express {
        Meta::split_express(&mut record.data)
    } else {
        Meta::split(&mut record.data)
    };
    if meta.regenerated || config.past_absolute(record.created_at, now) {
        return None;
    }
    // A record written by another program has no handle: its id as listed gives one (the
    // same as the id's for a store that lists ids as they are).
    let handle = meta.handle.clone().unwrap_or_else(|| handle_of(&record.id));
    let last_active = meta.idle_timeout(config.idle_timeout).map(|idle| {
        record
            .expires_at
            .saturating_sub(idle)
            .max(record.created_at)
    });
    Some(Listed {
        info: SessionInfo {
            current: current == Some(handle.as_str()),
            handle,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_active,
            data: record.data,
        },
        id: record.id,
    })
}

#[cfg(test)]
mod tests {
    use super::handle_of;
    use session_core::Id;

    #[test]
    fn a_handle_is_128_bits_of_hex_and_not_the_id() {
        let id = Id::random();
        let handle = handle_of(&id);
        assert_eq!(handle.len(), 32, "{handle}");
        assert!(handle.bytes().all(|b| b.is_ascii_hexdigit()), "{handle}");
        assert!(!handle.contains(id.as_str()) && !id.as_str().contains(&handle));
        assert_eq!(handle, handle_of(&id), "a handle is stable");
        assert_ne!(handle, handle_of(&Id::random()));
    }
}
