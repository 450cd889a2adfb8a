//! The audit log: entries, atomicity, concurrency, retention, export.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Barrier;
use uuid::Uuid;

use super::{Backend, Fx, user_of};
use crate::{
    AuditQuery, AuditRange, Caller, Error, ExportFormat, NewApiKey, NewOrg, OrgStore, Role,
};

/// Each change leaves its entry (actor, target, request details) in order, and the chain
/// verifies.
pub async fn every_change_is_audited_and_verifies<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let owner = Caller::user(Uuid::new_v4()).request(
        crate::RequestInfo::none()
            .ip("203.0.113.7")
            .user_agent("curl/8")
            .request_id("req-1"),
    );
    let org = fx
        .orgs
        .create_org(&owner, NewOrg::new("Audited", "audited-org"))
        .await
        .unwrap()
        .id;
    let bob = Uuid::new_v4();
    fx.orgs
        .add_member(&owner, org, bob, Role::Viewer)
        .await
        .unwrap();
    fx.orgs
        .change_role(&owner, org, bob, Role::Member)
        .await
        .unwrap();
    let invite = fx
        .orgs
        .invite(&owner, org, "x@example.com", Role::Viewer)
        .await
        .unwrap();
    fx.orgs
        .revoke_invitation(&owner, org, invite.invitation.id)
        .await
        .unwrap();
    let key = fx
        .orgs
        .create_api_key(&owner, org, NewApiKey::new("CI", Role::Viewer))
        .await
        .unwrap();
    fx.orgs
        .revoke_api_key(&owner, org, key.key.id)
        .await
        .unwrap();
    fx.orgs.set_seats(&owner, org, Some(9)).await.unwrap();
    fx.orgs.remove_member(&owner, org, bob).await.unwrap();
    let detail = json!({"b": [1, 2.5, {"y": null, "x": "é\"\n"}], "a": -7, "big": 1e20});
    fx.orgs
        .record(
            &owner,
            org,
            "app.publish",
            Some("app:1".into()),
            detail.clone(),
        )
        .await
        .unwrap();

    assert_eq!(
        fx.actions(org).await,
        [
            "org.create",
            "member.add",
            "member.role",
            "invitation.create",
            "invitation.revoke",
            "api_key.create",
            "api_key.revoke",
            "org.seats",
            "member.remove",
            "app.publish"
        ]
    );
    let entries = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 100))
        .await
        .unwrap();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1);
        assert_eq!(entry.actor, crate::Actor::User(user_of(&owner)));
        assert_eq!(entry.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(entry.request_id.as_deref(), Some("req-1"));
    }
    assert_eq!(entries[1].target, Some(format!("user:{bob}")));
    assert_eq!(entries[9].detail, detail);
    assert_eq!(entries[0].prev_hash, crate::GENESIS_HASH);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    // Key prefixes are recorded, never the key.
    assert!(!entries[5].detail.to_string().contains(key.token.expose()));
    assert!(
        !entries[3]
            .detail
            .to_string()
            .contains(invite.token.expose())
    );

    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        10
    );
    let head = fx.orgs.store().audit_head(org).await.unwrap().unwrap();
    assert_eq!(
        (head.first_seq, head.last_seq, head.last_hash),
        (1, 10, entries[9].hash)
    );

    // Reading the log needs ReadAudit; a page is 1 to 1000 entries.
    let viewer = fx.member(org, &owner, Role::Viewer).await;
    let err = fx
        .orgs
        .audit(&viewer, org, &AuditQuery::new(AuditRange::all(), 10))
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    let err = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let page = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 3).after(3))
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6]);
    // An org with no log verifies empty.
    assert_eq!(
        fx.orgs
            .verify_audit(Uuid::new_v4(), AuditRange::all())
            .await
            .unwrap(),
        0
    );
}

/// A refused change writes nothing, its audit entry included.
pub async fn refused_changes_leave_no_audit_entry<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(Some(1)).await;
    let before = fx.orgs.store().audit_head(org).await.unwrap();
    let _ = fx.orgs.leave(&owner, org).await.unwrap_err();
    let _ = fx
        .orgs
        .invite(&owner, org, "x@example.com", Role::Viewer)
        .await
        .unwrap_err();
    let _ = fx
        .orgs
        .add_member(&owner, org, Uuid::new_v4(), Role::Viewer)
        .await
        .unwrap_err();
    let _ = fx
        .orgs
        .accept_invitation(&Caller::user(Uuid::new_v4()), "afi_unknown")
        .await
        .unwrap_err();
    assert_eq!(fx.orgs.store().audit_head(org).await.unwrap(), before);
    assert_eq!(fx.actions(org).await, ["org.create"]);
}

