//! The command line, and the plan it stands for.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::backend::{Backend, Fault};
use crate::faults::FaultPlan;

/// The parts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Faults under load: the backend paused, stopped, killed, failed over or locked while
    /// clients drive the app.
    Faults,
    /// Many clients at once, each checking its own values.
    Load,
    /// Concurrent requests on one session over two app servers.
    OneSession,
}

/// Reliability, measured: the Express tutorial's app on each durable store, under backend
/// faults, many clients and concurrent requests on one session. Exits with 1 when a figure
/// that must be 0 is not, or a client was not served again within 5 s of the backend's return.
#[derive(Debug, Clone, Parser)]
#[command(name = "session-reliability", version)]
pub struct Args {
    /// The parts to run (default: all).
    #[arg(value_enum)]
    pub scenarios: Vec<Scenario>,

    /// Backends to run on, comma-separated (default: every durable one; `memory` only on
    /// request, and it suffers no faults).
    #[arg(long = "backend", value_enum, value_delimiter = ',')]
    pub backends: Vec<Backend>,

    /// Faults to inject, comma-separated (default: every fault each backend can suffer).
    #[arg(long = "fault", value_enum, value_delimiter = ',')]
    pub faults: Vec<Fault>,

    /// The short version for CI (seconds per fault, fewer clients); the options below still
    /// override it.
    #[arg(long)]
    pub quick: bool,

    /// Concurrent clients during faults [default: 64; quick: 16].
    #[arg(long)]
    pub clients: Option<usize>,

    /// Seconds of load before each fault [default: 5; quick: 0.5].
    #[arg(long)]
    pub warmup: Option<f64>,

    /// Seconds a backend stays down (paused, stopped, killed, locked) [default: 10; quick: 2].
    #[arg(long)]
    pub outage: Option<f64>,

    /// Seconds of load after every client was served again [default: 5; quick: 0.5].
    #[arg(long)]
    pub tail: Option<f64>,

    /// Seconds after the backend's return to wait at most for every client to be served
    /// again [default: 30; quick: 10].
    #[arg(long)]
    pub give_up: Option<f64>,

    /// Clients in the load part [default: 1000; quick: 20].
    #[arg(long)]
    pub load_clients: Option<usize>,

    /// Requests per client in the load part [default: 100; quick: 10].
    #[arg(long)]
    pub load_requests: Option<usize>,

    /// Requests at once on one session [default: 100; quick: 10].
    #[arg(long)]
    pub concurrent: Option<usize>,

    /// Also write the Markdown report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Everything a run does, with the defaults filled in.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The parts to run.
    pub scenarios: Vec<Scenario>,
    /// The backends, in order.
    pub backends: Vec<Backend>,
    /// The faults to inject where they apply.
    pub faults: Vec<Fault>,
    /// Timing of each fault run.
    pub fault: FaultPlan,
    /// Clients in the load part.
    pub load_clients: usize,
    /// Requests per client in the load part.
    pub load_requests: usize,
    /// Requests at once on one session.
    pub concurrent: usize,
    /// The options given besides the scenarios, backends, faults and output file, as typed:
    /// with a scenario, a backend and a fault they reproduce one row of the report.
    pub options: Vec<String>,
}

fn secs(value: Option<f64>, full: f64, quick: f64, is_quick: bool) -> Duration {
    let chosen = value.unwrap_or(if is_quick { quick } else { full });
    Duration::try_from_secs_f64(chosen).unwrap_or(Duration::ZERO)
}

impl Args {
    /// The plan these arguments stand for.
    #[must_use]
    pub fn plan(&self) -> Plan {
        let q = self.quick;
        let pick = |value: Option<usize>, full: usize, quick: usize| {
            value.unwrap_or(if q { quick } else { full })
        };
        Plan {
            scenarios: if self.scenarios.is_empty() {
                vec![Scenario::Faults, Scenario::Load, Scenario::OneSession]
            } else {
                self.scenarios.clone()
            },
            backends: if self.backends.is_empty() {
                Backend::DURABLE.to_vec()
            } else {
                self.backends.clone()
            },
            faults: self.faults.clone(),
            fault: FaultPlan {
                clients: pick(self.clients, 64, 16),
                warmup: secs(self.warmup, 5.0, 0.5, q),
                outage: secs(self.outage, 10.0, 2.0, q),
                tail: secs(self.tail, 5.0, 0.5, q),
                give_up: secs(self.give_up, 30.0, 10.0, q),
            },
            load_clients: pick(self.load_clients, 1000, 20),
            load_requests: pick(self.load_requests, 100, 10),
            concurrent: pick(self.concurrent, 100, 10),
            options: self.options(),
        }
    }

