use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;
use uuid::Uuid;

use super::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
use crate::plan::{Plan, PlanId};
use crate::reservation::{ReservationId, ReservationState, Settlement};
use crate::usage::{Held, Settle, Step, Usage, answer, step};
use crate::window::BillingPeriod;
use crate::{Error, Result};

/// A usage store in process memory, for tests, prototypes and single-process deployments.
///
/// Each user's usage and reservations sit behind one lock; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryUsageStore {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: DashMap<Uuid, Arc<Mutex<UserState>>>,
    /// Which user holds each reservation.
    owners: DashMap<ReservationId, Uuid>,
    plans: Mutex<Vec<Plan>>,
}

#[derive(Debug)]
struct UserState {
    usage: Usage,
    pending: HashMap<ReservationId, Held>,
    settled: HashMap<ReservationId, ReservationState>,
}

impl UserState {
    fn release_expired(&mut self, cx: &StoreContext<'_>) -> u64 {
        if self.pending.is_empty() {
            return 0;
        }
        let now = cx.now;
        let expired: Vec<ReservationId> = self
            .pending
            .iter()
            .filter(|(_, held)| held.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            if let Some(held) = self.pending.remove(id) {
                self.usage.release(&held);
                self.settled.insert(*id, ReservationState::Expired);
            }
        }
        expired.len() as u64
    }
}

impl MemoryUsageStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn user(&self, cx: &StoreContext<'_>, user: Uuid) -> Arc<Mutex<UserState>> {
        if let Some(state) = self.inner.users.get(&user) {
            return Arc::clone(&state);
        }
        let state = self.inner.users.entry(user).or_insert_with(|| {
            Arc::new(Mutex::new(UserState {
                usage: Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows),
                pending: HashMap::new(),
                settled: HashMap::new(),
            }))
        });
        Arc::clone(&state)
    }

    fn settle(
        &self,
        cx: &StoreContext<'_>,
        id: ReservationId,
        how: Settle,
        tokens: u64,
    ) -> Result<Settlement> {
        let owner = self
            .inner
            .owners
            .get(&id)
            .map(|o| *o)
            .ok_or(Error::ReservationNotFound(id))?;
        let state = self.user(cx, owner);
        let mut state = state.lock();
        let (current, expired) = match state.pending.get(&id) {
            Some(held) => (ReservationState::Pending, held.expires_at <= cx.now),
            None => match state.settled.get(&id) {
                Some(s) => (*s, false),
                None => return Err(Error::ReservationNotFound(id)),
            },
        };
        match step(current, expired, how) {
            Step::Stay(a) => answer(id, a),
            Step::Move {
                to,
                release,
                answer: a,
            } => {
                let held = state.pending.remove(&id).expect("pending above");
                if release {
                    state.usage.release(&held);
                }
                if to == ReservationState::Committed {
                    state.usage.roll(cx.now, cx.windows);
                    state.usage.add_tokens(tokens);
                }
                state.settled.insert(id, to);
                answer(id, a)
            }
        }
    }
}

impl UsageStore for MemoryUsageStore {
    async fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        let state = self.user(&cx, request.user);
        let mut state = state.lock();
        state.release_expired(&cx);
        state.usage.roll(cx.now, cx.windows);
        let plan = cx.plans.require(&state.usage.plan)?;
        let refused_by = state.usage.refusal(plan, request.cost);
        if refused_by.is_none() {
            state.usage.charge(request.cost);
            let held = Held {
                cost: request.cost,
                day_start: state.usage.day_start,
                month_start: state.usage.month_start,
                expires_at: request.expires_at,
            };
            state.pending.insert(request.id, held);
            self.inner.owners.insert(request.id, request.user);
        }
        Ok(ReserveOutcome {
            refused_by,
            usage: state.usage.clone(),
        })
    }

    async fn commit(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.settle(&cx, id, Settle::Commit, tokens)
    }

    async fn refund(&self, cx: StoreContext<'_>, id: ReservationId) -> Result<Settlement> {
        self.settle(&cx, id, Settle::Refund, 0)
    }

    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        let Some(state) = self.inner.users.get(&user).map(|s| Arc::clone(&s)) else {
            return Ok(Usage::fresh(
                user,
                cx.plans.default_plan().id.clone(),
                cx.now,
                cx.windows,
            ));
        };
        let mut state = state.lock();
        state.release_expired(&cx);
        state.usage.roll(cx.now, cx.windows);
        Ok(state.usage.clone())
    }

    async fn set_plan(&self, cx: StoreContext<'_>, user: Uuid, plan: &PlanId) -> Result<()> {
        let state = self.user(&cx, user);
        state.lock().usage.plan = plan.clone();
        Ok(())
    }

    async fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> Result<()> {
        let state = self.user(&cx, user);
        state.lock().usage.billing_period = period;
        Ok(())
    }

    async fn sweep(&self, cx: StoreContext<'_>) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let users: Vec<_> = self
            .inner
            .users
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect();
        for state in users {
            let mut state = state.lock();
            report.released += state.release_expired(&cx);
            if state.usage.roll(cx.now, cx.windows) {
                report.reset += 1;
            }
        }
        Ok(report)
    }

    async fn load_plans(&self) -> Result<Vec<Plan>> {
        Ok(self.inner.plans.lock().clone())
    }

    async fn save_plan(&self, plan: &Plan) -> Result<()> {
        let mut plans = self.inner.plans.lock();
        match plans.iter_mut().find(|p| p.id == plan.id) {
            Some(p) => *p = plan.clone(),
            None => plans.push(plan.clone()),
        }
        Ok(())
    }
}
