//! Stripe subscriptions and webhooks that cannot be fooled or reordered.
//!
//! - [`WebhookVerifier`] checks `Stripe-Signature` on the raw body: HMAC-SHA256 in constant
//!   time, several secrets (rotation), a tolerance against an injected clock, a body limit.
//! - [`Billing`] handles each verified event exactly once (the `stripe_events` ledger),
//!   re-reads subscriptions from Stripe (or, offline, applies only newer copies), keeps
//!   `subscriptions` and `invoices`, maps prices to plans and sets the user's quota plan;
//!   a failed payment starts a grace period, then a downgrade.
//! - [`StripeApi`] creates customers, checkout and portal sessions, cancels and changes plans.
//!
//! Verified events of the handled types are parsed into this crate's reduced types, the
//! fields billing reads ([`WebhookVerifier::verify_billing_event`], [`BillingObject`]);
//! [`stripe_object`] reads an event's object into any of async-stripe's full types, and
//! [`WebhookVerifier::verify_event`] returns any event with async-stripe-webhook's typed
//! `Event` when async-stripe's types can read it ([`VerifiedEvent`]): an event rendered with
//! another API version than async-stripe's is never an error.
//!
//! Each handled event's plan changes are committed with its ledger row as pending work
//! ([`PendingPlanSync`]), confirmed once the quota is written; [`Billing::run_periodic_pass`]
//! (run it every minute or so in every process) completes the ones a crash or a timeout cut
//! short, and enforces ended grace periods.
//!
//! ```
//! use appforge_billing::{SignatureError, WebhookVerifier, sign_payload};
//! use appforge_core::{Clock, ManualClock, SecretString};
//! use std::time::Duration;
//!
//! let clock = ManualClock::at("2026-03-14T12:00:00Z".parse().unwrap());
//! let secret = SecretString::from("whsec_test_secret");
//! let verifier = WebhookVerifier::builder()
//!     .secret(secret.clone())
//!     .clock(clock.shared())
//!     .build()
//!     .unwrap();
//!
//! let body = br#"{"id":"evt_1","object":"event","type":"customer.created"}"#;
//! let header = sign_payload(&secret, clock.now().timestamp(), body);
//! assert!(verifier.verify(body, Some(&header)).is_ok());
//!
//! // A changed body, or a delivery replayed six minutes later, is refused.
//! assert_eq!(
//!     verifier.verify(b"{}", Some(&header)),
//!     Err(SignatureError::Mismatch)
//! );
//! clock.advance(Duration::from_secs(360));
//! assert!(matches!(
//!     verifier.verify(body, Some(&header)),
//!     Err(SignatureError::OutsideTolerance { .. })
//! ));
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | [`SqliteBillingStore`] |
//! | `postgres` | no | [`PgBillingStore`] |
//! | `axum` | no | [`webhook_handler`]: the webhook endpoint for axum |
//!
//! Setting up Stripe (products, prices, webhook events, secrets and their rotation) is
//! described in `docs/stripe.md`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod account;
#[cfg(feature = "axum")]
mod axum_handler;
mod billing;
mod error;
mod event;
mod handler;
mod model;
mod notice;
mod object;
mod plans;
mod signature;
mod store;
mod stripe_api;

pub use account::CheckoutRequest;
#[cfg(feature = "axum")]
pub use axum_handler::webhook_handler;
pub use billing::{
    Billing, BillingBuilder, DEFAULT_GRACE_PERIOD, PLAN_SYNC_SETTLING, PassReport, WebhookOutcome,
};
pub use error::{Error, Result};
pub use event::{BillingEvent, BillingObject, USER_ID_METADATA_KEY, VerifiedEvent, stripe_object};
pub use model::{
    EventStatus, FREE_PLAN, InvoiceRecord, LedgerEntry, PendingPlanSync, SubscriptionRecord,
};
pub use notice::BillingNotice;
pub use object::{
    BillingCheckoutSession, BillingInvoice, BillingSubscription, BillingSubscriptionItem,
};
pub use plans::{BillingPeriod, Interval, PlanSync};
pub use signature::{
    DEFAULT_MAX_BODY, DEFAULT_TOLERANCE, SignatureError, WebhookVerifier, WebhookVerifierBuilder,
    sign_payload,
};
pub use store::any::AnyBillingStore;
pub use store::memory::MemoryBillingStore;
#[cfg(feature = "postgres")]
pub use store::postgres::PgBillingStore;
#[cfg(feature = "sqlite")]
pub use store::sqlite::SqliteBillingStore;
pub use store::{BillingStore, Commit};
pub use stripe_api::{CancelMode, HostedSession, ProrationBehavior, StripeApi, StripeApiBuilder};
/// The async-stripe webhook types of [`VerifiedEvent::typed`].
pub use stripe_webhook;
