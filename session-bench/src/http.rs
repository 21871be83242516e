//! The middleware suite: one axum app served three ways (without sessions, with session-tower,
//! with tower-sessions), driven on loopback by an in-process HTTP/1.1 client with keep-alive
//! connections, each connection carrying its own session cookie.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use http::header::{COOKIE, HOST, SET_COOKIE};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use session_core::Store;
use tokio::sync::Mutex;

use crate::args::Args;
use crate::harness::{Res, Role, Subject, Workload, compare};
use crate::payload;
use crate::report::Report;
use crate::servers::Servers;

/// The key both handlers use.
const USER: &str = "user";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// The same three routes, without sessions: `/login` and `/read` answer what the session
/// versions would, `/write` does the same counter increment.
fn bare_app() -> Router {
    Router::new()
        .route("/login", get(|| async { "ok" }))
        .route("/read", get(|| async { "user-0000000@example.com" }))
        .route(
            "/write",
            get(|| async {
                let _ = next();
                "ok"
            }),
        )
}

mod ours {
    use axum::http::StatusCode;
    use session_tower::Session;

    use super::{USER, next};
    use crate::payload;

    pub(super) async fn login(session: Session) -> Result<&'static str, StatusCode> {
        for (k, v) in payload::object(0, super::SESSION_SIZE) {
            session
                .insert(k, &v)
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        }
        Ok("ok")
    }

    pub(super) async fn read(session: Session) -> Result<String, StatusCode> {
        session
            .get::<String>(USER)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
            .ok_or(StatusCode::UNAUTHORIZED)
    }

    pub(super) async fn write(session: Session) -> Result<&'static str, StatusCode> {
        session
            .insert(payload::COUNTER, &next())
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok("ok")
    }
}

/// The same handlers on tower-sessions, for the two releases in use (0.15 for the memory store;
/// 0.14, whose core the Redis store is released against).
macro_rules! theirs {
    ($module:ident, $crate_name:ident) => {
        mod $module {
            use axum::Router;
            use axum::http::StatusCode;
            use axum::routing::get;
            use $crate_name::Session;

            use super::{USER, next};
            use crate::payload;

            async fn login(session: Session) -> Result<&'static str, StatusCode> {
                for (k, v) in payload::object(0, super::SESSION_SIZE) {
                    session
                        .insert(&k, v)
                        .await
                        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                }
                Ok("ok")
            }

            async fn read(session: Session) -> Result<String, StatusCode> {
                session
                    .get::<String>(USER)
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                    .ok_or(StatusCode::UNAUTHORIZED)
            }

            async fn write(session: Session) -> Result<&'static str, StatusCode> {
                session
                    .insert(payload::COUNTER, next())
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                Ok("ok")
            }

            pub(super) fn app<S>(store: S) -> Router
            where
                S: $crate_name::SessionStore + Clone,
            {
                let layer = $crate_name::SessionManagerLayer::new(store).with_secure(false);
                Router::new()
                    .route("/login", get(login))
                    .route("/read", get(read))
                    .route("/write", get(write))
                    .layer(layer)
            }
        }
    };
}

theirs!(theirs, tower_sessions);
#[cfg(feature = "tower-sessions-stores")]
theirs!(theirs_014, tower_sessions_014);

/// The session every connection logs in with: the store suite's ~1 KiB session.
const SESSION_SIZE: usize = 1024;

/// A fixed key: the benchmark has no secrets to keep.
const KEY: [u8; 48] = [0x5e; 48];

fn ours_app(store: Arc<dyn Store>) -> Res<Router> {
    let layer = session_tower::SessionLayer::builder(store)
        .with_signing_key(KEY)
        .with_secure(false)
        .build()?;
    Ok(Router::new()
        .route("/login", get(ours::login))
        .route("/read", get(ours::read))
        .route("/write", get(ours::write))
        .layer(layer))
}

async fn serve(app: Router) -> Res<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Without TCP_NODELAY, small responses wait on delayed ACKs and every app looks slow alike.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("[http] server on {addr} stopped: {e}");
        }
    });
    Ok(addr)
}

type Sender = SendRequest<Empty<Bytes>>;

