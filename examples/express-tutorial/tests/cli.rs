//! The command line and environment, through the real binary.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};

/// Every variable the app reads; removed from each test's environment so that the machine's
/// own settings cannot change the outcome.
const VARIABLES: [&str; 8] = [
    "SESSION_STORE",
    "LISTEN_ADDR",
    "SESSION_KEY_FILE",
    "SESSION_KEY",
    "DEMO_USERNAME",
    "DEMO_PASSWORD",
    "EXPRESS_COMPATIBLE",
    "SESSION_SECRETS",
];

/// A running app, killed when dropped.
struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a run of the binary went.
enum Outcome {
    /// It listens at this URL.
    Listening(Running),
    /// It exited with this code and stderr.
    Exited(i32, String),
}

/// Runs the binary in `dir` with `args` and `env` (and none of the app's other variables).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut command = Command::new(env!("CARGO_BIN_EXE_express-tutorial"));
    command
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("the express-tutorial binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_default();
    if let Some(url) = line.trim().strip_prefix("listening on ") {
        return Outcome::Listening(Running {
            url: url.to_owned(),
            child,
        });
    }
    let _ = child.kill();
    let status = child.wait().expect("the app ends");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    Outcome::Exited(status.code().unwrap_or(-1), format!("{line}{stderr}"))
}

fn listening(outcome: Outcome) -> Running {
    match outcome {
        Outcome::Listening(running) => running,
        Outcome::Exited(code, output) => panic!("the app exited ({code}): {output}"),
    }
}

fn exited(outcome: Outcome) -> (i32, String) {
    match outcome {
        Outcome::Listening(running) => panic!("the app is listening at {}", running.url),
        Outcome::Exited(code, output) => (code, output),
    }
}

/// The options every started app gets: a free port and a store that leaves nothing behind.
const QUIET: [&str; 4] = ["--listen", "127.0.0.1:0", "--store", "memory"];

#[test]
fn help_lists_every_option_with_its_environment_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_express-tutorial"))
        .arg("--help")
        .current_dir(dir.path())
        .env(
            "SESSION_KEY",
            "a secret key that must never be shown anywhere",
        )
        .env("DEMO_PASSWORD", "a secret password")
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8(output.stdout).expect("utf-8");
    assert!(help.contains("Usage: express-tutorial [OPTIONS]"), "{help}");
    for (option, variable) in [
        ("--store <URL>", "SESSION_STORE"),
        ("--listen <ADDR>", "LISTEN_ADDR"),
        ("--key-file <PATH>", "SESSION_KEY_FILE"),
        ("--key <KEY>", "SESSION_KEY"),
        ("--demo-username <NAME>", "DEMO_USERNAME"),
        ("--demo-password <PASSWORD>", "DEMO_PASSWORD"),
        ("--express", "EXPRESS_COMPATIBLE"),
        ("--secret <SECRET>", "SESSION_SECRETS"),
    ] {
        assert!(help.contains(option), "{option} missing: {help}");
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} missing: {help}"
        );
    }
    assert!(
        help.contains("[default: sqlite://express-tutorial.db]"),
        "{help}"
    );
    assert!(help.contains("[default: 127.0.0.1:3000]"), "{help}");
    assert!(!help.contains("never be shown"), "the key is shown: {help}");
    assert!(
        !help.contains("a secret password"),
        "the password is shown: {help}"
    );
}

#[test]
fn unknown_option_is_refused_with_the_usage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, output) = exited(run(dir.path(), &["--stor", "memory"], &[]));
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("unexpected argument '--stor'"), "{output}");
    assert!(output.contains("Usage: express-tutorial"), "{output}");
}

#[test]
fn listen_that_is_not_an_address_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, output) = exited(run(dir.path(), &["--listen", "localhost"], &[]));
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("invalid value 'localhost' for '--listen <ADDR>'"),
        "{output}"
    );
    let (code, output) = exited(run(dir.path(), &[], &[("LISTEN_ADDR", "nowhere")]));
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("invalid value 'nowhere'"), "{output}");
}

#[test]
fn listen_addr_from_the_environment_is_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = listening(run(
        dir.path(),
        &["--store", "memory"],
        &[("LISTEN_ADDR", "127.0.0.1:0")],
    ));
    assert!(
        running.url.starts_with("http://127.0.0.1:"),
        "{}",
        running.url
    );
}

#[test]
fn session_store_from_the_environment_is_used_and_the_option_overrides_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let unknown = [("SESSION_STORE", "cassandra://app:s3cret@127.0.0.1")];
    let (code, output) = exited(run(dir.path(), &["--listen", "127.0.0.1:0"], &unknown));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("unknown session store URL"), "{output}");
    assert!(
        !output.contains("s3cret"),
        "the password is shown: {output}"
    );
    listening(run(dir.path(), &QUIET, &unknown));
}

