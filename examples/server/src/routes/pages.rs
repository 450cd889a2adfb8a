//! The web interface: static HTML, CSS and JavaScript compiled into the binary from
//! `examples/server/assets/` (no build step, nothing fetched from elsewhere).
//!
//! Every page and asset carries a Content-Security-Policy that allows only this origin and no
//! inline script or style, so the pages' behaviour lives in the `/assets/*.js` files.

use std::sync::LazyLock;

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::error::ApiError;
use crate::state::AppState;

/// The policy of the pages: this origin only, no inline code, no framing of the pages (they
/// frame previews only: [`content_security_policy`]).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The pages' policy: [`CONTENT_SECURITY_POLICY`], and frames of previews only (from the
/// server's own origin, or from `preview_origin` when previews are served apart).
pub(crate) fn content_security_policy(preview_origin: Option<&str>) -> String {
    match preview_origin {
        Some(origin) => format!("{CONTENT_SECURITY_POLICY}; frame-src {origin}"),
        None => format!("{CONTENT_SECURITY_POLICY}; frame-src 'self'"),
    }
}

/// An embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// Everything under `/assets/`.
const ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("common.js", JS),
    asset!("generate.js", JS),
    asset!("history.js", JS),
    asset!("apps.js", JS),
    asset!("app.js", JS),
    asset!("pricing.js", JS),
    asset!("billing.js", JS),
    asset!("admin.js", JS),
    asset!("orgs.js", JS),
    asset!("org-members.js", JS),
    asset!("org-keys.js", JS),
    asset!("org-audit.js", JS),
    asset!("invitation.js", JS),
    asset!("public-app.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The shell every page shares: head, skip link, header and navigation. A page fills in its
/// title, its script and its `<main>` content (`assets/<page>.html`).
const SHELL: &str = include_str!("../../assets/shell.html");

/// A page, put together once.
struct Page {
    html: LazyLock<String>,
}

macro_rules! page {
    ($name:ident, $title:literal, $script:literal, $main:literal) => {
        static $name: Page = Page {
            html: LazyLock::new(|| {
                SHELL
                    .replace("{{title}}", $title)
                    .replace("{{script}}", $script)
                    .replace("{{main}}", include_str!(concat!("../../assets/", $main)))
            }),
        };
    };
}

page!(GENERATE, "Generate", "generate.js", "generate.html");
page!(HISTORY, "History", "history.js", "history.html");
page!(APPS, "Your apps", "apps.js", "apps.html");
page!(APP, "App", "app.js", "app.html");
page!(PRICING, "Pricing", "pricing.js", "pricing.html");
page!(BILLING, "Billing", "billing.js", "billing.html");
page!(ADMIN, "Queues", "admin.js", "admin.html");
page!(ORGS, "Organizations", "orgs.js", "orgs.html");
page!(ORG_MEMBERS, "Members", "org-members.js", "org-members.html");
page!(ORG_KEYS, "API keys", "org-keys.js", "org-keys.html");
page!(ORG_AUDIT, "Audit log", "org-audit.js", "org-audit.html");
page!(INVITATION, "Invitation", "invitation.js", "invitation.html");
page!(
    PUBLIC_APP,
    "Published app",
    "public-app.js",
    "public-app.html"
);

/// Every page, for the tests.
#[cfg(test)]
fn all_pages() -> [&'static str; 13] {
    [
        &GENERATE,
        &HISTORY,
        &APPS,
        &APP,
        &PRICING,
        &BILLING,
        &ADMIN,
        &ORGS,
        &ORG_MEMBERS,
        &ORG_KEYS,
        &ORG_AUDIT,
        &INVITATION,
        &PUBLIC_APP,
    ]
    .map(|p| p.html.as_str())
}

/// A page: HTML that is revalidated on every load, so a new binary shows at once.
fn page(page: &'static Page) -> Response {
    (
        [
            (header::CONTENT_TYPE, HTML),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page.html.as_str(),
    )
        .into_response()
}

pub(crate) async fn generate() -> Response {
    page(&GENERATE)
}

/// `/jobs/{id}`: the generate page, which reads the job id from its address.
pub(crate) async fn job(Path(_id): Path<String>) -> Response {
    page(&GENERATE)
}

pub(crate) async fn history() -> Response {
    page(&HISTORY)
}

pub(crate) async fn apps() -> Response {
    page(&APPS)
}

/// `/apps/{id}`: the app page, which reads the app id from its address.
pub(crate) async fn app(Path(_id): Path<String>) -> Response {
    page(&APP)
}

pub(crate) async fn pricing() -> Response {
    page(&PRICING)
}

pub(crate) async fn billing() -> Response {
    page(&BILLING)
}

pub(crate) async fn admin() -> Response {
    page(&ADMIN)
}

/// `/orgs`: the user's organizations, and creating one.
pub(crate) async fn orgs() -> Response {
    page(&ORGS)
}

/// `/orgs/members`: the members and invitations of the org chosen in the header.
pub(crate) async fn org_members() -> Response {
    page(&ORG_MEMBERS)
}

/// `/orgs/keys`: the API keys of the org chosen in the header.
pub(crate) async fn org_keys() -> Response {
    page(&ORG_KEYS)
}

/// `/orgs/audit`: the audit log of the org chosen in the header.
pub(crate) async fn org_audit() -> Response {
    page(&ORG_AUDIT)
}

/// `/invitations/{token}`: an invitation's `acceptUrl`; the page reads the token from its
/// address and accepts it for the signed-in user.
pub(crate) async fn invitation(Path(_token): Path<String>) -> Response {
    page(&INVITATION)
}

/// The public page of the app published at `/p/{slug}`, answered with `status` (`404` when
/// nothing is published there: the page then says so), with the pages' security headers. The
/// page reads the app from the same address as JSON.
pub(crate) fn public_app(status: StatusCode, state: &AppState) -> Response {
    let mut response = page(&PUBLIC_APP);
    *response.status_mut() = status;
    secure(response.headers_mut(), state);
    response
}

/// Whether a request's `Accept` header prefers `text/html` to `application/json`, as a
/// browser's navigation does (`text/html,...,*/*;q=0.8`). No header, `*/*` alone, a tie and
/// anything unparsable prefer JSON, so that API clients keep their answer.
pub(crate) fn prefers_html(headers: &HeaderMap) -> bool {
    let ranges: Vec<(&str, f32)> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(media_range)
        .collect();
    let quality = |kind: &str| -> f32 {
        let (top, _) = kind.split_once('/').unwrap_or((kind, ""));
        let wildcard = format!("{top}/*");
        // The most specific range that matches decides (RFC 9110, 12.5.1).
        [kind, wildcard.as_str(), "*/*"]
            .iter()
            .find_map(|want| {
                ranges
                    .iter()
                    .find(|(range, _)| range.eq_ignore_ascii_case(want))
                    .map(|(_, q)| *q)
            })
            .unwrap_or(0.0)
    };
    let html = quality("text/html");
    html > 0.0 && html > quality("application/json")
}

/// One media range of an `Accept` header and its quality (`1` unless `q=` says otherwise).
fn media_range(part: &str) -> Option<(&str, f32)> {
    let mut pieces = part.split(';');
    let range = pieces.next()?.trim();
    if range.is_empty() {
        return None;
    }
    let mut quality = 1.0;
    for parameter in pieces {
        if let Some((name, value)) = parameter.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            quality = value.trim().parse::<f32>().ok()?.clamp(0.0, 1.0);
        }
    }
    Some((range, quality))
}

/// A strong validator for an embedded file: FNV-1a over its bytes, stable across builds
/// of the same content.
fn etag(body: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

/// `/assets/{file}`: the embedded file with its type, cached for five minutes and then
/// revalidated by `ETag` (the names carry no content hash).
pub(crate) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return ApiError::not_found("asset").into_response();
    };
    let tag = etag(asset.body);
    let cache = "public, max-age=300, must-revalidate";
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if fresh {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, tag),
                (header::CACHE_CONTROL, cache.to_owned()),
            ],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, asset.content_type.to_owned()),
            (header::CACHE_CONTROL, cache.to_owned()),
            (header::ETAG, tag),
        ],
        asset.body,
    )
        .into_response()
}

