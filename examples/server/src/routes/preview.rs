//! Live previews of saved apps, built in the server by `appforge-preview` (no Node.js, no
//! bundling service):
//!
//! - `GET {space}/apps/{id}/versions/{n}/preview`: for the app's space. As JSON, the build's
//!   outcome (its modules, or the error with file, line and column) and the address of the
//!   preview's frame (`frameUrl`, with a short-lived ticket); for a browser (`Accept:
//!   text/html`), the preview document itself.
//! - `GET /preview/{ticket}`: the frame (a build error's overlay answers `200` there: it is
//!   what the frame shows). A frame's address cannot carry the user's bearer
//!   token (and must not: the preview's scripts can read their own address), so the JSON
//!   above hands out a ticket granting that one version for [`TICKET_TTL`].
//! - `GET /p/{slug}/frame`: the frame of a published app, for anyone.
//!
//! Every preview document is served with [`appforge_preview::frame_csp`]: sandboxed into an
//! opaque origin even when opened outside the product's `<iframe sandbox>` (with
//! [`appforge_preview::SANDBOX`], never `allow-same-origin`),
//! no network access, framed only by the product. With `APPFORGE_PREVIEW_ORIGIN` set, the
//! frame addresses point there. The threat model is in `docs/preview.md`.

use std::time::Duration;

use appforge_apps::AppStore;
use appforge_core::Owner;
use appforge_llm::AppFile;
use appforge_preview::{BuildError, Bundle};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use uuid::Uuid;

use super::apps::{VersionParam, app_id, apps_error, project_files};
use super::pages::prefers_html;
use crate::error::ApiError;
use crate::routes::Space;
use crate::state::AppState;

/// How long a frame's ticket is valid: the page asks for a new one each time it shows a
/// version, so this only bounds how long a leaked address stays usable.
pub(crate) const TICKET_TTL: Duration = Duration::from_secs(15 * 60);

/// The preview of a version as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PreviewView {
    app: Uuid,
    version: u32,
    /// The frame's address: `/preview/{ticket}`, on `APPFORGE_PREVIEW_ORIGIN` when set.
    frame_url: String,
    /// When the ticket in `frameUrl` expires.
    expires_at: DateTime<Utc>,
    build: BuildView,
}

/// How a build went.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
enum BuildView {
    /// It built.
    #[serde(rename_all = "camelCase")]
    Ok {
        /// The entry module, or the component a generated entry mounts.
        entry: String,
        /// Whether the entry was generated.
        generated_entry: bool,
        /// The modules in evaluation order.
        modules: Vec<String>,
        /// Bundler warnings.
        warnings: Vec<String>,
        /// The size of the document, in bytes.
        bytes: usize,
    },
    /// It did not: where and why (the frame shows the same as an overlay).
    Error {
        /// The error.
        error: BuildError,
    },
}

/// A build's outcome with the files it was made of (for the overlay's source lines).
struct Built {
    result: Result<std::sync::Arc<Bundle>, BuildError>,
    files: Vec<AppFile>,
}

impl Built {
    async fn of(state: &AppState, files: Vec<AppFile>) -> Self {
        let input = files
            .iter()
            .map(|f| (f.path.clone(), f.content.clone().into_bytes()))
            .collect();
        let result = state.previews().bundle(input).await.map_err(|e| {
            tracing::debug!(error = %e, "preview build failed");
            e.to_build_error()
        });
        Self { result, files }
    }

    /// The preview document: the app, or the error overlay (`422` to the API, `200` in a
    /// frame, where the overlay is the answer to show).
    fn document(&self) -> (StatusCode, String) {
        match &self.result {
            Ok(bundle) => (StatusCode::OK, bundle.html()),
            Err(error) => {
                let source = self
                    .files
                    .iter()
                    .find(|f| f.path == error.file)
                    .map(|f| f.content.as_str());
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    appforge_preview::overlay_html(error, source),
                )
            }
        }
    }

    fn view(&self) -> BuildView {
        match &self.result {
            Ok(bundle) => BuildView::Ok {
                entry: bundle.entry.clone(),
                generated_entry: bundle.generated_entry,
                modules: bundle.modules.clone(),
                warnings: bundle.warnings.clone(),
                bytes: bundle.html().len(),
            },
            Err(error) => BuildView::Error {
                error: error.clone(),
            },
        }
    }
}

