//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::harness::{Role, Timing, Workload};

/// A backend the store suite can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    Memory,
    Redis,
    RedisCluster,
    Postgres,
    #[value(alias = "mysql")]
    Mariadb,
    Sqlite,
    Mongo,
}

impl Backend {
    /// Its name on the command line and in the report.
    pub(crate) fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned())
    }
}

/// A group of measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Suite {
    /// Every backend: rw / ro / touch cycles against the floor and tower-sessions.
    Stores,
    /// Memory and Redis at 10k / 100k / 1M sessions; 1 / 16 / 64 KiB sessions; the memory
    /// store's resident memory per session.
    Scaling,
    /// axum + session-tower against bare axum and axum + tower-sessions.
    Http,
    /// All three.
    All,
}

/// The HTTP suite's load generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LoadGenerator {
    /// The wrk binary (a separate process; one thread; rounds of whole seconds).
    Wrk,
    /// An in-process client on the servers' runtime.
    Hyper,
}

/// session-bench: session-rs stores and middleware against their floor and tower-sessions.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "session-bench",
    after_help = "Containers come from session_testcontainers: set TC_IMAGE_REDIS, \
                  TC_IMAGE_POSTGRES, TC_IMAGE_MARIADB, TC_IMAGE_MONGO to use other images."
)]
pub(crate) struct Args {
    /// Suites to run.
    #[arg(value_enum, default_value = "stores")]
    suites: Vec<Suite>,
    /// A few seconds per backend (for CI): 1,000 sessions, tasks 1 and 16, 2 rounds of
    /// 100 ms; the cache tier's mixed workload with 2,000 sessions, 4 loads per 100 ms;
    /// scaling at 1k / 10k sessions and 4 tasks; the in-process HTTP client.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Backends to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory,redis,redis-cluster,postgres,mariadb,sqlite,mongo"
    )]
    backends: Vec<Backend>,
    /// Backends to leave out (a backend neither skipped nor reachable is an error).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<Backend>,
    /// Use this Redis instead of starting a container.
    #[arg(long)]
    pub(crate) redis_url: Option<String>,
    /// Node URLs of a running Redis Cluster.
    #[arg(long, value_delimiter = ',')]
    pub(crate) redis_cluster_urls: Option<Vec<String>>,
    /// Use this PostgreSQL instead of starting a container.
    #[arg(long)]
    pub(crate) postgres_url: Option<String>,
    /// Use this MariaDB/MySQL instead of starting a container.
    #[arg(long)]
    pub(crate) mysql_url: Option<String>,
    /// Use this MongoDB instead of starting a container.
    #[arg(long)]
    pub(crate) mongo_url: Option<String>,
    /// Where the SQLite files go (default: a fresh temporary directory).
    #[arg(long)]
    pub(crate) sqlite_dir: Option<PathBuf>,
    /// Prepared sessions per contender.
    #[arg(
        long,
        default_value_t = 10_000,
        default_value_if("quick", "true", "1000")
    )]
    pub(crate) sessions: usize,
    /// Encoded size of a session in bytes.
    #[arg(long, default_value_t = 1024)]
    pub(crate) size: usize,
    /// Concurrencies (tasks, or HTTP connections).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..),
          default_value = "1,16,64", default_value_if("quick", "true", "1,16"))]
    tasks: Vec<u16>,
    /// Interleaved rounds.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..),
          default_value_t = 10, default_value_if("quick", "true", "2"))]
    rounds: u16,
    /// Length of one contender's run in a round, in milliseconds.
    #[arg(long, default_value_t = 400, default_value_if("quick", "true", "100"))]
    round_ms: u64,
    /// Warm-up run per contender before the rounds, in milliseconds.
    #[arg(long, default_value_t = 300, default_value_if("quick", "true", "50"))]
    warmup_ms: u64,
    /// Store workloads to run: rw, ro and touch for every contender; hit, miss and mixed for
    /// the cache tier against the store it fronts.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rw,ro,touch,hit,miss,mixed"
    )]
    pub(crate) workloads: Vec<Workload>,
    /// Contenders to run (`ours` alone is the way to profile a store with perf): peer is
    /// tower-sessions or axum without sessions; reference the SQL and MongoDB floors without
    /// their expiry index; cached, hashed and express our store behind the cache tier, behind
    /// hashed ids and in its Express-compatible layout (each against ours).
    #[arg(
        long = "contenders",
        value_delimiter = ',',
        default_value = "ours,floor,peer,reference,cached,hashed,express"
    )]
    pub(crate) roles: Vec<Role>,
    /// Staleness bounds of the cache tier in the mixed workload, in milliseconds.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..),
          default_value = "1000,100", default_value_if("quick", "true", "100"))]
    staleness_ms: Vec<u64>,
    /// Loads of each session per staleness bound in the mixed workload.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..),
          default_value = "1,4,16", default_value_if("quick", "true", "4"))]
    pub(crate) reads_per_bound: Vec<u32>,
    /// Prepared sessions per contender of the mixed workload, of which each task keeps as many
    /// in its rhythm as the contender can serve.
    #[arg(
        long,
        default_value_t = 100_000,
        default_value_if("quick", "true", "2000")
    )]
    pub(crate) mixed_sessions: usize,
    /// Largest session count of the scaling run.
    #[arg(
        long,
        default_value_t = 1_000_000,
        default_value_if("quick", "true", "10000")
    )]
    pub(crate) scale_max: usize,
    /// The HTTP suite's load generator (default: wrk when installed, except with --quick).
    #[arg(long)]
    load_generator: Option<LoadGenerator>,
    /// Also write the markdown report to this file.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

