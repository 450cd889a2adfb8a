use uuid::Uuid;

use crate::role::{Permission, Role};

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such organization, or the actor does not belong to it: a host answers `404` for
    /// both, so that outsiders learn nothing of an org.
    #[error("organization {0} not found")]
    OrgNotFound(Uuid),

    /// The user is not a member of the org.
    #[error("user {user} is not a member of organization {org}")]
    MemberNotFound {
        /// The org.
        org: Uuid,
        /// The user.
        user: Uuid,
    },

    /// No open invitation matches (unknown, expired, used or revoked token, or id).
    #[error("invitation not found, expired, used or revoked")]
    InvitationNotFound,

    /// No such API key in the org.
    #[error("API key {0} not found")]
    ApiKeyNotFound(Uuid),

    /// The actor belongs to the org but its role lacks the permission (a host answers `403`).
    #[error("role {role} lacks the permission {permission}")]
    Forbidden {
        /// The actor's role in the org.
        role: Role,
        /// The permission the action needs.
        permission: Permission,
    },

    /// The action would grant, or act on, a role higher than the actor's own.
    #[error("role {role} cannot act on or grant the role {target}")]
    RoleTooHigh {
        /// The actor's role.
        role: Role,
        /// The role acted on or granted.
        target: Role,
    },

    /// Removing or demoting the org's last owner is refused: an org always keeps one.
    #[error("organization {0} must keep at least one owner")]
    LastOwner(Uuid),

    /// Members plus open invitations would exceed the org's seats.
    #[error("organization {org} has no free seat ({used} of {seats} used)")]
    NoSeat {
        /// The org.
        org: Uuid,
        /// Members plus open invitations now.
        used: u32,
        /// The org's seats.
        seats: u32,
    },

    /// The slug is taken by another organization.
    #[error("the slug {0:?} is taken")]
    SlugTaken(String),

    /// The user already belongs to the org, or an open invitation exists for the email.
    #[error("conflict: {0}")]
    Conflict(String),

    /// An argument is invalid (a malformed slug or email, a blank name, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Stored data cannot be read back.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),

    /// The database failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("orgs database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A migration failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("orgs migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The audit chain is broken: an entry was altered or deleted.
    #[error("{0}")]
    BrokenLink(crate::audit::BrokenLink),

    /// Writing an export failed.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether a host should answer `404`: the org, member, invitation or key is unknown,
    /// or the actor is not a member of the org.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::OrgNotFound(_)
                | Self::MemberNotFound { .. }
                | Self::InvitationNotFound
                | Self::ApiKeyNotFound(_)
        )
    }

    /// Whether a host should answer `403`: a member whose role does not allow the action.
    #[must_use]
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Forbidden { .. } | Self::RoleTooHigh { .. })
    }

    /// The broken link [`Orgs::verify_audit`](crate::Orgs::verify_audit) found.
    #[must_use]
    pub fn broken_link(&self) -> Option<crate::audit::BrokenLink> {
        match self {
            Self::BrokenLink(link) => Some(*link),
            _ => None,
        }
    }

    /// Whether a host should answer `409`: a rule of the org's state refused the action (last
    /// owner, no seat, slug taken, already a member).
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::LastOwner(_) | Self::NoSeat { .. } | Self::SlugTaken(_) | Self::Conflict(_)
        )
    }
}
