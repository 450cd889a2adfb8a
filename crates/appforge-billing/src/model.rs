//! The rows this crate stores: subscriptions, invoices, the event ledger.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The plan a user falls back to without a live subscription.
pub const FREE_PLAN: &str = "free";

/// A subscription as stored (the seed's `subscriptions` table plus what ordering needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Stripe's subscription id (`sub_...`), the key.
    pub stripe_subscription_id: String,
    /// Stripe's customer id (`cus_...`).
    pub stripe_customer_id: String,
    /// The user, once known (from the customer link or the subscription's metadata).
    pub user_id: Option<Uuid>,
    /// The plan the subscription's price maps to (`free` when not live or unknown).
    pub plan: String,
    /// Stripe's status: `active`, `trialing`, `past_due`, `canceled`, `unpaid`, ...
    pub status: String,
    /// The subscribed price (`price_...`).
    pub price_id: Option<String>,
    /// The quantity: seats for Team.
    pub quantity: u64,
    /// Start of the current billing period.
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current billing period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether the subscription ends at the end of the period.
    pub cancel_at_period_end: bool,
    /// Whether the latest invoice event was a failed payment.
    pub past_due: bool,
    /// When a failed payment's grace period ends (the user is downgraded after it).
    pub grace_until: Option<DateTime<Utc>>,
    /// Freshness of the subscription fields: `created` of the event they came from, or the
    /// time they were fetched from Stripe (Unix seconds).
    pub synced_version: i64,
    /// `created` of the newest invoice event applied (Unix seconds).
    pub payment_version: i64,
    /// When the row was first written.
    pub created_at: DateTime<Utc>,
    /// When the row was last written.
    pub updated_at: DateTime<Utc>,
}

impl SubscriptionRecord {
    /// Whether Stripe's status gives access: `active`, `trialing` or `past_due`.
    #[must_use]
    pub fn is_live(&self) -> bool {
        matches!(self.status.as_str(), "active" | "trialing" | "past_due")
    }

    /// The plan the user should have at `now`: the subscribed plan while the subscription is
    /// live and any grace period has not run out, Free otherwise. `cancel_at_period_end` keeps
    /// the plan until the period ends.
    #[must_use]
    pub fn effective_plan(&self, now: DateTime<Utc>) -> &str {
        if !self.is_live() {
            return FREE_PLAN;
        }
        if self.past_due && self.grace_until.is_some_and(|g| g <= now) {
            return FREE_PLAN;
        }
        if self.cancel_at_period_end && self.current_period_end.is_some_and(|end| end <= now) {
            return FREE_PLAN;
        }
        &self.plan
    }
}

/// An invoice as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    /// Stripe's invoice id (`in_...`).
    pub stripe_invoice_id: String,
    /// Stripe's customer id.
    pub stripe_customer_id: String,
    /// The subscription the invoice bills, if any.
    pub stripe_subscription_id: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: String,
    /// Amount due, in the currency's smallest unit.
    pub amount_due: i64,
    /// Amount paid, in the currency's smallest unit.
    pub amount_paid: i64,
    /// Three-letter ISO currency code, lowercase.
    pub currency: String,
    /// The hosted invoice page.
    pub hosted_invoice_url: Option<String>,
    /// `created` of the event this row came from (Unix seconds).
    pub version: i64,
}

/// What happened to a ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventStatus {
    /// Handled; its changes are committed.
    Processed,
    /// Stored and acknowledged without handling: an unknown type or an unparseable object.
    Skipped,
    /// The handler failed; Stripe will retry and the retry is handled again.
    Failed,
}

impl EventStatus {
    /// The stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "processed" => Self::Processed,
            "skipped" => Self::Skipped,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A row of the `stripe_events` ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Stripe's event id (`evt_...`).
    pub id: String,
    /// The event type (`customer.subscription.updated`, ...).
    pub event_type: String,
    /// When Stripe created the event.
    pub created: DateTime<Utc>,
    /// The API version the event was rendered with.
    pub api_version: Option<String>,
    /// When the first delivery arrived.
    pub received_at: DateTime<Utc>,
    /// When it was last processed (or skipped).
    pub processed_at: Option<DateTime<Utc>>,
    /// Its state.
    pub status: EventStatus,
    /// How many deliveries were handled (a duplicate of a processed event does not count).
    pub attempts: u32,
    /// The last handler error, or why the event was skipped.
    pub error: Option<String>,
    /// The raw payload, as received.
    pub payload: String,
}

/// A plan change committed with an event but not yet confirmed written to the quota.
///
/// A store writes one for each user an event's effects touch, in the event's transaction;
/// the handler removes it once [`PlanSync::set_plan`](crate::PlanSync::set_plan) returned.
/// A delivery cut short in between (a crash, a request timeout) leaves it behind, and the
/// periodic pass ([`Billing::run_periodic_pass`](crate::Billing::run_periodic_pass)) or a
/// redelivery of the event completes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPlanSync {
    /// The user whose plan must be set again from their stored subscriptions.
    pub user_id: Uuid,
    /// The last event that marked it.
    pub event_id: String,
    /// Changes with every marking: only the sync that read this token may remove the marker,
    /// so a newer event's marker is never removed by an older sync.
    pub token: Uuid,
    /// When the user's first unconfirmed change was committed.
    pub pending_since: DateTime<Utc>,
}

