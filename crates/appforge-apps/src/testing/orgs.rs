//! Organizations' spaces: an org's apps are shared by the org whoever created them, and are
//! nobody's personal apps.

use std::time::Duration;

use uuid::Uuid;

use super::{Backend, DAY, Fixture, create, files, replace};
use crate::{AppPatch, AppStore, Error, ListApps, NewApp, NewVersion, Owner};

impl<S: AppStore> Fixture<S> {
    /// An app in `org`'s space created by `creator`, titled `title`, holding the demo files.
    async fn org_app(&self, org: Owner, creator: Uuid, title: &str) -> Uuid {
        let new = NewApp::new(title, NewVersion::files(files())).created_by(creator);
        self.store.create_app(org, new).await.unwrap().app.id
    }

    /// The ids `owner` lists, live or deleted, newest first.
    async fn listed(&self, owner: Owner, deleted: bool) -> Vec<Uuid> {
        let request = if deleted {
            ListApps::first(100).deleted()
        } else {
            ListApps::first(100)
        };
        let page = self.store.list_apps(owner, &request).await.unwrap();
        page.items.into_iter().map(|a| a.id).collect()
    }
}

/// Every read and write of `app` scoped to `outsider` is [`Error::AppNotFound`] for that app,
/// and neither of `outsider`'s listings (live or deleted) shows it.
async fn assert_out_of_reach<S: AppStore>(fx: &Fixture<S>, outsider: Owner, app: Uuid) {
    let s = &fx.store;
    let nf = |call: &str, r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::AppNotFound(id)) if id == app),
            "{call} as {outsider}: {r:?}"
        );
    };
    nf("get_app", s.get_app(outsider, app).await.map(drop));
    nf(
        "get_version",
        s.get_version(outsider, app, Some(1)).await.map(drop),
    );
    nf(
        "get_version(None)",
        s.get_version(outsider, app, None).await.map(drop),
    );
    nf(
        "list_versions",
        s.list_versions(outsider, app).await.map(drop),
    );
    nf(
        "add_version",
        s.add_version(outsider, app, 1, create("x.ts", "y"))
            .await
            .map(drop),
    );
    nf("diff", s.diff(outsider, app, 1, 1).await.map(drop));
    nf(
        "restore_version",
        s.restore_version(outsider, app, 1).await.map(drop),
    );
    nf(
        "update_app",
        s.update_app(outsider, app, AppPatch::default().title("Theirs"))
            .await
            .map(drop),
    );
    nf("publish", s.publish(outsider, app, None).await.map(drop));
    nf("unpublish", s.unpublish(outsider, app).await.map(drop));
    nf(
        "export_zip",
        s.export_zip(outsider, app, None).await.map(drop),
    );
    nf("delete_app", s.delete_app(outsider, app).await.map(drop));
    nf(
        "undelete_app",
        s.undelete_app(outsider, app).await.map(drop),
    );
    for deleted in [false, true] {
        assert!(
            !fx.listed(outsider, deleted).await.contains(&app),
            "{outsider} lists {app} (deleted: {deleted})"
        );
    }
}

