use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
use crate::plan::{Plan, PlanId};
use crate::reservation::{
    HeldReservation, ReservationId, ReservationState, Settlement, held_until, route,
};
use crate::usage::{Held, Settle, Step, Usage, answer, live, step};
use crate::window::BillingPeriod;
use crate::{Error, Result};

/// A usage store in process memory, for tests, prototypes and single-process deployments.
///
/// Users are spread over 64 shards, each behind one lock that holds its users' usage and
/// pending reservations; clones share the same data. A reservation made by
/// [`Quota`](crate::Quota) carries its user's shard in its id, so reserving and settling
/// each take one shard lock (a reservation with any other id is found through a side
/// table). Settled reservations are remembered (for idempotent commit and refund) in a
/// bounded record of about [`MemoryUsageStore::REMEMBERED`] of the most recent ones (ids are
/// spread over 64 shards, each keeping its last 4,096); an id settled longer ago answers
/// [`Error::ReservationNotFound`].
#[derive(Debug, Clone, Default)]
pub struct MemoryUsageStore {
    inner: Arc<Inner>,
}

const USER_SHARDS: usize = 64;

#[derive(Debug)]
struct Inner {
    shards: Vec<CacheLine<Mutex<Shard>>>,
    /// The shard of each pending reservation whose id does not name its user's shard.
    strays: Mutex<HashMap<ReservationId, usize, UuidHash>>,
    settled: Settled,
    plans: Mutex<Vec<Plan>>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            shards: (0..USER_SHARDS)
                .map(|_| CacheLine(Mutex::default()))
                .collect(),
            strays: Mutex::default(),
            settled: Settled::default(),
            plans: Mutex::default(),
        }
    }
}

/// A value alone on its cache lines, so that locks of neighbouring shards taken by
/// different threads do not slow each other down.
#[derive(Debug, Default)]
#[repr(align(128))]
struct CacheLine<T>(T);

#[derive(Debug, Default)]
struct Shard {
    users: HashMap<Uuid, UserState, UuidHash>,
    /// The pending reservations of the shard's users.
    pending: HashMap<ReservationId, Pending, UuidHash>,
}

#[derive(Debug)]
struct UserState {
    usage: Usage,
    /// How many of the shard's pending reservations are the user's.
    pending: u32,
    /// No pending reservation of the user expires before this (`None` when there are none).
    earliest_expiry: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    user: Uuid,
    held: Held,
    /// Whether its id does not name its user's shard (it is in `Inner::strays`).
    stray: bool,
    /// The work holding it, once held.
    holder: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// What is done to a pending reservation.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Commit or refund it, recording these tokens.
    Settle(Settle, u64),
    /// Add tokens, leaving it pending.
    Record(u64),
    /// Attach it to a holder.
    Hold(Uuid),
}

const SETTLED_SHARDS: usize = 64;
const SETTLED_PER_SHARD: usize = 4_096;

/// The states of recently settled reservations: per shard, a ring of the last
/// [`SETTLED_PER_SHARD`] settlements. Recording one writes the next slot of its shard's ring,
/// a line of memory already in cache, where a hash table would touch a random line of a few
/// megabytes; looking one up (a repeated commit or refund, or an unknown id) reads one ring.
#[derive(Debug)]
struct Settled {
    shards: Vec<CacheLine<Mutex<Ring>>>,
}

#[derive(Debug, Default)]
struct Ring {
    entries: Vec<(ReservationId, ReservationState)>,
    /// Where the next entry goes once the ring is full.
    next: usize,
}

impl Default for Settled {
    fn default() -> Self {
        Self {
            shards: (0..SETTLED_SHARDS)
                .map(|_| CacheLine(Mutex::default()))
                .collect(),
        }
    }
}

impl Settled {
    fn shard(&self, id: ReservationId) -> &Mutex<Ring> {
        let index = UuidHash.hash_one(id) % SETTLED_SHARDS as u64;
        &self.shards[usize::try_from(index).unwrap_or(0)].0
    }

