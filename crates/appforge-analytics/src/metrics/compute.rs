//! The metrics as pure functions of events, so that every store gives the same answers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use uuid::Uuid;

use super::report::{
    ActiveUsers, Cohort, DailyActive, DailyGenerations, DailyRevenue, DailyUsage, DurationStats,
    ErrorCount, Failures, GenerationCounts, Generations, RetentionPoint, Revenue, Usage, UserUsage,
};
use crate::{AnalyticsEvent, EventType, PriceTable, TokenCounts};

const UNKNOWN: &str = "unknown";

pub(crate) fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

/// Every day of `[from, to)`.
pub(crate) fn days(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days().take_while(|d| *d < to).collect()
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// DAU, WAU and MAU for each day of `[from, to)`; `events` must reach back 29 days before
/// `from`.
pub(crate) fn active_users(
    events: &[AnalyticsEvent],
    from: NaiveDate,
    to: NaiveDate,
) -> ActiveUsers {
    let mut by_day: HashMap<NaiveDate, HashSet<Uuid>> = HashMap::new();
    for event in events {
        by_day
            .entry(day_of(event.created_at))
            .or_default()
            .insert(event.user_id);
    }
    let distinct = |first: NaiveDate, last: NaiveDate| -> HashSet<Uuid> {
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter_map(|d| by_day.get(&d))
            .flatten()
            .copied()
            .collect()
    };
    let back =
        |day: NaiveDate, n: u64| day.checked_sub_days(Days::new(n)).unwrap_or(NaiveDate::MIN);
    let days = days(from, to)
        .into_iter()
        .map(|day| DailyActive {
            day,
            dau: count(by_day.get(&day).map_or(0, HashSet::len)),
            wau: count(distinct(back(day, 6), day).len()),
            mau: count(distinct(back(day, 29), day).len()),
        })
        .collect();
    let distinct_users = match to.pred_opt() {
        Some(last) if from < to => count(distinct(from, last).len()),
        _ => 0,
    };
    ActiveUsers {
        days,
        distinct_users,
    }
}

fn bump(counts: &mut GenerationCounts, event_type: &EventType) {
    match event_type {
        EventType::GenerationRequested => counts.requested += 1,
        EventType::GenerationCompleted => counts.completed += 1,
        EventType::GenerationFailed => counts.failed += 1,
        EventType::GenerationCancelled => counts.cancelled += 1,
        _ => {}
    }
}

fn is_generation(event_type: &EventType) -> bool {
    matches!(
        event_type,
        EventType::GenerationRequested
            | EventType::GenerationCompleted
            | EventType::GenerationFailed
            | EventType::GenerationCancelled
    )
}

/// Generation counts per day, kind and plan; `events` lie in the range.
pub(crate) fn generations(
    events: &[AnalyticsEvent],
    from: NaiveDate,
    to: NaiveDate,
) -> Generations {
    let mut per_day: BTreeMap<NaiveDate, DailyGenerations> = days(from, to)
        .into_iter()
        .map(|day| {
            let empty = DailyGenerations {
                day,
                counts: GenerationCounts::default(),
                by_kind: BTreeMap::new(),
                by_plan: BTreeMap::new(),
            };
            (day, empty)
        })
        .collect();
    let mut totals = GenerationCounts::default();
    let mut by_kind: BTreeMap<String, GenerationCounts> = BTreeMap::new();
    let mut by_plan: BTreeMap<String, GenerationCounts> = BTreeMap::new();
    for event in events.iter().filter(|e| is_generation(&e.event_type)) {
        let Some(daily) = per_day.get_mut(&day_of(event.created_at)) else {
            continue;
        };
        let facts = event.generation_facts();
        let kind = facts.kind.unwrap_or_else(|| UNKNOWN.to_owned());
        let plan = facts.plan.unwrap_or_else(|| UNKNOWN.to_owned());
        let ty = &event.event_type;
        bump(&mut daily.counts, ty);
        bump(daily.by_kind.entry(kind.clone()).or_default(), ty);
        bump(daily.by_plan.entry(plan.clone()).or_default(), ty);
        bump(&mut totals, ty);
        bump(by_kind.entry(kind).or_default(), ty);
        bump(by_plan.entry(plan).or_default(), ty);
    }
    Generations {
        days: per_day.into_values().collect(),
        totals,
        by_kind,
        by_plan,
    }
}

/// Failure rate and the `top` most frequent error categories.
pub(crate) fn failures(events: &[AnalyticsEvent], top: usize) -> Failures {
    let mut completed = 0u64;
    let mut failed = 0u64;
    let mut categories: BTreeMap<String, u64> = BTreeMap::new();
    for event in events {
        match event.event_type {
            EventType::GenerationCompleted => completed += 1,
            EventType::GenerationFailed => {
                failed += 1;
                let category = event
                    .generation_facts()
                    .error_category
                    .unwrap_or_else(|| UNKNOWN.to_owned());
                *categories.entry(category).or_default() += 1;
            }
            _ => {}
        }
    }
    let ended = completed + failed;
    #[allow(clippy::cast_precision_loss)] // a ratio
    let failure_rate = if ended == 0 {
        0.0
    } else {
        failed as f64 / ended as f64
    };
    let mut top_errors: Vec<ErrorCount> = categories
        .into_iter()
        .map(|(category, count)| ErrorCount { category, count })
        .collect();
    top_errors.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.category.cmp(&b.category))
    });
    top_errors.truncate(top);
    Failures {
        completed,
        failed,
        failure_rate,
        top_errors,
    }
}

