use appforge_core::db::{Connect, decode_time, encode_time};
use appforge_orgs::Role;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use uuid::Uuid;

use super::{MIGRATIONS_TABLE, PendingLogins, SsoConfigStore};
use crate::config::SsoConfig;
use crate::pending::PendingLogin;
use crate::secrets::SealedSecret;
use crate::{Error, Result};

/// Both stores in a SQLite database: the embedded default. Tables `sso_configs` and
/// `sso_pending_logins` (migration table `_appforge_sso_migrations`).
#[derive(Debug, Clone)]
pub struct SqliteSsoStore {
    pool: SqlitePool,
}

impl SqliteSsoStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`) in WAL
    /// mode. Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when it cannot be opened.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(Self::from_pool(Connect::new(url).sqlite().await?))
    }

    /// A store on an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or updates this crate's tables.
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = sqlx::migrate!("./migrations/sqlite");
        appforge_core::db::migrate(migrator, MIGRATIONS_TABLE, &self.pool).await?;
        Ok(())
    }
}

fn time(micros: i64) -> Result<DateTime<Utc>> {
    decode_time(micros).map_err(|e| Error::Corrupt(e.to_string()))
}

fn config_row(row: &SqliteRow) -> Result<SsoConfig> {
    let domains: String = row.try_get("allowed_domains")?;
    let role: String = row.try_get("default_role")?;
    Ok(SsoConfig {
        org: row.try_get("org_id")?,
        issuer: row.try_get("issuer")?,
        client_id: row.try_get("client_id")?,
        client_secret: SealedSecret::from_stored(row.try_get::<String, _>("client_secret_sealed")?),
        allowed_domains: serde_json::from_str(&domains)
            .map_err(|e| Error::Corrupt(format!("allowed domains: {e}")))?,
        default_role: role
            .parse::<Role>()
            .map_err(|e| Error::Corrupt(format!("default role: {e}")))?,
        enforce_domain: row.try_get("enforce_domain")?,
        updated_at: time(row.try_get("updated_at")?)?,
    })
}

fn pending_row(row: &SqliteRow) -> Result<PendingLogin> {
    Ok(PendingLogin {
        state: row.try_get("state")?,
        nonce: row.try_get("nonce")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        org: row.try_get("org_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        created_at: time(row.try_get("created_at")?)?,
        expires_at: time(row.try_get("expires_at")?)?,
    })
}

impl SsoConfigStore for SqliteSsoStore {
    async fn put_config(&self, config: &SsoConfig) -> Result<()> {
        let domains =
            serde_json::to_string(&config.allowed_domains).expect("a list of strings serializes");
        sqlx::query(
            "INSERT INTO sso_configs (org_id, issuer, client_id, client_secret_sealed, \
             allowed_domains, default_role, enforce_domain, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer, \
             client_id = excluded.client_id, client_secret_sealed = excluded.client_secret_sealed, \
             allowed_domains = excluded.allowed_domains, default_role = excluded.default_role, \
             enforce_domain = excluded.enforce_domain, updated_at = excluded.updated_at",
        )
        .bind(config.org)
        .bind(&config.issuer)
        .bind(&config.client_id)
        .bind(config.client_secret.as_stored())
        .bind(domains)
        .bind(config.default_role.as_str())
        .bind(config.enforce_domain)
        .bind(encode_time(config.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_config(&self, org: Uuid) -> Result<Option<SsoConfig>> {
        sqlx::query("SELECT * FROM sso_configs WHERE org_id = ?")
            .bind(org)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(config_row)
            .transpose()
    }

    async fn delete_config(&self, org: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sso_configs WHERE org_id = ?")
            .bind(org)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

impl PendingLogins for SqliteSsoStore {
    async fn insert_pending(&self, login: &PendingLogin) -> Result<()> {
        sqlx::query(
            "INSERT INTO sso_pending_logins (state, org_id, nonce, pkce_verifier, redirect_uri, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&login.state)
        .bind(login.org)
        .bind(&login.nonce)
        .bind(&login.pkce_verifier)
        .bind(&login.redirect_uri)
        .bind(encode_time(login.created_at))
        .bind(encode_time(login.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_pending(&self, state: &str) -> Result<Option<PendingLogin>> {
        // One statement: of two callbacks with the same state, one deletes the row.
        sqlx::query("DELETE FROM sso_pending_logins WHERE state = ? RETURNING *")
            .bind(state)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(pending_row)
            .transpose()
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sso_pending_logins WHERE expires_at <= ?")
            .bind(encode_time(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
