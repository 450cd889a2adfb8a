//! Prometheus metrics, one registry per server (no global state, so tests can run several
//! servers in one process). `GET /metrics` renders the text exposition format.
//!
//! The queue gauges come from a cache: a scrape recomputes them only when the last
//! computation is older than the refresh interval, and concurrent scrapes share one
//! computation, so that many scrapers (or a hostile one holding the token) cannot turn into
//! a stream of full-table aggregates.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use appforge_core::{SharedClock, SystemClock};
use chrono::{DateTime, Utc};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of a queue gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    status: String,
    priority: String,
}

/// Labels naming one thing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// The server's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<KindLabel, Histogram>,
    jobs: Family<JobLabels, Gauge>,
    queue_depth: Gauge,
    finished_recently: Family<OutcomeLabel, Gauge>,
    job_seconds: Family<KindLabel, Histogram>,
    tokens: Family<KindLabel, Counter>,
    webhooks: Family<KindLabel, Counter>,
    quota_denials: Counter,
    active_users_today: Gauge,
    generations_today: Family<OutcomeLabel, Gauge>,
    failure_rate_today: Gauge<f64, AtomicU64>,
    analytics_events: Family<OutcomeLabel, Counter>,
    alerts: Family<KindLabel, Counter>,
    connections: Gauge,
    header_timeouts: Counter,
    rate_limited: Family<KindLabel, Counter>,
    queue_refreshes: Counter,
    /// When the queue gauges were last computed; held while they are computed.
    queue_refreshed: tokio::sync::Mutex<Option<DateTime<Utc>>>,
    clock: SharedClock,
}

