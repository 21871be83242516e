//! Benchmarks of the session-rs stores and middleware: each store against the raw driver moving
//! the same bytes (the floor) and against tower-sessions, the middleware against bare axum, and
//! scaling with session count and size. See `BENCHMARKS.md` at the workspace root, or run with
//! `--help`.

mod args;
mod harness;
mod http;
mod payload;
mod report;
mod scaling;
mod servers;
mod stores;
mod subjects;

use std::process::ExitCode;

use args::Args;
use report::Report;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(scaling::RSS_PROBE) {
        return probe(&argv[1..]);
    }
    let args = match Args::parse(argv.into_iter()) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("session-bench: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("session-bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("session-bench failed: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                msg.push_str(&format!("\n  caused by: {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

/// The child process of the resident-memory measurement.
fn probe(argv: &[String]) -> ExitCode {
    let parsed = (
        argv.first().and_then(|s| s.parse().ok()),
        argv.get(1).and_then(|s| s.parse().ok()),
    );
    let (Some(n), Some(size)) = parsed else {
        eprintln!("usage: session-bench {} SESSIONS SIZE", scaling::RSS_PROBE);
        return ExitCode::from(2);
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(harness::BoxError::from)
        .and_then(|rt| rt.block_on(scaling::probe(n, size)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> harness::Res {
    let mut report = Report::default();
    report.text(&format!(
        "# session-bench results\n\n{}\n",
        machine_description()
    ));
    let mut servers = servers::Servers::default();
    if args.stores {
        stores::run(args, &mut servers, &mut report).await?;
    }
    if args.scaling {
        scaling::run(args, &mut servers, &mut report).await?;
    }
    if args.http {
        http::run(args, &mut servers, &mut report).await?;
    }
    let markdown = report.finish();
    if let Some(path) = &args.out {
        std::fs::write(path, markdown).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

/// Date, cores, CPU model and memory, as the report needs them.
fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or_else(
            || "unknown".to_owned(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "Run on {date} (UTC): {cores} cores ({model}), {mem_gib} of memory, release build, \
         one tokio multi-threaded runtime with {cores} workers running both the contenders \
         and (for HTTP) the load generator."
    )
}
