//! tower-sessions' network stores (feature `tower-sessions-stores`).

use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
use tower_sessions_sqlx_store::{MySqlStore, PostgresStore, sqlx};

/// Connections in tower-sessions' Redis pool, as its documentation's example has it.
pub(crate) const FRED_POOL: usize = 6;

/// tower-sessions' Redis store on a fred pool (standalone, or a cluster given several URLs).
pub(crate) async fn redis(urls: &[String]) -> crate::harness::Res<RedisStore<Pool>> {
    let config = if let [url] = urls {
        Config::from_url(url)?
    } else {
        let hosts: Vec<&str> = urls
            .iter()
            .map(|u| u.trim_start_matches("redis://"))
            .collect();
        let nodes: Vec<String> = hosts[1..].iter().map(|h| format!("node={h}")).collect();
        Config::from_url(&format!("redis-cluster://{}?{}", hosts[0], nodes.join("&")))?
    };
    let pool = Pool::new(config, None, None, None, FRED_POOL)?;
    let _connection_task = pool.connect();
    pool.wait_for_connect().await?;
    Ok(RedisStore::new(pool))
}

/// tower-sessions' PostgreSQL store on an sqlx 0.8 pool of `pool` connections.
pub(crate) async fn postgres(url: &str, pool: u32) -> crate::harness::Res<PostgresStore> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(pool)
        .connect(url)
        .await?;
    let store = PostgresStore::new(pool);
    store.migrate().await?;
    Ok(store)
}

/// tower-sessions' MySQL store on an sqlx 0.8 pool of `pool` connections.
pub(crate) async fn mysql(url: &str, pool: u32) -> crate::harness::Res<MySqlStore> {
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(pool)
        .connect(url)
        .await?;
    let store = MySqlStore::new(pool);
    store.migrate().await?;
    Ok(store)
}