/// The files a version is previewed from: its own, and the project files it lacks
/// (`package.json` with the dependencies kept with the app), as the zip export adds them.
async fn version_files(
    state: &AppState,
    owner: Owner,
    app: Uuid,
    version: u32,
) -> Result<Vec<AppFile>, ApiError> {
    let stored = state
        .apps()
        .get_app(owner, app)
        .await
        .map_err(|e| apps_error(&e))?;
    let version = state
        .apps()
        .get_version(owner, app, Some(version))
        .await
        .map_err(|e| apps_error(&e))?;
    Ok(project_files(
        &stored.title,
        &version.files,
        &stored.metadata,
    ))
}

/// `GET {space}/apps/{id}/versions/{n}/preview`: the build's outcome and the frame's
/// address as JSON, or the preview document for a browser.
pub(crate) async fn version(
    State(state): State<AppState>,
    space: Space,
    Path(VersionParam { id, n }): Path<VersionParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let app = app_id(&id)?;
    let number = n
        .parse::<u32>()
        .map_err(|_| ApiError::not_found("version"))?;
    let files = version_files(&state, space.owner, app, number).await?;
    let built = Built::of(&state, files).await;
    if prefers_html(&headers) {
        return Ok(frame(&state, built.document()));
    }
    let (ticket, exp) = state
        .jwt()
        .preview_ticket(app, number, space.owner, TICKET_TTL);
    let expires_at =
        DateTime::from_timestamp(i64::try_from(exp).unwrap_or(i64::MAX), 0).unwrap_or_default();
    Ok(axum::Json(PreviewView {
        app,
        version: number,
        frame_url: frame_url(&state, &format!("/preview/{ticket}")),
        expires_at,
        build: built.view(),
    })
    .into_response())
}

/// `GET /preview/{ticket}`: the preview document of the version the ticket names.
pub(crate) async fn ticket(State(state): State<AppState>, Path(ticket): Path<String>) -> Response {
    let grant = match state.jwt().verify_preview_ticket(&ticket) {
        Ok(grant) => grant,
        Err(e) => {
            return frame(
                &state,
                (
                    e.status(),
                    notice("This preview link has expired. Open the app again to see its preview."),
                ),
            );
        }
    };
    match version_files(&state, grant.own, grant.sub, grant.ver).await {
        Ok(files) => frame(&state, shown(Built::of(&state, files).await.document())),
        Err(e) => frame(
            &state,
            (e.status(), notice("This version no longer exists.")),
        ),
    }
}

/// `GET /p/{slug}/frame`: the preview document of the app published at `slug`.
pub(crate) async fn published(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    let app = match state.apps().published(&slug).await {
        Ok(app) => app,
        Err(e) => {
            return frame(
                &state,
                (
                    apps_error(&e).status(),
                    notice("Nothing is published at this address."),
                ),
            );
        }
    };
    let files = project_files(&app.title, &app.files, &app.metadata);
    frame(&state, shown(Built::of(&state, files).await.document()))
}

/// A document as a frame shows it: a build error's overlay is what the frame is for, so it
/// answers `200` (the JSON route carries the error).
fn shown((_, document): (StatusCode, String)) -> (StatusCode, String) {
    (StatusCode::OK, document)
}

/// The address of a frame at `path`: on `APPFORGE_PREVIEW_ORIGIN` when set, else relative.
pub(crate) fn frame_url(state: &AppState, path: &str) -> String {
    match &state.config().preview.origin {
        Some(origin) => format!("{origin}{path}"),
        None => path.to_owned(),
    }
}

/// The origins allowed to frame a preview: the product's own, and its configured origins.
fn frame_ancestors(state: &AppState) -> String {
    let mut ancestors = String::from("'self'");
    for origin in &state.config().allowed_origins {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    ancestors
}

/// A preview document with its status and the frame's headers.
fn frame(state: &AppState, (status, body): (StatusCode, String)) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in appforge_preview::FRAME_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(csp) = HeaderValue::from_str(&appforge_preview::frame_csp(&frame_ancestors(state))) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// A short page saying why there is no preview.
fn notice(text: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Preview</title></head>\
         <body style=\"font-family:system-ui,sans-serif;padding:2rem;color:#444\"><p>{text}</p></body></html>"
    )
}
