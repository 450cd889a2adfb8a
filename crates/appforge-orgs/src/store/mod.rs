//! The org store trait and its backends.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Result;
use crate::api_key::ApiKey;
use crate::audit::{AuditEntry, AuditHead, AuditQuery, AuditRecord};
use crate::branding::{Branding, Logo};
use crate::invitation::Invitation;
use crate::org::{Member, MemberAccess, Organization};
use crate::role::Role;

pub(crate) mod any;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// Where organizations, memberships, invitations, API keys and the audit log live.
///
/// The store enforces the rules that need atomicity: every write that takes an
/// [`AuditRecord`] appends it to the org's chain in the same transaction (both happen or
/// neither), the last owner is never removed or demoted, members plus open invitations never
/// exceed the org's seats, an invitation is accepted once. Permissions are checked by
/// [`Orgs`](crate::Orgs) before it calls the store.
///
/// Each write is atomic: a lock in memory, one `BEGIN IMMEDIATE` transaction on SQLite, one
/// transaction holding the org's row lock (and its audit head's) on PostgreSQL.
pub trait OrgStore: Send + Sync + fmt::Debug {
    /// The store's current time, to the millisecond.
    fn now(&self) -> DateTime<Utc>;

    /// Stores a new org with `org.created_by` as its owner.
    ///
    /// # Errors
    ///
    /// [`Error::SlugTaken`](crate::Error::SlugTaken); storage errors.
    fn create_org(
        &self,
        org: &Organization,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The org, if it exists.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn get_org(&self, org: Uuid) -> impl Future<Output = Result<Option<Organization>>> + Send;

    /// The user's orgs and roles, oldest membership first.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn orgs_of(&self, user: Uuid)
    -> impl Future<Output = Result<Vec<(Organization, Role)>>> + Send;

    /// Renames the org.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound); storage errors.
    fn rename_org(
        &self,
        org: Uuid,
        name: &str,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Organization>> + Send;

    /// Sets the org's seats (`None`: no limit). Lowering them below what is used is allowed:
    /// nobody is removed, but no one joins until a seat frees.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound); storage errors.
    fn set_seats(
        &self,
        org: Uuid,
        seats: Option<u32>,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Organization>> + Send;

    /// Sets the org's per-member daily generation cap (`None`: no cap).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound); storage errors.
    fn set_member_daily_cap(
        &self,
        org: Uuid,
        cap: Option<u32>,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Organization>> + Send;

    /// Deletes the org with its memberships, invitations and keys; its audit log stays
    /// (with the deletion as its last entry) until purged.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound); storage errors.
    fn delete_org(&self, org: Uuid, audit: AuditRecord) -> impl Future<Output = Result<()>> + Send;

    /// The user's membership of the org.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn member(&self, org: Uuid, user: Uuid) -> impl Future<Output = Result<Option<Member>>> + Send;

    /// The user's role in the org and the org's per-member daily cap, in one read (one
    /// query joining the membership and the org on SQL stores); `None` for a non-member.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn member_access(
        &self,
        org: Uuid,
        user: Uuid,
    ) -> impl Future<Output = Result<Option<MemberAccess>>> + Send;

    /// The org's members, by join time.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn members(&self, org: Uuid) -> impl Future<Output = Result<Vec<Member>>> + Send;

    /// Members plus open invitations: the seats used.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn seats_used(&self, org: Uuid) -> impl Future<Output = Result<u32>> + Send;

    /// Adds a member, if a seat is free.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound), [`Error::NoSeat`](crate::Error::NoSeat),
    /// [`Error::Conflict`](crate::Error::Conflict) when already a member; storage errors.
    fn add_member(
        &self,
        org: Uuid,
        user: Uuid,
        role: Role,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Member>> + Send;

    /// Changes a member's role; demoting the last owner is refused.
    ///
    /// # Errors
    ///
    /// [`Error::MemberNotFound`](crate::Error::MemberNotFound),
    /// [`Error::LastOwner`](crate::Error::LastOwner); storage errors.
    fn change_role(
        &self,
        org: Uuid,
        user: Uuid,
        role: Role,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Member>> + Send;

    /// Removes a member; removing the last owner is refused.
    ///
    /// # Errors
    ///
    /// [`Error::MemberNotFound`](crate::Error::MemberNotFound),
    /// [`Error::LastOwner`](crate::Error::LastOwner); storage errors.
    fn remove_member(
        &self,
        org: Uuid,
        user: Uuid,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Makes `to` (a member) an owner and `from` (an owner) an admin, in one step.
    ///
    /// # Errors
    ///
    /// [`Error::MemberNotFound`](crate::Error::MemberNotFound) for either, or when `from`
    /// is not an owner; storage errors.
    fn transfer_ownership(
        &self,
        org: Uuid,
        from: Uuid,
        to: Uuid,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Stores an invitation, if a seat is free and no open invitation exists for its email.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound), [`Error::NoSeat`](crate::Error::NoSeat),
    /// [`Error::Conflict`](crate::Error::Conflict); storage errors.
    fn create_invitation(
        &self,
        invitation: &Invitation,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The org's invitations, newest first (open or not).
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn invitations(&self, org: Uuid) -> impl Future<Output = Result<Vec<Invitation>>> + Send;

    /// Revokes an open invitation.
    ///
    /// # Errors
    ///
    /// [`Error::InvitationNotFound`](crate::Error::InvitationNotFound) when it is not open;
    /// storage errors.
    fn revoke_invitation(
        &self,
        org: Uuid,
        invitation: Uuid,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Invitation>> + Send;

    /// Accepts the open invitation whose token hashes to `token_hash`: `user` joins with its
    /// role and the invitation is used up. The record's target is filled by the caller.
    ///
    /// # Errors
    ///
    /// [`Error::InvitationNotFound`](crate::Error::InvitationNotFound) (unknown, expired,
    /// used, revoked), [`Error::Conflict`](crate::Error::Conflict) when the user is already a
    /// member, [`Error::NoSeat`](crate::Error::NoSeat) when seats were lowered since;
    /// storage errors.
    fn accept_invitation(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Member>> + Send;

    /// Stores a new API key.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound); storage errors.
    fn create_api_key(
        &self,
        key: &ApiKey,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The key with this lookup prefix, active or not.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn api_key_by_prefix(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Option<ApiKey>>> + Send;

    /// Records that the key authenticated at `at`.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn touch_api_key(
        &self,
        key: Uuid,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The org's keys, newest first.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn api_keys(&self, org: Uuid) -> impl Future<Output = Result<Vec<ApiKey>>> + Send;

    /// Revokes a key; it stops authenticating at once.
    ///
    /// # Errors
    ///
    /// [`Error::ApiKeyNotFound`](crate::Error::ApiKeyNotFound) when the org has no such
    /// unrevoked key; storage errors.
    fn revoke_api_key(
        &self,
        org: Uuid,
        key: Uuid,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<ApiKey>> + Send;

    /// The org's branding (`None` when never set), without the logo's bytes.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn branding(&self, org: Uuid) -> impl Future<Output = Result<Option<Branding>>> + Send;

    /// Sets the org's display name and primary colour (already checked; `None` unsets),
    /// keeping its logo.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound); storage errors.
    fn set_branding(
        &self,
        org: Uuid,
        display_name: Option<&str>,
        primary_color: Option<&str>,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Branding>> + Send;

    /// Stores the org's logo, replacing any, or removes it (`None`).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound); storage errors.
    fn set_logo(
        &self,
        org: Uuid,
        logo: Option<&Logo>,
        audit: AuditRecord,
    ) -> impl Future<Output = Result<Branding>> + Send;

    /// The org's logo with its bytes, if one is stored.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn logo(&self, org: Uuid) -> impl Future<Output = Result<Option<Logo>>> + Send;

    /// Appends an entry to the org's chain (for actions stored elsewhere: publishing an app,
    /// a retried job). Safe under concurrency: entries get consecutive numbers.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn append_audit(
        &self,
        org: Uuid,
        record: AuditRecord,
    ) -> impl Future<Output = Result<AuditEntry>> + Send;

    /// A page of the org's entries, in sequence order.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn audit_page(
        &self,
        org: Uuid,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;

    /// Where the org's chain stands (`None` before its first entry).
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn audit_head(&self, org: Uuid) -> impl Future<Output = Result<Option<AuditHead>>> + Send;

    /// Removes the entries recorded before `before` (of one org, or of every org), as a
    /// prefix of each chain: the head's `first_seq` moves past them. Returns how many.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn purge_audit(
        &self,
        org: Option<Uuid>,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// A time to the millisecond (what every backend stores exactly).
pub(crate) fn millis(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

/// The clock setter every backend has.
macro_rules! clock_setter {
    () => {
        /// Reads time from `clock` (the system clock by default).
        #[must_use]
        pub fn with_clock(mut self, clock: appforge_core::SharedClock) -> Self {
            self.clock = clock;
            self
        }
    };
}
pub(crate) use clock_setter;

/// Refuses a seat when members plus open invitations already fill the org's seats.
pub(crate) fn check_seat(org: &Organization, used: u32) -> Result<()> {
    match org.seats {
        Some(seats) if used >= seats => Err(crate::Error::NoSeat {
            org: org.id,
            used,
            seats,
        }),
        _ => Ok(()),
    }
}
