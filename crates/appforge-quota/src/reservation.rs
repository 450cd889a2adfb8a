use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::plan::PlanId;
use crate::resource::Resource;
use crate::status::QuotaStatus;

/// The id of a reservation: a UUID, so that a worker in another process can settle it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReservationId(Uuid);

impl ReservationId {
    /// A new random id.
    #[must_use]
    pub fn new() -> Self {
        // A thread-local generator rather than the operating system's for every id: reserving
        // is a hot path.
        Self(uuid::Builder::from_random_bytes(rand::random()).into_uuid())
    }

    /// A new random id for a reservation of `user`: one of its random bytes is replaced by
    /// the user's [`route`], so that a store can find the user's data from the id alone.
    pub(crate) fn for_user(user: Uuid) -> Self {
        let mut bytes: [u8; 16] = rand::random();
        bytes[ROUTE_BYTE] = route(user);
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// The route byte of the id (the user's [`route`] when the id was made by
    /// [`for_user`](Self::for_user); any value otherwise).
    pub(crate) fn route(&self) -> u8 {
        self.0.as_bytes()[ROUTE_BYTE]
    }

    /// The id of an existing reservation.
    #[must_use]
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The id as a UUID.
    #[must_use]
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

/// Which byte of an id carries the route (not one of the UUID's version or variant bytes).
const ROUTE_BYTE: usize = 15;

/// A byte spread evenly over users, derived from the user id alone.
pub(crate) fn route(user: Uuid) -> u8 {
    let (hi, lo) = user.as_u64_pair();
    // The final mix of SplitMix64: every input bit moves the top byte.
    let mut z = hi ^ lo.rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z >> 56).to_le_bytes()[0]
}

impl Default for ReservationId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ReservationId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl From<Uuid> for ReservationId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReservationState {
    /// Holding its cost against the user's windows, waiting for commit or refund.
    Pending,
    /// Used: the cost stays counted and the tokens were added.
    Committed,
    /// Given back: the cost was released.
    Refunded,
    /// Neither committed nor refunded before its deadline: the cost was released.
    Expired,
}

impl ReservationState {
    /// The state's name as stored: `pending`, `committed`, `refunded`, `expired`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::Refunded => "refunded",
            Self::Expired => "expired",
        }
    }

    #[allow(dead_code)] // read by the SQL stores
    pub(crate) fn parse(s: &str) -> crate::Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "committed" => Self::Committed,
            "refunded" => Self::Refunded,
            "expired" => Self::Expired,
            other => {
                return Err(crate::Error::Corrupt(format!(
                    "unknown reservation state {other:?}"
                )));
            }
        })
    }
}

impl fmt::Display for ReservationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quota held for one piece of work until it is committed or refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Reservation {
    /// The id to commit or refund with.
    pub id: ReservationId,
    /// The user it was taken for.
    pub user: Uuid,
    /// What it holds.
    pub resource: Resource,
    /// How many of `resource` it holds (generations, chat messages).
    pub cost: u32,
    /// The user's plan when it was taken.
    pub plan: PlanId,
    /// The plan's queue priority (larger runs first).
    pub priority: i16,
    /// When it is released unless committed or refunded first.
    pub expires_at: DateTime<Utc>,
}

/// A pending reservation held by a piece of work (see [`Quota::hold`](crate::Quota::hold)):
/// it does not expire, so the host settles it when the work ends, or releases it when the work
/// no longer exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HeldReservation {
    /// The reservation.
    pub id: ReservationId,
    /// Its user.
    pub user: Uuid,
    /// The work holding it (for the server, a job id).
    pub holder: Uuid,
    /// What it holds.
    pub resource: Resource,
    /// How many.
    pub cost: u32,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
}

impl HeldReservation {
    /// A held reservation as a store lists it: `cost` of `resource` for `user`, taken at
    /// `created_at` and held by `holder`.
    #[must_use]
    pub fn new(
        id: ReservationId,
        user: Uuid,
        holder: Uuid,
        resource: Resource,
        cost: u32,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            user,
            holder,
            resource,
            cost,
            created_at,
        }
    }
}

/// The expiry a held reservation carries: far enough that it never comes.
pub(crate) fn held_until() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(253_402_214_400_000).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The answer to [`Quota::reserve`](crate::Quota::reserve).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
// A denial is the rare answer and callers match on its status by value: not boxed.
#[allow(clippy::large_enum_variant)]
pub enum Admission {
    /// The work may go ahead; commit or refund the reservation when it ends.
    Granted(Reservation),
    /// A limit refused it; the status says which, and when to retry.
    Denied(QuotaStatus),
}

impl Admission {
    /// The reservation, if granted.
    #[must_use]
    pub fn reservation(&self) -> Option<&Reservation> {
        match self {
            Self::Granted(r) => Some(r),
            Self::Denied(_) => None,
        }
    }

    /// Whether it was granted.
    #[must_use]
    pub fn is_granted(&self) -> bool {
        matches!(self, Self::Granted(_))
    }
}

/// What a commit or refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// This call settled the reservation.
    Settled,
    /// It was already settled this way: nothing changed.
    AlreadyDone,
    /// (Refund only.) It had already expired and been released: nothing changed.
    AlreadyReleased,
}
