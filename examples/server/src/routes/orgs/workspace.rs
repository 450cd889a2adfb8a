//! `/api/orgs` and `/api/orgs/{org}`: create, list the caller's, read, rename and set the
//! daily cap per member, delete.

use appforge_orgs::{NewOrg, OrgStore, Organization, Permission, Principal, Role};
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

/// An org as the API shows it, with the caller's role and the seats used.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrgView {
    id: Uuid,
    name: String,
    slug: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    /// The caller's role in it.
    role: Role,
    /// Members plus open invitations.
    seats_used: u32,
    /// `null`: no limit.
    seats: Option<u32>,
    /// Generations one member may start per day in the org's space; `null`: no cap.
    member_daily_cap: Option<u32>,
}

impl OrgView {
    fn new(org: Organization, role: Role, seats_used: u32) -> Self {
        Self {
            id: org.id,
            name: org.name,
            slug: org.slug,
            created_by: org.created_by,
            created_at: org.created_at,
            role,
            seats_used,
            seats: org.seats,
            member_daily_cap: org.member_daily_cap,
        }
    }
}

/// The body of `POST /api/orgs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateOrg {
    name: String,
    /// 3 to 48 of `a-z`, `0-9` and inner `-`; derived from the name when absent.
    #[serde(default)]
    slug: Option<String>,
}

/// The body of `PATCH /api/orgs/{org}`: the fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct UpdateOrg {
    /// A new display name.
    #[serde(default)]
    name: Option<String>,
    /// A new daily cap per member: a number, or `null` to remove it; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    member_daily_cap: Option<Option<u32>>,
}

/// A field that is present (`null` included): `Some` of its value.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A slug from a name: lowercase ASCII letters and digits, other runs become one `-`, at
/// most 48 characters; a short result gets a random suffix.
fn slug_of(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(40);
    let slug = slug.trim_matches('-').to_owned();
    if slug.len() >= 3 {
        slug
    } else {
        let suffix: u32 = rand::random();
        let prefix = if slug.is_empty() { "org" } else { &slug };
        format!("{prefix}-{suffix:08x}")
    }
}

/// `POST /api/orgs`: the signed-in user creates an org and becomes its owner.
pub(super) async fn create(
    caller: OrgCaller,
    State(state): State<AppState>,
    Json(body): Json<CreateOrg>,
) -> Result<Response, ApiError> {
    caller.user()?;
    let slug = body.slug.unwrap_or_else(|| slug_of(&body.name));
    let mut new = NewOrg::new(body.name, slug);
    if let Some(seats) = state.config().orgs.default_seats {
        new = new.seats(seats);
    }
    let org = state
        .orgs()
        .create_org(&caller.caller, new)
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(OrgView::new(org, Role::Owner, 1)),
    )
        .into_response())
}

/// `GET /api/orgs`: the caller's orgs with its role in each (a key: its own org).
pub(super) async fn list(
    caller: OrgCaller,
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let orgs = state.orgs();
    let memberships = match &caller.caller.principal {
        Principal::User(user) => orgs.orgs_of(*user).await.map_err(api_error)?,
        Principal::ApiKey(key) => orgs
            .store()
            .get_org(key.org_id)
            .await
            .map_err(api_error)?
            .map(|org| vec![(org, key.role)])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut views = Vec::with_capacity(memberships.len());
    for (org, role) in memberships {
        let used = orgs.store().seats_used(org.id).await.map_err(api_error)?;
        views.push(OrgView::new(org, role, used));
    }
    Ok(axum::Json(serde_json::json!({ "orgs": views })))
}

/// The org and the caller's role, for a caller allowed `permission` in it.
async fn view(
    state: &AppState,
    caller: &OrgCaller,
    org: Uuid,
    permission: Permission,
) -> Result<OrgView, ApiError> {
    let orgs = state.orgs();
    let role = orgs
        .authorize(&caller.caller, org, permission)
        .await
        .map_err(api_error)?;
    let record = orgs
        .store()
        .get_org(org)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let used = orgs.store().seats_used(org).await.map_err(api_error)?;
    Ok(OrgView::new(record, role, used))
}

/// `GET /api/orgs/{org}` (`read_apps`).
pub(super) async fn get(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<axum::Json<OrgView>, ApiError> {
    let org = path_id(&org, "organization")?;
    view(&state, &caller, org, Permission::ReadApps)
        .await
        .map(axum::Json)
}

/// `PATCH /api/orgs/{org}` (`manage_settings`): renames it (`name`) and sets or removes
/// the daily cap per member (`memberDailyCap`), each audited.
pub(super) async fn rename(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Json(body): Json<UpdateOrg>,
) -> Result<axum::Json<OrgView>, ApiError> {
    let org = path_id(&org, "organization")?;
    if body.name.is_none() && body.member_daily_cap.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: send `name` or `memberDailyCap`",
        ));
    }
    if let Some(name) = &body.name {
        state
            .orgs()
            .rename_org(&caller.caller, org, name)
            .await
            .map_err(api_error)?;
    }
    if let Some(cap) = body.member_daily_cap {
        state
            .orgs()
            .set_member_daily_cap(&caller.caller, org, cap)
            .await
            .map_err(api_error)?;
    }
    view(&state, &caller, org, Permission::ManageSettings)
        .await
        .map(axum::Json)
}

/// `DELETE /api/orgs/{org}` (`delete_org`): its members and keys lose access at once.
pub(super) async fn delete(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<StatusCode, ApiError> {
    let org = path_id(&org, "organization")?;
    state
        .orgs()
        .delete_org(&caller.caller, org)
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::slug_of;

    #[test]
    fn slugs_come_from_names() {
        assert_eq!(slug_of("Acme Corp."), "acme-corp");
        assert_eq!(slug_of("  Über -- Team 42 "), "ber-team-42");
        assert!(appforge_orgs::validate_slug(&slug_of("Ä")).is_ok());
        assert!(appforge_orgs::validate_slug(&slug_of(&"x".repeat(200))).is_ok());
    }
}