    /// Records the settlement of `id` (a reservation settles once, so each id is recorded
    /// at most once).
    fn insert(&self, id: ReservationId, state: ReservationState) {
        let mut ring = self.shard(id).lock();
        if ring.entries.len() < SETTLED_PER_SHARD {
            ring.entries.push((id, state));
        } else {
            let next = ring.next;
            ring.entries[next] = (id, state);
            ring.next = (next + 1) % SETTLED_PER_SHARD;
        }
    }

    fn get(&self, id: ReservationId) -> Option<ReservationState> {
        let ring = self.shard(id).lock();
        ring.entries
            .iter()
            .find(|(settled, _)| *settled == id)
            .map(|(_, state)| *state)
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
    fn fresh(cx: &StoreContext<'_>, user: Uuid) -> Self {
        Self {
            usage: Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows),
            pending: 0,
            earliest_expiry: None,
        }
    }
}

impl Shard {
    fn user(&mut self, cx: &StoreContext<'_>, user: Uuid) -> &mut UserState {
        self.users
            .entry(user)
            .or_insert_with(|| UserState::fresh(cx, user))
    }

    /// Releases the expired pending reservations of `user` (of every user with `None`);
    /// returns how many.
    fn release_expired(&mut self, now: DateTime<Utc>, user: Option<Uuid>, inner: &Inner) -> u64 {
        let due = |state: &UserState| state.earliest_expiry.is_some_and(|e| e <= now);
        match user {
            Some(user) if !self.users.get(&user).is_some_and(due) => return 0,
            None if !self.users.values().any(due) => return 0,
            _ => {}
        }
        let mut released = 0;
        let users = &mut self.users;
        // Every pending reservation of the users concerned is visited, so their earliest
        // expiry is computed afresh from those that stay.
        match user {
            Some(user) => {
                if let Some(state) = users.get_mut(&user) {
                    state.earliest_expiry = None;
                }
            }
            None => users.values_mut().for_each(|s| s.earliest_expiry = None),
        }
        self.pending.retain(|id, p| {
            if user.is_some_and(|u| u != p.user) {
                return true;
            }
            let Some(state) = users.get_mut(&p.user) else {
                return true;
            };
            if p.held.expires_at > now {
                let e = state.earliest_expiry.get_or_insert(p.held.expires_at);
                *e = (*e).min(p.held.expires_at);
                return true;
            }
            state.usage.release(&p.held);
            state.pending -= 1;
            inner.record(*id, ReservationState::Expired, p.stray);
            released += 1;
            false
        });
        released
    }

    /// Applies `op` to `id` if it is pending here.
    fn apply(
        &mut self,
        cx: &StoreContext<'_>,
        id: ReservationId,
        op: Op,
        inner: &Inner,
    ) -> Option<Result<Settlement>> {
        let pending = *self.pending.get(&id)?;
        let expired = pending.held.expires_at <= cx.now;
        let (how, tokens) = match op {
            Op::Settle(how, tokens) => (how, tokens),
            Op::Record(_) | Op::Hold(_) => {
                if let Err(state) = live(ReservationState::Pending, expired) {
                    // Expired: released now, as a settlement would.
                    let _ = self.settle(cx, id, pending, Settle::Refund, 0, inner);
                    return Some(answer(id, Err(state)));
                }
                match op {
                    Op::Record(tokens) => {
                        let state = self.user(cx, pending.user);
                        state.usage.roll(cx.now, cx.windows);
                        state.usage.add_tokens(tokens);
                    }
                    Op::Hold(holder) => {
                        let pending = self.pending.get_mut(&id)?;
                        pending.holder = Some(holder);
                        pending.held.expires_at = held_until();
                    }
                    Op::Settle(..) => {}
                }
                return Some(Ok(Settlement::Settled));
            }
        };
        Some(self.settle(cx, id, pending, how, tokens, inner))
    }

