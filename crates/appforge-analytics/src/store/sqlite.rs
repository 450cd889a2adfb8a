use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::{EventStore, MIGRATIONS_TABLE};
use crate::{AnalyticsEvent, Error, EventType, Result};

// 5 parameters a row; SQLite allows 32766 parameters a statement.
const ROWS_PER_STATEMENT: usize = 1000;

/// The embedded SQLite store. Times are stored as microseconds since the epoch.
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub struct SqliteEventStore {
    pool: SqlitePool,
}

impl SqliteEventStore {
    /// Opens (and creates when missing) the database at `url` (`sqlite://path.db`,
    /// `sqlite::memory:`). Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a malformed URL, [`Error::Database`] when it cannot be opened.
    pub async fn connect(url: &str) -> Result<Self> {
        let options: SqliteConnectOptions = url
            .parse::<SqliteConnectOptions>()
            .map_err(|e| Error::Config(format!("invalid sqlite url: {e}")))?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        // An in-memory database lives in one connection.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(options)
            .await
            .map_err(Error::db("opening the sqlite database"))?;
        Ok(Self { pool })
    }

    /// A store on an existing pool (shared with the host's other crates).
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool this store uses.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies this crate's migrations (table `_appforge_analytics_migrations`).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }
}

/// A time as every appforge SQLite table stores it (microseconds since the Unix epoch).
fn micros(at: DateTime<Utc>) -> i64 {
    appforge_core::db::encode_time(at)
}

fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    appforge_core::db::decode_time(us).map_err(|e| Error::Corrupt(format!("created_at: {e}")))
}

impl EventStore for SqliteEventStore {
    async fn insert_batch(&self, events: &[AnalyticsEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(Error::db("starting an insert"))?;
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO analytics_events (id, user_id, event_type, properties, created_at) ",
            );
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(event.id)
                    .push_bind(event.user_id)
                    .push_bind(event.event_type.as_str().to_owned())
                    .push_bind(event.properties.to_string())
                    .push_bind(micros(event.created_at));
            });
            insert.push(" ON CONFLICT (id) DO NOTHING");
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(Error::db("inserting events"))?;
        }
        tx.commit().await.map_err(Error::db("committing events"))?;
        Ok(())
    }

    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AnalyticsEvent>> {
        let rows = sqlx::query(
            "SELECT id, user_id, event_type, properties, created_at FROM analytics_events \
             WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at, id",
        )
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(&self.pool)
        .await
        .map_err(Error::db("reading events"))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let properties: String = row.get("properties");
            events.push(AnalyticsEvent {
                id: row.get("id"),
                user_id: row.get("user_id"),
                event_type: EventType::parse(row.get("event_type")),
                properties: serde_json::from_str(&properties)
                    .map_err(|e| Error::Corrupt(format!("properties are not JSON: {e}")))?,
                created_at: from_micros(row.get("created_at"))?,
            });
        }
        // Blob order equals UUID order; sort anyway so every backend agrees by construction.
        events.sort_by_key(|e| (e.created_at, e.id));
        Ok(events)
    }

    async fn first_seen_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT user_id, MIN(created_at) AS first_at FROM analytics_events \
             GROUP BY user_id HAVING MIN(created_at) >= ?1 AND MIN(created_at) < ?2",
        )
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(&self.pool)
        .await
        .map_err(Error::db("reading first events"))?;
        let mut found = rows
            .into_iter()
            .map(|(user, at)| Ok((user, from_micros(at)?)))
            .collect::<Result<Vec<_>>>()?;
        found.sort();
        Ok(found)
    }
}
