use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use appforge_core::{SharedClock, SystemClock};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use parking_lot::RwLock;
use uuid::Uuid;

use crate::burst::{BurstLimiter, SharedBurst};
use crate::catalogue::PlanCatalogue;
use crate::plan::{Plan, PlanId};
use crate::reservation::{Admission, HeldReservation, Reservation, ReservationId, Settlement};
use crate::resource::Resource;
use crate::status::{LimitKind, QuotaStatus};
use crate::store::any::AnyUsageStore;
use crate::store::memory::MemoryUsageStore;
use crate::store::{ReserveRequest, StoreContext, SweepReport, UsageStore};
use crate::usage::Usage;
use crate::window::{BillingPeriod, Windows};
use crate::{Error, Result};

/// How long a reservation may stay pending by default: 30 minutes.
pub const DEFAULT_RESERVATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The quota handle: a store, a plan catalogue, a clock and burst limits. Cheap to clone.
///
/// The store is any [`UsageStore`]: by default [`AnyUsageStore`], the built-in backends
/// chosen at run time ([`Quota::new`], [`Quota::builder`]); [`Quota::with_store`] and
/// [`Quota::builder_with_store`] keep a store's own type, such as one implemented outside
/// this crate.
///
/// See the [crate documentation](crate) for an example.
#[derive(Debug)]
pub struct Quota<S = AnyUsageStore> {
    inner: Arc<Inner<S>>,
    /// The plans as they were when this handle was made, used while `inner.plans_version`
    /// still equals `plans_version`: reading them then touches no shared counter.
    plans: Arc<Plans>,
    plans_version: u64,
}

impl<S> Quota<S> {
    /// This handle's snapshot of the plans, if they have not been replaced since.
    fn cached_plans(&self) -> Option<&Arc<Plans>> {
        (self.inner.plans_version.load(Ordering::Acquire) == self.plans_version)
            .then_some(&self.plans)
    }
}

impl<S> Clone for Quota<S> {
    fn clone(&self) -> Self {
        let (plans, plans_version) = match self.cached_plans() {
            Some(plans) => (Arc::clone(plans), self.plans_version),
            None => self.inner.current_plans(),
        };
        Self {
            inner: Arc::clone(&self.inner),
            plans,
            plans_version,
        }
    }
}

#[derive(Debug)]
struct Inner<S> {
    store: S,
    clock: SharedClock,
    windows: Windows,
    timeout: chrono::Duration,
    burst_limits: bool,
    plans: RwLock<Arc<Plans>>,
    /// Bumped, under the write lock of `plans`, each time the plans are replaced.
    plans_version: AtomicU64,
    /// Each user's plan as last seen, to pick a burst limiter without a store read.
    user_plans: DashMap<Uuid, PlanId>,
}

impl<S> Inner<S> {
    /// The plans and their version, read together.
    fn current_plans(&self) -> (Arc<Plans>, u64) {
        let plans = self.plans.read();
        (
            Arc::clone(&plans),
            self.plans_version.load(Ordering::Acquire),
        )
    }
}

#[derive(Debug)]
struct Plans {
    catalogue: Arc<PlanCatalogue>,
    burst: SharedBurst,
}

impl Plans {
    fn new(catalogue: PlanCatalogue) -> Self {
        Self {
            burst: Arc::new(BurstLimiter::new(&catalogue)),
            catalogue: Arc::new(catalogue),
        }
    }
}

/// Builds a [`Quota`]: `Quota::builder(store).clock(clock).build()?`.
#[derive(Debug)]
#[must_use]
pub struct QuotaBuilder<S = AnyUsageStore> {
    store: S,
    catalogue: PlanCatalogue,
    clock: SharedClock,
    windows: Windows,
    timeout: Duration,
    burst_limits: bool,
}

