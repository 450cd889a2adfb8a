use appforge_llm::demo::{Transcript, offline_provider};
use appforge_llm::{
    ChatMode, ChatRequest, FullAppRequest, GeneratedApp, MessageRequest, ModifyRequest, Pipelines,
    PlanRequest, Progress,
};
use tokio_util::sync::CancellationToken;

async fn generate(prompt: &str) -> GeneratedApp {
    Pipelines::new(offline_provider())
        .full_app(
            &FullAppRequest::new(prompt),
            |_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

/// What a snapshot keeps of an app: everything but the file bodies.
fn outline(app: &GeneratedApp) -> serde_json::Value {
    serde_json::json!({
        "name": app.name,
        "description": app.description,
        "change_type": app.change_type,
        "files": app.files.iter().map(|f| format!("{} ({} bytes)", f.path, f.content.len())).collect::<Vec<_>>(),
        "dependencies": app.dependencies,
        "setup": app.setup_instructions,
        "usage": app.usage,
        "warnings": app.warnings,
    })
}

#[tokio::test]
async fn each_demo_app_is_a_complete_clean_generation() {
    for (prompt, name) in [
        ("A todo list", "todo_app"),
        (
            "A habit tracker with streaks and dark mode",
            "habit_tracker",
        ),
        ("A landing page for my SaaS with a waitlist", "landing_page"),
    ] {
        let app = generate(prompt).await;
        assert!(app.warnings.is_empty(), "{name}: {:?}", app.warnings);
        assert!(app.files.len() >= 7, "{name}");
        for required in ["index.html", "src/main.tsx", "src/App.tsx"] {
            assert!(
                app.files.iter().any(|f| f.path == required),
                "{name}: {required}"
            );
        }
        assert_eq!(app.dependencies["react"], "^18.3.1");
        insta::assert_snapshot!(name, appforge_testing::sorted_json(&outline(&app)));
    }
}

#[tokio::test]
async fn unknown_prompts_get_the_todo_app() {
    assert_eq!(generate("something delightful").await.name, "Focus Todo");
}

#[test]
fn transcripts_are_picked_by_pipeline_and_keywords() {
    let p = Pipelines::new(offline_provider());
    let full = |prompt: &str| {
        let prompt = appforge_llm::RenderedPrompt::full_app(
            &FullAppRequest::new(prompt),
            &Default::default(),
        );
        Transcript::for_request(&p.request(&prompt))
    };
    assert_eq!(full("Track my morning ROUTINE"), Transcript::HabitTracker);
    assert_eq!(full("a marketing landing page"), Transcript::LandingPage);
    assert_eq!(full("a recipe box"), Transcript::TodoApp);
    let modify =
        appforge_llm::RenderedPrompt::modify(&ModifyRequest::default(), &Default::default());
    assert_eq!(
        Transcript::for_request(&p.request(&modify)),
        Transcript::ModifyDarkMode
    );
    let plan =
        appforge_llm::RenderedPrompt::plan_phases(&PlanRequest::default(), &Default::default());
    assert_eq!(
        Transcript::for_request(&p.request(&plan)),
        Transcript::PlanPhases
    );
    let chat = appforge_llm::RenderedPrompt::chat(&ChatRequest::default(), &Default::default());
    assert_eq!(
        Transcript::for_request(&p.request(&chat)),
        Transcript::ChatPlan
    );
    assert_eq!(
        Transcript::for_request(&MessageRequest::new("m", 1)),
        Transcript::TodoApp
    );
}

#[tokio::test]
async fn the_demo_change_set_applies_to_the_demo_todo_app() {
    let todo = generate("a todo app").await;
    let pipelines = Pipelines::new(offline_provider());
    let request = ModifyRequest {
        request: "Add a dark mode toggle".into(),
        history: Vec::new(),
        app: todo.files.clone(),
        attachments: Vec::new(),
    };
    let modification = pipelines
        .modify(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    let files = modification.change_set.apply(&todo.files).unwrap();
    let app = files.iter().find(|f| f.path == "src/App.tsx").unwrap();
    assert!(
        app.content
            .contains("import { useDarkMode } from './hooks/useDarkMode';\n")
    );
    assert!(app.content.contains("onClick={toggleDark}"));
    assert!(files.iter().any(|f| f.path == "src/hooks/useDarkMode.ts"));
    assert_eq!(files.len(), todo.files.len() + 1);
}

#[tokio::test]
async fn the_demo_plan_builds_phase_requests_and_chat_streams() {
    let pipelines = Pipelines::new(offline_provider());
    let planned = pipelines
        .plan_phases(
            &PlanRequest {
                prompt: "habit tracker".into(),
                history: Vec::new(),
                attachments: Vec::new(),
            },
            |_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let names: Vec<_> = planned
        .plan
        .phases
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["Core habits", "Streaks and history", "Polish and reminders"]
    );
    let phase_2 = planned
        .plan
        .full_app_request(2, "habit tracker", None)
        .unwrap();
    let app = pipelines
        .full_app(&phase_2, |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(app.name, "Streaks Habit Tracker");

    let mut deltas = 0;
    let reply = pipelines
        .chat(
            &ChatRequest {
                mode: ChatMode::Plan,
                message: "How do I add reminders?".into(),
                ..ChatRequest::default()
            },
            |p| deltas += usize::from(matches!(p, Progress::TextDelta { .. })),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(reply.text.starts_with("Good idea: reminders"));
    assert!(deltas > 50);
}

#[tokio::test(start_paused = true)]
async fn a_paced_demo_waits_between_events() {
    let pipelines = Pipelines::new(offline_provider().pace(std::time::Duration::from_millis(10)));
    let started = tokio::time::Instant::now();
    let reply = pipelines
        .chat(
            &ChatRequest {
                message: "reminders?".into(),
                ..ChatRequest::default()
            },
            |_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let events = Transcript::ChatPlan.sse().matches("\nevent: ").count() + 1;
    assert!(reply.text.starts_with("Good idea"));
    let expected = std::time::Duration::from_millis(10) * u32::try_from(events).unwrap();
    assert_eq!(started.elapsed(), expected);
}

#[tokio::test]
async fn each_demo_app_gets_exactly_the_project_files_it_lacks() {
    for prompt in [
        "A todo list",
        "A habit tracker with streaks and dark mode",
        "A landing page for my SaaS",
    ] {
        let app = generate(prompt).await;
        let scaffold = appforge_llm::protocol::scaffold(&app.name, &app.files, &app.dependencies);
        assert_eq!(
            scaffold.paths(),
            [
                "package.json",
                "tsconfig.json",
                "vite.config.ts",
                ".gitignore",
                "README.md"
            ],
            "{prompt}"
        );
        assert!(
            scaffold.refused.is_empty(),
            "{prompt}: {:?}",
            scaffold.refused
        );
        let complete = scaffold.complete(&app.files);
        for file in &app.files {
            let kept = complete.iter().find(|f| f.path == file.path).unwrap();
            assert_eq!(
                kept.content, file.content,
                "{} is never rewritten",
                file.path
            );
        }
        let package: serde_json::Value = serde_json::from_str(&scaffold.files[0].content).unwrap();
        for (name, version) in &app.dependencies {
            let section = if name.starts_with("@types/")
                || name.starts_with("@vitejs/")
                || ["vite", "typescript"].contains(&name.as_str())
            {
                "devDependencies"
            } else {
                "dependencies"
            };
            assert_eq!(package[section][name], version.as_str(), "{prompt}: {name}");
        }
        // The model's own setup text and the scaffold agree on the commands.
        let setup = app.setup_instructions.as_deref().unwrap_or_default();
        for command in ["npm install", "npm run dev"] {
            assert!(setup.contains(command), "{prompt}: {setup}");
            assert!(scaffold.commands.iter().any(|c| c == command));
        }
    }
}
