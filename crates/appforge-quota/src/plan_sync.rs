//! The quota as billing's plan store: [`PlanSync`] for [`Quota`].
//!
//! The trait is defined in `appforge-core`, which both crates depend on: billing sets plans
//! through it without depending on this crate, and this crate implements it without depending
//! on billing.

use appforge_core::{
    BillingPeriod, BoxFuture, Interval, InvalidBillingPeriod, PlanSync, PlanSyncError,
};
use uuid::Uuid;

use crate::{Error, PlanId, Quota, UsageStore};

impl From<InvalidBillingPeriod> for Error {
    fn from(e: InvalidBillingPeriod) -> Self {
        Self::InvalidArgument(e.to_string())
    }
}

/// For any store. Prices map to plans through the catalogue's Stripe prices (only active plans
/// have a price to sell); setting a plan also sets (or clears) the user's billing period.
impl<S: UsageStore + 'static> PlanSync for Quota<S>
where
    Self: std::fmt::Debug,
{
    fn plan_for_price(
        &self,
        price_id: &str,
    ) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>> {
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
    ) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>> {
        let catalogue = self.catalogue();
        let price = catalogue
            .get(&PlanId::new(plan))
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
    ) -> BoxFuture<'_, Result<(), PlanSyncError>> {
        let plan = PlanId::new(plan);
        Box::pin(async move {
            Quota::<S>::set_plan(self, user, &plan)
                .await
                .map_err(PlanSyncError::new)?;
            match period {
                Some(p) if p.end > p.start => self.set_billing_period(user, p.start, p.end).await,
                _ => self.clear_billing_period(user).await,
            }
            .map_err(PlanSyncError::new)
        })
    }
}