/// One served app and a keep-alive connection (with its own session) per client task.
struct Client {
    label: String,
    role: Role,
    addr: SocketAddr,
    connections: Vec<Mutex<(Sender, Option<HeaderValue>)>>,
}

async fn connect(addr: SocketAddr) -> Res<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(
    sender: &mut Sender,
    path: &str,
    cookie: Option<&HeaderValue>,
) -> Res<http::HeaderMap> {
    sender.ready().await?;
    let mut request = Request::get(path).header(HOST, "127.0.0.1");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = sender.send_request(request.body(Empty::new())?).await?;
    let (parts, body) = response.into_parts();
    body.collect().await?;
    if parts.status != StatusCode::OK {
        return Err(format!("{path} answered {}", parts.status).into());
    }
    Ok(parts.headers)
}

impl Client {
    /// Opens `n` connections to `addr`, each logged in to a session of its own.
    async fn new(label: impl Into<String>, role: Role, addr: SocketAddr, n: usize) -> Res<Self> {
        let label = label.into();
        let sessions = !label.contains("no sessions");
        let mut connections = Vec::with_capacity(n);
        for _ in 0..n {
            let mut sender = connect(addr).await?;
            let headers = send(&mut sender, "/login", None).await?;
            let cookie = match headers.get(SET_COOKIE) {
                Some(set) => {
                    let pair = set.to_str()?.split(';').next().unwrap_or_default();
                    Some(HeaderValue::from_str(pair)?)
                }
                None if !sessions => None,
                None => return Err(format!("/login on {addr} set no cookie").into()),
            };
            connections.push(Mutex::new((sender, cookie)));
        }
        Ok(Self {
            label,
            role,
            addr,
            connections,
        })
    }
}

#[async_trait]
impl Subject for Client {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn role(&self) -> Role {
        self.role
    }

    fn sessions(&self) -> usize {
        self.connections.len()
    }

    fn supports(&self, workload: Workload) -> bool {
        matches!(workload, Workload::HttpRead | Workload::HttpWrite)
    }

    async fn cycle(&self, workload: Workload, task: usize, _slot: usize, _n: u64) -> Res {
        let path = if workload == Workload::HttpRead {
            "/read"
        } else {
            "/write"
        };
        let mut guard = self.connections[task].lock().await;
        let (sender, cookie) = &mut *guard;
        send(sender, path, cookie.as_ref()).await?;
        Ok(())
    }
}

