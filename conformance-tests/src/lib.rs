#![doc = include_str!("../README.md")]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use session_core::{ExpiredDeletion, Principals, Store};

mod cleanup_rules;
mod macros;
mod outage_rules;
mod principal_rules;
mod skew_rules;
mod store_rules;
mod support;

pub use cleanup_rules::*;
pub use outage_rules::*;
pub use principal_rules::*;
pub use skew_rules::*;
pub use store_rules::*;

/// The function that checks one rule; it panics if the store breaks the rule.
///
/// `A` is what the rule runs against: a store for [`RULES`], [`Hosts`] for [`SKEW_RULES`] and
/// [`CLEANUP_RULES`], [`Outaged`] for [`OUTAGE_RULES`], a [`PrincipalStore`] for
/// [`PRINCIPAL_RULES`].
pub type Check<A = Arc<dyn Store>> = fn(A) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// A rule of the contract, as a value: its name and the function that checks it.
pub struct Rule<A = Arc<dyn Store>> {
    /// The rule's name, which is also the name of its `pub async fn` and of its test.
    pub name: &'static str,
    /// Runs the rule; panics with a message if the store breaks it.
    pub check: Check<A>,
}

impl<A> Clone for Rule<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for Rule<A> {}

impl<A> std::fmt::Debug for Rule<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("name", &self.name).finish()
    }
}

/// Every rule of [`store_tests!`], in the order of the contract (`session_core::Store`).
pub static RULES: &[Rule] = crate::__with_rules!(__rule_table!(plain));

/// Every rule of [`skew_tests!`], in the order of the contract.
pub static SKEW_RULES: &[Rule<Hosts>] = crate::__with_skew_rules!(__rule_table!(plain));

/// Every rule of [`cleanup_tests!`], in the order of the contract of
/// `session_core::ExpiredDeletion`.
pub static CLEANUP_RULES: &[Rule<Hosts<dyn CleanupStore>>] =
    crate::__with_cleanup_rules!(__rule_table!(plain));

/// Every rule of [`outage_tests!`].
pub static OUTAGE_RULES: &[Rule<Outaged>] = crate::__with_outage_rules!(__rule_table!(outage));

/// Every rule of [`principal_tests!`], in the order of the contract of `session_core::Principals`.
pub static PRINCIPAL_RULES: &[Rule<Arc<dyn PrincipalStore>>] =
    crate::__with_principal_rules!(__rule_table!(plain));

// The values rules run against cross threads (each rule is a spawned task).
const _: () = {
    const fn send_sync<T: Send + Sync + ?Sized>() {}
    send_sync::<Rule>();
    send_sync::<Hosts>();
    send_sync::<Hosts<dyn CleanupStore>>();
    send_sync::<Outaged>();
    send_sync::<Arc<dyn PrincipalStore>>();
};

/// How long one rule may take before its test fails: a store that hangs fails the rule instead
/// of blocking the run.
pub const RULE_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// How far the app clocks of [`skew_tests!`] are off: one host runs this much fast, another this
/// much slow, against the same backend.
pub const SKEW: time::Duration = time::Duration::minutes(10);

/// The operation time limit a store under [`outage_tests!`] must be built with (its
/// `with_timeout`): 1 second.
pub const OUTAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// How much later than [`OUTAGE_TIMEOUT`] an operation on a paused backend may return, for the
/// scheduler and the driver's own bookkeeping: 2 seconds.
pub const OUTAGE_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

/// How soon after the backend is resumed the same store handle must work again: 10 seconds
/// (time for a driver to notice a dead connection and open a new one).
pub const RECOVERY_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// A backend that can be frozen and unfrozen, for [`outage_tests!`]: the guard a fixture
/// returns beside the store (e.g. `session_testcontainers::Container`, which pauses its
/// container).
///
/// While paused the backend accepts connections but answers nothing, the way a server under a
/// long garbage-collection pause, a full disk or a network partition behaves.
pub trait Outage: Send + Sync {
    /// Freezes the backend; returns once requests hang.
    fn pause(&self) -> impl Future<Output = ()> + Send;
    /// Unfreezes the backend; returns once it answers again.
    fn resume(&self) -> impl Future<Output = ()> + Send;
}

