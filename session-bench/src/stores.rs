//! The store suite: per backend, our store against the floor and tower-sessions.

use std::sync::Arc;

use session_memory::MemoryStore;
use session_mongo::MongoStore;
use session_redis::RedisStore;
use session_sqlx::{MySqlStore, PostgresStore, SqliteStore};

use crate::args::{Args, Backend};
use crate::harness::{Res, Subject, compare, context};
use crate::report::Report;
use crate::servers::Servers;
use crate::subjects::memory::MokaFloor;
use crate::subjects::mongo::MongoFloor;
use crate::subjects::ours::Ours;
use crate::subjects::redis::{Conn, RedisFloor};
use crate::subjects::sql::{Dialect, SqlFloor};
use crate::subjects::ts::{Ts14, Ts15};

/// sqlx's default pool size, which our stores' `connect` keeps; tower-sessions gets the same.
#[cfg_attr(not(feature = "tower-sessions-stores"), allow(dead_code))]
const SQL_POOL: u32 = 10;

/// The contenders of one backend, and a note on how they are set up.
type Contenders = (Vec<Arc<dyn Subject>>, String);

/// Runs every selected backend; the first failure stops the run.
pub(crate) async fn run(args: &Args, servers: &mut Servers, report: &mut Report) -> Res {
    report.text(&format!(
        "## Stores\n\n{} sessions of {} bytes (encoded) per contender; tasks {:?}; {} interleaved \
         rounds of {} ms after a {} ms warm-up each. cycles/s is the median over rounds; p50/p99 \
         pool every cycle of every round. Ratios are ours / that contender, per round, then \
         their median.\n",
        args.sessions,
        payload_len(args.size),
        args.tasks,
        args.timing.rounds,
        args.timing.round.as_millis(),
        args.timing.warmup.as_millis(),
    ));
    for backend in args.backends.clone() {
        eprintln!("[stores] {}: preparing", backend.name());
        let (mut subjects, note) = contenders(backend, args, servers)
            .await
            .map_err(|e| context(backend.name(), &e))?;
        subjects.retain(|s| args.roles.contains(&s.role()));
        let mut comparisons = Vec::new();
        for workload in args.workloads.clone() {
            for &tasks in &args.tasks {
                eprintln!(
                    "[stores] {}: {} at {tasks} tasks",
                    backend.name(),
                    workload.name()
                );
                let c = compare(&subjects, workload, tasks, args.timing)
                    .await
                    .map_err(|e| context(format!("{} {}", backend.name(), workload.name()), &e))?;
                comparisons.push(c);
            }
        }
        report.comparisons(backend.name(), &note, &comparisons);
        report.store_targets(backend.name(), &comparisons);
    }
    Ok(())
}

fn payload_len(size: usize) -> usize {
    crate::payload::bytes(&crate::payload::object(0, size)).len()
}

async fn contenders(backend: Backend, args: &Args, servers: &mut Servers) -> Res<Contenders> {
    match backend {
        Backend::Memory => memory(args).await,
        Backend::Redis => {
            let url = servers.redis(args).await?;
            redis(args, vec![url]).await
        }
        Backend::RedisCluster => {
            let urls = servers.redis_cluster(args).await?;
            redis(args, urls).await
        }
        Backend::Postgres => postgres(args, &servers.postgres(args).await?).await,
        Backend::MariaDb => mysql(args, &servers.mysql(args).await?).await,
        Backend::Sqlite => sqlite(args).await,
        Backend::Mongo => mongo(args, &servers.mongo(args).await?).await,
    }
}

