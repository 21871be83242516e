#![doc = include_str!("../README.md")]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use session_core::Store;

mod rules;

pub use rules::*;

/// The function that checks one rule against a store; it panics if the store breaks the rule.
pub type Check = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// A rule of the contract, as a value: its name and the function that checks it.
#[derive(Clone, Copy)]
pub struct Rule {
    /// The rule's name, which is also the name of its `pub async fn` and of its test.
    pub name: &'static str,
    /// Runs the rule against a store; panics with a message if the store breaks it.
    pub check: Check,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("name", &self.name).finish()
    }
}

/// Every rule of the contract, in the order `store_tests!` declares them.
pub static RULES: &[Rule] = __with_rules!(__rule_table!());

/// Expands to one `#[test]` per rule of the contract, each named like the rule.
///
/// `$setup` is an `async fn() -> (S, G)` where `S: Store` and `G` is anything that must stay
/// alive while the test runs (a container, a temporary directory, `()`). Every test calls it
/// once and runs its rule on a multi-threaded tokio runtime, with a time limit of
/// [`RULE_TIME_LIMIT`] so that a hanging store fails instead of blocking the run.
///
/// See the [crate documentation](crate) for a complete `tests/conformance.rs`.
#[macro_export]
macro_rules! store_tests {
    ($setup:path) => {
        $crate::__with_rules!(__store_tests!($setup));
    };
}

/// How long one rule may take before its test fails.
pub const RULE_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The list of rules: the one place it is written.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_rules {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! {$($args)*;
            create_then_load_round_trips,
            create_existing_live_id_fails,
            concurrent_creates_exactly_one_wins,
            create_over_expired_record_succeeds,
            create_after_delete_succeeds,
            load_unknown_id_is_none,
            load_expired_record_is_none,
            save_current_version_bumps_version,
            save_stale_version_conflicts,
            save_after_delete_is_not_found,
            save_unknown_id_is_not_found,
            save_over_expired_record_is_not_found,
            concurrent_saves_of_one_version_exactly_one_wins,
            touch_moves_expiry_only,
            touch_unknown_id_reports_absence,
            touch_into_past_makes_record_unloadable,
            delete_removes,
            delete_unknown_id_is_ok,
            empty_data_round_trips,
            large_record_round_trips,
            unicode_and_binary_values_round_trip,
            thousand_records_coexist,
            expires_in_real_time
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests {
    ($setup:path; $($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                $crate::__private::run(stringify!($rule), async {
                    let (store, _guard) = $setup().await;
                    $crate::$rule($crate::__private::share(store)).await;
                });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_table {
    (; $($rule:ident),* $(,)?) => {
        &[$(
            $crate::Rule {
                name: stringify!($rule),
                check: |store| ::std::boxed::Box::pin($crate::$rule(store)),
            },
        )*]
    };
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn share<S: Store>(store: S) -> Arc<dyn Store> {
        Arc::new(store)
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
