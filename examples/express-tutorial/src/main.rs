//! The Express session tutorial's app, in Rust, on session-tower.
//!
//! Run it from the repository root:
//!
//! ```sh
//! cargo run -p express-tutorial                      # sessions in ./express-tutorial.db (SQLite)
//! cargo run -p express-tutorial -- --store memory    # or redis://127.0.0.1:6379, postgres://...,
//!                                                    # mysql://..., mongodb://...
//! ```
//!
//! then open <http://127.0.0.1:3000/> and log in as `JohnDoe` / `tutorial`, or use curl:
//!
//! ```sh
//! curl -c jar -b jar http://127.0.0.1:3000/set-session
//! curl -c jar -b jar http://127.0.0.1:3000/get-session
//! curl -c jar -b jar -H 'content-type: application/json' \
//!      -d '{"username":"JohnDoe","password":"tutorial"}' http://127.0.0.1:3000/login
//! curl -c jar -b jar http://127.0.0.1:3000/clear-session
//! ```
//!
//! Options (each also read from the environment):
//!
//! - `--store URL` / `SESSION_STORE`: where sessions live (default `sqlite://express-tutorial.db`,
//!   so they survive a restart).
//! - `--listen ADDR` / `LISTEN_ADDR`: default `127.0.0.1:3000`. On a non-loopback address the
//!   cookie is `Secure` and needs HTTPS in front.
//! - `--key-file PATH` / `SESSION_KEY_FILE`: the cookie signing key, created with random bytes
//!   if missing (default `express-tutorial.key`); or `SESSION_KEY` with the key itself (32+ bytes).
//!
//! Logs go to stderr (`RUST_LOG=debug` for more); the address it listens on goes to stdout.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use express_tutorial::{DEFAULT_STORE, load_or_create_key, open_store, router, session_layer};

struct Options {
    store: String,
    listen: SocketAddr,
    key: Key,
}

enum Key {
    Value(Vec<u8>),
    File(PathBuf),
}

const USAGE: &str = "usage: express-tutorial [--store URL] [--listen ADDR] [--key-file PATH]";

fn options() -> Result<Options, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut store = env("SESSION_STORE").unwrap_or_else(|| DEFAULT_STORE.to_owned());
    let mut listen = env("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let mut key = match (env("SESSION_KEY"), env("SESSION_KEY_FILE")) {
        (Some(key), _) => Key::Value(key.into_bytes()),
        (None, file) => Key::File(
            file.unwrap_or_else(|| "express-tutorial.key".to_owned())
                .into(),
        ),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--store" => store = value()?,
            "--listen" => listen = value()?,
            "--key-file" => key = Key::File(value()?.into()),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let listen = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?} is not an address like 127.0.0.1:3000: {e}"))?;
    Ok(Options { store, listen, key })
}

/// The URL with any password replaced by `***`, fit for logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials
                .split_once(':')
                .map_or(credentials, |(user, _)| user);
            let hidden = if credentials.contains(':') {
                ":***"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// An error and its causes on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("express-tutorial: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let options = options()?;
    let key = match options.key {
        Key::Value(key) => key,
        Key::File(path) => load_or_create_key(&path)
            .map_err(|e| format!("signing key file {}: {}", path.display(), chain(&e)))?,
    };
    let shown = redact(&options.store);
    let opened = open_store(&options.store)
        .await
        .map_err(|e| format!("session store {shown}: {}", chain(&e)))?;
    let layer = session_layer(opened.store, &key, options.listen).map_err(|e| chain(&e))?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {}", options.listen, chain(&e)))?;
    let address = listener.local_addr().map_err(|e| chain(&e))?;
    tracing::info!("sessions stored in {shown}");
    // Tests and scripts read this line to learn the port (with --listen 127.0.0.1:0).
    println!("listening on http://{address}");
    let _ = std::io::stdout().flush();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, router(layer))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| chain(&e))?;
    drop(opened.cleanup);
    Ok(())
}
