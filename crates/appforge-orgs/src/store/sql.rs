//! What the SQL stores share: the migration table, row types and conversions.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api_key::ApiKey;
use crate::audit::{Actor, AuditEntry, AuditHead};
use crate::invitation::Invitation;
use crate::org::{Member, MemberAccess, Organization};
use crate::role::Role;
use crate::{Error, Result};

/// The migration table of this crate, so that several crates share one database.
pub(crate) const MIGRATIONS_TABLE: &str = "_appforge_orgs_migrations";

/// The columns of an org row, in [`OrgRow`]'s order.
pub(crate) const ORG_COLUMNS: &str =
    "id, name, slug, created_by, created_at, seats, member_daily_cap";
/// The columns of an org row with the alias `o`, in [`OrgRow`]'s order (for joins).
pub(crate) const ORG_COLUMNS_O: &str =
    "o.id, o.name, o.slug, o.created_by, o.created_at, o.seats, o.member_daily_cap";
/// The columns of a member row.
pub(crate) const MEMBER_COLUMNS: &str = "org_id, user_id, role, joined_at";
/// The columns of an invitation row.
pub(crate) const INVITATION_COLUMNS: &str = "id, org_id, email, role, invited_by, created_at, \
     expires_at, accepted_at, accepted_by, revoked_at, token_hash";
/// The columns of an API key row.
pub(crate) const KEY_COLUMNS: &str = "id, org_id, name, role, prefix, secret_hash, created_by, \
     created_at, expires_at, last_used_at, revoked_at";

/// A stored time: microseconds since the epoch on SQLite
/// ([`appforge_core::db::decode_time`]), `timestamptz` on PostgreSQL.
pub(crate) trait Stamp {
    fn time(self, column: &str) -> Result<DateTime<Utc>>;
}

#[cfg(feature = "sqlite")]
impl Stamp for i64 {
    fn time(self, column: &str) -> Result<DateTime<Utc>> {
        appforge_core::db::decode_time(self).map_err(|e| Error::Corrupt(format!("{column}: {e}")))
    }
}

impl Stamp for DateTime<Utc> {
    fn time(self, _column: &str) -> Result<DateTime<Utc>> {
        Ok(self)
    }
}

fn opt_time<T: Stamp>(value: Option<T>, column: &str) -> Result<Option<DateTime<Utc>>> {
    value.map(|t| t.time(column)).transpose()
}

fn role(value: &str) -> Result<Role> {
    value
        .parse()
        .map_err(|_| Error::Corrupt(format!("unknown role {value:?}")))
}

pub(crate) fn hash(column: &str, value: &[u8]) -> Result<[u8; 32]> {
    value
        .try_into()
        .map_err(|_| Error::Corrupt(format!("{column} is {} bytes, not 32", value.len())))
}

fn seq(column: &str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("{column} is negative ({value})")))
}

/// A sequence number as stored.
pub(crate) fn stored_seq(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Seats as stored.
pub(crate) fn stored_seats(value: Option<u32>) -> Option<i64> {
    value.map(i64::from)
}

/// A per-member daily cap as stored.
pub(crate) fn stored_cap(value: Option<u32>) -> Option<i64> {
    value.map(i64::from)
}

/// An optional `u32` column (seats, a cap) read back.
fn opt_u32(column: &str, value: Option<i64>) -> Result<Option<u32>> {
    value
        .map(|v| u32::try_from(v).map_err(|_| Error::Corrupt(format!("{column} {v}"))))
        .transpose()
}

/// A count read from the database.
pub(crate) fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// An `orgs` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OrgRow<T> {
    id: Uuid,
    name: String,
    slug: String,
    created_by: Uuid,
    created_at: T,
    seats: Option<i64>,
    member_daily_cap: Option<i64>,
}

impl<T: Stamp> OrgRow<T> {
    pub(crate) fn into_org(self) -> Result<Organization> {
        Ok(Organization {
            id: self.id,
            name: self.name,
            slug: self.slug,
            created_by: self.created_by,
            created_at: self.created_at.time("created_at")?,
            seats: opt_u32("seats", self.seats)?,
            member_daily_cap: opt_u32("member_daily_cap", self.member_daily_cap)?,
        })
    }
}

/// An `org_members` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MemberRow<T> {
    org_id: Uuid,
    user_id: Uuid,
    role: String,
    joined_at: T,
}

impl<T: Stamp> MemberRow<T> {
    pub(crate) fn into_member(self) -> Result<Member> {
        Ok(Member {
            org_id: self.org_id,
            user_id: self.user_id,
            role: role(&self.role)?,
            joined_at: self.joined_at.time("joined_at")?,
        })
    }
}

/// An org row joined with the user's role.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OrgRoleRow<T> {
    #[sqlx(flatten)]
    org: OrgRow<T>,
    role: String,
}

impl<T: Stamp> OrgRoleRow<T> {
    pub(crate) fn into_pair(self) -> Result<(Organization, Role)> {
        Ok((self.org.into_org()?, role(&self.role)?))
    }
}

/// A member's role joined with the org's per-member daily cap.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MemberAccessRow {
    role: String,
    member_daily_cap: Option<i64>,
}

impl MemberAccessRow {
    pub(crate) fn into_access(self) -> Result<MemberAccess> {
        Ok(MemberAccess::new(
            role(&self.role)?,
            opt_u32("member_daily_cap", self.member_daily_cap)?,
        ))
    }
}

