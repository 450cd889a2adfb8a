//! The job handlers: `full_app`, `modify` and `plan_phases` run the llm pipelines, report
//! progress as job events and honour cancellation. A finished `full_app` is saved as a new app
//! (or the next version of the app it was started from), a finished `modify` started from a
//! saved app as that app's next version; the saved version records the uploads the request
//! attached.
//!
//! Each attempt holds the job's quota reservation (so that it cannot expire while the job
//! lives), asks the model for at most the plan's output tokens, and accounts for what it
//! spent: an attempt that will be retried records its tokens at once, the attempt that ends
//! the job leaves them on the job for its settlement. A failure the request or the user caused
//! (an app deleted or changed while the job ran, a refusal) is written with the settlement's
//! request-error mark first, and is charged.

use std::sync::{Arc, Mutex};

use appforge_apps::{AppStore, MAX_TITLE_CHARS, NewApp, NewVersion};
use appforge_core::Owner;
use appforge_files::protocol::scaffold;
use appforge_jobs::{
    Admit, Job, JobContext, JobFilter, JobStatus, JobStore, Outcome, PageRequest, Progress,
};
use appforge_llm::{
    Attachment, FullAppRequest, GeneratedApp, Modification, ModifyRequest, PlanRequest, Usage,
};
use appforge_quota::UsageStore;
use futures::FutureExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{ATTACHMENT_IDS, AttachmentError, FULL_APP, GenerationService, MODIFY, PLAN_PHASES};
use crate::settlement::{REQUEST_ERROR, member_reservation_of, reservation_of};

