//! `POST /api/ai-builder/{full-app,modify,plan-phases}`: check the request against the plan's
//! limits, reserve quota, enqueue at the plan's priority, hold the reservation for the job,
//! answer `202 {jobId, status}`.
//!
//! Everything a job would reject later is checked here first (the paths and sizes of
//! `currentAppState`, the conversation's length, the saved app's existence and ownership):
//! such a request is a `400` naming the field and the limit, and nothing is reserved.

use appforge::generation::limits::{self, LimitError, text_bytes};
use appforge::generation::{Submission, SubmitError};
use appforge_apps::AppStore;
use appforge_llm::{
    AppFile, FullAppRequest, HistoryMessage, ModifyRequest, PhaseContext, PlanRequest,
};
use appforge_quota::{Admission, LimitKind, Plan, QuotaStatus, Reservation, Resource};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Json;
use crate::routes::Space;
use crate::routes::uploads::{check_attachments, check_request_tokens};
use crate::state::AppState;

/// The app a request builds on.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CurrentApp {
    /// The app's files.
    pub(crate) files: Vec<AppFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FullAppBody {
    prompt: String,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    current_app_state: Option<CurrentApp>,
    phase_context: Option<PhaseContext>,
    /// A saved app to build on: the result becomes its next version.
    app_id: Option<Uuid>,
    /// The version of `app_id` to build on (default: its current one).
    base_version: Option<u32>,
    /// Uploads (reference images) to send with the prompt.
    #[serde(default)]
    attachments: Vec<Uuid>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModifyBody {
    prompt: String,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    current_app_state: Option<CurrentApp>,
    /// A saved app to change: the change becomes its next version.
    app_id: Option<Uuid>,
    /// The version of `app_id` the change is made from (default: its current one).
    base_version: Option<u32>,
    /// Uploads (reference images) to send with the prompt.
    #[serde(default)]
    attachments: Vec<Uuid>,
}

/// The saved app a generation builds on: its id, the base version and that version's files.
struct Base {
    app: Uuid,
    version: u32,
    files: Vec<AppFile>,
}

/// Loads the base version of the space's app (404 when it is not in the space or does not
/// exist).
/// The files come from the store, so a body may not carry its own as well; they count
/// against the plan's app size like `currentAppState` would.
async fn base(
    state: &AppState,
    space: &Space,
    plan: &Plan,
    app: Option<Uuid>,
    version: Option<u32>,
    current_app_state: Option<&CurrentApp>,
) -> Result<Option<Base>, ApiError> {
    let Some(app) = app else {
        if version.is_some() {
            return Err(field_error("baseVersion", "requires `appId`"));
        }
        return Ok(None);
    };
    if current_app_state.is_some() {
        return Err(field_error(
            "currentAppState",
            "not allowed with `appId`: the saved version's files are used",
        ));
    }
    let stored = state
        .apps()
        .get_version(space.owner, app, version)
        .await
        .map_err(|e| crate::routes::apps::apps_error(&e))?;
    check_app_size("appId", &stored.files, plan)?;
    Ok(Some(Base {
        app,
        version: stored.info.number,
        files: stored.files,
    }))
}

pub(crate) fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_body",
        format!("invalid field `{field}`: {message}"),
    )
    .with_details(json!({ "field": field }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlanBody {
    prompt: String,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    /// Uploads (reference images) to send with the prompt.
    #[serde(default)]
    attachments: Vec<Uuid>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Accepted {
    job_id: String,
    status: appforge_jobs::JobStatus,
}

pub(crate) async fn full_app(
    State(state): State<AppState>,
    space: Space,
    Json(mut body): Json<FullAppBody>,
) -> Result<Response, ApiError> {
    check_prompt(&state, &body.prompt)?;
    let plan = plan_of(&state, space.quota_subject()).await?;
    check_history(&body.conversation_history, &plan)?;
    let uploads = check_attachments(&state, &space, &plan, &body.attachments).await?;
    if let Some(current) = &mut body.current_app_state {
        check_files("currentAppState.files", &mut current.files, &plan)?;
    }
    if let Some(phase) = &body.phase_context {
        check_phase(phase, &plan)?;
    }
    let base = base(
        &state,
        &space,
        &plan,
        body.app_id,
        body.base_version,
        body.current_app_state.as_ref(),
    )
    .await?;
    let (current_app, target) = match base {
        Some(base) => (Some(base.files), Some((base.app, base.version))),
        None => (body.current_app_state.map(|a| a.files), None),
    };
    let request = FullAppRequest {
        prompt: body.prompt.clone(),
        history: body.conversation_history,
        current_app,
        phase: body.phase_context,
        attachments: Vec::new(),
    };
    let text = text_bytes(
        &request.prompt,
        &request.history,
        request.current_app.as_deref(),
        request.phase.as_ref(),
    );
    check_request_tokens(&state, &plan, text, &uploads)?;
    let submission = Submission::full_app(request).attachments(body.attachments);
    submit(&state, &space, submission, target).await
}

pub(crate) async fn modify(
    State(state): State<AppState>,
    space: Space,
    Json(mut body): Json<ModifyBody>,
) -> Result<Response, ApiError> {
    check_prompt(&state, &body.prompt)?;
    let plan = plan_of(&state, space.quota_subject()).await?;
    check_history(&body.conversation_history, &plan)?;
    let uploads = check_attachments(&state, &space, &plan, &body.attachments).await?;
    if let Some(current) = &mut body.current_app_state {
        check_files("currentAppState.files", &mut current.files, &plan)?;
    }
    let base = base(
        &state,
        &space,
        &plan,
        body.app_id,
        body.base_version,
        body.current_app_state.as_ref(),
    )
    .await?;
    let (app, target) = match (base, body.current_app_state) {
        (Some(base), _) => (base.files, Some((base.app, base.version))),
        (None, Some(current)) => (current.files, None),
        (None, None) => {
            return Err(field_error(
                "currentAppState",
                "required unless `appId` names a saved app",
            ));
        }
    };
    let request = ModifyRequest {
        request: body.prompt.clone(),
        history: body.conversation_history,
        app,
        attachments: Vec::new(),
    };
    let text = text_bytes(&request.request, &request.history, Some(&request.app), None);
    check_request_tokens(&state, &plan, text, &uploads)?;
    let submission = Submission::modify(request).attachments(body.attachments);
    submit(&state, &space, submission, target).await
}

pub(crate) async fn plan_phases(
    State(state): State<AppState>,
    space: Space,
    Json(body): Json<PlanBody>,
) -> Result<Response, ApiError> {
    check_prompt(&state, &body.prompt)?;
    let plan = plan_of(&state, space.quota_subject()).await?;
    check_history(&body.conversation_history, &plan)?;
    let uploads = check_attachments(&state, &space, &plan, &body.attachments).await?;
    let request = PlanRequest {
        prompt: body.prompt.clone(),
        history: body.conversation_history,
        attachments: Vec::new(),
    };
    let text = text_bytes(&request.prompt, &request.history, None, None);
    check_request_tokens(&state, &plan, text, &uploads)?;
    let submission = Submission::plan_phases(request).attachments(body.attachments);
    submit(&state, &space, submission, None).await
}

/// An empty or oversized prompt is a field-level 400.
pub(crate) fn check_prompt(state: &AppState, prompt: &str) -> Result<(), ApiError> {
    let max = state.config().max_prompt_bytes;
    if prompt.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "invalid field `prompt`: must not be empty",
        )
        .with_details(json!({ "field": "prompt" })));
    }
    if prompt.len() > max {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "invalid field `prompt`: {} bytes, at most {max} allowed",
                prompt.len()
            ),
        )
        .with_details(json!({ "field": "prompt" })));
    }
    Ok(())
}

