use super::*;
use crate::{AppFile, PhasePlan};

fn app() -> Vec<AppFile> {
    vec![
        AppFile::new("index.html", "<div id=\"root\"></div>\n"),
        AppFile::new(
            "src/App.tsx",
            "import { HabitList } from './HabitList';\n\nexport default function App() {\n  return <HabitList />;\n}\n",
        ),
        AppFile::new(
            "src/data/quotes.ts",
            format!("export const quotes = [{}];\n", "'Keep going', ".repeat(40)),
        ),
    ]
}

fn plan() -> PhasePlan {
    PhasePlan::from_model_output(
        "===PHASE:1===\nName: Core habits\nDescription: Track daily habits.\nFeatures:\n- Add and remove habits\n- Check off today\n\
         ===PHASE:2===\nName: Streaks\nDescription: See progress over time.\nFeatures:\n- Current and best streak\n- 30-day calendar\n\
         ===PHASE:3===\nName: Polish\nDescription: Dark mode and reminders.\nFeatures:\n- Dark mode\n===END===\n",
    )
    .unwrap()
}

fn history() -> Vec<HistoryMessage> {
    vec![
        HistoryMessage::assistant("(a stray assistant turn that cannot open a conversation)"),
        HistoryMessage::user("I want to track my habits."),
        HistoryMessage::assistant("Great idea: a habit tracker with streaks?"),
        HistoryMessage::user("   "),
    ]
}

fn small_budget() -> PromptSettings {
    PromptSettings {
        context_budget: 400,
        ..PromptSettings::default()
    }
}

#[test]
fn full_app_new() {
    let request = FullAppRequest {
        history: history(),
        ..FullAppRequest::new("A habit tracker with streaks and dark mode")
    };
    let prompt = RenderedPrompt::full_app(&request, &PromptSettings::default());
    assert!(prompt.system[0].cache);
    insta::assert_snapshot!(prompt.to_string());
}

#[test]
fn full_app_phase_1() {
    let request = plan()
        .full_app_request(1, "A habit tracker with streaks", None)
        .unwrap();
    insta::assert_snapshot!(
        RenderedPrompt::full_app(&request, &PromptSettings::default()).to_string()
    );
}

#[test]
fn full_app_later_phase_with_budget() {
    let request = plan()
        .full_app_request(2, "A habit tracker with streaks", Some(&app()))
        .unwrap();
    let prompt = RenderedPrompt::full_app(&request, &small_budget());
    assert!(
        prompt.messages[0]
            .content
            .contains("- src/data/quotes.ts (")
    );
    insta::assert_snapshot!(prompt.to_string());
}

#[test]
fn full_app_with_current_app() {
    let request = FullAppRequest {
        current_app: Some(app()),
        ..FullAppRequest::new("Add a dark mode toggle")
    };
    insta::assert_snapshot!(
        RenderedPrompt::full_app(&request, &PromptSettings::default()).to_string()
    );
}

#[test]
fn modify() {
    let request = ModifyRequest {
        request: "Make the header sticky".into(),
        history: Vec::new(),
        app: app(),
        attachments: Vec::new(),
    };
    insta::assert_snapshot!(RenderedPrompt::modify(&request, &small_budget()).to_string());
}

#[test]
fn plan_phases_json() {
    let request = PlanRequest {
        prompt: "A habit tracker with streaks".into(),
        history: Vec::new(),
        attachments: Vec::new(),
    };
    insta::assert_snapshot!(
        RenderedPrompt::plan_phases_json(&request, &PromptSettings::default()).to_string()
    );
}

#[test]
fn plan_phases() {
    let request = PlanRequest {
        prompt: "A habit tracker with streaks".into(),
        history: Vec::new(),
        attachments: Vec::new(),
    };
    insta::assert_snapshot!(
        RenderedPrompt::plan_phases(&request, &PromptSettings::default()).to_string()
    );
}

#[test]
fn chat_plan_mode() {
    let request = ChatRequest {
        mode: ChatMode::Plan,
        message: "How should I add reminders?".into(),
        history: history(),
        current_app: None,
        attachments: Vec::new(),
    };
    let prompt = RenderedPrompt::chat(&request, &PromptSettings::default());
    assert_eq!(
        prompt.system.iter().map(|b| b.cache).collect::<Vec<_>>(),
        [true, false]
    );
    insta::assert_snapshot!(prompt.to_string());
}

#[test]
fn chat_act_mode() {
    let request = ChatRequest {
        mode: ChatMode::Act,
        message: "Add reminders.".into(),
        history: Vec::new(),
        current_app: Some(app()),
        attachments: Vec::new(),
    };
    insta::assert_snapshot!(RenderedPrompt::chat(&request, &small_budget()).to_string());
}

#[test]
fn continuation() {
    let base = RenderedPrompt::full_app(
        &FullAppRequest::new("A todo app"),
        &PromptSettings::default(),
    );
    let next = base.continuation(
        "===NAME===\nTodo\n===FILE:src/App.tsx===\nx\n\n",
        &["src/App.tsx".into()],
    );
    assert_eq!(next.messages.len(), 3);
    insta::assert_snapshot!(next.to_string());
}

#[test]
fn history_is_capped_and_rendering_is_deterministic() {
    let history: Vec<_> = (0..30)
        .map(|i| {
            if i % 2 == 0 {
                HistoryMessage::user(format!("u{i}"))
            } else {
                HistoryMessage::assistant(format!("a{i}"))
            }
        })
        .collect();
    let request = FullAppRequest {
        history,
        ..FullAppRequest::new("x")
    };
    let settings = PromptSettings {
        max_history: 5,
        ..PromptSettings::default()
    };
    let prompt = RenderedPrompt::full_app(&request, &settings);
    // The last 5 are a25 u26 a27 u28 a29; the leading assistant turn is dropped.
    let firsts: Vec<_> = prompt
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .take(4)
        .collect();
    assert_eq!(firsts, ["u26", "a27", "u28", "a29"]);
    assert_eq!(prompt, RenderedPrompt::full_app(&request, &settings));
}

#[test]
fn modify_repair() {
    let request = ModifyRequest {
        request: "Make the header sticky".into(),
        history: Vec::new(),
        app: vec![AppFile::new("src/App.tsx", "<h1>Todo</h1>\n")],
        attachments: Vec::new(),
    };
    let base = RenderedPrompt::modify(&request, &PromptSettings::default());
    let next = base.repair(
        "{\"changes\": []}\n\n",
        "invalid change set: it has no changes (16 bytes of model output kept)",
    );
    assert_eq!(next.messages.len(), 3);
    insta::assert_snapshot!(next.to_string());
}
