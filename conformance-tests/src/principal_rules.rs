//! The rules of `principal_tests!`: the contract of `session_core::Principals`, the sessions of
//! one principal (a user), listed and revoked.
//!
//! Each takes the store as `Arc<dyn PrincipalStore>` and works with principals of its own,
//! drawn at random, so rules can share a backend and run in parallel. A listing is matched to
//! the sessions a rule created by a label in each session's data, not by id, and `revoke` is
//! given the id the listing returned: the contract lets a store list ids in another form (e.g.
//! hashed), and such a store passes too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::json;
use session_core::{Error, Id, MAX_PRINCIPAL_LEN, Record};
use tokio::sync::Barrier;

use crate::PrincipalStore;
use crate::support::*;

/// The data key under which each session of these rules carries its label.
const LABEL: &str = "label";

/// A principal no other rule, run or test uses.
fn principal() -> String {
    format!("ada-{}", Id::random().as_str())
}

/// A live session of `principal` (or of none), labelled `name` plus a random suffix so that
/// labels are unique even in a listing that wrongly shows other rules' sessions.
fn session(name: &str, principal: Option<&str>, ttl: time::Duration) -> Record {
    let mut record = sample(ttl);
    let suffix = Id::random();
    let label = format!("{name}/{}", &suffix.as_str()[..6]);
    insert(&mut record.data, LABEL, &json!(label));
    record.principal = principal.map(str::to_owned);
    record
}

fn label(record: &Record) -> String {
    match record.data.get::<String>(LABEL) {
        Ok(Some(label)) => label,
        // Not created by these rules: named by its id (a prefix) and keys, which tell it apart.
        _ => format!(
            "(unlabelled session {:?} with keys {:?})",
            record.id,
            record.data.keys().collect::<Vec<_>>()
        ),
    }
}

fn labels<'a>(records: impl IntoIterator<Item = &'a Record>) -> BTreeSet<String> {
    records.into_iter().map(label).collect()
}

fn now_plus_hours(hours: i64) -> time::OffsetDateTime {
    session_core::now() + time::Duration::hours(hours)
}

/// `principal`'s sessions as `sessions_of` lists them, by label.
async fn listed(store: &dyn PrincipalStore, principal: &str) -> BTreeMap<String, Record> {
    let records = match store.sessions_of(principal).await {
        Ok(records) => records,
        Err(e) => panic!("sessions_of({principal:?}) failed: {e} ({e:?})"),
    };
    let mut by_label = BTreeMap::new();
    for record in records {
        let label = label(&record);
        if by_label.insert(label.clone(), record).is_some() {
            panic!("sessions_of({principal:?}) listed the session {label:?} twice");
        }
    }
    by_label
}

/// Checks that `sessions_of(principal)` lists exactly `expected`, each as `load` returns it
/// (the id aside: a store may list ids in another form), and returns the listing.
async fn expect_listed(
    store: &dyn PrincipalStore,
    principal: &str,
    expected: &[&Record],
    context: &str,
) -> BTreeMap<String, Record> {
    let listing = listed(store, principal).await;
    let want = labels(expected.iter().copied());
    let got: BTreeSet<String> = listing.keys().cloned().collect();
    assert!(
        want == got,
        "{context}: sessions_of({principal:?}) listed {got:?}, expected exactly {want:?} \
         (missing {:?}, not expected {:?})",
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(&want).collect::<Vec<_>>(),
    );
    for record in expected {
        let label = label(record);
        let shown = &listing[&label];
        let context =
            format!("{context}: session {label:?} as sessions_of({principal:?}) lists it");
        assert_eq!(
            json_of(&shown.data),
            json_of(&record.data),
            "{context}: data"
        );
        assert_eq!(shown.created_at, record.created_at, "{context}: created_at");
        assert_eq!(shown.expires_at, record.expires_at, "{context}: expires_at");
        assert_eq!(shown.version, record.version, "{context}: version");
        assert_eq!(shown.principal, record.principal, "{context}: principal");
    }
    listing
}

/// The id `listing` gives the session labelled like `record`.
fn listed_id(listing: &BTreeMap<String, Record>, record: &Record) -> Id {
    match listing.get(&label(record)) {
        Some(shown) => shown.id.clone(),
        None => panic!("the listing has no session {:?}", label(record)),
    }
}

