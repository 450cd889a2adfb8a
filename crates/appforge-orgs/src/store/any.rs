use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::OrgStore;
use super::memory::MemoryOrgStore;
#[cfg(feature = "postgres")]
use super::postgres::PgOrgStore;
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteOrgStore;
use crate::api_key::ApiKey;
use crate::audit::{AuditEntry, AuditHead, AuditQuery, AuditRecord};
use crate::branding::{Branding, Logo};
use crate::invitation::Invitation;
use crate::org::{Member, MemberAccess, Organization};
use crate::role::Role;
use crate::{Error, Result};

/// An org store chosen at run time: memory, SQLite or PostgreSQL.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_orgs::Result<()> {
/// use appforge_orgs::AnyOrgStore;
///
/// let store = AnyOrgStore::connect("memory:").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyOrgStore {
    /// In process memory.
    Memory(MemoryOrgStore),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(SqliteOrgStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(PgOrgStore),
}

macro_rules! dispatch {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            AnyOrgStore::Memory($store) => $call,
            #[cfg(feature = "sqlite")]
            AnyOrgStore::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            AnyOrgStore::Postgres($store) => $call,
        }
    };
}

impl AnyOrgStore {
    /// Opens the store a URL names: `sqlite://...`, `postgres://...` (or `postgresql://`), or
    /// `memory:`. Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a scheme that is unknown or whose feature is off;
    /// connection errors.
    pub async fn connect(url: &str) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "memory" => Ok(Self::Memory(MemoryOrgStore::new())),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(SqliteOrgStore::connect(url).await?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(PgOrgStore::connect(url).await?)),
            other => Err(Error::InvalidArgument(format!(
                "unsupported org store URL scheme {other:?} (memory:, sqlite:// with the \
                 `sqlite` feature, postgres:// with the `postgres` feature)"
            ))),
        }
    }

    /// Reads time from `clock` (the system clock by default).
    #[must_use]
    pub fn with_clock(self, clock: appforge_core::SharedClock) -> Self {
        match self {
            Self::Memory(s) => Self::Memory(s.with_clock(clock)),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => Self::Sqlite(s.with_clock(clock)),
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => Self::Postgres(s.with_clock(clock)),
        }
    }

    /// Creates or updates the tables (nothing to do in memory).
    ///
    /// # Errors
    ///
    /// Migration errors.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s.migrate().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => s.migrate().await,
        }
    }
}

impl From<MemoryOrgStore> for AnyOrgStore {
    fn from(store: MemoryOrgStore) -> Self {
        Self::Memory(store)
    }
}

#[cfg(feature = "sqlite")]
impl From<SqliteOrgStore> for AnyOrgStore {
    fn from(store: SqliteOrgStore) -> Self {
        Self::Sqlite(store)
    }
}

#[cfg(feature = "postgres")]
impl From<PgOrgStore> for AnyOrgStore {
    fn from(store: PgOrgStore) -> Self {
        Self::Postgres(store)
    }
}

impl OrgStore for AnyOrgStore {
    fn now(&self) -> DateTime<Utc> {
        dispatch!(self, s => s.now())
    }

    async fn create_org(&self, org: &Organization, audit: AuditRecord) -> Result<()> {
        dispatch!(self, s => s.create_org(org, audit).await)
    }

    async fn get_org(&self, org: Uuid) -> Result<Option<Organization>> {
        dispatch!(self, s => s.get_org(org).await)
    }

    async fn orgs_of(&self, user: Uuid) -> Result<Vec<(Organization, Role)>> {
        dispatch!(self, s => s.orgs_of(user).await)
    }

    async fn rename_org(&self, org: Uuid, name: &str, audit: AuditRecord) -> Result<Organization> {
        dispatch!(self, s => s.rename_org(org, name, audit).await)
    }

    async fn set_seats(
        &self,
        org: Uuid,
        seats: Option<u32>,
        audit: AuditRecord,
    ) -> Result<Organization> {
        dispatch!(self, s => s.set_seats(org, seats, audit).await)
    }

    async fn set_member_daily_cap(
        &self,
        org: Uuid,
        cap: Option<u32>,
        audit: AuditRecord,
    ) -> Result<Organization> {
        dispatch!(self, s => s.set_member_daily_cap(org, cap, audit).await)
    }

    async fn delete_org(&self, org: Uuid, audit: AuditRecord) -> Result<()> {
        dispatch!(self, s => s.delete_org(org, audit).await)
    }