async fn memory(args: &Args) -> Res<Contenders> {
    let (n, size) = (args.sessions, args.size);
    let capacity = (2 * n as u64).max(MemoryStore::DEFAULT_MAX_CAPACITY);
    let ours = Ours::prepare(
        "ours: MemoryStore",
        Arc::new(MemoryStore::with_max_capacity(capacity)?),
        n,
        size,
    )
    .await?;
    let floor = MokaFloor::prepare(n, size, capacity).await?;
    let moka = Ts14::prepare(
        "tower-sessions MokaStore",
        tower_sessions_moka_store::MokaStore::new(Some(capacity)),
        n,
        size,
    )
    .await?;
    let mem = Ts15::prepare(
        "tower-sessions MemoryStore",
        tower_sessions_memory_store::MemoryStore::default(),
        n,
        size,
    )
    .await?;
    let note = format!(
        "In-process. Floor: a moka cache of `Arc`s of the encoded bytes with the same capacity \
         ({capacity}) and per-entry expiry policy as ours. tower-sessions: MokaStore 0.15 (on \
         tower-sessions-core 0.14) with the same capacity, MemoryStore 0.15 (a mutex around a \
         `HashMap`)."
    );
    Ok((
        vec![
            Arc::new(ours),
            Arc::new(floor),
            Arc::new(moka),
            Arc::new(mem),
        ],
        note,
    ))
}

async fn redis(args: &Args, urls: Vec<String>) -> Res<Contenders> {
    let (n, size) = (args.sessions, args.size);
    let cluster = urls.len() > 1;
    let (store, conn) = if cluster {
        (
            RedisStore::connect_cluster(urls.clone()).await?,
            Conn::cluster(&urls).await?,
        )
    } else {
        (
            RedisStore::connect(&urls[0]).await?,
            Conn::standalone(&urls[0]).await?,
        )
    };
    let ours = Ours::prepare("ours: RedisStore", Arc::new(store), n, size).await?;
    let floor = RedisFloor::prepare(conn, n, size).await?;
    #[cfg_attr(not(feature = "tower-sessions-stores"), allow(unused_mut))]
    let mut subjects: Vec<Arc<dyn Subject>> = vec![Arc::new(ours), Arc::new(floor)];
    let mut note = format!(
        "{}. Ours: `RedisStore::{}` (one multiplexed connection; `GET` to load, one Lua script \
         (`EVALSHA`) to save and one to touch: see session-redis's README). Floor: `GET` + `SET .. PXAT` of the encoded \
         bytes under a string key, on one multiplexed redis-rs connection. ",
        if cluster {
            "Redis Cluster, 3 masters"
        } else {
            "Redis, standalone"
        },
        if cluster {
            "connect_cluster"
        } else {
            "connect"
        },
    );
    #[cfg(feature = "tower-sessions-stores")]
    {
        subjects.push(Arc::new(
            crate::subjects::ts_net::redis(&urls, n, size).await?,
        ));
        note.push_str("tower-sessions: RedisStore 0.16 (fred 10, tower-sessions-core 0.14).");
    }
    #[cfg(not(feature = "tower-sessions-stores"))]
    note.push_str(NO_TS);
    Ok((subjects, note))
}

#[cfg(not(feature = "tower-sessions-stores"))]
const NO_TS: &str = "tower-sessions' store not built (feature `tower-sessions-stores`).";

async fn postgres(args: &Args, url: &str) -> Res<Contenders> {
    let (n, size) = (args.sessions, args.size);
    let store = PostgresStore::connect(url).await?;
    store.migrate().await?;
    let pool = store.pool().clone();
    let ours = Ours::prepare("ours: PostgresStore", Arc::new(store), n, size).await?;
    let floor =
        SqlFloor::<sqlx::Postgres>::prepare(pool.clone(), Dialect::postgres(), n, size).await?;
    let bare = Dialect::postgres().without_expiry_index();
    let bare = SqlFloor::<sqlx::Postgres>::prepare(pool, bare, n, size).await?;
    #[cfg_attr(not(feature = "tower-sessions-stores"), allow(unused_mut))]
    let mut subjects: Vec<Arc<dyn Subject>> = vec![Arc::new(ours), Arc::new(floor), Arc::new(bare)];
    let mut note = String::from(
        "PostgreSQL. Ours: `PostgresStore::connect` (sqlx pool of 10). Floor: `SELECT data` + \
         `UPDATE` of the same bytes and expiry on that same pool, in a table with an index on \
         the expiry as ours has (cleanup needs it); the reference is the same without that \
         index. ",
    );
    #[cfg(feature = "tower-sessions-stores")]
    {
        subjects.push(Arc::new(
            crate::subjects::ts_net::postgres(url, SQL_POOL, n, size).await?,
        ));
        note.push_str("tower-sessions: PostgresStore 0.15 (sqlx 0.8, pool of 10).");
    }
    #[cfg(not(feature = "tower-sessions-stores"))]
    note.push_str(NO_TS);
    Ok((subjects, note))
}

