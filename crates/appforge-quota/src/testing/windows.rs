//! Windows: days, deployment offsets, calendar months and billing periods, each reset once.

use std::time::Duration;

use appforge_core::ManualClock;
use uuid::Uuid;

use super::{Backend, Fixture, t};
use crate::{Admission, Error, LimitKind, PlanId, Quota, Settlement, UsageStore};

/// Days roll over at midnight UTC.
pub async fn days_roll_over_at_midnight_utc<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T23:59:59.999Z").await;
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

/// Days follow the deployment offset.
pub async fn days_follow_the_deployment_offset<S: UsageStore>(backend: Backend<S>) {
    let (store, guard) = backend.into_parts();
    let clock = ManualClock::at(t("2026-03-14T21:59:59.999Z"));
    let offset = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    let quota = Quota::builder_with_store(store)
        .clock(clock.shared())
        .windows(crate::Windows::with_offset(offset))
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
    drop(guard);
}

/// Windows reset once.
pub async fn windows_reset_once<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T20:00:00Z").await;
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

/// Months end on their last day.
pub async fn months_end_on_their_last_day<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2027-01-31T23:59:59.999Z").await;
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

/// A refund after rollover leaves the new window.
pub async fn a_refund_after_rollover_leaves_the_new_window<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T23:59:00Z").await;
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

/// Billing periods are monthly windows.
pub async fn billing_periods_are_monthly_windows<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-20T12:00:00Z").await;
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
