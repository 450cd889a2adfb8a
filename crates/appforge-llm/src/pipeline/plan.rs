//! Phase plans: what `plan_phases` returns, and the `full_app` request for one phase.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Pipelines;
use super::output_error::ParseError;
use super::progress::Progress;
use super::stream::stream_round;
use crate::api::Usage;
use crate::prompt::{FullAppRequest, PhaseContext, PlanRequest, RenderedPrompt};
use crate::protocol::{AppFile, RawPhase, parse};
use appforge_files::json_candidates as candidates;

/// One build phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Phase {
    /// 1-based, consecutive.
    pub number: u32,
    /// A short name.
    pub name: String,
    /// What the user can do after it.
    #[serde(default)]
    pub description: String,
    /// The features it adds.
    #[serde(default)]
    pub features: Vec<String>,
}

/// An app split into build phases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PhasePlan {
    /// At least one phase, numbered from 1 without gaps.
    pub phases: Vec<Phase>,
}

impl PhasePlan {
    /// Reads a plan from `===PHASE:n===` sections, or else from JSON
    /// (`{"phases": [...]}` or a bare array, fences and prose tolerated).
    ///
    /// # Errors
    ///
    /// [`Error::Parse`](crate::Error::Parse), keeping the text, when there is no phase, the
    /// numbers do not run 1, 2, 3..., or a phase has no name.
    pub fn from_model_output(text: &str) -> crate::Result<Self> {
        let fail = |reason: String| ParseError {
            pipeline: "plan_phases",
            reason,
            raw: text.to_owned(),
        };
        let parsed = parse(text);
        let plan = if parsed.phases.is_empty() {
            candidates(text)
                .iter()
                .find_map(|c| {
                    serde_json::from_str::<Self>(c)
                        .or_else(|_| {
                            serde_json::from_str::<Vec<Phase>>(c).map(|phases| Self { phases })
                        })
                        .ok()
                })
                .ok_or_else(|| fail("no ===PHASE:n=== section and no JSON plan".into()))?
        } else {
            Self {
                phases: parsed.phases.iter().map(phase_from_section).collect(),
            }
        };
        plan.validate().map_err(fail)?;
        Ok(plan)
    }

    fn validate(&self) -> Result<(), String> {
        if self.phases.is_empty() {
            return Err("the plan has no phase".into());
        }
        for (expected, phase) in (1..).zip(&self.phases) {
            if phase.number != expected {
                return Err(format!(
                    "phase numbers must run 1, 2, 3...; found {} where {expected} was expected",
                    phase.number
                ));
            }
            if phase.name.trim().is_empty() {
                return Err(format!("phase {expected} has no name"));
            }
        }
        Ok(())
    }

    /// The phase numbered `number`.
    #[must_use]
    pub fn phase(&self, number: u32) -> Option<&Phase> {
        self.phases.iter().find(|p| p.number == number)
    }

    /// The `full_app` request building phase `number` of this plan for the user's original
    /// `prompt`, on top of `app_so_far` (the files after the previous phases).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) when the plan has no such phase.
    pub fn full_app_request(
        &self,
        number: u32,
        prompt: &str,
        app_so_far: Option<&[AppFile]>,
    ) -> crate::Result<FullAppRequest> {
        if self.phase(number).is_none() {
            return Err(crate::Error::Config(format!(
                "phase {number} is not in the plan (1 to {})",
                self.phases.len()
            )));
        }
        Ok(FullAppRequest {
            prompt: prompt.to_owned(),
            history: Vec::new(),
            current_app: app_so_far
                .filter(|f| !f.is_empty())
                .map(<[AppFile]>::to_vec),
            phase: Some(PhaseContext {
                plan: self.clone(),
                number,
            }),
            attachments: Vec::new(),
        })
    }
}

/// The result of the `plan_phases` pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlannedPhases {
    /// The plan.
    pub plan: PhasePlan,
    /// Tokens used.
    pub usage: Usage,
}

impl Pipelines {
    /// Splits an app idea into build phases, streaming [`Progress::TextDelta`]s. Build each
    /// phase with [`PhasePlan::full_app_request`] and [`Pipelines::full_app`].
    ///
    /// # Errors
    ///
    /// [`Error::Parse`](crate::Error::Parse) (with the raw text) when the reply is not a plan
    /// of consecutive phases, [`Error::Refused`](crate::Error::Refused),
    /// [`Error::Cancelled`](crate::Error::Cancelled), or the provider's error.
    pub async fn plan_phases(
        &self,
        request: &PlanRequest,
        mut progress: impl FnMut(Progress) + Send,
        cancel: &CancellationToken,
    ) -> crate::Result<PlannedPhases> {
        let structured = self.structured_outputs_in_effect();
        let settings = self.prompt_settings_in_effect();
        let prompt = if structured {
            RenderedPrompt::plan_phases_json(request, &settings)
        } else {
            RenderedPrompt::plan_phases(request, &settings)
        };
        progress(Progress::RoundStarted { round: 0 });
        let round = stream_round(
            self.provider.as_ref(),
            "plan_phases",
            self.structured_request::<PhasePlan>(&prompt, structured),
            cancel,
            |text| {
                progress(Progress::TextDelta {
                    text: text.to_owned(),
                });
            },
        )
        .await?;
        progress(Progress::Usage { usage: round.usage });
        Ok(PlannedPhases {
            plan: PhasePlan::from_model_output(&round.text)?,
            usage: round.usage,
        })
    }
}

