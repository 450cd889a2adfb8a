//! The cases of the suite.

use std::collections::BTreeMap;

use crate::{
    AnalyticsEvent, Error, EventStore, EventType, GenerationCounts, Metrics, MetricsReport,
    Recorder, TokenCounts,
};
use appforge_core::ManualClock;
use uuid::Uuid;

use super::Backend;
use super::data::{self, A, B, C, D, at, day};

async fn report<S: EventStore + Clone>(
    store: &S,
    now: &str,
    from: &str,
    to: &str,
) -> MetricsReport {
    let clock = ManualClock::at(at(now));
    Metrics::new(store.clone())
        .clock(clock.shared())
        .report(day(from), day(to))
        .await
        .expect("a report")
}

fn counts(requested: u64, completed: u64, failed: u64, cancelled: u64) -> GenerationCounts {
    GenerationCounts {
        requested,
        completed,
        failed,
        cancelled,
    }
}

/// Round trips events in half open ranges.
pub async fn round_trips_events_in_half_open_ranges<S: EventStore>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    let props = serde_json::json!({"kind": "full_app", "nested": {"list": [1, 2.5, "x"]}});
    let first = AnalyticsEvent::new(A, EventType::SignInSeen, at("2026-03-01T00:00:00.123456Z"))
        .with_properties(props.clone());
    let custom = AnalyticsEvent::new(
        B,
        EventType::Other("app_published".into()),
        at("2026-03-01T12:00:00Z"),
    );
    let at_end = AnalyticsEvent::new(C, EventType::QuotaDenied, at("2026-03-02T00:00:00Z"));
    store
        .insert_batch(&[at_end.clone(), custom.clone(), first.clone()])
        .await
        .unwrap();

    let read = store
        .events_between(
            at("2026-03-01T00:00:00.123456Z"),
            at("2026-03-02T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        read,
        vec![first.clone(), custom],
        "oldest first, end excluded"
    );
    let after_first = store
        .events_between(
            at("2026-03-01T00:00:00.123457Z"),
            at("2026-03-03T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(after_first.len(), 2, "start included to the microsecond");
    assert!(store.insert_batch(&[]).await.is_ok());
}

/// Inserting twice keeps one row.
pub async fn inserting_twice_keeps_one_row<S: EventStore>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    let events: Vec<AnalyticsEvent> = (0..5)
        .map(|i| {
            AnalyticsEvent::new(
                A,
                EventType::SignInSeen,
                at("2026-03-01T10:00:00Z") + chrono::Duration::seconds(i),
            )
        })
        .collect();
    store.insert_batch(&events).await.unwrap();
    store.insert_batch(&events[2..]).await.unwrap();
    let read = store
        .events_between(at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(read, events);
}

/// Stores large batches.
pub async fn stores_large_batches<S: EventStore>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    let start = at("2026-03-01T00:00:00Z");
    let events: Vec<AnalyticsEvent> = (0..2500)
        .map(|i| {
            AnalyticsEvent::new(
                Uuid::from_u128(i % 7),
                EventType::SignInSeen,
                start + chrono::Duration::milliseconds(i64::try_from(i).unwrap()),
            )
        })
        .collect();
    store.insert_batch(&events).await.unwrap();
    let read = store
        .events_between(start, at("2026-03-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(read.len(), 2500);
    assert_eq!(read, events);
}

/// First seen is the first event ever.
pub async fn first_seen_is_the_first_event_ever<S: EventStore>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    store.insert_batch(&data::cohorts()).await.unwrap();
    let found = store
        .first_seen_between(at("2026-03-02T00:00:00Z"), at("2026-03-09T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![
            (A, at("2026-03-02T08:00:00Z")),
            (B, at("2026-03-08T23:00:00Z"))
        ]
    );
}

/// Empty ranges give empty metrics.
pub async fn empty_ranges_give_empty_metrics<S: EventStore + Clone>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    store.insert_batch(&data::year_end()).await.unwrap();
    let report = report(&store, "2027-03-01T00:00:00Z", "2027-01-02", "2027-01-02").await;
    assert!(report.active.days.is_empty());
    assert_eq!(report.active.distinct_users, 0);
    assert!(report.generations.days.is_empty());
    assert_eq!(report.generations.totals, GenerationCounts::default());
    assert_eq!(report.failures.failure_rate, 0.0);
    assert!(report.failures.top_errors.is_empty());
    assert_eq!(report.durations, None);
    assert_eq!(report.usage.cost_micro_usd, 0);
    assert!(report.usage.users.is_empty());
    assert!(report.revenue.totals.is_empty());
    assert!(report.retention.is_empty());

    // A range with days but no events: every day present, all zero.
    let quiet = report_on_empty(&store).await;
    assert_eq!(quiet.active.days.len(), 3);
    assert!(
        quiet
            .active
            .days
            .iter()
            .all(|d| d.dau == 0 && d.wau == 0 && d.mau == 0)
    );
    assert!(
        quiet
            .generations
            .days
            .iter()
            .all(|d| d.counts == GenerationCounts::default())
    );
    assert!(quiet.usage.days.iter().all(|d| d.cost_micro_usd == 0));
    assert!(quiet.revenue.days.iter().all(|d| d.amounts.is_empty()));

    let err = Metrics::new(store.clone())
        .report(day("2027-01-02"), day("2027-01-01"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRange { .. }), "{err}");
}

async fn report_on_empty<S: EventStore + Clone>(store: &S) -> MetricsReport {
    report(store, "2030-06-01T00:00:00Z", "2030-01-01", "2030-01-04").await
}

/// Year end metrics have known answers.
pub async fn year_end_metrics_have_known_answers<S: EventStore + Clone>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    store.insert_batch(&data::year_end()).await.unwrap();
    let r = report(&store, "2027-03-01T00:00:00Z", "2026-12-28", "2027-01-04").await;

    let days: Vec<String> = r.active.days.iter().map(|d| d.day.to_string()).collect();
    assert_eq!(days.first().map(String::as_str), Some("2026-12-28"));
    assert_eq!(days.last().map(String::as_str), Some("2027-01-03"));
    let dau: Vec<u64> = r.active.days.iter().map(|d| d.dau).collect();
    let wau: Vec<u64> = r.active.days.iter().map(|d| d.wau).collect();
    let mau: Vec<u64> = r.active.days.iter().map(|d| d.mau).collect();
    assert_eq!(dau, [1, 0, 0, 1, 1, 3, 2]);
    assert_eq!(wau, [2, 2, 2, 3, 3, 4, 4]);
    // E (seen on December 1st only) leaves the 30-day window on December 31st.
    assert_eq!(mau, [3, 3, 3, 3, 3, 4, 4]);
    assert_eq!(r.active.distinct_users, 4);

    let per_day: Vec<GenerationCounts> = r.generations.days.iter().map(|d| d.counts).collect();
    assert_eq!(
        per_day,
        [
            counts(1, 1, 0, 0),
            counts(0, 0, 0, 0),
            counts(0, 0, 0, 0),
            counts(1, 0, 0, 0),
            counts(1, 1, 1, 0),
            counts(2, 0, 2, 0),
            counts(1, 0, 0, 1),
        ]
    );
    assert_eq!(r.generations.totals, counts(6, 2, 3, 1));
    let by_kind: BTreeMap<&str, GenerationCounts> = r
        .generations
        .by_kind
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        by_kind,
        BTreeMap::from([
            ("full_app", counts(4, 2, 2, 0)),
            ("modify", counts(1, 0, 1, 0)),
            ("plan_phases", counts(1, 0, 0, 1)),
        ])
    );
    let by_plan: BTreeMap<&str, GenerationCounts> = r
        .generations
        .by_plan
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        by_plan,
        BTreeMap::from([
            ("free", counts(2, 1, 1, 0)),
            ("pro", counts(2, 1, 1, 0)),
            ("team", counts(2, 0, 1, 1)),
        ])
    );
    let jan_first = &r.generations.days[4];
    assert_eq!(jan_first.by_kind["modify"], counts(0, 0, 1, 0));
    assert_eq!(jan_first.by_kind["full_app"], counts(1, 1, 0, 0));

    assert_eq!(r.failures.completed, 2);
    assert_eq!(r.failures.failed, 3);
    assert_eq!(r.failures.failure_rate, 0.6);
    let top: Vec<(&str, u64)> = r
        .failures
        .top_errors
        .iter()
        .map(|e| (e.category.as_str(), e.count))
        .collect();
    assert_eq!(top, [("timeout", 2), ("overloaded", 1)]);

    let durations = r.durations.expect("two completed generations");
    assert_eq!(
        (durations.count, durations.p50_ms, durations.p95_ms),
        (2, 1000, 3000)
    );
    assert_eq!(durations.mean_ms, 2000.0);

    // Sonnet: 1000 in x $3 + 2000 out x $15 = 33 000 micro-dollars. Haiku 4.5 on January 1st:
    // 600 in x $1 + 100 out x $5 = 1100. The local model has no price.
    let cost: Vec<u64> = r.usage.days.iter().map(|d| d.cost_micro_usd).collect();
    assert_eq!(cost, [33_000, 0, 0, 0, 1100, 0, 0]);
    assert_eq!(r.usage.days[5].tokens.input, 1000);
    assert_eq!(
        r.usage.tokens,
        TokenCounts {
            input: 2600,
            output: 2100,
            cache_write: 0,
            cache_write_1h: 0,
            cache_read: 0
        }
    );
    assert_eq!(r.usage.cost_micro_usd, 34_100);
    assert_eq!(r.usage.unpriced_models, ["local-llama"]);
    assert!(r.usage.free_models.is_empty());
    let users: Vec<(Uuid, u64, u64)> = r
        .usage
        .users
        .iter()
        .map(|u| (u.user_id, u.tokens.total(), u.cost_micro_usd))
        .collect();
    assert_eq!(users, [(A, 3000, 33_000), (B, 700, 1100), (D, 1000, 0)]);

    assert_eq!(
        r.revenue.totals,
        BTreeMap::from([("eur".to_owned(), 500), ("usd".to_owned(), 800)])
    );
    assert_eq!(
        r.revenue.days[5].amounts,
        BTreeMap::from([("eur".to_owned(), 500), ("usd".to_owned(), 1000)])
    );
    assert_eq!(
        r.revenue.days[6].amounts,
        BTreeMap::from([("usd".to_owned(), -200)])
    );

    // B (first seen December 31st) and D (January 2nd) sign up in the week of December 28th;
    // A, C and E were seen before the range.
    assert_eq!(r.retention.len(), 1);
    let cohort = &r.retention[0];
    assert_eq!(cohort.week_start, day("2026-12-28"));
    assert_eq!(cohort.users, 2);
    assert_eq!(
        (cohort.day7.eligible, cohort.day7.active, cohort.day7.rate),
        (2, 1, Some(0.5))
    );
    assert_eq!(
        (
            cohort.day30.eligible,
            cohort.day30.active,
            cohort.day30.rate
        ),
        (2, 1, Some(0.5))
    );
}

