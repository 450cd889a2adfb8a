//! A finished job's app: `GET /api/jobs/{id}/app` (files, dependencies, setup) and
//! `GET /api/jobs/{id}/zip` (the same files as a `.zip` archive).
//!
//! A `full_app` job's app is its result; a `modify` job's app is the app it was given with its
//! change set applied.

use std::collections::BTreeMap;
use std::io::Write;
use std::str::FromStr;

use appforge_jobs::{Job, JobId, JobStatus};
use appforge_llm::{AppFile, ChangeSet, ModifyRequest};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::work::{FULL_APP, MODIFY};

/// A generated or modified app.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppView {
    name: String,
    files: Vec<AppFile>,
    dependencies: BTreeMap<String, String>,
    setup_instructions: Option<String>,
}

async fn finished_job(state: &AppState, user: &AuthUser, raw: &str) -> Result<Job, ApiError> {
    let id = JobId::from_str(raw).map_err(|_| ApiError::not_found("job"))?;
    let job = state.queue().get(user.id, id).await.map_err(|e| {
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

/// The app a completed job produced.
pub(crate) fn app_of(job: &Job) -> Result<AppView, ApiError> {
    let result = job.result.as_ref().unwrap_or(&Value::Null);
    let no_app = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_app",
            format!("a {} job has no app to download", job.kind),
        )
    };
    match job.kind.as_str() {
        FULL_APP => {
            let files: Vec<AppFile> =
                serde_json::from_value(result["files"].clone()).map_err(|_| {
                    ApiError::internal(&std::io::Error::other("stored files unreadable"))
                })?;
            let dependencies =
                serde_json::from_value(result["dependencies"].clone()).unwrap_or_default();
            Ok(AppView {
                name: result["name"].as_str().unwrap_or("app").to_owned(),
                files,
                dependencies,
                setup_instructions: result["setupInstructions"].as_str().map(str::to_owned),
            })
        }
        MODIFY => {
            let request: ModifyRequest =
                serde_json::from_value(job.payload["request"].clone()).map_err(|_| no_app())?;
            let change: ChangeSet =
                serde_json::from_value(result["changeSet"].clone()).map_err(|_| no_app())?;
            let files = change.apply(&request.app).map_err(|e| {
                ApiError::new(StatusCode::CONFLICT, "change_not_applicable", e.to_string())
            })?;
            Ok(AppView {
                name: "modified-app".to_owned(),
                files,
                dependencies: BTreeMap::new(),
                setup_instructions: None,
            })
        }
        _ => Err(no_app()),
    }
}

pub(crate) async fn app(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<AppView>, ApiError> {
    let job = finished_job(&state, &user, &id).await?;
    Ok(axum::Json(app_of(&job)?))
}

pub(crate) async fn zip(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = finished_job(&state, &user, &id).await?;
    let app = app_of(&job)?;
    let bytes = archive(&app).map_err(|e| ApiError::internal(&e))?;
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

/// The archive: each file under its (already validated, relative) path, deflated, plus
/// `DEPENDENCIES.txt` and `SETUP.md` when the app has dependencies or setup steps and no file
/// of that name.
fn archive(app: &AppView) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for file in &app.files {
        writer.start_file(file.path.as_str(), options)?;
        writer.write_all(file.content.as_bytes())?;
    }
    let taken = |name: &str| app.files.iter().any(|f| f.path == name);
    if !app.dependencies.is_empty() && !taken("DEPENDENCIES.txt") {
        writer.start_file("DEPENDENCIES.txt", options)?;
        for (package, version) in &app.dependencies {
            writeln!(writer, "{package}: {version}")?;
        }
    }
    if let Some(setup) = &app.setup_instructions
        && !taken("SETUP.md")
    {
        writer.start_file("SETUP.md", options)?;
        writer.write_all(setup.as_bytes())?;
    }
    Ok(writer.finish()?.into_inner())
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
    fn archives_every_file_and_the_setup() {
        let app = AppView {
            name: "Todo".into(),
            files: vec![
                AppFile::new("src/App.tsx", "export default 1;\n"),
                AppFile::new("index.html", "<!doctype html>"),
            ],
            dependencies: BTreeMap::from([("react".to_owned(), "^18".to_owned())]),
            setup_instructions: Some("npm install".into()),
        };
        let bytes = archive(&app).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            ["DEPENDENCIES.txt", "SETUP.md", "index.html", "src/App.tsx"]
        );
        let mut text = String::new();
        zip.by_name("src/App.tsx")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "export default 1;\n");
    }

    #[test]
    fn download_names_are_safe() {
        assert_eq!(file_name("Habit Tracker!"), "habit-tracker");
        assert_eq!(file_name("\"; rm -rf /"), "rm--rf");
        assert_eq!(file_name("..."), "app");
    }
}
