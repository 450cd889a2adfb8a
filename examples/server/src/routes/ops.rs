//! `GET /healthz`, `/readyz`, `/metrics` and `/openapi.json`.
//!
//! `/metrics` is not public: it needs `Authorization: Bearer <APPFORGE_METRICS_TOKEN>`, or is
//! served only on `APPFORGE_METRICS_ADDR` (a private address); with neither setting it
//! answers 404.

use appforge_core::ExposeSecret;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and every crate's migrations are applied; the answer
/// names the backend, the provider and whether single sign-on is on.
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
        "sso": if state.sso().is_some() { "on" } else { "off" },
    }))
    .into_response()
}

/// `GET /metrics` on the API's address: 404 when the metrics have an address of their own
/// or no token is configured, 401 without the token.
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let edge = &state.config().edge;
    if edge.metrics_addr.is_some() {
        return ApiError::not_found("route").into_response();
    }
    if edge.metrics_token.is_none() {
        return ApiError::not_found("route").into_response();
    }
    if let Err(refused) = authorize(&state, &headers) {
        return refused.into_response();
    }
    render(&state).await
}

/// `GET /metrics` on `APPFORGE_METRICS_ADDR`: the token too, when one is configured.
pub(crate) async fn private_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        return refused.into_response();
    }
    render(&state).await
}

/// Checks `Authorization: Bearer <APPFORGE_METRICS_TOKEN>` (in constant time), when a token
/// is configured.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;

    let Some(expected) = &state.config().edge.metrics_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <metrics token>"))?;
    if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("invalid metrics token"))
    }
}

/// Prometheus text, with the job gauges refreshed from the queue at most once per
/// `APPFORGE_METRICS_REFRESH_SECS` and today's analytics figures from the event store.
async fn render(state: &AppState) -> Response {
    state
        .metrics()
        .refresh_queue(state.config().edge.metrics_refresh, || {
            state.queue().gauges()
        })
        .await;
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
        crate::openapi::DOCUMENT.as_str(),
    )
        .into_response()
}
