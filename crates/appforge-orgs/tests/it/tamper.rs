//! Someone with write access to the storage edits or deletes audit entries: `verify_audit`
//! names the first one touched, on every backend.

use appforge_orgs::{AuditRange, Caller, Error, LinkProblem, NewOrg, OrgStore, Orgs};
use serde_json::json;
use uuid::Uuid;

/// An org with entries 1 to 6 (creation and five records); returns the org and entry ids.
async fn seeded<S: OrgStore>(orgs: &Orgs<S>) -> (Uuid, Vec<Uuid>) {
    let owner = Caller::user(Uuid::new_v4());
    let slug = format!("t-{}", &Uuid::new_v4().simple().to_string()[..10]);
    let org = orgs
        .create_org(&owner, NewOrg::new("Tamper", slug))
        .await
        .unwrap()
        .id;
    for i in 0..5 {
        orgs.record(&owner, org, "settings.change", None, json!({"i": i}))
            .await
            .unwrap();
    }
    assert_eq!(orgs.verify_audit(org, AuditRange::all()).await.unwrap(), 6);
    let ids = orgs
        .store()
        .audit_page(org, &appforge_orgs::AuditQuery::new(AuditRange::all(), 10))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    (org, ids)
}

fn broken(err: &Error) -> (u64, Option<Uuid>, LinkProblem) {
    let link = err
        .broken_link()
        .unwrap_or_else(|| panic!("not a broken link: {err}"));
    (link.seq, link.entry_id, link.problem)
}

async fn verify<S: OrgStore>(orgs: &Orgs<S>, org: Uuid) -> (u64, Option<Uuid>, LinkProblem) {
    broken(&orgs.verify_audit(org, AuditRange::all()).await.unwrap_err())
}

#[cfg(feature = "testing")]
mod memory {
    use appforge_orgs::{LinkProblem, MemoryOrgStore, Orgs};

    use super::{seeded, verify};

    #[tokio::test]
    async fn edits_and_deletions_are_named() {
        let store = MemoryOrgStore::new();
        let orgs = Orgs::new(store.clone());
        let (org, ids) = seeded(&orgs).await;
        store.tamper_with_audit(org, |entries| entries[2].action = "nothing.happened".into());
        assert_eq!(
            verify(&orgs, org).await,
            (3, Some(ids[2]), LinkProblem::Altered)
        );

        let (org, _) = seeded(&orgs).await;
        store.tamper_with_audit(org, |entries| {
            entries.remove(3);
        });
        assert_eq!(verify(&orgs, org).await, (4, None, LinkProblem::Missing));

        let (org, _) = seeded(&orgs).await;
        store.tamper_with_audit(org, |entries| {
            entries.pop();
        });
        assert_eq!(verify(&orgs, org).await, (6, None, LinkProblem::Missing));

        let (org, _) = seeded(&orgs).await;
        store.tamper_with_audit(org, |entries| {
            entries.remove(0);
        });
        assert_eq!(verify(&orgs, org).await, (1, None, LinkProblem::Missing));
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_orgs::{AuditRange, LinkProblem, Orgs, SqliteOrgStore};
    use appforge_testing::TempSqlite;

    use super::{broken, seeded, verify};

    #[tokio::test]
    async fn raw_sql_edits_and_deletions_are_named() {
        let file = TempSqlite::new();
        let store = SqliteOrgStore::connect(&file.url()).await.unwrap();
        store.migrate().await.unwrap();
        let orgs = Orgs::new(store.clone());
        let pool = store.pool();

        let (org, ids) = seeded(&orgs).await;
        sqlx::query("UPDATE org_audit_log SET ip = '198.51.100.1' WHERE id = ?")
            .bind(ids[2])
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            verify(&orgs, org).await,
            (3, Some(ids[2]), LinkProblem::Altered)
        );

        let (org, ids) = seeded(&orgs).await;
        sqlx::query("UPDATE org_audit_log SET detail = '{\"i\":99}' WHERE id = ?")
            .bind(ids[4])
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            verify(&orgs, org).await,
            (5, Some(ids[4]), LinkProblem::Altered)
        );

        let (org, ids) = seeded(&orgs).await;
        sqlx::query("DELETE FROM org_audit_log WHERE id = ?")
            .bind(ids[3])
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(verify(&orgs, org).await, (4, None, LinkProblem::Missing));

        let (org, ids) = seeded(&orgs).await;
        sqlx::query("DELETE FROM org_audit_log WHERE id = ?")
            .bind(ids[5])
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(verify(&orgs, org).await, (6, None, LinkProblem::Missing));

        // Renumbering to hide a deletion breaks the link of the renumbered entry.
        let (org, ids) = seeded(&orgs).await;
        sqlx::query("DELETE FROM org_audit_log WHERE id = ?")
            .bind(ids[1])
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("UPDATE org_audit_log SET seq = seq - 1 WHERE org_id = ? AND seq > 2")
            .bind(org)
            .execute(pool)
            .await
            .unwrap();
        let err = orgs.verify_audit(org, AuditRange::all()).await.unwrap_err();
        assert_eq!(broken(&err), (2, Some(ids[2]), LinkProblem::Altered));
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_orgs::{LinkProblem, Orgs, PgOrgStore};
    use appforge_testing::TestDatabase;

    use super::{seeded, verify};

    #[tokio::test]
    async fn raw_sql_edits_and_deletions_are_named() {
        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let store = PgOrgStore::from_pool(db.pool().await);
        store.migrate().await.unwrap();
        let orgs = Orgs::new(store.clone());
        let pool = store.pool();

        let (org, ids) = seeded(&orgs).await;
        sqlx::query("UPDATE org_audit_log SET action = 'nothing.happened' WHERE id = $1")
            .bind(ids[2])
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            verify(&orgs, org).await,
            (3, Some(ids[2]), LinkProblem::Altered)
        );

        let (org, ids) = seeded(&orgs).await;
        sqlx::query("UPDATE org_audit_log SET time = time + interval '1 second' WHERE id = $1")
            .bind(ids[4])
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            verify(&orgs, org).await,
            (5, Some(ids[4]), LinkProblem::Altered)
        );

        let (org, ids) = seeded(&orgs).await;
        sqlx::query("DELETE FROM org_audit_log WHERE id = $1")
            .bind(ids[3])
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(verify(&orgs, org).await, (4, None, LinkProblem::Missing));

        let (org, ids) = seeded(&orgs).await;
        sqlx::query("DELETE FROM org_audit_log WHERE id = $1")
            .bind(ids[0])
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(verify(&orgs, org).await, (1, None, LinkProblem::Missing));
    }
}
