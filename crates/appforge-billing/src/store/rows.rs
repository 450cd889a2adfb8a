//! Row types shared by the SQL stores, and their conversion to records.

use uuid::Uuid;

use super::time::Time;

use crate::error::{Error, Result};
use crate::model::{EventStatus, InvoiceRecord, LedgerEntry, PendingPlanSync, SubscriptionRecord};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SubscriptionRow {
    stripe_subscription_id: String,
    stripe_customer_id: String,
    user_id: Option<Uuid>,
    plan: String,
    status: String,
    price_id: Option<String>,
    quantity: i64,
    current_period_start: Option<Time>,
    current_period_end: Option<Time>,
    cancel_at_period_end: bool,
    past_due: bool,
    grace_until: Option<Time>,
    synced_version: i64,
    payment_version: i64,
    created_at: Time,
    updated_at: Time,
}

impl TryFrom<SubscriptionRow> for SubscriptionRecord {
    type Error = Error;

    fn try_from(r: SubscriptionRow) -> Result<Self> {
        Ok(Self {
            quantity: u64::try_from(r.quantity).map_err(|_| Error::Corrupt {
                what: "subscription quantity",
                value: r.quantity.to_string(),
            })?,
            stripe_subscription_id: r.stripe_subscription_id,
            stripe_customer_id: r.stripe_customer_id,
            user_id: r.user_id,
            plan: r.plan,
            status: r.status,
            price_id: r.price_id,
            current_period_start: r.current_period_start.map(|t| t.0),
            current_period_end: r.current_period_end.map(|t| t.0),
            cancel_at_period_end: r.cancel_at_period_end,
            past_due: r.past_due,
            grace_until: r.grace_until.map(|t| t.0),
            synced_version: r.synced_version,
            payment_version: r.payment_version,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

pub(crate) fn quantity_to_i64(quantity: u64) -> Result<i64> {
    i64::try_from(quantity).map_err(|_| Error::Corrupt {
        what: "subscription quantity",
        value: quantity.to_string(),
    })
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InvoiceRow {
    stripe_invoice_id: String,
    stripe_customer_id: String,
    stripe_subscription_id: Option<String>,
    status: String,
    amount_due: i64,
    amount_paid: i64,
    currency: String,
    hosted_invoice_url: Option<String>,
    version: i64,
}

impl From<InvoiceRow> for InvoiceRecord {
    fn from(r: InvoiceRow) -> Self {
        Self {
            stripe_invoice_id: r.stripe_invoice_id,
            stripe_customer_id: r.stripe_customer_id,
            stripe_subscription_id: r.stripe_subscription_id,
            status: r.status,
            amount_due: r.amount_due,
            amount_paid: r.amount_paid,
            currency: r.currency,
            hosted_invoice_url: r.hosted_invoice_url,
            version: r.version,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    id: String,
    #[sqlx(rename = "type")]
    event_type: String,
    created: Time,
    api_version: Option<String>,
    received_at: Time,
    processed_at: Option<Time>,
    status: String,
    attempts: i64,
    error: Option<String>,
    payload: String,
}

impl TryFrom<EventRow> for LedgerEntry {
    type Error = Error;

    fn try_from(r: EventRow) -> Result<Self> {
        Ok(Self {
            status: EventStatus::parse(&r.status).ok_or_else(|| Error::Corrupt {
                what: "event status",
                value: r.status.clone(),
            })?,
            attempts: u32::try_from(r.attempts).map_err(|_| Error::Corrupt {
                what: "event attempts",
                value: r.attempts.to_string(),
            })?,
            id: r.id,
            event_type: r.event_type,
            created: r.created.0,
            api_version: r.api_version,
            received_at: r.received_at.0,
            processed_at: r.processed_at.map(|t| t.0),
            error: r.error,
            payload: r.payload,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PlanSyncRow {
    user_id: Uuid,
    event_id: String,
    token: Uuid,
    pending_since: Time,
}

impl From<PlanSyncRow> for PendingPlanSync {
    fn from(r: PlanSyncRow) -> Self {
        Self {
            user_id: r.user_id,
            event_id: r.event_id,
            token: r.token,
            pending_since: r.pending_since.0,
        }
    }
}
