//! `/api/orgs/{org}/api-keys`: create (the key shown once), list, revoke.

use appforge_orgs::{ApiKey, NewApiKey, Permission, Role};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OrgCaller, api_error, path_id};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// An API key as the API shows it: its prefix, never the key.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KeyView {
    id: Uuid,
    name: String,
    role: Role,
    prefix: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name,
            role: key.role,
            prefix: key.prefix,
            created_by: key.created_by,
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// The body of `POST /api/orgs/{org}/api-keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CreateKey {
    name: String,
    role: Role,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// `POST /api/orgs/{org}/api-keys` (`manage_api_keys`, a signed-in user, a role no higher
/// than theirs): answers the key (`token`) this once.
pub(super) async fn create(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Json(body): Json<CreateKey>,
) -> Result<Response, ApiError> {
    let org = path_id(&org, "organization")?;
    let orgs = state.orgs();
    // A key of another org learns nothing: 404 before 403.
    orgs.authorize(&caller.caller, org, Permission::ManageApiKeys)
        .await
        .map_err(api_error)?;
    caller.user()?;
    let mut new = NewApiKey::new(body.name, body.role);
    if let Some(at) = body.expires_at {
        new = new.expires_at(at);
    }
    let created = orgs
        .create_api_key(&caller.caller, org, new)
        .await
        .map_err(api_error)?;
    let body = serde_json::json!({
        "key": KeyView::from(created.key),
        "token": created.token.expose(),
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `GET /api/orgs/{org}/api-keys` (`manage_api_keys`).
pub(super) async fn list(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let keys = state
        .orgs()
        .api_keys(&caller.caller, org)
        .await
        .map_err(api_error)?;
    let keys: Vec<KeyView> = keys.into_iter().map(KeyView::from).collect();
    Ok(axum::Json(serde_json::json!({ "keys": keys })))
}

/// `DELETE /api/orgs/{org}/api-keys/{id}` (`manage_api_keys`): the key stops working on the
/// next request.
pub(super) async fn revoke(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
) -> Result<axum::Json<KeyView>, ApiError> {
    let org = path_id(&org, "organization")?;
    let id = path_id(&id, "API key")?;
    let key = state
        .orgs()
        .revoke_api_key(&caller.caller, org, id)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(key.into()))
}
