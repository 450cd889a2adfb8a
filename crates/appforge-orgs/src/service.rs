//! [`Orgs`]: the permission checks and audit records around an [`OrgStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::api_key::{ApiKey, ApiKeyPrincipal, CreatedApiKey, NewApiKey};
use crate::audit::{
    Actor, AuditEntry, AuditQuery, AuditRange, AuditRecord, ChainCheck, RequestInfo,
};
use crate::branding::{Branding, Color, Logo, check_display_name};
use crate::cache::MembershipCache;
use crate::invitation::{CreatedInvitation, DEFAULT_INVITATION_TTL, Invitation};
use crate::org::{
    Member, MemberAccess, NewOrg, Organization, check_name, normalize_email, validate_slug,
};
use crate::role::{Permission, Role};
use crate::store::OrgStore;
use crate::store::any::AnyOrgStore;
use crate::token::{invitation_hash, new_api_key, new_invitation_token, parse_api_key, same_hash};
use crate::{Error, Result};

/// The entries a page of the audit log holds at most.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// How stale a key's last-used time may get: [`Orgs::authenticate`] writes it only when the
/// stored one is older than this, so a key used on every request costs a read, not a
/// committed write, per request.
pub const LAST_USED_GRANULARITY: Duration = Duration::from_secs(60);

/// Who makes a request, as the host authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// A signed-in user.
    User(Uuid),
    /// An org API key ([`Orgs::authenticate`]): acts as its org with its role.
    ApiKey(ApiKeyPrincipal),
    /// The host itself (a billing webhook, a scheduled task): acts as an owner of any org.
    System,
}

impl Principal {
    /// How the audit log names this principal.
    #[must_use]
    pub fn actor(&self) -> Actor {
        match self {
            Self::User(id) => Actor::User(*id),
            Self::ApiKey(key) => Actor::ApiKey(key.key_id),
            Self::System => Actor::System,
        }
    }
}

/// What [`Orgs::admit`] answers: the caller's role in the org, and the per-member daily
/// generation cap that applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Access {
    /// The caller's role in the org (an API key's role; [`Role::Owner`] for the host).
    pub role: Role,
    /// The org's [`Organization::member_daily_cap`] for a member; `None` for an API key or
    /// the host, which act as the org rather than as a member (only the org's pooled quota
    /// limits them), and when the org sets no cap.
    pub member_daily_cap: Option<u32>,
}

/// A principal and where its request came from: what every call of [`Orgs`] acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// From where (copied into audit entries).
    pub request: RequestInfo,
}

impl Caller {
    /// A signed-in user.
    #[must_use]
    pub fn user(id: Uuid) -> Self {
        Self::new(Principal::User(id))
    }

    /// An authenticated API key.
    #[must_use]
    pub fn api_key(key: ApiKeyPrincipal) -> Self {
        Self::new(Principal::ApiKey(key))
    }

    /// The host itself.
    #[must_use]
    pub fn system() -> Self {
        Self::new(Principal::System)
    }

    /// A principal with no request information.
    #[must_use]
    pub fn new(principal: Principal) -> Self {
        Self {
            principal,
            request: RequestInfo::default(),
        }
    }

    /// Where the request came from.
    #[must_use]
    pub fn request(mut self, request: RequestInfo) -> Self {
        self.request = request;
        self
    }

    fn record(&self, action: &str) -> AuditRecord {
        AuditRecord::new(self.principal.actor(), action).request(self.request.clone())
    }

    fn user_id(&self, what: &str) -> Result<Uuid> {
        match self.principal {
            Principal::User(id) => Ok(id),
            _ => Err(Error::InvalidArgument(format!(
                "only a signed-in user can {what}"
            ))),
        }
    }
}

/// Organizations, memberships, invitations, API keys and the audit log: every call checks
/// the caller's permission from [`PERMISSIONS`](crate::PERMISSIONS), then lets the store
/// write the change and its audit entry in one transaction. A cheap `Clone` handle.
pub struct Orgs<S = AnyOrgStore> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    store: S,
    invitation_ttl: Duration,
    memberships: Arc<MembershipCache>,
}

impl<S> Clone for Orgs<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Orgs<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orgs")
            .field("store", &self.inner.store)
            .field("invitation_ttl", &self.inner.invitation_ttl)
            .finish()
    }
}

fn user_target(user: Uuid) -> String {
    format!("user:{user}")
}

impl<S: OrgStore> Orgs<S> {
    /// The service over `store`, with invitations open for
    /// [`DEFAULT_INVITATION_TTL`] (7 days).
    #[must_use]
    pub fn new(store: S) -> Self {
        Self::with_invitation_ttl(store, DEFAULT_INVITATION_TTL)
    }

