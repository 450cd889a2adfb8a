//! Integration tests of appforge-jobs: one binary, the conformance suite instantiated per
//! backend, plus worker, event and operations tests.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod crash;
mod fixtures;

/// The store suite the crate exports (`appforge_jobs::testing`), run here on every backend.
use appforge_jobs::testing as conformance;
mod workers;

/// Generates one `#[tokio::test]` per name, calling `crate::$module::$name(fixture)`; a test
/// whose fixture is not available (PostgreSQL without `DATABASE_URL`) returns at once.
macro_rules! tests_for {
    ($make:path; $module:ident; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                // `None`: the backend is not available here (PostgreSQL without
                // `DATABASE_URL`), and the fixture said why.
                let Some(fixture) = $make().await else {
                    return;
                };
                crate::$module::$name(fixture).await;
            }
        )*
    };
}

/// Instantiates the store-level conformance suite with a fixture constructor.
macro_rules! store_suite {
    ($make:path) => {
        tests_for!($make; conformance;
            enqueue_and_owner_only_get,
            claims_by_priority_then_fifo,
            claim_waits_for_run_at_and_filters_kinds,
            complete_records_result_tokens_and_duration,
            illegal_transitions_are_errors,
            retry_schedules_attempt_in_the_future,
            fail_is_terminal,
            dedupe_while_active,
            cancel_pending_job,
            cancel_running_job_requests_then_cancels,
            lease_expiry_rescues_and_fences_the_stale_worker,
            rescue_fails_when_attempts_are_spent,
            renew_extends_only_held_leases,
            release_gives_the_attempt_back,
            excluded_users_are_skipped_and_deferred_jobs_wait,
            progress_is_guarded_by_the_lease,
            operator_requeue,
            history_pagination_newest_first,
            operator_listing_across_users,
            retention_by_age_and_count,
            redaction_rewrites_finished_jobs_only,
            stats_depth_rates_and_durations,
            bulk_enqueue_and_drain,
            workers_registry,
            alerts_on_length_failures_and_stuck_jobs,
            org_jobs_are_read_within_their_org_only,
            org_jobs_are_cancelled_within_their_org_only,
            org_id_round_trips_through_claim_and_complete,
        );
    };
}

/// Instantiates the worker-level suite.
macro_rules! worker_suite {
    ($make:path) => {
        tests_for!($make; workers;
            runs_a_job_and_streams_its_events,
            retries_with_backoff_then_succeeds,
            permanent_error_fails_at_once,
            panicking_handler_fails_the_attempt_not_the_pool,
            cancelling_a_running_job_fires_its_token,
            graceful_shutdown_releases_unfinished_jobs,
            stop_claiming_lets_running_jobs_finish,
            concurrency_limit_holds,
            admission_defers_without_spending_an_attempt,
            heartbeat_renews_the_lease,
            terminal_hook_fires_once_per_terminal_job,
            late_subscriber_gets_state_then_the_rest,
            prefetched_jobs_wait_for_a_slot_and_are_given_back,
            typed_jobs_round_trip_alongside_string_kinds,
            undecodable_typed_payload_fails_permanently,
        );
    };
}

mod memory {
    store_suite!(crate::fixtures::memory);
    worker_suite!(crate::fixtures::memory);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    store_suite!(crate::fixtures::sqlite);
    worker_suite!(crate::fixtures::sqlite);
}

#[cfg(feature = "postgres")]
mod postgres {
    store_suite!(crate::fixtures::postgres);
    worker_suite!(crate::fixtures::postgres);
}
