//! Rendering each pipeline's request into a [`RenderedPrompt`].

use std::fmt::Write as _;

use super::context::render_files;
use super::request::{
    Attachment, ChatMode, ChatRequest, FullAppRequest, HistoryMessage, HistoryRole, ModifyRequest,
    PlanRequest,
};
use super::text;
use super::{PromptSettings, RenderedPrompt, SystemPart};

impl RenderedPrompt {
    /// The `full_app` prompt: a new app, a phase of a plan, or a rebuild of a current app.
    #[must_use]
    pub fn full_app(request: &FullAppRequest, settings: &PromptSettings) -> Self {
        let mut user = String::new();
        if let Some(phase) = &request.phase {
            user.push_str("<plan>\n");
            for p in &phase.plan.phases {
                let state = match p.number.cmp(&phase.number) {
                    std::cmp::Ordering::Less => "built",
                    std::cmp::Ordering::Equal => "build now",
                    std::cmp::Ordering::Greater => "later",
                };
                let _ = writeln!(
                    user,
                    "Phase {}: {} ({state})\n{}",
                    p.number, p.name, p.description
                );
                for feature in &p.features {
                    let _ = writeln!(user, "- {feature}");
                }
            }
            user.push_str("</plan>\n");
            let built: Vec<&String> = phase
                .plan
                .phases
                .iter()
                .filter(|p| p.number < phase.number)
                .flat_map(|p| &p.features)
                .collect();
            if !built.is_empty() {
                user.push_str("<built_features>\n");
                for feature in built {
                    let _ = writeln!(user, "- {feature}");
                }
                user.push_str("</built_features>\n");
            }
        }
        if let Some(files) = &request.current_app {
            render_files(files, budget(settings, &request.attachments), &mut user);
        }
        reference_line(&request.attachments, &mut user);
        let _ = writeln!(user, "<request>\n{}\n</request>", request.prompt.trim());
        let instruction = match (&request.phase, &request.current_app) {
            (Some(phase), _) => {
                let name = phase
                    .plan
                    .phase(phase.number)
                    .map_or("", |p| p.name.as_str());
                format!(
                    "Build phase {} ({name}) of this app on top of what is built. Write every file \
                     this phase creates or changes in full; files you leave out stay as they are. \
                     Use CHANGE_TYPE phase.",
                    phase.number
                )
            }
            (None, Some(_)) => {
                "Update the current app as requested. Write every file you create or \
                change in full; files you leave out stay as they are. Use CHANGE_TYPE update."
                    .to_owned()
            }
            (None, None) => "Build this app from scratch. Use CHANGE_TYPE new_app.".to_owned(),
        };
        user.push_str(&instruction);
        Self::build(
            text::FULL_APP_SYSTEM,
            None,
            &request.history,
            user,
            &request.attachments,
            settings,
        )
    }

    /// The `modify` prompt: the current app and the change to make, answered as JSON.
    #[must_use]
    pub fn modify(request: &ModifyRequest, settings: &PromptSettings) -> Self {
        let mut user = String::new();
        render_files(
            &request.app,
            budget(settings, &request.attachments),
            &mut user,
        );
        reference_line(&request.attachments, &mut user);
        let _ = write!(
            user,
            "<request>\n{}\n</request>\nAnswer with the change set JSON only.",
            request.request.trim()
        );
        Self::build(
            text::MODIFY_SYSTEM,
            None,
            &request.history,
            user,
            &request.attachments,
            settings,
        )
    }

    /// The `plan_phases` prompt.
    #[must_use]
    pub fn plan_phases(request: &PlanRequest, settings: &PromptSettings) -> Self {
        let mut user = String::new();
        reference_line(&request.attachments, &mut user);
        let _ = write!(
            user,
            "<idea>\n{}\n</idea>\nPlan the phases for this app.",
            request.prompt.trim()
        );
        Self::build(
            text::PLAN_SYSTEM,
            None,
            &request.history,
            user,
            &request.attachments,
            settings,
        )
    }

    /// The `plan_phases` prompt for a structured (JSON schema) reply: the same task, with the
    /// plan asked as JSON instead of `===PHASE:n===` sections.
    #[must_use]
    pub fn plan_phases_json(request: &PlanRequest, settings: &PromptSettings) -> Self {
        let mut user = String::new();
        reference_line(&request.attachments, &mut user);
        let _ = write!(
            user,
            "<idea>\n{}\n</idea>\nPlan the phases for this app.",
            request.prompt.trim()
        );
        Self::build(
            text::PLAN_JSON_SYSTEM,
            None,
            &request.history,
            user,
            &request.attachments,
            settings,
        )
    }

