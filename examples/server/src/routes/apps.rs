//! Saved apps: `GET /api/apps` (the library), one app at its latest or a given version, its
//! versions and diffs, restore, rename, soft delete and undelete, publish / unpublish, the
//! public preview `GET /p/{slug}` and the zip export. Owner-only except the preview.

use std::str::FromStr;

use appforge_apps::{
    App, AppPatch, AppStore, Cursor, ListApps, PublishedApp, Version, VersionDiff, VersionInfo,
};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// An app as the API shows it: its details and, while published, the preview's path.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppView {
    #[serde(flatten)]
    app: App,
    preview_path: Option<String>,
}

impl From<App> for AppView {
    fn from(app: App) -> Self {
        let preview_path = app
            .preview_slug
            .as_deref()
            .filter(|_| app.preview_enabled)
            .map(|slug| format!("/p/{slug}"));
        Self { app, preview_path }
    }
}

/// An app with one of its versions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppAt {
    app: AppView,
    version: Version,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    search: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
    #[serde(default)]
    deleted: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppList {
    items: Vec<AppView>,
    next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionList {
    items: Vec<VersionInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiffQuery {
    from: u32,
    to: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionQuery {
    version: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RestoreBody {
    version: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchBody {
    title: Option<String>,
    description: Option<String>,
    metadata: Option<Value>,
    is_public: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PublishBody {
    enabled: Option<bool>,
    version: Option<u32>,
}

/// The answer to an apps error: 404, 409 naming the file, 400, or a logged 500.
pub(crate) fn apps_error(error: &appforge_apps::Error) -> ApiError {
    use appforge_apps::Error;
    match error {
        Error::AppNotFound(_) => ApiError::not_found("app"),
        Error::VersionNotFound { .. } => ApiError::not_found("version"),
        Error::PreviewNotFound => ApiError::not_found("preview"),
        Error::Conflict { path, .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string())
                .with_details(json!({ "path": path }))
        }
        e if e.is_invalid_input() => ApiError::bad_request(e.to_string()),
        e => ApiError::internal(e),
    }
}

fn app_id(raw: &str) -> Result<Uuid, ApiError> {
    // An unparsable id is as unknown as another user's.
    Uuid::from_str(raw).map_err(|_| ApiError::not_found("app"))
}

fn query<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
}

async fn at(
    state: &AppState,
    user: Uuid,
    app: Uuid,
    number: Option<u32>,
) -> Result<AppAt, ApiError> {
    let stored = state
        .apps()
        .get_app(user, app)
        .await
        .map_err(|e| apps_error(&e))?;
    let number = number.unwrap_or(stored.current_version);
    let version = state
        .apps()
        .get_version(user, app, Some(number))
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(AppAt {
        app: stored.into(),
        version,
    })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    raw: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<AppList>, ApiError> {
    let q = query(raw)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 100"));
    }
    let mut request = ListApps::first(limit);
    if let Some(raw) = q.cursor {
        let cursor =
            Cursor::from_str(&raw).map_err(|_| ApiError::bad_request("invalid `cursor`"))?;
        request = request.after(cursor);
    }
    if let Some(search) = q.search {
        request = request.search(search);
    }
    if q.deleted {
        request = request.deleted();
    }
    let page = state
        .apps()
        .list_apps(user.id, &request)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(AppList {
        items: page.items.into_iter().map(AppView::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<AppAt>, ApiError> {
    Ok(axum::Json(at(&state, user.id, app_id(&id)?, None).await?))
}

pub(crate) async fn versions(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<VersionList>, ApiError> {
    let items = state
        .apps()
        .list_versions(user.id, app_id(&id)?)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(VersionList { items }))
}

pub(crate) async fn version(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, number)): Path<(String, String)>,
) -> Result<axum::Json<AppAt>, ApiError> {
    let number = number
        .parse::<u32>()
        .map_err(|_| ApiError::not_found("version"))?;
    Ok(axum::Json(
        at(&state, user.id, app_id(&id)?, Some(number)).await?,
    ))
}

pub(crate) async fn diff(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    raw: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<VersionDiff>, ApiError> {
    let q = query(raw)?;
    let diff = state
        .apps()
        .diff(user.id, app_id(&id)?, q.from, q.to)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(diff))
}

/// Stores an old version's files as a new version: `201 {app, version}`.
pub(crate) async fn restore(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<RestoreBody>,
) -> Result<Response, ApiError> {
    let saved = state
        .apps()
        .restore_version(user.id, app_id(&id)?, body.version)
        .await
        .map_err(|e| apps_error(&e))?;
    let body = AppAt {
        app: saved.app.into(),
        version: saved.version,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<PatchBody>,
) -> Result<axum::Json<AppView>, ApiError> {
    let mut patch = AppPatch::default();
    if let Some(title) = body.title {
        patch = patch.title(title);
    }
    if let Some(description) = body.description {
        patch = patch.description(description);
    }
    if let Some(metadata) = body.metadata {
        patch = patch.metadata(metadata);
    }
    if let Some(is_public) = body.is_public {
        patch = patch.is_public(is_public);
    }
    let app = state
        .apps()
        .update_app(user.id, app_id(&id)?, patch)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app.into()))
}

/// Deletes softly: the app can be restored with `POST /api/apps/{id}/undelete` within the
/// retention period.
pub(crate) async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<AppView>, ApiError> {
    let app = state
        .apps()
        .delete_app(user.id, app_id(&id)?)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app.into()))
}

pub(crate) async fn undelete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<AppView>, ApiError> {
    let app = state
        .apps()
        .undelete_app(user.id, app_id(&id)?)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app.into()))
}

/// Publishes (`{}` or `{version: n}`) or unpublishes (`{enabled: false}`); the body may be
/// empty.
pub(crate) async fn publish(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::Json<AppView>, ApiError> {
    let body: PublishBody = if body.iter().all(u8::is_ascii_whitespace) {
        PublishBody::default()
    } else {
        crate::extract::parse(&body)?
    };
    let id = app_id(&id)?;
    let result = if body.enabled == Some(false) {
        state.apps().unpublish(user.id, id).await
    } else {
        state.apps().publish(user.id, id, body.version).await
    };
    Ok(axum::Json(result.map_err(|e| apps_error(&e))?.into()))
}

pub(crate) async fn unpublish(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<AppView>, ApiError> {
    let app = state
        .apps()
        .unpublish(user.id, app_id(&id)?)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app.into()))
}

/// The published version of a published app, for anyone with the address.
pub(crate) async fn preview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<axum::Json<PublishedApp>, ApiError> {
    let app = state
        .apps()
        .published(&slug)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app))
}

/// The version (`?version=n`, default the current one) as `application/zip`.
pub(crate) async fn zip(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    raw: Result<Query<VersionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(raw)?;
    let app = app_id(&id)?;
    let bytes = state
        .apps()
        .export_zip(user.id, app, q.version)
        .await
        .map_err(|e| apps_error(&e))?;
    let name = match q.version {
        Some(n) => format!("app-{}-v{n}.zip", app.simple()),
        None => format!("app-{}.zip", app.simple()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
