//! The server binary as a process: SIGTERM during a running job, and a split deployment of
//! one API process and two worker processes on one database.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use appforge_core::SecretString;
use appforge_server::JwtKeys;

use crate::support::SECRET;

struct Process {
    child: Child,
    url: Option<String>,
}

impl Process {
    /// Starts `appforge-server [worker]` on `database` and, for an API process, waits for
    /// the address it prints.
    async fn start(database: &str, workers: usize, worker_only: bool, pace_ms: u64) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_appforge-server"));
        if worker_only {
            command.arg("worker");
        }
        command
            .env_clear()
            .env("DATABASE_URL", database)
            .env("APPFORGE_ADDR", "127.0.0.1:0")
            .env("APPFORGE_WORKERS", workers.to_string())
            .env("APPFORGE_JWT_SECRET", SECRET)
            .env("APPFORGE_SHUTDOWN_GRACE_SECS", "0")
            .env("APPFORGE_DEMO_PACE_MS", pace_ms.to_string())
            // The tests poll jobs in tight loops; the per-user request rate is not under test.
            .env(
                "APPFORGE_REQUEST_RATES",
                "*=1000000/1000000,free=1000000/1000000",
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the server binary starts");
        let mut url = None;
        if !worker_only {
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            while let Some(line) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the server prints its address")
                .unwrap()
            {
                if let Some(u) = line.strip_prefix("appforge-server listening on ") {
                    url = Some(u.trim().to_owned());
                    break;
                }
            }
        }
        Self { child, url }
    }

    fn url(&self) -> &str {
        self.url.as_deref().unwrap()
    }

    /// Sends SIGTERM and waits for a clean exit.
    async fn terminate(mut self) {
        let pid = self.child.id().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the server exits after SIGTERM")
            .unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}

fn token(user: Uuid) -> String {
    JwtKeys::new(&SecretString::from(SECRET)).issue(user, None, Duration::from_secs(3600))
}

async fn get_json(client: &reqwest::Client, url: &str, user: Uuid) -> Value {
    client
        .get(url)
        .bearer_auth(token(user))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn enqueue(client: &reqwest::Client, base: &str, user: Uuid, prompt: &str) -> String {
    let answer: Value = client
        .post(format!("{base}/api/ai-builder/full-app"))
        .bearer_auth(token(user))
        .json(&json!({ "prompt": prompt }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["jobId"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

/// Polls the job until `done` holds (a process boundary: no in-process events to wait on).
async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    user: Uuid,
    job: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view = get_json(client, &format!("{base}/api/jobs/{job}"), user).await;
        if done(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never reached the state: {view}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigterm_during_a_job_then_restart_finishes_it_once() {
    let db = appforge_testing::TempSqlite::new();
    let client = reqwest::Client::new();
    let user = Uuid::new_v4();
    // Paced so that it cannot finish before the signal: hundreds of events, 50 ms apart.
    let first = Process::start(&db.url(), 1, false, 50).await;
    let base = first.url().to_owned();
    let job = enqueue(&client, &base, user, "a habit tracker").await;
    wait_for(&client, &base, user, &job, |v| v["status"] == "processing").await;
    // An open event stream does not hold the shutdown up.
    let events = client
        .get(format!("{base}/api/jobs/{job}/events"))
        .bearer_auth(token(user))
        .send()
        .await
        .unwrap();
    assert!(events.status().is_success());
    first.terminate().await;
    drop(events);

    let second = Process::start(&db.url(), 1, false, 0).await;
    let base = second.url().to_owned();
    let view = wait_for(&client, &base, user, &job, |v| v["status"] == "completed").await;
    let quota = get_json(&client, &format!("{base}/api/quota"), user).await;
    assert_eq!(quota["daily"]["used"], 1, "one generation counted: {quota}");
    let tokens = view["inputTokens"].as_u64().unwrap() + view["outputTokens"].as_u64().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let quota = get_json(&client, &format!("{base}/api/quota"), user).await;
        if quota["tokens"]["used"].as_u64() == Some(tokens) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "charged once with the job's tokens: {quota}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.terminate().await;
}

#[tokio::test]
#[cfg_attr(not(appforge_pg), ignore = "needs DATABASE_URL (PostgreSQL)")]
async fn two_workers_and_an_api_complete_a_batch_once_each() {
    let db = appforge_testing::TestDatabase::create().await;
    let client = reqwest::Client::new();
    let api = Process::start(db.url(), 0, false, 0).await;
    let base = api.url().to_owned();
    let workers = [
        Process::start(db.url(), 3, true, 1).await,
        Process::start(db.url(), 3, true, 1).await,
    ];
    let mut jobs = Vec::new();
    for i in 0..12 {
        // Separate users: each Free user may start five a day.
        let user = Uuid::new_v4();
        jobs.push((
            user,
            enqueue(&client, &base, user, &format!("app {i}")).await,
        ));
    }
    for (user, job) in &jobs {
        let view = wait_for(&client, &base, *user, job, |v| v["status"] == "completed").await;
        assert_eq!(view["attempt"], 1, "ran once: {view}");
        let quota = get_json(&client, &format!("{base}/api/quota"), *user).await;
        assert_eq!(quota["daily"]["used"], 1);
    }
    let pool = db.pool().await;
    let completed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM generation_jobs WHERE status::text = 'completed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(completed, 12);
    for worker in workers {
        worker.terminate().await;
    }
    api.terminate().await;
}

/// A setting that cannot be used stops the start before anything runs (no database is
/// created), with an error naming the variable.
#[tokio::test]
async fn an_unusable_setting_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.db");
    let database = format!("sqlite://{}", file.display());
    for (name, value, other) in [
        ("ALLOWED_ORIGINS", "*", None),
        ("APPFORGE_JWT_SECRET", "too-short", None),
        (
            "ALLOWED_ORIGINS",
            "https://app.example.com/",
            Some(("APPFORGE_WORKERS", "2")),
        ),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_appforge-server"));
        command
            .env_clear()
            .env("DATABASE_URL", &database)
            .env("APPFORGE_ADDR", "127.0.0.1:0")
            .env(name, value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some((k, v)) = other {
            command.env(k, v);
        }
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("the server exits at once")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid setting {name}")),
            "{name}={value}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!file.exists(), "the database was opened");
    }
}

/// README command 1: `cargo run -p appforge-server` with no JWT secret prints the address and
/// an `export TOKEN=...` line; that token is good for the API.
#[tokio::test]
async fn the_printed_demo_token_works() {
    let db = appforge_testing::TempSqlite::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_appforge-server"))
        .env_clear()
        .env("DATABASE_URL", db.url())
        .env("APPFORGE_ADDR", "127.0.0.1:0")
        .env("APPFORGE_WORKERS", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut demo) = (None, None);
    while demo.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server prints its address and a token")
            .unwrap()
            .expect("stdout stays open");
        if let Some(u) = line.strip_prefix("appforge-server listening on ") {
            url = Some(u.trim().to_owned());
        } else if let Some(t) = line.strip_prefix("export TOKEN=") {
            demo = Some(t.trim().to_owned());
        }
    }
    let (url, demo) = (url.expect("the address comes first"), demo.unwrap());
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("{url}/api/quota"))
        .bearer_auth(&demo)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let quota: Value = answer.json().await.unwrap();
    assert_eq!(quota["plan"], "free", "{quota}");
    // Another token is refused: the printed one is signed with the process's secret.
    let answer = client
        .get(format!("{url}/api/quota"))
        .bearer_auth(token(Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::UNAUTHORIZED);
    Process { child, url: None }.terminate().await;
}
