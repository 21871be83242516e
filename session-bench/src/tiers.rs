//! Our stores with an option against themselves without it: behind the cache tier (loads that
//! hit, loads that miss, the mixed workload), behind hashed ids, in the Express-compatible
//! layout. Run by the store suite after each backend's comparisons, on the same servers.

use std::sync::Arc;
use std::time::Duration;

use session_core::{Id, Store};
use session_hashed::HashedIds;
use session_memory::MemoryStore;
use session_mongo::MongoStore;
use session_redis::RedisStore;
use session_sqlx::PostgresStore;

use crate::args::{Args, Backend};
use crate::cpu::ServerCpu;
use crate::harness::{Contender, Res, Role, Workload, compare, context};
use crate::report::{Report, Setting, variant_table};
use crate::servers::Servers;
use crate::subjects::cache::{self, CachedLoads, Mixed};
use crate::subjects::ours::{self, Ours};
use crate::subjects::redis::RedisCpu;
use crate::targets;

/// The key `HashedIds` hashes with: any 32 bytes do, its cost does not depend on them.
const KEY: [u8; 32] = [0x5e; 32];

/// Runs the variants of `backend`'s store that `args` selects, each against `ours` (the
/// store suite's own contender, already prepared), and reports them.
pub(crate) async fn run(
    backend: Backend,
    args: &Args,
    servers: &mut Servers,
    report: &mut Report,
    ours: Option<&Contender>,
) -> Res {
    let name = backend.name();
    let plain: Vec<Workload> = args
        .workloads
        .iter()
        .copied()
        .filter(|w| Workload::STORE.contains(w))
        .collect();
    let wants = |role: Role| args.roles.contains(&role);
    if ![Role::Cached, Role::Hashed, Role::Express]
        .into_iter()
        .any(wants)
    {
        return Ok(());
    }
    // The Redis server's CPU time counts for every contender on it, as in the store suite.
    let server: Option<Arc<dyn ServerCpu>> = match backend {
        Backend::Redis => {
            let url = servers.url(backend, args).await?;
            Some(Arc::new(RedisCpu::connect(&[url]).await?))
        }
        _ => None,
    };
    let on_server = |c: Contender| match &server {
        Some(server) => c.on(server),
        None => c,
    };
    if wants(Role::Cached) && backend == Backend::Redis {
        cache_tier(args, servers, report, ours, &on_server).await?;
    }
    if wants(Role::Hashed) && !plain.is_empty() {
        let url = server_url(backend, args, servers).await?;
        if let Some((store, inner)) = hashed(backend, args, url.as_deref()).await? {
            eprintln!("[stores] {name}: hashed ids");
            let label = format!("hashed: HashedIds<{inner}>");
            let subject = Ours::prepare(store, args.sessions, args.size).await?;
            let variant = on_server(Contender::new(label, Role::Hashed, subject));
            let note = format!(
                "Ours: `{inner}`. Hashed: `HashedIds<{inner}>` (session-hashed): the store sees \
                 only HMAC-SHA256 of each id, one per operation (the keyed state is prepared \
                 once), and `load` puts the caller's id back in the record."
            );
            let title = format!("{name}: hashed ids");
            against_ours(&title, &note, args, report, ours, variant, &plain).await?;
        }
    }
    if wants(Role::Express) && !plain.is_empty() {
        let url = server_url(backend, args, servers).await?;
        if let Some((store, what)) = express(backend, url.as_deref()).await? {
            eprintln!("[stores] {name}: Express-compatible layout");
            let subject = Ours::prepare(store, args.sessions, args.size).await?;
            let variant = on_server(Contender::new(
                "express: the Express-compatible layout",
                Role::Express,
                subject,
            ));
            let note = format!(
                "Ours: the native layout (MessagePack). Express: {what}, with the version kept \
                 inside express-session's JSON (see the store's README, \"Express-compatible \
                 layout\")."
            );
            let title = format!("{name}: Express-compatible layout");
            against_ours(&title, &note, args, report, ours, variant, &plain).await?;
        }
    }
    Ok(())
}

async fn server_url(backend: Backend, args: &Args, servers: &mut Servers) -> Res<Option<String>> {
    Ok(match backend {
        Backend::Memory | Backend::Sqlite => None,
        _ => Some(servers.url(backend, args).await?),
    })
}

