//! What the protocol parser produces: sections, files, dependencies and warnings.

use std::collections::BTreeMap;
use std::fmt;

use super::path::PathErrorKind;

/// A named section of the generation protocol (`===NAME===`, `===SETUP===`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Section {
    /// `===NAME===`: the app's name.
    Name,
    /// `===DESCRIPTION===`: one or two sentences about the app.
    Description,
    /// `===APP_TYPE===`: the kind of app (`react`, `static`, ...).
    AppType,
    /// `===CHANGE_TYPE===`: what this generation is (`new_app`, `phase`, `modification`).
    ChangeType,
    /// `===CHANGE_SUMMARY===`: what changed, for the version history.
    ChangeSummary,
    /// `===DEPENDENCIES===`: `package: version` lines.
    Dependencies,
    /// `===SETUP===`: setup and run instructions.
    Setup,
}

impl Section {
    /// Every section, in the order the protocol writes them.
    pub const ALL: [Self; 7] = [
        Self::Name,
        Self::Description,
        Self::AppType,
        Self::ChangeType,
        Self::ChangeSummary,
        Self::Dependencies,
        Self::Setup,
    ];

    /// The marker's name, as between the `===`.
    #[must_use]
    pub fn marker(self) -> &'static str {
        match self {
            Self::Name => "NAME",
            Self::Description => "DESCRIPTION",
            Self::AppType => "APP_TYPE",
            Self::ChangeType => "CHANGE_TYPE",
            Self::ChangeSummary => "CHANGE_SUMMARY",
            Self::Dependencies => "DEPENDENCIES",
            Self::Setup => "SETUP",
        }
    }

    pub(crate) fn from_marker(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.marker() == name)
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "==={}===", self.marker())
    }
}

/// One file of an app: a validated relative path and its content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct AppFile {
    /// Relative path with `/` separators, checked by [`validate_path`](super::validate_path).
    pub path: String,
    /// The file's text.
    pub content: String,
}

impl AppFile {
    /// A file at `path` holding `content` (the path is not validated here).
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            content: content.into(),
        }
    }
}

/// Something worth telling the user about a generation that still produced a result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// The same path was written twice; the later content was kept.
    DuplicateFile {
        /// The path written twice.
        path: String,
    },
    /// A section was written twice; the later value was kept.
    DuplicateSection {
        /// The section written twice.
        section: Section,
    },
    /// A file path failed validation; the file was dropped.
    RejectedPath {
        /// The path as the model wrote it.
        path: String,
        /// Why it was refused.
        reason: PathErrorKind,
    },
    /// A `===DEPENDENCIES===` line was not `package: version`.
    InvalidDependency {
        /// The line as written.
        line: String,
    },
    /// The output stopped before `===END===` and continuations did not complete it.
    Truncated {
        /// What is missing: paths of files cut short, and markers never written.
        missing: Vec<String>,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateFile { path } => {
                write!(
                    f,
                    "file {path:?} was written twice; the later version was kept"
                )
            }
            Self::DuplicateSection { section } => {
                write!(
                    f,
                    "section {section} was written twice; the later value was kept"
                )
            }
            Self::RejectedPath { path, reason } => {
                let err = super::PathError {
                    path: path.clone(),
                    kind: *reason,
                };
                write!(f, "{err}; the file was dropped")
            }
            Self::InvalidDependency { line } => {
                write!(f, "dependency line {line:?} is not `package: version`")
            }
            Self::Truncated { missing } => {
                write!(
                    f,
                    "the output was truncated; missing: {}",
                    missing.join(", ")
                )
            }
        }
    }
}

/// A raw `===PHASE:n===` section, before `appforge-llm` reads it as a phase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RawPhase {
    /// The number after `PHASE:`.
    pub number: u32,
    /// The section's text, trimmed.
    pub body: String,
}

