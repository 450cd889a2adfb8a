//! Parsing a verified payload into the events this crate handles.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use stripe_billing::{Invoice, Subscription};
use stripe_checkout::CheckoutSession;
use uuid::Uuid;

use crate::model::InvoiceRecord;

/// The metadata key under which this crate stores the user id on Stripe objects.
pub const USER_ID_METADATA_KEY: &str = "appforge_user_id";

/// The envelope fields every event has, read even when the object cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) id: String,
    pub(crate) event_type: String,
    pub(crate) created: i64,
    pub(crate) api_version: Option<String>,
}

/// A verified event, its object parsed into async-stripe's types when billing handles its
/// type. Returned by [`WebhookVerifier::verify_billing_event`](crate::WebhookVerifier::verify_billing_event).
#[derive(Debug)]
pub struct BillingEvent {
    pub(crate) envelope: Envelope,
    /// The event's object.
    pub object: BillingObject,
}

impl BillingEvent {
    /// The event id (`evt_...`).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// The event type (`customer.subscription.updated`, ...).
    #[must_use]
    pub fn event_type(&self) -> &str {
        &self.envelope.event_type
    }

    /// When Stripe created the event (Unix seconds).
    #[must_use]
    pub fn created(&self) -> i64 {
        self.envelope.created
    }

    /// The API version the event was rendered with.
    #[must_use]
    pub fn api_version(&self) -> Option<&str> {
        self.envelope.api_version.as_deref()
    }
}

/// The object of a [`BillingEvent`].
#[derive(Debug)]
#[non_exhaustive]
pub enum BillingObject {
    /// `checkout.session.completed`.
    CheckoutSessionCompleted(Box<CheckoutSession>),
    /// `customer.subscription.created`, `.updated` or `.deleted`.
    SubscriptionChanged(Box<Subscription>),
    /// `customer.subscription.trial_will_end`.
    TrialWillEnd(Box<Subscription>),
    /// `invoice.paid`.
    InvoicePaid(Box<Invoice>),
    /// `invoice.payment_failed`.
    InvoicePaymentFailed(Box<Invoice>),
    /// A type billing does not handle; its object is not parsed.
    Unhandled,
    /// The object (or the whole payload) could not be read; why.
    Unparseable(String),
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    event_type: Cow<'a, str>,
    created: i64,
    #[serde(default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: RawData<'a>,
}

#[derive(Deserialize)]
struct RawData<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
}

/// Parses a verified payload. The envelope is read with serde_json (the object kept as raw
/// text) and the object of a handled type straight into async-stripe's type with its
/// miniserde deserializer: async-stripe-webhook's own parser goes through a dynamic JSON
/// value first, which costs about three times as much on a 6 KB subscription event.
/// `timestamp` (the signed one) dates a payload whose envelope cannot be read.
pub(crate) fn parse(payload: &str, timestamp: i64) -> BillingEvent {
    let raw: RawEvent<'_> = match serde_json::from_str(payload) {
        Ok(raw) => raw,
        Err(e) => {
            return BillingEvent {
                envelope: Envelope {
                    id: format!("unparsed_{}", hex::encode(sha256(payload.as_bytes()))),
                    event_type: "unknown".to_owned(),
                    created: timestamp,
                    api_version: None,
                },
                object: BillingObject::Unparseable(format!("not a stripe event: {e}")),
            };
        }
    };
    let object = raw.data.object.get();
    let event_type = raw.event_type.as_ref();
    let object = match event_type {
        "checkout.session.completed" => {
            typed(object, event_type, BillingObject::CheckoutSessionCompleted)
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            typed(object, event_type, BillingObject::SubscriptionChanged)
        }
        "customer.subscription.trial_will_end" => {
            typed(object, event_type, BillingObject::TrialWillEnd)
        }
        "invoice.paid" => typed(object, event_type, BillingObject::InvoicePaid),
        "invoice.payment_failed" => typed(object, event_type, BillingObject::InvoicePaymentFailed),
        _ => BillingObject::Unhandled,
    };
    BillingEvent {
        envelope: Envelope {
            id: raw.id.into_owned(),
            event_type: raw.event_type.into_owned(),
            created: raw.created,
            api_version: raw.api_version.map(Cow::into_owned),
        },
        object,
    }
}

