//! The web interface's routes and the admin API, in-process.

use appforge_apps::{AppStore, NewApp, NewVersion};
use appforge_core::Owner;
use appforge_llm::AppFile;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Db, FULL_APP, Options, SseReader, TestServer, eventually};

pub(crate) const ADMIN: &str = "operator-token-for-tests";

pub(crate) fn with_admin(options: Options) -> Options {
    let mut env = options.env;
    env.push(("APPFORGE_ADMIN_TOKEN", ADMIN.to_owned()));
    Options { env, ..options }
}

/// `method path` with `Authorization: Bearer token` (none when `token` is `None`).
pub(crate) async fn admin_call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let response = server.send(builder.body(Body::empty()).unwrap()).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get_raw(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, bytes::Bytes) {
    let mut builder = Request::builder().uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = server.send(builder.body(Body::empty()).unwrap()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}

async fn finish(server: &TestServer, user: Uuid, job: &str) {
    let frames = server.events(user, job).await.rest().await;
    assert_eq!(frames.last().unwrap().0, "completed", "{frames:?}");
}

pub(crate) async fn admin_routes_are_closed_without_a_configured_token(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let id = Uuid::new_v4();
    for (method, path) in [
        ("GET", "/api/admin/queues".to_owned()),
        ("GET", "/api/admin/queues/events".to_owned()),
        ("GET", "/api/admin/jobs".to_owned()),
        ("POST", format!("/api/admin/jobs/{id}/retry")),
        ("POST", format!("/api/admin/jobs/{id}/cancel")),
        ("GET", "/api/admin/metrics".to_owned()),
    ] {
        let (status, body) = admin_call(&server, method, &path, Some("anything")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    server.stop().await;
}

pub(crate) async fn admin_routes_need_the_admin_token(db: Db) {
    let server = TestServer::start(db, with_admin(Options::api_only())).await;
    let user = Uuid::new_v4();
    for token in [None, Some("wrong-token"), Some(server.token(user).as_str())] {
        for path in [
            "/api/admin/queues",
            "/api/admin/queues/events",
            "/api/admin/jobs",
            "/api/admin/metrics",
        ] {
            let (status, body) = admin_call(&server, "GET", path, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
            assert_eq!(body["error"], "unauthorized");
        }
    }
    let (status, _) = admin_call(&server, "GET", "/api/admin/queues", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        admin_call(&server, "GET", "/api/admin/queues?window=1", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;
}

pub(crate) async fn admin_stats_describe_the_queue(db: Db) {
    let server = TestServer::start(db, with_admin(Options::default())).await;
    let user = Uuid::new_v4();
    for prompt in ["a habit tracker", "a recipe box"] {
        let job = server
            .generate(user, FULL_APP, json!({ "prompt": prompt }))
            .await;
        finish(&server, user, &job).await;
    }
    let (status, report) = admin_call(&server, "GET", "/api/admin/queues", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["windowSeconds"], 300);
    assert_eq!(report["totals"]["completed"], 2, "{report}");
    assert_eq!(report["totals"]["pending"], 0);
    assert_eq!(report["completedInWindow"], 2);
    assert_eq!(report["failedInWindow"], 0);
    assert_eq!(report["failureRate"], 0.0);
    assert!(report["durationP50Ms"].is_i64(), "{report}");
    assert!(report["durationP95Ms"].is_i64(), "{report}");
    let depth = report["depth"].as_array().unwrap();
    assert!(
        depth
            .iter()
            .any(|d| d["status"] == "completed" && d["plan"] == "free" && d["count"] == 2),
        "{report}"
    );
    let workers = report["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{report}");
    assert_eq!(workers[0]["live"], true);
    assert_eq!(report["liveWorkers"], 1);
    assert_eq!(report["alerts"], json!([]));
    assert_eq!(report["recentFailures"], json!([]));
    let points = report["series"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 60);
    assert_eq!(report["series"]["bucketSeconds"], 60);
    let charted: u64 = points
        .iter()
        .map(|p| p["completed"].as_u64().unwrap())
        .sum();
    assert_eq!(charted, 2, "both jobs are in the last hour's chart");

    // A job whose payload its handler cannot read fails at once: it is listed with its error,
    // counted in the rate and the chart, and an operator can run it again.
    let broken = server
        .state
        .queue()
        .enqueue(appforge_jobs::NewJob::new(
            "full_app",
            user,
            json!({ "request": 42 }),
        ))
        .await
        .unwrap()
        .id;
    eventually("the unreadable job fails", || async {
        let job = server.state.queue().get(user, broken).await.unwrap();
        job.status == appforge_jobs::JobStatus::Failed
    })
    .await;
    let (_, report) = admin_call(&server, "GET", "/api/admin/queues", Some(ADMIN)).await;
    assert_eq!(report["failedInWindow"], 1, "{report}");
    let rate = report["failureRate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{rate}");
    let failures = report["recentFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{report}");
    assert_eq!(failures[0]["id"], broken.to_string());
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid job payload"),
        "{report}"
    );
    let charted: u64 = report["series"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["failed"].as_u64().unwrap())
        .sum();
    assert_eq!(charted, 1);
    let (status, body) = admin_call(
        &server,
        "POST",
        &format!("/api/admin/jobs/{broken}/retry"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["attempt"], 0, "fresh attempts");
    server.stop().await;
}

pub(crate) async fn admin_retry_and_cancel_any_users_job(db: Db) {
    let server = TestServer::start(db, with_admin(Options::api_only())).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let job = server
        .generate(alice, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    server
        .generate(bob, FULL_APP, json!({ "prompt": "another app" }))
        .await;

    let (status, listed) = admin_call(
        &server,
        "GET",
        "/api/admin/jobs?status=pending",
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let owners: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["userId"].as_str().unwrap())
        .collect();
    assert_eq!(owners, [bob.to_string(), alice.to_string()], "newest first");

    // Retrying a pending job is a conflict; cancelling it works once.
    let retry = format!("/api/admin/jobs/{job}/retry");
    let cancel = format!("/api/admin/jobs/{job}/cancel");
    let (status, body) = admin_call(&server, "POST", &retry, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = admin_call(&server, "POST", &cancel, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["userId"], alice.to_string());
    let (status, body) = admin_call(&server, "POST", &cancel, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "illegal_transition");

    // The cancelled job runs again with fresh attempts, and its owner sees it pending.
    let (status, body) = admin_call(&server, "POST", &retry, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(alice), None)
        .await;
    assert_eq!(view["status"], "pending");

    for path in [
        format!("/api/admin/jobs/{}/retry", Uuid::new_v4()),
        "/api/admin/jobs/not-an-id/cancel".to_owned(),
    ] {
        let (status, _) = admin_call(&server, "POST", &path, Some(ADMIN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    server.stop().await;
}

pub(crate) async fn admin_events_stream_statistics(db: Db) {
    let server = TestServer::start(db, with_admin(Options::api_only())).await;
    server
        .generate(Uuid::new_v4(), FULL_APP, json!({ "prompt": "an app" }))
        .await;
    let request = Request::builder()
        .uri("/api/admin/queues/events")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut events = SseReader::from_response(response);
    let (name, report) = events.next().await.unwrap();
    assert_eq!(name, "stats");
    assert_eq!(report["totals"]["pending"], 1, "{report}");
    server.stop().await;
}

pub(crate) async fn completed_apps_download_as_zip(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let user = Uuid::new_v4();
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": "a todo list" }))
        .await;
    finish(&server, user, &job).await;
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    let expected = view["result"]["files"].as_array().unwrap().len();

    let token = format!("Bearer {}", server.token(user));
    let (status, headers, bytes) = get_raw(
        &server,
        &format!("/api/jobs/{job}/zip"),
        &[("authorization", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/zip");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\""),
    );
    let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    for file in view["result"]["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        assert!(names.iter().any(|n| n == path), "{names:?}");
    }
    let scaffolded: Vec<&str> = view["result"]["scaffolded"]
        .as_array()
        .expect("the result lists the project files its export adds")
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        scaffolded,
        [
            "package.json",
            "tsconfig.json",
            "vite.config.ts",
            ".gitignore",
            "README.md"
        ]
    );
    assert_eq!(
        view["result"]["setupCommands"],
        json!(["npm install", "npm run dev", "npm run build"])
    );
    for path in &scaffolded {
        assert!(names.iter().any(|n| n == path), "{path} in {names:?}");
    }
    assert!(names.len() >= expected + scaffolded.len());

    let (status, _, app) = server
        .call("GET", &format!("/api/jobs/{job}/app"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app["files"].as_array().unwrap().len(),
        expected + scaffolded.len()
    );
    assert_eq!(app["scaffolded"], view["result"]["scaffolded"]);

    // Someone else's job is unknown; a job without an app is a conflict.
    let (status, _, _) = server
        .call(
            "GET",
            &format!("/api/jobs/{job}/zip"),
            Some(Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let plan = server
        .generate(
            user,
            "/api/ai-builder/plan-phases",
            json!({ "prompt": "a recipe manager" }),
        )
        .await;
    finish(&server, user, &plan).await;
    let (status, _, body) = server
        .call("GET", &format!("/api/jobs/{plan}/zip"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    server.stop().await;
}

pub(crate) async fn pages_are_html_with_a_content_security_policy(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let job = format!("/jobs/{}", Uuid::new_v4());
    let app = format!("/apps/{}", Uuid::new_v4());
    for path in [
        "/",
        "/jobs",
        job.as_str(),
        "/apps",
        app.as_str(),
        "/pricing",
        "/account/billing",
        "/admin/queues",
    ] {
        let (status, headers, body) = get_raw(&server, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers["cache-control"], "no-cache");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with("<!doctype html>"), "{path}");
        assert!(text.contains("<script src=\"/assets/common.js\" defer>"));
    }
    server.stop().await;
}

/// The public address of a published app answers a browser's navigation its page (HTML
/// under the pages' policy, `404` with the page when nothing is published there) and an API
/// client the JSON, both varying by `Accept`.
pub(crate) async fn a_published_app_is_a_page_for_browsers_and_json_for_clients(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let apps = server.state.apps();
    let owner = Owner::User(Uuid::new_v4());
    let app = apps
        .create_app(
            owner,
            NewApp::new(
                "Public page",
                NewVersion::files(vec![AppFile::new("index.html", "<h1>Hi</h1>")]),
            ),
        )
        .await
        .unwrap()
        .app;
    let published = apps.publish(owner, app.id, None).await.unwrap();
    let path = format!("/p/{}", published.preview_slug.unwrap());
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    // The other pages' policy, to the letter.
    let (_, headers, _) = get_raw(&server, "/apps", &[]).await;
    let policy = headers["content-security-policy"].clone();

    for (path, status) in [
        (path.as_str(), StatusCode::OK),
        ("/p/not-published", StatusCode::NOT_FOUND),
    ] {
        let (got, headers, body) = get_raw(&server, path, &[("accept", browser)]).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["content-security-policy"], policy, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(vary_accept(&headers), "{path}: {headers:?}");
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with("<!doctype html>"), "{path}");
        assert!(text.contains("<script src=\"/assets/public-app.js\" defer>"));
        assert!(text.contains("id=\"public-missing\""));
        assert!(
            !text.contains("<h1>Hi</h1>"),
            "the page reads the files as JSON"
        );
    }

    // API clients keep the JSON: asked for, with no preference, or with anything.
    for accept in [Some("application/json"), None, Some("*/*")] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let (status, response, body) = get_raw(&server, &path, &headers).await;
        assert_eq!(status, StatusCode::OK, "{accept:?}");
        assert_eq!(response["content-type"], "application/json", "{accept:?}");
        assert!(vary_accept(&response), "{accept:?}: {response:?}");
        let app: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(app["title"], "Public page");
        assert_eq!(app["files"][0]["content"], "<h1>Hi</h1>");
    }
    let (status, headers, body) = get_raw(
        &server,
        "/p/not-published",
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/json");
    assert!(vary_accept(&headers), "{headers:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"],
        "not_found"
    );
    server.stop().await;
}

/// Whether the answer varies by `Accept`.
fn vary_accept(headers: &http::HeaderMap) -> bool {
    headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept"))
}

pub(crate) async fn assets_have_types_and_cache_validators(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    for (path, kind) in [
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/common.js", "text/javascript; charset=utf-8"),
        ("/assets/generate.js", "text/javascript; charset=utf-8"),
        ("/assets/apps.js", "text/javascript; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/admin.js", "text/javascript; charset=utf-8"),
        ("/assets/public-app.js", "text/javascript; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = get_raw(&server, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], kind, "{path}");
        assert_eq!(
            headers["cache-control"],
            "public, max-age=300, must-revalidate"
        );
        assert!(headers.contains_key("content-security-policy"));
        assert!(!body.is_empty());
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let (status, _, body) = get_raw(&server, path, &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty());
    }
    let (status, _, _) = get_raw(&server, "/assets/missing.js", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get_raw(&server, "/assets/..%2Fsrc%2Fmain.rs", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// The org pages and the invitation page: HTML with their script, the shared header's space
/// menu, and the same security headers as every page; an invitation's `acceptUrl` opens the
/// invitation page.
pub(crate) async fn org_pages_are_html_with_a_content_security_policy(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let owner = Uuid::new_v4();
    let (status, _, org) = server
        .call(
            "POST",
            "/api/orgs",
            Some(owner),
            Some(json!({ "name": "Page Testers" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{org}");
    let (status, _, invitation) = server
        .call(
            "POST",
            &format!("/api/orgs/{}/invitations", org["id"].as_str().unwrap()),
            Some(owner),
            Some(json!({ "email": "viewer@example.com", "role": "viewer" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let accept_url = invitation["acceptUrl"].as_str().unwrap().to_owned();
    assert!(accept_url.starts_with("/invitations/afi_"), "{accept_url}");

    for (path, script, landmark) in [
        ("/orgs", "orgs.js", "id=\"create-org\""),
        ("/orgs/members", "org-members.js", "id=\"invite-form\""),
        ("/orgs/keys", "org-keys.js", "id=\"key-form\""),
        ("/orgs/audit", "org-audit.js", "id=\"verify\""),
        (accept_url.as_str(), "invitation.js", "id=\"accept\""),
    ] {
        let (status, headers, body) = get_raw(&server, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with("<!doctype html>"), "{path}");
        assert!(text.contains("<script src=\"/assets/common.js\" defer>"));
        assert!(
            text.contains(&format!("<script src=\"/assets/{script}\" defer>")),
            "{path} loads {script}"
        );
        assert!(text.contains(landmark), "{path} has {landmark}");
        assert!(
            text.contains("id=\"space-switch\""),
            "{path}: the space menu"
        );
        assert!(
            text.contains("<a href=\"/orgs\">Orgs</a>"),
            "{path}: the nav"
        );
        assert!(!text.contains("<script>") && !text.contains(" style=\""));
    }

    for script in [
        "orgs.js",
        "org-members.js",
        "org-keys.js",
        "org-audit.js",
        "invitation.js",
    ] {
        let path = format!("/assets/{script}");
        let (status, headers, body) = get_raw(&server, &path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
        assert!(headers.contains_key("content-security-policy"), "{path}");
        assert!(
            std::str::from_utf8(&body)
                .unwrap()
                .contains("\"use strict\"")
        );
    }
    // The page does not accept anything by itself: the invitation is still open.
    let (status, _, list) = server
        .call(
            "GET",
            &format!("/api/orgs/{}/invitations", org["id"].as_str().unwrap()),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["invitations"][0]["status"], "open", "{list}");
    server.stop().await;
}
