//! Expensive reads are bounded: lists are summaries (no job result, no app metadata,
//! prompts and descriptions cut short), descriptions and metadata have size limits on write,
//! and a version diff past its size cap is refused.

use appforge_apps::{AppStore, NewApp, NewVersion};
use appforge_llm::AppFile;
use http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::support::{Db, FULL_APP, Options, TestServer};

/// The characters a list shows of a prompt or description, and the ellipsis.
const SHOWN: usize = 281;

#[tokio::test]
async fn job_lists_are_summaries_without_results() {
    let server = TestServer::start(Db::sqlite().await, Options::default()).await;
    let user = Uuid::new_v4();
    let prompt = format!("a habit tracker {}", "with streaks ".repeat(200));
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": prompt }))
        .await;
    server.events(user, &job).await.rest().await;
    let (status, _, list) = server.call("GET", "/api/jobs", Some(user), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["id"], job.as_str());
    assert_eq!(item["status"], "completed");
    assert!(item.get("result").is_none(), "{item}");
    let shown = item["prompt"].as_str().unwrap();
    assert_eq!(shown.chars().count(), SHOWN);
    assert!(shown.ends_with('…'));
    // The job's own route has everything.
    let (_, _, whole) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(whole["prompt"], prompt.as_str());
    assert!(whole["result"]["files"].is_array(), "{whole}");
    server.stop().await;
}

#[tokio::test]
async fn the_operators_job_list_is_of_summaries_too() {
    let server = TestServer::start(
        Db::sqlite().await,
        Options {
            env: vec![("APPFORGE_ADMIN_TOKEN", "operator-token".to_owned())],
            ..Options::default()
        },
    )
    .await;
    let user = Uuid::new_v4();
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": "a habit tracker" }))
        .await;
    server.events(user, &job).await.rest().await;
    let request = http::Request::builder()
        .uri("/api/admin/jobs")
        .header("authorization", "Bearer operator-token")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let list: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let item = &list["items"][0];
    assert_eq!(item["id"], job.as_str());
    assert_eq!(item["userId"], user.to_string());
    assert_eq!(item["status"], "completed");
    assert!(item.get("result").is_none(), "{item}");
    server.stop().await;
}

#[tokio::test]
async fn app_lists_are_summaries_without_metadata() {
    let server = TestServer::start(Db::sqlite().await, Options::api_only()).await;
    let user = Uuid::new_v4();
    let description = "d".repeat(1_500);
    let metadata = json!({ "setupInstructions": "s".repeat(20_000) });
    let prompt = "p".repeat(3_000);
    let version = NewVersion::files(vec![AppFile::new("index.html", "<p>hi</p>\n")]).prompt(prompt);
    let app = server
        .state
        .apps()
        .create_app(
            user.into(),
            NewApp::new("Big", version)
                .description(description.clone())
                .metadata(metadata.clone()),
        )
        .await
        .unwrap()
        .app
        .id;
    let (status, _, list) = server.call("GET", "/api/apps", Some(user), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["id"], app.to_string());
    assert_eq!(item["title"], "Big");
    assert!(item.get("metadata").is_none(), "{item}");
    assert_eq!(item["description"].as_str().unwrap().chars().count(), SHOWN);
    let (_, _, versions) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions"),
            Some(user),
            None,
        )
        .await;
    let shown = versions["items"][0]["prompt"].as_str().unwrap();
    assert_eq!(shown.chars().count(), SHOWN);
    // The app's own route has everything.
    let (_, _, whole) = server
        .call("GET", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(whole["app"]["description"], description.as_str());
    assert_eq!(whole["app"]["metadata"], metadata);
    server.stop().await;
}

#[tokio::test]
async fn descriptions_and_metadata_have_size_limits_on_write() {
    let server = TestServer::start(Db::sqlite().await, Options::api_only()).await;
    let user = Uuid::new_v4();
    let app = server
        .state
        .apps()
        .create_app(
            user.into(),
            NewApp::new("App", NewVersion::files(vec![AppFile::new("a.txt", "a")])),
        )
        .await
        .unwrap()
        .app
        .id;
    let path = format!("/api/apps/{app}");
    let patch = |body| server.call("PATCH", &path, Some(user), Some(body));
    let (status, _, body) = patch(json!({ "description": "d".repeat(2_001) })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("description"),
        "{body}"
    );
    let (status, _, body) = patch(json!({ "metadata": { "blob": "m".repeat(40_000) } })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("metadata"),
        "{body}"
    );
    let (status, _, body) = patch(json!({
        "description": "d".repeat(2_000),
        "metadata": { "tags": ["a"] },
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"], json!({ "tags": ["a"] }));
    server.stop().await;
}

#[tokio::test]
async fn a_diff_past_its_size_cap_is_refused() {
    let server = TestServer::start(
        Db::sqlite().await,
        Options {
            env: vec![("APPFORGE_DIFF_MAX_BYTES", "1000".to_owned())],
            ..Options::api_only()
        },
    )
    .await;
    let user = Uuid::new_v4();
    let apps = server.state.apps();
    let files = vec![
        AppFile::new("small.txt", "one\n"),
        AppFile::new("big.txt", "x\n".repeat(400)),
    ];
    let app = apps
        .create_app(user.into(), NewApp::new("App", NewVersion::files(files)))
        .await
        .unwrap()
        .app
        .id;
    // Version 2 changes the small file only: 9 bytes to compare.
    let small = vec![
        AppFile::new("small.txt", "two\n"),
        AppFile::new("big.txt", "x\n".repeat(400)),
    ];
    apps.add_version(user.into(), app, 1, NewVersion::files(small))
        .await
        .unwrap();
    // Version 3 changes the big one too: 1,600 bytes.
    let big = vec![
        AppFile::new("small.txt", "two\n"),
        AppFile::new("big.txt", "y\n".repeat(400)),
    ];
    apps.add_version(user.into(), app, 2, NewVersion::files(big))
        .await
        .unwrap();
    let diff = |from: u32, to: u32| {
        let path = format!("/api/apps/{app}/diff?from={from}&to={to}");
        let server = &server;
        async move { server.call("GET", &path, Some(user), None).await }
    };
    let (status, _, body) = diff(1, 2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["files"][0]["path"], "small.txt");
    let (status, _, body) = diff(2, 3).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "diff_too_large");
    assert_eq!(body["details"]["limit"], 1000);
    assert_eq!(body["details"]["bytes"], 1600);
    server.stop().await;
}