fn typed<T: miniserde::Deserialize>(
    json: &str,
    event_type: &str,
    wrap: fn(Box<T>) -> BillingObject,
) -> BillingObject {
    match miniserde::json::from_str::<T>(json) {
        Ok(object) => wrap(Box::new(object)),
        Err(_) => BillingObject::Unparseable(format!(
            "the {event_type} object does not match async-stripe's {}",
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("type")
        )),
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Unix seconds to a UTC time; out-of-range values are treated as absent.
pub(crate) fn from_unix(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// The user id in a metadata map, if it is a UUID.
pub(crate) fn user_in_metadata<'a>(
    metadata: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Option<Uuid> {
    metadata
        .into_iter()
        .find(|(k, _)| k.as_str() == USER_ID_METADATA_KEY)
        .and_then(|(_, v)| v.parse().ok())
}

/// The customer and subscription of an invoice (the subscription moved under
/// `parent.subscription_details` in recent API versions).
pub(crate) fn invoice_record(invoice: &Invoice, version: i64) -> Option<InvoiceRecord> {
    let id = invoice.id.as_ref()?.as_str().to_owned();
    let customer = invoice.customer.as_ref()?.id().as_str().to_owned();
    Some(InvoiceRecord {
        stripe_invoice_id: id,
        stripe_customer_id: customer,
        stripe_subscription_id: invoice_subscription(invoice),
        status: invoice
            .status
            .as_ref()
            .map_or_else(|| "draft".to_owned(), |s| s.as_str().to_owned()),
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        currency: invoice.currency.to_string(),
        hosted_invoice_url: invoice.hosted_invoice_url.clone(),
        version,
    })
}

fn invoice_subscription(invoice: &Invoice) -> Option<String> {
    invoice
        .parent
        .as_ref()
        .and_then(|p| p.subscription_details.as_ref())
        .map(|d| d.subscription.id().as_str().to_owned())
        .or_else(|| {
            invoice
                .subscription
                .as_ref()
                .map(|s| s.id().as_str().to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/events/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    fn parse_fixture(name: &str) -> BillingEvent {
        parse(&fixture(name), 1)
    }

    #[test]
    fn every_handled_fixture_parses_into_its_kind() {
        type IsKind = fn(&BillingObject) -> bool;
        let cases: [(&str, IsKind); 10] = [
            ("01-checkout.session.completed", |k| {
                matches!(k, BillingObject::CheckoutSessionCompleted(_))
            }),
            ("02-customer.subscription.created", |k| {
                matches!(k, BillingObject::SubscriptionChanged(_))
            }),
            ("03-customer.subscription.updated-pro", |k| {
                matches!(k, BillingObject::SubscriptionChanged(_))
            }),
            ("04-invoice.paid", |k| {
                matches!(k, BillingObject::InvoicePaid(_))
            }),
            ("05-invoice.payment_failed", |k| {
                matches!(k, BillingObject::InvoicePaymentFailed(_))
            }),
            ("06-invoice.paid-retry", |k| {
                matches!(k, BillingObject::InvoicePaid(_))
            }),
            ("07-customer.subscription.updated-team", |k| {
                matches!(k, BillingObject::SubscriptionChanged(_))
            }),
            (
                "08-customer.subscription.updated-cancel-at-period-end",
                |k| matches!(k, BillingObject::SubscriptionChanged(_)),
            ),
            ("09-customer.subscription.deleted", |k| {
                matches!(k, BillingObject::SubscriptionChanged(_))
            }),
            ("customer.subscription.trial_will_end", |k| {
                matches!(k, BillingObject::TrialWillEnd(_))
            }),
        ];
        for (name, is_kind) in cases {
            let event = parse_fixture(name);
            assert!(is_kind(&event.object), "{name}: {:?}", event.object);
            assert_eq!(
                event.envelope.api_version.as_deref(),
                Some("2026-09-30.endive")
            );
        }
    }

    #[test]
    fn the_invoice_subscription_is_read_from_its_parent() {
        let BillingObject::InvoicePaymentFailed(invoice) =
            parse_fixture("05-invoice.payment_failed").object
        else {
            panic!("not an invoice");
        };
        let record = invoice_record(&invoice, 7).unwrap();
        assert_eq!(
            record.stripe_subscription_id.as_deref(),
            Some("sub_1RqA8mKfT7xYw2Qe3LzN5bVd")
        );
        assert_eq!((record.status.as_str(), record.amount_due), ("open", 1000));
        assert_eq!(record.currency, "usd");
    }

    #[test]
    fn unknown_and_broken_events_keep_their_envelope() {
        let unknown = parse_fixture("unknown-type");
        assert!(matches!(unknown.object, BillingObject::Unhandled));
        assert_eq!(unknown.envelope.event_type, "future_thing.created");
        let broken = parse_fixture("unparseable-subscription");
        assert!(matches!(broken.object, BillingObject::Unparseable(_)));
        assert_eq!(broken.envelope.id, "evt_1RqA9aKfT7xYw2QeBrokenObj");
        assert_eq!(broken.envelope.created, 1_772_323_204);
        let garbage = parse("not json", 42);
        assert!(matches!(garbage.object, BillingObject::Unparseable(_)));
        assert!(garbage.envelope.id.starts_with("unparsed_"));
        assert_eq!(garbage.envelope.created, 42);
    }

    #[test]
    fn escaped_strings_in_the_envelope_are_read() {
        let event = parse(
            r#"{"id":"evt_\u0031","type":"x.y","created":5,"data":{"object":{}}}"#,
            0,
        );
        assert_eq!(event.envelope.id, "evt_1");
        assert!(matches!(event.object, BillingObject::Unhandled));
    }
}
