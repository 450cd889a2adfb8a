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

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use appforge_core::ManualClock;
use serde_json::json;
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::{
    AuditQuery, AuditRange, Caller, Error, ExportFormat, NewApiKey, NewOrg, OrgStore, Orgs,
    Permission, Role,
};

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
            invitations_are_single_use_expire_and_revoke,
            seats_count_members_and_open_invitations,
            the_last_seat_goes_to_exactly_one_invitation,
            api_keys_authenticate_until_revoked_or_expired,
            every_change_is_audited_and_verifies,
            refused_changes_leave_no_audit_entry,
            concurrent_appends_keep_one_chain,
            purging_keeps_a_verifiable_suffix,
            exports_stream_json_lines_and_csv
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

struct Fx<S> {
    orgs: Orgs<S>,
    clock: ManualClock,
    _guard: Option<Box<dyn Any + Send>>,
}

impl<S: OrgStore> Fx<S> {
    fn new(backend: Backend<S>) -> Self {
        Self {
            orgs: Orgs::new(backend.store),
            clock: backend.clock,
            _guard: backend.guard,
        }
    }

    /// An org owned by a new user, with `seats`.
    async fn org(&self, seats: Option<u32>) -> (Uuid, Caller) {
        let owner = Caller::user(Uuid::new_v4());
        let slug = format!("org-{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut new = NewOrg::new("Acme", slug);
        new.seats = seats;
        let org = self.orgs.create_org(&owner, new).await.unwrap();
        (org.id, owner)
    }

    /// A new user with `role` in the org.
    async fn member(&self, org: Uuid, owner: &Caller, role: Role) -> Caller {
        let user = Uuid::new_v4();
        self.orgs.add_member(owner, org, user, role).await.unwrap();
        Caller::user(user)
    }

    async fn actions(&self, org: Uuid) -> Vec<String> {
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

fn user_of(caller: &Caller) -> Uuid {
    match caller.principal {
        crate::Principal::User(id) => id,
        _ => panic!("not a user"),
    }
}

/// Create, read, list, rename and delete; slugs are unique; deletion removes access.
pub async fn orgs_are_created_read_renamed_and_deleted<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let ada = Caller::user(Uuid::new_v4());
    let org = fx
        .orgs
        .create_org(&ada, NewOrg::new(" Acme ", "acme-suite").seats(5))
        .await
        .unwrap();
    assert_eq!((org.name.as_str(), org.seats), ("Acme", Some(5)));
    let err = fx
        .orgs
        .create_org(&ada, NewOrg::new("Other", "acme-suite"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SlugTaken(_)), "{err}");
    let err = fx
        .orgs
        .create_org(&ada, NewOrg::new("Bad", "Bad Slug"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");

    assert_eq!(fx.orgs.get_org(&ada, org.id).await.unwrap(), org);
    let mine = fx.orgs.orgs_of(user_of(&ada)).await.unwrap();
    assert_eq!(mine, vec![(org.clone(), Role::Owner)]);
    let members = fx.orgs.members(&ada, org.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, Role::Owner);

    let renamed = fx.orgs.rename_org(&ada, org.id, "Acme Inc").await.unwrap();
    assert_eq!(renamed.name, "Acme Inc");
    assert_eq!(
        fx.orgs.get_org(&ada, org.id).await.unwrap().name,
        "Acme Inc"
    );

    let bob = fx.member(org.id, &ada, Role::Admin).await;
    let err = fx.orgs.delete_org(&bob, org.id).await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    fx.orgs.delete_org(&ada, org.id).await.unwrap();
    for caller in [&ada, &bob] {
        let err = fx.orgs.get_org(caller, org.id).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
    assert!(fx.orgs.orgs_of(user_of(&bob)).await.unwrap().is_empty());
    // The slug is free again; the old log stays, ending with the deletion.
    fx.orgs
        .create_org(&ada, NewOrg::new("Acme", "acme-suite"))
        .await
        .unwrap();
    assert_eq!(fx.actions(org.id).await.last().unwrap(), "org.delete");
    fx.orgs
        .verify_audit(org.id, AuditRange::all())
        .await
        .unwrap();
}

/// Every role gets exactly the permissions of the table; outsiders and keys of other orgs
/// see nothing.
pub async fn permissions_follow_the_table<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let (other, other_owner) = fx.org(None).await;
    for role in Role::ALL {
        let caller = if role == Role::Owner {
            owner.clone()
        } else {
            fx.member(org, &owner, role).await
        };
        for permission in Permission::ALL {
            let answer = fx.orgs.authorize(&caller, org, permission).await;
            if role.can(permission) {
                assert_eq!(answer.unwrap(), role);
            } else {
                let err = answer.unwrap_err();
                assert!(err.is_forbidden(), "{role} {permission}: {err}");
            }
        }
        // A member of one org is nobody in another.
        let err = fx
            .orgs
            .authorize(&caller, other, Permission::ReadApps)
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
    let key = fx
        .orgs
        .create_api_key(&other_owner, other, NewApiKey::new("CI", Role::Admin))
        .await
        .unwrap();
    let principal = fx
        .orgs
        .authenticate(key.token.expose())
        .await
        .unwrap()
        .unwrap();
    let as_key = Caller::api_key(principal);
    assert_eq!(
        fx.orgs
            .authorize(&as_key, other, Permission::ReadAudit)
            .await
            .unwrap(),
        Role::Admin
    );
    let err = fx
        .orgs
        .authorize(&as_key, org, Permission::ReadApps)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = fx
        .orgs
        .authorize(&Caller::system(), Uuid::new_v4(), Permission::ReadApps)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// Admins invite, remove and change roles up to admin; members cannot at all.
pub async fn roles_act_only_up_to_their_own<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let admin = fx.member(org, &owner, Role::Admin).await;
    let member = fx.member(org, &owner, Role::Member).await;

    let err = fx
        .orgs
        .invite(&admin, org, "boss@example.com", Role::Owner)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RoleTooHigh { .. }), "{err}");
    fx.orgs
        .invite(&admin, org, "peer@example.com", Role::Admin)
        .await
        .unwrap();
    let err = fx
        .orgs
        .change_role(&admin, org, user_of(&owner), Role::Viewer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RoleTooHigh { .. }), "{err}");
    let err = fx
        .orgs
        .remove_member(&admin, org, user_of(&owner))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RoleTooHigh { .. }), "{err}");
    let err = fx
        .orgs
        .change_role(&admin, org, user_of(&member), Role::Owner)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RoleTooHigh { .. }), "{err}");
    let changed = fx
        .orgs
        .change_role(&admin, org, user_of(&member), Role::Viewer)
        .await
        .unwrap();
    assert_eq!(changed.role, Role::Viewer);

    let err = fx
        .orgs
        .invite(&member, org, "x@example.com", Role::Viewer)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                permission: Permission::Invite,
                ..
            }
        ),
        "{err}"
    );
    let err = fx
        .orgs
        .remove_member(&member, org, user_of(&admin))
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");

    fx.orgs
        .remove_member(&admin, org, user_of(&member))
        .await
        .unwrap();
    let err = fx.orgs.get_org(&member, org).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = fx
        .orgs
        .remove_member(&admin, org, user_of(&member))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MemberNotFound { .. }), "{err}");
}

