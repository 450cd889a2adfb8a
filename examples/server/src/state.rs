//! The application state: one database shared by every crate's store, the provider, the
//! queue, quota, billing, analytics and error reporting. Cheap to clone.

use std::sync::Arc;

use appforge::generation::GenerationService;
use appforge_analytics::AnyEventStore;
use appforge_apps::AnyAppStore;
use appforge_billing::{AnyBillingStore, Billing, StripeApi, WebhookVerifier};
use appforge_jobs::{AnyJobStore, Job, JobQueue, JobStatus};
use appforge_llm::Pipelines;
use appforge_quota::{AnyUsageStore, Quota};
use appforge_uploads::{AnyUploadStore, ImagePolicy, Storage, Uploads};
use axum::extract::FromRef;

use crate::analytics::Analytics;
use crate::auth::JwtKeys;
use crate::config::Config;
use crate::db::Database;
use crate::metrics::Metrics;
use crate::reporting::Reporting;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The database could not be reached.
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    /// A crate's migrations or set-up failed.
    #[error("cannot set up {what}: {message}")]
    Setup {
        /// Which part.
        what: &'static str,
        /// Why.
        message: String,
    },
}

impl StartError {
    pub(crate) fn setup(what: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Setup {
            what,
            message: error.to_string(),
        }
    }
}

