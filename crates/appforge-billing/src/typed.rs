//! async-stripe's typed events and objects, for hosts that want more than the fields billing
//! reads (feature `stripe-api`).

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::event::{Envelope, RawEvent};

/// A verified event of any type, as [`WebhookVerifier::verify_event`](crate::WebhookVerifier::verify_event)
/// returns it: the envelope and the object as sent, and async-stripe's typed event when its
/// types can read the payload.
///
/// async-stripe's types are generated for one API version (`2026-09-30.endive`) and refuse an
/// object that lacks a field they require, as objects rendered with other versions do (a
/// `2025-08-27.basil` subscription has no `billing_schedules`): [`typed`](Self::typed) is then
/// `None` and [`typed_error`](Self::typed_error) says why, while the envelope and
/// [`object_json`](Self::object_json) are still there to read.
#[derive(Debug)]
pub struct VerifiedEvent {
    envelope: Envelope,
    object: Box<RawValue>,
    typed: Result<stripe_webhook::Event, String>,
}

impl VerifiedEvent {
    /// Reads the envelope of a verified `payload`, then tries async-stripe's parser
    /// (`typed_parse`).
    pub(crate) fn read(
        payload: &str,
        typed_parse: impl FnOnce() -> Result<stripe_webhook::Event, String>,
    ) -> Result<Self> {
        let raw: RawEvent<'_> = serde_json::from_str(payload)
            .map_err(|e| Error::Parse(format!("not a stripe event: {e}")))?;
        let envelope = Envelope {
            id: raw.id.into_owned(),
            event_type: raw.event_type.into_owned(),
            created: raw.created,
            api_version: raw.api_version.map(Cow::into_owned),
        };
        let object = raw.data.object.to_owned();
        Ok(Self {
            envelope,
            object,
            typed: typed_parse(),
        })
    }

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

    /// The event's object (`data.object`) as sent, JSON text.
    #[must_use]
    pub fn object_json(&self) -> &str {
        self.object.get()
    }

    /// async-stripe-webhook's typed event, when its types read the payload.
    #[must_use]
    pub fn typed(&self) -> Option<&stripe_webhook::Event> {
        self.typed.as_ref().ok()
    }

    /// Why async-stripe could not read the payload, when it could not.
    #[must_use]
    pub fn typed_error(&self) -> Option<&str> {
        self.typed.as_ref().err().map(String::as_str)
    }

    /// async-stripe-webhook's typed event, when its types read the payload.
    #[must_use]
    pub fn into_typed(self) -> Option<stripe_webhook::Event> {
        self.typed.ok()
    }
}

/// Reads the object of an event (`data.object`) into any of async-stripe's types, with
/// their own (miniserde) deserializer: for a host that needs fields the reduced types of a
/// [`BillingEvent`](crate::BillingEvent) do not carry. `payload` is the body of a delivery, verified first with
/// [`WebhookVerifier::verify`](crate::WebhookVerifier::verify) (this function checks no
/// signature).
///
/// ```
/// # fn main() -> appforge_billing::Result<()> {
/// let payload = include_str!(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/tests/fixtures/events/03-customer.subscription.updated-pro.json"
/// ));
/// // A field billing does not read.
/// let subscription: stripe_billing::Subscription = appforge_billing::stripe_object(payload)?;
/// assert_eq!(subscription.billing_cycle_anchor, 1_772_323_200);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Parse`] when the payload is not an event, or its object is not a `T`.
pub fn stripe_object<T: miniserde::Deserialize>(payload: &str) -> Result<T> {
    let raw: RawEvent<'_> = serde_json::from_str(payload)
        .map_err(|e| Error::Parse(format!("not a stripe event: {e}")))?;
    miniserde::json::from_str(raw.data.object.get()).map_err(|_| {
        Error::Parse(format!(
            "the {} object does not match async-stripe's {}",
            raw.event_type,
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("type")
        ))
    })
}
