//! tower-sessions' network stores (feature `tower-sessions-stores`).

use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
use tower_sessions_sqlx_store::sqlx;

use super::ts::Ts14;
use crate::harness::Res;

/// Connections in tower-sessions' Redis pool, as its documentation's example has it.
const FRED_POOL: usize = 6;

/// tower-sessions' Redis store on a fred pool (standalone, or a cluster given several URLs).
pub(crate) async fn redis(
    urls: &[String],
    n: usize,
    size: usize,
) -> Res<Ts14<tower_sessions_redis_store::RedisStore<Pool>>> {
    let config = if let [url] = urls {
        Config::from_url(url)?
    } else {
        let hosts: Vec<String> = urls
            .iter()
            .map(|u| u.trim_start_matches("redis://").to_owned())
            .collect();
        Config::from_url(&format!(
            "redis-cluster://{}?{}",
            hosts[0],
            hosts[1..]
                .iter()
                .map(|h| format!("node={h}"))
                .collect::<Vec<_>>()
                .join("&")
        ))?
    };
    let pool = Pool::new(config, None, None, None, FRED_POOL)?;
    let _connection_task = pool.connect();
    pool.wait_for_connect().await?;
    let label = format!("tower-sessions RedisStore (fred pool of {FRED_POOL})");
    Ts14::prepare(
        label,
        tower_sessions_redis_store::RedisStore::new(pool),
        n,
        size,
    )
    .await
}

/// tower-sessions' PostgreSQL store on an sqlx 0.8 pool of `pool` connections.
pub(crate) async fn postgres(
    url: &str,
    pool: u32,
    n: usize,
    size: usize,
) -> Res<Ts14<tower_sessions_sqlx_store::PostgresStore>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(pool)
        .connect(url)
        .await?;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool);
    store.migrate().await?;
    Ts14::prepare("tower-sessions PostgresStore", store, n, size).await
}

/// tower-sessions' MySQL store on an sqlx 0.8 pool of `pool` connections.
pub(crate) async fn mysql(
    url: &str,
    pool: u32,
    n: usize,
    size: usize,
) -> Res<Ts14<tower_sessions_sqlx_store::MySqlStore>> {
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(pool)
        .connect(url)
        .await?;
    let store = tower_sessions_sqlx_store::MySqlStore::new(pool);
    store.migrate().await?;
    Ts14::prepare("tower-sessions MySqlStore", store, n, size).await
}