impl<S: UsageStore> QuotaBuilder<S> {
    /// The plans (default: [`PlanCatalogue::default`]).
    pub fn catalogue(mut self, catalogue: PlanCatalogue) -> Self {
        self.catalogue = catalogue;
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How days and months are cut (default: UTC days and calendar months).
    pub fn windows(mut self, windows: Windows) -> Self {
        self.windows = windows;
        self
    }

    /// How long a reservation may stay pending before it is released (default 30 minutes).
    pub fn reservation_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether plans' burst limits apply (default: yes).
    pub fn burst_limits(mut self, on: bool) -> Self {
        self.burst_limits = on;
        self
    }

    /// The handle.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a zero or out-of-range reservation timeout.
    pub fn build(self) -> Result<Quota<S>> {
        let timeout = chrono::Duration::from_std(self.timeout)
            .ok()
            .filter(|t| *t > chrono::Duration::zero() && *t < chrono::Duration::days(3650))
            .ok_or_else(|| {
                Error::Config("reservation timeout must be between 0 and 10 years".into())
            })?;
        let plans = Arc::new(Plans::new(self.catalogue));
        Ok(Quota {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                windows: self.windows,
                timeout,
                burst_limits: self.burst_limits,
                plans: RwLock::new(Arc::clone(&plans)),
                plans_version: AtomicU64::new(0),
                user_plans: DashMap::new(),
            }),
            plans,
            plans_version: 0,
        })
    }
}

impl Quota {
    /// A builder over `store` (a [`MemoryUsageStore`], a SQLite or PostgreSQL store, or an
    /// [`AnyUsageStore`]), held as an [`AnyUsageStore`].
    pub fn builder(store: impl Into<AnyUsageStore>) -> QuotaBuilder {
        Self::builder_with_store(store.into())
    }

    /// A quota over `store` with the default plans, the system clock and UTC windows, held
    /// as an [`AnyUsageStore`].
    pub fn new(store: impl Into<AnyUsageStore>) -> Self {
        Self::with_store(store.into())
    }

    /// Creates or updates the store's tables (see [`AnyUsageStore::migrate`]; the concrete
    /// stores have their own `migrate`).
    ///
    /// # Errors
    ///
    /// Migration errors.
    pub async fn migrate(&self) -> Result<()> {
        self.inner.store.migrate().await
    }
}

impl<S: UsageStore> Quota<S> {
    /// A builder over any [`UsageStore`], kept as its own type.
    pub fn builder_with_store(store: S) -> QuotaBuilder<S> {
        QuotaBuilder {
            store,
            catalogue: PlanCatalogue::default(),
            clock: SystemClock::shared(),
            windows: Windows::default(),
            timeout: DEFAULT_RESERVATION_TIMEOUT,
            burst_limits: true,
        }
    }

    /// A quota over any [`UsageStore`], kept as its own type, with the default plans, the
    /// system clock and UTC windows.
    ///
    /// ```
    /// use appforge_quota::{MemoryUsageStore, Quota};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_quota::Result<()> {
    /// let quota: Quota<MemoryUsageStore> = Quota::with_store(MemoryUsageStore::new());
    /// assert!(quota.reserve(uuid::Uuid::new_v4(), 1).await?.is_granted());
    /// # Ok(()) }
    /// ```
    pub fn with_store(store: S) -> Self {
        Self::builder_with_store(store)
            .build()
            .expect("the default settings are valid")
    }

    /// The memory store when this quota runs on it (directly or in an [`AnyUsageStore`]): it
    /// answers at once, so calling it directly skips building the future of a store call.
    fn memory(&self) -> Option<&MemoryUsageStore> {
        let store: &dyn Any = &self.inner.store;
        if let Some(any) = store.downcast_ref::<AnyUsageStore>() {
            #[allow(unreachable_patterns)] // without the SQL stores' features
            return match any {
                AnyUsageStore::Memory(memory) => Some(memory),
                _ => None,
            };
        }
        store.downcast_ref::<MemoryUsageStore>()
    }

