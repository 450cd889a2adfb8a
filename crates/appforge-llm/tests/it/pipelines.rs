use appforge_llm::{
    ApiErrorKind, AppFile, ChatMode, ChatRequest, Error, Fault, FullAppRequest, ModifyRequest,
    Pipelines, PlanRequest, Progress, Script, ScriptedProvider, StopReason, Warning,
};
use tokio_util::sync::CancellationToken;

const HEAD: &str =
    "===NAME===\nTiny Todo\n===DESCRIPTION===\nA todo list.\n===APP_TYPE===\nreact\n";
const APP: &str =
    "===FILE:src/App.tsx===\nexport default function App() {\n  return <h1>Todo</h1>;\n}\n";
const MAIN: &str = "===FILE:src/main.tsx===\nimport App from './App';\nrender(<App />);\n";
const TAIL: &str =
    "===DEPENDENCIES===\nreact: ^18.3.1\n===SETUP===\nnpm install && npm run dev\n===END===\n";

/// Splits text into small, uneven chunks, as a model streams.
fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut size = 3;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        out.push(rest[..end].to_owned());
        rest = &rest[end..];
        size = size % 11 + 4;
    }
    out
}

fn transcript(text: &str, stop: &StopReason) -> String {
    ScriptedProvider::text_transcript(chunks(text), stop)
}

fn pipelines(provider: &ScriptedProvider) -> Pipelines {
    Pipelines::new(provider.clone())
        .model("claude-test")
        .max_tokens(4096)
}

fn messages_json(provider: &ScriptedProvider, call: usize) -> String {
    serde_json::to_string(&provider.requests()[call].messages).unwrap()
}

#[tokio::test]
async fn full_app_clean_run() {
    let provider = ScriptedProvider::new().with(transcript(
        &format!("{HEAD}{APP}{MAIN}{TAIL}"),
        &StopReason::EndTurn,
    ));
    let mut events = Vec::new();
    let app = pipelines(&provider)
        .full_app(
            &FullAppRequest::new("a todo app"),
            |p| events.push(p),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(provider.requests().len(), 1);
    assert!(app.warnings.is_empty());
    assert_eq!(app.change_type, "new_app");
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Progress::FileCompleted { path, bytes } => Some((path.as_str(), *bytes)),
            _ => None,
        })
        .collect();
    assert_eq!(started, [("src/App.tsx", 58), ("src/main.tsx", 42)]);
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_yaml_snapshot!(app);
    });
    // The progress a job would publish, with the many small file deltas counted, not listed.
    let mut deltas = 0;
    let mut shown = Vec::new();
    for event in &events {
        if matches!(event, Progress::FileDelta { .. }) {
            deltas += 1;
        } else {
            shown.push(serde_json::to_value(event).unwrap());
        }
    }
    assert!(deltas > 5);
    insta::assert_snapshot!(
        "full_app_clean_run_progress",
        appforge_testing::sorted_json(&shown)
    );
}

#[tokio::test]
async fn full_app_max_tokens_cut_then_continuation_completes() {
    let first = format!("{HEAD}{APP}===FILE:src/main.tsx===\nimport App fr");
    let provider = ScriptedProvider::new()
        .with(transcript(&first, &StopReason::MaxTokens))
        .with(transcript(&format!("{MAIN}{TAIL}"), &StopReason::EndTurn));
    let app = pipelines(&provider)
        .full_app(
            &FullAppRequest::new("a todo app"),
            |_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(provider.requests().len(), 2);
    let second = messages_json(&provider, 1);
    assert!(
        second.contains("Do not repeat the files that are already complete: src/App.tsx."),
        "{second}"
    );
    // The partial file is not part of what the model is told it wrote.
    assert!(!second.contains("import App fr"), "{second}");
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
    assert_eq!(app.files.len(), 2);
    assert_eq!(app.usage.input_tokens, 20);
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_yaml_snapshot!(app);
    });
}

#[tokio::test]
async fn full_app_continuation_that_never_completes() {
    let provider = ScriptedProvider::new()
        .with(transcript(
            &format!("{HEAD}{APP}===FILE:src/main.tsx===\nimport"),
            &StopReason::MaxTokens,
        ))
        .with(transcript(
            "===FILE:src/main.tsx===\nimport App",
            &StopReason::MaxTokens,
        ))
        // The last round writes no file at all: src/main.tsx is still missing.
        .with(transcript(
            "Let me think about the entry point",
            &StopReason::MaxTokens,
        ));
    let app = pipelines(&provider)
        .full_app(
            &FullAppRequest::new("a todo app"),
            |_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        provider.requests().len(),
        3,
        "default: two continuation rounds"
    );
    assert_eq!(
        app.warnings,
        vec![Warning::Truncated {
            missing: vec![
                "src/main.tsx".into(),
                "===DEPENDENCIES===".into(),
                "===SETUP===".into(),
                "===END===".into()
            ]
        }]
    );
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_yaml_snapshot!(app);
    });
}

