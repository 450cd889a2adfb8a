//! The per-member daily generation cap and `admit`: the role and the cap in one read.

use serde_json::json;
use uuid::Uuid;

use super::{Backend, Fx, user_of};
use crate::{Access, AuditQuery, AuditRange, Caller, Error, NewApiKey, OrgStore, Permission, Role};

/// An admin sets the cap and clears it with `None`; `get_org` and `member_access` read it
/// back; each change is an `org.member_cap` audit entry and the chain verifies; a viewer or
/// a member is refused, a cap of 0 too, with nothing stored or audited; an unknown org is
/// not found.
pub async fn the_member_daily_cap_is_set_read_and_cleared<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let admin = fx.member(org, &owner, Role::Admin).await;
    let member = fx.member(org, &owner, Role::Member).await;
    let viewer = fx.member(org, &owner, Role::Viewer).await;
    let store = fx.orgs.store();

    let fresh = fx.orgs.get_org(&member, org).await.unwrap();
    assert_eq!(fresh.member_daily_cap, None, "no cap until one is set");
    let access = store
        .member_access(org, user_of(&member))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((access.role, access.member_daily_cap), (Role::Member, None));
    let audited_before = fx.actions(org).await.len();

    for caller in [&viewer, &member] {
        let err = fx
            .orgs
            .set_member_daily_cap(caller, org, Some(5))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Forbidden {
                    permission: Permission::ManageSettings,
                    ..
                }
            ),
            "{err}"
        );
    }
    let zero = fx
        .orgs
        .set_member_daily_cap(&admin, org, Some(0))
        .await
        .unwrap_err();
    assert!(matches!(zero, Error::InvalidArgument(_)), "{zero}");
    assert_eq!(
        fx.orgs.get_org(&admin, org).await.unwrap().member_daily_cap,
        None
    );
    assert_eq!(
        fx.actions(org).await.len(),
        audited_before,
        "refused changes leave no entry"
    );

    let set = fx
        .orgs
        .set_member_daily_cap(&admin, org, Some(25))
        .await
        .unwrap();
    assert_eq!((set.id, set.member_daily_cap), (org, Some(25)));
    let read = fx.orgs.get_org(&viewer, org).await.unwrap();
    assert_eq!(read.member_daily_cap, Some(25));
    assert_eq!(read, set, "the answer is the stored org");
    assert_eq!(
        store.get_org(org).await.unwrap().unwrap().member_daily_cap,
        Some(25)
    );
    for (caller, role) in [
        (&owner, Role::Owner),
        (&admin, Role::Admin),
        (&member, Role::Member),
        (&viewer, Role::Viewer),
    ] {
        let access = store
            .member_access(org, user_of(caller))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((access.role, access.member_daily_cap), (role, Some(25)));
    }
    // The org's list for a user carries the cap too.
    let listed = fx.orgs.orgs_of(user_of(&viewer)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0.member_daily_cap, Some(25));

    let cleared = fx
        .orgs
        .set_member_daily_cap(&owner, org, None)
        .await
        .unwrap();
    assert_eq!(cleared.member_daily_cap, None);
    assert_eq!(
        fx.orgs
            .get_org(&member, org)
            .await
            .unwrap()
            .member_daily_cap,
        None
    );
    let access = store
        .member_access(org, user_of(&member))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(access.member_daily_cap, None);

    let entries: Vec<_> = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 100))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "org.member_cap")
        .collect();
    assert_eq!(entries.len(), 2, "one entry per change");
    assert_eq!(entries[0].actor, crate::Actor::User(user_of(&admin)));
    assert_eq!(entries[0].target, Some(format!("org:{org}")));
    assert_eq!(entries[0].detail, json!({"dailyGenerations": 25}));
    assert_eq!(entries[1].actor, crate::Actor::User(user_of(&owner)));
    assert_eq!(entries[1].detail, json!({"dailyGenerations": null}));
    let total = fx.actions(org).await.len() as u64;
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        total
    );

    // The store refuses an unknown org, and writes no entry for it.
    let unknown = Uuid::new_v4();
    let err = store
        .set_member_daily_cap(
            unknown,
            Some(3),
            crate::AuditRecord::new(crate::Actor::System, "org.member_cap"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OrgNotFound(id) if id == unknown),
        "{err}"
    );
    assert!(store.audit_head(unknown).await.unwrap().is_none());
    let err = fx
        .orgs
        .set_member_daily_cap(&Caller::system(), unknown, Some(3))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        store
            .member_access(unknown, user_of(&owner))
            .await
            .unwrap()
            .is_none()
    );
}

/// `admit` answers what `authorize` does plus the cap: a member's role and the org's cap; a
/// non-member, a member of another org and a key of another org are not found; a viewer
/// asking to generate is forbidden; an API key has its role and no cap; the host is an owner
/// with no cap.
pub async fn admit_answers_the_role_and_the_cap<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let member = fx.member(org, &owner, Role::Member).await;
    let viewer = fx.member(org, &owner, Role::Viewer).await;
    let (other_org, other_owner) = fx.org(None).await;
    let elsewhere = fx.member(other_org, &other_owner, Role::Admin).await;

    let uncapped = fx
        .orgs
        .admit(&member, org, Permission::Generate)
        .await
        .unwrap();
    assert_eq!(
        uncapped,
        Access {
            role: Role::Member,
            member_daily_cap: None
        }
    );

    fx.orgs
        .set_member_daily_cap(&owner, org, Some(10))
        .await
        .unwrap();
    fx.orgs
        .set_member_daily_cap(&other_owner, other_org, Some(99))
        .await
        .unwrap();
    for (caller, permission, role) in [
        (&member, Permission::Generate, Role::Member),
        (&viewer, Permission::ReadApps, Role::Viewer),
        (&owner, Permission::ManageSettings, Role::Owner),
    ] {
        let access = fx.orgs.admit(caller, org, permission).await.unwrap();
        assert_eq!(
            access,
            Access {
                role,
                member_daily_cap: Some(10)
            }
        );
        assert_eq!(
            fx.orgs.authorize(caller, org, permission).await.unwrap(),
            role,
            "authorize agrees"
        );
    }

    let err = fx
        .orgs
        .admit(&viewer, org, Permission::Generate)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                role: Role::Viewer,
                permission: Permission::Generate
            }
        ),
        "{err}"
    );
    let outsider = Caller::user(Uuid::new_v4());
    for (caller, target) in [(&outsider, org), (&elsewhere, org), (&member, other_org)] {
        let err = fx
            .orgs
            .admit(caller, target, Permission::ReadApps)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::OrgNotFound(id) if id == target),
            "{err}"
        );
    }
    let unknown = Uuid::new_v4();
    let err = fx
        .orgs
        .admit(&Caller::system(), unknown, Permission::ReadApps)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OrgNotFound(id) if id == unknown),
        "{err}"
    );

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
    let key_caller = Caller::api_key(principal);
    assert_eq!(
        fx.orgs
            .admit(&key_caller, org, Permission::Generate)
            .await
            .unwrap(),
        Access {
            role: Role::Member,
            member_daily_cap: None
        },
        "a key acts as the org, not as a member"
    );
    assert!(
        fx.orgs
            .admit(&key_caller, org, Permission::ManageSettings)
            .await
            .unwrap_err()
            .is_forbidden()
    );
    assert!(
        fx.orgs
            .admit(&key_caller, other_org, Permission::ReadApps)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(
        fx.orgs
            .admit(&Caller::system(), org, Permission::Billing)
            .await
            .unwrap(),
        Access {
            role: Role::Owner,
            member_daily_cap: None
        }
    );
}
