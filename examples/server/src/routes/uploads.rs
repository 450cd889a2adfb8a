//! `POST /api/uploads`, `GET /api/uploads/{id}`, `DELETE /api/uploads/{id}`: reference images
//! a user attaches to a generation or a chat message (`attachments: [uploadId, ...]`).
//!
//! An upload is the raw image as the request body (its content type is not trusted: the
//! bytes decide). It is checked, re-encoded and stored by `appforge-uploads` against the
//! plan's storage allowance; only its owner reads it back, as an image that a browser never
//! sniffs into anything else.

use appforge_llm::Attachment;
use appforge_quota::Plan;
use appforge_uploads::{Error as UploadError, Upload};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::routes::generate::plan_of;
use crate::state::AppState;

/// How long a browser may keep an upload it read (it never changes; `private`: no shared
/// cache keeps it).
const CACHE_CONTROL: &str = "private, max-age=300";

/// The body limit of `POST /api/uploads` above the upload limit: a larger body is still
/// read up to this and answered with the named `too_large` error.
pub(crate) fn body_limit(state: &AppState) -> usize {
    usize::try_from(state.config().uploads.max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024)
}

/// What an upload answers: its metadata and where to read it.
fn describe(upload: &Upload) -> serde_json::Value {
    let mut value = json!(upload);
    value["url"] = json!(format!("/api/uploads/{}", upload.id));
    value
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    let plan = plan_of(&state, &user).await?;
    let allowance = plan.storage_bytes.unwrap_or(u64::MAX);
    let upload = state
        .uploads()
        .upload(user.id, &body, allowance)
        .await
        .map_err(|e| upload_error(&e, &plan))?;
    let location = HeaderValue::from_str(&format!("/api/uploads/{}", upload.id))
        .map_err(|e| ApiError::internal(&e))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(describe(&upload)),
    )
        .into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    let (upload, bytes) = state
        .uploads()
        .read(user.id, id)
        .await
        .map_err(|e| upload_error(&e, &Plan::free()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(upload.media_type.as_str()),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("inline"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        bytes,
    )
        .into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = upload_id(&id)?;
    state
        .uploads()
        .delete(user.id, id)
        .await
        .map_err(|e| upload_error(&e, &Plan::free()))?;
    Ok(StatusCode::NO_CONTENT)
}

fn upload_id(id: &str) -> Result<Uuid, ApiError> {
    // Not a UUID: no upload of anyone's has this id.
    Uuid::parse_str(id).map_err(|_| ApiError::not_found("upload"))
}

/// An upload refused for what it is answers its status and named code with the message; a
/// storage failure is an internal error.
fn upload_error(error: &UploadError, plan: &Plan) -> ApiError {
    match error {
        UploadError::NotFound(_) => ApiError::not_found("upload"),
        UploadError::QuotaExceeded { used, size, limit } => ApiError::new(
            StatusCode::FORBIDDEN,
            "storage_quota_exceeded",
            format!(
                "the {} plan keeps {limit} bytes of uploads; {used} are used and this one needs {size}",
                plan.id
            ),
        )
        .with_details(json!({ "used": used, "size": size, "limit": limit, "plan": plan.id })),
        e if e.is_client_error() => ApiError::new(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            e.code(),
            e.to_string(),
        ),
        e => ApiError::internal(e),
    }
}

/// Checks a request's `attachments`: at most the plan's `request_limits.attachments`, each a
/// live upload of the user (another user's, a deleted one or a made-up id is a `404`).
///
/// # Errors
///
/// A `400` naming `attachments` and the limit, a `404`, or an internal error.
pub(crate) async fn check_attachments(
    state: &AppState,
    user: &AuthUser,
    plan: &Plan,
    ids: &[Uuid],
) -> Result<Vec<Upload>, ApiError> {
    let max = plan.request_limits.attachments;
    if ids.len() > usize::try_from(max).unwrap_or(usize::MAX) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "invalid field `attachments`: {} images attached, at most {max} allowed on the {} plan \
                 (limit `request_limits.attachments`)",
                ids.len(),
                plan.id
            ),
        )
        .with_details(json!({ "field": "attachments", "limit": "request_limits.attachments", "max": max })));
    }
    let mut uploads = Vec::with_capacity(ids.len());
    for id in ids {
        let upload = state
            .uploads()
            .get(user.id, *id)
            .await
            .map_err(|e| match e {
                UploadError::NotFound(_) => ApiError::not_found("attachment")
                    .with_details(json!({ "field": "attachments", "uploadId": id })),
                e => ApiError::internal(&e),
            })?;
        uploads.push(upload);
    }
    Ok(uploads)
}

/// The images of `ids` as the pipelines take them, read for `owner`.
///
/// # Errors
///
/// The upload error (an upload deleted since the request was accepted is
/// [`UploadError::NotFound`]).
pub(crate) async fn load_attachments(
    state: &AppState,
    owner: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Attachment>, UploadError> {
    let mut attachments = Vec::with_capacity(ids.len());
    for id in ids {
        let (upload, bytes) = state.uploads().read(owner, *id).await?;
        attachments.push(Attachment::new(
            upload.media_type.as_str(),
            bytes.to_vec(),
            upload.width,
            upload.height,
        ));
    }
    Ok(attachments)
}
