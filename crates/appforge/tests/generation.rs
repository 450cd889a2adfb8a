//! The generation service end to end over the memory stores and a scripted model: submit,
//! run, save the app version, settle; and what happens when each part fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use appforge::apps::{AppStore, MemoryAppStore, Owner};
use appforge::generation::{
    AttachmentError, AttachmentLoader, ChatChunk, ChatMessage, GenerationService, Submission,
    SubmitError,
};
use appforge::jobs::{Job, JobFilter, JobStatus, MemoryJobStore, PageRequest, WorkerPool};
use appforge::llm::{
    ApiErrorKind, Attachment, ChatRequest, Fault, FullAppRequest, ModifyRequest, Pipelines,
    PlanRequest, Script, ScriptedProvider, StopReason,
};
use appforge::quota::{AnyUsageStore, MemoryUsageStore, Quota};
use appforge::settlement::ChatEnd;
use futures::StreamExt;
use futures::future::BoxFuture;
use uuid::Uuid;

const APP: &str = "===NAME===\nTodo\n===DESCRIPTION===\nA list.\n===FILE: src/App.tsx===\nexport default function App() { return null; }\n===END===\n";

fn answer(text: &str) -> String {
    ScriptedProvider::text_transcript([text], &StopReason::EndTurn)
}

type Service = GenerationService<MemoryJobStore, AnyUsageStore, MemoryAppStore>;

struct Harness {
    service: Service,
    provider: ScriptedProvider,
    ended: Arc<AtomicUsize>,
    wrapped: Arc<AtomicUsize>,
}

