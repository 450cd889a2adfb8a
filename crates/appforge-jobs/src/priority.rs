use std::fmt;

use serde::{Deserialize, Serialize};

/// A job's queue priority: larger runs first; FIFO within one priority.
///
/// ```
/// use appforge_jobs::Priority;
/// assert!(Priority::TEAM > Priority::PRO && Priority::PRO > Priority::FREE);
/// assert_eq!(Priority::from(10), Priority::PRO);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Priority(pub i16);

impl Priority {
    /// The Free plan's priority (0).
    pub const FREE: Self = Self(0);
    /// The Pro plan's priority (10).
    pub const PRO: Self = Self(10);
    /// The Team plan's priority (20).
    pub const TEAM: Self = Self(20);

    /// The raw value.
    #[must_use]
    pub const fn get(self) -> i16 {
        self.0
    }
}

impl From<i16> for Priority {
    fn from(value: i16) -> Self {
        Self(value)
    }
}

impl From<Priority> for i16 {
    fn from(value: Priority) -> Self {
        value.0
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
