//! Per-user limits on every authenticated route: a request rate by plan, a cap on the event
//! streams a user holds open, and a rate of checkout and portal sessions (each one a Stripe
//! API call, and Stripe limits the whole account). Also the process's cap on concurrent
//! version diffs.
//!
//! The state is per process (see `docs/security.md` for the factor with several API
//! processes).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use appforge_quota::{Burst, PlanId, RequestRateLimiter, RequestRates};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use http::{HeaderValue, StatusCode, header};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::EdgeConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a user's plan is reused before it is read again: a plan change reaches the
/// request rate within this time.
const PLAN_TTL: Duration = Duration::from_secs(60);

/// Past this many remembered plans, the expired ones are dropped.
const MAX_REMEMBERED_PLANS: usize = 100_000;

/// Every this many checks, users whose allowance is full again are forgotten.
const SHRINK_EVERY: u64 = 10_000;

/// The routes whose answer is an event stream.
const STREAM_ROUTES: &[&str] = &[
    "/api/jobs/{id}/events",
    "/api/chat",
    "/api/orgs/{org}/jobs/{id}/events",
    "/api/orgs/{org}/chat",
    "/api/admin/queues/events",
];

/// The admin's event stream: counted for the operator rather than for a user.
const ADMIN_STREAM: &str = "/api/admin/queues/events";

/// The routes that open a Stripe session.
const BILLING_ROUTES: &[&str] = &[
    "/api/stripe/checkout",
    "/api/stripe/portal",
    "/api/orgs/{org}/billing/checkout",
    "/api/orgs/{org}/billing/portal",
];

/// The per-user limits of one process. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Limits {
    inner: Arc<Inner>,
}

struct Inner {
    requests: RequestRateLimiter,
    billing: RequestRateLimiter,
    max_streams: usize,
    streams: Mutex<HashMap<Owner, usize>>,
    plans: DashMap<Uuid, (PlanId, Instant)>,
    checks: AtomicU64,
    diffs: Arc<Semaphore>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("requests", &self.inner.requests)
            .field("max_streams", &self.inner.max_streams)
            .finish_non_exhaustive()
    }
}

/// Who holds an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Owner {
    User(Uuid),
    Admin,
}

impl Limits {
    /// The limits the settings describe, with each plan's request rate from `plans` (then
    /// `APPFORGE_REQUEST_RATES`'s overrides).
    pub(crate) fn new(edge: &EdgeConfig, plans: &appforge_quota::PlanCatalogue) -> Self {
        let rates = RequestRates::from_catalogue(plans);
        let rates = match &edge.request_rate_overrides {
            // Checked when the settings were read.
            Some(text) => rates.parse_onto(text).expect("valid request rates"),
            None => rates,
        };
        let calls = edge.billing_calls_per_minute.max(1);
        let billing = Burst::new(calls, Duration::from_secs(60), (calls / 2).max(1))
            .expect("a positive rate");
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            inner: Arc::new(Inner {
                requests: RequestRateLimiter::new(rates),
                billing: RequestRateLimiter::new(RequestRates::uniform(billing)),
                max_streams: edge.max_streams_per_user.max(1),
                streams: Mutex::new(HashMap::new()),
                plans: DashMap::new(),
                checks: AtomicU64::new(0),
                diffs: Arc::new(Semaphore::new(cpus)),
            }),
        }
    }

    /// Permits for version diffs, one per CPU: diffs are CPU work on blocking threads.
    pub(crate) fn diffs(&self) -> &Arc<Semaphore> {
        &self.inner.diffs
    }

    /// The user's plan, read from the quota at most once per [`PLAN_TTL`].
    async fn plan_of(&self, state: &AppState, user: Uuid) -> PlanId {
        let now = Instant::now();
        if let Some(entry) = self.inner.plans.get(&user)
            && entry.1 > now
        {
            return entry.0.clone();
        }
        let plan = match state.quota().plan_of(user).await {
            Ok(plan) => plan.id,
            Err(error) => {
                tracing::debug!(%error, "reading a plan for the request rate failed");
                state.quota().catalogue().default_plan().id.clone()
            }
        };
        let plans = &self.inner.plans;
        plans.insert(user, (plan.clone(), now + PLAN_TTL));
        if plans.len() > MAX_REMEMBERED_PLANS {
            plans.retain(|_, (_, until)| *until > now);
        }
        plan
    }

    fn count_check(&self) {
        if self.inner.checks.fetch_add(1, Ordering::Relaxed) % SHRINK_EVERY == SHRINK_EVERY - 1 {
            self.inner.requests.shrink();
            self.inner.billing.shrink();
        }
    }

    /// A stream slot for `owner`, or `None` when they hold the most already.
    fn open_stream(&self, owner: Owner) -> Option<StreamSlot> {
        let mut open = self.inner.streams.lock();
        let count = open.entry(owner).or_insert(0);
        if *count >= self.inner.max_streams {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            limits: self.clone(),
            owner,
        })
    }
}

