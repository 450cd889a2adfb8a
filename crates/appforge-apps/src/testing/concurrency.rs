//! Writers racing on one app: every backend decides them one after the other.

use uuid::Uuid;

use super::{Backend, Fixture, create, files, replace};
use crate::{AppStore, NewApp, NewVersion, Owner};

/// Modifications racing from one base: those touching distinct files all land, one after the
/// other; of those editing the same text exactly one lands and the rest conflict.
pub async fn concurrent_versions_never_overwrite<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let user = Owner::User(Uuid::new_v4());
    let app = fx.app(user, "Habits").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = fx.store.clone();
            tokio::spawn(async move {
                store
                    .add_version(user, app, 1, create(&format!("src/f{i}.ts"), "x"))
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap().unwrap().version.info.number);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (2..=9).collect::<Vec<u32>>());
    let current = fx.store.get_version(user, app, None).await.unwrap();
    assert_eq!(current.files.len(), 10);

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = fx.store.clone();
            tokio::spawn(async move {
                store
                    .add_version(
                        user,
                        app,
                        9,
                        replace("src/App.tsx", "<main />", &format!("<main>{i}</main>")),
                    )
                    .await
            })
        })
        .collect();
    let (mut landed, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => landed += 1,
            Err(e) if e.conflict_path() == Some("src/App.tsx") => conflicts += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((landed, conflicts), (1, 7));
    assert_eq!(
        fx.store.get_app(user, app).await.unwrap().current_version,
        10
    );
}

/// Retries of one job racing each other create one app, and one version of it, in a user's
/// space as in an org's (whichever member's retry wins), the same job id in each.
pub async fn concurrent_retries_of_a_job_save_once<S: AppStore + 'static>(backend: Backend<S>) {
    let fx = Fixture::new(backend);
    let job = Uuid::new_v4();
    let mut apps = Vec::new();
    for owner in [Owner::User(Uuid::new_v4()), Owner::Org(Uuid::new_v4())] {
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let store = fx.store.clone();
                tokio::spawn(async move {
                    let new = NewApp::new("Habits", NewVersion::files(files()).job(job))
                        .created_by(Uuid::new_v4());
                    store.create_app(owner, new).await.unwrap()
                })
            })
            .collect();
        let mut saved = Vec::new();
        for task in tasks {
            saved.push(task.await.unwrap());
        }
        assert_eq!(saved.iter().filter(|s| s.created).count(), 1, "{owner}");
        let app = saved[0].app.id;
        assert!(
            saved
                .iter()
                .all(|s| s.app.id == app && s.app.owner() == owner)
        );
        let modify = Uuid::new_v4();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let store = fx.store.clone();
                tokio::spawn(async move {
                    store
                        .add_version(owner, app, 1, create("b.txt", "x").job(modify))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            let saved = task.await.unwrap();
            assert_eq!(saved.version.info.number, 2);
            created += usize::from(saved.created);
        }
        assert_eq!(created, 1);
        assert_eq!(fx.store.list_versions(owner, app).await.unwrap().len(), 2);
        apps.push(app);
    }
    assert_ne!(apps[0], apps[1], "one app per space");
}