/// `load` returns `record`, principal included.
async fn loads_as(store: &dyn PrincipalStore, record: &Record, context: &str) {
    let loaded = load_some(store, &record.id).await;
    let context = format!("{context}: session {:?}", label(record));
    assert_same(&loaded, record, &context);
    assert_eq!(loaded.principal, record.principal, "{context}: principal");
}

async fn create_all(store: &dyn PrincipalStore, records: &[&Record]) {
    for record in records {
        create_ok(store, record).await;
    }
}

/// Saves `record` and returns it as now stored (version + 1).
async fn saved(store: &dyn PrincipalStore, record: Record) -> Record {
    save_ok(store, &record).await;
    let mut stored = record;
    stored.version += 1;
    stored
}

async fn revoke(store: &dyn PrincipalStore, principal: &str, id: &Id) -> bool {
    match store.revoke(principal, id).await {
        Ok(revoked) => revoked,
        Err(e) => panic!("revoke({principal:?}, {id:?}) failed: {e} ({e:?})"),
    }
}

async fn revoke_all(store: &dyn PrincipalStore, principal: &str, keep: Option<&Id>) -> u64 {
    match store.revoke_all(principal, keep).await {
        Ok(n) => n,
        Err(e) => panic!("revoke_all({principal:?}, keep {keep:?}) failed: {e} ({e:?})"),
    }
}

/// Principals a store must not confuse with `principal` (`ada-…`): other case, accents, one
/// character more or less, a trailing space (what case- and accent-insensitive collations,
/// `PAD SPACE` comparisons and prefix matches confuse).
fn lookalikes(principal: &str) -> Vec<String> {
    vec![
        principal.to_uppercase(),
        principal.replacen("ada", "äda", 1),
        format!("{principal}0"),
        principal[..principal.len() - 1].to_owned(),
        format!("{principal} "),
    ]
}

/// A principal of exactly [`MAX_PRINCIPAL_LEN`] bytes, mostly two-byte characters.
fn longest_principal() -> String {
    let mut principal = format!("{}-", Id::random().as_str());
    while principal.len() + 'é'.len_utf8() <= MAX_PRINCIPAL_LEN {
        principal.push('é');
    }
    while principal.len() < MAX_PRINCIPAL_LEN {
        principal.push('x');
    }
    principal
}

/// Principals `check_principal` refuses: empty, control characters, one byte too long (also
/// when it is few enough characters).
fn refused_principals() -> Vec<String> {
    vec![
        String::new(),
        "ada\nmallory".to_owned(),
        "nul\0".to_owned(),
        "x".repeat(MAX_PRINCIPAL_LEN + 1),
        "é".repeat(MAX_PRINCIPAL_LEN / 2 + 1),
    ]
}

/// `create` and `save` keep a record's principal and `load` returns it (also one set by a
/// `save`, as at login); a principal `check_principal` refuses is `Encode` and writes nothing;
/// `Store::principals` finds the capability.
pub async fn principal_round_trips(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let ada = format!("ユーザー {} <ada@example.com>", Id::random().as_str());
    let record = session("created", Some(&ada), HOUR);
    create_ok(store, &record).await;
    loads_as(store, &record, "created with a principal").await;

    let longest = longest_principal();
    let long = session("longest principal", Some(&longest), HOUR);
    create_ok(store, &long).await;
    loads_as(
        store,
        &long,
        &format!("created with a principal of {MAX_PRINCIPAL_LEN} bytes"),
    )
    .await;

    // Login: an anonymous session is saved with a principal; later saves keep it.
    let anonymous = session("login", None, HOUR);
    create_ok(store, &anonymous).await;
    loads_as(store, &anonymous, "created without a principal").await;
    let mut login = anonymous.clone();
    login.principal = Some(ada.clone());
    let login = saved(store, login).await;
    loads_as(store, &login, "saved with a principal (login)").await;
    let mut visit = login.clone();
    insert(&mut visit.data, "visits", &json!(4));
    let visit = saved(store, visit).await;
    loads_as(store, &visit, "saved again with the same principal").await;

    for bad in refused_principals() {
        let what = format!("principal {bad:?} ({} bytes)", bad.len());
        let refused = session("refused", Some(&bad), HOUR);
        match store.create(&refused).await {
            Err(Error::Encode(_)) => {}
            other => panic!(
                "create with {what} returned {other:?}, expected Err(Encode): check_principal \
                 refuses it"
            ),
        }
        load_none(
            store,
            &refused.id,
            &format!("create with {what} was refused"),
        )
        .await;
        let mut changed = visit.clone();
        changed.principal = Some(bad.clone());
        insert(&mut changed.data, "user", &json!("mallory"));
        match store.save(&changed).await {
            Err(Error::Encode(_)) => {}
            other => panic!(
                "save with {what} returned {other:?}, expected Err(Encode): check_principal \
                 refuses it"
            ),
        }
        loads_as(store, &visit, &format!("after a refused save with {what}")).await;
    }

    let Some(principals) = store.principals() else {
        panic!(
            "Store::principals() returned None for a store that implements Principals: code \
             holding an Arc<dyn Store> (the middleware) cannot find the capability"
        );
    };
    let through = match principals.sessions_of(&ada).await {
        Ok(records) => labels(&records),
        Err(e) => panic!("sessions_of({ada:?}) through Store::principals() failed: {e} ({e:?})"),
    };
    assert_eq!(
        through,
        labels([&record, &visit]),
        "sessions_of({ada:?}) through Store::principals()"
    );
}

