//! Fixtures, signing and a billing handle wired to a real quota (through the quota crate's
//! `PlanSync`).

use std::sync::Arc;

use appforge_billing::{
    Billing, BillingStore, MemoryBillingStore, StripeApi, WebhookVerifier, sign_payload,
};
use appforge_core::{Clock, ManualClock, SecretString};
use appforge_quota::{MemoryUsageStore, Plan, PlanCatalogue, PlanId, Quota};
use uuid::Uuid;

pub(crate) const SECRET: &str = "whsec_test_4f2d9a7c1e8b6d3f0a5c";
pub(crate) const USER: &str = "7d6f0b4e-3a52-4c1e-9f0a-2b8e5d1c9a41";
pub(crate) const SUB: &str = "sub_1RqA8mKfT7xYw2Qe3LzN5bVd";
pub(crate) const CUSTOMER: &str = "cus_Rq8kYp2Lw3XzNa";
pub(crate) const PRO_MONTHLY: &str = "price_1RqA2bKfT7xYw2QeP7oMonthly";
pub(crate) const TEAM_MONTHLY: &str = "price_1RqA2cKfT7xYw2QeT3aMonthly";
pub(crate) const TEAM_YEARLY: &str = "price_1RqA2cKfT7xYw2QeT3aYearly";

pub(crate) fn user() -> Uuid {
    USER.parse().unwrap()
}

/// The lifecycle fixtures, in the order Stripe produced them.
pub(crate) const LIFECYCLE: [&str; 9] = [
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

pub(crate) fn event_fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/events/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn api_fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/api/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn secret() -> SecretString {
    SecretString::from(SECRET)
}

/// The header Stripe would send for `body` now.
pub(crate) fn sign(clock: &ManualClock, body: &str) -> String {
    sign_payload(&secret(), clock.now().timestamp(), body.as_bytes())
}

/// Free, Pro and Team with the fixtures' Stripe prices.
pub(crate) fn catalogue() -> PlanCatalogue {
    let mut pro = Plan::pro();
    pro.stripe_price_id_monthly = Some(PRO_MONTHLY.into());
    let mut team = Plan::team();
    team.stripe_price_id_monthly = Some(TEAM_MONTHLY.into());
    team.stripe_price_id_yearly = Some(TEAM_YEARLY.into());
    PlanCatalogue::new(vec![Plan::free(), pro, team], PlanId::free()).unwrap()
}

/// A test bench: billing over `store`, a memory quota, a manual clock.
pub(crate) struct Harness<S> {
    pub(crate) billing: Billing<S>,
    pub(crate) quota: Quota,
    pub(crate) clock: ManualClock,
}

/// After the lifecycle (2026-05-02).
pub(crate) fn lifecycle_now() -> chrono::DateTime<chrono::Utc> {
    "2026-05-02T00:00:00Z".parse().unwrap()
}

pub(crate) fn harness<S: BillingStore>(store: S, stripe: Option<StripeApi>) -> Harness<S> {
    let clock = ManualClock::at(lifecycle_now());
    let quota = Quota::builder(MemoryUsageStore::new())
        .catalogue(catalogue())
        .clock(clock.shared())
        .build()
        .unwrap();
    let verifier = WebhookVerifier::builder()
        .secret(secret())
        .clock(clock.shared())
        .build()
        .unwrap();
    // The quota crate's own `PlanSync`: billing sets plans in a real quota.
    let mut builder =
        Billing::builder(store, verifier, Arc::new(quota.clone())).clock(clock.shared());
    if let Some(stripe) = stripe {
        builder = builder.stripe(stripe);
    }
    Harness {
        billing: builder.build().unwrap(),
        quota,
        clock,
    }
}

#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) fn memory_harness() -> Harness<MemoryBillingStore> {
    harness(MemoryBillingStore::new(), None)
}

impl<S: BillingStore> Harness<S> {
    /// Delivers fixture `name`, signed now.
    pub(crate) async fn deliver(
        &self,
        name: &str,
    ) -> appforge_billing::Result<appforge_billing::WebhookOutcome> {
        let body = event_fixture(name);
        let header = sign(&self.clock, &body);
        self.billing
            .handle_webhook(body.as_bytes(), Some(&header))
            .await
    }

    pub(crate) async fn quota_plan(&self) -> String {
        self.quota
            .plan_of(user())
            .await
            .unwrap()
            .id
            .as_str()
            .to_owned()
    }
}

/// A Stripe client aimed at a wiremock server.
pub(crate) fn stripe_at(url: &str) -> StripeApi {
    StripeApi::builder(SecretString::from("sk_test_51Pz9QeKfT7xYw2Qe"))
        .base_url(url)
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}
