//! The generation HTTP API as an [`axum::Router`] a host mounts under its own prefix, with the
//! host's authentication plugged in through [`Authenticate`].
//!
//! | route | what it does |
//! | --- | --- |
//! | `POST /ai-builder/full-app` | a whole app: `202 {jobId, status}` |
//! | `POST /ai-builder/modify` | a change to an app (`currentAppState` or a saved `appId`) |
//! | `POST /ai-builder/plan-phases` | a phase plan |
//! | `POST /chat` | a chat message, answered at once as Server-Sent Events (`delta`, then `done` or `error`) |
//! | `GET /jobs/{id}` | the job: status, progress, result or error |
//! | `GET /jobs/{id}/events` | the job's events as Server-Sent Events ([`job_events`]): `state`, `progress`, then `completed`, `failed` or `cancelled` |
//! | `DELETE /jobs/{id}` | cancels the job |
//! | `GET /quota` | the user's windows and limits |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of these routes, schemas from the types ([`openapi`]) |
//!
//! Errors are JSON, `{"error": code, "message": text, "details": ...}`: `400 invalid_body`
//! naming the field and the plan limit, `401`/`403` from the authentication, `404 not_found`
//! for another user's job or app, `429 quota_exceeded` with `Retry-After` and the quota status.
//!
//! ```
//! use appforge::axum::{SupabaseJwt, router};
//! use appforge::core::SecretString;
//! use appforge::generation::GenerationService;
//! # fn service() -> GenerationService { unimplemented!() }
//!
//! # fn assemble() {
//! let api = router(service(), SupabaseJwt::new(&SecretString::from("a-secret-of-32-bytes-or-more....")));
//! let app: axum::Router = axum::Router::new().nest("/builder", api);
//! # let _ = app; }
//! ```

mod auth;
mod body;
mod openapi;
#[cfg(feature = "orgs")]
mod orgs;

use std::convert::Infallible;
use std::sync::Arc;

use appforge_apps::AppStore;
use appforge_core::Owner;
use appforge_files::AppFile;
use appforge_jobs::{Job, JobEventKind, JobId, JobQueue, JobStatus, JobStore};
use appforge_llm::{
    ChatMode, ChatRequest, FullAppRequest, HistoryMessage, ModifyRequest, PhaseContext, PlanRequest,
};
use appforge_quota::{QuotaStatus, UsageStore};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use http::request::Parts;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

pub use auth::{Action, AuthRejection, Authenticate, Space, SupabaseJwt, bearer};
pub use body::{BodyRejection, JsonBody, parse_json};
pub use openapi::openapi;
#[cfg(feature = "orgs")]
#[cfg_attr(docsrs, doc(cfg(feature = "orgs")))]
pub use orgs::{DEFAULT_ORG_PARAM, OrgSpaces, permission_of};

use crate::generation::limits::{self, LimitError};
use crate::generation::{
    AttachmentError, ChatChunk, ChatMessage, GenerationService, Submission, SubmitError,
};

/// The longest prompt the router accepts by default, in bytes.
pub const DEFAULT_MAX_PROMPT_BYTES: usize = 32 * 1024;

/// The generation API over `service`, authenticated by `auth`, with the default settings.
/// Mount it with [`Router::nest`]; it carries its own state.
pub fn router<J, U, A, Au>(service: GenerationService<J, U, A>, auth: Au) -> Router
where
    J: JobStore,
    U: UsageStore + 'static,
    A: AppStore + Clone + 'static,
    Au: Authenticate,
{
    Api::new(service, auth).router()
}

/// The generation API with its settings; [`router`] with the defaults.
pub struct Api<J, U, A, Au> {
    service: GenerationService<J, U, A>,
    auth: Arc<Au>,
    max_prompt_bytes: usize,
    mounted_at: String,
    on_event: Option<EventHook>,
    shutdown: Option<tokio_util::sync::CancellationToken>,
    skipped: Vec<&'static str>,
}

type EventHook = Arc<dyn Fn(&ApiEvent) + Send + Sync>;

