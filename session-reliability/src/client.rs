//! One simulated browser: its own HTTP client and cookie jar, the app's routes it drives one
//! request at a time, and the checks of what it reads back (see [`Expectations`]).

use std::time::{Duration, Instant};

use express_tutorial::Credentials;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::app::ROUTES;
use crate::checks::{Expectations, Seen};
use crate::report::{Event, Outcome, Tally};

/// The session key each client writes its own values under.
const KEY: &str = "value";

/// How long a request may take before it counts as hung: three times the stores' time limit
/// per operation ([`session_core::DEFAULT_TIMEOUT`]). A request of these routes makes at most
/// two store calls (load, then save) when no other request races it on its session; each ends
/// within the limit, answered or failed, so three limits leave a margin for a busy machine.
pub const HANG_LIMIT: Duration = Duration::from_secs(3 * session_core::DEFAULT_TIMEOUT.as_secs());

/// One browser.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    expect: Expectations,
    steps: u64,
    /// Every request sent, in order.
    pub events: Vec<Event>,
}

/// An answer: its status and body, or how the request failed.
type Answer = Result<(StatusCode, String), Outcome>;

impl Client {
    /// A browser with an empty cookie jar, named `owner` (unique in the run), talking to the
    /// app at `base` (`http://127.0.0.1:PORT`).
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(owner: impl Into<String>, base: impl Into<String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(HANG_LIMIT)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: base.into(),
            expect: Expectations::new(owner),
            steps: 0,
            events: Vec::new(),
        })
    }

    /// One request, the next in the client's cycle: a login while it holds none (`POST
    /// /login`), else a write of a new value of its own, a read of it back, and every fifth
    /// request the tutorial's `GET /get-session`.
    pub async fn step(&mut self) {
        self.steps += 1;
        if !self.expect.logged_in() {
            self.login().await;
        } else if self.steps.is_multiple_of(5) {
            self.read_username().await;
        } else if !self.steps.is_multiple_of(2) {
            self.write().await;
        } else {
            self.read().await;
        }
    }

    /// Reads the value and the username back until both answer (or `patience` runs out), for
    /// the final check after a run. Returns whether both were read.
    pub async fn verify(&mut self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let mut value_read = false;
        let mut username_read = false;
        while Instant::now() < deadline && !(value_read && username_read) {
            if !value_read {
                value_read = self.read().await;
            }
            if !username_read {
                username_read = self.read_username().await;
            }
            if !(value_read && username_read) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        value_read && username_read
    }

    /// What the client found: its requests and what its checks counted.
    #[must_use]
    pub fn tally(&self) -> Tally {
        let count = |o: Outcome| self.events.iter().filter(|e| e.outcome == o).count() as u64;
        Tally {
            requests: self.events.len() as u64,
            failed: count(Outcome::Failed),
            hung: count(Outcome::Hung),
            lost: self.expect.lost,
            leaks: self.expect.leaks,
            leak_examples: self.expect.leak_examples.clone(),
        }
    }

    async fn login(&mut self) -> bool {
        self.expect.login_sent();
        let body = serde_json::json!({
            "username": Credentials::TUTORIAL_USERNAME,
            "password": Credentials::TUTORIAL_PASSWORD,
        })
        .to_string();
        let request = self
            .http
            .post(format!("{}/login", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        match self.send(request, &[StatusCode::OK]).await {
            Ok(_) => {
                self.expect.login_acked();
                true
            }
            Err(_) => false,
        }
    }

    async fn write(&mut self) -> bool {
        let (n, value) = self.expect.next_write();
        let request = self
            .http
            .put(format!("{}{ROUTES}/values/{KEY}", self.base))
            .body(value);
        let ok = self.send(request, &[StatusCode::NO_CONTENT]).await.is_ok();
        if ok {
            self.expect.write_acked(n);
        }
        ok
    }

    async fn read(&mut self) -> bool {
        let request = self.http.get(format!("{}{ROUTES}/values/{KEY}", self.base));
        let seen = match self
            .send(request, &[StatusCode::OK, StatusCode::NOT_FOUND])
            .await
        {
            Ok((StatusCode::NOT_FOUND, _)) => Seen::Nothing,
            Ok((_, body)) => match serde_json::from_str::<String>(&body) {
                Ok(value) => Seen::parse(self.expect.owner(), &value),
                Err(_) => Seen::Other(body),
            },
            Err(_) => return false,
        };
        self.expect.read(seen);
        true
    }

    async fn read_username(&mut self) -> bool {
        let request = self.http.get(format!("{}/get-session", self.base));
        let Ok((_, body)) = self.send(request, &[StatusCode::OK]).await else {
            return false;
        };
        let username = match body.strip_prefix("Hello, ") {
            Some(name) => Some(name),
            None if body == "No session data found" => None,
            None => Some(body.as_str()),
        };
        self.expect
            .read_username(username, Credentials::TUTORIAL_USERNAME);
        true
    }

    /// Sends `request`, records it, and returns the answer if its status is one of `expected`.
    async fn send(&mut self, request: reqwest::RequestBuilder, expected: &[StatusCode]) -> Answer {
        let start = Instant::now();
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Ok(body) if expected.contains(&status) => Ok((status, body)),
                    Ok(_) => Err(Outcome::Failed),
                    Err(e) if e.is_timeout() => Err(Outcome::Hung),
                    Err(_) => Err(Outcome::Failed),
                }
            }
            Err(e) if e.is_timeout() => Err(Outcome::Hung),
            Err(_) => Err(Outcome::Failed),
        };
        self.events.push(Event {
            start,
            end: Instant::now(),
            outcome: answer.as_ref().err().copied().unwrap_or(Outcome::Ok),
        });
        answer
    }
}
