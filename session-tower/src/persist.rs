//! What the layer does with a session: loading it, writing it back under the store calls
//! table's rules, and deciding the `Set-Cookie` under the cookie table's (see the crate
//! documentation).

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, PoisonError};

use http::HeaderValue;
use session_core::{Data, Id, Record};
use time::OffsetDateTime;
use tokio::sync::{Mutex, MutexGuard};

use crate::Error;
use crate::config::{Config, MAX_SAVE_ATTEMPTS};
use crate::cookie::Incoming;
use crate::meta::{ExpressCookie, Meta, TOMBSTONE_TTL, to_millis};
use crate::state::{Changes, Loaded, Status};

/// One request's session: what its cookie said, and the session once loaded.
pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) incoming: Incoming,
    /// Whether this request's cookie carries `Secure`.
    pub(crate) secure: bool,
    state: Mutex<Option<Loaded>>,
    /// The loaded session's id, readable without waiting for `state`.
    known_id: std::sync::Mutex<Option<Id>>,
}

/// The locked state; when released, the id readable without waiting is brought up to date.
pub(crate) struct State<'a> {
    shared: &'a Shared,
    guard: MutexGuard<'a, Option<Loaded>>,
}

impl Deref for State<'_> {
    type Target = Option<Loaded>;

    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl DerefMut for State<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl Drop for State<'_> {
    fn drop(&mut self) {
        let id = self.guard.as_ref().map(|loaded| &loaded.record.id);
        let mut known = self
            .shared
            .known_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if known.as_ref() != id {
            *known = id.cloned();
        }
    }
}

impl Shared {
    pub(crate) fn new(config: Arc<Config>, incoming: Incoming, secure: bool) -> Self {
        Self {
            config,
            incoming,
            secure,
            state: Mutex::new(None),
            known_id: std::sync::Mutex::new(None),
        }
    }

