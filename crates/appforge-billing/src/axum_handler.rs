//! Axum support: an extractor that verifies a delivery, and the webhook endpoint of [`Billing`].

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[cfg(feature = "store")]
use {
    crate::billing::Billing, crate::store::BillingStore, axum::extract::State,
    axum::http::HeaderMap,
};

use crate::event::BillingEvent;
use crate::signature::{SignatureError, WebhookVerifier};

/// A verified Stripe webhook delivery, parsed as [`WebhookVerifier::verify_billing_event`]
/// does: an axum extractor for a handler of your own, with the [`WebhookVerifier`] in the
/// router's state (or reachable from it through [`FromRef`]).
///
/// It reads the raw body and the `Stripe-Signature` header; a delivery that fails
/// verification never reaches the handler and is answered by [`WebhookRejection`].
///
/// ```
/// use appforge_billing::{BillingObject, StripeEvent, WebhookVerifier};
/// use axum::{Router, http::StatusCode, routing::post};
///
/// async fn webhook(StripeEvent(event): StripeEvent) -> StatusCode {
///     if let BillingObject::SubscriptionChanged(sub) = &event.object {
///         tracing::info!(subscription = %sub.id, status = %sub.status, "{}", event.event_type());
///     }
///     StatusCode::OK
/// }
///
/// # fn app(verifier: WebhookVerifier) -> Router {
/// Router::new().route("/stripe/webhook", post(webhook)).with_state(verifier)
/// # }
/// ```
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub struct StripeEvent(pub BillingEvent);

/// Why a [`StripeEvent`] was refused: `400 Bad Request` (`413 Payload Too Large` for a body
/// over the verifier's limit) with a plain-text reason such as
/// `invalid stripe webhook: no signature matches the payload`. The reason never names a secret.
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub struct WebhookRejection {
    status: StatusCode,
    reason: String,
}

impl WebhookRejection {
    fn signature(error: SignatureError) -> Self {
        let status = match error {
            SignatureError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            reason: format!("invalid stripe webhook: {error}"),
        }
    }

    /// The status the rejection is answered with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason, as sent in the body.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        (self.status, self.reason).into_response()
    }
}

impl<S> FromRequest<S> for StripeEvent
where
    WebhookVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = WebhookVerifier::from_ref(state);
        let signature = request
            .headers()
            .get("stripe-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| WebhookRejection {
                status: rejection.status(),
                reason: format!("invalid stripe webhook: {}", rejection.body_text()),
            })?;
        match verifier.verify_billing_event(&body, signature.as_deref()) {
            Ok(event) => Ok(Self(event)),
            Err(crate::Error::Signature(error)) => {
                tracing::debug!(%error, "webhook rejected");
                Err(WebhookRejection::signature(error))
            }
            // `verify_billing_event` fails only on the signature.
            Err(error) => Err(WebhookRejection {
                status: StatusCode::BAD_REQUEST,
                reason: format!("invalid stripe webhook: {error}"),
            }),
        }
    }
}

/// An axum handler for `POST /api/stripe/webhook`: reads the raw body and the
/// `Stripe-Signature` header and answers 400 when verification fails, 200 when the event was
/// processed, a duplicate or skipped, and 500 when the handler failed (Stripe retries).
///
/// ```no_run
/// # async fn demo(billing: appforge_billing::Billing) {
/// let app: axum::Router = axum::Router::new()
///     .route("/api/stripe/webhook", axum::routing::post(appforge_billing::webhook_handler))
///     .with_state(billing);
/// # }
/// ```
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "axum", feature = "store"))))]
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

#[cfg(test)]
mod tests {
    use appforge_core::{ManualClock, SecretString};
    use axum::body::{Body, to_bytes};
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;
    use crate::sign_payload;

    async fn event_type(StripeEvent(event): StripeEvent) -> String {
        event.event_type().to_owned()
    }

    async fn call(body: &'static str, signature: Option<String>) -> (StatusCode, String) {
        let clock = ManualClock::at("2026-03-14T12:00:00Z".parse().unwrap());
        let verifier = WebhookVerifier::builder()
            .secret(SecretString::from("whsec_unit"))
            .clock(clock.shared())
            .max_body(256)
            .build()
            .unwrap();
        let app = axum::Router::new()
            .route("/hook", post(event_type))
            .with_state(verifier);
        let mut request = axum::http::Request::post("/hook");
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        let response = app
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let text = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(text.to_vec()).unwrap())
    }

    fn sign(body: &str) -> String {
        let now = "2026-03-14T12:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap();
        sign_payload(
            &SecretString::from("whsec_unit"),
            now.timestamp(),
            body.as_bytes(),
        )
    }

    #[tokio::test]
    async fn the_extractor_passes_verified_deliveries_and_refuses_the_rest_with_a_reason() {
        const BODY: &str =
            r#"{"id":"evt_1","type":"customer.created","created":1,"data":{"object":{}}}"#;
        assert_eq!(
            call(BODY, Some(sign(BODY))).await,
            (StatusCode::OK, "customer.created".to_owned())
        );
        assert_eq!(
            call(BODY, None).await,
            (
                StatusCode::BAD_REQUEST,
                "invalid stripe webhook: missing Stripe-Signature header".to_owned()
            )
        );
        let large: &'static str = Box::leak("x".repeat(300).into_boxed_str());
        let (status, reason) = call(large, Some(sign(large))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reason}");
        assert!(reason.contains("over the 256 byte limit"), "{reason}");
    }
}