    /// The `chat` prompt, in plan or act mode. The mode text follows the cached part.
    #[must_use]
    pub fn chat(request: &ChatRequest, settings: &PromptSettings) -> Self {
        let mode = match request.mode {
            ChatMode::Plan => text::CHAT_PLAN_MODE,
            ChatMode::Act => text::CHAT_ACT_MODE,
        };
        let mut user = String::new();
        if let Some(files) = &request.current_app {
            render_files(files, budget(settings, &request.attachments), &mut user);
        }
        reference_line(&request.attachments, &mut user);
        user.push_str(request.message.trim());
        Self::build(
            text::CHAT_SYSTEM,
            Some(mode),
            &request.history,
            user,
            &request.attachments,
            settings,
        )
    }

    /// The prompt asking to continue a truncated generation: this prompt, then what was
    /// complete as the model's turn, then the request to go on after `done` files.
    #[must_use]
    pub fn continuation(&self, complete: &str, done: &[String]) -> Self {
        let mut next = self.clone();
        let complete = complete.trim_end();
        if !complete.is_empty() {
            next.messages.push(HistoryMessage::assistant(complete));
        }
        let mut ask = text::CONTINUE.to_owned();
        if done.is_empty() {
            ask.push('.');
        } else {
            let _ = write!(ask, ": {}.", done.join(", "));
        }
        next.messages.push(HistoryMessage::user(ask));
        next
    }

    /// The prompt asking to correct a reply: this prompt, then the reply as the model's turn,
    /// then the `problem` with it.
    #[must_use]
    pub fn repair(&self, reply: &str, problem: &str) -> Self {
        let mut next = self.clone();
        let reply = reply.trim_end();
        if !reply.is_empty() {
            next.messages.push(HistoryMessage::assistant(reply));
        }
        next.messages.push(HistoryMessage::user(format!(
            "{} {problem}\n{}",
            text::REPAIR_INTRO,
            text::REPAIR
        )));
        next
    }

    fn build(
        stable: &str,
        variable: Option<&str>,
        history: &[HistoryMessage],
        user: String,
        attachments: &[Attachment],
        settings: &PromptSettings,
    ) -> Self {
        let mut system = vec![SystemPart {
            text: stable.to_owned(),
            cache: true,
        }];
        if let Some(text) = variable {
            system.push(SystemPart {
                text: text.to_owned(),
                cache: false,
            });
        }
        let start = history.len().saturating_sub(settings.max_history);
        let mut messages: Vec<HistoryMessage> = history[start..]
            .iter()
            .filter(|m| !m.content.trim().is_empty())
            .skip_while(|m| m.role == HistoryRole::Assistant)
            .cloned()
            .collect();
        let mut request = HistoryMessage::user(user);
        request.images = attachments.to_vec();
        messages.push(request);
        Self { system, messages }
    }

    /// An estimate of the prompt's input tokens: four bytes of text a token, and each image
    /// width x height / 750 tokens, as the Messages API documents.
    #[must_use]
    pub fn estimated_input_tokens(&self) -> u64 {
        let text: usize = self.system.iter().map(|p| p.text.len()).sum::<usize>()
            + self.messages.iter().map(|m| m.content.len()).sum::<usize>();
        let images: u64 = self
            .messages
            .iter()
            .flat_map(|m| &m.images)
            .map(Attachment::estimated_tokens)
            .sum();
        u64::try_from(text / 4)
            .unwrap_or(u64::MAX)
            .saturating_add(images)
    }
}

/// The context budget for app files once the images are counted: each image takes its
/// tokens' worth of bytes (four a token) from it.
fn budget(settings: &PromptSettings, attachments: &[Attachment]) -> usize {
    let image_bytes = attachments
        .iter()
        .map(|a| a.estimated_tokens().saturating_mul(4))
        .fold(0u64, u64::saturating_add);
    settings
        .context_budget
        .saturating_sub(usize::try_from(image_bytes).unwrap_or(usize::MAX))
}

/// The line telling the model what the images before the text are.
fn reference_line(attachments: &[Attachment], out: &mut String) {
    match attachments.len() {
        0 => {}
        1 => out.push_str(text::REFERENCE_IMAGE),
        n => {
            let _ = write!(
                out,
                "{}",
                text::REFERENCE_IMAGES.replace("{n}", &n.to_string())
            );
        }
    }
}
