//! Plans and billing: `GET /api/plans`,
//! `GET /api/billing/subscription`, `POST /api/stripe/{checkout,portal,webhook}`.

use appforge_billing::{
    AnyBillingStore, Billing, BillingStore, CheckoutRequest, Interval, WebhookOutcome,
};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

pub(crate) async fn plans(State(state): State<AppState>) -> axum::Json<Value> {
    let catalogue = state.quota().catalogue();
    let plans: Vec<Value> = catalogue
        .active()
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect();
    axum::Json(json!({ "plans": plans, "default": catalogue.default_plan().id }))
}

fn billing(state: &AppState) -> Result<&Billing<AnyBillingStore>, ApiError> {
    state.billing().ok_or_else(|| {
        ApiError::unavailable(
            "billing is not configured on this server (set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)",
        )
    })
}

pub(crate) async fn subscription(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Value>, ApiError> {
    let billing = billing(&state)?;
    let subscriptions = billing
        .store()
        .subscriptions_of_user(user.id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let plan = state
        .quota()
        .plan_of(user.id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(
        json!({ "plan": plan.id, "subscriptions": subscriptions }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CheckoutBody {
    plan: String,
    interval: Interval,
    seats: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct UrlAnswer {
    url: String,
}

fn origin(headers: &HeaderMap, state: &AppState) -> String {
    headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| state.config().allowed_origins.iter().any(|a| a == o))
        .map_or_else(|| format!("http://{}", state.config().addr), str::to_owned)
}

pub(crate) async fn checkout(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<CheckoutBody>,
) -> Result<axum::Json<UrlAnswer>, ApiError> {
    let billing = billing(&state)?;
    let interval = serde_json::to_value(body.interval).unwrap_or(Value::Null);
    state
        .analytics()
        .upgrade_clicked(user.id, &body.plan, interval.as_str().unwrap_or_default());
    let base = origin(&headers, &state);
    let request = CheckoutRequest {
        plan: body.plan,
        interval: body.interval,
        seats: body.seats.unwrap_or(1),
        success_url: format!("{base}/account/billing?checkout=success"),
        cancel_url: format!("{base}/account/billing?checkout=cancelled"),
        email: user.email.clone(),
    };
    let session = billing
        .checkout(user.id, &request)
        .await
        .map_err(|e| billing_error(&e))?;
    Ok(axum::Json(UrlAnswer { url: session.url }))
}

pub(crate) async fn portal(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> Result<axum::Json<UrlAnswer>, ApiError> {
    let billing = billing(&state)?;
    let base = origin(&headers, &state);
    let session = billing
        .portal(user.id, &format!("{base}/account/billing"))
        .await
        .map_err(|e| billing_error(&e))?;
    Ok(axum::Json(UrlAnswer { url: session.url }))
}

fn billing_error(error: &appforge_billing::Error) -> ApiError {
    match error {
        appforge_billing::Error::NoPrice { .. } | appforge_billing::Error::Config(_) => {
            ApiError::bad_request(error.to_string())
        }
        appforge_billing::Error::NoCustomer(_) | appforge_billing::Error::NoSubscription(_) => {
            ApiError::new(
                http::StatusCode::CONFLICT,
                "no_subscription",
                error.to_string(),
            )
        }
        other => ApiError::internal(other),
    }
}

/// The raw body goes to the billing crate: verified, handled exactly once. A processed event
/// that concerns a user (a checkout, a subscription change, a paid invoice) is recorded for
/// analytics; a duplicate delivery records nothing. An org's subscription event sets the
/// org's seats to the subscription's quantity (`orgs::follow_seats`).
pub(crate) async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let billing = billing(&state)?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let (status, text, outcome) = match billing.handle_webhook(&body, signature).await {
        Ok(processed) => {
            // An org's subscription quantity is its seats (changed in the portal, say); a
            // duplicate delivery retries a follow-up that failed the first time.
            if matches!(
                processed,
                WebhookOutcome::Processed { .. } | WebhookOutcome::Duplicate { .. }
            ) {
                crate::routes::orgs::follow_seats(&state, billing, &body).await;
            }
            if matches!(processed, WebhookOutcome::Processed { .. })
                && let Some((user, change)) =
                    crate::analytics::billing_change(billing.store(), &body).await
            {
                state.analytics().billing(user, change);
            }
            (http::StatusCode::OK, "ok", "ok")
        }
        Err(appforge_billing::Error::Signature(e)) => {
            tracing::debug!(error = %e, "webhook rejected");
            (
                http::StatusCode::BAD_REQUEST,
                "invalid signature",
                "rejected",
            )
        }
        // The detail is logged by `handle_webhook` and kept in the ledger; Stripe retries.
        Err(_) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
            "error",
        ),
    };
    state.metrics().webhook(outcome);
    Ok((status, text).into_response())
}
