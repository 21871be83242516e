//! What the OWASP tests share beyond `tests/common`: an app whose routes are the moments the
//! cheat sheet speaks of (login, a change of privilege, logout, log out everywhere), a
//! trace-level log capture, cookie helpers for any cookie name, and the statistics the id
//! tests apply.

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use session_core::Id;
use session_tower::{Session, SessionLayer};

use crate::common::{self, LogBuffer};

type Params = Query<HashMap<String, String>>;

fn param<'a>(q: &'a Params, name: &str) -> &'a str {
    q.get(name).map(String::as_str).unwrap_or_default()
}

type Reply = Result<(StatusCode, String), session_tower::Error>;

fn ok(text: impl Into<String>) -> Reply {
    Ok((StatusCode::OK, text.into()))
}

/// The app under test. Every route but `/noop` uses the session through the extractor.
pub(crate) fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/noop", get(|| async { "nothing" }))
        .route(
            "/get",
            get(|session: Session, q: Params| async move {
                let value: Option<serde_json::Value> = session.get(param(&q, "key")).await?;
                ok(value.map_or_else(|| "none".to_owned(), |v| v.to_string()))
            }),
        )
        .route(
            "/set",
            get(|session: Session, q: Params| async move {
                session.insert(param(&q, "key"), param(&q, "value")).await?;
                ok("set")
            }),
        )
        .route(
            // A handler that sets its own cache policy.
            "/set-cached",
            get(|session: Session, q: Params| async move {
                session.insert(param(&q, "key"), param(&q, "value")).await?;
                Ok::<_, session_tower::Error>((
                    [(http::header::CACHE_CONTROL, "private, max-age=60")],
                    "set",
                ))
            }),
        )
        .route(
            "/touch",
            get(|session: Session| async move {
                session.touch().await?;
                ok("touched")
            }),
        )
        .route(
            "/id",
            get(|session: Session| async move { ok(session.id().await?.to_string()) }),
        )
        .route(
            "/lifetime",
            get(|session: Session| async move {
                let expires = session.expires_at().await?.unix_timestamp();
                let deadline = session
                    .absolute_deadline()
                    .await?
                    .map_or_else(|| "none".to_owned(), |d| d.unix_timestamp().to_string());
                ok(format!("{expires} {deadline}"))
            }),
        )
        .route(
            // Login as the crate documentation says: a new id and nothing from before.
            "/login",
            get(|session: Session, q: Params| async move {
                session.regenerate_empty().await?;
                session.insert("user", param(&q, "user")).await?;
                session.set_principal(param(&q, "user")).await?;
                ok("logged in")
            }),
        )
        .route(
            // Login keeping the visitor's values (a cart).
            "/login-keeping-values",
            get(|session: Session, q: Params| async move {
                session.regenerate().await?;
                session.insert("user", param(&q, "user")).await?;
                ok("logged in")
            }),
        )
        .route(
            // A change of privilege inside a logged-in session (step-up to administrator).
            "/sudo",
            get(|session: Session| async move {
                if session.get::<String>("user").await?.is_none() {
                    return Ok((StatusCode::FORBIDDEN, "log in first".to_owned()));
                }
                session.regenerate().await?;
                session.insert("role", "admin").await?;
                ok("admin")
            }),
        )
        .route(
            "/logout",
            get(|session: Session| async move {
                session.destroy().await?;
                ok("logged out")
            }),
        )
        .route(
            // An anonymous visitor's session, with its own (short) idle timeout until login.
            "/pre-login",
            get(|session: Session, q: Params| async move {
                let ms: i64 = param(&q, "ms").parse().unwrap_or(1000);
                session.insert("cart", "tea").await?;
                session
                    .set_idle_timeout(Some(time::Duration::milliseconds(ms)))
                    .await?;
                ok("anonymous")
            }),
        )
        .route(
            // "Log out my other devices".
            "/logout-everywhere",
            get(|session: Session| async move {
                if session.principal().await?.is_none() {
                    return Ok((StatusCode::FORBIDDEN, "log in first".to_owned()));
                }
                let n = session.revoke_other_sessions().await?;
                ok(format!("revoked {n}"))
            }),
        )
        .layer(layer)
}

/// The name of a Set-Cookie.
pub(crate) fn cookie_name(set_cookie: &str) -> &str {
    set_cookie.split('=').next().unwrap_or_default()
}

