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
use crate::settlement::{MEMBER_RESERVATION_KEY, RESERVATION_KEY};

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
    member_daily_cap: Option<u32>,
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
            member_daily_cap: None,
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

    /// In an org's space, the most generations the submitter may start there per day (the
    /// org's setting, `appforge-orgs`' `Access::member_daily_cap`); `None`, or a personal
    /// space, has no cap. The cap is counted by the quota under a subject of its own per org
    /// and member ([`member_cap_subject`]), reserved before the org's pool and settled with
    /// the job by the same rules, so a generation refunded to the org is refunded to the
    /// member's count too.
    #[must_use]
    pub fn member_daily_cap(mut self, cap: Option<u32>) -> Self {
        self.member_daily_cap = cap;
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

    /// The org of [`in_org`](Self::in_org).
    pub(super) fn org(&self) -> Option<Uuid> {
        self.org
    }

    /// Whether a member cap applies (an org's space with a cap).
    pub(super) fn capped(&self) -> bool {
        self.org.is_some() && self.member_daily_cap.is_some()
    }

    /// The job's payload for `reservation` on `plan` (and the member cap's `member`).
    pub(super) fn payload(
        self,
        reservation: ReservationId,
        plan: &PlanId,
        member: Option<ReservationId>,
    ) -> Value {
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
        if let Some(member) = member {
            payload[MEMBER_RESERVATION_KEY] = json!(member);
        }
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
    /// The submitter reached the org's daily cap per member
    /// ([`Submission::member_daily_cap`]): the cap's count (`daily`) and when it resets.
    #[error("the org's daily generations per member are used")]
    MemberCap(Box<QuotaStatus>),
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
        #[cfg(feature = "postgres")]
        let submission = match self.joint() {
            Some(joint) if !submission.capped() => {
                match super::joint::postgres::submit(joint, user, submission).await? {
                    Ok(submitted) => return Ok(submitted),
                    Err(not_admitted) => not_admitted,
                }
            }
            _ => submission,
        };
        #[cfg(feature = "sqlite")]
        let submission = match self.shared_sqlite() {
            Some(pool) if !submission.capped() => {
                let (quota, queue) = (self.quota(), self.queue());
                match super::joint::sqlite::submit(pool, quota, queue, user, submission).await? {
                    Ok(submitted) => return Ok(submitted),
                    Err(not_admitted) => not_admitted,
                }
            }
            _ => submission,
        };
        let member = match (submission.org, submission.member_daily_cap) {
            (Some(org), Some(cap)) => Some(self.reserve_member(org, user, cap).await?),
            _ => None,
        };
        let admission = self
            .quota()
            .reserve_for(submission.owner(user).id(), Resource::Generation, 1)
            .await;
        let granted = match admission {
            Ok(Admission::Granted(reservation)) => Ok(reservation),
            Ok(Admission::Denied(status)) => Err(SubmitError::Denied(Box::new(status))),
            Err(error) => Err(error.into()),
        };
        let reservation = match granted {
            Ok(reservation) => reservation,
            Err(error) => {
                // The space's pool refused: the member's count gives its generation back.
                if let Some(member) = member {
                    self.release(member).await;
                }
                return Err(error);
            }
        };
        let kind = submission.kind;
        let org = submission.org;
        let payload = submission.payload(reservation.id, &reservation.plan, member);
        let mut job = NewJob::new(kind, user, payload).priority(Priority(reservation.priority));
        if let Some(org) = org {
            job = job.in_org(org);
        }
        let enqueued = match self.queue().enqueue(job).await {
            Ok(enqueued) => enqueued,
            Err(error) => {
                for unused in std::iter::once(reservation.id).chain(member) {
                    self.release(unused).await;
                }
                return Err(error.into());
            }
        };
        for held in std::iter::once(reservation.id).chain(member) {
            match self.quota().hold(held, enqueued.id.into()).await {
                // A job so quick that it was settled already.
                Ok(()) | Err(appforge_quota::Error::AlreadySettled { .. }) => {}
                Err(error) => {
                    tracing::warn!(job = %enqueued.id, %error, "holding the job's reservation failed; the worker holds it when the job starts");
                }
            }
        }
        Ok(Submitted {
            job: enqueued.id,
            reservation: reservation.id,
            plan: reservation.plan,
        })
    }

    /// Refunds a reservation no job will carry.
    async fn release(&self, reservation: ReservationId) {
        if let Err(error) = self.quota().refund(reservation).await {
            tracing::warn!(%reservation, %error, "refunding a reservation no job carries failed");
        }
    }

    /// Reserves one of `user`'s `cap` daily generations in `org`, under the cap's subject
    /// ([`member_cap_subject`]) on the cap's plan ([`member_cap_plan`]). A subject still on
    /// another plan (its first generation, or the org changed its cap) is moved to the cap's
    /// plan first, and the plan is added to the catalogue when it is not there; the day's
    /// count is kept across a change of the cap.
    async fn reserve_member(
        &self,
        org: Uuid,
        user: Uuid,
        cap: u32,
    ) -> Result<ReservationId, SubmitError> {
        let quota = self.quota();
        let subject = member_cap_subject(org, user);
        let plan = member_cap_plan(cap)?;
        for _ in 0..2 {
            match quota.reserve_for(subject, Resource::Generation, 1).await {
                Ok(Admission::Granted(reservation)) if reservation.plan == plan.id => {
                    return Ok(reservation.id);
                }
                Ok(Admission::Denied(status)) if status.plan == plan.id => {
                    return Err(SubmitError::MemberCap(Box::new(status)));
                }
                // Admitted on the subject's previous plan: not the cap in force.
                Ok(Admission::Granted(stale)) => self.release(stale.id).await,
                Ok(Admission::Denied(_)) | Err(appforge_quota::Error::UnknownPlan(_)) => {}
                Err(error) => return Err(error.into()),
            }
            if quota.catalogue().get(&plan.id).is_none() {
                quota.save_plan(plan.clone()).await?;
            }
            quota.set_plan(subject, &plan.id).await?;
        }
        Err(appforge_quota::Error::Config(format!(
            "the member cap's subject {subject} does not take its plan {}",
            plan.id
        ))
        .into())
    }
}

