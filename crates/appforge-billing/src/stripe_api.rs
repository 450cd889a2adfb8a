//! Calls to Stripe's API through async-stripe.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use appforge_core::{ExposeSecret, SecretString};
use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_billing::Subscription;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::subscription::{
    CancelSubscription, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_core::customer::CreateCustomer;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::USER_ID_METADATA_KEY;

/// How Stripe bills a mid-period plan or seat change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProrationBehavior {
    /// Credit and charge the difference on the next invoice (Stripe's default).
    #[default]
    CreateProrations,
    /// Invoice the difference at once.
    AlwaysInvoice,
    /// No proration.
    None,
}

impl ProrationBehavior {
    fn to_stripe(self) -> UpdateSubscriptionProrationBehavior {
        match self {
            Self::CreateProrations => UpdateSubscriptionProrationBehavior::CreateProrations,
            Self::AlwaysInvoice => UpdateSubscriptionProrationBehavior::AlwaysInvoice,
            Self::None => UpdateSubscriptionProrationBehavior::None,
        }
    }
}

/// When a cancellation takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMode {
    /// End the subscription now.
    Now,
    /// Keep it until the end of the paid period, then end it.
    AtPeriodEnd,
}

/// A Stripe-hosted page to send the user to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedSession {
    /// The session's id (`cs_...` or `bps_...`).
    pub id: String,
    /// Where to redirect the user.
    pub url: String,
}

/// A client for the Stripe calls billing makes. Cheap to clone.
#[derive(Clone)]
pub struct StripeApi {
    client: stripe::Client,
    proration: ProrationBehavior,
}

impl fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeApi")
            .field("secret_key", &"[redacted]")
            .field("proration", &self.proration)
            .finish_non_exhaustive()
    }
}

/// Builds a [`StripeApi`].
pub struct StripeApiBuilder {
    secret_key: SecretString,
    base_url: Option<String>,
    timeout: Duration,
    proration: ProrationBehavior,
}

impl fmt::Debug for StripeApiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeApiBuilder")
            .field("secret_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("proration", &self.proration)
            .finish()
    }
}

impl StripeApi {
    /// A builder for the account whose secret key (`sk_...` or a restricted `rk_...`) is given.
    #[must_use]
    pub fn builder(secret_key: SecretString) -> StripeApiBuilder {
        StripeApiBuilder {
            secret_key,
            base_url: None,
            timeout: Duration::from_secs(10),
            proration: ProrationBehavior::default(),
        }
    }

    /// Fetches a subscription's current state.
    pub(crate) async fn retrieve_subscription(&self, id: &str) -> Result<Subscription> {
        RetrieveSubscription::new(id)
            .send(&self.client)
            .await
            .map_err(|e| Error::stripe("retrieve subscription", e))
    }

    /// Creates a customer for `user`, with the user id in its metadata.
    ///
    /// # Errors
    ///
    /// [`Error::Stripe`] when the call fails.
    pub async fn create_customer(&self, user: Uuid, email: Option<&str>) -> Result<String> {
        let mut request = CreateCustomer::new().metadata(user_metadata(user));
        if let Some(email) = email {
            request = request.email(email);
        }
        // One customer per user: a retried call within Stripe's 24 h idempotency window
        // returns the first customer instead of creating a second.
        let customer = request
            .customize()
            .request_strategy(idempotent(&format!("appforge-customer-{user}"))?)
            .send(&self.client)
            .await
            .map_err(|e| Error::stripe("create customer", e))?;
        Ok(customer.id.as_str().to_owned())
    }

    /// Creates a subscription checkout session for `price` (`quantity` seats) with
    /// `client_reference_id` = the user.
    pub(crate) async fn create_checkout_session(
        &self,
        checkout: &CheckoutParams<'_>,
    ) -> Result<HostedSession> {
        let mut line = CreateCheckoutSessionLineItems::new();
        line.price = Some(checkout.price.to_owned());
        line.quantity = Some(checkout.quantity);
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(user_metadata(checkout.user));
        let mut request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .line_items(vec![line])
            .client_reference_id(checkout.user.to_string())
            .metadata(user_metadata(checkout.user))
            .subscription_data(subscription)
            .success_url(checkout.success_url)
            .cancel_url(checkout.cancel_url);
        if let Some(customer) = checkout.customer {
            request = request.customer(customer);
        }
        let session = request
            .customize()
            .request_strategy(fresh_key("checkout")?)
            .send(&self.client)
            .await
            .map_err(|e| Error::stripe("create checkout session", e))?;
        let url = session.url.ok_or_else(|| Error::Stripe {
            operation: "create checkout session",
            status: None,
            message: "the session has no url".to_owned(),
        })?;
        Ok(HostedSession {
            id: session.id.as_str().to_owned(),
            url,
        })
    }

