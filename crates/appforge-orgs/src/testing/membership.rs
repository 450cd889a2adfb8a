//! Organizations, permissions, ranks and the last owner.

use std::sync::Arc;

use tokio::sync::Barrier;
use uuid::Uuid;

use super::{Backend, Fx, user_of};
use crate::{AuditRange, Caller, Error, NewApiKey, NewOrg, OrgStore, Permission, Role};

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

/// Two owners of an org demoting themselves at the same moment: exactly one succeeds, the
/// org keeps an owner.
pub async fn two_owners_stepping_down_at_once_leave_one<S: OrgStore + Clone + 'static>(
    backend: Backend<S>,
) {
    let fx = Fx::new(backend);
    for round in 0..5 {
        let (org, first) = fx.org(None).await;
        let second = fx.member(org, &first, Role::Owner).await;
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [first.clone(), second.clone()]
            .into_iter()
            .map(|owner| {
                let (orgs, barrier) = (fx.orgs.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let me = user_of(&owner);
                    orgs.change_role(&owner, org, me, Role::Admin).await
                })
            })
            .collect();
        let mut stepped_down = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => stepped_down += 1,
                Err(Error::LastOwner(_)) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(stepped_down, 1, "round {round}");
        let owners = fx
            .orgs
            .members(&first, org)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.role == Role::Owner)
            .count();
        assert_eq!(owners, 1, "round {round}");
    }
}
