//! The behavioural suite every [`BillingStore`] passes (feature `testing`): the ledger,
//! exactly-once handling, ordering, grace periods, pending plan changes, Stripe's own example
//! events. The memory, SQLite and PostgreSQL stores of this crate run it; run it on a store
//! of your own with [`store_suite!`](crate::store_suite):
//!
//! ```text
//! // tests/billing_store.rs of a crate with its own `MyStore: BillingStore`
//! // (dev-dependencies: appforge-billing with `testing`, tokio with `macros` and `rt-multi-thread`).
//! appforge_billing::store_suite!(my_store, setup = |guard| {
//!     let store = MyStore::connect_for_test().await;
//!     store.migrate().await.unwrap();
//!     ((), store) // anything kept alive for the test (a database guard), and the store
//! });
//! ```
//!
//! Each behaviour is also a function here (generic over the store), for a harness of your own.
//! They drive a [`Billing`] over the store with a [`ManualClock`] and a [`TestPlans`] (plans
//! kept in memory, with the fixtures' prices), deliver signed fixtures and assert what the
//! store then holds.

mod examples;
mod suite;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use appforge_core::{
    BillingPeriod, BoxFuture, Clock, Interval, ManualClock, PlanSync, PlanSyncError, SecretString,
};
use parking_lot::Mutex;
use uuid::Uuid;

pub use examples::{
    BASIL_EVENT, Example, Kind, STRIPE_CUSTOMER, STRIPE_INVOICE, STRIPE_INVOICE_SUBSCRIPTION,
    STRIPE_PRICE, STRIPE_SUBSCRIPTION, basil_event, example_events,
};
pub use suite::*;

use crate::{
    Billing, BillingStore, Result, WebhookOutcome, WebhookVerifier, model::FREE_PLAN, sign_payload,
};

/// The webhook secret the fixtures are signed with.
pub const SECRET: &str = "whsec_test_4f2d9a7c1e8b6d3f0a5c";
/// The user of the lifecycle fixtures.
pub const USER: &str = "7d6f0b4e-3a52-4c1e-9f0a-2b8e5d1c9a41";
/// The subscription of the lifecycle fixtures.
pub const SUB: &str = "sub_1RqA8mKfT7xYw2Qe3LzN5bVd";
/// The customer of the lifecycle fixtures.
pub const CUSTOMER: &str = "cus_Rq8kYp2Lw3XzNa";
/// Pro, monthly.
pub const PRO_MONTHLY: &str = "price_1RqA2bKfT7xYw2QeP7oMonthly";
/// Team, monthly.
pub const TEAM_MONTHLY: &str = "price_1RqA2cKfT7xYw2QeT3aMonthly";
/// Team, yearly.
pub const TEAM_YEARLY: &str = "price_1RqA2cKfT7xYw2QeT3aYearly";

/// [`USER`] as a UUID.
///
/// # Panics
///
/// Never: the constant is a UUID.
#[must_use]
pub fn user() -> Uuid {
    USER.parse().expect("a UUID")
}

/// The lifecycle fixtures, in the order Stripe produced them.
pub const LIFECYCLE: [&str; 9] = [
    "01-checkout.session.completed",
    "02-customer.subscription.created",
    "03-customer.subscription.updated-pro",
    "04-invoice.paid",
    "05-invoice.payment_failed",
    "06-invoice.paid-retry",
    "07-customer.subscription.updated-team",
    "08-customer.subscription.updated-cancel-at-period-end",
    "09-customer.subscription.deleted",
];

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        /// The event fixture `name` (`tests/fixtures/events/{name}.json` of this crate),
        /// compiled in.
        ///
        /// # Panics
        ///
        /// When there is no such fixture.
        #[must_use]
        pub fn event_fixture(name: &str) -> String {
            match name {
                $($name => include_str!(concat!("../../tests/fixtures/events/", $name, ".json")),)*
                other => panic!("no event fixture {other}"),
            }
            .to_owned()
        }
    };
}

fixtures!(
    "01-checkout.session.completed",
    "02-customer.subscription.created",
    "03-customer.subscription.updated-pro",
    "04-invoice.paid",
    "05-invoice.payment_failed",
    "06-invoice.paid-retry",
    "07-customer.subscription.updated-team",
    "08-customer.subscription.updated-cancel-at-period-end",
    "09-customer.subscription.deleted",
    "customer.created-unhandled",
    "customer.subscription.trial_will_end",
    "unknown-type",
    "unparseable-subscription",
);

