//! Branding: set by admins, read by members, its logo stored as given.

use crate::{Error, Logo, OrgStore, Role};

use super::{Backend, Fx};

/// An admin sets the display name, colour and logo; members read them; a low-contrast
/// colour and a viewer's change are refused with nothing stored; the logo comes back
/// byte for byte and can be removed; deleting the org removes its branding.
pub async fn branding_is_set_read_and_cleared<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let admin = fx.member(org, &owner, Role::Admin).await;
    let viewer = fx.member(org, &owner, Role::Viewer).await;

    let empty = fx.orgs.branding(&viewer, org).await.unwrap();
    assert_eq!(
        (empty.display_name, empty.primary_color, empty.logo),
        (None, None, None)
    );

    let set = fx
        .orgs
        .set_branding(&admin, org, Some(" Acme Labs "), Some("#1A73E8"))
        .await
        .unwrap();
    assert_eq!(set.display_name.as_deref(), Some("Acme Labs"));
    assert_eq!(set.primary_color.as_deref(), Some("#1a73e8"));
    assert!(set.updated_at.is_some());

    let low = fx
        .orgs
        .set_branding(&admin, org, Some("X"), Some("#777777"))
        .await
        .unwrap_err();
    assert!(
        matches!(low, Error::InvalidArgument(ref m) if m.contains("4.48")),
        "{low}"
    );
    let denied = fx
        .orgs
        .set_branding(&viewer, org, Some("X"), None)
        .await
        .unwrap_err();
    assert!(denied.is_forbidden(), "{denied}");
    let logo = Logo::new("image/png", vec![0x89, b'P', b'N', b'G', 1, 2, 3]).unwrap();
    assert!(
        fx.orgs
            .set_logo(&viewer, org, &logo)
            .await
            .unwrap_err()
            .is_forbidden()
    );
    assert_eq!(fx.orgs.branding(&viewer, org).await.unwrap(), set);

    let with_logo = fx.orgs.set_logo(&admin, org, &logo).await.unwrap();
    assert_eq!(with_logo.logo, Some(logo.info()));
    assert_eq!(with_logo.display_name.as_deref(), Some("Acme Labs"));
    assert_eq!(
        fx.orgs.logo(&viewer, org).await.unwrap(),
        Some(logo.clone())
    );
    assert_eq!(fx.orgs.logo_of(org).await.unwrap(), Some(logo));
    let renamed = fx
        .orgs
        .set_branding(&admin, org, None, Some("#000000"))
        .await
        .unwrap();
    assert_eq!(renamed.display_name, None);
    assert!(
        renamed.logo.is_some(),
        "the logo stays when the name changes"
    );

    let cleared = fx.orgs.delete_logo(&admin, org).await.unwrap();
    assert_eq!(cleared.logo, None);
    assert_eq!(fx.orgs.logo(&viewer, org).await.unwrap(), None);
    let outsider = crate::Caller::user(uuid::Uuid::new_v4());
    assert!(
        fx.orgs
            .branding(&outsider, org)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let actions = fx.actions(org).await;
    for action in ["branding.update", "branding.logo", "branding.logo.delete"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    assert_eq!(
        actions.iter().filter(|a| *a == "branding.update").count(),
        2
    );

    fx.orgs.delete_org(&owner, org).await.unwrap();
    assert_eq!(fx.orgs.branding_of(org).await.unwrap().primary_color, None);
}
