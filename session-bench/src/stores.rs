//! The store suite: per backend, our store against the floor and tower-sessions.

use std::sync::Arc;

use session_core::Store;
use session_memory::MemoryStore;
use session_mongo::MongoStore;
use session_redis::RedisStore;
use session_sqlx::{MySqlStore, PostgresStore, SqliteStore};

use crate::args::{Args, Backend};
use crate::cpu::ServerCpu;
use crate::harness::{Contender, Res, Role, Workload, compare, context};
use crate::report::Report;
use crate::servers::Servers;
use crate::subjects::memory::MokaFloor;
use crate::subjects::mongo::MongoFloor;
use crate::subjects::ours::Ours;
use crate::subjects::redis::{Conn, RedisCpu, RedisFloor};
use crate::subjects::sql::{Dialect, SqlFloor};
use crate::subjects::ts::{Ts14, Ts15};
use crate::targets;

/// sqlx's default pool size, which our stores' `connect` keeps; tower-sessions gets the same.
#[cfg_attr(not(feature = "tower-sessions-stores"), allow(dead_code))]
const SQL_POOL: u32 = 10;

/// Runs every selected backend; the first failure stops the run.
pub(crate) async fn run(args: &Args, servers: &mut Servers, report: &mut Report) -> Res {
    let timing = args.timing();
    report.text(&format!(
        "## Stores\n\n{} sessions of {} bytes (encoded) per contender; tasks {:?}; {} interleaved \
         rounds of {} ms after a {} ms warm-up each. cycles/s and CPU µs/cycle are medians over \
         rounds; p50/p99 pool every cycle of every round. Ratios are ours / that contender per \
         round, then their median; the CPU ratio is that contender's CPU time per cycle / ours \
         (median [interquartile range]).\n",
        args.sessions,
        crate::payload::bytes(&crate::payload::object(0, args.size)).len(),
        args.tasks(),
        timing.rounds,
        timing.round.as_millis(),
        timing.warmup.as_millis(),
    ));
    for backend in args.backends() {
        let name = &backend.name();
        eprintln!("[stores] {name}: preparing");
        let mut contenders = contenders(backend, args, servers)
            .await
            .map_err(|e| context(name, &e))?;
        contenders.retain(|c| args.roles.contains(&c.role));
        let mut comparisons = Vec::new();
        let workloads = args
            .workloads
            .iter()
            .filter(|w| Workload::STORE.contains(w));
        for &workload in workloads {
            for tasks in args.tasks() {
                let what = format!("{name} {} at {tasks} tasks", workload.name());
                eprintln!("[stores] {what}");
                let c = compare(&contenders, workload, tasks, timing)
                    .await
                    .map_err(|e| context(&what, &e))?;
                if let Some(bound) = targets::store_vs_floor(backend, workload) {
                    report.check_against(name, &c, Role::Floor, None, bound);
                }
                if matches!(workload, Workload::Rw | Workload::Ro) {
                    for m in c.results.iter().filter(|m| m.role == Role::Peer) {
                        let bound = targets::STORE_VS_TOWER_SESSIONS;
                        report.check_against(name, &c, Role::Peer, Some(&m.label), bound);
                    }
                }
                comparisons.push(c);
            }
        }
        report.comparisons(name, &note(backend), &comparisons);
        let ours = contenders.iter().find(|c| c.role == Role::Ours);
        crate::tiers::run(backend, args, servers, report, ours)
            .await
            .map_err(|e| context(name, &e))?;
    }
    Ok(())
}

/// The capacity of the memory stores holding `sessions` sessions: room to spare, so that no
/// prepared session is evicted.
pub(crate) fn memory_capacity(sessions: usize) -> u64 {
    (2 * sessions as u64).max(MemoryStore::DEFAULT_MAX_CAPACITY)
}

/// How the contenders of `backend` are set up.
fn note(backend: Backend) -> String {
    let (ours, floor, theirs) = match backend {
        Backend::Memory => (
            "`MemoryStore::with_max_capacity` (in-process: this process's CPU time is all that \
             each contender costs).",
            "a moka cache of `Arc`s of the encoded bytes with the same capacity and per-entry \
             expiry policy as ours",
            "MokaStore 0.15 (on tower-sessions-core 0.14) with the same capacity, MemoryStore \
             0.15 (a mutex around a `HashMap`)",
        ),
        Backend::Redis | Backend::RedisCluster => (
            "`RedisStore::connect` / `connect_cluster` (one multiplexed connection; `GET` to \
             load, one Lua script (`EVALSHA`) to save and one to touch: see session-redis's \
             README). CPU time: this process's + the Redis servers' (`INFO cpu`).",
            "`GET` + `SET .. PXAT` of the encoded bytes under a string key (touch: \
             `PEXPIREAT`), on one multiplexed redis-rs connection",
            "RedisStore 0.16 (fred 10, tower-sessions-core 0.14)",
        ),
        Backend::Postgres | Backend::Mariadb | Backend::Sqlite => (
            "`connect` (sqlx pool of 10; SQLite: a file in WAL mode). CPU time: this process's \
             (the SQLite engine's included, a server's not).",
            "`SELECT data` + `UPDATE` of the same bytes and expiry on our store's pool, in a \
             table with an index on the expiry as ours has (cleanup needs it); the reference is \
             the same without that index",
            "PostgresStore / MySqlStore 0.15 (sqlx 0.8, pool of 10); no SqliteStore: it needs \
             sqlx 0.8, whose libsqlite3-sys links `sqlite3` like sqlx 0.9's, and Cargo allows \
             one such crate per workspace",
        ),
        Backend::Mongo => (
            "`MongoStore::connect` (driver pool, default size). CPU time: this process's.",
            "`find_one` of a live `_id` + `update_one` `$set` of the same bytes, on raw \
             documents, own client, in a collection with the TTL index on the expiry that ours \
             has; the reference is the same without that index",
            "none (no store for tower-sessions-core 0.14/0.15)",
        ),
    };
    let built = cfg!(feature = "tower-sessions-stores") || backend == Backend::Memory;
    let theirs = if built {
        theirs
    } else {
        "not built (feature `tower-sessions-stores`)"
    };
    format!("Ours: {ours} Floor: {floor}. tower-sessions: {theirs}.")
}

