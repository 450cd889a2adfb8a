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

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::event::Envelope;
use crate::model::{EventStatus, InvoiceRecord, LedgerEntry, PendingPlanSync, SubscriptionRecord};

/// An event about to be committed to the ledger.
#[derive(Debug, Clone)]
#[allow(unreachable_pub)] // named only through the sealed trait
pub struct NewEvent<'a> {
    pub(crate) envelope: &'a Envelope,
    pub(crate) payload: &'a str,
    pub(crate) status: EventStatus,
    pub(crate) error: Option<&'a str>,
    pub(crate) now: DateTime<Utc>,
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

pub(crate) mod sealed {
    use std::future::Future;

    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::{Commit, NewEvent};
    use crate::error::Result;
    use crate::model::{Effect, PendingPlanSync, SubscriptionRecord};

    /// The writes only this crate makes.
    #[allow(unreachable_pub)] // the sealed-trait pattern: public, but unnameable outside
    pub trait Internal {
        /// Records `event` with `effects`, in one transaction, unless it is already processed
        /// or skipped (then [`Commit::Duplicate`]). A failed event is taken again and its
        /// attempts counted. In the same transaction, marks a plan sync pending for every
        /// user of the subscriptions the effects touched.
        fn commit_event(
            &self,
            event: &NewEvent<'_>,
            effects: &[Effect],
        ) -> impl Future<Output = Result<Commit>> + Send;

        /// Marks `event` failed with `event.error` (inserting it if new) and counts the attempt.
        fn fail_event(&self, event: &NewEvent<'_>) -> impl Future<Output = Result<()>> + Send;

        /// The pending plan syncs last marked by event `event_id`.
        fn plan_syncs_of_event(
            &self,
            event_id: &str,
        ) -> impl Future<Output = Result<Vec<PendingPlanSync>>> + Send;

        /// Removes `user`'s pending plan sync if it still carries `token` (no event marked it
        /// again since it was read). Whether it was removed.
        fn clear_plan_sync(
            &self,
            user: Uuid,
            token: Uuid,
        ) -> impl Future<Output = Result<bool>> + Send;

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
}

/// Storage for billing: memory, SQLite or PostgreSQL (sealed: this crate provides the
/// implementations). Every write is atomic; an event's ledger row and all its effects are
/// committed in one transaction.
pub trait BillingStore: sealed::Internal + Send + Sync + std::fmt::Debug {
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
}