/// What the router did with a generation request, for a host's analytics and metrics
/// ([`Api::on_event`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ApiEvent {
    /// A generation was accepted, as `job`.
    Accepted {
        /// Who submitted it.
        user: Uuid,
        /// The space it runs in.
        owner: Owner,
        /// Its job.
        job: JobId,
        /// `full_app`, `modify` or `plan_phases`.
        kind: &'static str,
        /// The plan it was admitted on.
        plan: appforge_quota::PlanId,
    },
    /// The space's quota refused it (`quota_exceeded`), or the member's daily cap in an org
    /// (`member_cap_reached`).
    Refused {
        /// Who asked.
        user: Uuid,
        /// The space it would have run in.
        owner: Owner,
        /// `full_app`, `modify` or `plan_phases`.
        kind: &'static str,
        /// The answer's code.
        code: &'static str,
        /// The windows that refused it.
        status: Box<QuotaStatus>,
    },
}

impl ApiEvent {
    fn refused(
        user: Uuid,
        owner: Owner,
        kind: &'static str,
        code: &'static str,
        status: &QuotaStatus,
    ) -> Self {
        Self::Refused {
            user,
            owner,
            kind,
            code,
            status: Box::new(status.clone()),
        }
    }
}

impl<J, U, A, Au> Clone for Api<J, U, A, Au> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            auth: Arc::clone(&self.auth),
            max_prompt_bytes: self.max_prompt_bytes,
            mounted_at: self.mounted_at.clone(),
            on_event: self.on_event.clone(),
            shutdown: self.shutdown.clone(),
            skipped: self.skipped.clone(),
        }
    }
}

impl<J, U, A, Au> std::fmt::Debug for Api<J, U, A, Au> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("service", &self.service)
            .field("max_prompt_bytes", &self.max_prompt_bytes)
            .finish_non_exhaustive()
    }
}

impl<J, U, A, Au> Api<J, U, A, Au>
where
    J: JobStore,
    U: UsageStore + 'static,
    A: AppStore + Clone + 'static,
    Au: Authenticate,
{
    /// The API over `service`, authenticated by `auth`.
    pub fn new(service: GenerationService<J, U, A>, auth: Au) -> Self {
        Self {
            service,
            auth: Arc::new(auth),
            max_prompt_bytes: DEFAULT_MAX_PROMPT_BYTES,
            mounted_at: "/".to_owned(),
            on_event: None,
            shutdown: None,
            skipped: Vec::new(),
        }
    }

    /// Ends the open job event streams when `token` is cancelled (the host's shutdown), so
    /// that a graceful stop does not wait for them.
    #[must_use]
    pub fn shutdown(mut self, token: tokio_util::sync::CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    /// Leaves `/quota` or `/openapi.json` out of the router, for a host that serves its own
    /// (other paths are ignored).
    #[must_use]
    pub fn without(mut self, path: &'static str) -> Self {
        self.skipped.push(path);
        self
    }

    /// Calls `hook` with each generation request the router accepts or the quota refuses
    /// (after the answer is decided, before it is sent).
    #[must_use]
    pub fn on_event(mut self, hook: impl Fn(&ApiEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Resolves when the host shuts down ([`Api::shutdown`]); never without a token.
    fn shut_down(&self) -> impl std::future::Future<Output = ()> + Send + use<J, U, A, Au> {
        let token = self.shutdown.clone();
        async move {
            match token {
                Some(token) => token.cancelled_owned().await,
                None => std::future::pending().await,
            }
        }
    }

    fn emit(&self, event: &ApiEvent) {
        if let Some(hook) = &self.on_event {
            hook(event);
        }
    }

    /// Where the host nests the router (default `/`): the server URL of its OpenAPI document.
    #[must_use]
    pub fn mounted_at(mut self, prefix: impl Into<String>) -> Self {
        self.mounted_at = prefix.into();
        self
    }

    /// The longest prompt accepted, in bytes (default [`DEFAULT_MAX_PROMPT_BYTES`]).
    #[must_use]
    pub fn max_prompt_bytes(mut self, bytes: usize) -> Self {
        self.max_prompt_bytes = bytes;
        self
    }

    /// The router.
    pub fn router(self) -> Router {
        let router = Router::new()
            .route(
                "/ai-builder/full-app",
                post(|State(api): State<Self>, request: Parts, body| async move {
                    api.full_app(request, body).await
                }),
            )
            .route(
                "/ai-builder/modify",
                post(|State(api): State<Self>, request: Parts, body| async move {
                    api.modify(request, body).await
                }),
            )
            .route(
                "/ai-builder/plan-phases",
                post(|State(api): State<Self>, request: Parts, body| async move {
                    api.plan_phases(request, body).await
                }),
            )
            .route(
                "/chat",
                post(|State(api): State<Self>, request: Parts, body| async move {
                    api.chat(request, body).await
                }),
            )
            .route(
                "/jobs/{id}",
                get(|State(api): State<Self>, request: Parts, id| async move {
                    api.job(request, id).await
                })
                .delete(
                    |State(api): State<Self>, request: Parts, id| async move {
                        api.cancel(request, id).await
                    },
                ),
            )
            .route(
                "/jobs/{id}/events",
                get(|State(api): State<Self>, request: Parts, id| async move {
                    api.events(request, id).await
                }),
            );
        let router = if self.skipped.contains(&"/quota") {
            router
        } else {
            router.route(
                "/quota",
                get(|State(api): State<Self>, request: Parts| async move {
                    api.quota(request).await
                }),
            )
        };
        let router = if self.skipped.contains(&"/openapi.json") {
            router
        } else {
            router.route(
                "/openapi.json",
                get(|State(api): State<Self>| async move { Json(openapi(&api.mounted_at)) }),
            )
        };
        router.with_state(self)
    }

    /// The user and the space the request acts in, for `action`.
    async fn acting(&self, request: &Parts, action: Action) -> Result<(Uuid, Space), ApiError> {
        self.auth.act(request, action).await.map_err(|r| ApiError {
            details: r.details,
            retry_after: r.retry_after,
            ..ApiError::new(r.status, r.code.unwrap_or(status_code(r.status)), r.message)
        })
    }
}

fn status_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::INTERNAL_SERVER_ERROR => "internal",
        _ => "rejected",
    }
}

/// An error answer: `{"error", "message", "details"?}` with its status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Boxed: a `Value` is large when a host's tree turns on serde_json's `preserve_order`
    /// or `arbitrary_precision`, and every handler returns this type.
    details: Option<Box<Value>>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "generation API error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    fn denied(status: &QuotaStatus) -> Self {
        Self {
            details: serde_json::to_value(status).ok().map(Box::new),
            retry_after: Some(status.retry_after_secs().unwrap_or(60).max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                status.denial_message(),
            )
        }
    }
}