/// `sessions_of` lists exactly the live sessions of the principal, each as `load` returns it;
/// never those of other principals, however alike their names, nor sessions without one.
pub async fn listing_sees_exactly_the_live_sessions_of_a_principal(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let ada = principal();
    let mine: Vec<Record> = (1..=3)
        .map(|i| session(&format!("mine {i}"), Some(&ada), HOUR))
        .collect();
    let theirs: Vec<(String, Record)> = lookalikes(&ada)
        .into_iter()
        .map(|other| {
            let record = session(&format!("of {other:?}"), Some(&other), HOUR);
            (other, record)
        })
        .collect();
    let anonymous = session("anonymous", None, HOUR);
    create_all(store, &mine.iter().collect::<Vec<_>>()).await;
    for (_, record) in &theirs {
        create_ok(store, record).await;
    }
    create_ok(store, &anonymous).await;
    // A session saved since it was created is listed as saved.
    let mut changed = mine[0].clone();
    insert(&mut changed.data, "visits", &json!(4));
    changed.expires_at = now_plus_hours(2);
    let changed = saved(store, changed).await;

    expect_listed(
        store,
        &ada,
        &[&changed, &mine[1], &mine[2]],
        &format!("3 sessions of {ada:?}, among sessions of lookalike principals"),
    )
    .await;
    for (other, record) in &theirs {
        expect_listed(
            store,
            other,
            &[record],
            &format!("one session of {other:?}, beside sessions of {ada:?}"),
        )
        .await;
    }
    expect_listed(store, &principal(), &[], "a principal that has no session").await;
}

/// An expired session is never listed: neither one whose real expiry passed (1.5 s) nor one
/// touched into the past, whatever the state of the store's index.
pub async fn expired_sessions_are_never_listed(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let ada = principal();
    let live = session("live", Some(&ada), HOUR);
    let touched = session("touched into the past", Some(&ada), HOUR);
    let short = session("expired after 1.5 s", Some(&ada), SHORT_TTL);
    create_all(store, &[&live, &touched]).await;
    expire(store, &touched.id).await;
    create_and_let_expire(store, std::slice::from_ref(&short)).await;
    expect_listed(
        store,
        &ada,
        &[&live],
        "one live session, one touched into the past and one whose expiry passed",
    )
    .await;
}

/// A deleted session is never listed, whatever the state of the store's index.
pub async fn deleted_sessions_are_never_listed(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let ada = principal();
    let sessions: Vec<Record> = (1..=3)
        .map(|i| session(&format!("session {i}"), Some(&ada), HOUR))
        .collect();
    create_all(store, &sessions.iter().collect::<Vec<_>>()).await;
    delete_ok(store, &sessions[0].id).await;
    expect_listed(
        store,
        &ada,
        &[&sessions[1], &sessions[2]],
        "3 sessions, one deleted",
    )
    .await;
    delete_ok(store, &sessions[1].id).await;
    delete_ok(store, &sessions[2].id).await;
    expect_listed(store, &ada, &[], "3 sessions, all deleted").await;
}

