//! What counts as a lost write or a leak, judged from what one client wrote and then read, and
//! which figures of a run must be 0 (or within the recovery goal) for the run to pass.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::report::Report;

/// Recovery goal: every client served again within this time of the backend's return, with
/// no restart of the app.
pub const RECOVERY_GOAL: Duration = Duration::from_secs(5);

/// What a read of the client's value showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// No value: the session or the key is gone.
    Nothing,
    /// A value this client wrote or may have written: its write number.
    Mine(u64),
    /// Anything else: another client's value, or a value nobody wrote.
    Other(String),
}

impl Seen {
    /// Reads a value as the harness writes them, `"{owner}:{write number}"`, for `owner`.
    #[must_use]
    pub fn parse(owner: &str, value: &str) -> Self {
        match value.split_once(':') {
            Some((who, n)) if who == owner => match n.parse() {
                Ok(n) => Self::Mine(n),
                Err(_) => Self::Other(value.to_owned()),
            },
            _ => Self::Other(value.to_owned()),
        }
    }
}

/// What one client expects to read back, and what it found wrong so far.
///
/// A client runs one request at a time, so a read must show its last acknowledged write or a
/// later one it attempted (a write that failed may still have been applied). A read showing
/// less loses every acknowledged write above what it shows; each lost write is counted once.
#[derive(Debug, Clone)]
pub struct Expectations {
    owner: String,
    /// The last write number handed out (attempted).
    attempted: u64,
    /// Acknowledged writes not (yet) found lost.
    acked: BTreeSet<u64>,
    /// Whether the login was acknowledged and its username not found lost since.
    logged_in: bool,
    /// Acknowledged writes (values and logins) a later read did not show.
    pub lost: u64,
    /// Reads that showed a value this client never wrote.
    pub leaks: u64,
    /// The first few leaks, as seen, for the report.
    pub leak_examples: Vec<String>,
}

impl Expectations {
    /// Nothing written yet, by the client named `owner` (unique in the run, without `:`).
    #[must_use]
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            attempted: 0,
            acked: BTreeSet::new(),
            logged_in: false,
            lost: 0,
            leaks: 0,
            leak_examples: Vec::new(),
        }
    }

    /// The client's name, which prefixes its values.
    #[must_use]
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether the client holds an acknowledged login.
    #[must_use]
    pub fn logged_in(&self) -> bool {
        self.logged_in
    }

    /// A login is about to be sent: it starts a new session without values whether or not its
    /// answer arrives, so nothing written before can be expected any more.
    pub fn login_sent(&mut self) {
        self.acked.clear();
        self.logged_in = false;
    }

    /// The login was acknowledged: the session now holds the username.
    pub fn login_acked(&mut self) {
        self.logged_in = true;
    }

    /// The next value to write and its number.
    pub fn next_write(&mut self) -> (u64, String) {
        self.attempted += 1;
        (self.attempted, format!("{}:{}", self.owner, self.attempted))
    }

    /// Write number `n` was acknowledged (a 2xx answer).
    pub fn write_acked(&mut self, n: u64) {
        self.acked.insert(n);
    }

    /// Judges a read of the value.
    pub fn read(&mut self, seen: Seen) {
        let shown = match seen {
            Seen::Nothing => 0,
            Seen::Mine(n) if n <= self.attempted => n,
            Seen::Mine(_) | Seen::Other(_) => {
                self.leak(&seen);
                return;
            }
        };
        let lost = self.acked.split_off(&(shown + 1));
        self.lost += lost.len() as u64;
    }

    /// Judges a read of the tutorial's `username` (`None`: the session holds none).
    pub fn read_username(&mut self, username: Option<&str>, expected: &str) {
        match username {
            Some(name) if name == expected => {}
            Some(name) => self.leak(&Seen::Other(name.to_owned())),
            None if self.logged_in => {
                self.lost += 1;
                self.logged_in = false;
            }
            None => {}
        }
    }

    fn leak(&mut self, seen: &Seen) {
        self.leaks += 1;
        if self.leak_examples.len() < 3 {
            self.leak_examples
                .push(format!("{} read {seen:?}", self.owner));
        }
    }
}

static PANICS: AtomicU64 = AtomicU64::new(0);

