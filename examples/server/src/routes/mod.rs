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
pub(crate) mod preview;
pub(crate) mod report;
pub(crate) mod space;
pub(crate) mod sso;
pub(crate) mod uploads;

use std::sync::LazyLock;

use appforge_orgs::Permission;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde::Deserialize;

pub use orgs::{Access, ORG_ROUTES, OrgRoute, OrgsService, purge_audit};
pub use space::Space;

use crate::state::AppState;

/// The largest webhook body accepted (Stripe events are a few KiB).
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

/// One route of a space: served under `/api` for the caller's personal space and under
/// `/api/orgs/{org}` for an org's (see [`Space`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SpaceRoute {
    /// The method, lowercase.
    pub method: &'static str,
    /// The path under the space's prefix.
    pub path: &'static str,
    /// What an org member's role needs to call it in the org's space.
    pub permission: Permission,
    /// The audit action a successful call in an org's space records (`None`: a read, or a
    /// generation, chat or upload, which the job or upload itself records with its
    /// submitter).
    pub audit: Option<&'static str>,
}

const fn space_route(
    method: &'static str,
    path: &'static str,
    permission: Permission,
    audit: Option<&'static str>,
) -> SpaceRoute {
    SpaceRoute {
        method,
        path,
        permission,
        audit,
    }
}

/// Every route of a space, with its permission in an org's space.
pub const SPACE_ROUTES: &[SpaceRoute] = &[
    space_route("post", "/ai-builder/full-app", Permission::Generate, None),
    space_route("post", "/ai-builder/modify", Permission::Modify, None),
    space_route(
        "post",
        "/ai-builder/plan-phases",
        Permission::Generate,
        None,
    ),
    space_route("post", "/chat", Permission::Chat, None),
    space_route("post", "/uploads", Permission::Generate, None),
    space_route("get", "/uploads/{id}", Permission::ReadApps, None),
    space_route(
        "delete",
        "/uploads/{id}",
        Permission::Generate,
        Some("upload.delete"),
    ),
    space_route("get", "/jobs", Permission::ReadApps, None),
    space_route("get", "/jobs/{id}", Permission::ReadApps, None),
    space_route(
        "delete",
        "/jobs/{id}",
        Permission::Generate,
        Some("job.cancel"),
    ),
    space_route("get", "/jobs/{id}/events", Permission::ReadApps, None),
    space_route("get", "/jobs/{id}/app", Permission::ReadApps, None),
    space_route("get", "/jobs/{id}/zip", Permission::ReadApps, None),
    space_route("get", "/apps", Permission::ReadApps, None),
    space_route("get", "/apps/{id}", Permission::ReadApps, None),
    space_route(
        "patch",
        "/apps/{id}",
        Permission::Modify,
        Some("app.update"),
    ),
    space_route(
        "delete",
        "/apps/{id}",
        Permission::DeleteApp,
        Some("app.delete"),
    ),
    space_route("get", "/apps/{id}/versions", Permission::ReadApps, None),
    space_route("get", "/apps/{id}/versions/{n}", Permission::ReadApps, None),
    space_route(
        "get",
        "/apps/{id}/versions/{n}/preview",
        Permission::ReadApps,
        None,
    ),
    space_route("get", "/apps/{id}/diff", Permission::ReadApps, None),
    space_route(
        "post",
        "/apps/{id}/restore",
        Permission::Modify,
        Some("app.restore_version"),
    ),
    space_route(
        "post",
        "/apps/{id}/undelete",
        Permission::DeleteApp,
        Some("app.undelete"),
    ),
    space_route(
        "post",
        "/apps/{id}/publish",
        Permission::Publish,
        Some("app.publish"),
    ),
    space_route(
        "delete",
        "/apps/{id}/publish",
        Permission::Publish,
        Some("app.unpublish"),
    ),
    space_route("get", "/apps/{id}/zip", Permission::ReadApps, None),
    space_route("get", "/quota", Permission::ReadApps, None),
];

/// The prefix of the caller's personal space.
pub const PERSONAL: &str = "/api";

/// The prefix of an org's space.
pub const ORG_SPACE: &str = "/api/orgs/{org}";

/// A path of a space: `prefix` and the route's path, leaked once (the route tables are built
/// once per process).
fn spaced(prefix: &str, path: &str) -> &'static str {
    Box::leak(format!("{prefix}{path}").into_boxed_str())
}

/// Every `(method, path)` the router serves; the OpenAPI document is checked against it.
pub static ROUTES: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| {
    let mut routes = Vec::new();
    for prefix in [PERSONAL, ORG_SPACE] {
        routes.extend(
            SPACE_ROUTES
                .iter()
                .map(|r| (r.method, spaced(prefix, r.path))),
        );
    }
    routes.extend_from_slice(OTHER_ROUTES);
    routes
});

/// The `{id}` of a route's path.
#[derive(Debug, Deserialize)]
pub(crate) struct IdParam {
    pub(crate) id: String,
}

