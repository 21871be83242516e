//! The tutorial app in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, with fantoccini), against the real binary on a loopback port.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages (`apt-get install chromium
//! chromium-driver`); paths can be overridden with `CHROMIUM` and `CHROMEDRIVER`. Without them
//! the test FAILS, saying what to install: a browser test that skips proves nothing.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use cookie::{Expiration, SameSite};
use fantoccini::{Client, ClientBuilder, Locator};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const INSTALL: &str = "install Debian's packages: apt-get install chromium chromium-driver";

/// A child process that is killed when the test ends, however it ends.
struct Process {
    child: Child,
    what: &'static str,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(variable: &str, candidates: &[&str], what: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "{variable}={} does not exist",
            path.display()
        );
        return path;
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{what} not found at {candidates:?} (or set {variable}): {INSTALL}")
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts the tutorial binary on a free loopback port and returns it with its base URL.
fn start_app(dir: &Path) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_express-tutorial"))
        .arg("--store")
        .arg(format!("sqlite://{}", dir.join("sessions.db").display()))
        .arg("--key-file")
        .arg(dir.join("key"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SESSION_KEY")
        .env_remove("SESSION_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the express-tutorial binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let process = Process {
        child,
        what: "express-tutorial",
    };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the app's first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{} did not report its address: {line:?}", process.what))
        .to_owned();
    (process, url)
}

fn start_chromedriver(driver: &Path, port: u16) -> Process {
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL}", driver.display()));
    let process = Process {
        child,
        what: "chromedriver",
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not listen on port {port} within 20 s",
            process.what
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    process
}

async fn browser(driver_port: u16, chromium: &Path, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}; {INSTALL}"))
}

