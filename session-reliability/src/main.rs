//! `cargo run --release -p session-reliability -- --help`.

use std::process::ExitCode;

use clap::Parser as _;
use session_reliability::args::Args;
use session_reliability::checks;

#[tokio::main]
async fn main() -> ExitCode {
    // The app's own logs (a store failure is logged at `error`) only when asked for: during a
    // fault there are thousands.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    checks::count_panics();
    let args = Args::parse();
    let plan = args.plan();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = match session_reliability::run(&plan, command).await {
        Ok(report) => report,
        Err(message) => {
            eprintln!("session-reliability: {message}");
            return ExitCode::FAILURE;
        }
    };
    let violations = checks::violations(&report);
    let text = report.markdown(&violations);
    println!("{text}");
    if let Some(path) = &args.out
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("session-reliability: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        for v in &violations {
            eprintln!("session-reliability: FAILED: {v}");
        }
        ExitCode::FAILURE
    }
}