/// A `save` with another principal moves the session at once: the old principal no longer
/// lists it, the new one does; a `save` with none takes it out of every listing.
pub async fn changing_the_principal_moves_the_session(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let (ada, grace) = (principal(), principal());
    let moving = session("moving", Some(&ada), HOUR);
    let staying = session("staying", Some(&ada), HOUR);
    create_all(store, &[&moving, &staying]).await;

    let mut to_grace = moving.clone();
    to_grace.principal = Some(grace.clone());
    insert(&mut to_grace.data, "user", &json!("grace"));
    let to_grace = saved(store, to_grace).await;
    loads_as(store, &to_grace, "saved with another principal").await;
    let context = format!("after a session of {ada:?} was saved with {grace:?}");
    expect_listed(store, &ada, &[&staying], &context).await;
    expect_listed(store, &grace, &[&to_grace], &context).await;

    let mut to_nobody = to_grace.clone();
    to_nobody.principal = None;
    let to_nobody = saved(store, to_nobody).await;
    loads_as(store, &to_nobody, "saved without a principal").await;
    let context = "after that session was saved with no principal";
    expect_listed(store, &grace, &[], context).await;
    expect_listed(store, &ada, &[&staying], context).await;

    let mut back = to_nobody.clone();
    back.principal = Some(ada.clone());
    let back = saved(store, back).await;
    let context = format!("after that session was saved with {ada:?} again");
    expect_listed(store, &ada, &[&staying, &back], &context).await;
    expect_listed(store, &grace, &[], &context).await;
}

/// `revoke` of a session the principal's listing gave deletes that session only, returns
/// `true`, and `false` once it is gone; the principal's other sessions, other principals'
/// sessions and anonymous ones stay.
pub async fn revoke_removes_only_that_session(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let (ada, grace) = (principal(), principal());
    let mine: Vec<Record> = (1..=3)
        .map(|i| session(&format!("mine {i}"), Some(&ada), HOUR))
        .collect();
    let theirs = session("of grace", Some(&grace), HOUR);
    let anonymous = session("anonymous", None, HOUR);
    create_all(store, &[&mine[0], &mine[1], &mine[2], &theirs, &anonymous]).await;
    let listing = listed(store, &ada).await;
    let id = listed_id(&listing, &mine[0]);

    assert!(
        revoke(store, &ada, &id).await,
        "revoke({ada:?}, the id sessions_of gave) of a live session returned false"
    );
    let context = format!("after revoke of one session of {ada:?}");
    expect_listed(store, &ada, &[&mine[1], &mine[2]], &context).await;
    expect_listed(store, &grace, &[&theirs], &context).await;
    for record in [&mine[1], &mine[2], &theirs, &anonymous] {
        loads_as(store, record, &context).await;
    }
    assert!(
        !revoke(store, &ada, &id).await,
        "revoke({ada:?}) of a session it already revoked returned true"
    );
    assert!(
        !revoke(store, &ada, &Id::random()).await,
        "revoke({ada:?}) of an unknown id returned true"
    );
}

/// `revoke` of a session of another principal, or of none, returns `false` and leaves it alone.
pub async fn revoke_refuses_another_principals_session(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let (ada, mallory) = (principal(), principal());
    let victim = session("victim", Some(&ada), HOUR);
    let anonymous = session("anonymous", None, HOUR);
    create_all(store, &[&victim, &anonymous]).await;
    let id = listed_id(&listed(store, &ada).await, &victim);

    assert!(
        !revoke(store, &mallory, &id).await,
        "revoke({mallory:?}) of a session of {ada:?} returned true"
    );
    assert!(
        !revoke(store, &mallory, &anonymous.id).await,
        "revoke({mallory:?}) of a session of no principal returned true"
    );
    let context = format!("after {mallory:?} tried to revoke them");
    loads_as(store, &victim, &context).await;
    loads_as(store, &anonymous, &context).await;
    expect_listed(store, &ada, &[&victim], &context).await;
}

/// A revoked session is unloadable as soon as `revoke` or `revoke_all` returns: `load` is
/// `None`, `touch` is `false`, `save` is `NotFound`.
pub async fn revoked_sessions_are_unloadable_at_once(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let ada = principal();
    let sessions: Vec<Record> = (1..=4)
        .map(|i| session(&format!("session {i}"), Some(&ada), HOUR))
        .collect();
    create_all(store, &sessions.iter().collect::<Vec<_>>()).await;
    let id = listed_id(&listed(store, &ada).await, &sessions[0]);

    assert!(
        revoke(store, &ada, &id).await,
        "revoke({ada:?}) of a live session returned false"
    );
    gone(store, &sessions[0], "revoke returned").await;
    let n = revoke_all(store, &ada, None).await;
    for record in &sessions[1..] {
        gone(
            store,
            record,
            &format!("revoke_all returned (it reported {n})"),
        )
        .await;
    }
}

