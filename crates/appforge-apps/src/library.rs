//! The service type: one way to wire a store, as `JobQueue<S = AnyJobStore>` does.

use std::sync::Arc;

use appforge_core::Owner;
use uuid::Uuid;

use crate::app::{App, PublishedApp, Saved, Version, VersionInfo};
use crate::diff::VersionDiff;
use crate::request::{AppPage, AppPatch, ListApps, NewApp, NewVersion};
use crate::{AnyAppStore, AppStore, Result};

/// A library of apps over a store: the built-in backends through [`AnyAppStore`] by
/// default, or any [`AppStore`] (a host's own backend included). Cheap to clone: clones
/// share the store.
///
/// Every call is scoped to an [`Owner`], as on [`AppStore`]; a bare user id (`Uuid`) means
/// that user's personal space, and [`Owner::Org`] an org's.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_apps::Result<()> {
/// use appforge_apps::{AppLibrary, NewApp, NewVersion, Owner};
/// use appforge_files::AppFile;
///
/// let library = AppLibrary::connect("memory:").await?; // AppLibrary<AnyAppStore>
/// let user = uuid::Uuid::new_v4();
/// let files = vec![AppFile::new("src/App.tsx", "<main />\n")];
/// let saved = library.create_app(user, NewApp::new("Habits", NewVersion::files(files))).await?;
/// assert_eq!(library.get_app(user, saved.app.id).await?.current_version, 1);
///
/// // An org's app, created by the user, is the org's and not the user's.
/// let org = Owner::Org(uuid::Uuid::new_v4());
/// let files = vec![AppFile::new("src/App.tsx", "<main />\n")];
/// let new = NewApp::new("Team board", NewVersion::files(files)).created_by(user);
/// let team = library.create_app(org, new).await?.app;
/// assert_eq!(library.get_app(org, team.id).await?.user_id, user);
/// assert!(library.get_app(user, team.id).await.unwrap_err().is_not_found());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AppLibrary<S = AnyAppStore> {
    store: Arc<S>,
}

impl<S> Clone for AppLibrary<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
        }
    }
}

impl AppLibrary<AnyAppStore> {
    /// Opens the store a URL names (`memory:`, `sqlite://...`, `postgres://...`) and applies
    /// its migrations.
    ///
    /// # Errors
    ///
    /// As [`AnyAppStore::connect`] and [`AnyAppStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self> {
        let store = AnyAppStore::connect(url).await?;
        store.migrate().await?;
        Ok(Self::new(store))
    }
}

impl<S: AppStore> AppLibrary<S> {
    /// A library over `store` (migrated, for the SQL stores).
    pub fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// See [`AppStore::create_app`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::create_app`].
    pub async fn create_app(&self, owner: impl Into<Owner>, app: NewApp) -> Result<Saved> {
        self.store.create_app(owner.into(), app).await
    }

    /// See [`AppStore::add_version`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::add_version`].
    pub async fn add_version(
        &self,
        owner: impl Into<Owner>,
        app: Uuid,
        base_version: u32,
        version: NewVersion,
    ) -> Result<Saved> {
        self.store
            .add_version(owner.into(), app, base_version, version)
            .await
    }

    /// See [`AppStore::get_app`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::get_app`].
    pub async fn get_app(&self, owner: impl Into<Owner>, app: Uuid) -> Result<App> {
        self.store.get_app(owner.into(), app).await
    }

    /// See [`AppStore::get_version`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::get_version`].
    pub async fn get_version(
        &self,
        owner: impl Into<Owner>,
        app: Uuid,
        number: Option<u32>,
    ) -> Result<Version> {
        self.store.get_version(owner.into(), app, number).await
    }

    /// See [`AppStore::list_apps`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::list_apps`].
    pub async fn list_apps(&self, owner: impl Into<Owner>, request: &ListApps) -> Result<AppPage> {
        self.store.list_apps(owner.into(), request).await
    }

    /// See [`AppStore::list_versions`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::list_versions`].
    pub async fn list_versions(
        &self,
        owner: impl Into<Owner>,
        app: Uuid,
    ) -> Result<Vec<VersionInfo>> {
        self.store.list_versions(owner.into(), app).await
    }

    /// See [`AppStore::update_app`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::update_app`].
    pub async fn update_app(
        &self,
        owner: impl Into<Owner>,
        app: Uuid,
        patch: AppPatch,
    ) -> Result<App> {
        self.store.update_app(owner.into(), app, patch).await
    }

    /// See [`AppStore::delete_app`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::delete_app`].
    pub async fn delete_app(&self, owner: impl Into<Owner>, app: Uuid) -> Result<App> {
        self.store.delete_app(owner.into(), app).await
    }

    /// See [`AppStore::undelete_app`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::undelete_app`].
    pub async fn undelete_app(&self, owner: impl Into<Owner>, app: Uuid) -> Result<App> {
        self.store.undelete_app(owner.into(), app).await
    }

    /// See [`AppStore::purge_deleted`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::purge_deleted`].
    pub async fn purge_deleted(&self) -> Result<u64> {
        self.store.purge_deleted().await
    }

    /// See [`AppStore::publish`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::publish`].
    pub async fn publish(
        &self,
        owner: impl Into<Owner>,
        app: Uuid,
        number: Option<u32>,
    ) -> Result<App> {
        self.store.publish(owner.into(), app, number).await
    }

    /// See [`AppStore::unpublish`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::unpublish`].
    pub async fn unpublish(&self, owner: impl Into<Owner>, app: Uuid) -> Result<App> {
        self.store.unpublish(owner.into(), app).await
    }

    /// See [`AppStore::published`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::published`].
    pub async fn published(&self, slug: &str) -> Result<PublishedApp> {
        self.store.published(slug).await
    }

    /// See [`AppStore::restore_version`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::restore_version`].
    pub async fn restore_version(
        &self,
        owner: impl Into<Owner>,
        app: Uuid,
        number: u32,
    ) -> Result<Saved> {
        self.store.restore_version(owner.into(), app, number).await
    }

    /// See [`AppStore::diff`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::diff`].
    pub async fn diff(
        &self,
        owner: impl Into<Owner>,
        app: Uuid,
        from: u32,
        to: u32,
    ) -> Result<VersionDiff> {
        self.store.diff(owner.into(), app, from, to).await
    }

    /// See [`AppStore::export_zip`].
    ///
    /// # Errors
    ///
    /// As [`AppStore::export_zip`].
    pub async fn export_zip(
        &self,
        owner: impl Into<Owner>,
        app: Uuid,
        number: Option<u32>,
    ) -> Result<Vec<u8>> {
        self.store.export_zip(owner.into(), app, number).await
    }
}
