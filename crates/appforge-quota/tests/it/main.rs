//! Integration tests of appforge-quota: the exported conformance suite, run on every backend
//! (and on a store implemented outside the crate).

mod outside;
#[cfg(feature = "sqlite")]
mod sqlite_times;

mod memory {
    use appforge_quota::MemoryUsageStore;
    use appforge_quota::testing::Backend;

    async fn store() -> Option<Backend<MemoryUsageStore>> {
        Some(Backend::new(MemoryUsageStore::new()))
    }

    appforge_quota::usage_store_suite!(store);
}

/// The memory store behind the run-time enum, as `Quota::new` holds it.
mod any_memory {
    use appforge_quota::testing::Backend;
    use appforge_quota::{AnyUsageStore, MemoryUsageStore};

    async fn store() -> Option<Backend<AnyUsageStore>> {
        Some(Backend::new(MemoryUsageStore::new().into()))
    }

    appforge_quota::usage_store_suite!(store);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_quota::testing::Backend;
    use appforge_quota::{AnyUsageStore, SqliteUsageStore};
    use appforge_testing::TempSqlite;

    async fn store() -> Option<Backend<AnyUsageStore>> {
        let file = TempSqlite::new();
        let store = SqliteUsageStore::connect(&file.url()).await.unwrap();
        store.migrate().await.unwrap();
        Some(Backend::new(store.into()).guard(file))
    }

    appforge_quota::usage_store_suite!(store);
}

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_quota::testing::Backend;
    use appforge_quota::{AnyUsageStore, PgUsageStore};
    use appforge_testing::TestDatabase;

    /// A migrated store on `db` whose pool holds up to `connections`.
    pub(super) async fn migrated(db: &TestDatabase, connections: u32) -> PgUsageStore {
        let pool = db
            .pool_with(sqlx::postgres::PgPoolOptions::new().max_connections(connections))
            .await;
        let store = PgUsageStore::from_pool(pool);
        store.migrate().await.unwrap();
        store
    }

    /// A quota on `store` at `clock`'s time, without burst limits.
    fn quota(store: PgUsageStore, clock: &appforge_testing::ManualClock) -> appforge_quota::Quota {
        appforge_quota::Quota::builder(store)
            .clock(clock.shared())
            .burst_limits(false)
            .build()
            .unwrap()
    }

    async fn store() -> Option<Backend<AnyUsageStore>> {
        let db = TestDatabase::create_or_skip().await?;
        Some(Backend::new(migrated(&db, 8).await.into()).guard(db))
    }

    appforge_quota::usage_store_suite!(store);

    /// 1,000 reservations for one new Free user through four pools (as four processes would):
    /// exactly 5 granted, and exactly 50 for a Pro user.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn several_pools_admit_exactly_the_limit() {
        use appforge_quota::PlanId;

        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let clock = appforge_testing::ManualClock::at(appforge_testing::fixed_now());
        let mut quotas = Vec::new();
        for _ in 0..4 {
            quotas.push(quota(migrated(&db, 5).await, &clock));
        }
        let (free, pro) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        quotas[0].set_plan(pro, &PlanId::pro()).await.unwrap();
        let tasks: Vec<_> = (0..2_000)
            .map(|i| {
                let quota = quotas[i % 4].clone();
                let user = if i % 2 == 0 { free } else { pro };
                tokio::spawn(
                    async move { (user, quota.reserve(user, 1).await.unwrap().is_granted()) },
                )
            })
            .collect();
        let (mut free_granted, mut pro_granted) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                (user, true) if user == free => free_granted += 1,
                (_, true) => pro_granted += 1,
                _ => {}
            }
        }
        assert_eq!((free_granted, pro_granted), (5, 50));
        assert_eq!(quotas[3].status(free).await.unwrap().daily.used, 5);
        assert_eq!(quotas[2].status(pro).await.unwrap().daily.used, 50);
    }

    /// Reservations decided on the caller's transaction are held by their holders and exist
    /// only if it commits: a rolled-back transaction leaves no reservation and no count, a
    /// committed one leaves them held; a user at the limit is not admitted there (`None`).
    #[tokio::test]
    async fn reservations_on_a_transaction_are_held_and_commit_with_it() {
        use appforge_core::Clock as _;
        use sqlx::Connection;

        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let clock = appforge_testing::ManualClock::at(appforge_testing::fixed_now());
        let quota = quota(migrated(&db, 2).await, &clock);
        let pool = quota.postgres_pool().expect("a PostgreSQL quota").clone();
        let (user, spent) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        for _ in 0..5 {
            assert!(quota.reserve(spent, 1).await.unwrap().is_granted());
        }
        let (first, second, third) = (
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        );
        let mut conn = pool.acquire().await.unwrap();

        let mut tx = conn.begin().await.unwrap();
        let rolled_back = quota
            .reserve_held_on(&mut tx, &[(user, first)])
            .await
            .unwrap();
        assert!(rolled_back[0].is_some());
        tx.rollback().await.unwrap();
        assert_eq!(quota.status(user).await.unwrap().daily.used, 0);
        assert!(quota.held(clock.now(), None, 10).await.unwrap().is_empty());

        let mut tx = conn.begin().await.unwrap();
        let answers = quota
            .reserve_held_on(&mut tx, &[(user, second), (spent, third), (user, third)])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(answers[0].is_some() && answers[2].is_some());
        assert!(answers[1].is_none(), "the spent user is at the Free limit");
        assert_eq!(quota.status(user).await.unwrap().daily.used, 2);
        let mut held: Vec<(uuid::Uuid, uuid::Uuid)> = quota
            .held(clock.now() + chrono::Duration::seconds(1), None, 10)
            .await
            .unwrap()
            .iter()
            .map(|h| (h.user, h.holder))
            .collect();
        held.sort_unstable();
        let mut expected = vec![(user, second), (user, third)];
        expected.sort_unstable();
        assert_eq!(held, expected);
        // Held: the timeout does not release them.
        clock.advance(std::time::Duration::from_secs(3_600));
        assert_eq!(quota.reset_expired().await.unwrap().released, 5);
        assert_eq!(quota.status(user).await.unwrap().daily.used, 2);
    }

    /// The server closes every connection of the store (its batch connections and its pool's)
    /// between two bursts of calls: the second burst is answered in full, with nothing
    /// granted twice or lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_closed_by_the_server_cost_no_call() {
        use appforge_quota::PlanId;

        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let clock = appforge_testing::ManualClock::at(appforge_testing::fixed_now());
        let quota = quota(migrated(&db, 4).await, &clock);
        let users: Vec<uuid::Uuid> = (0..8).map(|_| uuid::Uuid::new_v4()).collect();
        for user in &users {
            quota.set_plan(*user, &PlanId::pro()).await.unwrap();
        }
        let burst = |round: u64| {
            let tasks: Vec<_> = users
                .iter()
                .flat_map(|user| std::iter::repeat_n(*user, 4))
                .map(|user| {
                    let quota = quota.clone();
                    tokio::spawn(async move {
                        let granted = quota.reserve(user, 1).await?;
                        let id = granted.reservation().expect("within the Pro limit").id;
                        quota.commit(id, round).await.map(drop)
                    })
                })
                .collect();
            async move {
                for task in tasks {
                    task.await.unwrap().unwrap();
                }
            }
        };
        burst(10).await;
        let admin = db.pool().await;
        let closed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&admin)
        .await
        .unwrap();
        assert!(
            closed.len() >= 2,
            "the store's connections were closed: {closed:?}"
        );
        burst(1).await;
        for user in &users {
            let status = quota.status(*user).await.unwrap();
            assert_eq!((status.daily.used, status.tokens.used), (8, 44), "{user}");
        }
    }
}