async fn mysql(args: &Args, url: &str) -> Res<Contenders> {
    let (n, size) = (args.sessions, args.size);
    let store = MySqlStore::connect(url).await?;
    store.migrate().await?;
    let pool = store.pool().clone();
    let ours = Ours::prepare("ours: MySqlStore", Arc::new(store), n, size).await?;
    let floor = SqlFloor::<sqlx::MySql>::prepare(pool.clone(), Dialect::mysql(), n, size).await?;
    let bare = Dialect::mysql().without_expiry_index();
    let bare = SqlFloor::<sqlx::MySql>::prepare(pool, bare, n, size).await?;
    #[cfg_attr(not(feature = "tower-sessions-stores"), allow(unused_mut))]
    let mut subjects: Vec<Arc<dyn Subject>> = vec![Arc::new(ours), Arc::new(floor), Arc::new(bare)];
    let mut note = String::from(
        "MariaDB. Ours: `MySqlStore::connect` (sqlx pool of 10). Floor: `SELECT data` + \
         `UPDATE` of the same bytes and expiry on that same pool, in a table with an index on \
         the expiry as ours has (cleanup needs it); the reference is the same without that \
         index. ",
    );
    #[cfg(feature = "tower-sessions-stores")]
    {
        subjects.push(Arc::new(
            crate::subjects::ts_net::mysql(url, SQL_POOL, n, size).await?,
        ));
        note.push_str("tower-sessions: MySqlStore 0.15 (sqlx 0.8, pool of 10).");
    }
    #[cfg(not(feature = "tower-sessions-stores"))]
    note.push_str(NO_TS);
    Ok((subjects, note))
}

async fn sqlite(args: &Args) -> Res<Contenders> {
    let (n, size) = (args.sessions, args.size);
    let dir = match &args.sqlite_dir {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("session-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = dir.join("sessions.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let store = SqliteStore::connect(&format!("sqlite://{}", file.display())).await?;
    store.migrate().await?;
    let pool = store.pool().clone();
    let ours = Ours::prepare("ours: SqliteStore", Arc::new(store), n, size).await?;
    let floor = SqlFloor::<sqlx::Sqlite>::prepare(pool.clone(), Dialect::sqlite(), n, size).await?;
    let bare = Dialect::sqlite().without_expiry_index();
    let bare = SqlFloor::<sqlx::Sqlite>::prepare(pool, bare, n, size).await?;
    let note = format!(
        "SQLite file {} (WAL). Ours: `SqliteStore::connect`. Floor: `SELECT data` + `UPDATE` \
         on that same pool, in a table with an index on the expiry as ours has (cleanup needs \
         it); the reference is the same without that index. tower-sessions' SqliteStore cannot be built next to ours: it needs \
         sqlx 0.8, whose libsqlite3-sys conflicts with sqlx 0.9's (both link `sqlite3`).",
        file.display()
    );
    Ok((vec![Arc::new(ours), Arc::new(floor), Arc::new(bare)], note))
}

async fn mongo(args: &Args, url: &str) -> Res<Contenders> {
    let (n, size) = (args.sessions, args.size);
    let store = MongoStore::connect(url)
        .await?
        .with_database("session_bench")?;
    store.migrate().await?;
    store
        .collection()
        .delete_many(mongodb::bson::doc! {})
        .await?;
    let ours = Ours::prepare("ours: MongoStore", Arc::new(store), n, size).await?;
    let floor = MongoFloor::prepare(url, n, size, true).await?;
    let bare = MongoFloor::prepare(url, n, size, false).await?;
    let note = String::from(
        "MongoDB, standalone. Ours: `MongoStore::connect` (driver pool, default size). Floor: \
         `find_one` of a live `_id` + `update_one` `$set` of the same bytes, on raw documents, \
         own client, in a collection with the TTL index on the expiry that ours has (native \
         expiry needs it); the reference is the same without that index. tower-sessions has no MongoDB store for core 0.14/0.15 among the ones the \
         issue lists, so there is no third contender.",
    );
    Ok((vec![Arc::new(ours), Arc::new(floor), Arc::new(bare)], note))
}
