//! Who pays for a model call: the settlement rules of generation jobs and chat messages, in
//! one place, for every host.
//!
//! Every model call is reserved before it is made and settled after:
//!
//! | how the work ended | the count (generation, chat message) | the tokens spent |
//! | --- | --- | --- |
//! | completed (a job's result, a chat reply) | charged | recorded |
//! | stopped by the user after it started (a cancelled job, a chat client gone mid-reply) | charged | recorded |
//! | cancelled before it ran, or a chat that failed before any output | refunded | none were spent |
//! | failed because of the request or the user's own action (an app deleted or changed while its job ran, a refusal) | charged | recorded |
//! | failed because of us or the provider (network, 5xx, overload, an unreadable output) | refunded | recorded |
//!
//! What a request could be refused for is checked before anything is reserved (`400`), so a
//! failure the request causes is rare and never free. A job's attempt that is retried records
//! its tokens when it ends ([`appforge_quota::Quota::record_tokens`]); the attempt that ends
//! the job records them with the settlement, so every attempt that reached the model is paid
//! for once.

use appforge_jobs::{Job, JobStatus};
use appforge_quota::{Quota, ReservationId, Settlement, UsageStore};

/// The start of a job error caused by the request or by the user's own action: such a
/// failure is charged. Only job handlers write it (see [`request_error`]).
pub const REQUEST_ERROR: &str = "request error: ";

/// A job error that the request or the user caused, marked so that [`charged`] charges it.
#[must_use]
pub fn request_error(message: impl std::fmt::Display) -> String {
    format!("{REQUEST_ERROR}{message}")
}

/// The payload key under which a generation job carries its reservation.
pub const RESERVATION_KEY: &str = "reservationId";

/// The reservation a generation job carries in its payload (`None` for a job run free by an
/// operator, or one enqueued without quota).
pub fn reservation_of(job: &Job) -> Option<ReservationId> {
    job.payload
        .get(RESERVATION_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The payload key under which a generation job in an org's space carries the reservation of
/// its submitter's daily cap there ([`Submission::member_daily_cap`](crate::generation::Submission::member_daily_cap)).
pub const MEMBER_RESERVATION_KEY: &str = "memberReservationId";

/// The reservation of the submitter's per-member cap a job carries (`None` without a cap).
pub fn member_reservation_of(job: &Job) -> Option<ReservationId> {
    job.payload
        .get(MEMBER_RESERVATION_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Whether `reservation` is one of `job`'s: the space's or the member cap's.
pub fn carries(job: &Job, reservation: ReservationId) -> bool {
    reservation_of(job) == Some(reservation) || member_reservation_of(job) == Some(reservation)
}

/// Whether a failed job's error says the request or the user caused it.
pub fn caused_by_request(job: &Job) -> bool {
    job.error
        .as_deref()
        .is_some_and(|e| e.starts_with(REQUEST_ERROR))
}

/// The tokens recorded on a job (its last attempt's).
pub fn job_tokens(job: &Job) -> u64 {
    job.input_tokens
        .unwrap_or(0)
        .saturating_add(job.output_tokens.unwrap_or(0))
}

/// How a job's reservation was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settled {
    /// Committed (the generation counts) rather than refunded.
    pub charged: bool,
    /// What the call did.
    pub settlement: Settlement,
}

/// Whether a finished job's generation counts: `None` while it is not finished.
pub fn charged(job: &Job) -> Option<bool> {
    Some(match job.status {
        JobStatus::Completed => true,
        // A generation the user stopped after it started spent tokens: it counts, with them.
        JobStatus::Cancelled => job.started_at.is_some(),
        JobStatus::Failed => caused_by_request(job),
        _ => return None,
    })
}

/// Settles a finished job's reservation by the rules above: commit with its last attempt's
/// tokens when it counts, else refund with them. `None` for a job without a reservation or
/// not finished. Idempotent. The reservation of a member's cap, when the job carries one,
/// is settled the same way (committed when the generation counts, else refunded), without
/// tokens: the space's reservation records them.
///
/// # Errors
///
/// The quota's errors (a reservation already settled the other way, storage).
pub async fn settle_job<U: UsageStore>(
    quota: &Quota<U>,
    job: &Job,
) -> Result<Option<Settled>, appforge_quota::Error> {
    let Some(reservation) = reservation_of(job) else {
        return Ok(None);
    };
    let Some(charged) = charged(job) else {
        return Ok(None);
    };
    let tokens = job_tokens(job);
    if let Some(member) = member_reservation_of(job) {
        let settled = if charged {
            quota.commit(member, 0).await
        } else {
            quota.refund(member).await
        };
        match settled {
            Ok(_) | Err(appforge_quota::Error::AlreadySettled { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let settlement = if charged {
        quota.commit(reservation, tokens).await?
    } else {
        quota.refund_with_tokens(reservation, tokens).await?
    };
    Ok(Some(Settled {
        charged,
        settlement,
    }))
}

/// How a chat reply ended, for its settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatEnd {
    /// The reply was complete.
    Replied,
    /// The client went away (or the server stopped) while the model ran.
    Stopped,
    /// The model refused the message: the request caused it.
    Refused,
    /// The provider or the server failed.
    Failed,
}

impl ChatEnd {
    /// Whether the chat message counts, given whether the model had produced anything
    /// (`spent`: text streamed or tokens reported).
    pub fn charged(self, spent: bool) -> bool {
        match self {
            Self::Replied | Self::Refused => true,
            Self::Stopped => spent,
            Self::Failed => false,
        }
    }

    /// The name recorded in analytics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replied => "replied",
            Self::Stopped => "stopped",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// Settles a chat message's reservation: commit with the tokens when it counts, else refund
/// with them (a provider failure after some output still records what it spent).
///
/// # Errors
///
/// The quota's errors.
pub async fn settle_chat<U: UsageStore>(
    quota: &Quota<U>,
    reservation: ReservationId,
    charged: bool,
    tokens: u64,
) -> Result<Settlement, appforge_quota::Error> {
    if charged {
        quota.commit(reservation, tokens).await
    } else {
        quota.refund_with_tokens(reservation, tokens).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_count_when_the_model_produced_something_or_the_request_failed() {
        assert!(ChatEnd::Replied.charged(true));
        assert!(ChatEnd::Refused.charged(false));
        assert!(ChatEnd::Stopped.charged(true));
        assert!(!ChatEnd::Stopped.charged(false));
        assert!(!ChatEnd::Failed.charged(true));
    }
}
