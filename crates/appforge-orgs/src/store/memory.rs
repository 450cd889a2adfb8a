use std::collections::HashMap;
use std::sync::Arc;

use appforge_core::{SharedClock, SystemClock};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::{OrgStore, check_seat, clock_setter, millis};
use crate::api_key::ApiKey;
use crate::audit::{AuditEntry, AuditHead, AuditQuery, AuditRecord};
use crate::branding::{Branding, Logo};
use crate::invitation::Invitation;
use crate::org::{Member, MemberAccess, Organization};
use crate::role::Role;
use crate::{Error, Result};

/// An org store in process memory: for tests and prototypes. Clones share the data.
#[derive(Debug, Clone)]
pub struct MemoryOrgStore {
    state: Arc<Mutex<State>>,
    clock: SharedClock,
}

#[derive(Debug, Default)]
struct State {
    orgs: HashMap<Uuid, Organization>,
    members: Vec<Member>,
    invitations: Vec<Invitation>,
    keys: Vec<ApiKey>,
    audit: HashMap<Uuid, Vec<AuditEntry>>,
    heads: HashMap<Uuid, AuditHead>,
    branding: HashMap<Uuid, (Branding, Option<Logo>)>,
}

impl Default for MemoryOrgStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryOrgStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            clock: SystemClock::shared(),
        }
    }

    clock_setter!();

    /// Gives `edit` the org's stored audit entries, to alter or delete some as an attacker
    /// with write access to the storage would: for tests of
    /// [`Orgs::verify_audit`](crate::Orgs::verify_audit).
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn tamper_with_audit(&self, org: Uuid, edit: impl FnOnce(&mut Vec<AuditEntry>)) {
        edit(self.state.lock().audit.entry(org).or_default());
    }
}

impl State {
    fn org(&self, org: Uuid) -> Result<&Organization> {
        self.orgs.get(&org).ok_or(Error::OrgNotFound(org))
    }

    fn member_index(&self, org: Uuid, user: Uuid) -> Result<usize> {
        self.members
            .iter()
            .position(|m| m.org_id == org && m.user_id == user)
            .ok_or(Error::MemberNotFound { org, user })
    }

    fn owners(&self, org: Uuid) -> usize {
        self.members
            .iter()
            .filter(|m| m.org_id == org && m.role == Role::Owner)
            .count()
    }

    fn seats_used(&self, org: Uuid, now: DateTime<Utc>) -> u32 {
        let members = self.members.iter().filter(|m| m.org_id == org).count();
        let open = self
            .invitations
            .iter()
            .filter(|i| i.org_id == org && i.is_open(now))
            .count();
        u32::try_from(members + open).unwrap_or(u32::MAX)
    }

    fn append(&mut self, org: Uuid, now: DateTime<Utc>, record: AuditRecord) -> AuditEntry {
        let head = self
            .heads
            .entry(org)
            .or_insert_with(|| AuditHead::empty(org));
        let entry = AuditEntry::seal(org, head.last_seq + 1, head.last_hash, now, record);
        head.last_seq = entry.seq;
        head.last_hash = entry.hash;
        self.audit.entry(org).or_default().push(entry.clone());
        entry
    }
}

impl OrgStore for MemoryOrgStore {
    fn now(&self) -> DateTime<Utc> {
        millis(self.clock.now())
    }

    async fn create_org(&self, org: &Organization, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let mut state = self.state.lock();
        if state.orgs.values().any(|o| o.slug == org.slug) {
            return Err(Error::SlugTaken(org.slug.clone()));
        }
        state.orgs.insert(org.id, org.clone());
        state.members.push(Member {
            org_id: org.id,
            user_id: org.created_by,
            role: Role::Owner,
            joined_at: org.created_at,
        });
        state.append(org.id, now, audit);
        Ok(())
    }

    async fn get_org(&self, org: Uuid) -> Result<Option<Organization>> {
        Ok(self.state.lock().orgs.get(&org).cloned())
    }