/// The last owner can be neither removed, demoted nor leave; ownership moves by transfer.
pub async fn the_last_owner_stays<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let me = user_of(&owner);
    let err = fx.orgs.leave(&owner, org).await.unwrap_err();
    assert!(matches!(err, Error::LastOwner(_)), "{err}");
    let err = fx
        .orgs
        .change_role(&owner, org, me, Role::Admin)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LastOwner(_)), "{err}");
    let err = fx.orgs.remove_member(&owner, org, me).await.unwrap_err();
    assert!(matches!(err, Error::LastOwner(_)), "{err}");

    let heir = fx.member(org, &owner, Role::Member).await;
    let err = fx
        .orgs
        .transfer_ownership(&heir, org, user_of(&heir))
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    fx.orgs
        .transfer_ownership(&owner, org, user_of(&heir))
        .await
        .unwrap();
    let roles: Vec<(Uuid, Role)> = fx
        .orgs
        .members(&heir, org)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    assert!(roles.contains(&(me, Role::Admin)), "{roles:?}");
    assert!(roles.contains(&(user_of(&heir), Role::Owner)), "{roles:?}");
    // The former owner, now an admin, may leave; the new owner may not.
    fx.orgs.leave(&owner, org).await.unwrap();
    let err = fx.orgs.leave(&heir, org).await.unwrap_err();
    assert!(matches!(err, Error::LastOwner(_)), "{err}");

    // With two owners one may step down, then not the other.
    let second = fx.member(org, &heir, Role::Owner).await;
    fx.orgs
        .change_role(&heir, org, user_of(&second), Role::Member)
        .await
        .unwrap();
    let err = fx
        .orgs
        .change_role(&heir, org, user_of(&heir), Role::Member)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LastOwner(_)), "{err}");
}

