//! The in-memory store: tests and prototypes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::{BillingStore, Commit, NewEvent};
use crate::error::Result;
use crate::model::{
    Effect, EventStatus, InvoiceRecord, LedgerEntry, PendingPlanSync, SubscriptionRecord,
    apply_payment, apply_snapshot, placeholder_record,
};

#[derive(Debug, Default)]
struct State {
    events: HashMap<String, LedgerEntry>,
    subscriptions: HashMap<String, SubscriptionRecord>,
    invoices: HashMap<String, InvoiceRecord>,
    /// customer -> (user, linked at)
    customers: HashMap<String, (Uuid, DateTime<Utc>)>,
    /// user -> their unconfirmed plan change
    plan_syncs: HashMap<Uuid, PendingPlanSync>,
    /// subscription -> the grace deadline whose downgrade was enforced
    grace_enforced: HashMap<String, DateTime<Utc>>,
}

/// A [`BillingStore`] in memory. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryBillingStore {
    state: Arc<Mutex<State>>,
}

impl MemoryBillingStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl State {
    fn apply(&mut self, effect: &Effect, now: DateTime<Utc>, touched: &mut Vec<String>) {
        match effect {
            Effect::LinkCustomer { customer, user } => {
                self.customers.insert(customer.clone(), (*user, now));
                for sub in self.subscriptions.values_mut() {
                    if &sub.stripe_customer_id == customer && sub.user_id != Some(*user) {
                        sub.user_id = Some(*user);
                        sub.updated_at = now;
                    }
                    if &sub.stripe_customer_id == customer {
                        touched.push(sub.stripe_subscription_id.clone());
                    }
                }
            }
            Effect::UpsertSubscription(snapshot) => {
                let linked = self.customers.get(&snapshot.customer).map(|(u, _)| *u);
                let record = self
                    .subscriptions
                    .entry(snapshot.id.clone())
                    .or_insert_with(|| placeholder_record(&snapshot.id, &snapshot.customer, now));
                apply_snapshot(record, snapshot, linked, now);
                touched.push(snapshot.id.clone());
            }
            Effect::RecordInvoice(invoice) => {
                let newer = self
                    .invoices
                    .get(&invoice.stripe_invoice_id)
                    .is_none_or(|old| invoice.version > old.version);
                if newer {
                    self.invoices
                        .insert(invoice.stripe_invoice_id.clone(), invoice.clone());
                }
            }
            Effect::Payment {
                subscription,
                customer,
                failed,
                version,
                grace_until,
            } => {
                let linked = self.customers.get(customer).map(|(u, _)| *u);
                let record = self
                    .subscriptions
                    .entry(subscription.clone())
                    .or_insert_with(|| placeholder_record(subscription, customer, now));
                apply_payment(record, *failed, *version, *grace_until, linked, now);
                touched.push(subscription.clone());
            }
        }
    }
}

impl BillingStore for MemoryBillingStore {
    async fn commit_event(&self, event: &NewEvent<'_>, effects: &[Effect]) -> Result<Commit> {
        let mut state = self.state.lock();
        let attempts = match state.events.get(&event.envelope.id) {
            Some(old) if old.status != EventStatus::Failed => return Ok(Commit::Duplicate),
            Some(old) => old.attempts + 1,
            None => 1,
        };
        let received_at = state
            .events
            .get(&event.envelope.id)
            .map_or(event.now, |old| old.received_at);
        let mut row = event.ledger_entry(attempts);
        row.received_at = received_at;
        state.events.insert(row.id.clone(), row);
        let mut touched = Vec::new();
        for effect in effects {
            state.apply(effect, event.now, &mut touched);
        }
        touched.sort();
        touched.dedup();
        let subscriptions: Vec<SubscriptionRecord> = touched
            .iter()
            .filter_map(|id| state.subscriptions.get(id).cloned())
            .collect();
        let mut users: Vec<Uuid> = subscriptions.iter().filter_map(|s| s.user_id).collect();
        users.sort();
        users.dedup();
        let plan_syncs = users
            .into_iter()
            .map(|user| {
                let pending_since = state
                    .plan_syncs
                    .get(&user)
                    .map_or(event.now, |old| old.pending_since);
                let marker = PendingPlanSync {
                    user_id: user,
                    event_id: event.envelope.id.clone(),
                    token: Uuid::new_v4(),
                    pending_since,
                };
                state.plan_syncs.insert(user, marker.clone());
                marker
            })
            .collect();
        Ok(Commit::Applied {
            subscriptions,
            plan_syncs,
        })
    }

