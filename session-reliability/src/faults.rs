//! Faults under load: clients drive the app without pause while the backend fails and comes
//! back; the figures say what the clients lost, saw and waited for.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::app::{self, App};
use crate::backend::{Fault, Running};
use crate::checks;
use crate::client::Client;
use crate::report::{Event, FaultFigures, Outcome, Tally};

/// How a fault run is timed.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Concurrent clients.
    pub clients: usize,
    /// Load before the fault.
    pub warmup: Duration,
    /// How long the backend stays down.
    pub outage: Duration,
    /// Load after every client was served again (or after `give_up`).
    pub tail: Duration,
    /// How long after the backend's return to wait at most for every client to be served
    /// again.
    pub give_up: Duration,
}

/// How long a client may take at the end to read its values back.
const VERIFY_PATIENCE: Duration = Duration::from_secs(30);

/// Runs `plan.clients` clients against a fresh app on `running`, injects `fault`, and
/// measures.
///
/// # Errors
///
/// When the store cannot be opened, the app cannot be served, or the fault cannot be injected.
pub async fn run(running: &Running, fault: Fault, plan: FaultPlan) -> Result<FaultFigures, String> {
    let opened = running.open().await?;
    let app = App::serve(opened.store, opened.info, app::signing_key()?).await?;
    let panics_before = checks::panics();
    let progress = Arc::new(Progress::default());
    let mut clients = JoinSet::new();
    for i in 0..plan.clients {
        let mut client = Client::new(format!("c{i}"), app.url())?;
        let progress = Arc::clone(&progress);
        clients.spawn(async move {
            let mut back = false;
            while !progress.stop.load(Ordering::Relaxed) {
                client.step().await;
                if !back && progress.served_again(client.events.last()) {
                    back = true;
                    progress.back.fetch_add(1, Ordering::SeqCst);
                }
            }
            // Each client checks its own values; the others' requests do not touch them.
            let verified = client.verify(VERIFY_PATIENCE).await;
            (client, verified)
        });
    }

    tokio::time::sleep(plan.warmup).await;
    let fault_at = Instant::now();
    running.inject(fault, plan.outage).await?;
    let returned = Instant::now();
    let _ = progress.returned.set(returned);
    // Load goes on until every client was served again (or it is clear some will not be),
    // and a little longer.
    while progress.back.load(Ordering::SeqCst) < plan.clients && returned.elapsed() < plan.give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(plan.tail).await;
    progress.stop.store(true, Ordering::Relaxed);

    let mut done = Vec::with_capacity(plan.clients);
    let mut unverified = 0;
    while let Some(joined) = clients.join_next().await {
        let (client, verified) = joined.map_err(|e| format!("a client task failed: {e}"))?;
        unverified += u64::from(!verified);
        done.push(client);
    }
    drop(app);
    drop(opened.cleanup);
    Ok(figures(
        &done,
        running,
        fault,
        fault_at,
        returned,
        checks::panics() - panics_before,
        unverified,
    ))
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
fn figures(
    clients: &[Client],
    running: &Running,
    fault: Fault,
    fault_at: Instant,
    returned: Instant,
    panics: u64,
    unverified: u64,
) -> FaultFigures {
    let mut tally = Tally::default();
    let mut failed_during = 0;
    let mut failed_before = 0;
    let mut first_success: Option<Duration> = None;
    let mut all_back: Option<Duration> = Some(Duration::ZERO);
    for client in clients {
        tally.add(&client.tally());
        let mut back = None;
        for event in &client.events {
            match event.outcome {
                Outcome::Ok if event.end >= returned => {
                    back = back.or(Some(event.end - returned));
                }
                Outcome::Ok => {}
                Outcome::Failed | Outcome::Hung if event.end >= fault_at => failed_during += 1,
                Outcome::Failed | Outcome::Hung => failed_before += 1,
            }
        }
        first_success = match (first_success, back) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        all_back = match (all_back, back) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    FaultFigures {
        backend: running.name().to_owned(),
        durable: running.backend().durable(),
        fault: fault.to_string(),
        clients: clients.len(),
        outage: returned - fault_at,
        tally,
        failed_during,
        failed_before,
        first_success,
        all_back: if clients.is_empty() { None } else { all_back },
        panics,
        unverified,
        command: String::new(),
    }
}

/// What the clients and the harness share during a run.
#[derive(Debug, Default)]
struct Progress {
    /// Set to end the run.
    stop: AtomicBool,
    /// When the backend came back.
    returned: OnceLock<Instant>,
    /// Clients served again since.
    back: AtomicUsize,
}

impl Progress {
    /// Whether `event` is a success that ended after the backend came back.
    fn served_again(&self, event: Option<&Event>) -> bool {
        match (self.returned.get(), event) {
            (Some(returned), Some(event)) => event.outcome == Outcome::Ok && event.end >= *returned,
            _ => false,
        }
    }
}
