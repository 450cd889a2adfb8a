//! Org API keys, for CI and scripts: they act as the org with their role.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::role::Role;
use crate::token::Secret;

/// An org API key as stored: its secret is never stored, only its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKey {
    /// Its id.
    pub id: Uuid,
    /// The org it acts for.
    pub org_id: Uuid,
    /// A label (`"CI"`).
    pub name: String,
    /// The role it acts with, no higher than its creator's.
    pub role: Role,
    /// The 12 hex characters after `afk_`, shown to tell keys apart and used for lookup.
    pub prefix: String,
    /// Who created it.
    pub created_by: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it last authenticated.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// SHA-256 of the whole key (never serialized).
    #[serde(skip)]
    pub secret_hash: [u8; 32],
}

impl ApiKey {
    /// Whether it authenticates at `now`: not revoked, not expired.
    #[must_use]
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// What [`Orgs::create_api_key`](crate::Orgs::create_api_key) is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewApiKey {
    /// A label.
    pub name: String,
    /// The role, no higher than the creator's.
    pub role: Role,
    /// When it stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewApiKey {
    /// A key with `role` that never expires.
    #[must_use]
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
            expires_at: None,
        }
    }

    /// Stops the key working at `at`.
    #[must_use]
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// A new key with its secret, shown this once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreatedApiKey {
    /// The key.
    pub key: ApiKey,
    /// The whole key, `afk_<prefix>_<secret>`, for `Authorization: Bearer`.
    pub token: Secret,
}

/// Who an authenticated API key acts as: the org, with the key's role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKeyPrincipal {
    /// The key.
    pub key_id: Uuid,
    /// The org it acts for.
    pub org_id: Uuid,
    /// Its role.
    pub role: Role,
    /// Its label.
    pub name: String,
}
