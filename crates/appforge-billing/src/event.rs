//! Parsing a verified payload into the events this crate handles.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
#[cfg(feature = "store")]
use {
    crate::model::InvoiceRecord,
    chrono::{DateTime, Utc},
    uuid::Uuid,
};

use crate::object::{BillingCheckoutSession, BillingInvoice, BillingSubscription};

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

/// A verified event, its object read into this crate's reduced types when billing handles
/// its type. Returned by [`WebhookVerifier::verify_billing_event`](crate::WebhookVerifier::verify_billing_event).
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

/// The object of a [`BillingEvent`]: the fields billing reads, without async-stripe's full
/// types (read those with `stripe_object`, feature `stripe-api`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BillingObject {
    /// `checkout.session.completed`.
    CheckoutSessionCompleted(BillingCheckoutSession),
    /// `customer.subscription.created`, `.updated` or `.deleted`.
    SubscriptionChanged(BillingSubscription),
    /// `customer.subscription.trial_will_end`.
    TrialWillEnd(BillingSubscription),
    /// `invoice.paid`.
    InvoicePaid(BillingInvoice),
    /// `invoice.payment_failed`.
    InvoicePaymentFailed(BillingInvoice),
    /// A type billing does not handle; its object is not parsed.
    Unhandled,
    /// The object (or the whole payload) could not be read; why.
    Unparseable(String),
}

/// The envelope, with the object kept as raw text.
pub(crate) type RawEvent<'a> = Event<'a, &'a RawValue>;

/// A payload as text: borrowed when it is UTF-8 (checked with `str::from_utf8`, several
/// times faster than `String::from_utf8_lossy` on valid text), else with replacement
/// characters.
pub(crate) fn text(body: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(body) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    }
}

/// Parses a verified payload with serde_json: the envelope, and the object of a handled type
/// into this crate's reduced type ([`BillingSubscription`], [`BillingInvoice`] or
/// [`BillingCheckoutSession`]), whose unknown fields are skipped. Reading async-stripe's full
/// types instead costs about twice as much on a 6 KB subscription event (they have every
/// field); [`stripe_object`] reads them when a host wants one. `timestamp` (the signed one)
/// dates a payload whose envelope cannot be read.
///
/// A payload of a handled type is first read in one pass (see [`one_pass`]); only when that
/// does not read it completely is it read in two (see [`two_passes`]).
pub(crate) fn parse(payload: &str, timestamp: i64) -> BillingEvent {
    one_pass(payload).unwrap_or_else(|| two_passes(payload, timestamp))
}

