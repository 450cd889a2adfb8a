//! The behaviour every job store must have, written once and run per backend.

mod lifecycle;
mod operations;

pub(crate) use lifecycle::*;
pub(crate) use operations::*;

use std::time::Duration;

use appforge_jobs::{ClaimRequest, Finish, FinishRequest, Job, JobStore, Lease, WorkerId};
use serde_json::json;

use crate::fixtures::Fixture;

pub(crate) const LEASE: Duration = Duration::from_secs(30);

pub(crate) async fn claim<S: JobStore>(f: &Fixture<S>, worker: WorkerId, limit: u32) -> Vec<Job> {
    let now = f.clock_now();
    f.store
        .claim(&ClaimRequest {
            worker,
            kinds: None,
            limit,
            now,
            lease_until: now + chrono::Duration::from_std(LEASE).unwrap(),
            exclude_users: Vec::new(),
        })
        .await
        .unwrap()
}

pub(crate) async fn finish<S: JobStore>(
    f: &Fixture<S>,
    lease: Lease,
    finish: Finish,
) -> appforge_jobs::Result<Job> {
    let mut out = f
        .store
        .finish(&[FinishRequest {
            lease,
            finish,
            now: f.clock_now(),
        }])
        .await
        .unwrap();
    out.pop().unwrap()
}

pub(crate) fn complete() -> Finish {
    Finish::Complete {
        result: json!({"files": 3}),
        input_tokens: 100,
        output_tokens: 2000,
    }
}

impl<S: JobStore> Fixture<S> {
    pub(crate) fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use appforge_core::Clock;
        self.clock.now()
    }
}
