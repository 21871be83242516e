//! The suite, through its five public macros, against the correct reference store: every rule
//! passes.

mod common;

use std::sync::Arc;

use common::{ReferenceStore, Switch};
use session_core::Clock;

async fn setup() -> (ReferenceStore, ()) {
    (ReferenceStore::default(), ())
}

fn with_clock(store: &ReferenceStore, clock: Arc<dyn Clock>) -> ReferenceStore {
    store.with_clock(clock)
}

async fn outage_setup() -> (ReferenceStore, Switch) {
    let store = ReferenceStore::default().with_timeout(session_conformance::OUTAGE_TIMEOUT);
    let switch = store.switch();
    (store, switch)
}

mod store {
    session_conformance::store_tests!(super::setup);
}

mod skew {
    // `with_clock` as a closure, the form an adapter's builder method takes.
    session_conformance::skew_tests!(super::setup, |store: &super::ReferenceStore, clock| store
        .with_clock(clock));
}

mod cleanup {
    session_conformance::cleanup_tests!(super::setup, super::with_clock);
}

mod outage {
    session_conformance::outage_tests!(super::outage_setup);
}

mod principals {
    session_conformance::principal_tests!(super::setup);
}
