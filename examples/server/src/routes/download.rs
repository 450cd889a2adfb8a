//! A finished job's app: `GET /api/jobs/{id}/app` (files, dependencies, setup) and
//! `GET /api/jobs/{id}/zip` (the same files as a `.zip` archive).
//!
//! A `full_app` job's app is its result; a `modify` job's app is the app it was given with its
//! change set applied. Either way every path is checked with `validate_path` and written
//! normalised, and a path given twice is kept once (the last content given for it): the
//! files of a `modify` job are the user's own, as they sent them.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use appforge_jobs::{Job, JobId, JobStatus};
use appforge_llm::protocol::scaffold;
use appforge_llm::{AppFile, ChangeSet, ModifyRequest, PathError, validate_path};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::routes::{IdParam, Space};
use crate::state::AppState;
use crate::work::{FULL_APP, MODIFY};

/// A generated or modified app, with the project files it lacked (`scaffolded`) among its
/// files, so that it installs and builds as delivered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppView {
    name: String,
    files: Vec<AppFile>,
    dependencies: BTreeMap<String, String>,
    setup_instructions: Option<String>,
    /// The paths of the files added by scaffolding (`package.json`, `tsconfig.json`, ...).
    scaffolded: Vec<String>,
    /// The commands that install and run it, as its README says them.
    setup_commands: Vec<String>,
}

impl AppView {
    /// The app with the project files it lacks added after its own.
    fn new(
        name: String,
        files: &[AppFile],
        dependencies: BTreeMap<String, String>,
        setup_instructions: Option<String>,
    ) -> Self {
        let scaffold = scaffold(&name, files, &dependencies);
        Self {
            scaffolded: scaffold.paths().into_iter().map(str::to_owned).collect(),
            setup_commands: scaffold.commands.clone(),
            files: scaffold.complete(files),
            name,
            dependencies,
            setup_instructions,
        }
    }
}

async fn finished_job(state: &AppState, space: &Space, raw: &str) -> Result<Job, ApiError> {
    let id = JobId::from_str(raw).map_err(|_| ApiError::not_found("job"))?;
    let job = state.queue().get(space.owner, id).await.map_err(|e| {
        if e.is_not_found() {
            ApiError::not_found("job")
        } else {
            ApiError::internal(&e)
        }
    })?;
    if job.status != JobStatus::Completed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_completed",
            format!("the job is {}, not completed", job.status.as_str()),
        ));
    }
    Ok(job)
}

/// `422 invalid_path` naming a stored path that `validate_path` refuses.
pub(crate) fn invalid_path(error: &PathError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_path",
        format!("the app holds a file that cannot be exported: {error}"),
    )
    .with_details(json!({ "path": error.path }))
}

/// `files` with their paths checked and normalised, each path once: at its first place,
/// with the content given last for it, as writing the files in order would leave it.
fn checked(files: Vec<AppFile>) -> Result<Vec<AppFile>, ApiError> {
    let mut out: Vec<AppFile> = Vec::with_capacity(files.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(files.len());
    for mut file in files {
        file.path = validate_path(&file.path).map_err(|e| invalid_path(&e))?;
        match seen.get(&file.path) {
            Some(&at) => out[at] = file,
            None => {
                seen.insert(file.path.clone(), out.len());
                out.push(file);
            }
        }
    }
    Ok(out)
}

/// The app a completed job produced, its paths checked and each written once.
pub(crate) fn app_of(job: &Job) -> Result<AppView, ApiError> {
    let result = job.result.as_ref().unwrap_or(&Value::Null);
    let no_app = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_app",
            format!("a {} job has no app to download", job.kind),
        )
    };
    // The app was deleted and purged, and its files erased from its jobs.
    if result.get("filesPurged") == Some(&Value::Bool(true)) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "files_purged",
            "the app this job made or changed was deleted and purged, with its files",
        ));
    }
    match job.kind.as_str() {
        FULL_APP => {
            let files: Vec<AppFile> =
                serde_json::from_value(result["files"].clone()).map_err(|_| {
                    ApiError::internal(&std::io::Error::other("stored files unreadable"))
                })?;
            let dependencies =
                serde_json::from_value(result["dependencies"].clone()).unwrap_or_default();
            Ok(AppView::new(
                result["name"].as_str().unwrap_or("app").to_owned(),
                &checked(files)?,
                dependencies,
                result["setupInstructions"].as_str().map(str::to_owned),
            ))
        }
        MODIFY => {
            let request: ModifyRequest =
                serde_json::from_value(job.payload["request"].clone()).map_err(|_| no_app())?;
            let change: ChangeSet =
                serde_json::from_value(result["changeSet"].clone()).map_err(|_| no_app())?;
            // The user's files as they sent them: normalised first, so that the change (whose
            // paths the parser normalised) finds them.
            let files = change.apply(&checked(request.app)?).map_err(|e| {
                ApiError::new(StatusCode::CONFLICT, "change_not_applicable", e.to_string())
            })?;
            Ok(AppView::new(
                "modified-app".to_owned(),
                &checked(files)?,
                BTreeMap::new(),
                None,
            ))
        }
        _ => Err(no_app()),
    }
}

