//! Submitting a generation: reserve one generation of the user's quota, enqueue the job that
//! carries the reservation at the plan's priority, and hold the reservation for the job.

use appforge_apps::AppStore;
use appforge_core::Owner;
use appforge_jobs::{JobId, JobStore, NewJob, Priority};
use appforge_llm::{FullAppRequest, ModifyRequest, PlanRequest};
use appforge_quota::{Admission, PlanId, QuotaStatus, ReservationId, Resource, UsageStore};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ATTACHMENT_IDS, FULL_APP, GenerationService, MODIFY, PLAN_PHASES};
use crate::settlement::RESERVATION_KEY;

/// One generation to run: the pipeline's request, the saved app it builds on, and the ids of
/// the uploads it attaches (loaded by the job when it runs, through the service's
/// [`AttachmentLoader`](super::AttachmentLoader)).
#[derive(Debug, Clone)]
pub struct Submission {
    kind: &'static str,
    prompt: String,
    request: Value,
    target: Option<(Uuid, u32)>,
    attachments: Vec<Uuid>,
    org: Option<Uuid>,
}

impl Submission {
    fn new(kind: &'static str, prompt: &str, request: &impl Serialize) -> Self {
        Self {
            kind,
            prompt: prompt.to_owned(),
            request: serde_json::to_value(request).unwrap_or(Value::Null),
            target: None,
            attachments: Vec::new(),
            org: None,
        }
    }

    /// A whole app (`full_app`). Images in `request.attachments` travel in the job's payload;
    /// prefer [`attachments`](Self::attachments) (ids) for uploads.
    #[must_use]
    #[allow(clippy::needless_pass_by_value)] // Owned at the call site; serialized into the payload.
    pub fn full_app(request: FullAppRequest) -> Self {
        Self::new(FULL_APP, &request.prompt, &request)
    }

    /// A change to an app (`modify`).
    #[must_use]
    #[allow(clippy::needless_pass_by_value)] // Owned at the call site; serialized into the payload.
    pub fn modify(request: ModifyRequest) -> Self {
        Self::new(MODIFY, &request.request, &request)
    }

    /// A phase plan (`plan_phases`).
    #[must_use]
    #[allow(clippy::needless_pass_by_value)] // Owned at the call site; serialized into the payload.
    pub fn plan_phases(request: PlanRequest) -> Self {
        Self::new(PLAN_PHASES, &request.prompt, &request)
    }

    /// Saves the result as the next version of the user's app `app`, built on `base_version`
    /// (the job fails, charged, when the app changed there meanwhile).
    #[must_use]
    pub fn save_to(mut self, app: Uuid, base_version: u32) -> Self {
        self.target = Some((app, base_version));
        self
    }

    /// Runs the generation in `org`'s space: the org's pooled quota pays for it, the job and
    /// the app it saves (or the app of [`save_to`](Self::save_to)) are the org's, and the
    /// attachments are read from the org's uploads. The host checked that the submitter may
    /// generate there (`appforge-orgs`' `authorize`).
    #[must_use]
    pub fn in_org(mut self, org: Uuid) -> Self {
        self.org = Some(org);
        self
    }

    /// The space the generation runs in: `user`'s personal one, or the org of
    /// [`in_org`](Self::in_org).
    #[must_use]
    pub fn owner(&self, user: Uuid) -> Owner {
        Owner::of(user, self.org)
    }

    /// The uploads to send with the prompt, by id.
    #[must_use]
    pub fn attachments(mut self, ids: Vec<Uuid>) -> Self {
        self.attachments = ids;
        self
    }

    /// The job kind it runs as.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The job's payload for `reservation` on `plan`.
    fn payload(self, reservation: ReservationId, plan: &PlanId) -> Value {
        let mut request = self.request;
        if !self.attachments.is_empty() {
            request[ATTACHMENT_IDS] = json!(self.attachments);
        }
        let mut payload = json!({
            "prompt": self.prompt,
            "request": request,
            RESERVATION_KEY: reservation,
            "plan": plan,
        });
        if let Some((app, version)) = self.target {
            payload["appId"] = json!(app);
            payload["baseVersion"] = json!(version);
        }
        payload
    }
}

/// A submitted generation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Submitted {
    /// The job.
    pub job: JobId,
    /// The reservation the job carries.
    pub reservation: ReservationId,
    /// The plan it was admitted on.
    pub plan: PlanId,
}

/// Why a generation was not submitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The user's quota is spent: every window, and which one refused (`denied_by`).
    #[error("quota exceeded")]
    Denied(Box<QuotaStatus>),
    /// The quota store failed; nothing was reserved.
    #[error(transparent)]
    Quota(#[from] appforge_quota::Error),
    /// The job could not be enqueued; its reservation was refunded.
    #[error(transparent)]
    Jobs(#[from] appforge_jobs::Error),
}

impl<J, U, A> GenerationService<J, U, A>
where
    J: JobStore,
    U: UsageStore + 'static,
    A: AppStore + Clone + 'static,
{
    /// Reserves one generation of the space's quota (`user`'s own, or the org's of
    /// [`Submission::in_org`]), enqueues the job, submitted by `user`, at the plan's priority
    /// and holds the reservation for it (it then lives as long as the job, however long it
    /// waits).
    ///
    /// # Errors
    ///
    /// [`SubmitError::Denied`] when the quota is spent; the quota's or the queue's error (a
    /// job that could not be enqueued has its reservation refunded).
    pub async fn submit(
        &self,
        user: Uuid,
        submission: Submission,
    ) -> Result<Submitted, SubmitError> {
        let reservation = match self
            .quota()
            .reserve_for(submission.owner(user).id(), Resource::Generation, 1)
            .await?
        {
            Admission::Granted(reservation) => reservation,
            Admission::Denied(status) => return Err(SubmitError::Denied(Box::new(status))),
        };
        let kind = submission.kind;
        let org = submission.org;
        let payload = submission.payload(reservation.id, &reservation.plan);
        let mut job = NewJob::new(kind, user, payload).priority(Priority(reservation.priority));
        if let Some(org) = org {
            job = job.in_org(org);
        }
        let enqueued = match self.queue().enqueue(job).await {
            Ok(enqueued) => enqueued,
            Err(error) => {
                if let Err(refund) = self.quota().refund(reservation.id).await {
                    tracing::warn!(error = %refund, "refunding a reservation whose job was not enqueued failed");
                }
                return Err(error.into());
            }
        };
        match self.quota().hold(reservation.id, enqueued.id.into()).await {
            // A job so quick that it was settled already.
            Ok(()) | Err(appforge_quota::Error::AlreadySettled { .. }) => {}
            Err(error) => {
                tracing::warn!(job = %enqueued.id, %error, "holding the job's reservation failed; the worker holds it when the job starts");
            }
        }
        Ok(Submitted {
            job: enqueued.id,
            reservation: reservation.id,
            plan: reservation.plan,
        })
    }
}
