//! The Stripe objects billing handles, reduced to the fields its handlers read.
//!
//! Each type deserializes with serde from the object's JSON (unknown fields are skipped; an
//! id that Stripe may expand is read from a string or from the expanded object's `id`), and
//! converts from async-stripe's full type (feature `stripe-api`), so that an object from an event and one fetched
//! from Stripe's API reach the handlers the same way.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A subscription: the fields billing keeps (see `SubscriptionRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BillingSubscription {
    /// The subscription id (`sub_...`).
    pub id: String,
    /// The customer id (`cus_...`), also when Stripe sent the expanded customer.
    #[serde(deserialize_with = "id_or_object")]
    pub customer: String,
    /// Stripe's status: `active`, `trialing`, `past_due`, `canceled`, ...
    pub status: String,
    /// Whether the subscription ends at the end of the current period.
    pub cancel_at_period_end: bool,
    /// When the trial ends (Unix seconds), if there is a trial.
    pub trial_end: Option<i64>,
    /// The subscription's metadata (empty when absent or null).
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: HashMap<String, String>,
    /// The subscription's items (`items.data`), in Stripe's order.
    #[serde(deserialize_with = "list_data")]
    pub items: Vec<BillingSubscriptionItem>,
}

/// An item of a [`BillingSubscription`]: its price, quantity and billing period (the period
/// lives on the items since API version `2025-03-31.basil`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BillingSubscriptionItem {
    /// The price id (`price_...`), read from the item's `price`.
    #[serde(rename = "price", deserialize_with = "id_or_object")]
    pub price_id: String,
    /// The quantity (seats), absent for metered prices.
    pub quantity: Option<u64>,
    /// Start of the item's current billing period (Unix seconds).
    pub current_period_start: i64,
    /// End of the item's current billing period (Unix seconds).
    pub current_period_end: i64,
}

/// An invoice: the fields of an `InvoiceRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawInvoice")]
#[non_exhaustive]
pub struct BillingInvoice {
    /// The invoice id (`in_...`); Stripe omits it on previews.
    pub id: Option<String>,
    /// The customer id, also when Stripe sent the expanded customer.
    pub customer: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: Option<String>,
    /// Amount due, in the currency's smallest unit.
    pub amount_due: i64,
    /// Amount paid, in the currency's smallest unit.
    pub amount_paid: i64,
    /// Three-letter ISO currency code, as Stripe wrote it (lowercase).
    pub currency: String,
    /// The hosted invoice page.
    pub hosted_invoice_url: Option<String>,
    /// The subscription the invoice bills: `parent.subscription_details.subscription`, or the
    /// top-level `subscription` of API versions before `2025-03-31.basil`.
    pub subscription: Option<String>,
}

/// A checkout session: who it was for and what it created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BillingCheckoutSession {
    /// The reference the session was created with (this crate puts the user id there).
    pub client_reference_id: Option<String>,
    /// The session's metadata (empty when absent or null).
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: HashMap<String, String>,
    /// The customer id, also when Stripe sent the expanded customer.
    #[serde(default, deserialize_with = "optional_id_or_object")]
    pub customer: Option<String>,
    /// The subscription id, also when Stripe sent the expanded subscription.
    #[serde(default, deserialize_with = "optional_id_or_object")]
    pub subscription: Option<String>,
}

/// The invoice as its JSON has it; [`BillingInvoice`] picks the subscription.
#[derive(Deserialize)]
struct RawInvoice {
    id: Option<String>,
    #[serde(default, deserialize_with = "optional_id_or_object")]
    customer: Option<String>,
    status: Option<String>,
    amount_due: i64,
    amount_paid: i64,
    currency: String,
    hosted_invoice_url: Option<String>,
    parent: Option<InvoiceParent>,
    #[serde(default, deserialize_with = "optional_id_or_object")]
    subscription: Option<String>,
}

#[derive(Deserialize)]
struct InvoiceParent {
    subscription_details: Option<InvoiceSubscriptionDetails>,
}

#[derive(Deserialize)]
struct InvoiceSubscriptionDetails {
    #[serde(deserialize_with = "id_or_object")]
    subscription: String,
}

impl From<RawInvoice> for BillingInvoice {
    fn from(raw: RawInvoice) -> Self {
        let subscription = raw
            .parent
            .and_then(|p| p.subscription_details)
            .map(|d| d.subscription)
            .or(raw.subscription);
        Self {
            id: raw.id,
            customer: raw.customer,
            status: raw.status,
            amount_due: raw.amount_due,
            amount_paid: raw.amount_paid,
            currency: raw.currency,
            hosted_invoice_url: raw.hosted_invoice_url,
            subscription,
        }
    }
}