/// [`SECRET`].
#[must_use]
pub fn secret() -> SecretString {
    SecretString::from(SECRET)
}

/// The header Stripe would send for `body` at the clock's now.
#[must_use]
pub fn sign(clock: &ManualClock, body: &str) -> String {
    sign_payload(&secret(), clock.now().timestamp(), body.as_bytes())
}

/// The fixtures' prices: Pro monthly, Team monthly and yearly.
#[must_use]
pub fn prices() -> Vec<(String, String, Interval)> {
    vec![
        (PRO_MONTHLY.into(), "pro".into(), Interval::Monthly),
        (TEAM_MONTHLY.into(), "team".into(), Interval::Monthly),
        (TEAM_YEARLY.into(), "team".into(), Interval::Yearly),
    ]
}

/// A [`PlanSync`] in memory: a price list, each user's plan and billing period, a count of
/// plan writes, and a switch that makes plan writes hang (a quota that does not answer).
#[derive(Debug)]
pub struct TestPlans {
    prices: Mutex<Vec<(String, String, Interval)>>,
    plans: Mutex<HashMap<Uuid, (String, Option<BillingPeriod>)>>,
    set_plan_calls: AtomicUsize,
    stalled: AtomicBool,
    entered: tokio::sync::Notify,
}

impl TestPlans {
    /// Plans with `prices` (price id, plan id, interval).
    #[must_use]
    pub fn new(prices: Vec<(String, String, Interval)>) -> Self {
        Self {
            prices: Mutex::new(prices),
            plans: Mutex::new(HashMap::new()),
            set_plan_calls: AtomicUsize::new(0),
            stalled: AtomicBool::new(false),
            entered: tokio::sync::Notify::new(),
        }
    }

    /// Replaces the price list.
    pub fn set_prices(&self, prices: Vec<(String, String, Interval)>) {
        *self.prices.lock() = prices;
    }

    /// The plan last set for `user` (`free` when none was).
    #[must_use]
    pub fn plan_of(&self, user: Uuid) -> String {
        self.plans
            .lock()
            .get(&user)
            .map_or_else(|| FREE_PLAN.to_owned(), |(plan, _)| plan.clone())
    }

    /// The billing period last set for `user`.
    #[must_use]
    pub fn period_of(&self, user: Uuid) -> Option<BillingPeriod> {
        self.plans.lock().get(&user).and_then(|(_, period)| *period)
    }

    /// How many plan writes finished.
    #[must_use]
    pub fn set_plan_calls(&self) -> usize {
        self.set_plan_calls.load(Ordering::SeqCst)
    }
}

impl PlanSync for TestPlans {
    fn plan_for_price(
        &self,
        price_id: &str,
    ) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>> {
        let plan = self
            .prices
            .lock()
            .iter()
            .find(|(price, _, _)| price == price_id)
            .map(|(_, plan, _)| plan.clone());
        Box::pin(async move { Ok(plan) })
    }

    fn price_for_plan(
        &self,
        plan: &str,
        interval: Interval,
    ) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>> {
        let price = self
            .prices
            .lock()
            .iter()
            .find(|(_, p, i)| p == plan && *i == interval)
            .map(|(price, _, _)| price.clone());
        Box::pin(async move { Ok(price) })
    }

    fn set_plan(
        &self,
        user: Uuid,
        plan: &str,
        period: Option<BillingPeriod>,
    ) -> BoxFuture<'_, Result<(), PlanSyncError>> {
        if self.stalled.load(Ordering::SeqCst) {
            self.entered.notify_one();
            return Box::pin(std::future::pending());
        }
        let period = period.filter(|p| p.end > p.start);
        self.plans.lock().insert(user, (plan.to_owned(), period));
        self.set_plan_calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

/// After the lifecycle fixtures (2026-05-02): where a [`Harness`]'s clock starts.
///
/// # Panics
///
/// Never: the constant is a date.
#[must_use]
pub fn lifecycle_now() -> chrono::DateTime<chrono::Utc> {
    "2026-05-02T00:00:00Z".parse().expect("a date")
}

/// A test bench: [`Billing`] over a store, [`TestPlans`] with the fixtures' prices, a manual
/// clock at [`lifecycle_now`], no Stripe client (events are applied from their own copies).
#[derive(Debug)]
pub struct Harness<S> {
    /// The billing handle.
    pub billing: Billing<S>,
    /// Its plans.
    pub plans: Arc<TestPlans>,
    /// Its clock (and the verifier's).
    pub clock: ManualClock,
}

impl<S: BillingStore> Harness<S> {
    /// A harness over `store` (migrated by the caller).
    ///
    /// # Panics
    ///
    /// Never: the settings are valid.
    pub fn new(store: S) -> Self {
        let clock = ManualClock::at(lifecycle_now());
        let verifier = WebhookVerifier::builder()
            .secret(secret())
            .clock(clock.shared())
            .build()
            .expect("a valid verifier");
        let plans = Arc::new(TestPlans::new(prices()));
        let billing = Billing::builder(store, verifier, plans.clone())
            .clock(clock.shared())
            .build()
            .expect("a valid billing");
        Self {
            billing,
            plans,
            clock,
        }
    }