/// The nearest-rank percentile `p` (1..=100) of sorted, non-empty `values`.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Duration statistics of completed generations.
pub(crate) fn durations(events: &[AnalyticsEvent]) -> Option<DurationStats> {
    let mut values: Vec<u64> = events
        .iter()
        .filter(|e| e.event_type == EventType::GenerationCompleted)
        .filter_map(|e| e.generation_facts().duration_ms)
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let sum: u128 = values.iter().map(|v| u128::from(*v)).sum();
    #[allow(clippy::cast_precision_loss)] // a mean
    let mean_ms = sum as f64 / values.len() as f64;
    Some(DurationStats {
        count: count(values.len()),
        p50_ms: percentile(&values, 50),
        p95_ms: percentile(&values, 95),
        mean_ms,
    })
}

/// Tokens by model, and their cost, for one group (a day, a user, everything). The cost is
/// added event by event: a long-context tier is chosen by one request's prompt, never by a
/// group's sum.
#[derive(Default)]
struct ByModel {
    tokens: BTreeMap<String, TokenCounts>,
    cost: u64,
}

impl ByModel {
    fn add(&mut self, model: &str, tokens: &TokenCounts, cost: u64) {
        self.tokens.entry(model.to_owned()).or_default().add(tokens);
        self.cost = self.cost.saturating_add(cost);
    }

    fn tokens(&self) -> TokenCounts {
        let mut all = TokenCounts::default();
        for tokens in self.tokens.values() {
            all.add(tokens);
        }
        all
    }
}

