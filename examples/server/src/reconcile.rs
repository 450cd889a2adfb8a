//! Reconciliation: settling the quota reservations of jobs that finished while no process
//! could settle them.
//!
//! A job's terminal write and its settlement are two writes; a process that dies between them
//! leaves the job finished and its reservation open, and the reservation would be released at
//! its timeout (a completed generation never charged, its tokens never recorded). Every
//! process (API or worker) therefore reads the jobs that finished recently and settles each
//! one again: at start for the whole reservation timeout, then every [`RECONCILE_EVERY`] for
//! the jobs that finished between the previous pass's cut-off (less a margin) and
//! [`SETTLING_TIME`] ago, so that a job is looked at by about one pass, after its own process
//! had the time to settle it. Commit and refund are idempotent, so a job settled twice is
//! charged once.

use std::time::Duration;

use appforge_jobs::{JobFilter, PageRequest};
use appforge_quota::Settlement;
use chrono::{DateTime, Utc};

use crate::state::{AppState, Settled, settle_reservation};

/// How often a running process reconciles.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// How far a periodic pass reaches back before the previous one's cut-off: covers terminal
/// writes that committed a little after the time they carry, and clocks a little apart
/// between nodes.
const MARGIN: Duration = Duration::from_secs(30);

/// How long a finished job is left to the process that finished it before a periodic pass
/// settles it.
pub const SETTLING_TIME: Duration = Duration::from_secs(30);

/// Jobs read per page.
const PAGE: u32 = 100;

/// What one reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// Finished jobs considered (those in the pass's window).
    pub scanned: u64,
    /// Reservations this pass committed: completed jobs (or jobs cancelled while running)
    /// whose settlement had been lost.
    pub committed: u64,
    /// Reservations this pass refunded: failed jobs (or jobs cancelled before they ran) whose
    /// settlement had been lost.
    pub refunded: u64,
    /// Jobs whose settlement failed (a storage error; the next pass tries again).
    pub errors: u64,
}

/// Settles every job that finished at or after `since`, and not after `until` when given
/// (commit or refund, idempotently), then releases the reservations that outlived their
/// timeout. The jobs come first, so that a lost settlement is made before its reservation
/// could be released as expired.
pub async fn reconcile_since(
    state: &AppState,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    let quota = state.quota();
    let mut page = PageRequest::first(PAGE);
    loop {
        let jobs = match state
            .queue()
            .list_all(&JobFilter::default(), Some(since), &page)
            .await
        {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(%error, "reading finished jobs for reconciliation failed");
                report.errors += 1;
                break;
            }
        };
        let due = jobs
            .items
            .iter()
            .filter(|job| until.is_none_or(|until| job.completed_at.is_some_and(|at| at <= until)));
        for job in due {
            report.scanned += 1;
            match settle_reservation(quota, job).await {
                Ok(Some(Settled {
                    settlement: Settlement::Settled,
                    charged,
                })) => {
                    if charged {
                        report.committed += 1;
                    } else {
                        report.refunded += 1;
                    }
                }
                Ok(_) => {}
                // Settled the other way already (a refund raced a commit): nothing to mend.
                Err(appforge_quota::Error::AlreadySettled { .. }) => {}
                Err(error) => {
                    tracing::warn!(job = %job.id, %error, "reconciling a reservation failed");
                    report.errors += 1;
                }
            }
        }
        match jobs.next {
            Some(cursor) => page = PageRequest::after(PAGE, cursor),
            None => break,
        }
    }
    if report.committed + report.refunded > 0 {
        tracing::info!(
            ?report,
            "settled reservations that a stopped process left open"
        );
    }
    match quota.reset_expired().await {
        Ok(sweep) => tracing::debug!(?sweep, "released expired reservations"),
        Err(error) => tracing::warn!(%error, "releasing expired reservations failed"),
    }
    report
}

/// The start-up pass: every job that finished within the reservation timeout (older ones'
/// reservations were released already).
pub async fn reconcile_at_start(state: &AppState) -> ReconcileReport {
    let now = state.quota().clock().now();
    reconcile_since(
        state,
        now - chrono_of(state.quota().reservation_timeout()),
        None,
    )
    .await
}

/// Reconciles every [`RECONCILE_EVERY`] until the server shuts down, each pass reaching back to
/// the previous pass's cut-off less [`MARGIN`], up to [`SETTLING_TIME`] ago.
pub(crate) fn spawn(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RECONCILE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        // The start-up pass covered everything up to now.
        let mut last = state.quota().clock().now();
        loop {
            tokio::select! {
                () = state.shutdown_token().cancelled() => break,
                _ = every.tick() => {
                    let cutoff = state.quota().clock().now() - chrono_of(SETTLING_TIME);
                    reconcile_since(&state, last - chrono_of(MARGIN), Some(cutoff)).await;
                    last = cutoff;
                }
            }
        }
    });
}

fn chrono_of(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
