//! Concurrent requests on one session, spread over two app servers sharing the store (within
//! one server the layer makes a session's saves take turns; across servers only the store's
//! versioned save keeps them apart): writes of different keys, then `Session::update`s of one
//! counter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use tokio::task::JoinSet;

use crate::app::{self, App, ROUTES};
use crate::backend::Running;
use crate::checks;
use crate::client::HANG_LIMIT;
use crate::report::{Latency, OneSessionFigures};

/// `concurrent` writes of different keys at once, then `concurrent` increments of one counter
/// at once, every other request to each of two app servers, all with one session's cookie.
///
/// # Errors
///
/// When the store cannot be opened, an app cannot be served, the login fails, or the values
/// cannot be read back.
pub async fn run(running: &Running, concurrent: usize) -> Result<OneSessionFigures, String> {
    let opened = running.open().await?;
    let key = app::signing_key()?;
    let servers = [
        App::serve(Arc::clone(&opened.store), opened.info.clone(), key.clone()).await?,
        App::serve(opened.store, opened.info, key).await?,
    ];
    let bases: Vec<String> = servers.iter().map(App::url).collect();
    // One browser: one cookie jar for both servers (cookies do not depend on the port).
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(HANG_LIMIT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let login = http
        .post(format!("{}/login", bases[0]))
        .header(CONTENT_TYPE, "application/json")
        .body(
            serde_json::json!({
                "username": express_tutorial::Credentials::TUTORIAL_USERNAME,
                "password": express_tutorial::Credentials::TUTORIAL_PASSWORD,
            })
            .to_string(),
        );
    expect(login, StatusCode::OK).await?;
    let panics_before = checks::panics();
    let mut figures = OneSessionFigures {
        backend: running.name().to_owned(),
        concurrent,
        ..OneSessionFigures::default()
    };
    let mut latencies = Vec::new();

    // Different keys: every acknowledged write must be there afterwards.
    let writes = at_once(concurrent, |i| {
        http.put(format!("{}{ROUTES}/values/k{i}", bases[i % 2]))
            .body(format!("v{i}"))
    })
    .await;
    for (i, (ok, took)) in writes.iter().enumerate() {
        latencies.push(*took);
        if !*ok {
            figures.keys_failed += 1;
            continue;
        }
        figures.keys_acked += 1;
        let read = http.get(format!("{}{ROUTES}/values/k{i}", bases[(i + 1) % 2]));
        if read_json(read).await? != Some(serde_json::json!(format!("v{i}"))) {
            figures.keys_lost += 1;
        }
    }

    // One key, read-modify-write: the counter must count every acknowledged increment.
    let increments = at_once(concurrent, |i| {
        http.post(format!("{}{ROUTES}/counters/n", bases[i % 2]))
    })
    .await;
    for (ok, took) in &increments {
        latencies.push(*took);
        if *ok {
            figures.counter_acked += 1;
        } else {
            figures.counter_failed += 1;
        }
    }
    let read = http.get(format!("{}{ROUTES}/values/n", bases[0]));
    figures.counter_final = read_json(read).await?.and_then(|n| n.as_u64()).unwrap_or(0);
    figures.counter_lost = figures.counter_acked.saturating_sub(figures.counter_final);
    figures.counter_excess = figures.counter_final.saturating_sub(concurrent as u64);
    figures.latency = Latency::of(latencies);
    figures.panics = checks::panics() - panics_before;
    drop(opened.cleanup);
    Ok(figures)
}

/// Sends `count` requests at once; for each, whether it got a 2xx answer and how long it took.
async fn at_once(
    count: usize,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
) -> Vec<(bool, Duration)> {
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let request = request(i);
        tasks.spawn(async move {
            let start = Instant::now();
            let ok = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    response.bytes().await.is_ok() && status.is_success()
                }
                Err(_) => false,
            };
            (i, ok, start.elapsed())
        });
    }
    let mut results = vec![(false, Duration::ZERO); count];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, ok, took)) = joined {
            results[i] = (ok, took);
        }
    }
    results
}

/// Sends `request` and expects `status`.
async fn expect(request: reqwest::RequestBuilder, status: StatusCode) -> Result<String, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let got = response.status();
    let body = response.text().await.map_err(|e| format!("no body: {e}"))?;
    if got != status {
        return Err(format!("expected {status}, got {got}: {body}"));
    }
    Ok(body)
}

/// Reads a value of the harness's routes: its JSON, or `None` for `404`.
async fn read_json(request: reqwest::RequestBuilder) -> Result<Option<serde_json::Value>, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("read failed: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("no body: {e}"))?;
    match status {
        StatusCode::NOT_FOUND => Ok(None),
        StatusCode::OK => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| format!("not JSON ({e}): {body}")),
        _ => Err(format!("read answered {status}: {body}")),
    }
}
