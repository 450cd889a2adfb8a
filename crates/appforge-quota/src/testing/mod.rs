//! The conformance suite every [`UsageStore`] passes: one behavioural test body per rule, run
//! here on memory, SQLite and PostgreSQL, and on any store outside this crate with
//! [`usage_store_suite!`](crate::usage_store_suite).
//!
//! Each case builds a [`Quota`] over a fresh store (with a manual clock) and checks what the
//! crate promises: limits, windows that reset once, idempotent settlement, expiry, held
//! reservations, and exact limits under concurrent calls. The macro expands every case into a
//! `#[tokio::test]` (the calling crate needs `tokio` with `macros` and `rt-multi-thread`).
//!
//! ```no_run
//! use appforge_quota::MemoryUsageStore;
//! use appforge_quota::testing::Backend;
//!
//! async fn backend() -> Option<Backend<MemoryUsageStore>> {
//!     Some(Backend::new(MemoryUsageStore::new()))
//! }
//!
//! appforge_quota::usage_store_suite!(backend);
//! # fn main() {}
//! ```

mod concurrency;
mod limits;
mod reservations;
mod windows;

pub use concurrency::{
    concurrent_chat_and_generations_admit_exactly_the_limits,
    concurrent_mixed_costs_and_commits_add_up, concurrent_reservations_admit_exactly_the_limit,
    midnight_resets_once_under_concurrency,
};
pub use limits::{
    burst_limits_refuse_with_a_wait, chat_messages_have_their_own_daily_count,
    commit_and_refund_are_idempotent, free_plan_admits_five_a_day, plan_changes_keep_the_window,
    plans_round_trip_through_the_store, pro_admits_fifty_and_team_is_unlimited,
    tokens_are_counted_and_limited,
};
pub use reservations::{
    expired_chat_messages_are_released, expired_reservations_are_released,
    held_reservations_never_expire, refunds_give_back_the_count_and_may_keep_tokens,
    reservations_can_be_held_from_the_start, tokens_of_each_attempt_are_recorded,
};
pub use windows::{
    a_refund_after_rollover_leaves_the_new_window, billing_periods_are_monthly_windows,
    days_follow_the_deployment_offset, days_roll_over_at_midnight_utc,
    months_end_on_their_last_day, windows_reset_once,
};

use std::any::Any;
use std::fmt;
use std::time::Duration;

use appforge_core::ManualClock;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    Admission, Plan, PlanCatalogue, Quota, QuotaStatus, Reservation, Resource, StoreContext, Usage,
    UsageStore, Windows,
};

type Guard = Box<dyn Any + Send + Sync>;

/// A fresh store under test, and whatever keeps its database alive.
pub struct Backend<S> {
    /// The store: empty, migrated.
    pub store: S,
    guard: Guard,
}

impl<S: fmt::Debug> fmt::Debug for Backend<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<S> Backend<S> {
    /// A fresh, migrated store.
    pub fn new(store: S) -> Self {
        Self {
            store,
            guard: Box::new(()),
        }
    }

    /// Keeps `guard` (a temporary file, a test database) alive as long as the case runs.
    #[must_use]
    pub fn guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self.guard = Box::new(guard);
        self
    }

    fn into_parts(self) -> (S, Guard) {
        (self.store, self.guard)
    }
}

