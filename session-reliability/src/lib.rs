#![doc = include_str!("../README.md")]

pub mod app;
pub mod args;
pub mod backend;
pub mod checks;
pub mod client;
pub mod faults;
pub mod load;
pub mod one_session;
pub mod report;

use args::{Plan, Scenario};
use report::{Meta, Report};

/// Runs `plan`, backend after backend (one server at a time), and returns what it measured.
/// `command` is the command line, for the report. Progress goes to stderr.
///
/// # Errors
///
/// When a backend cannot be opened or driven at all; figures that fail their checks are not
/// errors (see [`checks::violations`]).
pub async fn run(plan: &Plan, command: String) -> Result<Report, String> {
    let mut report = Report {
        meta: Meta {
            command,
            date: now(),
            machine: machine(),
            load_before: load_average(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            plan: plan.describe(),
            ..Meta::default()
        },
        ..Report::default()
    };
    for &backend in &plan.backends {
        eprintln!("session-reliability: starting {backend}");
        let running = backend.start().await?;
        for scenario in &plan.scenarios {
            match scenario {
                Scenario::Faults => {
                    for fault in plan.faults_of(backend) {
                        eprintln!("session-reliability: {backend}: {fault} under load");
                        let mut figures = faults::run(&running, fault, plan.fault).await?;
                        figures.command = plan.reproduce(*scenario, backend, Some(fault));
                        eprintln!("  {}", figures.summary());
                        report.faults.push(figures);
                    }
                }
                Scenario::Load => {
                    eprintln!(
                        "session-reliability: {backend}: {} clients x {} requests",
                        plan.load_clients, plan.load_requests
                    );
                    let mut figures =
                        load::run(&running, plan.load_clients, plan.load_requests).await?;
                    figures.command = plan.reproduce(*scenario, backend, None);
                    eprintln!("  {}", figures.summary());
                    report.loads.push(figures);
                }
                Scenario::OneSession => {
                    eprintln!(
                        "session-reliability: {backend}: {} requests at once on one session",
                        plan.concurrent
                    );
                    let mut figures = one_session::run(&running, plan.concurrent).await?;
                    figures.command = plan.reproduce(*scenario, backend, None);
                    eprintln!("  {}", figures.summary());
                    report.one_session.push(figures);
                }
            }
        }
    }
    report.meta.load_after = load_average();
    Ok(report)
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// CPUs and their model, from `/proc/cpuinfo` where there is one.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cpus} CPUs, {model}")
}

/// The 1, 5 and 15 minute load averages, from `/proc/loadavg` where there is one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}
