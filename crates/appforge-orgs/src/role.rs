//! Roles and the one table of what each may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A member's role in an organization, from least to most powerful (the `Ord` order is the
/// rank: an actor grants or acts on roles no higher than its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the org's apps, versions, jobs and diffs.
    Viewer,
    /// Also generates, modifies, chats about, publishes and deletes the org's apps.
    Member,
    /// Also invites, removes and changes the role of members up to admin, manages API keys,
    /// reads the audit log.
    Admin,
    /// Also billing, SSO settings, deleting the org, transferring ownership.
    Owner,
}

/// Something a role may be allowed to do in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Permission {
    /// Read the org, its apps, versions, jobs and diffs, and its member list.
    ReadApps,
    /// Start a generation.
    Generate,
    /// Modify an app.
    Modify,
    /// Chat about an app.
    Chat,
    /// Publish or unpublish an app.
    Publish,
    /// Delete or restore an app.
    DeleteApp,
    /// Invite members (and revoke invitations).
    Invite,
    /// Remove members.
    RemoveMember,
    /// Change members' roles.
    ChangeRole,
    /// Create, list and revoke org API keys.
    ManageApiKeys,
    /// Read and export the audit log.
    ReadAudit,
    /// Rename the org and change its settings.
    ManageSettings,
    /// Subscription, seats, checkout and portal.
    Billing,
    /// Single sign-on settings.
    ManageSso,
    /// Delete the org.
    DeleteOrg,
    /// Make another member an owner and step down.
    TransferOwnership,
}

const VIEWER: &[Permission] = &[Permission::ReadApps];
const MEMBER: &[Permission] = &[
    Permission::ReadApps,
    Permission::Generate,
    Permission::Modify,
    Permission::Chat,
    Permission::Publish,
    Permission::DeleteApp,
];
const ADMIN: &[Permission] = &[
    Permission::ReadApps,
    Permission::Generate,
    Permission::Modify,
    Permission::Chat,
    Permission::Publish,
    Permission::DeleteApp,
    Permission::Invite,
    Permission::RemoveMember,
    Permission::ChangeRole,
    Permission::ManageApiKeys,
    Permission::ReadAudit,
    Permission::ManageSettings,
];
const OWNER: &[Permission] = &[
    Permission::ReadApps,
    Permission::Generate,
    Permission::Modify,
    Permission::Chat,
    Permission::Publish,
    Permission::DeleteApp,
    Permission::Invite,
    Permission::RemoveMember,
    Permission::ChangeRole,
    Permission::ManageApiKeys,
    Permission::ReadAudit,
    Permission::ManageSettings,
    Permission::Billing,
    Permission::ManageSso,
    Permission::DeleteOrg,
    Permission::TransferOwnership,
];

/// What each role may do: the one table every check reads.
pub const PERMISSIONS: &[(Role, &[Permission])] = &[
    (Role::Viewer, VIEWER),
    (Role::Member, MEMBER),
    (Role::Admin, ADMIN),
    (Role::Owner, OWNER),
];

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Self; 4] = [Self::Viewer, Self::Member, Self::Admin, Self::Owner];

    /// The role's permissions, from [`PERMISSIONS`].
    #[must_use]
    pub fn permissions(self) -> &'static [Permission] {
        PERMISSIONS
            .iter()
            .find(|(role, _)| *role == self)
            .map_or(&[], |(_, permissions)| *permissions)
    }

    /// Whether the role has `permission`.
    #[must_use]
    pub fn can(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// The role's name as stored and serialized: `viewer`, `member`, `admin`, `owner`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown role {s:?}")))
    }
}

impl Permission {
    /// Every permission.
    pub const ALL: [Self; 16] = [
        Self::ReadApps,
        Self::Generate,
        Self::Modify,
        Self::Chat,
        Self::Publish,
        Self::DeleteApp,
        Self::Invite,
        Self::RemoveMember,
        Self::ChangeRole,
        Self::ManageApiKeys,
        Self::ReadAudit,
        Self::ManageSettings,
        Self::Billing,
        Self::ManageSso,
        Self::DeleteOrg,
        Self::TransferOwnership,
    ];

    /// The permission's name, as in `/openapi.json`: `read_apps`, `generate`, ...
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadApps => "read_apps",
            Self::Generate => "generate",
            Self::Modify => "modify",
            Self::Chat => "chat",
            Self::Publish => "publish",
            Self::DeleteApp => "delete_app",
            Self::Invite => "invite",
            Self::RemoveMember => "remove_member",
            Self::ChangeRole => "change_role",
            Self::ManageApiKeys => "manage_api_keys",
            Self::ReadAudit => "read_audit",
            Self::ManageSettings => "manage_settings",
            Self::Billing => "billing",
            Self::ManageSso => "manage_sso",
            Self::DeleteOrg => "delete_org",
            Self::TransferOwnership => "transfer_ownership",
        }
    }

    /// The least powerful role that has this permission.
    #[must_use]
    pub fn least_role(self) -> Role {
        Role::ALL
            .into_iter()
            .find(|role| role.can(self))
            .unwrap_or(Role::Owner)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_what_the_role_below_has() {
        for pair in Role::ALL.windows(2) {
            let (lower, higher) = (pair[0], pair[1]);
            for permission in lower.permissions() {
                assert!(higher.can(*permission), "{higher} lacks {permission}");
            }
            assert!(higher.permissions().len() > lower.permissions().len());
        }
    }

    #[test]
    fn the_table_matches_the_product_rules() {
        assert!(Role::Viewer.can(Permission::ReadApps));
        assert!(!Role::Viewer.can(Permission::Generate));
        assert!(Role::Member.can(Permission::Publish));
        assert!(!Role::Member.can(Permission::Invite));
        assert!(Role::Admin.can(Permission::ReadAudit));
        assert!(!Role::Admin.can(Permission::Billing));
        assert!(Role::Owner.can(Permission::TransferOwnership));
        for permission in Permission::ALL {
            assert!(Role::Owner.can(permission), "owner lacks {permission}");
        }
        assert_eq!(Permission::ManageApiKeys.least_role(), Role::Admin);
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
        }
        for permission in Permission::ALL {
            assert_eq!(
                serde_json::to_string(&permission).unwrap(),
                format!("\"{}\"", permission.as_str())
            );
        }
        assert!("root".parse::<Role>().is_err());
    }
}
