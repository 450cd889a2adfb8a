//! The app store trait and its backends.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use appforge_core::{Owner, SharedClock, SystemClock};
use appforge_files::AppFile;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::app::{App, PublishedApp, Saved, Version, VersionInfo};
use crate::diff::VersionDiff;
use crate::request::{AppPage, AppPatch, ListApps, NewApp, NewVersion};
use crate::{Error, Result};

pub(crate) mod any;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// How long a deleted app can be restored before [`AppStore::purge_deleted`] removes it, by
/// default: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Where apps and their versions live, each in a user's personal space or an org's.
///
/// Every call takes the [`Owner`] whose space it acts in, and the store checks it in the
/// query: [`Owner::User`] reaches that user's personal apps only (not the apps they created
/// in an org), [`Owner::Org`] reaches the org's apps whoever created them. An app outside
/// the space is [`Error::AppNotFound`], as is a deleted one (except for
/// [`undelete_app`](Self::undelete_app)). Who may act for an org is the host's decision,
/// made before the call. Only [`published`](Self::published) reads without an owner, and
/// only the published version of an app whose preview is enabled; the maintenance calls
/// ([`purge_deleted`](Self::purge_deleted), [`expired_apps`](Self::expired_apps),
/// [`purge_apps`](Self::purge_apps)) cover every space.
///
/// Each write is atomic: a lock in memory, one `BEGIN IMMEDIATE` transaction on SQLite, one
/// transaction holding the app's row lock on PostgreSQL.
///
/// Implemented by [`MemoryAppStore`](crate::MemoryAppStore), `SqliteAppStore`, `PgAppStore`
/// and [`AnyAppStore`](crate::AnyAppStore); a host's own backend implements it and is used
/// through [`AppLibrary`](crate::AppLibrary) like the built-in ones.
pub trait AppStore: Send + Sync + fmt::Debug {
    /// Creates an app with its version 1 in `owner`'s space. In a user's space the user is its
    /// creator ([`App::user_id`]); in an org's space the creator is
    /// [`NewApp::created_by`](crate::NewApp::created_by), or the nil id without one. When
    /// `app.version.job_id` already created an app in this space, that app is returned (with
    /// `created: false`) and nothing is stored: a worker may retry.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a hostile path, [`Error::InvalidArgument`] for a blank
    /// title, a path given twice or metadata larger than
    /// [`MAX_METADATA_BYTES`](crate::MAX_METADATA_BYTES); storage errors. A description
    /// longer than [`MAX_DESCRIPTION_CHARS`](crate::MAX_DESCRIPTION_CHARS) is cut to it.
    fn create_app(&self, owner: Owner, app: NewApp) -> impl Future<Output = Result<Saved>> + Send;

    /// Stores the next version of `app`, made from version `base_version`.
    ///
    /// When the base is the current version the change is stored as it is. When the app
    /// moved on since, the change is re-applied on top of the current version if every file
    /// it touches is unchanged since the base, or its edits still fit (each anchor found
    /// once); otherwise nothing is stored and the answer is [`Error::Conflict`] naming the
    /// file. A job's version is stored once: the same `job_id` again returns it with
    /// `created: false`.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`], [`Error::VersionNotFound`] for a base that does not exist,
    /// [`Error::Conflict`], [`Error::ChangeDoesNotApply`], [`Error::InvalidPath`]; storage
    /// errors.
    fn add_version(
        &self,
        owner: Owner,
        app: Uuid,
        base_version: u32,
        version: NewVersion,
    ) -> impl Future<Output = Result<Saved>> + Send;

    /// The app.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`]; storage errors.
    fn get_app(&self, owner: Owner, app: Uuid) -> impl Future<Output = Result<App>> + Send;

    /// Version `number` of the app with its files, or the current one for `None`.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`], [`Error::VersionNotFound`]; storage errors.
    fn get_version(
        &self,
        owner: Owner,
        app: Uuid,
        number: Option<u32>,
    ) -> impl Future<Output = Result<Version>> + Send;

    /// The apps in `owner`'s space, newest first: a user's personal apps, or every app of an
    /// org.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a page size outside 1 to 100; storage errors.
    fn list_apps(
        &self,
        owner: Owner,
        request: &ListApps,
    ) -> impl Future<Output = Result<AppPage>> + Send;

