use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
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
/// Each user's usage and pending reservations sit behind one lock; clones share the same
/// data. Settled reservations are remembered (for idempotent commit and refund) in a bounded
/// record of about [`MemoryUsageStore::REMEMBERED`] of the most recent ones (ids are spread
/// over 64 shards, each keeping at least its last 2,048); an id settled longer ago answers
/// [`Error::ReservationNotFound`].
#[derive(Debug, Clone, Default)]
pub struct MemoryUsageStore {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: DashMap<Uuid, Arc<Mutex<UserState>>, UuidHash>,
    /// Which user holds each pending reservation.
    owners: DashMap<ReservationId, Uuid, UuidHash>,
    settled: Settled,
    plans: Mutex<Vec<Plan>>,
}

#[derive(Debug)]
struct UserState {
    usage: Usage,
    pending: HashMap<ReservationId, Held, UuidHash>,
}

const SETTLED_SHARDS: usize = 64;
const SETTLED_PER_GENERATION: usize = 2_048;

/// The states of recently settled reservations: per shard, a current and a previous
/// generation; when the current one is full it becomes the previous one. Bounded, and small
/// enough to stay in cache.
#[derive(Debug)]
struct Settled {
    shards: Vec<Mutex<Generations>>,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<ReservationId, ReservationState, UuidHash>,
    previous: HashMap<ReservationId, ReservationState, UuidHash>,
}

impl Default for Settled {
    fn default() -> Self {
        Self {
            shards: (0..SETTLED_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Settled {
    fn shard(&self, id: ReservationId) -> &Mutex<Generations> {
        let index = UuidHash.hash_one(id) % SETTLED_SHARDS as u64;
        &self.shards[usize::try_from(index).unwrap_or(0)]
    }

    fn insert(&self, id: ReservationId, state: ReservationState) {
        let mut shard = self.shard(id).lock();
        if shard.current.len() >= SETTLED_PER_GENERATION {
            // Reuse the previous generation's table: no allocation, no regrowth.
            let shard = &mut *shard;
            std::mem::swap(&mut shard.current, &mut shard.previous);
            shard.current.clear();
        }
        shard.current.insert(id, state);
    }

    fn get(&self, id: ReservationId) -> Option<ReservationState> {
        let shard = self.shard(id).lock();
        shard
            .current
            .get(&id)
            .or_else(|| shard.previous.get(&id))
            .copied()
    }
}

/// Hashes UUIDs by folding their bytes: reservation ids are random and user ids come from
/// the host's authentication, so SipHash's protection against chosen keys buys nothing
/// here, and it is a large part of the cost of a reservation in memory.
#[derive(Debug, Clone, Copy, Default)]
struct UuidHash;

impl BuildHasher for UuidHash {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0)
    }
}

#[derive(Debug)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        // A final mix (from SplitMix64) so that DashMap's shard bits are well spread.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }
}

impl UserState {
    fn release_expired(&mut self, cx: &StoreContext<'_>, inner: &Inner) -> u64 {
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
                inner.settled.insert(*id, ReservationState::Expired);
                inner.owners.remove(id);
            }
        }
        expired.len() as u64
    }
}

impl MemoryUsageStore {
    /// About how many of the most recently settled reservations are remembered.
    pub const REMEMBERED: usize = SETTLED_SHARDS * SETTLED_PER_GENERATION;

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
                pending: HashMap::default(),
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
        let owner = self.inner.owners.get(&id).map(|o| *o);
        if let Some(owner) = owner {
            let state = self.user(cx, owner);
            let mut state = state.lock();
            if let Some(held) = state.pending.get(&id).copied() {
                return match step(ReservationState::Pending, held.expires_at <= cx.now, how) {
                    Step::Stay(a) => answer(id, a),
                    Step::Move {
                        to,
                        release,
                        answer: a,
                    } => {
                        state.pending.remove(&id);
                        if release {
                            state.usage.release(&held);
                        }
                        if to == ReservationState::Committed {
                            state.usage.roll(cx.now, cx.windows);
                            state.usage.add_tokens(tokens);
                        }
                        // Recorded as settled before it stops being pending, so that a
                        // concurrent caller always finds it in one place or the other.
                        self.inner.settled.insert(id, to);
                        self.inner.owners.remove(&id);
                        answer(id, a)
                    }
                };
            }
        }
        let settled = self
            .inner
            .settled
            .get(id)
            .ok_or(Error::ReservationNotFound(id))?;
        match step(settled, false, how) {
            Step::Stay(a) => answer(id, a),
            // A settled reservation never moves; `step` only moves pending ones.
            Step::Move { .. } => answer(id, Err(settled)),
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
        state.release_expired(&cx, &self.inner);
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
        state.release_expired(&cx, &self.inner);
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
            report.released += state.release_expired(&cx, &self.inner);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shard_of(id: ReservationId) -> u64 {
        UuidHash.hash_one(id) % SETTLED_SHARDS as u64
    }

    #[test]
    fn remembers_recent_settlements_within_a_bound() {
        let settled = Settled::default();
        // Ids of one shard, so the bound is exact: the shard keeps at least its last 2,048.
        let ids: Vec<ReservationId> = (0u128..)
            .map(|i| ReservationId::from_uuid(Uuid::from_u128(i)))
            .filter(|id| shard_of(*id) == 0)
            .take(3 * SETTLED_PER_GENERATION + 1)
            .collect();
        for id in &ids {
            settled.insert(*id, ReservationState::Committed);
        }
        let recent = &ids[ids.len() - SETTLED_PER_GENERATION..];
        assert!(
            recent
                .iter()
                .all(|id| settled.get(*id) == Some(ReservationState::Committed))
        );
        assert_eq!(settled.get(ids[0]), None, "the oldest are forgotten");
        let shard = settled.shards[0].lock();
        assert!(shard.current.len() + shard.previous.len() <= 2 * SETTLED_PER_GENERATION);
    }

    #[test]
    fn uuid_hash_spreads_sequential_ids_over_shards() {
        let mut counts = [0usize; SETTLED_SHARDS];
        for i in 0..64_000u128 {
            let shard = shard_of(ReservationId::from_uuid(Uuid::from_u128(i << 64 | i)));
            counts[usize::try_from(shard).unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (700..1300).contains(&c)),
            "{counts:?}"
        );
    }
}
