//! Command-line options.

use std::time::Duration;

use crate::harness::{Res, Role, Timing, Workload};

pub(crate) const USAGE: &str = "\
session-bench: session-rs stores and middleware against their floor and tower-sessions.

USAGE:
    cargo run -p session-bench --release -- [SUITE...] [OPTIONS]

SUITES (default: stores):
    stores     every backend: rw / ro / touch cycles against the floor and tower-sessions
    scaling    memory and Redis at 10k / 100k / 1M sessions; 1 / 16 / 64 KiB payloads;
               the memory store's resident memory per session
    http       axum + session-tower against bare axum and axum + tower-sessions
    all        all three

OPTIONS:
    --quick                 a few seconds per backend (for CI): 1,000 sessions, tasks 1 and 16,
                            2 rounds of 100 ms; scaling at 1k / 10k sessions and 4 tasks
    --backends LIST         comma-separated subset of: memory, redis, redis-cluster, postgres,
                            mariadb, sqlite, mongo (default: all)
    --skip LIST             backends to leave out (a backend that is neither skipped nor
                            reachable is an error)
    --redis-url URL         use this Redis instead of starting a container
    --redis-cluster-urls L  comma-separated node URLs of a running Redis Cluster
    --postgres-url URL      use this PostgreSQL instead of starting a container
    --mysql-url URL         use this MariaDB/MySQL instead of starting a container
    --mongo-url URL         use this MongoDB instead of starting a container
    --sqlite-dir DIR        where the SQLite files go (default: a fresh temporary directory)
    --sessions N            prepared sessions per contender (default 10000)
    --size BYTES            encoded size of a session (default 1024)
    --tasks LIST            concurrencies (default 1,16,64)
    --rounds N              interleaved rounds (default 10)
    --round-ms MS           length of one contender's run in a round (default 400)
    --warmup-ms MS          warm-up run per contender before the rounds (default 300)
    --workloads LIST        store workloads to run: rw, ro, touch (default: all three)
    --contenders LIST       roles to run: ours, floor, peer (tower-sessions, or axum without
                            sessions), reference (the SQL and MongoDB floors without their
                            expiry index) (default: all; `ours` alone is the way to profile a
                            store with perf)
    --scale-max N           largest session count of the scaling run (default 1000000)
    --load-generator G      http suite: `wrk` (the wrk binary, one thread, rounds of whole
                            seconds; the default when wrk is installed, except with --quick)
                            or `hyper` (an in-process client on the servers' runtime)
    --out FILE              also write the markdown report to FILE
    -h, --help              this text

Containers come from session_testcontainers: set TC_IMAGE_REDIS, TC_IMAGE_POSTGRES,
TC_IMAGE_MARIADB, TC_IMAGE_MONGO to use other images.";

/// A backend the store suite can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Memory,
    Redis,
    RedisCluster,
    Postgres,
    MariaDb,
    Sqlite,
    Mongo,
}

impl Backend {
    pub(crate) const ALL: [Self; 7] = [
        Self::Memory,
        Self::Redis,
        Self::RedisCluster,
        Self::Postgres,
        Self::MariaDb,
        Self::Sqlite,
        Self::Mongo,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::RedisCluster => "redis-cluster",
            Self::Postgres => "postgres",
            Self::MariaDb => "mariadb",
            Self::Sqlite => "sqlite",
            Self::Mongo => "mongo",
        }
    }

    fn parse(s: &str) -> Res<Self> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s || (s == "mysql" && *b == Self::MariaDb))
            .ok_or_else(|| format!("unknown backend {s:?}").into())
    }
}