/// Whether a Set-Cookie tells the browser to drop its cookie: an empty value, `Max-Age=0`,
/// and an `Expires` in the past (for browsers that only know `Expires`).
pub(crate) fn is_clearing(set_cookie: &str) -> bool {
    let value = common::pair(set_cookie)
        .split_once('=')
        .map(|(_, v)| v.to_owned());
    value.as_deref() == Some("")
        && common::max_age(set_cookie) == Some(0)
        && set_cookie.contains("Expires=Thu, 01 Jan 1970")
}

/// Installs a subscriber that records every `tracing` event, `TRACE` included, of everything
/// run on this thread while it lives: use it in a current-thread runtime (the default of
/// `#[tokio::test]`), where the whole request runs on the test's thread.
pub(crate) struct TraceCapture {
    pub(crate) logs: LogBuffer,
    _guard: tracing::subscriber::DefaultGuard,
}

impl TraceCapture {
    pub(crate) fn start() -> Self {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_target(true)
            .with_writer(move || writer.clone())
            .finish();
        Self {
            logs,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }
}

// ---- Statistics of ids -------------------------------------------------------------------

/// Bytes in a generated id.
pub(crate) const ID_BYTES: usize = 24;
/// Bits in a generated id.
pub(crate) const ID_BITS: usize = ID_BYTES * 8;

/// The 192 bits of a generated id (32 characters of unpadded URL-safe base64).
pub(crate) fn id_bytes(id: &str) -> [u8; ID_BYTES] {
    let decoded = URL_SAFE_NO_PAD
        .decode(id)
        .unwrap_or_else(|e| panic!("{id} is not unpadded URL-safe base64: {e}"));
    decoded
        .try_into()
        .unwrap_or_else(|d: Vec<u8>| panic!("{id} holds {} bytes, not {ID_BYTES}", d.len()))
}

fn bit(sample: &[u8; ID_BYTES], i: usize) -> bool {
    sample[i / 8] >> (7 - i % 8) & 1 == 1
}

/// How far from half a bit position's count of ones may be: 5.5 standard deviations of
/// Binomial(n, 1/2), i.e. 5.5 × √n / 2 (275 for n = 10,000).
///
/// For a generator whose bits are independent and fair, one position exceeds it with
/// probability 3.8 × 10⁻⁸, so any of the 192 with probability below 10⁻⁵: the test fails
/// spuriously about once in 100,000 runs. A position whose probability of a one is off by 0.04
/// or more (400 ones away from half in 10,000) exceeds it with probability above 99 %.
pub(crate) fn bit_bound(n: usize) -> f64 {
    5.5 * (n as f64).sqrt() / 2.0
}

/// The bit positions whose count of ones across `samples` is further from half than
/// [`bit_bound`], with their counts.
pub(crate) fn bit_frequency_outliers(samples: &[[u8; ID_BYTES]]) -> Vec<(usize, usize)> {
    let n = samples.len();
    let half = n as f64 / 2.0;
    let bound = bit_bound(n);
    (0..ID_BITS)
        .map(|i| (i, samples.iter().filter(|s| bit(s, i)).count()))
        .filter(|&(_, ones)| (ones as f64 - half).abs() > bound)
        .collect()
}

/// The mean number of bits in which each sample differs from the one before it: 96 for
/// independent fair 192-bit ids, with a standard deviation of √(48 / (n − 1)) (0.069 for
/// n = 10,000). A generator whose successive outputs are related (a counter, a generator
/// stepping a few bits at a time) is far from it even when every single bit is balanced.
pub(crate) fn mean_successive_distance(samples: &[[u8; ID_BYTES]]) -> f64 {
    let total: u32 = samples
        .windows(2)
        .map(|w| {
            w[0].iter()
                .zip(&w[1])
                .map(|(a, b)| (a ^ b).count_ones())
                .sum::<u32>()
        })
        .sum();
    f64::from(total) / (samples.len() - 1) as f64
}

/// How far [`mean_successive_distance`] may be from 96: 0.5 bits, over 7 standard deviations
/// for n = 10,000.
pub(crate) const DISTANCE_BOUND: f64 = 0.5;

/// Every `width`-character piece of `id`: a log holding any of them holds part of the id.
pub(crate) fn pieces(id: &Id, width: usize) -> Vec<&str> {
    let s = id.as_str();
    (0..=s.len().saturating_sub(width))
        .map(|i| &s[i..i + width])
        .collect()
}
