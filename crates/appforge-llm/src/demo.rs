//! The offline demo: recorded generations replayed without a network or an API key.
//!
//! [`offline_provider`] answers every pipeline from transcripts embedded in the binary: a
//! todo app, a habit tracker with streaks and a landing page for `full_app` (picked by the
//! prompt's keywords, the todo app by default), a dark-mode change set for `modify`, a habit
//! tracker plan for `plan_phases`, and a plan-mode answer for `chat`.
//!
//! ```
//! # futures::executor::block_on(async {
//! use appforge_llm::{FullAppRequest, Pipelines, demo};
//! use tokio_util::sync::CancellationToken;
//!
//! let pipelines = Pipelines::new(demo::offline_provider());
//! let request = FullAppRequest::new("A habit tracker with streaks");
//! let app = pipelines.full_app(&request, |_| {}, &CancellationToken::new()).await?;
//! assert_eq!(app.name, "Streaks Habit Tracker");
//! assert!(app.files.iter().any(|f| f.path == "src/lib/streaks.ts"));
//! # Ok::<_, appforge_llm::Error>(())
//! # }).unwrap();
//! ```

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use crate::api::MessageRequest;
use crate::error::Result;
use crate::prompt::text;
use crate::provider::{EventStream, Provider, Script, ScriptedProvider};

/// One recorded generation, as an Anthropic Messages API SSE transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transcript {
    /// `full_app`: a todo list with filters and inline editing.
    TodoApp,
    /// `full_app`: a habit tracker with streaks, a week grid and dark mode.
    HabitTracker,
    /// `full_app`: a SaaS landing page with pricing and a waitlist.
    LandingPage,
    /// `modify`: a change set adding dark mode to the todo app.
    ModifyDarkMode,
    /// `plan_phases`: three phases for a habit tracker.
    PlanPhases,
    /// `chat`: a plan-mode answer about reminders.
    ChatPlan,
}

impl Transcript {
    /// Every transcript.
    pub const ALL: [Self; 6] = [
        Self::TodoApp,
        Self::HabitTracker,
        Self::LandingPage,
        Self::ModifyDarkMode,
        Self::PlanPhases,
        Self::ChatPlan,
    ];

    /// The SSE text.
    #[must_use]
    pub fn sse(self) -> &'static str {
        match self {
            Self::TodoApp => include_str!("../transcripts/todo-app.sse"),
            Self::HabitTracker => include_str!("../transcripts/habit-tracker.sse"),
            Self::LandingPage => include_str!("../transcripts/landing-page.sse"),
            Self::ModifyDarkMode => include_str!("../transcripts/modify-dark-mode.sse"),
            Self::PlanPhases => include_str!("../transcripts/plan-phases.sse"),
            Self::ChatPlan => include_str!("../transcripts/chat-plan.sse"),
        }
    }

    /// The transcript answering `request`: by the pipeline its system prompt belongs to,
    /// then, for `full_app`, by keywords in the last user message.
    #[must_use]
    pub fn for_request(request: &MessageRequest) -> Self {
        let system = request
            .system
            .as_ref()
            .map(crate::api::SystemPrompt::to_text)
            .unwrap_or_default();
        if system.starts_with(text::MODIFY_SYSTEM) {
            return Self::ModifyDarkMode;
        }
        if system.starts_with(text::PLAN_SYSTEM) {
            return Self::PlanPhases;
        }
        if system.starts_with(text::CHAT_SYSTEM) {
            return Self::ChatPlan;
        }
        let prompt = request.last_user_text().unwrap_or_default().to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| prompt.contains(w));
        if has(&["habit", "streak", "routine"]) {
            Self::HabitTracker
        } else if has(&[
            "landing",
            "marketing",
            "waitlist",
            "homepage",
            "saas",
            "startup",
        ]) {
            Self::LandingPage
        } else {
            Self::TodoApp
        }
    }
}

/// A provider that replays the demo [`Transcript`] matching each request.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineProvider {
    pace: Option<Duration>,
}

impl OfflineProvider {
    /// Waits `delay` before each event, so that a demo streams visibly (instant by default).
    #[must_use]
    pub fn pace(mut self, delay: Duration) -> Self {
        self.pace = Some(delay).filter(|d| !d.is_zero());
        self
    }
}

impl Provider for OfflineProvider {
    fn name(&self) -> &str {
        "offline-demo"
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>> {
        let transcript = Transcript::for_request(&request);
        let pace = self.pace;
        async move {
            let replay =
                ScriptedProvider::new().with(Script::new(transcript.sse()).chunk_size(1024));
            let events = replay.stream(request).await?;
            Ok(match pace {
                None => events,
                Some(delay) => events
                    .then(move |event| async move {
                        tokio::time::sleep(delay).await;
                        event
                    })
                    .boxed(),
            })
        }
        .boxed()
    }
}

/// The offline demo provider: no network, no API key.
#[must_use]
pub fn offline_provider() -> OfflineProvider {
    OfflineProvider::default()
}
