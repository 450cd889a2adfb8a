//! The billing handle: webhook handling, grace periods, quota sync.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use appforge_core::{SharedClock, SystemClock};
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{self, BillingEvent};
use crate::model::{EventStatus, FREE_PLAN, PendingPlanSync, SubscriptionRecord};
use crate::notice::BillingNotice;
use crate::plans::{BillingPeriod, PlanSync};
use crate::signature::WebhookVerifier;
use crate::store::any::AnyBillingStore;
use crate::store::{BillingStore, Commit, NewEvent};
#[cfg(feature = "stripe-api")]
use crate::stripe_api::StripeApi;

/// The default grace period after a failed payment: 3 days.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(3 * 24 * 3600);

/// How old an unconfirmed plan change must be before the periodic pass completes it: the
/// delivery that committed it has had the time to confirm it itself.
pub const PLAN_SYNC_SETTLING: Duration = Duration::from_secs(30);

/// The most unconfirmed plan changes one periodic pass completes (the oldest first; the next
/// pass takes the rest).
const PASS_BATCH: u32 = 500;

/// What one [`Billing::run_periodic_pass`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PassReport {
    /// Plan changes committed by a delivery that was cut short before it set the plan (a
    /// crash, a request timeout), set now.
    pub plan_syncs_completed: usize,
    /// Users whose grace period after a failed payment ended, synced (downgraded) now.
    pub grace_enforced: usize,
    /// Users whose plan could not be set (the quota failed); the next pass tries again.
    pub errors: usize,
}

/// How a verified webhook delivery was handled. Every variant is answered 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookOutcome {
    /// The event was handled and its changes committed.
    Processed {
        /// The event id.
        event_id: String,
    },
    /// The event was already processed (or skipped): nothing changed.
    Duplicate {
        /// The event id.
        event_id: String,
    },
    /// The event was stored without handling: an unknown type or an unparseable object.
    Skipped {
        /// The event id.
        event_id: String,
        /// Why.
        reason: String,
    },
}

impl WebhookOutcome {
    /// The event id.
    #[must_use]
    pub fn event_id(&self) -> &str {
        match self {
            Self::Processed { event_id }
            | Self::Duplicate { event_id }
            | Self::Skipped { event_id, .. } => event_id,
        }
    }
}

pub(crate) struct Inner<S> {
    pub(crate) store: S,
    pub(crate) verifier: WebhookVerifier,
    #[cfg(feature = "stripe-api")]
    pub(crate) stripe: Option<StripeApi>,
    pub(crate) plans: Arc<dyn PlanSync>,
    pub(crate) clock: SharedClock,
    pub(crate) grace: Duration,
    pub(crate) notices: broadcast::Sender<BillingNotice>,
}

/// Stripe billing for one account: verifies and handles webhooks exactly once, keeps
/// subscriptions and invoices, and sets each user's quota plan. Cheap to clone.
///
/// Generic over its [`BillingStore`], [`AnyBillingStore`] (chosen at run time) by default;
/// any store of the host's own works the same way.
///
/// ```
/// use std::sync::Arc;
/// use appforge_billing::{Billing, MemoryBillingStore, WebhookVerifier, sign_payload};
/// use appforge_core::{BillingPeriod, BoxFuture, Interval, PlanSync, PlanSyncError, SecretString};
///
/// #[derive(Debug)]
/// struct NoPlans;
///
/// impl PlanSync for NoPlans {
///     fn plan_for_price(&self, _: &str) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>> {
///         Box::pin(async { Ok(None) })
///     }
///     fn price_for_plan(&self, _: &str, _: Interval) -> BoxFuture<'_, Result<Option<String>, PlanSyncError>> {
///         Box::pin(async { Ok(None) })
///     }
///     fn set_plan(&self, _: uuid::Uuid, _: &str, _: Option<BillingPeriod>) -> BoxFuture<'_, Result<(), PlanSyncError>> {
///         Box::pin(async { Ok(()) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_billing::Result<()> {
/// let secret = SecretString::from("whsec_test");
/// let verifier = WebhookVerifier::builder().secret(secret.clone()).build()?;
/// let billing = Billing::builder(MemoryBillingStore::new(), verifier, Arc::new(NoPlans)).build()?;
///
/// let body = br#"{"id":"evt_1","type":"customer.created","created":1,"data":{"object":{}}}"#;
/// let header = sign_payload(&secret, chrono::Utc::now().timestamp(), body);
/// let outcome = billing.handle_webhook(body, Some(&header)).await?;
/// assert_eq!(outcome.event_id(), "evt_1"); // stored, skipped: a type billing does not handle
/// assert!(matches!(billing.handle_webhook(body, Some(&header)).await?,
///     appforge_billing::WebhookOutcome::Duplicate { .. }));
/// # Ok(()) }
/// ```
pub struct Billing<S = AnyBillingStore> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S> Clone for Billing<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Billing<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("store", &self.inner.store)
            .field("verifier", &self.inner.verifier)
            .field("stripe", &self.stripe_debug())
            .field("plans", &self.inner.plans)
            .field("grace", &self.inner.grace)
            .finish_non_exhaustive()
    }
}

