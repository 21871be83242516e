//! The fixtures as `session_conformance::Outage` switches: through the trait (as
//! `outage_tests!` uses them, boxed), `pause` freezes the server and `resume` brings the same
//! connections back. Needs a running Docker (see `scripts/test.sh`).

use std::time::Duration;

use redis::AsyncCommands;
use session_conformance::{DynOutage, Outage};
use session_testcontainers as containers;

/// Long enough for a healthy server on a busy machine, short enough to tell a frozen one.
const FROZEN: Duration = Duration::from_secs(2);

/// redis-rs gives up after 1 s (connect) and 500 ms (reply) by default: too little on a
/// loaded two-core CI machine running many containers.
const PATIENCE: Duration = Duration::from_secs(10);

async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PATIENCE))
        .set_response_timeout(Some(PATIENCE));
    redis::Client::open(url)
        .expect("a valid Redis URL")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect to Redis")
}

async fn ping<C: redis::aio::ConnectionLike>(con: &mut C) -> Result<String, String> {
    match tokio::time::timeout(FROZEN, redis::cmd("PING").query_async::<String>(con)).await {
        Ok(Ok(pong)) => Ok(pong),
        Ok(Err(e)) => Err(format!("error: {e}")),
        Err(_) => Err(format!("no answer within {FROZEN:?}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_pauses_and_resumes_through_the_trait() {
    let server = containers::redis().await;
    let mut con = redis_connection(server.url()).await;
    let () = con.set("kept", "yes").await.expect("SET");
    // Boxed, as `outage_tests!` holds the guard.
    let outage: Box<dyn DynOutage> = Box::new(server);

    outage.pause().await;
    let frozen = ping(&mut con).await;
    assert!(
        frozen.is_err(),
        "a paused Redis must not answer: {frozen:?}"
    );

    outage.resume().await;
    let got: String = tokio::time::timeout(PATIENCE, con.get("kept"))
        .await
        .expect("the same connection answers once resumed")
        .expect("GET after resume");
    assert_eq!(got, "yes", "a pause keeps the data");
    assert_eq!(ping(&mut con).await.as_deref(), Ok("PONG"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_pauses_every_node_and_resumes_through_the_trait() {
    let cluster = containers::redis_cluster().await;
    let urls = cluster.urls();
    let client = redis::cluster::ClusterClient::builder(urls.clone())
        .connection_timeout(PATIENCE)
        .response_timeout(PATIENCE)
        .build()
        .expect("cluster client");
    let mut con = client
        .get_async_connection()
        .await
        .expect("connect to the cluster");
    let keys: Vec<String> = (0..12).map(|i| format!("outage-{i}")).collect();
    for key in &keys {
        let () = con.set(key, key).await.expect("SET through the cluster");
    }
    let mut nodes = Vec::new();
    for url in &urls {
        nodes.push(redis_connection(url).await);
    }

    Outage::pause(&cluster).await;
    for (url, node) in urls.iter().zip(&mut nodes) {
        let frozen = ping(node).await;
        assert!(
            frozen.is_err(),
            "node {url} of a paused cluster must not answer: {frozen:?}"
        );
    }

    Outage::resume(&cluster).await;
    for (url, node) in urls.iter().zip(&mut nodes) {
        assert_eq!(ping(node).await.as_deref(), Ok("PONG"), "node {url}");
    }
    for key in &keys {
        let got: String = tokio::time::timeout(PATIENCE, con.get(key))
            .await
            .expect("the cluster answers once resumed")
            .expect("GET through the cluster after resume");
        assert_eq!(&got, key, "a pause keeps the data");
    }
}
