//! The layers every route goes through: request ids, error reporting hubs, CORS from `ALLOWED_ORIGINS`, body size
//! limits, a request timeout (streaming answers are exempt from the timeout: it bounds the
//! time to the answer's head, not the life of an SSE stream) and the per-user limits
//! ([`crate::limits`]).

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::request_id;
use crate::state::AppState;

/// How long a handler may take to produce the head of its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Wraps `router` (its routes all added) in the server's layers.
pub(crate) fn apply(router: Router, state: &AppState) -> Router {
    let config = state.config();
    router
        // A route layer: it sees the matched route, and runs after CORS and the timeout.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::limits::layer,
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(cors(&config.allowed_origins))
        // Inside the request id layer: the request's hub is tagged with its id.
        .layer(axum::middleware::from_fn_with_state(
            state.reporting().clone(),
            crate::reporting::layer,
        ))
        .layer(axum::middleware::from_fn(request_id::layer))
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| match HeaderValue::from_str(o) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::warn!(origin = %o, "ignoring an ALLOWED_ORIGINS entry that is not a valid header value");
                None
            }
        })
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(request_id::REQUEST_ID),
        ])
        .expose_headers([
            HeaderName::from_static(request_id::REQUEST_ID),
            header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600))
}