    /// Creates a billing-portal session for `customer`.
    pub(crate) async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<HostedSession> {
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url)
            .customize()
            .request_strategy(fresh_key("portal")?)
            .send(&self.client)
            .await
            .map_err(|e| Error::stripe("create billing portal session", e))?;
        Ok(HostedSession {
            id: session.id.as_str().to_owned(),
            url: session.url,
        })
    }

    /// Cancels a subscription now or at the end of its period.
    pub(crate) async fn cancel(
        &self,
        subscription: &str,
        mode: CancelMode,
    ) -> Result<Subscription> {
        let key = fresh_key("cancel")?;
        match mode {
            CancelMode::Now => CancelSubscription::new(subscription)
                .customize()
                .request_strategy(key)
                .send(&self.client)
                .await
                .map_err(|e| Error::stripe("cancel subscription", e)),
            CancelMode::AtPeriodEnd => UpdateSubscription::new(subscription)
                .cancel_at_period_end(true)
                .customize()
                .request_strategy(key)
                .send(&self.client)
                .await
                .map_err(|e| Error::stripe("cancel subscription at period end", e)),
        }
    }

    /// Moves the subscription's item `item` to `price` (or only changes its quantity),
    /// prorating as configured, and clears a pending cancellation.
    pub(crate) async fn update_item(
        &self,
        subscription: &str,
        item: &str,
        price: Option<&str>,
        quantity: Option<u64>,
    ) -> Result<Subscription> {
        self.send_update(subscription, item, price, quantity, fresh_key("update")?)
            .await
    }

    /// Sets the quantity of the subscription's item `item`, prorating as configured, under
    /// the idempotency key `key` (the caller derives it from what the change is).
    pub(crate) async fn update_quantity(
        &self,
        subscription: &str,
        item: &str,
        quantity: u64,
        key: &str,
    ) -> Result<Subscription> {
        self.send_update(subscription, item, None, Some(quantity), idempotent(key)?)
            .await
    }

    async fn send_update(
        &self,
        subscription: &str,
        item: &str,
        price: Option<&str>,
        quantity: Option<u64>,
        key: RequestStrategy,
    ) -> Result<Subscription> {
        let mut update = UpdateSubscriptionItems::new();
        update.id = Some(item.to_owned());
        update.price = price.map(str::to_owned);
        update.quantity = quantity;
        UpdateSubscription::new(subscription)
            .items(vec![update])
            .proration_behavior(self.proration.to_stripe())
            .cancel_at_period_end(false)
            .customize()
            .request_strategy(key)
            .send(&self.client)
            .await
            .map_err(|e| Error::stripe("update subscription", e))
    }
}

/// What a checkout session is for.
#[derive(Debug)]
pub(crate) struct CheckoutParams<'a> {
    pub(crate) user: Uuid,
    pub(crate) customer: Option<&'a str>,
    pub(crate) price: &'a str,
    pub(crate) quantity: u64,
    pub(crate) success_url: &'a str,
    pub(crate) cancel_url: &'a str,
}

fn user_metadata(user: Uuid) -> HashMap<String, String> {
    HashMap::from([(USER_ID_METADATA_KEY.to_owned(), user.to_string())])
}

fn idempotent(key: &str) -> Result<RequestStrategy> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| Error::Config(format!("idempotency key: {e}")))
}

/// A new key per call: a retry of this call (by async-stripe or a proxy) is deduplicated by
/// Stripe, while a later, deliberate call with the same arguments is not.
fn fresh_key(operation: &str) -> Result<RequestStrategy> {
    idempotent(&format!("appforge-{operation}-{}", Uuid::new_v4()))
}

impl StripeApiBuilder {
    /// Sends requests to `url` instead of `https://api.stripe.com/` (tests, proxies).
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The timeout of each request (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How plan and seat changes are prorated (default: create prorations).
    #[must_use]
    pub fn proration(mut self, proration: ProrationBehavior) -> Self {
        self.proration = proration;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an empty key or an invalid base URL.
    pub fn build(self) -> Result<StripeApi> {
        let key = self.secret_key.expose_secret();
        if key.is_empty() {
            return Err(Error::Config("the stripe secret key is empty".into()));
        }
        let mut builder = stripe::ClientBuilder::new(key).timeout(self.timeout);
        if let Some(url) = self.base_url {
            let url = if url.ends_with('/') {
                url
            } else {
                format!("{url}/")
            };
            builder = builder.url(url);
        }
        // The error of an invalid key names the setting, never the key.
        let client = builder.build().map_err(|_| {
            Error::Config("invalid stripe client settings (key or base url)".into())
        })?;
        Ok(StripeApi {
            client,
            proration: self.proration,
        })
    }
}
