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
