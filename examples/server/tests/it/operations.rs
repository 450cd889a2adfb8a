//! Operations: the periodic upkeep (job retention, apps purged with their files erased from
//! their jobs), queue alerts, anonymous users, and the order of a graceful shutdown.

use std::time::Duration;

use appforge_core::SecretString;
use appforge_jobs::{JobStatus, NewJob};
use appforge_server::{AppState, Config, JwtKeys, maintenance, server};
use appforge_testing::ManualClock;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::support::{Db, FULL_APP, Options, SECRET, TestServer, eventually};

const MODIFY: &str = "/api/ai-builder/modify";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Runs a generation to its end and returns the job's view.
async fn finished(server: &TestServer, user: Uuid, path: &str, body: Value) -> Value {
    let job = server.generate(user, path, body).await;
    server.events(user, &job).await.rest().await;
    let (status, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "completed", "{view}");
    view
}

/// The stored job, as the queue holds it (payload included).
async fn stored(server: &TestServer, user: Uuid, job: &Value) -> appforge_jobs::Job {
    let id = job["id"].as_str().unwrap().parse().unwrap();
    server.state.queue().get(user, id).await.unwrap()
}

pub(crate) async fn the_periodic_pass_prunes_old_jobs_and_erases_purged_apps(db: Db) {
    let clock = ManualClock::at(chrono::Utc::now());
    let options = Options {
        workers: 1,
        clock: Some(clock.shared()),
        env: vec![
            ("APPFORGE_APP_RETENTION_DAYS", "1".into()),
            ("APPFORGE_JOB_RETENTION_DAYS", "7".into()),
        ],
        ..Options::default()
    };
    let server = TestServer::start(db, options).await;
    let user = Uuid::new_v4();
    // An app made by one job and changed by another; a second app that stays.
    let made = finished(&server, user, FULL_APP, json!({ "prompt": "a todo list" })).await;
    let app = made["result"]["appId"].as_str().unwrap().to_owned();
    let changed = finished(
        &server,
        user,
        MODIFY,
        json!({ "prompt": "add a dark mode toggle", "appId": app }),
    )
    .await;
    let kept = finished(
        &server,
        user,
        FULL_APP,
        json!({ "prompt": "a habit tracker" }),
    )
    .await;
    assert!(
        !stored(&server, user, &changed).await.payload["request"]["app"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (status, _, _) = server
        .call("DELETE", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // A day and more later the deleted app is past its retention: the pass purges it and
    // erases its files from both jobs; the other app's job keeps its files.
    clock.advance(2 * DAY);
    let report = maintenance::run(&server.state).await;
    assert_eq!(
        (
            report.purged_apps,
            report.redacted_jobs,
            report.pruned_jobs,
            report.errors
        ),
        (1, 2, 0, 0),
        "{report:?}"
    );
    let made_job = stored(&server, user, &made).await;
    let result = made_job.result.unwrap();
    assert_eq!(result.get("files"), None, "{result}");
    assert_eq!(result["filesPurged"], true);
    assert_eq!(result["appId"], json!(app));
    let changed_job = stored(&server, user, &changed).await;
    assert_eq!(changed_job.payload["request"]["app"], json!([]));
    assert_eq!(changed_job.result.unwrap().get("changeSet"), None);
    let (_, _, view) = server
        .call(
            "GET",
            &format!("/api/jobs/{}", made["id"].as_str().unwrap()),
            Some(user),
            None,
        )
        .await;
    assert_eq!(view["result"].get("files"), None, "{view}");
    for job in [&made, &changed] {
        for route in ["app", "zip"] {
            let (status, _, answer) = server
                .call(
                    "GET",
                    &format!("/api/jobs/{}/{route}", job["id"].as_str().unwrap()),
                    Some(user),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::GONE, "{route}: {answer}");
            assert_eq!(answer["error"], "files_purged");
        }
    }
    assert!(
        !stored(&server, user, &kept).await.result.unwrap()["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (status, _, _) = server
        .call("GET", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A job that never ran is kept however old; finished ones go after seven days.
    if let Some(workers) = &server.workers {
        workers.shutdown(Duration::from_secs(5)).await;
    }
    let waiting = server
        .generate(user, FULL_APP, json!({ "prompt": "later" }))
        .await;
    clock.advance(6 * DAY);
    let report = maintenance::run(&server.state).await;
    assert_eq!((report.pruned_jobs, report.errors), (3, 0), "{report:?}");
    for job in [&made, &changed, &kept] {
        let (status, _, _) = server
            .call(
                "GET",
                &format!("/api/jobs/{}", job["id"].as_str().unwrap()),
                Some(user),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{waiting}"), Some(user), None)
        .await;
    assert_eq!(view["status"], "pending");
}

pub(crate) async fn a_long_queue_raises_a_logged_and_counted_alert(db: Db) {
    let options = Options {
        env: vec![
            ("APPFORGE_ALERT_QUEUE_LENGTH", "2".into()),
            ("APPFORGE_ALERT_EVERY_SECS", "60".into()),
        ],
        ..Options::api_only()
    };
    let server = TestServer::start(db, options).await;
    for _ in 0..3 {
        server
            .generate(Uuid::new_v4(), FULL_APP, json!({ "prompt": "an app" }))
            .await;
    }
    assert!(
        !server
            .state
            .metrics()
            .render()
            .contains("appforge_alerts_total")
    );
    // The periodic checks start with one at once.
    maintenance::spawn(&server.state);
    eventually("the queue-length alert is counted", || async {
        server
            .state
            .metrics()
            .render()
            .contains("appforge_alerts_total{kind=\"queue_length\"} 1")
    })
    .await;
    server.state.shutdown_token().cancel();
    server.stop().await;
}

/// A token with Supabase's `is_anonymous: true`.
fn anonymous_token(user: Uuid) -> String {
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let claims = json!({
        "sub": user,
        "exp": now + 3600,
        "aud": "authenticated",
        "role": "authenticated",
        "is_anonymous": true,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

pub(crate) async fn anonymous_users_are_refused_by_default(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    for (method, path, body) in [
        ("GET", "/api/quota", Body::empty()),
        (
            "POST",
            FULL_APP,
            Body::from(json!({ "prompt": "an app" }).to_string()),
        ),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", anonymous_token(user)))
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let response = server.send(request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(body["error"], "anonymous_not_allowed", "{body}");
        assert!(body["message"].as_str().unwrap().contains("anonymous"));
    }
    assert_eq!(
        server
            .state
            .queue()
            .stats()
            .await
            .unwrap()
            .count(JobStatus::Pending),
        0,
        "nothing was enqueued"
    );
    // The same user signed in for real is served.
    let (status, _, _) = server.call("GET", "/api/quota", Some(user), None).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// Writes a generation request whose body never comes (`Expect: 100-continue`) and waits for
/// the `100 Continue` that shows its handler is reading the body: a request in flight.
async fn request_in_flight(addr: std::net::SocketAddr, token: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = json!({ "prompt": "an app started during the drain" }).to_string();
    let head = format!(
        "POST {FULL_APP} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0_u8; 256];
    while !String::from_utf8_lossy(&seen).contains("100 Continue\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("the server reads the body")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    stream
}

/// Sends the body of a request made by [`request_in_flight`] and reads the answer.
async fn finish_request(mut stream: tokio::net::TcpStream) -> Value {
    let body = json!({ "prompt": "an app started during the drain" }).to_string();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the answer comes")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let json = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(json).unwrap()
}

/// On shutdown the in-process workers stop claiming before the HTTP drain: a request still in
/// flight while the listener drains enqueues its job, and no local worker starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_workers_stop_claiming_before_http_drains() {
    let db = Db::sqlite().await;
    let vars = [
        ("DATABASE_URL", db.url()),
        ("APPFORGE_WORKERS", "1".to_owned()),
        ("APPFORGE_JWT_SECRET", SECRET.to_owned()),
        ("APPFORGE_SHUTDOWN_GRACE_SECS", "30".to_owned()),
    ];
    let config = Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let keys = JwtKeys::new(&SecretString::from(SECRET));
    let state = AppState::build(
        config,
        appforge_llm::Pipelines::new(appforge_llm::demo::offline_provider()),
        "offline-demo".into(),
        keys.clone(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (signal, signalled) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(state.clone(), listener, async move {
        let _ = signalled.await;
    }));
    let user = Uuid::new_v4();
    let token = keys.issue(user, None, Duration::from_secs(3600));
    // The workers run jobs until the signal.
    let before = state
        .queue()
        .enqueue(NewJob::new(
            "plan_phases",
            user,
            json!({ "request": { "prompt": "x" } }),
        ))
        .await
        .unwrap()
        .id;
    eventually("a job runs before the signal", || async {
        state
            .queue()
            .get(user, before)
            .await
            .unwrap()
            .status
            .is_terminal()
    })
    .await;
    // Two requests in flight hold the drain open.
    let first = request_in_flight(addr, &token).await;
    let second = request_in_flight(addr, &token).await;
    signal.send(()).unwrap();
    // Draining: the listener is closed.
    eventually("the listener closes", || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    let mut jobs = Vec::new();
    for stream in [first, second] {
        let answer = finish_request(stream).await;
        jobs.push(answer["jobId"].as_str().unwrap().parse().unwrap());
    }
    tokio::time::timeout(Duration::from_secs(60), serving)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    // The server closed its database at exit: read the jobs through a queue of our own.
    let queue = appforge_jobs::JobQueue::new(
        appforge_jobs::AnyJobStore::connect(&db.url())
            .await
            .unwrap(),
    );
    for id in jobs {
        let job = queue.get(user, id).await.unwrap();
        assert_eq!(
            (job.status, job.attempt),
            (JobStatus::Pending, 0),
            "a job enqueued during the drain is left for another worker"
        );
    }
}
