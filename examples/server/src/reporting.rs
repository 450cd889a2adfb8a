//! Error reports to Sentry when `SENTRY_DSN` is set (through appforge-analytics'
//! `ReportingConfig`, whose scrub keeps prompts, tokens and secrets out of every report).
//! Without a DSN nothing is ever sent.
//!
//! Each request runs on a hub of its own tagged with the request id (and, once the bearer
//! token is verified, the user id); each job runs on one tagged with the job and user ids.
//! Panics reach Sentry through its panic integration; internal errors answered 500 and jobs
//! that fail for good are captured explicitly.

use std::sync::Arc;

use appforge_analytics::{tag_request_id, tag_user_id};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sentry::{Hub, SentryFutureExt};
use uuid::Uuid;

use crate::request_id::RequestId;

pub use appforge::generation::reports::Reporting;

/// Tags the current request's reports with the user the bearer token names. Only a request
/// running on a reporting hub is tagged: without a client the thread's own hub (shared by
/// whatever runs next on that thread) is left alone.
pub(crate) fn tag_user(user: Uuid) {
    if Hub::current().client().is_some_and(|c| c.is_enabled()) {
        tag_user_id(user);
    }
}

/// Middleware: runs the request on a hub of its own tagged with the request id, so that a
/// panic or an internal error in it is reported with its tags and nothing of another request.
pub(crate) async fn layer(
    State(reporting): State<Reporting>,
    request: Request,
    next: Next,
) -> Response {
    let Some(hub) = reporting.hub() else {
        return next.run(request).await;
    };
    if let Some(RequestId(id)) = request.extensions().get::<RequestId>() {
        Hub::run(Arc::clone(&hub), || tag_request_id(id));
    }
    next.run(request).bind_hub(hub).await
}
