//! `GET /healthz`, `/readyz`, `/metrics` and `/openapi.json`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::json;

use crate::state::AppState;

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and every crate's migrations are applied.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(error) = state.db().ping().await {
        tracing::warn!(%error, "readiness: database unreachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "database": "unreachable" })),
        )
            .into_response();
    }
    let migrated = match state.db().migrated().await {
        Ok(migrated) => migrated,
        Err(error) => {
            tracing::warn!(%error, "readiness: migration tables unreadable");
            false
        }
    };
    if !migrated {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "migrations": "pending" })),
        )
            .into_response();
    }
    axum::Json(json!({
        "status": "ready",
        "database": state.db().backend(),
        "provider": state.provider(),
    }))
    .into_response()
}

/// Prometheus text, with the job gauges refreshed from the queue and today's analytics
/// figures from the event store.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match state.queue().stats().await {
        Ok(stats) => {
            let rows: Vec<(String, String, u64)> = stats
                .depth
                .iter()
                .map(|d| {
                    (
                        format!("{:?}", d.status).to_lowercase(),
                        priority_label(d.priority),
                        d.count,
                    )
                })
                .collect();
            let runnable = stats
                .depth
                .iter()
                .filter(|d| d.status == appforge_jobs::JobStatus::Pending)
                .map(|d| d.count)
                .sum();
            state.metrics().set_jobs(
                rows.iter().map(|(s, p, c)| (s.as_str(), p.as_str(), *c)),
                runnable,
            );
        }
        Err(error) => tracing::warn!(%error, "queue statistics unavailable"),
    }
    // Today's figures are computed here rather than kept as running counters, so that every
    // API node reports the same database-wide figures; `Analytics::today` caches them for
    // 30 s, so frequent scrapes on several nodes read the day's events rarely.
    match state.analytics().today().await {
        Ok(today) => state.metrics().set_today(&today),
        Err(error) => tracing::warn!(%error, "today's analytics unavailable"),
    }
    state.metrics().set_recorder(&state.analytics().stats());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT,
    )
        .into_response()
}

/// `free`, `pro`, `team` for the plans' priorities, the number otherwise.
fn priority_label(priority: appforge_jobs::Priority) -> String {
    match priority.0 {
        0 => "free".into(),
        10 => "pro".into(),
        20 => "team".into(),
        other => other.to_string(),
    }
}
