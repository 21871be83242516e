//! The per-request session handle and what the layer does with it once the handler is done.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use session_core::{Data, Id, Record, Value};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::Error;
use crate::config::{Config, MAX_SAVE_ATTEMPTS};
use crate::cookie::Incoming;

/// The session of the current request.
///
/// The layer puts one in every request's extensions (with the `axum` feature it is also an
/// extractor). It is a cheap handle: clones share the same session. Nothing is read from the
/// store until a method needs the data, so a handler that never uses the session costs no store
/// call. Changes are kept in memory and written once, after the handler, following the rules in
/// the crate documentation; [`Session::save`] writes earlier.
///
/// Every method that needs the data may load it and so may fail with [`Error::Store`].
#[derive(Clone)]
pub struct Session(Arc<Shared>);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cookie", &self.0.incoming)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    config: Arc<Config>,
    incoming: Incoming,
    state: Mutex<Option<Loaded>>,
}

/// The session as this request sees it, once loaded.
struct Loaded {
    record: Record,
    /// Whether the store holds `record.id` at `record.version`.
    persisted: bool,
    /// What this request changed since the last write, to re-apply over a concurrent save.
    changes: Changes,
    /// Whether anything changed during this request (survives an early `save`).
    changed: bool,
    /// `touch()` was called.
    touched: bool,
}

impl Loaded {
    fn new(config: &Config, data: Data) -> Self {
        let mut record = Record::new(Id::random(), time::Duration::ZERO);
        record.expires_at = config.expiry(record.created_at, record.created_at);
        record.data = data;
        Self {
            record,
            persisted: false,
            changes: Changes::default(),
            changed: false,
            touched: false,
        }
    }

    fn existing(record: Record) -> Self {
        Self {
            record,
            persisted: true,
            changes: Changes::default(),
            changed: false,
            touched: false,
        }
    }
}

/// A request's changes, as the net effect per key: replaying them on any data gives the same
/// result as replaying the calls in order.
#[derive(Default)]
struct Changes {
    cleared: bool,
    keys: BTreeMap<String, Option<Value>>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        !self.cleared && self.keys.is_empty()
    }

    fn apply(&self, data: &mut Data) {
        if self.cleared {
            data.clear();
        }
        for (key, value) in &self.keys {
            match value {
                Some(value) => {
                    data.insert_value(key.clone(), value.clone());
                }
                None => {
                    data.remove(key);
                }
            }
        }
    }
}

