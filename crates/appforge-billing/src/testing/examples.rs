//! What Stripe really sends: Stripe's own example objects (stripe/openapi's `fixtures3.json`,
//! the current API version) wrapped in events of the types billing handles and of some it
//! does not, and a subscription update rendered with API version `2025-08-27.basil`.

use serde_json::{Value, json};

use crate::BillingObject;

/// The customer of Stripe's example subscription, invoice and portal session.
pub const STRIPE_CUSTOMER: &str = "cus_QXg1o8vcGmoR32";
/// The price of Stripe's example subscription.
pub const STRIPE_PRICE: &str = "price_1PgafmB7WZ01zgkW6dKueIc5";
/// Stripe's example subscription.
pub const STRIPE_SUBSCRIPTION: &str = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";
/// Stripe's example invoice, and the subscription its `parent` names.
pub const STRIPE_INVOICE: &str = "in_1Pgc6tB7WZ01zgkWu9fdqL6I";
/// The subscription Stripe's example invoice's `parent` names.
pub const STRIPE_INVOICE_SUBSCRIPTION: &str = "subscription";
/// The id of the `2025-08-27.basil` subscription update (of the lifecycle's subscription and
/// user).
pub const BASIL_EVENT: &str = "evt_1SBiOdKfT7xYw2QeBasilUpd1";

/// What billing makes of an event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `checkout.session.completed`.
    Checkout,
    /// A subscription created, updated or deleted.
    Subscription,
    /// `customer.subscription.trial_will_end`.
    TrialWillEnd,
    /// `invoice.paid`.
    InvoicePaid,
    /// `invoice.payment_failed`.
    InvoiceFailed,
    /// A type billing does not handle.
    Unhandled,
}

impl Kind {
    /// The kind of a parsed object (`None` for an unparseable one).
    #[must_use]
    pub fn of(object: &BillingObject) -> Option<Self> {
        Some(match object {
            BillingObject::CheckoutSessionCompleted(_) => Self::Checkout,
            BillingObject::SubscriptionChanged(_) => Self::Subscription,
            BillingObject::TrialWillEnd(_) => Self::TrialWillEnd,
            BillingObject::InvoicePaid(_) => Self::InvoicePaid,
            BillingObject::InvoicePaymentFailed(_) => Self::InvoiceFailed,
            BillingObject::Unhandled => Self::Unhandled,
            _ => return None,
        })
    }
}

/// One event to deliver: its id, type, what billing makes of it, and the payload.
#[derive(Debug, Clone)]
pub struct Example {
    /// The event id.
    pub id: String,
    /// The event type.
    pub event_type: &'static str,
    /// What billing makes of it.
    pub kind: Kind,
    /// The payload.
    pub body: String,
}

fn objects() -> Value {
    serde_json::from_str(include_str!(
        "../../tests/fixtures/stripe-openapi/fixtures3-subset.json"
    ))
    .expect("valid JSON")
}

/// A `customer.subscription.updated` of the lifecycle's subscription, rendered with API
/// version `2025-08-27.basil`.
#[must_use]
pub fn basil_event() -> String {
    include_str!(
        "../../tests/fixtures/versions/2025-08-27.basil-customer.subscription.updated.json"
    )
    .to_owned()
}

/// Stripe's example objects in events, in the order a delivery would make sense (created
/// one minute apart from `first_created`), then Stripe's own example event (`plan.created`),
/// then the basil subscription update.
///
/// # Panics
///
/// Never: the fixtures are valid.
#[must_use]
pub fn example_events(first_created: i64) -> Vec<Example> {
    let objects = objects();
    let cases: [(&str, &'static str, Kind); 13] = [
        ("customer", "customer.created", Kind::Unhandled),
        ("price", "price.created", Kind::Unhandled),
        (
            "checkout.session",
            "checkout.session.completed",
            Kind::Checkout,
        ),
        (
            "subscription",
            "customer.subscription.created",
            Kind::Subscription,
        ),
        (
            "subscription",
            "customer.subscription.updated",
            Kind::Subscription,
        ),
        (
            "subscription",
            "customer.subscription.trial_will_end",
            Kind::TrialWillEnd,
        ),
        (
            "subscription",
            "customer.subscription.paused",
            Kind::Unhandled,
        ),
        ("invoice", "invoice.created", Kind::Unhandled),
        ("invoice", "invoice.paid", Kind::InvoicePaid),
        ("invoice", "invoice.payment_failed", Kind::InvoiceFailed),
        (
            "billing_portal.session",
            "billing_portal.session.created",
            Kind::Unhandled,
        ),
        ("customer", "customer.updated", Kind::Unhandled),
        (
            "subscription",
            "customer.subscription.deleted",
            Kind::Subscription,
        ),
    ];
    let mut events: Vec<Example> = (0_i64..)
        .zip(cases)
        .map(|(n, (object, event_type, kind))| {
            let id = format!("evt_1StripeExample{n:02}");
            // Stripe's own envelope shape (its example event's fields).
            let event = json!({
                "id": id,
                "object": "event",
                "api_version": null,
                "created": first_created + 60 * n,
                "data": { "object": objects[object] },
                "livemode": false,
                "pending_webhooks": 1,
                "request": { "id": null, "idempotency_key": null },
                "type": event_type,
            });
            Example {
                id,
                event_type,
                kind,
                body: event.to_string(),
            }
        })
        .collect();
    let stripe_event = &objects["event"];
    events.push(Example {
        id: stripe_event["id"].as_str().expect("an id").to_owned(),
        event_type: "plan.created",
        kind: Kind::Unhandled,
        body: stripe_event.to_string(),
    });
    events.push(Example {
        id: BASIL_EVENT.to_owned(),
        event_type: "customer.subscription.updated",
        kind: Kind::Subscription,
        body: basil_event(),
    });
    events
}
