//! The body shared by the SQLite and PostgreSQL stores. The two differ only in their pool
//! types, how a write transaction begins (`BEGIN IMMEDIATE` on SQLite) and row locking
//! (`FOR UPDATE` on PostgreSQL), so one macro writes both instead of code generic over
//! `sqlx::Database`.

macro_rules! sql_store {
    ($store:ident, $db:ty, $conn:ty, lock = $lock:literal) => {
        use chrono::{DateTime, Utc};
        use uuid::Uuid;

        use crate::error::Result;
        use crate::event::from_unix;
        use crate::model::{
            Effect, InvoiceRecord, LedgerEntry, PendingPlanSync, SubscriptionRecord, apply_payment,
            apply_snapshot,
        };
        use crate::store::time::Time;
        use crate::store::rows::{
            EventRow, InvoiceRow, PlanSyncRow, SubscriptionRow, quantity_to_i64,
        };
        use crate::store::{BillingStore, Commit, NewEvent};

        async fn ensure_subscription(
            conn: &mut $conn,
            id: &str,
            customer: &str,
            now: DateTime<Utc>,
        ) -> Result<SubscriptionRecord> {
            sqlx::query(
                "INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, plan, status, quantity, synced_version, payment_version, created_at, updated_at) \
                 VALUES ($1, $2, 'free', 'incomplete', 0, 0, 0, $3, $3) ON CONFLICT (stripe_subscription_id) DO NOTHING",
            )
            .bind(id)
            .bind(customer)
            .bind(Time(now))
            .execute(&mut *conn)
            .await?;
            let row: SubscriptionRow = sqlx::query_as(concat!(
                "SELECT stripe_subscription_id, stripe_customer_id, user_id, plan, status, price_id, quantity, current_period_start, current_period_end, cancel_at_period_end, past_due, grace_until, synced_version, payment_version, created_at, updated_at FROM subscriptions WHERE stripe_subscription_id = $1",
                $lock
            ))
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
            row.try_into()
        }

        async fn save_subscription(conn: &mut $conn, r: &SubscriptionRecord) -> Result<()> {
            sqlx::query(
                "UPDATE subscriptions SET stripe_customer_id = $2, user_id = $3, plan = $4, status = $5, price_id = $6, quantity = $7, \
                 current_period_start = $8, current_period_end = $9, cancel_at_period_end = $10, past_due = $11, grace_until = $12, \
                 synced_version = $13, payment_version = $14, updated_at = $15 WHERE stripe_subscription_id = $1",
            )
            .bind(&r.stripe_subscription_id)
            .bind(&r.stripe_customer_id)
            .bind(r.user_id)
            .bind(&r.plan)
            .bind(&r.status)
            .bind(&r.price_id)
            .bind(quantity_to_i64(r.quantity)?)
            .bind(r.current_period_start.map(Time))
            .bind(r.current_period_end.map(Time))
            .bind(r.cancel_at_period_end)
            .bind(r.past_due)
            .bind(r.grace_until.map(Time))
            .bind(r.synced_version)
            .bind(r.payment_version)
            .bind(Time(r.updated_at))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn linked_user(conn: &mut $conn, customer: &str) -> Result<Option<Uuid>> {
            Ok(sqlx::query_scalar(
                "SELECT user_id FROM stripe_customers WHERE stripe_customer_id = $1",
            )
            .bind(customer)
            .fetch_optional(&mut *conn)
            .await?)
        }

        async fn link(
            conn: &mut $conn,
            customer: &str,
            user: Uuid,
            now: DateTime<Utc>,
        ) -> Result<Vec<String>> {
            sqlx::query(
                "INSERT INTO stripe_customers (stripe_customer_id, user_id, linked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (stripe_customer_id) DO UPDATE SET user_id = excluded.user_id, linked_at = excluded.linked_at",
            )
            .bind(customer)
            .bind(user)
            .bind(Time(now))
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE subscriptions SET user_id = $2, updated_at = $3 \
                 WHERE stripe_customer_id = $1 AND (user_id IS NULL OR user_id <> $2)",
            )
            .bind(customer)
            .bind(user)
            .bind(Time(now))
            .execute(&mut *conn)
            .await?;
            Ok(sqlx::query_scalar(
                "SELECT stripe_subscription_id FROM subscriptions WHERE stripe_customer_id = $1",
            )
            .bind(customer)
            .fetch_all(&mut *conn)
            .await?)
        }

        async fn apply(
            conn: &mut $conn,
            effect: &Effect,
            now: DateTime<Utc>,
            touched: &mut Vec<String>,
        ) -> Result<()> {
            match effect {
                Effect::LinkCustomer { customer, user } => {
                    touched.extend(link(conn, customer, *user, now).await?);
                }
                Effect::UpsertSubscription(snapshot) => {
                    let mut record =
                        ensure_subscription(conn, &snapshot.id, &snapshot.customer, now).await?;
                    let linked = linked_user(conn, &snapshot.customer).await?;
                    let before = record.clone();
                    apply_snapshot(&mut record, snapshot, linked, now);
                    if record != before {
                        save_subscription(conn, &record).await?;
                    }
                    touched.push(snapshot.id.clone());
                }
                Effect::RecordInvoice(i) => {
                    sqlx::query(
                        "INSERT INTO invoices (stripe_invoice_id, stripe_customer_id, stripe_subscription_id, status, amount_due, amount_paid, currency, hosted_invoice_url, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (stripe_invoice_id) DO UPDATE SET stripe_customer_id = excluded.stripe_customer_id, \
                         stripe_subscription_id = excluded.stripe_subscription_id, status = excluded.status, amount_due = excluded.amount_due, \
                         amount_paid = excluded.amount_paid, currency = excluded.currency, hosted_invoice_url = excluded.hosted_invoice_url, \
                         version = excluded.version WHERE invoices.version < excluded.version",
                    )
                    .bind(&i.stripe_invoice_id)
                    .bind(&i.stripe_customer_id)
                    .bind(&i.stripe_subscription_id)
                    .bind(&i.status)
                    .bind(i.amount_due)
                    .bind(i.amount_paid)
                    .bind(&i.currency)
                    .bind(&i.hosted_invoice_url)
                    .bind(i.version)
                    .execute(&mut *conn)
                    .await?;
                }
                Effect::Payment {
                    subscription,
                    customer,
                    failed,
                    version,
                    grace_until,
                } => {
                    let mut record = ensure_subscription(conn, subscription, customer, now).await?;
                    let linked = linked_user(conn, customer).await?;
                    let before = record.clone();
                    apply_payment(&mut record, *failed, *version, *grace_until, linked, now);
                    if record != before {
                        save_subscription(conn, &record).await?;
                    }
                    touched.push(subscription.clone());
                }
            }
            Ok(())
        }

        async fn subscriptions_where(
            conn: &mut $conn,
            ids: &[String],
        ) -> Result<Vec<SubscriptionRecord>> {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let row: Option<SubscriptionRow> = sqlx::query_as(concat!(
                    "SELECT stripe_subscription_id, stripe_customer_id, user_id, plan, status, price_id, quantity, current_period_start, current_period_end, cancel_at_period_end, past_due, grace_until, synced_version, payment_version, created_at, updated_at FROM subscriptions",
                    " WHERE stripe_subscription_id = $1"
                ))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some(row) = row {
                    out.push(row.try_into()?);
                }
            }
            Ok(out)
        }

        /// Marks a plan sync pending for `user`, keeping the time of the first unconfirmed
        /// change; a new token, so that a sync that read the previous one cannot remove it.
        async fn mark_plan_sync(
            conn: &mut $conn,
            user: Uuid,
            event_id: &str,
            now: DateTime<Utc>,
        ) -> Result<PendingPlanSync> {
            let row: PlanSyncRow = sqlx::query_as(
                "INSERT INTO plan_sync_pending (user_id, event_id, token, pending_since) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id) DO UPDATE SET event_id = excluded.event_id, token = excluded.token \
                 RETURNING user_id, event_id, token, pending_since",
            )
            .bind(user)
            .bind(event_id)
            .bind(Uuid::new_v4())
            .bind(Time(now))
            .fetch_one(&mut *conn)
            .await?;
            Ok(row.into())
        }

        fn created_of(event: &NewEvent<'_>) -> DateTime<Utc> {
            from_unix(event.envelope.created).unwrap_or(DateTime::UNIX_EPOCH)
        }

        impl BillingStore for $store {
            async fn commit_event(
                &self,
                event: &NewEvent<'_>,
                effects: &[Effect],
            ) -> Result<Commit> {
                let mut tx = self.begin().await?;
                let claimed: Option<String> = sqlx::query_scalar(
                    "INSERT INTO stripe_events (id, type, created, api_version, received_at, processed_at, status, attempts, error, payload) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6, 1, $7, $8) \
                     ON CONFLICT (id) DO UPDATE SET status = excluded.status, processed_at = excluded.processed_at, \
                     error = excluded.error, attempts = stripe_events.attempts + 1 \
                     WHERE stripe_events.status = 'failed' RETURNING id",
                )
                .bind(&event.envelope.id)
                .bind(&event.envelope.event_type)
                .bind(Time(created_of(event)))
                .bind(&event.envelope.api_version)
                .bind(Time(event.now))
                .bind(event.status.as_str())
                .bind(event.error)
                .bind(event.payload)
                .fetch_optional(&mut *tx)
                .await?;
                if claimed.is_none() {
                    return Ok(Commit::Duplicate);
                }
                let mut touched = Vec::new();
                for effect in effects {
                    apply(&mut tx, effect, event.now, &mut touched).await?;
                }
                touched.sort();
                touched.dedup();
                let subscriptions = subscriptions_where(&mut tx, &touched).await?;
                let mut users: Vec<Uuid> = subscriptions.iter().filter_map(|s| s.user_id).collect();
                users.sort();
                users.dedup();
                let mut plan_syncs = Vec::with_capacity(users.len());
                for user in users {
                    plan_syncs.push(mark_plan_sync(&mut tx, user, &event.envelope.id, event.now).await?);
                }
                tx.commit().await?;
                Ok(Commit::Applied {
                    subscriptions,
                    plan_syncs,
                })
            }

            async fn fail_event(&self, event: &NewEvent<'_>) -> Result<()> {
                sqlx::query(
                    "INSERT INTO stripe_events (id, type, created, api_version, received_at, processed_at, status, attempts, error, payload) \
                     VALUES ($1, $2, $3, $4, $5, NULL, 'failed', 1, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET status = 'failed', error = excluded.error, \
                     attempts = CASE WHEN stripe_events.status = 'failed' THEN stripe_events.attempts + 1 ELSE stripe_events.attempts END",
                )
                .bind(&event.envelope.id)
                .bind(&event.envelope.event_type)
                .bind(Time(created_of(event)))
                .bind(&event.envelope.api_version)
                .bind(Time(event.now))
                .bind(event.error)
                .bind(event.payload)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn plan_syncs_of_event(&self, event_id: &str) -> Result<Vec<PendingPlanSync>> {
                let rows: Vec<PlanSyncRow> = sqlx::query_as(
                    "SELECT user_id, event_id, token, pending_since FROM plan_sync_pending \
                     WHERE event_id = $1 ORDER BY user_id",
                )
                .bind(event_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn clear_plan_sync(&self, user: Uuid, token: Uuid) -> Result<bool> {
                let done = sqlx::query(
                    "DELETE FROM plan_sync_pending WHERE user_id = $1 AND token = $2",
                )
                .bind(user)
                .bind(token)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn grace_to_enforce(&self, now: DateTime<Utc>) -> Result<Vec<SubscriptionRecord>> {
                let rows: Vec<SubscriptionRow> = sqlx::query_as(concat!(
                    "SELECT stripe_subscription_id, stripe_customer_id, user_id, plan, status, price_id, quantity, current_period_start, current_period_end, cancel_at_period_end, past_due, grace_until, synced_version, payment_version, created_at, updated_at FROM subscriptions",
                    " WHERE past_due AND grace_until <= $1",
                    " AND (grace_enforced_until IS NULL OR grace_enforced_until <> grace_until)",
                    " ORDER BY stripe_subscription_id"
                ))
                .bind(Time(now))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn mark_grace_enforced(&self, subscription: &str, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "UPDATE subscriptions SET grace_enforced_until = grace_until \
                     WHERE stripe_subscription_id = $1 AND past_due AND grace_until <= $2",
                )
                .bind(subscription)
                .bind(Time(now))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn migrate(&self) -> Result<()> {
                self.migrate_inner().await
            }

            async fn event(&self, id: &str) -> Result<Option<LedgerEntry>> {
                let row: Option<EventRow> = sqlx::query_as(
                    "SELECT id, type, created, api_version, received_at, processed_at, status, attempts, error, payload \
                     FROM stripe_events WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>> {
                let mut conn = self.pool.acquire().await?;
                Ok(subscriptions_where(&mut conn, &[id.to_owned()]).await?.pop())
            }

            async fn subscriptions_of_user(&self, user: Uuid) -> Result<Vec<SubscriptionRecord>> {
                let rows: Vec<SubscriptionRow> = sqlx::query_as(concat!(
                    "SELECT stripe_subscription_id, stripe_customer_id, user_id, plan, status, price_id, quantity, current_period_start, current_period_end, cancel_at_period_end, past_due, grace_until, synced_version, payment_version, created_at, updated_at FROM subscriptions",
                    " WHERE user_id = $1 ORDER BY created_at DESC, stripe_subscription_id DESC"
                ))
                .bind(user)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn pending_plan_syncs(
                &self,
                before: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<PendingPlanSync>> {
                let rows: Vec<PlanSyncRow> = sqlx::query_as(
                    "SELECT user_id, event_id, token, pending_since FROM plan_sync_pending \
                     WHERE pending_since <= $1 ORDER BY pending_since, user_id LIMIT $2",
                )
                .bind(Time(before))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn grace_expired(&self, now: DateTime<Utc>) -> Result<Vec<SubscriptionRecord>> {
                let rows: Vec<SubscriptionRow> = sqlx::query_as(concat!(
                    "SELECT stripe_subscription_id, stripe_customer_id, user_id, plan, status, price_id, quantity, current_period_start, current_period_end, cancel_at_period_end, past_due, grace_until, synced_version, payment_version, created_at, updated_at FROM subscriptions",
                    " WHERE past_due AND grace_until <= $1 ORDER BY stripe_subscription_id"
                ))
                .bind(Time(now))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn invoice(&self, id: &str) -> Result<Option<InvoiceRecord>> {
                let row: Option<InvoiceRow> = sqlx::query_as(
                    "SELECT stripe_invoice_id, stripe_customer_id, stripe_subscription_id, status, amount_due, amount_paid, currency, hosted_invoice_url, version \
                     FROM invoices WHERE stripe_invoice_id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn link_customer(
                &self,
                customer: &str,
                user: Uuid,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                link(&mut tx, customer, user, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn customer_of_user(&self, user: Uuid) -> Result<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT stripe_customer_id FROM stripe_customers WHERE user_id = $1 \
                     ORDER BY linked_at DESC, stripe_customer_id DESC LIMIT 1",
                )
                .bind(user)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn user_of_customer(&self, customer: &str) -> Result<Option<Uuid>> {
                let mut conn = self.pool.acquire().await?;
                linked_user(&mut conn, customer).await
            }
        }
    };
}

pub(crate) use sql_store;