impl Session {
    pub(crate) fn new(config: Arc<Config>, incoming: Incoming) -> Self {
        Self(Arc::new(Shared {
            config,
            incoming,
            state: Mutex::new(None),
        }))
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.0)
    }

    /// The value under `key`, decoded as `T`; `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails, [`Error::Value`] if the value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.with(|s| s.record.data.get(key).map_err(Error::Value))
            .await?
    }

    /// The encoded value under `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        self.with(|s| s.record.data.get_value(key).cloned()).await
    }

    /// Stores `value` under `key`. Writing the value already there changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails, [`Error::Value`] if `value` cannot be encoded.
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), Error> {
        let value = Value::encode(value).map_err(Error::Value)?;
        self.insert_value(key, value).await
    }

    /// Stores an already encoded value under `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn insert_value(&self, key: impl Into<String>, value: Value) -> Result<(), Error> {
        let key = key.into();
        self.with(move |s| {
            if s.record.data.get_value(&key) == Some(&value) {
                return;
            }
            s.record.data.insert_value(key.clone(), value.clone());
            s.changes.keys.insert(key, Some(value));
            s.changed = true;
        })
        .await
    }

    /// Removes the value under `key`, returning it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        self.with(|s| {
            let old = s.record.data.remove(key);
            if old.is_some() {
                s.changes.keys.insert(key.to_owned(), None);
                s.changed = true;
            }
            old
        })
        .await
    }

    /// Removes every value. The session itself stays (with the same id); see
    /// [`Session::destroy`] to end it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn clear(&self) -> Result<(), Error> {
        self.with(|s| {
            if !s.record.data.is_empty() {
                s.record.data.clear();
                s.changes.keys.clear();
                s.changes.cleared = true;
                s.changed = true;
            }
        })
        .await
    }

    /// A snapshot of every value (cheap: the data is shared until one side changes it).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn data(&self) -> Result<Data, Error> {
        self.with(|s| s.record.data.clone()).await
    }

    /// Whether the session holds no values.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        self.with(|s| s.record.data.is_empty()).await
    }

    /// The session's id. A new session has one from the start, but it is stored and sent only
    /// when the session is (see the crate documentation).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn id(&self) -> Result<Id, Error> {
        self.with(|s| s.record.id.clone()).await
    }

    /// When the session ends on the server if it is not used again: the earlier of the idle
    /// and the absolute deadline, as of the last time it was written or touched.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn expires_at(&self) -> Result<OffsetDateTime, Error> {
        self.with(|s| s.record.expires_at).await
    }

    /// Ends the session: deletes it from the store now and, at the end of the request, tells
    /// the browser to drop the cookie. Values inserted afterwards go to a new session with a new
    /// id. Does not need to load the session.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the delete fails; the session is then unchanged.
    pub async fn destroy(&self) -> Result<(), Error> {
        let shared = &*self.0;
        let mut state = shared.state.lock().await;
        let id = match state.as_ref() {
            Some(s) => s.persisted.then(|| s.record.id.clone()),
            None => shared.incoming.id().cloned(),
        };
        if let Some(id) = id {
            shared
                .config
                .store
                .delete(&id)
                .await
                .map_err(|e| Error::store("delete a session", e))?;
        }
        *state = Some(Loaded::new(&shared.config, Data::new()));
        Ok(())
    }

    /// Gives the session a new id, keeping its values, and deletes the old id from the store
    /// now. Call it when the user logs in (or their privileges change), so that an id planted
    /// or seen before login is worthless after it. Call [`Session::clear`] afterwards to start
    /// empty, as express-session's `regenerate` does. The session counts as new from then on,
    /// for the absolute timeout too.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading or the delete fails; the session is then unchanged.
    pub async fn regenerate(&self) -> Result<(), Error> {
        let shared = &*self.0;
        let mut state = shared.state.lock().await;
        let loaded = shared.ensure(&mut state).await?;
        if loaded.persisted {
            shared
                .config
                .store
                .delete(&loaded.record.id)
                .await
                .map_err(|e| Error::store("delete a session", e))?;
        }
        let mut fresh = Loaded::new(&shared.config, loaded.record.data.clone());
        fresh.changed = true;
        *loaded = fresh;
        Ok(())
    }

    /// Forgets this request's unsaved changes and reads the session from the store again.
    /// A session not yet stored becomes empty.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn reload(&self) -> Result<(), Error> {
        let shared = &*self.0;
        let mut state = shared.state.lock().await;
        let reloaded = match state.as_ref() {
            None => shared.load().await?,
            Some(s) if s.persisted => shared.load_id(&s.record.id).await?,
            Some(_) => Loaded::new(&shared.config, Data::new()),
        };
        *state = Some(reloaded);
        Ok(())
    }

    /// Writes the session to the store now (a new session too, even an empty one) instead of
    /// after the handler; the cookie is still sent with the response when needed.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading or writing fails.
    pub async fn save(&self) -> Result<(), Error> {
        let shared = &*self.0;
        let mut state = shared.state.lock().await;
        let loaded = shared.ensure(&mut state).await?;
        let now = session_core::now();
        if loaded.persisted {
            shared.save_merging(loaded, now).await
        } else {
            shared.create(loaded, now).await
        }
    }

    /// Marks the session as used: at the end of the request its expiry moves forward even if
    /// the move is small, and, when the cookie has a `Max-Age`, the cookie is sent again.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if loading fails.
    pub async fn touch(&self) -> Result<(), Error> {
        self.with(|s| s.touched = true).await
    }

    /// Runs `f` on the loaded session.
    async fn with<R>(&self, f: impl FnOnce(&mut Loaded) -> R) -> Result<R, Error> {
        let mut state = self.0.state.lock().await;
        let loaded = self.0.ensure(&mut state).await?;
        Ok(f(loaded))
    }
}

