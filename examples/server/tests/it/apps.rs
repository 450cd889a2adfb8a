//! Saved apps over HTTP: generations land in the library, modifications become versions,
//! owner-only reads, the public preview, the zip export.

use std::io::Read;

use appforge_apps::{AppStore, NewApp, NewVersion};
use appforge_llm::AppFile;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Db, FULL_APP, Options, TestServer};

const MODIFY: &str = "/api/ai-builder/modify";

/// Runs a generation to its end and returns the job as the API shows it.
pub(crate) async fn finished(server: &TestServer, user: Uuid, path: &str, body: Value) -> Value {
    let job = server.generate(user, path, body).await;
    server.events(user, &job).await.rest().await;
    let (status, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    view
}

/// An app saved straight into the store, with two files.
async fn saved_app(server: &TestServer, user: Uuid, title: &str) -> Uuid {
    let files = vec![
        AppFile::new("index.html", "<div id=\"root\"></div>\n"),
        AppFile::new(
            "src/App.tsx",
            "export default function App() { return null; }\n",
        ),
    ];
    server
        .state
        .apps()
        .create_app(user.into(), NewApp::new(title, NewVersion::files(files)))
        .await
        .unwrap()
        .app
        .id
}

fn files_of(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(crate) async fn generations_are_saved_as_versions(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let user = Uuid::new_v4();
    let job = finished(&server, user, FULL_APP, json!({ "prompt": "a todo list" })).await;
    assert_eq!(job["status"], "completed", "{job}");
    let app = job["result"]["appId"].as_str().unwrap().to_owned();
    assert_eq!(job["result"]["version"], 1);

    let (status, _, list) = server.call("GET", "/api/apps", Some(user), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], json!(app));
    assert_eq!(list["items"][0]["title"], job["result"]["name"]);
    let (_, _, at) = server
        .call("GET", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(at["version"]["number"], 1);
    assert_eq!(at["version"]["prompt"], "a todo list");
    assert_eq!(at["version"]["jobId"], job["id"]);
    let v1 = files_of(&at["version"]["files"]);
    assert_eq!(v1, files_of(&job["result"]["files"]));

    // A modification of the saved app becomes version 2, made from the stored files.
    let modify = finished(
        &server,
        user,
        MODIFY,
        json!({ "prompt": "add a dark mode toggle", "appId": app }),
    )
    .await;
    assert_eq!(modify["status"], "completed", "{modify}");
    assert_eq!(modify["result"]["appId"], json!(app));
    assert_eq!(modify["result"]["version"], 2);
    let (_, _, versions) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions"),
            Some(user),
            None,
        )
        .await;
    let numbers: Vec<&Value> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["number"])
        .collect();
    assert_eq!(numbers, [&json!(2), &json!(1)]);
    assert_eq!(versions["items"][0]["baseVersion"], 1);
    assert!(versions["items"][0]["changeSummary"].is_string());

    let (status, _, diff) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/diff?from=1&to=2"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    let changed: Vec<(&str, &str)> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert!(
        changed.contains(&("src/hooks/useDarkMode.ts", "added")),
        "{diff}"
    );
    assert!(changed.contains(&("src/App.tsx", "changed")), "{diff}");
    let app_diff = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "src/App.tsx")
        .unwrap();
    assert!(
        app_diff["diff"]
            .as_str()
            .unwrap()
            .contains("+import { useDarkMode } from './hooks/useDarkMode';"),
        "{app_diff}"
    );

    // The old version is still there, and restoring it makes version 3.
    let (_, _, old) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions/1"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(files_of(&old["version"]["files"]), v1);
    let (status, _, restored) = server
        .call(
            "POST",
            &format!("/api/apps/{app}/restore"),
            Some(user),
            Some(json!({ "version": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{restored}");
    assert_eq!(restored["version"]["number"], 3);
    assert_eq!(files_of(&restored["version"]["files"]), v1);

    // Rename, then find it by title.
    let (status, _, renamed) = server
        .call(
            "PATCH",
            &format!("/api/apps/{app}"),
            Some(user),
            Some(json!({ "title": "Focus list" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["title"], "Focus list");
    let (_, _, found) = server
        .call("GET", "/api/apps?search=FOCUS%20L", Some(user), None)
        .await;
    assert_eq!(found["items"][0]["id"], json!(app));
    let (_, _, none) = server
        .call("GET", "/api/apps?search=habit", Some(user), None)
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());

    // A full generation started from the saved app (a rebuild, a later phase) is its next
    // version too; the saved files are used, so the body may not carry its own.
    let rebuild = finished(
        &server,
        user,
        FULL_APP,
        json!({ "prompt": "a todo list, rebuilt", "appId": app }),
    )
    .await;
    assert_eq!(rebuild["status"], "completed", "{rebuild}");
    assert_eq!(rebuild["result"]["appId"], json!(app));
    assert_eq!(rebuild["result"]["version"], 4);
    let (status, _, body) = server
        .call(
            "POST",
            FULL_APP,
            Some(user),
            Some(json!({ "prompt": "x", "appId": app, "currentAppState": { "files": [] } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"]["field"], "currentAppState");
    let (_, _, list) = server.call("GET", "/api/apps", Some(user), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    server.stop().await;
}

pub(crate) async fn racing_modifications_conflict_naming_the_file(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let user = Uuid::new_v4();
    let job = finished(&server, user, FULL_APP, json!({ "prompt": "a todo list" })).await;
    let app = job["result"]["appId"].as_str().unwrap().to_owned();
    // Two identical modifications from version 1: the first lands as version 2; the second
    // replaces text the first already replaced, so it cannot be re-applied.
    let body = json!({ "prompt": "add a dark mode toggle", "appId": app, "baseVersion": 1 });
    let first = finished(&server, user, MODIFY, body.clone()).await;
    assert_eq!(first["status"], "completed", "{first}");
    let second = finished(&server, user, MODIFY, body).await;
    assert_eq!(second["status"], "failed", "{second}");
    let error = second["error"].as_str().unwrap();
    assert!(error.contains("\"index.html\""), "{error}");
    assert!(error.contains("conflict"), "{error}");
    let (_, _, versions) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
    // A base version that does not exist is refused before anything is queued.
    let (status, _, _) = server
        .call(
            "POST",
            MODIFY,
            Some(user),
            Some(json!({ "prompt": "more", "appId": app, "baseVersion": 9 })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

pub(crate) async fn another_users_app_is_not_found(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
    let app = saved_app(&server, owner, "Mine").await;
    let calls = [
        ("GET", format!("/api/apps/{app}"), None),
        (
            "PATCH",
            format!("/api/apps/{app}"),
            Some(json!({ "title": "Theirs" })),
        ),
        ("DELETE", format!("/api/apps/{app}"), None),
        ("GET", format!("/api/apps/{app}/versions"), None),
        ("GET", format!("/api/apps/{app}/versions/1"), None),
        ("GET", format!("/api/apps/{app}/diff?from=1&to=1"), None),
        (
            "POST",
            format!("/api/apps/{app}/restore"),
            Some(json!({ "version": 1 })),
        ),
        ("POST", format!("/api/apps/{app}/undelete"), None),
        ("POST", format!("/api/apps/{app}/publish"), Some(json!({}))),
        ("DELETE", format!("/api/apps/{app}/publish"), None),
        ("GET", format!("/api/apps/{app}/zip"), None),
        (
            "POST",
            MODIFY.to_owned(),
            Some(json!({ "prompt": "x", "appId": app })),
        ),
        (
            "POST",
            FULL_APP.to_owned(),
            Some(json!({ "prompt": "x", "appId": app })),
        ),
    ];
    for (method, path, body) in calls {
        let (status, _, answer) = server.call(method, &path, Some(other), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "not_found");
    }
    let (_, _, list) = server.call("GET", "/api/apps", Some(other), None).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    // Nothing was queued or charged for the other user.
    let (_, _, quota) = server.call("GET", "/api/quota", Some(other), None).await;
    assert_eq!(quota["daily"]["used"], 0);
    // The owner's app is as it was; an unparsable id is not found either.
    let (status, _, mine) = server
        .call("GET", &format!("/api/apps/{app}"), Some(owner), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["app"]["title"], "Mine");
    assert!(mine["app"]["deletedAt"].is_null());
    let (status, _, _) = server
        .call("GET", "/api/apps/not-a-uuid", Some(owner), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = server.call("GET", "/api/apps", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

pub(crate) async fn the_preview_shows_the_published_version_only(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let app = saved_app(&server, user, "Public page").await;
    let (status, _, published) = server
        .call(
            "POST",
            &format!("/api/apps/{app}/publish"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_eq!(published["previewEnabled"], true);
    assert_eq!(published["publishedVersion"], 1);
    let preview = published["previewPath"].as_str().unwrap().to_owned();
    assert!(
        preview.starts_with("/p/") && preview.len() == 3 + 32,
        "{preview}"
    );

    let (status, _, public) = server.call("GET", &preview, None, None).await;
    assert_eq!(status, StatusCode::OK, "{public}");
    assert_eq!(public["version"], 1);
    assert_eq!(public["title"], "Public page");
    assert!(public.get("userId").is_none(), "{public}");
    let v1 = files_of(&public["files"]);

    // A new version is private until it is published.
    let change = NewVersion::files(vec![AppFile::new("index.html", "<p>draft</p>\n")]);
    server
        .state
        .apps()
        .add_version(user.into(), app, 1, change)
        .await
        .unwrap();
    let (_, _, public) = server.call("GET", &preview, None, None).await;
    assert_eq!(
        (public["version"].clone(), files_of(&public["files"])),
        (json!(1), v1)
    );
    let (status, _, _) = server
        .call(
            "POST",
            &format!("/api/apps/{app}/publish"),
            Some(user),
            Some(json!({ "version": 2 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, public) = server.call("GET", &preview, None, None).await;
    assert_eq!(public["version"], 2);

    // Unpublished (either way), the address answers 404; publishing again reopens it.
    let (_, _, off) = server
        .call(
            "POST",
            &format!("/api/apps/{app}/publish"),
            Some(user),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(off["previewEnabled"], false);
    assert!(off["previewPath"].is_null());
    assert_eq!(
        server.call("GET", &preview, None, None).await.0,
        StatusCode::NOT_FOUND
    );
    server
        .call(
            "POST",
            &format!("/api/apps/{app}/publish"),
            Some(user),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        server.call("GET", &preview, None, None).await.0,
        StatusCode::OK
    );
    server
        .call(
            "DELETE",
            &format!("/api/apps/{app}/publish"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(
        server.call("GET", &preview, None, None).await.0,
        StatusCode::NOT_FOUND
    );
    // A deleted app's preview is gone even when it was published.
    server
        .call(
            "POST",
            &format!("/api/apps/{app}/publish"),
            Some(user),
            None,
        )
        .await;
    server
        .call("DELETE", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(
        server.call("GET", &preview, None, None).await.0,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

pub(crate) async fn the_zip_equals_the_version_files(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let app = saved_app(&server, user, "Zipped").await;
    let request = Request::builder()
        .uri(format!("/api/apps/{app}/zip?version=1"))
        .header("authorization", format!("Bearer {}", server.token(user)))
        .body(Body::empty())
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"app-")
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut unzipped = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        unzipped.push((entry.name().unwrap().into_owned(), content));
    }
    let (_, _, at) = server
        .call("GET", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    // The version's files, in order, then the project files they lack (package.json, ...).
    let files = files_of(&at["version"]["files"]);
    assert_eq!(unzipped[..files.len()], files[..]);
    let added: Vec<&str> = unzipped[files.len()..]
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(added.contains(&"package.json"), "{added:?}");
    assert!(added.contains(&".gitignore"), "{added:?}");
    assert!(
        !added
            .iter()
            .any(|name| files.iter().any(|(path, _)| path == name)),
        "a version file is never replaced: {added:?}"
    );
    let (status, _, _) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/zip?version=5"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

pub(crate) async fn delete_then_undelete(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let app = saved_app(&server, user, "Trash me").await;
    let (status, _, deleted) = server
        .call("DELETE", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(deleted["deletedAt"].is_string());
    let (status, _, _) = server
        .call("GET", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, live) = server.call("GET", "/api/apps", Some(user), None).await;
    assert!(live["items"].as_array().unwrap().is_empty());
    let (_, _, trash) = server
        .call("GET", "/api/apps?deleted=true", Some(user), None)
        .await;
    assert_eq!(trash["items"][0]["id"], json!(app));
    let (status, _, back) = server
        .call(
            "POST",
            &format!("/api/apps/{app}/undelete"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert!(back["deletedAt"].is_null());
    let (status, _, _) = server
        .call("GET", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Bad input is a 400 naming the problem.
    let (status, _, body) = server
        .call(
            "PATCH",
            &format!("/api/apps/{app}"),
            Some(user),
            Some(json!({ "title": " " })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = server
        .call("GET", "/api/apps?limit=0", Some(user), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await;
}
