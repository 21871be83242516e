//! The container fixtures, proven with each server's own client: connect, write, read, and
//! survive the faults the fixtures offer (stop/start, pause/unpause) on the same URL.
//! Needs a running Docker (see `scripts/test.sh`).

use std::collections::BTreeSet;
use std::time::Duration;

use mongodb::bson::{Document, doc};
use redis::AsyncCommands;
use session_testcontainers as containers;
use sqlx::Row;

/// Long enough for a healthy server on a busy machine, short enough to tell a frozen one.
const FROZEN: Duration = Duration::from_secs(2);

/// redis-rs gives up after 1 s (connect) and 500 ms (reply) by default: too little on a
/// loaded two-core CI machine running many containers.
const PATIENCE: Duration = Duration::from_secs(10);

async fn redis_connection(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PATIENCE))
        .set_response_timeout(Some(PATIENCE));
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_serves_writes_and_survives_pause_and_restart() {
    let server = containers::redis().await;
    assert!(
        server.url().starts_with("redis://127.0.0.1:"),
        "{}",
        server.url()
    );
    let mut con = redis_connection(server.url())
        .await
        .expect("connect to the Redis container");
    let () = con.set("greeting", "hello").await.expect("SET");
    let got: String = con.get("greeting").await.expect("GET");
    assert_eq!(got, "hello");

    server.pause().await;
    let ping = redis::cmd("PING");
    let frozen = tokio::time::timeout(FROZEN, ping.query_async::<String>(&mut con)).await;
    // Either our timeout or the client's own response timeout; never an answer.
    assert!(
        !matches!(frozen, Ok(Ok(_))),
        "a paused Redis must not answer: {frozen:?}"
    );
    server.unpause().await;
    let mut con = redis_connection(server.url())
        .await
        .expect("connect after unpause");
    let pong: String = redis::cmd("PING")
        .query_async(&mut con)
        .await
        .expect("PING after unpause");
    assert_eq!(pong, "PONG");

    let url_before = server.url().to_owned();
    server.stop().await;
    assert!(
        redis_connection(server.url()).await.is_err(),
        "a stopped Redis must refuse connections"
    );
    server.start().await;
    assert_eq!(server.url(), url_before, "the URL must survive a restart");
    let mut con = redis_connection(server.url())
        .await
        .expect("connect after restart");
    let got: String = con.get("greeting").await.expect("GET after restart");
    assert_eq!(
        got, "hello",
        "Redis keeps its data across a stop and start, as the official image"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cluster_spreads_keys_over_its_masters() {
    let cluster = containers::redis_cluster().await;
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3, "{urls:?}");
    let client = redis::cluster::ClusterClient::builder(urls.clone())
        .connection_timeout(PATIENCE)
        .response_timeout(PATIENCE)
        .build()
        .expect("cluster client");
    let mut con = client
        .get_async_connection()
        .await
        .expect("connect to the cluster");

    let keys: Vec<String> = (0..12).map(|i| format!("smoke-{i}")).collect();
    for key in &keys {
        let () = con
            .set(key, format!("value of {key}"))
            .await
            .expect("SET through the cluster");
    }
    for key in &keys {
        let got: String = con.get(key).await.expect("GET through the cluster");
        assert_eq!(got, format!("value of {key}"));
    }

    // Every key must sit on the node its slot belongs to, and the keys on more than one node:
    // read each directly from the nodes (a node that does not own the slot answers MOVED).
    let mut owners = BTreeSet::new();
    for key in &keys {
        let mut holders = Vec::new();
        for url in &urls {
            let mut node = redis_connection(url).await.expect("connect to one node");
            if let Ok(Some(value)) = node.get::<_, Option<String>>(key).await {
                assert_eq!(value, format!("value of {key}"));
                holders.push(url.clone());
            }
        }
        assert_eq!(
            holders.len(),
            1,
            "{key} must be served by exactly one master: {holders:?}"
        );
        owners.insert(holders.remove(0));
    }
    assert!(
        owners.len() > 1,
        "12 keys all landed on one master: {owners:?}"
    );

    let mut node = redis_connection(&urls[0])
        .await
        .expect("connect to the first node");
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut node)
        .await
        .expect("CLUSTER INFO");
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_size:3"), "{info}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_serves_writes_and_survives_restart() {
    let server = containers::postgres().await;
    assert!(
        server
            .url()
            .starts_with("postgres://postgres:postgres@127.0.0.1:"),
        "{}",
        server.url()
    );
    let pool = sqlx::PgPool::connect(server.url())
        .await
        .expect("connect to the PostgreSQL container");
    sqlx::query("CREATE TABLE smoke (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&pool)
        .await
        .expect("CREATE TABLE");
    sqlx::query("INSERT INTO smoke (k, v) VALUES ($1, $2)")
        .bind("greeting")
        .bind("hello")
        .execute(&pool)
        .await
        .expect("INSERT");
    let got: String = sqlx::query_scalar("SELECT v FROM smoke WHERE k = $1")
        .bind("greeting")
        .fetch_one(&pool)
        .await
        .expect("SELECT");
    assert_eq!(got, "hello");
    pool.close().await;

    server.stop().await;
    server.start().await;
    let pool = sqlx::PgPool::connect(server.url())
        .await
        .expect("connect after restart");
    let got: String = sqlx::query_scalar("SELECT v FROM smoke WHERE k = 'greeting'")
        .fetch_one(&pool)
        .await
        .expect("SELECT after restart");
    assert_eq!(got, "hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_serves_writes_and_survives_restart() {
    let server = containers::mariadb().await;
    assert!(
        server.url().starts_with("mysql://root:root@127.0.0.1:"),
        "{}",
        server.url()
    );
    let pool = sqlx::MySqlPool::connect(server.url())
        .await
        .expect("connect to the MariaDB container");
    let database: String = sqlx::query("SELECT DATABASE()")
        .fetch_one(&pool)
        .await
        .expect("SELECT DATABASE()")
        .get(0);
    assert_eq!(database, "test");
    sqlx::query("CREATE TABLE smoke (k VARCHAR(64) PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&pool)
        .await
        .expect("CREATE TABLE");
    sqlx::query("INSERT INTO smoke (k, v) VALUES (?, ?)")
        .bind("greeting")
        .bind("hello")
        .execute(&pool)
        .await
        .expect("INSERT");
    let got: String = sqlx::query_scalar("SELECT v FROM smoke WHERE k = ?")
        .bind("greeting")
        .fetch_one(&pool)
        .await
        .expect("SELECT");
    assert_eq!(got, "hello");
    pool.close().await;

    server.stop().await;
    server.start().await;
    let pool = sqlx::MySqlPool::connect(server.url())
        .await
        .expect("connect after restart");
    let got: String = sqlx::query_scalar("SELECT v FROM smoke WHERE k = 'greeting'")
        .fetch_one(&pool)
        .await
        .expect("SELECT after restart");
    assert_eq!(got, "hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn mongo_serves_writes_and_survives_restart() {
    let server = containers::mongo().await;
    assert!(
        server.url().starts_with("mongodb://127.0.0.1:"),
        "{}",
        server.url()
    );
    let client = mongodb::Client::with_uri_str(server.url())
        .await
        .expect("MongoDB client");
    let smoke = client.database("smoke").collection::<Document>("smoke");
    smoke
        .insert_one(doc! { "_id": "greeting", "v": "hello" })
        .await
        .expect("insert_one");
    let got = smoke
        .find_one(doc! { "_id": "greeting" })
        .await
        .expect("find_one");
    assert_eq!(got, Some(doc! { "_id": "greeting", "v": "hello" }));
    client.shutdown().await;

    server.stop().await;
    server.start().await;
    let client = mongodb::Client::with_uri_str(server.url())
        .await
        .expect("client after restart");
    let smoke = client.database("smoke").collection::<Document>("smoke");
    let got = smoke
        .find_one(doc! { "_id": "greeting" })
        .await
        .expect("find_one after restart");
    assert_eq!(got, Some(doc! { "_id": "greeting", "v": "hello" }));
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_get_distinct_ports_and_are_removed_on_drop() {
    let (a, b) = tokio::join!(containers::redis(), containers::redis());
    assert_ne!(a.url(), b.url());
    let url = a.url().to_owned();
    drop(a);
    // Removal happens in drop: the port is closed right after.
    assert!(
        redis_connection(&url).await.is_err(),
        "a dropped container must be gone"
    );
    redis_connection(b.url())
        .await
        .expect("the other container still serves");
}
