//! The `chat` pipeline: a reply in plan or act mode.

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Pipelines;
use super::progress::Progress;
use super::stream::stream_round;
use crate::api::{StopReason, Usage};
use crate::error::Result;
use crate::pipeline::ParseError;
use crate::prompt::{ChatRequest, RenderedPrompt};

/// The result of the `chat` pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatReply {
    /// The reply.
    pub text: String,
    /// Why the model stopped (`max_tokens` means the reply was cut).
    pub stop_reason: Option<StopReason>,
    /// Tokens used.
    pub usage: Usage,
}

impl Pipelines {
    /// Answers a chat message in plan or act mode, streaming [`Progress::TextDelta`]s.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`](crate::Error::Parse) when the reply is empty,
    /// [`Error::Refused`](crate::Error::Refused), [`Error::Cancelled`](crate::Error::Cancelled),
    /// or the provider's error.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        mut progress: impl FnMut(Progress) + Send,
        cancel: &CancellationToken,
    ) -> Result<ChatReply> {
        let prompt = RenderedPrompt::chat(request, &self.prompt_settings_in_effect());
        progress(Progress::RoundStarted { round: 0 });
        let round = stream_round(
            self.provider.as_ref(),
            "chat",
            self.request(&prompt),
            cancel,
            |text| {
                progress(Progress::TextDelta {
                    text: text.to_owned(),
                });
            },
        )
        .await?;
        progress(Progress::Usage { usage: round.usage });
        if round.text.trim().is_empty() {
            return Err(ParseError {
                pipeline: "chat",
                reason: "the reply is empty".to_owned(),
                raw: round.text,
            }
            .into());
        }
        Ok(ChatReply {
            text: round.text,
            stop_reason: round.stop_reason,
            usage: round.usage,
        })
    }
}
