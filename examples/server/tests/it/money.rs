//! Every model call is accounted for: chat costs quota, a failure the request causes is not
//! free, a reservation lives as long as its job, an operator's retry is paid for, and the size
//! of a request is bounded by the plan.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use appforge_core::ManualClock;
use appforge_llm::{
    ApiErrorKind, EventStream, Fault, MessageRequest, Provider, Script, ScriptedProvider,
    StopReason, StreamEvent, Usage, demo,
};
use appforge_quota::{Plan, PlanId};
use axum::body::Body;
use futures::StreamExt;
use futures::future::BoxFuture;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::support::{Db, FULL_APP, Options, SseReader, TestServer, eventually};

const ADMIN: &str = "operator-token-for-money-tests";

/// The offline demo behind a gate (each model call takes a permit), counting the tokens each
/// call reported: what the provider would bill.
#[derive(Debug, Clone)]
struct Metered {
    inner: demo::OfflineProvider,
    gate: Arc<Semaphore>,
    asked: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
    tokens: Arc<AtomicU64>,
}

impl Metered {
    fn new(permits: usize) -> Self {
        Self {
            inner: demo::offline_provider(),
            gate: Arc::new(Semaphore::new(permits)),
            asked: Arc::new(AtomicU64::new(0)),
            calls: Arc::new(AtomicU64::new(0)),
            tokens: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Model calls started (waiting at the gate or through it).
    fn asked(&self) -> u64 {
        self.asked.load(Ordering::SeqCst)
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn tokens(&self) -> u64 {
        self.tokens.load(Ordering::SeqCst)
    }
}

/// Adds a call's usage to the total when the call's stream is dropped (a pipeline stops
/// reading at `message_stop`).
struct Tally {
    usage: Usage,
    total: Arc<AtomicU64>,
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.total.fetch_add(
            self.usage.input_tokens + self.usage.output_tokens,
            Ordering::SeqCst,
        );
    }
}

impl Provider for Metered {
    fn name(&self) -> &str {
        "metered"
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, appforge_llm::Result<EventStream>> {
        Box::pin(async move {
            self.asked.fetch_add(1, Ordering::SeqCst);
            self.gate.acquire().await.unwrap().forget();
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut events = self.inner.stream(request).await?;
            let total = Arc::clone(&self.tokens);
            let stream: EventStream = Box::pin(async_stream::stream! {
                let mut tally = Tally { usage: Usage::default(), total };
                while let Some(event) = events.next().await {
                    match &event {
                        Ok(StreamEvent::MessageStart { message }) => tally.usage.merge(&message.usage),
                        Ok(StreamEvent::MessageDelta { usage, .. }) => tally.usage.merge(usage),
                        _ => {}
                    }
                    yield event;
                }
            });
            Ok(stream)
        })
    }
}

fn with_admin(options: Options) -> Options {
    let mut env = options.env;
    env.push(("APPFORGE_ADMIN_TOKEN", ADMIN.to_owned()));
    Options { env, ..options }
}

fn with_provider(options: Options, provider: impl Provider + 'static) -> Options {
    Options {
        provider: Some(Arc::new(provider)),
        ..options
    }
}

async fn admin_post(server: &TestServer, path: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let response = server.send(request).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Opens a chat stream: the status and, when it is `200`, the reader.
async fn open_chat(server: &TestServer, user: Uuid, body: Value) -> (StatusCode, SseReader) {
    let request = Request::builder()
        .method("POST")
        .uri("/api/chat")
        .header("authorization", format!("Bearer {}", server.token(user)))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = server.send(request).await;
    (response.status(), SseReader::from_response(response))
}

async fn quota(server: &TestServer, user: Uuid) -> Value {
    let (status, _, quota) = server.call("GET", "/api/quota", Some(user), None).await;
    assert_eq!(status, StatusCode::OK, "{quota}");
    quota
}

async fn job(server: &TestServer, user: Uuid, id: &str) -> Value {
    let (status, _, job) = server
        .call("GET", &format!("/api/jobs/{id}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    job
}

/// Waits (up to ten seconds) until the job reached `status`; returns it then.
async fn wait_for(server: &TestServer, user: Uuid, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let job = job(server, user, id).await;
        if job["status"] == status {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} never {status}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// As [`wait_for`], moving `clock` on while waiting: a job deferred for the fair share waits
/// for the queue's time to pass.
async fn wait_moving(
    server: &TestServer,
    clock: &ManualClock,
    user: Uuid,
    id: &str,
    status: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let job = job(server, user, id).await;
        if job["status"] == status {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} never {status}: {job}"
        );
        clock.advance(Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn tokens_of(usage: &Value) -> u64 {
    usage["inputTokens"].as_u64().unwrap() + usage["outputTokens"].as_u64().unwrap()
}

/// A Free user's 21st chat message of the day is refused with the quota body; `/api/quota`
/// counts the 20 and the tokens their replies used.
pub(crate) async fn the_21st_free_chat_of_a_day_is_refused(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let mut tokens = 0;
    for _ in 0..20 {
        let (status, mut reader) = open_chat(
            &server,
            user,
            json!({ "prompt": "how should I structure it?", "mode": "plan" }),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let frames = reader.rest().await;
        let (last, done) = frames.last().unwrap();
        assert_eq!(last, "done", "{frames:?}");
        tokens += tokens_of(&done["usage"]);
    }
    assert!(tokens > 0);
    let (status, headers, body) = server
        .call(
            "POST",
            "/api/chat",
            Some(user),
            Some(json!({ "prompt": "one more?" })),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "quota_exceeded");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("daily chat message limit"),
        "{body}"
    );
    assert_eq!(body["details"]["deniedBy"], "chatMessages");
    assert_eq!(body["details"]["chat"]["used"], 20);
    assert_eq!(body["details"]["chat"]["limit"], 20);
    assert!(headers.contains_key("retry-after"));

    // The settlements run after each reply's last event: wait for the tokens.
    eventually("the chat tokens are committed", || async {
        quota(&server, user).await["tokens"]["used"] == tokens
    })
    .await;
    let status = quota(&server, user).await;
    assert_eq!(status["chat"]["used"], 20, "{status}");
    assert_eq!(status["chat"]["remaining"], 0, "{status}");
    assert_eq!(
        status["daily"]["used"], 0,
        "chat is not a generation: {status}"
    );

    let events = server.analytics_events().await;
    let chats: Vec<_> = events
        .iter()
        .filter(|e| e.event_type.as_str() == "chat_message")
        .collect();
    assert_eq!(chats.len(), 20);
    assert!(chats.iter().all(|e| e.properties["outcome"] == "replied"
        && e.properties["charged"] == true
        && e.properties["kind"] == "chat"));
    let recorded: u64 = chats
        .iter()
        .map(|e| {
            e.properties["input_tokens"].as_u64().unwrap_or(0)
                + e.properties["output_tokens"].as_u64().unwrap_or(0)
        })
        .sum();
    assert_eq!(recorded, tokens);
    assert!(
        events
            .iter()
            .any(|e| e.event_type.as_str() == "quota_denied" && e.properties["kind"] == "chat")
    );
    server.stop().await;
}

/// A client that goes away in the middle of a reply stops the model call, and the message is
/// charged with the tokens the call had spent.
pub(crate) async fn a_chat_cut_mid_stream_still_pays_its_tokens(db: Db) {
    let provider = ScriptedProvider::new();
    let transcript =
        ScriptedProvider::text_transcript(["Hello", ", ", "world", "!"], &StopReason::EndTurn);
    // message_start (10 input tokens, 1 output token), the text block, one delta, then silence.
    provider.push(Script::new(transcript).fault(Fault::Stall { after: 3 }));
    let server = TestServer::start(db, with_provider(Options::api_only(), provider.clone())).await;
    let user = Uuid::new_v4();
    let (status, mut reader) = open_chat(&server, user, json!({ "prompt": "hi" })).await;
    assert_eq!(status, StatusCode::OK);
    let (name, delta) = reader.next().await.unwrap();
    assert_eq!((name.as_str(), &delta["text"]), ("delta", &json!("Hello")));
    drop(reader);
    eventually("the cut message is charged", || async {
        let quota = quota(&server, user).await;
        quota["chat"]["used"] == 1 && quota["tokens"]["used"] == 11
    })
    .await;
    // The settlement records its analytics event after it commits the quota.
    eventually("the cut message is recorded", || async {
        server
            .analytics_events()
            .await
            .iter()
            .any(|e| e.event_type.as_str() == "chat_message")
    })
    .await;
    let events = server.analytics_events().await;
    let chat = events
        .iter()
        .find(|e| e.event_type.as_str() == "chat_message")
        .expect("recorded");
    assert_eq!(chat.properties["outcome"], "stopped");
    assert_eq!(chat.properties["charged"], true);
    server.stop().await;
}

/// A provider failure before any output refunds the chat message: no count, no tokens.
pub(crate) async fn a_chat_the_provider_failed_is_refunded(db: Db) {
    let provider = ScriptedProvider::new();
    provider.push(
        Script::new(ScriptedProvider::text_transcript(
            ["unused"],
            &StopReason::EndTurn,
        ))
        .fault(Fault::Status {
            status: 500,
            kind: ApiErrorKind::Api,
            retry_after: None,
        }),
    );
    provider.push(ScriptedProvider::text_transcript(
        ["It works"],
        &StopReason::EndTurn,
    ));
    let server = TestServer::start(db, with_provider(Options::api_only(), provider.clone())).await;
    let user = Uuid::new_v4();
    let (status, mut reader) = open_chat(&server, user, json!({ "prompt": "hi" })).await;
    assert_eq!(status, StatusCode::OK);
    let frames = reader.rest().await;
    let (last, error) = frames.last().unwrap();
    assert_eq!(last, "error", "{frames:?}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("does not count"),
        "{error}"
    );
    assert!(
        !error.to_string().contains("status 500"),
        "no provider detail reaches the client: {error}"
    );
    // The next message is the one that counts.
    let (_, mut reader) = open_chat(&server, user, json!({ "prompt": "again" })).await;
    let frames = reader.rest().await;
    assert_eq!(frames.last().unwrap().0, "done");
    eventually("one message counted", || async {
        let quota = quota(&server, user).await;
        quota["chat"]["used"] == 1 && quota["tokens"]["used"] == 11
    })
    .await;
    let events = server.analytics_events().await;
    let failed = events
        .iter()
        .find(|e| e.event_type.as_str() == "chat_message" && e.properties["outcome"] == "failed")
        .expect("the failure is recorded");
    assert_eq!(failed.properties["charged"], false);
    server.stop().await;
}

/// Each model call asks for at most the plan's output tokens.
pub(crate) async fn model_calls_ask_for_the_plans_output_tokens(db: Db) {
    let provider = ScriptedProvider::new();
    for _ in 0..2 {
        provider.push(ScriptedProvider::text_transcript(
            ["ok"],
            &StopReason::EndTurn,
        ));
    }
    let server = TestServer::start(db, with_provider(Options::api_only(), provider.clone())).await;
    let (free, team) = (Uuid::new_v4(), Uuid::new_v4());
    server
        .state
        .quota()
        .set_plan(team, &PlanId::team())
        .await
        .unwrap();
    for user in [free, team] {
        let (_, mut reader) = open_chat(&server, user, json!({ "prompt": "hi" })).await;
        assert_eq!(reader.rest().await.last().unwrap().0, "done");
    }
    let model_max = server.state.pipelines().max_tokens_in_effect();
    let asked: Vec<u32> = provider.requests().iter().map(|r| r.max_tokens).collect();
    assert_eq!(
        asked,
        [
            Plan::free().request_limits.output_tokens.min(model_max),
            Plan::team().request_limits.output_tokens.min(model_max),
        ]
    );
    assert!(asked[0] < asked[1], "{asked:?}");
    server.stop().await;
}

/// What a job would reject is refused before anything is reserved, naming the field and the
/// limit; the conversation and the app a request carries are bounded by the plan.
pub(crate) async fn requests_beyond_the_plan_are_refused_before_reserving(db: Db) {
    let provider = Metered::new(0);
    let server = TestServer::start(db, with_provider(Options::api_only(), provider.clone())).await;
    let user = Uuid::new_v4();
    let file = |path: &str| json!({ "path": path, "content": "x" });
    let history: Vec<Value> = (0..21)
        .map(|i| json!({ "role": "user", "content": format!("message {i}") }))
        .collect();
    let files: Vec<Value> = (0..201).map(|i| file(&format!("src/f{i}.ts"))).collect();
    let cases = [
        (
            FULL_APP,
            json!({ "prompt": "an app", "currentAppState": { "files": [file("../etc/passwd")] } }),
            "currentAppState.files[0].path",
            None,
        ),
        (
            "/api/ai-builder/modify",
            json!({ "prompt": "change", "currentAppState": { "files": [
                file("src/App.tsx"), file("./src/App.tsx")
            ] } }),
            "currentAppState.files[1].path",
            None,
        ),
        (
            FULL_APP,
            json!({ "prompt": "an app", "conversationHistory": history }),
            "conversationHistory",
            Some("history_messages"),
        ),
        (
            "/api/ai-builder/plan-phases",
            json!({ "prompt": "plan", "conversationHistory": history }),
            "conversationHistory",
            Some("history_messages"),
        ),
        (
            FULL_APP,
            json!({ "prompt": "an app", "currentAppState": { "files": files } }),
            "currentAppState.files",
            Some("app_files"),
        ),
        (
            "/api/chat",
            json!({ "prompt": "hi", "conversationHistory": history }),
            "conversationHistory",
            Some("history_messages"),
        ),
        (
            "/api/chat",
            json!({ "prompt": "hi", "currentAppState": { "files": [file("/abs/path")] } }),
            "currentAppState.files[0].path",
            None,
        ),
    ];
    for (path, body, field, limit) in cases {
        let (status, _, answer) = server.call("POST", path, Some(user), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["details"]["field"], field, "{path}: {answer}");
        if let Some(limit) = limit {
            assert_eq!(answer["details"]["limit"], limit, "{answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(
                message.contains(limit) && message.contains("free plan"),
                "{message}"
            );
        }
    }
    // A Pro user may send 21 messages of history.
    let pro = Uuid::new_v4();
    server
        .state
        .quota()
        .set_plan(pro, &PlanId::pro())
        .await
        .unwrap();
    server
        .generate(
            pro,
            FULL_APP,
            json!({ "prompt": "an app", "conversationHistory": history }),
        )
        .await;
    // Another user's app, or none: 404 before reserving.
    let (status, _, _) = server
        .call(
            "POST",
            FULL_APP,
            Some(user),
            Some(json!({ "prompt": "rebuild", "appId": Uuid::new_v4() })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let status = quota(&server, user).await;
    assert_eq!(
        (&status["daily"]["used"], &status["chat"]["used"]),
        (&json!(0), &json!(0)),
        "nothing reserved: {status}"
    );
    assert_eq!(provider.calls(), 0, "no model call");
    server.stop().await;
}

/// Twenty builds on an app that its owner deletes while they run: each reached the model and
/// failed because of the user's own action. Each counts, and `tokens.used` is exactly what
/// the provider reported.
pub(crate) async fn hostile_jobs_pay_what_the_provider_reported(db: Db) {
    use appforge_apps::{AppStore, NewApp, NewVersion};

    let provider = Metered::new(0);
    let server = TestServer::start(db, with_provider(Options::default(), provider.clone())).await;
    let user = Uuid::new_v4();
    server
        .state
        .quota()
        .set_plan(user, &PlanId::team())
        .await
        .unwrap();
    let files = vec![appforge_llm::AppFile::new(
        "src/App.tsx",
        "export default 1;",
    )];
    let saved = server
        .state
        .apps()
        .create_app(user.into(), NewApp::new("Todo", NewVersion::files(files)))
        .await
        .unwrap();
    let app = saved.app.id.to_string();

    let mut jobs = Vec::new();
    for i in 0..20 {
        jobs.push(
            server
                .generate(
                    user,
                    FULL_APP,
                    json!({ "prompt": format!("rebuild {i}"), "appId": app }),
                )
                .await,
        );
    }
    let (status, _, body) = server
        .call("DELETE", &format!("/api/apps/{app}"), Some(user), None)
        .await;
    assert!(status.is_success(), "{body}");
    provider.gate.add_permits(20);
    for id in &jobs {
        let failed = wait_for(&server, user, id, "failed").await;
        let error = failed["error"].as_str().unwrap();
        assert!(error.starts_with("request error: "), "{error}");
    }
    assert_eq!(provider.calls(), 20);
    let reported = provider.tokens();
    assert!(reported > 0);
    eventually("every job is settled", || async {
        quota(&server, user).await["tokens"]["used"] == reported
    })
    .await;
    let status = quota(&server, user).await;
    assert_eq!(
        status["daily"]["used"], 20,
        "a failure the user caused counts: {status}"
    );
    server.stop().await;
}

/// Five Free jobs wait in a queue without workers for 31 minutes: their reservations outlive
/// the 30-minute timeout (a sixth request is still refused), and the five are charged when
/// they run.
pub(crate) async fn waiting_jobs_keep_their_reservations(db: Db) {
    let clock = ManualClock::at(appforge_testing::fixed_now());
    let server = TestServer::start(
        db,
        Options {
            clock: Some(clock.shared()),
            ..Options::api_only()
        },
    )
    .await;
    let user = Uuid::new_v4();
    let mut jobs = Vec::new();
    for _ in 0..5 {
        jobs.push(
            server
                .generate(user, FULL_APP, json!({ "prompt": "an app" }))
                .await,
        );
    }
    clock.advance(Duration::from_secs(31 * 60));
    // Every periodic pass a process runs: neither releases a waiting job's slot.
    appforge_server::reconcile::reconcile_at_start(&server.state).await;
    server.state.quota().reset_expired().await.unwrap();
    let (status, _, body) = server
        .call(
            "POST",
            FULL_APP,
            Some(user),
            Some(json!({ "prompt": "a sixth" })),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["details"]["daily"]["used"], 5);

    // A Free user runs one job at a time: the others wait their turn (on the queue's clock).
    let workers = appforge_server::work::start(&server.state, 2).unwrap();
    let mut tokens = 0;
    for id in &jobs {
        let done = wait_moving(&server, &clock, user, id, "completed").await;
        tokens += tokens_of(&done["result"]["usage"]);
    }
    assert!(tokens > 0);
    eventually("the five are charged", || async {
        let quota = quota(&server, user).await;
        quota["daily"]["used"] == 5 && quota["tokens"]["used"] == tokens
    })
    .await;
    workers.shutdown(Duration::from_secs(5)).await;
    server.stop().await;
}

/// An operator's retry takes a fresh reservation of the owner's plan (refused with the quota
/// body when none is left), unless it is marked free, which the job records.
pub(crate) async fn operator_retries_are_paid_for_or_marked_free(db: Db) {
    let server = TestServer::start(db, with_admin(Options::api_only())).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let cancelled = server
        .generate(alice, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    let (status, _, _) = server
        .call(
            "DELETE",
            &format!("/api/jobs/{cancelled}"),
            Some(alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually("the cancelled job is refunded", || async {
        quota(&server, alice).await["daily"]["used"] == 0
    })
    .await;
    for _ in 0..5 {
        server
            .generate(alice, FULL_APP, json!({ "prompt": "another" }))
            .await;
    }
    let retry = format!("/api/admin/jobs/{cancelled}/retry");
    let (status, body) = admin_post(&server, &retry).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(body["details"]["daily"]["used"], 5);
    assert_eq!(job(&server, alice, &cancelled).await["status"], "cancelled");

    let (status, body) = admin_post(&server, &format!("{retry}?free=true")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    let stored = server
        .state
        .queue()
        .get_any(cancelled.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.payload["freeRetry"], true);
    assert_eq!(stored.payload["reservationId"], Value::Null);
    assert_eq!(quota(&server, alice).await["daily"]["used"], 5);

    // Bob's plan has room: the retry takes a reservation, held by the job.
    let job_id = server
        .generate(bob, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    server
        .call("DELETE", &format!("/api/jobs/{job_id}"), Some(bob), None)
        .await;
    eventually("bob's job is refunded", || async {
        quota(&server, bob).await["daily"]["used"] == 0
    })
    .await;
    let (status, body) = admin_post(&server, &format!("/api/admin/jobs/{job_id}/retry")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(quota(&server, bob).await["daily"]["used"], 1);
    let stored = server
        .state
        .queue()
        .get_any(job_id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.payload["freeRetry"], false);
    let reservation = stored.payload["reservationId"].as_str().unwrap().to_owned();
    let now = appforge_core::Clock::now(&**server.state.quota().clock());
    let held = server
        .state
        .quota()
        .held(now + chrono::TimeDelta::seconds(1), None, 100)
        .await
        .unwrap();
    assert!(
        held.iter()
            .any(|h| h.id.to_string() == reservation && h.holder.to_string() == job_id),
        "{held:?}"
    );

    // The retried jobs run: Bob's is charged with its tokens, Alice's free one is not.
    let workers = appforge_server::work::start(&server.state, 2).unwrap();
    let done = wait_for(&server, bob, &job_id, "completed").await;
    wait_for(&server, alice, &cancelled, "completed").await;
    let tokens = tokens_of(&done["result"]["usage"]);
    eventually("bob's retry is charged", || async {
        let quota = quota(&server, bob).await;
        quota["daily"]["used"] == 1 && quota["tokens"]["used"] == tokens
    })
    .await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(quota(&server, alice).await["daily"]["used"], 5);
    server.stop().await;
}

/// A Free user runs one job at a time (their plan's `max_running_jobs`): their second job
/// waits, unstarted and with its attempt unspent, while another user's job takes the free
/// worker; it runs once the first is done.
pub(crate) async fn a_users_running_jobs_are_capped_by_their_plan(db: Db) {
    let clock = ManualClock::at(appforge_testing::fixed_now());
    let provider = Metered::new(0);
    let options = Options {
        clock: Some(clock.shared()),
        ..with_provider(Options::default(), provider.clone())
    };
    let server = TestServer::start(db, options).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let first = server
        .generate(alice, FULL_APP, json!({ "prompt": "one" }))
        .await;
    let second = server
        .generate(alice, FULL_APP, json!({ "prompt": "two" }))
        .await;
    let bobs = server
        .generate(bob, FULL_APP, json!({ "prompt": "bob's" }))
        .await;
    // Both workers reach the model: one with an Alice job, one with Bob's.
    eventually("two model calls wait at the gate", || async {
        provider.asked() == 2
    })
    .await;
    let (a, b) = (
        job(&server, alice, &first).await,
        job(&server, alice, &second).await,
    );
    let waiting = [&a, &b]
        .into_iter()
        .filter(|j| j["status"] == "pending")
        .count();
    assert_eq!(waiting, 1, "one of Alice's jobs waits: {a} {b}");
    assert_eq!(job(&server, bob, &bobs).await["status"], "processing");
    provider.gate.add_permits(10);
    for (user, id) in [(alice, &first), (alice, &second), (bob, &bobs)] {
        let done = wait_moving(&server, &clock, user, id, "completed").await;
        assert_eq!(done["attempt"], 1, "the wait spent no attempt: {done}");
    }
    assert_eq!(provider.calls(), 3);
    server.stop().await;
}

/// Reconciliation releases a held reservation whose job does not exist (a job enqueued by a
/// process that died, then pruned, say) and keeps the one of a job still waiting.
pub(crate) async fn reconciliation_releases_reservations_of_jobs_that_are_gone(db: Db) {
    use appforge_quota::Admission;

    let clock = ManualClock::at(appforge_testing::fixed_now());
    let server = TestServer::start(
        db,
        Options {
            clock: Some(clock.shared()),
            ..Options::api_only()
        },
    )
    .await;
    let user = Uuid::new_v4();
    server
        .generate(user, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    let Admission::Granted(orphan) = server.state.quota().reserve(user, 1).await.unwrap() else {
        panic!("within the Free plan");
    };
    server
        .state
        .quota()
        .hold(orphan.id, Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(quota(&server, user).await["daily"]["used"], 2);
    // Held reservations younger than the timeout are not looked at.
    let report = appforge_server::reconcile::reconcile_at_start(&server.state).await;
    assert_eq!(report.released, 0);
    clock.advance(Duration::from_secs(31 * 60));
    let report = appforge_server::reconcile::reconcile_at_start(&server.state).await;
    assert_eq!((report.released, report.errors), (1, 0), "{report:?}");
    let status = quota(&server, user).await;
    assert_eq!(
        status["daily"]["used"], 1,
        "the waiting job keeps its slot: {status}"
    );
    assert_eq!(
        server.state.quota().refund(orphan.id).await.unwrap(),
        appforge_quota::Settlement::AlreadyDone
    );
    server.stop().await;
}
