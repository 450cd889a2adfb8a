//! A plan limit on one route of a small Axum app: `POST /generate` reserves one generation for
//! the user named by the `x-user-id` header, and answers `429` with the quota's status once the
//! plan's daily limit is used up (a Free user has 5 generations a day).
//!
//! The binary (`src/main.rs`) serves [`app`] over the in-memory store; the tests call it
//! directly.

use appforge_quota::{Quota, QuotaUser, Reserved};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn};
use axum::routing::post;
use axum::{Json, Router};
use uuid::Uuid;

/// The header naming the user. A real app takes the user from its authentication instead.
pub const USER_HEADER: &str = "x-user-id";

/// The app: `POST /generate`, guarded by a reservation on `quota`.
///
/// Without a valid `x-user-id` the route answers `401`; over the plan's limit, `429` with a
/// `Retry-After` header and `{"error": "quota_exceeded", "message", "quota": {...}}`.
pub fn app(quota: Quota) -> Router {
    Router::new()
        .route("/generate", post(generate))
        .layer(from_fn(user_from_header))
        .with_state(quota)
}

/// Puts the user of the `x-user-id` header where the `Reserved` extractor looks for it.
async fn user_from_header(mut request: Request, next: Next) -> axum::response::Response {
    let user = request
        .headers()
        .get(USER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok());
    if let Some(user) = user {
        request.extensions_mut().insert(QuotaUser(user));
    }
    next.run(request).await
}

/// Runs only when the reservation was granted; settles it with the tokens the work used.
async fn generate(
    State(quota): State<Quota>,
    Reserved(reservation): Reserved,
) -> Result<Json<serde_json::Value>, StatusCode> {
    // ... generate the app here; say it used 1,200 tokens. A failed generation would call
    // `quota.refund(reservation.id)` instead, giving the generation back.
    let tokens = 1_200;
    let internal = |_| StatusCode::INTERNAL_SERVER_ERROR;
    quota
        .commit(reservation.id, tokens)
        .await
        .map_err(internal)?;
    let status = quota.status(reservation.user).await.map_err(internal)?;
    Ok(Json(serde_json::json!({
        "plan": reservation.plan.to_string(),
        "tokens": tokens,
        "dailyRemaining": status.daily.remaining,
    })))
}
