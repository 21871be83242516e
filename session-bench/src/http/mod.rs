//! The middleware suite: one axum app served three ways (without sessions, with session-tower,
//! with tower-sessions) on loopback, driven by an in-process hyper client or by wrk.

mod apps;
mod client;
mod wrk;

use std::net::SocketAddr;
use std::sync::Arc;

use session_core::Store;

use crate::args::{Args, Backend};
use crate::cpu::ServerCpu;
use crate::harness::{Comparison, Contender, Res, Role, Workload, compare};
use crate::payload;
use crate::report::Report;
use crate::servers::Servers;
use crate::targets;

/// One served app.
#[derive(Clone)]
struct App {
    label: String,
    role: Role,
    addr: SocketAddr,
    /// Whether `/login` sets a session cookie.
    sessions: bool,
    /// The server behind its store, when that server reports its CPU time.
    server: Option<Arc<dyn ServerCpu>>,
}

impl App {
    async fn serve(label: &str, role: Role, app: axum::Router) -> Res<Self> {
        Ok(Self {
            label: label.to_owned(),
            role,
            addr: apps::serve(app).await?,
            sessions: true,
            server: None,
        })
    }

    fn on(mut self, server: &Arc<dyn ServerCpu>) -> Self {
        self.server = Some(Arc::clone(server));
        self
    }
}

/// Runs the middleware comparisons: memory store, then Redis when it is selected.
pub(crate) async fn run(args: &Args, servers: &mut Servers, report: &mut Report) -> Res {
    let timing = args.timing();
    report.text(&format!(
        "## Middleware\n\naxum 0.8 on loopback, HTTP/1.1 keep-alive, sessions of {} bytes made \
         by `/login` requests before the rounds. {} Ratios are the session app / the other app, \
         per round; the CPU ratio is the other app's CPU time per request / ours. {} rounds of \
         {} ms.\n",
        payload::bytes(&payload::object(0, apps::SESSION_SIZE)).len(),
        if args.wrk() {
            "Load: `wrk -t1 -c<tasks>` (a separate process, so this process's CPU time is the \
             servers' alone), each request carrying the next of 256 session cookies in turn \
             (at least 4 per connection, so no two requests on one session are in flight \
             together)."
        } else {
            "Load: an in-process hyper client on the same runtime as the servers, one \
             connection per task, each with its own session; this process's CPU time includes \
             the client's, the same for every app, which pulls CPU ratios towards 1."
        },
        timing.rounds,
        if args.wrk() {
            wrk::seconds(timing.round) * 1000
        } else {
            timing.round.as_millis() as u64
        }
    ));

    let bare = App {
        sessions: false,
        ..App::serve("axum, no sessions", Role::Peer, apps::bare()).await?
    };
    let ours: Arc<dyn Store> = Arc::new(session_memory::MemoryStore::new());
    let ours = apps::ours(ours)?;
    let theirs = apps::theirs(tower_sessions::MemoryStore::default());
    let memory = vec![
        App::serve("axum + session-tower + MemoryStore", Role::Ours, ours).await?,
        App::serve("axum + tower-sessions + MemoryStore", Role::Peer, theirs).await?,
    ];
    let comparisons = measure(args, memory, &bare).await?;
    report.comparisons("memory store", "", &comparisons);
    for c in &comparisons {
        let bound = targets::middleware_vs_bare(c.workload);
        report.check_against(
            "middleware + MemoryStore",
            c,
            Role::Peer,
            Some("no sessions"),
            bound,
        );
        let bound = targets::MIDDLEWARE_VS_TOWER_SESSIONS;
        report.check_against(
            "middleware + MemoryStore",
            c,
            Role::Peer,
            Some("tower-sessions"),
            bound,
        );
    }

    if args.wants(Backend::Redis) {
        let url = servers.url(Backend::Redis, args).await?;
        let server: Arc<dyn ServerCpu> =
            Arc::new(crate::subjects::redis::RedisCpu::connect(std::slice::from_ref(&url)).await?);
        let store: Arc<dyn Store> = Arc::new(session_redis::RedisStore::connect(&url).await?);
        let ours = apps::ours(store)?;
        #[cfg_attr(not(feature = "tower-sessions-stores"), allow(unused_mut))]
        let mut redis = vec![
            App::serve("axum + session-tower + RedisStore", Role::Ours, ours)
                .await?
                .on(&server),
        ];
        #[cfg(feature = "tower-sessions-stores")]
        {
            let theirs = apps::theirs_014(crate::subjects::ts_net::redis(&[url]).await?);
            let label = "axum + tower-sessions 0.14 + RedisStore";
            redis.push(App::serve(label, Role::Peer, theirs).await?.on(&server));
        }
        let comparisons = measure(args, redis, &bare).await?;
        report.comparisons("Redis store", "", &comparisons);
        for c in &comparisons {
            let bound = targets::MIDDLEWARE_VS_TOWER_SESSIONS;
            report.check_against(
                "middleware + RedisStore",
                c,
                Role::Peer,
                Some("tower-sessions"),
                bound,
            );
        }
    }
    Ok(())
}

/// The comparisons of `apps` and the bare app, each handler at each concurrency.
async fn measure(args: &Args, mut apps: Vec<App>, bare: &App) -> Res<Vec<Comparison>> {
    apps.insert(1, bare.clone());
    apps.retain(|a| args.roles.contains(&a.role));
    if args.wrk() {
        return wrk::measure(args, &apps).await;
    }
    let connections = args.tasks().into_iter().max().unwrap_or(1);
    let mut contenders = Vec::new();
    for app in &apps {
        let client = client::Client::new(app.addr, connections, app.sessions).await?;
        let mut c = Contender::new(&app.label, app.role, client);
        c.server = app.server.clone();
        contenders.push(c);
    }
    let mut comparisons = Vec::new();
    for workload in [Workload::HttpRead, Workload::HttpWrite] {
        for tasks in args.tasks() {
            eprintln!("[http] {} at {tasks} tasks", workload.name());
            comparisons.push(compare(&contenders, workload, tasks, args.timing()).await?);
        }
    }
    Ok(comparisons)
}