impl<S> Billing<S> {
    fn stripe_debug(&self) -> Option<&dyn std::fmt::Debug> {
        #[cfg(feature = "stripe-api")]
        return self
            .inner
            .stripe
            .as_ref()
            .map(|s| s as &dyn std::fmt::Debug);
        #[cfg(not(feature = "stripe-api"))]
        None
    }
}

/// Builds a [`Billing`].
#[derive(Debug)]
pub struct BillingBuilder<S = AnyBillingStore> {
    store: S,
    verifier: WebhookVerifier,
    plans: Arc<dyn PlanSync>,
    #[cfg(feature = "stripe-api")]
    stripe: Option<StripeApi>,
    clock: Option<SharedClock>,
    grace: Duration,
}

impl<S: BillingStore> Billing<S> {
    /// A builder over `store`, verifying with `verifier` and mapping prices and plans through
    /// `plans` (usually the `appforge_quota::Quota`).
    pub fn builder(
        store: S,
        verifier: WebhookVerifier,
        plans: Arc<dyn PlanSync>,
    ) -> BillingBuilder<S> {
        BillingBuilder {
            store,
            verifier,
            plans,
            #[cfg(feature = "stripe-api")]
            stripe: None,
            clock: None,
            grace: DEFAULT_GRACE_PERIOD,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The Stripe client, when one is configured.
    #[cfg(feature = "stripe-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
    pub fn stripe(&self) -> Option<&StripeApi> {
        self.inner.stripe.as_ref()
    }

    /// Notices for the host (trial ending, plan changes); a late subscriber misses earlier
    /// ones.
    pub fn notices(&self) -> broadcast::Receiver<BillingNotice> {
        self.inner.notices.subscribe()
    }

    /// Verifies and handles one webhook delivery: `body` is the raw request body and
    /// `signature` the `Stripe-Signature` header.
    ///
    /// # Errors
    ///
    /// [`Error::Signature`] when verification fails (answer 400); any other error means the
    /// handler failed, the event is recorded `failed` and Stripe should retry (answer 5xx).
    pub async fn handle_webhook(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookOutcome> {
        let inner = &*self.inner;
        let timestamp = inner.verifier.verify(body, signature)?;
        let payload = event::text(body);
        let parsed = event::parse(&payload, timestamp);
        let event_id = parsed.envelope.id.clone();
        if let Some(row) = inner.store.event(&event_id).await?
            && row.status != EventStatus::Failed
        {
            inner.complete_syncs_of(&event_id).await;
            return Ok(WebhookOutcome::Duplicate { event_id });
        }
        let now = inner.clock.now();
        match inner.process(&parsed, &payload, now).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                let message = e.to_string();
                let failed = NewEvent {
                    envelope: &parsed.envelope,
                    payload: &payload,
                    status: EventStatus::Failed,
                    error: Some(&message),
                    now,
                };
                if let Err(store_error) = inner.store.fail_event(&failed).await {
                    tracing::error!(event = %event_id, error = %store_error, "could not record a failed event");
                }
                tracing::warn!(event = %event_id, error = %e, "stripe event failed; stripe will retry");
                Err(e)
            }
        }
    }

    /// The periodic pass every process runs (the example server runs it every
    /// `APPFORGE_BILLING_PASS_SECS`): completes the plan changes a delivery committed but was
    /// cut short before setting (older than [`PLAN_SYNC_SETTLING`]), then downgrades the users
    /// whose grace period after a failed payment ended (see
    /// [`enforce_grace_periods`](Self::enforce_grace_periods)). A user whose plan cannot be
    /// set is counted in [`PassReport::errors`] and left for the next pass.
    ///
    /// # Errors
    ///
    /// A store error reading the pending work.
    pub async fn run_periodic_pass(&self) -> Result<PassReport> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let mut report = PassReport::default();
        for pending in inner
            .store
            .pending_plan_syncs(settled_before(now), PASS_BATCH)
            .await?
        {
            match inner.complete_sync(&pending, now).await {
                Ok(()) => report.plan_syncs_completed += 1,
                Err(error) => {
                    tracing::warn!(user = %pending.user_id, %error, "completing a pending plan change failed");
                    report.errors += 1;
                }
            }
        }
        let (enforced, errors) = self.enforce_at(now).await?;
        report.grace_enforced = enforced;
        report.errors += errors;
        if report != PassReport::default() {
            tracing::info!(?report, "billing pass");
        }
        Ok(report)
    }