    fn plans(&self) -> Cow<'_, Arc<Plans>> {
        match self.cached_plans() {
            Some(plans) => Cow::Borrowed(plans),
            None => Cow::Owned(self.inner.current_plans().0),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Holds `cost` generations for `user` if their plan allows it now: the same as
    /// [`reserve_for`](Self::reserve_for) with [`Resource::Generation`].
    ///
    /// # Errors
    ///
    /// As [`reserve_for`](Self::reserve_for).
    pub async fn reserve(&self, user: Uuid, cost: u32) -> Result<Admission> {
        self.reserve_for(user, Resource::Generation, cost).await
    }

    /// Holds `cost` of `resource` (generations or chat messages) for `user` if their plan
    /// allows it now.
    ///
    /// A denial carries the user's [`QuotaStatus`] with the limit that refused it and the
    /// time until a retry can succeed. Commit or refund a granted reservation when the work
    /// ends; one left pending past the reservation timeout is released.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a zero cost, [`Error::UnknownPlan`] when the user's
    /// stored plan left the catalogue, storage errors.
    pub async fn reserve_for(
        &self,
        user: Uuid,
        resource: Resource,
        cost: u32,
    ) -> Result<Admission> {
        if cost == 0 {
            return Err(Error::InvalidArgument(
                "a reservation costs at least 1".into(),
            ));
        }
        let plans = self.plans();
        let now = self.now();
        let cx = StoreContext::new(now, self.inner.windows, &plans.catalogue);
        // Burst limits pace generations; chat messages have their daily count.
        let burst = self.inner.burst_limits && resource == Resource::Generation;
        if burst {
            let cached = self.inner.user_plans.get(&user).map(|p| p.clone());
            let plan = match cached {
                Some(plan) => plan,
                None => self.usage(cx, user).await?.plan,
            };
            if let Err(wait) = plans.burst.check(&plan, user) {
                let usage = self.usage(cx, user).await?;
                let plan = plans.catalogue.require(&usage.plan)?;
                let mut status = usage.status(plan, now, cx.windows, Some(LimitKind::Burst));
                status.retry_after = Some(wait);
                return Ok(Admission::Denied(status));
            }
        }
        let id = ReservationId::for_user(user);
        let expires_at = now + self.inner.timeout;
        let request = ReserveRequest::new(id, user, cost, expires_at).resource(resource);
        let outcome = match self.memory() {
            // The memory store answers at once: calling it directly skips building the
            // future of the dispatching call, which is as large as the SQL stores' futures.
            Some(store) => store.reserve_now(&cx, request)?,
            // Boxed, so that this future stays small for the memory store; a round trip to
            // a database dwarfs the allocation.
            None => Box::pin(self.inner.store.reserve(cx, request)).await?,
        };
        let plan = plans.catalogue.require(&outcome.usage.plan)?;
        if burst {
            self.remember_plan(user, &plan.id);
        }
        Ok(match outcome.refused_by {
            None => Admission::Granted(granted(&request, plan)),
            Some(kind) => {
                Admission::Denied(outcome.usage.status(plan, now, cx.windows, Some(kind)))
            }
        })
    }

    /// The PostgreSQL store when this quota runs on it (directly or in an
    /// [`AnyUsageStore`]).
    #[cfg(feature = "postgres")]
    fn postgres(&self) -> Option<&crate::PgUsageStore> {
        let store: &dyn Any = &self.inner.store;
        if let Some(AnyUsageStore::Postgres(pg)) = store.downcast_ref::<AnyUsageStore>() {
            return Some(pg);
        }
        store.downcast_ref::<crate::PgUsageStore>()
    }

    /// The PostgreSQL pool of the store, when this quota runs on PostgreSQL: where
    /// [`reserve_held_on`](Self::reserve_held_on) must be given a connection.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[must_use]
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        self.postgres().map(crate::PgUsageStore::pool)
    }

