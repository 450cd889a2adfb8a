use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

use super::{EventStore, MIGRATIONS_TABLE};
use crate::{AnalyticsEvent, Error, EventType, Result};

/// The PostgreSQL store. A batch is one `INSERT ... SELECT FROM UNNEST(...)` statement.
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PgEventStore {
    pool: PgPool,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    user_id: Uuid,
    event_type: String,
    properties: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl PgEventStore {
    /// Connects to the database at `url` (`postgres://...`). Call [`migrate`](Self::migrate)
    /// before use.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await
            .map_err(Error::db("connecting to postgres"))?;
        Ok(Self { pool })
    }

    /// A store on an existing pool (shared with the host's other crates).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool this store uses.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies this crate's migrations (table `_appforge_analytics_migrations`).
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

impl EventStore for PgEventStore {
    async fn insert_batch(&self, events: &[AnalyticsEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let users: Vec<Uuid> = events.iter().map(|e| e.user_id).collect();
        let types: Vec<String> = events
            .iter()
            .map(|e| e.event_type.as_str().to_owned())
            .collect();
        let properties: Vec<serde_json::Value> =
            events.iter().map(|e| e.properties.clone()).collect();
        let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.created_at).collect();
        sqlx::query(
            "INSERT INTO analytics_events (id, user_id, event_type, properties, created_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::timestamptz[]) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(ids)
        .bind(users)
        .bind(types)
        .bind(properties)
        .bind(times)
        .execute(&self.pool)
        .await
        .map_err(Error::db("inserting events"))?;
        Ok(())
    }

    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AnalyticsEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, user_id, event_type, properties, created_at FROM analytics_events \
             WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::db("reading events"))?;
        Ok(rows
            .into_iter()
            .map(|row| AnalyticsEvent {
                id: row.id,
                user_id: row.user_id,
                event_type: EventType::parse(&row.event_type),
                properties: row.properties,
                created_at: row.created_at,
            })
            .collect())
    }

    async fn first_seen_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        sqlx::query_as(
            "SELECT user_id, MIN(created_at) AS first_at FROM analytics_events \
             GROUP BY user_id HAVING MIN(created_at) >= $1 AND MIN(created_at) < $2 \
             ORDER BY user_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::db("reading first events"))
    }
}