/// An invitation is accepted once by a signed-in user, not after it expired or was revoked.
pub async fn invitations_are_single_use_expire_and_revoke<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let created = fx
        .orgs
        .invite(&owner, org, " Bob@Example.com ", Role::Member)
        .await
        .unwrap();
    assert_eq!(created.invitation.email, "bob@example.com");
    assert!(created.token.expose().starts_with("afi_"));
    assert_eq!(
        created.invitation.expires_at - created.invitation.created_at,
        chrono::Duration::days(7)
    );
    let err = fx
        .orgs
        .invite(&owner, org, "bob@example.com", Role::Viewer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");

    let key = fx
        .orgs
        .create_api_key(&owner, org, NewApiKey::new("CI", Role::Member))
        .await
        .unwrap();
    let principal = fx
        .orgs
        .authenticate(key.token.expose())
        .await
        .unwrap()
        .unwrap();
    let err = fx
        .orgs
        .accept_invitation(&Caller::api_key(principal), created.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");

    let bob = Caller::user(Uuid::new_v4());
    let member = fx
        .orgs
        .accept_invitation(&bob, created.token.expose())
        .await
        .unwrap();
    assert_eq!((member.org_id, member.role), (org, Role::Member));
    assert_eq!(
        fx.orgs
            .authorize(&bob, org, Permission::Generate)
            .await
            .unwrap(),
        Role::Member
    );
    let eve = Caller::user(Uuid::new_v4());
    let err = fx
        .orgs
        .accept_invitation(&eve, created.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationNotFound), "{err}");
    let err = fx
        .orgs
        .accept_invitation(&eve, "afi_nonsense")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationNotFound), "{err}");
    let listed = fx.orgs.invitations(&owner, org).await.unwrap();
    assert_eq!(listed[0].accepted_by, Some(user_of(&bob)));

    // An invitation for someone who already belongs is refused at acceptance.
    let again = fx
        .orgs
        .invite(&owner, org, "bob2@example.com", Role::Viewer)
        .await
        .unwrap();
    let err = fx
        .orgs
        .accept_invitation(&bob, again.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");

    // Revoked: refused, and revoking twice is not found.
    let revoked = fx
        .orgs
        .invite(&owner, org, "carol@example.com", Role::Viewer)
        .await
        .unwrap();
    fx.orgs
        .revoke_invitation(&owner, org, revoked.invitation.id)
        .await
        .unwrap();
    let err = fx
        .orgs
        .revoke_invitation(&owner, org, revoked.invitation.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationNotFound), "{err}");
    let err = fx
        .orgs
        .accept_invitation(&eve, revoked.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationNotFound), "{err}");

    // Expired: open one second before its end, refused at its end.
    let expiring = fx
        .orgs
        .invite(&owner, org, "dave@example.com", Role::Viewer)
        .await
        .unwrap();
    fx.clock.advance(Duration::from_secs(7 * 24 * 3600 - 1));
    let listed = fx.orgs.invitations(&owner, org).await.unwrap();
    let now = fx.orgs.store().now();
    assert!(
        listed
            .iter()
            .any(|i| i.id == expiring.invitation.id && i.is_open(now))
    );
    fx.clock.advance(Duration::from_secs(1));
    let err = fx
        .orgs
        .accept_invitation(&eve, expiring.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationNotFound), "{err}");
    // Once expired the email may be invited again.
    fx.orgs
        .invite(&owner, org, "dave@example.com", Role::Viewer)
        .await
        .unwrap();
}