#[cfg(feature = "stripe-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
impl From<&stripe_billing::Subscription> for BillingSubscription {
    fn from(s: &stripe_billing::Subscription) -> Self {
        Self {
            id: s.id.as_str().to_owned(),
            customer: s.customer.id().as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            cancel_at_period_end: s.cancel_at_period_end,
            trial_end: s.trial_end,
            metadata: s.metadata.clone(),
            items: s
                .items
                .data
                .iter()
                .map(|item| BillingSubscriptionItem {
                    price_id: item.price.id.as_str().to_owned(),
                    quantity: item.quantity,
                    current_period_start: item.current_period_start,
                    current_period_end: item.current_period_end,
                })
                .collect(),
        }
    }
}

#[cfg(feature = "stripe-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
impl From<&stripe_billing::Invoice> for BillingInvoice {
    fn from(i: &stripe_billing::Invoice) -> Self {
        let subscription = i
            .parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .map(|d| d.subscription.id().as_str().to_owned())
            .or_else(|| i.subscription.as_ref().map(|s| s.id().as_str().to_owned()));
        Self {
            id: i.id.as_ref().map(|id| id.as_str().to_owned()),
            customer: i.customer.as_ref().map(|c| c.id().as_str().to_owned()),
            status: i.status.as_ref().map(|s| s.as_str().to_owned()),
            amount_due: i.amount_due,
            amount_paid: i.amount_paid,
            currency: i.currency.to_string(),
            hosted_invoice_url: i.hosted_invoice_url.clone(),
            subscription,
        }
    }
}

#[cfg(feature = "stripe-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
impl From<&stripe_checkout::CheckoutSession> for BillingCheckoutSession {
    fn from(s: &stripe_checkout::CheckoutSession) -> Self {
        Self {
            client_reference_id: s.client_reference_id.clone(),
            metadata: s.metadata.clone().unwrap_or_default(),
            customer: s.customer.as_ref().map(|c| c.id().as_str().to_owned()),
            subscription: s.subscription.as_ref().map(|c| c.id().as_str().to_owned()),
        }
    }
}

/// An id Stripe may expand: the string itself, or the `id` of the expanded object.
struct IdOrObject(String);

impl<'de> Deserialize<'de> for IdOrObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IdOrObjectVisitor)
    }
}

struct IdOrObjectVisitor;