pub(crate) async fn app(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<axum::Json<AppView>, ApiError> {
    let job = finished_job(&state, &space, &id).await?;
    Ok(axum::Json(app_of(&job)?))
}

pub(crate) async fn zip(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<Response, ApiError> {
    let job = finished_job(&state, &space, &id).await?;
    let app = app_of(&job)?;
    let bytes = archive(&app).map_err(|e| match e {
        appforge_apps::Error::InvalidPath(path) => invalid_path(&path),
        e => ApiError::internal(&e),
    })?;
    let name = file_name(&app.name);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.zip\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// The archive: each file under its path (the scaffolded project files included), deflated,
/// plus `SETUP.md` with the generation's setup notes when it has some and no file of that
/// name. The apps crate's [`zip_files`](appforge_apps::zip_files) checks every path again and
/// writes each once.
fn archive(app: &AppView) -> appforge_apps::Result<Vec<u8>> {
    let taken = |name: &str| app.files.iter().any(|f| f.path == name);
    let mut entries: Vec<(&str, &[u8])> = app
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_bytes()))
        .collect();
    if let Some(setup) = &app.setup_instructions
        && !taken("SETUP.md")
    {
        entries.push(("SETUP.md", setup.as_bytes()));
    }
    appforge_apps::zip_files(entries)
}

/// A safe download name: letters, digits, `-` and `_` only.
fn file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "app".to_owned()
    } else {
        trimmed.chars().take(64).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archives_every_file_the_project_files_and_the_setup() {
        let app = AppView::new(
            "Todo".into(),
            &[
                AppFile::new("src/App.tsx", "export default 1;\n"),
                AppFile::new("index.html", "<!doctype html>"),
            ],
            BTreeMap::from([("react".to_owned(), "^18".to_owned())]),
            Some("npm install".into()),
        );
        assert_eq!(
            app.scaffolded,
            [
                "package.json",
                "tsconfig.json",
                "vite.config.ts",
                ".gitignore",
                "README.md"
            ]
        );
        assert_eq!(
            app.setup_commands,
            ["npm install", "npm run dev", "npm run build"]
        );
        let bytes = archive(&app).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".gitignore",
                "README.md",
                "SETUP.md",
                "index.html",
                "package.json",
                "src/App.tsx",
                "tsconfig.json",
                "vite.config.ts"
            ]
        );
        let mut package = String::new();
        zip.by_name("package.json")
            .unwrap()
            .read_to_string(&mut package)
            .unwrap();
        let package: Value = serde_json::from_str(&package).unwrap();
        assert_eq!(package["dependencies"]["react"], "^18");
        let mut text = String::new();
        zip.by_name("src/App.tsx")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "export default 1;\n");
    }

    fn modify_job(app: &[AppFile], change: &ChangeSet) -> Job {
        let request = json!({ "request": "change it", "app": app });
        serde_json::from_value(json!({
            "id": JobId::new(),
            "user_id": uuid::Uuid::new_v4(),
            "kind": MODIFY,
            "status": "completed",
            "priority": 0,
            "payload": { "request": request },
            "result": { "changeSet": change },
            "attempt": 1,
            "max_attempts": 3,
            "created_at": chrono::Utc::now(),
            "run_at": chrono::Utc::now(),
            "cancel_requested": false,
        }))
        .unwrap()
    }

    #[test]
    fn a_modify_jobs_duplicate_and_untidy_paths_are_written_once() {
        let app = vec![
            AppFile::new("src/App.tsx", "old"),
            AppFile::new("./README.md", "first"),
            AppFile::new("README.md", "second"),
            AppFile::new("src//App.tsx", "<main/>"),
        ];
        let change = ChangeSet {
            summary: None,
            changes: vec![appforge_llm::FileChange::Create {
                path: "src/new.ts".into(),
                content: "new".into(),
            }],
        };
        let view = app_of(&modify_job(&app, &change)).unwrap();
        let files: Vec<(&str, &str)> = view
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.content.as_str()))
            .collect();
        assert_eq!(
            files[..3],
            [
                ("src/App.tsx", "<main/>"),
                ("README.md", "second"),
                ("src/new.ts", "new"),
            ]
        );
        // The user's README is kept; the project files it lacks follow.
        assert_eq!(
            view.scaffolded,
            ["package.json", "tsconfig.json", ".gitignore"]
        );
        let bytes = archive(&view).unwrap();
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 6);
    }

    #[test]
    fn a_modify_jobs_hostile_path_is_refused_by_name() {
        for path in ["../../etc/passwd", ".GIT/config", "nul.txt", "a\u{202e}b"] {
            let app = vec![AppFile::new(path, "x")];
            let change = ChangeSet {
                summary: None,
                changes: Vec::new(),
            };
            let error = app_of(&modify_job(&app, &change)).unwrap_err();
            assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
            assert!(format!("{error:?}").contains("invalid_path"), "{path}");
        }
    }

    #[test]
    fn download_names_are_safe() {
        assert_eq!(file_name("Habit Tracker!"), "habit-tracker");
        assert_eq!(file_name("\"; rm -rf /"), "rm--rf");
        assert_eq!(file_name("..."), "app");
    }
}
