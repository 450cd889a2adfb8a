//! The link between billing and quotas: a [`PlanSync`] maps Stripe prices to plans and sets a
//! user's plan, with the [`BillingPeriod`] their monthly window follows.
//!
//! The trait lives here, in the crate both sides already depend on, so that neither depends
//! on the other: `appforge-billing` calls it, `appforge-quota` implements it for its `Quota`,
//! and a host without the quota crate implements it over its own plan table.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A boxed future, `Send`, borrowing for `'a`: what [`PlanSync`]'s methods return, so that the
/// trait can be used as `Arc<dyn PlanSync>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A subscription's billing period, `[start, end)`: a user's monthly quota window follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BillingPeriod {
    /// The first instant of the period.
    pub start: DateTime<Utc>,
    /// The first instant after the period.
    pub end: DateTime<Utc>,
}

impl BillingPeriod {
    /// The period `[start, end)`.
    ///
    /// # Errors
    ///
    /// [`InvalidBillingPeriod`] when `end` is not after `start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, InvalidBillingPeriod> {
        if end <= start {
            return Err(InvalidBillingPeriod { start, end });
        }
        Ok(Self { start, end })
    }

    /// Whether `now` is inside the period.
    #[must_use]
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now < self.end
    }
}

/// A billing period that ends before (or when) it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidBillingPeriod {
    /// The start given.
    pub start: DateTime<Utc>,
    /// The end given.
    pub end: DateTime<Utc>,
}

impl fmt::Display for InvalidBillingPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "billing period ends ({}) before it starts ({})",
            self.end, self.start
        )
    }
}

impl std::error::Error for InvalidBillingPeriod {}

/// Monthly or yearly billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// Billed every month.
    Monthly,
    /// Billed every year.
    Yearly,
}

impl Interval {
    /// `monthly` or `yearly`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }
}

/// Why a [`PlanSync`] call failed: the plan store could not be read or written. Billing
/// treats it as transient (the event is retried, the periodic pass tries again).
#[derive(Debug)]
pub struct PlanSyncError(Box<dyn std::error::Error + Send + Sync>);

impl PlanSyncError {
    /// Wraps the implementation's error (or a message).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for PlanSyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PlanSyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Where billing reads the plan catalogue and writes the user's plan. `appforge-quota`
/// implements it for its `Quota`; a host may supply its own.
///
/// ```
/// use appforge_core::{BillingPeriod, BoxFuture, Interval, PlanSync, PlanSyncError};
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// /// One paid plan, `pro`, at one monthly price; plans kept in memory.
/// #[derive(Debug, Default)]
/// struct Plans(Mutex<HashMap<uuid::Uuid, String>>);
///
/// impl PlanSync for Plans {
///     fn plan_for_price(&self, price: &str) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>> {
///         let plan = (price == "price_pro").then(|| "pro".to_owned());
///         Box::pin(async move { Ok(plan) })
///     }
///
///     fn price_for_plan(
///         &self,
///         plan: &str,
///         interval: Interval,
///     ) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>> {
///         let price = (plan == "pro" && interval == Interval::Monthly).then(|| "price_pro".to_owned());
///         Box::pin(async move { Ok(price) })
///     }
///
///     fn set_plan(
///         &self,
///         user: uuid::Uuid,
///         plan: &str,
///         _period: Option<BillingPeriod>,
///     ) -> BoxFuture<'_, Result<(), PlanSyncError>> {
///         self.0.lock().unwrap().insert(user, plan.to_owned());
///         Box::pin(async { Ok(()) })
///     }
/// }
/// # let _: std::sync::Arc<dyn PlanSync> = std::sync::Arc::new(Plans::default());
/// ```
pub trait PlanSync: Send + Sync + fmt::Debug + 'static {
    /// The plan id whose monthly or yearly Stripe price is `price_id`.
    fn plan_for_price(
        &self,
        price_id: &str,
    ) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>>;

    /// The Stripe price of `plan` billed every `interval`.
    fn price_for_plan(
        &self,
        plan: &str,
        interval: Interval,
    ) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>>;

    /// Sets `user`'s plan; `period` is the subscription's current billing period when there is
    /// one. Must be idempotent: it is called again on retries.
    fn set_plan(
        &self,
        user: Uuid,
        plan: &str,
        period: Option<BillingPeriod>,
    ) -> BoxFuture<'_, Result<(), PlanSyncError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_must_end_after_it_starts() {
        let start: DateTime<Utc> = "2026-03-10T08:00:00Z".parse().unwrap();
        let end: DateTime<Utc> = "2026-04-10T08:00:00Z".parse().unwrap();
        let p = BillingPeriod::new(start, end).unwrap();
        assert!(p.contains(start));
        assert!(!p.contains(end));
        let err = BillingPeriod::new(end, start).unwrap_err();
        assert!(err.to_string().contains("before it starts"), "{err}");
        assert!(BillingPeriod::new(start, start).is_err());
    }
}
