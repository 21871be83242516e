//! The app under test: the same three routes without sessions, with session-tower, and with
//! tower-sessions; and a server for each on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use session_core::Store;

use crate::harness::Res;

/// The key both handlers use.
const USER: &str = "user";

/// The session every connection logs in with: the store suite's ~1 KiB session.
pub(super) const SESSION_SIZE: usize = 1024;

/// A fixed key: the benchmark has no secrets to keep.
const KEY: [u8; 48] = [0x5e; 48];

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// The same three routes, without sessions: `/login` and `/read` answer what the session
/// versions would, `/write` does the same counter increment.
pub(super) fn bare() -> Router {
    Router::new()
        .route("/login", get(|| async { "ok" }))
        .route("/read", get(|| async { "user-0000000@example.com" }))
        .route(
            "/write",
            get(|| async {
                let _ = next();
                "ok"
            }),
        )
}

/// The handlers on a session handle whose methods have one shape in session-tower and in
/// tower-sessions (0.14 and 0.15): `insert(key, value)`, `get::<T>(key)`, async and fallible.
/// `$value` turns a value into what that `insert` takes.
macro_rules! handlers {
    ($module:ident, $session:ty, $value:expr) => {
        mod $module {
            use axum::Router;
            use axum::http::StatusCode;
            use axum::routing::get;

            use super::{USER, next};
            use crate::payload;

            /// The three routes, without the session layer.
            pub(super) fn routes() -> Router {
                Router::new()
                    .route("/login", get(login))
                    .route("/read", get(read))
                    .route("/write", get(write))
            }

            async fn login(session: $session) -> Result<&'static str, StatusCode> {
                for (k, v) in payload::object(0, super::SESSION_SIZE) {
                    session
                        .insert(&k, $value(&v))
                        .await
                        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                }
                Ok("ok")
            }

            async fn read(session: $session) -> Result<String, StatusCode> {
                session
                    .get::<String>(USER)
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                    .ok_or(StatusCode::UNAUTHORIZED)
            }

            async fn write(session: $session) -> Result<&'static str, StatusCode> {
                session
                    .insert(payload::COUNTER, $value(&next()))
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                Ok("ok")
            }
        }
    };
}

handlers!(ours, session_tower::Session, std::convert::identity);
handlers!(theirs, tower_sessions::Session, Clone::clone);
#[cfg(feature = "tower-sessions-stores")]
handlers!(theirs_014, tower_sessions_014::Session, Clone::clone);

/// The app with session-tower (default options, plain-HTTP cookies) on `store`.
pub(super) fn ours(store: Arc<dyn Store>) -> Res<Router> {
    let layer = session_tower::SessionLayer::builder(store).with_signing_key(KEY);
    Ok(ours::routes().layer(layer.with_secure(false).build()?))
}

/// The app with tower-sessions 0.15 on `store`.
pub(super) fn theirs(store: impl tower_sessions::SessionStore + Clone) -> Router {
    theirs::routes().layer(tower_sessions::SessionManagerLayer::new(store).with_secure(false))
}

/// The app with tower-sessions 0.14 (the release its Redis store plugs into) on `store`.
#[cfg(feature = "tower-sessions-stores")]
pub(super) fn theirs_014(store: impl tower_sessions_014::SessionStore + Clone) -> Router {
    let layer = tower_sessions_014::SessionManagerLayer::new(store).with_secure(false);
    theirs_014::routes().layer(layer)
}

/// Serves `app` on a fresh loopback port.
pub(super) async fn serve(app: Router) -> Res<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Without TCP_NODELAY, small responses wait on delayed ACKs and every app looks slow alike.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("[http] server on {addr} stopped: {e}");
        }
    });
    Ok(addr)
}