impl<J, U, A> GenerationService<J, U, A>
where
    J: JobStore,
    U: UsageStore + 'static,
    A: AppStore + Clone + 'static,
{
    /// Whether `job` may start now: the running jobs of its space (the user's, or the org's;
    /// it included), in the order they started, may be at most the plan's
    /// `max_running_jobs`; the later ones wait. Every
    /// process decides the same way, from the store. When the store cannot say, the job runs.
    pub(super) async fn fair_share(&self, job: &Job) -> Admit {
        let Some(cap) = self.plan_of_job(&job.payload).max_running_jobs else {
            return Admit::Run;
        };
        let filter = JobFilter::default().status(JobStatus::Processing);
        let running = match self
            .queue()
            .list(job.owner(), &filter, &PageRequest::first(100))
            .await
        {
            Ok(page) => page.items,
            Err(error) => {
                tracing::warn!(job = %job.id, %error, "cannot count the user's running jobs; running it");
                return Admit::Run;
            }
        };
        let mut order: Vec<_> = running.iter().map(|j| (j.started_at, j.id)).collect();
        order.sort_unstable();
        let ahead = order.iter().take_while(|(_, id)| *id != job.id).count();
        if ahead < usize::try_from(cap).unwrap_or(usize::MAX) {
            Admit::Run
        } else {
            tracing::debug!(job = %job.id, owner = %job.owner(), cap, "the space runs its share; the job waits");
            Admit::Defer(self.inner.fair_share_delay)
        }
    }

    /// Runs one attempt of a generation job, inside the host's wrapper when it set one.
    pub(super) async fn run(self, ctx: JobContext) -> Outcome {
        match self.inner.around.clone() {
            Some(around) => {
                let job = ctx.job().clone();
                around(&job, self.attempt(ctx).boxed()).await
            }
            None => self.attempt(ctx).await,
        }
    }

    async fn attempt(self, ctx: JobContext) -> Outcome {
        let kind = ctx.job().kind.clone();
        let reservation = reservation_of(ctx.job());
        // Held at enqueue already; again here in case that write was lost, so that the
        // reservations of a job that waited long are not released under it.
        for held in [reservation, member_reservation_of(ctx.job())]
            .into_iter()
            .flatten()
        {
            if let Err(error) = self.quota().hold(held, ctx.job().id.into()).await {
                tracing::warn!(job = %ctx.job().id, %error, "the job's reservation cannot be held");
            }
        }
        let request = ctx.payload().get("request").cloned().unwrap_or(Value::Null);
        let attachment_ids = match attachment_ids(&request) {
            Ok(ids) => ids,
            Err(outcome) => return outcome,
        };
        let attachments = match self
            .attachments_of(ctx.job().owner(), &attachment_ids)
            .await
        {
            Ok(attachments) => attachments,
            Err(outcome) => return outcome,
        };
        let target = match target_of(ctx.payload()) {
            Ok(target) => target,
            Err(message) => return Outcome::permanent(message),
        };
        let save = SaveTo {
            apps: self.apps().clone(),
            owner: ctx.job().owner(),
            created_by: ctx.job().user_id,
            job: ctx.job().id.into(),
            prompt: ctx
                .payload()
                .get("prompt")
                .and_then(Value::as_str)
                .map(str::to_owned),
            target,
            attachments: attachment_ids,
            started: std::time::Instant::now(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // The usage the pipeline reported last (summed over its rounds so far).
        let reported = Arc::new(Mutex::new(Usage::default()));
        let last_usage = Arc::clone(&reported);
        let report = move |progress: appforge_llm::Progress| {
            if let appforge_llm::Progress::Usage { usage } = &progress
                && let Ok(mut last) = last_usage.lock()
            {
                *last = *usage;
            }
            if let Some(p) = job_progress(progress) {
                // The receiver lives as long as the pipeline runs.
                let _ = tx.send(p);
            }
        };
        let pipelines = &self.pipelines_for(&self.plan_of_job(ctx.payload()));
        let cancel = ctx.cancellation().clone();
        let work = async move {
            match kind.as_str() {
                FULL_APP => {
                    let mut request: FullAppRequest = decode(request)?;
                    request.attachments = attachments;
                    let app = pipelines
                        .full_app(&request, report, &cancel)
                        .await
                        .map_err(Failure::Llm)?;
                    let saved = save.full_app(&app).await?;
                    let mut value = serde_json::to_value(&app).unwrap_or(Value::Null);
                    saved.annotate(&mut value);
                    annotate_scaffold(&mut value, &app);
                    Ok((value, app.usage))
                }
                MODIFY => {
                    let mut request: ModifyRequest = decode(request)?;
                    request.attachments = attachments;
                    let change = pipelines
                        .modify(&request, report, &cancel)
                        .await
                        .map_err(Failure::Llm)?;
                    let mut value = serde_json::to_value(&change).unwrap_or(Value::Null);
                    if let Some(saved) = save.modification(&change).await? {
                        saved.annotate(&mut value);
                    }
                    Ok((value, change.usage))
                }
                PLAN_PHASES => {
                    let mut request: PlanRequest = decode(request)?;
                    request.attachments = attachments;
                    let plan = pipelines
                        .plan_phases(&request, report, &cancel)
                        .await
                        .map_err(Failure::Llm)?;
                    Ok((
                        json!({ "plan": plan.plan, "usage": plan.usage }),
                        plan.usage,
                    ))
                }
                other => Err(Failure::Input(format!("no handler for job kind `{other}`"))),
            }
        };
        let (result, ()) = tokio::join!(work, forward(rx, &ctx));
        let reported = reported.lock().map(|u| *u).unwrap_or_default();
        let failure = match result {
            Ok((value, usage)) => {
                let mut value = camel_case_keys(value);
                if let Value::Object(map) = &mut value {
                    map.insert("provider".into(), json!(self.provider()));
                }
                return Outcome::success(value)
                    .with_tokens(usage.input_tokens, usage.output_tokens);
            }
            Err(failure) => failure,
        };
        let spent = failure.spent(reported);
        let outcome = failure.into_outcome();
        let retried = matches!(outcome, Outcome::Retryable { .. })
            && ctx.job().attempt < ctx.job().max_attempts
            && !ctx.is_cancelled();
        match reservation {
            // This attempt is not the job's last: its tokens are recorded now, as the job will
            // not carry them (the next attempt's replace them).
            Some(reservation) if retried => {
                let tokens = spent.input_tokens.saturating_add(spent.output_tokens);
                if let Err(error) = self.quota().record_tokens(reservation, tokens).await {
                    tracing::warn!(job = %ctx.job().id, %error, "recording a retried attempt's tokens failed");
                }
                outcome
            }
            // The job's last attempt: its tokens go with the job to its settlement.
            _ => outcome.with_tokens(spent.input_tokens, spent.output_tokens),
        }
    }

    /// The images of the uploads `ids` a job's request attached, read in the job's space. An
    /// upload deleted since the request was accepted fails the job for good; a storage error
    /// is retried.
    async fn attachments_of(&self, owner: Owner, ids: &[Uuid]) -> Result<Vec<Attachment>, Outcome> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let Some(loader) = &self.inner.attachments else {
            return Err(Outcome::permanent(
                AttachmentError::Gone(ids[0]).to_string(),
            ));
        };
        loader.load(owner, ids).await.map_err(|e| match e {
            AttachmentError::Gone(_) => Outcome::permanent(e.to_string()),
            AttachmentError::Unavailable(_) => Outcome::retry(e.to_string()),
        })
    }
}

/// The ids of the uploads a job's request attached ([`ATTACHMENT_IDS`]), none when it names
/// none.
fn attachment_ids(request: &Value) -> Result<Vec<Uuid>, Outcome> {
    let Some(ids) = request.get(ATTACHMENT_IDS) else {
        return Ok(Vec::new());
    };
    serde_json::from_value(ids.clone())
        .map_err(|e| Outcome::permanent(format!("invalid job payload: attachment ids: {e}")))
}

/// Adds the scaffold a finished app is exported with (`scaffolded` paths, `setup_commands`).
fn annotate_scaffold(value: &mut Value, app: &GeneratedApp) {
    let scaffold = scaffold(&app.name, &app.files, &app.dependencies);
    if let Value::Object(map) = value {
        map.insert("scaffolded".into(), json!(scaffold.paths()));
        map.insert("setup_commands".into(), json!(scaffold.commands));
    }
}

enum Failure {
    Input(String),
    Llm(appforge_llm::Error),
    Apps(appforge_apps::Error),
}

impl Failure {
    /// What the attempt spent, given the usage the pipeline reported last: a cancelled run
    /// says its own total, an interrupted stream adds the round it cut short.
    fn spent(&self, reported: Usage) -> Usage {
        match self {
            Self::Llm(error) => match (error.usage(), error.partial_message()) {
                (Some(usage), _) => *usage,
                (None, Some(partial)) => {
                    let mut total = reported;
                    total.input_tokens += partial.usage.input_tokens;
                    total.output_tokens += partial.usage.output_tokens;
                    total
                }
                (None, None) => reported,
            },
            Self::Input(_) | Self::Apps(_) => reported,
        }
    }

    /// The attempt's outcome. A failure the request or the user caused starts with
    /// [`REQUEST_ERROR`] (the settlement charges it): the model refusing the request, the app
    /// deleted or changed while the job ran. Anything else is ours or the provider's.
    fn into_outcome(self) -> Outcome {
        match self {
            Self::Input(message) => Outcome::permanent(message),
            Self::Llm(error) if error.is_retryable() => match error.retry_after() {
                Some(after) => Outcome::retry_after(error.to_string(), after),
                None => Outcome::retry(error.to_string()),
            },
            Self::Llm(error @ appforge_llm::Error::Refused { .. }) => {
                Outcome::permanent(format!("{REQUEST_ERROR}{error}"))
            }
            Self::Llm(error) => Outcome::permanent(error.to_string()),
            Self::Apps(error) if error.is_retryable() => Outcome::retry(error.to_string()),
            Self::Apps(error) => Outcome::permanent(match error.conflict_path() {
                Some(path) => format!(
                    "{REQUEST_ERROR}the app changed while this generation ran and {path:?} no \
                     longer takes the change: {error}"
                ),
                None if error.is_not_found() => {
                    format!("{REQUEST_ERROR}the app was deleted while this generation ran: {error}")
                }
                None => format!("the result cannot be saved: {error}"),
            }),
        }
    }
}

/// The saved app a job builds on (`appId`, `baseVersion` in its payload).
fn target_of(payload: &Value) -> Result<Option<(Uuid, u32)>, String> {
    let Some(app) = payload.get("appId") else {
        return Ok(None);
    };
    let app: Uuid = serde_json::from_value(app.clone())
        .map_err(|e| format!("invalid job payload: appId: {e}"))?;
    let base = payload
        .get("baseVersion")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| "invalid job payload: baseVersion".to_owned())?;
    Ok(Some((app, base)))
}

