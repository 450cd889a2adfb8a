//! `/api/orgs/{org}/invitations` (create, list, revoke) and
//! `/api/invitations/{token}/accept`.

use appforge_orgs::{Invitation, OrgStore, Role};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::mail::InvitationMail;
use super::{OrgCaller, api_error, path_id};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// An invitation as the API shows it (never its token, which is not stored).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InvitationView {
    id: Uuid,
    org_id: Uuid,
    email: String,
    role: Role,
    invited_by: Uuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    accepted_by: Option<Uuid>,
    revoked_at: Option<DateTime<Utc>>,
    /// `open`, `accepted`, `revoked` or `expired`.
    status: &'static str,
}

impl InvitationView {
    fn new(invitation: Invitation, now: DateTime<Utc>) -> Self {
        let status = if invitation.accepted_at.is_some() {
            "accepted"
        } else if invitation.revoked_at.is_some() {
            "revoked"
        } else if invitation.is_open(now) {
            "open"
        } else {
            "expired"
        };
        Self {
            id: invitation.id,
            org_id: invitation.org_id,
            email: invitation.email,
            role: invitation.role,
            invited_by: invitation.invited_by,
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
            accepted_at: invitation.accepted_at,
            accepted_by: invitation.accepted_by,
            revoked_at: invitation.revoked_at,
            status,
        }
    }
}

/// The body of `POST /api/orgs/{org}/invitations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateInvitation {
    email: String,
    role: Role,
}

/// The answer to creating an invitation: the token and its link, this once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedView {
    invitation: InvitationView,
    token: String,
    accept_url: String,
    /// Whether a mail is on its way (SMTP configured).
    mailed: bool,
}

/// `POST /api/orgs/{org}/invitations` (`invite`, a role no higher than the caller's, a free
/// seat): answers `token` and `acceptUrl` once; with SMTP settings the invitee is mailed.
pub(super) async fn create(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Json(body): Json<CreateInvitation>,
) -> Result<Response, ApiError> {
    let org = path_id(&org, "organization")?;
    let orgs = state.orgs();
    let created = orgs
        .invite(&caller.caller, org, &body.email, body.role)
        .await
        .map_err(api_error)?;
    let token = created.token.expose().to_owned();
    let accept_url = format!(
        "{}/invitations/{token}",
        state.config().orgs.public_url.as_deref().unwrap_or("")
    );
    let mailed = match state.mailer() {
        Some(mailer) => {
            let org_name = orgs
                .store()
                .get_org(org)
                .await
                .map_err(api_error)?
                .map_or_else(|| "an organization".to_owned(), |o| o.name);
            mailer.send_later(InvitationMail {
                to: created.invitation.email.clone(),
                org_name,
                role: created.invitation.role,
                accept_url: accept_url.clone(),
                expires_at: created.invitation.expires_at,
            });
            true
        }
        None => false,
    };
    let now = orgs.store().now();
    let view = CreatedView {
        invitation: InvitationView::new(created.invitation, now),
        token,
        accept_url,
        mailed,
    };
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

/// `GET /api/orgs/{org}/invitations` (`invite`): every invitation, newest first.
pub(super) async fn list(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let orgs = state.orgs();
    let mut invitations = orgs
        .invitations(&caller.caller, org)
        .await
        .map_err(api_error)?;
    invitations.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    let now = orgs.store().now();
    let views: Vec<InvitationView> = invitations
        .into_iter()
        .map(|i| InvitationView::new(i, now))
        .collect();
    Ok(axum::Json(serde_json::json!({ "invitations": views })))
}

/// `DELETE /api/orgs/{org}/invitations/{id}` (`invite`): revokes an open invitation; its
/// seat frees at once.
pub(super) async fn revoke(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
) -> Result<axum::Json<InvitationView>, ApiError> {
    let org = path_id(&org, "organization")?;
    let id = path_id(&id, "invitation")?;
    let orgs = state.orgs();
    let invitation = orgs
        .revoke_invitation(&caller.caller, org, id)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(InvitationView::new(
        invitation,
        orgs.store().now(),
    )))
}

/// `POST /api/invitations/{token}/accept`: the signed-in user joins with the invitation's
/// role. An unknown, expired, used or revoked token is `404`; a member already is `409`.
pub(super) async fn accept(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    caller.user()?;
    let member = state
        .orgs()
        .accept_invitation(&caller.caller, &token)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(serde_json::json!({
        "orgId": member.org_id,
        "userId": member.user_id,
        "role": member.role,
        "joinedAt": member.joined_at,
    })))
}
