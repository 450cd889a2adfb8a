//! A server in-process: state over a fresh database, workers, and HTTP through `oneshot`.

use std::collections::HashMap;
use std::time::Duration;

use appforge_core::SecretString;
use appforge_jobs::{AnyJobStore, WorkerPool};
use appforge_llm::{Pipelines, demo};
use appforge_server::{AppState, Config, JwtKeys, routes};
use axum::body::Body;
use futures::StreamExt;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

/// The full-app generation route.
pub(crate) const FULL_APP: &str = "/api/ai-builder/full-app";

pub(crate) const SECRET: &str = "test-secret-of-sufficient-length-0123456789";

/// The bearer token of `/metrics` in tests.
pub(crate) const METRICS_TOKEN: &str = "metrics-test-token";

/// Where the test's database lives.
pub(crate) enum Db {
    Sqlite(appforge_testing::TempSqlite),
    #[allow(dead_code)]
    Postgres(appforge_testing::TestDatabase),
}

impl Db {
    pub(crate) async fn sqlite() -> Self {
        Self::Sqlite(appforge_testing::TempSqlite::new())
    }

    #[allow(dead_code)]
    pub(crate) async fn postgres() -> Self {
        Self::Postgres(appforge_testing::TestDatabase::create().await)
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Self::Sqlite(db) => db.url(),
            Self::Postgres(db) => db.url().to_owned(),
        }
    }
}

pub(crate) struct TestServer {
    pub(crate) state: AppState,
    pub(crate) workers: Option<WorkerPool<AnyJobStore>>,
    keys: JwtKeys,
    _db: Db,
    /// The previews' npm cache (`APPFORGE_PREVIEW_CACHE`), removed with the server.
    _preview_cache: tempfile::TempDir,
}

pub(crate) struct Options {
    pub(crate) workers: usize,
    pub(crate) pace: Option<Duration>,
    pub(crate) env: Vec<(&'static str, String)>,
    /// The clock of the queue, quotas and apps (the system clock when `None`).
    pub(crate) clock: Option<appforge_core::SharedClock>,
    /// The model provider (the offline demo, paced by `pace`, when `None`).
    pub(crate) provider: Option<std::sync::Arc<dyn appforge_llm::Provider>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            pace: None,
            env: Vec::new(),
            clock: None,
            provider: None,
        }
    }
}

impl Options {
    /// No in-process workers: jobs stay pending.
    pub(crate) fn api_only() -> Self {
        Self {
            workers: 0,
            ..Self::default()
        }
    }
}

/// The error-report routing of the server's subscriber (`telemetry::init`), without its log
/// output: an `error!` line becomes a report on the hub the request or job runs on (when
/// reporting is on), as in production.
fn route_errors_to_reports() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::registry()
            .with(appforge_analytics::tracing_layers())
            .try_init();
    });
}

impl TestServer {
    pub(crate) async fn start(db: Db, options: Options) -> Self {
        route_errors_to_reports();
        let mut env: HashMap<&str, String> = HashMap::new();
        env.insert("DATABASE_URL", db.url());
        env.insert("APPFORGE_WORKERS", options.workers.to_string());
        env.insert("APPFORGE_JWT_SECRET", SECRET.to_owned());
        env.insert("APPFORGE_MAX_BODY_BYTES", "65536".to_owned());
        env.insert("APPFORGE_MAX_PROMPT_BYTES", "4096".to_owned());
        env.insert("APPFORGE_METRICS_TOKEN", METRICS_TOKEN.to_owned());
        // Uploads in memory: a PostgreSQL run leaves no directory behind.
        env.insert("APPFORGE_STORAGE_URL", "memory://".to_owned());
        // Previews resolve from a cache of the test's own, never from a registry.
        let preview_cache = tempfile::tempdir().unwrap();
        env.insert(
            "APPFORGE_PREVIEW_CACHE",
            preview_cache.path().display().to_string(),
        );
        env.insert("APPFORGE_PREVIEW_OFFLINE", "true".to_owned());
        // Scenarios poll routes in loops: the request rate is not what they test.
        env.insert(
            "APPFORGE_REQUEST_RATES",
            "free=1000000/1000000,pro=1000000/1000000,team=1000000/1000000,*=1000000/1000000"
                .to_owned(),
        );
        for (k, v) in options.env {
            env.insert(k, v);
        }
        let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        let provider: std::sync::Arc<dyn appforge_llm::Provider> =
            match (options.provider, options.pace) {
                (Some(provider), _) => provider,
                (None, Some(pace)) => std::sync::Arc::new(demo::offline_provider().pace(pace)),
                (None, None) => std::sync::Arc::new(demo::offline_provider()),
            };
        let keys = JwtKeys::new(&SecretString::from(SECRET));
        let clock = options
            .clock
            .unwrap_or_else(appforge_core::SystemClock::shared);
        let state = AppState::build_with_clock(
            config,
            Pipelines::new(provider),
            "offline-demo".into(),
            keys.clone(),
            clock,
        )
        .await
        .unwrap();
        let workers = appforge_server::server::start_workers(&state).unwrap();
        Self {
            state,
            workers,
            keys,
            _db: db,
            _preview_cache: preview_cache,
        }
    }

    pub(crate) fn token(&self, user: Uuid) -> String {
        self.keys
            .issue(user, Some("someone@example.com"), Duration::from_secs(3600))
    }

