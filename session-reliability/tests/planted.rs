//! The checks can fail: stores with a planted bug (a save dropped, sessions mixed up, a panic)
//! under the harness's many-clients and one-session runs, each caught by the figure that names
//! it; the same runs on the plain memory store find nothing.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use session_core::{Id, Record, Result, Store};
use session_memory::MemoryStore;
use session_reliability::backend::Running;
use session_reliability::report::{LoadFigures, Report};
use session_reliability::{checks, load, one_session};
use time::OffsetDateTime;

const CLIENTS: usize = 20;
const REQUESTS: usize = 30;
/// Every how many calls a planted bug strikes.
const EVERY: u64 = 7;

/// The memory store with one bug planted, or none.
struct Planted {
    inner: MemoryStore,
    bug: Bug,
    calls: AtomicU64,
    /// The last record loaded, for `Bug::MixesSessions`.
    last: Mutex<Option<Record>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Bug {
    None,
    /// Every 7th save answers `Ok` and writes nothing.
    DropsSaves,
    /// Every 7th load answers another session's record (as a cache keyed wrongly would).
    MixesSessions,
    /// Every 7th load panics.
    Panics,
}

impl Planted {
    fn store(bug: Bug) -> Arc<dyn Store> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            bug,
            calls: AtomicU64::new(0),
            last: Mutex::new(None),
        })
    }

    fn strikes(&self, bug: Bug) -> bool {
        self.bug == bug && self.calls.fetch_add(1, Ordering::SeqCst) % EVERY == EVERY - 1
    }
}

#[async_trait]
impl Store for Planted {
    async fn create(&self, record: &Record) -> Result<()> {
        self.inner.create(record).await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        if self.strikes(Bug::Panics) {
            panic!("planted: load panics");
        }
        let found = self.inner.load(id).await?;
        if self.bug == Bug::MixesSessions {
            let mut last = self.last.lock().expect("not poisoned");
            let other = last.clone().filter(|other| other.id != *id);
            if let Some(found) = &found {
                *last = Some(found.clone());
            }
            if let (Some(mut other), Some(found)) = (other, &found)
                && self.strikes(Bug::MixesSessions)
            {
                other.id = id.clone();
                other.version = found.version;
                return Ok(Some(other));
            }
        }
        Ok(found)
    }

    async fn save(&self, record: &Record) -> Result<()> {
        if self.strikes(Bug::DropsSaves) {
            return Ok(());
        }
        self.inner.save(record).await
    }

    async fn touch(&self, id: &Id, expires_at: OffsetDateTime) -> Result<bool> {
        self.inner.touch(id, expires_at).await
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.inner.delete(id).await
    }
}

async fn load_run(name: &str, bug: Bug) -> LoadFigures {
    checks::count_panics();
    let running = Running::in_process(name, Planted::store(bug));
    load::run(&running, CLIENTS, REQUESTS)
        .await
        .expect("the load run completes")
}

fn violations_of(load: LoadFigures) -> Vec<String> {
    checks::violations(&Report {
        loads: vec![load],
        ..Report::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correct_store_passes_every_check() {
    let figures = load_run("memory", Bug::None).await;
    assert_eq!(
        figures.tally.requests as usize,
        CLIENTS * REQUESTS + 2 * CLIENTS
    );
    assert_eq!(
        (
            figures.tally.failed,
            figures.tally.lost,
            figures.tally.leaks
        ),
        (0, 0, 0),
        "{figures:?}"
    );
    assert_eq!(violations_of(figures), Vec::<String>::new());

    let running = Running::in_process("memory", Planted::store(Bug::None));
    let one = one_session::run(&running, 20).await.expect("one session");
    assert_eq!((one.keys_acked, one.keys_lost), (20, 0), "{one:?}");
    assert_eq!((one.counter_acked, one.counter_final), (20, 20), "{one:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_save_is_a_lost_acknowledged_write() {
    let figures = load_run("drops saves", Bug::DropsSaves).await;
    assert!(figures.tally.lost > 0, "{figures:?}");
    assert_eq!(figures.tally.leaks, 0, "{figures:?}");
    let found = violations_of(figures);
    assert!(
        found.iter().any(|v| v.contains("acknowledged writes lost")),
        "{found:?}"
    );

    let running = Running::in_process("drops saves", Planted::store(Bug::DropsSaves));
    let one = one_session::run(&running, 40).await.expect("one session");
    assert!(one.keys_lost + one.counter_lost > 0, "{one:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_sessions_record_is_a_leak() {
    let figures = load_run("mixes sessions", Bug::MixesSessions).await;
    assert!(figures.tally.leaks > 0, "{figures:?}");
    assert!(!figures.tally.leak_examples.is_empty(), "{figures:?}");
    let found = violations_of(figures);
    assert!(
        found.iter().any(|v| v.contains("cross-session leaks")),
        "{found:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_in_the_store_is_counted() {
    let figures = load_run("panics", Bug::Panics).await;
    assert!(figures.panics > 0, "{figures:?}");
    assert!(
        figures.tally.failed > 0,
        "the panicking requests fail: {figures:?}"
    );
    let found = violations_of(figures);
    assert!(found.iter().any(|v| v.contains("panics")), "{found:?}");
}