/// Runs the middleware comparisons: memory store, then Redis when it is selected.
pub(crate) async fn run(args: &Args, servers: &mut Servers, report: &mut Report) -> Res {
    let connections = args.tasks.iter().copied().max().unwrap_or(1);
    report.text(&format!(
        "## Middleware\n\naxum 0.8 on loopback, HTTP/1.1 keep-alive, sessions of {} bytes made \
         by `/login` requests before the rounds. {} Ratios are the session app / the other app, \
         per round. {} rounds of {} ms.\n",
        payload::bytes(&payload::object(0, SESSION_SIZE)).len(),
        if args.wrk {
            "Load: `wrk -t1 -c<tasks>` (a separate process), each request carrying the next \
             of 256 session cookies in turn (at least 4 per connection, so no two requests on \
             one session are in flight together)."
        } else {
            "Load: an in-process hyper client on the same runtime as the servers, one \
             connection per task, each with its own session."
        },
        args.timing.rounds,
        if args.wrk {
            wrk::seconds(args.timing.round) * 1000
        } else {
            args.timing.round.as_millis() as u64
        }
    ));

    let bare = Client::new(
        "axum, no sessions",
        Role::Peer,
        serve(bare_app()).await?,
        connections,
    )
    .await?;
    let bare = Arc::new(bare);

    // Memory store.
    let ours: Arc<dyn Store> = Arc::new(session_memory::MemoryStore::new());
    let ours = Client::new(
        "axum + session-tower + MemoryStore",
        Role::Ours,
        serve(ours_app(ours)?).await?,
        connections,
    )
    .await?;
    let theirs = Client::new(
        "axum + tower-sessions + MemoryStore",
        Role::Peer,
        serve(theirs::app(tower_sessions::MemoryStore::default())).await?,
        connections,
    )
    .await?;
    let mut subjects = vec![Arc::new(ours), Arc::clone(&bare), Arc::new(theirs)];
    subjects.retain(|s| args.roles.contains(&s.role));
    let comparisons = measure(args, &subjects).await?;
    report.comparisons("memory store", "", &comparisons);
    for c in &comparisons {
        let target = if c.workload == Workload::HttpRead {
            0.85
        } else {
            0.6
        };
        report.check(
            format!(
                "middleware + MemoryStore, {} at {} tasks: ours / bare axum",
                c.workload.name(),
                c.tasks
            ),
            c.median_ratio_to("no sessions"),
            target,
        );
        report.check(
            format!(
                "middleware + MemoryStore, {} at {} tasks: ours / tower-sessions",
                c.workload.name(),
                c.tasks
            ),
            c.median_ratio_to("tower-sessions"),
            1.0,
        );
    }

    if args.wants(crate::args::Backend::Redis) {
        let url = servers.redis(args).await?;
        let store: Arc<dyn Store> = Arc::new(session_redis::RedisStore::connect(&url).await?);
        let ours = Client::new(
            "axum + session-tower + RedisStore",
            Role::Ours,
            serve(ours_app(store)?).await?,
            connections,
        )
        .await?;
        let mut subjects = vec![Arc::new(ours), Arc::clone(&bare)];
        #[cfg(feature = "tower-sessions-stores")]
        {
            use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
            let pool = Pool::new(Config::from_url(&url)?, None, None, None, 6)?;
            let _connection_task = pool.connect();
            pool.wait_for_connect().await?;
            let store = tower_sessions_redis_store::RedisStore::new(pool);
            let theirs = Client::new(
                "axum + tower-sessions 0.14 + RedisStore",
                Role::Peer,
                serve(theirs_014::app(store)).await?,
                connections,
            )
            .await?;
            subjects.push(Arc::new(theirs));
        }
        subjects.retain(|s| args.roles.contains(&s.role));
        let comparisons = measure(args, &subjects).await?;
        report.comparisons("Redis store", "", &comparisons);
    }
    Ok(())
}

async fn measure(args: &Args, subjects: &[Arc<Client>]) -> Res<Vec<crate::harness::Comparison>> {
    if args.wrk {
        return wrk::measure(args, subjects).await;
    }
    let subjects: Vec<Arc<dyn Subject>> = subjects
        .iter()
        .map(|c| Arc::clone(c) as Arc<dyn Subject>)
        .collect();
    let subjects = &subjects[..];
    let mut comparisons = Vec::new();
    for workload in [Workload::HttpRead, Workload::HttpWrite] {
        for &tasks in &args.tasks {
            eprintln!("[http] {} at {tasks} tasks", workload.name());
            comparisons.push(compare(subjects, workload, tasks, args.timing).await?);
        }
    }
    Ok(comparisons)
}