    async fn orgs_of(&self, user: Uuid) -> Result<Vec<(Organization, Role)>> {
        let state = self.state.lock();
        Ok(state
            .members
            .iter()
            .filter(|m| m.user_id == user)
            .filter_map(|m| Some((state.orgs.get(&m.org_id)?.clone(), m.role)))
            .collect())
    }

    async fn rename_org(&self, org: Uuid, name: &str, audit: AuditRecord) -> Result<Organization> {
        let now = self.now();
        let mut state = self.state.lock();
        state.org(org)?;
        let record = state.orgs.get_mut(&org).ok_or(Error::OrgNotFound(org))?;
        name.clone_into(&mut record.name);
        let record = record.clone();
        state.append(org, now, audit);
        Ok(record)
    }

    async fn set_seats(
        &self,
        org: Uuid,
        seats: Option<u32>,
        audit: AuditRecord,
    ) -> Result<Organization> {
        let now = self.now();
        let mut state = self.state.lock();
        let record = state.orgs.get_mut(&org).ok_or(Error::OrgNotFound(org))?;
        record.seats = seats;
        let record = record.clone();
        state.append(org, now, audit);
        Ok(record)
    }

    async fn set_member_daily_cap(
        &self,
        org: Uuid,
        cap: Option<u32>,
        audit: AuditRecord,
    ) -> Result<Organization> {
        let now = self.now();
        let mut state = self.state.lock();
        let record = state.orgs.get_mut(&org).ok_or(Error::OrgNotFound(org))?;
        record.member_daily_cap = cap;
        let record = record.clone();
        state.append(org, now, audit);
        Ok(record)
    }

    async fn delete_org(&self, org: Uuid, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let mut state = self.state.lock();
        state.orgs.remove(&org).ok_or(Error::OrgNotFound(org))?;
        state.members.retain(|m| m.org_id != org);
        state.invitations.retain(|i| i.org_id != org);
        state.keys.retain(|k| k.org_id != org);
        state.branding.remove(&org);
        state.append(org, now, audit);
        Ok(())
    }

    async fn member(&self, org: Uuid, user: Uuid) -> Result<Option<Member>> {
        let state = self.state.lock();
        Ok(state
            .member_index(org, user)
            .ok()
            .map(|i| state.members[i].clone()))
    }

    async fn member_access(&self, org: Uuid, user: Uuid) -> Result<Option<MemberAccess>> {
        let state = self.state.lock();
        let Some(record) = state.orgs.get(&org) else {
            return Ok(None);
        };
        Ok(state
            .member_index(org, user)
            .ok()
            .map(|i| MemberAccess::new(state.members[i].role, record.member_daily_cap)))
    }

    async fn members(&self, org: Uuid) -> Result<Vec<Member>> {
        Ok(self
            .state
            .lock()
            .members
            .iter()
            .filter(|m| m.org_id == org)
            .cloned()
            .collect())
    }

    async fn seats_used(&self, org: Uuid) -> Result<u32> {
        let now = self.now();
        Ok(self.state.lock().seats_used(org, now))
    }

    async fn add_member(
        &self,
        org: Uuid,
        user: Uuid,
        role: Role,
        audit: AuditRecord,
    ) -> Result<Member> {
        let now = self.now();
        let mut state = self.state.lock();
        check_seat(state.org(org)?, state.seats_used(org, now))?;
        if state.member_index(org, user).is_ok() {
            return Err(Error::Conflict(format!("user {user} is already a member")));
        }
        let member = Member {
            org_id: org,
            user_id: user,
            role,
            joined_at: now,
        };
        state.members.push(member.clone());
        state.append(org, now, audit);
        Ok(member)
    }

    async fn change_role(
        &self,
        org: Uuid,
        user: Uuid,
        role: Role,
        audit: AuditRecord,
    ) -> Result<Member> {
        let now = self.now();
        let mut state = self.state.lock();
        let i = state.member_index(org, user)?;
        if state.members[i].role == Role::Owner && role != Role::Owner && state.owners(org) == 1 {
            return Err(Error::LastOwner(org));
        }
        state.members[i].role = role;
        let member = state.members[i].clone();
        state.append(org, now, audit);
        Ok(member)
    }

