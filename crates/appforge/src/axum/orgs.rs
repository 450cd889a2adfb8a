//! Org spaces from `appforge-orgs`: the same router mounted once for personal spaces and once
//! under a path with the org's id, acting in the org's space for its members, by their roles.
//!
//! ```
//! use appforge::axum::{OrgSpaces, SupabaseJwt, router};
//! use appforge::core::SecretString;
//! use appforge::generation::GenerationService;
//! use appforge::orgs::{MemoryOrgStore, Orgs};
//! # fn service() -> GenerationService { unimplemented!() }
//!
//! # fn assemble() {
//! let auth = OrgSpaces::new(
//!     SupabaseJwt::new(&SecretString::from("a-secret-of-32-bytes-or-more....")),
//!     Orgs::new(MemoryOrgStore::new()),
//! );
//! let api = router(service(), auth);
//! let app: axum::Router = axum::Router::new()
//!     .nest("/builder", api.clone())
//!     .nest("/builder/orgs/{org}", api);
//! # let _ = app; }
//! ```

use appforge_core::Owner;
use appforge_orgs::{Caller, OrgStore, Orgs, Permission};
use axum::extract::{FromRequestParts, RawPathParams};
use futures::FutureExt;
use http::HeaderMap;
use http::request::Parts;
use uuid::Uuid;

use super::auth::{Action, AuthRejection, Authenticate, Space};

/// The path parameter [`OrgSpaces`] reads the org's id from by default.
pub const DEFAULT_ORG_PARAM: &str = "org";

/// Org spaces over a host's authentication: who the user is comes from `auth`; a request
/// whose path has the org parameter (`{org}` by default, from where the host nests the router)
/// acts in that org's space once [`Orgs::admit`] finds the user a member whose role has the
/// action's permission, with the org's daily cap per member. A request without it acts in the
/// user's personal space.
///
/// Answers `404` for an org that does not exist or that the user is not a member of (an
/// outsider cannot tell which), and `403` for a role without the permission. The org's
/// membership cache ([`Orgs::watch_memberships`]) makes the check free of reads.
///
/// Org API keys and single sign-on enforcement are the host's: wrap this in an
/// [`Authenticate`] of its own for them.
#[derive(Debug, Clone)]
pub struct OrgSpaces<Au, S = appforge_orgs::AnyOrgStore> {
    auth: Au,
    orgs: Orgs<S>,
    param: &'static str,
}

impl<Au, S> OrgSpaces<Au, S> {
    /// Users from `auth`, orgs and roles from `orgs`, the org from the path parameter
    /// [`DEFAULT_ORG_PARAM`].
    pub fn new(auth: Au, orgs: Orgs<S>) -> Self {
        Self {
            auth,
            orgs,
            param: DEFAULT_ORG_PARAM,
        }
    }

    /// Reads the org's id from the path parameter `name` instead.
    #[must_use]
    pub fn org_param(mut self, name: &'static str) -> Self {
        self.param = name;
        self
    }

    /// The org id of the request's path, `None` without the parameter.
    fn org_of(&self, request: &Parts) -> Result<Option<Uuid>, AuthRejection> {
        let mut parts = request.clone();
        // The path extractor is ready at once: it reads the request's extensions.
        let Some(Ok(params)) = RawPathParams::from_request_parts(&mut parts, &()).now_or_never()
        else {
            return Ok(None);
        };
        let Some((_, value)) = params.iter().find(|(key, _)| *key == self.param) else {
            return Ok(None);
        };
        value
            .parse()
            .map(Some)
            .map_err(|_| AuthRejection::not_found("no such organization"))
    }
}

/// The org permission an action of the router needs.
#[must_use]
pub fn permission_of(action: Action) -> Permission {
    match action {
        Action::Read => Permission::ReadApps,
        Action::Modify => Permission::Modify,
        Action::Chat => Permission::Chat,
        Action::Generate | Action::Cancel => Permission::Generate,
    }
}

impl<Au: Authenticate, S: OrgStore + 'static> Authenticate for OrgSpaces<Au, S> {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Uuid, AuthRejection> {
        self.auth.authenticate(headers).await
    }

    async fn space(
        &self,
        request: &Parts,
        user: Uuid,
        action: Action,
    ) -> Result<Space, AuthRejection> {
        let Some(org) = self.org_of(request)? else {
            return self.auth.space(request, user, action).await;
        };
        match self
            .orgs
            .admit(&Caller::user(user), org, permission_of(action))
            .await
        {
            Ok(access) => Ok(Space::new(Owner::Org(org)).member_daily_cap(access.member_daily_cap)),
            Err(e) if e.is_not_found() => Err(AuthRejection::not_found("no such organization")),
            Err(e) if e.is_forbidden() => Err(AuthRejection::forbidden(format!(
                "your role in this organization does not allow this ({})",
                permission_of(action).as_str()
            ))),
            Err(e) => {
                tracing::error!(error = %e, %org, "the org check failed");
                Err(AuthRejection::internal(
                    "the organization could not be checked",
                ))
            }
        }
    }
}