/// Everything a request handler or job handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: Database,
    jwt: JwtKeys,
    quota: Quota,
    uploads: Uploads,
    previews: appforge_preview::Previews,
    generation: GenerationService,
    billing: Option<Billing<AnyBillingStore>>,
    metrics: Metrics,
    analytics: Analytics,
    reporting: Reporting,
    shutdown: tokio_util::sync::CancellationToken,
    limits: crate::limits::Limits,
    orgs: crate::routes::orgs::OrgsService,
    mailer: Option<crate::routes::orgs::Mailer>,
    sso: Option<crate::sso::Sso>,
    /// On PostgreSQL, the feed that keeps the org membership cache in step with every
    /// process's changes (stopped when the state is dropped).
    _membership_feed: Option<tokio_util::task::AbortOnDropHandle<()>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.inner.db.backend())
            .field("provider", &self.provider())
            .field("billing", &self.inner.billing.is_some())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the database, migrates every crate's tables and assembles the state over the
    /// given pipelines (see [`appforge_llm::ProviderConfig::pipelines`]) and token keys.
    ///
    /// # Errors
    ///
    /// [`StartError`] when the database or a crate's set-up fails.
    pub async fn build(
        config: Config,
        pipelines: Pipelines,
        provider: String,
        jwt: JwtKeys,
    ) -> Result<Self, StartError> {
        let clock = appforge_core::SystemClock::shared();
        Self::build_with_clock(config, pipelines, provider, jwt, clock).await
    }

    /// As [`build`](Self::build), with the job queue, quotas and saved apps reading time from
    /// `clock` (a manual clock in tests).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub async fn build_with_clock(
        config: Config,
        pipelines: Pipelines,
        provider: String,
        jwt: JwtKeys,
        clock: appforge_core::SharedClock,
    ) -> Result<Self, StartError> {
        let db = Database::connect(&config.database_url).await?;
        let (usage, jobs, billing_store, apps, events) = match &db {
            Database::Sqlite(pool) => (
                AnyUsageStore::from_sqlite_pool(pool.clone()),
                AnyJobStore::from_sqlite_pool(pool.clone()),
                AnyBillingStore::from_sqlite_pool(pool.clone()),
                AnyAppStore::from_sqlite_pool(pool.clone()),
                AnyEventStore::from_sqlite_pool(pool.clone()),
            ),
            Database::Postgres(pool) => (
                AnyUsageStore::from_pg_pool(pool.clone()),
                AnyJobStore::from_pg_pool(pool.clone()),
                AnyBillingStore::from_pg_pool(pool.clone()),
                AnyAppStore::from_pg_pool(pool.clone()),
                AnyEventStore::from_pg_pool(pool.clone()),
            ),
        };
        let apps = apps
            .with_retention(config.app_retention)
            .with_clock(clock.clone());
        usage
            .migrate()
            .await
            .map_err(|e| StartError::setup("quota", e))?;
        jobs.migrate()
            .await
            .map_err(|e| StartError::setup("jobs", e))?;
        appforge_billing::BillingStore::migrate(&billing_store)
            .await
            .map_err(|e| StartError::setup("billing", e))?;
        apps.migrate()
            .await
            .map_err(|e| StartError::setup("apps", e))?;
        events
            .migrate()
            .await
            .map_err(|e| StartError::setup("analytics", e))?;
        let uploads = uploads(&config, &db, clock.clone()).await?;
        let previews = previews(&config.preview)?;
        let orgs = crate::routes::orgs::service(&config.orgs, &db, clock.clone()).await?;
        let mailer = crate::routes::orgs::Mailer::from_config(&config.orgs)?;
        let sso = match &config.secrets_key {
            Some(key) => Some(crate::sso::Sso::build(key.clone(), &db, clock.clone()).await?),
            None => None,
        };
        let reporting = Reporting::from_config(&config.reporting)
            .map_err(|e| StartError::setup("error reporting", e))?;
        let analytics = Analytics::start(events, config.provider.model())
            .map_err(|e| StartError::setup("analytics", e))?;

        let quota = Quota::builder(usage)
            .clock(clock.clone())
            .build()
            .map_err(|e| StartError::setup("quota", e))?;
        quota
            .load_plans()
            .await
            .map_err(|e| StartError::setup("plans", e))?;
        if let Some(stripe) = &config.stripe {
            apply_prices(&quota, stripe).map_err(|e| StartError::setup("plans", e))?;
        }
        let metrics = Metrics::new();
        let hook_metrics = metrics.clone();
        let hook_analytics = analytics.clone();
        let chat_analytics = analytics.clone();
        let hook_reporting = reporting.clone();
        let job_reporting = reporting.clone();
        // The queue settles each job's reservation as it ends (the generation service's
        // hook); these hooks add the analytics event, the error report and the metrics.
        let generation = GenerationService::builder(quota.clone(), jobs, apps, pipelines)
            .provider(provider)
            .clock(clock)
            .attachments(appforge::generation::UploadedImages(uploads.clone()))
            .on_job_end(move |job| {
                finished(&hook_analytics, &hook_reporting, job);
                job_metrics(&hook_metrics, job);
            })
            .on_chat_end(move |ended| crate::routes::chat::record(&chat_analytics, ended))
            // A panic or an error report from a handler carries the job's and user's ids.
            .around_job(job_reporting.around_job())
            .build()
            .map_err(|e| StartError::setup("jobs", e))?;
        let billing = match &config.stripe {
            Some(stripe) => Some(billing(stripe, billing_store, &quota)?),
            None => None,
        };
        let limits = crate::limits::Limits::new(&config.edge, &quota.catalogue());
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                db,
                jwt,
                quota,
                uploads,
                previews,
                generation,
                billing,
                metrics,
                analytics,
                reporting,
                shutdown: tokio_util::sync::CancellationToken::new(),
                limits,
                _membership_feed: orgs
                    .watch_memberships()
                    .map(tokio_util::task::AbortOnDropHandle::new),
                orgs,
                mailer,
                sso,
            }),
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The shared database.
    #[must_use]
    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    /// Token keys.
    #[must_use]
    pub fn jwt(&self) -> &JwtKeys {
        &self.inner.jwt
    }

    /// Quotas.
    #[must_use]
    pub fn quota(&self) -> &Quota {
        &self.inner.quota
    }

    /// Saved apps and their versions.
    #[must_use]
    pub fn apps(&self) -> &AnyAppStore {
        self.inner.generation.apps()
    }

    /// Uploaded reference images.
    #[must_use]
    pub fn uploads(&self) -> &Uploads {
        &self.inner.uploads
    }

    /// Live previews: the npm registry, the dependency cache and the build pool.
    #[must_use]
    pub fn previews(&self) -> &appforge_preview::Previews {
        &self.inner.previews
    }

    /// The job queue.
    #[must_use]
    pub fn queue(&self) -> &JobQueue<AnyJobStore> {
        self.inner.generation.queue()
    }

    /// The generation flow: submit, the job handlers, settlement, reconciliation.
    #[must_use]
    pub fn generation(&self) -> &GenerationService {
        &self.inner.generation
    }

    /// Billing, when Stripe is configured.
    #[must_use]
    pub fn billing(&self) -> Option<&Billing<AnyBillingStore>> {
        self.inner.billing.as_ref()
    }

    /// The generation pipelines.
    #[must_use]
    pub fn pipelines(&self) -> &Pipelines {
        self.inner.generation.pipelines()
    }

    /// The provider's name, reported in every result.
    #[must_use]
    pub fn provider(&self) -> &str {
        self.inner.generation.provider()
    }

    /// Metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Usage analytics: the recorder of the standard events.
    #[must_use]
    pub fn analytics(&self) -> &Analytics {
        &self.inner.analytics
    }

    /// Error reporting (Sentry, when `SENTRY_DSN` is set).
    #[must_use]
    pub fn reporting(&self) -> &Reporting {
        &self.inner.reporting
    }

    /// Waits (up to `deadline`) for the quota settlements of jobs that just finished, so that
    /// a process stopping right after a job's last write still commits or refunds it.
    pub async fn flush_settlements(&self, deadline: std::time::Duration) {
        self.inner.generation.flush_settlements(deadline).await;
    }

    /// The per-user limits of the HTTP edge (request rates, open streams, billing calls).
    pub(crate) fn limits(&self) -> &crate::limits::Limits {
        &self.inner.limits
    }

    /// Team workspaces: orgs, members, invitations, API keys and the audit log.
    #[must_use]
    pub fn orgs(&self) -> &crate::routes::orgs::OrgsService {
        &self.inner.orgs
    }

    /// The mailer of invitations, when SMTP is configured.
    pub(crate) fn mailer(&self) -> Option<&crate::routes::orgs::Mailer> {
        self.inner.mailer.as_ref()
    }

    /// Single sign-on and SCIM, when `APPFORGE_SECRETS_KEY` is set.
    #[must_use]
    pub fn sso(&self) -> Option<&crate::sso::Sso> {
        self.inner.sso.as_ref()
    }

    /// Cancelled when the server shuts down: open SSE streams end so that the graceful
    /// shutdown does not wait for them.
    #[must_use]
    pub fn shutdown_token(&self) -> &tokio_util::sync::CancellationToken {
        &self.inner.shutdown
    }
}