/// Where a finished generation is saved: a new app, or the next version of the one the job
/// was started from. Keyed by the job id, so a retried job saves once.
struct SaveTo<A> {
    apps: A,
    /// The job's space: the app is saved there.
    owner: Owner,
    /// The job's submitter, recorded as the creator of a new app.
    created_by: Uuid,
    job: Uuid,
    prompt: Option<String>,
    target: Option<(Uuid, u32)>,
    /// The uploads the request attached: the saved version records them.
    attachments: Vec<Uuid>,
    started: std::time::Instant,
}

/// A library title from a model's app name: its first line, without control characters,
/// at most [`MAX_TITLE_CHARS`] characters; "Untitled app" when nothing is left.
fn title_of(name: &str) -> String {
    let line = name.lines().map(str::trim).find(|l| !l.is_empty());
    let title: String = line
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TITLE_CHARS)
        .collect();
    match title.trim() {
        "" => "Untitled app".to_owned(),
        t => t.to_owned(),
    }
}

/// The app and version a job saved, added to its result as `appId` and `version`.
struct SavedAt {
    app: Uuid,
    version: u32,
}

impl SavedAt {
    fn annotate(&self, value: &mut Value) {
        if let Value::Object(map) = value {
            map.insert("app_id".into(), json!(self.app));
            map.insert("version".into(), json!(self.version));
        }
    }
}