/// Everything the command line says.
#[derive(Clone, Debug)]
pub(crate) struct Args {
    pub(crate) stores: bool,
    pub(crate) scaling: bool,
    pub(crate) http: bool,
    pub(crate) quick: bool,
    pub(crate) backends: Vec<Backend>,
    pub(crate) redis_url: Option<String>,
    pub(crate) redis_cluster_urls: Option<Vec<String>>,
    pub(crate) postgres_url: Option<String>,
    pub(crate) mysql_url: Option<String>,
    pub(crate) mongo_url: Option<String>,
    pub(crate) sqlite_dir: Option<String>,
    pub(crate) sessions: usize,
    pub(crate) size: usize,
    pub(crate) tasks: Vec<usize>,
    pub(crate) timing: Timing,
    pub(crate) scale_max: usize,
    pub(crate) out: Option<String>,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) roles: Vec<Role>,
    pub(crate) wrk: bool,
}

impl Args {
    pub(crate) fn wants(&self, backend: Backend) -> bool {
        self.backends.contains(&backend)
    }

    /// Parses the arguments; `Ok(None)` means help was asked for.
    pub(crate) fn parse(mut argv: impl Iterator<Item = String>) -> Res<Option<Self>> {
        let mut suites = Vec::new();
        let mut quick = false;
        let mut only: Option<Vec<Backend>> = None;
        let mut skip = Vec::new();
        let mut a = Self {
            stores: false,
            scaling: false,
            http: false,
            quick: false,
            backends: Vec::new(),
            redis_url: None,
            redis_cluster_urls: None,
            postgres_url: None,
            mysql_url: None,
            mongo_url: None,
            sqlite_dir: None,
            sessions: 0,
            size: 1024,
            tasks: Vec::new(),
            timing: Timing {
                rounds: 0,
                round: Duration::ZERO,
                warmup: Duration::ZERO,
            },
            scale_max: 0,
            out: None,
            workloads: vec![Workload::Rw, Workload::Ro, Workload::Touch],
            roles: vec![Role::Ours, Role::Floor, Role::Peer, Role::Reference],
            wrk: false,
        };
        let mut load_generator = None;
        let (mut sessions, mut tasks, mut rounds, mut round_ms, mut warmup_ms, mut scale_max) =
            (None, None, None, None, None, None);
        while let Some(arg) = argv.next() {
            let mut value = |name: &str| {
                argv.next().ok_or_else(|| -> crate::harness::BoxError {
                    format!("{name} needs a value").into()
                })
            };
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "stores" | "scaling" | "http" | "all" => suites.push(arg),
                "--quick" => quick = true,
                "--backends" => only = Some(list(&value("--backends")?, Backend::parse)?),
                "--skip" => skip.extend(list(&value("--skip")?, Backend::parse)?),
                "--redis-url" => a.redis_url = Some(value("--redis-url")?),
                "--redis-cluster-urls" => {
                    a.redis_cluster_urls =
                        Some(list(&value("--redis-cluster-urls")?, |s| Ok(s.to_owned()))?);
                }
                "--postgres-url" => a.postgres_url = Some(value("--postgres-url")?),
                "--mysql-url" => a.mysql_url = Some(value("--mysql-url")?),
                "--mongo-url" => a.mongo_url = Some(value("--mongo-url")?),
                "--sqlite-dir" => a.sqlite_dir = Some(value("--sqlite-dir")?),
                "--sessions" => sessions = Some(number(&value("--sessions")?)?),
                "--size" => a.size = number(&value("--size")?)?,
                "--tasks" => tasks = Some(list(&value("--tasks")?, number)?),
                "--rounds" => rounds = Some(number(&value("--rounds")?)?),
                "--round-ms" => round_ms = Some(number(&value("--round-ms")?)?),
                "--warmup-ms" => warmup_ms = Some(number(&value("--warmup-ms")?)?),
                "--scale-max" => scale_max = Some(number(&value("--scale-max")?)?),
                "--out" => a.out = Some(value("--out")?),
                "--load-generator" => {
                    load_generator = Some(match value("--load-generator")?.as_str() {
                        "wrk" => true,
                        "hyper" => false,
                        other => return Err(format!("unknown load generator {other:?}").into()),
                    });
                }
                "--workloads" => a.workloads = list(&value("--workloads")?, workload)?,
                "--contenders" => a.roles = list(&value("--contenders")?, role)?,
                other => return Err(format!("unknown argument {other:?} (see --help)").into()),
            }
        }
        if suites.is_empty() {
            suites.push("stores".to_owned());
        }
        let all = suites.iter().any(|s| s == "all");
        a.stores = all || suites.iter().any(|s| s == "stores");
        a.scaling = all || suites.iter().any(|s| s == "scaling");
        a.http = all || suites.iter().any(|s| s == "http");
        a.quick = quick;
        a.wrk = load_generator.unwrap_or_else(|| !quick && wrk_installed());
        a.backends = only
            .unwrap_or_else(|| Backend::ALL.to_vec())
            .into_iter()
            .filter(|b| !skip.contains(b))
            .collect();
        a.sessions = sessions.unwrap_or(if quick { 1_000 } else { 10_000 });
        a.tasks = tasks.unwrap_or_else(|| if quick { vec![1, 16] } else { vec![1, 16, 64] });
        a.timing = Timing {
            rounds: rounds.unwrap_or(if quick { 2 } else { 10 }),
            round: Duration::from_millis(round_ms.unwrap_or(if quick { 100 } else { 400 }) as u64),
            warmup: Duration::from_millis(warmup_ms.unwrap_or(if quick { 50 } else { 300 }) as u64),
        };
        a.scale_max = scale_max.unwrap_or(if quick { 10_000 } else { 1_000_000 });
        if a.timing.rounds == 0 || a.tasks.is_empty() || a.tasks.contains(&0) {
            return Err("--rounds and every --tasks value must be at least 1".into());
        }
        Ok(Some(a))
    }
}