    async fn remove_member(&self, org: Uuid, user: Uuid, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let mut state = self.state.lock();
        let i = state.member_index(org, user)?;
        if state.members[i].role == Role::Owner && state.owners(org) == 1 {
            return Err(Error::LastOwner(org));
        }
        state.members.remove(i);
        state.append(org, now, audit);
        Ok(())
    }

    async fn transfer_ownership(
        &self,
        org: Uuid,
        from: Uuid,
        to: Uuid,
        audit: AuditRecord,
    ) -> Result<()> {
        let now = self.now();
        let mut state = self.state.lock();
        let giver = state.member_index(org, from)?;
        let taker = state.member_index(org, to)?;
        if state.members[giver].role != Role::Owner {
            return Err(Error::MemberNotFound { org, user: from });
        }
        state.members[taker].role = Role::Owner;
        if giver != taker {
            state.members[giver].role = Role::Admin;
        }
        state.append(org, now, audit);
        Ok(())
    }

    async fn create_invitation(&self, invitation: &Invitation, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let org = invitation.org_id;
        let mut state = self.state.lock();
        check_seat(state.org(org)?, state.seats_used(org, now))?;
        if state
            .invitations
            .iter()
            .any(|i| i.org_id == org && i.email == invitation.email && i.is_open(now))
        {
            return Err(Error::Conflict(format!(
                "an open invitation for {} exists",
                invitation.email
            )));
        }
        state.invitations.push(invitation.clone());
        state.append(org, now, audit);
        Ok(())
    }

    async fn invitations(&self, org: Uuid) -> Result<Vec<Invitation>> {
        let mut found: Vec<Invitation> = self
            .state
            .lock()
            .invitations
            .iter()
            .filter(|i| i.org_id == org)
            .cloned()
            .collect();
        found.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
        Ok(found)
    }

    async fn revoke_invitation(
        &self,
        org: Uuid,
        invitation: Uuid,
        audit: AuditRecord,
    ) -> Result<Invitation> {
        let now = self.now();
        let mut state = self.state.lock();
        let found = state
            .invitations
            .iter_mut()
            .find(|i| i.org_id == org && i.id == invitation && i.is_open(now))
            .ok_or(Error::InvitationNotFound)?;
        found.revoked_at = Some(now);
        let found = found.clone();
        state.append(org, now, audit);
        Ok(found)
    }

    async fn accept_invitation(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        audit: AuditRecord,
    ) -> Result<Member> {
        let now = self.now();
        let mut state = self.state.lock();
        let i = state
            .invitations
            .iter()
            .position(|i| i.token_hash == token_hash && i.is_open(now))
            .ok_or(Error::InvitationNotFound)?;
        let (org, role) = (state.invitations[i].org_id, state.invitations[i].role);
        let record = state.org(org)?;
        if let Some(seats) = record.seats {
            let used = state.seats_used(org, now);
            if used > seats {
                return Err(Error::NoSeat { org, used, seats });
            }
        }
        if state.member_index(org, user).is_ok() {
            return Err(Error::Conflict(format!("user {user} is already a member")));
        }
        state.invitations[i].accepted_at = Some(now);
        state.invitations[i].accepted_by = Some(user);
        let member = Member {
            org_id: org,
            user_id: user,
            role,
            joined_at: now,
        };
        state.members.push(member.clone());
        state.append(org, now, audit);
        Ok(member)
    }

    async fn create_api_key(&self, key: &ApiKey, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let mut state = self.state.lock();
        state.org(key.org_id)?;
        state.keys.push(key.clone());
        state.append(key.org_id, now, audit);
        Ok(())
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        Ok(self
            .state
            .lock()
            .keys
            .iter()
            .find(|k| k.prefix == prefix)
            .cloned())
    }

    async fn touch_api_key(&self, key: Uuid, at: DateTime<Utc>) -> Result<()> {
        if let Some(found) = self.state.lock().keys.iter_mut().find(|k| k.id == key) {
            found.last_used_at = Some(millis(at));
        }
        Ok(())
    }