    /// The app's versions, newest first, without their files.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`]; storage errors.
    fn list_versions(
        &self,
        owner: Owner,
        app: Uuid,
    ) -> impl Future<Output = Result<Vec<VersionInfo>>> + Send;

    /// Renames the app or changes its other details.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`], [`Error::InvalidArgument`] for a blank or too long title, a
    /// description longer than [`MAX_DESCRIPTION_CHARS`](crate::MAX_DESCRIPTION_CHARS) or
    /// metadata larger than [`MAX_METADATA_BYTES`](crate::MAX_METADATA_BYTES); storage errors.
    fn update_app(
        &self,
        owner: Owner,
        app: Uuid,
        patch: AppPatch,
    ) -> impl Future<Output = Result<App>> + Send;

    /// Deletes the app softly: it disappears from every read, its preview stops, and
    /// [`undelete_app`](Self::undelete_app) brings it back within the retention period.
    /// Deleting a deleted app is [`Error::AppNotFound`].
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`]; storage errors.
    fn delete_app(&self, owner: Owner, app: Uuid) -> impl Future<Output = Result<App>> + Send;

    /// Restores a deleted app within the retention period; restoring a live app returns it
    /// as it is.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`] when there is no such app or its retention period is over;
    /// storage errors.
    fn undelete_app(&self, owner: Owner, app: Uuid) -> impl Future<Output = Result<App>> + Send;

    /// Removes for good the apps deleted longer than the retention period ago, with their
    /// versions; returns how many.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn purge_deleted(&self) -> impl Future<Output = Result<u64>> + Send;

    /// Up to `limit` of the apps past their retention period (those
    /// [`purge_deleted`](Self::purge_deleted) would remove), longest deleted first: for a host
    /// that erases what else refers to them before [`purge_apps`](Self::purge_apps).
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn expired_apps(&self, limit: u32) -> impl Future<Output = Result<Vec<App>>> + Send;

    /// Removes for good those of `apps` that are still deleted and past their retention
    /// period, with their versions; returns how many.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn purge_apps(&self, apps: &[Uuid]) -> impl Future<Output = Result<u64>> + Send;

    /// Publishes version `number` (the current one for `None`) at the app's preview slug,
    /// made on the first publish and kept afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`], [`Error::VersionNotFound`]; storage errors.
    fn publish(
        &self,
        owner: Owner,
        app: Uuid,
        number: Option<u32>,
    ) -> impl Future<Output = Result<App>> + Send;

    /// Stops serving the preview (the slug is kept for a later publish).
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`]; storage errors.
    fn unpublish(&self, owner: Owner, app: Uuid) -> impl Future<Output = Result<App>> + Send;

    /// The published version of the app at `slug`, for anyone.
    ///
    /// # Errors
    ///
    /// [`Error::PreviewNotFound`] when no live app with an enabled preview has this slug;
    /// storage errors.
    fn published(&self, slug: &str) -> impl Future<Output = Result<PublishedApp>> + Send;

    /// Stores the files of version `number` as a new version on top of the current one.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`], [`Error::VersionNotFound`]; [`Error::Conflict`] when another
    /// version was stored meanwhile and touched the same files; storage errors.
    fn restore_version(
        &self,
        owner: Owner,
        app: Uuid,
        number: u32,
    ) -> impl Future<Output = Result<Saved>> + Send {
        async move {
            let current = self.get_app(owner, app).await?.current_version;
            let old = self.get_version(owner, app, Some(number)).await?;
            let version =
                NewVersion::files(old.files).summary(format!("Restored version {number}"));
            self.add_version(owner, app, current, version).await
        }
    }

    /// The per-file differences from version `from` to version `to`.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`], [`Error::VersionNotFound`]; storage errors.
    fn diff(
        &self,
        owner: Owner,
        app: Uuid,
        from: u32,
        to: u32,
    ) -> impl Future<Output = Result<VersionDiff>> + Send {
        async move {
            let old = self.get_version(owner, app, Some(from)).await?;
            let new = self.get_version(owner, app, Some(to)).await?;
            Ok(VersionDiff::between(&old, &new))
        }
    }

    /// Version `number` (the current one for `None`) as a zip archive of its files.
    ///
    /// # Errors
    ///
    /// [`Error::AppNotFound`], [`Error::VersionNotFound`], [`Error::Zip`]; storage errors.
    fn export_zip(
        &self,
        owner: Owner,
        app: Uuid,
        number: Option<u32>,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        async move {
            let version = self.get_version(owner, app, number).await?;
            crate::export::export_zip(&version)
        }
    }
}

