//! Team workspaces over HTTP: `/api/orgs` (create, list, read, rename, delete), members,
//! invitations, org API keys and the audit log, on the `appforge-orgs` service.
//!
//! Every route is in [`ORG_ROUTES`] with who may call it ([`Access`], from the crate's
//! permission table) and the audit action it records; `/openapi.json` lists the same as
//! `x-permission`, and the route-by-role test reads this table.
//!
//! Answers: an org the caller does not belong to (a non-member, a key of another org) is
//! `404`, exactly like an org that does not exist; a member whose role lacks the permission
//! gets `403`; the org's rules (last owner, no free seat, slug taken, already a member) are
//! `409`.

mod audit;
mod billing;
pub(crate) mod branding;
mod invitations;
mod keys;
mod mail;
mod members;
pub(crate) mod sso;
mod workspace;

use std::sync::LazyLock;

use appforge_orgs::{AnyOrgStore, Caller, Permission, Principal, RequestInfo};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::routing::{get, patch, post};
use http::StatusCode;
use http::request::Parts;
use serde_json::json;
use uuid::Uuid;

use crate::auth::AuthPrincipal;
use crate::config::OrgsConfig;
use crate::db::Database;
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::{AppState, StartError};

pub(crate) use billing::follow_seats;
pub(crate) use mail::Mailer;

/// The orgs service of the server, on the shared database.
pub type OrgsService = appforge_orgs::Orgs<AnyOrgStore>;

/// Who may call an org route (the route's `x-permission` in `/openapi.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Any signed-in user or org API key (`signed_in`).
    SignedIn,
    /// A signed-in user; an API key is refused with `403` (`user`).
    User,
    /// A member of the org, or a key of it, whose role has the permission.
    Org(Permission),
    /// As [`Access::Org`], and a signed-in user: a key of the org is refused with `403`.
    OrgUser(Permission),
    /// A signed-in user holding an open invitation's token (`invitation`); a key gets `403`.
    Invitation,
}

impl Access {
    /// The name `/openapi.json` gives it: the permission's name (`invite`, `read_audit`, ...),
    /// or `signed_in`, `user`, `invitation`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::SignedIn => "signed_in",
            Self::User => "user",
            Self::Org(permission) | Self::OrgUser(permission) => permission.as_str(),
            Self::Invitation => "invitation",
        }
    }

    /// Whether an org API key may call the route (given its role has the permission).
    #[must_use]
    pub fn takes_api_keys(self) -> bool {
        matches!(self, Self::SignedIn | Self::Org(_))
    }
}

/// One org route: its method and path (as in [`super::ROUTES`]), who may call it, and the
/// action of the audit entry a successful call records (`None`: a read, recorded nowhere).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct OrgRoute {
    /// The method, lowercase.
    pub method: &'static str,
    /// The path template.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The audit action a successful call records in the org's log.
    pub audit: Option<&'static str>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    audit: Option<&'static str>,
) -> OrgRoute {
    OrgRoute {
        method,
        path,
        access,
        audit,
    }
}

/// Every org route: the routes of the orgs themselves, then the org's space
/// ([`SPACE_ROUTES`](super::SPACE_ROUTES) under `/api/orgs/{org}`). A route under `/api/orgs` or
/// `/api/invitations` missing here fails the route-by-role test.
pub static ORG_ROUTES: LazyLock<Vec<OrgRoute>> = LazyLock::new(|| {
    let space = super::SPACE_ROUTES.iter().map(|r| OrgRoute {
        method: r.method,
        path: super::spaced(super::ORG_SPACE, r.path),
        access: Access::Org(r.permission),
        audit: r.audit,
    });
    ADMIN_ROUTES.iter().copied().chain(space).collect()
});

