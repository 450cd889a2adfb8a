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
    PlanSynced {
        /// The user.
        user: Uuid,
        /// The plan id now in force.
        plan: String,
    },
}
