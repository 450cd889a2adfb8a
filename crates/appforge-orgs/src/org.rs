//! Organizations, their members, and who owns a resource.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::role::Role;
use crate::{Error, Result};

/// The longest organization name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Who a resource (an app, a job, a quota) belongs to: the vocabulary type of the family,
/// re-exported so that an org host and the stores name one type.
pub use appforge_core::Owner;

/// An organization (a team workspace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Organization {
    /// Its id.
    pub id: Uuid,
    /// Its display name.
    pub name: String,
    /// Its unique, URL-safe short name.
    pub slug: String,
    /// The user who created it.
    pub created_by: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// How many members plus open invitations it may have; `None` is no limit.
    pub seats: Option<u32>,
    /// Generations one member may start per day in the org's space; `None`: only the org's
    /// pooled quota limits them.
    pub member_daily_cap: Option<u32>,
}

/// What [`OrgStore::member_access`](crate::OrgStore::member_access) answers in one query: a
/// member's role and the org's per-member daily cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemberAccess {
    /// The member's role.
    pub role: Role,
    /// The org's [`Organization::member_daily_cap`].
    pub member_daily_cap: Option<u32>,
}

impl MemberAccess {
    /// A member's role and the org's per-member daily cap (for stores outside this crate).
    #[must_use]
    pub fn new(role: Role, member_daily_cap: Option<u32>) -> Self {
        Self {
            role,
            member_daily_cap,
        }
    }
}

/// A user's membership of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Member {
    /// The org.
    pub org_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The user's role.
    pub role: Role,
    /// When the user joined.
    pub joined_at: DateTime<Utc>,
}

/// What [`Orgs::create_org`](crate::Orgs::create_org) is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewOrg {
    /// The display name.
    pub name: String,
    /// The slug: 3 to 48 characters of `a-z`, `0-9` and `-`, neither starting nor ending
    /// with `-`.
    pub slug: String,
    /// The seats (`None`: no limit).
    pub seats: Option<u32>,
}

impl NewOrg {
    /// An org with no seat limit.
    #[must_use]
    pub fn new(name: impl Into<String>, slug: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            slug: slug.into(),
            seats: None,
        }
    }

    /// Limits members plus open invitations to `seats`.
    #[must_use]
    pub fn seats(mut self, seats: u32) -> Self {
        self.seats = Some(seats);
        self
    }
}

/// Checks an org name: trimmed, not blank, at most [`MAX_NAME_CHARS`] characters.
pub(crate) fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidArgument("the name is blank".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "the name must be at most {MAX_NAME_CHARS} printable characters"
        )));
    }
    Ok(name.to_owned())
}

/// Checks a slug: 3 to 48 characters of `a-z`, `0-9` and `-`, no leading or trailing `-`,
/// no `--`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] naming the rule broken.
pub fn validate_slug(slug: &str) -> Result<()> {
    let ok_chars = slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(3..=48).contains(&slug.len())
        || !ok_chars
        || slug.starts_with('-')
        || slug.ends_with('-')
        || slug.contains("--")
    {
        return Err(Error::InvalidArgument(format!(
            "the slug {slug:?} must be 3 to 48 characters of a-z, 0-9 and single inner dashes"
        )));
    }
    Ok(())
}

/// Normalizes an email address for an invitation: trimmed, lowercased, one `@` with text on
/// both sides, no space, at most 254 characters.
pub(crate) fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(Error::InvalidArgument(format!(
            "{email:?} is not an email address"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["acme", "acme-2", "a1b", "team-rocket-inc"] {
            validate_slug(ok).unwrap();
        }
        for bad in [
            "ab",
            "-acme",
            "acme-",
            "ac--me",
            "Acme",
            "ac me",
            "acmé",
            &"a".repeat(49),
        ] {
            assert!(validate_slug(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names() {
        assert_eq!(check_name("  Acme  ").unwrap(), "Acme");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"x".repeat(101)).is_err());
    }

    #[test]
    fn owner_serializes_with_its_kind() {
        let id = Uuid::nil();
        assert_eq!(
            serde_json::to_value(Owner::Org(id)).unwrap(),
            serde_json::json!({"kind": "org", "id": id})
        );
        assert_eq!(Owner::User(id).org(), None);
    }
}
