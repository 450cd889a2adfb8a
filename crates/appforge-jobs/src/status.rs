//! The job state machine, in one place.
//!
//! ```text
//! pending ──claim──▶ processing ──complete──▶ completed
//!    │  ▲                 │ │  └──fail──────▶ failed ──requeue──▶ pending
//!    │  └──retry/release──┘ │
//!    └──cancel──▶ cancelled ◀┘ (cancel)          cancelled ──requeue──▶ pending
//! ```
//!
//! Every store applies [`Transition::check`] (the memory store directly, the SQL stores as the
//! guard of their `UPDATE` plus this check to explain a refused write).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, JobId, Result};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting to run (new, or scheduled for a retry at `run_at`).
    Pending,
    /// Claimed by a worker holding a lease.
    Processing,
    /// Finished with a result.
    Completed,
    /// Finished without a result: a permanent error, or attempts spent.
    Failed,
    /// Cancelled by its owner or an operator.
    Cancelled,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Processing,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The status as stored and serialised: `pending`, `processing`, ...
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the job is finished (completed, failed or cancelled).
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Whether the job is pending or processing (the states a dedupe key is held in).
    #[must_use]
    pub const fn is_active(self) -> bool {
        !self.is_terminal()
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| Error::Corrupt(format!("unknown job status {s:?}")))
    }
}

/// A move of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// `pending -> processing`: a worker takes a lease and starts an attempt.
    Claim,
    /// `processing -> completed`.
    Complete,
    /// `processing -> failed`: a permanent error, or the last attempt failed.
    Fail,
    /// `processing -> pending`: the attempt failed and another is scheduled at `run_at`.
    Retry,
    /// `processing -> pending`: a worker shutting down gives the job back unfinished.
    Release,
    /// `pending | processing -> cancelled`.
    Cancel,
    /// `failed | cancelled -> pending`: an operator runs the job again with fresh attempts.
    Requeue,
}

impl Transition {
    /// The statuses this transition may start from.
    #[must_use]
    pub const fn sources(self) -> &'static [JobStatus] {
        match self {
            Self::Claim => &[JobStatus::Pending],
            Self::Complete | Self::Fail | Self::Retry | Self::Release => &[JobStatus::Processing],
            Self::Cancel => &[JobStatus::Pending, JobStatus::Processing],
            Self::Requeue => &[JobStatus::Failed, JobStatus::Cancelled],
        }
    }

    /// The status this transition leads to.
    #[must_use]
    pub const fn target(self) -> JobStatus {
        match self {
            Self::Claim => JobStatus::Processing,
            Self::Complete => JobStatus::Completed,
            Self::Fail => JobStatus::Failed,
            Self::Retry | Self::Release | Self::Requeue => JobStatus::Pending,
            Self::Cancel => JobStatus::Cancelled,
        }
    }

    /// The target status when the transition may start from `from`.
    ///
    /// # Errors
    ///
    /// [`Error::IllegalTransition`] when it may not.
    pub fn check(self, id: JobId, from: JobStatus) -> Result<JobStatus> {
        if self.sources().contains(&from) {
            Ok(self.target())
        } else {
            Err(Error::IllegalTransition {
                id,
                from,
                transition: self,
            })
        }
    }

    /// The verb, for messages: `claim`, `complete`, ...
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Complete => "complete",
            Self::Fail => "fail",
            Self::Retry => "retry",
            Self::Release => "release",
            Self::Cancel => "cancel",
            Self::Requeue => "requeue",
        }
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_TRANSITIONS: [Transition; 7] = [
        Transition::Claim,
        Transition::Complete,
        Transition::Fail,
        Transition::Retry,
        Transition::Release,
        Transition::Cancel,
        Transition::Requeue,
    ];

    #[test]
    fn legal_transitions_are_exactly_the_documented_ones() {
        use JobStatus::{Cancelled, Completed, Failed, Pending, Processing};
        let legal = [
            (Transition::Claim, Pending, Processing),
            (Transition::Complete, Processing, Completed),
            (Transition::Fail, Processing, Failed),
            (Transition::Retry, Processing, Pending),
            (Transition::Release, Processing, Pending),
            (Transition::Cancel, Pending, Cancelled),
            (Transition::Cancel, Processing, Cancelled),
            (Transition::Requeue, Failed, Pending),
            (Transition::Requeue, Cancelled, Pending),
        ];
        let id = JobId::new();
        for transition in ALL_TRANSITIONS {
            for from in JobStatus::ALL {
                let expected = legal
                    .iter()
                    .find(|(t, f, _)| *t == transition && *f == from)
                    .map(|(_, _, to)| *to);
                match (transition.check(id, from), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{transition} from {from}"),
                    (Err(e), None) => assert!(e.is_illegal_transition(), "{e}"),
                    (got, want) => panic!("{transition} from {from}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn completed_is_final() {
        let err = Transition::Cancel
            .check(JobId::new(), JobStatus::Completed)
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot cancel while completed"),
            "{err}"
        );
    }

    #[test]
    fn status_round_trips_through_text() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>().unwrap(), status);
        }
        assert!("running".parse::<JobStatus>().is_err());
    }
}
