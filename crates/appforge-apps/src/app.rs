//! Apps and their versions as the store hands them out.

use appforge_core::Owner;
use appforge_files::AppFile;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A saved app: the seed's `generated_apps` row, with its files in [versions](Version).
///
/// An app is in its creator's personal space, or in an org's when [`org_id`](Self::org_id)
/// is set; [`owner`](Self::owner) says which, and the store's calls take that [`Owner`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct App {
    /// The app's id.
    pub id: Uuid,
    /// The user who created it. For a personal app (no [`org_id`](Self::org_id)) this user
    /// is also its owner, the only one who reads or changes it; for an org's app it names the
    /// member who created it ([`NewApp::created_by`](crate::NewApp::created_by), the nil id
    /// when none was given).
    pub user_id: Uuid,
    /// The org whose space it is in; `None` for its creator's personal space. Calls scoped to
    /// [`Owner::Org`] with this id read and change it, calls scoped to a user never do.
    #[serde(default)]
    pub org_id: Option<Uuid>,
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

impl App {
    /// Whose space the app is in: [`Owner::Org`] when it has an org, else [`Owner::User`] of
    /// its creator.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_apps::Result<()> {
    /// use appforge_apps::{AppStore, MemoryAppStore, NewApp, NewVersion, Owner};
    ///
    /// let store = MemoryAppStore::new();
    /// let (user, org) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    /// let files = vec![appforge_files::AppFile::new("src/App.tsx", "<main />\n")];
    /// let new = NewApp::new("Team board", NewVersion::files(files)).created_by(user);
    /// let app = store.create_app(Owner::Org(org), new).await?.app;
    /// assert_eq!(app.owner(), Owner::Org(org));
    /// assert_eq!(app.user_id, user, "the creator");
    /// assert!(store.get_app(user.into(), app.id).await.unwrap_err().is_not_found(), "not personal");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn owner(&self) -> Owner {
        Owner::of(self.user_id, self.org_id)
    }
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
    /// The app's [`App::metadata`] (the dependencies a preview needs, say): the host's to
    /// show or keep to itself.
    pub metadata: Value,
}
