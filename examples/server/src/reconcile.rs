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
//! With Stripe configured, every process also runs billing's periodic pass
//! ([`billing_pass`]) at start and every `APPFORGE_BILLING_PASS_SECS`: the plan changes a
//! webhook delivery committed but was cut short before writing (a crash, the request's
//! timeout) are written, and the users whose grace period after a failed payment ended are
//! downgraded.

use std::time::Duration;

use appforge::reconcile::Reconciler;
pub use appforge::reconcile::{RECONCILE_EVERY, ReconcileReport, SETTLING_TIME};
use chrono::{DateTime, Utc};

use crate::state::AppState;

/// The reconciler of the server's queue against its quota.
fn reconciler(state: &AppState) -> Reconciler {
    Reconciler::new(state.quota().clone(), state.queue().clone())
}

/// Settles every job that finished at or after `since`, and not after `until` when given,
/// then releases the reservations that outlived their timeout (see
/// [`Reconciler::since`]).
pub async fn reconcile_since(
    state: &AppState,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> ReconcileReport {
    reconciler(state).since(since, until).await
}

/// The start-up pass: every job that finished within the reservation timeout (older ones'
/// reservations were released already).
pub async fn reconcile_at_start(state: &AppState) -> ReconcileReport {
    reconciler(state).at_start().await
}

/// Billing's periodic pass (see `appforge_billing::Billing::run_periodic_pass`): completes
/// the plan changes of webhook deliveries cut short, then enforces ended grace periods.
/// `None` without Stripe settings (no billing) or when the billing store could not be read
/// (logged; the next pass tries again).
pub async fn billing_pass(state: &AppState) -> Option<appforge_billing::PassReport> {
    let billing = state.billing()?;
    match billing.run_periodic_pass().await {
        Ok(report) => Some(report),
        Err(error) => {
            tracing::warn!(%error, "billing's periodic pass failed");
            None
        }
    }
}

/// Runs [`billing_pass`] now and then every `every` until the server shuts down.
pub fn spawn_billing_pass(state: &AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = state.shutdown_token().cancelled() => break,
                _ = every.tick() => {
                    billing_pass(&state).await;
                }
            }
        }
    })
}

/// Reconciles every [`RECONCILE_EVERY`] until the server shuts down (see
/// [`Reconciler::spawn`]); with Stripe configured, also runs [`billing_pass`] every
/// `APPFORGE_BILLING_PASS_SECS`.
pub(crate) fn spawn(state: &AppState) {
    if let Some(stripe) = &state.config().stripe {
        spawn_billing_pass(state, stripe.pass_every);
    }
    reconciler(state).spawn(state.shutdown_token().clone());
}
