//! The fixtures as the `session_conformance::Outage` switch of `outage_tests!`.

use std::future::Future;

use session_conformance::Outage;

use crate::{Container, RedisCluster};

/// `pause` is `docker pause` ([`Container::pause`]), `resume` is `docker unpause`
/// ([`Container::unpause`]); both panic with the reason when Docker refuses.
impl Outage for Container {
    fn pause(&self) -> impl Future<Output = ()> + Send {
        Container::pause(self)
    }

    fn resume(&self) -> impl Future<Output = ()> + Send {
        Container::unpause(self)
    }
}

/// Pauses and resumes every node at once ([`RedisCluster::pause`], [`RedisCluster::unpause`]).
impl Outage for RedisCluster {
    fn pause(&self) -> impl Future<Output = ()> + Send {
        RedisCluster::pause(self)
    }

    fn resume(&self) -> impl Future<Output = ()> + Send {
        RedisCluster::unpause(self)
    }
}