/// The routes of the orgs themselves: the org, members, invitations, keys, audit.
const ADMIN_ROUTES: &[OrgRoute] = &[
    route("post", "/api/orgs", Access::User, Some("org.create")),
    route("get", "/api/orgs", Access::SignedIn, None),
    route(
        "get",
        "/api/orgs/{org}",
        Access::Org(Permission::ReadApps),
        None,
    ),
    route(
        "patch",
        "/api/orgs/{org}",
        Access::Org(Permission::ManageSettings),
        Some("org.rename"),
    ),
    route(
        "delete",
        "/api/orgs/{org}",
        Access::Org(Permission::DeleteOrg),
        Some("org.delete"),
    ),
    route(
        "get",
        "/api/orgs/{org}/members",
        Access::Org(Permission::ReadApps),
        None,
    ),
    route(
        "patch",
        "/api/orgs/{org}/members/{user}",
        Access::Org(Permission::ChangeRole),
        Some("member.role"),
    ),
    route(
        "delete",
        "/api/orgs/{org}/members/{user}",
        Access::Org(Permission::RemoveMember),
        Some("member.remove"),
    ),
    route(
        "post",
        "/api/orgs/{org}/leave",
        Access::OrgUser(Permission::ReadApps),
        Some("member.leave"),
    ),
    route(
        "post",
        "/api/orgs/{org}/invitations",
        Access::Org(Permission::Invite),
        Some("invitation.create"),
    ),
    route(
        "get",
        "/api/orgs/{org}/invitations",
        Access::Org(Permission::Invite),
        None,
    ),
    route(
        "delete",
        "/api/orgs/{org}/invitations/{id}",
        Access::Org(Permission::Invite),
        Some("invitation.revoke"),
    ),
    route(
        "post",
        "/api/invitations/{token}/accept",
        Access::Invitation,
        Some("invitation.accept"),
    ),
    route(
        "post",
        "/api/orgs/{org}/api-keys",
        Access::OrgUser(Permission::ManageApiKeys),
        Some("api_key.create"),
    ),
    route(
        "get",
        "/api/orgs/{org}/api-keys",
        Access::Org(Permission::ManageApiKeys),
        None,
    ),
    route(
        "delete",
        "/api/orgs/{org}/api-keys/{id}",
        Access::Org(Permission::ManageApiKeys),
        Some("api_key.revoke"),
    ),
    route(
        "get",
        "/api/orgs/{org}/audit",
        Access::Org(Permission::ReadAudit),
        None,
    ),
    route(
        "get",
        "/api/orgs/{org}/audit/verify",
        Access::Org(Permission::ReadAudit),
        None,
    ),
    route(
        "get",
        "/api/orgs/{org}/audit/export",
        Access::Org(Permission::ReadAudit),
        Some("audit.export"),
    ),
    route(
        "get",
        "/api/orgs/{org}/branding",
        Access::Org(Permission::ReadApps),
        None,
    ),
    route(
        "put",
        "/api/orgs/{org}/branding",
        Access::Org(Permission::ManageSettings),
        Some("branding.update"),
    ),
    route(
        "get",
        "/api/orgs/{org}/branding/logo",
        Access::Org(Permission::ReadApps),
        None,
    ),
    route(
        "put",
        "/api/orgs/{org}/branding/logo",
        Access::Org(Permission::ManageSettings),
        Some("branding.logo"),
    ),
    route(
        "delete",
        "/api/orgs/{org}/branding/logo",
        Access::Org(Permission::ManageSettings),
        Some("branding.logo.delete"),
    ),
    route(
        "get",
        "/api/orgs/{org}/billing",
        Access::Org(Permission::ReadApps),
        None,
    ),
    route(
        "post",
        "/api/orgs/{org}/billing/checkout",
        Access::OrgUser(Permission::Billing),
        Some("billing.checkout"),
    ),
    route(
        "post",
        "/api/orgs/{org}/billing/portal",
        Access::OrgUser(Permission::Billing),
        Some("billing.portal"),
    ),
    route(
        "put",
        "/api/orgs/{org}/seats",
        Access::OrgUser(Permission::Billing),
        Some("billing.seats"),
    ),
    route(
        "put",
        "/api/orgs/{org}/sso",
        Access::OrgUser(Permission::ManageSso),
        Some("sso.configure"),
    ),
    route(
        "get",
        "/api/orgs/{org}/sso",
        Access::Org(Permission::ManageSso),
        None,
    ),
    route(
        "delete",
        "/api/orgs/{org}/sso",
        Access::OrgUser(Permission::ManageSso),
        Some("sso.remove"),
    ),
    route(
        "post",
        "/api/orgs/{org}/scim-token",
        Access::OrgUser(Permission::ManageSso),
        Some("sso.scim_token"),
    ),
];