/// Members plus open invitations never exceed the seats; revoking, expiring and raising the
/// seats free room; lowering them blocks joining.
pub async fn seats_count_members_and_open_invitations<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(Some(3)).await;
    fx.member(org, &owner, Role::Member).await;
    let open = fx
        .orgs
        .invite(&owner, org, "a@example.com", Role::Viewer)
        .await
        .unwrap();
    assert_eq!(fx.orgs.seats(&owner, org).await.unwrap(), (3, Some(3)));
    let err = fx
        .orgs
        .invite(&owner, org, "b@example.com", Role::Viewer)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NoSeat {
                used: 3,
                seats: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = fx
        .orgs
        .add_member(&owner, org, Uuid::new_v4(), Role::Viewer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoSeat { .. }), "{err}");

    fx.orgs
        .revoke_invitation(&owner, org, open.invitation.id)
        .await
        .unwrap();
    let expiring = fx
        .orgs
        .invite(&owner, org, "b@example.com", Role::Viewer)
        .await
        .unwrap();
    fx.clock.advance(Duration::from_secs(8 * 24 * 3600));
    assert_eq!(fx.orgs.seats(&owner, org).await.unwrap().0, 2);
    drop(expiring);

    // The billing link raises the seats as the system; an admin may not.
    let admin = fx.member(org, &owner, Role::Admin).await;
    let err = fx.orgs.set_seats(&admin, org, Some(10)).await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    let updated = fx
        .orgs
        .set_seats(&Caller::system(), org, Some(4))
        .await
        .unwrap();
    assert_eq!(updated.seats, Some(4));
    let pending = fx
        .orgs
        .invite(&owner, org, "c@example.com", Role::Viewer)
        .await
        .unwrap();
    // Seats lowered below what is used: nobody is removed, nobody joins.
    fx.orgs.set_seats(&owner, org, Some(2)).await.unwrap();
    assert_eq!(fx.orgs.members(&owner, org).await.unwrap().len(), 3);
    let err = fx
        .orgs
        .accept_invitation(&Caller::user(Uuid::new_v4()), pending.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoSeat { .. }), "{err}");
    fx.orgs.set_seats(&owner, org, None).await.unwrap();
    fx.orgs
        .accept_invitation(&Caller::user(Uuid::new_v4()), pending.token.expose())
        .await
        .unwrap();
    for i in 0..5 {
        fx.orgs
            .invite(&owner, org, &format!("u{i}@example.com"), Role::Viewer)
            .await
            .unwrap();
    }
}

/// Two invitations racing for the last seat: exactly one lands, every time.
pub async fn the_last_seat_goes_to_exactly_one_invitation<S: OrgStore + Clone + 'static>(
    backend: Backend<S>,
) {
    let fx = Fx::new(backend);
    for round in 0..5 {
        let (org, owner) = fx.org(Some(2)).await;
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let (orgs, owner, barrier) = (fx.orgs.clone(), owner.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    orgs.invite(
                        &owner,
                        org,
                        &format!("r{round}-{i}@example.com"),
                        Role::Member,
                    )
                    .await
                })
            })
            .collect();
        let mut landed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => landed += 1,
                Err(Error::NoSeat {
                    used: 2, seats: 2, ..
                }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(landed, 1, "round {round}");
        assert_eq!(fx.orgs.seats(&owner, org).await.unwrap(), (2, Some(2)));
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap();
    }
}

