//! Many clients at once, each with its own session and values, on a healthy store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::app::{self, App};
use crate::backend::Running;
use crate::checks;
use crate::client::Client;
use crate::report::{Latency, LoadFigures, Outcome, Tally};

/// How long a client may take at the end to read its values back.
const VERIFY_PATIENCE: Duration = Duration::from_secs(30);

/// How many clients read their values back at once at the end: as many as the fault runs'
/// clients, so that the final check does not overload a store the load left slow.
const CHECKING_AT_ONCE: usize = 64;

/// `clients` clients at once against a fresh app on `running`, `requests` requests each (a
/// login, then writes and reads of their own values and the tutorial's `/get-session`), then
/// each reads its values back.
///
/// # Errors
///
/// When the store cannot be opened or the app cannot be served.
pub async fn run(
    running: &Running,
    clients: usize,
    requests: usize,
) -> Result<LoadFigures, String> {
    let opened = running.open().await?;
    let app = App::serve(opened.store, opened.info, app::signing_key()?).await?;
    let panics_before = checks::panics();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let checking = Arc::new(Semaphore::new(CHECKING_AT_ONCE));
    for i in 0..clients {
        let mut client = Client::new(format!("c{i}"), app.url())?;
        let checking = Arc::clone(&checking);
        tasks.spawn(async move {
            for _ in 0..requests {
                client.step().await;
            }
            // The measured requests end here: the read-back is not in the latencies.
            let measured = client.events.len();
            let verified = match checking.acquire().await {
                Ok(_permit) => client.verify(VERIFY_PATIENCE).await,
                Err(_) => false,
            };
            (client, measured, verified)
        });
    }
    let mut latencies = Vec::with_capacity(clients * requests);
    let mut failed_at_limit = 0;
    let mut unverified = 0;
    let mut tally = Tally::default();
    let mut elapsed = Duration::ZERO;
    while let Some(joined) = tasks.join_next().await {
        let (client, measured, verified) =
            joined.map_err(|e| format!("a client task failed: {e}"))?;
        let events = &client.events[..measured];
        latencies.extend(events.iter().map(|e| e.end - e.start));
        failed_at_limit += events
            .iter()
            .filter(|e| {
                e.outcome != Outcome::Ok && e.end - e.start >= session_core::DEFAULT_TIMEOUT
            })
            .count() as u64;
        if let Some(last) = events.last() {
            elapsed = elapsed.max(last.end - started);
        }
        unverified += u64::from(!verified);
        tally.add(&client.tally());
    }
    drop(app);
    drop(opened.cleanup);
    Ok(LoadFigures {
        backend: running.name().to_owned(),
        clients,
        requests_per_client: requests,
        tally,
        failed_at_limit,
        latency: Latency::of(latencies),
        elapsed,
        panics: checks::panics() - panics_before,
        unverified,
        command: String::new(),
    })
}
