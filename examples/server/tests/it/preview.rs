//! Live previews over HTTP: a version's build as JSON and as a document, the frame behind a
//! ticket, its sandboxing headers, build errors with their place, the published app's frame,
//! a separate preview origin, and the offline demo app with the real React.

use appforge_apps::{AppStore, NewApp, NewVersion};
use appforge_llm::AppFile;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Db, FULL_APP, Options, SECRET, TestServer};

/// An app saved straight into the store with `files` (no dependencies).
async fn saved(server: &TestServer, user: Uuid, files: &[(&str, &str)]) -> Uuid {
    let files = files
        .iter()
        .map(|(path, content)| AppFile::new(*path, *content))
        .collect();
    server
        .state
        .apps()
        .create_app(
            user.into(),
            NewApp::new("Counter", NewVersion::files(files)),
        )
        .await
        .unwrap()
        .app
        .id
}

/// A small app without dependencies: a button that counts its clicks.
const COUNTER: &[(&str, &str)] = &[
    (
        "index.html",
        "<!doctype html><html><head><title>Counter</title></head><body><div id=\"root\"></div>\
         <script type=\"module\" src=\"/src/main.ts\"></script></body></html>",
    ),
    (
        "src/main.ts",
        "import './style.css';\nimport { label } from './label';\nlet n = 0;\n\
         const button = document.createElement('button');\nbutton.textContent = label(n);\n\
         button.onclick = () => { n += 1; button.textContent = label(n); };\n\
         document.getElementById('root')!.append(button);\n",
    ),
    (
        "src/label.ts",
        "export const label = (n: number): string => `Clicked ${n} times`;\n",
    ),
    ("src/style.css", "button { color: teal; }\n"),
];

/// A GET of `path` with `accept`, and a bearer token when a user is given: the status, the
/// headers and the body as text.
async fn get(
    server: &TestServer,
    path: &str,
    user: Option<Uuid>,
    accept: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::get(path).header(header::ACCEPT, accept);
    if let Some(user) = user {
        request = request.header(
            header::AUTHORIZATION,
            format!("Bearer {}", server.token(user)),
        );
    }
    let response = server.send(request.body(Body::empty()).unwrap()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// The headers every preview document carries: sandboxed into an opaque origin, no network,
/// framed by the product only, no cookie set, not framed-denied.
fn assert_frame_headers(headers: &http::HeaderMap, what: &str) {
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.starts_with(&format!("sandbox {};", appforge_preview::SANDBOX)),
        "{what}: {csp}"
    );
    assert!(!csp.contains("allow-same-origin"), "{what}: {csp}");
    assert!(csp.contains("connect-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'self'"), "{what}: {csp}");
    assert!(headers.get(header::X_FRAME_OPTIONS).is_none(), "{what}");
    assert!(headers.get(header::SET_COOKIE).is_none(), "{what}");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{what}"
    );
}

