//! The behavioural suite: every test body takes a fresh store, and `backend_suite!` turns
//! them into `#[tokio::test]`s for one backend.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use appforge_core::{Clock, ManualClock};
use appforge_quota::{
    Admission, AnyUsageStore, Error, LimitKind, Plan, PlanCatalogue, PlanId, Quota, RequestLimits,
    Reservation, ReservationId, ReservationState, Resource, Settlement,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Keeps a backend's resources (a temporary file, a test database) alive.
pub(crate) type Guard = Box<dyn Any + Send + Sync>;

/// A quota over a fresh store, with a manual clock and no burst limits unless asked.
pub(crate) struct Fixture {
    pub(crate) quota: Quota,
    pub(crate) clock: ManualClock,
    pub(crate) _guard: Guard,
}

pub(crate) const TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The default plans plus `capped` (3 a month, no daily limit) and `metered` (1,000 tokens a
/// month) for the month and token tests.
pub(crate) fn catalogue() -> PlanCatalogue {
    let mut capped = Plan::new("capped", "Capped");
    capped.monthly_generations = Some(3);
    let mut metered = Plan::new("metered", "Metered");
    metered.monthly_tokens = Some(1_000);
    PlanCatalogue::default()
        .with_plan(capped)
        .unwrap()
        .with_plan(metered)
        .unwrap()
}

impl Fixture {
    pub(crate) async fn new(store: (AnyUsageStore, Guard), now: &str) -> Self {
        let clock = ManualClock::at(t(now));
        let quota = Quota::builder(store.0)
            .catalogue(catalogue())
            .clock(clock.shared())
            .reservation_timeout(TIMEOUT)
            .burst_limits(false)
            .build()
            .unwrap();
        Self {
            quota,
            clock,
            _guard: store.1,
        }
    }

    pub(crate) async fn grant(&self, user: Uuid) -> Reservation {
        match self.quota.reserve(user, 1).await.unwrap() {
            Admission::Granted(r) => r,
            Admission::Denied(s) => panic!("expected a grant, got {s:?}"),
        }
    }

    pub(crate) async fn deny(&self, user: Uuid) -> appforge_quota::QuotaStatus {
        match self.quota.reserve(user, 1).await.unwrap() {
            Admission::Granted(r) => panic!("expected a denial, got {r:?}"),
            Admission::Denied(s) => s,
        }
    }

    pub(crate) async fn chat(&self, user: Uuid) -> Admission {
        self.quota
            .reserve_for(user, Resource::ChatMessage, 1)
            .await
            .unwrap()
    }

    pub(crate) async fn use_up(&self, user: Uuid, n: usize) {
        for _ in 0..n {
            let r = self.grant(user).await;
            self.quota.commit(r.id, 10).await.unwrap();
        }
    }
}

pub(crate) async fn free_plan_admits_five_a_day(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let r = f.grant(user).await;
    assert_eq!((r.plan.as_str(), r.priority, r.cost), ("free", 0, 1));
    assert_eq!(r.expires_at, t("2026-03-14T12:10:00Z"));
    f.quota.commit(r.id, 10).await.unwrap();
    f.use_up(user, 4).await;
    let status = f.deny(user).await;
    assert_eq!(status.denied_by, Some(LimitKind::Daily));
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

pub(crate) async fn pro_admits_fifty_and_team_is_unlimited(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
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

pub(crate) async fn commit_and_refund_are_idempotent(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
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

pub(crate) async fn tokens_are_counted_and_limited(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
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
        (status.tokens.used, status.tokens.remaining),
        (1_100, Some(0))
    );
    assert_eq!(status.tokens.resets_at, t("2026-04-01T00:00:00Z"));
    f.clock.set(t("2026-04-01T00:00:00Z"));
    let r = f.grant(user).await;
    f.quota.commit(r.id, 1).await.unwrap();
    let usage = f.quota.store_usage(user).await;
    assert_eq!((usage.monthly_tokens, usage.total_tokens), (1, 1_101));
}

pub(crate) async fn days_roll_over_at_midnight_utc(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T23:59:59.999Z").await;
    let user = Uuid::new_v4();
    f.use_up(user, 5).await;
    let status = f.deny(user).await;
    assert_eq!(status.retry_after, Some(Duration::from_millis(1)));
    assert_eq!(status.retry_after_secs(), Some(1));
    f.clock.advance(Duration::from_millis(1));
    let r = f.grant(user).await;
    f.quota.commit(r.id, 1).await.unwrap();
    let status = f.quota.status(user).await.unwrap();
    assert_eq!(status.daily.used, 1);
    assert_eq!(status.daily.resets_at, t("2026-03-16T00:00:00Z"));
}

pub(crate) async fn days_follow_the_deployment_offset(store: (AnyUsageStore, Guard)) {
    let clock = ManualClock::at(t("2026-03-14T21:59:59.999Z"));
    let offset = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    let quota = Quota::builder(store.0)
        .clock(clock.shared())
        .windows(appforge_quota::Windows::with_offset(offset))
        .burst_limits(false)
        .build()
        .unwrap();
    let user = Uuid::new_v4();
    for _ in 0..5 {
        assert!(quota.reserve(user, 1).await.unwrap().is_granted());
    }
    let Admission::Denied(status) = quota.reserve(user, 1).await.unwrap() else {
        panic!("the sixth is refused");
    };
    assert_eq!(
        status.daily.resets_at,
        t("2026-03-14T22:00:00Z"),
        "local midnight"
    );
    clock.advance(Duration::from_millis(1));
    assert!(quota.reserve(user, 1).await.unwrap().is_granted());
    assert_eq!(quota.status(user).await.unwrap().daily.used, 1);
    drop(store.1);
}

pub(crate) async fn windows_reset_once(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T20:00:00Z").await;
    let user = Uuid::new_v4();
    f.use_up(user, 5).await;
    f.clock.set(t("2026-03-15T00:00:00Z"));
    f.use_up(user, 3).await;
    // Later the same day: the counter keeps its 3; a second reset would admit 5 more.
    f.clock.set(t("2026-03-15T23:59:59.999Z"));
    f.quota.reset_expired().await.unwrap();
    f.use_up(user, 2).await;
    assert_eq!(f.deny(user).await.daily.used, 5);
    // A clock stepping back does not reset either.
    f.clock.set(t("2026-03-15T10:00:00Z"));
    assert_eq!(f.deny(user).await.daily.used, 5);
}

pub(crate) async fn months_end_on_their_last_day(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2027-01-31T23:59:59.999Z").await;
    let user = Uuid::new_v4();
    f.quota
        .set_plan(user, &PlanId::new("capped"))
        .await
        .unwrap();
    f.use_up(user, 3).await;
    let status = f.deny(user).await;
    assert_eq!(status.denied_by, Some(LimitKind::Monthly));
    assert_eq!(status.monthly.resets_at, t("2027-02-01T00:00:00Z"));
    f.clock.set(t("2027-02-01T00:00:00Z"));
    f.use_up(user, 3).await;
    assert_eq!(
        f.deny(user).await.monthly.resets_at,
        t("2027-03-01T00:00:00Z")
    );

    // A leap year: February 29 belongs to February.
    f.clock.set(t("2028-02-28T23:59:59.999Z"));
    f.use_up(user, 2).await;
    f.clock.set(t("2028-02-29T00:00:00Z"));
    f.use_up(user, 1).await;
    let status = f.deny(user).await;
    assert_eq!(
        (status.monthly.used, status.monthly.resets_at),
        (3, t("2028-03-01T00:00:00Z"))
    );
    f.clock.set(t("2028-02-29T23:59:59.999Z"));
    f.deny(user).await;
    f.clock.set(t("2028-03-01T00:00:00Z"));
    f.use_up(user, 3).await;
}

pub(crate) async fn plan_changes_keep_the_window(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
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

pub(crate) async fn expired_reservations_are_released(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(f.grant(user).await);
    }
    f.deny(user).await;
    f.clock.advance(TIMEOUT - Duration::from_millis(1));
    f.deny(user).await;
    f.clock.advance(Duration::from_millis(1));
    // Released lazily by the next reservation.
    let fresh = f.grant(user).await;
    assert_eq!(f.quota.status(user).await.unwrap().daily.used, 1);
    let err = f.quota.commit(held[0].id, 100).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadySettled {
                state: ReservationState::Expired,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        f.quota.refund(held[1].id).await.unwrap(),
        Settlement::AlreadyReleased
    );
    assert_eq!(f.quota.status(user).await.unwrap().tokens.used, 0);

    // Released by the sweep, for reports.
    let other = Uuid::new_v4();
    f.grant(other).await;
    f.grant(other).await;
    f.clock.advance(TIMEOUT);
    let report = f.quota.reset_expired().await.unwrap();
    assert_eq!(report.released, 3, "two of `other` and `fresh`");
    assert_eq!(f.quota.status(other).await.unwrap().daily.used, 0);
    assert_eq!(
        f.quota.refund(fresh.id).await.unwrap(),
        Settlement::AlreadyReleased
    );
}

pub(crate) async fn a_refund_after_rollover_leaves_the_new_window(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T23:59:00Z").await;
    let user = Uuid::new_v4();
    let old = f.grant(user).await;
    f.clock.set(t("2026-03-15T00:01:00Z"));
    f.use_up(user, 5).await;
    assert_eq!(f.quota.refund(old.id).await.unwrap(), Settlement::Settled);
    assert_eq!(
        f.deny(user).await.daily.used,
        5,
        "yesterday's refund is not today's slot"
    );
}

pub(crate) async fn billing_periods_are_monthly_windows(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-20T12:00:00Z").await;
    let user = Uuid::new_v4();
    f.quota
        .set_plan(user, &PlanId::new("capped"))
        .await
        .unwrap();
    f.use_up(user, 3).await;
    assert_eq!(
        f.deny(user).await.monthly.resets_at,
        t("2026-04-01T00:00:00Z")
    );
    // A new subscription starts a new monthly window now.
    let (start, end) = (t("2026-03-20T13:00:00Z"), t("2026-04-20T13:00:00Z"));
    f.quota.set_billing_period(user, start, end).await.unwrap();
    f.clock.set(t("2026-03-20T13:00:00Z"));
    f.use_up(user, 3).await;
    let status = f.deny(user).await;
    assert_eq!(status.monthly.resets_at, end);
    // The calendar month turning changes nothing inside the period.
    f.clock.set(t("2026-04-05T00:00:00Z"));
    f.deny(user).await;
    // The period lapses without renewal: calendar months again, from the period's end.
    f.clock.set(t("2026-04-20T13:00:00Z"));
    f.use_up(user, 3).await;
    assert_eq!(
        f.deny(user).await.monthly.resets_at,
        t("2026-05-01T00:00:00Z")
    );
    assert!(matches!(
        f.quota.set_billing_period(user, end, start).await,
        Err(Error::InvalidArgument(_))
    ));
    f.quota.clear_billing_period(user).await.unwrap();
    f.clock.set(t("2026-05-01T00:00:00Z"));
    f.use_up(user, 3).await;
}

pub(crate) async fn plans_round_trip_through_the_store(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
    f.quota.save_plans().await.unwrap();
    let mut pro = Plan::pro();
    pro.daily_chat_messages = Some(321);
    pro.max_running_jobs = Some(4);
    pro.request_limits.history_messages = 7;
    pro.request_limits.output_tokens = 1_234;
    pro.stripe_price_id_monthly = Some("price_pro_monthly".into());
    pro.price_yearly = Some(10_000);
    pro.features.push("export".into());
    pro.burst = Some(appforge_quota::Burst::new(12, Duration::from_secs(60), 4).unwrap());
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
pub(crate) async fn chat_messages_have_their_own_daily_count(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
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

/// A refund gives back what it held, chat or generation, and may record the tokens the work
/// spent: once, however often it is repeated.
pub(crate) async fn refunds_give_back_the_count_and_may_keep_tokens(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let generation = f.grant(user).await;
    let Admission::Granted(chat) = f.chat(user).await else {
        panic!("granted");
    };
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (1, 1));
    assert_eq!(
        f.quota
            .refund_with_tokens(generation.id, 700)
            .await
            .unwrap(),
        Settlement::Settled
    );
    assert_eq!(
        f.quota
            .refund_with_tokens(generation.id, 700)
            .await
            .unwrap(),
        Settlement::AlreadyDone
    );
    assert_eq!(f.quota.refund(chat.id).await.unwrap(), Settlement::Settled);
    let status = f.quota.status(user).await.unwrap();
    assert_eq!(
        (status.daily.used, status.chat.used, status.tokens.used),
        (0, 0, 700),
        "counts given back, the spent tokens kept once"
    );
    assert!(matches!(
        f.quota.commit(generation.id, 1).await,
        Err(Error::AlreadySettled {
            state: ReservationState::Refunded,
            ..
        })
    ));
    assert_eq!(f.quota.store_usage(user).await.total_tokens, 700);
}

/// Tokens of attempts that are retried are recorded while the reservation stays pending; the
/// commit adds the last attempt's.
pub(crate) async fn tokens_of_each_attempt_are_recorded(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let r = f.grant(user).await;
    f.quota.record_tokens(r.id, 100).await.unwrap();
    f.quota.record_tokens(r.id, 50).await.unwrap();
    f.quota.record_tokens(r.id, 0).await.unwrap();
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.tokens.used), (1, 150));
    assert_eq!(f.quota.commit(r.id, 25).await.unwrap(), Settlement::Settled);
    assert_eq!(f.quota.status(user).await.unwrap().tokens.used, 175);
    assert!(matches!(
        f.quota.record_tokens(r.id, 10).await,
        Err(Error::AlreadySettled {
            state: ReservationState::Committed,
            ..
        })
    ));
    assert!(
        f.quota
            .record_tokens(ReservationId::new(), 10)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(f.quota.status(user).await.unwrap().tokens.used, 175);
}

/// A held reservation lives as long as its work: the timeout, the sweep and the user's next
/// reservations leave it pending, and it settles when the work ends.
pub(crate) async fn held_reservations_never_expire(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let jobs: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let mut held = Vec::new();
    for job in &jobs {
        let r = f.grant(user).await;
        f.quota.hold(r.id, *job).await.unwrap();
        f.quota.hold(r.id, *job).await.unwrap();
        held.push(r);
    }
    let started = f.clock.now();
    f.clock.advance(TIMEOUT * 3);
    assert_eq!(f.quota.reset_expired().await.unwrap().released, 0);
    let status = f.deny(user).await;
    assert_eq!(status.daily.used, 5, "the held slots stay taken");

    let listed = f.quota.held(f.clock.now(), None, 100).await.unwrap();
    let mut holders: Vec<Uuid> = listed.iter().map(|h| h.holder).collect();
    holders.sort_unstable();
    let mut expected = jobs.clone();
    expected.sort_unstable();
    assert_eq!(holders, expected);
    assert!(listed.iter().all(|h| h.user == user
        && h.resource == Resource::Generation
        && h.cost == 1
        && h.created_at == started));
    assert!(f.quota.held(started, None, 100).await.unwrap().is_empty());
    let page = f.quota.held(f.clock.now(), None, 2).await.unwrap();
    let rest = f
        .quota
        .held(f.clock.now(), Some(page[1].id), 100)
        .await
        .unwrap();
    assert_eq!((page.len(), rest.len()), (2, 3));
    assert!(rest.iter().all(|h| h.id > page[1].id));

    // The work ends: settled as usual.
    assert_eq!(
        f.quota.commit(held[0].id, 40).await.unwrap(),
        Settlement::Settled
    );
    assert_eq!(
        f.quota.refund(held[1].id).await.unwrap(),
        Settlement::Settled
    );
    assert_eq!(
        f.quota.held(f.clock.now(), None, 100).await.unwrap().len(),
        3
    );
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.tokens.used), (4, 40));

    // An unheld reservation still expires, and cannot be held once it has.
    let other = Uuid::new_v4();
    let late = f.grant(other).await;
    f.clock.advance(TIMEOUT);
    assert!(matches!(
        f.quota.hold(late.id, Uuid::new_v4()).await,
        Err(Error::AlreadySettled {
            state: ReservationState::Expired,
            ..
        })
    ));
    assert_eq!(f.quota.status(other).await.unwrap().daily.used, 0);
    assert!(
        f.quota
            .hold(ReservationId::new(), Uuid::new_v4())
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// An expired chat reservation gives back a chat message, not a generation.
pub(crate) async fn expired_chat_messages_are_released(store: (AnyUsageStore, Guard)) {
    let f = Fixture::new(store, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let generation = f.grant(user).await;
    f.quota.hold(generation.id, Uuid::new_v4()).await.unwrap();
    for _ in 0..3 {
        assert!(f.chat(user).await.is_granted());
    }
    f.clock.advance(TIMEOUT);
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (1, 0));
    for _ in 0..2 {
        assert!(f.chat(user).await.is_granted());
    }
    f.clock.advance(TIMEOUT);
    assert_eq!(f.quota.reset_expired().await.unwrap().released, 2);
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (1, 0));
}

/// 200 chat reservations and 200 generations at once for one Free user: exactly 20 and 5.
pub(crate) async fn concurrent_chat_and_generations_admit_exactly_the_limits(
    store: (AnyUsageStore, Guard),
) {
    let f = Arc::new(Fixture::new(store, "2026-03-14T12:00:00Z").await);
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

pub(crate) async fn burst_limits_refuse_with_a_wait(store: (AnyUsageStore, Guard)) {
    let mut rapid = Plan::new("rapid", "Rapid");
    // Two at once, then one an hour: the test never waits that long.
    rapid.burst = Some(appforge_quota::Burst::new(1, Duration::from_secs(3600), 2).unwrap());
    let clock = ManualClock::at(t("2026-03-14T12:00:00Z"));
    let quota = Quota::builder(store.0)
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
    drop(store.1);
}

/// 1,000 reservations at once for one Free user: exactly 5 granted.
pub(crate) async fn concurrent_reservations_admit_exactly_the_limit(store: (AnyUsageStore, Guard)) {
    let f = Arc::new(Fixture::new(store, "2026-03-14T12:00:00Z").await);
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
pub(crate) async fn concurrent_mixed_costs_and_commits_add_up(store: (AnyUsageStore, Guard)) {
    let f = Arc::new(Fixture::new(store, "2026-03-14T12:00:00Z").await);
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

/// A full day, then midnight and 200 reservations at once: the window resets once, so
/// exactly 5 are granted.
pub(crate) async fn midnight_resets_once_under_concurrency(store: (AnyUsageStore, Guard)) {
    let f = Arc::new(Fixture::new(store, "2026-03-14T23:59:59Z").await);
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

/// Test helpers on [`Quota`].
pub(crate) trait QuotaExt {
    async fn store_usage(&self, user: Uuid) -> appforge_quota::Usage;
}

impl QuotaExt for Quota {
    async fn store_usage(&self, user: Uuid) -> appforge_quota::Usage {
        use appforge_quota::{StoreContext, UsageStore, Windows};
        let plans = self.catalogue();
        let cx = StoreContext::new(self.clock().now(), Windows::utc(), &plans);
        self.store().usage(cx, user).await.unwrap()
    }
}

/// Instantiates the suite for one backend: `backend_suite!(store)` where `store` is an async
/// fn returning `Some((AnyUsageStore, Guard))`, or `None` when the backend is not available
/// here (the test then returns at once, after the backend said why), optionally followed by
/// attributes for every test.
#[macro_export]
macro_rules! backend_suite {
    ($store:path $(, #[$attr:meta])*) => {
        $crate::backend_suite!(@tests $store [$(#[$attr])*]
            free_plan_admits_five_a_day
            pro_admits_fifty_and_team_is_unlimited
            commit_and_refund_are_idempotent
            tokens_are_counted_and_limited
            days_roll_over_at_midnight_utc
            days_follow_the_deployment_offset
            windows_reset_once
            months_end_on_their_last_day
            plan_changes_keep_the_window
            expired_reservations_are_released
            a_refund_after_rollover_leaves_the_new_window
            billing_periods_are_monthly_windows
            plans_round_trip_through_the_store
            burst_limits_refuse_with_a_wait
            chat_messages_have_their_own_daily_count
            refunds_give_back_the_count_and_may_keep_tokens
            tokens_of_each_attempt_are_recorded
            held_reservations_never_expire
            expired_chat_messages_are_released
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn concurrent_reservations_admit_exactly_the_limit() {
            let Some(store) = $store().await else { return; };
            $crate::suite::concurrent_reservations_admit_exactly_the_limit(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn concurrent_mixed_costs_and_commits_add_up() {
            let Some(store) = $store().await else { return; };
            $crate::suite::concurrent_mixed_costs_and_commits_add_up(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn concurrent_chat_and_generations_admit_exactly_the_limits() {
            let Some(store) = $store().await else { return; };
            $crate::suite::concurrent_chat_and_generations_admit_exactly_the_limits(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn midnight_resets_once_under_concurrency() {
            let Some(store) = $store().await else { return; };
            $crate::suite::midnight_resets_once_under_concurrency(store).await;
        }
    };
    (@tests $store:path [$($attrs:tt)*]) => {};
    (@tests $store:path [$($attrs:tt)*] $name:ident $($rest:ident)*) => {
        #[tokio::test]
        $($attrs)*
        async fn $name() {
            let Some(store) = $store().await else { return; };
            $crate::suite::$name(store).await;
        }
        $crate::backend_suite!(@tests $store [$($attrs)*] $($rest)*);
    };
}