impl<'de> Visitor<'de> for IdOrObjectVisitor {
    type Value = IdOrObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id, or an object with an id")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<IdOrObject, E> {
        Ok(IdOrObject(id.to_owned()))
    }

    fn visit_string<E: de::Error>(self, id: String) -> Result<IdOrObject, E> {
        Ok(IdOrObject(id))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdOrObject, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<ObjectKey>()? {
            match key {
                ObjectKey::Id if id.is_some() => return Err(de::Error::duplicate_field("id")),
                ObjectKey::Id => id = Some(map.next_value::<String>()?),
                ObjectKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        id.map(IdOrObject)
            .ok_or_else(|| de::Error::missing_field("id"))
    }
}

/// A key of an expanded object: its `id`, or another.
enum ObjectKey {
    Id,
    Other,
}

impl<'de> Deserialize<'de> for ObjectKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ObjectKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<ObjectKey, E> {
                Ok(if key == "id" {
                    ObjectKey::Id
                } else {
                    ObjectKey::Other
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

fn id_or_object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    IdOrObject::deserialize(deserializer).map(|id| id.0)
}

fn optional_id_or_object<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Option::<IdOrObject>::deserialize(deserializer).map(|id| id.map(|id| id.0))
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// The `data` of a Stripe list (`{"object": "list", "data": [...], ...}`).
fn list_data<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(bound = "T: Deserialize<'de>")]
    struct List<T> {
        data: Vec<T>,
    }
    List::<T>::deserialize(deserializer).map(|list| list.data)
}

#[cfg(all(test, feature = "stripe-api"))]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::event::{BillingObject, parse};
    use crate::typed::stripe_object;

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{path}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// The object of a handled type read with async-stripe's full type and converted; `None`
    /// when async-stripe cannot read it.
    fn through_async_stripe(event_type: &str, payload: &str) -> Option<BillingObject> {
        let subscription = || stripe_object::<stripe_billing::Subscription>(payload).ok();
        let invoice = || stripe_object::<stripe_billing::Invoice>(payload).ok();
        Some(match event_type {
            "checkout.session.completed" => BillingObject::CheckoutSessionCompleted(
                (&stripe_object::<stripe_checkout::CheckoutSession>(payload).ok()?).into(),
            ),
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                BillingObject::SubscriptionChanged((&subscription()?).into())
            }
            "customer.subscription.trial_will_end" => {
                BillingObject::TrialWillEnd((&subscription()?).into())
            }
            "invoice.paid" => BillingObject::InvoicePaid((&invoice()?).into()),
            "invoice.payment_failed" => BillingObject::InvoicePaymentFailed((&invoice()?).into()),
            _ => BillingObject::Unhandled,
        })
    }

    /// Parses `payload` as billing does and checks that async-stripe's full parse, converted,
    /// gives the same object (or that neither reads it).
    fn read_both_ways(payload: &str) -> BillingObject {
        let event = parse(payload, 0);
        let full = through_async_stripe(event.event_type(), payload);
        match (&event.object, full) {
            (BillingObject::Unparseable(_), None) => {}
            (ours, Some(full)) => assert_eq!(ours, &full, "{payload}"),
            (ours, None) => panic!("async-stripe cannot read what billing read: {ours:?}"),
        }
        event.object
    }

    /// `payload` with the JSON at `pointer` replaced by `value`.
    fn with(payload: &str, pointer: &str, value: Value) -> String {
        let mut event: Value = serde_json::from_str(payload).unwrap();
        *event.pointer_mut(pointer).unwrap() = value;
        event.to_string()
    }

    fn json(path: &str) -> Value {
        serde_json::from_str(&fixture(path)).unwrap()
    }

    #[test]
    fn every_handled_fixture_reads_as_async_stripe_reads_it() {
        let dir = format!("{}/tests/fixtures/events", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let (mut handled, mut unparseable) = (0, 0);
        for path in names {
            let payload = std::fs::read_to_string(&path).unwrap();
            match read_both_ways(&payload) {
                BillingObject::Unhandled => {}
                BillingObject::Unparseable(_) => unparseable += 1,
                _ => handled += 1,
            }
        }
        // 01 to 09 and the trial's end; the subscription in the old shape (without items).
        assert_eq!((handled, unparseable), (10, 1));
    }

    #[test]
    fn a_subscription_event_reads_the_fields_billing_keeps() {
        let BillingObject::SubscriptionChanged(sub) =
            read_both_ways(&fixture("events/07-customer.subscription.updated-team"))
        else {
            panic!("not a subscription");
        };
        assert_eq!(sub.id, "sub_1RqA8mKfT7xYw2Qe3LzN5bVd");
        assert_eq!(sub.customer, "cus_Rq8kYp2Lw3XzNa");
        assert_eq!(sub.status, "active");
        assert_eq!(sub.items.len(), 1);
        assert!(sub.items[0].price_id.starts_with("price_"));
        assert!(sub.items[0].quantity.is_some_and(|q| q > 1), "{sub:?}");
        assert!(sub.items[0].current_period_end > sub.items[0].current_period_start);
        assert_eq!(
            sub.metadata
                .get(crate::USER_ID_METADATA_KEY)
                .map(String::as_str),
            Some("7d6f0b4e-3a52-4c1e-9f0a-2b8e5d1c9a41")
        );
    }

    #[test]
    fn subscriptions_from_the_api_read_as_async_stripe_reads_them() {
        for name in ["api/subscription-active-pro", "api/subscription-canceled"] {
            let text = fixture(name);
            let ours: BillingSubscription = serde_json::from_str(&text).unwrap();
            let full: stripe_billing::Subscription = miniserde::json::from_str(&text).unwrap();
            assert_eq!(ours, BillingSubscription::from(&full), "{name}");
        }
        let text = fixture("api/checkout-session");
        let ours: BillingCheckoutSession = serde_json::from_str(&text).unwrap();
        let full: stripe_checkout::CheckoutSession = miniserde::json::from_str(&text).unwrap();
        assert_eq!(ours, BillingCheckoutSession::from(&full));
    }

    #[test]
    fn expanded_customers_and_subscriptions_are_read_by_their_id() {
        let customer = json("api/customer");
        let subscription = json("api/subscription-active-pro");

        let sub = with(
            &fixture("events/03-customer.subscription.updated-pro"),
            "/data/object/customer",
            customer.clone(),
        );
        let BillingObject::SubscriptionChanged(sub) = read_both_ways(&sub) else {
            panic!("not a subscription");
        };
        assert_eq!(sub.customer, "cus_Rq8kYp2Lw3XzNa");

        let session = fixture("events/01-checkout.session.completed");
        let session = with(&session, "/data/object/customer", customer.clone());
        let session = with(&session, "/data/object/subscription", subscription.clone());
        let BillingObject::CheckoutSessionCompleted(session) = read_both_ways(&session) else {
            panic!("not a checkout session");
        };
        assert_eq!(session.customer.as_deref(), Some("cus_Rq8kYp2Lw3XzNa"));
        assert_eq!(
            session.subscription.as_deref(),
            Some("sub_1RqA8mKfT7xYw2Qe3LzN5bVd")
        );

        let invoice = fixture("events/04-invoice.paid");
        let invoice = with(&invoice, "/data/object/customer", customer);
        let invoice = with(
            &invoice,
            "/data/object/parent/subscription_details/subscription",
            subscription,
        );
        let BillingObject::InvoicePaid(invoice) = read_both_ways(&invoice) else {
            panic!("not an invoice");
        };
        assert_eq!(invoice.customer.as_deref(), Some("cus_Rq8kYp2Lw3XzNa"));
        assert_eq!(
            invoice.subscription.as_deref(),
            Some("sub_1RqA8mKfT7xYw2Qe3LzN5bVd")
        );
    }

    #[test]
    fn an_invoice_without_a_parent_names_its_top_level_subscription() {
        let object = json("events/04-invoice.paid")["data"]["object"].clone();
        let read = |parent: Value, subscription: Option<Value>| {
            let mut object = object.clone();
            object["parent"] = parent;
            if let Some(subscription) = subscription {
                object["subscription"] = subscription;
            }
            serde_json::from_value::<BillingInvoice>(object)
                .unwrap()
                .subscription
        };
        let legacy = || Some(Value::from("sub_legacy"));
        assert_eq!(read(Value::Null, legacy()).as_deref(), Some("sub_legacy"));
        assert_eq!(
            read(Value::Null, Some(serde_json::json!({"id": "sub_expanded"}))).as_deref(),
            Some("sub_expanded")
        );
        assert_eq!(read(Value::Null, Some(Value::Null)), None);
        assert_eq!(read(Value::Null, None), None);
        // The parent's subscription is the one, when there is a parent.
        let parent = object["parent"].clone();
        assert_eq!(
            read(parent, legacy()).as_deref(),
            Some("sub_1RqA8mKfT7xYw2Qe3LzN5bVd")
        );
    }

    #[test]
    fn nullable_fields_may_be_null() {
        let session = fixture("events/01-checkout.session.completed");
        let session = with(&session, "/data/object/metadata", Value::Null);
        let session = with(&session, "/data/object/customer", Value::Null);
        let BillingObject::CheckoutSessionCompleted(session) = read_both_ways(&session) else {
            panic!("not a checkout session");
        };
        assert!(session.metadata.is_empty());
        assert_eq!(session.customer, None);
        assert!(session.client_reference_id.is_some());

        let invoice = fixture("events/05-invoice.payment_failed");
        let invoice = with(&invoice, "/data/object/hosted_invoice_url", Value::Null);
        let invoice = with(&invoice, "/data/object/status", Value::Null);
        let BillingObject::InvoicePaymentFailed(invoice) = read_both_ways(&invoice) else {
            panic!("not an invoice");
        };
        assert_eq!((invoice.status, invoice.hosted_invoice_url), (None, None));
    }

    #[test]
    fn an_expanded_object_without_an_id_is_refused() {
        let sub = with(
            &fixture("events/03-customer.subscription.updated-pro"),
            "/data/object/customer",
            serde_json::json!({"object": "customer"}),
        );
        let BillingObject::Unparseable(reason) = read_both_ways(&sub) else {
            panic!("read without a customer id");
        };
        assert!(reason.contains("missing field `id`"), "{reason}");
    }

    #[test]
    fn stripe_object_reads_async_stripe_types() {
        let payload = fixture("events/04-invoice.paid");
        let invoice: stripe_billing::Invoice = stripe_object(&payload).unwrap();
        // Fields the reduced invoice does not carry.
        assert_eq!(invoice.lines.data.len(), 1);
        assert_eq!(
            invoice.billing_reason.as_ref().map(|r| r.as_str()),
            Some("subscription_create")
        );
        let Err(crate::Error::Parse(why)) = stripe_object::<stripe_billing::Subscription>(&payload)
        else {
            panic!("an invoice read as a subscription");
        };
        assert!(
            why.contains("invoice.paid") && why.contains("Subscription"),
            "{why}"
        );
        assert!(matches!(
            stripe_object::<stripe_billing::Invoice>("not json"),
            Err(crate::Error::Parse(_))
        ));
    }
}
