//! Plan limits: daily, monthly, token, chat and burst limits, plan changes, stored plans.

use std::time::Duration;

use appforge_core::ManualClock;
use uuid::Uuid;

use super::{Backend, Fixture, t};
use crate::{
    Admission, Error, LimitKind, Plan, PlanCatalogue, PlanId, Quota, RequestLimits, ReservationId,
    ReservationState, Resource, Settlement, UsageStore,
};

/// Free plan admits five a day.
pub async fn free_plan_admits_five_a_day<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let r = f.grant(user).await;
    assert_eq!((r.plan.as_str(), r.priority, r.cost), ("free", 0, 1));
    assert_eq!(r.expires_at, t("2026-03-14T12:10:00Z"));
    f.quota.commit(r.id, 10).await.unwrap();
    f.use_up(user, 4).await;
    let status = f.deny(user).await;
    assert_eq!(status.denied_by, Some(LimitKind::Daily));
    assert_eq!(
        status.denial_message(),
        "your plan's daily generation limit is reached"
    );
    assert_eq!(
        (
            status.daily.limit,
            status.daily.used,
            status.daily.remaining
        ),
        (Some(5), 5, Some(0))
    );
    assert_eq!(status.daily.resets_at, t("2026-03-15T00:00:00Z"));
    assert_eq!(status.retry_after, Some(Duration::from_secs(12 * 3600)));
    assert_eq!(status.monthly.limit, None);
    let other = Uuid::new_v4();
    f.grant(other).await;
}

/// Pro admits fifty and team is unlimited.
pub async fn pro_admits_fifty_and_team_is_unlimited<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let (pro, team) = (Uuid::new_v4(), Uuid::new_v4());
    f.quota.set_plan(pro, &PlanId::pro()).await.unwrap();
    f.quota.set_plan(team, &PlanId::team()).await.unwrap();
    f.use_up(pro, 50).await;
    assert_eq!(f.deny(pro).await.daily.limit, Some(50));
    for _ in 0..120 {
        let r = f.grant(team).await;
        assert_eq!(r.priority, 20);
        f.quota.commit(r.id, 1).await.unwrap();
    }
    let status = f.quota.status(team).await.unwrap();
    assert_eq!((status.daily.used, status.daily.remaining), (120, None));
    assert_eq!(f.quota.plan_of(team).await.unwrap().name, "Team");
}

/// Commit and refund are idempotent.
pub async fn commit_and_refund_are_idempotent<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let a = f.grant(user).await;
    let b = f.grant(user).await;
    assert_eq!(f.quota.status(user).await.unwrap().daily.used, 2);

    assert_eq!(f.quota.refund(a.id).await.unwrap(), Settlement::Settled);
    assert_eq!(f.quota.refund(a.id).await.unwrap(), Settlement::AlreadyDone);
    assert_eq!(
        f.quota.status(user).await.unwrap().daily.used,
        1,
        "a refund gives the slot back"
    );
    let err = f.quota.commit(a.id, 5).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadySettled {
                state: ReservationState::Refunded,
                ..
            }
        ),
        "{err}"
    );

    assert_eq!(f.quota.commit(b.id, 7).await.unwrap(), Settlement::Settled);
    assert_eq!(
        f.quota.commit(b.id, 7).await.unwrap(),
        Settlement::AlreadyDone
    );
    let err = f.quota.refund(b.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadySettled {
                state: ReservationState::Committed,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("reservation {} is already committed", b.id)
    );

    let status = f.quota.status(user).await.unwrap();
    assert_eq!(
        (status.daily.used, status.tokens.used),
        (1, 7),
        "tokens counted once"
    );
    let missing = ReservationId::new();
    assert!(
        matches!(f.quota.commit(missing, 1).await, Err(Error::ReservationNotFound(id)) if id == missing)
    );
    assert!(f.quota.refund(missing).await.unwrap_err().is_not_found());
}

/// Tokens are counted and limited.
pub async fn tokens_are_counted_and_limited<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    f.quota
        .set_plan(user, &PlanId::new("metered"))
        .await
        .unwrap();
    let r = f.grant(user).await;
    f.quota.commit(r.id, 600).await.unwrap();
    let r = f.grant(user).await;
    f.quota.commit(r.id, 500).await.unwrap();
    let status = f.deny(user).await;
    assert_eq!(status.denied_by, Some(LimitKind::Tokens));
    assert_eq!(
        status.denial_message(),
        "your plan's monthly token limit is reached"
    );
    assert_eq!(
        (status.tokens.used, status.tokens.remaining),
        (1_100, Some(0))
    );
    assert_eq!(status.tokens.resets_at, t("2026-04-01T00:00:00Z"));
    f.clock.set(t("2026-04-01T00:00:00Z"));
    let r = f.grant(user).await;
    f.quota.commit(r.id, 1).await.unwrap();
    let usage = f.store_usage(user).await;
    assert_eq!((usage.monthly_tokens, usage.total_tokens), (1, 1_101));
}

/// Plan changes keep the window.
pub async fn plan_changes_keep_the_window<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    f.use_up(user, 5).await;
    f.deny(user).await;
    f.quota.set_plan(user, &PlanId::pro()).await.unwrap();
    let r = f.grant(user).await;
    assert_eq!((r.plan.as_str(), r.priority), ("pro", 10));
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.daily.remaining), (6, Some(44)));
    f.quota.set_plan(user, &PlanId::free()).await.unwrap();
    let status = f.deny(user).await;
    assert_eq!((status.plan.as_str(), status.daily.used), ("free", 6));
    assert!(matches!(
        f.quota.set_plan(user, &PlanId::new("gold")).await,
        Err(Error::UnknownPlan(p)) if p.as_str() == "gold"
    ));
}

