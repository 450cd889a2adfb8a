//! What a plan lets one request carry: checked before anything is reserved, so that a request
//! the job would reject never costs a generation. Each check names the field and the limit.

use std::collections::HashSet;

use appforge_files::{AppFile, validate_path};
use appforge_llm::{HistoryMessage, PhaseContext};
use appforge_quota::Plan;

/// A request field over its plan's limit (or otherwise invalid): a `400` in an HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field `{field}`: {message}")]
#[non_exhaustive]
pub struct LimitError {
    /// The request field, as the API names it (`conversationHistory`, `currentAppState.files[2].path`).
    pub field: String,
    /// The plan limit it exceeds (`history_bytes`), when it is a plan limit.
    pub limit: Option<&'static str>,
    /// The limit's value.
    pub max: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// For the request-token limit: the request's estimated input tokens, and those of its
    /// images ([`check_request_tokens`]).
    pub estimated_tokens: Option<(u64, u64)>,
}

impl LimitError {
    /// A field that is invalid regardless of the plan.
    #[must_use]
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            limit: None,
            max: None,
            message: message.into(),
            estimated_tokens: None,
        }
    }

    fn over(field: &str, limit: &'static str, what: &str, max: u64, plan: &Plan) -> Self {
        Self {
            field: field.to_owned(),
            limit: Some(limit),
            max: Some(max),
            message: format!(
                "{what}, at most {max} allowed on the {} plan (limit `{limit}`)",
                plan.id
            ),
            estimated_tokens: None,
        }
    }
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A prompt: not empty (after trimming), at most `max_bytes`.
///
/// # Errors
///
/// A [`LimitError`] naming `prompt`.
pub fn check_prompt(prompt: &str, max_bytes: usize) -> Result<(), LimitError> {
    if prompt.trim().is_empty() {
        return Err(LimitError::field("prompt", "must not be empty"));
    }
    if prompt.len() > max_bytes {
        return Err(LimitError::field(
            "prompt",
            format!("{} bytes, at most {max_bytes} allowed", prompt.len()),
        ));
    }
    Ok(())
}

/// The conversation history: at most the plan's messages and bytes.
///
/// # Errors
///
/// A [`LimitError`] naming `conversationHistory` and the limit.
pub fn check_history(history: &[HistoryMessage], plan: &Plan) -> Result<(), LimitError> {
    let limits = &plan.request_limits;
    let field = "conversationHistory";
    let count = len_u64(history.len());
    if count > u64::from(limits.history_messages) {
        return Err(LimitError::over(
            field,
            "history_messages",
            &format!("{count} messages"),
            u64::from(limits.history_messages),
            plan,
        ));
    }
    let bytes: u64 = history.iter().map(|m| len_u64(m.content.len())).sum();
    if bytes > limits.history_bytes {
        return Err(LimitError::over(
            field,
            "history_bytes",
            &format!("{bytes} bytes"),
            limits.history_bytes,
            plan,
        ));
    }
    Ok(())
}

/// The files of an app a request carries: every path valid (written back normalised, as the
/// job would save it), none twice, at most the plan's files and bytes.
///
/// # Errors
///
/// A [`LimitError`] naming the file's path field, or `field` and the limit.
pub fn check_files(field: &str, files: &mut [AppFile], plan: &Plan) -> Result<(), LimitError> {
    let mut seen = HashSet::with_capacity(files.len());
    for (i, file) in files.iter_mut().enumerate() {
        let path_field = format!("{field}[{i}].path");
        file.path =
            validate_path(&file.path).map_err(|e| LimitError::field(&path_field, e.to_string()))?;
        if !seen.insert(file.path.clone()) {
            return Err(LimitError::field(
                path_field,
                format!("the file {:?} appears twice", file.path),
            ));
        }
    }
    check_app_size(field, files, plan)
}