    /// Settles the pending reservation `id`.
    fn settle(
        &mut self,
        cx: &StoreContext<'_>,
        id: ReservationId,
        pending: Pending,
        how: Settle,
        tokens: u64,
        inner: &Inner,
    ) -> Result<Settlement> {
        let Step::Move {
            to,
            release,
            answer: a,
        } = step(
            ReservationState::Pending,
            pending.held.expires_at <= cx.now,
            how,
        )
        else {
            // `step` always moves a pending reservation.
            return answer(id, Err(ReservationState::Pending));
        };
        self.pending.remove(&id);
        let state = self.user(cx, pending.user);
        state.pending -= 1;
        if state.pending == 0 {
            state.earliest_expiry = None;
        }
        if release {
            state.usage.release(&pending.held);
        }
        if to != ReservationState::Expired && tokens > 0 {
            state.usage.roll(cx.now, cx.windows);
            state.usage.add_tokens(tokens);
        }
        inner.record(id, to, pending.stray);
        answer(id, a)
    }
}

impl Inner {
    fn shard_of_user(&self, user: Uuid) -> usize {
        usize::from(route(user)) % USER_SHARDS
    }

    fn shard(&self, index: usize) -> &Mutex<Shard> {
        &self.shards[index].0
    }

    /// Records a reservation as settled; called with its shard locked, before it stops
    /// being pending there, so that a concurrent caller always finds it in one place or the
    /// other.
    fn record(&self, id: ReservationId, state: ReservationState, stray: bool) {
        self.settled.insert(id, state);
        if stray {
            // After the settled record, for the same reason.
            self.strays.lock().remove(&id);
        }
    }

    fn apply_in(
        &self,
        index: usize,
        cx: &StoreContext<'_>,
        id: ReservationId,
        op: Op,
    ) -> Option<Result<Settlement>> {
        self.shard(index).lock().apply(cx, id, op, self)
    }

    fn settled(&self, id: ReservationId, op: Op) -> Option<Result<Settlement>> {
        let settled = self.settled.get(id)?;
        let Op::Settle(how, _) = op else {
            return Some(answer(id, Err(settled)));
        };
        Some(match step(settled, false, how) {
            Step::Stay(a) => answer(id, a),
            // A settled reservation never moves; `step` only moves pending ones.
            Step::Move { .. } => answer(id, Err(settled)),
        })
    }
}

impl MemoryUsageStore {
    /// About how many of the most recently settled reservations are remembered.
    pub const REMEMBERED: usize = SETTLED_SHARDS * SETTLED_PER_SHARD;

    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// [`UsageStore::reserve`], without a future: [`Quota`](crate::Quota) calls it directly.
    pub(crate) fn reserve_now(
        &self,
        cx: &StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        let inner = &*self.inner;
        let index = inner.shard_of_user(request.user);
        let mut guard = inner.shard(index).lock();
        let shard = &mut *guard;
        let mut state = shard.user(cx, request.user);
        if state.earliest_expiry.is_some_and(|e| e <= cx.now) {
            shard.release_expired(cx.now, Some(request.user), inner);
            state = shard.user(cx, request.user);
        }
        state.usage.roll(cx.now, cx.windows);
        let plan = cx.plans.require(&state.usage.plan)?;
        let refused_by = state.usage.refusal(plan, request.resource, request.cost);
        if refused_by.is_none() {
            state.usage.charge(request.resource, request.cost);
            state.pending += 1;
            let earliest = state.earliest_expiry.get_or_insert(request.expires_at);
            *earliest = (*earliest).min(request.expires_at);
            let pending = Pending {
                user: request.user,
                held: Held {
                    resource: request.resource,
                    cost: request.cost,
                    day_start: state.usage.day_start,
                    month_start: state.usage.month_start,
                    expires_at: request.expires_at,
                },
                stray: usize::from(request.id.route()) % USER_SHARDS != index,
                holder: request.holder,
                created_at: cx.now,
            };
            let usage = state.usage.clone();
            if pending.stray {
                inner.strays.lock().insert(request.id, index);
            }
            shard.pending.insert(request.id, pending);
            return Ok(ReserveOutcome { refused_by, usage });
        }
        Ok(ReserveOutcome {
            refused_by,
            usage: state.usage.clone(),
        })
    }