fn harness(loader: Option<Images>) -> Harness {
    let provider = ScriptedProvider::new();
    let ended = Arc::new(AtomicUsize::new(0));
    let wrapped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ended);
    let around = Arc::clone(&wrapped);
    let mut builder = GenerationService::builder(
        Quota::new(MemoryUsageStore::new()),
        MemoryJobStore::new(),
        MemoryAppStore::new(),
        Pipelines::new(provider.clone()),
    )
    .provider("scripted")
    .on_job_end(move |_job| {
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .around_job(move |_job, run| {
        around.fetch_add(1, Ordering::SeqCst);
        run
    });
    if let Some(loader) = loader {
        builder = builder.attachments(loader);
    }
    Harness {
        service: builder.build().unwrap(),
        provider,
        ended,
        wrapped,
    }
}

impl Harness {
    /// Submits the full app every test starts from.
    async fn todo_list(&self, user: Uuid) -> appforge::generation::Submitted {
        self.service
            .submit(
                user,
                Submission::full_app(FullAppRequest::new("a todo list")),
            )
            .await
            .unwrap()
    }

    /// Runs every queued job to its end with one worker, then waits for the settlements.
    async fn run(&self, user: impl Into<Owner> + Copy, job: appforge::jobs::JobId) -> Job {
        let workers: WorkerPool<MemoryJobStore> = self.service.start_workers(1).unwrap();
        let mut events = self.service.queue().subscribe(user, job).await.unwrap();
        while events.next().await.is_some() {}
        workers.shutdown(Duration::from_secs(5)).await;
        self.service.flush_settlements(Duration::from_secs(5)).await;
        self.service.queue().get(user, job).await.unwrap()
    }
}

/// A generation submitted in an org is the org's: its job, the app it saves and the quota it
/// spends; the submitter's personal space sees none of it and their own quota is untouched.
#[tokio::test]
async fn a_generation_in_an_org_is_the_orgs_job_app_and_quota() {
    let h = harness(None);
    h.provider.push(answer(APP));
    let (member, org) = (Uuid::new_v4(), Uuid::new_v4());
    let submitted = h
        .service
        .submit(
            member,
            Submission::full_app(FullAppRequest::new("a todo list")).in_org(org),
        )
        .await
        .unwrap();
    let job = h.run(Owner::Org(org), submitted.job).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!((job.owner(), job.user_id), (Owner::Org(org), member));
    assert!(
        h.service
            .queue()
            .get(member, submitted.job)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let app: Uuid = serde_json::from_value(job.result.unwrap()["appId"].clone()).unwrap();
    let saved = h
        .service
        .apps()
        .get_app(Owner::Org(org), app)
        .await
        .unwrap();
    assert_eq!(
        (saved.org_id, saved.user_id),
        (Some(org), member),
        "created by the member"
    );
    assert!(
        h.service
            .apps()
            .get_app(Owner::User(member), app)
            .await
            .unwrap_err()
            .is_not_found()
    );

    assert_eq!(h.service.quota().status(org).await.unwrap().daily.used, 1);
    assert_eq!(
        h.service.quota().status(member).await.unwrap().daily.used,
        0
    );

    // A change to the org's app is saved as its next version, in the org.
    h.provider.push(answer(
        "===SUMMARY===\nA title.\n===CHANGES===\n[{\"path\":\"src/Title.tsx\",\"action\":\"create\",\"content\":\"export const Title = () => null;\\n\"}]\n===END===\n",
    ));
    let modify = ModifyRequest {
        request: "add a title".into(),
        app: saved_files(&h, Owner::Org(org), app).await,
        ..ModifyRequest::default()
    };
    let submitted = h
        .service
        .submit(
            member,
            Submission::modify(modify).save_to(app, 1).in_org(org),
        )
        .await
        .unwrap();
    let job = h.run(Owner::Org(org), submitted.job).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(
        h.service
            .apps()
            .get_app(Owner::Org(org), app)
            .await
            .unwrap()
            .current_version,
        2
    );
}

async fn saved_files(h: &Harness, owner: Owner, app: Uuid) -> Vec<appforge::llm::AppFile> {
    h.service
        .apps()
        .get_version(owner, app, None)
        .await
        .unwrap()
        .files
}

#[tokio::test]
async fn a_full_app_is_generated_saved_and_charged_with_its_tokens() {
    let h = harness(None);
    h.provider.push(answer(APP));
    let user = Uuid::new_v4();
    let submitted = h.todo_list(user).await;
    assert_eq!(submitted.plan.as_str(), "free");
    let job = h.run(user, submitted.job).await;

    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    let result = job.result.unwrap();
    assert_eq!(result["name"], "Todo");
    assert_eq!(result["version"], 1);
    assert_eq!(result["provider"], "scripted");
    assert!(result["setupCommands"].is_array(), "{result}");
    let app: Uuid = serde_json::from_value(result["appId"].clone()).unwrap();
    let saved = h
        .service
        .apps()
        .get_version(user.into(), app, None)
        .await
        .unwrap();
    assert_eq!(saved.files[0].path, "src/App.tsx");
    assert_eq!(saved.info.job_id, Some(submitted.job.into()));

    let status = h.service.quota().status(user).await.unwrap();
    assert_eq!(status.daily.used, 1);
    let tokens = job.input_tokens.unwrap() + job.output_tokens.unwrap();
    assert!(tokens > 0);
    assert_eq!(status.tokens.used, tokens);
    assert_eq!(h.ended.load(Ordering::SeqCst), 1);
    assert_eq!(h.wrapped.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_modification_of_a_saved_app_becomes_its_next_version() {
    let h = harness(None);
    h.provider.push(answer(APP));
    let user = Uuid::new_v4();
    let first = h.todo_list(user).await;
    let job = h.run(user, first.job).await;
    let app: Uuid = serde_json::from_value(job.result.unwrap()["appId"].clone()).unwrap();
    let current = h
        .service
        .apps()
        .get_version(user.into(), app, None)
        .await
        .unwrap();

    h.provider.push(answer(
        "===SUMMARY===\nA title.\n===CHANGES===\n[{\"path\":\"src/Title.tsx\",\"action\":\"create\",\"content\":\"export const Title = () => null;\\n\"}]\n===END===\n",
    ));
    let request = ModifyRequest {
        request: "add a title".into(),
        app: current.files.clone(),
        ..ModifyRequest::default()
    };
    let second = h
        .service
        .submit(
            user,
            Submission::modify(request).save_to(app, current.info.number),
        )
        .await
        .unwrap();
    let job = h.run(user, second.job).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert_eq!(job.result.unwrap()["version"], 2);
    let latest = h
        .service
        .apps()
        .get_version(user.into(), app, None)
        .await
        .unwrap();
    assert_eq!(latest.info.number, 2);
    assert!(latest.files.iter().any(|f| f.path == "src/Title.tsx"));
    assert_eq!(h.service.quota().status(user).await.unwrap().daily.used, 2);
}

#[tokio::test]
async fn a_spent_quota_is_refused_before_anything_is_enqueued() {
    let h = harness(None);
    let user = Uuid::new_v4();
    let plan = h.service.quota().plan_of(user).await.unwrap();
    let daily = plan.daily_generations.unwrap();
    for _ in 0..daily {
        h.service
            .submit(
                user,
                Submission::plan_phases(PlanRequest {
                    prompt: "plan".into(),
                    ..PlanRequest::default()
                }),
            )
            .await
            .unwrap();
    }
    let denied = h
        .service
        .submit(user, Submission::full_app(FullAppRequest::new("one more")))
        .await
        .unwrap_err();
    let SubmitError::Denied(status) = denied else {
        panic!("not a denial: {denied:?}");
    };
    assert!(status.denied_by.is_some());
    let queued = h
        .service
        .queue()
        .list(user, &JobFilter::default(), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(
        queued.items.len(),
        usize::try_from(daily).unwrap(),
        "the denied request enqueued nothing"
    );
}

#[tokio::test]
async fn a_provider_failure_is_refunded_and_the_app_is_not_saved() {
    let h = harness(None);
    h.provider
        .push(Script::new(answer(APP)).fault(Fault::Status {
            status: 400,
            kind: ApiErrorKind::InvalidRequest,
            retry_after: None,
        }));
    let user = Uuid::new_v4();
    let submitted = h.todo_list(user).await;
    let job = h.run(user, submitted.job).await;
    assert_eq!(job.status, JobStatus::Failed);
    let status = h.service.quota().status(user).await.unwrap();
    assert_eq!(
        status.daily.used, 0,
        "a failure of the provider is not charged"
    );
    let apps = h
        .service
        .apps()
        .list_apps(user.into(), &appforge::apps::ListApps::default())
        .await
        .unwrap();
    assert!(apps.items.is_empty());
}

/// Serves one red pixel for every id it knows, and says an unknown id was deleted.
#[derive(Clone)]
struct Images {
    known: Uuid,
    calls: Arc<AtomicUsize>,
}

impl AttachmentLoader for Images {
    fn load<'a>(
        &'a self,
        _owner: appforge_core::Owner,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Vec<Attachment>, AttachmentError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            ids.iter()
                .map(|id| {
                    if *id == self.known {
                        Ok(Attachment::new(
                            "image/png",
                            vec![0x89, b'P', b'N', b'G'],
                            1,
                            1,
                        ))
                    } else {
                        Err(AttachmentError::Gone(*id))
                    }
                })
                .collect()
        })
    }
}

#[tokio::test]
async fn attachments_reach_the_model_and_the_saved_version_a_deleted_one_fails_unpaid() {
    let known = Uuid::new_v4();
    let loader = Images {
        known,
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let h = harness(Some(loader.clone()));
    h.provider.push(answer(APP));
    let user = Uuid::new_v4();
    let ok = h
        .service
        .submit(
            user,
            Submission::full_app(FullAppRequest::new("build this")).attachments(vec![known]),
        )
        .await
        .unwrap();
    let job = h.run(user, ok.job).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.error);
    assert!(
        !job.payload.to_string().contains("iVBOR"),
        "the queue holds ids, not image bytes"
    );
    let sent = serde_json::to_string(&h.provider.requests()[0]).unwrap();
    assert!(sent.contains("image/png"), "{sent}");
    // The saved version records the upload, so it outlives the job.
    let result = job.result.unwrap();
    let app: Uuid = serde_json::from_value(result["appId"].clone()).unwrap();
    let saved = h
        .service
        .apps()
        .get_version(user.into(), app, None)
        .await
        .unwrap();
    assert_eq!(saved.info.attachments, [known]);

    let gone = Uuid::new_v4();
    let failed = h
        .service
        .submit(
            user,
            Submission::full_app(FullAppRequest::new("build this")).attachments(vec![gone]),
        )
        .await
        .unwrap();
    let job = h.run(user, failed.job).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.unwrap().contains(&gone.to_string()));
    assert_eq!(
        h.provider.requests().len(),
        1,
        "no model call for the failed job"
    );
    assert_eq!(h.service.quota().status(user).await.unwrap().daily.used, 1);
    assert_eq!(loader.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_a_loader_attachments_fail_the_job_instead_of_being_dropped() {
    let h = harness(None);
    let user = Uuid::new_v4();
    let submitted = h
        .service
        .submit(
            user,
            Submission::full_app(FullAppRequest::new("build this"))
                .attachments(vec![Uuid::new_v4()]),
        )
        .await
        .unwrap();
    let job = h.run(user, submitted.job).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(h.provider.requests().is_empty());
}

#[tokio::test]
async fn the_reconciler_settles_what_a_stopped_process_left() {
    let h = harness(None);
    h.provider.push(answer(APP));
    let user = Uuid::new_v4();
    let submitted = h.todo_list(user).await;
    h.run(user, submitted.job).await;
    // Settled by the service already: reconciling again charges nothing twice.
    let report = h.service.reconciler().at_start().await;
    assert_eq!(report.committed, 0);
    assert_eq!(h.service.quota().status(user).await.unwrap().daily.used, 1);
}

/// A chat reply streams its text, then `Done`; the message counts against the space's daily
/// chat messages with its tokens, and the host's hook hears how it ended. One the provider
/// fails is refunded, and one in an org is the org's.
#[tokio::test]
async fn a_chat_message_streams_and_is_settled_by_how_it_ended() {
    let provider = ScriptedProvider::new();
    let ended = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = Arc::clone(&ended);
    let service: Service = GenerationService::builder(
        Quota::new(MemoryUsageStore::new()),
        MemoryJobStore::new(),
        MemoryAppStore::new(),
        Pipelines::new(provider.clone()),
    )
    .on_chat_end(move |end| heard.lock().unwrap().push(end.clone()))
    .build()
    .unwrap();
    let (user, org) = (Uuid::new_v4(), Uuid::new_v4());
    let message = || {
        ChatMessage::new(ChatRequest {
            message: "what does it do?".into(),
            ..ChatRequest::default()
        })
    };

    provider.push(answer("It keeps a list."));
    let reply = service.chat(user, message()).await.unwrap();
    assert_eq!(reply.plan.as_str(), "free");
    let chunks: Vec<ChatChunk> = reply.collect().await;
    let text: String = chunks
        .iter()
        .filter_map(|c| match c {
            ChatChunk::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "It keeps a list.");
    assert!(
        matches!(chunks.last(), Some(ChatChunk::Done { .. })),
        "{chunks:?}"
    );
    service.flush_settlements(Duration::from_secs(5)).await;
    let status = service.quota().status(user).await.unwrap();
    assert_eq!(status.chat.used, 1);

    provider.push(Script::new(answer("never")).fault(Fault::Status {
        status: 500,
        kind: ApiErrorKind::Api,
        retry_after: None,
    }));
    let chunks: Vec<ChatChunk> = service.chat(user, message()).await.unwrap().collect().await;
    assert!(
        matches!(
            chunks.last(),
            Some(ChatChunk::Failed {
                end: ChatEnd::Failed,
                ..
            })
        ),
        "{chunks:?}"
    );
    service.flush_settlements(Duration::from_secs(5)).await;
    assert_eq!(
        service.quota().status(user).await.unwrap().chat.used,
        1,
        "refunded"
    );

    provider.push(answer("Yes."));
    let _: Vec<ChatChunk> = service
        .chat(user, message().in_org(org))
        .await
        .unwrap()
        .collect()
        .await;
    service.flush_settlements(Duration::from_secs(5)).await;
    assert_eq!(service.quota().status(org).await.unwrap().chat.used, 1);
    assert_eq!(service.quota().status(user).await.unwrap().chat.used, 1);

    let ended = ended.lock().unwrap();
    let outcomes: Vec<(ChatEnd, bool, Owner)> =
        ended.iter().map(|e| (e.end, e.charged, e.owner)).collect();
    assert_eq!(
        outcomes,
        [
            (ChatEnd::Replied, true, Owner::User(user)),
            (ChatEnd::Failed, false, Owner::User(user)),
            (ChatEnd::Replied, true, Owner::Org(org)),
        ]
    );
    assert!(ended[0].usage.output_tokens > 0, "{:?}", ended[0].usage);
}

/// Purging an org's app deleted past the retention: its files leave the org's job that made
/// it (the job keeps its record, marked `filesPurged`), the app is gone, and a job of another
/// app keeps its files.
#[tokio::test]
async fn purging_an_orgs_expired_app_erases_its_files_from_the_orgs_jobs() {
    let provider = ScriptedProvider::new();
    let apps = MemoryAppStore::new().with_retention(Duration::ZERO);
    let service: Service = GenerationService::builder(
        Quota::new(MemoryUsageStore::new()),
        MemoryJobStore::new(),
        apps.clone(),
        Pipelines::new(provider.clone()),
    )
    .build()
    .unwrap();
    let (member, org) = (Uuid::new_v4(), Uuid::new_v4());
    let mut jobs = Vec::new();
    for _ in 0..2 {
        provider.push(answer(APP));
        let submitted = service
            .submit(
                member,
                Submission::full_app(FullAppRequest::new("a todo list")).in_org(org),
            )
            .await
            .unwrap();
        let workers: WorkerPool<MemoryJobStore> = service.start_workers(1).unwrap();
        let mut events = service
            .queue()
            .subscribe(Owner::Org(org), submitted.job)
            .await
            .unwrap();
        while events.next().await.is_some() {}
        workers.shutdown(Duration::from_secs(5)).await;
        jobs.push(
            service
                .queue()
                .get(Owner::Org(org), submitted.job)
                .await
                .unwrap(),
        );
    }
    let app_of = |job: &Job| -> Uuid {
        serde_json::from_value(job.result.as_ref().unwrap()["appId"].clone()).unwrap()
    };
    let (gone, kept) = (app_of(&jobs[0]), app_of(&jobs[1]));
    assert!(jobs[0].result.as_ref().unwrap()["files"].is_array());
    apps.delete_app(Owner::Org(org), gone).await.unwrap();

    let report = service.purge_expired_apps().await;
    assert_eq!(
        (report.purged_apps, report.redacted_jobs, report.errors),
        (1, 1, 0)
    );
    let erased = service
        .queue()
        .get(Owner::Org(org), jobs[0].id)
        .await
        .unwrap();
    let result = erased.result.unwrap();
    assert!(result.get("files").is_none(), "{result}");
    assert_eq!(result["filesPurged"], true);
    let other = service
        .queue()
        .get(Owner::Org(org), jobs[1].id)
        .await
        .unwrap();
    assert!(
        other.result.unwrap()["files"].is_array(),
        "another app's job keeps its files"
    );
    assert!(
        apps.get_app(Owner::Org(org), gone)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(apps.get_app(Owner::Org(org), kept).await.is_ok());
    // A second pass finds nothing more.
    assert_eq!(
        service.purge_expired_apps().await,
        appforge::generation::PurgeReport::default()
    );
}
