//! The service over a store implemented outside the crate: `AppStore` is public and
//! implementable, and `AppLibrary` takes any implementation as it takes the built-in ones.

use std::sync::atomic::{AtomicU64, Ordering};

use appforge_apps::{
    AnyAppStore, App, AppLibrary, AppPage, AppPatch, AppStore, ListApps, MemoryAppStore, NewApp,
    NewVersion, Owner, PublishedApp, Result, Saved, Version, VersionInfo,
};
use appforge_files::AppFile;
use uuid::Uuid;

/// A host's own backend: counts the writes, delegates the storage.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryAppStore,
    writes: AtomicU64,
}

impl Counting {
    fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
}

impl AppStore for Counting {
    async fn create_app(&self, owner: Owner, app: NewApp) -> Result<Saved> {
        self.write();
        self.inner.create_app(owner, app).await
    }
    async fn add_version(
        &self,
        owner: Owner,
        app: Uuid,
        base_version: u32,
        version: NewVersion,
    ) -> Result<Saved> {
        self.write();
        self.inner
            .add_version(owner, app, base_version, version)
            .await
    }
    async fn get_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        self.inner.get_app(owner, app).await
    }
    async fn get_version(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<Version> {
        self.inner.get_version(owner, app, number).await
    }
    async fn list_apps(&self, owner: Owner, request: &ListApps) -> Result<AppPage> {
        self.inner.list_apps(owner, request).await
    }
    async fn list_versions(&self, owner: Owner, app: Uuid) -> Result<Vec<VersionInfo>> {
        self.inner.list_versions(owner, app).await
    }
    async fn update_app(&self, owner: Owner, app: Uuid, patch: AppPatch) -> Result<App> {
        self.write();
        self.inner.update_app(owner, app, patch).await
    }
    async fn delete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        self.write();
        self.inner.delete_app(owner, app).await
    }
    async fn undelete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        self.write();
        self.inner.undelete_app(owner, app).await
    }
    async fn purge_deleted(&self) -> Result<u64> {
        self.inner.purge_deleted().await
    }
    async fn expired_apps(&self, limit: u32) -> Result<Vec<App>> {
        self.inner.expired_apps(limit).await
    }
    async fn purge_apps(&self, apps: &[Uuid]) -> Result<u64> {
        self.inner.purge_apps(apps).await
    }
    async fn publish(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<App> {
        self.write();
        self.inner.publish(owner, app, number).await
    }
    async fn unpublish(&self, owner: Owner, app: Uuid) -> Result<App> {
        self.write();
        self.inner.unpublish(owner, app).await
    }
    async fn published(&self, slug: &str) -> Result<PublishedApp> {
        self.inner.published(slug).await
    }
}

fn files(content: &str) -> Vec<AppFile> {
    vec![AppFile::new("src/App.tsx", content)]
}

#[tokio::test]
async fn a_store_from_outside_the_crate_serves_a_library() {
    let library = AppLibrary::new(Counting::default());
    let user = Uuid::new_v4();
    let saved = library
        .create_app(
            user,
            NewApp::new("Habits", NewVersion::files(files("<main />\n"))),
        )
        .await
        .unwrap();
    let app = saved.app.id;
    library
        .add_version(user, app, 1, NewVersion::files(files("<main>2</main>\n")))
        .await
        .unwrap();
    // The trait's provided methods run over the outside store too.
    let restored = library.restore_version(user, app, 1).await.unwrap();
    assert_eq!(restored.version.info.number, 3);
    let diff = library.diff(user, app, 1, 2).await.unwrap();
    assert!(diff.files[0].diff.contains("+<main>2</main>"), "{diff:?}");
    let published = library.publish(user, app, Some(2)).await.unwrap();
    let slug = published
        .preview_slug
        .clone()
        .expect("a published app has a slug");
    assert_eq!(library.published(&slug).await.unwrap().version, 2);
    // A clone shares the store.
    let clone = library.clone();
    assert_eq!(clone.list_versions(user, app).await.unwrap().len(), 3);
    assert_eq!(library.store().writes.load(Ordering::Relaxed), 4);
    assert!(
        library
            .get_app(Uuid::new_v4(), app)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn the_default_library_is_over_the_built_in_backends() {
    let library: AppLibrary = AppLibrary::connect("memory:").await.unwrap();
    assert!(matches!(library.store(), AnyAppStore::Memory(_)));
    let user = Uuid::new_v4();
    library
        .create_app(user, NewApp::new("Notes", NewVersion::files(files("x"))))
        .await
        .unwrap();
    assert_eq!(
        library
            .list_apps(user, &ListApps::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// The exported suite over the outside store: it behaves as the built-in ones do.
mod outside_suite {
    use std::sync::atomic::AtomicU64;

    use appforge_apps::MemoryAppStore;
    use appforge_apps::testing::{Backend, RETENTION, clock};

    use super::Counting;

    async fn backend() -> Option<Backend<Counting>> {
        let clock = clock();
        let store = Counting {
            inner: MemoryAppStore::new()
                .with_clock(clock.shared())
                .with_retention(RETENTION),
            writes: AtomicU64::new(0),
        };
        Some(Backend::new(store, clock))
    }

    appforge_apps::app_store_suite!(backend);
}
