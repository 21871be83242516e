//! Where the backends are: URLs from the command line, or containers started here.

use std::future::Future;

use session_testcontainers as containers;

use crate::args::Args;
use crate::harness::Res;

/// Servers the run uses; containers are removed when this is dropped.
#[derive(Default)]
pub(crate) struct Servers {
    redis: Option<String>,
    cluster: Option<Vec<String>>,
    postgres: Option<String>,
    mysql: Option<String>,
    mongo: Option<String>,
    containers: Vec<containers::Container>,
    clusters: Vec<containers::RedisCluster>,
}

/// Starts a container on its own task, so that a fixture's panic (Docker down, image missing)
/// becomes an error that names the backend and the way out.
async fn start<T: Send + 'static>(
    what: &str,
    flag: &str,
    fixture: impl Future<Output = T> + Send + 'static,
) -> Res<T> {
    eprintln!("[servers] starting a {what} container");
    tokio::spawn(fixture).await.map_err(|e| {
        format!(
            "could not start a {what} container ({e}); give a running server with {flag}, \
             or leave the backend out with --skip"
        )
        .into()
    })
}

impl Servers {
    pub(crate) async fn redis(&mut self, args: &Args) -> Res<String> {
        if let Some(url) = args.redis_url.clone().or_else(|| self.redis.clone()) {
            return Ok(url);
        }
        let c = start("Redis", "--redis-url", containers::redis()).await?;
        let url = c.url().to_owned();
        self.containers.push(c);
        self.redis = Some(url.clone());
        Ok(url)
    }

    pub(crate) async fn redis_cluster(&mut self, args: &Args) -> Res<Vec<String>> {
        if let Some(urls) = args
            .redis_cluster_urls
            .clone()
            .or_else(|| self.cluster.clone())
        {
            return Ok(urls);
        }
        let c = start(
            "Redis Cluster",
            "--redis-cluster-urls",
            containers::redis_cluster(),
        )
        .await?;
        let urls = c.urls();
        self.clusters.push(c);
        self.cluster = Some(urls.clone());
        Ok(urls)
    }

    pub(crate) async fn postgres(&mut self, args: &Args) -> Res<String> {
        if let Some(url) = args.postgres_url.clone().or_else(|| self.postgres.clone()) {
            return Ok(url);
        }
        let c = start("PostgreSQL", "--postgres-url", containers::postgres()).await?;
        let url = c.url().to_owned();
        self.containers.push(c);
        self.postgres = Some(url.clone());
        Ok(url)
    }

    pub(crate) async fn mysql(&mut self, args: &Args) -> Res<String> {
        if let Some(url) = args.mysql_url.clone().or_else(|| self.mysql.clone()) {
            return Ok(url);
        }
        let c = start("MariaDB", "--mysql-url", containers::mariadb()).await?;
        let url = c.url().to_owned();
        self.containers.push(c);
        self.mysql = Some(url.clone());
        Ok(url)
    }

    pub(crate) async fn mongo(&mut self, args: &Args) -> Res<String> {
        if let Some(url) = args.mongo_url.clone().or_else(|| self.mongo.clone()) {
            return Ok(url);
        }
        let c = start("MongoDB", "--mongo-url", containers::mongo()).await?;
        let url = c.url().to_owned();
        self.containers.push(c);
        self.mongo = Some(url.clone());
        Ok(url)
    }
}