    async fn fail_event(&self, event: &NewEvent<'_>) -> Result<()> {
        let mut state = self.state.lock();
        let row = match state.events.get(&event.envelope.id) {
            Some(old) => {
                let attempts = if old.status == EventStatus::Failed {
                    old.attempts + 1
                } else {
                    old.attempts
                };
                LedgerEntry {
                    status: EventStatus::Failed,
                    attempts,
                    error: event.error.map(str::to_owned),
                    ..old.clone()
                }
            }
            None => event.ledger_entry(1),
        };
        state.events.insert(row.id.clone(), row);
        Ok(())
    }

    async fn plan_syncs_of_event(&self, event_id: &str) -> Result<Vec<PendingPlanSync>> {
        let state = self.state.lock();
        let mut syncs: Vec<_> = state
            .plan_syncs
            .values()
            .filter(|p| p.event_id == event_id)
            .cloned()
            .collect();
        syncs.sort_by_key(|p| p.user_id);
        Ok(syncs)
    }

    async fn clear_plan_sync(&self, user: Uuid, token: Uuid) -> Result<bool> {
        let mut state = self.state.lock();
        if state
            .plan_syncs
            .get(&user)
            .is_some_and(|p| p.token == token)
        {
            state.plan_syncs.remove(&user);
            return Ok(true);
        }
        Ok(false)
    }

    async fn grace_to_enforce(&self, now: DateTime<Utc>) -> Result<Vec<SubscriptionRecord>> {
        let state = self.state.lock();
        let mut subs: Vec<_> = state
            .subscriptions
            .values()
            .filter(|s| s.past_due && s.grace_until.is_some_and(|g| g <= now))
            .filter(|s| {
                state.grace_enforced.get(&s.stripe_subscription_id) != s.grace_until.as_ref()
            })
            .cloned()
            .collect();
        subs.sort_by(|a, b| a.stripe_subscription_id.cmp(&b.stripe_subscription_id));
        Ok(subs)
    }

    async fn mark_grace_enforced(&self, subscription: &str, now: DateTime<Utc>) -> Result<()> {
        let mut state = self.state.lock();
        let deadline = state
            .subscriptions
            .get(subscription)
            .filter(|s| s.past_due)
            .and_then(|s| s.grace_until)
            .filter(|g| *g <= now);
        if let Some(deadline) = deadline {
            state
                .grace_enforced
                .insert(subscription.to_owned(), deadline);
        }
        Ok(())
    }

    async fn migrate(&self) -> Result<()> {
        Ok(())
    }

    async fn event(&self, id: &str) -> Result<Option<LedgerEntry>> {
        Ok(self.state.lock().events.get(id).cloned())
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>> {
        Ok(self.state.lock().subscriptions.get(id).cloned())
    }

    async fn subscriptions_of_user(&self, user: Uuid) -> Result<Vec<SubscriptionRecord>> {
        let state = self.state.lock();
        let mut subs: Vec<_> = state
            .subscriptions
            .values()
            .filter(|s| s.user_id == Some(user))
            .cloned()
            .collect();
        subs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.stripe_subscription_id.cmp(&a.stripe_subscription_id))
        });
        Ok(subs)
    }

    async fn pending_plan_syncs(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingPlanSync>> {
        let state = self.state.lock();
        let mut syncs: Vec<_> = state
            .plan_syncs
            .values()
            .filter(|p| p.pending_since <= before)
            .cloned()
            .collect();
        syncs.sort_by(|a, b| {
            a.pending_since
                .cmp(&b.pending_since)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        syncs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(syncs)
    }

    async fn grace_expired(&self, now: DateTime<Utc>) -> Result<Vec<SubscriptionRecord>> {
        let state = self.state.lock();
        let mut subs: Vec<_> = state
            .subscriptions
            .values()
            .filter(|s| s.past_due && s.grace_until.is_some_and(|g| g <= now))
            .cloned()
            .collect();
        subs.sort_by(|a, b| a.stripe_subscription_id.cmp(&b.stripe_subscription_id));
        Ok(subs)
    }

    async fn invoice(&self, id: &str) -> Result<Option<InvoiceRecord>> {
        Ok(self.state.lock().invoices.get(id).cloned())
    }

    async fn link_customer(&self, customer: &str, user: Uuid, now: DateTime<Utc>) -> Result<()> {
        let mut state = self.state.lock();
        let mut touched = Vec::new();
        state.apply(
            &Effect::LinkCustomer {
                customer: customer.to_owned(),
                user,
            },
            now,
            &mut touched,
        );
        Ok(())
    }

    async fn customer_of_user(&self, user: Uuid) -> Result<Option<String>> {
        let state = self.state.lock();
        Ok(state
            .customers
            .iter()
            .filter(|(_, (u, _))| *u == user)
            .max_by(|a, b| a.1.1.cmp(&b.1.1).then_with(|| a.0.cmp(b.0)))
            .map(|(c, _)| c.clone()))
    }

    async fn user_of_customer(&self, customer: &str) -> Result<Option<Uuid>> {
        Ok(self.state.lock().customers.get(customer).map(|(u, _)| *u))
    }
}
