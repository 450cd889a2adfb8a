//! The conformance suite every [`OrgStore`] passes: one behavioural test body per rule, run
//! on memory, SQLite and PostgreSQL here, and on any outside implementation with
//! [`org_store_suite!`](crate::org_store_suite).
//!
//! ```no_run
//! use appforge_orgs::MemoryOrgStore;
//! use appforge_orgs::testing::Backend;
//!
//! async fn backend() -> Option<Backend<MemoryOrgStore>> {
//!     let clock = appforge_core::ManualClock::at(chrono::Utc::now());
//!     Some(Backend::new(MemoryOrgStore::new().with_clock(clock.shared()), clock))
//! }
//!
//! appforge_orgs::org_store_suite!(backend);
//! # fn main() {}
//! ```

mod audit;
mod branding;
mod invitations;
mod member_cap;
mod membership;

pub use audit::{
    concurrent_appends_keep_one_chain, every_change_is_audited_and_verifies,
    exports_stream_json_lines_and_csv, purging_keeps_a_verifiable_suffix,
    refused_changes_leave_no_audit_entry,
};
pub use branding::branding_is_set_read_and_cleared;
pub use invitations::{
    api_keys_authenticate_until_revoked_or_expired, invitations_are_single_use_expire_and_revoke,
    seats_count_members_and_open_invitations, the_last_seat_goes_to_exactly_one_invitation,
};
pub use member_cap::{
    admit_answers_the_role_and_the_cap, the_member_daily_cap_is_set_read_and_cleared,
};
pub use membership::{
    orgs_are_created_read_renamed_and_deleted, permissions_follow_the_table,
    roles_act_only_up_to_their_own, the_last_owner_stays,
    two_owners_stepping_down_at_once_leave_one,
};

use std::any::Any;

use appforge_core::ManualClock;
use uuid::Uuid;

use crate::{AuditQuery, AuditRange, Caller, NewOrg, OrgStore, Orgs, Role};

/// A store under test, the clock it reads, and whatever keeps its database alive.
#[derive(Debug)]
pub struct Backend<S> {
    /// The store, built with `clock`.
    pub store: S,
    /// The clock the store reads.
    pub clock: ManualClock,
    guard: Option<Box<dyn Any + Send>>,
}

impl<S> Backend<S> {
    /// A store reading `clock`.
    pub fn new(store: S, clock: ManualClock) -> Self {
        Self {
            store,
            clock,
            guard: None,
        }
    }

    /// Keeps `guard` (a temporary file, a test database) alive as long as the backend.
    #[must_use]
    pub fn guard(mut self, guard: impl Any + Send) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }
}

/// Runs every case of the suite as a `#[tokio::test]`, each on a fresh backend from
/// `$make`, an `async fn() -> Option<Backend<S>>` (`None` skips, as a PostgreSQL suite does
/// without `DATABASE_URL`).
#[macro_export]
macro_rules! org_store_suite {
    ($make:path) => {
        $crate::org_store_suite!(@cases $make;
            orgs_are_created_read_renamed_and_deleted,
            permissions_follow_the_table,
            roles_act_only_up_to_their_own,
            the_last_owner_stays,
            two_owners_stepping_down_at_once_leave_one,
            invitations_are_single_use_expire_and_revoke,
            seats_count_members_and_open_invitations,
            the_last_seat_goes_to_exactly_one_invitation,
            api_keys_authenticate_until_revoked_or_expired,
            every_change_is_audited_and_verifies,
            refused_changes_leave_no_audit_entry,
            concurrent_appends_keep_one_chain,
            purging_keeps_a_verifiable_suffix,
            exports_stream_json_lines_and_csv,
            branding_is_set_read_and_cleared,
            the_member_daily_cap_is_set_read_and_cleared,
            admit_answers_the_role_and_the_cap
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(backend) = $make().await else {
                    return;
                };
                $crate::testing::$case(backend).await;
            }
        )*
    };
}

pub(crate) struct Fx<S> {
    pub(crate) orgs: Orgs<S>,
    pub(crate) clock: ManualClock,
    _guard: Option<Box<dyn Any + Send>>,
}

impl<S: OrgStore> Fx<S> {
    pub(crate) fn new(backend: Backend<S>) -> Self {
        Self {
            orgs: Orgs::new(backend.store),
            clock: backend.clock,
            _guard: backend.guard,
        }
    }

    /// An org owned by a new user, with `seats`.
    pub(crate) async fn org(&self, seats: Option<u32>) -> (Uuid, Caller) {
        let owner = Caller::user(Uuid::new_v4());
        let slug = format!("org-{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut new = NewOrg::new("Acme", slug);
        new.seats = seats;
        let org = self.orgs.create_org(&owner, new).await.unwrap();
        (org.id, owner)
    }

    /// A new user with `role` in the org.
    pub(crate) async fn member(&self, org: Uuid, owner: &Caller, role: Role) -> Caller {
        let user = Uuid::new_v4();
        self.orgs.add_member(owner, org, user, role).await.unwrap();
        Caller::user(user)
    }

    pub(crate) async fn actions(&self, org: Uuid) -> Vec<String> {
        self.orgs
            .store()
            .audit_page(org, &AuditQuery::new(AuditRange::all(), 1000))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

pub(crate) fn user_of(caller: &Caller) -> Uuid {
    match caller.principal {
        crate::Principal::User(id) => id,
        _ => panic!("not a user"),
    }
}
