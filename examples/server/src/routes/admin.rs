//! The operator API behind the admin token: queue statistics (`GET /api/admin/queues`, and
//! live as SSE at `/api/admin/queues/events`), every user's jobs (`GET /api/admin/jobs`), and
//! retry or cancel of any job. A retry is paid for like a new generation: it takes a fresh
//! reservation of the job's owner (`429` with the quota body when their plan has none left),
//! unless the operator runs it free with `?free=true`, which the job (`payload.freeRetry`) and
//! the audit log (the `audit` tracing target) record.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::str::FromStr;
use std::time::Duration;

use appforge::generation::analytics::priority_label;
use appforge_jobs::{
    Alert, AlertPolicy, Job, JobFilter, JobId, JobStatus, JobStore, PageRequest, QueueStats,
    WorkerInfo,
};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures::{Stream, StreamExt};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::routes::jobs::{JobSummary, JobView};
use crate::state::AppState;

/// The window of the counts, rates and durations unless `?window=` says otherwise.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// A worker pool silent for longer than this is not live.
const STALE_AFTER: Duration = Duration::from_secs(30);
/// The chart: one bucket per minute over the last hour.
const SERIES_BUCKET: Duration = Duration::from_secs(60);
const SERIES_BUCKETS: u32 = 60;
/// At most this many finished jobs per status are read for the chart.
const SERIES_MAX_JOBS: usize = 2000;
/// How many recent failures the dashboard shows.
const RECENT_FAILURES: u32 = 10;
/// How often the live stream sends fresh statistics.
const LIVE_EVERY: Duration = Duration::from_secs(3);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct StatsQuery {
    /// The window in seconds (10 to 86400).
    window: Option<u64>,
}

