//! Many calls at once: no interleaving admits more than a limit.

use std::sync::Arc;

use uuid::Uuid;

use super::{Backend, Fixture, t};
use crate::{Admission, PlanId, Resource, Settlement, UsageStore};

/// 1,000 reservations at once for one Free user: exactly 5 granted.
pub async fn concurrent_reservations_admit_exactly_the_limit<S: UsageStore>(backend: Backend<S>) {
    let f = Arc::new(Fixture::new(backend, "2026-03-14T12:00:00Z").await);
    let user = Uuid::new_v4();
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.quota.reserve(user, 1).await.unwrap().is_granted() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 5);
    assert_eq!(f.quota.status(user).await.unwrap().daily.used, 5);
}

/// 200 reservations of costs 1 to 4 at once for one Pro user (50 a day), each granted one
/// committed at once with tokens: the granted costs fit the limit and are what the store
/// counts, every refusal was for a cost that no longer fit, and every commit's tokens count.
pub async fn concurrent_mixed_costs_and_commits_add_up<S: UsageStore>(backend: Backend<S>) {
    let f = Arc::new(Fixture::new(backend, "2026-03-14T12:00:00Z").await);
    let user = Uuid::new_v4();
    f.quota.set_plan(user, &PlanId::pro()).await.unwrap();
    let tasks: Vec<_> = (0..200u32)
        .map(|i| {
            let f = Arc::clone(&f);
            tokio::spawn(async move {
                let cost = i % 4 + 1;
                match f.quota.reserve(user, cost).await.unwrap() {
                    Admission::Granted(r) => {
                        let settled = f.quota.commit(r.id, u64::from(cost) * 10).await.unwrap();
                        assert_eq!(settled, Settlement::Settled);
                        (cost, true)
                    }
                    Admission::Denied(_) => (cost, false),
                }
            })
        })
        .collect();
    let (mut granted, mut denied) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (cost, true) => granted.push(u64::from(cost)),
            (cost, false) => denied.push(u64::from(cost)),
        }
    }
    let used: u64 = granted.iter().sum();
    assert!(used <= 50, "granted {used} of 50");
    let status = f.quota.status(user).await.unwrap();
    assert_eq!(status.daily.used, used);
    assert_eq!(status.tokens.used, used * 10);
    for cost in denied {
        assert!(
            used + cost > 50,
            "a cost of {cost} was refused with {used} of 50 used"
        );
    }
}

/// 200 chat reservations and 200 generations at once for one Free user: exactly 20 and 5.
pub async fn concurrent_chat_and_generations_admit_exactly_the_limits<S: UsageStore>(
    backend: Backend<S>,
) {
    let f = Arc::new(Fixture::new(backend, "2026-03-14T12:00:00Z").await);
    let user = Uuid::new_v4();
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let f = Arc::clone(&f);
            let resource = if i % 2 == 0 {
                Resource::ChatMessage
            } else {
                Resource::Generation
            };
            tokio::spawn(async move {
                let granted = f.quota.reserve_for(user, resource, 1).await.unwrap();
                if let Admission::Granted(r) = &granted {
                    f.quota.commit(r.id, 2).await.unwrap();
                }
                (resource, granted.is_granted())
            })
        })
        .collect();
    let (mut chats, mut generations) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (Resource::ChatMessage, true) => chats += 1,
            (_, true) => generations += 1,
            _ => {}
        }
    }
    assert_eq!((chats, generations), (20, 5));
    let status = f.quota.status(user).await.unwrap();
    assert_eq!(
        (status.chat.used, status.daily.used, status.tokens.used),
        (20, 5, 50)
    );
}

/// A full day, then midnight and 200 reservations at once: the window resets once, so
/// exactly 5 are granted.
pub async fn midnight_resets_once_under_concurrency<S: UsageStore>(backend: Backend<S>) {
    let f = Arc::new(Fixture::new(backend, "2026-03-14T23:59:59Z").await);
    let user = Uuid::new_v4();
    f.use_up(user, 5).await;
    f.clock.set(t("2026-03-15T00:00:00Z"));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.quota.reserve(user, 1).await.unwrap().is_granted() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 5);
    let status = f.quota.status(user).await.unwrap();
    assert_eq!(
        (status.daily.used, status.tokens.used),
        (5, 50),
        "yesterday's tokens stay in the month"
    );
}