/// Keys authenticate with their org and role, no higher than their creator's, until
/// revoked (at once) or expired; a wrong or malformed key is nobody.
pub async fn api_keys_authenticate_until_revoked_or_expired<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let admin = fx.member(org, &owner, Role::Admin).await;
    let member = fx.member(org, &owner, Role::Member).await;
    let err = fx
        .orgs
        .create_api_key(&admin, org, NewApiKey::new("Root", Role::Owner))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RoleTooHigh { .. }), "{err}");
    let err = fx
        .orgs
        .create_api_key(&member, org, NewApiKey::new("CI", Role::Viewer))
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");

    let created = fx
        .orgs
        .create_api_key(&admin, org, NewApiKey::new("CI", Role::Member))
        .await
        .unwrap();
    let token = created.token.expose().to_owned();
    assert!(token.starts_with(&format!("afk_{}_", created.key.prefix)));
    assert!(
        !format!("{created:?}").contains(&token),
        "the key leaks through Debug"
    );
    assert_eq!(
        fx.orgs.api_keys(&admin, org).await.unwrap()[0].last_used_at,
        None
    );

    fx.clock.advance(Duration::from_secs(60));
    let principal = fx.orgs.authenticate(&token).await.unwrap().unwrap();
    assert_eq!(
        (principal.key_id, principal.org_id, principal.role),
        (created.key.id, org, Role::Member)
    );
    let listed = fx.orgs.api_keys(&admin, org).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(fx.orgs.store().now()));
    let as_key = Caller::api_key(principal);
    fx.orgs
        .authorize(&as_key, org, Permission::Generate)
        .await
        .unwrap();
    let err = fx.orgs.api_keys(&as_key, org).await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");

    // One character off, another prefix, or no key shape at all: nobody.
    let mut wrong = token.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(fx.orgs.authenticate(&wrong).await.unwrap(), None);
    assert_eq!(
        fx.orgs.authenticate("afk_000000000000_x").await.unwrap(),
        None
    );
    assert_eq!(fx.orgs.authenticate("Bearer nonsense").await.unwrap(), None);

    fx.orgs
        .revoke_api_key(&admin, org, created.key.id)
        .await
        .unwrap();
    assert_eq!(fx.orgs.authenticate(&token).await.unwrap(), None);
    let err = fx
        .orgs
        .revoke_api_key(&admin, org, created.key.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ApiKeyNotFound(_)), "{err}");

    let expiring = fx
        .orgs
        .create_api_key(
            &owner,
            org,
            NewApiKey::new("Short", Role::Viewer)
                .expires_at(fx.orgs.store().now() + chrono::Duration::hours(1)),
        )
        .await
        .unwrap();
    assert!(
        fx.orgs
            .authenticate(expiring.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    fx.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        fx.orgs.authenticate(expiring.token.expose()).await.unwrap(),
        None
    );

    // Deleting the org ends every key.
    let kept = fx
        .orgs
        .create_api_key(&owner, org, NewApiKey::new("Kept", Role::Viewer))
        .await
        .unwrap();
    fx.orgs.delete_org(&owner, org).await.unwrap();
    assert_eq!(
        fx.orgs.authenticate(kept.token.expose()).await.unwrap(),
        None
    );
}

