//! Plan-aware quotas: usage windows, atomic reservations and burst limits.
//!
//! A [`Quota`] decides whether a user may start a generation or send a chat message.
//! [`Quota::reserve`] holds the cost against the user's plan (daily and monthly generations,
//! monthly tokens, a burst rate) in one atomic step, and [`Quota::reserve_for`] does the same
//! for another [`Resource`] (chat messages, counted per day apart from generations); the work
//! then [commits](Quota::commit) the reservation with the tokens it used, or
//! [refunds](Quota::refund) it when it failed (with
//! [the tokens it spent](Quota::refund_with_tokens) when the model ran). A reservation left
//! pending (a crashed worker) is released after a timeout, unless the work that pays with it
//! [holds](Quota::hold) it: then it lives as long as that work. Windows reset lazily, exactly
//! once, in the same step as the next reservation; no cron job is needed.
//!
//! A [`Plan`] also carries what one request may send and ask back ([`RequestLimits`]: the
//! sizes of the context, the output tokens of a model call) and how many of a user's jobs may
//! run at once; the host enforces those.
//!
//! ```
//! use appforge_quota::{Admission, LimitKind, MemoryUsageStore, Quota};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_quota::Result<()> {
//! let quota = Quota::new(MemoryUsageStore::new());
//! let user = uuid::Uuid::new_v4();
//!
//! // A Free user has 5 generations a day.
//! for _ in 0..5 {
//!     let Admission::Granted(reservation) = quota.reserve(user, 1).await? else {
//!         panic!("within the limit");
//!     };
//!     // ... generate, then record the tokens used:
//!     quota.commit(reservation.id, 1_200).await?;
//! }
//! match quota.reserve(user, 1).await? {
//!     Admission::Denied(status) => {
//!         assert_eq!(status.denied_by, Some(LimitKind::Daily));
//!         assert_eq!(status.daily.remaining, Some(0));
//!         assert!(status.retry_after.is_some()); // until the next UTC midnight
//!     }
//!     Admission::Granted(_) => panic!("the sixth generation of the day is refused"),
//! }
//! assert_eq!(quota.status(user).await?.tokens.used, 6_000);
//! # Ok(()) }
//! ```
//!
//! # Settling reservations
//!
//! [`Quota::commit`] and [`Quota::refund`] take a [`ReservationId`] (a UUID, serializable) so
//! that a worker in another process can settle what an API node reserved. Both are
//! idempotent: settling the same way twice answers [`Settlement::AlreadyDone`]. Settling the
//! other way is an error, [`Error::AlreadySettled`]: refunding a committed reservation or
//! committing a refunded one. A reservation still pending after the reservation timeout
//! (default 30 minutes) is released: lazily, when the user's next reservation needs the room
//! or their status is read, or by [`Quota::reset_expired`]; committing it afterwards is [`Error::AlreadySettled`] with state
//! `expired`, refunding it answers [`Settlement::AlreadyReleased`].
//!
//! Work that may wait longer than the timeout (a job in a queue) [holds](Quota::hold) its
//! reservation as soon as it exists: a held reservation never expires, so the job cannot run
//! free after a long wait, and [`Quota::held`] lists what is held so that the host can release
//! what belongs to work that no longer exists. An attempt that is retried records its tokens
//! with [`Quota::record_tokens`]; the reservation stays pending.
//!
//! # Windows
//!
//! Days are UTC days unless [`Windows::with_offset`] says otherwise; months are calendar
//! months, or the user's billing period once the billing crate calls
//! [`Quota::set_billing_period`]. A counter resets when a request arrives after its window
//! ended, in the same atomic step as that request, and only once. Time comes from the
//! [`SharedClock`](appforge_core::SharedClock) given to [`QuotaBuilder::clock`], also on
//! PostgreSQL (as a bound parameter), so tests move it.
//!
//! # Stores
//!
//! [`MemoryUsageStore`] (one lock per shard of users), [`SqliteUsageStore`] (one `BEGIN IMMEDIATE`
//! transaction per call) and `PgUsageStore` (one conditional `UPDATE ... RETURNING` per
//! reservation, safe across any number of processes; calls that arrive together share one
//! statement), or [`AnyUsageStore::connect`] with a
//! URL chosen at run time. The SQL stores own the tables `usage_quotas`,
//! `quota_reservations` and `pricing_plans` (migration table `_appforge_quota_migrations`);
//! [`Quota::load_plans`] and [`Quota::save_plans`] move the catalogue through
//! `pricing_plans`.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | [`SqliteUsageStore`], the embedded store |
//! | `postgres` | no | `PgUsageStore`, for many processes on one database |
//! | `axum` | no | the `Reserved` extractor and `QuotaExceeded`: a denial as `429` with `Retry-After` |
//! | `testing` | no | `appforge_quota::testing`: the conformance suite every [`UsageStore`] passes, for a store outside this crate |
//!
//! Without `sqlite` and `postgres` the crate builds the memory store alone, without sqlx.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod burst;
mod catalogue;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod plan;
mod plan_sync;
mod quota;
mod rate;
mod reservation;
mod resource;
mod status;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod usage;
mod window;

pub use catalogue::PlanCatalogue;
pub use error::{Error, Result};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{QuotaCost, QuotaExceeded, QuotaRejection, QuotaUser, Reserved};
pub use plan::{Burst, Plan, PlanId, RequestLimits};
pub use quota::{DEFAULT_RESERVATION_TIMEOUT, Quota, QuotaBuilder};
pub use rate::{RequestRateLimiter, RequestRates};
pub use reservation::{
    Admission, HeldReservation, Reservation, ReservationId, ReservationState, Settlement,
};
pub use resource::Resource;
pub use status::{LimitKind, QuotaStatus, WindowStatus};
pub use store::any::AnyUsageStore;
pub use store::memory::MemoryUsageStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::{DEFAULT_BATCH_STATEMENTS, PgUsageStore};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::SqliteUsageStore;
pub use store::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
pub use usage::Usage;
pub use window::{BillingPeriod, Windows};