/// The envelope (the object kept as raw text), then the object of a handled type.
fn two_passes(payload: &str, timestamp: i64) -> BillingEvent {
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
        "checkout.session.completed" => typed(
            object,
            event_type,
            "checkout session",
            BillingObject::CheckoutSessionCompleted,
        ),
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => typed(
            object,
            event_type,
            "subscription",
            BillingObject::SubscriptionChanged,
        ),
        "customer.subscription.trial_will_end" => typed(
            object,
            event_type,
            "subscription",
            BillingObject::TrialWillEnd,
        ),
        "invoice.paid" => typed(object, event_type, "invoice", BillingObject::InvoicePaid),
        "invoice.payment_failed" => typed(
            object,
            event_type,
            "invoice",
            BillingObject::InvoicePaymentFailed,
        ),
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

/// Reads an event of a handled type in one serde_json pass: the envelope and the object
/// together, instead of scanning the whole object once to find the envelope's `type` (which
/// Stripe writes after `data`) and reading it again.
///
/// The object's type is guessed from the last `"type"` key of the payload, and the guess is
/// kept only if the envelope read says the same type. `None` (read in two passes) unless the
/// payload is an object with `id`, `type`, `created` and `data.object` each once, of the
/// types [`RawEvent`] requires, and its object reads as the guessed type.
fn one_pass(payload: &str) -> Option<BillingEvent> {
    let guess = type_near_end(payload)?;
    match guess {
        "checkout.session.completed" => {
            one_pass_as(payload, guess, BillingObject::CheckoutSessionCompleted)
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            one_pass_as(payload, guess, BillingObject::SubscriptionChanged)
        }
        "customer.subscription.trial_will_end" => {
            one_pass_as(payload, guess, BillingObject::TrialWillEnd)
        }
        "invoice.paid" => one_pass_as(payload, guess, BillingObject::InvoicePaid),
        "invoice.payment_failed" => {
            one_pass_as(payload, guess, BillingObject::InvoicePaymentFailed)
        }
        _ => None,
    }
}

/// The string value of the last `"type"` key in `payload`, when it has no escapes: a guess
/// at the event type, which Stripe writes last.
fn type_near_end(payload: &str) -> Option<&str> {
    let at = payload.rfind("\"type\"")?;
    let rest = payload[at + 6..].trim_start().strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    rest[end..].starts_with('"').then(|| &rest[..end])
}

fn one_pass_as<T: DeserializeOwned>(
    payload: &str,
    guess: &str,
    wrap: fn(T) -> BillingObject,
) -> Option<BillingEvent> {
    let read = serde_json::from_str::<Event<'_, T>>(payload).ok()?;
    if read.event_type != guess {
        return None;
    }
    Some(BillingEvent {
        envelope: Envelope {
            id: read.id.into_owned(),
            event_type: read.event_type.into_owned(),
            created: read.created,
            api_version: read.api_version.map(Cow::into_owned),
        },
        object: wrap(read.data.object),
    })
}

/// An event: the envelope fields, and the object as `T` (raw text for [`RawEvent`], a
/// handled type in one pass). serde's derive refuses a repeated field; other keys are
/// skipped.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct Event<'a, T> {
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    pub(crate) event_type: Cow<'a, str>,
    pub(crate) created: i64,
    #[serde(default, borrow)]
    pub(crate) api_version: Option<Cow<'a, str>>,
    pub(crate) data: EventData<T>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct EventData<T> {
    pub(crate) object: T,
}

fn typed<T: DeserializeOwned>(
    json: &str,
    event_type: &str,
    what: &str,
    wrap: fn(T) -> BillingObject,
) -> BillingObject {
    match serde_json::from_str::<T>(json) {
        Ok(object) => wrap(object),
        Err(e) => BillingObject::Unparseable(format!(
            "the {event_type} object is not a {what} billing can read: {e}"
        )),
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Unix seconds to a UTC time; out-of-range values are treated as absent.
#[cfg(feature = "store")]
pub(crate) fn from_unix(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// The user id in a metadata map, if it is a UUID.
#[cfg(feature = "store")]
pub(crate) fn user_in_metadata<'a>(
    metadata: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Option<Uuid> {
    metadata
        .into_iter()
        .find(|(k, _)| k.as_str() == USER_ID_METADATA_KEY)
        .and_then(|(_, v)| v.parse().ok())
}

/// The invoice as stored, when it has an id and a customer.
#[cfg(feature = "store")]
pub(crate) fn invoice_record(invoice: &BillingInvoice, version: i64) -> Option<InvoiceRecord> {
    Some(InvoiceRecord {
        stripe_invoice_id: invoice.id.clone()?,
        stripe_customer_id: invoice.customer.clone()?,
        stripe_subscription_id: invoice.subscription.clone(),
        status: invoice.status.clone().unwrap_or_else(|| "draft".to_owned()),
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        currency: invoice.currency.clone(),
        hosted_invoice_url: invoice.hosted_invoice_url.clone(),
        version,
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
    #[cfg(feature = "store")]
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

    /// Every fixture, and a few payloads the one pass must leave to the two passes.
    fn payloads() -> Vec<String> {
        let dir = format!("{}/tests/fixtures/events", env!("CARGO_MANIFEST_DIR"));
        let mut payloads: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect();
        payloads.sort();
        let sub = fixture("03-customer.subscription.updated-pro");
        let object_at = sub.find("\"object\": {").unwrap();
        payloads.extend([
            // A repeated envelope field: serde_json refuses the envelope.
            sub.replacen("{", "{\"id\": \"evt_first\",", 1),
            sub.replacen("{", "{\"type\": \"invoice.paid\",", 1),
            sub.replacen("{", "{\"created\": 1,", 1),
            // The last `type` key is not the event's.
            sub.replacen(
                "\"type\": \"customer.subscription.updated\"",
                "\"type\": \"customer.subscription.deleted\", \"x\": {\"type\": \"invoice.paid\"}",
                1,
            ),
            // Envelope fields of the wrong type.
            sub.replacen("\"created\": ", "\"created\": 1.5, \"was\": ", 1),
            sub.replacen(
                "\"api_version\": \"2026-09-30.endive\"",
                "\"api_version\": null",
                1,
            ),
            sub.replacen("\"api_version\": \"2026-09-30.endive\",", "", 1),
            // An object that is not a subscription, and a data without one.
            format!(
                "{}\"object\": {{\"id\": 5}}, \"was\": {}",
                &sub[..object_at],
                &sub[object_at + 10..]
            ),
            sub.replacen("\"object\": {", "\"thing\": {", 1),
            // Not JSON after the envelope, and an escaped type.
            format!("{sub},"),
            sub.replacen(
                "customer.subscription.updated",
                "customer.subscription.update\\u0064",
                1,
            ),
        ]);
        // Stripe's own example objects in events of the handled types, and a basil-era event.
        let dir = env!("CARGO_MANIFEST_DIR");
        let objects: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{dir}/tests/fixtures/stripe-openapi/fixtures3-subset.json"
            ))
            .unwrap(),
        )
        .unwrap();
        for (object, event_type) in [
            ("checkout.session", "checkout.session.completed"),
            ("subscription", "customer.subscription.updated"),
            ("subscription", "customer.subscription.trial_will_end"),
            ("invoice", "invoice.paid"),
            ("invoice", "invoice.payment_failed"),
            ("customer", "customer.created"),
        ] {
            payloads.push(
                serde_json::json!({
                    "id": "evt_1", "object": "event", "created": 1, "api_version": null,
                    "data": { "object": objects[object] }, "type": event_type,
                })
                .to_string(),
            );
        }
        payloads.push(objects["event"].to_string());
        payloads.push(
            std::fs::read_to_string(format!(
                "{dir}/tests/fixtures/versions/2025-08-27.basil-customer.subscription.updated.json"
            ))
            .unwrap(),
        );
        payloads
    }

    #[test]
    fn one_pass_reads_exactly_what_two_passes_read() {
        let mut read_in_one = 0;
        for payload in payloads() {
            let two = format!("{:?}", two_passes(&payload, 7));
            if let Some(one) = one_pass(&payload) {
                read_in_one += 1;
                assert_eq!(format!("{one:?}"), two, "{payload}");
            }
            assert_eq!(format!("{:?}", parse(&payload, 7)), two, "{payload}");
        }
        assert!(
            read_in_one >= 16,
            "the handled fixtures, Stripe's examples and the basil event are read in one pass"
        );
    }

    #[test]
    fn repeated_envelope_fields_are_not_read_in_one_pass() {
        let sub = fixture("03-customer.subscription.updated-pro");
        let repeated = sub.replacen("{", "{\"id\": \"evt_first\",", 1);
        assert!(one_pass(&repeated).is_none());
        assert!(matches!(
            parse(&repeated, 3).object,
            BillingObject::Unparseable(_)
        ));
        assert!(one_pass(&sub).is_some());
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