/// Three handles on one backend, as three app servers whose clocks disagree: what the rules of
/// [`skew_tests!`] and [`cleanup_tests!`] run against.
///
/// `store`'s app clock is the host's; `fast`'s runs [`SKEW`] ahead and `slow`'s [`SKEW`] behind.
pub struct Hosts<S: ?Sized = dyn Store> {
    /// A handle whose app clock is the host's.
    pub store: Arc<S>,
    /// A handle on the same backend whose app clock runs [`SKEW`] fast.
    pub fast: Arc<S>,
    /// A handle on the same backend whose app clock runs [`SKEW`] slow.
    pub slow: Arc<S>,
}

impl<S: ?Sized> Clone for Hosts<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            fast: self.fast.clone(),
            slow: self.slow.clone(),
        }
    }
}

impl<S: ?Sized> std::fmt::Debug for Hosts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts").finish_non_exhaustive()
    }
}

/// A store that also removes expired records: what [`cleanup_tests!`] checks. Implemented for
/// every `Store + ExpiredDeletion`.
pub trait CleanupStore: Store + ExpiredDeletion {}

impl<T: Store + ExpiredDeletion + ?Sized> CleanupStore for T {}

/// A store that also lists and revokes the sessions of a principal: what [`principal_tests!`]
/// checks. Implemented for every `Store + Principals`.
pub trait PrincipalStore: Store + Principals {}

impl<T: Store + Principals + ?Sized> PrincipalStore for T {}

/// What an [`OUTAGE_RULES`] check runs against: a store and the switch of its backend.
pub struct Outaged {
    /// A store built with [`OUTAGE_TIMEOUT`].
    pub store: Arc<dyn Store>,
    /// Pauses and resumes the store's backend.
    pub outage: Box<dyn DynOutage>,
}

impl std::fmt::Debug for Outaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outaged").finish_non_exhaustive()
    }
}

/// [`Outage`] as a trait object, implemented for every [`Outage`]; it implements [`Outage`]
/// again, so the rules take either.
pub trait DynOutage: Send + Sync {
    /// [`Outage::pause`], boxed.
    fn pause_boxed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// [`Outage::resume`], boxed.
    fn resume_boxed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<G: Outage> DynOutage for G {
    fn pause_boxed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.pause())
    }

    fn resume_boxed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.resume())
    }
}

impl Outage for Box<dyn DynOutage> {
    fn pause(&self) -> impl Future<Output = ()> + Send {
        (**self).pause_boxed()
    }

    fn resume(&self) -> impl Future<Output = ()> + Send {
        (**self).resume_boxed()
    }
}

impl<G: Outage + ?Sized> Outage for Arc<G> {
    fn pause(&self) -> impl Future<Output = ()> + Send {
        (**self).pause()
    }

    fn resume(&self) -> impl Future<Output = ()> + Send {
        (**self).resume()
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use session_core::Clock;
    use session_core::clock::OffsetClock;

    pub fn share<S: Store>(store: S) -> Arc<dyn Store> {
        Arc::new(store)
    }

    pub fn share_principals<S: Store + Principals>(store: S) -> Arc<dyn PrincipalStore> {
        Arc::new(store)
    }

    fn clocks() -> (Arc<dyn Clock>, Arc<dyn Clock>) {
        (
            Arc::new(OffsetClock::new(SKEW)),
            Arc::new(OffsetClock::new(-SKEW)),
        )
    }

    pub fn hosts<S: Store>(store: S, with_clock: impl Fn(&S, Arc<dyn Clock>) -> S) -> Hosts {
        let (fast, slow) = clocks();
        Hosts {
            fast: Arc::new(with_clock(&store, fast)),
            slow: Arc::new(with_clock(&store, slow)),
            store: Arc::new(store),
        }
    }

    pub fn cleanup_hosts<S: Store + ExpiredDeletion>(
        store: S,
        with_clock: impl Fn(&S, Arc<dyn Clock>) -> S,
    ) -> Hosts<dyn CleanupStore> {
        let (fast, slow) = clocks();
        Hosts {
            fast: Arc::new(with_clock(&store, fast)),
            slow: Arc::new(with_clock(&store, slow)),
            store: Arc::new(store),
        }
    }

    pub fn run(name: &str, test: impl Future<Output = ()>) {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => panic!("cannot start a tokio runtime for rule {name}: {e}"),
        };
        runtime.block_on(async {
            if tokio::time::timeout(RULE_TIME_LIMIT, test).await.is_err() {
                panic!("rule {name} did not finish within {RULE_TIME_LIMIT:?}: the store hangs");
            }
        });
    }
}