/// Adds the Content-Security-Policy and related headers to the pages' answers.
pub(crate) async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    secure(response.headers_mut(), &state);
    response
}

/// The pages' security headers: the Content-Security-Policy, `nosniff`, no referrer, no
/// framing.
fn secure(headers: &mut HeaderMap, state: &AppState) {
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(
        state.config().preview.origin.as_deref(),
    )) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_load_scripts_and_styles_from_files_only() {
        for html in all_pages() {
            assert!(!html.contains("{{"), "a shell placeholder left unfilled");
            assert!(
                html.contains("</main>\n</body>\n</html>"),
                "the shell's end"
            );
            assert!(
                html.contains("<script src=\"/assets/"),
                "a page without its script"
            );
            assert!(!html.contains("<script>"), "inline script");
            assert!(!html.contains(" style=\""), "inline style");
            assert!(!html.contains(" onclick="), "inline handler");
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "an outside address"
            );
        }
        for asset in ASSETS {
            assert!(
                !asset.body.contains("https://"),
                "{} names an outside address",
                asset.name
            );
        }
    }

    #[test]
    fn every_referenced_asset_is_embedded() {
        for html in all_pages() {
            for part in html.split("/assets/").skip(1) {
                let name = part.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "missing asset {name}"
                );
            }
        }
    }

    #[test]
    fn browsers_prefer_the_page_and_api_clients_the_json() {
        let accept = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
            }
            prefers_html(&headers)
        };
        // Chromium's and Firefox's navigations.
        assert!(accept(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,\
             image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
        )));
        assert!(accept(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(accept(Some("text/html")));
        assert!(accept(Some("application/json;q=0.5, text/*")));
        for json in [
            None,
            Some(""),
            Some("*/*"),
            Some("application/json"),
            Some("application/json, text/html"),
            Some("text/html;q=0.4, application/json;q=0.9"),
            Some("text/html;q=0"),
            Some("text/html;q=oops"),
            Some("text/plain, */*;q=0.1"),
        ] {
            assert!(!accept(json), "{json:?}");
        }
    }

    #[test]
    fn etags_follow_the_content() {
        assert_eq!(etag("a"), etag("a"));
        assert_ne!(etag("a"), etag("b"));
    }
}