/// `HashedIds` over a store like ours on `backend`, and that store's name; `None` where the
/// comparison is not made.
async fn hashed(
    backend: Backend,
    args: &Args,
    url: Option<&str>,
) -> Res<Option<(Arc<dyn Store>, &'static str)>> {
    Ok(match (backend, url) {
        (Backend::Memory, _) => {
            let capacity = crate::stores::memory_capacity(args.sessions);
            let store = MemoryStore::with_max_capacity(capacity)?;
            Some((Arc::new(HashedIds::new(store, &KEY)?), "MemoryStore"))
        }
        (Backend::Redis, Some(url)) => {
            let store = RedisStore::connect(url).await?;
            Some((Arc::new(HashedIds::new(store, &KEY)?), "RedisStore"))
        }
        _ => None,
    })
}

/// Our store on `backend` in its Express-compatible layout, and what that layout is; `None`
/// where the store has none.
async fn express(
    backend: Backend,
    url: Option<&str>,
) -> Res<Option<(Arc<dyn Store>, &'static str)>> {
    Ok(match (backend, url) {
        (Backend::Redis, Some(url)) => {
            let store = RedisStore::connect(url).await?.express_compatible();
            Some((
                Arc::new(store),
                "`RedisStore::express_compatible()`, connect-redis's layout (a string key \
                 `sess:{id}` holding the JSON; `load`, `save` and `touch` are scripts)",
            ))
        }
        (Backend::Postgres, Some(url)) => {
            let store = PostgresStore::connect(url)
                .await?
                .express_compatible()
                .with_table("session_bench_express")?;
            store.migrate().await?;
            Some((
                Arc::new(store),
                "`PostgresStore::express_compatible()`, connect-pg-simple's layout (a `json` \
                 column and a `timestamp` expiry; `save` compares the version inside the JSON, \
                 or its MD5, in its `UPDATE`)",
            ))
        }
        (Backend::Mongo, Some(url)) => {
            let store = MongoStore::connect(url)
                .await?
                .express_compatible()
                .with_database("session_bench")?
                .with_collection("sessions_express")?;
            store.migrate().await?;
            store
                .collection()
                .delete_many(mongodb::bson::doc! {})
                .await?;
            Some((
                Arc::new(store),
                "`MongoStore::express_compatible()`, connect-mongo's layout (the JSON as a \
                 string; `save` reads the document, then writes it only if its text is \
                 unchanged)",
            ))
        }
        _ => None,
    })
}

/// Runs `variant` against `ours` on each of `workloads` at every task count, and reports the
/// comparisons in one table.
async fn against_ours(
    title: &str,
    note: &str,
    args: &Args,
    report: &mut Report,
    ours: Option<&Contender>,
    variant: Contender,
    workloads: &[Workload],
) -> Res {
    let contenders: Vec<Contender> = ours.into_iter().cloned().chain([variant]).collect();
    let mut comparisons = Vec::new();
    for &workload in workloads {
        for tasks in args.tasks() {
            let what = format!("{title}, {} at {tasks} tasks", workload.name());
            eprintln!("[stores] {what}");
            let c = compare(&contenders, workload, tasks, args.timing())
                .await
                .map_err(|e| context(&what, &e))?;
            comparisons.push((workload.name().to_owned(), None, c));
        }
    }
    finish(title, note, report, &comparisons);
    Ok(())
}

/// Reports comparisons as one variants table, and checks the cache tier's hits.
fn finish(
    title: &str,
    note: &str,
    report: &mut Report,
    comparisons: &[(String, Option<Duration>, crate::harness::Comparison)],
) {
    for (_, _, c) in comparisons {
        if c.workload == Workload::Hit
            && let (Some(cached), Some(ours)) =
                (c.find(Role::Cached, None), c.find(Role::Ours, None))
        {
            let what = format!("{title}, hit at {} tasks: cached / ours", c.tasks);
            report.check(what, (cached, ours), c.load, targets::CACHE_HIT_VS_STORE);
        }
    }
    let settings: Vec<Setting<'_>> = comparisons
        .iter()
        .map(|(name, bound, comparison)| Setting {
            name: name.clone(),
            comparison,
            bound: *bound,
        })
        .collect();
    report.text(&format!(
        "### {title}\n\n{note}\n\n{}",
        variant_table(&settings)
    ));
}