    /// Sends `request` through the server's router. A JSON answer is checked against the
    /// OpenAPI document ([`conforms`]) on its way back.
    pub(crate) async fn send(&self, request: Request<Body>) -> http::Response<Body> {
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let response = routes::router(&self.state).oneshot(request).await.unwrap();
        let json = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
        if !json {
            return response;
        }
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            conforms(method.as_str(), &path, parts.status, &value);
        }
        http::Response::from_parts(parts, Body::from(bytes))
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        user: Option<Uuid>,
        body: Option<Value>,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            builder = builder.header("authorization", format!("Bearer {}", self.token(user)));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        let response = self.send(request).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }

    /// Enqueues a generation and returns its id.
    pub(crate) async fn generate(&self, user: Uuid, path: &str, body: Value) -> String {
        let (status, _, value) = self.call("POST", path, Some(user), Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{value}");
        value["jobId"].as_str().unwrap().to_owned()
    }

    /// Uses up the Free plan's five daily generations (they stay pending without workers),
    /// then asks for a sixth: the refusal's status, headers and body.
    pub(crate) async fn use_up_free_plan(
        &self,
        user: Uuid,
    ) -> (StatusCode, http::HeaderMap, Value) {
        for _ in 0..5 {
            self.generate(user, FULL_APP, serde_json::json!({ "prompt": "an app" }))
                .await;
        }
        self.call(
            "POST",
            FULL_APP,
            Some(user),
            Some(serde_json::json!({ "prompt": "one more" })),
        )
        .await
    }

    /// Every analytics event stored within a day of now, after writing what the recorder
    /// holds.
    pub(crate) async fn analytics_events(&self) -> Vec<appforge_analytics::AnalyticsEvent> {
        use appforge_analytics::EventStore;

        self.state.analytics().flush().await.unwrap();
        let now = chrono::Utc::now();
        self.state
            .analytics()
            .store()
            .events_between(
                now - chrono::TimeDelta::days(1),
                now + chrono::TimeDelta::days(1),
            )
            .await
            .unwrap()
    }

    /// Opens a job's SSE stream.
    pub(crate) async fn events(&self, user: Uuid, job: &str) -> SseReader {
        let request = Request::builder()
            .uri(format!("/api/jobs/{job}/events"))
            .header("authorization", format!("Bearer {}", self.token(user)))
            .body(Body::empty())
            .unwrap();
        let response = self.send(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        SseReader::from_response(response)
    }

    pub(crate) async fn stop(self) {
        if let Some(workers) = &self.workers {
            workers.shutdown(Duration::from_secs(5)).await;
        }
    }
}

/// Reads `event:`/`data:` frames from an SSE body.
pub(crate) struct SseReader {
    body: futures::stream::BoxStream<'static, Result<bytes::Bytes, axum::Error>>,
    buffer: String,
}

impl SseReader {
    pub(crate) fn from_response(response: http::Response<Body>) -> Self {
        Self {
            body: StreamExt::boxed(response.into_body().into_data_stream()),
            buffer: String::new(),
        }
    }

    /// The next `(event, data)`, or `None` when the stream ended.
    pub(crate) async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("the stream stalled")?
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Every remaining frame.
    pub(crate) async fn rest(&mut self) -> Vec<(String, Value)> {
        let mut all = Vec::new();
        while let Some(frame) = self.next().await {
            all.push(frame);
        }
        all
    }
}

/// Polls `check` until it holds (settlement happens on a spawned task after the job's last
/// write), failing after five seconds.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `/metrics` text.
pub(crate) async fn metrics_text(server: &TestServer) -> String {
    let request = Request::builder()
        .uri("/metrics")
        .header("authorization", format!("Bearer {METRICS_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The server's OpenAPI document, parsed once.
fn document() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::from_str(&appforge_server::openapi::DOCUMENT).unwrap())
}

/// The document's path template for a request path: the one whose literal segments all match,
/// preferring the most literal segments (`/api/apps/trash` over `/api/apps/{id}`).
fn template_of(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('?').next()?.split('/').collect();
    document()["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') {
                    continue;
                }
                if part != segment {
                    return None;
                }
                literal += 1;
            }
            Some((literal, template.as_str()))
        })
        .max()
        .map(|(_, template)| template)
}

/// A JSON answer the document describes (its route, method and status) validates against the
/// schema the document gives it: what the integration tests receive is what the document says.
/// An answer of a status the document does not list for the route fails the test.
pub(crate) fn conforms(method: &str, path: &str, status: StatusCode, body: &Value) {
    let Some(template) = template_of(path) else {
        return;
    };
    let operation = &document()["paths"][template][method.to_lowercase()];
    if !operation.is_object() {
        return;
    }
    let answer = &operation["responses"][status.as_str()];
    assert!(
        answer.is_object(),
        "{method} {template} answered {status}, which the document does not list: {body}"
    );
    let Some(schema) = answer["content"]["application/json"]["schema"].as_object() else {
        return;
    };
    let mut schema = schema.clone();
    schema.insert("components".into(), document()["components"].clone());
    let validator = jsonschema::validator_for(&Value::Object(schema)).unwrap();
    if let Err(error) = validator.validate(body) {
        panic!("{method} {template} {status}: the body does not match its schema: {error}\n{body}");
    }
}
