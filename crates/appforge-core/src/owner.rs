//! Whose space a stored resource is in: a user's personal space or an organization's.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whose space a resource (an app, a job, an upload) belongs to, and the space a store call
/// is scoped to.
///
/// Every user has a personal space, the default: a resource created without an org is the
/// user's, and only that user reads it. A resource created in an org is the org's: every
/// call scoped to that org reads it, whoever created it, and no call scoped to a user does.
/// Stores check the scope in their queries, so a resource outside it is simply not found.
///
/// Who may act for an org (its members, by role, and its API keys) is decided before a
/// store is called, by the host or by `appforge-orgs`; a store trusts the `Owner` it is given.
///
/// ```
/// use appforge_core::Owner;
/// use uuid::Uuid;
///
/// let user = Uuid::new_v4();
/// assert_eq!(Owner::from(user), Owner::User(user));
/// assert_eq!(Owner::User(user).org(), None);
/// let org = Uuid::new_v4();
/// assert_eq!(Owner::Org(org).org(), Some(org));
/// assert_eq!(Owner::Org(org).to_string(), format!("org:{org}"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "id")]
pub enum Owner {
    /// A user's personal space.
    User(Uuid),
    /// An organization's space.
    Org(Uuid),
}

impl Owner {
    /// The resource's owner: the org when there is one, else the user.
    #[must_use]
    pub fn of(user: Uuid, org: Option<Uuid>) -> Self {
        org.map_or(Self::User(user), Self::Org)
    }

    /// The user's or the org's id.
    #[must_use]
    pub fn id(self) -> Uuid {
        match self {
            Self::User(id) | Self::Org(id) => id,
        }
    }

    /// The org, for an org's space.
    #[must_use]
    pub fn org(self) -> Option<Uuid> {
        match self {
            Self::User(_) => None,
            Self::Org(id) => Some(id),
        }
    }

    /// Whether a resource created by `user` in `org` (`None`: the personal space) is in
    /// this space.
    #[must_use]
    pub fn owns(self, user: Uuid, org: Option<Uuid>) -> bool {
        match self {
            Self::User(id) => org.is_none() && id == user,
            Self::Org(id) => org == Some(id),
        }
    }
}

impl From<Uuid> for Owner {
    /// A user's personal space.
    fn from(user: Uuid) -> Self {
        Self::User(user)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user:{id}"),
            Self::Org(id) => write!(f, "org:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_space_owns_only_the_users_personal_resources() {
        let (alice, bob, org) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let space = Owner::User(alice);
        assert!(space.owns(alice, None));
        assert!(!space.owns(bob, None));
        assert!(
            !space.owns(alice, Some(org)),
            "alice's org apps are not personal"
        );
    }

    #[test]
    fn an_org_space_owns_every_members_resources_in_it_and_nothing_else() {
        let (alice, bob, org, other) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let space = Owner::Org(org);
        assert!(space.owns(alice, Some(org)));
        assert!(space.owns(bob, Some(org)));
        assert!(!space.owns(alice, None));
        assert!(!space.owns(alice, Some(other)));
        assert_eq!(Owner::of(alice, Some(org)), space);
        assert_eq!(Owner::of(alice, None), Owner::User(alice));
    }

    #[test]
    fn serializes_with_its_kind() {
        let org = Uuid::nil();
        let json = serde_json::to_string(&Owner::Org(org)).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"org","id":"00000000-0000-0000-0000-000000000000"}"#
        );
        assert_eq!(
            serde_json::from_str::<Owner>(&json).unwrap(),
            Owner::Org(org)
        );
    }
}
