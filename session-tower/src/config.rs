//! The layer's configuration and its builder.

use std::sync::Arc;

use http::StatusCode;
use session_core::{Error, Store};
use time::{Duration, OffsetDateTime};

use crate::SessionLayer;
use crate::cookie::{Attributes, KeyRing, Priority, SameSite};
use crate::locks::SaveLocks;
use crate::proxy::TrustedProxies;

/// The shortest signing key accepted: 32 bytes, the size of the HMAC-SHA256 output.
///
/// One cookie gives anyone the id and its tag, so a key can be searched for offline, as fast as
/// a machine computes HMACs, without ever asking the server: a key must be secret randomness
/// that no such search can reach. [`Builder::express_compatible`] accepts the shorter secrets
/// Express apps use, since it must share theirs.
pub const MIN_KEY_LEN: usize = 32;

/// How many times a save that hit a concurrent save is retried (reload, re-apply, save).
pub(crate) const MAX_SAVE_ATTEMPTS: u32 = 10;

/// When the cookie carries `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secure {
    Always,
    Never,
    /// When the request came over HTTPS, directly or through a trusted proxy.
    Auto,
}

/// Everything the service needs, validated, shared by every request.
pub(crate) struct Config {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: KeyRing,
    pub(crate) name: String,
    pub(crate) resave: bool,
    pub(crate) save_uninitialized: bool,
    pub(crate) rolling: bool,
    pub(crate) destroy_when_emptied: bool,
    pub(crate) max_age: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) error_status: StatusCode,
    pub(crate) secure: Secure,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) attributes: Attributes,
    pub(crate) save_locks: SaveLocks,
    /// express-session's cookie and stored `cookie` object ([`Builder::express_compatible`]).
    pub(crate) express: bool,
    /// `Cache-Control: no-store` on responses setting the cookie ([`Builder::with_cache_control`]).
    pub(crate) cache_control: bool,
    /// The id's longest life before it is renewed ([`Builder::with_renewal_timeout`]).
    pub(crate) renewal_timeout: Option<Duration>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("name", &self.name)
            .field("keys", &self.keys)
            .field("resave", &self.resave)
            .field("save_uninitialized", &self.save_uninitialized)
            .field("rolling", &self.rolling)
            .field("destroy_when_emptied", &self.destroy_when_emptied)
            .field("max_age", &self.max_age)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("error_status", &self.error_status)
            .field("secure", &self.secure)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("attributes", &self.attributes)
            .field("express", &self.express)
            .field("cache_control", &self.cache_control)
            .field("renewal_timeout", &self.renewal_timeout)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// When a session created at `created_at`, active `now`, with idle timeout `idle`, expires
    /// on the server.
    pub(crate) fn expiry(
        &self,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
        idle: Option<Duration>,
    ) -> OffsetDateTime {
        let idle = idle.map(|d| now.saturating_add(d));
        let absolute = self.absolute_timeout.map(|d| created_at.saturating_add(d));
        match (idle, absolute) {
            (Some(a), Some(b)) => a.min(b),
            (Some(t), None) | (None, Some(t)) => t,
            // The builder refuses a configuration without either timeout, and a session's own
            // idle timeout can be none only under an absolute one.
            (None, None) => now,
        }
    }

    /// A touch that would move the expiry by less than this is skipped: 1 % of the idle
    /// timeout, at most a minute, is not worth a store write on every request.
    pub(crate) fn touch_threshold(idle: Option<Duration>) -> Duration {
        idle.map_or(Duration::ZERO, |d| (d / 100_i32).min(Duration::MINUTE))
    }

    /// When a session created at `created_at` ends at the latest.
    pub(crate) fn absolute_deadline(&self, created_at: OffsetDateTime) -> Option<OffsetDateTime> {
        self.absolute_timeout.map(|d| created_at.saturating_add(d))
    }

    /// Whether a session created at `created_at` has outlived the absolute timeout.
    pub(crate) fn past_absolute(&self, created_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        self.absolute_timeout
            .is_some_and(|d| created_at.saturating_add(d) <= now)
    }

    /// The cookie's `Max-Age` in whole seconds: `max_age`, never past the absolute deadline.
    pub(crate) fn cookie_max_age(
        &self,
        max_age: Option<Duration>,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        let max_age = max_age?;
        let remaining = self.absolute_timeout.map_or(max_age, |d| {
            (created_at.saturating_add(d) - now).min(max_age)
        });
        Some(Duration::seconds(remaining.whole_seconds().max(0)))
    }

    /// When the cookie expires in the browser, as express-session writes it (`Expires`, and
    /// the stored `cookie.expires`): now plus `max_age`, never past the absolute deadline.
    pub(crate) fn cookie_expires(
        &self,
        max_age: Option<Duration>,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let expires = now.saturating_add(max_age?);
        Some(
            self.absolute_deadline(created_at)
                .map_or(expires, |deadline| expires.min(deadline)),
        )
    }
}