/// An `org_invitations` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InvitationRow<T> {
    id: Uuid,
    org_id: Uuid,
    email: String,
    role: String,
    invited_by: Uuid,
    created_at: T,
    expires_at: T,
    accepted_at: Option<T>,
    accepted_by: Option<Uuid>,
    revoked_at: Option<T>,
    token_hash: Vec<u8>,
}

impl<T: Stamp> InvitationRow<T> {
    pub(crate) fn into_invitation(self) -> Result<Invitation> {
        Ok(Invitation {
            id: self.id,
            org_id: self.org_id,
            email: self.email,
            role: role(&self.role)?,
            invited_by: self.invited_by,
            created_at: self.created_at.time("created_at")?,
            expires_at: self.expires_at.time("expires_at")?,
            accepted_at: opt_time(self.accepted_at, "accepted_at")?,
            accepted_by: self.accepted_by,
            revoked_at: opt_time(self.revoked_at, "revoked_at")?,
            token_hash: hash("token_hash", &self.token_hash)?,
        })
    }
}

/// An `org_api_keys` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct KeyRow<T> {
    id: Uuid,
    org_id: Uuid,
    name: String,
    role: String,
    prefix: String,
    secret_hash: Vec<u8>,
    created_by: Uuid,
    created_at: T,
    expires_at: Option<T>,
    last_used_at: Option<T>,
    revoked_at: Option<T>,
}

impl<T: Stamp> KeyRow<T> {
    pub(crate) fn into_key(self) -> Result<ApiKey> {
        Ok(ApiKey {
            id: self.id,
            org_id: self.org_id,
            name: self.name,
            role: role(&self.role)?,
            prefix: self.prefix,
            created_by: self.created_by,
            created_at: self.created_at.time("created_at")?,
            expires_at: opt_time(self.expires_at, "expires_at")?,
            last_used_at: opt_time(self.last_used_at, "last_used_at")?,
            revoked_at: opt_time(self.revoked_at, "revoked_at")?,
            secret_hash: hash("secret_hash", &self.secret_hash)?,
        })
    }
}

/// An `org_audit_log` row (the detail as JSON text).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditRow<T> {
    id: Uuid,
    org_id: Uuid,
    seq: i64,
    time: T,
    actor_kind: String,
    actor_id: Option<Uuid>,
    action: String,
    target: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    detail: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl<T: Stamp> AuditRow<T> {
    pub(crate) fn into_entry(self) -> Result<AuditEntry> {
        Ok(AuditEntry {
            id: self.id,
            org_id: self.org_id,
            seq: seq("seq", self.seq)?,
            time: self.time.time("time")?,
            actor: Actor::from_parts(&self.actor_kind, self.actor_id)?,
            action: self.action,
            target: self.target,
            ip: self.ip,
            user_agent: self.user_agent,
            request_id: self.request_id,
            detail: serde_json::from_str(&self.detail)
                .map_err(|e| Error::Corrupt(format!("audit detail: {e}")))?,
            prev_hash: hash("prev_hash", &self.prev_hash)?,
            hash: hash("hash", &self.hash)?,
        })
    }
}

/// An `org_audit_heads` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct HeadRow {
    org_id: Uuid,
    first_seq: i64,
    last_seq: i64,
    last_hash: Vec<u8>,
}

impl HeadRow {
    pub(crate) fn into_head(self) -> Result<AuditHead> {
        let mut head = AuditHead::empty(self.org_id);
        head.first_seq = seq("first_seq", self.first_seq)?;
        head.last_seq = seq("last_seq", self.last_seq)?;
        head.last_hash = hash("last_hash", &self.last_hash)?;
        Ok(head)
    }
}

/// The columns of a branding row, in `BrandingRow`'s order.
pub(crate) const BRANDING_COLUMNS: &str =
    "org_id, display_name, primary_color, logo_type, logo_sha256, logo_size, updated_at";

/// An `org_branding` row, without the logo's bytes.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct BrandingRow<T> {
    org_id: Uuid,
    display_name: Option<String>,
    primary_color: Option<String>,
    logo_type: Option<String>,
    logo_sha256: Option<String>,
    logo_size: Option<i64>,
    updated_at: T,
}

impl<T: Stamp> BrandingRow<T> {
    pub(crate) fn into_branding(self) -> Result<crate::Branding> {
        let logo = match (self.logo_type, self.logo_sha256, self.logo_size) {
            (Some(media_type), Some(sha256), Some(size)) => Some(crate::LogoInfo {
                media_type,
                sha256,
                size: count(size),
            }),
            _ => None,
        };
        Ok(crate::Branding {
            org_id: self.org_id,
            display_name: self.display_name,
            primary_color: self.primary_color,
            logo,
            updated_at: Some(self.updated_at.time("updated_at")?),
        })
    }
}

/// A stored logo's columns.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LogoRow {
    logo: Option<Vec<u8>>,
    logo_type: Option<String>,
    logo_sha256: Option<String>,
}

impl LogoRow {
    pub(crate) fn into_logo(self) -> Option<crate::Logo> {
        Some(crate::Logo {
            bytes: self.logo?,
            media_type: self.logo_type?,
            sha256: self.logo_sha256?,
        })
    }
}

/// A logo's size as stored.
pub(crate) fn stored_size(logo: &crate::Logo) -> i64 {
    i64::try_from(logo.bytes.len()).unwrap_or(i64::MAX)
}
