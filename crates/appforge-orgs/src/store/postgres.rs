use std::sync::Arc;

use appforge_core::{SharedClock, SystemClock};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use uuid::Uuid;

use super::sql::{
    AuditRow, BRANDING_COLUMNS, BrandingRow, HeadRow, INVITATION_COLUMNS, InvitationRow,
    KEY_COLUMNS, KeyRow, LogoRow, MEMBER_COLUMNS, MIGRATIONS_TABLE, MemberAccessRow, MemberRow,
    ORG_COLUMNS, ORG_COLUMNS_O, OrgRoleRow, OrgRow, count, stored_cap, stored_seats, stored_seq,
    stored_size,
};
use super::{OrgStore, check_seat, clock_setter, millis};
use crate::api_key::ApiKey;
use crate::audit::{AuditEntry, AuditHead, AuditQuery, AuditRecord, GENESIS_HASH};
use crate::branding::{Branding, Logo};
use crate::cache::MembershipCache;
use crate::invitation::Invitation;
use crate::org::{Member, MemberAccess, Organization};
use crate::role::Role;
use crate::{Error, Result};

/// The columns of an audit row, in `AuditRow`'s order.
const AUDIT_COLUMNS: &str = "id, org_id, seq, time, actor_kind, actor_id, action, target, ip, \
     user_agent, request_id, detail::text AS detail, prev_hash, hash";

fn sql(text: String) -> impl SqlSafeStr {
    AssertSqlSafe(text)
}

/// An org store in PostgreSQL, for many processes on one database.
///
/// A write locks the org's row (`SELECT ... FOR UPDATE`) for its transaction, so seat and
/// owner counts are decided one writer at a time in any number of processes; an audit
/// append locks the org's chain head the same way. Time is the store's clock, bound as a
/// parameter.
#[derive(Debug, Clone)]
pub struct PgOrgStore {
    pool: PgPool,
    clock: SharedClock,
}

impl PgOrgStore {
    /// Connects to `url` with a pool of 10 connections. Call [`migrate`](Self::migrate)
    /// before use.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// A store on an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            clock: SystemClock::shared(),
        }
    }

    clock_setter!();

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or updates this crate's tables (migration table `_appforge_orgs_migrations`).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }
}

async fn org_row(conn: &mut PgConnection, org: Uuid) -> Result<Organization> {
    let row: Option<OrgRow<DateTime<Utc>>> =
        sqlx::query_as(sql(format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1")))
            .bind(org)
            .fetch_optional(conn)
            .await?;
    row.ok_or(Error::OrgNotFound(org))?.into_org()
}

/// The org, its row locked until the transaction ends: writers of one org go one at a time.
async fn lock_org(conn: &mut PgConnection, org: Uuid) -> Result<Organization> {
    let row: Option<OrgRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
        "SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1 FOR UPDATE"
    )))
    .bind(org)
    .fetch_optional(conn)
    .await?;
    row.ok_or(Error::OrgNotFound(org))?.into_org()
}

async fn member_row(conn: &mut PgConnection, org: Uuid, user: Uuid) -> Result<Option<Member>> {
    let row: Option<MemberRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
        "SELECT {MEMBER_COLUMNS} FROM org_members WHERE org_id = $1 AND user_id = $2"
    )))
    .bind(org)
    .bind(user)
    .fetch_optional(conn)
    .await?;
    row.map(MemberRow::into_member).transpose()
}

async fn owners(conn: &mut PgConnection, org: Uuid) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM org_members WHERE org_id = $1 AND role = 'owner'")
            .bind(org)
            .fetch_one(conn)
            .await?,
    )
}

async fn seats_used(conn: &mut PgConnection, org: Uuid, now: DateTime<Utc>) -> Result<u32> {
    let used: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM org_members WHERE org_id = $1) + \
         (SELECT count(*) FROM org_invitations WHERE org_id = $1 AND accepted_at IS NULL \
          AND revoked_at IS NULL AND expires_at > $2)",
    )
    .bind(org)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(count(used))
}

