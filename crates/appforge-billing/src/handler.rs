//! What each handled event changes: the effects committed with its ledger row.

use chrono::{DateTime, Utc};

use crate::billing::Inner;
use crate::error::Result;
use crate::event::{BillingEvent, BillingObject, from_unix, invoice_record, user_in_metadata};
use crate::model::{Effect, EventStatus};
use crate::object::BillingSubscription;
use crate::plans::snapshot_of;
use crate::store::BillingStore;

/// The effects of one event, and how its ledger row ends.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) effects: Vec<Effect>,
    pub(crate) status: EventStatus,
    pub(crate) note: Option<String>,
    pub(crate) trial_end: Option<(String, Option<DateTime<Utc>>)>,
}

impl Plan {
    fn processed(effects: Vec<Effect>) -> Self {
        Self {
            effects,
            status: EventStatus::Processed,
            note: None,
            trial_end: None,
        }
    }

    fn skipped(note: String) -> Self {
        Self {
            effects: Vec::new(),
            status: EventStatus::Skipped,
            note: Some(note),
            trial_end: None,
        }
    }
}

impl<S: BillingStore> Inner<S> {
    /// Works out an event's effects, re-reading subscriptions from Stripe when it can.
    pub(crate) async fn plan(&self, event: &BillingEvent, now: DateTime<Utc>) -> Result<Plan> {
        let created = event.envelope.created;
        Ok(match &event.object {
            BillingObject::CheckoutSessionCompleted(session) => {
                let mut effects = Vec::new();
                let user = session
                    .client_reference_id
                    .as_deref()
                    .and_then(|r| r.parse().ok())
                    .or_else(|| user_in_metadata(&session.metadata));
                match (session.customer.clone(), user) {
                    (Some(customer), Some(user)) => {
                        effects.push(Effect::LinkCustomer { customer, user });
                    }
                    _ => tracing::warn!(
                        event = %event.envelope.id,
                        "checkout session without customer or user reference"
                    ),
                }
                #[cfg(feature = "stripe-api")]
                if let (Some(stripe), Some(sub)) = (&self.stripe, &session.subscription) {
                    match stripe.retrieve_subscription(sub).await {
                        Ok(fetched) => effects.push(Effect::UpsertSubscription(
                            snapshot_of(
                                &BillingSubscription::from(&fetched),
                                &*self.plans,
                                fetch_version(now, created),
                                true,
                            )
                            .await?,
                        )),
                        Err(e) if e.is_unreachable() => {
                            tracing::warn!(error = %e, "stripe unreachable; the subscription's own events will sync it");
                        }
                        Err(e) => return Err(e),
                    }
                }
                Plan::processed(effects)
            }
            BillingObject::SubscriptionChanged(sub) => {
                Plan::processed(vec![self.sync_subscription(sub, created, now).await?])
            }
            BillingObject::TrialWillEnd(sub) => {
                let mut plan =
                    Plan::processed(vec![self.sync_subscription(sub, created, now).await?]);
                plan.trial_end = Some((sub.id.clone(), sub.trial_end.and_then(from_unix)));
                plan
            }
            BillingObject::InvoicePaid(invoice) | BillingObject::InvoicePaymentFailed(invoice) => {
                let failed = matches!(event.object, BillingObject::InvoicePaymentFailed(_));
                let Some(record) = invoice_record(invoice, created) else {
                    return Ok(Plan::skipped("invoice without id or customer".into()));
                };
                let mut effects = Vec::new();
                if let Some(subscription) = record.stripe_subscription_id.clone() {
                    let grace =
                        chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::MAX);
                    effects.push(Effect::Payment {
                        subscription,
                        customer: record.stripe_customer_id.clone(),
                        failed,
                        version: created,
                        grace_until: from_unix(created).and_then(|c| c.checked_add_signed(grace)),
                    });
                }
                effects.insert(0, Effect::RecordInvoice(record));
                Plan::processed(effects)
            }
            BillingObject::Unhandled => Plan::skipped(format!(
                "event type {} is not handled",
                event.envelope.event_type
            )),
            BillingObject::Unparseable(reason) => Plan::skipped(format!("unparseable: {reason}")),
        })
    }

    /// The subscription as Stripe has it now, or the event's copy (versioned by the event's
    /// `created`, so that only a newer copy overwrites) when Stripe cannot be reached.
    async fn sync_subscription(
        &self,
        copy: &BillingSubscription,
        created: i64,
        now: DateTime<Utc>,
    ) -> Result<Effect> {
        #[cfg(not(feature = "stripe-api"))]
        let _ = now;
        #[cfg(feature = "stripe-api")]
        if let Some(stripe) = &self.stripe {
            match stripe.retrieve_subscription(&copy.id).await {
                Ok(fetched) => {
                    let version = fetch_version(now, created);
                    return Ok(Effect::UpsertSubscription(
                        snapshot_of(
                            &BillingSubscription::from(&fetched),
                            &*self.plans,
                            version,
                            true,
                        )
                        .await?,
                    ));
                }
                Err(e) if e.is_unreachable() => {
                    tracing::warn!(error = %e, "stripe unreachable; applying the event's copy if newer");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Effect::UpsertSubscription(
            snapshot_of(copy, &*self.plans, created, false).await?,
        ))
    }
}

/// A fetched copy is at least as fresh as the event that caused the fetch, and as now.
#[cfg(feature = "stripe-api")]
fn fetch_version(now: DateTime<Utc>, created: i64) -> i64 {
    now.timestamp().max(created)
}
