//! `/api/orgs/{org}/sso` (the org's OpenID provider: set, read, remove) and
//! `/api/orgs/{org}/scim-token` (create or rotate the SCIM bearer token, shown once).

use appforge_core::ExposeSecret;
use appforge_orgs::{Permission, Role};
use appforge_sso::scim::ScimToken;
use appforge_sso::{NewSsoConfig, SsoConfig};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{OrgCaller, api_error, path_id};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// The SSO service, or `503 sso_unavailable` without `APPFORGE_SECRETS_KEY`.
pub(crate) fn require(state: &AppState) -> Result<&crate::sso::Sso, ApiError> {
    state.sso().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sso_unavailable",
            "single sign-on is not available: the server has no APPFORGE_SECRETS_KEY",
        )
    })
}

/// The answer to an error of the SSO service: `400` for bad settings, `404` for an org
/// without settings, `403 sso_refused` for a refused login, else `500` (logged, not shown).
pub(crate) fn sso_error(error: &appforge_sso::Error) -> ApiError {
    use appforge_sso::Error as E;

    match error {
        E::InvalidArgument(reason) | E::Scim(reason) => ApiError::bad_request(reason.clone()),
        E::NotConfigured(_) => ApiError::not_found("SSO configuration"),
        e if e.is_login_refused() => {
            tracing::info!(error = %e, "SSO login refused");
            ApiError::new(StatusCode::FORBIDDEN, "sso_refused", e.to_string())
        }
        e @ E::Discovery { .. } => {
            tracing::warn!(error = %e, "SSO provider unreachable");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "sso_provider_failed",
                "the identity provider could not be reached",
            )
        }
        other => ApiError::internal(other),
    }
}

/// Domain enforcement: with `enforceDomain`, a member (not an owner) whose token's email is
/// in the org's domains must use a token the org's single sign-on issued (`sso_org`): any
/// other is `403 sso_required`. Non-members are left to the route's `404`; owners keep
/// their access, so that a broken provider can still be fixed or removed.
pub(crate) async fn enforce(
    state: &AppState,
    org: uuid::Uuid,
    user: &crate::auth::AuthUser,
) -> Result<(), ApiError> {
    use appforge_orgs::OrgStore as _;

    let (Some(sso), Some(email)) = (state.sso(), user.email.as_deref()) else {
        return Ok(());
    };
    if user.sso_org == Some(org) {
        return Ok(());
    }
    let Some(config) = sso.service().config(org).await.map_err(|e| sso_error(&e))? else {
        return Ok(());
    };
    if !config.enforce_domain || !config.allows_email(email) {
        return Ok(());
    }
    let member = state
        .orgs()
        .store()
        .member(org, user.id)
        .await
        .map_err(api_error)?;
    match member {
        Some(member) if member.role != Role::Owner => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sso_required",
            "this organization requires signing in through its single sign-on (/auth/sso/start)",
        )),
        _ => Ok(()),
    }
}

/// An org's settings as the API shows them: never the client secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SsoView {
    issuer: String,
    client_id: String,
    allowed_domains: Vec<String>,
    default_role: Role,
    enforce_domain: bool,
    updated_at: DateTime<Utc>,
}

impl From<SsoConfig> for SsoView {
    fn from(config: SsoConfig) -> Self {
        Self {
            issuer: config.issuer,
            client_id: config.client_id,
            allowed_domains: config.allowed_domains,
            default_role: config.default_role,
            enforce_domain: config.enforce_domain,
            updated_at: config.updated_at,
        }
    }
}

/// The body of `PUT /api/orgs/{org}/sso`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PutSso {
    issuer: String,
    client_id: String,
    client_secret: appforge_core::SecretString,
    #[serde(default)]
    allowed_domains: Vec<String>,
    #[serde(default = "member")]
    default_role: Role,
    #[serde(default)]
    enforce_domain: bool,
}

fn member() -> Role {
    Role::Member
}

impl std::fmt::Debug for PutSso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSso")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// `PUT /api/orgs/{org}/sso` (`manage_sso`, a signed-in user): validates (nothing is
/// fetched from the issuer) and stores the settings, the secret sealed; audit
/// `sso.configure`.
pub(super) async fn put(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Json(body): Json<PutSso>,
) -> Result<axum::Json<SsoView>, ApiError> {
    let org = path_id(&org, "organization")?;
    state
        .orgs()
        .authorize(&caller.caller, org, Permission::ManageSso)
        .await
        .map_err(api_error)?;
    caller.user()?;
    let sso = require(&state)?;
    let new = NewSsoConfig::new(
        body.issuer,
        body.client_id,
        body.client_secret.expose_secret(),
    )
    .allowed_domains(body.allowed_domains)
    .default_role(body.default_role)
    .enforce_domain(body.enforce_domain);
    let config = sso
        .service()
        .configure(org, new)
        .await
        .map_err(|e| sso_error(&e))?;
    let view = SsoView::from(config);
    state
        .orgs()
        .record(
            &caller.caller,
            org,
            "sso.configure",
            None,
            json!({
                "issuer": view.issuer,
                "clientId": view.client_id,
                "allowedDomains": view.allowed_domains,
                "defaultRole": view.default_role,
                "enforceDomain": view.enforce_domain,
            }),
        )
        .await
        .map_err(api_error)?;
    Ok(axum::Json(view))
}

/// `GET /api/orgs/{org}/sso` (`manage_sso`): `{"sso": settings}`, `null` when none.
pub(super) async fn get(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    state
        .orgs()
        .authorize(&caller.caller, org, Permission::ManageSso)
        .await
        .map_err(api_error)?;
    let sso = require(&state)?;
    let config = sso.service().config(org).await.map_err(|e| sso_error(&e))?;
    Ok(axum::Json(json!({ "sso": config.map(SsoView::from) })))
}

/// `DELETE /api/orgs/{org}/sso` (`manage_sso`, a signed-in user): `204`; audit
/// `sso.remove` with whether there were settings.
pub(super) async fn delete(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<StatusCode, ApiError> {
    let org = path_id(&org, "organization")?;
    state
        .orgs()
        .authorize(&caller.caller, org, Permission::ManageSso)
        .await
        .map_err(api_error)?;
    caller.user()?;
    let sso = require(&state)?;
    let removed = sso
        .service()
        .remove_config(org)
        .await
        .map_err(|e| sso_error(&e))?;
    state
        .orgs()
        .record(
            &caller.caller,
            org,
            "sso.remove",
            None,
            json!({ "removed": removed }),
        )
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/orgs/{org}/scim-token` (`manage_sso`, a signed-in user): a new SCIM bearer
/// token, answered this once (`token`) and kept as its SHA-256; the previous one stops
/// working. Audit `sso.scim_token`.
pub(super) async fn scim_token(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Response, ApiError> {
    let org = path_id(&org, "organization")?;
    state
        .orgs()
        .authorize(&caller.caller, org, Permission::ManageSso)
        .await
        .map_err(api_error)?;
    caller.user()?;
    let sso = require(&state)?;
    let token = ScimToken::generate();
    sso.set_scim_token(org, &token.hash)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    state
        .orgs()
        .record(&caller.caller, org, "sso.scim_token", None, json!({}))
        .await
        .map_err(api_error)?;
    let body = json!({ "token": token.secret.expose_secret() });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}