/// Submits through the generation service (reserve, enqueue at the plan's priority, hold the
/// reservation for the job): `202 {jobId, status}`, or the quota's `429`.
async fn submit(
    state: &AppState,
    space: &Space,
    submission: Submission,
    target: Option<(Uuid, u32)>,
) -> Result<Response, ApiError> {
    let kind = submission.kind();
    let submission = match target {
        Some((app, version)) => submission.save_to(app, version),
        None => submission,
    };
    let submission = match space.owner.org() {
        Some(org) => submission
            .in_org(org)
            .member_daily_cap(space.member_daily_cap),
        None => submission,
    };
    match state.generation().submit(space.actor, submission).await {
        Ok(submitted) => {
            state.analytics().requested(
                space.actor,
                submitted.job.into(),
                kind,
                submitted.plan.as_str(),
            );
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(Accepted {
                    job_id: submitted.job.to_string(),
                    status: appforge_jobs::JobStatus::Pending,
                }),
            )
                .into_response())
        }
        Err(SubmitError::Denied(status)) => Ok(quota_denied(state, space.actor, kind, &status)),
        Err(SubmitError::MemberCap(status)) => {
            Ok(member_cap_reached(state, space.actor, kind, &status))
        }
        Err(SubmitError::Quota(e)) => Err(ApiError::internal(&e)),
        Err(e) => Err(ApiError::internal(&e)),
    }
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

