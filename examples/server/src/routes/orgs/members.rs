//! `/api/orgs/{org}/members` and `/leave`: list, change a role, remove, leave.

use appforge_orgs::{Member, OrgStore, Permission, Role};
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OrgCaller, api_error, path_id};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// A member as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MemberView {
    user_id: Uuid,
    role: Role,
    joined_at: DateTime<Utc>,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> Self {
        Self {
            user_id: member.user_id,
            role: member.role,
            joined_at: member.joined_at,
        }
    }
}

/// The body of `PATCH /api/orgs/{org}/members/{user}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeRole {
    role: Role,
}

/// `GET /api/orgs/{org}/members` (`read_apps`): the members and the seats used of total.
pub(super) async fn list(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let orgs = state.orgs();
    let members = orgs.members(&caller.caller, org).await.map_err(api_error)?;
    let record = orgs
        .store()
        .get_org(org)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let used = orgs.store().seats_used(org).await.map_err(api_error)?;
    let members: Vec<MemberView> = members.into_iter().map(MemberView::from).collect();
    Ok(axum::Json(serde_json::json!({
        "members": members,
        "seats": { "used": used, "total": record.seats },
    })))
}

/// `PATCH /api/orgs/{org}/members/{user}` (`change_role`; both roles no higher than the
/// caller's; the last owner keeps the role).
pub(super) async fn change_role(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path((org, user)): Path<(String, String)>,
    Json(body): Json<ChangeRole>,
) -> Result<axum::Json<MemberView>, ApiError> {
    let org = path_id(&org, "organization")?;
    let user = path_id(&user, "member")?;
    let member = state
        .orgs()
        .change_role(&caller.caller, org, user, body.role)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(member.into()))
}

/// `DELETE /api/orgs/{org}/members/{user}` (`remove_member`, the member's role no higher
/// than the caller's; the last owner stays). A user naming themselves leaves.
pub(super) async fn remove(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = path_id(&org, "organization")?;
    let user = path_id(&user, "member")?;
    state
        .orgs()
        .remove_member(&caller.caller, org, user)
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/orgs/{org}/leave`: the signed-in member leaves (the last owner cannot).
pub(super) async fn leave(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<StatusCode, ApiError> {
    let org = path_id(&org, "organization")?;
    let orgs = state.orgs();
    // A key of another org learns nothing: 404 before 403.
    orgs.authorize(&caller.caller, org, Permission::ReadApps)
        .await
        .map_err(api_error)?;
    caller.user()?;
    orgs.leave(&caller.caller, org).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}