/// Our store with `args.sessions` sessions of `args.size` bytes.
async fn ours(label: &str, store: impl Store + 'static, args: &Args) -> Res<Contender> {
    let subject = Ours::prepare(Arc::new(store), args.sessions, args.size).await?;
    Ok(Contender::new(label, Role::Ours, subject))
}

/// tower-sessions' `store` (on core 0.14) with the same sessions.
#[cfg_attr(not(feature = "tower-sessions-stores"), allow(dead_code))]
async fn theirs<S>(label: &str, store: S, args: &Args) -> Res<Contender>
where
    S: tower_sessions_core_014::SessionStore + 'static,
{
    let subject = Ts14::prepare(store, args.sessions, args.size).await?;
    Ok(Contender::new(label, Role::Peer, subject))
}

#[cfg_attr(not(feature = "tower-sessions-stores"), allow(unused_mut))]
async fn contenders(backend: Backend, args: &Args, servers: &mut Servers) -> Res<Vec<Contender>> {
    let (n, size) = (args.sessions, args.size);
    let mut all = Vec::new();
    match backend {
        Backend::Memory => {
            let capacity = memory_capacity(n);
            let store = MemoryStore::with_max_capacity(capacity)?;
            all.push(ours("ours: MemoryStore", store, args).await?);
            let floor = MokaFloor::prepare(n, size, capacity).await?;
            all.push(Contender::new(
                "floor: moka get (+ insert)",
                Role::Floor,
                floor,
            ));
            let moka = tower_sessions_moka_store::MokaStore::new(Some(capacity));
            all.push(theirs("tower-sessions MokaStore", moka, args).await?);
            let memory = tower_sessions_memory_store::MemoryStore::default();
            let memory = Ts15::prepare(memory, n, size).await?;
            all.push(Contender::new(
                "tower-sessions MemoryStore",
                Role::Peer,
                memory,
            ));
        }
        Backend::Redis | Backend::RedisCluster => {
            let urls = servers.urls(backend, args).await?;
            let (store, conn) = if backend == Backend::RedisCluster {
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
            let server: Arc<dyn ServerCpu> = Arc::new(RedisCpu::connect(&urls).await?);
            all.push(ours("ours: RedisStore", store, args).await?);
            let floor = RedisFloor::prepare(conn, n, size).await?;
            all.push(Contender::new(
                "floor: redis-rs GET / SET / PEXPIREAT",
                Role::Floor,
                floor,
            ));
            #[cfg(feature = "tower-sessions-stores")]
            {
                let store = crate::subjects::ts_net::redis(&urls).await?;
                let label = format!(
                    "tower-sessions RedisStore (fred pool of {})",
                    crate::subjects::ts_net::FRED_POOL
                );
                all.push(theirs(&label, store, args).await?);
            }
            all = all.into_iter().map(|c| c.on(&server)).collect();
        }
        Backend::Postgres => {
            let url = servers.url(backend, args).await?;
            let store = PostgresStore::connect(&url).await?;
            store.migrate().await?;
            let pool = store.pool().clone();
            all.push(ours("ours: PostgresStore", store, args).await?);
            all.extend(
                SqlFloor::<sqlx::Postgres>::contenders(pool, Dialect::postgres, n, size).await?,
            );
            #[cfg(feature = "tower-sessions-stores")]
            {
                let store = crate::subjects::ts_net::postgres(&url, SQL_POOL).await?;
                all.push(theirs("tower-sessions PostgresStore", store, args).await?);
            }
        }
        Backend::Mariadb => {
            let url = servers.url(backend, args).await?;
            let store = MySqlStore::connect(&url).await?;
            store.migrate().await?;
            let pool = store.pool().clone();
            all.push(ours("ours: MySqlStore", store, args).await?);
            all.extend(SqlFloor::<sqlx::MySql>::contenders(pool, Dialect::mysql, n, size).await?);
            #[cfg(feature = "tower-sessions-stores")]
            {
                let store = crate::subjects::ts_net::mysql(&url, SQL_POOL).await?;
                all.push(theirs("tower-sessions MySqlStore", store, args).await?);
            }
        }
        Backend::Sqlite => {
            let dir = args.sqlite_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("session-bench-{}", std::process::id()))
            });
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let file = dir.join("sessions.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
            let store = SqliteStore::connect(&format!("sqlite://{}", file.display())).await?;
            store.migrate().await?;
            let pool = store.pool().clone();
            all.push(ours("ours: SqliteStore", store, args).await?);
            all.extend(SqlFloor::<sqlx::Sqlite>::contenders(pool, Dialect::sqlite, n, size).await?);
        }
        Backend::Mongo => {
            let url = servers.url(backend, args).await?;
            let store = MongoStore::connect(&url)
                .await?
                .with_database("session_bench")?;
            store.migrate().await?;
            store
                .collection()
                .delete_many(mongodb::bson::doc! {})
                .await?;
            all.push(ours("ours: MongoStore", store, args).await?);
            all.extend(MongoFloor::contenders(&url, n, size).await?);
        }
    }
    Ok(all)
}
