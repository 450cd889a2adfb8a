//! `POST /api/ai-builder/{full-app,modify,plan-phases}`, a job's own routes
//! (`GET|DELETE /api/jobs/{id}`, `GET /api/jobs/{id}/events`) and `GET /api/quota` (with the
//! member's own count against an org's cap per member), in each space: the library's
//! router (`appforge::axum`), mounted with the server's authentication
//! ([`SpaceAuth`](super::space::SpaceAuth)), its prompt limit, its analytics and metrics.
//! It checks a request against the plan's limits (a `400` naming the field and the limit,
//! nothing reserved), reserves quota, enqueues at the plan's priority and answers
//! `202 {jobId, status}`.
//!
//! The helpers below serve the server's own routes: the admin's retries reserve through them,
//! and the uploads read the plan.

use appforge::axum::{Api, ApiEvent};
use appforge_quota::{Admission, LimitKind, Plan, QuotaStatus, Reservation, Resource};
use axum::Router;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::space::SpaceAuth;
use crate::state::AppState;

/// The library's generation router for the space under `prefix` (`/api` or
/// `/api/orgs/{org}`), without its own document (the server serves one for all): accepted generations go to analytics, refusals to the metrics and analytics.
pub(crate) fn router(prefix: &str, state: &AppState) -> Router<AppState> {
    let events = state.clone();
    Api::new(state.generation().clone(), SpaceAuth(state.clone()))
        .mounted_at(prefix)
        .max_prompt_bytes(state.config().max_prompt_bytes)
        .shutdown(state.shutdown_token().clone())
        .without("/openapi.json")
        .on_event(move |event| match event {
            ApiEvent::Accepted {
                user,
                job,
                kind,
                plan,
                ..
            } => events
                .analytics()
                .requested(*user, (*job).into(), kind, plan.as_str()),
            ApiEvent::Refused {
                user, kind, status, ..
            } => {
                events.metrics().quota_denied();
                events.analytics().quota_denied(*user, kind, status);
            }
            _ => {}
        })
        .router()
        .with_state(())
}

/// Reserves one `resource` for the user: the reservation, or the `429` to answer (see
/// [`quota_denied`]).
///
/// # Errors
///
/// The quota store's error, as a `500`.
pub(crate) async fn reserve(
    state: &AppState,
    user: Uuid,
    resource: Resource,
    kind: &str,
) -> Result<Result<Reservation, Response>, ApiError> {
    match state
        .quota()
        .reserve_for(user, resource, 1)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        Admission::Granted(reservation) => Ok(Ok(reservation)),
        Admission::Denied(status) => Ok(Err(quota_denied(state, user, kind, &status))),
    }
}

/// A quota denial: `429` with `Retry-After`, `error: "quota_exceeded"`, a message naming the
/// limit and the user's [`QuotaStatus`] (every window, `deniedBy`) as `details`; counted in
/// metrics and analytics.
pub(crate) fn quota_denied(
    state: &AppState,
    user: Uuid,
    kind: &str,
    status: &QuotaStatus,
) -> Response {
    let limit = match status.denied_by {
        Some(LimitKind::Monthly) => "monthly generation limit",
        Some(LimitKind::Tokens) => "monthly token limit",
        Some(LimitKind::Burst) => "burst limit",
        Some(LimitKind::ChatMessages) => "daily chat message limit",
        _ => "daily generation limit",
    };
    let message = format!("your plan's {limit} is reached");
    too_many(state, user, kind, status, "quota_exceeded", message)
}

/// A `429` for a quota `status` that refused: counted in metrics and analytics, with
/// `Retry-After` and the status as `details`.
fn too_many(
    state: &AppState,
    user: Uuid,
    kind: &str,
    status: &QuotaStatus,
    code: &'static str,
    message: String,
) -> Response {
    state.metrics().quota_denied();
    state.analytics().quota_denied(user, kind, status);
    let retry = status.retry_after_secs().unwrap_or(60).max(1);
    let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        .with_details(serde_json::to_value(status).unwrap_or(Value::Null));
    ([(header::RETRY_AFTER, retry.to_string())], error).into_response()
}

/// The plan of a quota subject (a user, or an org for its space), whose request limits a
/// request is checked against.
///
/// # Errors
///
/// The quota store's error, as a `500`.
pub(crate) async fn plan_of(state: &AppState, subject: Uuid) -> Result<Plan, ApiError> {
    state
        .quota()
        .plan_of(subject)
        .await
        .map_err(|e| ApiError::internal(&e))
}