    async fn api_keys(&self, org: Uuid) -> Result<Vec<ApiKey>> {
        let mut found: Vec<ApiKey> = self
            .state
            .lock()
            .keys
            .iter()
            .filter(|k| k.org_id == org)
            .cloned()
            .collect();
        found.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
        Ok(found)
    }

    async fn revoke_api_key(&self, org: Uuid, key: Uuid, audit: AuditRecord) -> Result<ApiKey> {
        let now = self.now();
        let mut state = self.state.lock();
        let found = state
            .keys
            .iter_mut()
            .find(|k| k.org_id == org && k.id == key && k.revoked_at.is_none())
            .ok_or(Error::ApiKeyNotFound(key))?;
        found.revoked_at = Some(now);
        let found = found.clone();
        state.append(org, now, audit);
        Ok(found)
    }

    async fn branding(&self, org: Uuid) -> Result<Option<Branding>> {
        Ok(self.state.lock().branding.get(&org).map(|(b, _)| b.clone()))
    }

    async fn set_branding(
        &self,
        org: Uuid,
        display_name: Option<&str>,
        primary_color: Option<&str>,
        audit: AuditRecord,
    ) -> Result<Branding> {
        let now = self.now();
        let mut state = self.state.lock();
        state.org(org)?;
        let (branding, _) = state
            .branding
            .entry(org)
            .or_insert_with(|| (Branding::empty(org), None));
        branding.display_name = display_name.map(str::to_owned);
        branding.primary_color = primary_color.map(str::to_owned);
        branding.updated_at = Some(now);
        let branding = branding.clone();
        state.append(org, now, audit);
        Ok(branding)
    }

    async fn set_logo(
        &self,
        org: Uuid,
        logo: Option<&Logo>,
        audit: AuditRecord,
    ) -> Result<Branding> {
        let now = self.now();
        let mut state = self.state.lock();
        state.org(org)?;
        let (branding, stored) = state
            .branding
            .entry(org)
            .or_insert_with(|| (Branding::empty(org), None));
        branding.logo = logo.map(Logo::info);
        branding.updated_at = Some(now);
        stored.clone_from(&logo.cloned());
        let branding = branding.clone();
        state.append(org, now, audit);
        Ok(branding)
    }

    async fn logo(&self, org: Uuid) -> Result<Option<Logo>> {
        Ok(self
            .state
            .lock()
            .branding
            .get(&org)
            .and_then(|(_, l)| l.clone()))
    }

    async fn append_audit(&self, org: Uuid, record: AuditRecord) -> Result<AuditEntry> {
        let now = self.now();
        Ok(self.state.lock().append(org, now, record))
    }

    async fn audit_page(&self, org: Uuid, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let state = self.state.lock();
        let mut found: Vec<AuditEntry> = state
            .audit
            .get(&org)
            .into_iter()
            .flatten()
            .filter(|e| e.seq > query.after_seq && query.range.contains(e.time))
            .cloned()
            .collect();
        found.sort_by_key(|e| e.seq);
        found.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok(found)
    }

    async fn audit_head(&self, org: Uuid) -> Result<Option<AuditHead>> {
        Ok(self.state.lock().heads.get(&org).copied())
    }

    async fn purge_audit(&self, org: Option<Uuid>, before: DateTime<Utc>) -> Result<u64> {
        let mut state = self.state.lock();
        let State { audit, heads, .. } = &mut *state;
        let mut purged = 0;
        for (id, entries) in audit.iter_mut() {
            if org.is_some_and(|org| org != *id) {
                continue;
            }
            let Some(cut) = entries
                .iter()
                .filter(|e| e.time < before)
                .map(|e| e.seq)
                .max()
            else {
                continue;
            };
            let len = entries.len();
            entries.retain(|e| e.seq > cut);
            purged += (len - entries.len()) as u64;
            if let Some(head) = heads.get_mut(id) {
                head.first_seq = head.first_seq.max(cut + 1);
            }
        }
        Ok(purged)
    }
}
