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

/// A payload as text: borrowed when it is UTF-8 (checked with `str::from_utf8`, several
/// times faster than `String::from_utf8_lossy` on valid text), else with replacement
/// characters.
pub(crate) fn text(body: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(body) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    }
}

/// Parses a verified payload. The envelope is read with serde_json (the object kept as raw
/// text) and the object of a handled type straight into async-stripe's type with its
/// miniserde deserializer: async-stripe-webhook's own parser goes through a dynamic JSON
/// value first, which costs about three times as much on a 6 KB subscription event.
/// `timestamp` (the signed one) dates a payload whose envelope cannot be read.
///
/// A payload of a handled type is first read in one pass (see [`one_pass`]); only when that
/// does not read it completely is it read as above.
pub(crate) fn parse(payload: &str, timestamp: i64) -> BillingEvent {
    one_pass(payload).unwrap_or_else(|| two_passes(payload, timestamp))
}

/// The envelope with serde_json, then the object of a handled type with miniserde.
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

/// Reads an event of a handled type in one miniserde pass: the envelope and the object
/// together, instead of serde_json scanning the whole object once to find the envelope's
/// `type` (which Stripe writes after `data`) and miniserde reading it again.
///
/// The object's type is guessed from the last `"type"` key of the payload, and the guess is
/// kept only if the envelope read says the same type. `None` (read as before) unless the
/// payload is an object with `id`, `type`, `created` and `data.object` each once, of the
/// types serde_json requires, and its object reads as the guessed type.
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

fn one_pass_as<T: miniserde::Deserialize>(
    payload: &str,
    guess: &str,
    wrap: fn(Box<T>) -> BillingObject,
) -> Option<BillingEvent> {
    let read = miniserde::json::from_str::<OnePass<T>>(payload).ok()?;
    let (Some(id), Some(event_type), Some(created), Some(object)) =
        (read.id, read.event_type, read.created, read.data.object)
    else {
        return None;
    };
    if event_type != guess {
        return None;
    }
    Some(BillingEvent {
        envelope: Envelope {
            id,
            event_type,
            created,
            api_version: read.api_version.flatten(),
        },
        object: wrap(Box::new(object)),
    })
}

/// An event read in one miniserde pass: the envelope fields [`RawEvent`] reads, and the
/// object as `T`. A repeated envelope field fails the read (serde_json refuses those too);
/// other keys are skipped.
struct OnePass<T> {
    id: Option<String>,
    event_type: Option<String>,
    created: Option<i64>,
    api_version: Option<Option<String>>,
    data: OnePassData<T>,
}

struct OnePassData<T> {
    seen: bool,
    object: Option<T>,
}

impl<T: miniserde::Deserialize> miniserde::Deserialize for OnePass<T> {
    fn begin(out: &mut Option<Self>) -> &mut dyn miniserde::de::Visitor {
        out.insert(Self {
            id: None,
            event_type: None,
            created: None,
            api_version: None,
            data: OnePassData {
                seen: false,
                object: None,
            },
        })
    }
}

impl<T: miniserde::Deserialize> miniserde::de::Visitor for OnePass<T> {
    fn map(&mut self) -> miniserde::Result<Box<dyn miniserde::de::Map + '_>> {
        Ok(Box::new(OnePassKeys(self)))
    }
}

struct OnePassKeys<'a, T>(&'a mut OnePass<T>);

impl<T: miniserde::Deserialize> miniserde::de::Map for OnePassKeys<'_, T> {
    fn key(&mut self, k: &str) -> miniserde::Result<&mut dyn miniserde::de::Visitor> {
        use miniserde::Deserialize;
        let event = &mut *self.0;
        let once = |seen: bool| if seen { Err(miniserde::Error) } else { Ok(()) };
        Ok(match k {
            "id" => {
                once(event.id.is_some())?;
                String::begin(&mut event.id)
            }
            "type" => {
                once(event.event_type.is_some())?;
                String::begin(&mut event.event_type)
            }
            "created" => {
                once(event.created.is_some())?;
                i64::begin(&mut event.created)
            }
            "api_version" => {
                once(event.api_version.is_some())?;
                Option::<String>::begin(&mut event.api_version)
            }
            "data" => {
                once(event.data.seen)?;
                event.data.seen = true;
                &mut event.data
            }
            _ => <dyn miniserde::de::Visitor>::ignore(),
        })
    }

    fn finish(&mut self) -> miniserde::Result<()> {
        Ok(())
    }
}

impl<T: miniserde::Deserialize> miniserde::de::Visitor for OnePassData<T> {
    fn map(&mut self) -> miniserde::Result<Box<dyn miniserde::de::Map + '_>> {
        Ok(Box::new(OnePassDataKeys(self)))
    }
}

struct OnePassDataKeys<'a, T>(&'a mut OnePassData<T>);

impl<T: miniserde::Deserialize> miniserde::de::Map for OnePassDataKeys<'_, T> {
    fn key(&mut self, k: &str) -> miniserde::Result<&mut dyn miniserde::de::Visitor> {
        if k != "object" {
            return Ok(<dyn miniserde::de::Visitor>::ignore());
        }
        if self.0.object.is_some() {
            return Err(miniserde::Error);
        }
        Ok(T::begin(&mut self.0.object))
    }

    fn finish(&mut self) -> miniserde::Result<()> {
        Ok(())
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

    /// Every fixture, and a few payloads the one pass must leave to serde_json.
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
            read_in_one >= 10,
            "the handled fixtures are read in one pass"
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
