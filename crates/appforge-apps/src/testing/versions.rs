//! Versions: creation, accumulation, rebasing, conflicts, retries of a job, restore.

use std::time::Duration;

use uuid::Uuid;

use super::{Backend, Fixture, create, f, files, replace};
use crate::{AppStore, Error, FileStatus, ListApps, NewApp, NewVersion, Owner};

/// An app is created at version 1 and reads back as it was stored: title trimmed, details,
/// files and the version's job, prompt, summary, tokens and duration.
pub async fn create_and_read_back<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
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
    assert_eq!(app.created_at, fx.start);
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

/// Versions accumulate newest first, and the diff between two names every added, changed and
/// removed file.
pub async fn versions_accumulate_and_diff<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
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

/// A change made from an older version is re-applied on top of the current one when its files
/// did not change, or its edits still fit.
pub async fn a_racing_change_to_other_files_is_rebased<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
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

/// A change from an older version that edits text changed meanwhile is a conflict naming the
/// file, and nothing is stored.
pub async fn a_racing_change_to_the_same_text_conflicts<S: AppStore + 'static>(
    backend: Backend<S>,
) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
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

/// A job's app and a job's version are stored once, however often the job is retried.
pub async fn a_job_saves_once<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
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

/// Restoring an old version adds it as the newest version.
pub async fn restore_adds_a_version<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
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

/// A version records the uploads its generation attached, in order and each once, on every
/// read (the version, the version list, a retry of its job); a version made without any, or
/// by a restore, records none.
pub async fn a_version_records_its_attachments<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    let (screenshot, mockup) = (Uuid::new_v4(), Uuid::new_v4());
    let job = Uuid::new_v4();
    let saved = fx
        .store
        .create_app(
            user,
            NewApp::new(
                "Habits",
                NewVersion::files(files())
                    .job(job)
                    .attachments(vec![screenshot, mockup, screenshot]),
            ),
        )
        .await
        .unwrap();
    assert_eq!(saved.version.info.attachments, [screenshot, mockup]);
    let app = saved.app.id;
    let v1 = fx.store.get_version(user, app, Some(1)).await.unwrap();
    assert_eq!(v1.info.attachments, [screenshot, mockup]);

    // A modification with another image, one without, and a retry of the first.
    let modify = Uuid::new_v4();
    let with_image = replace("src/theme.ts", "false", "true")
        .job(modify)
        .attachments(vec![mockup]);
    let v2 = fx
        .store
        .add_version(user, app, 1, with_image)
        .await
        .unwrap();
    assert_eq!(v2.version.info.attachments, [mockup]);
    let v3 = fx
        .store
        .add_version(user, app, 2, create("b.txt", "b"))
        .await
        .unwrap();
    assert!(v3.version.info.attachments.is_empty());
    let retry = fx
        .store
        .add_version(
            user,
            app,
            3,
            create("c.txt", "c")
                .job(modify)
                .attachments(vec![screenshot]),
        )
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(retry.version.info.attachments, [mockup]);

    // A restore of a version with images records none.
    let restored = fx.store.restore_version(user, app, 1).await.unwrap();
    assert_eq!(restored.version.info.number, 4);
    assert!(restored.version.info.attachments.is_empty());

    let listed: Vec<(u32, Vec<Uuid>)> = fx
        .store
        .list_versions(user, app)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.number, v.attachments))
        .collect();
    assert_eq!(
        listed,
        [
            (4, vec![]),
            (3, vec![]),
            (2, vec![mockup]),
            (1, vec![screenshot, mockup]),
        ]
    );
    assert_eq!(
        fx.store
            .get_version(user, app, Some(2))
            .await
            .unwrap()
            .info
            .attachments,
        [mockup]
    );
}
