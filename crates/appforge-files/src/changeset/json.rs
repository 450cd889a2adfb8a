//! Reading a change set from a model's text: strict JSON first, then common repairs.

use std::fmt;

use super::{ChangeSet, FileChange};
use crate::protocol::validate_path;

/// A model's text that is not a usable change set. Keeps the text for diagnosis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetError {
    /// What is wrong.
    pub reason: String,
    /// The model's text as received.
    pub raw: String,
}

impl fmt::Display for ChangeSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid change set: {} ({} bytes of model output kept)",
            self.reason,
            self.raw.len()
        )
    }
}

impl std::error::Error for ChangeSetError {}

impl ChangeSet {
    /// Parses a change set from a model's reply, repairing the usual wrappings: a fenced
    /// code block, prose around the JSON, a bare array of changes, trailing commas. Paths are
    /// validated and normalised.
    ///
    /// # Errors
    ///
    /// [`Error::ChangeSet`](crate::Error::ChangeSet) when no candidate parses, a path is
    /// refused, or there are no changes; it keeps the raw text.
    pub fn from_model_output(text: &str) -> crate::Result<Self> {
        let fail = |reason: String| ChangeSetError {
            reason,
            raw: text.to_owned(),
        };
        if !text.contains(['{', '[']) {
            return Err(fail("no JSON found".into()).into());
        }
        let mut first_error = None;
        for candidate in json_candidates(text) {
            match parse_candidate(&candidate) {
                Ok(mut set) => {
                    for change in &mut set.changes {
                        let path = change.path_mut();
                        *path = validate_path(path).map_err(|e| fail(e.to_string()))?;
                    }
                    if set.changes.is_empty() {
                        return Err(fail("it has no changes".into()).into());
                    }
                    return Ok(set);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let reason = first_error.map_or_else(|| "no JSON found".to_owned(), |e| e.to_string());
        Err(fail(reason).into())
    }
}

fn parse_candidate(candidate: &str) -> serde_json::Result<ChangeSet> {
    if candidate.trim_start().starts_with('[') {
        let changes: Vec<FileChange> = serde_json::from_str(candidate)?;
        return Ok(ChangeSet {
            summary: None,
            changes,
        });
    }
    serde_json::from_str(candidate)
}

/// The texts in a model's reply worth trying as JSON, most literal first: the whole reply, a
/// fenced code block, the outermost balanced braces or brackets, each also with trailing
/// commas removed.
///
/// ```
/// let candidates = appforge_files::json_candidates("Sure:\n```json\n{\"a\": 1,}\n```");
/// assert!(candidates.iter().any(|c| serde_json::from_str::<serde_json::Value>(c).is_ok()));
/// ```
#[must_use]
pub fn json_candidates(text: &str) -> Vec<String> {
    let mut out = vec![text.trim().to_owned()];
    if let Some(fenced) = fenced_block(text) {
        out.push(fenced.trim().to_owned());
    }
    if let Some(span) = balanced_span(text) {
        out.push(span.to_owned());
        out.push(strip_trailing_commas(span));
    }
    out.dedup();
    out
}

/// The body of the first fenced code block, if any.
fn fenced_block(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after = &text[start + 3..];
    let body_start = after.find('\n')? + 1;
    let body = &after[body_start..];
    let end = body.find("```").unwrap_or(body.len());
    Some(&body[..end])
}

/// The first balanced `{...}` or `[...]` span, skipping brackets inside strings.
fn balanced_span(text: &str) -> Option<&str> {
    let start = text.find(['{', '['])?;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(&text[start..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes commas directly before a closing bracket, outside strings.
fn strip_trailing_commas(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = json.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}' | ']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::changeset::Edit;

    const JSON: &str = r#"{"summary":"s","changes":[{"action":"delete","path":"./old.ts"},
        {"action":"update","path":"src/App.tsx","edits":[{"op":"append","content":"x"}]}]}"#;

    fn expected() -> ChangeSet {
        ChangeSet {
            summary: Some("s".into()),
            changes: vec![
                FileChange::Delete {
                    path: "old.ts".into(),
                },
                FileChange::Update {
                    path: "src/App.tsx".into(),
                    edits: vec![Edit::Append {
                        content: "x".into(),
                    }],
                },
            ],
        }
    }

    #[test]
    fn reads_plain_fenced_wrapped_and_sloppy_json() {
        assert_eq!(ChangeSet::from_model_output(JSON).unwrap(), expected());
        let fenced = format!("```json\n{JSON}\n```");
        assert_eq!(ChangeSet::from_model_output(&fenced).unwrap(), expected());
        let prose =
            format!("Sure, here are the changes {{as asked}}:\n\n```\n{JSON}\n```\nLet me know!");
        assert_eq!(ChangeSet::from_model_output(&prose).unwrap(), expected());
        let bare = format!("The change set is {JSON} and that is all.");
        assert_eq!(ChangeSet::from_model_output(&bare).unwrap(), expected());
        let trailing = JSON.replace("\"x\"}]}]}", "\"x\"},],},],}");
        assert_eq!(ChangeSet::from_model_output(&trailing).unwrap(), expected());
        let array = r#"[{"action":"create","path":"a.ts","content":"{[\"]}"}]"#;
        assert_eq!(
            ChangeSet::from_model_output(array).unwrap().changes,
            vec![FileChange::Create {
                path: "a.ts".into(),
                content: "{[\"]}".into()
            }]
        );
    }

    #[test]
    fn bad_output_is_an_error_keeping_the_text() {
        for (text, reason) in [
            ("no json here", "no JSON found"),
            (r#"{"changes": []}"#, "it has no changes"),
            (
                r#"{"changes":[{"action":"delete","path":"../x"}]}"#,
                "file path \"../x\" climbs out with `..`",
            ),
        ] {
            match ChangeSet::from_model_output(text) {
                Err(Error::ChangeSet(e)) => {
                    assert_eq!(e.reason, reason);
                    assert_eq!(e.raw, text);
                }
                other => panic!("{other:?}"),
            }
        }
        let Err(Error::ChangeSet(e)) =
            ChangeSet::from_model_output(r#"{"changes":[{"action":"rename"}]}"#)
        else {
            panic!("unknown action accepted");
        };
        assert!(
            e.reason.contains("unknown variant `rename`"),
            "{}",
            e.reason
        );
    }
}
