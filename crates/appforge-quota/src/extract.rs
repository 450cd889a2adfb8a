//! Axum support: a denial as `429 Too Many Requests`, and an extractor that reserves.

use ::axum::Json;
use ::axum::extract::{FromRef, FromRequestParts};
use ::axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use uuid::Uuid;

use crate::quota::Quota;
use crate::reservation::{Admission, Reservation};
use crate::status::QuotaStatus;

/// The authenticated user, put in the request's extensions by the host's auth layer; the
/// [`Reserved`] extractor reserves for this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUser(pub Uuid);

/// How many generations a route costs, as a request extension (default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaCost(pub u32);

/// A quota denial as a response: `429 Too Many Requests`, a `Retry-After` header in
/// seconds, and a JSON body `{"error": "quota_exceeded", "message": ..., "quota": {...}}`
/// where `quota` is the [`QuotaStatus`] in camelCase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded(pub QuotaStatus);

#[derive(Serialize)]
struct Body<'a> {
    error: &'static str,
    message: String,
    quota: &'a QuotaStatus,
}

impl IntoResponse for QuotaExceeded {
    fn into_response(self) -> Response {
        let status = &self.0;
        let message = match status.denied_by {
            Some(kind) => format!("{kind} limit of the {} plan reached", status.plan),
            None => format!("limit of the {} plan reached", status.plan),
        };
        let body = Body {
            error: "quota_exceeded",
            message,
            quota: status,
        };
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        if let Some(secs) = status.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Why [`Reserved`] refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum QuotaRejection {
    /// A limit refused it: `429` (see [`QuotaExceeded`]).
    Exceeded(Box<QuotaExceeded>),
    /// No [`QuotaUser`] in the request: `401`.
    Unauthenticated,
    /// The quota store failed: `500` with a plain message; the detail is logged.
    Internal(crate::Error),
}

impl IntoResponse for QuotaRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Exceeded(e) => (*e).into_response(),
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({"error": "unauthenticated"})),
            )
                .into_response(),
            Self::Internal(e) => {
                tracing::error!(error = %e, "quota reservation failed");
                let code = if e.is_retryable() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                (code, Json(serde_json::json!({"error": "internal error"}))).into_response()
            }
        }
    }
}

/// An extractor that reserves quota for the request's [`QuotaUser`] (cost from
/// [`QuotaCost`], default 1), answering `429` with `Retry-After` when a limit refuses.
///
/// The handler owns the reservation: pass its id to the work and commit or refund it there.
///
/// ```
/// use appforge_quota::{Quota, Reserved};
///
/// async fn full_app(Reserved(reservation): Reserved) -> String {
///     format!("job queued with priority {}", reservation.priority)
/// }
///
/// let app: axum::Router = axum::Router::new()
///     .route("/api/ai-builder/full-app", axum::routing::post(full_app))
///     .with_state(Quota::new(appforge_quota::MemoryUsageStore::new()));
/// ```
#[derive(Debug, Clone)]
pub struct Reserved(pub Reservation);

impl<S> FromRequestParts<S> for Reserved
where
    Quota: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = QuotaRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(QuotaUser(user)) = parts.extensions.get::<QuotaUser>().copied() else {
            return Err(QuotaRejection::Unauthenticated);
        };
        let cost = parts.extensions.get::<QuotaCost>().map_or(1, |c| c.0);
        let quota = Quota::from_ref(state);
        match quota.reserve(user, cost).await {
            Ok(Admission::Granted(reservation)) => Ok(Self(reservation)),
            Ok(Admission::Denied(status)) => {
                Err(QuotaRejection::Exceeded(Box::new(QuotaExceeded(status))))
            }
            Err(e) => Err(QuotaRejection::Internal(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use ::axum::Router;
    use ::axum::body::{Body as AxumBody, to_bytes};
    use ::axum::routing::post;
    use appforge_core::ManualClock;
    use http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::store::memory::MemoryUsageStore;

    async fn handler(Reserved(r): Reserved) -> String {
        r.plan.to_string()
    }

    fn app(quota: Quota, user: Option<Uuid>) -> Router {
        Router::new()
            .route("/generate", post(handler))
            .layer(::axum::middleware::from_fn(
                move |mut req: ::axum::extract::Request, next: ::axum::middleware::Next| async move {
                    if let Some(user) = user {
                        req.extensions_mut().insert(QuotaUser(user));
                    }
                    next.run(req).await
                },
            ))
            .with_state(quota)
    }

    async fn call(app: Router) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = app
            .oneshot(Request::post("/generate").body(AxumBody::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, retry, body)
    }

    #[tokio::test]
    async fn the_sixth_free_generation_is_a_429_with_retry_after() {
        let clock = ManualClock::at("2026-03-14T23:59:30.5Z".parse().unwrap());
        let quota = Quota::builder(MemoryUsageStore::new())
            .clock(clock.shared())
            .build()
            .unwrap();
        let user = Uuid::new_v4();
        for _ in 0..5 {
            let (status, _, _) = call(app(quota.clone(), Some(user))).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, retry, body) = call(app(quota.clone(), Some(user))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            retry.as_deref(),
            Some("30"),
            "29.5 s to midnight, rounded up"
        );
        assert_eq!(body["error"], "quota_exceeded");
        assert_eq!(body["quota"]["plan"], "free");
        assert_eq!(body["quota"]["deniedBy"], "daily");
        assert_eq!(body["quota"]["retryAfterSeconds"], 30);
        assert_eq!(body["quota"]["daily"]["limit"], 5);
        assert_eq!(body["quota"]["daily"]["remaining"], 0);
        assert_eq!(body["quota"]["daily"]["resetsAt"], "2026-03-15T00:00:00Z");
    }

    #[tokio::test]
    async fn a_request_without_a_user_is_a_401() {
        let quota = Quota::new(MemoryUsageStore::new());
        let (status, retry, body) = call(app(quota, None)).await;
        assert_eq!((status, retry), (StatusCode::UNAUTHORIZED, None));
        assert_eq!(body["error"], "unauthenticated");
    }
}
