//! The behavioural suite: every test body takes a fresh store, and `backend_suite!` turns
//! them into `#[tokio::test]`s for one backend.

use std::any::Any;
use std::io::Read;
use std::time::Duration;

use appforge_apps::{
    AnyAppStore, AppPatch, AppStore, Error, FileStatus, ListApps, NewApp, NewVersion,
};
use appforge_core::ManualClock;
use appforge_files::{AppFile, ChangeSet, Edit, FileChange};
use uuid::Uuid;

/// Keeps a backend's resources (a temporary file, a test database) alive.
pub(crate) type Guard = Box<dyn Any + Send + Sync>;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

pub(crate) struct Fixture {
    pub(crate) store: AnyAppStore,
    pub(crate) clock: ManualClock,
    _guard: Guard,
}

impl Fixture {
    pub(crate) fn new(store: (AnyAppStore, Guard)) -> Self {
        let clock = ManualClock::at(appforge_testing::fixed_now());
        Self {
            store: store.0.with_clock(clock.shared()).with_retention(7 * DAY),
            clock,
            _guard: store.1,
        }
    }

    /// An app of `user` titled `title` holding the demo files.
    pub(crate) async fn app(&self, user: Uuid, title: &str) -> Uuid {
        self.store
            .create_app(user, NewApp::new(title, NewVersion::files(files())))
            .await
            .unwrap()
            .app
            .id
    }
}

pub(crate) fn f(path: &str, content: &str) -> AppFile {
    AppFile::new(path, content)
}

pub(crate) fn files() -> Vec<AppFile> {
    vec![
        f("src/App.tsx", "<header>Habits</header>\n<main />\n"),
        f("src/theme.ts", "export const dark = false;\n"),
    ]
}

pub(crate) fn replace(path: &str, find: &str, with: &str) -> NewVersion {
    NewVersion::change_set(ChangeSet {
        summary: Some(format!("{find} -> {with}")),
        changes: vec![FileChange::Update {
            path: path.into(),
            edits: vec![Edit::Replace {
                find: find.into(),
                with: with.into(),
            }],
        }],
    })
}

pub(crate) fn create(path: &str, content: &str) -> NewVersion {
    NewVersion::change_set(ChangeSet {
        summary: None,
        changes: vec![FileChange::Create {
            path: path.into(),
            content: content.into(),
        }],
    })
}

pub(crate) async fn create_and_read_back(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
    let job = Uuid::new_v4();
    let new = NewApp::new(
        "  Habit tracker ",
        NewVersion::files(files())
            .job(job)
            .prompt("a habit tracker")
            .summary("first version")
            .tokens(120, 3_400)
            .duration(Duration::from_millis(2_500)),
    )
    .description("Streaks and dark mode")
    .metadata(serde_json::json!({ "appType": "react" }));
    let saved = fx.store.create_app(user, new).await.unwrap();
    assert!(saved.created);
    let app = fx.store.get_app(user, saved.app.id).await.unwrap();
    assert_eq!(app, saved.app);
    assert_eq!(app.title, "Habit tracker");
    assert_eq!(app.description, "Streaks and dark mode");
    assert_eq!(app.metadata["appType"], "react");
    assert_eq!(app.current_version, 1);
    assert_eq!(app.created_at, appforge_testing::fixed_now());
    assert!(!app.preview_enabled && app.preview_slug.is_none() && app.deleted_at.is_none());

    let version = fx.store.get_version(user, app.id, None).await.unwrap();
    assert_eq!(version, saved.version);
    assert_eq!(version.files, files());
    let info = &version.info;
    assert_eq!((info.number, info.base_version), (1, None));
    assert_eq!(info.job_id, Some(job));
    assert_eq!(info.prompt.as_deref(), Some("a habit tracker"));
    assert_eq!(info.change_summary.as_deref(), Some("first version"));
    assert_eq!((info.input_tokens, info.output_tokens), (120, 3_400));
    assert_eq!((info.duration_ms, info.file_count), (2_500, 2));
    assert!(matches!(
        fx.store.get_version(user, app.id, Some(2)).await,
        Err(Error::VersionNotFound { version: 2, .. })
    ));
}