/// Labels naming an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every appforge metric registered.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(SystemClock::shared())
    }

    /// A fresh registry whose cached gauges age by `clock`.
    #[must_use]
    pub fn with_clock(clock: SharedClock) -> Self {
        let mut registry = Registry::with_prefix("appforge");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let request_seconds = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route",
            request_seconds.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Pending and processing jobs by status and priority",
            jobs.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register("queue_depth", "Jobs waiting to run", queue_depth.clone());
        let finished_recently = Family::<OutcomeLabel, Gauge>::default();
        registry.register(
            "jobs_finished_recently",
            "Jobs that finished in the last 5 minutes, by outcome",
            finished_recently.clone(),
        );
        let job_seconds = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 14))
        });
        registry.register(
            "job_duration_seconds",
            "Time from start to completion, by kind",
            job_seconds.clone(),
        );
        let tokens = Family::<KindLabel, Counter>::default();
        registry.register("tokens", "Model tokens used, by direction", tokens.clone());
        let webhooks = Family::<KindLabel, Counter>::default();
        registry.register(
            "stripe_webhooks",
            "Stripe webhook deliveries, by outcome",
            webhooks.clone(),
        );
        let quota_denials = Counter::default();
        registry.register(
            "quota_denials",
            "Generations refused for quota",
            quota_denials.clone(),
        );
        let active_users_today = Gauge::default();
        registry.register(
            "active_users_today",
            "Distinct users with an analytics event in the current UTC day",
            active_users_today.clone(),
        );
        let generations_today = Family::<OutcomeLabel, Gauge>::default();
        registry.register(
            "generations_today",
            "Generations in the current UTC day, by outcome (requested, completed, failed, cancelled)",
            generations_today.clone(),
        );
        let failure_rate_today = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "generation_failure_rate_today",
            "Failed / (completed + failed) generations in the current UTC day",
            failure_rate_today.clone(),
        );
        let analytics_events = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "analytics_events",
            "Analytics events of this process's recorder, by outcome (recorded, written, dropped)",
            analytics_events.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "http_connections",
            "HTTP connections open",
            connections.clone(),
        );
        let header_timeouts = Counter::default();
        registry.register(
            "http_header_timeouts",
            "Connections closed because a request head did not arrive in time",
            header_timeouts.clone(),
        );
        let rate_limited = Family::<KindLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a per-user limit (requests, streams, billing)",
            rate_limited.clone(),
        );
        let queue_refreshes = Counter::default();
        registry.register(
            "queue_stats_refreshes",
            "Computations of the queue gauges",
            queue_refreshes.clone(),
        );
        let alerts = Family::<KindLabel, Counter>::default();
        registry.register(
            "alerts",
            "Queue alerts this process raised, by kind (queue_length, failure_rate, worker_silent, stuck_jobs)",
            alerts.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                request_seconds,
                jobs,
                queue_depth,
                finished_recently,
                job_seconds,
                tokens,
                webhooks,
                quota_denials,
                active_users_today,
                generations_today,
                failure_rate_today,
                analytics_events,
                alerts,
                connections,
                header_timeouts,
                rate_limited,
                queue_refreshes,
                queue_refreshed: tokio::sync::Mutex::new(None),
                clock,
            }),
        }
    }

    /// Counts an open connection until the guard drops.
    pub(crate) fn connection_opened(&self) -> OpenConnection {
        self.inner.connections.inc();
        OpenConnection(self.inner.connections.clone())
    }

    /// Counts a connection closed for a late request head.
    pub(crate) fn header_timeout(&self) {
        self.inner.header_timeouts.inc();
    }

    /// Counts a queue alert of `kind`.
    pub(crate) fn alert(&self, kind: &str) {
        self.inner
            .alerts
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts a request refused by the per-user `limit`.
    pub(crate) fn rate_limited(&self, limit: &str) {
        self.inner
            .rate_limited
            .get_or_create(&KindLabel { kind: limit.into() })
            .inc();
    }

    /// Brings the queue gauges up to date through `compute` unless they were computed less
    /// than `every` ago. Concurrent callers wait for one computation and share it; a failed
    /// computation keeps the previous gauges and is not retried before `every` has passed.
    pub async fn refresh_queue<F, Fut, E>(&self, every: Duration, compute: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<appforge_jobs::QueueStats, E>>,
        E: std::fmt::Display,
    {
        let mut refreshed = self.inner.queue_refreshed.lock().await;
        let now = self.inner.clock.now();
        let fresh = refreshed.is_some_and(|at| (now - at).to_std().is_ok_and(|age| age < every));
        if fresh {
            return;
        }
        *refreshed = Some(now);
        self.inner.queue_refreshes.inc();
        match compute().await {
            Ok(stats) => self.set_queue(&stats),
            Err(error) => tracing::warn!(%error, "queue statistics unavailable"),
        }
    }

    /// Sets the job gauges from queue statistics.
    fn set_queue(&self, stats: &appforge_jobs::QueueStats) {
        let rows: Vec<(String, String, u64)> = stats
            .depth
            .iter()
            .map(|d| {
                (
                    d.status.as_str().to_owned(),
                    priority_label(d.priority),
                    d.count,
                )
            })
            .collect();
        let runnable = stats
            .depth
            .iter()
            .filter(|d| d.status == appforge_jobs::JobStatus::Pending)
            .map(|d| d.count)
            .sum();
        self.set_jobs(
            rows.iter().map(|(s, p, c)| (s.as_str(), p.as_str(), *c)),
            runnable,
        );
        for (outcome, count) in [
            ("completed", stats.completed_in_window),
            ("failed", stats.failed_in_window),
        ] {
            self.inner
                .finished_recently
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.into(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Records a finished job of `kind` that took `seconds` and used the given tokens.
    pub fn job_finished(&self, kind: &str, seconds: f64, input_tokens: u64, output_tokens: u64) {
        let inner = &self.inner;
        inner
            .job_seconds
            .get_or_create(&KindLabel { kind: kind.into() })
            .observe(seconds);
        inner
            .tokens
            .get_or_create(&KindLabel {
                kind: "input".into(),
            })
            .inc_by(input_tokens);
        inner
            .tokens
            .get_or_create(&KindLabel {
                kind: "output".into(),
            })
            .inc_by(output_tokens);
    }

    /// Counts a webhook delivery by its outcome (`processed`, `duplicate`, `rejected`, ...).
    pub fn webhook(&self, outcome: &str) {
        self.inner
            .webhooks
            .get_or_create(&KindLabel {
                kind: outcome.into(),
            })
            .inc();
    }

    /// Counts a generation refused for quota.
    pub fn quota_denied(&self) {
        self.inner.quota_denials.inc();
    }

    /// Sets the job gauges from a queue snapshot: `(status, priority, count)` rows and the
    /// number of runnable jobs.
    pub fn set_jobs<'a>(
        &self,
        rows: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
        depth: u64,
    ) {
        self.inner.jobs.clear();
        for (status, priority, count) in rows {
            let labels = JobLabels {
                status: status.into(),
                priority: priority.into(),
            };
            self.inner
                .jobs
                .get_or_create(&labels)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.inner
            .queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Sets today's headline figures.
    pub(crate) fn set_today(&self, today: &crate::analytics::Today) {
        let inner = &self.inner;
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        inner.active_users_today.set(gauge(today.active_users));
        for (outcome, count) in [
            ("requested", today.requested),
            ("completed", today.completed),
            ("failed", today.failed),
            ("cancelled", today.cancelled),
        ] {
            inner
                .generations_today
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.into(),
                })
                .set(gauge(count));
        }
        inner.failure_rate_today.set(today.failure_rate());
    }

    /// Brings the recorder counters up to `stats` (they only grow).
    pub(crate) fn set_recorder(&self, stats: &appforge_analytics::RecorderStats) {
        for (outcome, total) in [
            ("recorded", stats.recorded),
            ("written", stats.written),
            ("dropped", stats.dropped()),
        ] {
            let counter = self.inner.analytics_events.get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// `free`, `pro`, `team` for the plans' priorities, the number otherwise.
fn priority_label(priority: appforge_jobs::Priority) -> String {
    match priority.0 {
        0 => "free".into(),
        10 => "pro".into(),
        20 => "team".into(),
        other => other.to_string(),
    }
}

/// An open connection, counted in `appforge_http_connections` until dropped.
#[derive(Debug)]
pub(crate) struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Middleware: counts requests by method, matched route and status, and times them.
pub(crate) async fn track(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let inner = &metrics.inner;
    inner
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    inner
        .request_seconds
        .get_or_create(&KindLabel { kind: route })
        .observe(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        let metrics = Metrics::new();
        metrics.job_finished("full_app", 12.5, 1000, 4000);
        metrics.webhook("duplicate");
        metrics.set_jobs([("pending", "free", 3), ("processing", "pro", 1)], 3);
        let text = metrics.render();
        assert!(
            text.contains("appforge_tokens_total{kind=\"output\"} 4000"),
            "{text}"
        );
        assert!(
            text.contains("appforge_stripe_webhooks_total{kind=\"duplicate\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("appforge_jobs{status=\"pending\",priority=\"free\"} 3"),
            "{text}"
        );
        assert!(text.contains("appforge_queue_depth 3"), "{text}");
    }

    fn stats(pending: u64) -> appforge_jobs::QueueStats {
        serde_json::from_value(serde_json::json!({
            "depth": [{ "status": "pending", "priority": 0, "count": pending }],
            "completed_in_window": 0,
            "failed_in_window": 0,
            "failure_rate": 0.0,
            "duration_p50_ms": null,
            "duration_p95_ms": null,
            "oldest_pending_age": null,
            "expired_leases": 0,
            "live_workers": 0,
            "window": { "secs": 300, "nanos": 0 },
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn concurrent_scrapes_share_one_computation_per_interval() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let clock = appforge_core::ManualClock::at(chrono::Utc::now());
        let metrics = Metrics::with_clock(clock.shared());
        let computed = Arc::new(AtomicUsize::new(0));
        let every = Duration::from_secs(5);
        let scrape = |pending: u64| {
            let metrics = metrics.clone();
            let computed = computed.clone();
            async move {
                metrics
                    .refresh_queue(every, || async move {
                        computed.fetch_add(1, Ordering::SeqCst);
                        // Slow enough that the other scrapes arrive while it runs.
                        tokio::task::yield_now().await;
                        Ok::<_, std::io::Error>(stats(pending))
                    })
                    .await;
            }
        };
        futures::future::join_all((0..32).map(|_| scrape(7))).await;
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        assert!(metrics.render().contains("appforge_queue_depth 7"));
        clock.advance(Duration::from_secs(4));
        futures::future::join_all((0..32).map(|_| scrape(8))).await;
        assert_eq!(computed.load(Ordering::SeqCst), 1, "still fresh");
        clock.advance(Duration::from_secs(1));
        futures::future::join_all((0..32).map(|_| scrape(9))).await;
        assert_eq!(
            computed.load(Ordering::SeqCst),
            2,
            "one more after the interval"
        );
        let text = metrics.render();
        assert!(text.contains("appforge_queue_depth 9"), "{text}");
        assert!(
            text.contains("appforge_queue_stats_refreshes_total 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_retried_before_the_interval() {
        let clock = appforge_core::ManualClock::at(chrono::Utc::now());
        let metrics = Metrics::with_clock(clock.shared());
        let every = Duration::from_secs(5);
        metrics
            .refresh_queue(every, || async {
                Err::<appforge_jobs::QueueStats, _>("database down")
            })
            .await;
        metrics
            .refresh_queue(every, || async { Ok::<_, &str>(stats(3)) })
            .await;
        assert!(!metrics.render().contains("appforge_queue_depth 3"));
        clock.advance(every);
        metrics
            .refresh_queue(every, || async { Ok::<_, &str>(stats(3)) })
            .await;
        assert!(metrics.render().contains("appforge_queue_depth 3"));
    }
}