/// The same comparisons with wrk as the load generator.
mod wrk {
    use std::fmt::Write as _;
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Client, SET_COOKIE, connect, send};
    use crate::args::Args;
    use crate::harness::{Comparison, Measured, Res, Workload};

    /// Sessions the requests of a wrk run cycle through.
    const COOKIES: usize = 256;

    /// wrk runs whole seconds.
    pub(super) fn seconds(round: Duration) -> u64 {
        round.as_secs_f64().round().max(1.0) as u64
    }

    /// A Lua script sending each request with the next cookie of `cookies`.
    fn script(cookies: &[String]) -> String {
        let mut lua = String::from("local cookies = {\n");
        for c in cookies {
            let _ = writeln!(lua, "  {c:?},");
        }
        lua.push_str(
            "}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  \
             return wrk.format(nil, nil, { [\"Cookie\"] = cookies[(i % #cookies) + 1] })\n\
             end\n",
        );
        lua
    }

    /// Logs in `COOKIES` sessions on `client`'s server and writes the script for them.
    async fn prepare(client: &Client, dir: &std::path::Path, i: usize) -> Res<std::path::PathBuf> {
        let mut cookies = Vec::with_capacity(COOKIES);
        let mut sender = connect(client.addr).await?;
        for _ in 0..COOKIES {
            let headers = send(&mut sender, "/login", None).await?;
            if let Some(set) = headers.get(SET_COOKIE) {
                let pair = set.to_str()?.split(';').next().unwrap_or_default();
                cookies.push(pair.to_owned());
            }
        }
        if cookies.is_empty() {
            cookies.push("none=0".to_owned());
        }
        let path = dir.join(format!("app{i}.lua"));
        std::fs::write(&path, script(&cookies))?;
        Ok(path)
    }

    fn duration(text: &str) -> Option<Duration> {
        let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
        let v: f64 = number.parse().ok()?;
        let seconds = match unit {
            "us" => v / 1e6,
            "ms" => v / 1e3,
            "s" => v,
            "m" => v * 60.0,
            _ => return None,
        };
        Some(Duration::from_secs_f64(seconds))
    }

    /// One wrk run: requests/s, p50, p99.
    async fn run(
        url: &str,
        script: &std::path::Path,
        tasks: usize,
        secs: u64,
    ) -> Res<(f64, Duration, Duration)> {
        let output = tokio::process::Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{tasks}"),
                &format!("-d{secs}s"),
                "--latency",
                "-s",
            ])
            .arg(script)
            .arg(url)
            .output()
            .await
            .map_err(|e| {
                format!("cannot run wrk (install it, or use --load-generator hyper): {e}")
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "wrk failed: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let field = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(prefix))
                .map(str::trim)
        };
        if let Some(n) = field("Non-2xx or 3xx responses:") {
            return Err(format!("{url}: {n} requests failed").into());
        }
        if let Some(errors) = field("Socket errors:") {
            return Err(format!("{url}: socket errors: {errors}").into());
        }
        let rps: f64 = field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no Requests/sec in wrk's output: {text}"))?;
        let p50 = field("50%").and_then(duration).unwrap_or_default();
        let p99 = field("99%").and_then(duration).unwrap_or_default();
        Ok((rps, p50, p99))
    }

    pub(super) async fn measure(args: &Args, apps: &[Arc<Client>]) -> Res<Vec<Comparison>> {
        let dir = std::env::temp_dir().join(format!("session-bench-wrk-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut scripts = Vec::new();
        for (i, app) in apps.iter().enumerate() {
            scripts.push(prepare(app, &dir, i).await?);
        }
        let secs = seconds(args.timing.round);
        let mut comparisons = Vec::new();
        for workload in [Workload::HttpRead, Workload::HttpWrite] {
            let path = if workload == Workload::HttpRead {
                "read"
            } else {
                "write"
            };
            for &tasks in &args.tasks {
                eprintln!("[http/wrk] {} at {tasks} connections", workload.name());
                let urls: Vec<String> = apps
                    .iter()
                    .map(|a| format!("http://{}/{path}", a.addr))
                    .collect();
                for (url, script) in urls.iter().zip(&scripts) {
                    run(url, script, tasks, 1).await?;
                }
                let mut results: Vec<Measured> = apps
                    .iter()
                    .map(|a| Measured {
                        label: a.label.clone(),
                        role: a.role,
                        throughput: vec![0.0; args.timing.rounds],
                        latencies: Vec::new(),
                        reported: Vec::new(),
                    })
                    .collect();
                for round in 0..args.timing.rounds {
                    for k in 0..apps.len() {
                        let i = (round + k) % apps.len();
                        let (rps, p50, p99) = run(&urls[i], &scripts[i], tasks, secs).await?;
                        results[i].throughput[round] = rps;
                        results[i].reported.push((p50, p99));
                    }
                }
                comparisons.push(Comparison {
                    workload,
                    tasks,
                    results,
                });
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(comparisons)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn wrk_durations_parse_with_their_units() {
            assert_eq!(duration("123.00us"), Some(Duration::from_micros(123)));
            assert_eq!(duration("1.50ms"), Some(Duration::from_micros(1500)));
            assert_eq!(duration("2.00s"), Some(Duration::from_secs(2)));
            assert_eq!(duration("7"), None);
        }

        #[test]
        fn the_script_cycles_through_every_cookie() {
            let lua = script(&["sid=a".to_owned(), "sid=b".to_owned()]);
            assert!(
                lua.contains("\"sid=a\",") && lua.contains("\"sid=b\","),
                "{lua}"
            );
            assert!(lua.contains("cookies[(i % #cookies) + 1]"), "{lua}");
        }
    }
}
