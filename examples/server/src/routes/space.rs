//! Where a request acts: the signed-in user's personal space, or an org's.
//!
//! The generation, chat, upload, job, app and quota routes are served twice: under `/api`
//! for the caller's personal space, and under `/api/orgs/{org}` for an org's. The org is in
//! the path (not in a header) so that it shows in every link, log line and cache key, the
//! route table ([`ORG_ROUTES`](super::ORG_ROUTES)) lists each org route with its
//! permission, and an org API key, which already acts on `/api/orgs/{org}/...`, needs
//! nothing more.
//!
//! On an org route, [`authorize`] (a route layer) finds the route's permission in
//! [`ORG_ROUTES`](super::ORG_ROUTES), checks the caller's role with one membership read
//! (`404` for a non-member or another org's key, `403` for a role without the
//! permission), hands the handler a [`Space`] scoped to the org, and, when the route is
//! audited and answers with a success, records the action in the org's audit log.

use appforge_core::Owner;
use appforge_orgs::{Caller, Principal};
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde_json::json;
use uuid::Uuid;

use super::orgs::{OrgCaller, api_error, path_id};
use super::{Access, ORG_ROUTES};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// The space a request reads and writes, and who acts in it.
#[derive(Debug, Clone)]
pub struct Space {
    /// Whose resources the request sees: the user's personal space or the org's.
    pub owner: Owner,
    /// Who acts: the signed-in user, or the org API key's id. A job records it as its
    /// submitter; the fair share of the workers counts by it.
    pub actor: Uuid,
    /// In an org, the most generations the signed-in member may start there per day (the
    /// org's setting); `None` for a personal space, an API key or an org without a cap.
    pub member_daily_cap: Option<u32>,
}

impl Space {
    /// The whose-quota key: the user for a personal space, the org for an org's (one pooled
    /// usage for its members and keys).
    #[must_use]
    pub fn quota_subject(&self) -> Uuid {
        self.owner.id()
    }

    /// The path prefix of the space's routes: `/api`, or `/api/orgs/{org}`.
    #[must_use]
    pub fn prefix(&self) -> String {
        match self.owner {
            Owner::User(_) => super::PERSONAL.to_owned(),
            Owner::Org(org) => format!("/api/orgs/{org}"),
        }
    }
}

impl FromRequestParts<AppState> for Space {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // An org route's layer authorized the caller already.
        if let Some(space) = parts.extensions.get::<Self>() {
            return Ok(space.clone());
        }
        let user = AuthUser::from_request_parts(parts, state).await?;
        Ok(Self {
            owner: Owner::User(user.id),
            actor: user.id,
            member_daily_cap: None,
        })
    }
}

/// The route layer of the org-space routes: authorizes the caller for the route's
/// permission, scopes the request to the org, and records an audited route's success in
/// the org's log (after the action: the app and job stores are not the orgs store, so the
/// two writes cannot share a transaction).
pub(crate) async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let (org, route, target) = match route_of(&mut parts, &state).await {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let caller = match OrgCaller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => caller.caller,
        Err(error) => return error.into_response(),
    };
    let Access::Org(permission) = route.access else {
        return misrouted("an org-space route must have an org permission").into_response();
    };
    // One lookup: the caller's role in the org and the org's daily cap per member.
    let access = match state.orgs().admit(&caller, org, permission).await {
        Ok(access) => access,
        Err(error) => return api_error(error).into_response(),
    };
    let actor = match &caller.principal {
        Principal::User(user) => *user,
        Principal::ApiKey(key) => key.key_id,
        _ => Uuid::nil(),
    };
    let space = Space {
        owner: Owner::Org(org),
        actor,
        member_daily_cap: access.member_daily_cap,
    };
    parts.extensions.insert(space);
    let response = next.run(Request::from_parts(parts, body)).await;
    if let Some(action) = route.audit.filter(|_| response.status().is_success()) {
        record(&state, &caller, org, action, target).await;
    }
    response
}

/// The org of the request's path, its entry in [`ORG_ROUTES`], and the resource it names
/// (its `{id}`), for the audit entry.
async fn route_of(
    parts: &mut Parts,
    state: &AppState,
) -> Result<(Uuid, &'static super::OrgRoute, Option<String>), ApiError> {
    let matched = MatchedPath::from_request_parts(parts, state)
        .await
        .map_err(|_| misrouted("an org-space route without a matched path"))?;
    let method = parts.method.as_str().to_ascii_lowercase();
    let route = ORG_ROUTES
        .iter()
        .find(|r| r.path == matched.as_str() && r.method == method)
        .ok_or_else(|| {
            misrouted(format!(
                "{method} {} has no entry in ORG_ROUTES",
                matched.as_str()
            ))
        })?;
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::not_found("org"))?;
    let mut org = None;
    let mut target = None;
    for (name, value) in &params {
        match name {
            "org" => org = Some(path_id(value, "org")?),
            "id" => target = Some(value.to_owned()),
            _ => {}
        }
    }
    let org = org.ok_or_else(|| ApiError::not_found("org"))?;
    Ok((org, route, target))
}

/// Appends the audit entry of a successful org-space action; a failure to record is logged
/// (the action happened: answering an error would invite a retry that repeats it).
async fn record(
    state: &AppState,
    caller: &Caller,
    org: Uuid,
    action: &str,
    target: Option<String>,
) {
    if let Err(error) = state
        .orgs()
        .record(caller, org, action, target, json!({}))
        .await
    {
        tracing::error!(%org, action, %error, "cannot record the audit entry of an org action");
    }
}

/// A route wired against its table: a bug of the server, answered as an internal error.
fn misrouted(message: impl Into<String>) -> ApiError {
    ApiError::internal(&std::io::Error::other(message.into()))
}

/// The server's authentication for the library's generation router (`appforge::axum`): the
/// same [`Space`] every space route reads, in one pass (an org route's layer has put it in
/// the request's extensions; a personal route checks the bearer token), with the server's
/// own error answers.
#[derive(Clone)]
pub(crate) struct SpaceAuth(pub(crate) AppState);

impl appforge::axum::Authenticate for SpaceAuth {
    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Uuid, appforge::axum::AuthRejection> {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.headers = headers.clone();
        AuthUser::from_request_parts(&mut parts, &self.0)
            .await
            .map(|user| user.id)
            .map_err(Into::into)
    }

    async fn act(
        &self,
        request: &Parts,
        _: appforge::axum::Action,
    ) -> Result<(Uuid, appforge::axum::Space), appforge::axum::AuthRejection> {
        let mut parts = request.clone();
        let space = Space::from_request_parts(&mut parts, &self.0).await?;
        Ok((
            space.actor,
            appforge::axum::Space::new(space.owner).member_daily_cap(space.member_daily_cap),
        ))
    }
}
