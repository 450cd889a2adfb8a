//! Single sign-on on the shared database: the `appforge-sso` service over the server's
//! SQLite or PostgreSQL pool, each org's SCIM token (its SHA-256 only) and the users a
//! provider provisioned through SCIM.
//!
//! A user signing in through an org's provider is the stable id [`user_id`] of
//! `(issuer, subject)`, unless SCIM created them first (their `userName` or email is the
//! email the provider vouched for), in which case they are that SCIM user's id.

use appforge_sso::scim::{ScimEmail, ScimMeta, ScimTokenHash, ScimUser};
use appforge_sso::{PendingLogin, PendingLogins, PgSsoStore, SqliteSsoStore, SsoConfig};
use appforge_sso::{SecretsKey, SsoConfigStore};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::Database;
use crate::state::StartError;

/// The SSO service of the server.
pub type SsoService = appforge_sso::Sso<SsoStore, SsoStore>;

/// The SSO store of the shared database.
#[derive(Debug, Clone)]
pub enum SsoStore {
    /// On SQLite.
    Sqlite(SqliteSsoStore),
    /// On PostgreSQL.
    Postgres(PgSsoStore),
}

impl SsoConfigStore for SsoStore {
    async fn put_config(&self, config: &SsoConfig) -> appforge_sso::Result<()> {
        match self {
            Self::Sqlite(store) => store.put_config(config).await,
            Self::Postgres(store) => store.put_config(config).await,
        }
    }

    async fn get_config(&self, org: Uuid) -> appforge_sso::Result<Option<SsoConfig>> {
        match self {
            Self::Sqlite(store) => store.get_config(org).await,
            Self::Postgres(store) => store.get_config(org).await,
        }
    }

    async fn delete_config(&self, org: Uuid) -> appforge_sso::Result<bool> {
        match self {
            Self::Sqlite(store) => store.delete_config(org).await,
            Self::Postgres(store) => store.delete_config(org).await,
        }
    }
}

impl PendingLogins for SsoStore {
    async fn insert_pending(&self, login: &PendingLogin) -> appforge_sso::Result<()> {
        match self {
            Self::Sqlite(store) => store.insert_pending(login).await,
            Self::Postgres(store) => store.insert_pending(login).await,
        }
    }

    async fn take_pending(&self, state: &str) -> appforge_sso::Result<Option<PendingLogin>> {
        match self {
            Self::Sqlite(store) => store.take_pending(state).await,
            Self::Postgres(store) => store.take_pending(state).await,
        }
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> appforge_sso::Result<u64> {
        match self {
            Self::Sqlite(store) => store.purge_expired(now).await,
            Self::Postgres(store) => store.purge_expired(now).await,
        }
    }
}

/// The server's tables: one SCIM token per org, the SCIM-provisioned users.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS server_scim_tokens (\
        org_id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS server_scim_users (\
        org_id TEXT NOT NULL, user_id TEXT NOT NULL, user_name TEXT NOT NULL, \
        external_id TEXT, email TEXT, display_name TEXT, active BOOLEAN NOT NULL, \
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, \
        PRIMARY KEY (org_id, user_id), UNIQUE (org_id, user_name))",
];

/// SSO and SCIM over the shared database; `None` without `APPFORGE_SECRETS_KEY`.
#[derive(Debug, Clone)]
pub struct Sso {
    service: SsoService,
    db: Database,
}

impl Sso {
    /// The service over `db` (migrated: the crate's tables and the server's), sealing client
    /// secrets with `key`.
    ///
    /// # Errors
    ///
    /// A migration that fails.
    pub(crate) async fn build(
        key: SecretsKey,
        db: &Database,
        clock: appforge_core::SharedClock,
    ) -> Result<Self, StartError> {
        let store = match db {
            Database::Sqlite(pool) => {
                let store = SqliteSsoStore::from_pool(pool.clone());
                store
                    .migrate()
                    .await
                    .map_err(|e| StartError::setup("sso", e))?;
                SsoStore::Sqlite(store)
            }
            Database::Postgres(pool) => {
                let store = PgSsoStore::from_pool(pool.clone());
                store
                    .migrate()
                    .await
                    .map_err(|e| StartError::setup("sso", e))?;
                SsoStore::Postgres(store)
            }
        };
        for sql in SCHEMA {
            match db {
                Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
                Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            }
            .map_err(|e| StartError::setup("sso", e))?;
        }
        let service = appforge_sso::Sso::builder(store.clone(), store, key)
            .clock(clock)
            .build()
            .map_err(|e| StartError::setup("sso", e))?;
        Ok(Self {
            service,
            db: db.clone(),
        })
    }

