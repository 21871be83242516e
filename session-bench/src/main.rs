//! Benchmarks of the session-rs stores and middleware: each store against the raw driver moving
//! the same bytes (the floor) and against tower-sessions, the middleware against bare axum, and
//! scaling with session count and size. See `BENCHMARKS.md` at the workspace root, or run with
//! `--help`.

mod args;
mod cpu;
mod harness;
mod http;
mod numbers;
mod payload;
mod report;
mod scaling;
mod servers;
mod stores;
mod subjects;
mod targets;
mod tiers;

use std::process::ExitCode;

use args::{Args, Suite};
use harness::Res;
use report::Report;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(scaling::RSS_PROBE) {
        let parsed = (
            argv.get(1).and_then(|s| s.parse().ok()),
            argv.get(2).and_then(|s| s.parse().ok()),
            argv.get(3),
        );
        let (Some(n), Some(size), Some(subject)) = parsed else {
            eprintln!(
                "usage: session-bench {} SESSIONS SIZE {}|{}",
                scaling::RSS_PROBE,
                scaling::PROBE_OURS,
                scaling::PROBE_FLOOR
            );
            return ExitCode::from(2);
        };
        return block_on(scaling::probe(n, size, subject));
    }
    let args = Args::from_command_line();
    block_on(run(&args))
}

/// Runs `future` on a multi-threaded runtime; an error is printed with its causes.
fn block_on(future: impl Future<Output = Res>) -> ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(harness::BoxError::from)
        .and_then(|rt| rt.block_on(future));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", harness::context("session-bench failed", &e));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Res {
    let mut report = Report::default();
    report.text(&format!(
        "# session-bench results\n\nThe whole report of one run; `BENCHMARKS.md` at the \
         workspace root states the targets and the method.\n\n{}\n",
        machine_description(args)
    ));
    let mut servers = servers::Servers::default();
    if args.runs(Suite::Stores) {
        stores::run(args, &mut servers, &mut report).await?;
    }
    if args.runs(Suite::Scaling) {
        scaling::run(args, &mut servers, &mut report).await?;
    }
    if args.runs(Suite::Http) {
        http::run(args, &mut servers, &mut report).await?;
    }
    let markdown = report.finish();
    if let Some(path) = &args.out {
        std::fs::write(path, markdown)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Date, cores, CPU model, memory and build, as the report needs them.
fn machine_description(args: &Args) -> String {
    // The value of the first `key: value` line of a /proc file.
    let field = |file: &str, key: &str| {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines()
            .find_map(|l| Some(l.strip_prefix(key)?.split(':').nth(1)?.trim().to_owned()))
    };
    let model = field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
    let memory = field("/proc/meminfo", "MemTotal")
        .and_then(|kb| kb.trim_end_matches(" kB").parse::<f64>().ok())
        .map_or_else(
            || "unknown".into(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let now = time::OffsetDateTime::now_utc();
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!(
        "Run on {} {:02}:{:02} UTC: {cores} cores ({model}), {memory} of memory, {build} build, \
         one tokio multi-threaded runtime with {cores} workers running the contenders and (for \
         HTTP) the servers{}{}.",
        now.date(),
        now.hour(),
        now.minute(),
        if args.wrk() {
            ""
        } else {
            " and the in-process client"
        },
        if args.quick { "; quick mode" } else { "" },
    )
}