async fn insert_member(conn: &mut PgConnection, member: &Member) -> Result<()> {
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(member.org_id)
    .bind(member.user_id)
    .bind(member.role.as_str())
    .bind(member.joined_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_role(conn: &mut PgConnection, org: Uuid, user: Uuid, role: Role) -> Result<()> {
    sqlx::query("UPDATE org_members SET role = $1 WHERE org_id = $2 AND user_id = $3")
        .bind(role.as_str())
        .bind(org)
        .bind(user)
        .execute(conn)
        .await?;
    Ok(())
}

/// The org's chain head, its row locked until the transaction ends (created on the first
/// append): appends to one chain go one at a time, in any number of processes.
async fn lock_head(conn: &mut PgConnection, org: Uuid) -> Result<AuditHead> {
    const SELECT: &str = "SELECT org_id, first_seq, last_seq, last_hash FROM org_audit_heads \
         WHERE org_id = $1 FOR UPDATE";
    let found: Option<HeadRow> = sqlx::query_as(SELECT)
        .bind(org)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(head) = found {
        return head.into_head();
    }
    sqlx::query(
        "INSERT INTO org_audit_heads (org_id, first_seq, last_seq, last_hash) \
         VALUES ($1, 1, 0, $2) ON CONFLICT (org_id) DO NOTHING",
    )
    .bind(org)
    .bind(&GENESIS_HASH[..])
    .execute(&mut *conn)
    .await?;
    let head: HeadRow = sqlx::query_as(SELECT)
        .bind(org)
        .fetch_one(&mut *conn)
        .await?;
    head.into_head()
}

/// Appends to the org's chain inside the caller's transaction: the head locked, then the
/// entry and the head's new end written by one statement.
async fn append(
    conn: &mut PgConnection,
    org: Uuid,
    now: DateTime<Utc>,
    record: AuditRecord,
) -> Result<AuditEntry> {
    let head = lock_head(conn, org).await?;
    let entry = AuditEntry::seal(org, head.last_seq + 1, head.last_hash, now, record);
    sqlx::query(
        "WITH entry AS (INSERT INTO org_audit_log (id, org_id, seq, time, actor_kind, \
         actor_id, action, target, ip, user_agent, request_id, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json, $13, $14)) \
         UPDATE org_audit_heads SET last_seq = $3, last_hash = $14 WHERE org_id = $2",
    )
    .bind(entry.id)
    .bind(org)
    .bind(stored_seq(entry.seq))
    .bind(entry.time)
    .bind(entry.actor.kind())
    .bind(entry.actor.id())
    .bind(&entry.action)
    .bind(entry.target.as_deref())
    .bind(entry.ip.as_deref())
    .bind(entry.user_agent.as_deref())
    .bind(entry.request_id.as_deref())
    .bind(entry.detail.to_string())
    .bind(&entry.prev_hash[..])
    .bind(&entry.hash[..])
    .execute(&mut *conn)
    .await?;
    // Every audited change of the org tells the other processes' membership caches, when
    // (and only if) the transaction commits.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(org.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(entry)
}

/// The `NOTIFY` channel of the PostgreSQL store: every transaction that appends to an org's
/// audit log (every membership, role, ownership and settings change, a deletion) notifies
/// it with the org's id, delivered when the transaction commits.
pub const CHANGES_CHANNEL: &str = "appforge_orgs_changes";

/// How long the feed waits before connecting again after losing its connection.
const RECONNECT_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl PgOrgStore {
    /// Keeps `cache` in step with every process's changes: a task that `LISTEN`s on
    /// [`CHANGES_CHANNEL`] and drops an org's cached members at each notification. The cache
    /// is live (its answers used) only while the listening connection is up: losing it turns
    /// the cache off and empties it until the task has connected and listens again (every
    /// second). Aborting the task stops the feed and turns the cache off.
    pub fn watch(&self, cache: Arc<MembershipCache>) -> tokio::task::JoinHandle<()> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            // Aborting the task drops this: the cache is off, not left live without a feed.
            let _off = OffWhenDropped(Arc::clone(&cache));
            loop {
                match listen(&pool).await {
                    Ok(mut listener) => {
                        cache.set_live(true);
                        // Until the connection drops (`Ok(None)`, an error): notifications
                        // may be lost from then on.
                        while let Ok(Some(note)) = listener.try_recv().await {
                            match note.payload().parse() {
                                Ok(org) => cache.forget_org(org),
                                // Not an org's id: drop everything.
                                Err(_) => cache.set_live(true),
                            }
                        }
                        cache.set_live(false);
                        tracing::warn!(
                            "the membership feed lost its connection; checks read the database until it is back"
                        );
                    }
                    Err(error) => {
                        cache.set_live(false);
                        tracing::warn!(%error, "the membership feed cannot listen; checks read the database");
                    }
                }
                tokio::time::sleep(RECONNECT_AFTER).await;
            }
        })
    }
}

