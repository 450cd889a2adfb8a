//! `GET /api/jobs`: the space's jobs as summaries ([`JobSummary`]: no result, the prompt and
//! error cut short). One job's routes (`GET|DELETE /api/jobs/{id}`, its events as SSE) are the
//! library's router's ([`super::generate::router`]), which gives it whole ([`JobView`]).

use std::str::FromStr;

use appforge_jobs::{Cursor, Job, JobFilter, JobStatus, PageRequest};
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::routes::Space;
use crate::state::AppState;

pub(crate) use appforge::axum::JobView;
use appforge::axum::attachment_ids;

/// A job as a list shows it: no `result` (a whole app), the prompt and the error cut to
/// [`SUMMARY_CHARS`](crate::routes::apps::SUMMARY_CHARS) characters.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobSummary {
    id: String,
    /// `full_app`, `modify`, `plan_phases`, ...
    kind: String,
    /// `pending`, `processing`, `completed`, `failed` or `cancelled`.
    #[schemars(with = "String")]
    status: JobStatus,
    priority: i16,
    /// The prompt, cut to 280 characters (with an ellipsis).
    prompt: Option<String>,
    /// The error, cut to 280 characters (with an ellipsis).
    error: Option<String>,
    attempt: u32,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    duration_ms: Option<u64>,
    #[schemars(with = "String", extend("format" = "date-time"))]
    created_at: chrono::DateTime<chrono::Utc>,
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The ids of the uploads the request attached (`/api/uploads/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<String>,
}

impl From<&Job> for JobSummary {
    fn from(job: &Job) -> Self {
        use crate::routes::apps::summary;
        Self {
            id: job.id.to_string(),
            kind: job.kind.clone(),
            status: job.status,
            priority: job.priority.0,
            prompt: job
                .payload
                .get("prompt")
                .and_then(Value::as_str)
                .map(summary),
            error: job.error.as_deref().map(summary),
            attempt: job.attempt,
            input_tokens: job.input_tokens,
            output_tokens: job.output_tokens,
            duration_ms: job.duration_ms,
            created_at: job.created_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            attachments: attachment_ids(job),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    status: Option<JobStatus>,
    kind: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The filter and page a job listing asks for (`status`, `kind`, `limit`, `cursor`); 400 for a
/// limit outside 1 to 100 or a cursor that does not parse.
pub(crate) fn filter_and_page(
    status: Option<JobStatus>,
    kind: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<(JobFilter, PageRequest), ApiError> {
    let mut filter = JobFilter::default();
    if let Some(status) = status {
        filter = filter.status(status);
    }
    if let Some(kind) = kind {
        filter = filter.kind(kind);
    }
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 100"));
    }
    let page = match cursor {
        Some(raw) => PageRequest::after(
            limit,
            Cursor::from_str(&raw).map_err(|_| ApiError::bad_request("invalid `cursor`"))?,
        ),
        None => PageRequest::first(limit),
    };
    Ok((filter, page))
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobList {
    /// The page's jobs.
    items: Vec<JobSummary>,
    /// The cursor of the next page (`?cursor=`), `null` on the last.
    next_cursor: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    space: Space,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<JobList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let (filter, page) = filter_and_page(query.status, query.kind, query.limit, query.cursor)?;
    let page = state
        .queue()
        .list(space.owner, &filter, &page)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(JobList {
        items: page.items.iter().map(JobSummary::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_summary_has_no_result_and_a_short_prompt() {
        let prompt = "p".repeat(10_000);
        let job: Job = serde_json::from_value(json!({
            "id": appforge_jobs::JobId::new(),
            "user_id": uuid::Uuid::new_v4(),
            "kind": "full_app",
            "status": "completed",
            "priority": 0,
            "payload": { "prompt": prompt },
            "result": { "files": [{ "path": "a", "content": "x".repeat(100_000) }] },
            "error": "e".repeat(5_000),
            "attempt": 1,
            "max_attempts": 3,
            "created_at": chrono::Utc::now(),
            "run_at": chrono::Utc::now(),
            "cancel_requested": false,
        }))
        .unwrap();
        let summary = serde_json::to_value(JobSummary::from(&job)).unwrap();
        assert!(summary.get("result").is_none(), "{summary}");
        let shown = summary["prompt"].as_str().unwrap();
        assert_eq!(
            shown.chars().count(),
            crate::routes::apps::SUMMARY_CHARS + 1
        );
        assert!(shown.ends_with('…'));
        assert!(summary["error"].as_str().unwrap().len() < 1_000);
        // The job's own route still gives it whole.
        let whole = serde_json::to_value(JobView::from(&job)).unwrap();
        assert_eq!(whole["prompt"].as_str().unwrap().len(), 10_000);
        assert!(whole["result"]["files"].is_array());
    }
}
