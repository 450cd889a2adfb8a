//! Invitations to join an organization.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::role::Role;
use crate::token::Secret;

/// How long an invitation stays open by default: 7 days.
pub const DEFAULT_INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// An invitation: its token is never stored, only its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Invitation {
    /// Its id.
    pub id: Uuid,
    /// The org.
    pub org_id: Uuid,
    /// The invited address, lowercased.
    pub email: String,
    /// The role accepting grants.
    pub role: Role,
    /// Who invited.
    pub invited_by: Uuid,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops being open.
    pub expires_at: DateTime<Utc>,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// Who accepted it.
    pub accepted_by: Option<Uuid>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// SHA-256 of the token (never serialized).
    #[serde(skip)]
    pub token_hash: [u8; 32],
}

impl Invitation {
    /// Whether it can still be accepted (and takes a seat): not accepted, not revoked, not
    /// expired at `now`.
    #[must_use]
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A new invitation with its token, shown this once: the inviter sends it, or the host mails
/// it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreatedInvitation {
    /// The invitation.
    pub invitation: Invitation,
    /// The token (`afi_...`) to accept it with.
    pub token: Secret,
}