/// An open event stream, counted until it is dropped.
struct StreamSlot {
    limits: Limits,
    owner: Owner,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.limits.inner.streams.lock();
        if let Some(count) = open.get_mut(&self.owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.owner);
            }
        }
    }
}

/// The user a request's bearer token names, when it is a valid user token.
fn user_of(state: &AppState, request: &Request) -> Option<Uuid> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    state.jwt().verify(token).ok().map(|claims| claims.sub)
}

/// `429` with `Retry-After` (whole seconds, rounded up).
fn too_many(limit: &'static str, message: String, wait: Option<Duration>) -> Response {
    let mut details = json!({ "limit": limit });
    let seconds = wait.map(|w| w.as_secs() + u64::from(w.subsec_nanos() > 0));
    if let Some(seconds) = seconds {
        details["retryAfter"] = json!(seconds);
    }
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        .with_details(details)
        .into_response();
    if let Some(seconds) = seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

/// Middleware (a route layer, so that the matched route is known): applies the limits,
/// and hands the [`Limits`] to the handlers as a request extension.
pub(crate) async fn layer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let limits = state.limits().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let user = user_of(&state, &request);
    if let Some(user) = user {
        let plan = limits.plan_of(&state, user).await;
        limits.count_check();
        if let Err(wait) = limits.inner.requests.check(&plan, user) {
            state.metrics().rate_limited("requests");
            return too_many(
                "requests",
                format!(
                    "too many requests for the {plan} plan: {} a minute",
                    limits.inner.requests.rates().of(&plan).requests
                ),
                Some(wait),
            );
        }
        if BILLING_ROUTES.contains(&route.as_str())
            && let Err(wait) = limits.inner.billing.check(&PlanId::free(), user)
        {
            state.metrics().rate_limited("billing");
            return too_many(
                "billing",
                "too many checkout or portal sessions: try again in a minute".into(),
                Some(wait),
            );
        }
    }
    let owner = match (STREAM_ROUTES.contains(&route.as_str()), user) {
        (true, _) if route == ADMIN_STREAM => Some(Owner::Admin),
        (true, Some(user)) => Some(Owner::User(user)),
        // Without a valid token the handler answers 401.
        _ => None,
    };
    let slot = match owner.map(|owner| limits.open_stream(owner)) {
        Some(None) => {
            state.metrics().rate_limited("streams");
            return too_many(
                "streams",
                format!(
                    "at most {} event streams may be open at once",
                    limits.inner.max_streams
                ),
                None,
            );
        }
        Some(Some(slot)) => Some(slot),
        None => None,
    };
    request.extensions_mut().insert(limits);
    let response = next.run(request).await;
    match slot {
        // The slot lives as long as the stream; a refused request frees it at once.
        Some(slot) if response.status().is_success() => {
            response.map(|body| crate::guarded::guarded(body, slot))
        }
        _ => response,
    }
}
