#![doc = include_str!("../README.md")]

mod cluster;
mod container;
mod images;
mod outage;
mod ports;
mod service;
mod start;

pub use cluster::{NODE_TIMEOUT, RedisCluster, redis_cluster, redis_cluster_with_replicas};
pub use container::{Container, mariadb, mongo, postgres, redis, redis_aof};

// The fixtures are shared between a test's tasks (an `Arc<Container>` in a setup's guard).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Container>();
    assert_send_sync::<RedisCluster>();
};
