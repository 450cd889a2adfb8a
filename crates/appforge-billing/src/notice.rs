//! Notices billing sends the host.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Something the host may want to act on (email the user, refresh a page).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BillingNotice {
    /// `customer.subscription.trial_will_end`: the trial ends soon (Stripe sends it three
    /// days before).
    TrialWillEnd {
        /// The user, when known.
        user: Option<Uuid>,
        /// The subscription.
        subscription: String,
        /// When the trial ends.
        trial_end: Option<DateTime<Utc>>,
    },
    /// The user's quota plan was set (after an event or a grace-period check).
    #[non_exhaustive]
    PlanSynced {
        /// The user (the billing subject: a person, or an org for a host that bills orgs).
        user: Uuid,
        /// The plan id now in force.
        plan: String,
        /// The quantity (seats) of the subscription that gives the plan, as stored (re-read
        /// from Stripe when it can be), so that seats changed in the billing portal reach the
        /// host; `None` when no paid subscription is in force (the plan is Free).
        quantity: Option<u64>,
    },
}