    /// Reserves one generation for each `(user, holder)` of `asks` on `conn`, a connection to
    /// this quota's PostgreSQL database, typically inside the caller's transaction: each
    /// reservation is held by its holder from the start (it does not expire, as after
    /// [`hold`](Self::hold)) and exists only if that transaction commits. All of them are
    /// decided in one statement.
    ///
    /// The answer has one entry per ask, in order: the reservation, or `None` when this path
    /// did not admit it (a limit reached, a burst limit, a race with another transaction).
    /// Ask [`reserve_for`](Self::reserve_for) then: it decides, and says why when it refuses.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the store is not PostgreSQL; [`Error::UnknownPlan`]; database
    /// errors (the caller's transaction should then roll back: nothing it holds is valid).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn reserve_held_on(
        &self,
        conn: &mut sqlx::PgConnection,
        asks: &[(Uuid, Uuid)],
    ) -> Result<Vec<Option<Reservation>>> {
        let Some(store) = self.postgres() else {
            return Err(Error::Config(
                "reserve_held_on needs the PostgreSQL store".into(),
            ));
        };
        let plans = self.plans();
        let now = self.now();
        let cx = StoreContext::new(now, self.inner.windows, &plans.catalogue);
        if self.inner.burst_limits {
            // The burst limits are per plan: the plans of users this process has not seen
            // yet, read on the same connection in one statement.
            let unseen: Vec<Uuid> = asks
                .iter()
                .map(|&(user, _)| user)
                .filter(|user| !self.inner.user_plans.contains_key(user))
                .collect();
            if !unseen.is_empty() {
                let stored = store.plans_on(conn, &unseen).await?;
                for user in unseen {
                    let plan = stored
                        .get(&user)
                        .unwrap_or(&plans.catalogue.default_plan().id);
                    self.remember_plan(user, plan);
                }
            }
        }
        let mut answers: Vec<Option<Reservation>> = asks.iter().map(|_| None).collect();
        let mut requests = Vec::with_capacity(asks.len());
        let mut positions = Vec::with_capacity(asks.len());
        for (i, &(user, holder)) in asks.iter().enumerate() {
            if self.inner.burst_limits {
                let cached = self.inner.user_plans.get(&user).map(|p| p.clone());
                match cached {
                    Some(plan) if plans.burst.check(&plan, user).is_ok() => {}
                    _ => continue,
                }
            }
            let id = ReservationId::for_user(user);
            requests.push(ReserveRequest::new(id, user, 1, now).held_by(holder));
            positions.push(i);
        }
        let decided = store.reserve_held_on(conn, cx, &requests).await?;
        for ((request, usage), i) in requests.iter().zip(decided).zip(positions) {
            let Some(usage) = usage else { continue };
            let plan = plans.catalogue.require(&usage.plan)?;
            answers[i] = Some(granted(request, plan));
        }
        Ok(answers)
    }

    /// The SQLite store when this quota runs on it (directly or in an [`AnyUsageStore`]).
    #[cfg(feature = "sqlite")]
    fn sqlite(&self) -> Option<&crate::SqliteUsageStore> {
        let store: &dyn Any = &self.inner.store;
        if let Some(AnyUsageStore::Sqlite(sqlite)) = store.downcast_ref::<AnyUsageStore>() {
            return Some(sqlite);
        }
        store.downcast_ref::<crate::SqliteUsageStore>()
    }

    /// The SQLite pool of the store, when this quota runs on SQLite: where
    /// [`reserve_held_on_sqlite`](Self::reserve_held_on_sqlite) must be given a connection.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[must_use]
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        self.sqlite().map(crate::SqliteUsageStore::pool)
    }

    /// Reserves one generation for `user`, held by `holder` from the start, on `conn`: a
    /// connection to this quota's SQLite database inside the caller's immediate transaction
    /// (`BEGIN IMMEDIATE`), so that the reservation exists only if that transaction commits.
    ///
    /// `None` when it is not admitted here (a limit reached, a burst limit): roll back and ask
    /// [`reserve_for`](Self::reserve_for), which decides and says why.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the store is not SQLite; [`Error::UnknownPlan`]; database
    /// errors (roll the transaction back).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn reserve_held_on_sqlite(
        &self,
        conn: &mut sqlx::SqliteConnection,
        user: Uuid,
        holder: Uuid,
    ) -> Result<Option<Reservation>> {
        if self.sqlite().is_none() {
            return Err(Error::Config(
                "reserve_held_on_sqlite needs the SQLite store".into(),
            ));
        }
        let plans = self.plans();
        let now = self.now();
        let cx = StoreContext::new(now, self.inner.windows, &plans.catalogue);
        if self.inner.burst_limits {
            let cached = self.inner.user_plans.get(&user).map(|p| p.clone());
            let plan = match cached {
                Some(plan) => plan,
                None => {
                    let stored = crate::SqliteUsageStore::plan_on(conn, user).await?;
                    let plan = stored.unwrap_or_else(|| plans.catalogue.default_plan().id.clone());
                    self.remember_plan(user, &plan);
                    plan
                }
            };
            if plans.burst.check(&plan, user).is_err() {
                return Ok(None);
            }
        }
        let id = ReservationId::for_user(user);
        let request = ReserveRequest::new(id, user, 1, now).held_by(holder);
        let outcome = crate::SqliteUsageStore::reserve_held_on(conn, cx, request).await?;
        if outcome.refused_by.is_some() {
            return Ok(None);
        }
        let plan = plans.catalogue.require(&outcome.usage.plan)?;
        Ok(Some(granted(&request, plan)))
    }

    /// The store's usage of `user`, directly from the memory store.
    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        match self.memory() {
            Some(store) => Ok(store.usage_now(&cx, user)),
            None => Box::pin(self.inner.store.usage(cx, user)).await,
        }
    }

    fn remember_plan(&self, user: Uuid, plan: &PlanId) {
        let stale = self.inner.user_plans.get(&user).is_none_or(|p| *p != *plan);
        if stale {
            self.inner.user_plans.insert(user, plan.clone());
        }
    }

    /// Commits a reservation and records the tokens the work used. Committing it again does
    /// nothing and answers [`Settlement::AlreadyDone`].
    ///
    /// # Errors
    ///
    /// [`Error::ReservationNotFound`]; [`Error::AlreadySettled`] when the reservation was
    /// refunded or expired (an expired reservation's cost was released and its tokens are not
    /// recorded); storage errors.
    pub async fn commit(&self, id: ReservationId, tokens: u64) -> Result<Settlement> {
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        match self.memory() {
            Some(store) => store.commit_now(&cx, id, tokens),
            None => Box::pin(self.inner.store.commit(cx, id, tokens)).await,
        }
    }

    /// Refunds a reservation, giving its cost back to the windows it was taken from (if they
    /// are still current). Refunding it again, or refunding an expired one, does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::ReservationNotFound`]; [`Error::AlreadySettled`] when the reservation was
    /// committed; storage errors.
    pub async fn refund(&self, id: ReservationId) -> Result<Settlement> {
        self.refund_with_tokens(id, 0).await
    }

    /// Refunds a reservation (its cost is given back, as [`refund`](Self::refund) does) and
    /// records the tokens the work spent before it failed: a failure that was not the user's
    /// does not count against their generations, but what the model produced is paid for in
    /// tokens. The tokens are added by the call that settles the reservation, once.
    ///
    /// # Errors
    ///
    /// As [`refund`](Self::refund).
    pub async fn refund_with_tokens(&self, id: ReservationId, tokens: u64) -> Result<Settlement> {
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        match self.memory() {
            Some(store) => store.refund_now(&cx, id, tokens),
            None => Box::pin(self.inner.store.refund(cx, id, tokens)).await,
        }
    }

    /// Records `tokens` spent by the work of a reservation that stays pending: an attempt
    /// that reached the model and will be retried. Each call adds its tokens, so call it once
    /// per attempt; the tokens of the attempt that ends the work go with its
    /// [`commit`](Self::commit) or [`refund_with_tokens`](Self::refund_with_tokens).
    ///
    /// # Errors
    ///
    /// [`Error::ReservationNotFound`]; [`Error::AlreadySettled`] when the reservation is no
    /// longer pending (nothing is recorded); storage errors.
    pub async fn record_tokens(&self, id: ReservationId, tokens: u64) -> Result<()> {
        if tokens == 0 {
            return Ok(());
        }
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        self.inner.store.record_tokens(cx, id, tokens).await
    }

    /// Attaches a pending reservation to the work it pays for (`holder`, such as a job id):
    /// from now on it lives as long as that work, and no reservation timeout releases it. The
    /// host settles it when the work ends, and releases it (with [`refund`](Self::refund))
    /// when the work no longer exists; [`held`](Self::held) lists what is held, for that
    /// check. Holding it again for the same holder does nothing.
    ///
    /// ```
    /// use appforge_quota::{Admission, MemoryUsageStore, Quota};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_quota::Result<()> {
    /// let clock = appforge_core::ManualClock::at("2026-03-14T12:00:00Z".parse().unwrap());
    /// let quota = Quota::builder(MemoryUsageStore::new()).clock(clock.shared()).build()?;
    /// let (user, job) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    /// let Admission::Granted(r) = quota.reserve(user, 1).await? else { unreachable!() };
    /// quota.hold(r.id, job).await?;
    /// clock.advance(Duration::from_secs(24 * 3600));
    /// quota.reset_expired().await?;
    /// assert_eq!(quota.held(quota.clock().now(), None, 10).await?[0].holder, job);
    /// quota.commit(r.id, 900).await?; // the job ran, a day later
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ReservationNotFound`]; [`Error::AlreadySettled`] when it is no longer pending
    /// (an expired one cannot be held again); storage errors.
    pub async fn hold(&self, id: ReservationId, holder: Uuid) -> Result<()> {
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        self.inner.store.hold(cx, id, holder).await
    }

    /// Up to `limit` held reservations still pending that were taken before `before`, in id
    /// order after `after` (for paging): what a host checks against its work.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn held(
        &self,
        before: DateTime<Utc>,
        after: Option<ReservationId>,
        limit: u32,
    ) -> Result<Vec<HeldReservation>> {
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        self.inner.store.held(cx, before, after, limit).await
    }

    /// The user's plan and windows now.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlan`] when the user's stored plan left the catalogue, storage errors.
    pub async fn status(&self, user: Uuid) -> Result<QuotaStatus> {
        let plans = self.plans();
        let now = self.now();
        let cx = StoreContext::new(now, self.inner.windows, &plans.catalogue);
        let usage = self.usage(cx, user).await?;
        let plan = plans.catalogue.require(&usage.plan)?;
        Ok(usage.status(plan, now, cx.windows, None))
    }

    /// The user's plan (the default plan for a user never seen).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlan`] when the user's stored plan left the catalogue, storage errors.
    pub async fn plan_of(&self, user: Uuid) -> Result<Plan> {
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        let stored = match self.memory() {
            Some(store) => Some(store.usage_now(&cx, user).plan),
            None => Box::pin(self.inner.store.plan(cx, user)).await?,
        };
        let plan = match &stored {
            Some(id) => plans.catalogue.require(id)?,
            None => plans.catalogue.default_plan(),
        };
        if self.inner.burst_limits {
            self.remember_plan(user, &plan.id);
        }
        Ok(plan.clone())
    }

    /// Moves the user to `plan`. Usage in the current windows is kept and counted against the
    /// new plan's limits at once. (Burst limits, which live in each process, follow a change
    /// made by another process after that process's next [`reset_expired`](Self::reset_expired).)
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlan`] when `plan` is not in the catalogue, storage errors.
    pub async fn set_plan(&self, user: Uuid, plan: &PlanId) -> Result<()> {
        let plans = self.plans();
        plans.catalogue.require(plan)?;
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        self.inner.store.set_plan(cx, user, plan).await?;
        if self.inner.burst_limits {
            self.inner.user_plans.insert(user, plan.clone());
        }
        Ok(())
    }

    /// Uses the subscription's billing period `[start, end)` as the user's monthly window.
    /// A period starting after the stored window starts new monthly counters; once `end`
    /// passes without a new period, calendar months apply again from `end`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `end` is not after `start`, storage errors.
    pub async fn set_billing_period(
        &self,
        user: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<()> {
        let period = BillingPeriod::new(start, end)?;
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        self.inner
            .store
            .set_billing_period(cx, user, Some(period))
            .await
    }

    /// Goes back to calendar months for the user.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn clear_billing_period(&self, user: Uuid) -> Result<()> {
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        self.inner.store.set_billing_period(cx, user, None).await
    }

    /// Releases expired reservations and resets ended windows for every user, so that
    /// reports read current numbers. Correctness never depends on it: reservations do the
    /// same lazily for their user. Also forgets idle burst state.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn reset_expired(&self) -> Result<SweepReport> {
        let plans = self.plans();
        let cx = StoreContext::new(self.now(), self.inner.windows, &plans.catalogue);
        let report = self.inner.store.sweep(cx).await?;
        plans.burst.shrink();
        // Forget the plans remembered for burst limits, so that plan changes made by other
        // processes are picked up and the map does not grow without end.
        self.inner.user_plans.clear();
        Ok(report)
    }

    /// The plan catalogue in use.
    #[must_use]
    pub fn catalogue(&self) -> Arc<PlanCatalogue> {
        Arc::clone(&self.plans().catalogue)
    }

    /// Replaces the plan catalogue (burst state starts afresh).
    pub fn set_catalogue(&self, catalogue: PlanCatalogue) {
        let mut plans = self.inner.plans.write();
        *plans = Arc::new(Plans::new(catalogue));
        self.inner.plans_version.fetch_add(1, Ordering::AcqRel);
    }

    /// Loads the plans stored in the `pricing_plans` table into the catalogue, keeping the
    /// current default plan (or the first stored plan if the default is not stored). Does
    /// nothing when no plan is stored.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the stored plans do not form a valid catalogue, storage errors.
    pub async fn load_plans(&self) -> Result<Arc<PlanCatalogue>> {
        let stored = self.inner.store.load_plans().await?;
        if stored.is_empty() {
            return Ok(self.catalogue());
        }
        let current = self.catalogue().default_plan().id.clone();
        let default = if stored.iter().any(|p| p.id == current) {
            current
        } else {
            stored[0].id.clone()
        };
        self.set_catalogue(PlanCatalogue::new(stored, default)?);
        Ok(self.catalogue())
    }

    /// Stores every plan of the catalogue in the `pricing_plans` table.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn save_plans(&self) -> Result<()> {
        let catalogue = self.catalogue();
        for plan in catalogue.plans() {
            self.inner.store.save_plan(plan).await?;
        }
        Ok(())
    }

    /// Adds or replaces one plan, in the store and in the catalogue.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid plan, storage errors.
    pub async fn save_plan(&self, plan: Plan) -> Result<()> {
        let catalogue = self.catalogue().with_plan(plan.clone())?;
        self.inner.store.save_plan(&plan).await?;
        self.set_catalogue(catalogue);
        Ok(())
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// How long a reservation may stay pending before it is released.
    ///
    /// ```
    /// use appforge_quota::{DEFAULT_RESERVATION_TIMEOUT, MemoryUsageStore, Quota};
    /// let quota = Quota::new(MemoryUsageStore::new());
    /// assert_eq!(quota.reservation_timeout(), DEFAULT_RESERVATION_TIMEOUT);
    /// ```
    #[must_use]
    pub fn reservation_timeout(&self) -> Duration {
        self.inner
            .timeout
            .to_std()
            .unwrap_or(DEFAULT_RESERVATION_TIMEOUT)
    }
}

/// The reservation a store granted for `request`, on `plan` (the user's plan it was decided
/// on).
fn granted(request: &ReserveRequest, plan: &Plan) -> Reservation {
    Reservation {
        id: request.id,
        user: request.user,
        resource: request.resource,
        cost: request.cost,
        plan: plan.id.clone(),
        priority: plan.priority,
        expires_at: request.expires_at,
    }
}