/// Each change leaves its entry (actor, target, request details) in order, and the chain
/// verifies.
pub async fn every_change_is_audited_and_verifies<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let owner = Caller::user(Uuid::new_v4()).request(
        crate::RequestInfo::none()
            .ip("203.0.113.7")
            .user_agent("curl/8")
            .request_id("req-1"),
    );
    let org = fx
        .orgs
        .create_org(&owner, NewOrg::new("Audited", "audited-org"))
        .await
        .unwrap()
        .id;
    let bob = Uuid::new_v4();
    fx.orgs
        .add_member(&owner, org, bob, Role::Viewer)
        .await
        .unwrap();
    fx.orgs
        .change_role(&owner, org, bob, Role::Member)
        .await
        .unwrap();
    let invite = fx
        .orgs
        .invite(&owner, org, "x@example.com", Role::Viewer)
        .await
        .unwrap();
    fx.orgs
        .revoke_invitation(&owner, org, invite.invitation.id)
        .await
        .unwrap();
    let key = fx
        .orgs
        .create_api_key(&owner, org, NewApiKey::new("CI", Role::Viewer))
        .await
        .unwrap();
    fx.orgs
        .revoke_api_key(&owner, org, key.key.id)
        .await
        .unwrap();
    fx.orgs.set_seats(&owner, org, Some(9)).await.unwrap();
    fx.orgs.remove_member(&owner, org, bob).await.unwrap();
    let detail = json!({"b": [1, 2.5, {"y": null, "x": "é\"\n"}], "a": -7, "big": 1e20});
    fx.orgs
        .record(
            &owner,
            org,
            "app.publish",
            Some("app:1".into()),
            detail.clone(),
        )
        .await
        .unwrap();

    assert_eq!(
        fx.actions(org).await,
        [
            "org.create",
            "member.add",
            "member.role",
            "invitation.create",
            "invitation.revoke",
            "api_key.create",
            "api_key.revoke",
            "org.seats",
            "member.remove",
            "app.publish"
        ]
    );
    let entries = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 100))
        .await
        .unwrap();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1);
        assert_eq!(entry.actor, crate::Actor::User(user_of(&owner)));
        assert_eq!(entry.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(entry.request_id.as_deref(), Some("req-1"));
    }
    assert_eq!(entries[1].target, Some(format!("user:{bob}")));
    assert_eq!(entries[9].detail, detail);
    assert_eq!(entries[0].prev_hash, crate::GENESIS_HASH);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    // Key prefixes are recorded, never the key.
    assert!(!entries[5].detail.to_string().contains(key.token.expose()));
    assert!(
        !entries[3]
            .detail
            .to_string()
            .contains(invite.token.expose())
    );

    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        10
    );
    let head = fx.orgs.store().audit_head(org).await.unwrap().unwrap();
    assert_eq!(
        (head.first_seq, head.last_seq, head.last_hash),
        (1, 10, entries[9].hash)
    );

    // Reading the log needs ReadAudit; a page is 1 to 1000 entries.
    let viewer = fx.member(org, &owner, Role::Viewer).await;
    let err = fx
        .orgs
        .audit(&viewer, org, &AuditQuery::new(AuditRange::all(), 10))
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    let err = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let page = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 3).after(3))
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6]);
    // An org with no log verifies empty.
    assert_eq!(
        fx.orgs
            .verify_audit(Uuid::new_v4(), AuditRange::all())
            .await
            .unwrap(),
        0
    );
}

/// A refused change writes nothing, its audit entry included.
pub async fn refused_changes_leave_no_audit_entry<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(Some(1)).await;
    let before = fx.orgs.store().audit_head(org).await.unwrap();
    let _ = fx.orgs.leave(&owner, org).await.unwrap_err();
    let _ = fx
        .orgs
        .invite(&owner, org, "x@example.com", Role::Viewer)
        .await
        .unwrap_err();
    let _ = fx
        .orgs
        .add_member(&owner, org, Uuid::new_v4(), Role::Viewer)
        .await
        .unwrap_err();
    let _ = fx
        .orgs
        .accept_invitation(&Caller::user(Uuid::new_v4()), "afi_unknown")
        .await
        .unwrap_err();
    assert_eq!(fx.orgs.store().audit_head(org).await.unwrap(), before);
    assert_eq!(fx.actions(org).await, ["org.create"]);
}

/// Appends racing on one org get consecutive numbers and one valid chain.
pub async fn concurrent_appends_keep_one_chain<S: OrgStore + Clone + 'static>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let barrier = Arc::new(Barrier::new(4));
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let (orgs, owner, barrier) = (fx.orgs.clone(), owner.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..10 {
                    orgs.record(&owner, org, "app.publish", None, json!({"task": t, "i": i}))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let entries = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 100))
        .await
        .unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=41).collect::<Vec<u64>>()
    );
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        41
    );
}