/// Plans round trip through the store.
pub async fn plans_round_trip_through_the_store<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    f.quota.save_plans().await.unwrap();
    let mut pro = Plan::pro();
    pro.daily_chat_messages = Some(321);
    pro.max_running_jobs = Some(4);
    pro.request_limits.history_messages = 7;
    pro.request_limits.output_tokens = 1_234;
    pro.stripe_price_id_monthly = Some("price_pro_monthly".into());
    pro.price_yearly = Some(10_000);
    pro.features.push("export".into());
    pro.burst = Some(crate::Burst::new(12, Duration::from_secs(60), 4).unwrap());
    f.quota.save_plan(pro.clone()).await.unwrap();
    f.quota.set_catalogue(PlanCatalogue::default());
    let loaded = f.quota.load_plans().await.unwrap();
    assert_eq!(loaded.plans().len(), 5);
    assert_eq!(loaded.get(&PlanId::pro()), Some(&pro));
    assert_eq!(
        loaded.by_stripe_price("price_pro_monthly").map(|p| &p.id),
        Some(&PlanId::pro())
    );
    assert_eq!(
        loaded.get(&PlanId::new("metered")).unwrap().monthly_tokens,
        Some(1_000)
    );
    assert_eq!(loaded.get(&PlanId::team()), Some(&Plan::team()));
    assert_eq!(loaded.get(&PlanId::free()), Some(&Plan::free()));
    assert_eq!(loaded.default_plan().id, PlanId::free());
    assert_ne!(Plan::free().request_limits, RequestLimits::default());
}

/// A Free user has 20 chat messages a day, counted apart from their 5 generations; the tokens
/// of both count in the month, and the day rolls for both at once.
pub async fn chat_messages_have_their_own_daily_count<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    for _ in 0..20 {
        let Admission::Granted(r) = f.chat(user).await else {
            panic!("within the chat limit");
        };
        assert_eq!((r.resource, r.cost), (Resource::ChatMessage, 1));
        f.quota.commit(r.id, 5).await.unwrap();
    }
    let Admission::Denied(status) = f.chat(user).await else {
        panic!("the 21st chat message of the day is refused");
    };
    assert_eq!(status.denied_by, Some(LimitKind::ChatMessages));
    assert_eq!(
        status.denial_message(),
        "your plan's daily chat message limit is reached"
    );
    assert_eq!(
        (status.chat.limit, status.chat.used, status.chat.remaining),
        (Some(20), 20, Some(0))
    );
    assert_eq!(status.retry_after, Some(Duration::from_secs(12 * 3600)));
    assert_eq!(status.window(LimitKind::ChatMessages), Some(&status.chat));
    assert_eq!((status.daily.used, status.tokens.used), (0, 100));
    // Generations are untouched by chat, and chat by generations.
    f.use_up(user, 5).await;
    f.deny(user).await;
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (5, 20));
    assert_eq!(status.tokens.used, 150);
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["chat"]["used"], 20);

    // A new day, rolled by a generation: the chat count starts again too.
    f.clock.set(t("2026-03-15T00:00:00Z"));
    f.grant(user).await;
    assert!(f.chat(user).await.is_granted());
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (1, 1));
    // And a new day rolled by a chat message.
    f.clock.set(t("2026-03-16T00:00:00Z"));
    assert!(f.chat(user).await.is_granted());
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (0, 1));

    // Team chats without a daily count.
    let team = Uuid::new_v4();
    f.quota.set_plan(team, &PlanId::team()).await.unwrap();
    for _ in 0..30 {
        assert!(f.chat(team).await.is_granted());
    }
    let status = f.quota.status(team).await.unwrap();
    assert_eq!((status.chat.used, status.chat.limit), (30, None));
}

/// Burst limits refuse with a wait.
pub async fn burst_limits_refuse_with_a_wait<S: UsageStore>(backend: Backend<S>) {
    let (store, guard) = backend.into_parts();
    let mut rapid = Plan::new("rapid", "Rapid");
    // Two at once, then one an hour: the test never waits that long.
    rapid.burst = Some(crate::Burst::new(1, Duration::from_secs(3600), 2).unwrap());
    let clock = ManualClock::at(t("2026-03-14T12:00:00Z"));
    let quota = Quota::builder_with_store(store)
        .catalogue(PlanCatalogue::new(vec![Plan::free(), rapid], PlanId::free()).unwrap())
        .clock(clock.shared())
        .build()
        .unwrap();
    let user = Uuid::new_v4();
    quota.set_plan(user, &PlanId::new("rapid")).await.unwrap();
    assert!(quota.reserve(user, 1).await.unwrap().is_granted());
    assert!(quota.reserve(user, 1).await.unwrap().is_granted());
    let Admission::Denied(status) = quota.reserve(user, 1).await.unwrap() else {
        panic!("the third request of the burst is refused");
    };
    assert_eq!(status.denied_by, Some(LimitKind::Burst));
    assert_eq!(
        status.denial_message(),
        "your plan's burst limit is reached"
    );
    let wait = status.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600),
        "{wait:?}"
    );
    assert_eq!(status.daily.used, 2, "a burst denial holds nothing");
    assert!(
        quota.reserve(Uuid::new_v4(), 1).await.unwrap().is_granted(),
        "per user"
    );
    assert!(matches!(
        quota.reserve(user, 0).await,
        Err(Error::InvalidArgument(_))
    ));
    drop(guard);
}
