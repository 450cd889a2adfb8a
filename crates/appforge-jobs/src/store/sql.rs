//! What the SQL stores share: the finish write's parameters and error explanations.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Finish, FinishRequest, Lease};
use crate::{Error, Job, Result, TokenUsage, Transition};

/// The table recording this crate's applied migrations.
pub(crate) const MIGRATIONS_TABLE: &str = "_appforge_jobs_migrations";

/// A stored count or duration (never negative in a column this crate wrote) as the API's
/// unsigned type.
///
/// # Errors
///
/// [`Error::Corrupt`] when the stored value is negative or does not fit.
pub(crate) fn stored<T: TryFrom<i64>>(column: &str, value: impl Into<i64>) -> Result<T> {
    let value = value.into();
    T::try_from(value).map_err(|_| Error::Corrupt(format!("{column} out of range: {value}")))
}

/// [`stored`] for a nullable column.
pub(crate) fn stored_opt<T: TryFrom<i64>>(column: &str, value: Option<i64>) -> Result<Option<T>> {
    value.map(|v| stored(column, v)).transpose()
}

/// An unsigned API value as a column's signed type (`INTEGER`, `int4`, `int8`).
///
/// # Errors
///
/// [`Error::InvalidInput`] when it does not fit the column.
pub(crate) fn column<T: TryFrom<u64>>(what: &str, value: impl Into<u64>) -> Result<T> {
    let value = value.into();
    T::try_from(value)
        .map_err(|_| Error::InvalidInput(format!("{what} {value} is too large to store")))
}

/// The columns of a job row, in `FromRow` order.
macro_rules! job_columns {
    () => {
        "id, user_id, kind, priority, status, payload, result, error_message, attempt, \
         max_attempts, input_tokens, output_tokens, duration_ms, created_at, run_at, started_at, \
         completed_at, lease_owner, lease_expires_at, progress, cancel_requested, dedupe_key, \
         org_id"
    };
}
pub(crate) use job_columns;

/// The rows of `owner`'s space in a `WHERE` clause, with the owner's id as parameter `$p`
/// (`?p` on SQLite): a user's personal jobs (not their org jobs), or an org's jobs whoever
/// submitted them. Each reads its own history index.
macro_rules! owner_scope {
    (user, $p:literal) => {
        concat!("user_id = ", $p, " AND org_id IS NULL")
    };
    (org, $p:literal) => {
        concat!("org_id = ", $p)
    };
}
pub(crate) use owner_scope;

/// The values one guarded finish write sets; every finish is the same `UPDATE` shape.
#[derive(Debug)]
pub(crate) struct FinishParams {
    pub(crate) status: &'static str,
    pub(crate) result: Option<Value>,
    pub(crate) input_tokens: Option<i64>,
    pub(crate) output_tokens: Option<i64>,
    /// Whether to overwrite `error_message` with `error` (possibly with NULL).
    pub(crate) set_error: bool,
    pub(crate) error: Option<String>,
    pub(crate) run_at: Option<DateTime<Utc>>,
    /// Subtracted from `attempt` (1 for a release, which gives the attempt back).
    pub(crate) attempt_back: i32,
    pub(crate) set_duration: bool,
    pub(crate) completed_at: Option<DateTime<Utc>>,
    pub(crate) now: DateTime<Utc>,
}

impl FinishParams {
    pub(crate) fn of(request: &FinishRequest) -> Result<Self> {
        let transition = match request.finish {
            Finish::Complete { .. } => Transition::Complete,
            Finish::Retry { .. } => Transition::Retry,
            Finish::Fail { .. } => Transition::Fail,
            Finish::Cancel { .. } => Transition::Cancel,
            Finish::Release | Finish::Defer { .. } => Transition::Release,
        };
        let status = transition.target();
        let now = request.now;
        let mut params = Self {
            status: status.as_str(),
            result: None,
            input_tokens: None,
            output_tokens: None,
            set_error: false,
            error: None,
            run_at: None,
            attempt_back: 0,
            set_duration: true,
            completed_at: status.is_terminal().then_some(now),
            now,
        };
        match &request.finish {
            Finish::Complete {
                result,
                input_tokens,
                output_tokens,
            } => {
                params.result = Some(result.clone());
                params.input_tokens = Some(column("input tokens", *input_tokens)?);
                params.output_tokens = Some(column("output tokens", *output_tokens)?);
                params.set_error = true;
            }
            Finish::Retry { run_at, error } => {
                params.run_at = Some(*run_at);
                params.set_error = true;
                params.error = Some(error.clone());
            }
            Finish::Fail { error, tokens } => {
                params.set_error = true;
                params.error = Some(error.clone());
                params.set_tokens(*tokens)?;
            }
            Finish::Cancel { tokens } => params.set_tokens(*tokens)?,
            Finish::Release => {
                params.run_at = Some(now);
                params.attempt_back = 1;
                params.set_duration = false;
            }
            Finish::Defer { run_at } => {
                params.run_at = Some(*run_at);
                params.attempt_back = 1;
                params.set_duration = false;
            }
        }
        Ok(params)
    }
}

impl FinishParams {
    fn set_tokens(&mut self, tokens: Option<TokenUsage>) -> Result<()> {
        if let Some(tokens) = tokens {
            self.input_tokens = Some(column("input tokens", tokens.input)?);
            self.output_tokens = Some(column("output tokens", tokens.output)?);
        }
        Ok(())
    }
}

/// Why a guarded write about `lease` matched no row: the job is gone, or the lease is.
pub(crate) fn lease_error(lease: &Lease, exists: bool) -> Error {
    if exists {
        Error::LeaseLost {
            id: lease.job_id,
            attempt: lease.attempt,
        }
    } else {
        Error::NotFound(lease.job_id)
    }
}

/// The finish requests that rescue expired jobs.
pub(crate) fn rescue_requests(expired: &[Job], now: DateTime<Utc>) -> Vec<FinishRequest> {
    expired
        .iter()
        .filter_map(|job| {
            let lease = job.lease()?;
            let (finish, _) = super::memory::rescue_finish(job, now);
            Some(FinishRequest { lease, finish, now })
        })
        .collect()
}

pub(crate) fn json_text(value: &Value) -> String {
    value.to_string()
}

pub(crate) fn parse_json(text: &str) -> crate::Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("stored JSON is invalid: {e}")))
}