/// `429 member_cap_reached`: the member started the org's daily generations per member (the
/// org's pool may have more: other members go on). The details are the cap's count, with
/// `Retry-After` until it resets.
pub(crate) fn member_cap_reached(
    state: &AppState,
    user: Uuid,
    kind: &str,
    status: &QuotaStatus,
) -> Response {
    let cap = status
        .daily
        .limit
        .map_or_else(String::new, |n| format!(" ({n})"));
    let message = format!(
        "you started this organization's daily generations per member{cap}; its admins set the cap"
    );
    too_many(state, user, kind, status, "member_cap_reached", message)
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

/// A request over one of the plan's request limits (or an invalid field): a field-level
/// `400` naming the field, and the limit and its value when it is a plan limit.
pub(crate) fn limit_error(error: &LimitError) -> ApiError {
    let mut details = match (error.limit, error.max) {
        (Some(limit), Some(max)) => json!({ "field": error.field, "limit": limit, "max": max }),
        _ => json!({ "field": error.field }),
    };
    if let Some((estimated, images)) = error.estimated_tokens {
        details["estimatedTokens"] = json!(estimated);
        details["imageTokens"] = json!(images);
    }
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", error.to_string()).with_details(details)
}

/// The conversation history: at most the plan's messages and bytes.
///
/// # Errors
///
/// A `400` naming `conversationHistory` and the limit.
pub(crate) fn check_history(history: &[HistoryMessage], plan: &Plan) -> Result<(), ApiError> {
    limits::check_history(history, plan).map_err(|e| limit_error(&e))
}

/// The files of an app a request carries: every path valid (as the job would save it, so
/// written back normalised), none twice, at most the plan's files and bytes.
///
/// # Errors
///
/// A `400` naming the file's path field, or `field` and the limit.
pub(crate) fn check_files(field: &str, files: &mut [AppFile], plan: &Plan) -> Result<(), ApiError> {
    limits::check_files(field, files, plan).map_err(|e| limit_error(&e))
}

/// An app's size: at most the plan's files and bytes (paths and contents).
fn check_app_size(field: &str, files: &[AppFile], plan: &Plan) -> Result<(), ApiError> {
    limits::check_app_size(field, files, plan).map_err(|e| limit_error(&e))
}

/// The phase context: at most the plan's bytes (as JSON).
fn check_phase(phase: &PhaseContext, plan: &Plan) -> Result<(), ApiError> {
    limits::check_phase(phase, plan).map_err(|e| limit_error(&e))
}
