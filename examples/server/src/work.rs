//! The job handlers: `full_app`, `modify` and `plan_phases` run the llm pipelines, report
//! progress as job events and honour cancellation. A finished `full_app` is saved as a new app
//! (or the next version of the app it was started from), a finished `modify` started from a
//! saved app as that app's next version. The server runs them in-process and the
//! `appforge-worker` binary runs the same ones in a separate process.

use std::time::Duration;

use appforge_apps::{AnyAppStore, AppStore, MAX_TITLE_CHARS, NewApp, NewVersion};
use appforge_jobs::{AnyJobStore, JobContext, Outcome, Progress, WorkerPool, WorkerPoolBuilder};
use appforge_llm::{FullAppRequest, GeneratedApp, Modification, ModifyRequest, PlanRequest, Usage};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::state::AppState;

/// The job kind of a whole-app generation.
pub const FULL_APP: &str = "full_app";
/// The job kind of a change to an existing app.
pub const MODIFY: &str = "modify";
/// The job kind of a phase plan.
pub const PLAN_PHASES: &str = "plan_phases";

/// Registers the generation handlers on `builder`.
#[must_use]
pub fn register(
    builder: WorkerPoolBuilder<AnyJobStore>,
    state: &AppState,
) -> WorkerPoolBuilder<AnyJobStore> {
    let full = state.clone();
    let modify = state.clone();
    let plan = state.clone();
    builder
        .handler(FULL_APP, move |ctx| run(full.clone(), ctx))
        .handler(MODIFY, move |ctx| run(modify.clone(), ctx))
        .handler(PLAN_PHASES, move |ctx| run(plan.clone(), ctx))
}

/// Starts a worker pool of `concurrency` slots running the generation handlers.
///
/// # Errors
///
/// The pool's configuration error.
pub fn start(state: &AppState, concurrency: u32) -> appforge_jobs::Result<WorkerPool<AnyJobStore>> {
    register(WorkerPool::builder(state.queue().clone()), state)
        .concurrency(concurrency)
        .lease(Duration::from_secs(60))
        .heartbeat(Duration::from_secs(15))
        .start()
}

async fn run(state: AppState, ctx: JobContext) -> Outcome {
    let kind = ctx.job().kind.clone();
    let request = ctx.payload().get("request").cloned().unwrap_or(Value::Null);
    let target = match target_of(ctx.payload()) {
        Ok(target) => target,
        Err(message) => return Outcome::permanent(message),
    };
    let save = SaveTo {
        apps: state.apps().clone(),
        user: ctx.job().user_id,
        job: ctx.job().id.into(),
        prompt: ctx
            .payload()
            .get("prompt")
            .and_then(Value::as_str)
            .map(str::to_owned),
        target,
        started: std::time::Instant::now(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let report = move |progress: appforge_llm::Progress| {
        if let Some(p) = job_progress(progress) {
            // The receiver lives as long as the pipeline runs.
            let _ = tx.send(p);
        }
    };
    let pipelines = state.pipelines();
    let cancel = ctx.cancellation().clone();
    let work = async move {
        match kind.as_str() {
            FULL_APP => {
                let request: FullAppRequest = decode(request)?;
                let app = pipelines
                    .full_app(&request, report, &cancel)
                    .await
                    .map_err(Failure::Llm)?;
                let saved = save.full_app(&app).await?;
                let mut value = serde_json::to_value(&app).unwrap_or(Value::Null);
                saved.annotate(&mut value);
                Ok((value, app.usage))
            }
            MODIFY => {
                let request: ModifyRequest = decode(request)?;
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
                let request: PlanRequest = decode(request)?;
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
    // A panic or an error report from the handler carries the job's and user's ids.
    let hub = state
        .reporting()
        .job_hub(ctx.job().id.into(), ctx.job().user_id);
    let work = async { tokio::join!(work, forward(rx, &ctx)) };
    let (result, ()) = match hub {
        Some(hub) => sentry::SentryFutureExt::bind_hub(work, hub).await,
        None => work.await,
    };
    // What a stopped generation spent is recorded with the cancellation (and charged: the
    // user stopped it after it ran).
    let spent = match &result {
        Err(Failure::Llm(error)) => error.usage().copied(),
        _ => None,
    };
    let failure = match result {
        Ok((value, usage)) => {
            let mut value = camel_case_keys(value);
            if let Value::Object(map) = &mut value {
                map.insert("provider".into(), json!(state.provider()));
            }
            let (input, output) = token_counts(usage);
            return Outcome::success(value).with_tokens(input, output);
        }
        Err(Failure::Input(message)) => Outcome::permanent(message),
        Err(Failure::Llm(error)) if error.is_retryable() => match error.retry_after() {
            Some(after) => Outcome::retry_after(error.to_string(), after),
            None => Outcome::retry(error.to_string()),
        },
        Err(Failure::Llm(error)) => Outcome::permanent(error.to_string()),
        Err(Failure::Apps(error)) if error.is_retryable() => Outcome::retry(error.to_string()),
        Err(Failure::Apps(error)) => Outcome::permanent(match error.conflict_path() {
            Some(path) => format!(
                "the app changed while this generation ran and {path:?} no longer takes the \
                 change: {error}"
            ),
            None => format!("the result cannot be saved: {error}"),
        }),
    };
    match spent {
        Some(usage) => {
            let (input, output) = token_counts(usage);
            failure.with_tokens(input, output)
        }
        None => failure,
    }
}

fn token_counts(usage: Usage) -> (i64, i64) {
    (
        i64::try_from(usage.input_tokens).unwrap_or(i64::MAX),
        i64::try_from(usage.output_tokens).unwrap_or(i64::MAX),
    )
}

enum Failure {
    Input(String),
    Llm(appforge_llm::Error),
    Apps(appforge_apps::Error),
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
struct SaveTo {
    apps: AnyAppStore,
    user: Uuid,
    job: Uuid,
    prompt: Option<String>,
    target: Option<(Uuid, u32)>,
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

impl SaveTo {
    fn version(&self, version: NewVersion, usage: Usage) -> NewVersion {
        let version = version
            .job(self.job)
            .tokens(usage.input_tokens, usage.output_tokens)
            .duration(self.started.elapsed());
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
            Some((id, base)) => self.apps.add_version(self.user, id, base, version).await,
            None => {
                let title = title_of(&app.name);
                let metadata = json!({
                    "appType": app.app_type,
                    "dependencies": app.dependencies,
                    "setupInstructions": app.setup_instructions,
                });
                let new = NewApp::new(title, version)
                    .description(app.description.clone())
                    .metadata(metadata);
                self.apps.create_app(self.user, new).await
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
            .add_version(self.user, id, base, version)
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
        appforge_llm::Progress::Usage { usage } => Some(tokens(usage)),
        _ => None,
    }
}

fn tokens(usage: Usage) -> Progress {
    let (input, output) = token_counts(usage);
    Progress::Tokens { input, output }
}

/// The API answers in camelCase: the result's own keys and its `usage` are renamed; data
/// inside it (file contents, package names, change-set edits) is left as the model wrote it.
pub(crate) fn camel_case_keys(value: Value) -> Value {
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

pub(crate) fn camel(key: &str) -> String {
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
