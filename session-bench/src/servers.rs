//! Where the backends are: URLs from the command line, or containers started here.

use std::collections::HashMap;

use session_testcontainers as containers;

use crate::args::{Args, Backend};
use crate::harness::Res;

/// Servers the run uses; containers are removed when this is dropped.
#[derive(Default)]
pub(crate) struct Servers {
    urls: HashMap<&'static str, Vec<String>>,
    containers: Vec<containers::Container>,
    clusters: Vec<containers::RedisCluster>,
}

impl Servers {
    /// The URLs of `backend`'s server (every node's, for a cluster): given on the command line,
    /// or of a container started earlier, or of one started now. A fixture's panic (Docker
    /// down, image missing) becomes an error that names the backend and the way out.
    pub(crate) async fn urls(&mut self, backend: Backend, args: &Args) -> Res<Vec<String>> {
        let one = |url: &Option<String>| url.clone().map(|url| vec![url]);
        let (given, what, flag) = match backend {
            Backend::Redis => (one(&args.redis_url), "Redis", "--redis-url"),
            Backend::RedisCluster => (
                args.redis_cluster_urls.clone(),
                "Redis Cluster",
                "--redis-cluster-urls",
            ),
            Backend::Postgres => (one(&args.postgres_url), "PostgreSQL", "--postgres-url"),
            Backend::Mariadb => (one(&args.mysql_url), "MariaDB", "--mysql-url"),
            Backend::Mongo => (one(&args.mongo_url), "MongoDB", "--mongo-url"),
            Backend::Memory | Backend::Sqlite => return Err("no server to start".into()),
        };
        if let Some(urls) = given.or_else(|| self.urls.get(what).cloned()) {
            return Ok(urls);
        }
        eprintln!("[servers] starting a {what} container");
        let failed = |e: tokio::task::JoinError| {
            format!(
                "could not start a {what} container ({e}); give a running server with {flag}, \
                 or leave the backend out with --skip"
            )
        };
        let urls = if backend == Backend::RedisCluster {
            let cluster = tokio::spawn(containers::redis_cluster())
                .await
                .map_err(failed)?;
            let urls = cluster.urls();
            self.clusters.push(cluster);
            urls
        } else {
            let container = match backend {
                Backend::Redis => tokio::spawn(containers::redis()),
                Backend::Postgres => tokio::spawn(containers::postgres()),
                Backend::Mariadb => tokio::spawn(containers::mariadb()),
                _ => tokio::spawn(containers::mongo()),
            };
            let container = container.await.map_err(failed)?;
            let url = container.url().to_owned();
            self.containers.push(container);
            vec![url]
        };
        self.urls.insert(what, urls.clone());
        Ok(urls)
    }

    /// The URL of a single-server backend.
    pub(crate) async fn url(&mut self, backend: Backend, args: &Args) -> Res<String> {
        let urls = self.urls(backend, args).await?;
        urls.into_iter().next().ok_or_else(|| "no URL".into())
    }
}