/// `record` is unloadable, untouchable and unsaveable, since `when`.
async fn gone(store: &dyn PrincipalStore, record: &Record, when: &str) {
    let label = label(record);
    load_none(
        store,
        &record.id,
        &format!("session {label:?} was revoked and {when}"),
    )
    .await;
    match store.touch(&record.id, now_plus_hours(2)).await {
        Ok(false) => {}
        other => panic!(
            "touch of session {label:?}, revoked and {when}, returned {other:?}, expected Ok(false)"
        ),
    }
    match store.save(record).await {
        Err(Error::NotFound) => {}
        other => panic!(
            "save of session {label:?}, revoked and {when}, returned {other:?}, expected \
             Err(NotFound)"
        ),
    }
}

/// `revoke_all` with a session to keep deletes every other live session of the principal,
/// returns how many, and leaves the kept one (and other principals' sessions) as they were.
pub async fn revoke_all_keeps_the_named_session(store: Arc<dyn PrincipalStore>) {
    let store = &*store;
    let (ada, grace) = (principal(), principal());
    let current = session("current device", Some(&ada), HOUR);
    let others: Vec<Record> = (1..=3)
        .map(|i| session(&format!("other device {i}"), Some(&ada), HOUR))
        .collect();
    let theirs = session("of grace", Some(&grace), HOUR);
    create_all(
        store,
        &[&current, &others[0], &others[1], &others[2], &theirs],
    )
    .await;

    // The app keeps the session of the request, whose id it holds.
    let n = revoke_all(store, &ada, Some(&current.id)).await;
    assert_eq!(
        n, 3,
        "revoke_all({ada:?}) keeping one of its 4 live sessions reported this many deleted"
    );
    let context = "after revoke_all kept the current session";
    loads_as(store, &current, context).await;
    loads_as(store, &theirs, context).await;
    for record in &others {
        load_none(
            store,
            &record.id,
            &format!("{context}: session {:?} was revoked", label(record)),
        )
        .await;
    }
    expect_listed(store, &ada, &[&current], context).await;
    expect_listed(store, &grace, &[&theirs], context).await;

    let n = revoke_all(store, &ada, None).await;
    assert_eq!(
        n, 1,
        "revoke_all({ada:?}) keeping none of its 1 live session reported this many deleted"
    );
    load_none(store, &current.id, "revoke_all kept none").await;
    expect_listed(store, &ada, &[], "after revoke_all kept none").await;
}

/// Writers in [`concurrent_creates_and_revokes_are_consistent`].
const WRITERS: usize = 4;
/// Sessions each writer creates.
const PER_WRITER: usize = 16;

/// A session of [`concurrent_creates_and_revokes_are_consistent`] and when its `create` began
/// and finished, on the rule's logical clock.
struct Created {
    record: Record,
    began: u64,
    finished: u64,
}

fn tick(clock: &AtomicU64) -> u64 {
    clock.fetch_add(1, Ordering::SeqCst)
}

/// Creates a session of `principal` named `name`, noting when the `create` began and finished.
async fn create_timed(
    store: Arc<dyn PrincipalStore>,
    clock: Arc<AtomicU64>,
    principal: String,
    name: String,
) -> Created {
    let record = session(&name, Some(&principal), HOUR);
    let began = tick(&clock);
    create_ok(&*store, &record).await;
    Created {
        record,
        began,
        finished: tick(&clock),
    }
}