pub(crate) async fn versions_accumulate_and_diff(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
    let app = fx.app(user, "Habits").await;
    fx.clock.advance(Duration::from_secs(60));
    let v2 = fx
        .store
        .add_version(
            user,
            app,
            1,
            replace("src/App.tsx", "<header>", "<header className=\"sticky\">"),
        )
        .await
        .unwrap();
    assert_eq!(
        (v2.version.info.number, v2.version.info.base_version),
        (2, Some(1))
    );
    assert_eq!(v2.app.current_version, 2);
    assert_eq!(
        v2.version.info.change_summary.as_deref(),
        Some("<header> -> <header className=\"sticky\">")
    );
    let v3 = NewVersion::files(vec![
        f(
            "src/App.tsx",
            "<header className=\"sticky\">Habits</header>\n<main />\n",
        ),
        f("README.md", "# Habits\n"),
    ]);
    fx.store.add_version(user, app, 2, v3).await.unwrap();

    let versions = fx.store.list_versions(user, app).await.unwrap();
    let numbers: Vec<u32> = versions.iter().map(|v| v.number).collect();
    assert_eq!(numbers, [3, 2, 1]);
    assert_eq!(versions[0].file_count, 2);
    assert_eq!(
        fx.store.get_app(user, app).await.unwrap().current_version,
        3
    );

    let diff = fx.store.diff(user, app, 1, 3).await.unwrap();
    assert_eq!((diff.from, diff.to), (1, 3));
    let summary: Vec<_> = diff
        .files
        .iter()
        .map(|d| (d.path.as_str(), d.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("README.md", FileStatus::Added),
            ("src/App.tsx", FileStatus::Changed),
            ("src/theme.ts", FileStatus::Removed),
        ]
    );
    assert_eq!(
        diff.files[1].diff,
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1,2 +1,2 @@\n\
         -<header>Habits</header>\n+<header className=\"sticky\">Habits</header>\n <main />\n"
    );
    assert!(matches!(
        fx.store.diff(user, app, 1, 9).await,
        Err(Error::VersionNotFound { version: 9, .. })
    ));
}

pub(crate) async fn a_racing_change_to_other_files_is_rebased(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
    let app = fx.app(user, "Habits").await;
    // Two modifications made from version 1: the first edits App.tsx, the second the theme.
    fx.store
        .add_version(
            user,
            app,
            1,
            replace("src/App.tsx", "<main />", "<main>list</main>"),
        )
        .await
        .unwrap();
    let second = fx
        .store
        .add_version(user, app, 1, replace("src/theme.ts", "false", "true"))
        .await
        .unwrap();
    assert_eq!(
        (second.version.info.number, second.version.info.base_version),
        (3, Some(1))
    );
    assert_eq!(
        second.version.files,
        [
            f(
                "src/App.tsx",
                "<header>Habits</header>\n<main>list</main>\n"
            ),
            f("src/theme.ts", "export const dark = true;\n"),
        ]
    );
    // An edit to the same file whose anchor is still there fits too.
    let third = fx
        .store
        .add_version(user, app, 1, replace("src/App.tsx", "Habits", "Streaks"))
        .await
        .unwrap();
    assert_eq!(
        third.version.files[0].content,
        "<header>Streaks</header>\n<main>list</main>\n"
    );
}

pub(crate) async fn a_racing_change_to_the_same_text_conflicts(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
    let app = fx.app(user, "Habits").await;
    fx.store
        .add_version(
            user,
            app,
            1,
            replace("src/App.tsx", "<main />", "<main>a</main>"),
        )
        .await
        .unwrap();
    let err = fx
        .store
        .add_version(
            user,
            app,
            1,
            replace("src/App.tsx", "<main />", "<main>b</main>"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.conflict_path(), Some("src/App.tsx"), "{err}");
    assert!(matches!(
        err,
        Error::Conflict {
            base: 1,
            current: 2,
            ..
        }
    ));
    // Writing a whole file that changed meanwhile conflicts as well.
    let mut whole = files();
    whole[0].content = "<header>Mine</header>\n".into();
    let err = fx
        .store
        .add_version(user, app, 1, NewVersion::files(whole))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_path(), Some("src/App.tsx"), "{err}");
    // Nothing was stored.
    assert_eq!(fx.store.list_versions(user, app).await.unwrap().len(), 2);
    let current = fx.store.get_version(user, app, None).await.unwrap();
    assert_eq!(
        current.files[0].content,
        "<header>Habits</header>\n<main>a</main>\n"
    );
    // A change that does not fit even its base is not a conflict, and a base that does not
    // exist is not found.
    let err = fx
        .store
        .add_version(user, app, 2, replace("src/App.tsx", "missing", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChangeDoesNotApply(_)), "{err}");
    assert!(matches!(
        fx.store
            .add_version(user, app, 3, create("a.txt", "x"))
            .await,
        Err(Error::VersionNotFound { version: 3, .. })
    ));
}

