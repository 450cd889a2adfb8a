use uuid::Uuid;

use super::memory::MemoryUsageStore;
use super::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
use crate::Result;
use crate::plan::{Plan, PlanId};
use crate::reservation::{ReservationId, Settlement};
use crate::usage::Usage;
use crate::window::BillingPeriod;

/// A usage store chosen at run time: memory, SQLite or PostgreSQL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyUsageStore {
    /// In process memory.
    Memory(MemoryUsageStore),
}

impl From<MemoryUsageStore> for AnyUsageStore {
    fn from(store: MemoryUsageStore) -> Self {
        Self::Memory(store)
    }
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyUsageStore::Memory($store) => $call,
        }
    };
}

impl UsageStore for AnyUsageStore {
    async fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        dispatch!(self, s => s.reserve(cx, request).await)
    }

    async fn commit(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        dispatch!(self, s => s.commit(cx, id, tokens).await)
    }

    async fn refund(&self, cx: StoreContext<'_>, id: ReservationId) -> Result<Settlement> {
        dispatch!(self, s => s.refund(cx, id).await)
    }

    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        dispatch!(self, s => s.usage(cx, user).await)
    }

    async fn set_plan(&self, cx: StoreContext<'_>, user: Uuid, plan: &PlanId) -> Result<()> {
        dispatch!(self, s => s.set_plan(cx, user, plan).await)
    }

    async fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> Result<()> {
        dispatch!(self, s => s.set_billing_period(cx, user, period).await)
    }

    async fn sweep(&self, cx: StoreContext<'_>) -> Result<SweepReport> {
        dispatch!(self, s => s.sweep(cx).await)
    }

    async fn load_plans(&self) -> Result<Vec<Plan>> {
        dispatch!(self, s => s.load_plans().await)
    }

    async fn save_plan(&self, plan: &Plan) -> Result<()> {
        dispatch!(self, s => s.save_plan(plan).await)
    }
}
