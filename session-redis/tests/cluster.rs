//! The whole conformance suite against a Redis Cluster (3 masters) in containers, plus the
//! cluster-specific behaviour: sessions spread over the masters, scripts survive a flushed
//! script cache on every node, and a principal's sessions on every master are listed and
//! revoked through an index on one of them.

use redis::cluster::ClusterClient;
use session_core::{Id, Principals, Record, Store};
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
session_conformance::principal_tests!(setup);

/// The slots of `keys`, by asking the cluster.
async fn slots(
    raw: &mut redis::cluster_async::ClusterConnection,
    keys: impl IntoIterator<Item = String>,
) -> Vec<i64> {
    let mut slots = Vec::new();
    for key in keys {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(raw)
            .await
            .expect("CLUSTER KEYSLOT");
        slots.push(slot);
    }
    slots
}

/// One principal's sessions land in many slots (their keys carry no hash tag) while its index
/// is one key in one slot; listing and `revoke_all` still find every one. A principal holding a
/// `{…}` hash tag works the same: the tag only decides which slot its index is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principals_sessions_on_every_master_are_listed_and_revoked() {
    let (store, cluster) = setup().await;
    let client = ClusterClient::new(cluster.urls()).expect("cluster URLs");
    let mut raw = client
        .get_async_connection()
        .await
        .expect("raw cluster connection");
    for who in [
        format!("user-{}", Id::random().as_str()),
        format!("{{tenant-7}}:user-{}", Id::random().as_str()),
    ] {
        let mut created = Vec::new();
        for _ in 0..30 {
            let record = Record::new(Id::random(), time::Duration::hours(1))
                .with_principal(Some(who.clone()));
            store.create(&record).await.expect("create on the cluster");
            created.push(record.id.as_str().to_owned());
        }
        created.sort();
        let mut session_slots =
            slots(&mut raw, created.iter().map(|id| format!("session:{id}"))).await;
        session_slots.sort_unstable();
        session_slots.dedup();
        assert!(
            session_slots.len() > 20,
            "30 sessions of {who} should hash to many slots, got {}",
            session_slots.len()
        );
        if let Some(tag) = who.strip_prefix('{').and_then(|w| w.split('}').next()) {
            let index = slots(&mut raw, [store.principal_key(&who), tag.to_owned()]).await;
            assert_eq!(
                index[0], index[1],
                "the index of {who} is in the slot of {tag:?}"
            );
        }
        let mut listed: Vec<String> = store
            .sessions_of(&who)
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.id.as_str().to_owned())
            .collect();
        listed.sort();
        assert_eq!(listed, created, "every session of {who} is listed");
        let keep: Id = created[0].parse().expect("an id");
        assert_eq!(
            store
                .revoke_all(&who, Some(&keep))
                .await
                .expect("revoke all"),
            29
        );
        for id in &created {
            let id: Id = id.parse().expect("an id");
            assert_eq!(
                store.load(&id).await.expect("load").is_some(),
                id == keep,
                "only the kept session is left"
            );
        }
    }
}

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
