//! Chat about an app: one message's reply streamed as it is written, paid for like a
//! generation. A chat message is reserved against the space's daily count before the model is
//! called, and the reservation is settled by [`ChatEnd::charged`] when the call ends: on a
//! task of the service's own, so a client that goes away mid-reply stops the model call and
//! the message is still charged with what it spent.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use appforge_apps::AppStore;
use appforge_core::Owner;
use appforge_jobs::JobStore;
use appforge_llm::{ChatRequest, Progress, StopReason, Usage};
use appforge_quota::{Admission, PlanId, Resource, UsageStore};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use super::{GenerationService, SubmitError};
use crate::settlement::{ChatEnd, settle_chat};

/// One chat message to answer, in the sender's personal space or in an org's.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    request: ChatRequest,
    org: Option<Uuid>,
}

impl ChatMessage {
    /// The message (with its history, the app it is about and its images).
    #[must_use]
    pub fn new(request: ChatRequest) -> Self {
        Self { request, org: None }
    }

    /// Charges the message to `org`'s pooled quota (the host checked the sender may chat
    /// there).
    #[must_use]
    pub fn in_org(mut self, org: Uuid) -> Self {
        self.org = Some(org);
        self
    }
}

/// A piece of a reply, in order: text as it is written, then exactly one of `Done` or
/// `Failed` (none when the reply was stopped).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChatChunk {
    /// Text the model wrote.
    Text(String),
    /// The reply is complete.
    Done {
        /// The tokens it used.
        usage: Usage,
        /// Why the model stopped.
        stop_reason: Option<StopReason>,
    },
    /// The reply ended without completing: a refusal (charged) or a failure (not charged).
    Failed {
        /// How it ended.
        end: ChatEnd,
        /// What to tell the user.
        message: &'static str,
    },
}

/// How a chat message ended, for the host's records ([`on_chat_end`]).
///
/// [`on_chat_end`]: super::GenerationServiceBuilder::on_chat_end
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChatEnded {
    /// The sender.
    pub user: Uuid,
    /// The space it was charged to.
    pub owner: Owner,
    /// The plan it was admitted on.
    pub plan: PlanId,
    /// The model that answered.
    pub model: String,
    /// How it ended.
    pub end: ChatEnd,
    /// Whether it counted against the quota.
    pub charged: bool,
    /// The tokens it spent.
    pub usage: Usage,
}

/// A reply being written: a stream of [`ChatChunk`]s. Dropping it stops the model call; the
/// message is settled all the same.
#[derive(Debug)]
pub struct ChatReply {
    /// The plan the message was admitted on.
    pub plan: PlanId,
    chunks: mpsc::UnboundedReceiver<ChatChunk>,
    _stop: DropGuard,
}

impl Stream for ChatReply {
    type Item = ChatChunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatChunk>> {
        self.chunks.poll_recv(cx)
    }
}

impl<J, U, A> GenerationService<J, U, A>
where
    J: JobStore,
    U: UsageStore + 'static,
    A: AppStore + Clone + 'static,
{
    /// Answers a chat message from `user`: reserves one chat message of the space's quota,
    /// then streams the reply on the plan's pipelines. The reservation is committed with the
    /// tokens when the message counts ([`ChatEnd::charged`]) and refunded otherwise.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Denied`] when the day's chat messages are spent; the quota's error.
    pub async fn chat(&self, user: Uuid, message: ChatMessage) -> Result<ChatReply, SubmitError> {
        let owner = Owner::of(user, message.org);
        let reservation = match self
            .quota()
            .reserve_for(owner.id(), Resource::ChatMessage, 1)
            .await?
        {
            Admission::Granted(reservation) => reservation,
            Admission::Denied(status) => return Err(SubmitError::Denied(Box::new(status))),
        };
        let plan = self
            .quota()
            .catalogue()
            .get(&reservation.plan)
            .cloned()
            .unwrap_or_else(|| self.quota().catalogue().default_plan().clone());
        let pipelines = self.pipelines_for(&plan);
        let (tx, chunks) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let quota = self.quota().clone();
        let hooks = self.inner.chat_hooks.clone();
        let plan_id = reservation.plan.clone();
        let request = message.request;
        self.spawn_settled(async move {
            let streamed = Arc::new(AtomicBool::new(false));
            let reported = Arc::new(Mutex::new(Usage::default()));
            let deltas = tx.clone();
            let (seen, last_usage) = (Arc::clone(&streamed), Arc::clone(&reported));
            let report = move |progress| match progress {
                Progress::TextDelta { text } => {
                    seen.store(true, Ordering::Relaxed);
                    let _ = deltas.send(ChatChunk::Text(text));
                }
                Progress::Usage { usage } => {
                    *last_usage.lock().unwrap_or_else(PoisonError::into_inner) = usage;
                }
                _ => {}
            };
            let result = pipelines.chat(&request, report, &token).await;
            let reported = *reported.lock().unwrap_or_else(PoisonError::into_inner);
            let (end, usage, last) = match result {
                Ok(reply) => (
                    ChatEnd::Replied,
                    reply.usage,
                    Some(ChatChunk::Done {
                        usage: reply.usage,
                        stop_reason: reply.stop_reason,
                    }),
                ),
                Err(appforge_llm::Error::Cancelled { usage, .. }) => {
                    (ChatEnd::Stopped, usage, None)
                }
                Err(error @ appforge_llm::Error::Refused { .. }) => {
                    tracing::info!(%error, "chat refused");
                    (
                        ChatEnd::Refused,
                        reported,
                        Some(ChatChunk::Failed {
                            end: ChatEnd::Refused,
                            message: "the model declined to answer this message",
                        }),
                    )
                }
                Err(error) => {
                    tracing::warn!(%error, "chat failed");
                    let usage = error.partial_message().map_or(reported, |m| m.usage);
                    (
                        ChatEnd::Failed,
                        usage,
                        Some(ChatChunk::Failed {
                            end: ChatEnd::Failed,
                            message: "the reply failed; this message does not count against your plan",
                        }),
                    )
                }
            };
            if let Some(last) = last {
                let _ = tx.send(last);
            }
            let tokens = usage.input_tokens.saturating_add(usage.output_tokens);
            let spent = streamed.load(Ordering::Relaxed) || tokens > 0;
            let charged = end.charged(spent);
            if let Err(error) = settle_chat(&quota, reservation.id, charged, tokens).await {
                tracing::warn!(reservation = %reservation.id, %error, "settling a chat message failed");
            }
            let ended = ChatEnded {
                user,
                owner,
                plan: plan_id,
                model: pipelines.model_name().to_owned(),
                end,
                charged,
                usage,
            };
            for hook in hooks.iter() {
                hook(&ended);
            }
        });
        Ok(ChatReply {
            plan: reservation.plan,
            chunks,
            _stop: cancel.drop_guard(),
        })
    }
}
