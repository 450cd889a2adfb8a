//! Purging deleted apps for good: the app store forgets them after its retention, and the
//! generation flow first erases their files from the jobs that made or changed them, so that
//! a purged app does not live on in a job's request or result.

use std::collections::HashMap;

use appforge_apps::AppStore;
use appforge_core::Owner;
use appforge_jobs::JobStore;
use appforge_quota::UsageStore;
use serde_json::Value;
use uuid::Uuid;

use super::GenerationService;

/// Apps read per purge batch.
const PURGE_BATCH: u32 = 100;

/// What [`GenerationService::purge_expired_apps`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Apps removed for good.
    pub purged_apps: u64,
    /// Jobs whose payload or result lost a purged app's files.
    pub redacted_jobs: u64,
    /// Steps that failed (logged; the next pass tries again).
    pub errors: u64,
}

impl<J: JobStore, U: UsageStore + 'static, A: AppStore + Clone + 'static>
    GenerationService<J, U, A>
{
    /// Purges the apps deleted longer ago than the app store's retention, in batches. Each
    /// app's files are first erased from the finished jobs of its space (the user's, or the
    /// org's) that refer to it; an app whose jobs could not be rewritten is kept for the next
    /// pass. Safe to run in several processes at once: erasures and purges are idempotent.
    pub async fn purge_expired_apps(&self) -> PurgeReport {
        let mut report = PurgeReport::default();
        loop {
            let expired = match self.apps().expired_apps(PURGE_BATCH).await {
                Ok(expired) => expired,
                Err(error) => {
                    tracing::warn!(%error, "listing apps past their retention failed");
                    report.errors += 1;
                    break;
                }
            };
            if expired.is_empty() {
                break;
            }
            // One pass over each space's jobs for all of its apps in the batch.
            let mut by_space: HashMap<Owner, Vec<Uuid>> = HashMap::new();
            for app in &expired {
                by_space.entry(app.owner()).or_default().push(app.id);
            }
            let mut erased = Vec::with_capacity(expired.len());
            for (owner, apps) in by_space {
                match self
                    .queue()
                    .redact_finished(owner, |payload, result| {
                        erase_app_files(&apps, payload, result)
                    })
                    .await
                {
                    Ok(redacted) => {
                        report.redacted_jobs += redacted;
                        erased.extend(apps);
                    }
                    Err(error) => {
                        tracing::warn!(?owner, %error, "erasing purged apps' files from their jobs failed");
                        report.errors += 1;
                    }
                }
            }
            let purged = match self.apps().purge_apps(&erased).await {
                Ok(purged) => purged,
                Err(error) => {
                    tracing::warn!(%error, "purging deleted apps failed");
                    report.errors += 1;
                    break;
                }
            };
            report.purged_apps += purged;
            // A short batch was the last one; one where nothing could be purged would come
            // back unchanged.
            if purged == 0 || expired.len() < usize::try_from(PURGE_BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        if report.purged_apps > 0 {
            tracing::info!(
                purged = report.purged_apps,
                redacted_jobs = report.redacted_jobs,
                "purged deleted apps past their retention"
            );
        }
        report
    }
}

/// Erases the files of `apps` from a job that refers to one of them (its `appId`, in the
/// payload for a job started from the app, in the result for the job that created it): the
/// files the request carried and the files or change set the result holds. Whether anything
/// changed.
fn erase_app_files(apps: &[Uuid], payload: &mut Value, result: &mut Option<Value>) -> bool {
    let names = |value: &Value| {
        value
            .get("appId")
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<Uuid>().ok())
            .is_some_and(|id| apps.contains(&id))
    };
    if !names(payload) && !result.as_ref().is_some_and(names) {
        return false;
    }
    let mut changed = false;
    if let Some(request) = payload.get_mut("request").and_then(Value::as_object_mut) {
        for key in ["app", "current_app", "currentApp"] {
            if request.get(key).is_some_and(|files| !is_empty(files)) {
                request.insert(key.to_owned(), Value::Array(Vec::new()));
                changed = true;
            }
        }
    }
    if let Some(result) = result.as_mut().and_then(Value::as_object_mut) {
        for key in ["files", "changeSet", "change_set"] {
            changed |= result.remove(key).is_some();
        }
        if changed {
            result.insert("filesPurged".to_owned(), Value::Bool(true));
        }
    }
    changed
}

fn is_empty(files: &Value) -> bool {
    match files {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::erase_app_files;

    #[test]
    fn only_jobs_naming_the_app_lose_its_files() {
        let app = Uuid::new_v4();
        let files = json!([{ "path": "src/App.tsx", "content": "<main />" }]);
        // A modify job started from the app.
        let mut payload = json!({ "appId": app, "request": { "request": "x", "app": files } });
        let mut result = Some(json!({ "changeSet": { "files": [] }, "appId": app, "version": 2 }));
        assert!(erase_app_files(&[app], &mut payload, &mut result));
        assert_eq!(payload["request"]["app"], json!([]));
        assert_eq!(
            result,
            Some(json!({ "appId": app, "version": 2, "filesPurged": true }))
        );
        // Again: nothing left to erase.
        assert!(!erase_app_files(&[app], &mut payload, &mut result));

        // The job that created the app names it in its result only.
        let mut payload = json!({ "request": { "prompt": "x", "current_app": files } });
        let mut result = Some(json!({ "files": files, "appId": app, "name": "Habits" }));
        assert!(erase_app_files(&[app], &mut payload, &mut result));
        assert_eq!(payload["request"]["current_app"], json!([]));
        assert_eq!(result.as_ref().unwrap().get("files"), None);
        assert_eq!(result.as_ref().unwrap()["name"], "Habits");

        // Another app's job is left alone.
        let mut payload = json!({ "request": { "app": files } });
        let mut result = Some(json!({ "files": files, "appId": Uuid::new_v4() }));
        let before = (payload.clone(), result.clone());
        assert!(!erase_app_files(&[app], &mut payload, &mut result));
        assert_eq!((payload, result), before);
    }
}
