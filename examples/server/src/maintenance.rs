//! Periodic upkeep, run by every process (API or worker) until it shuts down: finished jobs
//! past their retention are deleted, apps past theirs are purged (after their files are
//! erased from the jobs that made or changed them), and the queue is checked for alerts, each
//! logged and counted in `appforge_alerts_total`.
//!
//! Each pass is safe to run in several processes at once: deletes and erasures are
//! idempotent. Every process logs the alerts it sees, so with N processes an alert is logged
//! N times (the counter is per process).

use std::time::Duration;

use appforge_jobs::{Alert, AlertMonitor, Retention};

use crate::state::AppState;

/// A worker pool silent this long is forgotten: it stopped without a clean shutdown, its jobs
/// were rescued long ago, and its `worker_silent` alert has been raised for an hour.
pub const FORGET_SILENT_WORKERS_AFTER: Duration = Duration::from_secs(3600);

/// What one upkeep pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// Finished jobs deleted for being older than the job retention.
    pub pruned_jobs: u64,
    /// Apps removed for good.
    pub purged_apps: u64,
    /// Jobs whose payload or result lost a purged app's files.
    pub redacted_jobs: u64,
    /// Worker pools forgotten after [`FORGET_SILENT_WORKERS_AFTER`] of silence.
    pub forgotten_workers: u64,
    /// Deleted uploads whose bytes were removed for good.
    pub purged_uploads: u64,
    /// Steps that failed (storage errors, logged; the next pass tries again).
    pub errors: u64,
}

/// One upkeep pass: purges the apps and the deleted uploads past
/// `APPFORGE_APP_RETENTION_DAYS` and the audit entries past `APPFORGE_AUDIT_RETENTION_DAYS`,
/// prunes finished jobs
/// by `APPFORGE_JOB_RETENTION_DAYS`, and forgets worker pools silent for
/// [`FORGET_SILENT_WORKERS_AFTER`].
pub async fn run(state: &AppState) -> MaintenanceReport {
    let mut report = purge_apps(state).await;
    // Deleted uploads are kept as long as deleted apps (the versions they shaped may be
    // restored with them), then their bytes and records go.
    match state
        .uploads()
        .purge_deleted_older_than(state.config().app_retention)
        .await
    {
        Ok(0) => {}
        Ok(purged) => {
            tracing::info!(purged, "purged deleted uploads past their retention");
            report.purged_uploads = purged;
        }
        Err(error) => {
            tracing::warn!(%error, "purging deleted uploads failed");
            report.errors += 1;
        }
    }
    // The org audit log keeps `APPFORGE_AUDIT_RETENTION_DAYS` of entries.
    match crate::routes::orgs::purge_audit(state).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "purged audit entries past their retention"),
        Err(error) => {
            tracing::warn!(%error, "purging the audit log failed");
            report.errors += 1;
        }
    }
    // SSO logins started and never finished (expired after 10 minutes).
    if let Some(sso) = state.sso() {
        match sso.service().purge_expired().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged expired SSO logins"),
            Err(error) => {
                tracing::warn!(%error, "purging expired SSO logins failed");
                report.errors += 1;
            }
        }
    }
    match state
        .queue()
        .forget_silent_workers(FORGET_SILENT_WORKERS_AFTER)
        .await
    {
        Ok(0) => {}
        Ok(forgotten) => {
            tracing::info!(forgotten, "forgot worker pools silent for an hour");
            report.forgotten_workers = forgotten;
        }
        Err(error) => {
            tracing::warn!(%error, "forgetting silent worker pools failed");
            report.errors += 1;
        }
    }
    if let Some(older_than) = state.config().maintenance.job_retention {
        let retention = Retention {
            older_than: Some(older_than),
            keep_latest: None,
            batch_size: 1000,
        };
        match state.queue().prune(&retention).await {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!(pruned, "deleted finished jobs past their retention");
                report.pruned_jobs = pruned;
            }
            Err(error) => {
                tracing::warn!(%error, "pruning finished jobs failed");
                report.errors += 1;
            }
        }
    }
    report
}

/// Purges the apps deleted longer than the retention period ago, after erasing their files
/// from the jobs of their space that made or changed them
/// ([`appforge::generation::GenerationService::purge_expired_apps`]).
pub async fn purge_apps(state: &AppState) -> MaintenanceReport {
    let purged = state.generation().purge_expired_apps().await;
    MaintenanceReport {
        purged_apps: purged.purged_apps,
        redacted_jobs: purged.redacted_jobs,
        errors: purged.errors,
        ..MaintenanceReport::default()
    }
}

/// Logs and counts one alert.
pub(crate) fn alert(state: &AppState, alert: &Alert) {
    let kind = match alert {
        Alert::QueueLength { .. } => "queue_length",
        Alert::FailureRate { .. } => "failure_rate",
        Alert::WorkerSilent { .. } => "worker_silent",
        Alert::StuckJobs { .. } => "stuck_jobs",
        _ => "other",
    };
    let detail = serde_json::to_string(alert).unwrap_or_default();
    tracing::warn!(alert = kind, %detail, "queue alert");
    state.metrics().alert(kind);
}

/// Starts the upkeep (every `APPFORGE_MAINTENANCE_EVERY_SECS`, the first pass one interval
/// after start: the start-up pass already ran) and the alert checks (every
/// `APPFORGE_ALERT_EVERY_SECS`, the first at once), until the state's shutdown token is
/// cancelled.
pub fn spawn(state: &AppState) {
    let settings = state.config().maintenance;
    let upkeep = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(settings.every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            tokio::select! {
                () = upkeep.shutdown_token().cancelled() => break,
                _ = every.tick() => {
                    run(&upkeep).await;
                }
            }
        }
    });
    if let Some(alert_every) = settings.alert_every {
        let state = state.clone();
        let monitor = AlertMonitor::start(
            state.queue().clone(),
            settings.alerts,
            alert_every.max(Duration::from_secs(1)),
            {
                let state = state.clone();
                move |found| alert(&state, found)
            },
        );
        tokio::spawn(async move {
            state.shutdown_token().cancelled().await;
            drop(monitor);
        });
    }
}
