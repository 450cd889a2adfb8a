//! A model's output that does not make the pipeline's result.

use std::fmt;

/// A model's output that could not be read as the pipeline's result. Keeps the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The pipeline (`full_app`, `plan_phases`, ...).
    pub pipeline: &'static str,
    /// What is wrong, e.g. the missing sections.
    pub reason: String,
    /// The model's text as received.
    pub raw: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} output: {} ({} bytes of model output kept)",
            self.pipeline,
            self.reason,
            self.raw.len()
        )
    }
}

impl std::error::Error for ParseError {}