impl Args {
    /// Parses the command line, exiting with clap's message and status on a mistake or on
    /// `--help`.
    pub(crate) fn from_command_line() -> Self {
        Self::parse().resolved()
    }

    /// Settles what depends on the machine: the load generator.
    fn resolved(mut self) -> Self {
        if self.load_generator.is_none() {
            self.load_generator = Some(if !self.quick && wrk_installed() {
                LoadGenerator::Wrk
            } else {
                LoadGenerator::Hyper
            });
        }
        self
    }

    pub(crate) fn runs(&self, suite: Suite) -> bool {
        self.suites.iter().any(|&s| s == suite || s == Suite::All)
    }

    /// The selected backends, in the order of `--backends`, less `--skip`.
    pub(crate) fn backends(&self) -> Vec<Backend> {
        let mut out: Vec<Backend> = Vec::new();
        for &b in &self.backends {
            if !self.skip.contains(&b) && !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }

    pub(crate) fn wants(&self, backend: Backend) -> bool {
        self.backends().contains(&backend)
    }

    pub(crate) fn tasks(&self) -> Vec<usize> {
        self.tasks.iter().map(|&t| usize::from(t)).collect()
    }

    pub(crate) fn timing(&self) -> Timing {
        Timing {
            rounds: usize::from(self.rounds),
            round: Duration::from_millis(self.round_ms),
            warmup: Duration::from_millis(self.warmup_ms),
        }
    }

    /// The staleness bounds of the mixed workload.
    pub(crate) fn staleness(&self) -> Vec<Duration> {
        self.staleness_ms
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect()
    }

    pub(crate) fn wrk(&self) -> bool {
        self.load_generator == Some(LoadGenerator::Wrk)
    }
}

fn wrk_installed() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("session-bench").chain(args.iter().copied()))
            .map(Args::resolved)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn quick_mode_shrinks_everything_and_uses_the_in_process_client() {
        let a = parse(&[
            "stores",
            "http",
            "--quick",
            "--out",
            "q.md",
            "--skip",
            "mongo,sqlite",
        ])
        .expect("valid");
        assert!(a.runs(Suite::Stores) && a.runs(Suite::Http) && !a.runs(Suite::Scaling));
        assert!(a.quick && !a.wrk());
        assert_eq!((a.sessions, a.scale_max), (1_000, 10_000));
        assert_eq!(a.tasks(), vec![1, 16]);
        assert_eq!(a.timing().rounds, 2);
        assert_eq!(a.timing().round, Duration::from_millis(100));
        assert!(!a.wants(Backend::Mongo) && !a.wants(Backend::Sqlite));
        assert!(a.wants(Backend::RedisCluster));
        assert_eq!(a.out, Some(PathBuf::from("q.md")));
        assert_eq!(a.staleness(), vec![Duration::from_millis(100)]);
        assert_eq!((a.reads_per_bound, a.mixed_sessions), (vec![4], 2_000));
    }

    #[test]
    fn defaults_aliases_and_explicit_values() {
        let a = parse(&["--load-generator", "hyper"]).expect("valid");
        assert!(a.runs(Suite::Stores) && !a.runs(Suite::Scaling) && !a.runs(Suite::Http));
        assert_eq!((a.sessions, a.timing().rounds), (10_000, 10));
        assert_eq!(a.tasks(), vec![1, 16, 64]);
        assert_eq!(a.backends().len(), 7);
        assert_eq!(a.workloads[..3], Workload::STORE);
        assert_eq!(
            a.workloads[3..],
            [Workload::Hit, Workload::Miss, Workload::Mixed]
        );
        assert_eq!(a.roles.len(), 7);
        assert_eq!(a.staleness(), [1000, 100].map(Duration::from_millis));
        assert_eq!(
            (a.reads_per_bound, a.mixed_sessions),
            (vec![1, 4, 16], 100_000)
        );
        let a = parse(&[
            "all",
            "--quick",
            "--tasks",
            "4",
            "--backends",
            "mysql",
            "--contenders",
            "ours,tower-sessions,hashed",
            "--workloads",
            "rw,mixed",
            "--staleness-ms",
            "250",
            "--reads-per-bound",
            "8",
        ])
        .expect("valid");
        assert!(a.runs(Suite::Scaling) && a.runs(Suite::Http));
        assert_eq!((a.tasks(), a.backends()), (vec![4], vec![Backend::Mariadb]));
        assert_eq!(a.roles, [Role::Ours, Role::Peer, Role::Hashed]);
        assert_eq!(a.workloads, [Workload::Rw, Workload::Mixed]);
        assert_eq!(a.staleness(), [Duration::from_millis(250)]);
        assert_eq!(a.reads_per_bound, [8]);
    }

    #[test]
    fn mistakes_are_refused() {
        for wrong in [
            &["--backends", "oracle"][..],
            &["--tasks", "0"],
            &["--rounds", "0"],
            &["--sessions"],
            &["--workloads", "read handler"],
            &["--staleness-ms", "0"],
            &["--reads-per-bound", "0"],
            &["everything"],
        ] {
            assert!(parse(wrong).is_err(), "{wrong:?} was accepted");
        }
    }
}
