//! `/api/orgs/{org}/audit`: a page of the log with filters, `verify`, and `export` as JSON
//! lines or CSV, streamed a page at a time.

use appforge_orgs::{AuditEntry, AuditQuery, AuditRange, ExportFormat, MAX_AUDIT_PAGE, Permission};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{OrgCaller, api_error, path_id};
use crate::error::ApiError;
use crate::state::AppState;

/// The entries a page shows unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 100;

/// The filters of `GET /api/orgs/{org}/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Entries recorded at or after this time (RFC 3339).
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    /// Entries recorded before this time.
    #[serde(default)]
    to: Option<DateTime<Utc>>,
    /// Only this action (`member.role`), or a family of actions ending with `.` (`member.`).
    #[serde(default)]
    action: Option<String>,
    /// Only entries of this actor (a user's or an API key's id).
    #[serde(default)]
    actor: Option<Uuid>,
    /// Only entries after this sequence number (the `next` of the previous page).
    #[serde(default)]
    after: Option<u64>,
    /// Entries scanned (1 to 1000, default 100).
    #[serde(default)]
    limit: Option<u32>,
}

/// The time range of `verify` and `export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RangeQuery {
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    to: Option<DateTime<Utc>>,
    /// `jsonl` (default) or `csv`, for `export`.
    #[serde(default)]
    format: Option<String>,
}

fn matches(entry: &AuditEntry, query: &ListQuery) -> bool {
    let action = query.action.as_deref().is_none_or(|action| {
        if action.ends_with('.') {
            entry.action.starts_with(action)
        } else {
            entry.action == action
        }
    });
    let actor = query.actor.is_none_or(|id| entry.actor.id() == Some(id));
    action && actor
}

/// `GET /api/orgs/{org}/audit` (`read_audit`): entries oldest first, as the JSON-lines export
/// writes them, and `next` (the `after` of the following page) while more may follow.
pub(super) async fn list(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_AUDIT_PAGE}, not {limit}"
        )));
    }
    let range = AuditRange::between(query.from, query.to);
    let page = state
        .orgs()
        .audit(
            &caller.caller,
            org,
            &AuditQuery::new(range, limit).after(query.after.unwrap_or(0)),
        )
        .await
        .map_err(api_error)?;
    let full = page.len() == limit as usize;
    let next = page.last().map(|e| e.seq).filter(|_| full);
    let entries: Vec<&AuditEntry> = page.iter().filter(|e| matches(e, &query)).collect();
    Ok(axum::Json(json!({ "entries": entries, "next": next })))
}

/// `GET /api/orgs/{org}/audit/verify` (`read_audit`): checks the org's chain over the range;
/// `{"ok": true, "checked": n}` or `{"ok": false, "broken": {"seq", "entry_id", "problem"}}`.
pub(super) async fn verify(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let orgs = state.orgs();
    orgs.authorize(&caller.caller, org, Permission::ReadAudit)
        .await
        .map_err(api_error)?;
    match orgs
        .verify_audit(org, AuditRange::between(query.from, query.to))
        .await
    {
        Ok(checked) => Ok(axum::Json(json!({ "ok": true, "checked": checked }))),
        Err(error) => match error.broken_link() {
            Some(link) => Ok(axum::Json(json!({ "ok": false, "broken": link }))),
            None => Err(api_error(error)),
        },
    }
}

/// `GET /api/orgs/{org}/audit/export?format=jsonl|csv` (`read_audit`): the range as an
/// attachment, read from the store a page at a time while the body streams. The export is
/// itself recorded (`audit.export`).
pub(super) async fn export(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let org = path_id(&org, "organization")?;
    let (format, extension) = match query.format.as_deref() {
        None | Some("jsonl" | "json_lines" | "ndjson") => (ExportFormat::JsonLines, "jsonl"),
        Some("csv") => (ExportFormat::Csv, "csv"),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?} is neither jsonl nor csv"
            )));
        }
    };
    let range = AuditRange::between(query.from, query.to);
    let orgs = state.orgs();
    let mut export = orgs
        .export_audit(&caller.caller, org, range, format)
        .await
        .map_err(api_error)?;
    orgs.record(
        &caller.caller,
        org,
        "audit.export",
        Some(format!("org:{org}")),
        json!({ "format": extension, "from": query.from, "to": query.to }),
    )
    .await
    .map_err(api_error)?;
    let body = async_stream::stream! {
        loop {
            match export.next_chunk().await {
                Ok(Some(chunk)) => yield Ok(bytes::Bytes::from(chunk)),
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, %org, "the audit export failed midway");
                    yield Err(std::io::Error::other("the export failed"));
                    break;
                }
            }
        }
    };
    Ok((
        [
            (http::header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit-{org}.{extension}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
