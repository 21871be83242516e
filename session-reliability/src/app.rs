//! The app under test, served in this process on `127.0.0.1`: the Express tutorial's routes
//! as they ship, plus three routes of the harness's own behind the same session layer, so that
//! each client can store and check values of its own (the tutorial's routes store one fixed
//! username for everybody).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use express_tutorial::{Credentials, SessionSettings, Signing, StoreInfo, Tutorial};
use session_core::Store;
use session_tower::Session;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Where the harness's routes live: `GET`/`PUT /reliability/values/{key}` and
/// `POST /reliability/counters/{key}`.
pub const ROUTES: &str = "/reliability";

/// One running instance of the app (one "app server"), stopped when dropped.
#[derive(Debug)]
pub struct App {
    address: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl App {
    /// Serves the app on a free port of `127.0.0.1` with sessions in `store`, cookies signed
    /// with `signing_key` (see [`signing_key`]; app servers sharing sessions share it).
    ///
    /// # Errors
    ///
    /// When no port can be bound, or the session setup refuses the key (too short).
    pub async fn serve(
        store: Arc<dyn Store>,
        info: StoreInfo,
        signing_key: Vec<u8>,
    ) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?;
        let router = router(store, info, signing_key, address)?;
        let server = tokio::spawn(async move {
            // Ends only when the task is aborted; an accept error is retried by axum itself.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { address, server })
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// A fresh random cookie signing key (384 bits, as the tutorial's key file).
///
/// # Errors
///
/// When the operating system's random source fails.
pub fn signing_key() -> Result<Vec<u8>, String> {
    let mut key = vec![0; 48];
    getrandom::fill(&mut key).map_err(|e| format!("no random signing key: {e}"))?;
    Ok(key)
}

/// The tutorial's routes and the harness's, behind one session layer: the tutorial's own
/// ([`express_tutorial::session_layer`]), so every route shares its store, key and settings.
fn router(
    store: Arc<dyn Store>,
    info: StoreInfo,
    signing_key: Vec<u8>,
    address: SocketAddr,
) -> Result<Router, String> {
    let tutorial = Tutorial {
        store,
        store_info: info,
        signing: Signing::Key(signing_key),
        settings: SessionSettings::for_address(address),
        credentials: Credentials::default(),
    };
    let layer = express_tutorial::session_layer(&tutorial).map_err(|e| e.to_string())?;
    Ok(express_tutorial::routes()
        .route(
            &format!("{ROUTES}/values/{{key}}"),
            get(read_value).put(write_value),
        )
        .route(&format!("{ROUTES}/counters/{{key}}"), post(increment))
        .layer(layer)
        .with_state(Arc::new(tutorial)))
}

/// The value under `key` as JSON, or `404` if there is none.
async fn read_value(
    session: Session,
    Path(key): Path<String>,
) -> Result<(StatusCode, String), session_tower::Error> {
    Ok(match session.get::<serde_json::Value>(&key).await? {
        Some(value) => (StatusCode::OK, value.to_string()),
        None => (StatusCode::NOT_FOUND, String::new()),
    })
}

/// Stores the body, a string, under `key`.
async fn write_value(
    session: Session,
    Path(key): Path<String>,
    body: String,
) -> Result<StatusCode, session_tower::Error> {
    session.insert(key, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds one to the counter under `key` with `Session::update`, the read-modify-write that
/// concurrent requests cannot break, and answers the new value.
async fn increment(
    session: Session,
    Path(key): Path<String>,
) -> Result<String, session_tower::Error> {
    let n = session
        .update(key, |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}