/// An app's size: at most the plan's files and bytes (paths and contents).
///
/// # Errors
///
/// A [`LimitError`] naming `field` and the limit.
pub fn check_app_size(field: &str, files: &[AppFile], plan: &Plan) -> Result<(), LimitError> {
    let limits = &plan.request_limits;
    let count = len_u64(files.len());
    if count > u64::from(limits.app_files) {
        return Err(LimitError::over(
            field,
            "app_files",
            &format!("{count} files"),
            u64::from(limits.app_files),
            plan,
        ));
    }
    let bytes: u64 = files
        .iter()
        .map(|f| len_u64(f.path.len()).saturating_add(len_u64(f.content.len())))
        .sum();
    if bytes > limits.app_bytes {
        return Err(LimitError::over(
            field,
            "app_bytes",
            &format!("{bytes} bytes"),
            limits.app_bytes,
            plan,
        ));
    }
    Ok(())
}

/// The phase context: at most the plan's bytes (as JSON).
///
/// # Errors
///
/// A [`LimitError`] naming `phaseContext` and the limit.
pub fn check_phase(phase: &PhaseContext, plan: &Plan) -> Result<(), LimitError> {
    let limit = plan.request_limits.phase_context_bytes;
    let bytes = len_u64(serde_json::to_vec(phase).map_or(0, |v| v.len()));
    if bytes > limit {
        return Err(LimitError::over(
            "phaseContext",
            "phase_context_bytes",
            &format!("{bytes} bytes"),
            limit,
            plan,
        ));
    }
    Ok(())
}

/// The number of attached uploads: at most the plan's `attachments`.
///
/// # Errors
///
/// A [`LimitError`] naming `attachments` and the limit.
pub fn check_attachment_count(count: usize, plan: &Plan) -> Result<(), LimitError> {
    let max = u64::from(plan.request_limits.attachments);
    let count = len_u64(count);
    if count > max {
        return Err(LimitError::over(
            "attachments",
            "attachments",
            &format!("{count} attachments"),
            max,
            plan,
        ));
    }
    Ok(())
}

/// Bytes of text a token is taken to be, as `RenderedPrompt::estimated_input_tokens` counts.
pub const BYTES_PER_TOKEN: u64 = 4;

/// The bytes of text a request sends the model: the prompt, the history's messages, the
/// app's files (paths and contents) and the phase context (as JSON).
#[must_use]
pub fn text_bytes(
    prompt: &str,
    history: &[HistoryMessage],
    files: Option<&[AppFile]>,
    phase: Option<&PhaseContext>,
) -> u64 {
    let history: u64 = history.iter().map(|m| len_u64(m.content.len())).sum();
    let files: u64 = files
        .unwrap_or_default()
        .iter()
        .map(|f| len_u64(f.path.len()).saturating_add(len_u64(f.content.len())))
        .sum();
    let phase = phase.map_or(0, |p| len_u64(serde_json::to_vec(p).map_or(0, |v| v.len())));
    len_u64(prompt.len())
        .saturating_add(history)
        .saturating_add(files)
        .saturating_add(phase)
}

/// The input tokens an image of `width` x `height` costs a model: width x height / 750, as
/// the Messages API documents.
#[must_use]
pub fn image_tokens(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height) / 750
}

/// The input tokens the plan lets one request send: the text its request limits allow
/// (`history_bytes`, `app_bytes`, `phase_context_bytes`, and the host's prompt limit
/// `max_prompt_bytes`) at [`BYTES_PER_TOKEN`]. A request of text alone within each limit is
/// within this one; images take their share of it.
#[must_use]
pub fn request_token_limit(plan: &Plan, max_prompt_bytes: usize) -> u64 {
    let limits = &plan.request_limits;
    limits
        .history_bytes
        .saturating_add(limits.app_bytes)
        .saturating_add(limits.phase_context_bytes)
        .saturating_add(len_u64(max_prompt_bytes))
        / BYTES_PER_TOKEN
}

