//! Typed results of the server tools (web search, web fetch, code execution, the text editor
//! in the code execution container, tool search).
//!
//! A result block keeps its raw JSON (so it goes back to the API unchanged); these types are
//! a typed reading of it. A result whose content this crate cannot read is `None`, never a
//! failed stream.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The typed content of a server tool's result block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ServerToolOutput {
    /// `web_search_tool_result`.
    WebSearch(ToolOutcome<Vec<WebSearchHit>>),
    /// `web_fetch_tool_result`.
    WebFetch(ToolOutcome<WebFetchResult>),
    /// `code_execution_tool_result`.
    CodeExecution(ToolOutcome<CodeExecutionResult>),
    /// `bash_code_execution_tool_result`.
    BashCodeExecution(ToolOutcome<CodeExecutionResult>),
    /// `text_editor_code_execution_tool_result`.
    TextEditor(ToolOutcome<TextEditorResult>),
    /// `tool_search_tool_result`.
    ToolSearch(ToolOutcome<Vec<String>>),
}

/// A tool's result or the error it reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ToolOutcome<T> {
    /// The tool ran.
    Ok(T),
    /// The tool reported an error (`*_tool_result_error`).
    Error {
        /// The error code, such as `unavailable` or `max_uses_exceeded`.
        error_code: String,
        /// The message, when the tool gives one.
        error_message: Option<String>,
    },
}

/// One web search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebSearchHit {
    /// The page's URL.
    pub url: String,
    /// The page's title.
    #[serde(default)]
    pub title: String,
    /// How old the page is, as the API says it.
    #[serde(default)]
    pub page_age: Option<String>,
    /// The content, encrypted for a later turn.
    #[serde(default)]
    pub encrypted_content: String,
}

/// A fetched web page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebFetchResult {
    /// The URL fetched.
    pub url: String,
    /// When it was fetched.
    #[serde(default)]
    pub retrieved_at: Option<String>,
    /// The page as a `document` block, as the API sent it.
    #[serde(default)]
    pub content: Value,
}

/// The outcome of running code (Python, or a bash command) in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CodeExecutionResult {
    /// Standard output (empty when it came encrypted).
    #[serde(default)]
    pub stdout: String,
    /// Encrypted standard output, when the API encrypts it.
    #[serde(default)]
    pub encrypted_stdout: Option<String>,
    /// Standard error.
    #[serde(default)]
    pub stderr: String,
    /// The exit code.
    #[serde(default)]
    pub return_code: i64,
    /// Ids of the files it produced.
    #[serde(default)]
    pub file_ids: Vec<String>,
}

/// What the text editor tool did in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TextEditorResult {
    /// A file was viewed.
    View {
        /// The content shown.
        content: String,
        /// `text`, `image` or `pdf`.
        file_type: String,
        /// Lines shown.
        num_lines: Option<u64>,
        /// The first line shown.
        start_line: Option<u64>,
        /// Lines in the file.
        total_lines: Option<u64>,
    },
    /// A file was created or overwritten.
    Create {
        /// Whether it existed before.
        is_file_update: bool,
    },
    /// Text was replaced.
    StrReplace {
        /// The new lines, as a diff.
        lines: Vec<String>,
        /// Where the old lines started.
        old_start: Option<u64>,
        /// How many old lines.
        old_lines: Option<u64>,
        /// Where the new lines start.
        new_start: Option<u64>,
        /// How many new lines.
        new_lines: Option<u64>,
    },
}

impl ServerToolOutput {
    /// Reads the content of a result block of type `kind`; `None` for a kind or a content
    /// shape this crate does not know.
    pub fn from_block(kind: &str, block: &Value) -> Option<Self> {
        let content = block.get("content")?;
        Some(match kind {
            "web_search_tool_result" => Self::WebSearch(outcome(content, |c| {
                serde_json::from_value(c.clone()).ok()
            })?),
            "web_fetch_tool_result" => Self::WebFetch(outcome(content, |c| {
                (c.get("type")?.as_str()? == "web_fetch_result")
                    .then(|| serde_json::from_value(c.clone()).ok())?
            })?),
            "code_execution_tool_result" => Self::CodeExecution(outcome(content, code_result)?),
            "bash_code_execution_tool_result" => {
                Self::BashCodeExecution(outcome(content, code_result)?)
            }
            "text_editor_code_execution_tool_result" => {
                Self::TextEditor(outcome(content, text_editor_result)?)
            }
            "tool_search_tool_result" => Self::ToolSearch(outcome(content, |c| {
                c.get("tool_references")?
                    .as_array()?
                    .iter()
                    .map(|r| r.get("tool_name")?.as_str().map(str::to_owned))
                    .collect()
            })?),
            _ => return None,
        })
    }
}

/// An error content (`type` ending in `_error`) or what `ok` reads.
fn outcome<T>(content: &Value, ok: impl FnOnce(&Value) -> Option<T>) -> Option<ToolOutcome<T>> {
    let kind = content.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.ends_with("_error") {
        let text = |key: &str| content.get(key).and_then(Value::as_str).map(str::to_owned);
        return Some(ToolOutcome::Error {
            error_code: text("error_code").unwrap_or_default(),
            error_message: text("error_message"),
        });
    }
    ok(content).map(ToolOutcome::Ok)
}

fn code_result(content: &Value) -> Option<CodeExecutionResult> {
    let kind = content.get("type")?.as_str()?;
    if !kind.ends_with("code_execution_result") {
        return None;
    }
    #[derive(Deserialize)]
    struct Output {
        file_id: String,
    }
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        stdout: String,
        #[serde(default)]
        encrypted_stdout: Option<String>,
        #[serde(default)]
        stderr: String,
        #[serde(default)]
        return_code: i64,
        #[serde(default)]
        content: Vec<Output>,
    }
    let raw = Raw::deserialize(content).ok()?;
    Some(CodeExecutionResult {
        stdout: raw.stdout,
        encrypted_stdout: raw.encrypted_stdout,
        stderr: raw.stderr,
        return_code: raw.return_code,
        file_ids: raw.content.into_iter().map(|o| o.file_id).collect(),
    })
}

fn text_editor_result(content: &Value) -> Option<TextEditorResult> {
    let number = |key: &str| content.get(key).and_then(Value::as_u64);
    let text = |key: &str| content.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(match content.get("type")?.as_str()? {
        "text_editor_code_execution_view_result" => TextEditorResult::View {
            content: text("content").unwrap_or_default(),
            file_type: text("file_type").unwrap_or_default(),
            num_lines: number("num_lines"),
            start_line: number("start_line"),
            total_lines: number("total_lines"),
        },
        "text_editor_code_execution_create_result" => TextEditorResult::Create {
            is_file_update: content.get("is_file_update")?.as_bool()?,
        },
        "text_editor_code_execution_str_replace_result" => TextEditorResult::StrReplace {
            lines: serde_json::from_value(content.get("lines")?.clone()).ok()?,
            old_start: number("old_start"),
            old_lines: number("old_lines"),
            new_start: number("new_start"),
            new_lines: number("new_lines"),
        },
        _ => return None,
    })
}