/// The routes outside the personal and org spaces.
const OTHER_ROUTES: &[(&str, &str)] = &[
    ("get", "/p/{slug}"),
    ("get", "/api/p/{slug}"),
    ("get", "/p/{slug}/frame"),
    ("get", "/preview/{ticket}"),
    ("get", "/p/{slug}/logo"),
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
    ("get", "/api/orgs/{org}/branding"),
    ("put", "/api/orgs/{org}/branding"),
    ("get", "/api/orgs/{org}/branding/logo"),
    ("put", "/api/orgs/{org}/branding/logo"),
    ("delete", "/api/orgs/{org}/branding/logo"),
    ("get", "/api/orgs/{org}/billing"),
    ("post", "/api/orgs/{org}/billing/checkout"),
    ("post", "/api/orgs/{org}/billing/portal"),
    ("put", "/api/orgs/{org}/seats"),
    ("put", "/api/orgs/{org}/sso"),
    ("get", "/api/orgs/{org}/sso"),
    ("delete", "/api/orgs/{org}/sso"),
    ("post", "/api/orgs/{org}/scim-token"),
    ("get", "/auth/sso/start"),
    ("get", "/auth/sso/callback"),
    ("post", "/auth/refresh"),
    ("get", "/scim/v2/ServiceProviderConfig"),
    ("get", "/scim/v2/ResourceTypes"),
    ("get", "/scim/v2/Users"),
    ("post", "/scim/v2/Users"),
    ("get", "/scim/v2/Users/{id}"),
    ("put", "/scim/v2/Users/{id}"),
    ("patch", "/scim/v2/Users/{id}"),
    ("delete", "/scim/v2/Users/{id}"),
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
        .merge(space(PERSONAL, state))
        .merge(
            space(ORG_SPACE, state).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                space::authorize,
            )),
        )
        .route("/p/{slug}", get(apps::preview))
        .route("/api/p/{slug}", get(apps::published_json))
        .route("/p/{slug}/frame", get(preview::published))
        .route("/preview/{ticket}", get(preview::ticket))
        .route("/p/{slug}/logo", get(orgs::branding::published_logo))
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
        .merge(sso::router())
        .merge(pages(state))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics().clone(),
            crate::metrics::track,
        ))
        .with_state(state.clone());
    crate::layers::apply(api, state)
}

/// The routes of a space under `prefix` ([`SPACE_ROUTES`]).
fn space(prefix: &str, state: &AppState) -> Router<AppState> {
    let at = |path: &str| format!("{prefix}{path}");
    Router::new()
        .nest(prefix, generate::router(prefix, state))
        .route(
            &at("/uploads"),
            post(uploads::create).layer(DefaultBodyLimit::max(uploads::body_limit(state))),
        )
        .route(
            &at("/uploads/{id}"),
            get(uploads::get).delete(uploads::delete),
        )
        .route(&at("/jobs"), get(jobs::list))
        .route(&at("/jobs/{id}/app"), get(download::app))
        .route(&at("/jobs/{id}/zip"), get(download::zip))
        .route(&at("/apps"), get(apps::list))
        .route(
            &at("/apps/{id}"),
            get(apps::get).patch(apps::update).delete(apps::delete),
        )
        .route(&at("/apps/{id}/versions"), get(apps::versions))
        .route(&at("/apps/{id}/versions/{n}"), get(apps::version))
        .route(
            &at("/apps/{id}/versions/{n}/preview"),
            get(preview::version),
        )
        .route(&at("/apps/{id}/diff"), get(apps::diff))
        .route(&at("/apps/{id}/restore"), post(apps::restore))
        .route(&at("/apps/{id}/undelete"), post(apps::undelete))
        .route(
            &at("/apps/{id}/publish"),
            post(apps::publish).delete(apps::unpublish),
        )
        .route(&at("/apps/{id}/zip"), get(apps::zip))
}

/// `GET /metrics` alone, for `APPFORGE_METRICS_ADDR`.
pub fn metrics_router(state: &AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::private_metrics))
        .with_state(state.clone())
}

/// The web interface's pages and assets, with their security headers.
fn pages(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(pages::generate))
        .route("/jobs", get(pages::history))
        .route("/jobs/{id}", get(pages::job))
        .route("/apps", get(pages::apps))
        .route("/apps/{id}", get(pages::app))
        .route("/pricing", get(pages::pricing))
        .route("/account/billing", get(pages::billing))
        .route("/admin/queues", get(pages::admin))
        .route("/orgs", get(pages::orgs))
        .route("/orgs/members", get(pages::org_members))
        .route("/orgs/keys", get(pages::org_keys))
        .route("/orgs/audit", get(pages::org_audit))
        .route("/invitations/{token}", get(pages::invitation))
        .route("/assets/{file}", get(pages::asset))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::security_headers,
        ))
}