/// Reads `Name:`, `Description:` and `Features:` lines (or a first line and bullets).
fn phase_from_section(raw: &RawPhase) -> Phase {
    let mut name = None;
    let mut description = Vec::new();
    let mut features = Vec::new();
    for line in raw.body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if let Some(bullet) = bullet(line) {
            features.push(bullet.to_owned());
        } else if lower.starts_with("name:") {
            name = Some(line[5..].trim().to_owned());
        } else if lower.starts_with("description:") {
            description.push(line[12..].trim().to_owned());
        } else if lower.starts_with("features:") {
            let rest = line[9..].trim();
            features.extend(
                rest.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned),
            );
        } else if name.is_none() {
            name = Some(line.trim_start_matches('#').trim().to_owned());
        } else {
            description.push(line.to_owned());
        }
    }
    Phase {
        number: raw.number,
        name: name.unwrap_or_default(),
        description: description.join(" "),
        features,
    }
}

fn bullet(line: &str) -> Option<&str> {
    if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
        return Some(rest.trim());
    }
    let digits = line.find(|c: char| !c.is_ascii_digit())?;
    (digits > 0)
        .then(|| {
            line[digits..]
                .strip_prefix(". ")
                .or_else(|| line[digits..].strip_prefix(") "))
        })
        .flatten()
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    const PLAN: &str = "===PHASE:1===\nName: Core habits\nDescription: Add habits\nand check them off.\nFeatures:\n- Add a habit\n- Check off today\n\
                        ===PHASE:2===\nStreaks\n1. Streak counter\n2) Calendar view\n===END===\n";

    #[test]
    fn reads_phase_sections() {
        let plan = PhasePlan::from_model_output(PLAN).unwrap();
        assert_eq!(plan.phases.len(), 2);
        assert_eq!(plan.phases[0].name, "Core habits");
        assert_eq!(plan.phases[0].description, "Add habits and check them off.");
        assert_eq!(plan.phases[0].features, ["Add a habit", "Check off today"]);
        assert_eq!(plan.phases[1].name, "Streaks");
        assert_eq!(plan.phases[1].features, ["Streak counter", "Calendar view"]);
    }

    #[test]
    fn reads_json_plans() {
        let json =
            "```json\n{\"phases\":[{\"number\":1,\"name\":\"A\",\"features\":[\"x\"]}]}\n```";
        assert_eq!(
            PhasePlan::from_model_output(json).unwrap().phases[0].features,
            ["x"]
        );
        let array = "Plan: [{\"number\":1,\"name\":\"A\"},{\"number\":2,\"name\":\"B\"}]";
        assert_eq!(PhasePlan::from_model_output(array).unwrap().phases.len(), 2);
    }

    #[test]
    fn rejects_gaps_empty_plans_and_prose() {
        for (text, reason) in [
            (
                "===PHASE:1===\nA\n===PHASE:3===\nB\n",
                "phase numbers must run 1, 2, 3...; found 3 where 2 was expected",
            ),
            (
                "===PHASE:2===\nA\n",
                "phase numbers must run 1, 2, 3...; found 2 where 1 was expected",
            ),
            ("{\"phases\": []}", "the plan has no phase"),
            (
                "I think you should start small.",
                "no ===PHASE:n=== section and no JSON plan",
            ),
            ("===PHASE:1===\n- only a bullet\n", "phase 1 has no name"),
        ] {
            let Err(Error::Parse(e)) = PhasePlan::from_model_output(text) else {
                panic!("{text} accepted");
            };
            assert_eq!(e.reason, reason);
            assert_eq!(e.raw, text);
            assert_eq!(e.pipeline, "plan_phases");
        }
    }

    #[test]
    fn builds_the_request_for_a_phase() {
        let plan = PhasePlan::from_model_output(PLAN).unwrap();
        let app = [AppFile::new("src/App.tsx", "x")];
        let request = plan
            .full_app_request(2, "habit tracker", Some(&app))
            .unwrap();
        assert_eq!(request.phase.as_ref().unwrap().number, 2);
        assert_eq!(request.current_app.as_deref(), Some(&app[..]));
        assert!(plan.full_app_request(3, "x", None).is_err());
        assert_eq!(
            plan.full_app_request(1, "x", Some(&[]))
                .unwrap()
                .current_app,
            None
        );
    }
}
