//! Plan-aware quotas: usage windows, atomic reservations and burst limits.
//!
//! A [`Quota`] decides whether a user may start a generation. [`Quota::reserve`] holds the
//! cost against the user's plan (daily and monthly generations, monthly tokens, a burst
//! rate) in one atomic step; the work then [commits](Quota::commit) the reservation with the
//! tokens it used, or [refunds](Quota::refund) it when it failed. A reservation left pending
//! (a crashed worker) is released after a timeout. Windows reset lazily, exactly once, in the
//! same step as the next reservation; no cron job is needed.
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
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | the embedded SQLite store |
//! | `postgres` | no | the PostgreSQL store, for many processes on one database |
//! | `axum` | no | axum support: a denial as `429` with `Retry-After` |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod burst;
mod catalogue;
mod error;
mod plan;
mod quota;
mod reservation;
mod status;
mod store;
mod usage;
mod window;

pub use catalogue::PlanCatalogue;
pub use error::{Error, Result};
pub use plan::{Burst, Plan, PlanId};
pub use quota::{DEFAULT_RESERVATION_TIMEOUT, Quota, QuotaBuilder};
pub use reservation::{Admission, Reservation, ReservationId, ReservationState, Settlement};
pub use status::{LimitKind, QuotaStatus, WindowStatus};
pub use store::any::AnyUsageStore;
pub use store::memory::MemoryUsageStore;
pub use store::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
pub use usage::Usage;
pub use window::{BillingPeriod, Windows};