/// Builds a [`SessionLayer`]; every setting is checked by [`Builder::build`].
///
/// Start with [`SessionLayer::builder`]. A signing key is the only required setting; the
/// defaults are the secure choice for each of the others (see the crate documentation for the
/// table of options and their express-session equivalents).
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    store: Arc<dyn Store>,
    keys: Vec<Vec<u8>>,
    name: String,
    resave: bool,
    save_uninitialized: bool,
    rolling: bool,
    destroy_when_emptied: bool,
    secure: Secure,
    trusted_proxies: Vec<String>,
    http_only: bool,
    same_site: Option<SameSite>,
    partitioned: bool,
    priority: Option<Priority>,
    path: String,
    domain: Option<String>,
    max_age: Option<Duration>,
    idle_timeout: Option<Duration>,
    absolute_timeout: Option<Duration>,
    error_status: StatusCode,
    express: bool,
    cache_control: bool,
    renewal_timeout: Option<Duration>,
}

impl std::fmt::Debug for Builder {
    /// Never shows the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("keys", &format_args!("{} keys", self.keys.len()))
            .field("name", &self.name)
            .field("resave", &self.resave)
            .field("save_uninitialized", &self.save_uninitialized)
            .field("rolling", &self.rolling)
            .field("destroy_when_emptied", &self.destroy_when_emptied)
            .field("secure", &self.secure)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("partitioned", &self.partitioned)
            .field("priority", &self.priority)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("max_age", &self.max_age)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("error_status", &self.error_status)
            .field("express", &self.express)
            .field("cache_control", &self.cache_control)
            .field("renewal_timeout", &self.renewal_timeout)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The default cookie name.
    pub const DEFAULT_NAME: &'static str = "sid";
    /// express-session's cookie name, the default of [`Builder::express_compatible`].
    pub const EXPRESS_NAME: &'static str = "connect.sid";
    /// The default idle timeout: one day, express-session's default store lifetime.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::days(1);
    /// The default absolute timeout: 30 days, however active the session.
    pub const DEFAULT_ABSOLUTE_TIMEOUT: Duration = Duration::days(30);

    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            keys: Vec::new(),
            name: Self::DEFAULT_NAME.to_owned(),
            resave: false,
            save_uninitialized: false,
            rolling: false,
            destroy_when_emptied: false,
            secure: Secure::Always,
            trusted_proxies: Vec::new(),
            http_only: true,
            same_site: Some(SameSite::Lax),
            partitioned: false,
            priority: None,
            path: "/".to_owned(),
            domain: None,
            max_age: None,
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            absolute_timeout: Some(Self::DEFAULT_ABSOLUTE_TIMEOUT),
            error_status: StatusCode::INTERNAL_SERVER_ERROR,
            express: false,
            cache_control: true,
            renewal_timeout: None,
        }
    }

    /// Signs cookies with `key` alone (at least [`MIN_KEY_LEN`] bytes of secret randomness).
    pub fn with_signing_key(self, key: impl AsRef<[u8]>) -> Self {
        self.with_signing_keys([key])
    }

    /// A key ring: the first key signs; every key verifies, in order. To rotate, put the new key
    /// first and keep the old one after it until every cookie signed with it has been re-signed
    /// or has expired: a request carrying a cookie signed with an older key is accepted and, if
    /// its session is used, answered with a cookie signed with the first key.
    pub fn with_signing_keys<K: AsRef<[u8]>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.keys = keys.into_iter().map(|k| k.as_ref().to_vec()).collect();
        self
    }

    /// Shares sessions with an Express app running `express-session` beside this one: its
    /// cookie, its secrets and its stored form, so that a visitor logged in on either app is
    /// logged in on both. Pair it with the store's Express-compatible layout (e.g.
    /// `RedisStore::express_compatible()`, for connect-redis) and the Express app's settings.
    ///
    /// - `secrets` are the Express app's `secret` option, in its order: the first signs, all
    ///   verify, so they rotate as there. **Any length is accepted** (each must be non-empty),
    ///   because the point is to share the Express app's; a secret shorter than
    ///   [`MIN_KEY_LEN`] bytes is logged as a warning at build, since one cookie is enough to
    ///   search for it offline. Replace a short secret by putting a long random one first in
    ///   both apps.
    /// - The cookie is named [`Builder::EXPRESS_NAME`] (`connect.sid`; [`Builder::with_name`]
    ///   after this changes it, as express-session's `name`). `Set-Cookie` is written as
    ///   Express writes it: its attribute order, and `Expires` (now + `Max-Age`) instead of
    ///   `Max-Age`; a cleared cookie has an `Expires` in 1970, as Express's `clearCookie`.
    /// - The session's `cookie` object (the reserved key, [`RESERVED_KEY`](crate::RESERVED_KEY))
    ///   is stored in express-session's shape at every write: `originalMaxAge`, `expires`,
    ///   `secure`, `httpOnly`, `domain`, `path`, `sameSite`, `partitioned`, `priority`, so the
    ///   Express app finds a valid cookie, and sends its own `Set-Cookie` with these settings.
    ///
    /// The other settings keep their defaults here, which are not all Express's; set them as
    /// the Express app sets its own (see the crate documentation, *Sharing sessions with an
    /// Express app*, for the table, the differences and what is not shared).
    pub fn express_compatible<K: AsRef<[u8]>>(
        mut self,
        secrets: impl IntoIterator<Item = K>,
    ) -> Self {
        self.keys = secrets.into_iter().map(|k| k.as_ref().to_vec()).collect();
        self.name = Self::EXPRESS_NAME.to_owned();
        self.express = true;
        self
    }

    /// The cookie's name (express-session: `name`, default `connect.sid`; here `sid`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Save the session at the end of every request that used it, even when unchanged
    /// (express-session: `resave`). Default `false`. Unlike express-session, this cannot
    /// overwrite a concurrent request's changes: saves are versioned.
    pub fn with_resave(mut self, resave: bool) -> Self {
        self.resave = resave;
        self
    }

    /// Store new sessions even when nothing was put in them, and send their cookie
    /// (express-session: `saveUninitialized`, default `true` there). Default `false`: no empty
    /// sessions in the store, and no cookie until there is something to remember.
    pub fn with_save_uninitialized(mut self, save_uninitialized: bool) -> Self {
        self.save_uninitialized = save_uninitialized;
        self
    }

    /// Send the cookie on every response of a request that used the session, restarting its
    /// `Max-Age` (express-session: `rolling`). Default `false`.
    pub fn with_rolling(mut self, rolling: bool) -> Self {
        self.rolling = rolling;
        self
    }

    /// The cookie's `Secure` attribute: sent over HTTPS only. Default `true`. Turn it off only
    /// for plain-http development on localhost; behind a TLS-terminating proxy, see
    /// [`Builder::with_secure_auto`].
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = if secure {
            Secure::Always
        } else {
            Secure::Never
        };
        self
    }

    /// `Secure` follows each request's scheme (express-session: `cookie.secure: 'auto'`): set
    /// when the request came over HTTPS, as its URI says (HTTP/2) or, from a trusted proxy
    /// ([`Builder::with_trusted_proxies`]), as its `Forwarded` (`proto=`) or
    /// `X-Forwarded-Proto` header says. A server that terminates TLS itself should use
    /// `with_secure(true)`: an HTTP/1.1 request does not carry its scheme.
    ///
    /// The layer needs the peer's address to know whether a proxy is trusted: serve an axum
    /// app with `into_make_service_with_connect_info::<SocketAddr>()`, or put a
    /// [`PeerAddr`](crate::PeerAddr) in each request's extensions. Without it, or from any
    /// other peer, forwarding headers are ignored (a client could write them).
    ///
    /// `SameSite=None`, `Partitioned` and the `__Secure-`/`__Host-` name prefixes need a
    /// cookie that is always `Secure`, and are refused with this setting.
    pub fn with_secure_auto(mut self) -> Self {
        self.secure = Secure::Auto;
        self
    }

    /// The reverse proxies whose `Forwarded` / `X-Forwarded-Proto` headers
    /// [`Builder::with_secure_auto`] believes (express: the `trust proxy` setting): IP
    /// addresses (`"10.0.0.1"`, `"::1"`) and networks (`"10.0.0.0/8"`). A chain of trusted
    /// proxies is followed to the outermost one. Default: none.
    pub fn with_trusted_proxies<S: AsRef<str>>(
        mut self,
        proxies: impl IntoIterator<Item = S>,
    ) -> Self {
        self.trusted_proxies = proxies.into_iter().map(|p| p.as_ref().to_owned()).collect();
        self
    }

    /// The cookie's `HttpOnly` attribute: out of reach of scripts. Default `true`.
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The cookie's `SameSite` attribute, or `None` to leave it out. Default `Lax`.
    pub fn with_same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.same_site = same_site;
        self
    }

    /// The cookie's `Partitioned` attribute (CHIPS: a third-party cookie kept per top-level
    /// site; express-session: `cookie.partitioned`). Default `false`. Requires `Secure`.
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// The cookie's `Priority` attribute (express-session: `cookie.priority`), or `None` to
    /// leave it out. Default `None`.
    pub fn with_priority(mut self, priority: Option<Priority>) -> Self {
        self.priority = priority;
        self
    }

    /// The cookie's `Path`. Default `/`.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The cookie's `Domain`. Default none: the cookie goes back to the exact host only.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The cookie's `Max-Age`, or `None` for a cookie the browser forgets when it closes.
    /// Default `None`. Never more than what is left of the absolute timeout. A handler can set
    /// one session's own with [`Session::set_max_age`](crate::Session::set_max_age).
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.max_age = max_age;
        self
    }

    /// How long a session lives on the server without being used. Default one day. `None`:
    /// sessions end at the absolute timeout however they are used. A handler can set one
    /// session's own with [`Session::set_idle_timeout`](crate::Session::set_idle_timeout).
    pub fn with_idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// How long a session lives on the server at most, however active. Default 30 days.
    pub fn with_absolute_timeout(mut self, absolute_timeout: Option<Duration>) -> Self {
        self.absolute_timeout = absolute_timeout;
        self
    }

    /// Destroy a stored session that a request leaves without values (every key removed, or
    /// [`Session::clear`](crate::Session::clear)), instead of saving it empty: the store
    /// forgets it and the browser drops the cookie (express-session: `unset: 'destroy'`).
    /// Default `false`. The emptied session is saved first, so a concurrent request's new
    /// value keeps it alive; a value added after that save is lost with it.
    pub fn with_destroy_when_emptied(mut self, destroy: bool) -> Self {
        self.destroy_when_emptied = destroy;
        self
    }

    /// The status of the response sent when the store fails. Default `500 Internal Server
    /// Error`; must be a client or server error status (e.g. `503 Service Unavailable`).
    pub fn with_error_status(mut self, status: StatusCode) -> Self {
        self.error_status = status;
        self
    }

    /// Add `Cache-Control: no-store` to every response that carries the session's
    /// `Set-Cookie` and has no `Cache-Control` of the handler's. Default `true`.
    ///
    /// A shared cache (a CDN, a corporate proxy) that stores such a response would hand the
    /// same cookie, hence the same session, to whoever asks for the page next; `no-store` keeps
    /// the response out of every cache. A handler that sets its own `Cache-Control` keeps it,
    /// and responses that set no cookie are untouched. Turn it off only when something else
    /// (the app, the proxy) takes care of it; express-session adds no such header.
    pub fn with_cache_control(mut self, cache_control: bool) -> Self {
        self.cache_control = cache_control;
        self
    }

    /// Give a session a new id once its id is older than `interval`, on the first request that
    /// uses the session after that, whatever its activity. Default: never, as express-session.
    ///
    /// The renewal is [`Session::regenerate`](crate::Session::regenerate) done by the layer at
    /// the end of the request: the values, the principal and the session's own lifetime are
    /// kept, and the absolute timeout still counts from the session's start; the response
    /// carries the new cookie, and the old id becomes a tombstone for
    /// [`TOMBSTONE_TTL`](crate::TOMBSTONE_TTL), so that a request sent at the same time with
    /// the old cookie neither clears the browser's cookie nor starts another session (its
    /// reads see an empty session, as after a login elsewhere). A stolen id is then worth
    /// something for at most `interval` (plus the time until the session's next request). The
    /// id's issue time is kept in the reserved object ([`RESERVED_KEY`](crate::RESERVED_KEY)).
    ///
    /// [`Builder::build`] refuses a zero or negative interval.
    pub fn with_renewal_timeout(mut self, interval: Duration) -> Self {
        self.renewal_timeout = Some(interval);
        self
    }

    /// Checks every setting and builds the layer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] saying which setting is wrong: no signing key, a key shorter
    /// than [`MIN_KEY_LEN`] bytes (with [`Builder::express_compatible`]: an empty secret), a
    /// cookie name, path or domain that cannot appear in a
    /// cookie, `SameSite=None` or `Partitioned` without `Secure` always on, a
    /// `__Host-`/`__Secure-` name whose rules the other settings break, a trusted proxy that is
    /// not an address or network (or trusted proxies without `with_secure_auto`), a zero or
    /// negative duration, neither an idle nor an absolute timeout, or an error status that is
    /// not 4xx or 5xx.
    pub fn build(self) -> Result<SessionLayer, Error> {
        if self.keys.is_empty() {
            return Err(Error::invalid_config(
                "a signing key is required (with_signing_key)",
            ));
        }
        self.check_keys()?;
        validate_name(&self.name)?;
        validate_attribute("path", &self.path)?;
        if !self.path.starts_with('/') {
            return Err(Error::invalid_config(format!(
                "cookie path {:?} must start with '/'",
                self.path
            )));
        }
        if let Some(domain) = &self.domain {
            validate_attribute("domain", domain)?;
            if domain.is_empty() {
                return Err(Error::invalid_config("cookie domain is empty"));
            }
        }
        let always_secure = self.secure == Secure::Always;
        if self.same_site == Some(SameSite::None) && !always_secure {
            return Err(Error::invalid_config(
                "SameSite=None requires Secure (with_secure(true)): browsers reject such a cookie",
            ));
        }
        if self.partitioned && !always_secure {
            return Err(Error::invalid_config(
                "Partitioned requires Secure (with_secure(true)): browsers reject such a cookie",
            ));
        }
        if self.name.starts_with("__Secure-") && !always_secure {
            return Err(Error::invalid_config(
                "a cookie named __Secure-* must always be Secure (with_secure(true))",
            ));
        }
        if self.name.starts_with("__Host-")
            && (!always_secure || self.path != "/" || self.domain.is_some())
        {
            return Err(Error::invalid_config(
                "a cookie named __Host-* must always be Secure, with Path=/ and no Domain",
            ));
        }
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)?;
        if !trusted_proxies.is_empty() && self.secure != Secure::Auto {
            return Err(Error::invalid_config(
                "trusted proxies are only used by with_secure_auto, which is not set",
            ));
        }
        for (what, duration) in [
            ("max_age", self.max_age),
            ("idle_timeout", self.idle_timeout),
            ("absolute_timeout", self.absolute_timeout),
            ("renewal_timeout", self.renewal_timeout),
        ] {
            if duration.is_some_and(|d| !d.is_positive()) {
                return Err(Error::invalid_config(format!(
                    "{what} must be positive, got {duration:?}"
                )));
            }
        }
        if self.idle_timeout.is_none() && self.absolute_timeout.is_none() {
            return Err(Error::invalid_config(
                "sessions need an idle timeout, an absolute timeout or both: without either they never end on the server",
            ));
        }
        if !(self.error_status.is_client_error() || self.error_status.is_server_error()) {
            return Err(Error::invalid_config(format!(
                "error status must be 4xx or 5xx, got {}",
                self.error_status
            )));
        }
        let attributes = Attributes {
            path: self.path,
            domain: self.domain,
            http_only: self.http_only,
            same_site: self.same_site,
            partitioned: self.partitioned,
            priority: self.priority,
            express: self.express,
        };
        Ok(SessionLayer::from_config(Config {
            store: self.store,
            keys: KeyRing::new(&self.keys),
            name: self.name,
            resave: self.resave,
            save_uninitialized: self.save_uninitialized,
            rolling: self.rolling,
            destroy_when_emptied: self.destroy_when_emptied,
            max_age: self.max_age,
            idle_timeout: self.idle_timeout,
            absolute_timeout: self.absolute_timeout,
            error_status: self.error_status,
            secure: self.secure,
            trusted_proxies,
            attributes,
            save_locks: SaveLocks::default(),
            express: self.express,
            cache_control: self.cache_control,
            renewal_timeout: self.renewal_timeout,
        }))
    }

    /// Keys of at least [`MIN_KEY_LEN`] bytes; in Express-compatible mode, any non-empty
    /// secret, with a warning for a short one.
    fn check_keys(&self) -> Result<(), Error> {
        for (i, key) in self.keys.iter().enumerate() {
            if self.express && key.is_empty() {
                return Err(Error::invalid_config(format!(
                    "secret {i} is empty (express-session refuses an empty secret too)"
                )));
            }
            if self.express && key.len() < MIN_KEY_LEN {
                tracing::warn!(
                    "secret {i} is {} bytes long: one cookie is enough to search for a short secret offline; \
                     put a random secret of at least {MIN_KEY_LEN} bytes first in both apps",
                    key.len()
                );
            } else if key.len() < MIN_KEY_LEN {
                return Err(Error::invalid_config(format!(
                    "signing key {i} is {} bytes long; at least {MIN_KEY_LEN} bytes of secret randomness are required",
                    key.len()
                )));
            }
        }
        Ok(())
    }
}

/// A cookie name is an RFC 9110 token.
fn validate_name(name: &str) -> Result<(), Error> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(Error::invalid_config(format!(
            "cookie name {name:?} must be a non-empty token (letters, digits and !#$%&'*+-.^_`|~)"
        )));
    }
    Ok(())
}

/// An attribute value may not end the attribute or the header early.
fn validate_attribute(what: &str, value: &str) -> Result<(), Error> {
    if value
        .bytes()
        .any(|b| b == b';' || b == b',' || b.is_ascii_control() || !b.is_ascii())
    {
        return Err(Error::invalid_config(format!(
            "cookie {what} {value:?} may not contain ';', ',', control or non-ASCII characters"
        )));
    }
    Ok(())
}