/// Runs every case of the suite as a `#[tokio::test]`, each on a fresh backend from
/// `$make`, an `async fn() -> Option<Backend<S>>` (`None` skips the case, as a PostgreSQL
/// backend does without `DATABASE_URL`). Attributes after the path go on every test.
#[macro_export]
macro_rules! usage_store_suite {
    ($make:path $(, #[$attr:meta])* $(,)?) => {
        $crate::usage_store_suite!(@cases $make, [$(#[$attr])*], [tokio::test],
            free_plan_admits_five_a_day,
            pro_admits_fifty_and_team_is_unlimited,
            commit_and_refund_are_idempotent,
            tokens_are_counted_and_limited,
            days_roll_over_at_midnight_utc,
            days_follow_the_deployment_offset,
            windows_reset_once,
            months_end_on_their_last_day,
            plan_changes_keep_the_window,
            expired_reservations_are_released,
            a_refund_after_rollover_leaves_the_new_window,
            billing_periods_are_monthly_windows,
            plans_round_trip_through_the_store,
            burst_limits_refuse_with_a_wait,
            chat_messages_have_their_own_daily_count,
            refunds_give_back_the_count_and_may_keep_tokens,
            tokens_of_each_attempt_are_recorded,
            held_reservations_never_expire,
            reservations_can_be_held_from_the_start,
            expired_chat_messages_are_released,
        );
        $crate::usage_store_suite!(@cases $make, [$(#[$attr])*],
            [tokio::test(flavor = "multi_thread", worker_threads = 4)],
            concurrent_reservations_admit_exactly_the_limit,
            concurrent_mixed_costs_and_commits_add_up,
            concurrent_chat_and_generations_admit_exactly_the_limits,
            midnight_resets_once_under_concurrency,
        );
    };
    (@cases $make:path, $attrs:tt, $test:tt $(,)?) => {};
    (@cases $make:path, $attrs:tt, $test:tt, $case:ident $(, $rest:ident)* $(,)?) => {
        $crate::usage_store_suite!(@one $make, $attrs, $test, $case);
        $crate::usage_store_suite!(@cases $make, $attrs, $test $(, $rest)*);
    };
    (@one $make:path, [$(#[$attr:meta])*], [$test:meta], $case:ident) => {
        #[$test]
        $(#[$attr])*
        async fn $case() {
            let Some(backend) = $make().await else {
                return;
            };
            $crate::testing::$case(backend).await;
        }
    };
}

/// A quota over a fresh store, with a manual clock and no burst limits unless asked.
struct Fixture<S> {
    quota: Quota<S>,
    clock: ManualClock,
    _guard: Guard,
}

const TIMEOUT: Duration = Duration::from_secs(600);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("a valid time")
}

/// The default plans plus `capped` (3 a month, no daily limit) and `metered` (1,000 tokens a
/// month) for the month and token tests.
fn catalogue() -> PlanCatalogue {
    let mut capped = Plan::new("capped", "Capped");
    capped.monthly_generations = Some(3);
    let mut metered = Plan::new("metered", "Metered");
    metered.monthly_tokens = Some(1_000);
    PlanCatalogue::default()
        .with_plan(capped)
        .unwrap()
        .with_plan(metered)
        .unwrap()
}

impl<S: UsageStore> Fixture<S> {
    async fn new(backend: Backend<S>, now: &str) -> Self {
        let (store, guard) = backend.into_parts();
        let clock = ManualClock::at(t(now));
        let quota = Quota::builder_with_store(store)
            .catalogue(catalogue())
            .clock(clock.shared())
            .reservation_timeout(TIMEOUT)
            .burst_limits(false)
            .build()
            .unwrap();
        Self {
            quota,
            clock,
            _guard: guard,
        }
    }

    async fn grant(&self, user: Uuid) -> Reservation {
        match self.quota.reserve(user, 1).await.unwrap() {
            Admission::Granted(r) => r,
            Admission::Denied(s) => panic!("expected a grant, got {s:?}"),
        }
    }

    async fn deny(&self, user: Uuid) -> QuotaStatus {
        match self.quota.reserve(user, 1).await.unwrap() {
            Admission::Granted(r) => panic!("expected a denial, got {r:?}"),
            Admission::Denied(s) => s,
        }
    }

    async fn chat(&self, user: Uuid) -> Admission {
        self.quota
            .reserve_for(user, Resource::ChatMessage, 1)
            .await
            .unwrap()
    }

    async fn use_up(&self, user: Uuid, n: usize) {
        for _ in 0..n {
            let r = self.grant(user).await;
            self.quota.commit(r.id, 10).await.unwrap();
        }
    }

    /// The store's own usage of `user` now, read past the quota.
    async fn store_usage(&self, user: Uuid) -> Usage {
        let plans = self.quota.catalogue();
        let cx = StoreContext::new(self.quota.clock().now(), Windows::utc(), &plans);
        self.quota.store().usage(cx, user).await.unwrap()
    }
}
