//! The router: every route of the API and the web interface, behind the server's layers.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod apps;
pub(crate) mod chat;
pub(crate) mod download;
pub(crate) mod generate;
pub(crate) mod jobs;
pub(crate) mod ops;
pub(crate) mod orgs;
pub(crate) mod pages;
pub(crate) mod report;
pub(crate) mod uploads;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use orgs::{Access, ORG_ROUTES, OrgRoute, OrgsService, purge_audit};

use crate::state::AppState;

/// The largest webhook body accepted (Stripe events are a few KiB).
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

/// Every `(method, path)` the router serves; the OpenAPI document is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/ai-builder/full-app"),
    ("post", "/api/ai-builder/modify"),
    ("post", "/api/ai-builder/plan-phases"),
    ("post", "/api/chat"),
    ("post", "/api/uploads"),
    ("get", "/api/uploads/{id}"),
    ("delete", "/api/uploads/{id}"),
    ("get", "/api/jobs"),
    ("get", "/api/jobs/{id}"),
    ("delete", "/api/jobs/{id}"),
    ("get", "/api/jobs/{id}/events"),
    ("get", "/api/apps"),
    ("get", "/api/apps/{id}"),
    ("patch", "/api/apps/{id}"),
    ("delete", "/api/apps/{id}"),
    ("get", "/api/apps/{id}/versions"),
    ("get", "/api/apps/{id}/versions/{n}"),
    ("get", "/api/apps/{id}/diff"),
    ("post", "/api/apps/{id}/restore"),
    ("post", "/api/apps/{id}/undelete"),
    ("post", "/api/apps/{id}/publish"),
    ("delete", "/api/apps/{id}/publish"),
    ("get", "/api/apps/{id}/zip"),
    ("get", "/p/{slug}"),
    ("get", "/api/jobs/{id}/app"),
    ("get", "/api/jobs/{id}/zip"),
    ("get", "/api/quota"),
    ("get", "/api/plans"),
    ("get", "/api/billing/subscription"),
    ("post", "/api/stripe/checkout"),
    ("post", "/api/stripe/portal"),
    ("post", "/api/stripe/webhook"),
    ("get", "/api/admin/queues"),
    ("get", "/api/admin/queues/events"),
    ("get", "/api/admin/jobs"),
    ("post", "/api/admin/jobs/{id}/retry"),
    ("post", "/api/admin/jobs/{id}/cancel"),
    ("get", "/api/admin/metrics"),
    ("post", "/api/orgs"),
    ("get", "/api/orgs"),
    ("get", "/api/orgs/{org}"),
    ("patch", "/api/orgs/{org}"),
    ("delete", "/api/orgs/{org}"),
    ("get", "/api/orgs/{org}/members"),
    ("patch", "/api/orgs/{org}/members/{user}"),
    ("delete", "/api/orgs/{org}/members/{user}"),
    ("post", "/api/orgs/{org}/leave"),
    ("post", "/api/orgs/{org}/invitations"),
    ("get", "/api/orgs/{org}/invitations"),
    ("delete", "/api/orgs/{org}/invitations/{id}"),
    ("post", "/api/invitations/{token}/accept"),
    ("post", "/api/orgs/{org}/api-keys"),
    ("get", "/api/orgs/{org}/api-keys"),
    ("delete", "/api/orgs/{org}/api-keys/{id}"),
    ("get", "/api/orgs/{org}/audit"),
    ("get", "/api/orgs/{org}/audit/verify"),
    ("get", "/api/orgs/{org}/audit/export"),
    ("get", "/"),
    ("get", "/jobs"),
    ("get", "/jobs/{id}"),
    ("get", "/apps"),
    ("get", "/apps/{id}"),
    ("get", "/pricing"),
    ("get", "/account/billing"),
    ("get", "/admin/queues"),
    ("get", "/assets/{file}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// The API over `state`, with CORS, body limits, timeouts, request ids and metrics.
pub fn router(state: &AppState) -> Router {
    let api = Router::new()
        .route("/api/ai-builder/full-app", post(generate::full_app))
        .route("/api/ai-builder/modify", post(generate::modify))
        .route("/api/ai-builder/plan-phases", post(generate::plan_phases))
        .route("/api/chat", post(chat::chat))
        .route(
            "/api/uploads",
            post(uploads::create).layer(DefaultBodyLimit::max(uploads::body_limit(state))),
        )
        .route(
            "/api/uploads/{id}",
            get(uploads::get).delete(uploads::delete),
        )
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/api/jobs/{id}/events", get(jobs::events))
        .route("/api/apps", get(apps::list))
        .route(
            "/api/apps/{id}",
            get(apps::get).patch(apps::update).delete(apps::delete),
        )
        .route("/api/apps/{id}/versions", get(apps::versions))
        .route("/api/apps/{id}/versions/{n}", get(apps::version))
        .route("/api/apps/{id}/diff", get(apps::diff))
        .route("/api/apps/{id}/restore", post(apps::restore))
        .route("/api/apps/{id}/undelete", post(apps::undelete))
        .route(
            "/api/apps/{id}/publish",
            post(apps::publish).delete(apps::unpublish),
        )
        .route("/api/apps/{id}/zip", get(apps::zip))
        .route("/p/{slug}", get(apps::preview))
        .route("/api/jobs/{id}/app", get(download::app))
        .route("/api/jobs/{id}/zip", get(download::zip))
        .route("/api/quota", get(account::quota))
        .route("/api/plans", get(account::plans))
        .route("/api/billing/subscription", get(account::subscription))
        .route("/api/stripe/checkout", post(account::checkout))
        .route("/api/stripe/portal", post(account::portal))
        .route(
            "/api/stripe/webhook",
            post(account::webhook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .route("/api/admin/queues", get(admin::queues))
        .route("/api/admin/queues/events", get(admin::queue_events))
        .route("/api/admin/jobs", get(admin::jobs))
        .route("/api/admin/jobs/{id}/retry", post(admin::retry))
        .route("/api/admin/jobs/{id}/cancel", post(admin::cancel))
        .route("/api/admin/metrics", get(report::metrics))
        .merge(orgs::router())
        .merge(pages())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route_layer(axum::middleware::from_fn_with_state(
    ("get", "/api/orgs/{org}/billing"),
    ("post", "/api/orgs/{org}/billing/checkout"),
    ("post", "/api/orgs/{org}/billing/portal"),
    ("put", "/api/orgs/{org}/seats"),
            state.metrics().clone(),
            crate::metrics::track,
        ))
        .with_state(state.clone());
    crate::layers::apply(api, state)
}

/// `GET /metrics` alone, for `APPFORGE_METRICS_ADDR`.
pub fn metrics_router(state: &AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::private_metrics))
        .with_state(state.clone())
}

/// The web interface's pages and assets, with their security headers.
fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::generate))
        .route("/jobs", get(pages::history))
        .route("/jobs/{id}", get(pages::job))
        .route("/apps", get(pages::apps))
        .route("/apps/{id}", get(pages::app))
        .route("/pricing", get(pages::pricing))
        .route("/account/billing", get(pages::billing))
        .route("/admin/queues", get(pages::admin))
        .route("/assets/{file}", get(pages::asset))
        .route_layer(axum::middleware::from_fn(pages::security_headers))
}
        .route("/orgs", get(pages::orgs))
        .route("/orgs/members", get(pages::org_members))
        .route("/orgs/keys", get(pages::org_keys))
        .route("/orgs/audit", get(pages::org_audit))
        .route("/invitations/{token}", get(pages::invitation))
