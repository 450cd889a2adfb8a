//! Uploads over HTTP: a reference image stored and read back by its owner only, hostile
//! files refused with their named errors, and attachments on generations and chat.

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
fn png(width: u32, height: u32, declared: Option<(u32, u32)>) -> Vec<u8> {
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
    assert_eq!(body["details"]["limit"], "request_limits.attachments");
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
