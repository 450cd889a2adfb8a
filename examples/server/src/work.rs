//! The generation job handlers, from [`appforge::generation`]: `full_app`, `modify` and
//! `plan_phases` run the llm pipelines with progress as job events, save the result as an app
//! version and leave their tokens for the settlement. The server runs them in-process and the
//! `appforge-worker` binary runs the same ones in a separate process.

use appforge_jobs::{AnyJobStore, WorkerPool, WorkerPoolBuilder};

pub use appforge::generation::{FULL_APP, MODIFY, PLAN_PHASES, camel, camel_case_keys};

use crate::state::AppState;

/// Registers the generation handlers on `builder`, with the fair share of the workers (see
/// [`appforge::generation::GenerationService::register`]).
#[must_use]
pub fn register(
    builder: WorkerPoolBuilder<AnyJobStore>,
    state: &AppState,
) -> WorkerPoolBuilder<AnyJobStore> {
    state.generation().register(builder)
}

/// Starts a worker pool of `concurrency` slots running the generation handlers.
///
/// # Errors
///
/// The pool's configuration error.
pub fn start(state: &AppState, concurrency: u32) -> appforge_jobs::Result<WorkerPool<AnyJobStore>> {
    state.generation().start_workers(concurrency)
}