/// An org's app is read and changed by calls scoped to the org, whoever created it; it keeps
/// its creator, and its preview is public as any app's.
pub async fn an_org_app_is_shared_by_the_org_whoever_created_it<S: AppStore + 'static>(
    backend: Backend<S>,
) {
    let fx = Fixture::new(backend);
    let alice = Uuid::new_v4();
    let org = Owner::Org(Uuid::new_v4());
    let new = NewApp::new("Team board", NewVersion::files(files())).created_by(alice);
    let saved = fx.store.create_app(org, new).await.unwrap();
    assert!(saved.created);
    let app = saved.app.id;
    assert_eq!(
        (saved.app.user_id, saved.app.org_id),
        (alice, Some(org.id()))
    );
    assert_eq!(saved.app.owner(), org);

    // Any call scoped to the org (another member's, say) reads and changes it.
    let s = &fx.store;
    assert_eq!(s.get_app(org, app).await.unwrap(), saved.app);
    assert_eq!(fx.listed(org, false).await, [app]);
    fx.clock.advance(Duration::from_secs(60));
    let v2 = s
        .add_version(org, app, 1, replace("src/theme.ts", "false", "true"))
        .await
        .unwrap();
    assert_eq!(v2.version.info.number, 2);
    let diff = s.diff(org, app, 1, 2).await.unwrap();
    assert_eq!(diff.files.len(), 1);
    assert_eq!(s.get_version(org, app, None).await.unwrap().info.number, 2);
    assert_eq!(s.list_versions(org, app).await.unwrap().len(), 2);
    assert!(!s.export_zip(org, app, Some(1)).await.unwrap().is_empty());
    let restored = s.restore_version(org, app, 1).await.unwrap();
    assert_eq!(restored.version.files, files());
    let renamed = s
        .update_app(org, app, AppPatch::default().title("Roadmap"))
        .await
        .unwrap();
    assert_eq!(renamed.title, "Roadmap");
    assert_eq!(
        (renamed.user_id, renamed.org_id),
        (alice, Some(org.id())),
        "the creator stays"
    );
    let slug = s
        .publish(org, app, Some(2))
        .await
        .unwrap()
        .preview_slug
        .unwrap();
    assert_eq!(fx.store.published(&slug).await.unwrap().version, 2);
    assert!(!s.unpublish(org, app).await.unwrap().preview_enabled);

    let deleted = s.delete_app(org, app).await.unwrap();
    assert_eq!(deleted.deleted_at, Some(fx.clock_now()));
    assert!(s.get_app(org, app).await.unwrap_err().is_not_found());
    assert_eq!(fx.listed(org, true).await, [app]);
    assert_eq!(s.undelete_app(org, app).await.unwrap().deleted_at, None);
    let app = s.get_app(org, app).await.unwrap();
    assert_eq!((app.title.as_str(), app.current_version), ("Roadmap", 3));
}

/// An org's app is not found, on every read and write, by its creator's personal space, by
/// another org and by another user; none of them changes it, deleted or not.
pub async fn an_org_app_is_not_found_outside_the_org<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (org, other_org) = (Owner::Org(Uuid::new_v4()), Owner::Org(Uuid::new_v4()));
    let app = fx.org_app(org, alice, "Team board").await;
    // Each outsider has apps of their own: the scope is not merely empty.
    fx.app(Owner::User(alice), "Alice's own").await;
    fx.org_app(other_org, alice, "Other org's").await;
    fx.app(Owner::User(bob), "Bob's own").await;

    let outsiders = [Owner::User(alice), other_org, Owner::User(bob)];
    for outsider in outsiders {
        assert_out_of_reach(&fx, outsider, app).await;
        assert_eq!(fx.listed(outsider, false).await.len(), 1, "{outsider}");
    }
    // Nothing changed.
    let s = &fx.store;
    let kept = s.get_app(org, app).await.unwrap();
    assert_eq!(
        (kept.title.as_str(), kept.current_version),
        ("Team board", 1)
    );
    assert!(kept.preview_slug.is_none() && kept.deleted_at.is_none());
    assert_eq!(s.list_versions(org, app).await.unwrap().len(), 1);

    // Deleted, it is still the org's alone to restore.
    s.delete_app(org, app).await.unwrap();
    for outsider in outsiders {
        assert_out_of_reach(&fx, outsider, app).await;
    }
    assert_eq!(fx.listed(org, true).await, [app]);
    assert!(s.undelete_app(org, app).await.is_ok());
}

