//! Deletion and retention, the preview, the zip export.

use std::io::Read;

use appforge_files::AppFile;
use uuid::Uuid;

use super::{Backend, DAY, Fixture, create, files, replace};
use crate::{AppStore, Error, ListApps, Owner};

/// A deleted app can be restored until its retention period ([`RETENTION`](super::RETENTION))
/// ends, then it is purged.
pub async fn delete_is_soft_until_the_retention_ends<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    let app = fx.app(user, "Habits").await;
    let kept = fx.app(user, "Kept").await;
    let deleted = fx.store.delete_app(user, app).await.unwrap();
    assert_eq!(deleted.deleted_at, Some(fx.clock_now()));
    assert!(
        fx.store
            .get_app(user, app)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        fx.store
            .delete_app(user, app)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let live = fx
        .store
        .list_apps(user, &ListApps::default())
        .await
        .unwrap();
    assert_eq!(live.items.iter().map(|a| a.id).collect::<Vec<_>>(), [kept]);
    let trash = fx
        .store
        .list_apps(user, &ListApps::default().deleted())
        .await
        .unwrap();
    assert_eq!(trash.items.iter().map(|a| a.id).collect::<Vec<_>>(), [app]);

    fx.clock.advance(6 * DAY);
    assert_eq!(fx.store.purge_deleted().await.unwrap(), 0);
    let back = fx.store.undelete_app(user, app).await.unwrap();
    assert_eq!(back.deleted_at, None);
    assert_eq!(
        fx.store.get_version(user, app, None).await.unwrap().files,
        files()
    );

    fx.store.delete_app(user, app).await.unwrap();
    fx.clock.advance(7 * DAY);
    assert!(
        fx.store
            .undelete_app(user, app)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        fx.store
            .list_apps(user, &ListApps::default().deleted())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(fx.store.purge_deleted().await.unwrap(), 1);
    assert_eq!(fx.store.purge_deleted().await.unwrap(), 0);
    assert!(fx.store.get_app(user, kept).await.is_ok());
}

/// Apps past their retention period are listed longest deleted first and purged by id, and only
/// those.
pub async fn expired_apps_are_listed_then_purged_by_id<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let (alice, bob) = (Owner::User(Uuid::new_v4()), Owner::User(Uuid::new_v4()));
    let first = fx.app(alice, "First").await;
    let second = fx.app(bob, "Second").await;
    let live = fx.app(alice, "Live").await;
    let recent = fx.app(alice, "Recent").await;
    fx.store.delete_app(alice, first).await.unwrap();
    fx.clock.advance(DAY);
    fx.store.delete_app(bob, second).await.unwrap();
    fx.clock.advance(5 * DAY);
    fx.store.delete_app(alice, recent).await.unwrap();
    assert!(fx.store.expired_apps(10).await.unwrap().is_empty());

    fx.clock.advance(2 * DAY);
    // Longest deleted first, with their owners; the live and the recently deleted app are not.
    let expired = fx.store.expired_apps(10).await.unwrap();
    let listed: Vec<(Uuid, Owner)> = expired.iter().map(|a| (a.id, a.owner())).collect();
    assert_eq!(listed, [(first, alice), (second, bob)]);
    assert_eq!(fx.store.expired_apps(1).await.unwrap()[0].id, first);

    // Only apps still deleted and past their retention are purged.
    assert_eq!(
        fx.store
            .purge_apps(&[first, live, recent, Uuid::new_v4()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        fx.store
            .expired_apps(10)
            .await
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        [second]
    );
    assert!(fx.store.get_app(alice, live).await.is_ok());
    assert!(fx.store.undelete_app(alice, recent).await.is_ok());
    assert_eq!(fx.store.purge_apps(&[second]).await.unwrap(), 1);
    assert!(
        fx.store
            .undelete_app(bob, second)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(fx.store.purge_deleted().await.unwrap(), 0);
}

/// The preview slug serves the published version only, keeps its address across unpublish and
/// publish, and stops with the app.
pub async fn the_preview_serves_the_published_version_only<S: AppStore + 'static>(
    backend: Backend<S>,
) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    let app = fx.app(user, "Habits").await;
    let published = fx.store.publish(user, app, None).await.unwrap();
    assert!(published.preview_enabled);
    assert_eq!(published.published_version, Some(1));
    let slug = published.preview_slug.clone().unwrap();
    assert_eq!(slug.len(), 32);
    assert!(slug.bytes().all(|b| b.is_ascii_alphanumeric()));

    // A later version is not public until published.
    fx.store
        .add_version(user, app, 1, replace("src/theme.ts", "false", "true"))
        .await
        .unwrap();
    let public = fx.store.published(&slug).await.unwrap();
    assert_eq!((public.version, public.title.as_str()), (1, "Habits"));
    assert_eq!(public.files, files());
    let stored = fx.store.get_app(user, app).await.unwrap();
    assert_eq!(
        public.metadata, stored.metadata,
        "the app's metadata, for its preview"
    );

    fx.store.publish(user, app, Some(2)).await.unwrap();
    assert_eq!(fx.store.published(&slug).await.unwrap().version, 2);
    assert!(matches!(
        fx.store.publish(user, app, Some(3)).await,
        Err(Error::VersionNotFound { version: 3, .. })
    ));

    let off = fx.store.unpublish(user, app).await.unwrap();
    assert!(!off.preview_enabled);
    assert!(matches!(
        fx.store.published(&slug).await,
        Err(Error::PreviewNotFound)
    ));
    // Publishing again keeps the address.
    let again = fx.store.publish(user, app, None).await.unwrap();
    assert_eq!(again.preview_slug.as_deref(), Some(slug.as_str()));
    assert!(fx.store.published(&slug).await.is_ok());
    // A deleted app's preview is gone; so is any other slug.
    fx.store.delete_app(user, app).await.unwrap();
    assert!(matches!(
        fx.store.published(&slug).await,
        Err(Error::PreviewNotFound)
    ));
    let other = fx.app(user, "Other").await;
    let other_slug = fx
        .store
        .publish(user, other, None)
        .await
        .unwrap()
        .preview_slug;
    assert_ne!(other_slug.as_deref(), Some(slug.as_str()));
    for wrong in ["", "x", &"0".repeat(32), "../../etc/passwd"] {
        assert!(matches!(
            fx.store.published(wrong).await,
            Err(Error::PreviewNotFound)
        ));
    }
}

/// The zip export of a version holds its files, deflated.
pub async fn the_zip_holds_the_version_files<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    let app = fx.app(user, "Habits").await;
    fx.store
        .add_version(
            user,
            app,
            1,
            create("src/components/List.tsx", "export {};\n"),
        )
        .await
        .unwrap();
    for number in [Some(1), None] {
        let bytes = fx.store.export_zip(user, app, number).await.unwrap();
        let version = fx.store.get_version(user, app, number).await.unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut unzipped = Vec::new();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).unwrap();
            assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            unzipped.push(AppFile::new(entry.name().unwrap().into_owned(), content));
        }
        assert_eq!(unzipped, version.files);
    }
}