/// The text of `#id`, waiting for it to exist; retried while the page is being replaced (an
/// element found just before a reload is stale just after).
async fn text_of(client: &Client, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async { client.find(Locator::Id(id)).await?.text().await };
        match attempt.await {
            Ok(text) => return text,
            Err(e) => assert!(Instant::now() < deadline, "no text of #{id}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn session_cookie(client: &Client) -> Option<fantoccini::cookies::Cookie<'static>> {
    client
        .get_all_cookies()
        .await
        .expect("cookies through WebDriver")
        .into_iter()
        .find(|c| c.name() == "sid")
}

async fn log_in(client: &Client, username: &str, password: &str) {
    let field = |id: &'static str| async move {
        client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
    };
    field("login-username")
        .await
        .send_keys(username)
        .await
        .expect("type the username");
    field("login-password")
        .await
        .send_keys(password)
        .await
        .expect("type the password");
    field("login-submit").await.click().await.expect("submit");
}

/// Waits until `#status` reads `expected` (the page reloads itself after a login).
async fn wait_for_status(client: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = text_of(client, "status").await;
        if status == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "status stayed {status:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn instant(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// What the page says about the session (values, store, expiry, cookie) is what the browser
/// holds: the cookie's attributes as Chromium keeps them, the expiry an hour after the login.
async fn page_matches_the_session_and_its_cookie(
    client: &Client,
    dir: &Path,
    before: OffsetDateTime,
    after: OffsetDateTime,
) {
    let values: serde_json::Value =
        serde_json::from_str(&text_of(client, "session").await).expect("JSON values");
    assert_eq!(values["username"], "JohnDoe", "{values}");
    let agent = values["user_agent"].as_str().unwrap_or_default();
    assert!(
        agent.contains("Chrome"),
        "login keeps the browser's User-Agent: {values}"
    );
    assert_eq!(text_of(client, "store-kind").await, "SQLite");
    assert_eq!(
        text_of(client, "store-url").await,
        format!("sqlite://{}", dir.join("sessions.db").display())
    );
    let hour = time::Duration::HOUR;
    let idle = instant(&text_of(client, "expires-idle").await);
    assert!(
        before + hour <= idle && idle <= after + hour,
        "idle expiry {idle} is not an hour after the login ({before}..{after})"
    );
    let day = time::Duration::DAY;
    let absolute = instant(&text_of(client, "expires-absolute").await);
    assert!(
        before + day <= absolute && absolute <= after + day,
        "absolute expiry {absolute} is not a day after the login ({before}..{after})"
    );

    let cookie = session_cookie(client).await.expect("the session cookie");
    assert_eq!(text_of(client, "cookie-name").await, cookie.name());
    assert_eq!(text_of(client, "cookie-http-only").await, "yes");
    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
    assert_eq!(text_of(client, "cookie-secure").await, "no");
    assert_ne!(cookie.secure(), Some(true), "{cookie:?}");
    assert_eq!(text_of(client, "cookie-same-site").await, "Lax");
    assert_eq!(cookie.same_site(), Some(SameSite::Lax), "{cookie:?}");
    assert_eq!(text_of(client, "cookie-max-age").await, "3600");
    // Chromium keeps Max-Age as an expiry date (to the second), counted from the login.
    let Some(Expiration::DateTime(expires)) = cookie.expires() else {
        panic!("a persistent cookie was expected: {cookie:?}");
    };
    let expires = OffsetDateTime::from_unix_timestamp(expires.unix_timestamp()).expect("valid");
    assert!(
        before + hour <= expires && expires <= after + hour + time::Duration::SECOND,
        "the cookie expires at {expires}, not an hour after the login ({before}..{after})"
    );
}

async fn scenario(client: &Client, base: &str, dir: &Path, app: &mut Process) {
    client.goto(base).await.expect("open the page");
    assert_eq!(text_of(client, "status").await, "Not logged in.");
    assert!(
        session_cookie(client).await.is_none(),
        "no cookie before anything is stored"
    );

    // A wrong password: a message, no session.
    log_in(client, "JohnDoe", "wrong").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while text_of(client, "message").await.is_empty() {
        assert!(Instant::now() < deadline, "no error message shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text_of(client, "message").await, "Invalid credentials");
    assert!(session_cookie(client).await.is_none());

    // Log in through the form; the page reloads and shows the name.
    client.goto(base).await.expect("open the page");
    let before = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid");
    log_in(client, "JohnDoe", "password123").await;
    wait_for_status(client, "Logged in as JohnDoe.").await;
    let after = OffsetDateTime::now_utc();

    // Reload: still there.
    client.refresh().await.expect("reload");
    assert_eq!(text_of(client, "username").await, "JohnDoe");
    page_matches_the_session_and_its_cookie(client, dir, before, after).await;

    // The browser holds the cookie, HttpOnly, and scripts cannot read it.
    let cookie = session_cookie(client).await.expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
    let visible = client
        .execute("return document.cookie;", vec![])
        .await
        .expect("run a script");
    let visible = visible.as_str().unwrap_or_default().to_owned();
    assert!(
        !visible.contains("sid="),
        "document.cookie exposes the session cookie: {visible:?}"
    );

    // Restart the server (same SQLite file, same key): still logged in.
    let _ = app.child.kill();
    let _ = app.child.wait();
    let (restarted, new_base) = start_app(dir);
    *app = restarted;
    client
        .goto(&new_base)
        .await
        .expect("open the restarted app");
    assert_eq!(
        text_of(client, "username").await,
        "JohnDoe",
        "the session survives a restart"
    );

    // Clear through the page's link: the session is gone, and so is the cookie.
    client
        .find(Locator::Id("clear"))
        .await
        .expect("the clear link")
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client
        .source()
        .await
        .expect("page source")
        .contains("Session data cleared")
    {
        assert!(Instant::now() < deadline, "/clear-session did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(session_cookie(client).await.is_none(), "cookie cleared");
    client.goto(&new_base).await.expect("open the page");
    assert_eq!(text_of(client, "status").await, "Not logged in.");
    client
        .goto(&format!("{new_base}/get-session"))
        .await
        .expect("get-session");
    assert!(
        client
            .source()
            .await
            .expect("source")
            .contains("No session data found")
    );
}

/// Another device: an HTTP client with its own cookie and `User-Agent`.
struct Device {
    client: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    cookie: Option<String>,
}

impl Device {
    const AGENT: &'static str = "other-device/1.0";

    fn new() -> Self {
        Self {
            client: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
            cookie: None,
        }
    }

    async fn send(
        &mut self,
        method: Method,
        url: &str,
        json: Option<&str>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .header(header::USER_AGENT, Self::AGENT);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if json.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = Full::new(Bytes::from(json.unwrap_or_default().to_owned()));
        let response = self
            .client
            .request(request.body(body).expect("a valid request"))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        if let Some(set) = response.headers().get(header::SET_COOKIE) {
            let set = set.to_str().expect("ascii");
            let pair = set.split(';').next().unwrap_or_default();
            self.cookie = (!set.contains("Max-Age=0")).then(|| pair.to_owned());
        }
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        (status, String::from_utf8(bytes.to_vec()).expect("utf-8"))
    }

    async fn log_in(&mut self, base: &str) {
        let login = json!({ "username": "JohnDoe", "password": "password123" }).to_string();
        let reply = self
            .send(Method::POST, &format!("{base}/login"), Some(&login))
            .await;
        assert_eq!(reply, (StatusCode::OK, "User logged in".to_owned()));
    }

    async fn greeting(&mut self, base: &str) -> String {
        self.send(Method::GET, &format!("{base}/get-session"), None)
            .await
            .1
    }
}

/// The rows of the page's "Your sessions" table: (user agent, this device?), read in one
/// script so that a page being replaced gives an error, not a mix of two pages.
async fn session_rows(client: &Client) -> Result<Vec<(String, bool)>, String> {
    let rows = client
        .execute(
            "return Array.from(document.querySelectorAll('#sessions tr.session')).map(row => \
             [row.querySelector('.session-agent').textContent, \
              row.querySelector('.this-device') !== null]);",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut rows: Vec<(String, bool)> =
        serde_json::from_value(rows).map_err(|e| format!("rows: {e}"))?;
    rows.sort();
    Ok(rows)
}

/// Waits until the list of sessions has `count` rows, and returns them.
async fn wait_for_rows(client: &Client, count: usize) -> Vec<(String, bool)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = session_rows(client).await;
        if let Ok(rows) = &rows
            && rows.len() == count
        {
            return rows.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the list kept {rows:?}, expected {count} rows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn two_devices_scenario(client: &Client, base: &str) {
    client.goto(base).await.expect("open the page");
    log_in(client, "JohnDoe", "password123").await;
    wait_for_status(client, "Logged in as JohnDoe.").await;
    let rows = wait_for_rows(client, 1).await;
    assert!(rows[0].1, "the browser's own session is marked: {rows:?}");

    // Another device logs in: the browser sees it, and logs it out with its button.
    let mut other = Device::new();
    other.log_in(base).await;
    client.refresh().await.expect("reload");
    let rows = wait_for_rows(client, 2).await;
    assert!(
        rows.iter()
            .any(|(agent, current)| agent == Device::AGENT && !current),
        "the other device is listed, not as this one: {rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(agent, current)| agent.contains("Chrome") && *current),
        "{rows:?}"
    );
    client
        .find(Locator::Css("#sessions tr.session .revoke"))
        .await
        .expect("the other device's button")
        .click()
        .await
        .expect("click");
    wait_for_rows(client, 1).await;
    assert_eq!(
        other.greeting(base).await,
        "No session data found",
        "the other device is anonymous"
    );
    assert_eq!(text_of(client, "status").await, "Logged in as JohnDoe.");

    // It logs in again; "Log out other devices" ends it and keeps the browser.
    other.log_in(base).await;
    client.refresh().await.expect("reload");
    wait_for_rows(client, 2).await;
    client
        .find(Locator::Id("revoke-others"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("click");
    let rows = wait_for_rows(client, 1).await;
    assert!(rows[0].1, "{rows:?}");
    assert_eq!(other.greeting(base).await, "No session data found");
    assert_eq!(text_of(client, "status").await, "Logged in as JohnDoe.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn see_and_log_out_another_device_in_chromium() {
    let chromium = find(
        "CHROMIUM",
        &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
        "Chromium",
    );
    let driver = find("CHROMEDRIVER", &["/usr/bin/chromedriver"], "chromedriver");
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = dir.path().join("profile");
    let (app, base) = start_app(dir.path());
    let driver_port = free_port();
    let _driver = start_chromedriver(&driver, driver_port);
    let client = browser(driver_port, &chromium, &profile).await;
    let outcome = tokio::spawn({
        let client = client.clone();
        async move { two_devices_scenario(&client, &base).await }
    })
    .await;
    let _ = client.close().await;
    drop(app);
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_reload_and_clear_in_chromium() {
    let chromium = find(
        "CHROMIUM",
        &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
        "Chromium",
    );
    let driver = find("CHROMEDRIVER", &["/usr/bin/chromedriver"], "chromedriver");
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = dir.path().join("profile");
    let (mut app, base) = start_app(dir.path());
    let driver_port = free_port();
    let _driver = start_chromedriver(&driver, driver_port);
    let client = browser(driver_port, &chromium, &profile).await;
    // Close the browser whatever the scenario does, then report.
    let outcome = tokio::spawn({
        let client = client.clone();
        let dir = dir.path().to_owned();
        async move { scenario(&client, &base, &dir, &mut app).await }
    })
    .await;
    let _ = client.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}