/// A user's personal app is not found, on every read and write, by calls scoped to the
/// user's orgs.
pub async fn a_personal_app_is_not_found_in_the_users_orgs<S: AppStore + 'static>(
    backend: Backend<S>,
) {
    let fx = Fixture::new(backend);
    let alice = Uuid::new_v4();
    let org = Owner::Org(Uuid::new_v4());
    let app = fx.app(Owner::User(alice), "Diary").await;
    let team = fx.org_app(org, alice, "Team board").await;

    assert_out_of_reach(&fx, org, app).await;
    assert_eq!(fx.listed(org, false).await, [team]);
    assert_eq!(fx.listed(Owner::User(alice), false).await, [app]);
    let kept = fx.store.get_app(Owner::User(alice), app).await.unwrap();
    assert_eq!((kept.title.as_str(), kept.org_id), ("Diary", None));
    assert_eq!(kept.owner(), Owner::User(alice));
}

/// An org's library lists the org's apps only, whoever created them, newest first, paged and
/// searchable as a user's is; its deleted apps are listed apart.
pub async fn an_orgs_library_lists_its_apps_only<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (org, other_org) = (Owner::Org(Uuid::new_v4()), Owner::Org(Uuid::new_v4()));
    let mut ours = Vec::new();
    for (creator, title) in [
        (alice, "Habit tracker"),
        (bob, "Budget"),
        (alice, "Habits v2"),
    ] {
        fx.clock.advance(Duration::from_secs(1));
        ours.push(fx.org_app(org, creator, title).await);
        // Apps elsewhere, created meanwhile.
        fx.app(Owner::User(creator), &format!("{title} (mine)"))
            .await;
        fx.org_app(other_org, creator, &format!("{title} (theirs)"))
            .await;
    }
    let unattributed = NewApp::new("Habit import", NewVersion::files(files()));
    fx.clock.advance(Duration::from_secs(1));
    ours.push(fx.store.create_app(org, unattributed).await.unwrap().app.id);

    let newest_first: Vec<Uuid> = ours.iter().rev().copied().collect();
    assert_eq!(fx.listed(org, false).await, newest_first);
    assert_eq!(fx.listed(other_org, false).await.len(), 3);
    assert_eq!(fx.listed(Owner::User(alice), false).await.len(), 2);

    // Paged by cursor, without gaps or repeats.
    let s = &fx.store;
    let mut seen = Vec::new();
    let mut request = ListApps::first(3);
    loop {
        let page = s.list_apps(org, &request).await.unwrap();
        assert!(page.items.iter().all(|a| a.org_id == Some(org.id())));
        seen.extend(page.items.iter().map(|a| a.id));
        match page.next {
            Some(cursor) => request = ListApps::first(3).after(cursor),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    // Searched within the org only.
    let found = s
        .list_apps(org, &ListApps::first(10).search("HABIT"))
        .await
        .unwrap();
    let titles: Vec<&str> = found.items.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(titles, ["Habit import", "Habits v2", "Habit tracker"]);

    // Deleted apps are listed apart, for the org only.
    s.delete_app(org, ours[1]).await.unwrap();
    assert_eq!(fx.listed(org, true).await, [ours[1]]);
    assert_eq!(fx.listed(org, false).await.len(), 3);
    assert!(fx.listed(other_org, true).await.is_empty());
    assert!(fx.listed(Owner::User(bob), true).await.is_empty());
}

/// A job creates one app per space, however often it is retried and by whichever member: the
/// same job id in another space (the creator's own, another org) creates that space's app.
pub async fn a_job_saves_once_per_owner<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (org, other_org) = (Owner::Org(Uuid::new_v4()), Owner::Org(Uuid::new_v4()));
    let job = Uuid::new_v4();
    let new = |creator: Uuid| {
        NewApp::new("Habits", NewVersion::files(files()).job(job)).created_by(creator)
    };
    let s = &fx.store;
    let first = s.create_app(org, new(alice)).await.unwrap();
    let retry = s.create_app(org, new(bob)).await.unwrap();
    assert!(first.created && !retry.created);
    assert_eq!(retry.app, first.app);
    assert_eq!(retry.version, first.version);
    assert_eq!(retry.app.user_id, alice, "the first attempt's creator");

    let personal = s.create_app(Owner::User(alice), new(alice)).await.unwrap();
    let elsewhere = s.create_app(other_org, new(alice)).await.unwrap();
    let bobs = s.create_app(Owner::User(bob), new(bob)).await.unwrap();
    assert!(personal.created && elsewhere.created && bobs.created);
    assert_eq!(personal.app.owner(), Owner::User(alice));
    assert_eq!(elsewhere.app.owner(), other_org);
    let mut ids = vec![first.app.id, personal.app.id, elsewhere.app.id, bobs.app.id];
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "one app per space");

    // Each space's retry finds its own app.
    let again = s.create_app(Owner::User(alice), new(alice)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.app.id, personal.app.id);
    let again = s.create_app(other_org, new(bob)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.app.id, elsewhere.app.id);
    assert_eq!(fx.listed(org, false).await, [first.app.id]);
    assert_eq!(
        fx.listed(Owner::User(alice), false).await,
        [personal.app.id]
    );
}

