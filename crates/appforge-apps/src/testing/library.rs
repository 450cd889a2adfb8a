//! A user's library: ownership, listing and search, details and their limits, paths.

use std::time::Duration;

use uuid::Uuid;

use super::{Backend, Fixture, create, f, files, replace};
use crate::{
    AppPatch, AppStore, Error, ListApps, MAX_DESCRIPTION_CHARS, MAX_METADATA_BYTES, NewApp,
    NewVersion, Owner,
};

/// Every call on another user's app answers not found and changes nothing.
pub async fn another_users_app_is_not_found<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let (owner, other) = (Owner::User(Uuid::new_v4()), Owner::User(Uuid::new_v4()));
    let app = fx.app(owner, "Mine").await;
    let s = &fx.store;
    let nf = |r: Result<(), Error>| assert!(matches!(r, Err(Error::AppNotFound(id)) if id == app));
    nf(s.get_app(other, app).await.map(drop));
    nf(s.get_version(other, app, Some(1)).await.map(drop));
    nf(s.list_versions(other, app).await.map(drop));
    nf(s.add_version(other, app, 1, create("x", "y"))
        .await
        .map(drop));
    nf(s.diff(other, app, 1, 1).await.map(drop));
    nf(s.restore_version(other, app, 1).await.map(drop));
    nf(
        s.update_app(other, app, AppPatch::default().title("Theirs"))
            .await
            .map(drop),
    );
    nf(s.publish(other, app, None).await.map(drop));
    nf(s.unpublish(other, app).await.map(drop));
    nf(s.export_zip(other, app, None).await.map(drop));
    nf(s.delete_app(other, app).await.map(drop));
    nf(s.undelete_app(other, app).await.map(drop));
    assert!(
        s.list_apps(other, &ListApps::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // The owner's app is untouched.
    let mine = s.get_app(owner, app).await.unwrap();
    assert_eq!((mine.title.as_str(), mine.current_version), ("Mine", 1));
    assert!(
        s.get_app(owner, Uuid::new_v4())
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// A user's library lists newest first, pages by cursor without gaps or repeats, and searches
/// titles without regard to case.
pub async fn the_library_is_newest_first_paged_and_searchable<S: AppStore + 'static>(
    backend: Backend<S>,
) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    let mut ids = Vec::new();
    for (i, title) in [
        "Habit tracker",
        "Recipe box",
        "Über Notes",
        "HABITS v2",
        "Budget",
    ]
    .into_iter()
    .enumerate()
    {
        // Two apps share a millisecond: the id breaks the tie.
        if i != 2 {
            fx.clock.advance(Duration::from_secs(1));
        }
        ids.push(fx.app(user, title).await);
    }
    fx.app(Owner::User(Uuid::new_v4()), "Habit of someone else")
        .await;

    let s = &fx.store;
    let mut seen = Vec::new();
    let mut request = ListApps::first(2);
    loop {
        let page = s.list_apps(user, &request).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|a| (a.created_at, a.id)));
        match page.next {
            Some(cursor) => {
                let parsed: crate::Cursor = cursor.to_string().parse().unwrap();
                request = ListApps::first(2).after(parsed);
            }
            None => break,
        }
    }
    let mut expected = seen.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, expected, "newest first, no gaps or repeats");
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].1, ids[4]);

    let titles =
        |page: crate::AppPage| -> Vec<String> { page.items.into_iter().map(|a| a.title).collect() };
    assert_eq!(
        titles(
            s.list_apps(user, &ListApps::first(10).search("habit"))
                .await
                .unwrap()
        ),
        ["HABITS v2", "Habit tracker"]
    );
    assert_eq!(
        titles(
            s.list_apps(user, &ListApps::first(10).search("üBER"))
                .await
                .unwrap()
        ),
        ["Über Notes"]
    );
    assert!(
        s.list_apps(user, &ListApps::first(10).search("%"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        s.list_apps(user, &ListApps::first(0)).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!("nonsense".parse::<crate::Cursor>().is_err());
}

/// An app's title and details change, and a blank title is refused.
pub async fn rename_and_edit_details<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    let app = fx.app(user, "Habits").await;
    fx.clock.advance(Duration::from_secs(5));
    let patch = AppPatch::default()
        .title("Streak keeper")
        .description("Keeps streaks")
        .is_public(true);
    let renamed = fx.store.update_app(user, app, patch).await.unwrap();
    assert_eq!(renamed.title, "Streak keeper");
    assert_eq!(renamed.updated_at, fx.clock_now());
    assert_eq!(fx.store.get_app(user, app).await.unwrap(), renamed);
    let found = fx
        .store
        .list_apps(user, &ListApps::first(5).search("streak"))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert!(matches!(
        fx.store
            .update_app(user, app, AppPatch::default().title("   "))
            .await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        fx.store.get_app(user, app).await.unwrap().title,
        "Streak keeper"
    );
}

/// Descriptions and metadata have size limits, on creation and on update.
pub async fn descriptions_and_metadata_have_size_limits<S: AppStore + 'static>(
    backend: Backend<S>,
) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    // A new app's description (a generation writes it) is cut at the limit, on a character.
    let long = "\u{e9}".repeat(MAX_DESCRIPTION_CHARS + 10);
    let new = NewApp::new("Long", NewVersion::files(files())).description(long.clone());
    let saved = fx.store.create_app(user, new).await.unwrap();
    assert_eq!(saved.app.description.chars().count(), MAX_DESCRIPTION_CHARS);
    let app = saved.app.id;
    // A user's description past the limit is refused; at the limit it is kept.
    let too_long = "d".repeat(MAX_DESCRIPTION_CHARS + 1);
    assert!(matches!(
        fx.store
            .update_app(user, app, AppPatch::default().description(too_long))
            .await,
        Err(Error::InvalidArgument(_))
    ));
    let at_limit = "d".repeat(MAX_DESCRIPTION_CHARS);
    let patched = fx
        .store
        .update_app(user, app, AppPatch::default().description(at_limit.clone()))
        .await
        .unwrap();
    assert_eq!(patched.description, at_limit);
    // Metadata past the limit is refused on both paths, and nothing changes.
    let huge = serde_json::json!({ "blob": "m".repeat(MAX_METADATA_BYTES) });
    assert!(matches!(
        fx.store
            .update_app(user, app, AppPatch::default().metadata(huge.clone()))
            .await,
        Err(Error::InvalidArgument(_))
    ));
    let new = NewApp::new("Huge", NewVersion::files(files())).metadata(huge);
    assert!(matches!(
        fx.store.create_app(user, new).await,
        Err(Error::InvalidArgument(_))
    ));
    let small = serde_json::json!({ "appType": "web", "tags": ["a", "b"] });
    let patched = fx
        .store
        .update_app(user, app, AppPatch::default().metadata(small.clone()))
        .await
        .unwrap();
    assert_eq!(patched.metadata, small);
    assert_eq!(fx.store.get_app(user, app).await.unwrap().metadata, small);
}