/// Appends racing on one org get consecutive numbers and one valid chain.
pub async fn concurrent_appends_keep_one_chain<S: OrgStore + Clone + 'static>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let barrier = Arc::new(Barrier::new(4));
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let (orgs, owner, barrier) = (fx.orgs.clone(), owner.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..10 {
                    orgs.record(&owner, org, "app.publish", None, json!({"task": t, "i": i}))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let entries = fx
        .orgs
        .audit(&owner, org, &AuditQuery::new(AuditRange::all(), 100))
        .await
        .unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=41).collect::<Vec<u64>>()
    );
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        41
    );
}

/// Retention removes a prefix; what is kept still verifies, from its first entry, and a
/// range inside it verifies against the entry before it.
pub async fn purging_keeps_a_verifiable_suffix<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    let (other, other_owner) = fx.org(None).await;
    for _ in 0..4 {
        fx.clock.advance(Duration::from_secs(3600));
        fx.orgs
            .record(&owner, org, "settings.change", None, json!(null))
            .await
            .unwrap();
        fx.orgs
            .record(&other_owner, other, "settings.change", None, json!(null))
            .await
            .unwrap();
    }
    // Entries 1 (create) and 2, 3 are before the cut; 4 and 5 are kept.
    let cut = fx.orgs.store().now() - chrono::Duration::minutes(90);
    assert_eq!(fx.orgs.purge_audit_before(Some(org), cut).await.unwrap(), 3);
    let head = fx.orgs.store().audit_head(org).await.unwrap().unwrap();
    assert_eq!((head.first_seq, head.last_seq), (4, 5));
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        2
    );
    // The other org is untouched until a purge of every org.
    assert_eq!(
        fx.orgs
            .verify_audit(other, AuditRange::all())
            .await
            .unwrap(),
        5
    );
    assert_eq!(fx.orgs.purge_audit_before(None, cut).await.unwrap(), 3);
    assert_eq!(
        fx.orgs
            .verify_audit(other, AuditRange::all())
            .await
            .unwrap(),
        2
    );

    fx.clock.advance(Duration::from_secs(3600));
    let from = fx.orgs.store().now();
    for _ in 0..3 {
        fx.orgs
            .record(&owner, org, "settings.change", None, json!(null))
            .await
            .unwrap();
    }
    let range = AuditRange::between(Some(from), None);
    assert_eq!(fx.orgs.verify_audit(org, range).await.unwrap(), 3);
    let bounded = AuditRange::between(None, Some(from));
    assert_eq!(fx.orgs.verify_audit(org, bounded).await.unwrap(), 2);
    // Purging everything leaves an empty, valid log that keeps counting.
    fx.clock.advance(Duration::from_secs(1));
    fx.orgs
        .purge_audit_before(Some(org), fx.orgs.store().now())
        .await
        .unwrap();
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        0
    );
    let next = fx
        .orgs
        .record(&owner, org, "settings.change", None, json!(null))
        .await
        .unwrap();
    assert_eq!(next.seq, 9);
    assert_eq!(
        fx.orgs.verify_audit(org, AuditRange::all()).await.unwrap(),
        1
    );
}

/// Exports hold every entry of the range, a line each, read a page at a time.
pub async fn exports_stream_json_lines_and_csv<S: OrgStore>(backend: Backend<S>) {
    let fx = Fx::new(backend);
    let (org, owner) = fx.org(None).await;
    for i in 0..1100 {
        fx.orgs
            .record(
                &owner,
                org,
                "app.publish",
                Some(format!("app:{i}")),
                json!({"n": i}),
            )
            .await
            .unwrap();
    }
    let mut export = fx
        .orgs
        .export_audit(&owner, org, AuditRange::all(), ExportFormat::JsonLines)
        .await
        .unwrap();
    let mut chunks = 0;
    let mut lines = Vec::new();
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        chunks += 1;
        lines.extend(chunk.lines().map(str::to_owned));
    }
    assert!(chunks >= 3, "{chunks} chunks");
    assert_eq!(lines.len(), 1101);
    let last: crate::AuditEntry = serde_json::from_str(&lines[1100]).unwrap();
    assert_eq!((last.seq, last.detail.clone()), (1101, json!({"n": 1099})));
    assert_eq!(last.hash, last.computed_hash());

    let mut csv = Vec::new();
    fx.orgs
        .export_audit(&owner, org, AuditRange::all(), ExportFormat::Csv)
        .await
        .unwrap()
        .write_to(&mut csv)
        .await
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1102);
    assert!(rows[0].starts_with("seq,id,time,actor_kind"));
    assert!(rows[2].starts_with("2,"), "{}", rows[2]);
    assert!(rows[2].contains(",app.publish,app:0,"), "{}", rows[2]);
    assert!(rows[2].contains("\"{\"\"n\"\":0}\""), "{}", rows[2]);

    let viewer = fx.member(org, &owner, Role::Viewer).await;
    let err = fx
        .orgs
        .export_audit(&viewer, org, AuditRange::all(), ExportFormat::Csv)
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");
}
