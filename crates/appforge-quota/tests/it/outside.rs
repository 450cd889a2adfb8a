//! A store implemented outside the crate, as a host would: it implements `UsageStore` by
//! delegating to the memory store and counting the calls it forwards, and it runs the same
//! conformance suite as the crate's own backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use appforge_quota::testing::Backend;
use appforge_quota::{BillingPeriod, LimitKind};
use appforge_quota::{
    HeldReservation, MemoryUsageStore, Plan, PlanId, Quota, ReservationId, ReserveOutcome,
    ReserveRequest, Result, Settlement, StoreContext, SweepReport, Usage, UsageStore,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Forwards every call to a memory store and counts the calls.
#[derive(Debug, Clone, Default)]
struct Counted {
    inner: MemoryUsageStore,
    calls: Arc<AtomicU64>,
}

impl Counted {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl UsageStore for Counted {
    async fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        self.count();
        let outcome = self.inner.reserve(cx, request).await?;
        // Rebuilt with the public constructors, as a store of its own would answer.
        Ok(match outcome.refused_by {
            None => ReserveOutcome::granted(outcome.usage),
            Some(limit) => ReserveOutcome::refused(limit, outcome.usage),
        })
    }

    async fn commit(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.count();
        self.inner.commit(cx, id, tokens).await
    }

    async fn refund(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.count();
        self.inner.refund(cx, id, tokens).await
    }

    async fn record_tokens(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<()> {
        self.count();
        self.inner.record_tokens(cx, id, tokens).await
    }

    async fn hold(&self, cx: StoreContext<'_>, id: ReservationId, holder: Uuid) -> Result<()> {
        self.count();
        self.inner.hold(cx, id, holder).await
    }

    async fn held(
        &self,
        cx: StoreContext<'_>,
        before: DateTime<Utc>,
        after: Option<ReservationId>,
        limit: u32,
    ) -> Result<Vec<HeldReservation>> {
        self.count();
        let held = self.inner.held(cx, before, after, limit).await?;
        Ok(held
            .into_iter()
            .map(|h| HeldReservation::new(h.id, h.user, h.holder, h.resource, h.cost, h.created_at))
            .collect())
    }

    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        self.count();
        self.inner.usage(cx, user).await
    }

    async fn set_plan(&self, cx: StoreContext<'_>, user: Uuid, plan: &PlanId) -> Result<()> {
        self.count();
        self.inner.set_plan(cx, user, plan).await
    }

    async fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> Result<()> {
        self.count();
        self.inner.set_billing_period(cx, user, period).await
    }

    async fn sweep(&self, cx: StoreContext<'_>) -> Result<SweepReport> {
        self.count();
        self.inner.sweep(cx).await
    }

    async fn load_plans(&self) -> Result<Vec<Plan>> {
        self.count();
        self.inner.load_plans().await
    }

    async fn save_plan(&self, plan: &Plan) -> Result<()> {
        self.count();
        self.inner.save_plan(plan).await
    }
}

async fn store() -> Option<Backend<Counted>> {
    Some(Backend::new(Counted::default()))
}

appforge_quota::usage_store_suite!(store);

/// The quota calls the outside store (no fast path meant for the memory store reaches
/// around it), and the store's own type stays visible.
#[tokio::test]
async fn the_quota_goes_through_the_outside_store() {
    let store = Counted::default();
    let quota: Quota<Counted> = Quota::with_store(store.clone());
    let user = Uuid::new_v4();
    for _ in 0..5 {
        let granted = quota.reserve(user, 1).await.unwrap();
        quota
            .commit(granted.reservation().unwrap().id, 10)
            .await
            .unwrap();
    }
    let status = quota.status(user).await.unwrap();
    assert_eq!(status.denied_by, None);
    assert_eq!((status.daily.used, status.tokens.used), (5, 50));
    let denied = quota.reserve(user, 1).await.unwrap();
    assert!(!denied.is_granted());
    assert_eq!(
        quota.status(user).await.unwrap().denied_by,
        None,
        "a status read is not a refusal"
    );
    match denied {
        appforge_quota::Admission::Denied(status) => {
            assert_eq!(status.denied_by, Some(LimitKind::Daily));
        }
        appforge_quota::Admission::Granted(_) => unreachable!(),
    }
    // Every reservation, commit and status went through the wrapper.
    assert!(quota.store().calls.load(Ordering::Relaxed) >= 13);
    assert_eq!(
        store.calls.load(Ordering::Relaxed),
        quota.store().calls.load(Ordering::Relaxed)
    );
}
