//! Storage of subscriptions, invoices, customer links and the event ledger.

pub(crate) mod any;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod time;

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::event::{Envelope, from_unix};
use crate::model::{
    Effect, EventStatus, InvoiceRecord, LedgerEntry, PendingPlanSync, SubscriptionRecord,
};

/// An event about to be committed to the ledger, as [`Billing`](crate::Billing) hands it to
/// [`BillingStore::commit_event`] and [`BillingStore::fail_event`].
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub(crate) envelope: &'a Envelope,
    pub(crate) payload: &'a str,
    pub(crate) status: EventStatus,
    pub(crate) error: Option<&'a str>,
    pub(crate) now: DateTime<Utc>,
}

impl NewEvent<'_> {
    /// Stripe's event id (`evt_...`), the ledger's key.
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

    /// The raw payload, as received.
    #[must_use]
    pub fn payload(&self) -> &str {
        self.payload
    }

    /// The state the ledger row ends in: [`EventStatus::Processed`] or
    /// [`EventStatus::Skipped`] for a commit, [`EventStatus::Failed`] for a failure.
    #[must_use]
    pub fn status(&self) -> EventStatus {
        self.status
    }

    /// The handler's error, or why the event was skipped.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error
    }

    /// The time of the delivery (the billing clock's), for `received_at`, `processed_at` and
    /// the rows' timestamps.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The ledger row a store writes for this event the first time it sees it, with
    /// `attempts` handled deliveries.
    #[must_use]
    pub fn ledger_entry(&self, attempts: u32) -> LedgerEntry {
        LedgerEntry {
            id: self.envelope.id.clone(),
            event_type: self.envelope.event_type.clone(),
            created: from_unix(self.envelope.created).unwrap_or(DateTime::UNIX_EPOCH),
            api_version: self.envelope.api_version.clone(),
            received_at: self.now,
            processed_at: (self.status != EventStatus::Failed).then_some(self.now),
            status: self.status,
            attempts,
            error: self.error.map(str::to_owned),
            payload: self.payload.to_owned(),
        }
    }
}

/// The outcome of committing an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Commit {
    /// The event was new (or had failed before): its ledger row and effects are committed.
    Applied {
        /// The subscriptions the effects touched, as now stored.
        subscriptions: Vec<SubscriptionRecord>,
        /// The plan changes committed with the event, one per user the effects touched, to
        /// be confirmed once the user's plan is set.
        plan_syncs: Vec<PendingPlanSync>,
    },
    /// The event was already processed or skipped: nothing changed.
    Duplicate,
}

/// Storage for billing: the event ledger, subscriptions, invoices, customer links, pending
/// plan changes. This crate provides [`MemoryBillingStore`](crate::MemoryBillingStore),
/// `SqliteBillingStore` and `PgBillingStore`; a host may implement it over its own database.
///
/// Every write is atomic; an event's ledger row and all its effects are committed in one
/// transaction, and two deliveries of one event racing each other apply it once. The
/// conformance suite (feature `testing`, [`store_suite!`](crate::store_suite)) checks these
/// rules against a store: run it on yours.
///
/// The [`Effect`]s of an event are applied with the helpers of [`SubscriptionRecord`]
/// ([`SubscriptionRecord::placeholder`], [`SubscriptionRecord::apply_snapshot`],
/// [`SubscriptionRecord::apply_payment`]), so that every store merges the same way.
pub trait BillingStore: Send + Sync + std::fmt::Debug {
    /// Creates or updates the tables.
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send;

    /// The ledger row of event `id`.
    fn event(&self, id: &str) -> impl Future<Output = Result<Option<LedgerEntry>>> + Send;

    /// A subscription by its Stripe id.
    fn subscription(
        &self,
        stripe_subscription_id: &str,
    ) -> impl Future<Output = Result<Option<SubscriptionRecord>>> + Send;

    /// A user's subscriptions, newest first.
    fn subscriptions_of_user(
        &self,
        user: Uuid,
    ) -> impl Future<Output = Result<Vec<SubscriptionRecord>>> + Send;

    /// Plan syncs committed at or before `before` and not confirmed yet (a delivery cut
    /// short between its commit and the quota write), oldest first, at most `limit`.
    fn pending_plan_syncs(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<PendingPlanSync>>> + Send;

    /// Past-due subscriptions whose grace period ended at or before `now`.
    fn grace_expired(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<SubscriptionRecord>>> + Send;

    /// An invoice by its Stripe id.
    fn invoice(
        &self,
        stripe_invoice_id: &str,
    ) -> impl Future<Output = Result<Option<InvoiceRecord>>> + Send;

    /// Links a Stripe customer to a user (replacing an earlier link of that customer).
    fn link_customer(
        &self,
        customer: &str,
        user: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The Stripe customer of a user (the most recently linked one).
    fn customer_of_user(&self, user: Uuid) -> impl Future<Output = Result<Option<String>>> + Send;

    /// The user a Stripe customer is linked to.
    fn user_of_customer(&self, customer: &str)
    -> impl Future<Output = Result<Option<Uuid>>> + Send;

    /// Records `event` with `effects`, in one transaction, unless it is already processed
    /// or skipped (then [`Commit::Duplicate`]). A failed event is taken again and its
    /// attempts counted. In the same transaction, marks a plan sync pending (a new token,
    /// `pending_since` kept if one was already pending) for every user of the subscriptions
    /// the effects touched, and returns those markers with the touched subscriptions.
    fn commit_event(
        &self,
        event: &NewEvent<'_>,
        effects: &[Effect],
    ) -> impl Future<Output = Result<Commit>> + Send;

    /// Marks `event` failed with `event.error()` (inserting it if new) and counts the attempt.
    fn fail_event(&self, event: &NewEvent<'_>) -> impl Future<Output = Result<()>> + Send;

    /// The pending plan syncs last marked by event `event_id`.
    fn plan_syncs_of_event(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<Vec<PendingPlanSync>>> + Send;

    /// Removes `user`'s pending plan sync if it still carries `token` (no event marked it
    /// again since it was read). Whether it was removed.
    fn clear_plan_sync(&self, user: Uuid, token: Uuid)
    -> impl Future<Output = Result<bool>> + Send;

    /// Past-due subscriptions whose grace period ended at or before `now` and whose
    /// downgrade was not confirmed yet (see [`mark_grace_enforced`](Self::mark_grace_enforced)).
    fn grace_to_enforce(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<SubscriptionRecord>>> + Send;

    /// Records that the ended grace period of `subscription` was enforced (its user's
    /// plan set), so that later passes skip it until a new failure starts a new one.
    fn mark_grace_enforced(
        &self,
        subscription: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
}
