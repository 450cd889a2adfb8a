//! Usage analytics of the assembly: the standard events (sign-in seen, generations requested
//! and finished, quota denials, upgrade clicks, checkouts, subscription changes, revenue)
//! recorded through a non-blocking [`Recorder`] into the shared database, and today's
//! headline figures for `/metrics`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use appforge_analytics::{
    AnalyticsEvent, AnyEventStore, EventStore, EventType, GenerationFacts, Recorder, RecorderStats,
    RevenueFacts,
};
use appforge_jobs::Job;
use chrono::{NaiveDate, Utc};
use parking_lot::Mutex;
use serde_json::{Value, json};
use uuid::Uuid;

/// How many users the sign-in-seen set remembers per day before it starts over. Starting
/// over only records a second `sign_in_seen` for some users that day, which the metrics
/// (distinct users) absorb.
const SEEN_CAPACITY: usize = 100_000;

/// How long today's figures for `/metrics` are reused: every scrape of every API node would
/// otherwise read the day's events again, and the figures move slowly.
const TODAY_CACHE: Duration = Duration::from_secs(30);

/// The analytics of one server or worker process: the recorder, the store it writes to and
/// the per-day set of users already seen. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Analytics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    recorder: Recorder,
    store: AnyEventStore,
    model: String,
    seen: Mutex<Seen>,
    today: tokio::sync::Mutex<Option<(Instant, Today)>>,
}

/// The users seen on one UTC day.
#[derive(Debug, Default)]
struct Seen {
    day: Option<NaiveDate>,
    users: HashSet<Uuid>,
}

impl Seen {
    /// Whether `user` is seen for the first time on `day` (and remembers it).
    fn first_today(&mut self, user: Uuid, day: NaiveDate) -> bool {
        if self.day != Some(day) {
            self.day = Some(day);
            self.users.clear();
        }
        if self.users.contains(&user) {
            return false;
        }
        if self.users.len() >= SEEN_CAPACITY {
            self.users.clear();
        }
        self.users.insert(user);
        true
    }
}

/// Today's headline figures (UTC day so far).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Today {
    /// Distinct users with any event today.
    pub(crate) active_users: u64,
    /// Generations requested today.
    pub(crate) requested: u64,
    /// Generations completed today.
    pub(crate) completed: u64,
    /// Generations failed today.
    pub(crate) failed: u64,
    /// Generations cancelled today.
    pub(crate) cancelled: u64,
}

impl Today {
    /// `failed / (completed + failed)`, 0 without any.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub(crate) fn failure_rate(&self) -> f64 {
        let finished = self.completed + self.failed;
        if finished == 0 {
            0.0
        } else {
            self.failed as f64 / finished as f64
        }
    }
}