/// The org routes, in [`ORG_ROUTES`].
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/orgs", get(workspace::list).post(workspace::create))
        .route(
            "/api/orgs/{org}",
            get(workspace::get)
                .patch(workspace::rename)
                .delete(workspace::delete),
        )
        .route("/api/orgs/{org}/members", get(members::list))
        .route(
            "/api/orgs/{org}/members/{user}",
            patch(members::change_role).delete(members::remove),
        )
        .route("/api/orgs/{org}/leave", post(members::leave))
        .route(
            "/api/orgs/{org}/invitations",
            get(invitations::list).post(invitations::create),
        )
        .route(
            "/api/orgs/{org}/invitations/{id}",
            axum::routing::delete(invitations::revoke),
        )
        .route("/api/invitations/{token}/accept", post(invitations::accept))
        .route(
            "/api/orgs/{org}/api-keys",
            get(keys::list).post(keys::create),
        )
        .route(
            "/api/orgs/{org}/api-keys/{id}",
            axum::routing::delete(keys::revoke),
        )
        .route("/api/orgs/{org}/audit", get(audit::list))
        .route("/api/orgs/{org}/audit/verify", get(audit::verify))
        .route("/api/orgs/{org}/audit/export", get(audit::export))
        .route(
            "/api/orgs/{org}/branding",
            get(branding::get).put(branding::put),
        )
        .route(
            "/api/orgs/{org}/branding/logo",
            get(branding::get_logo)
                .put(branding::put_logo)
                .delete(branding::delete_logo),
        )
        .route("/api/orgs/{org}/billing", get(billing::get))
        .route("/api/orgs/{org}/billing/checkout", post(billing::checkout))
        .route("/api/orgs/{org}/billing/portal", post(billing::portal))
        .route(
            "/api/orgs/{org}/seats",
            axum::routing::put(billing::set_seats),
        )
        .route(
            "/api/orgs/{org}/sso",
            get(sso::get).put(sso::put).delete(sso::delete),
        )
        .route("/api/orgs/{org}/scim-token", post(sso::scim_token))
}

/// The orgs service over the shared database, migrated.
pub(crate) async fn service(
    config: &OrgsConfig,
    db: &Database,
    clock: appforge_core::SharedClock,
) -> Result<OrgsService, StartError> {
    let store = match db {
        Database::Sqlite(pool) => {
            AnyOrgStore::from(appforge_orgs::SqliteOrgStore::from_pool(pool.clone()))
        }
        Database::Postgres(pool) => {
            AnyOrgStore::from(appforge_orgs::PgOrgStore::from_pool(pool.clone()))
        }
    }
    .with_clock(clock);
    store
        .migrate()
        .await
        .map_err(|e| StartError::setup("orgs", e))?;
    Ok(appforge_orgs::Orgs::with_invitation_ttl(
        store,
        config.invitation_ttl,
    ))
}

/// Deletes the audit entries older than `APPFORGE_AUDIT_RETENTION_DAYS`, of every org;
/// returns how many (none when retention is off).
///
/// # Errors
///
/// Storage errors of the orgs store.
pub async fn purge_audit(state: &AppState) -> appforge_orgs::Result<u64> {
    let Some(retention) = state.config().orgs.audit_retention else {
        return Ok(0);
    };
    let Ok(retention) = chrono::Duration::from_std(retention) else {
        return Ok(0);
    };
    let now = appforge_orgs::OrgStore::now(state.orgs().store());
    state.orgs().purge_audit_before(None, now - retention).await
}

/// The longest `User-Agent` kept in an audit entry.
const MAX_USER_AGENT_CHARS: usize = 512;

/// The caller of an org route: who (a user or an org API key) and where the request came
/// from (IP, user agent, request id), for the audit log.
#[derive(Debug, Clone)]
pub(crate) struct OrgCaller {
    pub(crate) caller: Caller,
    /// The signed-in user's email, when the token carries one (none for an API key).
    pub(crate) email: Option<String>,
}

impl OrgCaller {
    /// The signed-in user, or `403` for an API key.
    pub(crate) fn user(&self) -> Result<Uuid, ApiError> {
        match &self.caller.principal {
            Principal::User(id) => Ok(*id),
            _ => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "user_required",
                "this action needs a signed-in user: an API key cannot do it",
            )),
        }
    }
}

