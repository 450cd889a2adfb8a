//! The `modify` pipeline: a change set for the current app.

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Pipelines;
use super::progress::Progress;
use super::stream::{add_usage, stream_round, with_prior_usage};
use crate::ChangeSet;
use crate::api::{StopReason, Usage};
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
    /// Asks for a change set that makes `request.request` to `request.app`, and checks that it
    /// applies. A reply that is not a valid change set, or does not apply (a missing or
    /// ambiguous anchor), is sent back with the error for a corrected one, up to the repair
    /// rounds (default 1). Text deltas are reported as [`Progress::TextDelta`].
    ///
    /// # Errors
    ///
    /// [`Error::ChangeSet`] (with the raw text) when the last reply is not a valid change set,
    /// also when it stopped at `max_tokens`; [`Error::Apply`] when it does not apply to
    /// `request.app`; [`Error::Refused`], [`Error::Cancelled`], or the provider's error.
    pub async fn modify(
        &self,
        request: &ModifyRequest,
        mut progress: impl FnMut(Progress) + Send,
        cancel: &CancellationToken,
    ) -> Result<Modification> {
        let mut prompt = RenderedPrompt::modify(request, &self.prompt_settings_in_effect());
        let structured = self.structured_outputs_in_effect();
        let mut usage = Usage::default();
        let mut round_number = 0;
        loop {
            progress(Progress::RoundStarted {
                round: round_number,
            });
            let round = stream_round(
                self.provider.as_ref(),
                "modify",
                self.structured_request::<ChangeSet>(&prompt, structured),
                cancel,
                |text| {
                    progress(Progress::TextDelta {
                        text: text.to_owned(),
                    });
                },
            )
            .await
            .map_err(|e| with_prior_usage(e, &usage))?;
            add_usage(&mut usage, &round.usage);
            progress(Progress::Usage { usage });
            let checked = ChangeSet::from_model_output(&round.text)
                .map_err(Error::from)
                .map_err(|err| match err {
                    Error::ChangeSet(mut e) if round.stop_reason == Some(StopReason::MaxTokens) => {
                        e.reason = format!("the reply stopped at max_tokens: {}", e.reason);
                        Error::ChangeSet(e)
                    }
                    other => other,
                })
                .and_then(|set| set.apply(&request.app).map(|_| set).map_err(Error::from));
            match checked {
                Ok(change_set) => return Ok(Modification { change_set, usage }),
                Err(err @ (Error::ChangeSet(_) | Error::Apply(_)))
                    if round_number < self.repair_rounds =>
                {
                    prompt = prompt.repair(&round.text, &err.to_string());
                    round_number += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}
