//! The whole conformance suite against a Redis Cluster (3 masters) in containers, plus the
//! cluster-specific behaviour: sessions spread over the masters, scripts survive a flushed
//! script cache on every node.

use redis::cluster::ClusterClient;
use session_core::{Id, Record, Store};
use session_redis::RedisStore;
use session_testcontainers::{self as containers, RedisCluster};

async fn setup() -> (RedisStore, RedisCluster) {
    let cluster = containers::redis_cluster().await;
    let urls = cluster.urls();
    let store = match RedisStore::connect_cluster(urls.iter().map(String::as_str)).await {
        Ok(store) => store,
        Err(e) => panic!("cannot connect to the Redis Cluster at {urls:?}: {e} ({e:?})"),
    };
    (store, cluster)
}

session_conformance::store_tests!(setup);

/// Sessions land on every master (their keys carry no hash tag), and each master holds its
/// keys with the layout of a standalone server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_all_masters() {
    let (store, cluster) = setup().await;
    let ids: Vec<Id> = (0..60).map(|_| Id::random()).collect();
    for id in &ids {
        let record = Record::new(id.clone(), time::Duration::hours(1));
        store.create(&record).await.expect("create on the cluster");
    }
    let mut masters_with_sessions = 0;
    for url in cluster.urls() {
        let client = redis::Client::open(url.as_str()).expect("node URL");
        let mut node = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a node");
        // A node answers for the keys of its own slots and redirects (MOVED) the others.
        let mut here = 0;
        for id in &ids {
            let exists: redis::RedisResult<i64> = redis::cmd("EXISTS")
                .arg(store.key(id))
                .query_async(&mut node)
                .await;
            here += exists.unwrap_or(0);
        }
        if here > 0 {
            masters_with_sessions += 1;
        }
    }
    assert!(
        masters_with_sessions >= 3,
        "60 random sessions should reach all 3 masters, found sessions on {masters_with_sessions}"
    );
}

/// After `SCRIPT FLUSH` on every node (as after a restart or failover), `save` and `touch`
/// still work: the store falls back from `EVALSHA` to `EVAL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_script_cache_is_reloaded() {
    let (store, cluster) = setup().await;
    let record = Record::new(Id::random(), time::Duration::hours(1));
    store.create(&record).await.expect("create");
    let client = ClusterClient::new(cluster.urls()).expect("cluster URLs");
    let mut raw = client
        .get_async_connection()
        .await
        .expect("raw cluster connection");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .expect("SCRIPT FLUSH on all nodes");
    store.save(&record).await.expect("save after SCRIPT FLUSH");
    assert!(
        store
            .touch(&record.id, session_core::now() + time::Duration::hours(2))
            .await
            .expect("touch after SCRIPT FLUSH"),
        "touch of a live record"
    );
    let loaded = store
        .load(&record.id)
        .await
        .expect("load")
        .expect("the record is live");
    assert_eq!(loaded.version, record.version + 1);
}