    /// The service over `store`, with invitations open for `ttl`.
    #[must_use]
    pub fn with_invitation_ttl(store: S, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                invitation_ttl: ttl,
                memberships: Arc::new(MembershipCache::new()),
            }),
        }
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The caller's role in the org if it has `permission` there.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`] when the org does not exist or the caller does not belong to
    /// it (a key of another org, a non-member); [`Error::Forbidden`] when its role lacks the
    /// permission; storage errors.
    pub async fn authorize(
        &self,
        caller: &Caller,
        org: Uuid,
        permission: Permission,
    ) -> Result<Role> {
        let role = match &caller.principal {
            Principal::User(user) => self.store().member(org, *user).await?.map(|m| m.role),
            Principal::ApiKey(key) if key.org_id == org => Some(key.role),
            Principal::ApiKey(_) => None,
            Principal::System => self.store().get_org(org).await?.map(|_| Role::Owner),
        };
        Self::check_permission(org, role, permission)
    }

    /// What [`authorize`](Self::authorize) checks, answering also the per-member daily
    /// generation cap that applies to the caller: for a user, the role and the org's
    /// [`Organization::member_daily_cap`] come from one store read
    /// ([`OrgStore::member_access`]); an API key has its role and no cap (it acts as the
    /// org, not as a member); the host is an owner with no cap.
    ///
    /// # Errors
    ///
    /// As [`authorize`](Self::authorize): [`Error::OrgNotFound`] when the org does not exist
    /// or the caller does not belong to it; [`Error::Forbidden`] when its role lacks the
    /// permission; storage errors.
    pub async fn admit(
        &self,
        caller: &Caller,
        org: Uuid,
        permission: Permission,
    ) -> Result<Access> {
        let access = match &caller.principal {
            Principal::User(user) => self
                .member_access(org, *user)
                .await?
                .map(|a| (a.role, a.member_daily_cap)),
            Principal::ApiKey(key) if key.org_id == org => Some((key.role, None)),
            Principal::ApiKey(_) => None,
            Principal::System => self
                .store()
                .get_org(org)
                .await?
                .map(|_| (Role::Owner, None)),
        };
        let (role, member_daily_cap) = access.ok_or(Error::OrgNotFound(org))?;
        let role = Self::check_permission(org, Some(role), permission)?;
        Ok(Access {
            role,
            member_daily_cap,
        })
    }

    /// A member's access: from the membership cache while it is live, else from the store
    /// (kept in the cache unless a change happened meanwhile).
    async fn member_access(&self, org: Uuid, user: Uuid) -> Result<Option<MemberAccess>> {
        let cache = &self.inner.memberships;
        if let Some(access) = cache.get(org, user) {
            return Ok(Some(access));
        }
        let epoch = cache.epoch();
        let access = self.store().member_access(org, user).await?;
        if let Some(access) = access {
            cache.insert(epoch, org, user, access);
        }
        Ok(access)
    }

    /// The membership cache [`admit`](Self::admit) reads: live once a feed of every
    /// process's changes is connected ([`PgOrgStore::watch`](crate::PgOrgStore::watch), or
    /// [`Orgs::watch_memberships`] over [`AnyOrgStore`]); until then every check reads the
    /// store.
    #[must_use]
    pub fn membership_cache(&self) -> &Arc<MembershipCache> {
        &self.inner.memberships
    }

    /// The role if it has `permission`; a missing role is a non-member.
    fn check_permission(org: Uuid, role: Option<Role>, permission: Permission) -> Result<Role> {
        let role = role.ok_or(Error::OrgNotFound(org))?;
        if role.can(permission) {
            Ok(role)
        } else {
            Err(Error::Forbidden { role, permission })
        }
    }

    /// Checks that `role` may grant or act on `target`: no higher than its own.
    fn check_rank(role: Role, target: Role) -> Result<()> {
        if target > role {
            Err(Error::RoleTooHigh { role, target })
        } else {
            Ok(())
        }
    }

    /// Creates an org; the calling user becomes its owner.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad name or slug or a caller that is not a user,
    /// [`Error::SlugTaken`]; storage errors.
    pub async fn create_org(&self, caller: &Caller, new: NewOrg) -> Result<Organization> {
        let user = caller.user_id("create an organization")?;
        let name = check_name(&new.name)?;
        validate_slug(&new.slug)?;
        let org = Organization {
            id: Uuid::now_v7(),
            name,
            slug: new.slug,
            created_by: user,
            created_at: self.store().now(),
            seats: new.seats,
            member_daily_cap: None,
        };
        let audit = caller
            .record("org.create")
            .target(format!("org:{}", org.id))
            .detail(json!({"name": org.name, "slug": org.slug, "seats": org.seats}));
        self.store().create_org(&org, audit).await?;
        Ok(org)
    }

    /// The user's orgs with the user's role in each.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn orgs_of(&self, user: Uuid) -> Result<Vec<(Organization, Role)>> {
        self.store().orgs_of(user).await
    }

    /// The org, for any member.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`]; storage errors.
    pub async fn get_org(&self, caller: &Caller, org: Uuid) -> Result<Organization> {
        self.authorize(caller, org, Permission::ReadApps).await?;
        self.store()
            .get_org(org)
            .await?
            .ok_or(Error::OrgNotFound(org))
    }

    /// Renames the org ([`Permission::ManageSettings`]).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::InvalidArgument`]; storage
    /// errors.
    pub async fn rename_org(&self, caller: &Caller, org: Uuid, name: &str) -> Result<Organization> {
        self.authorize(caller, org, Permission::ManageSettings)
            .await?;
        let name = check_name(name)?;
        let audit = caller
            .record("org.rename")
            .target(format!("org:{org}"))
            .detail(json!({"name": name}));
        self.store().rename_org(org, &name, audit).await
    }

    /// The org's branding, for any member (nothing set: [`Branding::empty`]).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`]; storage errors.
    pub async fn branding(&self, caller: &Caller, org: Uuid) -> Result<Branding> {
        self.authorize(caller, org, Permission::ReadApps).await?;
        self.branding_of(org).await
    }

    /// The org's branding with no caller: for what the org shows publicly (a published
    /// app's page). The host decides when that is.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn branding_of(&self, org: Uuid) -> Result<Branding> {
        Ok(self
            .store()
            .branding(org)
            .await?
            .unwrap_or_else(|| Branding::empty(org)))
    }

    /// Sets the org's display name and primary colour ([`Permission::ManageSettings`]); an
    /// empty or absent value unsets it. The colour is `#rrggbb` on which white text has a
    /// contrast ratio of at least [`MIN_CONTRAST`](crate::MIN_CONTRAST).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::InvalidArgument`] for a name
    /// too long, a colour not `#rrggbb` or with too little contrast (the message names the
    /// ratio); storage errors.
    pub async fn set_branding(
        &self,
        caller: &Caller,
        org: Uuid,
        display_name: Option<&str>,
        primary_color: Option<&str>,
    ) -> Result<Branding> {
        self.authorize(caller, org, Permission::ManageSettings)
            .await?;
        let display_name = check_display_name(display_name)?;
        let color = primary_color
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| Color::parse(c).and_then(Color::check_contrast))
            .transpose()?
            .map(|c| c.to_string());
        let audit = caller
            .record("branding.update")
            .target(format!("org:{org}"))
            .detail(json!({"displayName": display_name, "primaryColor": color}));
        self.store()
            .set_branding(org, display_name.as_deref(), color.as_deref(), audit)
            .await
    }

    /// Stores the org's logo ([`Permission::ManageSettings`]), replacing any.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`]; storage errors.
    pub async fn set_logo(&self, caller: &Caller, org: Uuid, logo: &Logo) -> Result<Branding> {
        self.authorize(caller, org, Permission::ManageSettings)
            .await?;
        let audit = caller
            .record("branding.logo")
            .target(format!("org:{org}"))
            .detail(json!({
                "mediaType": logo.media_type,
                "sha256": logo.sha256,
                "size": logo.bytes.len(),
            }));
        self.store().set_logo(org, Some(logo), audit).await
    }

    /// Removes the org's logo ([`Permission::ManageSettings`]).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`]; storage errors.
    pub async fn delete_logo(&self, caller: &Caller, org: Uuid) -> Result<Branding> {
        self.authorize(caller, org, Permission::ManageSettings)
            .await?;
        let audit = caller
            .record("branding.logo.delete")
            .target(format!("org:{org}"));
        self.store().set_logo(org, None, audit).await
    }

    /// The org's logo, for any member.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`]; storage errors.
    pub async fn logo(&self, caller: &Caller, org: Uuid) -> Result<Option<Logo>> {
        self.authorize(caller, org, Permission::ReadApps).await?;
        self.store().logo(org).await
    }

    /// The org's logo with no caller: for what the org shows publicly (a published app's
    /// page). The host decides when that is.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn logo_of(&self, org: Uuid) -> Result<Option<Logo>> {
        self.store().logo(org).await
    }

    /// Deletes the org ([`Permission::DeleteOrg`]): its members lose access at once.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`]; storage errors.
    pub async fn delete_org(&self, caller: &Caller, org: Uuid) -> Result<()> {
        self.authorize(caller, org, Permission::DeleteOrg).await?;
        let audit = caller.record("org.delete").target(format!("org:{org}"));
        {
            let done = self.store().delete_org(org, audit).await;
            self.inner.memberships.forget_org(org);
            done
        }
    }

    /// Sets the org's seats ([`Permission::Billing`]; the billing link calls it as
    /// [`Caller::system`] when the subscription quantity changes).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`]; storage errors.
    pub async fn set_seats(
        &self,
        caller: &Caller,
        org: Uuid,
        seats: Option<u32>,
    ) -> Result<Organization> {
        self.authorize(caller, org, Permission::Billing).await?;
        let audit = caller
            .record("org.seats")
            .target(format!("org:{org}"))
            .detail(json!({"seats": seats}));
        self.store().set_seats(org, seats, audit).await
    }

    /// Sets how many generations one member may start per day in the org's space
    /// ([`Permission::ManageSettings`]); `None` removes the cap, leaving only the org's
    /// pooled quota. API keys and the host are not capped (see [`Orgs::admit`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a cap of 0 (use `None` for no cap),
    /// [`Error::OrgNotFound`], [`Error::Forbidden`]; storage errors.
    pub async fn set_member_daily_cap(
        &self,
        caller: &Caller,
        org: Uuid,
        cap: Option<u32>,
    ) -> Result<Organization> {
        self.authorize(caller, org, Permission::ManageSettings)
            .await?;
        if cap == Some(0) {
            return Err(Error::InvalidArgument(
                "a member's daily cap must be at least 1 generation (None for no cap)".into(),
            ));
        }
        let audit = caller
            .record("org.member_cap")
            .target(format!("org:{org}"))
            .detail(json!({"dailyGenerations": cap}));
        {
            let done = self.store().set_member_daily_cap(org, cap, audit).await;
            self.inner.memberships.forget_org(org);
            done
        }
    }

    /// The org's members, for any member.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`]; storage errors.
    pub async fn members(&self, caller: &Caller, org: Uuid) -> Result<Vec<Member>> {
        self.authorize(caller, org, Permission::ReadApps).await?;
        self.store().members(org).await
    }

    /// Seats used (members plus open invitations) and the org's seats, for any member.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`]; storage errors.
    pub async fn seats(&self, caller: &Caller, org: Uuid) -> Result<(u32, Option<u32>)> {
        let record = self.get_org(caller, org).await?;
        Ok((self.store().seats_used(org).await?, record.seats))
    }

    /// Adds a user directly, without an invitation ([`Permission::Invite`], a role no higher
    /// than the caller's), if a seat is free.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::RoleTooHigh`],
    /// [`Error::NoSeat`], [`Error::Conflict`]; storage errors.
    pub async fn add_member(
        &self,
        caller: &Caller,
        org: Uuid,
        user: Uuid,
        role: Role,
    ) -> Result<Member> {
        let own = self.authorize(caller, org, Permission::Invite).await?;
        Self::check_rank(own, role)?;
        let audit = caller
            .record("member.add")
            .target(user_target(user))
            .detail(json!({"role": role}));
        self.store().add_member(org, user, role, audit).await
    }

    /// Changes a member's role ([`Permission::ChangeRole`]; both the member's role and the
    /// new one no higher than the caller's). Demoting the last owner is refused.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::RoleTooHigh`],
    /// [`Error::MemberNotFound`], [`Error::LastOwner`]; storage errors.
    pub async fn change_role(
        &self,
        caller: &Caller,
        org: Uuid,
        user: Uuid,
        role: Role,
    ) -> Result<Member> {
        let own = self.authorize(caller, org, Permission::ChangeRole).await?;
        let current = self
            .store()
            .member(org, user)
            .await?
            .ok_or(Error::MemberNotFound { org, user })?;
        Self::check_rank(own, current.role)?;
        Self::check_rank(own, role)?;
        let audit = caller
            .record("member.role")
            .target(user_target(user))
            .detail(json!({"from": current.role, "to": role}));
        {
            let done = self.store().change_role(org, user, role, audit).await;
            self.inner.memberships.forget_org(org);
            done
        }
    }

    /// Removes a member ([`Permission::RemoveMember`], the member's role no higher than the
    /// caller's); a user removing themselves leaves. Removing the last owner is refused.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::RoleTooHigh`],
    /// [`Error::MemberNotFound`], [`Error::LastOwner`]; storage errors.
    pub async fn remove_member(&self, caller: &Caller, org: Uuid, user: Uuid) -> Result<()> {
        if caller.principal == Principal::User(user) {
            return self.leave(caller, org).await;
        }
        let own = self
            .authorize(caller, org, Permission::RemoveMember)
            .await?;
        let current = self
            .store()
            .member(org, user)
            .await?
            .ok_or(Error::MemberNotFound { org, user })?;
        Self::check_rank(own, current.role)?;
        let audit = caller
            .record("member.remove")
            .target(user_target(user))
            .detail(json!({"role": current.role}));
        {
            let done = self.store().remove_member(org, user, audit).await;
            self.inner.memberships.forget_org(org);
            done
        }
    }

    /// The calling user leaves the org; the last owner cannot.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`] for a non-member, [`Error::LastOwner`]; storage errors.
    pub async fn leave(&self, caller: &Caller, org: Uuid) -> Result<()> {
        let user = caller.user_id("leave an organization")?;
        self.authorize(caller, org, Permission::ReadApps).await?;
        let audit = caller.record("member.leave").target(user_target(user));
        {
            let done = self.store().remove_member(org, user, audit).await;
            self.inner.memberships.forget_org(org);
            done
        }
    }

    /// Makes member `to` an owner; the calling owner becomes an admin
    /// ([`Permission::TransferOwnership`]).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::MemberNotFound`]; storage
    /// errors.
    pub async fn transfer_ownership(&self, caller: &Caller, org: Uuid, to: Uuid) -> Result<()> {
        let user = caller.user_id("transfer ownership")?;
        self.authorize(caller, org, Permission::TransferOwnership)
            .await?;
        let audit = caller.record("org.transfer").target(user_target(to));
        {
            let done = self.store().transfer_ownership(org, user, to, audit).await;
            self.inner.memberships.forget_org(org);
            done
        }
    }

    /// Invites `email` with `role` ([`Permission::Invite`], a role no higher than the
    /// caller's), if a seat is free. The token is in the answer, this once.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::RoleTooHigh`],
    /// [`Error::InvalidArgument`] for a bad email, [`Error::NoSeat`], [`Error::Conflict`]
    /// when an open invitation for the email exists; storage errors.
    pub async fn invite(
        &self,
        caller: &Caller,
        org: Uuid,
        email: &str,
        role: Role,
    ) -> Result<CreatedInvitation> {
        let own = self.authorize(caller, org, Permission::Invite).await?;
        Self::check_rank(own, role)?;
        let email = normalize_email(email)?;
        let invited_by = match &caller.principal {
            Principal::User(id) => *id,
            Principal::ApiKey(key) => key.key_id,
            Principal::System => Uuid::nil(),
        };
        let now = self.store().now();
        let ttl = chrono::Duration::from_std(self.inner.invitation_ttl)
            .map_err(|_| Error::InvalidArgument("invitation lifetime out of range".into()))?;
        let (token, token_hash) = new_invitation_token();
        let invitation = Invitation {
            id: Uuid::now_v7(),
            org_id: org,
            email,
            role,
            invited_by,
            created_at: now,
            expires_at: now + ttl,
            accepted_at: None,
            accepted_by: None,
            revoked_at: None,
            token_hash,
        };
        let audit = caller
            .record("invitation.create")
            .target(format!("invitation:{}", invitation.id))
            .detail(json!({"email": invitation.email, "role": role, "expires_at": invitation.expires_at}));
        self.store().create_invitation(&invitation, audit).await?;
        Ok(CreatedInvitation { invitation, token })
    }

    /// The org's invitations ([`Permission::Invite`]).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`]; storage errors.
    pub async fn invitations(&self, caller: &Caller, org: Uuid) -> Result<Vec<Invitation>> {
        self.authorize(caller, org, Permission::Invite).await?;
        self.store().invitations(org).await
    }

    /// Revokes an open invitation ([`Permission::Invite`]); its seat frees at once.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::InvitationNotFound`]; storage
    /// errors.
    pub async fn revoke_invitation(
        &self,
        caller: &Caller,
        org: Uuid,
        invitation: Uuid,
    ) -> Result<Invitation> {
        self.authorize(caller, org, Permission::Invite).await?;
        let audit = caller
            .record("invitation.revoke")
            .target(format!("invitation:{invitation}"));
        self.store().revoke_invitation(org, invitation, audit).await
    }

    /// The signed-in caller accepts an invitation by its token and joins with its role.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a caller that is not a user,
    /// [`Error::InvitationNotFound`] (unknown, expired, used or revoked),
    /// [`Error::Conflict`] when already a member, [`Error::NoSeat`]; storage errors.
    pub async fn accept_invitation(&self, caller: &Caller, token: &str) -> Result<Member> {
        let user = caller.user_id("accept an invitation")?;
        let audit = caller.record("invitation.accept").target(user_target(user));
        self.store()
            .accept_invitation(invitation_hash(token), user, audit)
            .await
    }

    /// Creates an org API key ([`Permission::ManageApiKeys`], a role no higher than the
    /// caller's). The key is in the answer, this once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a caller that is not a user or a blank name,
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::RoleTooHigh`]; storage errors.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        org: Uuid,
        new: NewApiKey,
    ) -> Result<CreatedApiKey> {
        let user = caller.user_id("create an API key")?;
        let own = self
            .authorize(caller, org, Permission::ManageApiKeys)
            .await?;
        Self::check_rank(own, new.role)?;
        let name = check_name(&new.name)?;
        let (token, prefix, secret_hash) = new_api_key();
        let key = ApiKey {
            id: Uuid::now_v7(),
            org_id: org,
            name,
            role: new.role,
            prefix,
            created_by: user,
            created_at: self.store().now(),
            expires_at: new.expires_at.map(crate::store::millis),
            last_used_at: None,
            revoked_at: None,
            secret_hash,
        };
        let audit = caller
            .record("api_key.create")
            .target(format!("api_key:{}", key.id))
            .detail(json!({"name": key.name, "role": key.role, "prefix": key.prefix, "expires_at": key.expires_at}));
        self.store().create_api_key(&key, audit).await?;
        Ok(CreatedApiKey { key, token })
    }

    /// The org's API keys ([`Permission::ManageApiKeys`]).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`]; storage errors.
    pub async fn api_keys(&self, caller: &Caller, org: Uuid) -> Result<Vec<ApiKey>> {
        self.authorize(caller, org, Permission::ManageApiKeys)
            .await?;
        self.store().api_keys(org).await
    }

    /// Revokes an API key ([`Permission::ManageApiKeys`]); it stops authenticating at once.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::ApiKeyNotFound`]; storage
    /// errors.
    pub async fn revoke_api_key(&self, caller: &Caller, org: Uuid, key: Uuid) -> Result<ApiKey> {
        self.authorize(caller, org, Permission::ManageApiKeys)
            .await?;
        let audit = caller
            .record("api_key.revoke")
            .target(format!("api_key:{key}"));
        self.store().revoke_api_key(org, key, audit).await
    }

    /// The principal of an `afk_...` key, if it is well formed, known, unrevoked and
    /// unexpired. The stored hash is compared in constant time; the key's last-used time is
    /// updated when the stored one is older than [`LAST_USED_GRANULARITY`].
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiKeyPrincipal>> {
        let Some((prefix, hash)) = parse_api_key(token) else {
            return Ok(None);
        };
        let Some(key) = self.store().api_key_by_prefix(prefix).await? else {
            return Ok(None);
        };
        let now = self.store().now();
        if !same_hash(&key.secret_hash, &hash) || !key.is_active(now) {
            return Ok(None);
        }
        let stale = key.last_used_at.is_none_or(|at| {
            (now - at)
                .to_std()
                .is_ok_and(|age| age >= LAST_USED_GRANULARITY)
        });
        if stale {
            self.store().touch_api_key(key.id, now).await?;
        }
        Ok(Some(ApiKeyPrincipal {
            key_id: key.id,
            org_id: key.org_id,
            role: key.role,
            name: key.name,
        }))
    }

    /// Records an action the host performed in the org (publishing an app, retrying a job,
    /// changing a setting): the host checked the permission. Keep secrets out of `detail`.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn record(
        &self,
        caller: &Caller,
        org: Uuid,
        action: &str,
        target: Option<String>,
        detail: serde_json::Value,
    ) -> Result<AuditEntry> {
        let mut record = caller.record(action).detail(detail);
        record.target = target;
        self.store().append_audit(org, record).await
    }

    /// A page of the org's audit log ([`Permission::ReadAudit`]).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`], [`Error::Forbidden`], [`Error::InvalidArgument`] for a limit
    /// outside 1 to [`MAX_AUDIT_PAGE`]; storage errors.
    pub async fn audit(
        &self,
        caller: &Caller,
        org: Uuid,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>> {
        self.authorize(caller, org, Permission::ReadAudit).await?;
        check_limit(query.limit)?;
        self.store().audit_page(org, query).await
    }

    /// Checks the org's chain over `range` and returns how many entries were checked.
    ///
    /// Every entry's hash must match its previous hash and canonical content, each must
    /// follow the one before (consecutive numbers, previous hash equal to its hash). Over the
    /// whole log the first entry must be the head's first kept one and the last the head's
    /// last; a range starting later is linked to the entry before it. After a retention
    /// purge the chain starts from the first kept entry, whose stored previous hash is taken
    /// as given.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenLink`] naming the first broken link; storage errors.
    pub async fn verify_audit(&self, org: Uuid, range: AuditRange) -> Result<u64> {
        const PAGE: u32 = 500;
        let Some(head) = self.store().audit_head(org).await? else {
            return Ok(0);
        };
        let mut check = ChainCheck::new(None);
        let mut checked = 0;
        loop {
            let after = check.last_seq().unwrap_or(0);
            let page = self
                .store()
                .audit_page(org, &AuditQuery::new(range, PAGE).after(after))
                .await?;
            for entry in &page {
                if check.last_seq().is_none() {
                    check = self.anchor(org, &head, &range, entry).await?;
                }
                check.next(entry).map_err(Error::BrokenLink)?;
                checked += 1;
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        if range.to.is_none() && (range.from.is_none() || check.last_seq().is_some()) {
            check.finish(&head).map_err(Error::BrokenLink)?;
        }
        Ok(checked)
    }

    /// The check the first entry of a range starts from.
    async fn anchor(
        &self,
        org: Uuid,
        head: &crate::audit::AuditHead,
        range: &AuditRange,
        first: &AuditEntry,
    ) -> Result<ChainCheck> {
        if first.seq <= head.first_seq {
            if first.seq < head.first_seq {
                // An entry the head says was purged: the head was altered, or the entry.
                return Err(Error::BrokenLink(crate::audit::altered(first)));
            }
            return Ok(ChainCheck::new(None));
        }
        if range.from.is_none() {
            return Err(Error::BrokenLink(crate::audit::missing(head.first_seq)));
        }
        let before = self
            .store()
            .audit_page(
                org,
                &AuditQuery::new(AuditRange::all(), 1).after(first.seq - 2),
            )
            .await?;
        match before.first() {
            Some(prev) if prev.seq + 1 == first.seq => {
                Ok(ChainCheck::new(Some((prev.seq, prev.hash))))
            }
            _ => Err(Error::BrokenLink(crate::audit::missing(first.seq - 1))),
        }
    }

    /// Removes the audit entries recorded before `before`, of one org or all (retention).
    /// Returns how many.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn purge_audit_before(
        &self,
        org: Option<Uuid>,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.store().purge_audit(org, before).await
    }
}

pub(crate) fn check_limit(limit: u32) -> Result<()> {
    if (1..=MAX_AUDIT_PAGE).contains(&limit) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "a page holds 1 to {MAX_AUDIT_PAGE} entries, not {limit}"
        )))
    }
}