    /// [`UsageStore::usage`], without a future: [`Quota`](crate::Quota) calls it directly.
    pub(crate) fn usage_now(&self, cx: &StoreContext<'_>, user: Uuid) -> Usage {
        let inner = &*self.inner;
        let mut shard = inner.shard(inner.shard_of_user(user)).lock();
        shard.release_expired(cx.now, Some(user), inner);
        let Some(state) = shard.users.get_mut(&user) else {
            return Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows);
        };
        state.usage.roll(cx.now, cx.windows);
        state.usage.clone()
    }

    /// [`UsageStore::commit`], without a future: [`Quota`](crate::Quota) calls it directly.
    pub(crate) fn commit_now(
        &self,
        cx: &StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.apply(cx, id, Op::Settle(Settle::Commit, tokens))
    }

    /// [`UsageStore::refund`], without a future: [`Quota`](crate::Quota) calls it directly.
    pub(crate) fn refund_now(
        &self,
        cx: &StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.apply(cx, id, Op::Settle(Settle::Refund, tokens))
    }

    fn apply(&self, cx: &StoreContext<'_>, id: ReservationId, op: Op) -> Result<Settlement> {
        let inner = &*self.inner;
        // The id names its user's shard when `Quota` made it.
        let hint = usize::from(id.route()) % USER_SHARDS;
        if let Some(done) = inner.apply_in(hint, cx, id, op) {
            return done;
        }
        if let Some(done) = inner.settled(id, op) {
            return done;
        }
        let home = inner.strays.lock().get(&id).copied();
        if let Some(home) = home
            && let Some(done) = inner.apply_in(home, cx, id, op)
        {
            return done;
        }
        // Settled by another caller since the first look (the settled record is written
        // before the stray entry goes), or never known.
        inner
            .settled(id, op)
            .unwrap_or(Err(Error::ReservationNotFound(id)))
    }
}

