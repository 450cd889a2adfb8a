//! The link from Stripe prices to plans, and from plans to the user's quota.

use std::fmt;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{from_unix, user_in_metadata};
use crate::model::SubscriptionSnapshot;
use crate::object::BillingSubscription;

/// Monthly or yearly billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// Billed every month.
    Monthly,
    /// Billed every year.
    Yearly,
}

/// A billing period, passed to the quota so that monthly windows can follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingPeriod {
    /// Start of the period.
    pub start: DateTime<Utc>,
    /// End of the period.
    pub end: DateTime<Utc>,
}

/// Where billing reads the plan catalogue and writes the user's plan: implemented for
/// `appforge_quota::Quota`; a host may supply its own.
pub trait PlanSync: Send + Sync + fmt::Debug + 'static {
    /// The plan id whose monthly or yearly Stripe price is `price_id`.
    fn plan_for_price(&self, price_id: &str) -> BoxFuture<'_, Result<Option<String>>>;

    /// The Stripe price of `plan` billed every `interval`.
    fn price_for_plan(
        &self,
        plan: &str,
        interval: Interval,
    ) -> BoxFuture<'_, Result<Option<String>>>;

    /// Sets `user`'s plan; `period` is the subscription's current billing period when there is
    /// one. Must be idempotent: it is called again on retries.
    fn set_plan(
        &self,
        user: Uuid,
        plan: &str,
        period: Option<BillingPeriod>,
    ) -> BoxFuture<'_, Result<()>>;
}

/// Reads the fields this crate keeps from a subscription (from an event, or fetched from
/// Stripe and converted), mapping its price to a plan.
pub(crate) async fn snapshot_of(
    subscription: &BillingSubscription,
    plans: &dyn PlanSync,
    version: i64,
    fetched: bool,
) -> Result<SubscriptionSnapshot> {
    let item = subscription.items.first();
    let price_id = item.map(|i| i.price_id.clone());
    let plan = match &price_id {
        Some(price) => plans
            .plan_for_price(price)
            .await?
            .ok_or_else(|| Error::UnknownPrice(price.clone()))?,
        None => crate::model::FREE_PLAN.to_owned(),
    };
    Ok(SubscriptionSnapshot {
        id: subscription.id.clone(),
        customer: subscription.customer.clone(),
        user_hint: user_in_metadata(&subscription.metadata),
        plan,
        status: subscription.status.clone(),
        price_id,
        quantity: item.and_then(|i| i.quantity).unwrap_or(1),
        current_period_start: item.and_then(|i| from_unix(i.current_period_start)),
        current_period_end: item.and_then(|i| from_unix(i.current_period_end)),
        cancel_at_period_end: subscription.cancel_at_period_end,
        version,
        fetched,
    })
}

impl PlanSync for appforge_quota::Quota {
    fn plan_for_price(&self, price_id: &str) -> BoxFuture<'_, Result<Option<String>>> {
        let plan = self
            .catalogue()
            .by_stripe_price(price_id)
            .map(|p| p.id.as_str().to_owned());
        Box::pin(async move { Ok(plan) })
    }

    fn price_for_plan(
        &self,
        plan: &str,
        interval: Interval,
    ) -> BoxFuture<'_, Result<Option<String>>> {
        let catalogue = self.catalogue();
        let price = catalogue
            .get(&appforge_quota::PlanId::new(plan))
            .filter(|p| p.is_active)
            .and_then(|p| match interval {
                Interval::Monthly => p.stripe_price_id_monthly.clone(),
                Interval::Yearly => p.stripe_price_id_yearly.clone(),
            });
        Box::pin(async move { Ok(price) })
    }

    fn set_plan(
        &self,
        user: Uuid,
        plan: &str,
        period: Option<BillingPeriod>,
    ) -> BoxFuture<'_, Result<()>> {
        let plan = appforge_quota::PlanId::new(plan);
        Box::pin(async move {
            let quota_error = |e: appforge_quota::Error| Error::Quota(e.to_string());
            appforge_quota::Quota::set_plan(self, user, &plan)
                .await
                .map_err(quota_error)?;
            match period {
                Some(p) if p.end > p.start => self
                    .set_billing_period(user, p.start, p.end)
                    .await
                    .map_err(quota_error),
                _ => self.clear_billing_period(user).await.map_err(quota_error),
            }
        })
    }
}
