//! A generation job's end as an analytics event (`appforge-analytics`): its kind, plan,
//! duration, model, tokens and, for a failure, a short error category (never the message,
//! which may quote the user's or the model's text).
//!
//! Every process that runs the handlers records the same event, from the job alone, through
//! [`GenerationServiceBuilder::on_job_end`](super::GenerationServiceBuilder::on_job_end):
//!
//! ```
//! use appforge::analytics::{MemoryEventStore, Recorder};
//! use appforge::generation::analytics::finished;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let recorder = Recorder::builder(MemoryEventStore::new()).spawn()?;
//! let on_job_end = move |job: &appforge::jobs::Job| {
//!     if let Some(event) = finished(job, "claude-sonnet-5-5") {
//!         recorder.record(event);
//!     }
//! };
//! # let _ = on_job_end;
//! # Ok(()) }
//! ```

use appforge_analytics::{AnalyticsEvent, EventType, GenerationFacts};
use appforge_jobs::{Job, JobStatus};
use chrono::Utc;
use serde_json::Value;

/// The `generation_completed`, `generation_failed` or `generation_cancelled` event of a job
/// that ended (at its completion time); `None` for a job that has not.
#[must_use]
pub fn finished(job: &Job, model: &str) -> Option<AnalyticsEvent> {
    let event_type = match job.status {
        JobStatus::Completed => EventType::GenerationCompleted,
        JobStatus::Failed => EventType::GenerationFailed,
        JobStatus::Cancelled => EventType::GenerationCancelled,
        _ => return None,
    };
    let at = job.completed_at.unwrap_or_else(Utc::now);
    Some(AnalyticsEvent::generation(
        job.user_id,
        event_type,
        &facts(job, model),
        at,
    ))
}

/// Kind, plan, duration, model, tokens and (for a failure) the error category of a job. The
/// plan is the payload's (the plan the submission was admitted on), else the label of the
/// job's priority. Tokens come from the result's usage when it has them (cache tokens
/// included), else from the job's counters.
#[must_use]
pub fn facts(job: &Job, model: &str) -> GenerationFacts {
    let plan = job
        .payload
        .get("plan")
        .and_then(Value::as_str)
        .map_or_else(|| priority_label(job.priority.0), str::to_owned);
    let mut facts = GenerationFacts::new(job.kind.clone(), plan).job_id(job.id.into());
    if let Some(ms) = job.duration_ms {
        facts = facts.duration_ms(ms);
    }
    let usage = job.result.as_ref().and_then(|r| r.get("usage"));
    let number = |key: &str| usage.and_then(|u| u.get(key)).and_then(Value::as_u64);
    let input = number("inputTokens").or(job.input_tokens);
    let output = number("outputTokens").or(job.output_tokens);
    if input.is_some() || output.is_some() {
        facts = facts.usage(
            model,
            input.unwrap_or(0),
            output.unwrap_or(0),
            number("cacheCreationInputTokens").unwrap_or(0),
            number("cacheReadInputTokens").unwrap_or(0),
        );
        // The split of cache writes keeps the API's own keys inside `cacheCreation`.
        let write_1h = usage
            .and_then(|u| u.get("cacheCreation"))
            .and_then(|split| split.get("ephemeral_1h_input_tokens"))
            .and_then(Value::as_u64);
        if let Some(tokens) = write_1h {
            facts = facts.cache_write_1h(tokens);
        }
    }
    if job.status == JobStatus::Failed {
        facts = facts.error_category(error_category(job.error.as_deref().unwrap_or_default()));
    }
    facts
}

/// The built-in plans' names by queue priority (Free 0, Pro 10, Team 20); another priority
/// as its number.
#[must_use]
pub fn priority_label(priority: i16) -> String {
    match priority {
        0 => "free".into(),
        10 => "pro".into(),
        20 => "team".into(),
        other => other.to_string(),
    }
}

/// A short category for a job's error message: never the message itself, which may quote
/// user or model text.
#[must_use]
pub fn error_category(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["invalid job payload", "no handler for job kind"]) {
        "invalid_input"
    } else if has(&["timed out", "timeout", "deadline"]) {
        "timeout"
    } else if has(&["overloaded", "529"]) {
        "overloaded"
    } else if has(&["rate limit", "rate_limit", "429"]) {
        "rate_limited"
    } else if has(&["lease"]) {
        "worker_lost"
    } else if has(&["no longer takes the change", "cannot be saved"]) {
        "save_failed"
    } else if has(&["truncated", "parse", "protocol", "invalid path", "anchor"]) {
        "bad_output"
    } else if has(&["connect", "network", "interrupted", "stream"]) {
        "network"
    } else if has(&["unauthorized", "authentication", "401", "403", "permission"]) {
        "provider_auth"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use appforge_analytics::EventType;
    use appforge_jobs::{Job, JobQueue, JobStatus, MemoryJobStore, NewJob, Priority};
    use chrono::Utc;
    use serde_json::json;
    use uuid::Uuid;

    use super::{error_category, facts, finished};

    /// A `full_app` job at priority 10, as a store gives it, set to `status`.
    fn job(status: JobStatus) -> Job {
        let queue = JobQueue::new(MemoryJobStore::new());
        let user = Uuid::new_v4();
        let new = NewJob::new("full_app", user, json!({})).priority(Priority(10));
        let mut job = futures::executor::block_on(async {
            let id = queue.enqueue(new).await.unwrap().id;
            queue.get(user, id).await.unwrap()
        });
        job.status = status;
        job
    }

    #[test]
    fn error_categories_never_carry_the_message() {
        assert_eq!(
            error_category("invalid job payload: appId: bad uuid"),
            "invalid_input"
        );
        assert_eq!(
            error_category("provider request timed out after 30s"),
            "timeout"
        );
        assert_eq!(error_category("overloaded_error: Overloaded"), "overloaded");
        assert_eq!(error_category("a diary for my secret notes"), "other");
    }

    #[test]
    fn plans_are_named_by_priority() {
        assert_eq!(super::priority_label(0), "free");
        assert_eq!(super::priority_label(20), "team");
        assert_eq!(super::priority_label(7), "7");
    }

    #[test]
    fn a_finished_job_is_one_event_and_a_running_one_none() {
        assert!(finished(&job(JobStatus::Processing), "m").is_none());
        let mut failed = job(JobStatus::Failed);
        failed.error = Some("a diary for my secret notes: stream interrupted".into());
        failed.completed_at = Some(Utc::now());
        let event = finished(&failed, "m").unwrap();
        assert_eq!(event.event_type, EventType::GenerationFailed);
        assert_eq!(event.user_id, failed.user_id);
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.contains("\"network\""), "{text}");
        assert!(!text.contains("diary"), "{text}");
    }

    #[test]
    fn tokens_come_from_the_results_usage_first() {
        let mut done = job(JobStatus::Completed);
        done.input_tokens = Some(1);
        done.output_tokens = Some(2);
        done.result = Some(json!({ "usage": {
            "inputTokens": 100, "outputTokens": 200, "cacheReadInputTokens": 50,
            "cacheCreation": { "ephemeral_1h_input_tokens": 7 }
        }}));
        let facts = serde_json::to_value(facts(&done, "claude-sonnet-5-5")).unwrap();
        assert_eq!(facts["plan"], "pro", "{facts}");
        assert_eq!(facts["input_tokens"], 100, "{facts}");
        assert_eq!(facts["output_tokens"], 200, "{facts}");
        assert_eq!(facts["cache_read_input_tokens"], 50, "{facts}");
        assert_eq!(facts["cache_creation_1h_input_tokens"], 7, "{facts}");
    }
}