impl<A: AppStore> SaveTo<A> {
    fn version(&self, version: NewVersion, usage: Usage) -> NewVersion {
        let version = version
            .job(self.job)
            .tokens(usage.input_tokens, usage.output_tokens)
            .duration(self.started.elapsed())
            .attachments(self.attachments.clone());
        match &self.prompt {
            Some(prompt) => version.prompt(prompt.clone()),
            None => version,
        }
    }

    async fn full_app(&self, app: &GeneratedApp) -> Result<SavedAt, Failure> {
        let mut version = self.version(NewVersion::files(app.files.clone()), app.usage);
        if !app.change_summary.trim().is_empty() {
            version = version.summary(app.change_summary.clone());
        }
        let saved = match self.target {
            Some((id, base)) => self.apps.add_version(self.owner, id, base, version).await,
            None => {
                let title = title_of(&app.name);
                let metadata = json!({
                    "appType": app.app_type,
                    "dependencies": app.dependencies,
                    "setupInstructions": app.setup_instructions,
                });
                let new = NewApp::new(title, version)
                    .description(app.description.clone())
                    .metadata(metadata)
                    .created_by(self.created_by);
                self.apps.create_app(self.owner, new).await
            }
        }
        .map_err(Failure::Apps)?;
        Ok(SavedAt {
            app: saved.app.id,
            version: saved.version.info.number,
        })
    }

    /// Saves a change set as the next version, when the job was started from a saved app.
    async fn modification(&self, change: &Modification) -> Result<Option<SavedAt>, Failure> {
        let Some((id, base)) = self.target else {
            return Ok(None);
        };
        let version = self.version(
            NewVersion::change_set(change.change_set.clone()),
            change.usage,
        );
        let saved = self
            .apps
            .add_version(self.owner, id, base, version)
            .await
            .map_err(Failure::Apps)?;
        Ok(Some(SavedAt {
            app: saved.app.id,
            version: saved.version.info.number,
        }))
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|e| Failure::Input(format!("invalid job payload: {e}")))
}

/// Sends the pipeline's reports as job progress, in order, until the pipeline ends.
async fn forward(mut rx: mpsc::UnboundedReceiver<Progress>, ctx: &JobContext) {
    while let Some(progress) = rx.recv().await {
        if let Err(error) = ctx.progress(progress).await {
            tracing::debug!(%error, "progress not recorded");
        }
    }
}