    fn options(&self) -> Vec<String> {
        let mut options = Vec::new();
        if self.quick {
            options.push("--quick".to_owned());
        }
        let mut add = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                options.push(format!("--{name} {value}"));
            }
        };
        add("clients", self.clients.map(|v| v.to_string()));
        add("warmup", self.warmup.map(|v| v.to_string()));
        add("outage", self.outage.map(|v| v.to_string()));
        add("tail", self.tail.map(|v| v.to_string()));
        add("give-up", self.give_up.map(|v| v.to_string()));
        add("load-clients", self.load_clients.map(|v| v.to_string()));
        add("load-requests", self.load_requests.map(|v| v.to_string()));
        add("concurrent", self.concurrent.map(|v| v.to_string()));
        options
    }
}

/// The command-line name of a value (`redis-aof`, `one-session`, ...).
fn arg_name(value: &impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

impl Plan {
    /// The faults to inject into `backend`.
    #[must_use]
    pub fn faults_of(&self, backend: Backend) -> Vec<Fault> {
        backend
            .faults()
            .iter()
            .copied()
            .filter(|f| self.faults.is_empty() || self.faults.contains(f))
            .collect()
    }

    /// The command that runs `scenario` on `backend` alone (and only `fault`, if given) with
    /// this plan's options: one row of the report.
    #[must_use]
    pub fn reproduce(&self, scenario: Scenario, backend: Backend, fault: Option<Fault>) -> String {
        let mut command = format!(
            "cargo run --release -p session-reliability -- {} --backend {}",
            arg_name(&scenario),
            arg_name(&backend)
        );
        if let Some(fault) = fault {
            command.push_str(&format!(" --fault {}", arg_name(&fault)));
        }
        for option in &self.options {
            command.push(' ');
            command.push_str(option);
        }
        command
    }

    /// The plan in words, for the report.
    #[must_use]
    pub fn describe(&self) -> String {
        let f = &self.fault;
        format!(
            "faults: {} clients, {} s of load, then the fault ({} s down), then load until \
             every client is served again (at most {} s) and {} s more; load: {} clients \
             x {} requests; one session: {} requests at once over two app servers",
            f.clients,
            f.warmup.as_secs_f64(),
            f.outage.as_secs_f64(),
            f.give_up.as_secs_f64(),
            f.tail.as_secs_f64(),
            self.load_clients,
            self.load_requests,
            self.concurrent,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("session-reliability").chain(args.iter().copied()))
            .expect("valid arguments")
    }

    #[test]
    fn defaults_are_the_full_run_on_every_durable_backend() {
        let plan = parse(&[]).plan();
        assert_eq!(plan.backends, Backend::DURABLE);
        assert_eq!(plan.scenarios.len(), 3);
        assert_eq!(plan.fault.clients, 64);
        assert_eq!(plan.fault.outage, Duration::from_secs(10));
        assert_eq!((plan.load_clients, plan.load_requests), (1000, 100));
        assert_eq!(plan.concurrent, 100);
        assert_eq!(
            plan.faults_of(Backend::Postgres),
            [Fault::Pause, Fault::Stop, Fault::Kill]
        );
        assert_eq!(
            plan.faults_of(Backend::RedisCluster),
            [Fault::Pause, Fault::Failover]
        );
        assert!(plan.faults_of(Backend::Memory).is_empty());
    }

    #[test]
    fn quick_shrinks_and_options_override() {
        let plan = parse(&[
            "load",
            "--quick",
            "--backend",
            "sqlite,memory",
            "--fault",
            "kill,lock",
            "--outage",
            "3",
            "--load-clients",
            "7",
        ])
        .plan();
        assert_eq!(plan.scenarios, [Scenario::Load]);
        assert_eq!(plan.backends, [Backend::Sqlite, Backend::Memory]);
        assert_eq!(plan.fault.outage, Duration::from_secs(3));
        assert_eq!(plan.fault.warmup, Duration::from_millis(500));
        assert_eq!(plan.fault.clients, 16);
        assert_eq!((plan.load_clients, plan.load_requests), (7, 10));
        assert_eq!(plan.faults_of(Backend::Postgres), [Fault::Kill]);
        assert_eq!(plan.faults_of(Backend::Sqlite), [Fault::Lock]);
        assert_eq!(
            plan.reproduce(Scenario::Faults, Backend::RedisAof, Some(Fault::Kill)),
            "cargo run --release -p session-reliability -- faults --backend redis-aof \
             --fault kill --quick --outage 3 --load-clients 7"
        );
        assert_eq!(
            plan.reproduce(Scenario::OneSession, Backend::Sqlite, None),
            "cargo run --release -p session-reliability -- one-session --backend sqlite \
             --quick --outage 3 --load-clients 7"
        );
    }

    #[test]
    fn unknown_backends_are_refused() {
        let refused = Args::try_parse_from(["session-reliability", "--backend", "cassandra"]);
        assert!(refused.is_err());
    }
}
