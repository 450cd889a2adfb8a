//! Saved apps: `GET /api/apps` (the library), one app at its latest or a given version, its
//! versions and diffs, restore, rename, soft delete and undelete, publish / unpublish, the
//! public preview `GET /p/{slug}` (a page for browsers, JSON for API clients) and the zip
//! export. Owner-only except the preview.
//!
//! Lists are summaries (no metadata, descriptions and prompts cut short); a diff runs on a
//! blocking thread within `APPFORGE_DIFF_MAX_BYTES` and `APPFORGE_DIFF_TIMEOUT_MS`, one per
//! CPU at a time; descriptions and metadata have size limits on write (the apps crate's).

use std::str::FromStr;

use appforge_apps::{
    App, AppPatch, AppStore, Cursor, DiffLimits, ListApps, Version, VersionDiff, VersionInfo,
};
use appforge_core::Owner;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Json;
use crate::limits::Limits;
use crate::routes::{IdParam, Space};
use crate::state::AppState;

/// The most characters of a description or prompt a list shows.
pub(crate) const SUMMARY_CHARS: usize = 280;

/// `text` cut to [`SUMMARY_CHARS`] characters, with an ellipsis when it was cut.
pub(crate) fn summary(text: &str) -> String {
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

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
    /// The version, with the ids of the uploads (reference images) its generation attached
    /// (`attachments`, `/api/uploads/{id}`), as the version records them.
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

/// An app as a list shows it: no metadata (unbounded for the list's purpose), the
/// description cut to [`SUMMARY_CHARS`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppSummary {
    id: Uuid,
    title: String,
    description: String,
    is_public: bool,
    preview_enabled: bool,
    published_version: Option<u32>,
    current_version: u32,
    preview_path: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<App> for AppSummary {
    fn from(app: App) -> Self {
        let view = AppView::from(app);
        let app = view.app;
        Self {
            id: app.id,
            title: app.title,
            description: summary(&app.description),
            is_public: app.is_public,
            preview_enabled: app.preview_enabled,
            published_version: app.published_version,
            current_version: app.current_version,
            preview_path: view.preview_path,
            created_at: app.created_at,
            updated_at: app.updated_at,
            deleted_at: app.deleted_at,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppList {
    items: Vec<AppSummary>,
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
        Error::DiffTooLarge { bytes, limit } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "diff_too_large",
            error.to_string(),
        )
        .with_details(json!({ "bytes": bytes, "limit": limit })),
        e if e.is_invalid_input() => ApiError::bad_request(e.to_string()),
        e => ApiError::internal(e),
    }
}

/// The `{id}` and `{n}` of a version's path.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionParam {
    pub(crate) id: String,
    pub(crate) n: String,
}

/// A saved version's files with the project files they lack (`package.json` from the
/// dependencies kept with the app, `tsconfig.json`, ...), as the zip export and the live
/// preview deliver the app.
pub(crate) fn project_files(
    title: &str,
    files: &[appforge_llm::AppFile],
    metadata: &Value,
) -> Vec<appforge_llm::AppFile> {
    appforge_llm::protocol::scaffold(title, files, &dependencies_of_app(metadata)).complete(files)
}

/// The dependencies kept with an app (`metadata.dependencies`, as the generation saves
/// them), for the project files a version lacks.
fn dependencies_of_app(metadata: &Value) -> std::collections::BTreeMap<String, String> {
    metadata
        .get("dependencies")
        .and_then(|d| serde_json::from_value(d.clone()).ok())
        .unwrap_or_default()
}

pub(crate) fn app_id(raw: &str) -> Result<Uuid, ApiError> {
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
    owner: Owner,
    app: Uuid,
    number: Option<u32>,
) -> Result<AppAt, ApiError> {
    let stored = state
        .apps()
        .get_app(owner, app)
        .await
        .map_err(|e| apps_error(&e))?;
    let number = number.unwrap_or(stored.current_version);
    let version = state
        .apps()
        .get_version(owner, app, Some(number))
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(AppAt {
        app: stored.into(),
        version,
    })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    space: Space,
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
        .list_apps(space.owner, &request)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(AppList {
        items: page.items.into_iter().map(AppSummary::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<axum::Json<AppAt>, ApiError> {
    Ok(axum::Json(
        at(&state, space.owner, app_id(&id)?, None).await?,
    ))
}

pub(crate) async fn versions(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<axum::Json<VersionList>, ApiError> {
    let mut items = state
        .apps()
        .list_versions(space.owner, app_id(&id)?)
        .await
        .map_err(|e| apps_error(&e))?;
    for item in &mut items {
        item.prompt = item.prompt.as_deref().map(summary);
        item.change_summary = item.change_summary.as_deref().map(summary);
    }
    Ok(axum::Json(VersionList { items }))
}

pub(crate) async fn version(
    State(state): State<AppState>,
    space: Space,
    Path(VersionParam { id, n: number }): Path<VersionParam>,
) -> Result<axum::Json<AppAt>, ApiError> {
    let number = number
        .parse::<u32>()
        .map_err(|_| ApiError::not_found("version"))?;
    Ok(axum::Json(
        at(&state, space.owner, app_id(&id)?, Some(number)).await?,
    ))
}

/// The per-file differences between two versions: CPU work, so it runs on a blocking
/// thread, one per CPU at a time, within the size and time caps of the settings.
pub(crate) async fn diff(
    State(state): State<AppState>,
    Extension(limits): Extension<Limits>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
    raw: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<VersionDiff>, ApiError> {
    let q = query(raw)?;
    let app = app_id(&id)?;
    let old = state
        .apps()
        .get_version(space.owner, app, Some(q.from))
        .await
        .map_err(|e| apps_error(&e))?;
    let new = state
        .apps()
        .get_version(space.owner, app, Some(q.to))
        .await
        .map_err(|e| apps_error(&e))?;
    let edge = &state.config().edge;
    let bounds = DiffLimits {
        max_bytes: edge.diff_max_bytes,
        timeout: edge.diff_timeout,
    };
    let _permit = limits
        .diffs()
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let work = tokio::task::spawn_blocking(move || VersionDiff::bounded(&old, &new, &bounds));
    // The matching stops at its deadline; rendering is linear in the (capped) input. This
    // is a backstop, not the limit.
    let backstop = bounds.timeout.saturating_mul(2) + std::time::Duration::from_secs(5);
    let diff = tokio::time::timeout(backstop, work)
        .await
        .map_err(|_| ApiError::unavailable("the diff took too long"))?
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(diff))
}

/// Stores an old version's files as a new version: `201 {app, version}`.
pub(crate) async fn restore(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
    Json(body): Json<RestoreBody>,
) -> Result<Response, ApiError> {
    let saved = state
        .apps()
        .restore_version(space.owner, app_id(&id)?, body.version)
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
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
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
        .update_app(space.owner, app_id(&id)?, patch)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app.into()))
}

/// Deletes softly: the app can be restored with `POST /api/apps/{id}/undelete` within the
/// retention period.
pub(crate) async fn delete(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<axum::Json<AppView>, ApiError> {
    let app = state
        .apps()
        .delete_app(space.owner, app_id(&id)?)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app.into()))
}

pub(crate) async fn undelete(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<axum::Json<AppView>, ApiError> {
    let app = state
        .apps()
        .undelete_app(space.owner, app_id(&id)?)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app.into()))
}

/// Publishes (`{}` or `{version: n}`) or unpublishes (`{enabled: false}`); the body may be
/// empty.
pub(crate) async fn publish(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
    body: Bytes,
) -> Result<axum::Json<AppView>, ApiError> {
    let body: PublishBody = if body.iter().all(u8::is_ascii_whitespace) {
        PublishBody::default()
    } else {
        crate::extract::parse(&body)?
    };
    let id = app_id(&id)?;
    let result = if body.enabled == Some(false) {
        state.apps().unpublish(space.owner, id).await
    } else {
        state.apps().publish(space.owner, id, body.version).await
    };
    Ok(axum::Json(result.map_err(|e| apps_error(&e))?.into()))
}

pub(crate) async fn unpublish(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
) -> Result<axum::Json<AppView>, ApiError> {
    let app = state
        .apps()
        .unpublish(space.owner, app_id(&id)?)
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(axum::Json(app.into()))
}

/// The published version of a published app, for anyone with the address: its public page
/// for a browser (an `Accept` that prefers `text/html`; `404` with the page when nothing is
/// published there), else the version as JSON. Both vary by `Accept`.
pub(crate) async fn preview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: http::HeaderMap,
) -> Response {
    let mut response = if crate::routes::pages::prefers_html(&headers) {
        // The page reads the app as JSON; here only whether there is one decides the status.
        let status = match state.apps().published(&slug).await {
            Ok(_) => StatusCode::OK,
            Err(e) => apps_error(&e).status(),
        };
        crate::routes::pages::public_app(status, &state)
    } else {
        published(&state, &slug).await.into_response()
    };
    response
        .headers_mut()
        .append(header::VARY, http::HeaderValue::from_static("accept"));
    response
}

/// `GET /api/p/{slug}`: the published app at `slug` as JSON, whatever the `Accept`.
pub(crate) async fn published_json(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    published(&state, &slug).await
}

/// The published app at `slug` as JSON (without the app's metadata, with the address of its
/// preview frame), with its org's branding when an org published it.
async fn published(state: &AppState, slug: &str) -> Result<axum::Json<Value>, ApiError> {
    let app = state
        .apps()
        .published(slug)
        .await
        .map_err(|e| apps_error(&e))?;
    let frame_url = crate::routes::preview::frame_url(state, &format!("/p/{slug}/frame"));
    let mut value = serde_json::json!(app);
    // The metadata is the host's; the page shows the running app in a frame.
    if let Some(object) = value.as_object_mut() {
        object.remove("metadata");
        object.insert("frameUrl".into(), Value::String(frame_url));
    }
    // An app published by an org shows the org's name and logo.
    if let Some(org) = crate::routes::orgs::branding::published_branding(state, slug).await? {
        value["org"] = org;
    }
    Ok(axum::Json(value))
}

/// The version (`?version=n`, default the current one) as `application/zip`.
pub(crate) async fn zip(
    State(state): State<AppState>,
    space: Space,
    Path(IdParam { id }): Path<IdParam>,
    raw: Result<Query<VersionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(raw)?;
    let app = app_id(&id)?;
    let stored = state
        .apps()
        .get_app(space.owner, app)
        .await
        .map_err(|e| apps_error(&e))?;
    let version = state
        .apps()
        .get_version(space.owner, app, q.version)
        .await
        .map_err(|e| apps_error(&e))?;
    // The project files the version lacks (package.json, ...), from the dependencies kept with
    // the app, so that the archive installs and builds as delivered.
    let files = project_files(&stored.title, &version.files, &stored.metadata);
    let bytes = appforge_apps::zip_files(
        files
            .iter()
            .map(|f| (f.path.as_str(), f.content.as_bytes())),
    )
    .map_err(|e| match e {
        // A path stored before it was refused: the data, not the request, is at fault.
        appforge_apps::Error::InvalidPath(path) => crate::routes::download::invalid_path(&path),
        e => apps_error(&e),
    })?;
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