pub(crate) async fn a_job_saves_once(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
    let job = Uuid::new_v4();
    let new = || NewApp::new("Habits", NewVersion::files(files()).job(job));
    let first = fx.store.create_app(user, new()).await.unwrap();
    let again = fx.store.create_app(user, new()).await.unwrap();
    assert!(first.created && !again.created);
    assert_eq!(again.app.id, first.app.id);
    assert_eq!(again.version, first.version);
    let page = fx
        .store
        .list_apps(user, &ListApps::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);

    let app = first.app.id;
    let modify = Uuid::new_v4();
    let v2 = fx
        .store
        .add_version(user, app, 1, create("b.txt", "one").job(modify))
        .await
        .unwrap();
    // A retry (even with another result, even from another base) returns the stored one.
    let retry = fx
        .store
        .add_version(user, app, 2, create("b.txt", "two").job(modify))
        .await
        .unwrap();
    assert!(v2.created && !retry.created);
    assert_eq!(retry.version, v2.version);
    assert_eq!(fx.store.list_versions(user, app).await.unwrap().len(), 2);
}

pub(crate) async fn another_users_app_is_not_found(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
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

pub(crate) async fn the_library_is_newest_first_paged_and_searchable(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
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
    fx.app(Uuid::new_v4(), "Habit of someone else").await;

    let s = &fx.store;
    let mut seen = Vec::new();
    let mut request = ListApps::first(2);
    loop {
        let page = s.list_apps(user, &request).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|a| (a.created_at, a.id)));
        match page.next {
            Some(cursor) => {
                let parsed: appforge_apps::Cursor = cursor.to_string().parse().unwrap();
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

    let titles = |page: appforge_apps::AppPage| -> Vec<String> {
        page.items.into_iter().map(|a| a.title).collect()
    };
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
    assert!("nonsense".parse::<appforge_apps::Cursor>().is_err());
}

pub(crate) async fn restore_adds_a_version(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
    let app = fx.app(user, "Habits").await;
    fx.store
        .add_version(user, app, 1, replace("src/theme.ts", "false", "true"))
        .await
        .unwrap();
    let restored = fx.store.restore_version(user, app, 1).await.unwrap();
    assert_eq!(restored.version.info.number, 3);
    assert_eq!(restored.version.files, files());
    assert_eq!(
        restored.version.info.change_summary.as_deref(),
        Some("Restored version 1")
    );
    assert_eq!(fx.store.list_versions(user, app).await.unwrap().len(), 3);
    assert!(matches!(
        fx.store.restore_version(user, app, 7).await,
        Err(Error::VersionNotFound { version: 7, .. })
    ));
}

pub(crate) async fn rename_and_edit_details(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
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

impl Fixture {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use appforge_core::Clock;
        self.clock.now()
    }
}

pub(crate) async fn delete_is_soft_until_the_retention_ends(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
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

pub(crate) async fn expired_apps_are_listed_then_purged_by_id(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
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
    let listed: Vec<(Uuid, Uuid)> = expired.iter().map(|a| (a.id, a.user_id)).collect();
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

pub(crate) async fn the_preview_serves_the_published_version_only(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
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

pub(crate) async fn the_zip_holds_the_version_files(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
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

pub(crate) async fn hostile_paths_cannot_be_stored(store: (AnyAppStore, Guard)) {
    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
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

pub(crate) async fn descriptions_and_metadata_have_size_limits(store: (AnyAppStore, Guard)) {
    use appforge_apps::{MAX_DESCRIPTION_CHARS, MAX_METADATA_BYTES};

    let fx = Fixture::new(store);
    let user = Uuid::new_v4();
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

/// Instantiates every scenario of the suite as a test on one backend.
#[macro_export]
macro_rules! backend_suite {
    ($store:path) => {
        $crate::backend_suite!(@tests $store;
            create_and_read_back
            versions_accumulate_and_diff
            a_racing_change_to_other_files_is_rebased
            a_racing_change_to_the_same_text_conflicts
            a_job_saves_once
            another_users_app_is_not_found
            the_library_is_newest_first_paged_and_searchable
            restore_adds_a_version
            rename_and_edit_details
            delete_is_soft_until_the_retention_ends
            expired_apps_are_listed_then_purged_by_id
            the_preview_serves_the_published_version_only
            the_zip_holds_the_version_files
            hostile_paths_cannot_be_stored
            descriptions_and_metadata_have_size_limits
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_versions_never_overwrite() {
            let Some(store) = $store().await else {
                return;
            };
            $crate::concurrency::concurrent_versions_never_overwrite(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_retries_of_a_job_save_once() {
            let Some(store) = $store().await else {
                return;
            };
            $crate::concurrency::concurrent_retries_of_a_job_save_once(store).await;
        }
    };
    (@tests $store:path;) => {};
    (@tests $store:path; $name:ident $($rest:ident)*) => {
        #[tokio::test]
        async fn $name() {
            // `None`: the backend is not available here (PostgreSQL without `DATABASE_URL`),
            // and the store function said why.
            let Some(store) = $store().await else {
                return;
            };
            $crate::suite::$name(store).await;
        }
        $crate::backend_suite!(@tests $store; $($rest)*);
    };
}
