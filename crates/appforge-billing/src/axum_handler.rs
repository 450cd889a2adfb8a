//! The webhook endpoint for axum.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use crate::billing::Billing;
use crate::store::BillingStore;

/// An axum handler for `POST /api/stripe/webhook`: reads the raw body and the
/// `Stripe-Signature` header and answers 400 when verification fails, 200 when the event was
/// processed, a duplicate or skipped, and 500 when the handler failed (Stripe retries).
///
/// ```no_run
/// # async fn demo(billing: appforge_billing::Billing<appforge_billing::AnyBillingStore>) {
/// let app: axum::Router = axum::Router::new()
///     .route("/api/stripe/webhook", axum::routing::post(appforge_billing::webhook_handler))
///     .with_state(billing);
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub async fn webhook_handler<S>(
    State(billing): State<Billing<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str)
where
    S: BillingStore + 'static,
{
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    match billing.handle_webhook(&body, signature).await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(crate::Error::Signature(e)) => {
            tracing::debug!(error = %e, "webhook rejected");
            (StatusCode::BAD_REQUEST, "invalid signature")
        }
        // The detail is logged by `handle_webhook` and kept in the ledger; the client gets a
        // plain message.
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}
