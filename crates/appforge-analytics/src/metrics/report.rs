use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use uuid::Uuid;

use crate::TokenCounts;

/// The key metrics over the UTC days `[from, to)`, from [`Metrics::report`](crate::Metrics::report).
///
/// Day series hold every day of the range, empty days included.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MetricsReport {
    /// The first day of the range.
    pub from: NaiveDate,
    /// The day after the last day of the range.
    pub to: NaiveDate,
    /// Active users.
    pub active: ActiveUsers,
    /// Generation counts.
    pub generations: Generations,
    /// Failure rate and categories.
    pub failures: Failures,
    /// Generation time of completed generations; `None` when none carried a duration.
    pub durations: Option<DurationStats>,
    /// Tokens and cost.
    pub usage: Usage,
    /// Revenue from `revenue_recorded` events.
    pub revenue: Revenue,
    /// Retention of the users who first appeared in the range, by signup week.
    pub retention: Vec<Cohort>,
}

/// Active users: any event of a user counts as activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ActiveUsers {
    /// One entry per day of the range.
    pub days: Vec<DailyActive>,
    /// Distinct users active at any time in the range.
    pub distinct_users: u64,
}

/// Active users on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DailyActive {
    /// The UTC day.
    pub day: NaiveDate,
    /// Distinct users active that day.
    pub dau: u64,
    /// Distinct users active in the 7 days ending that day.
    pub wau: u64,
    /// Distinct users active in the 30 days ending that day.
    pub mau: u64,
}

/// Counts of generation events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GenerationCounts {
    /// `generation_requested` events.
    pub requested: u64,
    /// `generation_completed` events.
    pub completed: u64,
    /// `generation_failed` events.
    pub failed: u64,
    /// `generation_cancelled` events.
    pub cancelled: u64,
}

/// Generations over the range. A kind or plan that an event does not name counts as
/// `"unknown"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Generations {
    /// One entry per day of the range.
    pub days: Vec<DailyGenerations>,
    /// All days together.
    pub totals: GenerationCounts,
    /// All days together, by job kind.
    pub by_kind: BTreeMap<String, GenerationCounts>,
    /// All days together, by plan.
    pub by_plan: BTreeMap<String, GenerationCounts>,
}

/// Generations on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DailyGenerations {
    /// The UTC day.
    pub day: NaiveDate,
    /// All kinds and plans.
    pub counts: GenerationCounts,
    /// By job kind.
    pub by_kind: BTreeMap<String, GenerationCounts>,
    /// By plan.
    pub by_plan: BTreeMap<String, GenerationCounts>,
}

/// How generations ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Failures {
    /// Completed generations.
    pub completed: u64,
    /// Failed generations.
    pub failed: u64,
    /// `failed / (completed + failed)`, 0 when there were none; cancellations do not count.
    pub failure_rate: f64,
    /// The most frequent error categories, most frequent first (ties by name); a failure
    /// without a category counts as `"unknown"`.
    pub top_errors: Vec<ErrorCount>,
}

/// How often one error category occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErrorCount {
    /// The category.
    pub category: String,
    /// Failures in it.
    pub count: u64,
}

/// Generation time of completed generations, in milliseconds (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DurationStats {
    /// How many durations were measured.
    pub count: u64,
    /// The median.
    pub p50_ms: u64,
    /// The 95th percentile.
    pub p95_ms: u64,
    /// The mean.
    pub mean_ms: f64,
}

/// Tokens and cost of completed and failed generations. Costs are in micro-dollars
/// (USD / 1 000 000), priced per model and rounded down per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Usage {
    /// One entry per day of the range.
    pub days: Vec<DailyUsage>,
    /// One entry per user with usage, highest cost first (ties by user id).
    pub users: Vec<UserUsage>,
    /// All tokens in the range.
    pub tokens: TokenCounts,
    /// The cost of all tokens in the range.
    pub cost_micro_usd: u64,
    /// Models that had tokens but no price (their tokens cost 0 here).
    pub unpriced_models: Vec<String>,
    /// Models that had tokens and are free on purpose (the offline demo, a local model priced
    /// [`ModelPrice::FREE`](crate::ModelPrice::FREE)).
    pub free_models: Vec<String>,
}

/// Tokens and cost on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DailyUsage {
    /// The UTC day.
    pub day: NaiveDate,
    /// Tokens that day.
    pub tokens: TokenCounts,
    /// Their cost in micro-dollars.
    pub cost_micro_usd: u64,
}

/// Tokens and cost of one user over the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserUsage {
    /// The user.
    pub user_id: Uuid,
    /// The user's tokens.
    pub tokens: TokenCounts,
    /// Their cost in micro-dollars.
    pub cost_micro_usd: u64,
}

/// Revenue by currency (minor units, lowercase currency codes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Revenue {
    /// One entry per day of the range.
    pub days: Vec<DailyRevenue>,
    /// All days together.
    pub totals: BTreeMap<String, i64>,
}

/// Revenue on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DailyRevenue {
    /// The UTC day.
    pub day: NaiveDate,
    /// Amount by currency.
    pub amounts: BTreeMap<String, i64>,
}

/// The users whose first event fell in one week (Monday to Sunday, UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Cohort {
    /// The Monday the week starts on.
    pub week_start: NaiveDate,
    /// Users in the cohort.
    pub users: u64,
    /// Activity on the 7th day after each user's first day.
    pub day7: RetentionPoint,
    /// Activity on the 30th day after each user's first day.
    pub day30: RetentionPoint,
}

/// Retention on day N after signup.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RetentionPoint {
    /// Users whose day N has ended (by the metrics' clock).
    pub eligible: u64,
    /// Eligible users with an event on their day N.
    pub active: u64,
    /// `active / eligible`, `None` when nobody is eligible yet.
    pub rate: Option<f64>,
}
