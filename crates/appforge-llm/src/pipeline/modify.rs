//! The `modify` pipeline: a change set for the current app.

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Pipelines;
use super::progress::Progress;
use super::stream::stream_round;
use crate::api::{StopReason, Usage};
use crate::changeset::ChangeSet;
use crate::error::{Error, Result};
use crate::prompt::{ModifyRequest, RenderedPrompt};

/// The result of the `modify` pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Modification {
    /// The changes; apply them with [`ChangeSet::apply`].
    pub change_set: ChangeSet,
    /// Tokens used.
    pub usage: Usage,
}

impl Pipelines {
    /// Asks for a change set that makes `request.request` to `request.app`. Text deltas are
    /// reported as [`Progress::TextDelta`].
    ///
    /// # Errors
    ///
    /// [`Error::ChangeSet`] (with the raw text) when the reply is not a valid change set,
    /// also when it stopped at `max_tokens`; [`Error::Refused`],
    /// [`Error::Cancelled`], or the provider's error.
    pub async fn modify(
        &self,
        request: &ModifyRequest,
        mut progress: impl FnMut(Progress) + Send,
        cancel: &CancellationToken,
    ) -> Result<Modification> {
        let prompt = RenderedPrompt::modify(request, &self.prompt);
        progress(Progress::RoundStarted { round: 0 });
        let round = stream_round(
            self.provider.as_ref(),
            "modify",
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
        let change_set = ChangeSet::from_model_output(&round.text).map_err(|err| match err {
            Error::ChangeSet(mut e) if round.stop_reason == Some(StopReason::MaxTokens) => {
                e.reason = format!("the reply stopped at max_tokens: {}", e.reason);
                Error::ChangeSet(e)
            }
            other => other,
        })?;
        Ok(Modification {
            change_set,
            usage: round.usage,
        })
    }
}
