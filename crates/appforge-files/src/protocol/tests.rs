use proptest::prelude::*;

use super::*;

/// An owned copy of an event, with consecutive deltas of one file merged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Section(Section, String),
    Started(String),
    Delta(String, String),
    Completed(String, usize),
    Phase(u32, String),
    Warning(Warning),
    End,
}

fn record(events: &mut Vec<Owned>, event: ProtocolEvent<'_>) {
    let owned = match event {
        ProtocolEvent::Section { section, value } => Owned::Section(section, value.into()),
        ProtocolEvent::FileStarted { path } => Owned::Started(path.into()),
        ProtocolEvent::FileDelta { path, text } => {
            if let Some(Owned::Delta(p, t)) = events.last_mut()
                && p == path
            {
                t.push_str(text);
                return;
            }
            Owned::Delta(path.into(), text.into())
        }
        ProtocolEvent::FileCompleted { path, bytes } => Owned::Completed(path.into(), bytes),
        ProtocolEvent::Phase { number, body } => Owned::Phase(number, body.into()),
        ProtocolEvent::Warning(w) => Owned::Warning(w.clone()),
        ProtocolEvent::End => Owned::End,
        #[allow(unreachable_patterns)]
        _ => unreachable!("a new event kind"),
    };
    events.push(owned);
}

fn run<'a>(chunks: impl IntoIterator<Item = &'a str>) -> (ParsedGeneration, Vec<Owned>) {
    let mut events = Vec::new();
    let mut parser = ProtocolParser::new();
    for chunk in chunks {
        parser.feed(chunk, |e| record(&mut events, e));
    }
    let parsed = parser.finish(|e| record(&mut events, e));
    (parsed, events)
}

const SAMPLE: &str = "Sure! Here is your app.\n\
===NAME===\n\
Todo List\n\
===DESCRIPTION===\n\
A small todo list with filters.\n\
===APP_TYPE===\n\
react\n\
===FILE:src/App.tsx===\n\
import { useState } from 'react';\n\
// ===FILE:not/a/marker.ts=== inside a line\n\
=== not a marker ===\n\
====\n\
===NAMES===\n\
\x20===END===\n\
export default function App() { return <h1>é ✓</h1>; }\n\
===FILE:./src/main.tsx===\r\n\
import App from './App';\r\n\
===FILE:src/fenced.ts===\n\
```typescript\n\
const a = `x`;\n\
```\n\
```js\n\
```\n\
\n\
===FILE:/etc/passwd===\n\
root:x:0:0\n\
===FILE:src/App.tsx===\n\
export default function App() { return null; }\n\
===DEPENDENCIES===\n\
react: ^18.3.1\n\
react-dom: ^18.3.1\n\
===SETUP===\n\
npm install\n\
npm run dev\n\
===END===\n\
trailing chatter ===FILE:ignored===\n";

#[test]
fn parses_sections_files_and_warnings() {
    let parsed = parse(SAMPLE);
    assert_eq!(parsed.name.as_deref(), Some("Todo List"));
    assert_eq!(
        parsed.description.as_deref(),
        Some("A small todo list with filters.")
    );
    assert_eq!(parsed.app_type.as_deref(), Some("react"));
    assert_eq!(parsed.setup.as_deref(), Some("npm install\nnpm run dev"));
    assert_eq!(parsed.dependencies.len(), 2);
    assert!(parsed.ended);
    assert_eq!(parsed.partial_file, None);
    assert_eq!(parsed.complete_len, SAMPLE.len());
    let paths: Vec<_> = parsed.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["src/App.tsx", "src/main.tsx", "src/fenced.ts"]);
    // The fence around the file is dropped; the fence-like lines inside it stay.
    assert_eq!(parsed.files[2].content, "const a = `x`;\n```\n```js\n");
    // The later src/App.tsx wins; the marker-like lines of the first one were content.
    assert_eq!(
        parsed.files[0].content,
        "export default function App() { return null; }\n"
    );
    assert_eq!(parsed.files[1].content, "import App from './App';\r\n");
    assert_eq!(
        parsed.warnings,
        vec![
            Warning::RejectedPath {
                path: "/etc/passwd".into(),
                reason: PathErrorKind::Absolute
            },
            Warning::DuplicateFile {
                path: "src/App.tsx".into()
            },
        ]
    );
}

