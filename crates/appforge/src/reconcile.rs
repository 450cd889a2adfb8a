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
//!
//! [`Reconciler`] does both for any job store; a host makes one per process and calls
//! [`Reconciler::at_start`], then [`Reconciler::spawn`].

use std::time::Duration;

use appforge_jobs::{AnyJobStore, JobFilter, JobId, JobQueue, JobStore, PageRequest};
use appforge_quota::{AnyUsageStore, HeldReservation, Quota, Settlement, UsageStore};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::settlement::{Settled, carries, settle_job};

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
    /// Held reservations released because no job needs them any more: their job does not
    /// exist (any more), or an operator's retry runs it on another reservation.
    pub released: u64,
    /// Jobs whose settlement failed (a storage error; the next pass tries again).
    pub errors: u64,
}

/// Settles what a stopped process left open: the reservations of jobs that finished without
/// their settlement, and held reservations whose job is gone. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reconciler<S: JobStore = AnyJobStore, U: UsageStore = AnyUsageStore> {
    quota: Quota<U>,
    queue: JobQueue<S>,
}

impl<S: JobStore, U: UsageStore> Reconciler<S, U> {
    /// A reconciler of `queue`'s jobs against `quota`'s reservations.
    #[must_use]
    pub fn new(quota: Quota<U>, queue: JobQueue<S>) -> Self {
        Self { quota, queue }
    }

    /// Settles every job that finished at or after `since`, and not after `until` when given
    /// (commit or refund, idempotently), then releases the reservations that outlived their
    /// timeout. The jobs come first, so that a lost settlement is made before its reservation
    /// could be released as expired.
    pub async fn since(
        &self,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let quota = &self.quota;
        let mut page = PageRequest::first(PAGE);
        loop {
            let jobs = match self
                .queue
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
            let due = jobs.items.iter().filter(|job| {
                until.is_none_or(|until| job.completed_at.is_some_and(|at| at <= until))
            });
            for job in due {
                report.scanned += 1;
                match settle_job(quota, job).await {
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
        let before = quota.clock().now() - chrono_of(quota.reservation_timeout());
        self.release_orphans(before, &mut report).await;
        if report.committed + report.refunded + report.released > 0 {
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

    /// Checks every reservation held since before `before` against its job: a job still pending
    /// or running keeps it, a finished job's is settled (its settlement was lost), and one whose
    /// job does not exist, or no longer names it, is released. A held reservation never expires,
    /// so this is what frees the slots of work that is gone.
    async fn release_orphans(&self, before: DateTime<Utc>, report: &mut ReconcileReport) {
        let quota = &self.quota;
        let mut after = None;
        loop {
            let held = match quota.held(before, after, PAGE).await {
                Ok(held) => held,
                Err(error) => {
                    tracing::warn!(%error, "reading held reservations failed");
                    report.errors += 1;
                    return;
                }
            };
            for reservation in &held {
                self.check_held(reservation, report).await;
            }
            match held.last() {
                Some(last) if held.len() == PAGE as usize => after = Some(last.id),
                _ => return,
            }
        }
    }

    async fn check_held(&self, held: &HeldReservation, report: &mut ReconcileReport) {
        let quota = &self.quota;
        let job = match self.queue.get_any(JobId::from(held.holder)).await {
            Ok(job) if !job.status.is_terminal() => return,
            Ok(job) => Some(job),
            Err(error) if error.is_not_found() => None,
            Err(error) => {
                tracing::warn!(job = %held.holder, %error, "reading a held reservation's job failed");
                report.errors += 1;
                return;
            }
        };
        let result = match &job {
            Some(job) if carries(job, held.id) => {
                report.scanned += 1;
                settle_job(quota, job).await.map(|settled| match settled {
                    Some(Settled {
                        settlement: Settlement::Settled,
                        charged: true,
                    }) => report.committed += 1,
                    Some(Settled {
                        settlement: Settlement::Settled,
                        charged: false,
                    }) => report.refunded += 1,
                    _ => {}
                })
            }
            _ => quota.refund(held.id).await.map(|settlement| {
                if settlement == Settlement::Settled {
                    report.released += 1;
                }
            }),
        };
        match result {
            Ok(()) | Err(appforge_quota::Error::AlreadySettled { .. }) => {}
            Err(error) => {
                tracing::warn!(reservation = %held.id, %error, "releasing a held reservation failed");
                report.errors += 1;
            }
        }
    }

    /// The start-up pass: every job that finished within the reservation timeout (older ones'
    /// reservations were released already).
    pub async fn at_start(&self) -> ReconcileReport {
        let now = self.quota.clock().now();
        self.since(now - chrono_of(self.quota.reservation_timeout()), None)
            .await
    }

    /// Reconciles every [`RECONCILE_EVERY`] until `shutdown` is cancelled, each pass reaching
    /// back to the previous pass's cut-off less a margin of 30 s, up to [`SETTLING_TIME`] ago.
    /// Call [`Reconciler::at_start`] first: the periodic passes start from now.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RECONCILE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            // The start-up pass covered everything up to now.
            let mut last = self.quota.clock().now();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = every.tick() => {
                        let cutoff = self.quota.clock().now() - chrono_of(SETTLING_TIME);
                        self.since(last - chrono_of(MARGIN), Some(cutoff)).await;
                        last = cutoff;
                    }
                }
            }
        })
    }
}

fn chrono_of(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