/// Turns the cache off when the feed's task ends.
struct OffWhenDropped(Arc<MembershipCache>);

impl Drop for OffWhenDropped {
    fn drop(&mut self) {
        self.0.set_live(false);
    }
}

async fn listen(pool: &PgPool) -> Result<sqlx::postgres::PgListener> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    Ok(listener)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl OrgStore for PgOrgStore {
    fn now(&self) -> DateTime<Utc> {
        millis(self.clock.now())
    }

    async fn create_org(&self, org: &Organization, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO orgs (id, name, slug, created_by, created_at, seats, member_daily_cap) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(org.id)
        .bind(&org.name)
        .bind(&org.slug)
        .bind(org.created_by)
        .bind(org.created_at)
        .bind(stored_seats(org.seats))
        .bind(stored_cap(org.member_daily_cap))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(Error::SlugTaken(org.slug.clone())),
            other => other?,
        };
        let owner = Member {
            org_id: org.id,
            user_id: org.created_by,
            role: Role::Owner,
            joined_at: org.created_at,
        };
        insert_member(&mut tx, &owner).await?;
        append(&mut tx, org.id, now, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_org(&self, org: Uuid) -> Result<Option<Organization>> {
        let mut conn = self.pool.acquire().await?;
        match org_row(&mut conn, org).await {
            Ok(found) => Ok(Some(found)),
            Err(Error::OrgNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn orgs_of(&self, user: Uuid) -> Result<Vec<(Organization, Role)>> {
        let rows: Vec<OrgRoleRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {ORG_COLUMNS_O}, m.role \
             FROM org_members m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 \
             ORDER BY m.joined_at, o.id"
        )))
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(OrgRoleRow::into_pair).collect()
    }

    async fn rename_org(&self, org: Uuid, name: &str, audit: AuditRecord) -> Result<Organization> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let mut record = lock_org(&mut tx, org).await?;
        sqlx::query("UPDATE orgs SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(org)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        name.clone_into(&mut record.name);
        Ok(record)
    }

    async fn set_seats(
        &self,
        org: Uuid,
        seats: Option<u32>,
        audit: AuditRecord,
    ) -> Result<Organization> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let mut record = lock_org(&mut tx, org).await?;
        sqlx::query("UPDATE orgs SET seats = $1 WHERE id = $2")
            .bind(stored_seats(seats))
            .bind(org)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        record.seats = seats;
        Ok(record)
    }

    async fn set_member_daily_cap(
        &self,
        org: Uuid,
        cap: Option<u32>,
        audit: AuditRecord,
    ) -> Result<Organization> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let mut record = lock_org(&mut tx, org).await?;
        sqlx::query("UPDATE orgs SET member_daily_cap = $1 WHERE id = $2")
            .bind(stored_cap(cap))
            .bind(org)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        record.member_daily_cap = cap;
        Ok(record)
    }

    async fn delete_org(&self, org: Uuid, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, org).await?;
        for table in [
            "org_members",
            "org_invitations",
            "org_api_keys",
            "org_branding",
        ] {
            sqlx::query(sql(format!("DELETE FROM {table} WHERE org_id = $1")))
                .bind(org)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM orgs WHERE id = $1")
            .bind(org)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn member(&self, org: Uuid, user: Uuid) -> Result<Option<Member>> {
        let mut conn = self.pool.acquire().await?;
        member_row(&mut conn, org, user).await
    }

    async fn member_access(&self, org: Uuid, user: Uuid) -> Result<Option<MemberAccess>> {
        let row: Option<MemberAccessRow> = sqlx::query_as(
            "SELECT m.role, o.member_daily_cap \
             FROM org_members m JOIN orgs o ON o.id = m.org_id \
             WHERE m.org_id = $1 AND m.user_id = $2",
        )
        .bind(org)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.map(MemberAccessRow::into_access).transpose()
    }

    async fn members(&self, org: Uuid) -> Result<Vec<Member>> {
        let rows: Vec<MemberRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {MEMBER_COLUMNS} FROM org_members WHERE org_id = $1 ORDER BY joined_at, user_id"
        )))
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(MemberRow::into_member).collect()
    }

    async fn seats_used(&self, org: Uuid) -> Result<u32> {
        let now = self.now();
        let mut conn = self.pool.acquire().await?;
        seats_used(&mut conn, org, now).await
    }

    async fn add_member(
        &self,
        org: Uuid,
        user: Uuid,
        role: Role,
        audit: AuditRecord,
    ) -> Result<Member> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let record = lock_org(&mut tx, org).await?;
        check_seat(&record, seats_used(&mut tx, org, now).await?)?;
        if member_row(&mut tx, org, user).await?.is_some() {
            return Err(Error::Conflict(format!("user {user} is already a member")));
        }
        let member = Member {
            org_id: org,
            user_id: user,
            role,
            joined_at: now,
        };
        insert_member(&mut tx, &member).await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        Ok(member)
    }

    async fn change_role(
        &self,
        org: Uuid,
        user: Uuid,
        role: Role,
        audit: AuditRecord,
    ) -> Result<Member> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, org).await?;
        let mut member = member_row(&mut tx, org, user)
            .await?
            .ok_or(Error::MemberNotFound { org, user })?;
        if member.role == Role::Owner && role != Role::Owner && owners(&mut tx, org).await? == 1 {
            return Err(Error::LastOwner(org));
        }
        set_role(&mut tx, org, user, role).await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        member.role = role;
        Ok(member)
    }

    async fn remove_member(&self, org: Uuid, user: Uuid, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, org).await?;
        let member = member_row(&mut tx, org, user)
            .await?
            .ok_or(Error::MemberNotFound { org, user })?;
        if member.role == Role::Owner && owners(&mut tx, org).await? == 1 {
            return Err(Error::LastOwner(org));
        }
        sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(org)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn transfer_ownership(
        &self,
        org: Uuid,
        from: Uuid,
        to: Uuid,
        audit: AuditRecord,
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, org).await?;
        let giver = member_row(&mut tx, org, from).await?;
        if giver.is_none_or(|m| m.role != Role::Owner) {
            return Err(Error::MemberNotFound { org, user: from });
        }
        if member_row(&mut tx, org, to).await?.is_none() {
            return Err(Error::MemberNotFound { org, user: to });
        }
        set_role(&mut tx, org, to, Role::Owner).await?;
        if from != to {
            set_role(&mut tx, org, from, Role::Admin).await?;
        }
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_invitation(&self, invitation: &Invitation, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let org = invitation.org_id;
        let mut tx = self.pool.begin().await?;
        let record = lock_org(&mut tx, org).await?;
        check_seat(&record, seats_used(&mut tx, org, now).await?)?;
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM org_invitations WHERE org_id = $1 AND email = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(org)
        .bind(&invitation.email)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if open > 0 {
            return Err(Error::Conflict(format!(
                "an open invitation for {} exists",
                invitation.email
            )));
        }
        sqlx::query(sql(format!(
            "INSERT INTO org_invitations ({INVITATION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )))
        .bind(invitation.id)
        .bind(org)
        .bind(&invitation.email)
        .bind(invitation.role.as_str())
        .bind(invitation.invited_by)
        .bind(invitation.created_at)
        .bind(invitation.expires_at)
        .bind(invitation.accepted_at)
        .bind(invitation.accepted_by)
        .bind(invitation.revoked_at)
        .bind(&invitation.token_hash[..])
        .execute(&mut *tx)
        .await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn invitations(&self, org: Uuid) -> Result<Vec<Invitation>> {
        let rows: Vec<InvitationRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {INVITATION_COLUMNS} FROM org_invitations WHERE org_id = $1 \
             ORDER BY created_at DESC, id DESC"
        )))
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(InvitationRow::into_invitation)
            .collect()
    }

    async fn revoke_invitation(
        &self,
        org: Uuid,
        invitation: Uuid,
        audit: AuditRecord,
    ) -> Result<Invitation> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, org).await?;
        let row: Option<InvitationRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "UPDATE org_invitations SET revoked_at = $1 WHERE org_id = $2 AND id = $3 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
             RETURNING {INVITATION_COLUMNS}"
        )))
        .bind(now)
        .bind(org)
        .bind(invitation)
        .fetch_optional(&mut *tx)
        .await?;
        let revoked = row.ok_or(Error::InvitationNotFound)?.into_invitation()?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn accept_invitation(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        audit: AuditRecord,
    ) -> Result<Member> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let row: Option<InvitationRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {INVITATION_COLUMNS} FROM org_invitations WHERE token_hash = $1 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2"
        )))
        .bind(&token_hash[..])
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let invitation = row.ok_or(Error::InvitationNotFound)?.into_invitation()?;
        let org = invitation.org_id;
        let record = lock_org(&mut tx, org).await?;
        // Re-read under the org's lock: a racing accept or revoke has finished by now.
        let still_open: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM org_invitations WHERE id = $1 AND accepted_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 FOR UPDATE",
        )
        .bind(invitation.id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if still_open.is_none() {
            return Err(Error::InvitationNotFound);
        }
        if let Some(seats) = record.seats {
            let used = seats_used(&mut tx, org, now).await?;
            if used > seats {
                return Err(Error::NoSeat { org, used, seats });
            }
        }
        if member_row(&mut tx, org, user).await?.is_some() {
            return Err(Error::Conflict(format!("user {user} is already a member")));
        }
        sqlx::query("UPDATE org_invitations SET accepted_at = $1, accepted_by = $2 WHERE id = $3")
            .bind(now)
            .bind(user)
            .bind(invitation.id)
            .execute(&mut *tx)
            .await?;
        let member = Member {
            org_id: org,
            user_id: user,
            role: invitation.role,
            joined_at: now,
        };
        insert_member(&mut tx, &member).await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        Ok(member)
    }

    async fn create_api_key(&self, key: &ApiKey, audit: AuditRecord) -> Result<()> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, key.org_id).await?;
        sqlx::query(sql(format!(
            "INSERT INTO org_api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )))
        .bind(key.id)
        .bind(key.org_id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.prefix)
        .bind(&key.secret_hash[..])
        .bind(key.created_by)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.last_used_at)
        .bind(key.revoked_at)
        .execute(&mut *tx)
        .await?;
        append(&mut tx, key.org_id, now, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        let row: Option<KeyRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {KEY_COLUMNS} FROM org_api_keys WHERE prefix = $1"
        )))
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await?;
        row.map(KeyRow::into_key).transpose()
    }

    async fn touch_api_key(&self, key: Uuid, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE org_api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn api_keys(&self, org: Uuid) -> Result<Vec<ApiKey>> {
        let rows: Vec<KeyRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {KEY_COLUMNS} FROM org_api_keys WHERE org_id = $1 \
             ORDER BY created_at DESC, id DESC"
        )))
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    async fn revoke_api_key(&self, org: Uuid, key: Uuid, audit: AuditRecord) -> Result<ApiKey> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, org).await?;
        let row: Option<KeyRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "UPDATE org_api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 \
             AND revoked_at IS NULL RETURNING {KEY_COLUMNS}"
        )))
        .bind(now)
        .bind(org)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let revoked = row.ok_or(Error::ApiKeyNotFound(key))?.into_key()?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn branding(&self, org: Uuid) -> Result<Option<Branding>> {
        let row: Option<BrandingRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {BRANDING_COLUMNS} FROM org_branding WHERE org_id = $1"
        )))
        .bind(org)
        .fetch_optional(&self.pool)
        .await?;
        row.map(BrandingRow::into_branding).transpose()
    }

    async fn set_branding(
        &self,
        org: Uuid,
        display_name: Option<&str>,
        primary_color: Option<&str>,
        audit: AuditRecord,
    ) -> Result<Branding> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, org).await?;
        sqlx::query(
            "INSERT INTO org_branding (org_id, display_name, primary_color, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (org_id) DO UPDATE SET \
             display_name = excluded.display_name, primary_color = excluded.primary_color, \
             updated_at = excluded.updated_at",
        )
        .bind(org)
        .bind(display_name)
        .bind(primary_color)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row: BrandingRow<DateTime<Utc>> = sqlx::query_as(sql(format!(
            "SELECT {BRANDING_COLUMNS} FROM org_branding WHERE org_id = $1"
        )))
        .bind(org)
        .fetch_one(&mut *tx)
        .await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        row.into_branding()
    }

    async fn set_logo(
        &self,
        org: Uuid,
        logo: Option<&Logo>,
        audit: AuditRecord,
    ) -> Result<Branding> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        lock_org(&mut tx, org).await?;
        sqlx::query(
            "INSERT INTO org_branding (org_id, logo, logo_type, logo_sha256, logo_size, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id) DO UPDATE SET \
             logo = excluded.logo, logo_type = excluded.logo_type, \
             logo_sha256 = excluded.logo_sha256, logo_size = excluded.logo_size, \
             updated_at = excluded.updated_at",
        )
        .bind(org)
        .bind(logo.map(|l| l.bytes.as_slice()))
        .bind(logo.map(|l| l.media_type.as_str()))
        .bind(logo.map(|l| l.sha256.as_str()))
        .bind(logo.map(stored_size))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row: BrandingRow<DateTime<Utc>> = sqlx::query_as(sql(format!(
            "SELECT {BRANDING_COLUMNS} FROM org_branding WHERE org_id = $1"
        )))
        .bind(org)
        .fetch_one(&mut *tx)
        .await?;
        append(&mut tx, org, now, audit).await?;
        tx.commit().await?;
        row.into_branding()
    }

    async fn logo(&self, org: Uuid) -> Result<Option<Logo>> {
        let row: Option<LogoRow> = sqlx::query_as(
            "SELECT logo, logo_type, logo_sha256 FROM org_branding WHERE org_id = $1",
        )
        .bind(org)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(LogoRow::into_logo))
    }

    async fn append_audit(&self, org: Uuid, record: AuditRecord) -> Result<AuditEntry> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let entry = append(&mut tx, org, now, record).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn audit_page(&self, org: Uuid, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let from = query.range.from;
        let to = query.range.to;
        let rows: Vec<AuditRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {AUDIT_COLUMNS} FROM org_audit_log WHERE org_id = $1 AND seq > $2 \
             AND ($3 IS NULL OR time >= $3) AND ($4 IS NULL OR time < $4) \
             ORDER BY seq LIMIT $5"
        )))
        .bind(org)
        .bind(stored_seq(query.after_seq))
        .bind(from)
        .bind(to)
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AuditRow::into_entry).collect()
    }

    async fn audit_head(&self, org: Uuid) -> Result<Option<AuditHead>> {
        let row: Option<HeadRow> = sqlx::query_as(
            "SELECT org_id, first_seq, last_seq, last_hash FROM org_audit_heads WHERE org_id = $1",
        )
        .bind(org)
        .fetch_optional(&self.pool)
        .await?;
        row.map(HeadRow::into_head).transpose()
    }

    async fn purge_audit(&self, org: Option<Uuid>, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let cuts: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT org_id, max(seq) FROM org_audit_log WHERE time < $1 \
             AND ($2 IS NULL OR org_id = $2) GROUP BY org_id",
        )
        .bind(before)
        .bind(org)
        .fetch_all(&mut *tx)
        .await?;
        let mut purged = 0;
        for (org, cut) in cuts {
            purged += sqlx::query("DELETE FROM org_audit_log WHERE org_id = $1 AND seq <= $2")
                .bind(org)
                .bind(cut)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE org_audit_heads SET first_seq = GREATEST(first_seq, $1 + 1) WHERE org_id = $2",
            )
            .bind(cut)
            .bind(org)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(purged)
    }
}