/// What an event changes, applied by a store in one transaction with its ledger row (see
/// [`BillingStore::commit_event`](crate::BillingStore::commit_event)).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Link a Stripe customer to a user, and adopt that customer's subscriptions that have no
    /// user yet (their user becomes `user`).
    LinkCustomer {
        /// The Stripe customer (`cus_...`).
        customer: String,
        /// The user.
        user: Uuid,
    },
    /// Write the subscription's fields when `snapshot.version` is newer than the stored ones
    /// (a missing subscription starts as [`SubscriptionRecord::placeholder`]; then
    /// [`SubscriptionRecord::apply_snapshot`], with the user linked to its customer).
    UpsertSubscription(SubscriptionSnapshot),
    /// Write the invoice when its `version` is newer than the stored one's.
    RecordInvoice(InvoiceRecord),
    /// Record a payment outcome for a subscription when newer than the last one (a missing
    /// subscription starts as [`SubscriptionRecord::placeholder`]; then
    /// [`SubscriptionRecord::apply_payment`], with the user linked to `customer`).
    Payment {
        /// The subscription the invoice bills.
        subscription: String,
        /// The invoice's customer.
        customer: String,
        /// Whether the payment failed.
        failed: bool,
        /// `created` of the invoice event (Unix seconds).
        version: i64,
        /// When the grace period a failure starts ends.
        grace_until: Option<DateTime<Utc>>,
    },
}

/// The fields of a Stripe subscription this crate keeps, with their freshness: what
/// [`Effect::UpsertSubscription`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionSnapshot {
    /// The subscription id (`sub_...`).
    pub id: String,
    /// The customer id (`cus_...`).
    pub customer: String,
    /// The user named in the subscription's metadata, if any.
    pub user_hint: Option<Uuid>,
    /// The plan its price maps to.
    pub plan: String,
    /// Stripe's status.
    pub status: String,
    /// The subscribed price.
    pub price_id: Option<String>,
    /// The quantity (seats).
    pub quantity: u64,
    /// Start of the current billing period.
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current billing period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether the subscription ends at the end of the period.
    pub cancel_at_period_end: bool,
    /// `created` of the event it came from, or when it was fetched (Unix seconds).
    pub version: i64,
    /// Read from Stripe's API rather than from an event: as fresh as anything stored with
    /// the same version.
    pub fetched: bool,
}

impl SubscriptionRecord {
    /// The row of a subscription known so far only by its id and customer (from an invoice,
    /// before its own events): Free, `incomplete`, versions 0.
    #[must_use]
    pub fn placeholder(subscription: &str, customer: &str, now: DateTime<Utc>) -> Self {
        placeholder_record(subscription, customer, now)
    }

    /// Applies `snapshot` when it is newer than the stored fields (or fetched at the same
    /// version), and fills in the user when it becomes known: from the snapshot's metadata, or
    /// `linked`, the user linked to the customer.
    pub fn apply_snapshot(
        &mut self,
        snapshot: &SubscriptionSnapshot,
        linked: Option<Uuid>,
        now: DateTime<Utc>,
    ) {
        apply_snapshot(self, snapshot, linked, now);
    }

    /// Applies a payment outcome when `version` is newer than the last one: a failure marks
    /// the subscription past due with a grace period (a repeated failure keeps the first
    /// deadline), a payment clears both. Fills in the user from `linked` when unknown.
    pub fn apply_payment(
        &mut self,
        failed: bool,
        version: i64,
        grace_until: Option<DateTime<Utc>>,
        linked: Option<Uuid>,
        now: DateTime<Utc>,
    ) {
        apply_payment(self, failed, version, grace_until, linked, now);
    }
}

impl SubscriptionSnapshot {
    /// Copies the snapshot's fields onto `record`.
    pub(crate) fn apply_to(&self, record: &mut SubscriptionRecord, now: DateTime<Utc>) {
        record.stripe_customer_id.clone_from(&self.customer);
        if self.user_hint.is_some() {
            record.user_id = self.user_hint;
        }
        record.plan.clone_from(&self.plan);
        record.status.clone_from(&self.status);
        record.price_id.clone_from(&self.price_id);
        record.quantity = self.quantity;
        record.current_period_start = self.current_period_start;
        record.current_period_end = self.current_period_end;
        record.cancel_at_period_end = self.cancel_at_period_end;
        record.synced_version = self.version;
        record.updated_at = now;
    }
}