    async fn member(&self, org: Uuid, user: Uuid) -> Result<Option<Member>> {
        dispatch!(self, s => s.member(org, user).await)
    }

    async fn member_access(&self, org: Uuid, user: Uuid) -> Result<Option<MemberAccess>> {
        dispatch!(self, s => s.member_access(org, user).await)
    }

    async fn members(&self, org: Uuid) -> Result<Vec<Member>> {
        dispatch!(self, s => s.members(org).await)
    }

    async fn seats_used(&self, org: Uuid) -> Result<u32> {
        dispatch!(self, s => s.seats_used(org).await)
    }

    async fn add_member(
        &self,
        org: Uuid,
        user: Uuid,
        role: Role,
        audit: AuditRecord,
    ) -> Result<Member> {
        dispatch!(self, s => s.add_member(org, user, role, audit).await)
    }

    async fn change_role(
        &self,
        org: Uuid,
        user: Uuid,
        role: Role,
        audit: AuditRecord,
    ) -> Result<Member> {
        dispatch!(self, s => s.change_role(org, user, role, audit).await)
    }

    async fn remove_member(&self, org: Uuid, user: Uuid, audit: AuditRecord) -> Result<()> {
        dispatch!(self, s => s.remove_member(org, user, audit).await)
    }

    async fn transfer_ownership(
        &self,
        org: Uuid,
        from: Uuid,
        to: Uuid,
        audit: AuditRecord,
    ) -> Result<()> {
        dispatch!(self, s => s.transfer_ownership(org, from, to, audit).await)
    }

    async fn create_invitation(&self, invitation: &Invitation, audit: AuditRecord) -> Result<()> {
        dispatch!(self, s => s.create_invitation(invitation, audit).await)
    }

    async fn invitations(&self, org: Uuid) -> Result<Vec<Invitation>> {
        dispatch!(self, s => s.invitations(org).await)
    }

    async fn revoke_invitation(
        &self,
        org: Uuid,
        invitation: Uuid,
        audit: AuditRecord,
    ) -> Result<Invitation> {
        dispatch!(self, s => s.revoke_invitation(org, invitation, audit).await)
    }

    async fn accept_invitation(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        audit: AuditRecord,
    ) -> Result<Member> {
        dispatch!(self, s => s.accept_invitation(token_hash, user, audit).await)
    }

    async fn create_api_key(&self, key: &ApiKey, audit: AuditRecord) -> Result<()> {
        dispatch!(self, s => s.create_api_key(key, audit).await)
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        dispatch!(self, s => s.api_key_by_prefix(prefix).await)
    }

    async fn touch_api_key(&self, key: Uuid, at: DateTime<Utc>) -> Result<()> {
        dispatch!(self, s => s.touch_api_key(key, at).await)
    }

    async fn api_keys(&self, org: Uuid) -> Result<Vec<ApiKey>> {
        dispatch!(self, s => s.api_keys(org).await)
    }

    async fn revoke_api_key(&self, org: Uuid, key: Uuid, audit: AuditRecord) -> Result<ApiKey> {
        dispatch!(self, s => s.revoke_api_key(org, key, audit).await)
    }

    async fn branding(&self, org: Uuid) -> Result<Option<Branding>> {
        dispatch!(self, s => s.branding(org).await)
    }

    async fn set_branding(
        &self,
        org: Uuid,
        display_name: Option<&str>,
        primary_color: Option<&str>,
        audit: AuditRecord,
    ) -> Result<Branding> {
        dispatch!(self, s => s.set_branding(org, display_name, primary_color, audit).await)
    }

    async fn set_logo(
        &self,
        org: Uuid,
        logo: Option<&Logo>,
        audit: AuditRecord,
    ) -> Result<Branding> {
        dispatch!(self, s => s.set_logo(org, logo, audit).await)
    }

    async fn logo(&self, org: Uuid) -> Result<Option<Logo>> {
        dispatch!(self, s => s.logo(org).await)
    }

    async fn append_audit(&self, org: Uuid, record: AuditRecord) -> Result<AuditEntry> {
        dispatch!(self, s => s.append_audit(org, record).await)
    }

    async fn audit_page(&self, org: Uuid, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        dispatch!(self, s => s.audit_page(org, query).await)
    }

    async fn audit_head(&self, org: Uuid) -> Result<Option<AuditHead>> {
        dispatch!(self, s => s.audit_head(org).await)
    }

    async fn purge_audit(&self, org: Option<Uuid>, before: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.purge_audit(org, before).await)
    }
}