    /// Delivers fixture `name`, signed now.
    ///
    /// # Errors
    ///
    /// What [`Billing::handle_webhook`] returns.
    pub async fn deliver(&self, name: &str) -> Result<WebhookOutcome> {
        self.deliver_body(&event_fixture(name)).await
    }

    /// Delivers `body`, signed now.
    ///
    /// # Errors
    ///
    /// What [`Billing::handle_webhook`] returns.
    pub async fn deliver_body(&self, body: &str) -> Result<WebhookOutcome> {
        let header = sign(&self.clock, body);
        self.billing
            .handle_webhook(body.as_bytes(), Some(&header))
            .await
    }

    /// Delivers fixture `name` with plan writes hanging, and drops the delivery once it is
    /// setting the plan: what the request's timeout (or a crash) does to a delivery whose
    /// event is committed but whose plan change is not written yet.
    ///
    /// # Panics
    ///
    /// When the delivery finishes instead of setting a plan.
    pub async fn deliver_cut_short(&self, name: &str) {
        self.plans.stalled.store(true, Ordering::SeqCst);
        let delivery = self.deliver(name);
        tokio::pin!(delivery);
        tokio::select! {
            outcome = &mut delivery => panic!("{name}: the delivery finished: {outcome:?}"),
            () = self.plans.entered.notified() => {}
        }
        self.plans.stalled.store(false, Ordering::SeqCst);
    }

    /// How many plan writes finished.
    #[must_use]
    pub fn plan_writes(&self) -> usize {
        self.plans.set_plan_calls()
    }

    /// The plan last set for [`USER`].
    pub async fn quota_plan(&self) -> String {
        self.plans.plan_of(user())
    }
}

/// Instantiates the store suite as one `#[tokio::test]` per behaviour in module `$module`.
/// `setup` is an async block's body giving `(guard, store)`: the guard is kept alive for the
/// test (a temporary database), the store is migrated by the setup. The calling crate needs
/// `tokio` (features `macros`, `rt-multi-thread`) as a dev-dependency.
///
/// ```text
/// appforge_billing::store_suite!(memory, setup = |guard| {
///     ((), appforge_billing::MemoryBillingStore::new())
/// });
/// ```
#[macro_export]
macro_rules! store_suite {
    ($module:ident, $(#[$attr:meta])* setup = |$guard:ident| $make:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            $crate::store_suite!(@test processed_events_are_recorded_in_the_ledger, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test a_sequential_duplicate_changes_nothing, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test ten_concurrent_duplicates_apply_once, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test a_failed_handler_is_recorded_and_its_retry_processed, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test unknown_and_unparseable_events_are_stored_and_acknowledged, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test an_older_copy_never_overwrites_a_newer_one, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test a_subscription_before_its_checkout_is_adopted, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test grace_period_expiry_downgrades_until_paid, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test a_late_failure_after_a_payment_is_ignored, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test cancel_at_period_end_keeps_the_plan_until_deleted, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test trial_will_end_is_surfaced_to_the_host, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test a_forged_delivery_changes_nothing, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test the_periodic_pass_downgrades_when_the_grace_period_ends, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test a_repeated_payment_failure_keeps_the_first_deadline, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test a_plan_change_cut_short_is_completed_by_a_redelivery, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test a_plan_change_cut_short_is_completed_by_the_periodic_pass, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test completed_plan_changes_leave_nothing_pending, $(#[$attr])* |$guard| $make);
            $crate::store_suite!(@test stripe_example_events_are_handled, $(#[$attr])* |$guard| $make);
        }
    };
    (@test $name:ident, $(#[$attr:meta])* |$guard:ident| $make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $name() {
            #[allow(unused_variables)]
            let ($guard, store) = $make;
            $crate::testing::$name($crate::testing::Harness::new(store)).await;
        }
    };
}