/// `CachedStore<RedisStore>` against `RedisStore`: hits, misses, the mixed workload.
async fn cache_tier(
    args: &Args,
    servers: &mut Servers,
    report: &mut Report,
    ours: Option<&Contender>,
    on_server: &impl Fn(Contender) -> Contender,
) -> Res {
    let url = servers.url(Backend::Redis, args).await?;
    let (n, size) = (args.sessions, args.size);
    let title = "redis: cache tier";
    let mut comparisons = Vec::new();
    let loads: Vec<Workload> = [Workload::Hit, Workload::Miss]
        .into_iter()
        .filter(|w| args.workloads.contains(w))
        .collect();
    if !loads.is_empty() {
        eprintln!("[stores] {title}: preparing hits and misses");
        let durable: Arc<dyn Store> = Arc::new(RedisStore::connect(&url).await?);
        let ids: Arc<[Id]> = ours::create(&durable, n, size).await?.into();
        let hits = CachedLoads::hits(RedisStore::connect(&url).await?, Arc::clone(&ids)).await?;
        let misses = CachedLoads::misses(RedisStore::connect(&url).await?, ids)?;
        let contenders: Vec<Contender> = ours
            .into_iter()
            .cloned()
            .chain([
                on_server(Contender::new(
                    "cached: CachedStore<RedisStore>, every session cached",
                    Role::Cached,
                    hits,
                )),
                on_server(Contender::new(
                    "cached: CachedStore<RedisStore>, room for 1/16 of the sessions",
                    Role::Cached,
                    misses,
                )),
            ])
            .collect();
        for &workload in &loads {
            for tasks in args.tasks() {
                let what = format!("{title}, {} at {tasks} tasks", workload.name());
                eprintln!("[stores] {what}");
                let c = compare(&contenders, workload, tasks, args.timing())
                    .await
                    .map_err(|e| context(&what, &e))?;
                comparisons.push((workload.name().to_owned(), None, c));
            }
        }
    }
    if args.workloads.contains(&Workload::Mixed) {
        let m = args.mixed_sessions;
        eprintln!("[stores] {title}: preparing {m} sessions for each side of the mixed workload");
        let plain: Arc<dyn Store> = Arc::new(RedisStore::connect(&url).await?);
        let plain_ids: Arc<[Id]> = ours::create(&plain, m, size).await?.into();
        let durable = RedisStore::connect(&url).await?;
        let behind: Arc<dyn Store> = Arc::new(durable.clone());
        let durable_ids: Arc<[Id]> = ours::create(&behind, m, size).await?.into();
        for bound in args.staleness() {
            for &reads in &args.reads_per_bound {
                let period = bound / reads;
                let name = format!("mixed, {reads} per {}", duration(bound));
                for tasks in args.tasks() {
                    let (tier, misses) = cache::tier(durable.clone(), bound, m as u64)?;
                    let sides = [
                        Contender::new(
                            "ours: RedisStore",
                            Role::Ours,
                            Mixed::new(
                                Arc::clone(&plain),
                                None,
                                Arc::clone(&plain_ids),
                                tasks,
                                period,
                                Duration::ZERO,
                            ),
                        ),
                        Contender::new(
                            "cached: CachedStore<RedisStore>",
                            Role::Cached,
                            // A fresh tier: one bound unmeasured before each round brings
                            // its cache to the steady state of the rhythm.
                            Mixed::new(
                                tier,
                                Some(misses),
                                Arc::clone(&durable_ids),
                                tasks,
                                period,
                                bound,
                            ),
                        ),
                    ];
                    let contenders: Vec<Contender> = sides
                        .into_iter()
                        .filter(|c| args.roles.contains(&c.role))
                        .map(on_server)
                        .collect();
                    let what = format!("{title}, {name} at {tasks} tasks");
                    eprintln!("[stores] {what}");
                    let c = compare(&contenders, Workload::Mixed, tasks, args.timing())
                        .await
                        .map_err(|e| context(&what, &e))?;
                    comparisons.push((name.clone(), Some(bound), c));
                }
            }
        }
    }
    let note = format!(
        "Ours: `RedisStore`. Cached: `CachedStore<RedisStore>` (session-memory), a moka cache in \
         this process in front of it; CPU time: this process's + the Redis server's. \
         **hit**: loads of random sessions, every one cached beforehand (bound 1 h); \
         **miss**: loads of the sessions in order through a tier with room for a sixteenth of \
         them, so each load reads Redis, caches the copy and evicts one. **mixed** ({} \
         sessions per side): each task keeps a rhythm in which each of its sessions is loaded \
         *r* times per staleness bound (once every bound / *r*), one request in ten also saving \
         (which drops the copy: the next load misses). It takes in a new session whenever it is \
         ahead of the rhythm and drops one it falls behind on by a quarter of the interval, so \
         it holds as many sessions as the contender can serve at that rhythm, and the cycles/s \
         are what the contender sustains. Each comparison starts with an empty tier, which runs \
         one bound unmeasured before each of its rounds. The hit ratio is counted (1 − loads \
         that reached Redis / loads), and the loads per session per bound are measured (the \
         bound / the mean interval between two loads of a session).",
        crate::numbers::thousands(args.mixed_sessions)
    );
    finish(title, &note, report, &comparisons);
    Ok(())
}

/// `1 s`, `100 ms`.
fn duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
