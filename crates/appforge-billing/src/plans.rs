//! The link from Stripe prices to plans, and from plans to the user's quota: [`PlanSync`],
//! defined in `appforge-core` so that billing and the quota crate need not know each other.

pub use appforge_core::{BillingPeriod, Interval, PlanSync, PlanSyncError};
#[cfg(feature = "store")]
use {
    crate::error::{Error, Result},
    crate::event::{from_unix, user_in_metadata},
    crate::model::SubscriptionSnapshot,
    crate::object::BillingSubscription,
};

#[cfg(feature = "store")]
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
