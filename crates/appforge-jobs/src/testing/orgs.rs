//! Spaces: jobs in an org's space and in a user's personal one, each visible to its own
//! scope only.

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Finish, JobArgs, JobEventKind, JobFilter, JobId, JobStatus, JobStore, Owner, PageRequest,
    WorkerId,
};

use super::{Fixture, claim, complete, finish, job};

/// Every scope that must not see a job of `org` submitted by `submitter`: the submitter's
/// personal space, another user's, another org's.
fn outsiders(submitter: Uuid) -> [Owner; 3] {
    [
        Owner::User(submitter),
        Owner::User(Uuid::new_v4()),
        Owner::Org(Uuid::new_v4()),
    ]
}

/// The ids of the first page (up to 100) of `owner`'s history, newest first.
async fn listed<S: JobStore>(f: &Fixture<S>, owner: Owner, filter: &JobFilter) -> Vec<JobId> {
    f.queue
        .list(owner, filter, &PageRequest::first(100))
        .await
        .expect("list")
        .items
        .iter()
        .map(|j| j.id)
        .collect()
}

/// The scenario `org_jobs_are_read_within_their_org_only`: an org's job is read, listed and
/// subscribed to through the org, whoever of its members submitted it, and is not found from
/// the submitter's personal space, another user's or another org's; a personal job is not
/// found from the user's org; an org's history holds its jobs only, paged newest first.
pub async fn org_jobs_are_read_within_their_org_only<S: JobStore>(f: Fixture<S>) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (org, other_org) = (Uuid::new_v4(), Uuid::new_v4());
    let personal = f.queue.enqueue(job("full_app", alice)).await.unwrap().id;
    let mut in_org = Vec::new();
    for (i, submitter) in [alice, bob, alice].into_iter().enumerate() {
        let kind = if i == 1 { "modify" } else { "full_app" };
        let new = job(kind, submitter).in_org(org);
        in_org.push(f.queue.enqueue(new).await.unwrap().id);
        f.advance(std::time::Duration::from_secs(1));
    }
    let elsewhere = f
        .queue
        .enqueue(job("full_app", bob).in_org(other_org))
        .await
        .unwrap()
        .id;

    // Through the org, whoever submitted it.
    for (id, submitter) in in_org.iter().zip([alice, bob, alice]) {
        let got = f.queue.get(Owner::Org(org), *id).await.unwrap();
        assert_eq!((got.user_id, got.org_id), (submitter, Some(org)));
        assert_eq!(got.owner(), Owner::Org(org));
        for outsider in outsiders(submitter) {
            let err = f.queue.get(outsider, *id).await.unwrap_err();
            assert!(err.is_not_found(), "{outsider} reads an org job: {err}");
        }
        // A bare user id is the user's personal space.
        assert!(
            f.queue
                .get(submitter, *id)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
    // A personal job is its user's only, never their org's.
    let got = f.queue.get(alice, personal).await.unwrap();
    assert_eq!((got.org_id, got.owner()), (None, Owner::User(alice)));
    for outsider in [Owner::Org(org), Owner::Org(other_org), Owner::User(bob)] {
        let err = f.queue.get(outsider, personal).await.unwrap_err();
        assert!(err.is_not_found(), "{outsider} reads a personal job: {err}");
    }

    // Each space lists its own jobs only, newest first.
    let all = JobFilter::default();
    let newest_first: Vec<JobId> = in_org.iter().rev().copied().collect();
    assert_eq!(listed(&f, Owner::Org(org), &all).await, newest_first);
    assert_eq!(listed(&f, Owner::Org(other_org), &all).await, [elsewhere]);
    assert_eq!(listed(&f, Owner::User(alice), &all).await, [personal]);
    assert!(listed(&f, Owner::User(bob), &all).await.is_empty());
    assert!(
        listed(&f, Owner::Org(Uuid::new_v4()), &all)
            .await
            .is_empty()
    );
    let modify = JobFilter::default().kind("modify");
    assert_eq!(listed(&f, Owner::Org(org), &modify).await, [in_org[1]]);
    // Pages of an org's history follow the cursor.
    let first = f
        .queue
        .list(Owner::Org(org), &all, &PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = f
        .queue
        .list(
            Owner::Org(org),
            &all,
            &PageRequest::after(2, first.next.expect("a second page")),
        )
        .await
        .unwrap();
    let paged: Vec<JobId> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|j| j.id)
        .collect();
    assert_eq!(paged, newest_first);
    assert!(rest.next.is_none());

    // Subscriptions follow the same scope.
    let mut events = f.queue.subscribe(Owner::Org(org), in_org[1]).await.unwrap();
    let first_event = events.next().await.expect("a snapshot first");
    assert_eq!(first_event.org_id, Some(org));
    assert_eq!(first_event.owner(), Owner::Org(org));
    match first_event.kind {
        JobEventKind::Snapshot { job } => assert_eq!(job.id, in_org[1]),
        other => panic!("expected a snapshot, got {other:?}"),
    }
    drop(events);
    for outsider in outsiders(bob) {
        let err = f.queue.subscribe(outsider, in_org[1]).await.unwrap_err();
        assert!(
            err.is_not_found(),
            "{outsider} subscribes to an org job: {err}"
        );
    }
    let err = f
        .queue
        .subscribe(Owner::Org(org), personal)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "an org subscribes to a personal job");
}

