use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::MediaType;

/// A stored upload's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Upload {
    /// A random id.
    pub id: Uuid,
    /// The user or organization it belongs to.
    pub owner: Uuid,
    /// The stored format (the re-encoded image's, not the client's claim).
    #[serde(rename = "contentType")]
    pub media_type: MediaType,
    /// The stored size in bytes.
    pub size_bytes: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When it was deleted; its bytes go at the next purge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Upload {
    /// Metadata for a new upload.
    #[allow(clippy::too_many_arguments)]
    #[must_use]
    pub fn new(
        id: Uuid,
        owner: Uuid,
        media_type: MediaType,
        size_bytes: u64,
        width: u32,
        height: u32,
        sha256: String,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            owner,
            media_type,
            size_bytes,
            width,
            height,
            sha256,
            created_at,
            deleted_at: None,
        }
    }

    /// Where its bytes are in the [`Storage`](crate::Storage): `{owner}/{id}.{extension}`.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}.{}", self.owner, self.id, self.media_type.extension())
    }

    /// What the image costs a model in input tokens: width x height / 750, as the Messages
    /// API documents.
    #[must_use]
    pub fn estimated_tokens(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) / 750
    }
}