    /// The crate's service: settings, start, callback.
    #[must_use]
    pub fn service(&self) -> &SsoService {
        &self.service
    }

    /// Stores the hash of `org`'s SCIM token, replacing the previous one.
    pub(crate) async fn set_scim_token(
        &self,
        org: Uuid,
        hash: &ScimTokenHash,
    ) -> Result<(), sqlx::Error> {
        let (org, hash, now) = (org.to_string(), hash.to_hex(), Utc::now().to_rfc3339());
        match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO server_scim_tokens (org_id, hash, created_at) VALUES (?, ?, ?) \
                     ON CONFLICT (org_id) DO UPDATE SET hash = excluded.hash, \
                     created_at = excluded.created_at",
                )
                .bind(org)
                .bind(hash)
                .bind(now)
                .execute(pool)
                .await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO server_scim_tokens (org_id, hash, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (org_id) DO UPDATE SET hash = excluded.hash, \
                     created_at = excluded.created_at",
                )
                .bind(org)
                .bind(hash)
                .bind(now)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// The org whose SCIM token `presented` is, if any.
    pub(crate) async fn scim_org(&self, presented: &str) -> Result<Option<Uuid>, sqlx::Error> {
        let hash = ScimTokenHash::of(presented.trim());
        let row: Option<(String, String)> = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_as("SELECT org_id, hash FROM server_scim_tokens WHERE hash = ?")
                    .bind(hash.to_hex())
                    .fetch_optional(pool)
                    .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as("SELECT org_id, hash FROM server_scim_tokens WHERE hash = $1")
                    .bind(hash.to_hex())
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(row.and_then(|(org, stored)| {
            let stored = ScimTokenHash::from_hex(&stored).ok()?;
            // Found by its hash; compared once more in constant time.
            stored.verify(presented).then(|| org.parse().ok()).flatten()
        }))
    }