/// The scenario `org_jobs_are_cancelled_within_their_org_only`: cancelling (pending or
/// running jobs) and redacting follow the space: an org cancels its members' jobs, the
/// submitter's personal space, another user and another org get not found and change
/// nothing, and an org cannot cancel a member's personal job.
pub async fn org_jobs_are_cancelled_within_their_org_only<S: JobStore>(f: Fixture<S>) {
    let (alice, bob, org) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let running = f
        .queue
        .enqueue(job("full_app", alice).in_org(org))
        .await
        .unwrap()
        .id;
    let lease = claim(&f, WorkerId::new(), 1)
        .await
        .pop()
        .unwrap()
        .lease()
        .unwrap();
    let pending = f
        .queue
        .enqueue(job("full_app", alice).in_org(org))
        .await
        .unwrap()
        .id;
    let personal = f.queue.enqueue(job("full_app", alice)).await.unwrap().id;

    for id in [running, pending] {
        for outsider in outsiders(alice) {
            let err = f.queue.cancel(outsider, id).await.unwrap_err();
            assert!(err.is_not_found(), "{outsider} cancels an org job: {err}");
        }
    }
    let err = f.queue.cancel(Owner::Org(org), personal).await.unwrap_err();
    assert!(err.is_not_found(), "an org cancels a personal job: {err}");
    // Nothing was written.
    let untouched = f.store.get(running).await.unwrap().unwrap();
    assert_eq!(untouched.status, JobStatus::Processing);
    assert!(!untouched.cancel_requested);
    assert_eq!(
        f.store.get(pending).await.unwrap().unwrap().status,
        JobStatus::Pending
    );
    assert_eq!(
        f.store.get(personal).await.unwrap().unwrap().status,
        JobStatus::Pending
    );
    // The store refuses the same, asked directly.
    let err = f
        .store
        .cancel(pending, Some(Owner::User(alice)), f.clock_now())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // Another member cancels through the org.
    let requested = f.queue.cancel(Owner::Org(org), running).await.unwrap();
    assert_eq!(requested.status, JobStatus::Processing);
    assert!(requested.cancel_requested);
    let cancelled = f.queue.cancel(Owner::Org(org), pending).await.unwrap();
    assert_eq!(
        (cancelled.status, cancelled.org_id),
        (JobStatus::Cancelled, Some(org))
    );
    let stopped = finish(&f, lease, Finish::Cancel { tokens: None })
        .await
        .unwrap();
    assert_eq!(
        (stopped.status, stopped.org_id),
        (JobStatus::Cancelled, Some(org))
    );
    // The personal job is still the user's to cancel.
    f.queue.cancel(alice, personal).await.unwrap();

    // Redaction reads the same spaces: the personal space does not reach the org's jobs.
    let mut offered = Vec::new();
    let changed = f
        .queue
        .redact_finished(alice, |payload, _| {
            offered.push(payload.clone());
            *payload = serde_json::json!({});
            true
        })
        .await
        .unwrap();
    assert_eq!((changed, offered.len()), (1, 1));
    let org_job = f.queue.get(Owner::Org(org), pending).await.unwrap();
    assert_eq!(
        org_job.payload,
        serde_json::json!({ "prompt": "a habit tracker" })
    );
    let changed = f
        .queue
        .redact_finished(Owner::Org(org), |payload, _| {
            *payload = serde_json::json!({});
            true
        })
        .await
        .unwrap();
    assert_eq!(changed, 2, "the org's two finished jobs");
    assert_eq!(
        f.queue.redact_finished(bob, |_, _| true).await.unwrap(),
        0,
        "bob has no personal jobs"
    );
}