/// A hostile path is refused before anything is stored; an untidy harmless one is stored
/// normalised.
pub async fn hostile_paths_cannot_be_stored<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    for path in [
        "../../etc/passwd",
        "/etc/passwd",
        "C:\\x",
        "a\0b",
        ".git/hooks/x",
        ".GIT/config",
        "nul.txt",
        "src./x.ts",
        "a\u{202e}b.ts",
    ] {
        let new = NewApp::new("Evil", NewVersion::files(vec![f(path, "x")]));
        assert!(
            matches!(
                fx.store.create_app(user, new).await,
                Err(Error::InvalidPath(_))
            ),
            "{path:?}"
        );
    }
    assert!(
        fx.store
            .list_apps(user, &ListApps::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let app = fx.app(user, "Habits").await;
    for path in ["../outside.ts", "/abs.ts"] {
        assert!(matches!(
            fx.store.add_version(user, app, 1, create(path, "x")).await,
            Err(Error::InvalidPath(_))
        ));
        assert!(matches!(
            fx.store
                .add_version(user, app, 1, replace(path, "a", "b"))
                .await,
            Err(Error::InvalidPath(_))
        ));
    }
    assert_eq!(fx.store.list_versions(user, app).await.unwrap().len(), 1);
    // A harmless but untidy path is stored normalised.
    let saved = fx
        .store
        .add_version(user, app, 1, create("./src//util.ts", "x"))
        .await
        .unwrap();
    assert_eq!(saved.version.files[2].path, "src/util.ts");
}
