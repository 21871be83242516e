//! The faults for reliability runs: a crash (`kill`) and a clean restart of a server, a durable
//! Redis (AOF, `appendfsync always`) that keeps its acknowledged writes through them, and a
//! Redis Cluster whose replica takes over a stopped master. Needs a running Docker (see
//! `scripts/test.sh`).

use std::time::Duration;

use redis::AsyncCommands;
use session_testcontainers as containers;

/// redis-rs gives up after 1 s (connect) and 500 ms (reply) by default: too little on a
/// loaded two-core CI machine running many containers.
const PATIENCE: Duration = Duration::from_secs(10);

const KEYS: usize = 200;

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PATIENCE))
        .set_response_timeout(Some(PATIENCE));
    redis::Client::open(url)
        .expect("a valid Redis URL")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect to Redis")
}

/// Writes `KEYS` keys, each acknowledged.
async fn write_keys(url: &str) {
    let mut con = connection(url).await;
    for i in 0..KEYS {
        let () = con.set(format!("key-{i}"), i).await.expect("SET");
    }
}

/// How many of the keys `write_keys` wrote are there.
async fn count_keys(url: &str) -> usize {
    let mut con = connection(url).await;
    let mut found = 0;
    for i in 0..KEYS {
        let value: Option<usize> = con.get(format!("key-{i}")).await.expect("GET");
        if value == Some(i) {
            found += 1;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_with_aof_keeps_every_acknowledged_write_through_a_kill() {
    let server = containers::redis_aof().await;
    write_keys(server.url()).await;
    server.kill().await;
    server.start().await;
    assert_eq!(
        count_keys(server.url()).await,
        KEYS,
        "AOF with appendfsync always keeps every acknowledged write through SIGKILL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_is_a_crash_and_restart_a_clean_shutdown() {
    // Without AOF, Redis keeps its data only in a snapshot, written at a clean shutdown (with
    // the default save rules) and not at a crash: this tells a `kill` from a `stop`.
    let server = containers::redis().await;
    write_keys(server.url()).await;
    server.restart().await;
    assert_eq!(
        count_keys(server.url()).await,
        KEYS,
        "a clean restart saves the snapshot"
    );
    write_keys(server.url()).await; // the same keys, so the snapshot holds them all
    let mut con = connection(server.url()).await;
    let () = con.set("after-snapshot", 1).await.expect("SET");
    drop(con);
    server.kill().await;
    server.start().await;
    let mut con = connection(server.url()).await;
    let lost: Option<i32> = con.get("after-snapshot").await.expect("GET");
    assert_eq!(
        lost, None,
        "a key written after the last snapshot is lost by a crash of a Redis without AOF"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_takes_over_a_stopped_master() {
    let cluster = containers::redis_cluster_with_replicas().await;
    let urls = cluster.urls();
    assert_eq!(urls.len(), 6, "three masters and three replicas: {urls:?}");
    let client = redis::cluster::ClusterClient::builder(urls.clone())
        .connection_timeout(PATIENCE)
        .response_timeout(PATIENCE)
        .build()
        .expect("cluster client");
    let mut con = client
        .get_async_connection()
        .await
        .expect("connect to the cluster");
    // Enough keys that every master holds some.
    let keys: Vec<String> = (0..60).map(|i| format!("failover-{i}")).collect();
    for key in &keys {
        let () = con.set(key, key).await.expect("SET through the cluster");
    }

    let stopped = cluster.stop_master().await;
    assert!(
        urls.contains(&format!("redis://127.0.0.1:{stopped}")),
        "{stopped} is one of {urls:?}"
    );
    let gone = redis::Client::open(format!("redis://127.0.0.1:{stopped}"))
        .expect("URL")
        .get_multiplexed_async_connection()
        .await;
    assert!(gone.is_err(), "the stopped master refuses connections");

    // A fresh client learns the new topology from the surviving nodes.
    let survivors: Vec<String> = urls
        .iter()
        .filter(|u| !u.ends_with(&format!(":{stopped}")))
        .cloned()
        .collect();
    let client = redis::cluster::ClusterClient::builder(survivors)
        .connection_timeout(PATIENCE)
        .response_timeout(PATIENCE)
        .build()
        .expect("cluster client");
    let mut con = client
        .get_async_connection()
        .await
        .expect("connect to the cluster after the failover");
    for key in &keys {
        let got: Option<String> = con.get(key).await.expect("GET after the failover");
        assert_eq!(
            got.as_deref(),
            Some(key.as_str()),
            "the replica that took over kept {key}"
        );
    }
}