    /// Downgrades the users whose grace period after a failed payment has ended (and who did
    /// not pay since); part of [`run_periodic_pass`](Self::run_periodic_pass). Each ended
    /// grace period is enforced once: a later call skips it until a new failure starts a new
    /// one. Returns how many users were synced.
    ///
    /// # Errors
    ///
    /// A store error, or the quota error of the first user whose plan could not be set
    /// (the others are still synced; the failed ones are tried again by the next call).
    pub async fn enforce_grace_periods(&self) -> Result<usize> {
        let now = self.inner.clock.now();
        let expired = self.inner.store.grace_to_enforce(now).await?;
        let mut first_error = None;
        let synced = self
            .inner
            .enforce(&expired, now, |error| {
                first_error.get_or_insert(error);
            })
            .await?;
        match first_error {
            Some(error) => Err(error),
            None => Ok(synced),
        }
    }

    /// [`enforce_grace_periods`](Self::enforce_grace_periods) for the pass: (users synced,
    /// users that failed).
    async fn enforce_at(&self, now: DateTime<Utc>) -> Result<(usize, usize)> {
        let expired = self.inner.store.grace_to_enforce(now).await?;
        let mut errors = 0;
        let synced = self
            .inner
            .enforce(&expired, now, |error| {
                tracing::warn!(%error, "enforcing an ended grace period failed");
                errors += 1;
            })
            .await?;
        Ok((synced, errors))
    }

    /// Sets `user`'s quota plan from their stored subscriptions, as of now, and returns it.
    /// Webhook handling calls it after each committed event that touches the user; it reads
    /// the committed state, so calling it again (a lazy check, a repair job) is always safe.
    ///
    /// # Errors
    ///
    /// A store or quota error.
    pub async fn sync_user(&self, user: Uuid) -> Result<String> {
        self.inner.sync_user(user, self.inner.clock.now()).await
    }

    /// The plan `user` should have now according to their stored subscriptions.
    ///
    /// # Errors
    ///
    /// A store error.
    pub async fn plan_of(&self, user: Uuid) -> Result<String> {
        let subs = self.inner.store.subscriptions_of_user(user).await?;
        Ok(best(&subs, self.inner.clock.now())
            .map_or(FREE_PLAN, |s| s.effective_plan(self.inner.clock.now()))
            .to_owned())
    }
}

/// Unconfirmed plan changes committed at or before this are left over (their delivery has
/// had [`PLAN_SYNC_SETTLING`] to confirm them).
fn settled_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now.checked_sub_signed(
        chrono::Duration::from_std(PLAN_SYNC_SETTLING).unwrap_or(chrono::Duration::MAX),
    )
    .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The subscription that decides a user's plan: the freshest one giving a paid plan.
fn best(subs: &[SubscriptionRecord], now: DateTime<Utc>) -> Option<&SubscriptionRecord> {
    subs.iter()
        .filter(|s| s.effective_plan(now) != FREE_PLAN)
        .max_by_key(|s| (s.synced_version, s.created_at))
}

