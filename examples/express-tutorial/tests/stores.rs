//! The tutorial on every store it can be given by URL, each in a real server in a container
//! (SQLite in a temporary file), including a "restart": a second store opened on the same URL.

mod common;

use common::{open, tutorial_flow};
#[allow(unused_imports)] // every container test may be left out by features
use session_testcontainers as containers;

#[tokio::test]
async fn memory() {
    let store = open("memory").await;
    // One process: the same store stands in for the "restart".
    let again = std::sync::Arc::clone(&store);
    tutorial_flow(store, async move || again).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    tutorial_flow(open(&url).await, async || open(&url).await).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis() {
    let server = containers::redis().await;
    tutorial_flow(open(server.url()).await, async || open(server.url()).await).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres() {
    let server = containers::postgres().await;
    tutorial_flow(open(server.url()).await, async || open(server.url()).await).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mariadb() {
    let server = containers::mariadb().await;
    tutorial_flow(open(server.url()).await, async || open(server.url()).await).await;
}

#[cfg(feature = "mongodb")]
#[tokio::test]
async fn mongodb() {
    let server = containers::mongo().await;
    tutorial_flow(open(server.url()).await, async || open(server.url()).await).await;
}