/// Retention removes a prefix; what is kept still verifies, from its first entry, and a
/// range inside it verifies against the entry before it.
pub async fn purging_keeps_a_verifiable_suffix<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let (other, other_owner) = fx.org(None).await;
    for _ in 0..4 {
        fx.clock.advance(Duration::from_secs(3600));
        fx.orgs
            .record(&owner, org, "settings.change", None, json!(null))
            .await
            .unwrap();
        fx.orgs
            .record(&other_owner, other, "settings.change", None, json!(null))
            .await
            .unwrap();
    }
    // Entries 1 (create) and 2, 3 are before the cut; 4 and 5 are kept.
    let cut = fx.orgs.store().now() - chrono::Duration::minutes(90);
    assert_eq!(fx.orgs.purge_audit_before(Some(org), cut).await.unwrap(), 3);
    let head = fx.orgs.store().audit_head(org).await.unwrap().unwrap();
    assert_eq!((head.first_seq, head.last_seq), (4, 5));
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        2
    );
    // The other org is untouched until a purge of every org.
    assert_eq!(
        fx.orgs
            .verify_audit(other, AuditRange::all())
            .await
            .unwrap(),
        5
    );
    assert_eq!(fx.orgs.purge_audit_before(None, cut).await.unwrap(), 3);
    assert_eq!(
        fx.orgs
            .verify_audit(other, AuditRange::all())
            .await
            .unwrap(),
        2
    );

    fx.clock.advance(Duration::from_secs(3600));
    let from = fx.orgs.store().now();
    for _ in 0..3 {
        fx.orgs
            .record(&owner, org, "settings.change", None, json!(null))
            .await
            .unwrap();
    }
    let range = AuditRange::between(Some(from), None);
    assert_eq!(fx.orgs.verify_audit(org, range).await.unwrap(), 3);
    let bounded = AuditRange::between(None, Some(from));
    assert_eq!(fx.orgs.verify_audit(org, bounded).await.unwrap(), 2);
    // Purging everything leaves an empty, valid log that keeps counting.
    fx.clock.advance(Duration::from_secs(1));
    fx.orgs
        .purge_audit_before(Some(org), fx.orgs.store().now())
        .await
        .unwrap();
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        0
    );
    let next = fx
        .orgs
        .record(&owner, org, "settings.change", None, json!(null))
        .await
        .unwrap();
    assert_eq!(next.seq, 9);
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        1
    );
}

/// Exports hold every entry of the range, a line each, read a page at a time.
pub async fn exports_stream_json_lines_and_csv<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    for i in 0..1100 {
        fx.orgs
            .record(
                &owner,
                org,
                "app.publish",
                Some(format!("app:{i}")),
                json!({"n": i}),
            )
            .await
            .unwrap();
    }
    let mut export = fx
        .orgs
        .export_audit(&owner, org, AuditRange::all(), ExportFormat::JsonLines)
        .await
        .unwrap();
    let mut chunks = 0;
    let mut lines = Vec::new();
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        chunks += 1;
        lines.extend(chunk.lines().map(str::to_owned));
    }
    assert!(chunks >= 3, "{chunks} chunks");
    assert_eq!(lines.len(), 1101);
    let last: crate::AuditEntry = serde_json::from_str(&lines[1100]).unwrap();
    assert_eq!((last.seq, last.detail.clone()), (1101, json!({"n": 1099})));
    assert_eq!(last.hash, last.computed_hash());

    let mut csv = Vec::new();
    fx.orgs
        .export_audit(&owner, org, AuditRange::all(), ExportFormat::Csv)
        .await
        .unwrap()
        .write_to(&mut csv)
        .await
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1102);
    assert!(rows[0].starts_with("seq,id,time,actor_kind"));
    assert!(rows[2].starts_with("2,"), "{}", rows[2]);
    assert!(rows[2].contains(",app.publish,app:0,"), "{}", rows[2]);
    assert!(rows[2].contains("\"{\"\"n\"\":0}\""), "{}", rows[2]);

    let viewer = fx.member(org, &owner, Role::Viewer).await;
    let err = fx
        .orgs
        .export_audit(&viewer, org, AuditRange::all(), ExportFormat::Csv)
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");
}