impl FromRef<AppState> for JwtKeys {
    fn from_ref(state: &AppState) -> Self {
        state.inner.jwt.clone()
    }
}

impl FromRef<AppState> for crate::auth::AdminToken {
    fn from_ref(state: &AppState) -> Self {
        Self(state.config().admin_token.clone())
    }
}

impl FromRef<AppState> for Analytics {
    fn from_ref(state: &AppState) -> Self {
        state.inner.analytics.clone()
    }
}

impl FromRef<AppState> for Reporting {
    fn from_ref(state: &AppState) -> Self {
        state.inner.reporting.clone()
    }
}

impl FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Self {
        state.inner.metrics.clone()
    }
}

/// `STRIPE_PRICE_PRO` / `STRIPE_PRICE_TEAM` override the catalogue's monthly prices.
fn apply_prices(quota: &Quota, stripe: &crate::config::StripeConfig) -> appforge_quota::Result<()> {
    let mut catalogue = (*quota.catalogue()).clone();
    for (id, price) in [
        (appforge_quota::PlanId::pro(), &stripe.price_pro),
        (appforge_quota::PlanId::team(), &stripe.price_team),
    ] {
        if let (Some(price), Some(plan)) = (price, catalogue.get(&id)) {
            let mut plan = plan.clone();
            plan.stripe_price_id_monthly = Some(price.clone());
            catalogue = catalogue.with_plan(plan)?;
        }
    }
    quota.set_catalogue(catalogue);
    Ok(())
}