pub(crate) async fn a_versions_preview_is_built_and_framed_behind_a_ticket(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let owner = Uuid::new_v4();
    let app = saved(&server, owner, COUNTER).await;
    let path = format!("/api/apps/{app}/versions/1/preview");

    let (status, _, view) = server.call("GET", &path, Some(owner), None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(
        (view["app"].clone(), view["version"].clone()),
        (json!(app), json!(1))
    );
    assert_eq!(view["build"]["status"], "ok", "{view}");
    assert_eq!(
        view["build"]["modules"],
        json!(["src/style.css", "src/label.ts", "src/main.ts"])
    );
    assert_eq!(view["build"]["entry"], "src/main.ts");
    let frame = view["frameUrl"].as_str().unwrap().to_owned();
    assert!(frame.starts_with("/preview/"), "{frame}");
    assert!(view["expiresAt"].is_string());

    // The frame needs no token: the ticket is the grant, for this version only.
    let (status, headers, document) = get(&server, &frame, None, HTML).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_frame_headers(&headers, "ticket frame");
    assert!(document.contains("Clicked ${n} times"), "{document}");
    assert!(document.contains("color: teal"));
    assert!(
        document.contains("appforge:preview-error"),
        "the runtime error reporter"
    );

    // A browser asking the API route itself gets the document, with the same headers.
    let (status, headers, same) = get(&server, &path, Some(owner), HTML).await;
    assert_eq!(status, StatusCode::OK);
    assert_frame_headers(&headers, "API document");
    assert_eq!(same, document);

    // Another user, no token, an unknown version: as any other read of the app.
    let stranger = Uuid::new_v4();
    assert_eq!(
        server.call("GET", &path, Some(stranger), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.call("GET", &path, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .call(
                "GET",
                &format!("/api/apps/{app}/versions/7/preview"),
                Some(owner),
                None
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // A forged, expired or user token in place of a ticket opens nothing.
    let ticket = frame.trim_start_matches("/preview/");
    let mut forged = ticket.to_owned();
    forged.pop();
    forged.push(if ticket.ends_with('A') { 'B' } else { 'A' });
    let now = chrono::Utc::now().timestamp();
    let sign = |claims: Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let grant = |exp: i64| json!({ "sub": app, "ver": 1, "own": { "kind": "user", "id": owner }, "exp": exp, "aud": "appforge-preview" });
    let expired = sign(grant(now - 3600), SECRET);
    let other_key = sign(
        grant(now + 600),
        "another-secret-of-sufficient-length-0123456789",
    );
    for (what, bad) in [
        ("forged", forged),
        ("expired", expired),
        ("signed with another key", other_key),
        ("a user token", server.token(owner)),
    ] {
        let (status, headers, body) = get(&server, &format!("/preview/{bad}"), None, HTML).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_frame_headers(&headers, what);
        assert!(body.contains("expired"), "{what}: {body}");
    }
    // And a ticket is no bearer token.
    let request = Request::get("/api/apps")
        .header(header::AUTHORIZATION, format!("Bearer {ticket}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        server.send(request).await.status(),
        StatusCode::UNAUTHORIZED
    );

    server.stop().await;
}

pub(crate) async fn build_errors_name_their_file_line_and_column(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let owner = Uuid::new_v4();
    let mut broken = COUNTER.to_vec();
    broken[2] = ("src/label.ts", "export const label = (n: number) => ;\n");
    let app = saved(&server, owner, &broken).await;
    let path = format!("/api/apps/{app}/versions/1/preview");

    let (status, _, view) = server.call("GET", &path, Some(owner), None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let error = &view["build"]["error"];
    assert_eq!(view["build"]["status"], "error", "{view}");
    assert_eq!(error["kind"], "syntax", "{error}");
    assert_eq!(
        (
            error["file"].clone(),
            error["line"].clone(),
            error["column"].clone()
        ),
        (json!("src/label.ts"), json!(1), json!(37)),
        "{error}"
    );

    // The frame shows the same as an overlay, with the line of source.
    let frame = view["frameUrl"].as_str().unwrap();
    let (status, headers, overlay) = get(&server, frame, None, HTML).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a frame shows the overlay as its page"
    );
    assert_frame_headers(&headers, "overlay");
    assert!(overlay.contains("src/label.ts:1:37"), "{overlay}");
    assert!(overlay.contains("export const label"), "{overlay}");
    let (status, _, same) = get(&server, &path, Some(owner), HTML).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the API's document says it"
    );
    assert_eq!(same, overlay);

    // Imports out of the app are refused by name.
    let hostile = saved(
        &server,
        owner,
        &[(
            "src/main.ts",
            "import { readFileSync } from 'node:fs';\nconsole.log(readFileSync('/etc/passwd'));\n",
        )],
    )
    .await;
    let (_, _, view) = server
        .call(
            "GET",
            &format!("/api/apps/{hostile}/versions/1/preview"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(view["build"]["error"]["kind"], "refused", "{view}");
    assert_eq!(view["build"]["error"]["detail"], "node_builtin", "{view}");
    assert_eq!(view["build"]["error"]["file"], "src/main.ts");

    // A dependency the cache does not hold (the server is offline) is named.
    let react = saved(
        &server,
        owner,
        &[
            (
                "package.json",
                r#"{"dependencies": {"left-pad-not-cached": "^1.0.0"}}"#,
            ),
            (
                "src/main.ts",
                "import pad from 'left-pad-not-cached';\npad();\n",
            ),
        ],
    )
    .await;
    let (_, _, view) = server
        .call(
            "GET",
            &format!("/api/apps/{react}/versions/1/preview"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(view["build"]["status"], "error", "{view}");
    let message = view["build"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("left-pad-not-cached"), "{message}");
    assert_eq!(view["build"]["error"]["file"], "package.json");
    server.stop().await;
}

pub(crate) async fn a_published_app_previews_for_anyone(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let owner = Uuid::new_v4();
    let app = saved(&server, owner, COUNTER).await;
    let (_, _, published) = server
        .call(
            "POST",
            &format!("/api/apps/{app}/publish"),
            Some(owner),
            None,
        )
        .await;
    let page = published["previewPath"].as_str().unwrap().to_owned();

    // The JSON names the frame and keeps the app's metadata to the owner.
    let (status, _, public) = server.call("GET", &format!("/api{page}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{public}");
    assert_eq!(public["frameUrl"], json!(format!("{page}/frame")));
    assert!(public.get("metadata").is_none(), "{public}");
    let (_, _, same) = server.call("GET", &page, None, None).await;
    assert_eq!(same, public, "/p/{{slug}} as JSON and /api/p/{{slug}}");

    let (status, headers, document) = get(&server, &format!("{page}/frame"), None, HTML).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_frame_headers(&headers, "published frame");
    assert!(document.contains("Clicked ${n} times"));

    // The page frames it: its policy allows frames from this origin only.
    let (status, headers, html) = get(&server, &page, None, HTML).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"public-frame\""), "{html}");
    assert!(
        html.contains(&format!("sandbox=\"{}\"", appforge_preview::SANDBOX)),
        "{html}"
    );
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

    // Unpublished, the frame answers 404 like the page.
    server
        .call(
            "DELETE",
            &format!("/api/apps/{app}/publish"),
            Some(owner),
            None,
        )
        .await;
    let (status, headers, _) = get(&server, &format!("{page}/frame"), None, HTML).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_frame_headers(&headers, "unpublished frame");
    server.stop().await;
}

pub(crate) async fn a_preview_origin_serves_the_frames(db: Db) {
    let origin = "https://preview.example.test";
    let server = TestServer::start(
        db,
        Options {
            env: vec![("APPFORGE_PREVIEW_ORIGIN", origin.to_owned())],
            ..Options::api_only()
        },
    )
    .await;
    let owner = Uuid::new_v4();
    let app = saved(&server, owner, COUNTER).await;
    let (_, _, view) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions/1/preview"),
            Some(owner),
            None,
        )
        .await;
    let frame = view["frameUrl"].as_str().unwrap();
    assert!(frame.starts_with(&format!("{origin}/preview/")), "{frame}");
    // The pages may frame that origin, and only it.
    let (_, headers, _) = get(&server, "/", None, HTML).await;
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.ends_with(&format!("frame-src {origin}")), "{csp}");
    // The same server answers the frame's path on that origin.
    let (status, headers, _) = get(&server, frame.strip_prefix(origin).unwrap(), None, HTML).await;
    assert_eq!(status, StatusCode::OK);
    assert_frame_headers(&headers, "frame on the preview origin");
    server.stop().await;
}

pub(crate) async fn the_demo_app_previews_offline_with_react(db: Db) {
    let Some(tarballs) = appforge_testing::npm_tarballs() else {
        return;
    };
    let server = TestServer::start(db, Options::default()).await;
    // `appforge-server preview-cache --import DIR`, as the README fills the cache.
    let mut report = String::new();
    let stored =
        appforge_server::cli::preview_cache(server.state.config(), Some(&tarballs), &mut report)
            .await
            .unwrap();
    assert!(stored >= 5, "{report}");
    assert!(report.contains("react-dom@18."), "{report}");

    let user = Uuid::new_v4();
    let view = crate::apps::finished(
        &server,
        user,
        FULL_APP,
        json!({ "prompt": "a habit tracker with streaks" }),
    )
    .await;
    assert_eq!(view["status"], "completed", "{view}");
    let app = view["result"]["appId"].as_str().unwrap();
    let (status, _, preview) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions/1/preview"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(preview["build"]["status"], "ok", "{preview}");
    let modules: Vec<&str> = preview["build"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        modules
            .iter()
            .any(|m| m.starts_with("node_modules/react-dom/")),
        "{modules:?}"
    );
    assert!(modules.iter().any(|m| m.starts_with("src/")), "{modules:?}");
    server.stop().await;
}