impl<S: BillingStore> Inner<S> {
    async fn process(
        &self,
        parsed: &BillingEvent,
        payload: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookOutcome> {
        let plan = self.plan(parsed, now).await?;
        let event = NewEvent {
            envelope: &parsed.envelope,
            payload,
            status: plan.status,
            error: plan.note.as_deref(),
            now,
        };
        let event_id = parsed.envelope.id.clone();
        let (records, plan_syncs) = match self.store.commit_event(&event, &plan.effects).await? {
            Commit::Applied {
                subscriptions,
                plan_syncs,
            } => (subscriptions, plan_syncs),
            Commit::Duplicate => {
                self.complete_syncs_of(&event_id).await;
                return Ok(WebhookOutcome::Duplicate { event_id });
            }
        };
        // The plan changes are committed with the event as pending work: a delivery cut short
        // from here on (a crash, the request's timeout) leaves them to a redelivery or to the
        // periodic pass.
        for pending in &plan_syncs {
            self.complete_sync(pending, now).await?;
        }
        if let Some((subscription, trial_end)) = plan.trial_end {
            let user = records
                .iter()
                .find(|r| r.stripe_subscription_id == subscription)
                .and_then(|r| r.user_id);
            // Nobody listening is fine: the notice is advisory.
            let _ = self.notices.send(BillingNotice::TrialWillEnd {
                user,
                subscription,
                trial_end,
            });
        }
        Ok(match plan.status {
            EventStatus::Skipped => WebhookOutcome::Skipped {
                event_id,
                reason: plan.note.unwrap_or_default(),
            },
            _ => WebhookOutcome::Processed { event_id },
        })
    }

    /// Sets the plan of a pending sync's user, then removes the marker (unless an event marked
    /// the user again meanwhile: that event's own sync removes it).
    async fn complete_sync(&self, pending: &PendingPlanSync, now: DateTime<Utc>) -> Result<()> {
        self.sync_user(pending.user_id, now).await?;
        if let Err(error) = self
            .store
            .clear_plan_sync(pending.user_id, pending.token)
            .await
        {
            // The plan is set; the marker only makes the periodic pass set it again.
            tracing::warn!(user = %pending.user_id, %error, "could not clear a completed plan sync");
        }
        Ok(())
    }

    /// Completes the plan changes event `event_id` committed and left pending (its earlier
    /// delivery was cut short): a redelivery's answer does not wait for the periodic pass.
    /// Changes younger than [`PLAN_SYNC_SETTLING`] are left to the delivery that committed
    /// them, which may still be running (a concurrent duplicate). Failures are logged; the
    /// pass completes them.
    async fn complete_syncs_of(&self, event_id: &str) {
        let pending = match self.store.plan_syncs_of_event(event_id).await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(event = %event_id, %error, "reading the event's pending plan changes failed");
                return;
            }
        };
        let now = self.clock.now();
        let settled = settled_before(now);
        for pending in pending.iter().filter(|p| p.pending_since <= settled) {
            if let Err(error) = self.complete_sync(pending, now).await {
                tracing::warn!(event = %event_id, user = %pending.user_id, %error, "completing a pending plan change failed");
            }
        }
    }

    /// Syncs the users of `expired` (past-due subscriptions whose grace ended) and marks each
    /// subscription enforced once its user's plan is set (or when it has no user yet: the
    /// event that links it syncs the user). Returns how many users were synced; `failed`
    /// receives each user's error.
    async fn enforce(
        &self,
        expired: &[SubscriptionRecord],
        now: DateTime<Utc>,
        mut failed: impl FnMut(Error),
    ) -> Result<usize> {
        let users: BTreeSet<Uuid> = expired.iter().filter_map(|s| s.user_id).collect();
        let mut synced = BTreeSet::new();
        for user in users {
            match self.sync_user(user, now).await {
                Ok(_) => {
                    synced.insert(user);
                }
                Err(error) => failed(error),
            }
        }
        for sub in expired {
            if sub.user_id.is_none_or(|user| synced.contains(&user)) {
                self.store
                    .mark_grace_enforced(&sub.stripe_subscription_id, now)
                    .await?;
            }
        }
        Ok(synced.len())
    }

    pub(crate) async fn sync_user(&self, user: Uuid, now: DateTime<Utc>) -> Result<String> {
        let subs = self.store.subscriptions_of_user(user).await?;
        let chosen = best(&subs, now);
        let plan = chosen
            .map_or(FREE_PLAN, |s| s.effective_plan(now))
            .to_owned();
        let period = chosen.and_then(|s| {
            Some(BillingPeriod {
                start: s.current_period_start?,
                end: s.current_period_end?,
            })
        });
        self.plans.set_plan(user, &plan, period).await?;
        let _ = self.notices.send(BillingNotice::PlanSynced {
            user,
            plan: plan.clone(),
            quantity: chosen.map(|s| s.quantity),
        });
        Ok(plan)
    }
}

impl<S: BillingStore> BillingBuilder<S> {
    /// The Stripe client used to re-read subscriptions and for checkout, portal and plan
    /// changes. Without one, events are applied from their own copies (newest wins).
    #[cfg(feature = "stripe-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
    #[must_use]
    pub fn stripe(mut self, stripe: StripeApi) -> Self {
        self.stripe = Some(stripe);
        self
    }

    /// The clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How long a user keeps their plan after a failed payment (default 3 days).
    #[must_use]
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Builds the handle.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a grace period too large to represent.
    pub fn build(self) -> Result<Billing<S>> {
        if chrono::Duration::from_std(self.grace).is_err() {
            return Err(Error::Config("the grace period is too large".into()));
        }
        let (notices, _) = broadcast::channel(256);
        Ok(Billing {
            inner: Arc::new(Inner {
                store: self.store,
                verifier: self.verifier,
                #[cfg(feature = "stripe-api")]
                stripe: self.stripe,
                plans: self.plans,
                clock: self.clock.unwrap_or_else(SystemClock::shared),
                grace: self.grace,
                notices,
            }),
        })
    }
}