impl Shared {
    /// The loaded session, loading it first if needed.
    async fn ensure<'a>(&self, slot: &'a mut Option<Loaded>) -> Result<&'a mut Loaded, Error> {
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
            None => Ok(Loaded::new(&self.config, Data::new())),
        }
    }

    /// The stored session `id`, or a new one (with a new id) if it is gone or past its
    /// absolute timeout.
    async fn load_id(&self, id: &Id) -> Result<Loaded, Error> {
        let store = &self.config.store;
        match store.load(id).await {
            Ok(Some(record)) => {
                // A record written under this configuration expires no later than its absolute
                // deadline, and a store returns only unexpired records: no clock needed then.
                let deadline = self.config.absolute_deadline(record.created_at);
                if deadline.is_none_or(|d| record.expires_at <= d)
                    || !self
                        .config
                        .past_absolute(record.created_at, session_core::now())
                {
                    return Ok(Loaded::existing(record));
                }
                // Stored under a longer absolute timeout than the current one.
                store
                    .delete(id)
                    .await
                    .map_err(|e| Error::store("delete a session", e))?;
            }
            Ok(None) => {}
            Err(e) => return Err(Error::store("load a session", e)),
        }
        Ok(Loaded::new(&self.config, Data::new()))
    }

    /// Inserts a new session, with a fresh id should the id be taken.
    async fn create(&self, loaded: &mut Loaded, now: OffsetDateTime) -> Result<(), Error> {
        loaded.record.expires_at = self.config.expiry(loaded.record.created_at, now);
        loaded.record.version = 0;
        for _ in 0..3 {
            match self.config.store.create(&loaded.record).await {
                Ok(()) => {
                    loaded.persisted = true;
                    loaded.changes = Changes::default();
                    return Ok(());
                }
                // 192 random bits collided (or a store misbehaves): never overwrite another
                // session, take another id.
                Err(session_core::Error::AlreadyExists) => loaded.record.id = Id::random(),
                Err(e) => return Err(Error::store("create a session", e)),
            }
        }
        Err(Error::store(
            "create a session",
            session_core::Error::AlreadyExists,
        ))
    }

    /// Saves a stored session; when someone else saved first, reloads, re-applies this
    /// request's changes and tries again. When the session is gone, this request's changes
    /// (only them) start a new session.
    async fn save_merging(&self, loaded: &mut Loaded, now: OffsetDateTime) -> Result<(), Error> {
        let config = &*self.config;
        for _ in 0..MAX_SAVE_ATTEMPTS {
            loaded.record.expires_at = config.expiry(loaded.record.created_at, now);
            match config.store.save(&loaded.record).await {
                Ok(()) => {
                    loaded.record.version += 1;
                    loaded.changes = Changes::default();
                    return Ok(());
                }
                Err(session_core::Error::Conflict) => {
                    let fresh = config
                        .store
                        .load(&loaded.record.id)
                        .await
                        .map_err(|e| Error::store("reload a session", e))?;
                    match fresh {
                        Some(mut fresh) if !config.past_absolute(fresh.created_at, now) => {
                            let nothing_to_apply = loaded.changes.is_empty();
                            loaded.changes.apply(&mut fresh.data);
                            loaded.record = fresh;
                            if nothing_to_apply {
                                // A resave only: the concurrent save already refreshed it.
                                return Ok(());
                            }
                        }
                        _ => return self.restart(loaded, now).await,
                    }
                }
                Err(session_core::Error::NotFound) => return self.restart(loaded, now).await,
                Err(e) => return Err(Error::store("save a session", e)),
            }
        }
        Err(Error::store(
            "save a session",
            session_core::Error::Conflict,
        ))
    }

    /// The session vanished (destroyed by a concurrent request, or expired) while this request
    /// changed it. Its old values are not brought back: a concurrent logout stays a logout.
    async fn restart(&self, loaded: &mut Loaded, now: OffsetDateTime) -> Result<(), Error> {
        let mut data = Data::new();
        loaded.changes.apply(&mut data);
        let had_changes = !loaded.changes.is_empty();
        let touched = loaded.touched;
        *loaded = Loaded::new(&self.config, data);
        loaded.changed = had_changes;
        loaded.touched = touched;
        if had_changes && (self.config.save_uninitialized || !loaded.record.data.is_empty()) {
            self.create(loaded, now).await?;
        }
        Ok(())
    }

    /// After the handler: writes or touches the store as the rules say and returns the
    /// `Set-Cookie` value to send, if any.
    pub(crate) async fn finish(&self) -> Result<Option<HeaderValue>, Error> {
        let mut state = self.state.lock().await;
        let Some(loaded) = state.as_mut() else {
            return Ok(None);
        };
        let config = &*self.config;
        let now = session_core::now();
        if !loaded.persisted {
            if config.save_uninitialized || !loaded.record.data.is_empty() {
                self.create(loaded, now).await?;
            }
        } else if !loaded.changes.is_empty() || config.resave {
            self.save_merging(loaded, now).await?;
        } else {
            let target = config.expiry(loaded.record.created_at, now);
            let gain = target - loaded.record.expires_at;
            let due = if loaded.touched {
                gain.is_positive()
            } else {
                gain.is_positive() && gain >= config.touch_threshold
            };
            if due {
                let found = config
                    .store
                    .touch(&loaded.record.id, target)
                    .await
                    .map_err(|e| Error::store("touch a session", e))?;
                if found {
                    loaded.record.expires_at = target;
                } else {
                    loaded.persisted = false;
                }
            }
        }
        Ok(self.cookie(loaded, now))
    }

    /// The cookie rule (see the crate documentation's table).
    fn cookie(&self, loaded: &Loaded, now: OffsetDateTime) -> Option<HeaderValue> {
        let config = &*self.config;
        if !loaded.persisted {
            return if self.incoming.is_present() {
                config.attributes.clear(&config.name)
            } else {
                None
            };
        }
        let send = match &self.incoming {
            Incoming::Valid { id, stale_key } if *id == loaded.record.id => {
                *stale_key
                    || config.rolling
                    || (config.max_age.is_some() && (loaded.changed || loaded.touched))
            }
            _ => true,
        };
        if !send {
            return None;
        }
        let value = config.keys.sign(&loaded.record.id);
        let max_age = config.cookie_max_age(loaded.record.created_at, now);
        config.attributes.set(&config.name, &value, max_age)
    }
}