/// Everything parsed from one protocol stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ParsedGeneration {
    /// `===NAME===`, trimmed.
    pub name: Option<String>,
    /// `===DESCRIPTION===`, trimmed.
    pub description: Option<String>,
    /// `===APP_TYPE===`, trimmed.
    pub app_type: Option<String>,
    /// `===CHANGE_TYPE===`, trimmed.
    pub change_type: Option<String>,
    /// `===CHANGE_SUMMARY===`, trimmed.
    pub change_summary: Option<String>,
    /// `===SETUP===`, trimmed.
    pub setup: Option<String>,
    /// Whether `===DEPENDENCIES===` appeared.
    pub has_dependencies: bool,
    /// `===DEPENDENCIES===` as package -> version.
    pub dependencies: BTreeMap<String, String>,
    /// Complete files in first-written order (a duplicate keeps its first position).
    pub files: Vec<AppFile>,
    /// `===PHASE:n===` sections in written order.
    pub phases: Vec<RawPhase>,
    /// The file being written when the input ended before `===END===`, if any.
    pub partial_file: Option<AppFile>,
    /// Whether `===END===` was seen.
    pub ended: bool,
    /// Byte offset in the input where the complete part ends: the start of the partial
    /// file's marker line, or the input's length.
    pub complete_len: usize,
    /// Duplicates, rejected paths and malformed dependency lines.
    pub warnings: Vec<Warning>,
}

impl ParsedGeneration {
    /// The value of a text section, if written.
    #[must_use]
    pub fn section(&self, section: Section) -> Option<&str> {
        match section {
            Section::Name => self.name.as_deref(),
            Section::Description => self.description.as_deref(),
            Section::AppType => self.app_type.as_deref(),
            Section::ChangeType => self.change_type.as_deref(),
            Section::ChangeSummary => self.change_summary.as_deref(),
            Section::Setup => self.setup.as_deref(),
            Section::Dependencies => None,
        }
    }

    pub(crate) fn slot(&mut self, section: Section) -> Option<&mut Option<String>> {
        match section {
            Section::Name => Some(&mut self.name),
            Section::Description => Some(&mut self.description),
            Section::AppType => Some(&mut self.app_type),
            Section::ChangeType => Some(&mut self.change_type),
            Section::ChangeSummary => Some(&mut self.change_summary),
            Section::Setup => Some(&mut self.setup),
            Section::Dependencies => None,
        }
    }
}

/// Parses `===DEPENDENCIES===` text: `package: version` lines, tolerating list bullets,
/// quotes, trailing commas, JSON braces, code fences and `package@version`.
pub(crate) fn parse_dependencies(
    text: &str,
    into: &mut BTreeMap<String, String>,
    warnings: &mut Vec<Warning>,
) {
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with("```") || line == "{" || line == "}" {
            continue;
        }
        let line = line
            .trim_start_matches(['-', '*'])
            .trim_start()
            .trim_end_matches(',');
        let split = line.split_once(':').or_else(|| {
            line.rfind('@')
                .filter(|&i| i > 0)
                .map(|i| (&line[..i], &line[i + 1..]))
        });
        let unquote = |s: &str| s.trim().trim_matches(['"', '\'', '`']).trim().to_owned();
        match split {
            Some((name, version))
                if !unquote(name).is_empty()
                    && !unquote(name).contains(char::is_whitespace)
                    && !unquote(version).is_empty() =>
            {
                into.insert(unquote(name), unquote(version));
            }
            _ => warnings.push(Warning::InvalidDependency {
                line: raw.trim().to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_tolerate_common_spellings() {
        let mut deps = BTreeMap::new();
        let mut warnings = Vec::new();
        parse_dependencies(
            "react: ^18.3.1\n- \"zustand\": \"4.5.0\",\n* @types/react: 18.3.3\ndate-fns@3.6.0\n```\nnonsense here\n",
            &mut deps,
            &mut warnings,
        );
        assert_eq!(deps["react"], "^18.3.1");
        assert_eq!(deps["zustand"], "4.5.0");
        assert_eq!(deps["@types/react"], "18.3.3");
        assert_eq!(deps["date-fns"], "3.6.0");
        assert_eq!(deps.len(), 4);
        assert_eq!(
            warnings,
            vec![Warning::InvalidDependency {
                line: "nonsense here".into()
            }]
        );
    }

    #[test]
    fn warnings_display_their_subject() {
        let w = Warning::RejectedPath {
            path: "/etc/passwd".into(),
            reason: PathErrorKind::Absolute,
        };
        assert_eq!(
            w.to_string(),
            "file path \"/etc/passwd\" is absolute; the file was dropped"
        );
        let w = Warning::Truncated {
            missing: vec!["src/App.tsx".into(), "===END===".into()],
        };
        assert_eq!(
            w.to_string(),
            "the output was truncated; missing: src/App.tsx, ===END==="
        );
    }
}