impl Orgs<AnyOrgStore> {
    /// Turns the membership cache on over PostgreSQL: starts the store's feed of every
    /// process's changes ([`PgOrgStore::watch`](crate::PgOrgStore::watch)) and answers its
    /// task (abort it to stop). On the memory and SQLite stores nothing is started (`None`)
    /// and every check reads the store, which is local and fast there.
    #[must_use]
    pub fn watch_memberships(&self) -> Option<WatchHandle> {
        match self.store() {
            #[cfg(feature = "postgres")]
            AnyOrgStore::Postgres(store) => Some(store.watch(Arc::clone(&self.inner.memberships))),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// The task that keeps the membership cache in step ([`Orgs::watch_memberships`]).
#[cfg(feature = "postgres")]
pub type WatchHandle = tokio::task::JoinHandle<()>;
/// The task that keeps the membership cache in step ([`Orgs::watch_memberships`]); without
/// the `postgres` feature there is none.
#[cfg(not(feature = "postgres"))]
pub type WatchHandle = std::convert::Infallible;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::audit::AuditHead;
    use crate::org::MemberAccess;

    /// A store that answers `member_access` for one membership and counts the calls; any
    /// other read or write panics.
    #[derive(Debug)]
    struct OnlyMemberAccess {
        org: Uuid,
        user: Uuid,
        calls: AtomicUsize,
    }

    #[allow(unused_variables)]
    impl OrgStore for OnlyMemberAccess {
        fn now(&self) -> DateTime<Utc> {
            Utc::now()
        }

        async fn create_org(&self, org: &Organization, audit: AuditRecord) -> Result<()> {
            unreachable!("admit reads member_access only")
        }

        async fn get_org(&self, org: Uuid) -> Result<Option<Organization>> {
            unreachable!("admit reads member_access only")
        }

        async fn orgs_of(&self, user: Uuid) -> Result<Vec<(Organization, Role)>> {
            unreachable!("admit reads member_access only")
        }

        async fn rename_org(
            &self,
            org: Uuid,
            name: &str,
            audit: AuditRecord,
        ) -> Result<Organization> {
            unreachable!("admit reads member_access only")
        }

        async fn set_seats(
            &self,
            org: Uuid,
            seats: Option<u32>,
            audit: AuditRecord,
        ) -> Result<Organization> {
            unreachable!("admit reads member_access only")
        }

        async fn set_member_daily_cap(
            &self,
            org: Uuid,
            cap: Option<u32>,
            audit: AuditRecord,
        ) -> Result<Organization> {
            unreachable!("admit reads member_access only")
        }

        async fn delete_org(&self, org: Uuid, audit: AuditRecord) -> Result<()> {
            unreachable!("admit reads member_access only")
        }

        async fn member(&self, org: Uuid, user: Uuid) -> Result<Option<Member>> {
            unreachable!("admit reads member_access only")
        }

        async fn member_access(&self, org: Uuid, user: Uuid) -> Result<Option<MemberAccess>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(((org, user) == (self.org, self.user))
                .then(|| MemberAccess::new(Role::Member, Some(7))))
        }

        async fn members(&self, org: Uuid) -> Result<Vec<Member>> {
            unreachable!("admit reads member_access only")
        }

        async fn seats_used(&self, org: Uuid) -> Result<u32> {
            unreachable!("admit reads member_access only")
        }

        async fn add_member(
            &self,
            org: Uuid,
            user: Uuid,
            role: Role,
            audit: AuditRecord,
        ) -> Result<Member> {
            unreachable!("admit reads member_access only")
        }

        async fn change_role(
            &self,
            org: Uuid,
            user: Uuid,
            role: Role,
            audit: AuditRecord,
        ) -> Result<Member> {
            unreachable!("admit reads member_access only")
        }

        async fn remove_member(&self, org: Uuid, user: Uuid, audit: AuditRecord) -> Result<()> {
            unreachable!("admit reads member_access only")
        }

        async fn transfer_ownership(
            &self,
            org: Uuid,
            from: Uuid,
            to: Uuid,
            audit: AuditRecord,
        ) -> Result<()> {
            unreachable!("admit reads member_access only")
        }

        async fn create_invitation(
            &self,
            invitation: &Invitation,
            audit: AuditRecord,
        ) -> Result<()> {
            unreachable!("admit reads member_access only")
        }

        async fn invitations(&self, org: Uuid) -> Result<Vec<Invitation>> {
            unreachable!("admit reads member_access only")
        }

        async fn revoke_invitation(
            &self,
            org: Uuid,
            invitation: Uuid,
            audit: AuditRecord,
        ) -> Result<Invitation> {
            unreachable!("admit reads member_access only")
        }

        async fn accept_invitation(
            &self,
            token_hash: [u8; 32],
            user: Uuid,
            audit: AuditRecord,
        ) -> Result<Member> {
            unreachable!("admit reads member_access only")
        }

        async fn create_api_key(&self, key: &ApiKey, audit: AuditRecord) -> Result<()> {
            unreachable!("admit reads member_access only")
        }

        async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
            unreachable!("admit reads member_access only")
        }

        async fn touch_api_key(&self, key: Uuid, at: DateTime<Utc>) -> Result<()> {
            unreachable!("admit reads member_access only")
        }

        async fn api_keys(&self, org: Uuid) -> Result<Vec<ApiKey>> {
            unreachable!("admit reads member_access only")
        }

        async fn revoke_api_key(&self, org: Uuid, key: Uuid, audit: AuditRecord) -> Result<ApiKey> {
            unreachable!("admit reads member_access only")
        }

        async fn branding(&self, org: Uuid) -> Result<Option<Branding>> {
            unreachable!("admit reads member_access only")
        }

        async fn set_branding(
            &self,
            org: Uuid,
            display_name: Option<&str>,
            primary_color: Option<&str>,
            audit: AuditRecord,
        ) -> Result<Branding> {
            unreachable!("admit reads member_access only")
        }

        async fn set_logo(
            &self,
            org: Uuid,
            logo: Option<&Logo>,
            audit: AuditRecord,
        ) -> Result<Branding> {
            unreachable!("admit reads member_access only")
        }

        async fn logo(&self, org: Uuid) -> Result<Option<Logo>> {
            unreachable!("admit reads member_access only")
        }

        async fn append_audit(&self, org: Uuid, record: AuditRecord) -> Result<AuditEntry> {
            unreachable!("admit reads member_access only")
        }

        async fn audit_page(&self, org: Uuid, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
            unreachable!("admit reads member_access only")
        }

        async fn audit_head(&self, org: Uuid) -> Result<Option<AuditHead>> {
            unreachable!("admit reads member_access only")
        }

        async fn purge_audit(&self, org: Option<Uuid>, before: DateTime<Utc>) -> Result<u64> {
            unreachable!("admit reads member_access only")
        }
    }

    /// For a user, `admit` is one store read: `member_access` answers the role and the cap.
    #[tokio::test]
    async fn admit_reads_the_store_once_for_a_user() {
        let (org, user) = (Uuid::new_v4(), Uuid::new_v4());
        let orgs = Orgs::new(OnlyMemberAccess {
            org,
            user,
            calls: AtomicUsize::new(0),
        });
        let access = orgs
            .admit(&Caller::user(user), org, Permission::Generate)
            .await
            .unwrap();
        assert_eq!(
            (access.role, access.member_daily_cap),
            (Role::Member, Some(7))
        );
        assert_eq!(orgs.store().calls.load(Ordering::SeqCst), 1);

        let err = orgs
            .admit(&Caller::user(user), org, Permission::ManageSettings)
            .await
            .unwrap_err();
        assert!(err.is_forbidden(), "{err}");
        let outsider = orgs
            .admit(&Caller::user(Uuid::new_v4()), org, Permission::ReadApps)
            .await
            .unwrap_err();
        assert!(outsider.is_not_found(), "{outsider}");
        assert_eq!(orgs.store().calls.load(Ordering::SeqCst), 3);
    }
}