    /// Every SCIM user of `org`.
    pub(crate) async fn scim_users(&self, org: Uuid) -> Result<Vec<ScimUser>, sqlx::Error> {
        let rows: Vec<UserRow> = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT user_id, user_name, external_id, email, display_name, active, \
                     created_at, updated_at FROM server_scim_users WHERE org_id = ? \
                     ORDER BY created_at, user_id",
                )
                .bind(org.to_string())
                .fetch_all(pool)
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT user_id, user_name, external_id, email, display_name, active, \
                     created_at, updated_at FROM server_scim_users WHERE org_id = $1 \
                     ORDER BY created_at, user_id",
                )
                .bind(org.to_string())
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows.into_iter().map(UserRow::into_user).collect())
    }

    /// The SCIM user `id` of `org`.
    pub(crate) async fn scim_user(
        &self,
        org: Uuid,
        id: Uuid,
    ) -> Result<Option<ScimUser>, sqlx::Error> {
        Ok(self
            .scim_users(org)
            .await?
            .into_iter()
            .find(|user| user.id.as_deref() == Some(id.to_string().as_str())))
    }

    /// The SCIM user of `org` whose `userName` or email is `email`.
    pub(crate) async fn scim_user_by_email(
        &self,
        org: Uuid,
        email: &str,
    ) -> Result<Option<ScimUser>, sqlx::Error> {
        Ok(self.scim_users(org).await?.into_iter().find(|user| {
            user.user_name.eq_ignore_ascii_case(email)
                || user.email().is_some_and(|e| e.eq_ignore_ascii_case(email))
        }))
    }

    /// Inserts or replaces `user` (its `id` set) in `org`.
    pub(crate) async fn put_scim_user(
        &self,
        org: Uuid,
        user: &ScimUser,
    ) -> Result<(), sqlx::Error> {
        let id = user.id.clone().unwrap_or_default();
        let now = Utc::now().to_rfc3339();
        let created = user
            .meta
            .as_ref()
            .and_then(|m| m.created)
            .map_or_else(|| now.clone(), |t| t.to_rfc3339());
        let email = user.email().map(str::to_owned);
        macro_rules! put {
            ($pool:expr, $sql:expr) => {
                sqlx::query($sql)
                    .bind(org.to_string())
                    .bind(id)
                    .bind(&user.user_name)
                    .bind(&user.external_id)
                    .bind(email)
                    .bind(&user.display_name)
                    .bind(user.active)
                    .bind(created)
                    .bind(now)
                    .execute($pool)
                    .await
                    .map(drop)
            };
        }
        match &self.db {
            Database::Sqlite(pool) => put!(
                pool,
                "INSERT INTO server_scim_users (org_id, user_id, user_name, external_id, email, \
                 display_name, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (org_id, user_id) DO UPDATE SET user_name = excluded.user_name, \
                 external_id = excluded.external_id, email = excluded.email, \
                 display_name = excluded.display_name, active = excluded.active, \
                 updated_at = excluded.updated_at"
            )?,
            Database::Postgres(pool) => put!(
                pool,
                "INSERT INTO server_scim_users (org_id, user_id, user_name, external_id, email, \
                 display_name, active, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (org_id, user_id) DO UPDATE SET user_name = excluded.user_name, \
                 external_id = excluded.external_id, email = excluded.email, \
                 display_name = excluded.display_name, active = excluded.active, \
                 updated_at = excluded.updated_at"
            )?,
        };
        Ok(())
    }

    /// Deletes the SCIM user `id` of `org`; whether there was one.
    pub(crate) async fn delete_scim_user(&self, org: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
        let done = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query("DELETE FROM server_scim_users WHERE org_id = ? AND user_id = ?")
                    .bind(org.to_string())
                    .bind(id.to_string())
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Database::Postgres(pool) => {
                sqlx::query("DELETE FROM server_scim_users WHERE org_id = $1 AND user_id = $2")
                    .bind(org.to_string())
                    .bind(id.to_string())
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        Ok(done > 0)
    }

    /// The id of the org `slug_or_id` names (an id, or a slug).
    pub(crate) async fn org_named(&self, slug_or_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
        if let Ok(id) = slug_or_id.parse::<Uuid>() {
            return Ok(Some(id));
        }
        match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT id FROM orgs WHERE slug = ?")
                    .bind(slug_or_id)
                    .fetch_optional(pool)
                    .await
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT id FROM orgs WHERE slug = $1")
                    .bind(slug_or_id)
                    .fetch_optional(pool)
                    .await
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    user_id: String,
    user_name: String,
    external_id: Option<String>,
    email: Option<String>,
    display_name: Option<String>,
    active: bool,
    created_at: String,
    updated_at: String,
}

impl UserRow {
    fn into_user(self) -> ScimUser {
        let time = |text: &str| DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc());
        let mut user = ScimUser::new(self.user_name);
        user.meta = Some(ScimMeta {
            resource_type: "User".into(),
            created: time(&self.created_at),
            last_modified: time(&self.updated_at),
            location: Some(format!("/scim/v2/Users/{}", self.user_id)),
        });
        user.id = Some(self.user_id);
        user.external_id = self.external_id;
        user.display_name = self.display_name;
        user.active = self.active;
        user.emails = self
            .email
            .map(|value| ScimEmail {
                value,
                kind: Some("work".into()),
                primary: true,
            })
            .into_iter()
            .collect();
        user
    }
}

/// The user id of `subject` at `issuer`: the same for every login, a UUID (version 8) from
/// the SHA-256 of both.
#[must_use]
pub fn user_id(issuer: &str, subject: &str) -> Uuid {
    name_id(&["sso", issuer, subject])
}

/// The user id SCIM gives `user_name` in `org` (when no login named them first).
#[must_use]
pub fn scim_user_id(org: Uuid, user_name: &str) -> Uuid {
    name_id(&["scim", &org.to_string(), &user_name.to_ascii_lowercase()])
}

fn name_id(parts: &[&str]) -> Uuid {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_stable_and_distinct() {
        assert_eq!(user_id("https://a", "1"), user_id("https://a", "1"));
        assert_ne!(user_id("https://a", "1"), user_id("https://b", "1"));
        assert_ne!(user_id("https://a", "12"), user_id("https://a1", "2"));
        let org = Uuid::new_v4();
        assert_eq!(
            scim_user_id(org, "Ada@acme.com"),
            scim_user_id(org, "ada@ACME.com")
        );
    }
}