/// Arguments of a typed job, for [`org_id_round_trips_through_claim_and_complete`].
#[derive(Debug, Serialize, Deserialize)]
struct TeamApp {
    prompt: String,
}

impl JobArgs for TeamApp {
    const KIND: &'static str = "team_app";
}

/// The scenario `org_id_round_trips_through_claim_and_complete`: the org (and the submitter)
/// of a job survive enqueueing (one by one, in a batch, typed), claiming, a retry and the
/// completion, and travel on its events.
pub async fn org_id_round_trips_through_claim_and_complete<S: JobStore>(f: Fixture<S>) {
    let (alice, org) = (Uuid::new_v4(), Uuid::new_v4());
    let mut events = f.queue.events();
    let batch = f
        .queue
        .enqueue_many(vec![
            job("full_app", alice).in_org(org),
            job("full_app", alice),
        ])
        .await
        .unwrap();
    let typed = f
        .queue
        .enqueue_args_as(
            alice,
            Some(org),
            &TeamApp {
                prompt: "a team wiki".into(),
            },
        )
        .await
        .unwrap()
        .id;
    let personal_typed = f
        .queue
        .enqueue_args(alice, &TeamApp { prompt: "x".into() })
        .await
        .unwrap()
        .id;
    let expected = [
        (batch[0].id, Some(org)),
        (batch[1].id, None),
        (typed, Some(org)),
        (personal_typed, None),
    ];
    for (id, org_id) in expected {
        let event = events.try_recv().expect("an enqueued event per job");
        assert_eq!((event.job_id, event.org_id), (id, org_id));
        assert_eq!(event.user_id, alice);
    }
    let typed_job = f.queue.get(Owner::Org(org), typed).await.unwrap();
    assert_eq!(typed_job.user_id, alice);
    assert_eq!(typed_job.args::<TeamApp>().unwrap().prompt, "a team wiki");
    f.queue.get(alice, personal_typed).await.unwrap();

    let worker = WorkerId::new();
    let claimed = claim(&f, worker, 10).await;
    assert_eq!(claimed.len(), 4);
    for (id, org_id) in expected {
        let job = claimed.iter().find(|j| j.id == id).expect("claimed");
        assert_eq!((job.user_id, job.org_id), (alice, org_id));
    }
    // A retry, a second claim and the completion keep the org.
    let first = claimed.iter().find(|j| j.id == batch[0].id).unwrap();
    let retried = finish(
        &f,
        first.lease().unwrap(),
        Finish::Retry {
            run_at: f.clock_now(),
            error: "try again".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (retried.status, retried.org_id),
        (JobStatus::Pending, Some(org))
    );
    let again = claim(&f, worker, 1).await.pop().expect("the retried job");
    assert_eq!((again.id, again.org_id), (batch[0].id, Some(org)));
    let done = finish(&f, again.lease().unwrap(), complete())
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.org_id),
        (JobStatus::Completed, Some(org))
    );
    let stored = f.queue.get(Owner::Org(org), batch[0].id).await.unwrap();
    assert_eq!(
        (stored.status, stored.user_id, stored.org_id),
        (JobStatus::Completed, alice, Some(org))
    );
    // The operator's view sees both spaces, each job with its own.
    let page = f
        .queue
        .list_all(&JobFilter::default(), None, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
    for (id, org_id) in expected {
        let job = page.items.iter().find(|j| j.id == id).expect("listed");
        assert_eq!(job.org_id, org_id);
    }
}
