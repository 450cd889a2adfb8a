use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::store::{JobStore, WorkerInfo};
use crate::{JobQueue, JobStatus, Result};

/// When to raise [`Alert`]s.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AlertPolicy {
    /// Alert when more jobs than this are pending (default 50).
    pub queue_length: u64,
    /// Alert when the failure rate over `window` exceeds this (default 0.05).
    pub failure_rate: f64,
    /// The failure-rate window (default 5 minutes).
    pub window: Duration,
    /// Finished jobs needed in the window before a rate is judged (default 10).
    pub min_finished: u64,
    /// A registered worker silent for longer than this has stopped (default 30 s).
    pub worker_silent_after: Duration,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self {
            queue_length: 50,
            failure_rate: 0.05,
            window: Duration::from_secs(300),
            min_finished: 10,
            worker_silent_after: Duration::from_secs(30),
        }
    }
}

/// Something an operator should look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Alert {
    /// Too many jobs waiting.
    QueueLength {
        /// Pending jobs.
        pending: u64,
        /// The threshold.
        threshold: u64,
    },
    /// Too many jobs failing.
    FailureRate {
        /// The observed rate.
        rate: f64,
        /// The threshold.
        threshold: f64,
        /// Failed jobs in the window.
        failed: u64,
    },
    /// A worker pool stopped heartbeating without shutting down (crashed or stalled).
    WorkerSilent {
        /// The worker as last recorded.
        worker: WorkerInfo,
    },
    /// Running jobs whose lease expired: stuck until rescued.
    StuckJobs {
        /// How many.
        count: u64,
    },
}

impl<S: JobStore> JobQueue<S> {
    /// The alerts the queue's current state raises under `policy`.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn check_alerts(&self, policy: &AlertPolicy) -> Result<Vec<Alert>> {
        let stats = self
            .stats_over(policy.window, policy.worker_silent_after)
            .await?;
        let mut alerts = Vec::new();
        let pending = stats.count(JobStatus::Pending);
        if pending > policy.queue_length {
            alerts.push(Alert::QueueLength {
                pending,
                threshold: policy.queue_length,
            });
        }
        let finished = stats.completed_in_window + stats.failed_in_window;
        if finished >= policy.min_finished && stats.failure_rate > policy.failure_rate {
            alerts.push(Alert::FailureRate {
                rate: stats.failure_rate,
                threshold: policy.failure_rate,
                failed: stats.failed_in_window,
            });
        }
        let cutoff = crate::time::sub(self.now(), policy.worker_silent_after);
        for worker in self.store().workers().await? {
            if worker.last_heartbeat < cutoff {
                alerts.push(Alert::WorkerSilent { worker });
            }
        }
        if stats.expired_leases > 0 {
            alerts.push(Alert::StuckJobs {
                count: stats.expired_leases,
            });
        }
        Ok(alerts)
    }
}

/// Checks alerts periodically and hands each to a callback; stops when dropped.
#[derive(Debug)]
pub struct AlertMonitor {
    task: JoinHandle<()>,
}

impl AlertMonitor {
    /// Starts checking `queue` every `every` under `policy`, calling `on_alert` for each alert.
    pub fn start<S: JobStore>(
        queue: JobQueue<S>,
        policy: AlertPolicy,
        every: Duration,
        on_alert: impl Fn(&Alert) + Send + Sync + 'static,
    ) -> Self {
        let on_alert = Arc::new(on_alert);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            loop {
                tick.tick().await;
                match queue.check_alerts(&policy).await {
                    Ok(alerts) => alerts.iter().for_each(|a| on_alert(a)),
                    Err(e) => tracing::warn!(error = %e, "alert check failed"),
                }
            }
        });
        Self { task }
    }
}

impl Drop for AlertMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}