/// Counts every panic of the process from now on (the app's handlers and tasks included),
/// keeping the default message. Call once, at the start.
pub fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

/// Panics counted since [`count_panics`].
#[must_use]
pub fn panics() -> u64 {
    PANICS.load(Ordering::SeqCst)
}

/// Every figure of `report` that must be 0 and is not, and every recovery over the goal, one
/// sentence each; empty when the run passes.
#[must_use]
pub fn violations(report: &Report) -> Vec<String> {
    let mut found = Vec::new();
    let mut must_be_zero = |what: String, figure: &str, value: u64| {
        if value != 0 {
            found.push(format!("{what}: {value} {figure} (must be 0)"));
        }
    };
    for f in &report.faults {
        let what = format!("{} / {}", f.backend, f.fault);
        if f.durable {
            must_be_zero(what.clone(), "acknowledged writes lost", f.tally.lost);
        }
        must_be_zero(what.clone(), "cross-session leaks", f.tally.leaks);
        must_be_zero(what.clone(), "hung requests", f.tally.hung);
        must_be_zero(what.clone(), "panics", f.panics);
        must_be_zero(
            what,
            "clients whose values could not be read back",
            f.unverified,
        );
    }
    for l in &report.loads {
        let what = format!("{} / load", l.backend);
        must_be_zero(what.clone(), "acknowledged writes lost", l.tally.lost);
        must_be_zero(what.clone(), "cross-session leaks", l.tally.leaks);
        must_be_zero(what.clone(), "hung requests", l.tally.hung);
        must_be_zero(what.clone(), "panics", l.panics);
        must_be_zero(
            what,
            "clients whose values could not be read back",
            l.unverified,
        );
    }
    for o in &report.one_session {
        let what = format!("{} / one session", o.backend);
        must_be_zero(what.clone(), "lost updates (different keys)", o.keys_lost);
        must_be_zero(
            what.clone(),
            "lost updates (update of one key)",
            o.counter_lost,
        );
        must_be_zero(what.clone(), "counts above the attempts", o.counter_excess);
        must_be_zero(what, "panics", o.panics);
    }
    for f in &report.faults {
        match f.all_back {
            Some(t) if t <= RECOVERY_GOAL => {}
            Some(t) => found.push(format!(
                "{} / {}: the last client was served again {} after the backend's return (goal: {})",
                f.backend,
                f.fault,
                crate::report::seconds(t),
                crate::report::seconds(RECOVERY_GOAL),
            )),
            None => found.push(format!(
                "{} / {}: not every client was served again after the backend's return",
                f.backend, f.fault
            )),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FaultFigures, Latency, LoadFigures, OneSessionFigures, Tally};

    fn client() -> Expectations {
        let mut e = Expectations::new("c1");
        e.login_sent();
        e.login_acked();
        e
    }

    #[test]
    fn values_parse_by_owner() {
        assert_eq!(Seen::parse("c1", "c1:7"), Seen::Mine(7));
        assert_eq!(Seen::parse("c1", "c2:7"), Seen::Other("c2:7".into()));
        assert_eq!(Seen::parse("c1", "c1:x"), Seen::Other("c1:x".into()));
        assert_eq!(Seen::parse("c1", "c12:7"), Seen::Other("c12:7".into()));
        assert_eq!(Seen::parse("c1", "JohnDoe"), Seen::Other("JohnDoe".into()));
    }

    #[test]
    fn reading_the_last_acknowledged_write_loses_nothing() {
        let mut e = client();
        let (n, _) = e.next_write();
        e.write_acked(n);
        e.read(Seen::Mine(n));
        assert_eq!((e.lost, e.leaks), (0, 0));
    }

    #[test]
    fn a_failed_write_may_or_may_not_show() {
        let mut e = client();
        let (n1, _) = e.next_write();
        e.write_acked(n1);
        let (n2, _) = e.next_write(); // not acknowledged
        e.read(Seen::Mine(n2));
        e.read(Seen::Mine(n1));
        assert_eq!((e.lost, e.leaks), (0, 0), "{n2} was never acknowledged");
    }

    #[test]
    fn an_older_value_or_none_loses_every_acknowledged_write_above_it_once() {
        let mut e = client();
        for _ in 0..3 {
            let (n, _) = e.next_write();
            e.write_acked(n);
        }
        e.read(Seen::Mine(1));
        assert_eq!(e.lost, 2, "writes 2 and 3 lost");
        e.read(Seen::Mine(1));
        assert_eq!(e.lost, 2, "counted once");
        e.read(Seen::Nothing);
        assert_eq!(e.lost, 3, "then write 1 too");
    }

    #[test]
    fn another_clients_value_or_one_never_written_is_a_leak() {
        let mut e = client();
        let (n, _) = e.next_write();
        e.write_acked(n);
        e.read(Seen::Other("c2:1".into()));
        e.read(Seen::Mine(n + 1));
        assert_eq!((e.leaks, e.lost), (2, 0));
        assert_eq!(e.leak_examples.len(), 2);
    }

    #[test]
    fn a_login_drops_what_was_written_before_it() {
        let mut e = client();
        let (n, _) = e.next_write();
        e.write_acked(n);
        e.login_sent();
        e.read(Seen::Nothing);
        assert_eq!(e.lost, 0, "the new session starts empty");
    }

    #[test]
    fn a_lost_login_counts_once_and_a_foreign_username_is_a_leak() {
        let mut e = client();
        e.read_username(Some("JohnDoe"), "JohnDoe");
        assert_eq!(e.lost, 0);
        e.read_username(None, "JohnDoe");
        e.read_username(None, "JohnDoe");
        assert_eq!(e.lost, 1);
        assert!(!e.logged_in());
        e.read_username(Some("Mallory"), "JohnDoe");
        assert_eq!(e.leaks, 1);
    }

    fn fault(durable: bool, lost: u64, all_back: Option<Duration>) -> FaultFigures {
        FaultFigures {
            backend: "B".into(),
            durable,
            fault: "kill".into(),
            clients: 1,
            outage: Duration::from_secs(1),
            tally: Tally {
                lost,
                ..Tally::default()
            },
            failed_during: 3,
            failed_before: 0,
            first_success: all_back,
            all_back,
            panics: 0,
            unverified: 0,
            command: String::new(),
        }
    }

    #[test]
    fn a_run_fails_on_lost_writes_of_durable_backends_and_on_slow_recovery() {
        let second = Some(Duration::from_secs(1));
        let report = |faults| Report {
            faults,
            ..Report::default()
        };
        assert!(violations(&report(vec![fault(true, 0, second)])).is_empty());
        let lost = violations(&report(vec![fault(true, 2, second)]));
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].contains("2 acknowledged writes lost"), "{lost:?}");
        assert!(
            violations(&report(vec![fault(false, 2, second)])).is_empty(),
            "a backend that is not durable reports its losses without failing"
        );
        let slow = violations(&report(vec![fault(true, 0, Some(Duration::from_secs(6)))]));
        assert!(slow[0].contains("goal"), "{slow:?}");
        let never = violations(&report(vec![fault(true, 0, None)]));
        assert!(never[0].contains("not every client"), "{never:?}");
    }

    #[test]
    fn a_run_fails_on_leaks_hangs_panics_and_lost_updates() {
        let report = Report {
            loads: vec![LoadFigures {
                backend: "B".into(),
                clients: 1,
                requests_per_client: 1,
                tally: Tally {
                    leaks: 1,
                    hung: 1,
                    ..Tally::default()
                },
                failed_at_limit: 0,
                latency: Latency::default(),
                elapsed: Duration::from_secs(1),
                panics: 1,
                unverified: 1,
                command: String::new(),
            }],
            one_session: vec![OneSessionFigures {
                backend: "B".into(),
                keys_lost: 1,
                counter_lost: 1,
                counter_excess: 1,
                ..OneSessionFigures::default()
            }],
            ..Report::default()
        };
        assert_eq!(violations(&report).len(), 7, "{:?}", violations(&report));
    }

    #[test]
    fn nothing_before_a_login_is_no_loss() {
        let mut e = Expectations::new("c1");
        e.read_username(None, "JohnDoe");
        e.read(Seen::Nothing);
        assert_eq!((e.lost, e.leaks), (0, 0));
    }
}
