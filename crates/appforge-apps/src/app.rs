//! Apps and their versions as the store hands them out.

use appforge_files::AppFile;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A saved app: the seed's `generated_apps` row, with its files in [versions](Version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct App {
    /// The app's id.
    pub id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// The title shown in the library (searchable).
    pub title: String,
    /// A description.
    pub description: String,
    /// Free-form JSON the host keeps with the app (app type, dependencies, ...).
    pub metadata: Value,
    /// A flag for the host (a public gallery, say); reading an app still needs its owner or
    /// its published preview.
    pub is_public: bool,
    /// The preview's address, once the app was first published: at least 128 random bits,
    /// URL-safe.
    pub preview_slug: Option<String>,
    /// Whether the preview is served.
    pub preview_enabled: bool,
    /// The version the preview serves.
    pub published_version: Option<u32>,
    /// The latest version.
    pub current_version: u32,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed at (a new version, a rename, publishing, deleting).
    pub updated_at: DateTime<Utc>,
    /// Set while the app is deleted and can still be restored.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What is known about one version, without its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VersionInfo {
    /// The app.
    pub app_id: Uuid,
    /// 1 for the first version, then one more each time.
    pub number: u32,
    /// The version the change was made from (`None` for the first one).
    pub base_version: Option<u32>,
    /// The generation job that produced it.
    pub job_id: Option<Uuid>,
    /// What the user asked for.
    pub prompt: Option<String>,
    /// What changed, in words.
    pub change_summary: Option<String>,
    /// Input tokens the generation used.
    pub input_tokens: u64,
    /// Output tokens the generation used.
    pub output_tokens: u64,
    /// How long the generation took, in milliseconds.
    pub duration_ms: u64,
    /// How many files the version has.
    pub file_count: u32,
    /// The uploads (reference images) the generation attached, by id, in the request's
    /// order; empty for a version made without images or by a restore. Kept with the
    /// version, so they outlive the job.
    #[serde(default)]
    pub attachments: Vec<Uuid>,
    /// Stored at.
    pub created_at: DateTime<Utc>,
}

/// A version with its full file set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Version {
    /// The version's details.
    #[serde(flatten)]
    pub info: VersionInfo,
    /// Every file of the app at this version.
    pub files: Vec<AppFile>,
}

/// An app at one of its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Saved {
    /// The app (after the call).
    pub app: App,
    /// The version.
    pub version: Version,
    /// `false` when the call found the version a job had already saved, and stored nothing.
    pub created: bool,
}

/// The public view of a published app: no owner, only the published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PublishedApp {
    /// The preview's slug.
    pub slug: String,
    /// The title.
    pub title: String,
    /// The description.
    pub description: String,
    /// The published version's number.
    pub version: u32,
    /// The published version's files.
    pub files: Vec<AppFile>,
    /// When that version was stored.
    pub created_at: DateTime<Utc>,
}