/// The dashboard's picture of the queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueueReport {
    generated_at: DateTime<Utc>,
    window_seconds: u64,
    depth: Vec<DepthRow>,
    totals: BTreeMap<&'static str, u64>,
    completed_in_window: u64,
    failed_in_window: u64,
    failure_rate: f64,
    duration_p50_ms: Option<u64>,
    duration_p95_ms: Option<u64>,
    oldest_pending_age_seconds: Option<u64>,
    expired_leases: u64,
    live_workers: u64,
    workers: Vec<WorkerRow>,
    alerts: Vec<Alert>,
    recent_failures: Vec<FailureRow>,
    series: Series,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DepthRow {
    status: JobStatus,
    priority: i16,
    plan: String,
    count: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkerRow {
    id: String,
    name: String,
    started_at: DateTime<Utc>,
    last_heartbeat: DateTime<Utc>,
    heartbeat_age_seconds: u64,
    live: bool,
    concurrency: u32,
    running: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FailureRow {
    id: String,
    kind: String,
    user_id: String,
    status: JobStatus,
    error: Option<String>,
    attempt: u32,
    max_attempts: u32,
    completed_at: Option<DateTime<Utc>>,
}

/// Jobs finished per bucket, oldest bucket first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Series {
    bucket_seconds: u64,
    points: Vec<Point>,
    /// Whether more finished jobs existed than were read (the counts are then lower bounds).
    truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Point {
    at: DateTime<Utc>,
    completed: u64,
    failed: u64,
}

fn window_of(query: &StatsQuery) -> Result<Duration, ApiError> {
    match query.window {
        None => Ok(DEFAULT_WINDOW),
        Some(secs) if (10..=86_400).contains(&secs) => Ok(Duration::from_secs(secs)),
        Some(_) => Err(ApiError::bad_request(
            "`window` must be between 10 and 86400 seconds",
        )),
    }
}

fn internal(error: &appforge_jobs::Error) -> ApiError {
    ApiError::internal(error)
}

/// Builds the report: statistics, workers, alerts, recent failures and the chart's series.
pub(crate) async fn report(state: &AppState, window: Duration) -> Result<QueueReport, ApiError> {
    let queue = state.queue();
    let now = Utc::now();
    let stats: QueueStats = queue
        .stats_over(window, STALE_AFTER)
        .await
        .map_err(|e| internal(&e))?;
    let mut policy = AlertPolicy::default();
    policy.window = window;
    let alerts = queue
        .check_alerts(&policy)
        .await
        .map_err(|e| internal(&e))?;
    let workers = queue
        .store()
        .workers()
        .await
        .map_err(|e| internal(&e))?
        .into_iter()
        .map(|w| worker_row(w, now))
        .collect();
    let failed = queue
        .list_all(
            &JobFilter::default().status(JobStatus::Failed),
            None,
            &PageRequest::first(RECENT_FAILURES),
        )
        .await
        .map_err(|e| internal(&e))?;
    let recent_failures = failed.items.iter().map(failure_row).collect();
    let series = series(state, now).await?;
    let mut totals = BTreeMap::new();
    for status in [
        JobStatus::Pending,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ] {
        totals.insert(status.as_str(), stats.count(status));
    }
    Ok(QueueReport {
        generated_at: now,
        window_seconds: window.as_secs(),
        depth: stats
            .depth
            .iter()
            .map(|d| DepthRow {
                status: d.status,
                priority: d.priority.0,
                plan: priority_label(d.priority.0),
                count: d.count,
            })
            .collect(),
        totals,
        completed_in_window: stats.completed_in_window,
        failed_in_window: stats.failed_in_window,
        failure_rate: stats.failure_rate,
        duration_p50_ms: stats.duration_p50_ms,
        duration_p95_ms: stats.duration_p95_ms,
        oldest_pending_age_seconds: stats.oldest_pending_age.map(|d| d.as_secs()),
        expired_leases: stats.expired_leases,
        live_workers: stats.live_workers,
        workers,
        alerts,
        recent_failures,
        series,
    })
}

fn worker_row(w: WorkerInfo, now: DateTime<Utc>) -> WorkerRow {
    let age = (now - w.last_heartbeat).to_std().unwrap_or_default();
    WorkerRow {
        id: w.id.to_string(),
        name: w.name,
        started_at: w.started_at,
        last_heartbeat: w.last_heartbeat,
        heartbeat_age_seconds: age.as_secs(),
        live: age <= STALE_AFTER,
        concurrency: w.concurrency,
        running: w.running,
    }
}

fn failure_row(job: &Job) -> FailureRow {
    FailureRow {
        id: job.id.to_string(),
        kind: job.kind.clone(),
        user_id: job.user_id.to_string(),
        status: job.status,
        error: job.error.clone(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        completed_at: job.completed_at,
    }
}

/// Completed and failed jobs per minute over the last hour, read from the store so that
/// every process (and a restart) draws the same chart.
async fn series(state: &AppState, now: DateTime<Utc>) -> Result<Series, ApiError> {
    let bucket = TimeDelta::from_std(SERIES_BUCKET).unwrap_or(TimeDelta::minutes(1));
    let end = now.duration_trunc(bucket).unwrap_or(now) + bucket;
    let start = end - bucket * i32::try_from(SERIES_BUCKETS).unwrap_or(60);
    let mut points: Vec<Point> = (0..SERIES_BUCKETS)
        .map(|i| Point {
            at: start + bucket * i32::try_from(i).unwrap_or(0),
            completed: 0,
            failed: 0,
        })
        .collect();
    let mut truncated = false;
    for status in [JobStatus::Completed, JobStatus::Failed] {
        let filter = JobFilter::default().status(status);
        let mut page = PageRequest::first(100);
        let mut read = 0usize;
        loop {
            let got = state
                .queue()
                .list_all(&filter, Some(start), &page)
                .await
                .map_err(|e| internal(&e))?;
            read += got.items.len();
            for job in &got.items {
                let Some(at) = job.completed_at else { continue };
                let offset = (at - start).num_seconds() / bucket.num_seconds().max(1);
                if let Some(point) = usize::try_from(offset).ok().and_then(|i| points.get_mut(i)) {
                    match status {
                        JobStatus::Completed => point.completed += 1,
                        _ => point.failed += 1,
                    }
                }
            }
            match got.next {
                Some(cursor) if read < SERIES_MAX_JOBS => page = PageRequest::after(100, cursor),
                Some(_) => {
                    truncated = true;
                    break;
                }
                None => break,
            }
        }
    }
    Ok(Series {
        bucket_seconds: SERIES_BUCKET.as_secs(),
        points,
        truncated,
    })
}

pub(crate) async fn queues(
    State(state): State<AppState>,
    _admin: AdminAuth,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<QueueReport>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let window = window_of(&query)?;
    Ok(axum::Json(report(&state, window).await?))
}

/// A `stats` event with the report at once, then every few seconds until the client leaves
/// or the server stops.
pub(crate) async fn queue_events(
    State(state): State<AppState>,
    _admin: AdminAuth,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let window = window_of(&query)?;
    let live = state.clone();
    let stream = async_stream::stream! {
        let mut tick = tokio::time::interval(LIVE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match report(&live, window).await {
                Ok(report) => {
                    let data = serde_json::to_string(&report).unwrap_or_default();
                    yield Ok(Event::default().event("stats").data(data));
                }
                Err(_) => {
                    yield Ok(Event::default().event("unavailable").data("{}"));
                }
            }
        }
    };
    let stream = stream.take_until(state.shutdown_token().clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AllJobsQuery {
    status: Option<JobStatus>,
    kind: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
    /// RFC 3339: only jobs finished at or after this time.
    finished_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AllJobs {
    items: Vec<AdminJobSummary>,
    next_cursor: Option<String>,
}

/// A job in the operators' list: the user's list summary (no result, the prompt cut short)
/// plus its owner.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdminJobSummary {
    user_id: String,
    max_attempts: u32,
    #[serde(flatten)]
    job: JobSummary,
}

impl From<&Job> for AdminJobSummary {
    fn from(job: &Job) -> Self {
        Self {
            user_id: job.user_id.to_string(),
            max_attempts: job.max_attempts,
            job: JobSummary::from(job),
        }
    }
}

/// A job as operators see it: the user's view plus its owner.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdminJobView {
    user_id: String,
    max_attempts: u32,
    #[serde(flatten)]
    job: JobView,
}

impl From<&Job> for AdminJobView {
    fn from(job: &Job) -> Self {
        Self {
            user_id: job.user_id.to_string(),
            max_attempts: job.max_attempts,
            job: JobView::from(job),
        }
    }
}

pub(crate) async fn jobs(
    State(state): State<AppState>,
    _admin: AdminAuth,
    query: Result<Query<AllJobsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<AllJobs>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let (filter, page) =
        crate::routes::jobs::filter_and_page(query.status, query.kind, query.limit, query.cursor)?;
    let page = state
        .queue()
        .list_all(&filter, query.finished_since, &page)
        .await
        .map_err(|e| internal(&e))?;
    Ok(axum::Json(AllJobs {
        items: page.items.iter().map(AdminJobSummary::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}

fn job_id(raw: &str) -> Result<JobId, ApiError> {
    JobId::from_str(raw).map_err(|_| ApiError::not_found("job"))
}

fn write_error(error: &appforge_jobs::Error, action: &str) -> ApiError {
    if error.is_not_found() {
        ApiError::not_found("job")
    } else if error.is_illegal_transition() {
        ApiError::new(
            StatusCode::CONFLICT,
            "illegal_transition",
            format!("the job cannot be {action} in its current status"),
        )
    } else {
        ApiError::internal(error)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RetryQuery {
    /// Run it without charging the owner's plan.
    #[serde(default)]
    free: bool,
}

/// Runs a failed or cancelled job again with fresh attempts, on a fresh reservation of its
/// owner's plan (or free with `?free=true`); 409 for any other status, 429 with the quota body
/// when the owner's plan refuses.
pub(crate) async fn retry(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(id): Path<String>,
    query: Result<Query<RetryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;

    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let id = job_id(&id)?;
    let job = state
        .queue()
        .get_any(id)
        .await
        .map_err(|e| write_error(&e, "retried"))?;
    if !matches!(job.status, JobStatus::Failed | JobStatus::Cancelled) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "illegal_transition",
            "the job cannot be retried in its current status",
        ));
    }
    let mut payload = job.payload.clone();
    let reservation = if query.free {
        None
    } else {
        // The space's quota pays: the user's, or the org's pool for an org's job.
        let reserved = crate::routes::generate::reserve(
            &state,
            job.owner().id(),
            appforge_quota::Resource::Generation,
            &job.kind,
        )
        .await?;
        match reserved {
            Ok(reservation) => Some(reservation),
            Err(denied) => return Ok(denied),
        }
    };
    if let Value::Object(map) = &mut payload {
        map.insert(
            "reservationId".into(),
            reservation.as_ref().map_or(Value::Null, |r| json!(r.id)),
        );
        if let Some(r) = &reservation {
            map.insert("plan".into(), json!(r.plan));
        }
        map.insert("freeRetry".into(), json!(query.free));
    }
    let retried = match state.queue().retry_with_payload(id, payload).await {
        Ok(job) => job,
        Err(error) => {
            if let Some(r) = &reservation
                && let Err(e) = state.quota().refund(r.id).await
            {
                tracing::warn!(%e, "refunding the reservation of a refused retry failed");
            }
            return Err(write_error(&error, "retried"));
        }
    };
    if let Some(r) = &reservation
        && let Err(error) = state.quota().hold(r.id, id.into()).await
    {
        tracing::warn!(job = %id, %error, "holding the retried job's reservation failed");
    }
    tracing::info!(
        target: "audit",
        action = "retry",
        job = %retried.id,
        user = %retried.user_id,
        free = query.free,
        reservation = ?reservation.as_ref().map(|r| r.id),
        "operator retried a job"
    );
    audit_in_org(
        &state,
        &retried,
        "admin.job_retry",
        json!({ "free": query.free }),
    )
    .await;
    Ok(axum::Json(AdminJobView::from(&retried)).into_response())
}

/// Records an operator's action on an org's job in the org's audit log (as the system: the
/// operator is not a member); a personal job's is only logged. A failure to record is logged,
/// the action stands.
async fn audit_in_org(state: &AppState, job: &Job, action: &str, detail: Value) {
    let Some(org) = job.org_id else {
        return;
    };
    let caller = appforge_orgs::Caller::system();
    if let Err(error) = state
        .orgs()
        .record(&caller, org, action, Some(job.id.to_string()), detail)
        .await
    {
        tracing::error!(%org, action, %error, "cannot record an operator's action in the org's audit log");
    }
}

/// Cancels any user's pending or running job; 409 when it already finished.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<AdminJobView>, ApiError> {
    let job = state
        .queue()
        .cancel_any(job_id(&id)?)
        .await
        .map_err(|e| write_error(&e, "cancelled"))?;
    tracing::info!(job = %job.id, "operator cancelled a job");
    audit_in_org(&state, &job, "admin.job_cancel", json!({})).await;
    Ok(axum::Json(AdminJobView::from(&job)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_outside_the_bounds_are_refused() {
        assert_eq!(
            window_of(&StatsQuery { window: None }).unwrap(),
            DEFAULT_WINDOW
        );
        assert!(window_of(&StatsQuery { window: Some(5) }).is_err());
        assert!(
            window_of(&StatsQuery {
                window: Some(100_000)
            })
            .is_err()
        );
        assert_eq!(
            window_of(&StatsQuery { window: Some(60) }).unwrap(),
            Duration::from_secs(60)
        );
    }
}
