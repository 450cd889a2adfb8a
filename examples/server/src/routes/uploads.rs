//! `POST /api/uploads`, `GET /api/uploads/{id}`, `DELETE /api/uploads/{id}`: reference images
//! a user attaches to a generation or a chat message (`attachments: [uploadId, ...]`).
//!
//! An upload is the raw image as the request body, or the one file part of a
//! `multipart/form-data` body (a form's file field); its content type is not trusted: the
//! bytes decide. It is checked, re-encoded and stored by `appforge-uploads` against the
//! plan's storage allowance; only its owner reads it back, as an image that a browser never
//! sniffs into anything else.
//!
//! The images a request attaches also count against the plan's request size
//! ([`check_request_tokens`]); a saved version records the images its generation attached.

use appforge_quota::Plan;
use appforge_uploads::{Error as UploadError, Upload};
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{FromRequest, Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::generate::plan_of;
use crate::routes::{IdParam, Space};
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
fn describe(upload: &Upload, space: &Space) -> serde_json::Value {
    let mut value = json!(upload);
    value["url"] = json!(format!("{}/uploads/{}", space.prefix(), upload.id));
    value
}

pub(crate) async fn create(
    State(state): State<AppState>,
    space: Space,
    request: Request,
) -> Result<Response, ApiError> {
    let max = state.config().uploads.max_bytes;
    let body = if is_multipart(request.headers()) {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| invalid_multipart(&e.body_text()))?;
        file_part(multipart, max).await?
    } else {
        Bytes::from_request(request, &state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                over_body_limit(max)
            } else {
                ApiError::bad_request(format!("cannot read the body: {}", e.body_text()))
            }
        })?
    };
    let plan = plan_of(&state, space.quota_subject()).await?;
    let allowance = plan.storage_bytes.unwrap_or(u64::MAX);
    let upload = state
        .uploads()
        .upload(space.owner.id(), &body, allowance)
        .await
        .map_err(|e| upload_error(&e, &plan))?;
    let location = HeaderValue::from_str(&format!("{}/uploads/{}", space.prefix(), upload.id))
        .map_err(|e| ApiError::internal(&e))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(describe(&upload, &space)),
    )
        .into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    let (upload, bytes) = state
        .uploads()
        .read(space.owner.id(), id)
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
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<StatusCode, ApiError> {
    let id = upload_id(&id)?;
    state
        .uploads()
        .delete(space.owner.id(), id)
        .await
        .map_err(|e| upload_error(&e, &Plan::free()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The name of the form field a browser form sends the image in; any part with a file name
/// is taken as the file as well.
const FILE_FIELD: &str = "file";

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.get(..19)
                .is_some_and(|t| t.eq_ignore_ascii_case("multipart/form-data"))
        })
}

/// The bytes of the one file part of a multipart body: a part named [`FILE_FIELD`] or with a
/// file name. Other parts (a form's text fields) are read past. The part is read only up to
/// `max` bytes and one more, so an oversized file is refused as soon as it passes the limit.
///
/// # Errors
///
/// `400 missing_file` without a file part, `400 too_many_files` with two (nothing is stored
/// then either), `413 too_large` for a file over `max` or a body over the route's limit,
/// `400 invalid_multipart` for a malformed body.
async fn file_part(mut multipart: Multipart, max: u64) -> Result<Bytes, ApiError> {
    let mut file: Option<Bytes> = None;
    let mut parts = 0u32;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e, max))?
    {
        parts += 1;
        let is_file = field.file_name().is_some() || field.name() == Some(FILE_FIELD);
        if !is_file {
            // Read past it: the body limit bounds what a text field can hold.
            while field
                .chunk()
                .await
                .map_err(|e| multipart_error(&e, max))?
                .is_some()
            {}
            continue;
        }
        if file.is_some() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "too_many_files",
                "the multipart body holds more than one file part: send one image per upload",
            )
            .with_details(json!({ "field": field.name(), "part": parts })));
        }
        let mut bytes = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e, max))? {
            bytes.extend_from_slice(&chunk);
            let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            if size > max {
                return Err(too_large(size, max));
            }
        }
        file = Some(bytes.freeze());
    }
    file.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_file",
            format!(
                "the multipart body has no file part: send the image as a part named `{FILE_FIELD}` \
                 with a file name"
            ),
        )
        .with_details(json!({ "field": FILE_FIELD }))
    })
}

/// A multipart body that cannot be read: over the route's body limit it is the named
/// `too_large` of an upload, otherwise a `400 invalid_multipart`.
fn multipart_error(error: &MultipartError, max: u64) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        over_body_limit(max)
    } else {
        invalid_multipart(&error.body_text())
    }
}

/// A body cut at the route's limit ([`body_limit`]): its size is not known, only that the
/// upload in it is over `max`.
fn over_body_limit(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the upload is larger than the limit of {max} bytes"),
    )
    .with_details(json!({ "max": max }))
}

fn invalid_multipart(text: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_multipart",
        format!("the upload's body cannot be read: {text}"),
    )
}

fn too_large(size: u64, max: u64) -> ApiError {
    upload_error(&UploadError::TooLarge { size, max }, &Plan::free())
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