impl Analytics {
    /// Starts a recorder writing to `store`; `model` names the model generations are priced
    /// by.
    ///
    /// # Errors
    ///
    /// The recorder's configuration error.
    pub(crate) fn start(store: AnyEventStore, model: String) -> appforge_analytics::Result<Self> {
        let recorder = Recorder::builder(store.clone()).spawn()?;
        Ok(Self {
            inner: Arc::new(Inner {
                recorder,
                store,
                model,
                seen: Mutex::new(Seen::default()),
                today: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The recorder.
    #[must_use]
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// The event store (the shared database).
    #[must_use]
    pub fn store(&self) -> &AnyEventStore {
        &self.inner.store
    }

    /// The recorder's counters.
    #[must_use]
    pub fn stats(&self) -> RecorderStats {
        self.inner.recorder.stats()
    }

    /// Writes every event recorded so far.
    ///
    /// # Errors
    ///
    /// [`appforge_analytics::Error::RecorderClosed`] after [`shutdown`](Self::shutdown).
    pub async fn flush(&self) -> appforge_analytics::Result<()> {
        self.inner.recorder.flush().await
    }

    /// Writes what is buffered and stops recording.
    pub async fn shutdown(&self) {
        self.inner.recorder.shutdown().await;
    }

    fn track(&self, user: Uuid, event_type: EventType, properties: Value) {
        self.inner.recorder.track(user, event_type, properties);
    }

    /// Records `sign_in_seen` for the first authenticated request of `user` in this UTC day
    /// (as far as this process knows).
    pub fn seen(&self, user: Uuid) {
        let first = self
            .inner
            .seen
            .lock()
            .first_today(user, Utc::now().date_naive());
        if first {
            self.track(user, EventType::SignInSeen, json!({}));
        }
    }

    /// Records `generation_requested` for a job just enqueued.
    pub(crate) fn requested(&self, user: Uuid, job: Uuid, kind: &str, plan: &str) {
        let facts = GenerationFacts::new(kind, plan).job_id(job);
        self.inner.recorder.record(AnalyticsEvent::generation(
            user,
            EventType::GenerationRequested,
            &facts,
            Utc::now(),
        ));
    }

    /// Records a generation job's end (completed, failed or cancelled); other statuses are
    /// ignored.
    pub(crate) fn finished(&self, job: &Job) {
        if let Some(event) = appforge::generation::analytics::finished(job, &self.inner.model) {
            self.inner.recorder.record(event);
        }
    }

    /// Records `quota_denied` for a generation of `kind` the quota refused.
    pub(crate) fn quota_denied(
        &self,
        user: Uuid,
        kind: &str,
        status: &appforge_quota::QuotaStatus,
    ) {
        let status = serde_json::to_value(status).unwrap_or(Value::Null);
        self.track(
            user,
            EventType::QuotaDenied,
            json!({ "kind": kind, "plan": status["plan"], "denied_by": status["deniedBy"] }),
        );
    }

    /// Records `upgrade_clicked` for a checkout started for `plan`.
    pub(crate) fn upgrade_clicked(&self, user: Uuid, plan: &str, interval: &str) {
        self.track(
            user,
            EventType::UpgradeClicked,
            json!({ "plan": plan, "interval": interval }),
        );
    }

    /// Records what a processed Stripe event means for the user it concerns.
    pub(crate) fn billing(&self, user: Uuid, change: BillingChange) {
        match change {
            BillingChange::CheckoutCompleted { session } => self.track(
                user,
                EventType::CheckoutCompleted,
                json!({ "session_id": session }),
            ),
            BillingChange::SubscriptionChanged {
                event_type,
                subscription,
                plan,
                status,
            } => self.track(
                user,
                EventType::SubscriptionChanged,
                json!({
                    "stripe_event": event_type,
                    "subscription_id": subscription,
                    "plan": plan,
                    "status": status,
                }),
            ),
            BillingChange::InvoicePaid(facts) => {
                self.inner
                    .recorder
                    .record(AnalyticsEvent::revenue(user, &facts, Utc::now()));
            }
        }
    }

    /// Today's figures, read from the store at most every [`TODAY_CACHE`].
    ///
    /// # Errors
    ///
    /// The store's error.
    pub(crate) async fn today(&self) -> appforge_analytics::Result<Today> {
        let mut cached = self.inner.today.lock().await;
        if let Some((at, today)) = *cached
            && at.elapsed() < TODAY_CACHE
        {
            return Ok(today);
        }
        let now = Utc::now();
        let start = now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
        let events = self
            .inner
            .store
            .events_between(start, now + chrono::TimeDelta::seconds(1))
            .await?;
        let today = summarize(&events);
        *cached = Some((Instant::now(), today));
        Ok(today)
    }
}

/// A processed Stripe event, as analytics records it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BillingChange {
    /// `checkout.session.completed`.
    CheckoutCompleted {
        /// The session id.
        session: Option<String>,
    },
    /// `customer.subscription.created`, `.updated` or `.deleted`.
    SubscriptionChanged {
        /// The Stripe event type.
        event_type: String,
        /// The subscription id.
        subscription: Option<String>,
        /// The plan the subscription now maps to, when stored.
        plan: Option<String>,
        /// Stripe's status of the subscription.
        status: Option<String>,
    },
    /// `invoice.paid`.
    InvoicePaid(RevenueFacts),
}

fn summarize(events: &[AnalyticsEvent]) -> Today {
    let mut users = HashSet::new();
    let mut today = Today::default();
    for event in events {
        users.insert(event.user_id);
        match event.event_type {
            EventType::GenerationRequested => today.requested += 1,
            EventType::GenerationCompleted => today.completed += 1,
            EventType::GenerationFailed => today.failed += 1,
            EventType::GenerationCancelled => today.cancelled += 1,
            _ => {}
        }
    }
    today.active_users = u64::try_from(users.len()).unwrap_or(u64::MAX);
    today
}

/// What a processed Stripe webhook body means for analytics: the change and the user it
/// concerns (from the object's metadata, the checkout's client reference, or the customer
/// link billing stored).
pub(crate) async fn billing_change<S: appforge_billing::BillingStore>(
    store: &S,
    body: &[u8],
) -> Option<(Uuid, BillingChange)> {
    let event: Value = serde_json::from_slice(body).ok()?;
    let object = event.pointer("/data/object")?;
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    let metadata_user = object
        .pointer(&format!(
            "/metadata/{}",
            appforge_billing::USER_ID_METADATA_KEY
        ))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    let customer = object.get("customer").and_then(|c| match c {
        Value::String(id) => Some(id.clone()),
        other => other.get("id").and_then(Value::as_str).map(str::to_owned),
    });
    let linked = async {
        match &customer {
            Some(customer) => store.user_of_customer(customer).await.ok().flatten(),
            None => None,
        }
    };
    let event_type = event.get("type").and_then(Value::as_str)?.to_owned();
    match event_type.as_str() {
        "checkout.session.completed" => {
            let user = text("client_reference_id")
                .and_then(|s| s.parse().ok())
                .or(metadata_user);
            let user = match user {
                Some(user) => user,
                None => linked.await?,
            };
            Some((
                user,
                BillingChange::CheckoutCompleted {
                    session: text("id"),
                },
            ))
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let subscription = text("id");
            let stored = match &subscription {
                Some(id) => store.subscription(id).await.ok().flatten(),
                None => None,
            };
            let user = match stored.as_ref().and_then(|s| s.user_id).or(metadata_user) {
                Some(user) => user,
                None => linked.await?,
            };
            Some((
                user,
                BillingChange::SubscriptionChanged {
                    event_type,
                    subscription,
                    plan: stored.as_ref().map(|s| s.plan.clone()),
                    status: stored.map(|s| s.status).or_else(|| text("status")),
                },
            ))
        }
        "invoice.paid" => {
            let amount = object.get("amount_paid").and_then(Value::as_i64)?;
            let user = match metadata_user {
                Some(user) => user,
                None => linked.await?,
            };
            Some((
                user,
                BillingChange::InvoicePaid(RevenueFacts {
                    amount_cents: amount,
                    currency: text("currency").unwrap_or_else(|| "usd".to_owned()),
                    invoice_id: text("id"),
                }),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_seen_once_a_day() {
        let mut seen = Seen::default();
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let monday = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let tuesday = monday.succ_opt().unwrap();
        assert!(seen.first_today(ada, monday));
        assert!(!seen.first_today(ada, monday));
        assert!(seen.first_today(bob, monday));
        assert!(seen.first_today(ada, tuesday));
        assert!(!seen.first_today(ada, tuesday));
        assert_eq!(seen.users.len(), 1, "the previous day is forgotten");
    }

    #[test]
    fn the_seen_set_stays_bounded() {
        let mut seen = Seen::default();
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        for _ in 0..SEEN_CAPACITY + 10 {
            seen.first_today(Uuid::new_v4(), day);
        }
        assert!(seen.users.len() <= SEEN_CAPACITY);
    }

    #[test]
    fn today_counts_generations_and_distinct_users() {
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Utc::now();
        let events: Vec<AnalyticsEvent> = [
            (ada, EventType::SignInSeen),
            (ada, EventType::GenerationRequested),
            (ada, EventType::GenerationCompleted),
            (bob, EventType::GenerationRequested),
            (bob, EventType::GenerationFailed),
        ]
        .into_iter()
        .map(|(user, ty)| AnalyticsEvent::new(user, ty, now))
        .collect();
        let today = summarize(&events);
        assert_eq!(today.active_users, 2);
        assert_eq!((today.requested, today.completed, today.failed), (2, 1, 1));
        assert!((today.failure_rate() - 0.5).abs() < f64::EPSILON);
    }
}
