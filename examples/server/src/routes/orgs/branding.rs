//! `/api/orgs/{org}/branding`: an org's display name, primary colour and logo, set by admins
//! (`manage_settings`) and read by members; `/p/{slug}/logo`: the logo of the org that
//! published an app, for anyone with the app's address.
//!
//! A logo is checked by its bytes (PNG, JPEG or WebP; SVG and anything else is `415`), at
//! most [`MAX_LOGO_BYTES`], decoded and encoded again by the uploads checker
//! ([`ImagePolicy::validate`]) so that only pixels are stored, and served with its own
//! content type, `nosniff` and `inline`.

use appforge_orgs::{Branding, Logo, MAX_LOGO_BYTES, OrgStore, Permission};
use appforge_uploads::{ImagePolicy, MediaType};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{OrgCaller, api_error, path_id};
use crate::db::Database;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// The largest side of a logo, in pixels.
const MAX_LOGO_SIDE: u32 = 2_048;

/// The body of `PUT /api/orgs/{org}/branding`: absent, `null` or empty unsets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct UpdateBranding {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    primary_color: Option<String>,
}

/// The branding as the API shows it, with where its logo is read.
fn describe(branding: &Branding) -> Value {
    let mut value = json!(branding);
    if branding.logo.is_some() {
        value["logo"]["url"] = json!(format!("/api/orgs/{}/branding/logo", branding.org_id));
    }
    value
}

/// `GET /api/orgs/{org}/branding` (`read_apps`).
pub(super) async fn get(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let branding = state
        .orgs()
        .branding(&caller.caller, org)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(describe(&branding)))
}

/// `PUT /api/orgs/{org}/branding` (`manage_settings`): display name and primary colour.
pub(super) async fn put(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Json(body): Json<UpdateBranding>,
) -> Result<axum::Json<Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let branding = state
        .orgs()
        .set_branding(
            &caller.caller,
            org,
            body.display_name.as_deref(),
            body.primary_color.as_deref(),
        )
        .await
        .map_err(api_error)?;
    Ok(axum::Json(describe(&branding)))
}

/// `PUT /api/orgs/{org}/branding/logo` (`manage_settings`): the image is the raw body.
pub(super) async fn put_logo(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    // Who may, before anything is decoded.
    state
        .orgs()
        .authorize(&caller.caller, org, Permission::ManageSettings)
        .await
        .map_err(api_error)?;
    let logo = checked_logo(body).await?;
    let branding = state
        .orgs()
        .set_logo(&caller.caller, org, &logo)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(describe(&branding)))
}

/// `DELETE /api/orgs/{org}/branding/logo` (`manage_settings`).
pub(super) async fn delete_logo(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let branding = state
        .orgs()
        .delete_logo(&caller.caller, org)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(describe(&branding)))
}

/// `GET /api/orgs/{org}/branding/logo` (`read_apps`).
pub(super) async fn get_logo(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Response, ApiError> {
    let org = path_id(&org, "organization")?;
    let logo = state
        .orgs()
        .logo(&caller.caller, org)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found("logo"))?;
    Ok(serve(logo, "private, max-age=300"))
}

/// `GET /p/{slug}/logo`: the logo of the org that published the app at `slug`, for anyone.
pub(crate) async fn published_logo(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let org = published_org(&state, &slug)
        .await?
        .ok_or_else(|| ApiError::not_found("logo"))?;
    let logo = state
        .orgs()
        .logo_of(org)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found("logo"))?;
    Ok(serve(logo, "public, max-age=300"))
}

/// What the public page of the app published at `slug` shows of its org: the display name
/// (the org's name when unset), the primary colour and the public logo path; `None` for an
/// app of a personal space.
pub(crate) async fn published_branding(
    state: &AppState,
    slug: &str,
) -> Result<Option<Value>, ApiError> {
    let Some(org) = published_org(state, slug).await? else {
        return Ok(None);
    };
    let orgs = state.orgs();
    let Some(record) = orgs.store().get_org(org).await.map_err(api_error)? else {
        return Ok(None);
    };
    let branding = orgs.branding_of(org).await.map_err(api_error)?;
    let logo_url = branding.logo.as_ref().map(|_| format!("/p/{slug}/logo"));
    Ok(Some(json!({
        "name": branding.display_name.unwrap_or(record.name),
        "primaryColor": branding.primary_color,
        "logoUrl": logo_url,
    })))
}

/// The org of the live, published app at `slug`, if it has one.
async fn published_org(state: &AppState, slug: &str) -> Result<Option<Uuid>, ApiError> {
    let org: Option<Option<Uuid>> = match state.db() {
        Database::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT org_id FROM generated_apps \
                 WHERE preview_slug = ? AND preview_enabled AND deleted_at IS NULL",
            )
            .bind(slug)
            .fetch_optional(pool)
            .await
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT org_id FROM generated_apps \
                 WHERE preview_slug = $1 AND preview_enabled AND deleted_at IS NULL",
            )
            .bind(slug)
            .fetch_optional(pool)
            .await
        }
    }
    .map_err(|e| ApiError::internal(&e))?;
    Ok(org.flatten())
}

/// The logo with its own type, `nosniff`, shown inline.
fn serve(logo: Logo, cache: &'static str) -> Response {
    let extension = MediaType::from_mime(&logo.media_type).map_or("img", MediaType::extension);
    let content_type = HeaderValue::from_str(&logo.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"logo.{extension}\""))
        .unwrap_or(HeaderValue::from_static("inline"));
    let etag = HeaderValue::from_str(&format!("\"{}\"", logo.sha256))
        .unwrap_or(HeaderValue::from_static("\"\""));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::ETAG, etag),
        ],
        logo.bytes,
    )
        .into_response()
}

/// The body as a logo: at most [`MAX_LOGO_BYTES`] (`413`), PNG, JPEG or WebP by its bytes
/// (`415`), decoded and encoded again (`422` when it does not decode).
async fn checked_logo(body: Bytes) -> Result<Logo, ApiError> {
    let max = MAX_LOGO_BYTES;
    if body.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a logo is at most {max} bytes, this one is {}", body.len()),
        )
        .with_details(json!({ "max": max, "size": body.len() })));
    }
    if !matches!(
        MediaType::sniff(&body),
        Some(MediaType::Png | MediaType::Jpeg | MediaType::Webp)
    ) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            "a logo is a PNG, JPEG or WebP image (checked from its bytes; SVG is refused)",
        ));
    }
    let policy = ImagePolicy::default()
        .max_bytes(u64::try_from(max).unwrap_or(u64::MAX))
        .max_side(MAX_LOGO_SIDE);
    let image = tokio::task::spawn_blocking(move || policy.validate(&body))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| {
            if e.is_client_error() {
                ApiError::new(
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                    e.code(),
                    e.to_string(),
                )
            } else {
                ApiError::internal(&e)
            }
        })?;
    Logo::new(image.media_type.as_str(), image.bytes.to_vec()).map_err(|e| {
        // Encoded again, a small image can grow past the limit.
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
    })
}