impl ApiError {
    /// `429 member_cap_reached`: the member's daily generations in the org are used.
    fn member_cap(status: &QuotaStatus) -> Self {
        let cap = status
            .daily
            .limit
            .map_or_else(String::new, |n| format!(" ({n})"));
        Self {
            details: serde_json::to_value(status).ok().map(Box::new),
            retry_after: Some(status.retry_after_secs().unwrap_or(60).max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "member_cap_reached",
                format!(
                    "you started this organization's daily generations per member{cap}: the org's admins set the cap"
                ),
            )
        }
    }
}

impl From<LimitError> for ApiError {
    fn from(error: LimitError) -> Self {
        let mut details = json!({ "field": error.field, "limit": error.limit, "max": error.max });
        if let Some((estimated, images)) = error.estimated_tokens {
            details["estimatedTokens"] = json!(estimated);
            details["imageTokens"] = json!(images);
        }
        Self {
            details: Some(Box::new(details)),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_body", error.to_string())
        }
    }
}

impl From<BodyRejection> for ApiError {
    fn from(rejection: BodyRejection) -> Self {
        Self {
            details: rejection.details().map(Box::new),
            ..Self::new(rejection.status, rejection.code, rejection.message)
        }
    }
}

/// The body of every error answer. It also rides on the response as an extension, so that a
/// host's middleware can rewrite it (add a request id) without parsing the body.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct ErrorBody {
    /// A stable code: `invalid_body`, `unauthorized`, `forbidden`, `not_found`,
    /// `quota_exceeded`, `member_cap_reached`, `unsupported_media_type`, `body_too_large`,
    /// `internal`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// The field and limit of a `400`; the quota status of a `429`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
            details: self.details.map(|details| *details),
        };
        let mut response = (self.status, Json(body.clone())).into_response();
        response.extensions_mut().insert(body);
        if let Some(secs) = self.retry_after
            && let Ok(value) = secs.to_string().parse()
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The files of an app as a request carries them.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct CurrentApp {
    /// Every file of the app.
    files: Vec<AppFile>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FullAppBody {
    prompt: String,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    current_app_state: Option<CurrentApp>,
    phase_context: Option<PhaseContext>,
    #[schemars(with = "Option<String>", extend("format" = "uuid"))]
    app_id: Option<Uuid>,
    base_version: Option<u32>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    attachments: Vec<Uuid>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModifyBody {
    prompt: String,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    current_app_state: Option<CurrentApp>,
    #[schemars(with = "Option<String>", extend("format" = "uuid"))]
    app_id: Option<Uuid>,
    base_version: Option<u32>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    attachments: Vec<Uuid>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChatBody {
    prompt: String,
    /// `plan` (discuss and plan, no code; the default) or `act` (concrete changes with code).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    mode: ChatMode,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    current_app_state: Option<CurrentApp>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    attachments: Vec<Uuid>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlanBody {
    prompt: String,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    attachments: Vec<Uuid>,
}

/// `202 Accepted`: the job to follow.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    job_id: String,
    /// `pending`.
    #[schemars(with = "String")]
    status: JobStatus,
}

/// The handlers, under the bounds of the router's stores and authentication.
impl<J, U, A, Au> Api<J, U, A, Au>
where
    J: JobStore,
    U: UsageStore + 'static,
    A: AppStore + Clone + 'static,
    Au: Authenticate,
{
    /// The saved app a request builds on, with that version's files; `None` without `appId`.
    async fn base(
        &self,
        owner: Owner,
        plan: &appforge_quota::Plan,
        app: Option<Uuid>,
        version: Option<u32>,
        has_current: bool,
    ) -> Result<Option<(Uuid, u32, Vec<AppFile>)>, ApiError> {
        let Some(app) = app else {
            if version.is_some() {
                return Err(LimitError::field("baseVersion", "requires `appId`").into());
            }
            return Ok(None);
        };
        if has_current {
            return Err(LimitError::field(
                "currentAppState",
                "not allowed with `appId`: the saved version's files are used",
            )
            .into());
        }
        let stored = self
            .service
            .apps()
            .get_version(owner, app, version)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    ApiError::not_found("app")
                } else {
                    ApiError::internal(&e)
                }
            })?;
        limits::check_app_size("appId", &stored.files, plan)?;
        Ok(Some((app, stored.info.number, stored.files)))
    }

    /// The images a request attaches: each an upload of the space (`404` naming it
    /// otherwise), and the request within the plan's input tokens with them
    /// ([`limits::check_request_tokens`]).
    async fn check_images(
        &self,
        owner: Owner,
        plan: &appforge_quota::Plan,
        ids: &[Uuid],
        text_bytes: u64,
    ) -> Result<(), ApiError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sizes = self
            .service
            .attachment_dimensions(owner, ids)
            .await
            .map_err(attachment_error)?;
        limits::check_request_tokens(text_bytes, &sizes, plan, self.max_prompt_bytes)?;
        Ok(())
    }

    /// Checks what every generation request carries, then the plan of the space (the
    /// user's, or the org's).
    async fn admit(
        &self,
        owner: Owner,
        prompt: &str,
        history: &[HistoryMessage],
        attachments: usize,
    ) -> Result<appforge_quota::Plan, ApiError> {
        limits::check_prompt(prompt, self.max_prompt_bytes)?;
        let plan = self
            .service
            .quota()
            .plan_of(owner.id())
            .await
            .map_err(|e| ApiError::internal(&e))?;
        limits::check_history(history, &plan)?;
        limits::check_attachment_count(attachments, &plan)?;
        Ok(plan)
    }

    /// Submits as `user` in the space `owner`, within the member's daily cap there.
    async fn submit(
        &self,
        user: Uuid,
        owner: Owner,
        member_daily_cap: Option<u32>,
        submission: Submission,
    ) -> Result<Response, ApiError> {
        let kind = submission.kind();
        let submission = match owner.org() {
            Some(org) => submission.in_org(org).member_daily_cap(member_daily_cap),
            None => submission,
        };
        let refused =
            |code, status: &QuotaStatus| ApiEvent::refused(user, owner, kind, code, status);
        match self.service.submit(user, submission).await {
            Ok(submitted) => {
                self.emit(&ApiEvent::Accepted {
                    user,
                    owner,
                    job: submitted.job,
                    kind,
                    plan: submitted.plan,
                });
                Ok((
                    StatusCode::ACCEPTED,
                    Json(Accepted {
                        job_id: submitted.job.to_string(),
                        status: JobStatus::Pending,
                    }),
                )
                    .into_response())
            }
            Err(SubmitError::Denied(status)) => {
                self.emit(&refused("quota_exceeded", &status));
                Err(ApiError::denied(&status))
            }
            Err(SubmitError::MemberCap(status)) => {
                self.emit(&refused("member_cap_reached", &status));
                Err(ApiError::member_cap(&status))
            }
            Err(error) => Err(ApiError::internal(&error)),
        }
    }

    async fn full_app(
        self,
        request: Parts,
        body: Result<JsonBody<FullAppBody>, BodyRejection>,
    ) -> Result<Response, ApiError> {
        let (
            user,
            Space {
                owner,
                member_daily_cap,
            },
        ) = self.acting(&request, Action::Generate).await?;
        let JsonBody(mut body) = body?;
        let plan = self
            .admit(
                owner,
                &body.prompt,
                &body.conversation_history,
                body.attachments.len(),
            )
            .await?;
        if let Some(current) = &mut body.current_app_state {
            limits::check_files("currentAppState.files", &mut current.files, &plan)?;
        }
        if let Some(phase) = &body.phase_context {
            limits::check_phase(phase, &plan)?;
        }
        let base = self
            .base(
                owner,
                &plan,
                body.app_id,
                body.base_version,
                body.current_app_state.is_some(),
            )
            .await?;
        let (current_app, target) = match base {
            Some((app, version, files)) => (Some(files), Some((app, version))),
            None => (body.current_app_state.map(|a| a.files), None),
        };
        let mut request = FullAppRequest::new(body.prompt);
        request.history = body.conversation_history;
        request.current_app = current_app;
        request.phase = body.phase_context;
        let text = limits::text_bytes(
            &request.prompt,
            &request.history,
            request.current_app.as_deref(),
            request.phase.as_ref(),
        );
        self.check_images(owner, &plan, &body.attachments, text)
            .await?;
        let mut submission = Submission::full_app(request).attachments(body.attachments);
        if let Some((app, version)) = target {
            submission = submission.save_to(app, version);
        }
        self.submit(user, owner, member_daily_cap, submission).await
    }

    async fn modify(
        self,
        request: Parts,
        body: Result<JsonBody<ModifyBody>, BodyRejection>,
    ) -> Result<Response, ApiError> {
        let (
            user,
            Space {
                owner,
                member_daily_cap,
            },
        ) = self.acting(&request, Action::Modify).await?;
        let JsonBody(mut body) = body?;
        let plan = self
            .admit(
                owner,
                &body.prompt,
                &body.conversation_history,
                body.attachments.len(),
            )
            .await?;
        if let Some(current) = &mut body.current_app_state {
            limits::check_files("currentAppState.files", &mut current.files, &plan)?;
        }
        let base = self
            .base(
                owner,
                &plan,
                body.app_id,
                body.base_version,
                body.current_app_state.is_some(),
            )
            .await?;
        let (files, target) = match (base, body.current_app_state) {
            (Some((app, version, files)), _) => (files, Some((app, version))),
            (None, Some(current)) => (current.files, None),
            (None, None) => {
                return Err(LimitError::field(
                    "currentAppState",
                    "required unless `appId` names a saved app",
                )
                .into());
            }
        };
        let request = ModifyRequest {
            request: body.prompt,
            history: body.conversation_history,
            app: files,
            attachments: Vec::new(),
        };
        let text = limits::text_bytes(&request.request, &request.history, Some(&request.app), None);
        self.check_images(owner, &plan, &body.attachments, text)
            .await?;
        let mut submission = Submission::modify(request).attachments(body.attachments);
        if let Some((app, version)) = target {
            submission = submission.save_to(app, version);
        }
        self.submit(user, owner, member_daily_cap, submission).await
    }

    async fn plan_phases(
        self,
        request: Parts,
        body: Result<JsonBody<PlanBody>, BodyRejection>,
    ) -> Result<Response, ApiError> {
        let (
            user,
            Space {
                owner,
                member_daily_cap,
            },
        ) = self.acting(&request, Action::Generate).await?;
        let JsonBody(body) = body?;
        let plan = self
            .admit(
                owner,
                &body.prompt,
                &body.conversation_history,
                body.attachments.len(),
            )
            .await?;
        let request = PlanRequest {
            prompt: body.prompt,
            history: body.conversation_history,
            attachments: Vec::new(),
        };
        let text = limits::text_bytes(&request.prompt, &request.history, None, None);
        self.check_images(owner, &plan, &body.attachments, text)
            .await?;
        self.submit(
            user,
            owner,
            member_daily_cap,
            Submission::plan_phases(request).attachments(body.attachments),
        )
        .await
    }

    /// `POST /chat`: a chat message about an app, answered at once as Server-Sent Events
    /// (`delta` events with text, then `done` with the usage or `error`); one of the space's
    /// chat messages is reserved first and settled by how the reply ended.
    async fn chat(
        self,
        request: Parts,
        body: Result<JsonBody<ChatBody>, BodyRejection>,
    ) -> Result<Response, ApiError> {
        let (user, Space { owner, .. }) = self.acting(&request, Action::Chat).await?;
        let JsonBody(mut body) = body?;
        let plan = self
            .admit(
                owner,
                &body.prompt,
                &body.conversation_history,
                body.attachments.len(),
            )
            .await?;
        if let Some(current) = &mut body.current_app_state {
            limits::check_files("currentAppState.files", &mut current.files, &plan)?;
        }
        let text = limits::text_bytes(
            &body.prompt,
            &body.conversation_history,
            body.current_app_state.as_ref().map(|a| a.files.as_slice()),
            None,
        );
        // The images are sent at once: loaded here (each read once), then checked by their
        // sizes.
        let attachments = self
            .service
            .load_attachments(owner, &body.attachments)
            .await
            .map_err(attachment_error)?;
        let sizes: Vec<(u32, u32)> = attachments.iter().map(|a| (a.width, a.height)).collect();
        limits::check_request_tokens(text, &sizes, &plan, self.max_prompt_bytes)?;
        let message = ChatMessage::new(ChatRequest {
            mode: body.mode,
            message: body.prompt,
            history: body.conversation_history,
            current_app: body.current_app_state.map(|a| a.files),
            attachments,
        });
        let message = match owner.org() {
            Some(org) => message.in_org(org),
            None => message,
        };
        let mut reply = match self.service.chat(user, message).await {
            Ok(reply) => reply,
            Err(SubmitError::Denied(status)) => {
                self.emit(&ApiEvent::refused(
                    user,
                    owner,
                    "chat",
                    "quota_exceeded",
                    &status,
                ));
                return Err(ApiError::denied(&status));
            }
            Err(error) => return Err(ApiError::internal(&error)),
        };
        let provider = self.service.provider().to_owned();
        let stream = async_stream::stream! {
            // Dropping the stream (the client went away) drops the reply, which stops the
            // model call; the service still settles what it spent.
            while let Some(chunk) = reply.next().await {
                match chunk {
                    ChatChunk::Text(text) => {
                        yield Ok::<_, Infallible>(sse("delta", &json!({ "text": text })));
                    }
                    ChatChunk::Done { usage, stop_reason } => {
                        let done = json!({
                            "usage": crate::generation::camel_case_keys(json!(usage)),
                            "stopReason": stop_reason,
                            "provider": provider,
                        });
                        yield Ok(sse("done", &done));
                        break;
                    }
                    ChatChunk::Failed { message, .. } => {
                        yield Ok(sse("error", &json!({ "message": message })));
                        break;
                    }
                }
            }
        };
        let stream = stream.take_until(self.shut_down());
        Ok(Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE))
            .into_response())
    }

    async fn job(
        self,
        request: Parts,
        Path(JobPath { id }): Path<JobPath>,
    ) -> Result<Json<JobView>, ApiError> {
        let (_, Space { owner, .. }) = self.acting(&request, Action::Read).await?;
        let job = self
            .service
            .queue()
            .get(owner, job_id(&id)?)
            .await
            .map_err(|e| jobs_error(&e))?;
        Ok(Json(job.into()))
    }

    /// Cancels a pending job at once, or asks a running one to stop. Cancelling a job that
    /// ended answers it as it is: the call is idempotent.
    async fn cancel(
        self,
        request: Parts,
        Path(JobPath { id }): Path<JobPath>,
    ) -> Result<Json<JobView>, ApiError> {
        let (_, Space { owner, .. }) = self.acting(&request, Action::Cancel).await?;
        let id = job_id(&id)?;
        let queue = self.service.queue();
        let job = match queue.cancel(owner, id).await {
            Ok(job) => job,
            Err(e) if e.is_illegal_transition() => {
                queue.get(owner, id).await.map_err(|e| jobs_error(&e))?
            }
            Err(e) => return Err(jobs_error(&e)),
        };
        Ok(Json(job.into()))
    }

    async fn events(
        self,
        request: Parts,
        Path(JobPath { id }): Path<JobPath>,
    ) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, ApiError> {
        let (_, Space { owner, .. }) = self.acting(&request, Action::Read).await?;
        let stream = job_events(self.service.queue(), owner, job_id(&id)?)
            .await
            .map_err(|e| jobs_error(&e))?;
        let stream = stream.take_until(self.shut_down());
        Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE)))
    }

    async fn quota(self, request: Parts) -> Result<Json<QuotaView>, ApiError> {
        let (
            user,
            Space {
                owner,
                member_daily_cap,
            },
        ) = self.acting(&request, Action::Read).await?;
        let quota = self.service.quota();
        let status = quota
            .status(owner.id())
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let member_cap = match (owner.org(), member_daily_cap) {
            (Some(org), Some(limit)) => {
                let subject = crate::generation::member_cap_subject(org, user);
                let day = quota
                    .status(subject)
                    .await
                    .map_err(|e| ApiError::internal(&e))?
                    .daily;
                Some(MemberCap {
                    limit,
                    used: day.used,
                    remaining: u64::from(limit).saturating_sub(day.used),
                    resets_at: day.resets_at,
                })
            }
            _ => None,
        };
        Ok(Json(QuotaView { status, member_cap }))
    }
}

