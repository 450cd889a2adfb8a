//! What a user does with their subscription: checkout, portal, cancel, change plan or seats.

use uuid::Uuid;

use crate::billing::Billing;
use crate::error::{Error, Result};
use crate::model::SubscriptionRecord;
use crate::plans::Interval;
use crate::store::BillingStore;
use crate::stripe_api::{CancelMode, CheckoutParams, HostedSession, StripeApi};

/// A request for a subscription checkout page.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// The plan id (`pro`, `team`, ...).
    pub plan: String,
    /// Monthly or yearly price.
    pub interval: Interval,
    /// Seats (Team); 1 for single-user plans.
    pub seats: u64,
    /// Where Stripe sends the user after paying.
    pub success_url: String,
    /// Where Stripe sends the user if they go back.
    pub cancel_url: String,
    /// The user's email, used if a Stripe customer must be created.
    pub email: Option<String>,
}

impl<S: BillingStore> Billing<S> {
    fn api(&self) -> Result<&StripeApi> {
        self.inner
            .stripe
            .as_ref()
            .ok_or_else(|| Error::Config("no stripe client is configured".into()))
    }

    /// The user's Stripe customer, created (and linked) if they have none.
    ///
    /// # Errors
    ///
    /// A Stripe or store error.
    pub async fn ensure_customer(&self, user: Uuid, email: Option<&str>) -> Result<String> {
        if let Some(customer) = self.inner.store.customer_of_user(user).await? {
            return Ok(customer);
        }
        let customer = self.api()?.create_customer(user, email).await?;
        self.inner
            .store
            .link_customer(&customer, user, self.inner.clock.now())
            .await?;
        Ok(customer)
    }

    /// A Stripe Checkout page subscribing `user` to a plan.
    ///
    /// # Errors
    ///
    /// [`Error::NoPrice`] when the plan has no price for the interval, [`Error::Config`] for
    /// zero seats, or a Stripe error.
    pub async fn checkout(&self, user: Uuid, request: &CheckoutRequest) -> Result<HostedSession> {
        if request.seats == 0 {
            return Err(Error::Config("a checkout needs at least one seat".into()));
        }
        let price = self.price(&request.plan, request.interval).await?;
        let customer = self.ensure_customer(user, request.email.as_deref()).await?;
        self.api()?
            .create_checkout_session(&CheckoutParams {
                user,
                customer: Some(&customer),
                price: &price,
                quantity: request.seats,
                success_url: &request.success_url,
                cancel_url: &request.cancel_url,
            })
            .await
    }

    /// A Stripe billing-portal page for `user`.
    ///
    /// # Errors
    ///
    /// [`Error::NoCustomer`] when the user never had a customer, or a Stripe error.
    pub async fn portal(&self, user: Uuid, return_url: &str) -> Result<HostedSession> {
        let customer = self
            .inner
            .store
            .customer_of_user(user)
            .await?
            .ok_or(Error::NoCustomer(user))?;
        self.api()?
            .create_portal_session(&customer, return_url)
            .await
    }

    /// Cancels the user's live subscription now or at the end of the period.
    ///
    /// # Errors
    ///
    /// [`Error::NoSubscription`] or a Stripe error.
    pub async fn cancel(&self, user: Uuid, mode: CancelMode) -> Result<()> {
        let sub = self.live_subscription(user).await?;
        self.api()?.cancel(&sub, mode).await?;
        Ok(())
    }

    /// Moves the user's live subscription to another plan or interval.
    ///
    /// # Errors
    ///
    /// [`Error::NoSubscription`], [`Error::NoPrice`] or a Stripe error.
    pub async fn change_plan(&self, user: Uuid, plan: &str, interval: Interval) -> Result<()> {
        let price = self.price(plan, interval).await?;
        let sub = self.live_subscription(user).await?;
        let item = self.first_item(&sub).await?;
        self.api()?
            .update_item(&sub, &item.id, Some(&price), None)
            .await?;
        Ok(())
    }

    /// Sets the number of seats (the quantity) of the user's live subscription, prorating
    /// as configured.
    ///
    /// Idempotent: when Stripe's live subscription item already has `seats`, nothing is sent.
    /// Otherwise the update carries an idempotency key derived from the subscription, its
    /// item, the quantity and the stored subscription's freshness version, so a retried call
    /// (a timeout whose request did reach Stripe, a second click) is applied once. The version
    /// changes when the change's own `customer.subscription.updated` event is handled, so a
    /// later deliberate change back to an earlier quantity is not mistaken for a retry.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for zero seats, [`Error::NoSubscription`] or a Stripe error.
    pub async fn change_seats(&self, user: Uuid, seats: u64) -> Result<()> {
        if seats == 0 {
            return Err(Error::Config(
                "a subscription needs at least one seat".into(),
            ));
        }
        let sub = self.live_record(user).await?;
        let item = self.first_item(&sub.stripe_subscription_id).await?;
        if item.quantity == Some(seats) {
            return Ok(());
        }
        let key = format!(
            "appforge-seats-{}-{}-{seats}-v{}",
            sub.stripe_subscription_id, item.id, sub.synced_version
        );
        self.api()?
            .update_quantity(&sub.stripe_subscription_id, &item.id, seats, &key)
            .await?;
        Ok(())
    }

    async fn price(&self, plan: &str, interval: Interval) -> Result<String> {
        self.inner
            .plans
            .price_for_plan(plan, interval)
            .await?
            .ok_or_else(|| Error::NoPrice {
                plan: plan.to_owned(),
                interval: match interval {
                    Interval::Monthly => "monthly",
                    Interval::Yearly => "yearly",
                },
            })
    }

    async fn live_subscription(&self, user: Uuid) -> Result<String> {
        Ok(self.live_record(user).await?.stripe_subscription_id)
    }

    async fn live_record(&self, user: Uuid) -> Result<SubscriptionRecord> {
        self.inner
            .store
            .subscriptions_of_user(user)
            .await?
            .into_iter()
            .filter(SubscriptionRecord::is_live)
            .max_by_key(|s| s.synced_version)
            .ok_or(Error::NoSubscription(user))
    }

    /// The first item of Stripe's current copy of `subscription`.
    async fn first_item(&self, subscription: &str) -> Result<LiveItem> {
        let current = self.api()?.retrieve_subscription(subscription).await?;
        current
            .items
            .data
            .first()
            .map(|i| LiveItem {
                id: i.id.as_str().to_owned(),
                quantity: i.quantity,
            })
            .ok_or_else(|| Error::Stripe {
                operation: "retrieve subscription",
                status: None,
                message: format!("subscription {subscription} has no items"),
            })
    }
}

/// A subscription item as Stripe has it now.
#[derive(Debug)]
struct LiveItem {
    id: String,
    quantity: Option<u64>,
}
