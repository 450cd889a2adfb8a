//! Signing in through an org's OpenID provider (`/auth/sso/start`, `/auth/sso/callback`),
//! renewing the token it gave (`/auth/refresh`), and SCIM 2.0 provisioning
//! (`/scim/v2/Users`, authenticated by the org's SCIM token; the discovery resources
//! `/scim/v2/ServiceProviderConfig` and `/scim/v2/ResourceTypes` without a token).
//!
//! A login provisions its user just in time: not yet a member, they are added with the
//! org's default role by the system (audit `member.add`, then `sso.provision`). The answer
//! is a redirect to `/#token=<token>`: the pages keep the token as they keep any other
//! (`common.js`), and the fragment never reaches a server log.
//!
//! SCIM deactivation (`active: false` by `PATCH` or `PUT`) and deletion remove the user's membership:
//! every org route checks membership on each request, so the user's next request to the
//! org is refused (404, as for any non-member) whatever token they hold.

use std::time::Duration;

use appforge_orgs::{Caller, OrgStore as _, Role};
use appforge_sso::scim::{
    ListResponse, PatchOp, ResourceType, ScimError, ScimFilter, ScimUser, ServiceProviderConfig,
    USER_SCHEMA,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::orgs::api_error;
use super::orgs::sso::{require, sso_error};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a token issued by a single sign-on (or renewed) is valid.
pub(crate) const SSO_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The media type of SCIM requests and answers.
const SCIM_JSON: &str = "application/scim+json";

/// `/auth/sso/*`, `/auth/refresh` and `/scim/v2/*`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/sso/start", get(start))
        .route("/auth/sso/callback", get(callback))
        .route("/auth/refresh", post(refresh))
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/scim/v2/ResourceTypes", get(resource_types))
        .route("/scim/v2/Users", get(list_users).post(create_user))
        .route(
            "/scim/v2/Users/{id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
}

/// The query of `GET /auth/sso/start`.
#[derive(Debug, Deserialize)]
pub(crate) struct StartQuery {
    org: Option<String>,
}

/// `GET /auth/sso/start?org=<slug or id>`: `302` to the org's provider.
async fn start(
    State(state): State<AppState>,
    Query(query): Query<StartQuery>,
) -> Result<Response, ApiError> {
    let sso = require(&state)?;
    let name = query
        .org
        .filter(|org| !org.is_empty())
        .ok_or_else(|| ApiError::bad_request("the org query parameter is required"))?;
    let org = sso
        .org_named(&name)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let base = state.config().orgs.public_url.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sso_unavailable",
            "single sign-on needs APPFORGE_PUBLIC_URL (the callback address)",
        )
    })?;
    let started = sso
        .service()
        .start(org, &format!("{base}/auth/sso/callback"))
        .await
        .map_err(|e| sso_error(&e))?;
    redirect(StatusCode::FOUND, started.url.as_str())
}

/// The query of `GET /auth/sso/callback`.
#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /auth/sso/callback?state&code`: checks the provider's answer, provisions the user
/// when new, and redirects to `/#token=<token>` (`303`).
async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let sso = require(&state)?;
    if let Some(error) = query.error {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sso_refused",
            format!("the identity provider refused the sign-in: {error}"),
        ));
    }
    let (Some(login_state), Some(code)) = (query.state, query.code) else {
        return Err(ApiError::bad_request(
            "the state and code query parameters are required",
        ));
    };
    let login = sso
        .service()
        .callback(&login_state, &code)
        .await
        .map_err(|e| sso_error(&e))?;
    let org = login.org;
    // A user SCIM created is that user; anyone else is their provider identity.
    let provisioned = sso
        .scim_user_by_email(org, &login.email)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let user = match provisioned {
        Some(scim) if !scim.active => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "sso_deactivated",
                "this account was deactivated by the organization's identity provider",
            ));
        }
        Some(scim) => scim
            .id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| crate::sso::user_id(&login.issuer, &login.subject)),
        None => crate::sso::user_id(&login.issuer, &login.subject),
    };
    let orgs = state.orgs();
    let member = orgs.store().member(org, user).await.map_err(api_error)?;
    if member.is_none() {
        let system = Caller::system();
        orgs.add_member(&system, org, user, login.default_role)
            .await
            .map_err(api_error)?;
        orgs.record(
            &system,
            org,
            "sso.provision",
            Some(format!("user:{user}")),
            json!({
                "email": login.email,
                "issuer": login.issuer,
                "subject": login.subject,
                "role": login.default_role,
            }),
        )
        .await
        .map_err(api_error)?;
    }
    let token = state
        .jwt()
        .issue_sso(user, &login.email, org, SSO_TOKEN_TTL);
    redirect(StatusCode::SEE_OTHER, &format!("/#token={token}"))
}