#[test]
fn marker_like_lines_inside_a_file_stay_content() {
    let (_, events) = run([SAMPLE]);
    let first_app = events
        .iter()
        .find_map(|e| match e {
            Owned::Delta(p, t) if p == "src/App.tsx" => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        first_app,
        "import { useState } from 'react';\n\
         // ===FILE:not/a/marker.ts=== inside a line\n\
         === not a marker ===\n\
         ====\n\
         ===NAMES===\n \
         ===END===\n\
         export default function App() { return <h1>é ✓</h1>; }\n"
    );
    assert!(events.contains(&Owned::Completed("src/App.tsx".into(), first_app.len())));
}

#[test]
fn every_split_point_gives_the_same_result() {
    let (whole, whole_events) = run([SAMPLE]);
    let boundaries: Vec<usize> = (0..=SAMPLE.len())
        .filter(|&i| SAMPLE.is_char_boundary(i))
        .collect();
    for &i in &boundaries {
        let (parsed, events) = run([&SAMPLE[..i], &SAMPLE[i..]]);
        assert_eq!(parsed, whole, "split at {i}");
        assert_eq!(events, whole_events, "split at {i}");
    }
    // Three pieces around every marker-ish region, and one char at a time.
    for &i in boundaries.iter().step_by(7) {
        for &j in boundaries.iter().filter(|&&j| j >= i).step_by(5) {
            let (parsed, events) = run([&SAMPLE[..i], &SAMPLE[i..j], &SAMPLE[j..]]);
            assert_eq!(parsed, whole, "split at {i} and {j}");
            assert_eq!(events, whole_events, "split at {i} and {j}");
        }
    }
    let chars: Vec<String> = SAMPLE.chars().map(String::from).collect();
    let (parsed, events) = run(chars.iter().map(String::as_str));
    assert_eq!(parsed, whole);
    assert_eq!(events, whole_events);
}

#[test]
fn empty_input_parses_to_nothing() {
    let (parsed, events) = run([""]);
    assert_eq!(parsed, ParsedGeneration::default());
    assert!(events.is_empty());
    assert!(!parsed.ended);
}

#[test]
fn missing_end_keeps_complete_files_and_reports_the_partial_one() {
    let text =
        "===NAME===\nX\n===FILE:a.ts===\nexport const a = 1;\n===FILE:b.ts===\nexport const b =";
    let (parsed, events) = run([text]);
    assert!(!parsed.ended);
    assert_eq!(
        parsed.files,
        vec![AppFile::new("a.ts", "export const a = 1;\n")]
    );
    assert_eq!(
        parsed.partial_file,
        Some(AppFile::new("b.ts", "export const b ="))
    );
    assert_eq!(
        &text[parsed.complete_len..],
        "===FILE:b.ts===\nexport const b ="
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Owned::Completed(p, _) if p == "b.ts"))
    );
}

#[test]
fn a_marker_without_a_final_line_break_counts() {
    let parsed = parse("===NAME===\nX\n===FILE:a.ts===\nx\n===END===");
    assert!(parsed.ended);
    assert_eq!(parsed.files, vec![AppFile::new("a.ts", "x\n")]);
}

#[test]
fn a_very_long_equals_line_is_content_and_stays_linear() {
    let long = format!("==={}\n", "=".repeat(100_000));
    let text = format!("===FILE:a.ts===\n{long}===END===\n");
    let (parsed, _) = run(text
        .as_bytes()
        .chunks(10)
        .map(|c| std::str::from_utf8(c).unwrap()));
    assert_eq!(parsed.files[0].content, long);
}

#[test]
fn multi_megabyte_file_in_small_chunks() {
    let line = "export const value = someFunction(argument, 'a string literal');\n";
    let body = line.repeat(4 * 1024 * 1024 / line.len());
    let text = format!("===NAME===\nBig\n===FILE:src/big.ts===\n{body}===END===\n");
    let mut parser = ProtocolParser::new();
    let mut deltas = 0usize;
    for chunk in text.as_bytes().chunks(61) {
        parser.feed(std::str::from_utf8(chunk).unwrap(), |e| {
            if let ProtocolEvent::FileDelta { text, .. } = e {
                deltas += text.len();
            }
        });
    }
    let parsed = parser.finish(|_| {});
    assert_eq!(deltas, body.len());
    assert_eq!(parsed.files[0].content, body);
    assert!(parsed.ended);
}