#[tokio::test]
async fn full_app_without_name_or_file_is_a_parse_error_keeping_the_text() {
    let text = "I cannot write files, but here is an idea.";
    let provider = ScriptedProvider::new().with(transcript(text, &StopReason::EndTurn));
    let err = pipelines(&provider)
        .continuation_rounds(0)
        .full_app(&FullAppRequest::new("x"), |_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    let Error::Parse(parse) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(parse.raw, text);
    insta::assert_snapshot!(err.to_string(), @"invalid full_app output: no ===NAME=== section, no complete ===FILE:...=== block (42 bytes of model output kept)");
}

#[tokio::test]
async fn full_app_refusal() {
    let provider =
        ScriptedProvider::new().with(transcript("I won't build that.", &StopReason::Refusal));
    let err = pipelines(&provider)
        .full_app(
            &FullAppRequest::new("malware"),
            |_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused { pipeline: "full_app", partial } if partial == "I won't build that.")
    );
    assert!(!err.is_retryable());
    assert_eq!(provider.requests().len(), 1, "a refusal is not continued");
}

#[tokio::test]
async fn full_app_stream_error_is_the_providers_error() {
    let script = Script::new(transcript(&format!("{HEAD}{APP}"), &StopReason::EndTurn)).fault(
        Fault::ErrorEvent {
            after: 5,
            kind: ApiErrorKind::Overloaded,
        },
    );
    let provider = ScriptedProvider::new().with(script);
    let err = pipelines(&provider)
        .full_app(&FullAppRequest::new("x"), |_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    // Content had been handed over, so the stream ends interrupted, carrying the API error;
    // a job may run the generation again.
    assert!(
        matches!(&err, Error::Interrupted { events: 5, source, .. } if matches!(**source, Error::Api(_))),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn full_app_honours_cancellation_mid_stream() {
    let script = Script::new(transcript(
        &format!("{HEAD}{APP}{MAIN}{TAIL}"),
        &StopReason::EndTurn,
    ))
    .fault(Fault::Stall { after: 30 });
    let provider = ScriptedProvider::new().with(script);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let err = pipelines(&provider)
        .full_app(
            &FullAppRequest::new("x"),
            |p| {
                if matches!(p, Progress::FileStarted { .. }) {
                    trigger.cancel();
                }
            },
            &cancel,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                pipeline: "full_app",
                ..
            }
        ),
        "{err:?}"
    );
    // The input tokens were known from the stream's start: a cancelled run says what it spent.
    assert!(err.usage().is_some_and(|u| u.input_tokens > 0), "{err:?}");
}

#[tokio::test]
async fn full_app_for_a_phase_keeps_the_current_files() {
    let provider = ScriptedProvider::new().with(transcript(
        &format!("{HEAD}{APP}{TAIL}"),
        &StopReason::EndTurn,
    ));
    let plan =
        appforge_llm::PhasePlan::from_model_output("===PHASE:1===\nCore\n===PHASE:2===\nMore\n")
            .unwrap();
    let current = vec![
        AppFile::new("src/App.tsx", "old"),
        AppFile::new("index.html", "<div></div>"),
    ];
    let request = plan
        .full_app_request(2, "a todo app", Some(&current))
        .unwrap();
    let app = pipelines(&provider)
        .full_app(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        app.change_type, "phase",
        "the model did not write CHANGE_TYPE"
    );
    let paths: Vec<_> = app.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["src/App.tsx", "index.html"]);
    assert!(app.files[0].content.contains("<h1>Todo</h1>"));
    assert!(messages_json(&provider, 0).contains("Phase 2: More (build now)"));
}

const CHANGE_SET: &str = "Here is the change:\n```json\n{\"summary\":\"Sticky header\",\"changes\":[{\"action\":\"update\",\"path\":\"src/App.tsx\",\"edits\":[{\"op\":\"replace\",\"find\":\"<h1>\",\"with\":\"<h1 className=\\\"sticky\\\">\"}]}]}\n```\n";

#[tokio::test]
async fn modify_returns_an_applicable_change_set() {
    let provider = ScriptedProvider::new().with(transcript(CHANGE_SET, &StopReason::EndTurn));
    let app = vec![AppFile::new("src/App.tsx", "<h1>Todo</h1>\n")];
    let request = ModifyRequest {
        request: "make the header sticky".into(),
        history: Vec::new(),
        app: app.clone(),
        attachments: Vec::new(),
    };
    let mut streamed = String::new();
    let result = pipelines(&provider)
        .modify(
            &request,
            |p| {
                if let Progress::TextDelta { text } = p {
                    streamed.push_str(&text);
                }
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(streamed, CHANGE_SET);
    assert_eq!(result.change_set.summary.as_deref(), Some("Sticky header"));
    let updated = result.change_set.apply(&app).unwrap();
    assert_eq!(updated[0].content, "<h1 className=\"sticky\">Todo</h1>\n");
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_yaml_snapshot!(result);
    });
}