/// A request's estimated input tokens against the plan's limit ([`request_token_limit`]):
/// its `text_bytes` ([`text_bytes`]) at [`BYTES_PER_TOKEN`] and each attached image of
/// `images` (width, height) at [`image_tokens`]. Text alone is bounded by the other request
/// limits, so a request without images always passes.
///
/// # Errors
///
/// A [`LimitError`] naming `attachments` and the limit `request_tokens`, with the estimate
/// ([`LimitError::estimated_tokens`]).
pub fn check_request_tokens(
    text_bytes: u64,
    images: &[(u32, u32)],
    plan: &Plan,
    max_prompt_bytes: usize,
) -> Result<(), LimitError> {
    if images.is_empty() {
        return Ok(());
    }
    let max = request_token_limit(plan, max_prompt_bytes);
    let text = text_bytes / BYTES_PER_TOKEN;
    let image = images
        .iter()
        .map(|&(w, h)| image_tokens(w, h))
        .fold(0u64, u64::saturating_add);
    let estimated = text.saturating_add(image);
    if estimated <= max {
        return Ok(());
    }
    let count = match images.len() {
        1 => "1 image".to_owned(),
        n => format!("{n} images"),
    };
    Err(LimitError {
        field: "attachments".to_owned(),
        limit: Some("request_tokens"),
        max: Some(max),
        message: format!(
            "the request comes to about {estimated} input tokens ({text} of text and {image} for \
             {count} at width x height / 750), at most {max} allowed on the {} plan (limit \
             `request_tokens`)",
            plan.id
        ),
        estimated_tokens: Some((estimated, image)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use appforge_quota::PlanCatalogue;

    fn free() -> Plan {
        PlanCatalogue::default().default_plan().clone()
    }

    #[test]
    fn each_limit_names_its_field_and_plan_limit() {
        let plan = free();
        let limits = plan.request_limits;
        let history: Vec<HistoryMessage> = (0..=limits.history_messages)
            .map(|_| HistoryMessage::user("hi"))
            .collect();
        let error = check_history(&history, &plan).unwrap_err();
        assert_eq!(
            (error.field.as_str(), error.limit),
            ("conversationHistory", Some("history_messages"))
        );
        assert_eq!(error.max, Some(u64::from(limits.history_messages)));
        assert!(check_history(&history[1..], &plan).is_ok());

        let over = usize::try_from(limits.attachments).unwrap() + 1;
        let error = check_attachment_count(over, &plan).unwrap_err();
        assert_eq!(error.limit, Some("attachments"));
        assert!(check_attachment_count(over - 1, &plan).is_ok());
    }

    #[test]
    fn images_count_against_the_request_tokens_and_text_alone_never_does() {
        let plan = free();
        let max = request_token_limit(&plan, 32 * 1024);
        let text = text_bytes("a todo list", &[HistoryMessage::user("hi")], None, None);
        assert_eq!(text, 13);
        assert!(check_request_tokens(u64::MAX, &[], &plan, 32 * 1024).is_ok());
        // One image of exactly the room left passes; one pixel row more does not.
        let room = max - text / BYTES_PER_TOKEN;
        let side = 750;
        let rows = u32::try_from(room).unwrap();
        assert_eq!(image_tokens(side, rows), room);
        check_request_tokens(text, &[(side, rows)], &plan, 32 * 1024).unwrap();
        let error = check_request_tokens(text, &[(side, rows + 1)], &plan, 32 * 1024).unwrap_err();
        assert_eq!(
            (error.field.as_str(), error.limit, error.max),
            ("attachments", Some("request_tokens"), Some(max))
        );
        assert_eq!(error.estimated_tokens, Some((max + 1, room + 1)));
        assert!(
            error.message.contains("1 image at width x height / 750"),
            "{}",
            error.message
        );
    }

    #[test]
    fn paths_are_normalised_and_duplicates_refused() {
        let plan = free();
        let mut files = vec![
            AppFile::new("./src/App.tsx", "a"),
            AppFile::new("src/x.ts", "b"),
        ];
        check_files("files", &mut files, &plan).unwrap();
        assert_eq!(files[0].path, "src/App.tsx");
        let mut twice = vec![
            AppFile::new("src/a.ts", "a"),
            AppFile::new("src//a.ts", "b"),
        ];
        let error = check_files("files", &mut twice, &plan).unwrap_err();
        assert_eq!(error.field, "files[1].path");
        let mut escaping = vec![AppFile::new("../etc/passwd", "x")];
        assert_eq!(
            check_files("files", &mut escaping, &plan)
                .unwrap_err()
                .field,
            "files[0].path"
        );
    }

    #[test]
    fn prompts_must_say_something_within_the_size() {
        assert_eq!(check_prompt("  ", 10).unwrap_err().field, "prompt");
        assert!(check_prompt("0123456789", 10).is_ok());
        assert!(check_prompt("0123456789x", 10).is_err());
    }
}
