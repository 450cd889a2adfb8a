//! Stripe subscriptions and webhooks that cannot be fooled or reordered.
//!
//! - [`WebhookVerifier`] (feature `webhook`) checks `Stripe-Signature` on the raw body: HMAC-SHA256 in constant
//!   time, several secrets (rotation), a tolerance against an injected clock, a body limit.
//! - [`Billing`] (feature `store`) handles each verified event exactly once (the `stripe_events` ledger),
//!   re-reads subscriptions from Stripe (or, offline, applies only newer copies), keeps
//!   `subscriptions` and `invoices`, maps prices to plans and sets the user's quota plan;
//!   a failed payment starts a grace period, then a downgrade.
//! - [`StripeApi`] (feature `stripe-api`) creates customers, checkout and portal sessions, cancels and changes plans.
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
//! | `webhook` | yes | [`WebhookVerifier`], [`BillingEvent`] and the reduced object types: verification and parsing only (serde, pure-Rust HMAC; no async-stripe, no store, no sqlx) |
//! | `stripe-api` | yes | `store`, [`StripeApi`] and [`Billing`]'s Stripe calls (customer, checkout, portal, cancel, plan changes, re-reading subscriptions), [`WebhookVerifier::verify_event`] with async-stripe's typed events, [`stripe_object`]: async-stripe |
//! | `store` | yes | [`Billing`], the [`BillingStore`] trait and [`MemoryBillingStore`] |
//! | `sqlite` | yes | `store` and [`SqliteBillingStore`] (sqlx) |
//! | `postgres` | no | `store` and [`PgBillingStore`] (sqlx) |
//! | `axum` | no | [`StripeEvent`], an extractor that verifies a delivery; with `store`, [`webhook_handler`] |
//! | `testing` | no | [`testing`] and [`store_suite!`]: the conformance suite every store passes, for a store of your own |
//!
//! A host that only verifies webhooks turns off the defaults:
//! `appforge-billing = { version = "0.1", default-features = false, features = ["webhook", "axum"] }`.
//!
//! # The plan link
//!
//! Billing sets each user's plan through a [`PlanSync`]. The trait is defined in
//! `appforge-core`, which both crates already use: `appforge-quota` implements it for its
//! `Quota` (`Arc::new(quota)` is a plan sync), and a host may implement it over a plan table
//! of its own. So billing does not depend on the quota crate, nor the quota crate on billing,
//! and neither can form a cycle with the other; both use the one [`BillingPeriod`] of
//! `appforge-core`.
//!
//! # Stores
//!
//! [`Billing<S>`](Billing) is generic over a [`BillingStore`], [`AnyBillingStore`] (memory,
//! SQLite or PostgreSQL chosen at run time) by default. The trait is public: a store of your
//! own implements it, and runs the same behavioural suite as the built-in ones with
//! [`store_suite!`] (feature `testing`).
//!
//! Setting up Stripe (products, prices, webhook events, secrets and their rotation) is
//! described in `docs/stripe.md`.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The front page links items of every feature; they resolve when all are on (as on docs.rs).
#![cfg_attr(
    not(all(
        feature = "stripe-api",
        feature = "sqlite",
        feature = "postgres",
        feature = "axum",
        feature = "testing"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "stripe-api")]
mod account;
#[cfg(feature = "axum")]
mod axum_handler;
#[cfg(feature = "store")]
mod billing;
mod error;
#[cfg(feature = "webhook")]
mod event;
#[cfg(feature = "store")]
mod handler;
#[cfg(feature = "store")]
mod model;
#[cfg(feature = "store")]
mod notice;
#[cfg(feature = "webhook")]
mod object;
mod plans;
#[cfg(feature = "webhook")]
mod signature;
#[cfg(feature = "store")]
mod store;
#[cfg(feature = "stripe-api")]
mod stripe_api;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "stripe-api")]
mod typed;

#[cfg(feature = "stripe-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
pub use account::CheckoutRequest;
#[cfg(all(feature = "axum", feature = "store"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "axum", feature = "store"))))]
pub use axum_handler::webhook_handler;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum_handler::{StripeEvent, WebhookRejection};
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use billing::{
    Billing, BillingBuilder, DEFAULT_GRACE_PERIOD, PLAN_SYNC_SETTLING, PassReport, WebhookOutcome,
};
pub use error::{Error, Result};
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use event::{BillingEvent, BillingObject, USER_ID_METADATA_KEY};
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use model::{
    Effect, EventStatus, FREE_PLAN, InvoiceRecord, LedgerEntry, PendingPlanSync,
    SubscriptionRecord, SubscriptionSnapshot,
};
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use notice::BillingNotice;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use object::{
    BillingCheckoutSession, BillingInvoice, BillingSubscription, BillingSubscriptionItem,
};
pub use plans::{BillingPeriod, Interval, PlanSync, PlanSyncError};
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use signature::{
    DEFAULT_MAX_BODY, DEFAULT_TOLERANCE, SignatureError, WebhookVerifier, WebhookVerifierBuilder,
    sign_payload,
};
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use store::any::AnyBillingStore;
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use store::memory::MemoryBillingStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::PgBillingStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::SqliteBillingStore;
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use store::{BillingStore, Commit, NewEvent};
#[cfg(feature = "stripe-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
pub use stripe_api::{CancelMode, HostedSession, ProrationBehavior, StripeApi, StripeApiBuilder};
/// The async-stripe webhook types of [`VerifiedEvent::typed`].
#[cfg(feature = "stripe-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
pub use stripe_webhook;
#[cfg(feature = "stripe-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
pub use typed::{VerifiedEvent, stripe_object};