fn wrk_installed() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

fn workload(s: &str) -> Res<Workload> {
    match s {
        "rw" => Ok(Workload::Rw),
        "ro" => Ok(Workload::Ro),
        "touch" => Ok(Workload::Touch),
        _ => Err(format!("unknown workload {s:?} (rw, ro, touch)").into()),
    }
}

fn role(s: &str) -> Res<Role> {
    match s {
        "ours" => Ok(Role::Ours),
        "floor" => Ok(Role::Floor),
        "peer" | "tower-sessions" => Ok(Role::Peer),
        "reference" => Ok(Role::Reference),
        _ => Err(format!("unknown contender {s:?} (ours, floor, peer, reference)").into()),
    }
}

fn number(s: &str) -> Res<usize> {
    s.replace('_', "")
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}").into())
}

fn list<T>(s: &str, each: impl Fn(&str) -> Res<T>) -> Res<Vec<T>> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(each)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Res<Option<Args>> {
        Args::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn quick_mode_shrinks_everything_and_uses_the_in_process_client() {
        let a = parse(&["all", "--quick", "--skip", "mongo,sqlite"])
            .expect("valid")
            .expect("not help");
        assert!(a.stores && a.scaling && a.http && a.quick && !a.wrk);
        assert_eq!(a.sessions, 1_000);
        assert_eq!(a.tasks, vec![1, 16]);
        assert!(!a.wants(Backend::Mongo) && !a.wants(Backend::Sqlite));
        assert!(a.wants(Backend::RedisCluster));
    }

    #[test]
    fn defaults_and_mistakes() {
        let a = parse(&["--load-generator", "hyper"])
            .expect("valid")
            .expect("not help");
        assert!(a.stores && !a.scaling && !a.http);
        assert_eq!((a.sessions, a.timing.rounds), (10_000, 10));
        assert!(parse(&["--backends", "oracle"]).is_err());
        assert!(parse(&["--tasks", "0"]).is_err());
        assert!(parse(&["--sessions"]).is_err());
        assert!(parse(&["--help"]).expect("valid").is_none());
    }
}