/// `POST /auth/refresh`: for a valid token a single sign-on issued, a fresh one valid for
/// an hour (`{"token", "expiresIn"}`), while the user is still a member of its org (`401`
/// otherwise). Other tokens are refreshed by whoever issued them (`403`).
async fn refresh(
    user: AuthUser,
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (Some(org), Some(email)) = (user.sso_org, user.email.as_deref()) else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "refresh_unavailable",
            "only tokens from a single sign-on are renewed here; renew others where they were issued",
        ));
    };
    let member = state
        .orgs()
        .store()
        .member(org, user.id)
        .await
        .map_err(api_error)?;
    if member.is_none() {
        return Err(ApiError::unauthorized(
            "no longer a member of the organization: sign in again",
        ));
    }
    let token = state.jwt().issue_sso(user.id, email, org, SSO_TOKEN_TTL);
    Ok(axum::Json(
        json!({ "token": token, "expiresIn": SSO_TOKEN_TTL.as_secs() }),
    ))
}

fn redirect(status: StatusCode, to: &str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(to).map_err(|e| ApiError::internal(&e))?;
    Ok((
        status,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// A SCIM answer: `body` as `application/scim+json`.
fn scim(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}

/// A SCIM error (RFC 7644, 3.12).
#[derive(Debug)]
pub(crate) struct ScimFailure(StatusCode, Option<&'static str>, String);

impl ScimFailure {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self(status, scim_type, detail.into())
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, None, "no such user")
    }

    fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error, "SCIM request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error")
    }

    fn orgs(error: appforge_orgs::Error) -> Self {
        let api = api_error(error);
        Self::new(api.status(), None, "the membership could not be changed")
    }

    fn sso(error: &appforge_sso::Error) -> Self {
        match error {
            appforge_sso::Error::Scim(detail) => {
                let kind = detail.split(':').next().unwrap_or("invalidValue");
                let kind = match kind {
                    "invalidFilter" => "invalidFilter",
                    "invalidPath" => "invalidPath",
                    "noTarget" => "noTarget",
                    "mutability" => "mutability",
                    _ => "invalidValue",
                };
                Self::new(StatusCode::BAD_REQUEST, Some(kind), detail.clone())
            }
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ScimFailure {
    fn into_response(self) -> Response {
        let body = ScimError::new(self.0.as_u16(), self.1, self.2);
        scim(self.0, &body)
    }
}

/// The org of a SCIM request, from its `Authorization: Bearer <SCIM token>`: `401` without
/// a valid token, `503` without SSO.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScimOrg(Uuid);

impl FromRequestParts<AppState> for ScimOrg {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let sso = require(state).map_err(IntoResponse::into_response)?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let unauthorized = || {
            let mut response = ScimFailure::new(
                StatusCode::UNAUTHORIZED,
                None,
                "a valid SCIM bearer token is required",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        };
        let token = token.ok_or_else(unauthorized)?;
        match sso.scim_org(token).await {
            Ok(Some(org)) => Ok(Self(org)),
            Ok(None) => Err(unauthorized()),
            Err(e) => Err(ScimFailure::internal(&e).into_response()),
        }
    }
}

/// The query of `GET /scim/v2/Users`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    filter: Option<String>,
    start_index: Option<u64>,
    count: Option<u64>,
}

/// The most users one page lists.
const MAX_PAGE: u64 = 200;

/// `GET /scim/v2/Users[?filter=userName eq "x"][&startIndex][&count]`.
async fn list_users(
    ScimOrg(org): ScimOrg,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimFailure> {
    let sso = require(&state).map_err(|_| ScimFailure::not_found())?;
    let filter: Option<ScimFilter> = query
        .filter
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| ScimFailure::sso(&e))?;
    let users: Vec<ScimUser> = sso
        .scim_users(org)
        .await
        .map_err(|e| ScimFailure::internal(&e))?
        .into_iter()
        .filter(|user| filter.as_ref().is_none_or(|f| f.matches(user)))
        .collect();
    let total = u64::try_from(users.len()).unwrap_or(u64::MAX);
    let start = query.start_index.unwrap_or(1).max(1);
    let count = query.count.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let page: Vec<ScimUser> = users
        .into_iter()
        .skip(usize::try_from(start - 1).unwrap_or(usize::MAX))
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .collect();
    Ok(scim(StatusCode::OK, &ListResponse::new(page, total, start)))
}

/// `GET /scim/v2/ServiceProviderConfig` (no token, RFC 7644 section 4): `PATCH` and the
/// `eq` filter with at most [`MAX_PAGE`] results; no bulk, password change, sorting or
/// ETags; the org's SCIM token as a bearer token.
async fn service_provider_config(State(state): State<AppState>) -> Result<Response, ApiError> {
    require(&state)?;
    let mut config = ServiceProviderConfig::new(MAX_PAGE);
    if let Some(meta) = config.meta.as_mut() {
        meta.location = Some("/scim/v2/ServiceProviderConfig".to_owned());
    }
    Ok(scim(StatusCode::OK, &config))
}

/// `GET /scim/v2/ResourceTypes` (no token): a `ListResponse` of the one resource type
/// provisioned here, `User` (groups are not).
async fn resource_types(State(state): State<AppState>) -> Result<Response, ApiError> {
    require(&state)?;
    let types = vec![ResourceType::user()];
    Ok(scim(StatusCode::OK, &ListResponse::new(types, 1, 1)))
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ScimFailure> {
    serde_json::from_slice(body).map_err(|e| {
        ScimFailure::new(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            format!("the body is not a valid SCIM message: {e}"),
        )
    })
}

/// The role new members get: the org's SSO default, `member` without settings.
async fn default_role(sso: &crate::sso::Sso, org: Uuid) -> Result<Role, ScimFailure> {
    Ok(sso
        .service()
        .config(org)
        .await
        .map_err(|e| ScimFailure::internal(&e))?
        .map_or(Role::Member, |config| config.default_role))
}

/// Adds `user` to `org` with the default role (as the system) unless a member already.
async fn ensure_member(state: &AppState, org: Uuid, user: Uuid) -> Result<(), ScimFailure> {
    let sso = require(state).map_err(|_| ScimFailure::not_found())?;
    let orgs = state.orgs();
    if orgs
        .store()
        .member(org, user)
        .await
        .map_err(ScimFailure::orgs)?
        .is_none()
    {
        let role = default_role(sso, org).await?;
        orgs.add_member(&Caller::system(), org, user, role)
            .await
            .map_err(ScimFailure::orgs)?;
    }
    Ok(())
}

/// Removes `user` from `org` (as the system), if a member.
async fn end_membership(state: &AppState, org: Uuid, user: Uuid) -> Result<(), ScimFailure> {
    match state
        .orgs()
        .remove_member(&Caller::system(), org, user)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(ScimFailure::orgs(e)),
    }
}

/// `POST /scim/v2/Users`: creates the user (`201`) and, when active, adds them to the org
/// with its default role; `409 uniqueness` for a `userName` already provisioned.
async fn create_user(
    ScimOrg(org): ScimOrg,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ScimFailure> {
    let sso = require(&state).map_err(|_| ScimFailure::not_found())?;
    let mut user: ScimUser = parse(&body)?;
    let existing = sso
        .scim_users(org)
        .await
        .map_err(|e| ScimFailure::internal(&e))?;
    check_user_name(&mut user, &existing, None)?;
    let mut id = crate::sso::scim_user_id(org, &user.user_name);
    // A user renamed since keeps the id their first userName gave: this user gets another.
    if existing
        .iter()
        .any(|u| u.id.as_deref() == Some(id.to_string().as_str()))
    {
        id = Uuid::new_v4();
    }
    user.id = Some(id.to_string());
    user.schemas = vec![USER_SCHEMA.to_owned()];
    user.meta = None;
    if user.active {
        ensure_member(&state, org, id).await?;
    }
    sso.put_scim_user(org, &user)
        .await
        .map_err(|e| ScimFailure::internal(&e))?;
    let stored = stored(sso, org, id).await?;
    let mut response = scim(StatusCode::CREATED, &stored);
    if let Ok(location) = HeaderValue::from_str(&format!("/scim/v2/Users/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Trims `user`'s `userName` and checks it against the org's `users`: `400 invalidValue`
/// when empty, `409 uniqueness` when a user other than `id` holds it (case-insensitively).
fn check_user_name(
    user: &mut ScimUser,
    users: &[ScimUser],
    id: Option<Uuid>,
) -> Result<(), ScimFailure> {
    user.user_name = user.user_name.trim().to_owned();
    if user.user_name.is_empty() {
        return Err(ScimFailure::new(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "userName is required",
        ));
    }
    let id = id.map(|id| id.to_string());
    if users
        .iter()
        .any(|u| u.id != id && u.user_name.eq_ignore_ascii_case(&user.user_name))
    {
        return Err(ScimFailure::new(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "a user with this userName exists",
        ));
    }
    Ok(())
}

/// Stores `user` as the new state of the org's user `before` (`PATCH`, `PUT`) and answers
/// it (`200`): checks its `userName` ([`check_user_name`]), keeps its id and creation time,
/// and applies the `active` transition: `true` to `false` ends the membership at once,
/// `false` to `true` restores it with the default role.
async fn update(
    state: &AppState,
    org: Uuid,
    id: Uuid,
    before: &ScimUser,
    mut user: ScimUser,
) -> Result<Response, ScimFailure> {
    let sso = require(state).map_err(|_| ScimFailure::not_found())?;
    let users = sso
        .scim_users(org)
        .await
        .map_err(|e| ScimFailure::internal(&e))?;
    check_user_name(&mut user, &users, Some(id))?;
    user.id = Some(id.to_string());
    user.schemas = vec![USER_SCHEMA.to_owned()];
    user.meta.clone_from(&before.meta);
    match (before.active, user.active) {
        (true, false) => end_membership(state, org, id).await?,
        (false, true) => ensure_member(state, org, id).await?,
        _ => {}
    }
    sso.put_scim_user(org, &user)
        .await
        .map_err(|e| ScimFailure::internal(&e))?;
    Ok(scim(StatusCode::OK, &stored(sso, org, id).await?))
}

async fn stored(sso: &crate::sso::Sso, org: Uuid, id: Uuid) -> Result<ScimUser, ScimFailure> {
    sso.scim_user(org, id)
        .await
        .map_err(|e| ScimFailure::internal(&e))?
        .ok_or_else(ScimFailure::not_found)
}

fn user_id(id: &str) -> Result<Uuid, ScimFailure> {
    id.parse().map_err(|_| ScimFailure::not_found())
}

/// `GET /scim/v2/Users/{id}`.
async fn get_user(
    ScimOrg(org): ScimOrg,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ScimFailure> {
    let sso = require(&state).map_err(|_| ScimFailure::not_found())?;
    let user = stored(sso, org, user_id(&id)?).await?;
    Ok(scim(StatusCode::OK, &user))
}

/// `PATCH /scim/v2/Users/{id}` (a `PatchOp`): `active: false` removes the membership at
/// once, `active: true` restores it with the default role ([`update`]).
async fn patch_user(
    ScimOrg(org): ScimOrg,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimFailure> {
    let sso = require(&state).map_err(|_| ScimFailure::not_found())?;
    let id = user_id(&id)?;
    let before = stored(sso, org, id).await?;
    let patch: PatchOp = parse(&body)?;
    let mut user = before.clone();
    patch.apply(&mut user).map_err(|e| ScimFailure::sso(&e))?;
    update(&state, org, id, &before, user).await
}

/// `PUT /scim/v2/Users/{id}` (a whole `User`): replaces the stored user, keeping its id;
/// `active` changes the membership as `PATCH` does. `400 invalidValue` for an empty
/// `userName`, `409 uniqueness` for one another user holds.
async fn put_user(
    ScimOrg(org): ScimOrg,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimFailure> {
    let sso = require(&state).map_err(|_| ScimFailure::not_found())?;
    let id = user_id(&id)?;
    let before = stored(sso, org, id).await?;
    let user: ScimUser = parse(&body)?;
    update(&state, org, id, &before, user).await
}

/// `DELETE /scim/v2/Users/{id}`: removes the membership and the user (`204`).
async fn delete_user(
    ScimOrg(org): ScimOrg,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimFailure> {
    let sso = require(&state).map_err(|_| ScimFailure::not_found())?;
    let id = user_id(&id)?;
    stored(sso, org, id).await?;
    end_membership(&state, org, id).await?;
    sso.delete_scim_user(org, id)
        .await
        .map_err(|e| ScimFailure::internal(&e))?;
    Ok(StatusCode::NO_CONTENT)
}
