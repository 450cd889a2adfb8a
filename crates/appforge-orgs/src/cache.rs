//! The membership cache behind [`Orgs::admit`](crate::Orgs::admit): a member's role and the
//! org's cap per member, kept in memory so that the check on every org request costs no
//! round trip to the database.
//!
//! A cached answer is used only while the cache is *live*: while a feed of every process's
//! changes is connected ([`PgOrgStore::watch`](crate::PgOrgStore::watch) over PostgreSQL's
//! `LISTEN`/`NOTIFY`). The PostgreSQL store notifies in the same transaction as every audited
//! change of an org (memberships, roles, ownership, deletion, the cap), so another process
//! drops the org's entries as soon as the change commits; changes made through this
//! process's [`Orgs`](crate::Orgs) drop them before the call returns. Without a feed (the
//! memory and SQLite stores, or a feed that lost its connection) the cache is not live and
//! every check reads the store: a revocation always takes effect at once.
//!
//! Written by hand: the invalidation must be exact (an entry read before a change may never
//! outlive it, see [`MembershipCache::insert`]), which a time-based cache does not give.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use uuid::Uuid;

use crate::org::MemberAccess;

/// The most memberships kept; past it the cache starts again empty.
pub const MAX_CACHED_MEMBERSHIPS: usize = 100_000;

/// Members' access by org, dropped per org on every change (see the module's page).
#[derive(Debug, Default)]
pub struct MembershipCache {
    state: RwLock<State>,
    live: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    orgs: HashMap<Uuid, HashMap<Uuid, MemberAccess>>,
    len: usize,
    /// Bumped by every invalidation: an answer read before one is not kept.
    epoch: u64,
}

impl MembershipCache {
    /// An empty cache, not live.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether cached answers are used: a feed of changes is connected.
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Turns the cache on (a feed connected and listening) or off (it lost its connection);
    /// either way it starts again empty, as changes may have been missed.
    pub fn set_live(&self, live: bool) {
        let mut state = self.state.write();
        state.orgs.clear();
        state.len = 0;
        state.epoch += 1;
        self.live.store(live, Ordering::Release);
    }

    /// The cached access of `user` in `org`, when live.
    #[must_use]
    pub fn get(&self, org: Uuid, user: Uuid) -> Option<MemberAccess> {
        if !self.is_live() {
            return None;
        }
        self.state.read().orgs.get(&org)?.get(&user).copied()
    }

    /// The invalidation count to pass to [`insert`](Self::insert), read before the store.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.state.read().epoch
    }

    /// Keeps `access`, read from the store after [`epoch`](Self::epoch) answered `epoch`,
    /// unless an invalidation happened since (the answer may predate it) or the cache is
    /// not live.
    pub fn insert(&self, epoch: u64, org: Uuid, user: Uuid, access: MemberAccess) {
        if !self.is_live() {
            return;
        }
        let mut state = self.state.write();
        if state.epoch != epoch {
            return;
        }
        if state.len >= MAX_CACHED_MEMBERSHIPS {
            state.orgs.clear();
            state.len = 0;
        }
        if state
            .orgs
            .entry(org)
            .or_default()
            .insert(user, access)
            .is_none()
        {
            state.len += 1;
        }
    }

    /// Drops every cached member of `org` (a membership, role, ownership or cap changed, or
    /// the org was deleted).
    pub fn forget_org(&self, org: Uuid) {
        let mut state = self.state.write();
        if let Some(members) = state.orgs.remove(&org) {
            state.len -= members.len();
        }
        state.epoch += 1;
    }

    /// How many memberships are cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.read().len
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    fn access(role: Role) -> MemberAccess {
        MemberAccess::new(role, None)
    }

    #[test]
    fn nothing_is_kept_or_answered_until_live() {
        let cache = MembershipCache::new();
        let (org, user) = (Uuid::new_v4(), Uuid::new_v4());
        cache.insert(cache.epoch(), org, user, access(Role::Member));
        assert!(cache.is_empty());
        cache.set_live(true);
        cache.insert(cache.epoch(), org, user, access(Role::Member));
        assert_eq!(cache.get(org, user), Some(access(Role::Member)));
        cache.set_live(false);
        assert_eq!(cache.get(org, user), None, "a lost feed empties it");
        assert!(cache.is_empty());
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_kept() {
        let cache = MembershipCache::new();
        cache.set_live(true);
        let (org, other, user) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let before = cache.epoch();
        // The store answered "member"; meanwhile the membership changed.
        cache.forget_org(org);
        cache.insert(before, org, user, access(Role::Member));
        assert_eq!(cache.get(org, user), None);
        // Read after the change: kept, and dropped with its org only.
        cache.insert(cache.epoch(), org, user, access(Role::Viewer));
        cache.insert(cache.epoch(), other, user, access(Role::Admin));
        cache.forget_org(org);
        assert_eq!(cache.get(org, user), None);
        assert_eq!(cache.get(other, user), Some(access(Role::Admin)));
        assert_eq!(cache.len(), 1);
    }
}