#[test]
fn hostile_paths_are_dropped_with_a_warning_each() {
    let text = "===FILE:../../.ssh/authorized_keys===\nkey\n===FILE:C:\\evil.bat===\nx\n\
                ===FILE:a\u{0}b===\ny\n===FILE:ok.ts===\nok\n===END===\n";
    let parsed = parse(text);
    assert_eq!(parsed.files, vec![AppFile::new("ok.ts", "ok\n")]);
    let reasons: Vec<_> = parsed
        .warnings
        .iter()
        .map(|w| match w {
            Warning::RejectedPath { reason, .. } => *reason,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            PathErrorKind::ParentDirectory,
            PathErrorKind::Backslash,
            PathErrorKind::ControlCharacter
        ]
    );
}

#[test]
fn phases_and_duplicate_sections() {
    let parsed = parse(
        "===NAME===\nA\n===NAME===\nB\n===PHASE:1===\nCore\n===PHASE:2===\n\nPolish\n\n===END===\n",
    );
    assert_eq!(parsed.name.as_deref(), Some("B"));
    assert_eq!(
        parsed.phases,
        vec![
            RawPhase {
                number: 1,
                body: "Core".into()
            },
            RawPhase {
                number: 2,
                body: "Polish".into()
            }
        ]
    );
    assert_eq!(
        parsed.warnings,
        vec![Warning::DuplicateSection {
            section: Section::Name
        }]
    );
}

fn document() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("===NAME===".to_owned()),
        Just("===FILE:src/a.ts===".to_owned()),
        Just("===FILE:src/b.ts===".to_owned()),
        Just("===FILE:../bad===".to_owned()),
        Just("===DEPENDENCIES===".to_owned()),
        Just("===END===".to_owned()),
        Just("===PHASE:3===".to_owned()),
        Just("== = ===".to_owned()),
        Just("```ts".to_owned()),
        Just("```".to_owned()),
        Just("`a`".to_owned()),
        Just("react: 18".to_owned()),
        "[=a-z ]{0,12}",
        "\\PC{0,10}",
    ];
    prop::collection::vec(line, 0..30).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_result(doc in document(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let (whole, whole_events) = run([doc.as_str()]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(doc.len() + 1)).filter(|&i| doc.is_char_boundary(i)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(&doc[last..p]);
            last = p;
        }
        chunks.push(&doc[last..]);
        let (parsed, events) = run(chunks);
        prop_assert_eq!(parsed, whole);
        prop_assert_eq!(events, whole_events);
    }
}

#[test]
fn code_fences_around_a_file_are_dropped_and_others_kept() {
    let parsed = parse(
        "===FILE:a.ts===\n```tsx\nexport {};\n```\n===FILE:b.md===\n# Title\n```\ncode\n```\n\
         ===FILE:c.ts===\n```ts\nlet x;\n```\n\nlet y;\n===FILE:d.ts===\n`template`\n```\n\
         ===FILE:e.ts===\n\n```ts\nlet e;\n```\n```\n===END===\n",
    );
    let contents: Vec<_> = parsed.files.iter().map(|f| f.content.as_str()).collect();
    assert_eq!(
        contents,
        [
            "export {};\n",
            "# Title\n```\ncode\n```\n",
            "let x;\n```\n\nlet y;\n",
            "`template`\n```\n",
            "\nlet e;\n```\n",
        ]
    );
    let (_, events) = run(["===FILE:a.ts===\n```tsx\nexport {};\n```\n===END===\n"]);
    assert!(events.contains(&Owned::Completed("a.ts".into(), "export {};\n".len())));
    assert!(events.contains(&Owned::Delta("a.ts".into(), "export {};\n".into())));
}

#[test]
fn overlong_marker_lines_are_content_however_they_arrive() {
    let line = format!("===FILE:{}===\n", "a/".repeat(200));
    let text = format!("===FILE:x.ts===\n{line}===END===\n");
    let whole = parse(&text);
    assert_eq!(whole.files, vec![AppFile::new("x.ts", line.as_str())]);
    let (split, _) = run(text
        .as_bytes()
        .chunks(7)
        .map(|c| std::str::from_utf8(c).unwrap()));
    assert_eq!(split, whole);
}

#[test]
fn quoted_paths_lose_their_quotes() {
    let parsed = parse("===FILE: `src/a.ts` ===\na\n===FILE:\"b.ts\"===\nb\n===END===\n");
    let paths: Vec<_> = parsed.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["src/a.ts", "b.ts"]);
}
