//! The behaviour every [`JobStore`] must have, written once: the suite the crate runs on its
//! memory, SQLite and PostgreSQL stores, exported so that a store written outside the crate
//! runs the same one (feature `testing`).
//!
//! Each scenario is an `async fn` taking a fresh [`Fixture`] (a queue over a new, empty store
//! with a [`ManualClock`]); [`run_store_suite`] runs them all, one fresh store each.
//!
//! ```no_run
//! # async fn demo() {
//! use appforge_jobs::MemoryJobStore;
//! use appforge_jobs::testing::{Fixture, run_store_suite};
//!
//! run_store_suite(|| async { Fixture::new(MemoryJobStore::new(), Box::new(())) }).await;
//! // Or one scenario: appforge_jobs::testing::dedupe_while_active(fixture).await
//! # }
//! ```
//!
//! # Panics
//!
//! A scenario panics (as a test assertion does) when the store misbehaves.

mod lifecycle;
mod operations;
mod orgs;

pub use lifecycle::*;
pub use operations::*;
pub use orgs::*;

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use appforge_core::{Clock, ManualClock};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::{
    ClaimRequest, Finish, FinishRequest, Job, JobQueue, JobStore, Lease, NewJob, RetryPolicy,
    WorkerId,
};

/// The lease the scenarios claim with.
pub const LEASE: Duration = Duration::from_secs(30);

/// A queue on a fresh store with a manual clock, as every scenario starts.
pub struct Fixture<S> {
    /// The queue over `store`: 3 attempts, backoff from 5 s to 5 min, the manual clock.
    pub queue: JobQueue<S>,
    /// The store under test.
    pub store: S,
    /// The clock the queue reads, at 2026-03-14 12:00:00 UTC to begin with.
    pub clock: ManualClock,
    _guard: Box<dyn Any + Send>,
}

impl<S> std::fmt::Debug for Fixture<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").finish_non_exhaustive()
    }
}

impl<S: JobStore> Fixture<S> {
    /// A fixture over `store`, new and empty (migrated, for a SQL store); `guard` keeps what
    /// the store needs alive (a temporary file, a test database) until the fixture is dropped.
    ///
    /// # Panics
    ///
    /// Never for a valid store: the queue's settings are fixed.
    pub fn new(store: S, guard: Box<dyn Any + Send>) -> Self {
        let clock = ManualClock::at("2026-03-14T12:00:00Z".parse().expect("a valid timestamp"));
        let queue = JobQueue::builder(store.clone())
            .clock(clock.shared())
            .retry_policy(
                RetryPolicy::default()
                    .max_attempts(3)
                    .backoff_range(Duration::from_secs(5), Duration::from_secs(300)),
            )
            .subscription_poll(Duration::from_millis(200))
            .build()
            .expect("valid queue settings");
        Self {
            queue,
            store,
            clock,
            _guard: guard,
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The clock's time.
    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// A job of `kind` for `user` with a small payload.
pub fn job(kind: &str, user: Uuid) -> NewJob {
    NewJob::new(kind, user, json!({ "prompt": "a habit tracker" }))
}

/// Claims up to `limit` jobs for `worker` at the fixture's time, leased for [`LEASE`].
///
/// # Panics
///
/// When the store fails.
pub async fn claim<S: JobStore>(f: &Fixture<S>, worker: WorkerId, limit: u32) -> Vec<Job> {
    let now = f.clock_now();
    f.store
        .claim(&ClaimRequest {
            worker,
            kinds: None,
            limit,
            now,
            lease_until: now + chrono::Duration::from_std(LEASE).expect("a short lease"),
            exclude_users: Vec::new(),
        })
        .await
        .expect("claim")
}

/// Ends one attempt at the fixture's time: the store's answer for it.
///
/// # Panics
///
/// When the store fails as a whole.
pub async fn finish<S: JobStore>(
    f: &Fixture<S>,
    lease: Lease,
    finish: Finish,
) -> crate::Result<Job> {
    let mut out = f
        .store
        .finish(&[FinishRequest {
            lease,
            finish,
            now: f.clock_now(),
        }])
        .await
        .expect("finish");
    out.pop().expect("one answer per request")
}

/// A completion with a result and token counts.
pub fn complete() -> Finish {
    Finish::Complete {
        result: json!({"files": 3}),
        input_tokens: 100,
        output_tokens: 2000,
    }
}

/// Runs every scenario of the suite, each on a fresh fixture from `make`.
///
/// # Panics
///
/// When a scenario's assertion fails: the store does not behave as the built-in ones do.
pub async fn run_store_suite<S, F, Fut>(make: F)
where
    S: JobStore,
    F: Fn() -> Fut,
    Fut: Future<Output = Fixture<S>>,
{
    macro_rules! run {
        ($name:ident) => {
            $name(make().await).await;
        };
    }
    run!(enqueue_and_owner_only_get);
    run!(claims_by_priority_then_fifo);
    run!(claim_waits_for_run_at_and_filters_kinds);
    run!(complete_records_result_tokens_and_duration);
    run!(illegal_transitions_are_errors);
    run!(retry_schedules_attempt_in_the_future);
    run!(fail_is_terminal);
    run!(dedupe_while_active);
    run!(cancel_pending_job);
    run!(cancel_running_job_requests_then_cancels);
    run!(lease_expiry_rescues_and_fences_the_stale_worker);
    run!(rescue_fails_when_attempts_are_spent);
    run!(renew_extends_only_held_leases);
    run!(release_gives_the_attempt_back);
    run!(excluded_users_are_skipped_and_deferred_jobs_wait);
    run!(progress_is_guarded_by_the_lease);
    run!(operator_requeue);
    run!(history_pagination_newest_first);
    run!(retention_by_age_and_count);
    run!(redaction_rewrites_finished_jobs_only);
    run!(stats_depth_rates_and_durations);
    run!(bulk_enqueue_and_drain);
    run!(workers_registry);
    run!(alerts_on_length_failures_and_stuck_jobs);
    run!(operator_listing_across_users);
    run!(org_jobs_are_read_within_their_org_only);
    run!(org_jobs_are_cancelled_within_their_org_only);
    run!(org_id_round_trips_through_claim_and_complete);
}