/// Creates and revocations of one principal's sessions, run concurrently, leave a consistent
/// state: a session whose `create` finished before a `revoke_all` started is gone after it; one
/// created after every `revoke_all` returned stays; every other is either gone or listed; and
/// every session that still loads is listed, and only those (the counts `revoke_all` reported
/// add up to the sessions gone).
pub async fn concurrent_creates_and_revokes_are_consistent(store: Arc<dyn PrincipalStore>) {
    let ada = principal();
    // A logical clock: a `create` that ticks "finished" before a `revoke_all` ticks "started"
    // returned before that call began.
    let clock = Arc::new(AtomicU64::new(0));
    let create = |name: String| create_timed(store.clone(), clock.clone(), ada.clone(), name);

    // Sessions of earlier logins; the user looks at the list, and logs in once more elsewhere.
    let mut created = Vec::new();
    for i in 1..=8 {
        created.push(create(format!("before {i}")).await);
    }
    expect_listed(
        &*store,
        &ada,
        &created.iter().map(|c| &c.record).collect::<Vec<_>>(),
        "8 sessions, before any revocation",
    )
    .await;
    for i in 1..=4 {
        created.push(create(format!("after the list {i}")).await);
    }

    // Logins on several devices while "log out everywhere" runs, again and again.
    let start = Arc::new(Barrier::new(WRITERS + 1));
    let writing = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, clock, start) = (store.clone(), clock.clone(), start.clone());
            let ada = ada.clone();
            tokio::spawn(async move {
                start.wait().await;
                let mut mine = Vec::new();
                for i in 0..PER_WRITER {
                    let name = format!("writer {w} #{i}");
                    let created = create_timed(store.clone(), clock.clone(), ada.clone(), name);
                    mine.push(created.await);
                    for _ in 0..(w + i) % 3 {
                        tokio::task::yield_now().await;
                    }
                }
                mine
            })
        })
        .collect();
    let revoker = {
        let (store, clock, start, writing) =
            (store.clone(), clock.clone(), start.clone(), writing.clone());
        let ada = ada.clone();
        tokio::spawn(async move {
            start.wait().await;
            let mut calls = Vec::new();
            loop {
                let started = tick(&clock);
                let n = revoke_all(&*store, &ada, None).await;
                calls.push((started, tick(&clock), n));
                if !writing.load(Ordering::SeqCst) {
                    return calls;
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
    };
    for writer in writers {
        match writer.await {
            Ok(mine) => created.extend(mine),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    writing.store(false, Ordering::SeqCst);
    let calls = match revoker.await {
        Ok(calls) => calls,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };

    // Sessions created after the last revocation returned.
    for i in 1..=4 {
        created.push(create(format!("after {i}")).await);
    }

    let listing = listed(&*store, &ada).await;
    let last_end = calls.iter().map(|&(_, end, _)| end).max().unwrap_or(0);
    let mut broken = Vec::new();
    let mut gone = 0u64;
    for c in &created {
        let label = label(&c.record);
        let loads = match store.load(&c.record.id).await {
            Ok(found) => found.is_some(),
            Err(e) => panic!("load of session {label:?} failed: {e} ({e:?})"),
        };
        let is_listed = listing.contains_key(&label);
        gone += u64::from(!loads);
        let revoked_by = calls
            .iter()
            .position(|&(started, _, _)| c.finished < started);
        match (loads, is_listed) {
            (true, false) => broken.push(format!("{label:?} still loads but is not listed")),
            (false, true) => broken.push(format!("{label:?} is listed but does not load")),
            _ => {}
        }
        if let (true, Some(call)) = (loads, revoked_by) {
            broken.push(format!(
                "{label:?} still loads, though its create returned before revoke_all #{call} began"
            ));
        }
        if !loads && c.began > last_end {
            broken.push(format!(
                "{label:?} is gone, though it was created after every revoke_all returned"
            ));
        }
    }
    let created_labels = labels(created.iter().map(|c| &c.record));
    for label in listing.keys().filter(|l| !created_labels.contains(*l)) {
        broken.push(format!(
            "{label:?} is listed, but the rule never created it"
        ));
    }
    let reported: u64 = calls.iter().map(|&(_, _, n)| n).sum();
    if reported != gone {
        broken.push(format!(
            "the revoke_all calls reported {reported} deleted in all, but {gone} sessions are gone"
        ));
    }
    const SHOWN: usize = 20;
    let more = broken.len().saturating_sub(SHOWN);
    assert!(
        broken.is_empty(),
        "{} sessions of {ada:?} created while {} revoke_all calls ran ({:?} deleted each):\n  \
         {}{}",
        created.len(),
        calls.len(),
        calls.iter().map(|&(_, _, n)| n).collect::<Vec<_>>(),
        broken[..broken.len().min(SHOWN)].join("\n  "),
        if more > 0 {
            format!("\n  … and {more} more")
        } else {
            String::new()
        },
    );
}