impl UsageStore for MemoryUsageStore {
    async fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        self.reserve_now(&cx, request)
    }

    async fn commit(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.commit_now(&cx, id, tokens)
    }

    async fn refund(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.refund_now(&cx, id, tokens)
    }

    async fn record_tokens(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<()> {
        self.apply(&cx, id, Op::Record(tokens)).map(drop)
    }

    async fn hold(&self, cx: StoreContext<'_>, id: ReservationId, holder: Uuid) -> Result<()> {
        self.apply(&cx, id, Op::Hold(holder)).map(drop)
    }

    async fn held(
        &self,
        _cx: StoreContext<'_>,
        before: DateTime<Utc>,
        after: Option<ReservationId>,
        limit: u32,
    ) -> Result<Vec<HeldReservation>> {
        let mut held = Vec::new();
        for index in 0..USER_SHARDS {
            let shard = self.inner.shard(index).lock();
            held.extend(shard.pending.iter().filter_map(|(id, p)| {
                let holder = p.holder?;
                (p.created_at < before && after.is_none_or(|a| *id > a)).then_some(
                    HeldReservation {
                        id: *id,
                        user: p.user,
                        holder,
                        resource: p.held.resource,
                        cost: p.held.cost,
                        created_at: p.created_at,
                    },
                )
            }));
        }
        held.sort_unstable_by_key(|h| h.id);
        held.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(held)
    }

    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        Ok(self.usage_now(&cx, user))
    }

    async fn set_plan(&self, cx: StoreContext<'_>, user: Uuid, plan: &PlanId) -> Result<()> {
        let inner = &*self.inner;
        let mut shard = inner.shard(inner.shard_of_user(user)).lock();
        shard.user(&cx, user).usage.plan = plan.clone();
        Ok(())
    }

    async fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> Result<()> {
        let inner = &*self.inner;
        let mut shard = inner.shard(inner.shard_of_user(user)).lock();
        shard.user(&cx, user).usage.billing_period = period;
        Ok(())
    }

    async fn sweep(&self, cx: StoreContext<'_>) -> Result<SweepReport> {
        let inner = &*self.inner;
        let mut report = SweepReport::default();
        for index in 0..USER_SHARDS {
            let mut shard = inner.shard(index).lock();
            report.released += shard.release_expired(cx.now, None, inner);
            for state in shard.users.values_mut() {
                if state.usage.roll(cx.now, cx.windows) {
                    report.reset += 1;
                }
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

    use crate::catalogue::PlanCatalogue;
    use crate::window::Windows;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A random id whose route does not name `user`'s shard, as a caller other than `Quota`
    /// may pick.
    fn stray_id(user: Uuid) -> ReservationId {
        let home = usize::from(route(user)) % USER_SHARDS;
        loop {
            let id = ReservationId::new();
            if usize::from(id.route()) % USER_SHARDS != home {
                return id;
            }
        }
    }

    #[tokio::test]
    async fn ids_that_do_not_name_the_users_shard_settle_like_any_other() {
        let store = MemoryUsageStore::new();
        let plans = PlanCatalogue::default();
        let now = at("2027-03-04T10:00:00Z");
        let cx = StoreContext::new(now, Windows::utc(), &plans);
        let user = Uuid::new_v4();
        let expires = now + chrono::Duration::minutes(10);
        let (a, b, c) = (
            stray_id(user),
            stray_id(user),
            ReservationId::for_user(user),
        );
        for id in [a, b, c] {
            let outcome = store
                .reserve(cx, ReserveRequest::new(id, user, 1, expires))
                .await
                .unwrap();
            assert_eq!(outcome.refused_by, None);
        }
        assert_eq!(store.inner.strays.lock().len(), 2);
        assert_eq!(store.commit(cx, a, 10).await.unwrap(), Settlement::Settled);
        assert_eq!(
            store.commit(cx, a, 10).await.unwrap(),
            Settlement::AlreadyDone
        );
        assert!(matches!(
            store.refund(cx, a, 0).await,
            Err(Error::AlreadySettled {
                state: ReservationState::Committed,
                ..
            })
        ));
        assert_eq!(store.refund(cx, b, 0).await.unwrap(), Settlement::Settled);
        assert_eq!(
            store.refund(cx, b, 0).await.unwrap(),
            Settlement::AlreadyDone
        );
        assert!(store.inner.strays.lock().is_empty(), "settled strays leave");
        let usage = store.usage(cx, user).await.unwrap();
        assert_eq!((usage.daily_generations, usage.total_tokens), (2, 10));
        assert!(matches!(
            store.commit(cx, stray_id(user), 1).await,
            Err(Error::ReservationNotFound(_))
        ));

        // A stray left pending expires with its user's next call.
        let d = stray_id(user);
        store
            .reserve(cx, ReserveRequest::new(d, user, 1, expires))
            .await
            .unwrap();
        let later = StoreContext::new(expires, Windows::utc(), &plans);
        let usage = store.usage(later, user).await.unwrap();
        assert_eq!(
            usage.daily_generations, 1,
            "a committed, b refunded, c and d expired"
        );
        assert!(store.inner.strays.lock().is_empty());
        assert_eq!(
            store.refund(later, d, 0).await.unwrap(),
            Settlement::AlreadyReleased
        );
    }

    #[test]
    fn racing_settlements_settle_each_reservation_once() {
        let store = MemoryUsageStore::new();
        let open = Plan::new("open", "Open");
        let plans = PlanCatalogue::new(vec![open], PlanId::new("open")).unwrap();
        let now = at("2027-03-04T10:00:00Z");
        let cx = StoreContext::new(now, Windows::utc(), &plans);
        let user = Uuid::new_v4();
        let expires = now + chrono::Duration::minutes(10);
        let ids: Vec<ReservationId> = (0..200)
            .map(|i| {
                let id = if i % 2 == 0 {
                    stray_id(user)
                } else {
                    ReservationId::for_user(user)
                };
                let request = ReserveRequest::new(id, user, 1, expires);
                assert_eq!(store.reserve_now(&cx, request).unwrap().refused_by, None);
                id
            })
            .collect();
        let settled: usize = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        ids.iter()
                            .filter(|id| {
                                store.commit_now(&cx, **id, 1).unwrap() == Settlement::Settled
                            })
                            .count()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).sum()
        });
        assert_eq!(settled, ids.len());
        assert_eq!(store.usage_now(&cx, user).total_tokens, 200);
        assert!(store.inner.strays.lock().is_empty());
    }

    #[tokio::test]
    async fn expiry_releases_only_what_is_due() {
        let store = MemoryUsageStore::new();
        let plans = PlanCatalogue::default();
        let now = at("2027-03-04T10:00:00Z");
        let cx = StoreContext::new(now, Windows::utc(), &plans);
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let soon = ReservationId::for_user(user);
        let late = ReservationId::for_user(user);
        let others = ReservationId::for_user(other);
        for (id, who, minutes) in [(soon, user, 5), (late, user, 20), (others, other, 5)] {
            let expires = now + chrono::Duration::minutes(minutes);
            store
                .reserve(cx, ReserveRequest::new(id, who, 1, expires))
                .await
                .unwrap();
        }
        let then = StoreContext::new(now + chrono::Duration::minutes(10), Windows::utc(), &plans);
        assert_eq!(store.usage(then, user).await.unwrap().daily_generations, 1);
        assert_eq!(
            store.refund(then, soon, 0).await.unwrap(),
            Settlement::AlreadyReleased
        );
        assert_eq!(
            store.commit(then, late, 0).await.unwrap(),
            Settlement::Settled
        );
        // The other user's reservation is released by the sweep.
        let report = store.sweep(then).await.unwrap();
        assert_eq!(report.released, 1);
        assert_eq!(store.usage(then, other).await.unwrap().daily_generations, 0);
    }

    #[test]
    fn ids_made_for_a_user_carry_its_route() {
        for _ in 0..1_000 {
            let user = Uuid::new_v4();
            let id = ReservationId::for_user(user);
            assert_eq!(id.route(), route(user));
            assert_eq!(id.as_uuid().get_version_num(), 4);
        }
    }

    fn shard_of(id: ReservationId) -> u64 {
        UuidHash.hash_one(id) % SETTLED_SHARDS as u64
    }

    #[test]
    fn remembers_recent_settlements_within_a_bound() {
        let settled = Settled::default();
        // Ids of one shard, so the bound is exact: the shard keeps its last 4,096.
        let ids: Vec<ReservationId> = (0u128..)
            .map(|i| ReservationId::from_uuid(Uuid::from_u128(i)))
            .filter(|id| shard_of(*id) == 0)
            .take(3 * SETTLED_PER_SHARD + 1)
            .collect();
        for id in &ids {
            settled.insert(*id, ReservationState::Committed);
        }
        let recent = &ids[ids.len() - SETTLED_PER_SHARD..];
        assert!(
            recent
                .iter()
                .all(|id| settled.get(*id) == Some(ReservationState::Committed))
        );
        assert_eq!(settled.get(ids[0]), None, "the oldest are forgotten");
        assert_eq!(
            settled.get(ids[ids.len() - SETTLED_PER_SHARD - 1]),
            None,
            "the one just before the last 4,096 is forgotten"
        );
        assert_eq!(settled.shards[0].0.lock().entries.len(), SETTLED_PER_SHARD);
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
