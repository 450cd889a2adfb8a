//! The usage store trait and its backends.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Result;
use crate::catalogue::PlanCatalogue;
use crate::plan::{Plan, PlanId};
use crate::reservation::{HeldReservation, ReservationId, Settlement};
use crate::resource::Resource;
use crate::status::LimitKind;
use crate::usage::Usage;
use crate::window::{BillingPeriod, Windows};

pub(crate) mod any;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// What every store call is given: the time, how windows are cut, and the plans.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct StoreContext<'a> {
    /// The current time, from the quota's clock.
    pub now: DateTime<Utc>,
    /// How windows are cut.
    pub windows: Windows,
    /// The plans, for limits and the default plan of new users.
    pub plans: &'a PlanCatalogue,
}

impl<'a> StoreContext<'a> {
    /// A context at `now`.
    #[must_use]
    pub fn new(now: DateTime<Utc>, windows: Windows, plans: &'a PlanCatalogue) -> Self {
        Self {
            now,
            windows,
            plans,
        }
    }
}

/// A request to hold `cost` of a resource (generations unless told) for `user`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ReserveRequest {
    /// The new reservation's id.
    pub id: ReservationId,
    /// The user.
    pub user: Uuid,
    /// What to hold.
    pub resource: Resource,
    /// How many to hold (at least 1).
    pub cost: u32,
    /// When the reservation is released unless settled first.
    pub expires_at: DateTime<Utc>,
    /// The work holding it from the start (see [`UsageStore::hold`]), if any: a held
    /// reservation does not expire.
    pub holder: Option<Uuid>,
}

impl ReserveRequest {
    /// A request for `cost` generations of `user`, released at `expires_at`.
    #[must_use]
    pub fn new(id: ReservationId, user: Uuid, cost: u32, expires_at: DateTime<Utc>) -> Self {
        Self {
            id,
            user,
            resource: Resource::Generation,
            cost,
            expires_at,
            holder: None,
        }
    }

    /// The same request, held by `holder` from the start, as if [`UsageStore::hold`] were
    /// called in the same step: it does not expire.
    #[must_use]
    pub fn held_by(mut self, holder: Uuid) -> Self {
        self.holder = Some(holder);
        self.expires_at = crate::reservation::held_until();
        self
    }

    /// The same request for `resource` instead.
    #[must_use]
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resource = resource;
        self
    }
}

/// A store's answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReserveOutcome {
    /// `None` when granted, else the limit that refused it.
    pub refused_by: Option<LimitKind>,
    /// The user's usage after the decision (with the reservation when granted).
    pub usage: Usage,
}

impl ReserveOutcome {
    /// A granted reservation: `usage` counts it.
    #[must_use]
    pub fn granted(usage: Usage) -> Self {
        Self {
            refused_by: None,
            usage,
        }
    }

    /// A refusal by `limit`, with the user's `usage` unchanged by it.
    #[must_use]
    pub fn refused(limit: LimitKind, usage: Usage) -> Self {
        Self {
            refused_by: Some(limit),
            usage,
        }
    }
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Expired reservations released.
    pub released: u64,
    /// Users whose daily or monthly window was reset.
    pub reset: u64,
}