/// A record for a subscription known only from an invoice so far.
pub(crate) fn placeholder_record(
    subscription: &str,
    customer: &str,
    now: DateTime<Utc>,
) -> SubscriptionRecord {
    SubscriptionRecord {
        stripe_subscription_id: subscription.to_owned(),
        stripe_customer_id: customer.to_owned(),
        user_id: None,
        plan: FREE_PLAN.to_owned(),
        status: "incomplete".to_owned(),
        price_id: None,
        quantity: 0,
        current_period_start: None,
        current_period_end: None,
        cancel_at_period_end: false,
        past_due: false,
        grace_until: None,
        synced_version: 0,
        payment_version: 0,
        created_at: now,
        updated_at: now,
    }
}

/// Applies a snapshot to `record` when it is newer, and fills in the user when it becomes
/// known (from the snapshot's metadata or the customer's link).
pub(crate) fn apply_snapshot(
    record: &mut SubscriptionRecord,
    snapshot: &SubscriptionSnapshot,
    linked: Option<Uuid>,
    now: DateTime<Utc>,
) {
    let newer = snapshot.version > record.synced_version
        || (snapshot.fetched && snapshot.version == record.synced_version);
    if newer {
        snapshot.apply_to(record, now);
    }
    if record.user_id.is_none() {
        record.user_id = snapshot.user_hint.or(linked);
        if record.user_id.is_some() {
            record.updated_at = now;
        }
    }
}

/// Applies a payment outcome to `record` when it is newer than the last one.
pub(crate) fn apply_payment(
    record: &mut SubscriptionRecord,
    failed: bool,
    version: i64,
    grace_until: Option<DateTime<Utc>>,
    linked: Option<Uuid>,
    now: DateTime<Utc>,
) {
    if version > record.payment_version {
        record.grace_until = match (failed, record.past_due) {
            (false, _) => None,
            // Stripe retries a failed payment and reports each failure: the user is still
            // past due, and the first failure's deadline stands (a retry must not extend it).
            (true, true) => record.grace_until.or(grace_until),
            (true, false) => grace_until,
        };
        record.past_due = failed;
        record.payment_version = version;
        record.updated_at = now;
    }
    if record.user_id.is_none() && linked.is_some() {
        record.user_id = linked;
        record.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn pro(status: &str) -> SubscriptionRecord {
        let mut r = placeholder_record("sub_1", "cus_1", at("2026-03-01T00:00:00Z"));
        r.plan = "pro".into();
        r.status = status.into();
        r.current_period_end = Some(at("2026-04-01T00:00:00Z"));
        r
    }

    #[test]
    fn only_live_statuses_give_the_plan() {
        let now = at("2026-03-10T00:00:00Z");
        for (status, plan) in [
            ("active", "pro"),
            ("trialing", "pro"),
            ("past_due", "pro"),
            ("canceled", FREE_PLAN),
            ("unpaid", FREE_PLAN),
            ("incomplete", FREE_PLAN),
            ("incomplete_expired", FREE_PLAN),
            ("paused", FREE_PLAN),
        ] {
            assert_eq!(pro(status).effective_plan(now), plan, "{status}");
        }
    }

    #[test]
    fn grace_and_period_end_bound_the_plan() {
        let mut r = pro("active");
        r.past_due = true;
        r.grace_until = Some(at("2026-03-12T00:00:00Z"));
        assert_eq!(r.effective_plan(at("2026-03-11T23:59:59Z")), "pro");
        assert_eq!(r.effective_plan(at("2026-03-12T00:00:00Z")), FREE_PLAN);

        let mut r = pro("active");
        r.cancel_at_period_end = true;
        assert_eq!(r.effective_plan(at("2026-03-31T23:59:59Z")), "pro");
        assert_eq!(r.effective_plan(at("2026-04-01T00:00:00Z")), FREE_PLAN);
    }

    #[test]
    fn payments_apply_only_when_newer() {
        let now = at("2026-03-10T00:00:00Z");
        let mut r = pro("active");
        apply_payment(&mut r, false, 20, None, None, now);
        apply_payment(&mut r, true, 10, Some(now), None, now);
        assert!(!r.past_due);
        apply_payment(&mut r, true, 30, Some(now), None, now);
        assert!(r.past_due);
        assert_eq!(r.grace_until, Some(now));
    }

    #[test]
    fn a_repeated_failure_keeps_the_first_deadline() {
        let now = at("2026-03-10T00:00:00Z");
        let first = at("2026-03-13T00:00:00Z");
        let mut r = pro("active");
        apply_payment(&mut r, true, 10, Some(first), None, now);
        apply_payment(
            &mut r,
            true,
            20,
            Some(at("2026-03-14T00:00:00Z")),
            None,
            now,
        );
        assert_eq!((r.past_due, r.grace_until), (true, Some(first)));
        // A payment ends the episode; the next failure starts a new grace period.
        apply_payment(&mut r, false, 30, None, None, now);
        let next = at("2026-03-20T00:00:00Z");
        apply_payment(&mut r, true, 40, Some(next), None, now);
        assert_eq!((r.past_due, r.grace_until), (true, Some(next)));
    }
}