/// What every backend is configured with: the clock and the retention period.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) clock: SharedClock,
    pub(crate) retention: Duration,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            clock: SystemClock::shared(),
            retention: DEFAULT_RETENTION,
        }
    }
}

impl Settings {
    /// The clock's time, to the millisecond (what every backend can store exactly).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }

    /// Apps deleted at or before this time are past their retention period.
    pub(crate) fn purge_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        chrono::Duration::from_std(self.retention)
            .ok()
            .and_then(|r| now.checked_sub_signed(r))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// The setters every store shares.
macro_rules! settings_setters {
    () => {
        /// Reads time from `clock` (the system clock by default).
        #[must_use]
        pub fn with_clock(mut self, clock: appforge_core::SharedClock) -> Self {
            self.settings.clock = clock;
            self
        }

        /// How long a deleted app can be restored (default
        /// [`DEFAULT_RETENTION`](crate::DEFAULT_RETENTION), 30 days).
        #[must_use]
        pub fn with_retention(mut self, retention: std::time::Duration) -> Self {
            self.settings.retention = retention;
            self
        }
    };
}
pub(crate) use settings_setters;

/// The next version's number.
pub(crate) fn next_number(app: Uuid, current: u32) -> Result<u32> {
    current
        .checked_add(1)
        .ok_or_else(|| Error::InvalidArgument(format!("app {app} has too many versions")))
}

/// The base version must exist: 1 up to the current one.
pub(crate) fn check_base(app: Uuid, base: u32, current: u32) -> Result<()> {
    if base == 0 || base > current {
        return Err(Error::VersionNotFound { app, version: base });
    }
    Ok(())
}

/// A new app's row, in `owner`'s space.
pub(crate) fn new_app(owner: Owner, new: &NewApp, now: DateTime<Utc>) -> App {
    let (user_id, org_id) = match owner {
        Owner::User(user) => (user, None),
        Owner::Org(org) => (new.created_by.unwrap_or(Uuid::nil()), Some(org)),
    };
    App {
        id: Uuid::now_v7(),
        user_id,
        org_id,
        title: new.title.clone(),
        description: new.description.clone(),
        metadata: new.metadata.clone(),
        is_public: false,
        preview_slug: None,
        preview_enabled: false,
        published_version: None,
        current_version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

/// A new version's record.
pub(crate) fn new_version(
    app: Uuid,
    number: u32,
    base_version: Option<u32>,
    new: &NewVersion,
    files: Vec<AppFile>,
    now: DateTime<Utc>,
) -> Version {
    Version {
        info: VersionInfo {
            app_id: app,
            number,
            base_version,
            job_id: new.job_id,
            prompt: new.prompt.clone(),
            change_summary: new.change_summary.clone(),
            input_tokens: new.input_tokens,
            output_tokens: new.output_tokens,
            duration_ms: u64::try_from(new.duration.as_millis()).unwrap_or(u64::MAX),
            file_count: u32::try_from(files.len()).unwrap_or(u32::MAX),
            attachments: unique(&new.attachments),
            created_at: now,
        },
        files,
    }
}

/// `ids` in their order, each once.
fn unique(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// Applies a patch to an app's details (the title, description and metadata checked).
pub(crate) fn patch_app(app: &mut App, patch: AppPatch, now: DateTime<Utc>) -> Result<()> {
    if let Some(title) = patch.title {
        app.title = crate::change::check_title(&title)?;
    }
    if let Some(description) = patch.description {
        crate::change::check_description(&description)?;
        app.description = description;
    }
    if let Some(metadata) = patch.metadata {
        crate::change::check_metadata(&metadata)?;
        app.metadata = metadata;
    }
    if let Some(is_public) = patch.is_public {
        app.is_public = is_public;
    }
    app.updated_at = now;
    Ok(())
}
