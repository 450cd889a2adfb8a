//! The metadata store suite: every test body takes a fresh store, and `backend_suite!` turns
//! them into `#[tokio::test]`s for one backend.

use std::any::Any;

use appforge_uploads::{AnyUploadStore, Error, MediaType, Upload, UploadStore};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Keeps a backend's resources (a temporary file, a test database) alive.
pub(crate) type Guard = Box<dyn Any + Send + Sync>;

const KB: u64 = 1024;

fn at(minutes: i64) -> DateTime<Utc> {
    appforge_testing::fixed_now() + chrono::Duration::minutes(minutes)
}

pub(crate) fn upload(owner: Uuid, size: u64, minutes: i64) -> Upload {
    Upload::new(
        Uuid::new_v4(),
        owner,
        MediaType::Png,
        size,
        640,
        480,
        "ab".repeat(32),
        at(minutes),
    )
}

pub(crate) async fn round_trip(store: AnyUploadStore) {
    let owner = Uuid::new_v4();
    let new = upload(owner, 10 * KB, 0);
    store.insert(&new, 100 * KB).await.unwrap();
    let read = store.get(owner, new.id).await.unwrap();
    assert_eq!(read, new);
    assert_eq!(read.key(), format!("{owner}/{}.png", new.id));
    assert_eq!(store.usage(owner).await.unwrap(), 10 * KB);
}

pub(crate) async fn another_owner_sees_nothing(store: AnyUploadStore) {
    let (owner, stranger) = (Uuid::new_v4(), Uuid::new_v4());
    let new = upload(owner, KB, 0);
    store.insert(&new, 100 * KB).await.unwrap();
    assert!(matches!(store.get(stranger, new.id).await, Err(Error::NotFound(id)) if id == new.id));
    assert!(matches!(
        store.soft_delete(stranger, new.id, at(1)).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.list(stranger, 10).await.unwrap().is_empty());
    assert_eq!(store.usage(stranger).await.unwrap(), 0);
    // The stranger's delete changed nothing.
    assert!(store.get(owner, new.id).await.is_ok());
}

pub(crate) async fn deleted_is_not_found_and_frees_the_allowance(store: AnyUploadStore) {
    let owner = Uuid::new_v4();
    let first = upload(owner, 60 * KB, 0);
    store.insert(&first, 100 * KB).await.unwrap();
    let deleted = store.soft_delete(owner, first.id, at(5)).await.unwrap();
    assert_eq!(deleted.deleted_at, Some(at(5)));
    assert!(matches!(
        store.get(owner, first.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.soft_delete(owner, first.id, at(6)).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.usage(owner).await.unwrap(), 0);
    store
        .insert(&upload(owner, 60 * KB, 6), 100 * KB)
        .await
        .unwrap();
}

pub(crate) async fn the_allowance_is_enforced(store: AnyUploadStore) {
    let owner = Uuid::new_v4();
    store
        .insert(&upload(owner, 60 * KB, 0), 100 * KB)
        .await
        .unwrap();
    // Exactly the allowance fits.
    store
        .insert(&upload(owner, 40 * KB, 1), 100 * KB)
        .await
        .unwrap();
    let over = upload(owner, 1, 2);
    let refused = store.insert(&over, 100 * KB).await.unwrap_err();
    assert!(
        matches!(refused, Error::QuotaExceeded { used, size: 1, limit } if used == 100 * KB && limit == 100 * KB),
        "{refused}"
    );
    assert!(matches!(
        store.get(owner, over.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.usage(owner).await.unwrap(), 100 * KB);
    // Another owner has an allowance of their own.
    store
        .insert(&upload(Uuid::new_v4(), 100 * KB, 0), 100 * KB)
        .await
        .unwrap();
}

pub(crate) async fn racing_uploads_never_pass_the_allowance(store: AnyUploadStore) {
    let owner = Uuid::new_v4();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.insert(&upload(owner, 30 * KB, i), 100 * KB).await })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => stored += 1,
            Err(Error::QuotaExceeded { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(stored, 3);
    assert_eq!(store.usage(owner).await.unwrap(), 90 * KB);
}

pub(crate) async fn listing_is_newest_first_and_live_only(store: AnyUploadStore) {
    let owner = Uuid::new_v4();
    let ids: Vec<Uuid> = {
        let mut ids = Vec::new();
        for minutes in 0..3 {
            let new = upload(owner, KB, minutes);
            store.insert(&new, 100 * KB).await.unwrap();
            ids.push(new.id);
        }
        ids
    };
    store
        .insert(&upload(Uuid::new_v4(), KB, 9), 100 * KB)
        .await
        .unwrap();
    store.soft_delete(owner, ids[1], at(4)).await.unwrap();
    let listed: Vec<Uuid> = store
        .list(owner, 10)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(listed, vec![ids[2], ids[0]]);
    assert_eq!(store.list(owner, 1).await.unwrap().len(), 1);
}

pub(crate) async fn retention_expires_then_purge_forgets(store: AnyUploadStore) {
    let owner = Uuid::new_v4();
    let (old, recent) = (upload(owner, KB, 0), upload(owner, KB, 60));
    store.insert(&old, 100 * KB).await.unwrap();
    store.insert(&recent, 100 * KB).await.unwrap();
    assert_eq!(
        store.expire_created_before(at(30), at(90)).await.unwrap(),
        1
    );
    assert!(matches!(
        store.get(owner, old.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.get(owner, recent.id).await.is_ok());

    // Deleted at minute 90: not yet purgeable at minute 90, purgeable after.
    assert!(store.deleted_before(at(90), 10).await.unwrap().is_empty());
    let due = store.deleted_before(at(91), 10).await.unwrap();
    assert_eq!(due.iter().map(|u| u.id).collect::<Vec<_>>(), vec![old.id]);
    assert_eq!(due[0].deleted_at, Some(at(90)));
    store.forget(old.id).await.unwrap();
    store.forget(old.id).await.unwrap();
    assert!(store.deleted_before(at(91), 10).await.unwrap().is_empty());
    assert_eq!(store.usage(owner).await.unwrap(), KB);
}

/// Instantiates every suite test for one backend: `backend_suite!(store_fn)`, where
/// `store_fn` returns a fresh store and its guard, or `None` when the backend is not
/// available here (PostgreSQL without `DATABASE_URL`, which says so).
#[macro_export]
macro_rules! backend_suite {
    ($store:ident) => {
        $crate::backend_suite!(@tests $store:
            round_trip,
            another_owner_sees_nothing,
            deleted_is_not_found_and_frees_the_allowance,
            the_allowance_is_enforced,
            racing_uploads_never_pass_the_allowance,
            listing_is_newest_first_and_live_only,
            retention_expires_then_purge_forgets,
        );
    };
    (@tests $store:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = $store().await else { return; };
                $crate::suite::$name(store).await;
            }
        )*
    };
}