/// The quota of the request's space (`GET /quota`) and, in an org with a daily cap per
/// member, the member's own count against it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QuotaView {
    /// The space's plan and windows (the org's pooled quota in an org).
    #[serde(flatten)]
    pub status: QuotaStatus,
    /// The member's generations today against the org's cap per member; left out without
    /// one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_cap: Option<MemberCap>,
}

/// A member's generations today in an org against its daily cap per member.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MemberCap {
    /// The org's cap.
    pub limit: u32,
    /// The member's generations today.
    pub used: u64,
    /// What is left of the cap.
    pub remaining: u64,
    /// When the count starts over.
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub resets_at: chrono::DateTime<chrono::Utc>,
}

/// How often an idle job event stream sends a comment, so that proxies keep it open.
pub const SSE_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// A job as the API shows it (camelCase). The payload, which holds the reservation and the
/// whole request, is not shown: only its prompt and the ids of the uploads it attached.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// `full_app`, `modify`, `plan_phases`, ...
    pub kind: String,
    /// `pending`, `processing`, `completed`, `failed` or `cancelled`.
    #[schemars(with = "String")]
    pub status: JobStatus,
    /// Its queue priority: the plan's (larger runs first).
    pub priority: i16,
    /// The prompt it was submitted with.
    pub prompt: Option<String>,
    /// The last progress it reported, while it runs.
    pub progress: Option<Value>,
    /// What it produced (a generation's app, files and usage), once completed.
    pub result: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The attempt it is on (from 1).
    pub attempt: u32,
    /// The attempts it may take.
    pub max_attempts: u32,
    /// The model's input tokens, once known.
    pub input_tokens: Option<u64>,
    /// The model's output tokens, once known.
    pub output_tokens: Option<u64>,
    /// How long its last attempt ran, in milliseconds.
    pub duration_ms: Option<u64>,
    /// When it was submitted.
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When its last attempt started.
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it ended.
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The ids of the uploads the request attached (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        Self {
            id: job.id.to_string(),
            kind: job.kind.clone(),
            status: job.status,
            priority: job.priority.0,
            prompt: job
                .payload
                .get("prompt")
                .and_then(Value::as_str)
                .map(str::to_owned),
            progress: job.progress.clone(),
            result: job.result.clone(),
            error: job.error.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            input_tokens: job.input_tokens,
            output_tokens: job.output_tokens,
            duration_ms: job.duration_ms,
            created_at: job.created_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            attachments: attachment_ids(job),
        }
    }
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        Self::from(&job)
    }
}