#[test]
fn default_store_is_an_sqlite_file_in_the_working_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Empty variables count as unset.
    let running = listening(run(
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[("SESSION_STORE", "")],
    ));
    assert!(
        dir.path().join("express-tutorial.db").exists(),
        "no express-tutorial.db in the working directory"
    );
    assert!(
        dir.path().join("express-tutorial.key").exists(),
        "no key file"
    );
    drop(running);
}

#[test]
fn signing_key_sources_in_order_of_precedence() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A key too short to be used tells which source the app took.
    let short = ("SESSION_KEY", "short");
    let (code, output) = exited(run(dir.path(), &QUIET, &[short]));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("signing key 0 is 5 bytes long"),
        "SESSION_KEY used: {output}"
    );
    assert!(
        !dir.path().join("express-tutorial.key").exists(),
        "no file made"
    );

    let (code, output) = exited(run(
        dir.path(),
        &QUIET,
        &[short, ("SESSION_KEY_FILE", "from-variable.key")],
    ));
    assert_eq!(code, 1, "SESSION_KEY wins over SESSION_KEY_FILE: {output}");
    let (code, output) = exited(run(
        dir.path(),
        &[&QUIET[..], &["--key", "short"]].concat(),
        &[],
    ));
    assert_eq!(code, 1, "--key is used: {output}");

    // --key-file on the command line wins over SESSION_KEY.
    listening(run(
        dir.path(),
        &[&QUIET[..], &["--key-file", "from-option.key"]].concat(),
        &[short],
    ));
    assert!(dir.path().join("from-option.key").exists());

    // SESSION_KEY_FILE alone.
    listening(run(
        dir.path(),
        &QUIET,
        &[("SESSION_KEY_FILE", "from-variable.key")],
    ));
    assert!(dir.path().join("from-variable.key").exists());

    // A key of the right length works.
    listening(run(
        dir.path(),
        &QUIET,
        &[("SESSION_KEY", "a signing key of at least thirty-two bytes")],
    ));
}

#[test]
fn express_needs_a_secret_and_a_secret_needs_express() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, output) = exited(run(dir.path(), &[&QUIET[..], &["--express"]].concat(), &[]));
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("--express needs the Express app's cookie secret"),
        "{output}"
    );
    let (code, output) = exited(run(
        dir.path(),
        &[&QUIET[..], &["--secret", "your-secret-key"]].concat(),
        &[],
    ));
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("used only with --express"), "{output}");
    // The Express app's variable in the same shell does not stop the default mode.
    listening(run(
        dir.path(),
        &QUIET,
        &[("SESSION_SECRETS", "your-secret-key")],
    ));
}

#[test]
fn express_refuses_a_store_without_an_express_layout() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (args, env) in [
        (vec!["--express", "--secret", "your-secret-key"], vec![]),
        (
            vec![],
            vec![
                ("EXPRESS_COMPATIBLE", "true"),
                ("SESSION_SECRETS", "your-secret-key,an-older-secret"),
            ],
        ),
    ] {
        let (code, output) = exited(run(dir.path(), &[&QUIET[..], &args].concat(), &env));
        assert_eq!(code, 1, "{output}");
        assert!(
            output.contains("\"memory\" has no Express-compatible layout"),
            "{output}"
        );
        assert!(
            !output.contains("your-secret-key"),
            "the secret is shown: {output}"
        );
    }
    assert!(
        !dir.path().join("express-tutorial.key").exists(),
        "no key file in Express-compatible mode"
    );
}

async fn post_login(url: &str, username: &str, password: &str) -> (StatusCode, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<axum::body::Bytes>>();
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let request = Request::post(format!("{url}/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::from(body))
        .expect("request");
    let response = client.request(request).await.expect("the app answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8(bytes.to_vec()).expect("utf-8"))
}

#[tokio::test]
async fn demo_credentials_from_the_environment_and_options_replace_the_tutorials() {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = listening(run(
        dir.path(),
        &QUIET,
        &[("DEMO_USERNAME", "alice"), ("DEMO_PASSWORD", "wonderland")],
    ));
    assert_eq!(
        post_login(&running.url, "alice", "wonderland").await,
        (StatusCode::OK, "User logged in".to_owned())
    );
    assert_eq!(
        post_login(&running.url, "JohnDoe", "password123").await.0,
        StatusCode::UNAUTHORIZED
    );
    drop(running);

    let running = listening(run(
        dir.path(),
        &[&QUIET[..], &["--demo-password", "looking glass"]].concat(),
        &[("DEMO_PASSWORD", "wonderland")],
    ));
    assert_eq!(
        post_login(&running.url, "JohnDoe", "looking glass").await.0,
        StatusCode::OK,
        "the option wins over the variable"
    );
    assert_eq!(
        post_login(&running.url, "JohnDoe", "password123").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tutorial_credentials_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = listening(run(dir.path(), &QUIET, &[]));
    assert_eq!(
        post_login(&running.url, "JohnDoe", "password123").await,
        (StatusCode::OK, "User logged in".to_owned())
    );
}