/// The quota subject that counts `user`'s generations in `org` against the org's cap per
/// member: a name-based UUID (v5) of the two, the same on every process.
#[must_use]
pub fn member_cap_subject(org: Uuid, user: Uuid) -> Uuid {
    let mut name = [0_u8; 32];
    name[..16].copy_from_slice(org.as_bytes());
    name[16..].copy_from_slice(user.as_bytes());
    Uuid::new_v5(&MEMBER_CAP_NAMESPACE, &name)
}

/// The namespace of [`member_cap_subject`]'s names.
const MEMBER_CAP_NAMESPACE: Uuid = Uuid::from_u128(0x6d65_6d62_6572_2d63_6170_2d61_7070_666f);

/// The plan a member cap of `cap` generations a day puts its subjects on (`member-cap-<cap>`):
/// only the daily limit, no burst limit, not offered to subscribers (inactive).
///
/// # Errors
///
/// [`appforge_quota::Error::InvalidArgument`] for a cap of 0.
pub fn member_cap_plan(cap: u32) -> Result<appforge_quota::Plan, appforge_quota::Error> {
    if cap == 0 {
        return Err(appforge_quota::Error::InvalidArgument(
            "a member cap allows at least one generation a day".into(),
        ));
    }
    let mut plan = appforge_quota::Plan::new(
        format!("member-cap-{cap}"),
        format!("{cap} generations a day per member"),
    );
    plan.daily_generations = Some(cap);
    plan.is_active = false;
    Ok(plan)
}
