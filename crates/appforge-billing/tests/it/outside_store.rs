//! A `BillingStore` implemented outside the crate, as a host would: a wrapper that counts the
//! calls and delegates to the memory store. It runs the same suite as the built-in stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use appforge_billing::{
    BillingStore, Commit, Effect, InvoiceRecord, LedgerEntry, MemoryBillingStore, NewEvent,
    PendingPlanSync, Result, SubscriptionRecord,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Delegates every call to `inner`, counting the commits.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delegating {
    inner: MemoryBillingStore,
    commits: Arc<AtomicUsize>,
}

impl BillingStore for Delegating {
    async fn migrate(&self) -> Result<()> {
        self.inner.migrate().await
    }

    async fn event(&self, id: &str) -> Result<Option<LedgerEntry>> {
        self.inner.event(id).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>> {
        self.inner.subscription(id).await
    }

    async fn subscriptions_of_user(&self, user: Uuid) -> Result<Vec<SubscriptionRecord>> {
        self.inner.subscriptions_of_user(user).await
    }

    async fn pending_plan_syncs(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingPlanSync>> {
        self.inner.pending_plan_syncs(before, limit).await
    }

    async fn grace_expired(&self, now: DateTime<Utc>) -> Result<Vec<SubscriptionRecord>> {
        self.inner.grace_expired(now).await
    }

    async fn invoice(&self, id: &str) -> Result<Option<InvoiceRecord>> {
        self.inner.invoice(id).await
    }

    async fn link_customer(&self, customer: &str, user: Uuid, now: DateTime<Utc>) -> Result<()> {
        self.inner.link_customer(customer, user, now).await
    }

    async fn customer_of_user(&self, user: Uuid) -> Result<Option<String>> {
        self.inner.customer_of_user(user).await
    }

    async fn user_of_customer(&self, customer: &str) -> Result<Option<Uuid>> {
        self.inner.user_of_customer(customer).await
    }

    async fn commit_event(&self, event: &NewEvent<'_>, effects: &[Effect]) -> Result<Commit> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit_event(event, effects).await
    }

    async fn fail_event(&self, event: &NewEvent<'_>) -> Result<()> {
        self.inner.fail_event(event).await
    }

    async fn plan_syncs_of_event(&self, event_id: &str) -> Result<Vec<PendingPlanSync>> {
        self.inner.plan_syncs_of_event(event_id).await
    }

    async fn clear_plan_sync(&self, user: Uuid, token: Uuid) -> Result<bool> {
        self.inner.clear_plan_sync(user, token).await
    }

    async fn grace_to_enforce(&self, now: DateTime<Utc>) -> Result<Vec<SubscriptionRecord>> {
        self.inner.grace_to_enforce(now).await
    }

    async fn mark_grace_enforced(&self, subscription: &str, now: DateTime<Utc>) -> Result<()> {
        self.inner.mark_grace_enforced(subscription, now).await
    }
}

appforge_billing::store_suite!(
    delegating,
    setup = |guard| ((), super::Delegating::default())
);

/// The suite above went through the wrapper: `Billing` drives an outside store.
#[tokio::test]
async fn billing_drives_the_outside_store() {
    let store = Delegating::default();
    let h = appforge_billing::testing::Harness::new(store.clone());
    h.deliver("01-checkout.session.completed").await.unwrap();
    h.deliver("01-checkout.session.completed").await.unwrap();
    assert_eq!(
        store.commits.load(Ordering::SeqCst),
        1,
        "a duplicate is not committed again"
    );
    assert!(
        store
            .event("evt_1RqA8oKfT7xYw2QeCheckDone")
            .await
            .unwrap()
            .is_some()
    );
}
