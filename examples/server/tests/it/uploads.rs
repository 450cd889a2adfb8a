//! Uploads over HTTP: a reference image stored and read back by its owner only, hostile
//! files refused with their named errors, and attachments on generations and chat.

use std::time::Duration;

use appforge_server::maintenance;
use appforge_testing::ManualClock;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Db, FULL_APP, Options, TestServer};

const PLAN_PHASES: &str = "/api/ai-builder/plan-phases";

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A PNG of `width` x `height` red pixels, built by hand (a zlib stream of stored blocks);
/// with `declared`, the header claims other dimensions than the data holds.
pub(crate) fn png(width: u32, height: u32, declared: Option<(u32, u32)>) -> Vec<u8> {
    // Each row: filter type 0, then the pixels.
    let mut row = vec![0u8];
    for _ in 0..width {
        row.extend_from_slice(&[220, 30, 30]);
    }
    let raw = row.repeat(usize::try_from(height).unwrap());
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).unwrap();
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let (w, h) = declared.unwrap_or((width, height));
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

async fn server() -> TestServer {
    let options = Options {
        env: vec![("APPFORGE_STORAGE_URL", "memory://".to_owned())],
        ..Options::default()
    };
    TestServer::start(Db::sqlite().await, options).await
}

/// `POST /api/uploads` with `bytes` as the body (and a content type that is not believed).
async fn upload(server: &TestServer, user: Uuid, bytes: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method("POST")
        .uri("/api/uploads")
        .header("authorization", format!("Bearer {}", server.token(user)))
        .header("content-type", "image/png")
        .body(Body::from(bytes))
        .unwrap();
    let response = server.send(request).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn uploaded(server: &TestServer, user: Uuid) -> String {
    let (status, body) = upload(server, user, png(4, 3, None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn read(server: &TestServer, user: Uuid, id: &str) -> http::Response<Body> {
    let request = Request::builder()
        .uri(format!("/api/uploads/{id}"))
        .header("authorization", format!("Bearer {}", server.token(user)))
        .body(Body::empty())
        .unwrap();
    server.send(request).await
}

#[tokio::test]
async fn an_upload_is_read_back_by_its_owner_only_then_deleted() {
    let server = server().await;
    let (owner, stranger) = (Uuid::new_v4(), Uuid::new_v4());
    let (status, body) = upload(&server, owner, png(4, 3, None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["contentType"], "image/png");
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(body["sha256"].as_str().unwrap().len(), 64);
    let id = body["id"].as_str().unwrap();
    assert_eq!(body["url"], format!("/api/uploads/{id}"));

    let response = read(&server, owner, id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::CONTENT_DISPOSITION], "inline");
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .starts_with("private, max-age=")
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(bytes.starts_with(b"\x89PNG"));
    assert_eq!(
        u64::try_from(bytes.len()).unwrap(),
        body["sizeBytes"].as_u64().unwrap()
    );

    assert_eq!(
        read(&server, stranger, id).await.status(),
        StatusCode::NOT_FOUND
    );
    let (status, _, _) = server
        .call(
            "DELETE",
            &format!("/api/uploads/{id}"),
            Some(stranger),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = server
        .call("DELETE", &format!("/api/uploads/{id}"), Some(owner), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        read(&server, owner, id).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        read(&server, owner, "not-an-id").await.status(),
        StatusCode::NOT_FOUND
    );
    let (status, _, _) = server.call("POST", "/api/uploads", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hostile_files_are_refused_with_their_named_errors() {
    let server = server().await;
    let user = Uuid::new_v4();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let (status, body) = upload(&server, user, svg.to_vec()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_format")
        )
    );

    let pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".to_vec();
    let (status, body) = upload(&server, user, pdf).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_format")
        )
    );

    let bomb = png(1, 1, Some((100_000, 100_000)));
    let (status, body) = upload(&server, user, bomb).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("dimensions_too_large")
        )
    );

    let mut big = png(1, 1, None);
    big.resize(5 * 1024 * 1024 + 1, 0);
    let (status, body) = upload(&server, user, big).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"))
    );
    // A body past the route's limit is cut there, and named the same.
    let mut huge = png(1, 1, None);
    huge.resize(6 * 1024 * 1024, 0);
    let (status, body) = upload(&server, user, huge).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")),
        "{body}"
    );

    // Nothing of these was kept.
    assert_eq!(server.state.uploads().usage(user).await.unwrap(), 0);
}

