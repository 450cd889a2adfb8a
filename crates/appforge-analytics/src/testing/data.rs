//! Hand-built event sets with known answers.

use crate::{AnalyticsEvent, EventType, GenerationFacts, RevenueFacts};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

pub(super) const A: Uuid = Uuid::from_u128(0xa);
pub(super) const B: Uuid = Uuid::from_u128(0xb);
pub(super) const C: Uuid = Uuid::from_u128(0xc);
pub(super) const D: Uuid = Uuid::from_u128(0xd);
pub(super) const E: Uuid = Uuid::from_u128(0xe);

pub(super) fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

pub(super) fn day(s: &str) -> NaiveDate {
    s.parse().expect("a date")
}

fn ev(user: Uuid, ty: EventType, when: &str) -> AnalyticsEvent {
    AnalyticsEvent::new(user, ty, at(when))
}

fn generation(user: Uuid, ty: EventType, facts: &GenerationFacts, when: &str) -> AnalyticsEvent {
    AnalyticsEvent::generation(user, ty, facts, at(when))
}

/// The year-end set: the range `[2026-12-28, 2027-01-04)` (Monday to Sunday) crosses a month
/// and a year; events before and after it feed WAU / MAU and retention.
pub(super) fn year_end() -> Vec<AnalyticsEvent> {
    use EventType::*;
    let full_pro = GenerationFacts::new("full_app", "pro");
    let modify_free = GenerationFacts::new("modify", "free");
    let full_free = GenerationFacts::new("full_app", "free");
    let full_team = GenerationFacts::new("full_app", "team");
    let phases_team = GenerationFacts::new("plan_phases", "team");
    vec![
        // Before the range: E is seen once, 27 days before the range; C the evening before.
        ev(E, SignInSeen, "2026-12-01T12:00:00Z"),
        ev(A, SignInSeen, "2026-12-01T10:00:00Z"),
        ev(C, SignInSeen, "2026-12-27T23:59:59Z"),
        // Monday 28: A generates with Sonnet.
        generation(A, GenerationRequested, &full_pro, "2026-12-28T09:00:00Z"),
        generation(
            A,
            GenerationCompleted,
            &full_pro.clone().duration_ms(1000).usage(
                "claude-sonnet-4-5-20250929",
                1000,
                2000,
                0,
                0,
            ),
            "2026-12-28T09:01:00Z",
        ),
        // New Year's Eve, last microsecond: B's first event; the failure lands in 2027.
        generation(
            B,
            GenerationRequested,
            &modify_free,
            "2026-12-31T23:59:59.999999Z",
        ),
        generation(
            B,
            GenerationFailed,
            &modify_free
                .clone()
                .usage("claude-haiku-4-5", 500, 0, 0, 0)
                .error_category("timeout"),
            "2027-01-01T00:00:00Z",
        ),
        generation(B, GenerationRequested, &full_free, "2027-01-01T10:00:00Z"),
        generation(
            B,
            GenerationCompleted,
            &full_free
                .clone()
                .duration_ms(3000)
                .usage("claude-haiku-4-5", 100, 100, 0, 0),
            "2027-01-01T10:01:00Z",
        ),
        // Saturday 2: C and D fail; D's model has no price. A is paid (two currencies).
        generation(C, GenerationRequested, &full_team, "2027-01-02T12:00:00Z"),
        generation(
            C,
            GenerationFailed,
            &full_team.clone().error_category("overloaded"),
            "2027-01-02T12:05:00Z",
        ),
        generation(D, GenerationRequested, &full_pro, "2027-01-02T08:00:00Z"),
        generation(
            D,
            GenerationFailed,
            &full_pro
                .clone()
                .usage("local-llama", 1000, 0, 0, 0)
                .error_category("timeout"),
            "2027-01-02T08:10:00Z",
        ),
        AnalyticsEvent::revenue(A, &revenue(1000, "usd"), at("2027-01-02T14:00:00Z")),
        AnalyticsEvent::revenue(A, &revenue(500, "EUR"), at("2027-01-02T15:00:00Z")),
        // Sunday 3: C cancels; A is refunded in part.
        generation(C, GenerationRequested, &phases_team, "2027-01-03T23:00:00Z"),
        generation(C, GenerationCancelled, &phases_team, "2027-01-03T23:30:00Z"),
        AnalyticsEvent::revenue(A, &revenue(-200, "usd"), at("2027-01-03T16:00:00Z")),
        // After the range: exactly at its end, B's day 7, D's day 30.
        ev(D, SignInSeen, "2027-01-04T00:00:00Z"),
        ev(B, SignInSeen, "2027-01-07T15:00:00Z"),
        ev(D, SignInSeen, "2027-02-01T00:00:00Z"),
    ]
}

fn revenue(amount_cents: i64, currency: &str) -> RevenueFacts {
    RevenueFacts {
        amount_cents,
        currency: currency.into(),
        invoice_id: None,
    }
}

/// Two signup weeks for retention: users A, B sign up in the week of Monday 2026-03-02, C in
/// the week of Monday 2026-03-09.
pub(super) fn cohorts() -> Vec<AnalyticsEvent> {
    use EventType::*;
    vec![
        ev(A, SignInSeen, "2026-03-02T08:00:00Z"),
        ev(A, SignInSeen, "2026-03-09T08:00:00Z"), // day 7
        ev(A, SignInSeen, "2026-04-01T08:00:00Z"), // day 30
        ev(B, SignInSeen, "2026-03-08T23:00:00Z"), // Sunday
        ev(B, SignInSeen, "2026-03-14T23:59:59Z"), // day 6: not day 7
        ev(B, SignInSeen, "2026-04-07T00:00:00Z"), // day 30
        ev(C, SignInSeen, "2026-03-09T00:00:00Z"), // Monday
        ev(C, SignInSeen, "2026-03-16T12:00:00Z"), // day 7
        // D was seen before the range: not in any cohort, though active in it.
        ev(D, SignInSeen, "2026-02-20T08:00:00Z"),
        ev(D, SignInSeen, "2026-03-03T08:00:00Z"),
    ]
}