/// The PostgreSQL store with batching off: every call its own statement, the path a call
/// the batch did not admit also takes.
#[cfg(feature = "postgres")]
mod postgres_unbatched {
    use appforge_quota::PgUsageStore;
    use appforge_quota::testing::Backend;
    use appforge_testing::TestDatabase;

    async fn store() -> Option<Backend<PgUsageStore>> {
        let db = TestDatabase::create_or_skip().await?;
        let store = super::postgres::migrated(&db, 8).await.batching(0);
        Some(Backend::new(store).guard(db))
    }

    appforge_quota::usage_store_suite!(store);
}

mod any {
    use appforge_quota::{AnyUsageStore, Error};

    #[tokio::test]
    async fn stores_are_chosen_by_url() {
        let store = AnyUsageStore::connect("memory:").await.unwrap();
        assert!(matches!(store, AnyUsageStore::Memory(_)));
        let err = AnyUsageStore::connect("mysql://localhost/db")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("\"mysql\"")),
            "{err}"
        );
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_sqlite_url_opens_and_migrates_twice() {
        let file = appforge_testing::TempSqlite::new();
        let store = AnyUsageStore::connect(&file.url()).await.unwrap();
        assert!(matches!(store, AnyUsageStore::Sqlite(_)));
        let quota = appforge_quota::Quota::new(store);
        quota.migrate().await.unwrap();
        quota.migrate().await.unwrap();
        assert!(
            quota
                .reserve(uuid::Uuid::new_v4(), 1)
                .await
                .unwrap()
                .is_granted()
        );
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_postgres_url_opens_and_migrates_twice() {
        let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
            return;
        };
        let store = AnyUsageStore::connect(db.url()).await.unwrap();
        assert!(matches!(store, AnyUsageStore::Postgres(_)));
        let quota = appforge_quota::Quota::new(store);
        quota.migrate().await.unwrap();
        quota.migrate().await.unwrap();
        assert!(
            quota
                .reserve(uuid::Uuid::new_v4(), 1)
                .await
                .unwrap()
                .is_granted()
        );
    }
}