#[tokio::test]
async fn attachments_reach_the_job_and_bad_ones_are_refused() {
    let server = server().await;
    let (user, stranger) = (Uuid::new_v4(), Uuid::new_v4());
    let id = uploaded(&server, user).await;

    let job = server
        .generate(
            user,
            FULL_APP,
            json!({"prompt": "A habit tracker like this", "attachments": [id]}),
        )
        .await;
    server.events(user, &job).await.rest().await;
    let (status, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["attachments"], json!([id]));
    let (_, _, list) = server.call("GET", "/api/jobs", Some(user), None).await;
    assert_eq!(list["items"][0]["attachments"], json!([id]), "{list}");

    // Another user's upload, a made-up id: 404, nothing enqueued.
    let theirs = uploaded(&server, stranger).await;
    for bad in [theirs, Uuid::new_v4().to_string()] {
        let (status, _, body) = server
            .call(
                "POST",
                PLAN_PHASES,
                Some(user),
                Some(json!({"prompt": "A habit tracker", "attachments": [bad]})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    // More than the plan allows: 400 naming the limit.
    let five: Vec<String> = (0..5).map(|_| id.clone()).collect();
    let (status, _, body) = server
        .call(
            "POST",
            FULL_APP,
            Some(user),
            Some(json!({"prompt": "A habit tracker", "attachments": five})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"]["field"], "attachments");
    assert_eq!(body["details"]["limit"], "attachments");
    assert_eq!(body["details"]["max"], 4);

    // A deleted upload is not found either.
    let (status, _, _) = server
        .call("DELETE", &format!("/api/uploads/{id}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = server
        .call(
            "POST",
            "/api/chat",
            Some(user),
            Some(json!({"prompt": "Like this?", "attachments": [id]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn chat_takes_attachments() {
    let server = server().await;
    let user = Uuid::new_v4();
    let id = uploaded(&server, user).await;
    let (status, headers, _) = server
        .call(
            "POST",
            "/api/chat",
            Some(user),
            Some(json!({"prompt": "Does this layout work?", "attachments": [id]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
}

/// A `multipart/form-data` body of `parts` (name, file name, bytes), and its content type.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "appforge-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: image/png\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `POST /api/uploads` with a multipart body.
async fn upload_form(
    server: &TestServer,
    user: Uuid,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method("POST")
        .uri("/api/uploads")
        .header("authorization", format!("Bearer {}", server.token(user)))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    let response = server.send(request).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_multipart_png_is_stored_and_read_back() {
    let server = server().await;
    let user = Uuid::new_v4();
    // A form's text field beside the file is read past.
    let image = png(5, 2, None);
    let (content_type, body) = multipart(&[
        ("note", None, b"the login screen"),
        ("file", Some("mockup.png"), &image),
    ]);
    let (status, created) = upload_form(&server, user, &content_type, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["contentType"], "image/png");
    assert_eq!(
        (created["width"].as_u64(), created["height"].as_u64()),
        (Some(5), Some(2))
    );
    let id = created["id"].as_str().unwrap();

    let response = read(&server, user, id).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/png");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(bytes.starts_with(b"\x89PNG"));
    assert_eq!(
        u64::try_from(bytes.len()).unwrap(),
        created["sizeBytes"].as_u64().unwrap()
    );
    assert_eq!(
        server.state.uploads().usage(user).await.unwrap(),
        created["sizeBytes"].as_u64().unwrap()
    );

    // A file part under another name counts as the file too (it has a file name).
    let (content_type, body) = multipart(&[("image", Some("screen.png"), &image)]);
    let (status, created) = upload_form(&server, user, &content_type, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn multipart_refusals_name_their_error_and_store_nothing() {
    let server = server().await;
    let user = Uuid::new_v4();
    let image = png(2, 2, None);

    // No file part: only a text field.
    let (content_type, body) = multipart(&[("note", None, b"no image here")]);
    let (status, answer) = upload_form(&server, user, &content_type, body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_file")),
        "{answer}"
    );
    assert!(answer["message"].as_str().unwrap().contains("`file`"));

    // Two file parts: neither is stored.
    let (content_type, body) = multipart(&[
        ("file", Some("a.png"), &image),
        ("file", Some("b.png"), &image),
    ]);
    let (status, answer) = upload_form(&server, user, &content_type, body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("too_many_files")),
        "{answer}"
    );

    // A part one byte over the 5 MB limit, in a body within the route's limit.
    let mut big = png(1, 1, None);
    big.resize(5 * 1024 * 1024 + 1, 0);
    let (content_type, body) = multipart(&[("file", Some("big.png"), &big)]);
    let (status, answer) = upload_form(&server, user, &content_type, body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")),
        "{answer}"
    );

    // A body past the route's limit (6 MB): cut there, the same named error.
    let mut huge = png(1, 1, None);
    huge.resize(6 * 1024 * 1024, 0);
    let (content_type, body) = multipart(&[("file", Some("huge.png"), &huge)]);
    let (status, answer) = upload_form(&server, user, &content_type, body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")),
        "{answer}"
    );

    // A file part that is not an image: the bytes decide, not the part's content type.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let (content_type, body) = multipart(&[("file", Some("logo.png"), svg)]);
    let (status, answer) = upload_form(&server, user, &content_type, body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_format")
        ),
        "{answer}"
    );

    // A multipart content type without a boundary.
    let (status, answer) = upload_form(&server, user, "multipart/form-data", image.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_multipart")),
        "{answer}"
    );

    // Nothing of these was kept.
    assert_eq!(server.state.uploads().usage(user).await.unwrap(), 0);
    assert!(
        server
            .state
            .uploads()
            .list(user, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A server whose Free plan lets a request carry 1,000 input tokens: 1,000 bytes of history,
/// 2,000 of app, no phase context, and a 1,000-byte prompt, at four bytes a token.
async fn small_context_server() -> TestServer {
    let db = Db::sqlite().await;
    {
        let store = appforge_quota::AnyUsageStore::connect(&db.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let quota = appforge_quota::Quota::new(store);
        let mut free = appforge_quota::Plan::free();
        free.request_limits.history_bytes = 1_000;
        free.request_limits.app_bytes = 2_000;
        free.request_limits.phase_context_bytes = 0;
        quota.save_plans().await.unwrap();
        quota.save_plan(free).await.unwrap();
    }
    let options = Options {
        env: vec![
            ("APPFORGE_STORAGE_URL", "memory://".to_owned()),
            ("APPFORGE_MAX_PROMPT_BYTES", "1000".to_owned()),
        ],
        ..Options::default()
    };
    TestServer::start(db, options).await
}

/// A request of a 1,000-byte prompt, `history_bytes` of history and a 2,000-byte app, with
/// the attachment `id`.
fn sized_request(history_bytes: usize, id: &str) -> Value {
    let path = "src/App.tsx";
    json!({
        "prompt": "p".repeat(1_000),
        "conversationHistory": [{"role": "user", "content": "h".repeat(history_bytes)}],
        "currentAppState": {"files": [{"path": path, "content": "c".repeat(2_000 - path.len())}]},
        "attachments": [id],
    })
}

#[tokio::test]
async fn attached_images_count_against_the_plans_request_tokens() {
    let server = small_context_server().await;
    let user = Uuid::new_v4();
    // 300 x 250 pixels: 100 tokens at width x height / 750.
    let (status, body) = upload(&server, user, png(300, 250, None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();

    // 3,600 bytes of text (900 tokens) and the image (100): exactly the limit, accepted.
    let (status, _, body) = server
        .call("POST", FULL_APP, Some(user), Some(sized_request(600, &id)))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let first = body["jobId"].as_str().unwrap().to_owned();

    // Four bytes more (901 + 100 tokens): refused, naming the limit, before any reservation.
    let (status, _, body) = server
        .call("POST", FULL_APP, Some(user), Some(sized_request(604, &id)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_body");
    assert_eq!(body["details"]["field"], "attachments");
    assert_eq!(body["details"]["limit"], "request_tokens");
    assert_eq!(body["details"]["max"], 1_000);
    assert_eq!(body["details"]["estimatedTokens"], 1_001);
    assert_eq!(body["details"]["imageTokens"], 100);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("about 1001 input tokens (901 of text and 100 for 1 image"),
        "{body}"
    );
    // The same text without the image is within the plan's other limits, and accepted.
    let mut text_only = sized_request(604, &id);
    text_only["attachments"] = json!([]);
    let (status, _, body) = server
        .call("POST", FULL_APP, Some(user), Some(text_only))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let second = body["jobId"].as_str().unwrap().to_owned();

    // A chat message over the limit is refused before its reservation too.
    let mut chat = sized_request(604, &id);
    chat["prompt"] = json!("q".repeat(1_000));
    let (status, _, body) = server
        .call("POST", "/api/chat", Some(user), Some(chat))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"]["limit"], "request_tokens");

    // Nothing was reserved or enqueued for the refused requests: the two accepted
    // generations are all the day's use, and no chat message was counted.
    for job in [first, second] {
        server.events(user, &job).await.rest().await;
    }
    let (_, _, quota) = server.call("GET", "/api/quota", Some(user), None).await;
    assert_eq!(quota["daily"]["used"], 2, "{quota}");
    assert_eq!(quota["chat"]["used"], 0, "{quota}");
    let (_, _, jobs) = server.call("GET", "/api/jobs", Some(user), None).await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 2, "{jobs}");
}

#[tokio::test]
async fn a_version_shows_the_images_of_the_job_that_produced_it() {
    let server = server().await;
    let user = Uuid::new_v4();
    let id = uploaded(&server, user).await;
    let job = server
        .generate(
            user,
            FULL_APP,
            json!({"prompt": "A habit tracker like this", "attachments": [id]}),
        )
        .await;
    server.events(user, &job).await.rest().await;
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(view["status"], "completed", "{view}");
    let app = view["result"]["appId"].as_str().unwrap().to_owned();

    // The app at its current version, and that version by number.
    let (status, _, at) = server
        .call("GET", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{at}");
    assert_eq!(at["version"]["number"], 1);
    assert_eq!(at["version"]["jobId"], json!(job));
    assert_eq!(at["version"]["attachments"], json!([id]), "{at}");
    let (_, _, v1) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions/1"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(v1["version"]["attachments"], json!([id]), "{v1}");

    // A rebuild without images makes a version without them; version 1 keeps its own.
    let job = server
        .generate(
            user,
            FULL_APP,
            json!({"prompt": "A habit tracker with streaks", "appId": app}),
        )
        .await;
    server.events(user, &job).await.rest().await;
    let (_, _, modified) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(modified["status"], "completed", "{modified}");
    let (_, _, v2) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions/2"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(v2["version"]["number"], 2, "{v2}");
    assert_eq!(v2["version"]["attachments"], json!([]), "{v2}");
    let (_, _, v1) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions/1"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(v1["version"]["attachments"], json!([id]), "{v1}");
}

/// The thumbnails of an app's version outlive the job that produced it: once the upkeep prunes
/// the job past the job retention, the version still names its upload, which still reads.
#[tokio::test]
async fn a_versions_images_outlive_its_pruned_job() {
    let clock = ManualClock::at(chrono::Utc::now());
    let options = Options {
        workers: 1,
        clock: Some(clock.shared()),
        env: vec![("APPFORGE_JOB_RETENTION_DAYS", "7".to_owned())],
        ..Options::default()
    };
    let server = TestServer::start(Db::sqlite().await, options).await;
    let user = Uuid::new_v4();
    let id = uploaded(&server, user).await;
    let job = server
        .generate(
            user,
            FULL_APP,
            json!({"prompt": "A habit tracker like this", "attachments": [id]}),
        )
        .await;
    server.events(user, &job).await.rest().await;
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(view["status"], "completed", "{view}");
    let app = view["result"]["appId"].as_str().unwrap().to_owned();

    clock.advance(Duration::from_secs(8 * 24 * 3600));
    let report = maintenance::run(&server.state).await;
    assert_eq!((report.pruned_jobs, report.errors), (1, 0), "{report:?}");
    let (status, _, _) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the job is pruned");

    let (status, _, at) = server
        .call("GET", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{at}");
    assert_eq!(at["version"]["jobId"], json!(job));
    assert_eq!(at["version"]["attachments"], json!([id]), "{at}");
    let (_, _, versions) = server
        .call(
            "GET",
            &format!("/api/apps/{app}/versions"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(
        versions["items"][0]["attachments"],
        json!([id]),
        "{versions}"
    );
    let image = read(&server, user, &id).await;
    assert_eq!(image.status(), StatusCode::OK, "the thumbnail still reads");
}
