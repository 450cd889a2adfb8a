use std::fmt;

use serde::{Deserialize, Serialize};

/// What a reservation holds: generations or chat messages.
///
/// Each resource has its own counters and limits: generations count per day
/// ([`Plan::daily_generations`](crate::Plan::daily_generations)) and per month
/// ([`Plan::monthly_generations`](crate::Plan::monthly_generations)), chat messages per day
/// ([`Plan::daily_chat_messages`](crate::Plan::daily_chat_messages)). The monthly token limit
/// counts the tokens of both.
///
/// ```
/// use appforge_quota::{Admission, MemoryUsageStore, Quota, Resource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_quota::Result<()> {
/// let quota = Quota::new(MemoryUsageStore::new());
/// let user = uuid::Uuid::new_v4();
/// let Admission::Granted(chat) = quota.reserve_for(user, Resource::ChatMessage, 1).await? else {
///     panic!("a Free user has 20 chat messages a day");
/// };
/// quota.commit(chat.id, 300).await?;
/// let status = quota.status(user).await?;
/// assert_eq!((status.chat.used, status.daily.used, status.tokens.used), (1, 0, 300));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Resource {
    /// Generation jobs (a whole app, a modification, a phase plan).
    #[default]
    Generation,
    /// Chat messages.
    ChatMessage,
}

impl Resource {
    /// The name as stored: `generation`, `chat_message`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Generation => "generation",
            Self::ChatMessage => "chat_message",
        }
    }

    #[allow(dead_code)] // read by the SQL stores
    pub(crate) fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "generation" => Ok(Self::Generation),
            "chat_message" => Ok(Self::ChatMessage),
            other => Err(crate::Error::Corrupt(format!(
                "unknown reservation resource {other:?}"
            ))),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
