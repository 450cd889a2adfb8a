//! Parsing a verified payload into the events this crate handles.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use stripe_billing::{Invoice, Subscription};
use stripe_checkout::CheckoutSession;
use stripe_webhook::{EventObject, Webhook};
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

/// A verified event, parsed.
#[derive(Debug)]
pub(crate) struct ParsedEvent {
    pub(crate) envelope: Envelope,
    pub(crate) kind: EventKind,
}

/// What the crate does with an event.
#[derive(Debug)]
pub(crate) enum EventKind {
    CheckoutCompleted(Box<CheckoutSession>),
    SubscriptionChanged(Box<Subscription>),
    TrialWillEnd(Box<Subscription>),
    InvoicePaid(Box<Invoice>),
    InvoicePaymentFailed(Box<Invoice>),
    /// A type this crate does not handle.
    Unhandled,
    /// The envelope parsed but the object did not: stored and acknowledged.
    Unparseable(String),
}

#[derive(Deserialize)]
struct RawEnvelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default)]
    api_version: Option<String>,
}

/// Reads the envelope only: for events whose object does not parse.
pub(crate) fn parse_envelope(payload: &str) -> Option<Envelope> {
    let raw: RawEnvelope = serde_json::from_str(payload).ok()?;
    Some(Envelope {
        id: raw.id,
        event_type: raw.event_type,
        created: raw.created,
        api_version: raw.api_version,
    })
}

/// Parses a payload whose signature was already verified by this crate. `header`, `secret`
/// and `timestamp` are the ones that verified it: async-stripe's parser checks them again
/// (at that timestamp, so its fixed tolerance never applies).
pub(crate) fn parse(payload: &str, header: &str, secret: &str, timestamp: i64) -> ParsedEvent {
    match Webhook::construct_event_with_timestamp(payload, header, secret, timestamp) {
        Ok(event) => {
            let envelope = Envelope {
                id: event.id.as_str().to_owned(),
                event_type: event.type_.as_str().to_owned(),
                created: event.created,
                api_version: event.api_version.as_ref().map(|v| v.as_str().to_owned()),
            };
            let kind = match (envelope.event_type.as_str(), event.data.object) {
                ("checkout.session.completed", EventObject::CheckoutSessionCompleted(s)) => {
                    EventKind::CheckoutCompleted(s)
                }
                ("customer.subscription.created", EventObject::CustomerSubscriptionCreated(s))
                | ("customer.subscription.updated", EventObject::CustomerSubscriptionUpdated(s))
                | ("customer.subscription.deleted", EventObject::CustomerSubscriptionDeleted(s)) => {
                    EventKind::SubscriptionChanged(s)
                }
                (
                    "customer.subscription.trial_will_end",
                    EventObject::CustomerSubscriptionTrialWillEnd(s),
                ) => EventKind::TrialWillEnd(s),
                ("invoice.paid", EventObject::InvoicePaid(i)) => EventKind::InvoicePaid(i),
                ("invoice.payment_failed", EventObject::InvoicePaymentFailed(i)) => {
                    EventKind::InvoicePaymentFailed(i)
                }
                _ => EventKind::Unhandled,
            };
            ParsedEvent { envelope, kind }
        }
        Err(e) => match parse_envelope(payload) {
            Some(envelope) => ParsedEvent {
                envelope,
                kind: EventKind::Unparseable(e.to_string()),
            },
            None => ParsedEvent {
                envelope: Envelope {
                    id: format!("unparsed_{}", hex::encode(sha256(payload.as_bytes()))),
                    event_type: "unknown".to_owned(),
                    created: timestamp,
                    api_version: None,
                },
                kind: EventKind::Unparseable(e.to_string()),
            },
        },
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

    fn parse_fixture(name: &str) -> ParsedEvent {
        let body = fixture(name);
        let secret = "whsec_unit";
        let header = format!(
            "t=1,v1={}",
            hex::encode(hmac_for(secret, &format!("1.{body}")))
        );
        parse(&body, &header, secret, 1)
    }

    fn hmac_for(secret: &str, message: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn every_handled_fixture_parses_into_its_kind() {
        type IsKind = fn(&EventKind) -> bool;
        let cases: [(&str, IsKind); 10] = [
            ("01-checkout.session.completed", |k| {
                matches!(k, EventKind::CheckoutCompleted(_))
            }),
            ("02-customer.subscription.created", |k| {
                matches!(k, EventKind::SubscriptionChanged(_))
            }),
            ("03-customer.subscription.updated-pro", |k| {
                matches!(k, EventKind::SubscriptionChanged(_))
            }),
            ("04-invoice.paid", |k| {
                matches!(k, EventKind::InvoicePaid(_))
            }),
            ("05-invoice.payment_failed", |k| {
                matches!(k, EventKind::InvoicePaymentFailed(_))
            }),
            ("06-invoice.paid-retry", |k| {
                matches!(k, EventKind::InvoicePaid(_))
            }),
            ("07-customer.subscription.updated-team", |k| {
                matches!(k, EventKind::SubscriptionChanged(_))
            }),
            (
                "08-customer.subscription.updated-cancel-at-period-end",
                |k| matches!(k, EventKind::SubscriptionChanged(_)),
            ),
            ("09-customer.subscription.deleted", |k| {
                matches!(k, EventKind::SubscriptionChanged(_))
            }),
            ("customer.subscription.trial_will_end", |k| {
                matches!(k, EventKind::TrialWillEnd(_))
            }),
        ];
        for (name, is_kind) in cases {
            let event = parse_fixture(name);
            assert!(is_kind(&event.kind), "{name}: {:?}", event.kind);
            assert_eq!(
                event.envelope.api_version.as_deref(),
                Some("2026-09-30.endive")
            );
        }
    }

    #[test]
    fn the_invoice_subscription_is_read_from_its_parent() {
        let EventKind::InvoicePaymentFailed(invoice) =
            parse_fixture("05-invoice.payment_failed").kind
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
        assert!(matches!(unknown.kind, EventKind::Unhandled));
        assert_eq!(unknown.envelope.event_type, "future_thing.created");
        let broken = parse_fixture("unparseable-subscription");
        assert!(matches!(broken.kind, EventKind::Unparseable(_)));
        assert_eq!(broken.envelope.id, "evt_1RqA9aKfT7xYw2QeBrokenObj");
        assert_eq!(broken.envelope.created, 1_772_323_204);
    }
}