/// Where usage, reservations and plans live.
///
/// The crate's stores implement it ([`MemoryUsageStore`](crate::MemoryUsageStore), the SQL
/// stores, [`AnyUsageStore`](crate::AnyUsageStore)), and so can a store outside it: every type
/// in its signatures is public, [`Usage`] carries the window rules a store applies
/// ([`roll`](Usage::roll), [`refusal`](Usage::refusal), [`charge`](Usage::charge),
/// [`uncharge`](Usage::uncharge)), and the `testing` feature exports the behavioural suite
/// every store passes (`appforge_quota::testing`). Hand it to
/// [`Quota::with_store`](crate::Quota::with_store).
///
/// Every method is atomic on its own; [`UsageStore::reserve`] in particular decides and
/// records in one atomic step (a lock, an immediate transaction, or one SQL statement), so no
/// interleaving of callers ever admits more than a limit.
pub trait UsageStore: Send + Sync + fmt::Debug + 'static {
    /// Releases the user's expired reservations, resets ended windows, and holds
    /// `request.cost` if the user's plan allows it. A user without a row starts on the
    /// default plan.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlan`](crate::Error::UnknownPlan) when the user's plan is not in the
    /// catalogue; storage errors.
    fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> impl Future<Output = Result<ReserveOutcome>> + Send;

    /// Commits a reservation, adding `tokens` to the user's usage; idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::ReservationNotFound`](crate::Error::ReservationNotFound);
    /// [`Error::AlreadySettled`](crate::Error::AlreadySettled) for a refunded or expired
    /// reservation (an expired one is released by this call if it was still pending).
    fn commit(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> impl Future<Output = Result<Settlement>> + Send;

    /// Refunds a reservation, giving its cost back and adding `tokens` (what the work spent
    /// before it failed) to the user's usage; idempotent (the tokens are added by the call
    /// that settles it).
    ///
    /// # Errors
    ///
    /// [`Error::ReservationNotFound`](crate::Error::ReservationNotFound);
    /// [`Error::AlreadySettled`](crate::Error::AlreadySettled) for a committed reservation.
    fn refund(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> impl Future<Output = Result<Settlement>> + Send;

    /// Adds `tokens` to the user's usage for a reservation still pending (an attempt of the
    /// work that spent them), leaving it pending.
    ///
    /// # Errors
    ///
    /// [`Error::ReservationNotFound`](crate::Error::ReservationNotFound);
    /// [`Error::AlreadySettled`](crate::Error::AlreadySettled) when it is not pending (an
    /// expired one is released by this call if it was still pending).
    fn record_tokens(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Attaches a pending reservation to `holder` (the work it pays for): it no longer
    /// expires. Holding it again for the same holder does nothing.
    ///
    /// # Errors
    ///
    /// As [`UsageStore::record_tokens`].
    fn hold(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        holder: Uuid,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Up to `limit` pending held reservations taken before `before`, in id order after
    /// `after`.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn held(
        &self,
        cx: StoreContext<'_>,
        before: DateTime<Utc>,
        after: Option<ReservationId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<HeldReservation>>> + Send;

    /// The user's usage at `cx.now`, after releasing expired reservations (a user without a
    /// row gets fresh usage on the default plan, not stored).
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn usage(&self, cx: StoreContext<'_>, user: Uuid)
    -> impl Future<Output = Result<Usage>> + Send;

    /// The user's stored plan, `None` for a user without a row. Provided through
    /// [`usage`](Self::usage); a store overrides it when it can read the plan alone for less.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn plan(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
    ) -> impl Future<Output = Result<Option<PlanId>>> + Send {
        async move { self.usage(cx, user).await.map(|usage| Some(usage.plan)) }
    }

    /// Moves the user to `plan`, keeping the current windows' usage.
    ///
    /// # Errors
    ///
    /// Storage errors (the caller checks the plan exists).
    fn set_plan(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        plan: &PlanId,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets (or with `None` clears) the billing period used as the user's monthly window.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Releases every expired reservation and resets every ended window.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn sweep(&self, cx: StoreContext<'_>) -> impl Future<Output = Result<SweepReport>> + Send;

    /// The stored plans (the `pricing_plans` table), in display order.
    ///
    /// # Errors
    ///
    /// Storage errors; [`Error::Corrupt`](crate::Error::Corrupt) for an unreadable row.
    fn load_plans(&self) -> impl Future<Output = Result<Vec<Plan>>> + Send;

    /// Inserts or replaces a stored plan.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn save_plan(&self, plan: &Plan) -> impl Future<Output = Result<()>> + Send;
}