/// Retention by signup week.
pub async fn retention_by_signup_week<S: EventStore + Clone>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    store.insert_batch(&data::cohorts()).await.unwrap();
    let later = report(&store, "2026-05-01T00:00:00Z", "2026-03-02", "2026-03-16").await;
    let rows: Vec<_> = later
        .retention
        .iter()
        .map(|c| (c.week_start.to_string(), c.users, c.day7.rate, c.day30.rate))
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-03-02".to_owned(), 2, Some(0.5), Some(1.0)),
            ("2026-03-09".to_owned(), 1, Some(1.0), Some(0.0)),
        ]
    );
    // D was active in the range but signed up before it.
    assert_eq!(later.active.distinct_users, 4);

    // On March 16th only days 7 that have ended count: A's (9th) and B's (15th), not C's.
    let early = report(&store, "2026-03-16T12:00:00Z", "2026-03-02", "2026-03-16").await;
    let first = &early.retention[0];
    assert_eq!(
        (first.day7.eligible, first.day7.active, first.day7.rate),
        (2, 1, Some(0.5))
    );
    assert_eq!((first.day30.eligible, first.day30.rate), (0, None));
    let second = &early.retention[1];
    assert_eq!((second.day7.eligible, second.day7.rate), (0, None));
}

/// A user with one event.
pub async fn a_user_with_one_event<S: EventStore + Clone>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    // The last second of January in a non-leap year: in March 1st's 30-day window, not 2nd's.
    let only = AnalyticsEvent::new(D, EventType::SignInSeen, at("2027-01-31T23:59:59Z"));
    store.insert_batch(&[only]).await.unwrap();
    let r = report(&store, "2027-06-01T00:00:00Z", "2027-01-31", "2027-02-01").await;
    assert_eq!(r.active.days[0].dau, 1);
    assert_eq!(r.active.days[0].mau, 1);
    assert_eq!(r.retention.len(), 1);
    assert_eq!(r.retention[0].week_start, day("2027-01-25"));
    assert_eq!(r.retention[0].day7.rate, Some(0.0));
    assert_eq!(r.retention[0].day30.rate, Some(0.0));
    assert_eq!(r.durations, None);

    let march = report(&store, "2027-06-01T00:00:00Z", "2027-03-01", "2027-03-03").await;
    let mau: Vec<u64> = march.active.days.iter().map(|d| d.mau).collect();
    assert_eq!(mau, [1, 0]);
    assert_eq!(march.active.distinct_users, 0);
    assert!(march.retention.is_empty());
}

/// Recorder writes through the store.
pub async fn recorder_writes_through_the_store<S: EventStore + Clone>(backend: Backend<S>) {
    let (store, _guard) = backend.into_parts();
    let recorder = Recorder::builder(store.clone())
        .batch_size(100)
        .spawn()
        .unwrap();
    let start = at("2026-03-01T00:00:00Z");
    for i in 0..1000 {
        let when = start + chrono::Duration::seconds(i);
        assert!(recorder.record(AnalyticsEvent::new(A, EventType::SignInSeen, when)));
    }
    recorder.flush().await.unwrap();
    let stats = recorder.stats();
    assert_eq!(
        (stats.recorded, stats.written, stats.dropped()),
        (1000, 1000, 0)
    );
    let read = store
        .events_between(start, at("2026-03-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(read.len(), 1000);
    recorder.shutdown().await;
}
