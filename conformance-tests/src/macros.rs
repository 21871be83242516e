//! The five public macros, and the one place each list of rules is written.
//!
//! Each `__with_*_rules!` holds a list and hands it to a callback macro: `__*_tests!` turns it
//! into `#[test]`s, `__rule_table!` into the `Rule` values of `RULES` and its siblings.

/// Expands to one `#[test]` per rule of [`RULES`](crate::RULES), each named like the rule.
///
/// `setup` (a path or an expression, e.g. a closure) is an `async fn() -> (S, G)` where
/// `S: Store` and `G` is anything that must stay alive while the test runs (a container, a
/// temporary directory, `()`). Every test calls it once and runs its rule on a multi-threaded
/// tokio runtime, with a time limit of [`RULE_TIME_LIMIT`](crate::RULE_TIME_LIMIT) so that a
/// hanging store fails instead of blocking the run.
///
/// See the [crate documentation](crate) for a complete `tests/conformance.rs`.
#[macro_export]
macro_rules! store_tests {
    ($setup:expr $(,)?) => {
        $crate::__with_rules!(__store_tests!(share, $setup));
    };
}

/// Expands to one `#[test]` per rule of [`SKEW_RULES`](crate::SKEW_RULES): app servers whose
/// clocks are [`SKEW`](crate::SKEW) fast or slow agree with the backend on what is expired.
///
/// `setup` is as for [`store_tests!`]. `with_clock` (a path or a closure) is a
/// `fn(&S, Arc<dyn session_core::Clock>) -> S` that returns a second handle on the **same**
/// backend whose app clock is the given one, e.g.
/// `|store: &MyStore, clock| store.clone().with_clock(clock)`.
#[macro_export]
macro_rules! skew_tests {
    ($setup:expr, $with_clock:expr $(,)?) => {
        $crate::__with_skew_rules!(__hosts_tests!(hosts, $setup, $with_clock));
    };
}

/// Expands to one `#[test]` per rule of [`CLEANUP_RULES`](crate::CLEANUP_RULES): the
/// `session_core::ExpiredDeletion` contract.
///
/// `setup` is as for [`store_tests!`], with `S: Store + ExpiredDeletion`, and must return a
/// store over an **empty** namespace (a fresh table, collection or prefix): the rules count what
/// cleanup deletes. `with_clock` is as for [`skew_tests!`].
#[macro_export]
macro_rules! cleanup_tests {
    ($setup:expr, $with_clock:expr $(,)?) => {
        $crate::__with_cleanup_rules!(__hosts_tests!(cleanup_hosts, $setup, $with_clock));
    };
}

/// Expands to one `#[test]` per rule of [`OUTAGE_RULES`](crate::OUTAGE_RULES): a paused backend
/// makes every operation fail in bounded time, and the store recovers when it is resumed.
///
/// `setup` is an `async fn() -> (S, G)` where `S: Store` is built with
/// [`OUTAGE_TIMEOUT`](crate::OUTAGE_TIMEOUT) as its operation time limit and `G:`
/// [`Outage`](crate::Outage) pauses and resumes that store's backend (and nothing else's).
#[macro_export]
macro_rules! outage_tests {
    ($setup:expr $(,)?) => {
        $crate::__with_outage_rules!(__outage_tests!($setup));
    };
}

/// Expands to one `#[test]` per rule of [`PRINCIPAL_RULES`](crate::PRINCIPAL_RULES): the
/// `session_core::Principals` contract, listing and revoking the sessions of one principal.
///
/// `setup` is as for [`store_tests!`], with `S: Store + Principals`. Every rule works with
/// principals of its own, drawn at random, so the stores `setup` returns may share one backend.
#[macro_export]
macro_rules! principal_tests {
    ($setup:expr $(,)?) => {
        $crate::__with_principal_rules!(__store_tests!(share_principals, $setup));
    };
}

