//! `POST /api/ai-builder/{full-app,modify,plan-phases}`: reserve quota, enqueue at the plan's
//! priority, answer `202 {jobId, status}`.

use appforge_apps::AppStore;
use appforge_jobs::{NewJob, Priority};
use appforge_llm::{
    AppFile, FullAppRequest, HistoryMessage, ModifyRequest, PhaseContext, PlanRequest,
};
use appforge_quota::Admission;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;
use crate::work::{FULL_APP, MODIFY, PLAN_PHASES};

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
}

/// The saved app a generation builds on: its id, the base version and that version's files.
struct Base {
    app: Uuid,
    version: u32,
    files: Vec<AppFile>,
}

/// Loads the base version of the user's app (404 when it is not theirs or does not exist).
/// The files come from the store, so a body may not carry its own as well.
async fn base(
    state: &AppState,
    user: &AuthUser,
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
        .get_version(user.id, app, version)
        .await
        .map_err(|e| crate::routes::apps::apps_error(&e))?;
    Ok(Some(Base {
        app,
        version: stored.info.number,
        files: stored.files,
    }))
}

fn field_error(field: &str, message: &str) -> ApiError {
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
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Accepted {
    job_id: String,
    status: appforge_jobs::JobStatus,
}

pub(crate) async fn full_app(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<FullAppBody>,
) -> Result<Response, ApiError> {
    check_prompt(&state, &body.prompt)?;
    let base = base(
        &state,
        &user,
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
    };
    submit(
        &state,
        &user,
        FULL_APP,
        &body.prompt,
        to_value(&request),
        target,
    )
    .await
}

pub(crate) async fn modify(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<ModifyBody>,
) -> Result<Response, ApiError> {
    check_prompt(&state, &body.prompt)?;
    let base = base(
        &state,
        &user,
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
    };
    submit(
        &state,
        &user,
        MODIFY,
        &body.prompt,
        to_value(&request),
        target,
    )
    .await
}

pub(crate) async fn plan_phases(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<PlanBody>,
) -> Result<Response, ApiError> {
    check_prompt(&state, &body.prompt)?;
    let request = PlanRequest {
        prompt: body.prompt.clone(),
        history: body.conversation_history,
    };
    submit(
        &state,
        &user,
        PLAN_PHASES,
        &body.prompt,
        to_value(&request),
        None,
    )
    .await
}

fn to_value(request: &impl Serialize) -> Value {
    serde_json::to_value(request).unwrap_or(Value::Null)
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

async fn submit(
    state: &AppState,
    user: &AuthUser,
    kind: &str,
    prompt: &str,
    request: Value,
    target: Option<(Uuid, u32)>,
) -> Result<Response, ApiError> {
    let quota = state.quota();
    let reservation = match quota
        .reserve(user.id, 1)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        Admission::Granted(reservation) => reservation,
        Admission::Denied(status) => {
            state.metrics().quota_denied();
            state.analytics().quota_denied(user.id, kind, &status);
            let retry = status.retry_after_secs().unwrap_or(60).max(1);
            let error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                "your plan's generation limit is reached",
            )
            .with_details(serde_json::to_value(&status).unwrap_or(Value::Null));
            return Ok(([(header::RETRY_AFTER, retry.to_string())], error).into_response());
        }
    };
    let plan = match quota.plan_of(user.id).await {
        Ok(plan) => plan,
        Err(e) => {
            refund(state, reservation.id).await;
            return Err(ApiError::internal(&e));
        }
    };
    let mut payload = json!({
        "prompt": prompt,
        "request": request,
        "reservationId": reservation.id,
        "plan": plan.id,
    });
    if let Some((app, version)) = target {
        payload["appId"] = json!(app);
        payload["baseVersion"] = json!(version);
    }
    let job = NewJob::new(kind, user.id, payload).priority(Priority(plan.priority));
    match state.queue().enqueue(job).await {
        Ok(enqueued) => {
            state
                .analytics()
                .requested(user.id, enqueued.id.into(), kind, plan.id.as_str());
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(Accepted {
                    job_id: enqueued.id.to_string(),
                    status: appforge_jobs::JobStatus::Pending,
                }),
            )
                .into_response())
        }
        Err(e) => {
            refund(state, reservation.id).await;
            Err(ApiError::internal(&e))
        }
    }
}

async fn refund(state: &AppState, id: appforge_quota::ReservationId) {
    if let Err(error) = state.quota().refund(id).await {
        tracing::warn!(%error, "refunding a reservation whose job was not enqueued failed");
    }
}