/// An app records its creator: the member given with [`NewApp::created_by`] for an org's app
/// (the nil id without one), the user it was created for for a personal app.
pub async fn the_creator_of_an_app_is_recorded<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let org = Owner::Org(Uuid::new_v4());
    let s = &fx.store;
    let cases = [
        (org, Some(alice), alice, Some(org.id())),
        (org, None, Uuid::nil(), Some(org.id())),
        (Owner::User(bob), None, bob, None),
        // A personal app is its user's, whoever is named.
        (Owner::User(bob), Some(alice), bob, None),
    ];
    for (owner, created_by, user_id, org_id) in cases {
        let mut new = NewApp::new("Habits", NewVersion::files(files()));
        if let Some(creator) = created_by {
            new = new.created_by(creator);
        }
        let saved = s.create_app(owner, new).await.unwrap();
        assert_eq!((saved.app.user_id, saved.app.org_id), (user_id, org_id));
        assert_eq!(saved.app.owner(), owner);
        let read = s.get_app(owner, saved.app.id).await.unwrap();
        assert_eq!(read, saved.app);
        let listed = s.list_apps(owner, &ListApps::first(10)).await.unwrap();
        assert!(listed.items.contains(&saved.app));
    }
    assert!(
        s.list_apps(Owner::User(alice), &ListApps::first(10))
            .await
            .unwrap()
            .items
            .is_empty(),
        "alice created apps, none of them hers"
    );
}

/// An org's deleted app expires and is purged as a personal one is, listed with its org.
pub async fn an_org_app_expires_and_is_purged<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let alice = Uuid::new_v4();
    let org = Owner::Org(Uuid::new_v4());
    let team = fx.org_app(org, alice, "Team board").await;
    let mine = fx.app(Owner::User(alice), "Diary").await;
    let s = &fx.store;
    s.delete_app(org, team).await.unwrap();
    fx.clock.advance(DAY);
    s.delete_app(Owner::User(alice), mine).await.unwrap();
    fx.clock.advance(7 * DAY);

    let expired = s.expired_apps(10).await.unwrap();
    let listed: Vec<(Uuid, Owner, Uuid)> = expired
        .iter()
        .map(|a| (a.id, a.owner(), a.user_id))
        .collect();
    assert_eq!(
        listed,
        [(team, org, alice), (mine, Owner::User(alice), alice)]
    );
    assert_eq!(s.purge_apps(&[team]).await.unwrap(), 1);
    assert!(s.undelete_app(org, team).await.unwrap_err().is_not_found());
    assert_eq!(s.expired_apps(10).await.unwrap()[0].id, mine);
    assert_eq!(s.purge_deleted().await.unwrap(), 1);
    assert!(s.expired_apps(10).await.unwrap().is_empty());
}
