//! The `full_app` pipeline: a whole app, continued when truncated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Pipelines;
use super::output_error::ParseError;
use super::progress::Progress;
use super::stream::{add_usage, stream_round, with_prior_usage};
use crate::api::Usage;
use crate::error::Result;
use crate::prompt::{FullAppRequest, RenderedPrompt};
use crate::protocol::{AppFile, ParsedGeneration, ProtocolEvent, ProtocolParser, Section, Warning};

/// The result of the `full_app` pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GeneratedApp {
    /// `===NAME===`.
    pub name: String,
    /// `===DESCRIPTION===` (empty when not written).
    pub description: String,
    /// `===APP_TYPE===` (`react` when not written).
    pub app_type: String,
    /// `===CHANGE_TYPE===` (`new_app`, `phase` or `update` from the request when not written).
    pub change_type: String,
    /// `===CHANGE_SUMMARY===` (empty when not written).
    pub change_summary: String,
    /// The app's files: the current app's, overlaid with those generated.
    pub files: Vec<AppFile>,
    /// Package -> version.
    pub dependencies: BTreeMap<String, String>,
    /// `===SETUP===`, if written.
    pub setup_instructions: Option<String>,
    /// Tokens used, summed over every round.
    pub usage: Usage,
    /// Duplicates, rejected paths, truncation.
    pub warnings: Vec<Warning>,
}

/// What all rounds produced together.
#[derive(Debug, Default)]
struct Merged {
    sections: BTreeMap<&'static str, String>,
    files: Vec<AppFile>,
    dependencies: BTreeMap<String, String>,
    has_dependencies: bool,
    /// Files cut short in any round, in order.
    partials: Vec<String>,
    ended: bool,
    warnings: Vec<Warning>,
}

impl Merged {
    fn absorb(&mut self, round: ParsedGeneration) {
        for section in Section::ALL {
            if let Some(value) = round.section(section) {
                self.sections.insert(section.marker(), value.to_owned());
            }
        }
        for file in round.files {
            match self.files.iter_mut().find(|f| f.path == file.path) {
                Some(existing) => existing.content = file.content,
                None => self.files.push(file),
            }
        }
        self.dependencies.extend(round.dependencies);
        self.has_dependencies |= round.has_dependencies;
        if let Some(file) = round.partial_file
            && !self.partials.contains(&file.path)
        {
            self.partials.push(file.path);
        }
        self.ended = round.ended;
        self.warnings.extend(round.warnings);
    }

    fn take(&mut self, section: Section) -> Option<String> {
        self.sections
            .remove(section.marker())
            .filter(|v| !v.is_empty())
    }
}

impl Pipelines {
    /// Generates a whole app (or a phase of one, or a rebuild of `current_app`).
    ///
    /// Truncated output (stopped at `max_tokens`, or ended without `===END===`) keeps its
    /// complete files and is continued from after the last one, up to the configured rounds;
    /// what is still missing then is listed in a [`Warning::Truncated`].
    ///
    /// # Errors
    ///
    /// [`Error::Parse`](crate::Error::Parse) (with the raw text) when there is no
    /// `===NAME===` or no file, [`Error::Refused`](crate::Error::Refused),
    /// [`Error::Cancelled`](crate::Error::Cancelled), or the provider's error.
    pub async fn full_app(
        &self,
        request: &FullAppRequest,
        mut progress: impl FnMut(Progress) + Send,
        cancel: &CancellationToken,
    ) -> Result<GeneratedApp> {
        let base = RenderedPrompt::full_app(request, &self.prompt_settings_in_effect());
        let mut prompt = base.clone();
        let mut merged = Merged::default();
        let mut complete = String::new();
        let mut raw = String::new();
        let mut usage = Usage::default();
        for round in 0..=self.continuation_rounds {
            progress(Progress::RoundStarted { round });
            let mut parser = ProtocolParser::new();
            let mut report = |event: ProtocolEvent<'_>| {
                if let Some(p) = Progress::from_event(event) {
                    progress(p);
                }
            };
            let outcome = stream_round(
                self.provider.as_ref(),
                "full_app",
                self.request(&prompt),
                cancel,
                |text| parser.feed(text, &mut report),
            )
            .await
            .map_err(|e| with_prior_usage(e, &usage))?;
            let parsed = parser.finish(&mut report);
            add_usage(&mut usage, &outcome.usage);
            progress(Progress::Usage { usage });
            complete.push_str(&outcome.text[..parsed.complete_len]);
            raw.push_str(&outcome.text);
            merged.absorb(parsed);
            if merged.ended || round == self.continuation_rounds {
                break;
            }
            let done: Vec<String> = merged.files.iter().map(|f| f.path.clone()).collect();
            prompt = base.continuation(&complete, &done);
        }
        if !merged.ended {
            let files = &merged.files;
            let mut missing: Vec<String> = merged
                .partials
                .iter()
                .filter(|p| !files.iter().any(|f| &f.path == *p))
                .cloned()
                .collect();
            if !merged.has_dependencies {
                missing.push(Section::Dependencies.to_string());
            }
            if !merged.sections.contains_key(Section::Setup.marker()) {
                missing.push(Section::Setup.to_string());
            }
            missing.push("===END===".to_owned());
            let warning = Warning::Truncated { missing };
            progress(Progress::Warning {
                warning: warning.clone(),
            });
            merged.warnings.push(warning);
        }
        let mut absent = Vec::new();
        if merged
            .sections
            .get(Section::Name.marker())
            .is_none_or(String::is_empty)
        {
            absent.push("no ===NAME=== section");
        }
        if merged.files.is_empty() {
            absent.push("no complete ===FILE:...=== block");
        }
        if !absent.is_empty() {
            return Err(ParseError {
                pipeline: "full_app",
                reason: absent.join(", "),
                raw,
            }
            .into());
        }
        let change_type = match (&request.phase, &request.current_app) {
            (Some(_), _) => "phase",
            (None, Some(_)) => "update",
            (None, None) => "new_app",
        };
        let mut files = request.current_app.clone().unwrap_or_default();
        for file in std::mem::take(&mut merged.files) {
            match files.iter_mut().find(|f| f.path == file.path) {
                Some(existing) => existing.content = file.content,
                None => files.push(file),
            }
        }
        Ok(GeneratedApp {
            name: merged.take(Section::Name).unwrap_or_default(),
            description: merged.take(Section::Description).unwrap_or_default(),
            app_type: merged
                .take(Section::AppType)
                .unwrap_or_else(|| "react".to_owned()),
            change_type: merged
                .take(Section::ChangeType)
                .unwrap_or_else(|| change_type.to_owned()),
            change_summary: merged.take(Section::ChangeSummary).unwrap_or_default(),
            files,
            setup_instructions: merged.take(Section::Setup),
            dependencies: merged.dependencies,
            usage,
            warnings: merged.warnings,
        })
    }
}
