use appforge_core::db::Connect;
use appforge_orgs::Role;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

use super::{MIGRATIONS_TABLE, PendingLogins, SsoConfigStore};
use crate::config::SsoConfig;
use crate::pending::PendingLogin;
use crate::secrets::SealedSecret;
use crate::{Error, Result};

/// Both stores in PostgreSQL, for many processes on one database. Tables `sso_configs` and
/// `sso_pending_logins` (migration table `_appforge_sso_migrations`).
#[derive(Debug, Clone)]
pub struct PgSsoStore {
    pool: PgPool,
}

impl PgSsoStore {
    /// Connects to `url` (`postgres://...`). Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(Self::from_pool(Connect::new(url).postgres().await?))
    }

    /// A store on an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or updates this crate's tables.
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = sqlx::migrate!("./migrations/postgres");
        appforge_core::db::migrate(migrator, MIGRATIONS_TABLE, &self.pool).await?;
        Ok(())
    }
}

fn config_row(row: &PgRow) -> Result<SsoConfig> {
    let role: String = row.try_get("default_role")?;
    Ok(SsoConfig {
        org: row.try_get("org_id")?,
        issuer: row.try_get("issuer")?,
        client_id: row.try_get("client_id")?,
        client_secret: SealedSecret::from_stored(row.try_get::<String, _>("client_secret_sealed")?),
        allowed_domains: row.try_get("allowed_domains")?,
        default_role: role
            .parse::<Role>()
            .map_err(|e| Error::Corrupt(format!("default role: {e}")))?,
        enforce_domain: row.try_get("enforce_domain")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn pending_row(row: &PgRow) -> Result<PendingLogin> {
    Ok(PendingLogin {
        state: row.try_get("state")?,
        nonce: row.try_get("nonce")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        org: row.try_get("org_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl SsoConfigStore for PgSsoStore {
    async fn put_config(&self, config: &SsoConfig) -> Result<()> {
        sqlx::query(
            "INSERT INTO sso_configs (org_id, issuer, client_id, client_secret_sealed, \
             allowed_domains, default_role, enforce_domain, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, \
             client_id = excluded.client_id, client_secret_sealed = excluded.client_secret_sealed, \
             allowed_domains = excluded.allowed_domains, default_role = excluded.default_role, \
             enforce_domain = excluded.enforce_domain, updated_at = excluded.updated_at",
        )
        .bind(config.org)
        .bind(&config.issuer)
        .bind(&config.client_id)
        .bind(config.client_secret.as_stored())
        .bind(&config.allowed_domains)
        .bind(config.default_role.as_str())
        .bind(config.enforce_domain)
        .bind(config.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_config(&self, org: Uuid) -> Result<Option<SsoConfig>> {
        sqlx::query("SELECT * FROM sso_configs WHERE org_id = $1")
            .bind(org)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(config_row)
            .transpose()
    }

    async fn delete_config(&self, org: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sso_configs WHERE org_id = $1")
            .bind(org)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

impl PendingLogins for PgSsoStore {
    async fn insert_pending(&self, login: &PendingLogin) -> Result<()> {
        sqlx::query(
            "INSERT INTO sso_pending_logins (state, org_id, nonce, pkce_verifier, redirect_uri, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&login.state)
        .bind(login.org)
        .bind(&login.nonce)
        .bind(&login.pkce_verifier)
        .bind(&login.redirect_uri)
        .bind(login.created_at)
        .bind(login.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_pending(&self, state: &str) -> Result<Option<PendingLogin>> {
        // One statement: of two callbacks with the same state, one deletes the row.
        sqlx::query("DELETE FROM sso_pending_logins WHERE state = $1 RETURNING *")
            .bind(state)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(pending_row)
            .transpose()
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sso_pending_logins WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