/// The ids of the uploads a job's request attached ([`JobView::attachments`]).
#[must_use]
pub fn attachment_ids(job: &Job) -> Vec<String> {
    job.payload
        .get("request")
        .and_then(|r| r.get(crate::generation::ATTACHMENT_IDS))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A job's events as the API streams them (Server-Sent Events), to its end:
///
/// - `state`: the job as it is when the stream starts ([`JobView`]);
/// - `progress`: each progress event the handler reports while it runs (its `type` in
///   camelCase: `fileStarted`, `fileCompleted`, `usage`, ...);
/// - then exactly one terminal event, `completed` (the job), `failed` (`{error, job}`) or
///   `cancelled` (the job), and the stream ends. A job that had ended gets its `state` and its
///   terminal event at once.
///
/// # Errors
///
/// The queue's error: [`appforge_jobs::Error::NotFound`] for a job that is not in `owner`'s
/// space.
pub async fn job_events<J: JobStore>(
    queue: &JobQueue<J>,
    owner: Owner,
    id: JobId,
) -> appforge_jobs::Result<impl futures::Stream<Item = Result<Event, Infallible>> + Send + use<J>> {
    let mut subscription = queue.subscribe(owner, id).await?;
    let queue = queue.clone();
    Ok(async_stream::stream! {
        let mut started = false;
        while let Some(event) = subscription.next().await {
            let finished = event.is_terminal();
            let terminal = match event.kind {
                JobEventKind::Snapshot { job } => {
                    if !started {
                        started = true;
                        yield Ok(sse("state", &json!(JobView::from(job.as_ref()))));
                    }
                    job.status.is_terminal().then_some(*job)
                }
                JobEventKind::Progress { mut progress } => {
                    if let Some(Value::String(kind)) = progress.get_mut("type") {
                        *kind = crate::generation::camel(kind);
                    }
                    yield Ok(sse("progress", &progress));
                    None
                }
                _ if finished => queue.get(owner, id).await.ok(),
                _ => None,
            };
            if let Some(job) = terminal {
                let (name, body) = match job.status {
                    JobStatus::Completed => ("completed", json!(JobView::from(&job))),
                    JobStatus::Failed => {
                        ("failed", json!({ "error": job.error, "job": JobView::from(&job) }))
                    }
                    _ => ("cancelled", json!(JobView::from(&job))),
                };
                yield Ok(sse(name, &body));
                break;
            }
        }
    })
}

fn sse(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// `404` naming an attachment that is no upload of the space (`details.uploadId`), `500` for
/// a loader that could not answer.
fn attachment_error(error: AttachmentError) -> ApiError {
    match error {
        AttachmentError::Gone(id) => ApiError {
            details: Some(Box::new(json!({ "field": "attachments", "uploadId": id }))),
            ..ApiError::not_found("attachment")
        },
        e => ApiError::internal(&e),
    }
}

/// A job route's path parameters, by name: a host may nest the router under a path with
/// parameters of its own (`/orgs/{org}`).
#[derive(Debug, Deserialize)]
struct JobPath {
    id: String,
}

fn job_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("job"))
}

fn jobs_error(error: &appforge_jobs::Error) -> ApiError {
    if error.is_not_found() {
        ApiError::not_found("job")
    } else {
        ApiError::internal(error)
    }
}