/// The job progress a pipeline report becomes: files and tokens; text deltas stay local.
fn job_progress(progress: appforge_llm::Progress) -> Option<Progress> {
    match progress {
        appforge_llm::Progress::FileStarted { path } => Some(Progress::FileStarted { path }),
        appforge_llm::Progress::FileCompleted { path, .. } => {
            Some(Progress::FileCompleted { path })
        }
        appforge_llm::Progress::Usage { usage } => Some(Progress::Tokens {
            input: usage.input_tokens,
            output: usage.output_tokens,
        }),
        _ => None,
    }
}

/// Results answer in camelCase: the result's own keys and its `usage` are renamed; data inside
/// it (file contents, package names, change-set edits) is left as the model wrote it.
#[must_use]
pub fn camel_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = if key == "usage" {
                        camel_case_keys(value)
                    } else {
                        value
                    };
                    (camel(&key), value)
                })
                .collect(),
        ),
        other => other,
    }
}

/// `snake_case` to `camelCase`.
#[must_use]
pub fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_one_clean_line_of_bounded_length() {
        assert_eq!(title_of("  Focus Todo \nextra"), "Focus Todo");
        assert_eq!(title_of("\n\n Habits\u{7}"), "Habits");
        assert_eq!(title_of("  \n "), "Untitled app");
        assert_eq!(title_of(&"x".repeat(500)).chars().count(), MAX_TITLE_CHARS);
    }

    fn error_of(outcome: &Outcome) -> &str {
        match outcome {
            Outcome::Permanent { error, .. } | Outcome::Retryable { error, .. } => error,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn failures_the_user_caused_are_marked_and_ours_are_not() {
        let app = Uuid::new_v4();
        let deleted = Failure::Apps(appforge_apps::Error::AppNotFound(app)).into_outcome();
        assert!(matches!(deleted, Outcome::Permanent { .. }));
        assert!(error_of(&deleted).starts_with(REQUEST_ERROR), "{deleted:?}");
        let conflict = Failure::Apps(appforge_apps::Error::Conflict {
            path: "src/App.tsx".into(),
            base: 1,
            current: 2,
        })
        .into_outcome();
        assert!(
            error_of(&conflict).starts_with(REQUEST_ERROR),
            "{conflict:?}"
        );
        let refused = Failure::Llm(appforge_llm::Error::Refused {
            pipeline: "full_app",
            partial: String::new(),
        })
        .into_outcome();
        assert!(error_of(&refused).starts_with(REQUEST_ERROR), "{refused:?}");
        // Ours or the provider's: never marked.
        let unreadable = Failure::Llm(appforge_llm::Error::Stream {
            block: None,
            detail: "ended early".into(),
        })
        .into_outcome();
        assert!(!error_of(&unreadable).starts_with(REQUEST_ERROR));
        let lost = Failure::Llm(appforge_llm::Error::Connection {
            message: "reset".into(),
            meta: None,
        })
        .into_outcome();
        assert!(matches!(lost, Outcome::Retryable { .. }));
        assert!(!error_of(&lost).starts_with(REQUEST_ERROR));
        let ours = Failure::Input("invalid job payload: request".into()).into_outcome();
        assert!(!error_of(&ours).starts_with(REQUEST_ERROR));
    }

    #[test]
    fn a_stopped_run_reports_its_own_total() {
        let mut reported = Usage::default();
        reported.input_tokens = 100;
        let mut stopped = Usage::default();
        stopped.input_tokens = 150;
        stopped.output_tokens = 20;
        let cancelled = Failure::Llm(appforge_llm::Error::Cancelled {
            pipeline: "full_app",
            usage: stopped,
        });
        assert_eq!(cancelled.spent(reported), stopped);
        let saved = Failure::Apps(appforge_apps::Error::AppNotFound(Uuid::new_v4()));
        assert_eq!(saved.spent(reported), reported);
    }

    #[test]
    fn result_keys_become_camel_case_but_data_does_not() {
        let value = json!({
            "app_type": "react",
            "usage": { "input_tokens": 1 },
            "dependencies": { "some_package": "1" },
        });
        assert_eq!(
            camel_case_keys(value),
            json!({
                "appType": "react",
                "usage": { "inputTokens": 1 },
                "dependencies": { "some_package": "1" },
            })
        );
    }
}