impl FromRequestParts<AppState> for OrgCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = AuthPrincipal::from_request_parts(parts, state).await?;
        let email = match &principal {
            AuthPrincipal::User(user) => user.email.clone(),
            AuthPrincipal::ApiKey(_) => None,
        };
        if let (AuthPrincipal::User(user), Some(org)) = (&principal, org_in_path(&parts.uri)) {
            sso::enforce(state, org, user).await?;
        }
        let mut request = RequestInfo::none();
        if let Some(crate::connections::ClientAddr(addr)) = parts.extensions.get() {
            request = request.ip(addr.ip().to_string());
        }
        if let Some(agent) = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            request =
                request.user_agent(agent.chars().take(MAX_USER_AGENT_CHARS).collect::<String>());
        }
        if let Some(RequestId(id)) = parts.extensions.get() {
            request = request.request_id(id.clone());
        }
        Ok(Self {
            caller: Caller::new(principal.principal()).request(request),
            email,
        })
    }
}

/// The org id of an `/api/orgs/{org}/...` path, if it is one.
fn org_in_path(uri: &http::Uri) -> Option<Uuid> {
    uri.path()
        .strip_prefix("/api/orgs/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// The answer to an error of the orgs service: `404` for an org the caller does not belong
/// to (or an unknown member, invitation or key), `403` for a role lacking the permission,
/// `409` for a rule of the org's state, `400` for bad input, else `500`.
pub(crate) fn api_error(error: appforge_orgs::Error) -> ApiError {
    use appforge_orgs::Error as E;

    let message = error.to_string();
    if error.is_not_found() {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", message);
    }
    match error {
        E::Forbidden { role, permission } => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
                .with_details(json!({ "role": role, "permission": permission }))
        }
        E::RoleTooHigh { role, target } => {
            ApiError::new(StatusCode::FORBIDDEN, "role_too_high", message)
                .with_details(json!({ "role": role, "target": target }))
        }
        E::LastOwner(_) => ApiError::new(StatusCode::CONFLICT, "last_owner", message),
        E::NoSeat { used, seats, .. } => ApiError::new(StatusCode::CONFLICT, "no_seat", message)
            .with_details(json!({ "used": used, "seats": seats })),
        E::SlugTaken(_) => ApiError::new(StatusCode::CONFLICT, "slug_taken", message),
        E::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
        E::InvalidArgument(reason) => ApiError::bad_request(reason),
        other => ApiError::internal(&other),
    }
}

/// A path segment that must be a UUID: `404` otherwise, as for an unknown id.
pub(crate) fn path_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_org_route_is_served_and_every_served_org_route_is_listed() {
        let listed: Vec<(&str, &str)> = ORG_ROUTES.iter().map(|r| (r.method, r.path)).collect();
        for entry in &listed {
            assert!(
                super::super::ROUTES.contains(entry),
                "{entry:?} not in ROUTES"
            );
        }
        for (method, path) in super::super::ROUTES.iter() {
            if path.starts_with("/api/orgs") || path.starts_with("/api/invitations") {
                assert!(
                    listed.contains(&(*method, *path)),
                    "{method} {path} has no entry in ORG_ROUTES"
                );
            }
        }
    }

    #[test]
    fn openapi_lists_each_routes_permission_and_whether_keys_may_call_it() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi::DOCUMENT).unwrap();
        for route in ORG_ROUTES.iter() {
            let operation = &doc["paths"][route.path][route.method];
            assert_eq!(
                operation["x-permission"],
                route.access.name(),
                "{} {}",
                route.method,
                route.path
            );
            let keys = operation["security"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s.get("orgApiKey").is_some());
            assert_eq!(
                keys,
                route.access.takes_api_keys(),
                "{} {}",
                route.method,
                route.path
            );
        }
    }

    /// Every write is audited except a generation, a chat message and an upload, which the
    /// job or the upload records with its submitter.
    #[test]
    fn writes_are_audited_and_reads_are_not() {
        let usage = [
            "/ai-builder/full-app",
            "/ai-builder/modify",
            "/ai-builder/plan-phases",
            "/chat",
            "/uploads",
        ];
        for route in ORG_ROUTES.iter() {
            let write = route.method != "get";
            let is_usage = route.method == "post" && usage.iter().any(|u| route.path.ends_with(u));
            assert!(
                (write && !is_usage) == route.audit.is_some()
                    || route.path.ends_with("/audit/export"),
                "{} {}",
                route.method,
                route.path
            );
        }
    }
}
