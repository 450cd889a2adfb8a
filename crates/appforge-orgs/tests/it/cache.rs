//! The membership cache of `Orgs::admit`: a change made through the service takes effect at
//! once, a change made by another process reaches the cache through PostgreSQL's
//! notifications, and a cache whose feed is down is not used.

use std::time::{Duration, Instant};

use appforge_orgs::{Caller, Error, MemoryOrgStore, NewOrg, Orgs, Permission, Role};
use uuid::Uuid;

/// Waits up to 10 s for `done`, checking every 10 ms: for what another process or a
/// background task makes true.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut done: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn org_with_member<S: appforge_orgs::OrgStore>(orgs: &Orgs<S>) -> (Uuid, Uuid, Caller) {
    let owner = Caller::user(Uuid::new_v4());
    let slug = format!("cache-{}", &Uuid::new_v4().simple().to_string()[..10]);
    let org = orgs
        .create_org(&owner, NewOrg::new("Cache", slug))
        .await
        .unwrap()
        .id;
    let member = Uuid::new_v4();
    orgs.add_member(&owner, org, member, Role::Member)
        .await
        .unwrap();
    (org, member, owner)
}

#[tokio::test]
async fn changes_through_the_service_take_effect_at_once() {
    let orgs = Orgs::new(MemoryOrgStore::new());
    let cache = orgs.membership_cache().clone();
    cache.set_live(true);
    let (org, member, owner) = org_with_member(&orgs).await;
    let as_member = Caller::user(member);

    let access = orgs
        .admit(&as_member, org, Permission::Generate)
        .await
        .unwrap();
    assert_eq!((access.role, access.member_daily_cap), (Role::Member, None));
    assert_eq!(cache.len(), 1, "the answer is cached");

    orgs.set_member_daily_cap(&owner, org, Some(3))
        .await
        .unwrap();
    let access = orgs
        .admit(&as_member, org, Permission::Generate)
        .await
        .unwrap();
    assert_eq!(
        access.member_daily_cap,
        Some(3),
        "the new cap, not the cached one"
    );

    orgs.change_role(&owner, org, member, Role::Viewer)
        .await
        .unwrap();
    let refused = orgs.admit(&as_member, org, Permission::Generate).await;
    assert!(
        matches!(refused, Err(Error::Forbidden { .. })),
        "{refused:?}"
    );

    orgs.remove_member(&owner, org, member).await.unwrap();
    let gone = orgs.admit(&as_member, org, Permission::ReadApps).await;
    assert!(matches!(gone, Err(Error::OrgNotFound(_))), "{gone:?}");
}

#[tokio::test]
async fn without_a_live_feed_every_check_reads_the_store() {
    let orgs = Orgs::new(MemoryOrgStore::new());
    let (org, member, _) = org_with_member(&orgs).await;
    orgs.admit(&Caller::user(member), org, Permission::Generate)
        .await
        .unwrap();
    assert!(!orgs.membership_cache().is_live());
    assert!(orgs.membership_cache().is_empty(), "nothing kept");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn another_processs_changes_reach_the_cache_and_a_lost_feed_turns_it_off() {
    use appforge_orgs::PgOrgStore;

    let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    // Two processes: each its own pool and service; this one caches.
    let here = Orgs::new(PgOrgStore::from_pool(db.pool().await));
    let there = Orgs::new(PgOrgStore::from_pool(db.pool().await));
    here.store().migrate().await.unwrap();
    let cache = here.membership_cache().clone();
    let feed = here.store().watch(cache.clone());
    eventually("the feed to listen", async || cache.is_live()).await;

    let (org, member, owner) = org_with_member(&there).await;
    let as_member = Caller::user(member);
    // Kept once the notifications of the org's creation have arrived (an answer read
    // before one of them is not kept).
    eventually("the member's access to be cached", async || {
        here.admit(&as_member, org, Permission::Generate)
            .await
            .unwrap();
        cache.len() == 1
    })
    .await;

    there
        .change_role(&owner, org, member, Role::Viewer)
        .await
        .unwrap();
    eventually("the other process's demotion", async || {
        matches!(
            here.admit(&as_member, org, Permission::Generate).await,
            Err(Error::Forbidden { .. })
        )
    })
    .await;
    there.remove_member(&owner, org, member).await.unwrap();
    eventually("the other process's removal", async || {
        matches!(
            here.admit(&as_member, org, Permission::ReadApps).await,
            Err(Error::OrgNotFound(_))
        )
    })
    .await;

    // The listening connection dies: the cache is off (and empty) until it listens again.
    there
        .add_member(&owner, org, member, Role::Member)
        .await
        .unwrap();
    here.admit(&as_member, org, Permission::Generate)
        .await
        .unwrap();
    let admin = db.pool().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "one listening connection");
    eventually("the feed to notice", async || !cache.is_live()).await;
    assert!(cache.is_empty());
    eventually("the feed to listen again", async || cache.is_live()).await;
    there
        .change_role(&owner, org, member, Role::Viewer)
        .await
        .unwrap();
    eventually("the demotion after the reconnection", async || {
        matches!(
            here.admit(&as_member, org, Permission::Generate).await,
            Err(Error::Forbidden { .. })
        )
    })
    .await;
    feed.abort();
    assert!(feed.await.unwrap_err().is_cancelled());
    assert!(!cache.is_live(), "a stopped feed leaves the cache off");
}