/// The rules of `store_tests!`, in the order of the contract.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_rules {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! {$($args)*;
            create_then_load_round_trips,
            create_existing_live_id_fails,
            concurrent_creates_exactly_one_wins,
            create_over_expired_record_succeeds,
            concurrent_creates_over_expired_record_exactly_one_wins,
            create_after_delete_succeeds,
            load_unknown_id_is_none,
            load_expired_record_is_none,
            empty_data_round_trips,
            large_record_round_trips,
            unicode_and_binary_values_round_trip,
            thousand_records_coexist,
            save_current_version_bumps_version,
            save_keeps_stored_created_at,
            save_stale_version_conflicts,
            save_after_delete_is_not_found,
            save_unknown_id_is_not_found,
            save_over_expired_record_is_not_found,
            concurrent_saves_of_one_version_exactly_one_wins,
            save_racing_delete_never_revives,
            touch_moves_expiry_only,
            touch_racing_save_keeps_saved_data,
            touch_unknown_id_reports_absence,
            touch_into_past_reports_presence,
            touch_into_past_makes_record_unloadable,
            delete_removes,
            delete_unknown_id_is_ok,
            create_beyond_max_version_is_refused,
            save_at_max_version_is_refused,
            expires_in_real_time
        }
    };
}

/// The rules of `skew_tests!`, in the order of the contract.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_skew_rules {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! {$($args)*;
            fast_host_loads_live_sessions,
            fast_host_touches_and_saves_live_sessions,
            fast_host_cannot_create_over_live_sessions,
            slow_host_never_loads_expired_sessions,
            slow_host_never_touches_or_saves_expired_sessions,
            slow_host_creates_over_expired_sessions
        }
    };
}

/// The rules of `cleanup_tests!`, in the order of the contract.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cleanup_rules {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! {$($args)*;
            cleanup_removes_every_expired_record,
            cleanup_honours_batch_limit,
            cleanup_never_deletes_live_records,
            cleanup_on_fast_host_keeps_live_records
        }
    };
}

/// The rules of `principal_tests!`, in the order of the contract.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_principal_rules {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! {$($args)*;
            principal_round_trips,
            listing_sees_exactly_the_live_sessions_of_a_principal,
            expired_sessions_are_never_listed,
            deleted_sessions_are_never_listed,
            changing_the_principal_moves_the_session,
            revoke_removes_only_that_session,
            revoke_refuses_another_principals_session,
            revoked_sessions_are_unloadable_at_once,
            revoke_all_keeps_the_named_session,
            concurrent_creates_and_revokes_are_consistent
        }
    };
}

/// The rules of `outage_tests!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_outage_rules {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! {$($args)*;
            paused_backend_fails_every_operation_in_time,
            backend_recovers_after_outage
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests {
    ($share:ident, $setup:expr; $($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                $crate::__private::run(stringify!($rule), async {
                    let (store, _guard) = ($setup)().await;
                    $crate::$rule($crate::__private::$share(store)).await;
                });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __hosts_tests {
    ($hosts:ident, $setup:expr, $with_clock:expr; $($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                $crate::__private::run(stringify!($rule), async {
                    let (store, _guard) = ($setup)().await;
                    $crate::$rule($crate::__private::$hosts(store, $with_clock)).await;
                });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __outage_tests {
    ($setup:expr; $($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                $crate::__private::run(stringify!($rule), async {
                    let (store, outage) = ($setup)().await;
                    $crate::$rule($crate::__private::share(store), &outage).await;
                });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_table {
    (plain; $($rule:ident),* $(,)?) => {
        &[$(
            $crate::Rule {
                name: stringify!($rule),
                check: |arg| ::std::boxed::Box::pin($crate::$rule(arg)),
            },
        )*]
    };
    (outage; $($rule:ident),* $(,)?) => {
        &[$(
            $crate::Rule {
                name: stringify!($rule),
                check: |case: $crate::Outaged| ::std::boxed::Box::pin(async move {
                    $crate::$rule(case.store, &case.outage).await
                }),
            },
        )*]
    };
}