/// Tokens and cost per day and per user of completed and failed generations.
pub(crate) fn usage(
    events: &[AnalyticsEvent],
    from: NaiveDate,
    to: NaiveDate,
    prices: &PriceTable,
) -> Usage {
    let mut per_day: BTreeMap<NaiveDate, ByModel> = days(from, to)
        .into_iter()
        .map(|d| (d, ByModel::default()))
        .collect();
    let mut per_user: BTreeMap<Uuid, ByModel> = BTreeMap::new();
    let mut all = ByModel::default();
    for event in events {
        if !matches!(
            event.event_type,
            EventType::GenerationCompleted | EventType::GenerationFailed
        ) {
            continue;
        }
        let Some(day) = per_day.get_mut(&day_of(event.created_at)) else {
            continue;
        };
        let facts = event.generation_facts();
        let tokens = facts.tokens();
        if tokens.total() == 0 {
            continue;
        }
        let model = facts.model.as_deref().unwrap_or(UNKNOWN);
        let cost = prices
            .price_for(model)
            .map_or(0, |price| price.cost_micro_usd(&tokens));
        day.add(model, &tokens, cost);
        per_user
            .entry(event.user_id)
            .or_default()
            .add(model, &tokens, cost);
        all.add(model, &tokens, cost);
    }
    let days = per_day
        .into_iter()
        .map(|(day, group)| DailyUsage {
            day,
            tokens: group.tokens(),
            cost_micro_usd: group.cost,
        })
        .collect();
    let mut users: Vec<UserUsage> = per_user
        .into_iter()
        .map(|(user_id, group)| UserUsage {
            user_id,
            tokens: group.tokens(),
            cost_micro_usd: group.cost,
        })
        .collect();
    users.sort_by(|a, b| {
        b.cost_micro_usd
            .cmp(&a.cost_micro_usd)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    let unpriced_models = all
        .tokens
        .keys()
        .filter(|model| prices.price_for(model).is_none())
        .cloned()
        .collect();
    let free_models = all
        .tokens
        .keys()
        .filter(|model| prices.is_free(model))
        .cloned()
        .collect();
    Usage {
        days,
        users,
        free_models,
        tokens: all.tokens(),
        cost_micro_usd: all.cost,
        unpriced_models,
    }
}

/// Revenue per day and currency from `revenue_recorded` events.
pub(crate) fn revenue(events: &[AnalyticsEvent], from: NaiveDate, to: NaiveDate) -> Revenue {
    let mut per_day: BTreeMap<NaiveDate, BTreeMap<String, i64>> = days(from, to)
        .into_iter()
        .map(|d| (d, BTreeMap::new()))
        .collect();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for event in events {
        if event.event_type != EventType::RevenueRecorded {
            continue;
        }
        let Some(day) = per_day.get_mut(&day_of(event.created_at)) else {
            continue;
        };
        let Some(facts) = event.revenue_facts() else {
            tracing::debug!(event = %event.id, "revenue event without amount or currency");
            continue;
        };
        let currency = facts.currency.to_ascii_lowercase();
        let amount = day.entry(currency.clone()).or_default();
        *amount = amount.saturating_add(facts.amount_cents);
        let total = totals.entry(currency).or_default();
        *total = total.saturating_add(facts.amount_cents);
    }
    Revenue {
        days: per_day
            .into_iter()
            .map(|(day, amounts)| DailyRevenue { day, amounts })
            .collect(),
        totals,
    }
}

fn point(eligible: u64, active: u64) -> RetentionPoint {
    #[allow(clippy::cast_precision_loss)] // a ratio
    let rate = (eligible > 0).then(|| active as f64 / eligible as f64);
    RetentionPoint {
        eligible,
        active,
        rate,
    }
}

/// Day-7 and day-30 retention of each signup-week cohort.
///
/// `first_seen` holds the users whose first event lies in the range; `events` hold their
/// events up to at least 30 days after the range; day N counts once it has ended before
/// `today`.
pub(crate) fn retention(
    first_seen: &[(Uuid, DateTime<Utc>)],
    events: &[AnalyticsEvent],
    today: NaiveDate,
) -> Vec<Cohort> {
    let mut active_days: HashMap<Uuid, BTreeSet<NaiveDate>> = HashMap::new();
    for event in events {
        active_days
            .entry(event.user_id)
            .or_default()
            .insert(day_of(event.created_at));
    }
    // week start -> [users, day7 eligible, day7 active, day30 eligible, day30 active]
    let mut cohorts: BTreeMap<NaiveDate, [u64; 5]> = BTreeMap::new();
    for (user, first_at) in first_seen {
        let signup = day_of(*first_at);
        let week_start = signup
            .checked_sub_days(Days::new(u64::from(
                signup.weekday().num_days_from_monday(),
            )))
            .unwrap_or(signup);
        let cohort = cohorts.entry(week_start).or_default();
        cohort[0] += 1;
        let seen = active_days.get(user);
        for (offset, slot) in [(7, 1), (30, 3)] {
            let Some(day_n) = signup.checked_add_days(Days::new(offset)) else {
                continue;
            };
            if day_n < today {
                cohort[slot] += 1;
                if seen.is_some_and(|days| days.contains(&day_n)) {
                    cohort[slot + 1] += 1;
                }
            }
        }
    }
    cohorts
        .into_iter()
        .map(|(week_start, [users, e7, a7, e30, a30])| Cohort {
            week_start,
            users,
            day7: point(e7, a7),
            day30: point(e30, a30),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&values, 50), 10);
        assert_eq!(percentile(&values, 95), 19);
        assert_eq!(percentile(&[7], 50), 7);
        assert_eq!(percentile(&[7], 95), 7);
        assert_eq!(percentile(&[1, 2], 50), 1);
        assert_eq!(percentile(&[1, 2], 95), 2);
    }

    #[test]
    fn days_cover_half_open_ranges() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert!(days(d("2026-03-01"), d("2026-03-01")).is_empty());
        assert_eq!(
            days(d("2026-12-31"), d("2027-01-02")),
            vec![d("2026-12-31"), d("2027-01-01")]
        );
    }
}
