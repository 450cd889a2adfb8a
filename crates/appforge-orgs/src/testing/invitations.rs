//! Invitations, seats and API keys.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use uuid::Uuid;

use super::{Backend, Fx, user_of};
use crate::{AuditRange, Caller, Error, NewApiKey, OrgStore, Permission, Role};

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
    let first_use = fx.orgs.store().now();
    assert_eq!(listed[0].last_used_at, Some(first_use));
    // Within a minute the stored time stands (no write per request); after it, it moves.
    fx.clock.advance(Duration::from_secs(30));
    fx.orgs.authenticate(&token).await.unwrap().unwrap();
    let listed = fx.orgs.api_keys(&admin, org).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(first_use));
    fx.clock.advance(crate::LAST_USED_GRANULARITY);
    fx.orgs.authenticate(&token).await.unwrap().unwrap();
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