fn billing(
    stripe: &crate::config::StripeConfig,
    store: AnyBillingStore,
    quota: &Quota,
) -> Result<Billing<AnyBillingStore>, StartError> {
    let mut verifier = WebhookVerifier::builder();
    for secret in &stripe.webhook_secrets {
        verifier = verifier.secret(secret.clone());
    }
    let verifier = verifier
        .build()
        .map_err(|e| StartError::setup("stripe webhooks", e))?;
    let mut api = StripeApi::builder(stripe.secret_key.clone());
    if let Some(base) = &stripe.api_base {
        api = api.base_url(base.clone());
    }
    let api = api.build().map_err(|e| StartError::setup("stripe", e))?;
    Billing::builder(store, verifier, Arc::new(quota.clone()))
        .stripe(api)
        .build()
        .map_err(|e| StartError::setup("billing", e))
}

/// A generation job ended: its analytics event, and an error report when it failed for good.
/// The hook runs in the process that wrote the job's last transition, so each end is
/// recorded once.
fn finished(analytics: &Analytics, reporting: &Reporting, job: &Job) {
    analytics.finished(job);
    reporting.job_failed(job);
}

/// A generation that completed with a reservation: its duration and tokens in the metrics.
fn job_metrics(metrics: &Metrics, job: &Job) {
    if job.status != JobStatus::Completed || crate::settlement::reservation_of(job).is_none() {
        return;
    }
    let input = job.input_tokens.unwrap_or(0);
    let output = job.output_tokens.unwrap_or(0);
    let seconds = std::time::Duration::from_millis(job.duration_ms.unwrap_or(0)).as_secs_f64();
    metrics.job_finished(&job.kind, seconds, input, output);
}

/// Uploads in the storage `APPFORGE_STORAGE_URL` names, their metadata in the shared
/// database.
async fn uploads(
    config: &Config,
    db: &Database,
    clock: appforge_core::SharedClock,
) -> Result<Uploads, StartError> {
    let storage = Storage::from_url(&config.uploads.storage_url)
        .map_err(|e| StartError::setup("upload storage", e))?;
    let store = match db {
        Database::Sqlite(pool) => AnyUploadStore::from_sqlite_pool(pool.clone()),
        Database::Postgres(pool) => AnyUploadStore::from_pg_pool(pool.clone()),
    };
    store
        .migrate()
        .await
        .map_err(|e| StartError::setup("uploads", e))?;
    let policy = ImagePolicy::default()
        .max_bytes(config.uploads.max_bytes)
        .max_side(config.uploads.max_side);
    Ok(Uploads::new(storage, store)
        .with_policy(policy)
        .with_clock(clock))
}

/// The previews of `config`: the dependency cache (created when missing), the registry and
/// the build pool.
///
/// # Errors
///
/// [`StartError`] when the cache directory cannot be created or the registry URL is not an
/// `http(s)` URL.
pub(crate) fn previews(
    config: &crate::config::PreviewConfig,
) -> Result<appforge_preview::Previews, StartError> {
    let cache = appforge_preview::DepCache::new(&config.cache_dir, config.cache_bytes)
        .map_err(|e| StartError::setup("preview cache", e))?;
    let registry = appforge_preview::Registry::builder(cache)
        .url(config.registry.clone())
        .offline(config.offline)
        .build()
        .map_err(|e| StartError::setup("npm registry", e))?;
    let previewer = appforge_preview::Previewer::builder()
        .concurrency(config.builds)
        .timeout(config.timeout)
        .build();
    Ok(appforge_preview::Previews::new(registry, previewer))
}