    pub(crate) async fn lock(&self) -> State<'_> {
        State {
            shared: self,
            guard: self.state.lock().await,
        }
    }

    pub(crate) fn known_id(&self) -> Option<Id> {
        self.known_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn store_error(
        &self,
        operation: &'static str,
        source: session_core::Error,
    ) -> Error {
        Error::store(operation, source, self.config.error_status)
    }

    /// A new, empty session.
    pub(crate) fn fresh(&self) -> Loaded {
        Loaded::new(&self.config, Data::new(), Meta::default())
    }

    /// The loaded session, loading it first if needed.
    pub(crate) async fn ensure<'a>(
        &self,
        slot: &'a mut Option<Loaded>,
    ) -> Result<&'a mut Loaded, Error> {
        let loaded = match slot.take() {
            Some(loaded) => loaded,
            None => self.load().await?,
        };
        Ok(slot.insert(loaded))
    }

    /// The session named by the request's cookie, or a new one.
    async fn load(&self) -> Result<Loaded, Error> {
        match self.incoming.id() {
            Some(id) => self.load_id(id).await,
            None => Ok(self.fresh()),
        }
    }

    /// The stored session `id`; a tombstone if it was regenerated; a new one (with a new id)
    /// if it is gone or past its absolute timeout.
    pub(crate) async fn load_id(&self, id: &Id) -> Result<Loaded, Error> {
        let record = self
            .config
            .store
            .load(id)
            .await
            .map_err(|e| self.store_error("load a session", e))?;
        Ok(match record {
            Some(record) => self.accept(record).await?,
            None => {
                crate::lifecycle::expired(id, false);
                None
            }
        }
        .unwrap_or_else(|| self.fresh()))
    }

    /// A record as loaded: the stored session, a superseded one for a tombstone, or `None`
    /// when it is past the absolute timeout (then deleted).
    async fn accept(&self, mut record: Record) -> Result<Option<Loaded>, Error> {
        let config = &*self.config;
        let meta = if config.express {
            Meta::split_express(&mut record.data)
        } else {
            Meta::split(&mut record.data)
        };
        if meta.regenerated {
            return Ok(Some(Loaded::superseded(config, record.id)));
        }
        // A record written under this configuration expires no later than its absolute
        // deadline, and a store returns only unexpired records: no clock needed then.
        let deadline = config.absolute_deadline(record.created_at);
        if deadline.is_none_or(|d| record.expires_at <= d)
            || !config.past_absolute(record.created_at, session_core::now())
        {
            return Ok(Some(Loaded::stored(record, meta)));
        }
        // Stored under a longer absolute timeout than the current one.
        config
            .store
            .delete(&record.id)
            .await
            .map_err(|e| self.store_error("delete a session", e))?;
        crate::lifecycle::expired(&record.id, true);
        Ok(None)
    }

    /// Inserts a new session, with a fresh id should the id be taken.
    pub(crate) async fn create(
        &self,
        loaded: &mut Loaded,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let config = &*self.config;
        loaded.record.expires_at =
            config.expiry(loaded.record.created_at, now, loaded.idle_timeout(config));
        loaded.record.version = 0;
        for _ in 0..3 {
            match config
                .store
                .create(self.stored_form(loaded, now)?.as_ref())
                .await
            {
                Ok(()) => {
                    loaded.status = Status::Stored;
                    loaded.changes = Changes::default();
                    match loaded.renewed_from.take() {
                        Some((previous, reason)) => {
                            crate::lifecycle::renewed(&previous, &loaded.record.id, reason);
                        }
                        None => crate::lifecycle::created(&loaded.record.id),
                    }
                    return Ok(());
                }
                // 192 random bits collided (or a store misbehaves): never overwrite another
                // session, take another id.
                Err(session_core::Error::AlreadyExists) => loaded.record.id = Id::random(),
                Err(e) => return Err(self.store_error("create a session", e)),
            }
        }
        Err(self.store_error("create a session", session_core::Error::AlreadyExists))
    }

    /// Saves a stored session; when someone else saved first, reloads, re-applies this
    /// request's changes (re-running its updates) and tries again. When the session is gone,
    /// this request's changes (only them) start a new session; when it was regenerated, they
    /// are refused.
    pub(crate) async fn save(&self, loaded: &mut Loaded, now: OffsetDateTime) -> Result<(), Error> {
        let config = &*self.config;
        let _lock = config.save_locks.lock(&loaded.record.id).await;
        for _ in 0..MAX_SAVE_ATTEMPTS {
            loaded.record.expires_at =
                config.expiry(loaded.record.created_at, now, loaded.idle_timeout(config));
            match config
                .store
                .save(self.stored_form(loaded, now)?.as_ref())
                .await
            {
                Ok(()) => {
                    loaded.record.version += 1;
                    loaded.changes = Changes::default();
                    return Ok(());
                }
                Err(session_core::Error::Conflict) => match self.reload(&loaded.record.id).await? {
                    Some(mut fresh) if fresh.status == Status::Stored => {
                        let nothing_to_apply = loaded.changes.is_empty();
                        loaded
                            .changes
                            .apply(
                                &mut fresh.record.data,
                                &mut fresh.meta,
                                &mut fresh.record.principal,
                            )
                            .map_err(Error::Value)?;
                        loaded.record = fresh.record;
                        loaded.meta = fresh.meta;
                        if nothing_to_apply {
                            // A resave only: the concurrent save already refreshed it.
                            return Ok(());
                        }
                    }
                    Some(_) => {
                        *loaded = Loaded::superseded(config, loaded.record.id.clone());
                        loaded.refused = true;
                        return Err(Error::Superseded);
                    }
                    None => return self.restart(loaded, now).await,
                },
                Err(session_core::Error::NotFound) => return self.restart(loaded, now).await,
                Err(e) => return Err(self.store_error("save a session", e)),
            }
        }
        Err(self.store_error("save a session", session_core::Error::Conflict))
    }

    /// The record under `id` after a conflict: stored, superseded, or `None` if gone.
    async fn reload(&self, id: &Id) -> Result<Option<Loaded>, Error> {
        let record = self
            .config
            .store
            .load(id)
            .await
            .map_err(|e| self.store_error("reload a session", e))?;
        match record {
            Some(record) => self.accept(record).await,
            None => Ok(None),
        }
    }

    /// The session vanished (destroyed by a concurrent request, or expired) while this request
    /// changed it. Its old values are not brought back: a concurrent logout stays a logout.
    async fn restart(&self, loaded: &mut Loaded, now: OffsetDateTime) -> Result<(), Error> {
        let mut data = Data::new();
        let mut meta = Meta::default();
        let mut principal = None;
        loaded
            .changes
            .apply(&mut data, &mut meta, &mut principal)
            .map_err(Error::Value)?;
        let had_changes = !loaded.changes.is_empty();
        let touched = loaded.touched;
        let lifetime_changed = loaded.lifetime_changed;
        *loaded = Loaded::new(&self.config, data, meta);
        loaded.record.principal = principal;
        loaded.changed = had_changes;
        loaded.touched = touched;
        loaded.lifetime_changed = lifetime_changed;
        if had_changes && (self.config.save_uninitialized || loaded.is_initialized()) {
            self.create(loaded, now).await?;
        }
        Ok(())
    }

    /// Turns the stored session into a tombstone (see [`TOMBSTONE_TTL`]) before it is
    /// regenerated. A save that ran since it was loaded is merged into `loaded` first, so that
    /// the new session keeps it. Returns whether this request wrote the tombstone: `false`
    /// when another request regenerated the session first, or it is gone.
    pub(crate) async fn tombstone(
        &self,
        loaded: &mut Loaded,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let config = &*self.config;
        let _lock = config.save_locks.lock(&loaded.record.id).await;
        let marker = if config.express {
            // The cookie lives as long as the tombstone, so that express-session's touch of it
            // (from a request carrying the old cookie) keeps it no longer than that.
            let meta = Meta {
                original_max_age: Some(Some(to_millis(TOMBSTONE_TTL))),
                ..Meta::tombstone()
            };
            self.express_data(&meta, &Data::new(), loaded.record.created_at, now)?
        } else {
            Meta::tombstone().join(&Data::new()).map_err(Error::Value)?
        };
        for _ in 0..MAX_SAVE_ATTEMPTS {
            let tombstone = Record::from_parts(
                loaded.record.id.clone(),
                marker.clone(),
                loaded.record.created_at,
                now.saturating_add(TOMBSTONE_TTL),
                loaded.record.version,
            );
            match config.store.save(&tombstone).await {
                Ok(()) => return Ok(true),
                // Gone meanwhile: nothing left to protect.
                Err(session_core::Error::NotFound) => return Ok(false),
                Err(session_core::Error::Conflict) => match self.reload(&loaded.record.id).await? {
                    Some(mut fresh) if fresh.status == Status::Stored => {
                        loaded
                            .changes
                            .apply(
                                &mut fresh.record.data,
                                &mut fresh.meta,
                                &mut fresh.record.principal,
                            )
                            .map_err(Error::Value)?;
                        loaded.record = fresh.record;
                        loaded.meta = fresh.meta;
                    }
                    // Regenerated by another request (a second login), or gone.
                    _ => return Ok(false),
                },
                Err(e) => return Err(self.store_error("regenerate a session", e)),
            }
        }
        Err(self.store_error("regenerate a session", session_core::Error::Conflict))
    }

    /// After the handler: writes or touches the store as the rules say and returns the
    /// `Set-Cookie` value to send, if any.
    pub(crate) async fn finish(&self) -> Result<Option<HeaderValue>, Error> {
        let mut state = self.lock().await;
        let Some(loaded) = state.as_mut() else {
            return Ok(None);
        };
        let config = &*self.config;
        let now = session_core::now();
        if loaded.status == Status::Stored && self.renewal_due(loaded, now) {
            self.renew_id(loaded, now).await?;
        }
        match loaded.status {
            Status::Superseded if loaded.refused => return Err(Error::Superseded),
            Status::Superseded => return Ok(None),
            Status::New => {
                if config.save_uninitialized || loaded.is_initialized() {
                    self.create(loaded, now).await?;
                }
            }
            Status::Stored => {
                if !loaded.changes.is_empty() || config.resave {
                    self.save(loaded, now).await?;
                } else {
                    self.touch(loaded, now).await;
                }
                if config.destroy_when_emptied
                    && loaded.changed
                    && loaded.status == Status::Stored
                    && !loaded.is_initialized()
                {
                    config
                        .store
                        .delete(&loaded.record.id)
                        .await
                        .map_err(|e| self.store_error("delete a session", e))?;
                    crate::lifecycle::destroyed(&loaded.record.id);
                    *loaded = self.fresh();
                }
            }
        }
        Ok(self.cookie(loaded, now))
    }

    /// Whether the stored session's id is older than the renewal timeout.
    fn renewal_due(&self, loaded: &Loaded, now: OffsetDateTime) -> bool {
        self.config.renewal_timeout.is_some_and(|interval| {
            loaded
                .meta
                .id_issued_at(loaded.record.created_at)
                .saturating_add(interval)
                <= now
        })
    }

    /// The renewal timeout's `regenerate`: the old id becomes a tombstone and the session, with
    /// this request's changes, its principal, its own lifetime and its start (for the absolute
    /// timeout), is stored under a new id issued `now`. When another request renewed or ended
    /// the session first, nothing is done here: the usual save or touch then finds out, as for
    /// a regenerate elsewhere, and no second session is started.
    async fn renew_id(&self, loaded: &mut Loaded, now: OffsetDateTime) -> Result<(), Error> {
        if !self.tombstone(loaded, now).await? {
            return Ok(());
        }
        let mut meta = loaded.meta.clone();
        meta.id_issued_at = Some(session_core::clock::unix_millis(now));
        let mut fresh = Loaded::new(&self.config, loaded.record.data.clone(), meta);
        fresh.record.created_at = loaded.record.created_at;
        fresh.record.principal.clone_from(&loaded.record.principal);
        fresh.changed = loaded.changed;
        fresh.touched = loaded.touched;
        fresh.lifetime_changed = loaded.lifetime_changed;
        fresh.renewed_from = Some((loaded.record.id.clone(), "renewal timeout"));
        *loaded = fresh;
        self.create(loaded, now).await
    }

    /// Moves an unchanged session's expiry when the move is worth a write. A failure is
    /// logged and the response kept: nothing the client was told depends on it, and a store
    /// that reads but cannot write (out of memory, a read-only replica) should still serve
    /// pages.
    async fn touch(&self, loaded: &mut Loaded, now: OffsetDateTime) {
        let config = &*self.config;
        let idle = loaded.idle_timeout(config);
        let target = config.expiry(loaded.record.created_at, now, idle);
        let gain = target - loaded.record.expires_at;
        let due = gain.is_positive() && (loaded.touched || gain >= Config::touch_threshold(idle));
        if !due {
            return;
        }
        // If a concurrent request regenerated the session since it was loaded, this moves the
        // tombstone's expiry instead: it then lingers longer, still holding nothing.
        match config.store.touch(&loaded.record.id, target).await {
            Ok(true) => loaded.record.expires_at = target,
            Ok(false) => *loaded = self.fresh(),
            Err(e) => tracing::warn!(
                error = %crate::error::Chain(&e),
                "session store failed to touch a session; its expiry did not move, the response is kept"
            ),
        }
    }

    /// The cookie rule (see the crate documentation's table).
    fn cookie(&self, loaded: &Loaded, now: OffsetDateTime) -> Option<HeaderValue> {
        let config = &*self.config;
        match loaded.status {
            // The browser may hold the new session's cookie already: leave it alone.
            Status::Superseded => return None,
            Status::New if self.incoming.is_present() => {
                return config.attributes.clear(&config.name, self.secure);
            }
            Status::New => return None,
            Status::Stored => {}
        }
        let max_age = loaded.max_age(config);
        let send = match &self.incoming {
            Incoming::Valid { id, stale_key } if *id == loaded.record.id => {
                *stale_key
                    || config.rolling
                    || loaded.lifetime_changed
                    || (max_age.is_some() && (loaded.changed || loaded.touched))
            }
            _ => true,
        };
        if !send {
            return None;
        }
        let value = config.keys.sign(&loaded.record.id);
        if config.express {
            let expires = config.cookie_expires(max_age, loaded.record.created_at, now);
            return config
                .attributes
                .set_expires(&config.name, &value, expires, self.secure);
        }
        let max_age = config.cookie_max_age(max_age, loaded.record.created_at, now);
        config
            .attributes
            .set(&config.name, &value, max_age, self.secure)
    }

    /// The record as the store keeps it: with the reserved object when there is one, and in
    /// Express-compatible mode always, in express-session's shape as of `now`.
    fn stored_form<'a>(
        &self,
        loaded: &'a Loaded,
        now: OffsetDateTime,
    ) -> Result<Cow<'a, Record>, Error> {
        if self.config.express {
            let mut record = loaded.record.clone();
            record.data = self.express_data(
                &loaded.meta,
                &loaded.record.data,
                loaded.record.created_at,
                now,
            )?;
            return Ok(Cow::Owned(record));
        }
        if loaded.meta.is_default() && loaded.record.principal.is_none() {
            return Ok(Cow::Borrowed(&loaded.record));
        }
        loaded.to_store().map(Cow::Owned).map_err(Error::Value)
    }

    /// `data` with its `cookie` object as express-session writes it, for a session with
    /// `meta` written `now`: what an Express app sharing the store reads, and what its own
    /// `Set-Cookie` for the session will carry.
    fn express_data(
        &self,
        meta: &Meta,
        data: &Data,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Data, Error> {
        let config = &*self.config;
        let max_age = meta.max_age(config.max_age);
        meta.join_express(
            data,
            &ExpressCookie {
                original_max_age: max_age.map(to_millis),
                expires: config.cookie_expires(max_age, created_at, now),
                idle_timeout: meta.idle_timeout(config.idle_timeout).map(to_millis),
                own_idle_timeout: meta.idle_timeout.is_some(),
                secure: self.secure,
                attributes: &config.attributes,
            },
        )
        .map_err(Error::Value)
    }
}
