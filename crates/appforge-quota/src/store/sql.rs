//! What the SQL stores share: plan rows and number conversions.

use std::time::Duration;

use crate::plan::{Burst, Plan, PlanId, RequestLimits};
use crate::{Error, Result};

/// The migration table of this crate, so that several crates share one database.
pub(crate) const MIGRATIONS_TABLE: &str = "_appforge_quota_migrations";

/// A `pricing_plans` row, with every number read as `BIGINT` and `features` as JSON text.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PlanRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) price_monthly: Option<i64>,
    pub(crate) price_yearly: Option<i64>,
    pub(crate) daily_limit: Option<i64>,
    pub(crate) monthly_limit: Option<i64>,
    pub(crate) features: Option<String>,
    pub(crate) stripe_price_id_monthly: Option<String>,
    pub(crate) stripe_price_id_yearly: Option<String>,
    pub(crate) is_active: Option<bool>,
    pub(crate) monthly_token_limit: Option<i64>,
    pub(crate) burst_requests: Option<i64>,
    pub(crate) burst_period_ms: Option<i64>,
    pub(crate) burst_size: Option<i64>,
    pub(crate) priority: i64,
    pub(crate) daily_chat_limit: Option<i64>,
    pub(crate) max_running_jobs: Option<i64>,
    pub(crate) request_limits: Option<String>,
    pub(crate) storage_limit_bytes: Option<i64>,
}

fn corrupt(plan: &str, what: &str) -> Error {
    Error::Corrupt(format!("pricing plan {plan}: {what}"))
}

fn opt<T: TryFrom<i64>>(plan: &str, column: &str, v: Option<i64>) -> Result<Option<T>> {
    v.map(|v| T::try_from(v).map_err(|_| corrupt(plan, &format!("{column} out of range ({v})"))))
        .transpose()
}

impl PlanRow {
    pub(crate) fn into_plan(self) -> Result<Plan> {
        let id = self.id.as_str();
        let features = match self.features.as_deref() {
            None | Some("") | Some("null") => Vec::new(),
            Some(json) => serde_json::from_str(json)
                .map_err(|e| corrupt(id, &format!("features are not a JSON array of text: {e}")))?,
        };
        let burst = match (self.burst_requests, self.burst_period_ms, self.burst_size) {
            (Some(requests), Some(period), Some(size)) => {
                let requests = opt::<u32>(id, "burst_requests", Some(requests))?.unwrap_or(0);
                let period = opt::<u64>(id, "burst_period_ms", Some(period))?.unwrap_or(0);
                let size = opt::<u32>(id, "burst_size", Some(size))?.unwrap_or(0);
                Some(
                    Burst::new(requests, Duration::from_millis(period), size)
                        .map_err(|e| corrupt(id, &e.to_string()))?,
                )
            }
            (None, None, None) => None,
            _ => return Err(corrupt(id, "burst columns are partly set")),
        };
        let request_limits = match self.request_limits.as_deref() {
            None | Some("" | "null") => RequestLimits::default(),
            Some(json) => serde_json::from_str(json)
                .map_err(|e| corrupt(id, &format!("request_limits are not valid: {e}")))?,
        };
        let mut plan = Plan::new(PlanId::new(self.id.clone()), self.name);
        plan.description = self.description;
        plan.price_monthly = opt(id, "price_monthly", self.price_monthly)?;
        plan.price_yearly = opt(id, "price_yearly", self.price_yearly)?;
        plan.daily_generations = opt(id, "daily_limit", self.daily_limit)?;
        plan.monthly_generations = opt(id, "monthly_limit", self.monthly_limit)?;
        plan.monthly_tokens = opt(id, "monthly_token_limit", self.monthly_token_limit)?;
        plan.daily_chat_messages = opt(id, "daily_chat_limit", self.daily_chat_limit)?;
        plan.max_running_jobs = opt(id, "max_running_jobs", self.max_running_jobs)?;
        plan.storage_bytes = opt(id, "storage_limit_bytes", self.storage_limit_bytes)?;
        plan.request_limits = request_limits;
        plan.features = features;
        plan.stripe_price_id_monthly = self.stripe_price_id_monthly;
        plan.stripe_price_id_yearly = self.stripe_price_id_yearly;
        plan.is_active = self.is_active.unwrap_or(true);
        plan.burst = burst;
        plan.priority = i16::try_from(self.priority)
            .map_err(|_| corrupt(id, &format!("priority out of range ({})", self.priority)))?;
        Ok(plan)
    }
}

/// The `pricing_plans` values of a plan that need converting.
pub(crate) struct PlanValues {
    pub(crate) features: String,
    pub(crate) request_limits: String,
    pub(crate) token_limit: Option<i64>,
    pub(crate) burst_requests: Option<i64>,
    pub(crate) burst_period_ms: Option<i64>,
    pub(crate) burst_size: Option<i64>,
}

impl PlanValues {
    pub(crate) fn new(plan: &Plan) -> Result<Self> {
        plan.validate()?;
        let features = serde_json::to_string(&plan.features)
            .map_err(|e| Error::Config(format!("plan {}: features: {e}", plan.id)))?;
        let request_limits = serde_json::to_string(&plan.request_limits)
            .map_err(|e| Error::Config(format!("plan {}: request limits: {e}", plan.id)))?;
        let token_limit = plan
            .monthly_tokens
            .map(i64::try_from)
            .transpose()
            .map_err(|_| {
                Error::Config(format!(
                    "plan {}: monthly token limit is too large",
                    plan.id
                ))
            })?;
        let burst = plan.burst.as_ref();
        Ok(Self {
            features,
            request_limits,
            token_limit,
            burst_requests: burst.map(|b| i64::from(b.requests.get())),
            burst_period_ms: burst.map(|b| i64::try_from(b.period.as_millis()).unwrap_or(i64::MAX)),
            burst_size: burst.map(|b| i64::from(b.burst.get())),
        })
    }
}

/// A plan's storage allowance as stored.
pub(crate) fn storage_limit(plan: &Plan) -> Result<Option<i64>> {
    plan.storage_bytes
        .map(i64::try_from)
        .transpose()
        .map_err(|_| Error::Config(format!("plan {}: storage allowance is too large", plan.id)))
}

/// A stored counter back to `u64`.
pub(crate) fn count(column: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("{column} is negative ({v})")))
}

/// A counter to its stored form.
pub(crate) fn stored(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