#[tokio::test]
async fn modify_cut_at_max_tokens_says_so() {
    let provider =
        ScriptedProvider::new().with(transcript(&CHANGE_SET[..80], &StopReason::MaxTokens));
    let request = ModifyRequest {
        request: "x".into(),
        history: Vec::new(),
        app: Vec::new(),
        attachments: Vec::new(),
    };
    let err = pipelines(&provider)
        .repair_rounds(0)
        .modify(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    let Error::ChangeSet(e) = &err else {
        panic!("{err:?}")
    };
    assert!(
        e.reason.starts_with("the reply stopped at max_tokens: "),
        "{}",
        e.reason
    );
    assert_eq!(e.raw, &CHANGE_SET[..80]);
}

#[tokio::test]
async fn plan_phases_happy_and_broken() {
    let plan = "===PHASE:1===\nName: Core\nDescription: Habits.\nFeatures:\n- Add habits\n===PHASE:2===\nName: Streaks\nFeatures:\n- Streak count\n===END===\n";
    let provider = ScriptedProvider::new()
        .with(transcript(plan, &StopReason::EndTurn))
        .with(transcript(
            "===PHASE:1===\nName: Core\n===PHASE:4===\nName: Oops\n",
            &StopReason::EndTurn,
        ));
    let request = PlanRequest {
        prompt: "habit tracker".into(),
        history: Vec::new(),
        attachments: Vec::new(),
    };
    let p = pipelines(&provider);
    let planned = p
        .plan_phases(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_yaml_snapshot!(planned);
    });
    let err = p
        .plan_phases(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Parse(e) if e.reason.contains("found 4 where 2 was expected")),
        "{err:?}"
    );
}

#[tokio::test]
async fn chat_streams_deltas_and_returns_the_reply() {
    let reply = "1. Add a `reminders` field.\n2. Schedule a notification.\n";
    let provider = ScriptedProvider::new()
        .with(transcript(reply, &StopReason::EndTurn))
        .with(transcript("  \n", &StopReason::EndTurn));
    let request = ChatRequest {
        mode: ChatMode::Plan,
        message: "reminders?".into(),
        ..ChatRequest::default()
    };
    let mut deltas = Vec::new();
    let p = pipelines(&provider);
    let answer = p
        .chat(
            &request,
            |e| {
                if let Progress::TextDelta { text } = e {
                    deltas.push(text);
                }
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(deltas.len() > 3);
    assert_eq!(deltas.concat(), reply);
    assert_eq!(answer.text, reply);
    assert_eq!(answer.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(answer.usage.input_tokens, 10);
    assert!(messages_json(&provider, 0).contains("reminders?"));
    let system = serde_json::to_string(&provider.requests()[0].system).unwrap();
    assert!(
        system.contains("\"cache_control\":{\"type\":\"ephemeral\"}")
            && system.contains("Mode: plan"),
        "{system}"
    );
    let err = p
        .chat(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Parse(e) if e.pipeline == "chat"),
        "{err:?}"
    );
}

#[tokio::test]
async fn modify_sends_a_change_set_that_does_not_apply_back_once() {
    let wrong = CHANGE_SET.replace("\"find\":\"<h1>\"", "\"find\":\"<nav>\"");
    let app = vec![AppFile::new("src/App.tsx", "<h1>Todo</h1>\n")];
    let request = ModifyRequest {
        request: "make the header sticky".into(),
        history: Vec::new(),
        app,
        attachments: Vec::new(),
    };

    let provider = ScriptedProvider::new()
        .with(transcript(&wrong, &StopReason::EndTurn))
        .with(transcript(CHANGE_SET, &StopReason::EndTurn));
    let result = pipelines(&provider)
        .modify(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(result.change_set.summary.as_deref(), Some("Sticky header"));
    assert_eq!(result.usage.input_tokens, 20, "both rounds are counted");
    let repair = provider.requests()[1].last_user_text().unwrap();
    assert!(
        repair.starts_with(
            "That change set cannot be used: cannot apply change 0 to \"src/App.tsx\", edit 0 (replace): anchor \"<nav>\" not found\n"
        ),
        "{repair}"
    );
    assert!(
        messages_json(&provider, 1).contains("<nav>"),
        "the wrong reply is shown back"
    );

    let provider = ScriptedProvider::new()
        .with(transcript(&wrong, &StopReason::EndTurn))
        .with(transcript(&wrong, &StopReason::EndTurn));
    let err = pipelines(&provider)
        .modify(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Apply(e) if e.anchor.as_deref() == Some("<nav>")),
        "{err:?}"
    );
    assert_eq!(provider.requests().len(), 2);
}

#[test]
fn pipeline_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let pipelines = Pipelines::new(ScriptedProvider::new());
    let cancel = CancellationToken::new();
    let full = FullAppRequest::new("x");
    assert_send(&pipelines.full_app(&full, |_| {}, &cancel));
    let modify = ModifyRequest::default();
    assert_send(&pipelines.modify(&modify, |_| {}, &cancel));
    let plan = PlanRequest::default();
    assert_send(&pipelines.plan_phases(&plan, |_| {}, &cancel));
    let chat = ChatRequest::default();
    assert_send(&pipelines.chat(&chat, |_| {}, &cancel));
}
