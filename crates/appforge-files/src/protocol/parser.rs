//! The incremental parser of the generation protocol.

use std::collections::HashMap;

use super::generation::{
    AppFile, ParsedGeneration, RawPhase, Section, Warning, parse_dependencies,
};
use super::path::validate_path;

/// The longest line still considered as a possible marker; longer `===` lines are content.
const MAX_MARKER_LINE: usize = super::path::MAX_PATH_LEN + 64;

/// What the parser reports as text arrives. Borrowed: copy what you keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolEvent<'a> {
    /// A text section is complete.
    Section {
        /// Which section.
        section: Section,
        /// Its value, trimmed (raw lines for `===DEPENDENCIES===`).
        value: &'a str,
    },
    /// A `===FILE:path===` marker with a valid path.
    FileStarted {
        /// The normalised path.
        path: &'a str,
    },
    /// More content of the file being written.
    FileDelta {
        /// The file's path.
        path: &'a str,
        /// The new text.
        text: &'a str,
    },
    /// The file is complete: the next marker arrived.
    FileCompleted {
        /// The file's path.
        path: &'a str,
        /// Its length in bytes.
        bytes: usize,
    },
    /// A `===PHASE:n===` section is complete.
    Phase {
        /// The phase number.
        number: u32,
        /// The section's text, trimmed.
        body: &'a str,
    },
    /// A duplicate, a rejected path or a malformed line.
    Warning(&'a Warning),
    /// `===END===`.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker<'a> {
    Section(Section),
    File(&'a str),
    Phase(u32),
    End,
}

/// Reads a whole line (without its line break) as a marker, if it is one.
fn marker(line: &str) -> Option<Marker<'_>> {
    let inner = line
        .trim_end()
        .strip_prefix("===")?
        .strip_suffix("===")?
        .trim();
    if inner == "END" {
        return Some(Marker::End);
    }
    if let Some(path) = inner.strip_prefix("FILE:") {
        // Models sometimes quote the path: `src/App.tsx` or "src/App.tsx".
        return Some(Marker::File(path.trim().trim_matches(['`', '"', '\''])));
    }
    if let Some(n) = inner.strip_prefix("PHASE:") {
        return n.trim().parse().ok().map(Marker::Phase);
    }
    Section::from_marker(inner).map(Marker::Section)
}

/// Whether the current file is wrapped in a Markdown code fence (which is not content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fence {
    /// The file's first line has not been seen.
    Unknown,
    /// No fence.
    None,
    /// The first line opened a fence; a closing line before the next marker is dropped.
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Preamble,
    Section(Section),
    Phase(u32),
    File,
    RejectedFile,
    End,
}

/// Parses the generation protocol incrementally, in time linear in the input.
///
/// Feed text in chunks of any size (markers may be split anywhere); a marker is a whole line
/// such as `===NAME===` or `===FILE:src/App.tsx===`, and anything else, including `===` text
/// that is not a whole marker line, is content. File paths are checked with
/// [`validate_path`]; a refused path drops its file with a [`Warning::RejectedPath`]. A file
/// wrapped in a Markdown code fence (a first line such as `` ```tsx `` and a last line
/// `` ``` ``), which models write despite instructions, loses the fence.
///
/// # Example
///
/// ```
/// use appforge_files::protocol::{ProtocolEvent, ProtocolParser};
///
/// let mut parser = ProtocolParser::new();
/// let mut started = Vec::new();
/// for chunk in ["===NAME===\nTodo\n===FI", "LE:src/App.tsx===\nexport {};\n===END===\n"] {
///     parser.feed(chunk, |event| {
///         if let ProtocolEvent::FileStarted { path } = event {
///             started.push(path.to_owned());
///         }
///     });
/// }
/// let parsed = parser.finish(|_| {});
/// assert_eq!(started, ["src/App.tsx"]);
/// assert_eq!(parsed.name.as_deref(), Some("Todo"));
/// assert_eq!(parsed.files[0].content, "export {};\n");
/// assert!(parsed.ended);
/// ```
#[derive(Debug)]
pub struct ProtocolParser {
    /// Whether the next byte starts a line.
    line_start: bool,
    /// Whether `pending` holds the start of a line that may be a marker.
    in_pending: bool,
    pending: String,
    pending_offset: usize,
    consumed: usize,
    mode: Mode,
    text: String,
    file_path: String,
    file_offset: usize,
    fence: Fence,
    /// A possible closing fence (and blank lines after it), held until the next marker.
    held: String,
    file_index: HashMap<String, usize>,
    out: ParsedGeneration,
}

impl Default for ProtocolParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ProtocolParser {
    /// A parser at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self {
            line_start: true,
            in_pending: false,
            pending: String::new(),
            pending_offset: 0,
            consumed: 0,
            mode: Mode::Preamble,
            text: String::new(),
            file_path: String::new(),
            file_offset: 0,
            fence: Fence::None,
            held: String::new(),
            file_index: HashMap::new(),
            out: ParsedGeneration::default(),
        }
    }

    /// Parses one chunk, reporting events to `on_event`.
    pub fn feed(&mut self, chunk: &str, mut on_event: impl FnMut(ProtocolEvent<'_>)) {
        let bytes = chunk.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            if self.in_pending {
                match memchr::memchr(b'\n', &bytes[pos..]) {
                    Some(i) => {
                        self.pending.push_str(&chunk[pos..pos + i + 1]);
                        pos += i + 1;
                        self.end_pending(&mut on_event);
                        self.line_start = true;
                    }
                    None => {
                        self.pending.push_str(&chunk[pos..]);
                        pos = bytes.len();
                        if !could_be_marker(&self.pending) && !could_be_fence(&self.pending) {
                            self.end_pending(&mut on_event);
                            self.line_start = false;
                        }
                    }
                }
            } else if self.line_start
                && (bytes[pos] == b'=' || (bytes[pos] == b'`' && self.fence_matters()))
            {
                self.in_pending = true;
                self.pending_offset = self.consumed + pos;
            } else {
                let end = content_end(bytes, pos, self.fence_matters());
                self.content(&chunk[pos..end], &mut on_event);
                self.line_start = bytes[end - 1] == b'\n';
                pos = end;
            }
        }
        self.consumed += bytes.len();
    }

    /// Ends the stream and returns what was parsed. A file still open without `===END===`
    /// becomes [`ParsedGeneration::partial_file`].
    pub fn finish(mut self, mut on_event: impl FnMut(ProtocolEvent<'_>)) -> ParsedGeneration {
        if self.in_pending {
            self.end_pending(&mut on_event);
        }
        if self.mode == Mode::File {
            self.out.partial_file = Some(AppFile {
                path: std::mem::take(&mut self.file_path),
                content: std::mem::take(&mut self.text),
            });
            self.out.complete_len = self.file_offset;
        } else {
            self.close(&mut on_event);
            self.out.complete_len = self.consumed;
        }
        self.out
    }

    /// Classifies the pending line (with its line break, if any) as a marker or content.
    fn end_pending(&mut self, on_event: &mut impl FnMut(ProtocolEvent<'_>)) {
        self.in_pending = false;
        let line = std::mem::take(&mut self.pending);
        let bare = line.strip_suffix('\n').unwrap_or(&line);
        if bare.len() > MAX_MARKER_LINE {
            // Too long for a marker or a fence, however it arrived.
            self.content(&line, on_event);
        } else if line.starts_with('`') && self.mode == Mode::File {
            self.on_backtick_line(&line, bare.trim_end(), on_event);
        } else {
            match marker(bare) {
                Some(found) if self.mode != Mode::End => self.on_marker(found, on_event),
                _ => self.content(&line, on_event),
            }
        }
        self.pending = line;
        self.pending.clear();
    }

    /// Whether a line starting with a backtick may be a code fence to drop.
    fn fence_matters(&self) -> bool {
        self.mode == Mode::File && self.fence != Fence::None
    }

    /// A whole line starting with a backtick, in a file: an opening fence on the first line,
    /// a possible closing fence in a fenced file, or content.
    fn on_backtick_line(
        &mut self,
        line: &str,
        bare: &str,
        on_event: &mut impl FnMut(ProtocolEvent<'_>),
    ) {
        match self.fence {
            Fence::Unknown => {
                let tag = bare.strip_prefix("```");
                if tag.is_some_and(|t| {
                    t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-_.".contains(c))
                }) {
                    self.fence = Fence::Open;
                } else {
                    self.content(line, on_event);
                }
            }
            Fence::Open if bare == "```" => {
                // An earlier held fence was not the closing one after all.
                let previous = std::mem::take(&mut self.held);
                if !previous.is_empty() {
                    self.content(&previous, on_event);
                }
                self.held.push_str(line);
            }
            _ => self.content(line, on_event),
        }
    }

    fn content(&mut self, text: &str, on_event: &mut impl FnMut(ProtocolEvent<'_>)) {
        match self.mode {
            Mode::File => {
                if self.fence == Fence::Unknown && !text.trim().is_empty() {
                    self.fence = Fence::None;
                }
                if !self.held.is_empty() {
                    if text.trim().is_empty() {
                        self.held.push_str(text);
                        return;
                    }
                    let held = std::mem::take(&mut self.held);
                    self.text.push_str(&held);
                    on_event(ProtocolEvent::FileDelta {
                        path: &self.file_path,
                        text: &held,
                    });
                }
                self.text.push_str(text);
                on_event(ProtocolEvent::FileDelta {
                    path: &self.file_path,
                    text,
                });
            }
            Mode::Section(_) | Mode::Phase(_) => self.text.push_str(text),
            Mode::Preamble | Mode::RejectedFile | Mode::End => {}
        }
    }

    fn on_marker(&mut self, found: Marker<'_>, on_event: &mut impl FnMut(ProtocolEvent<'_>)) {
        self.close(on_event);
        self.text.clear();
        self.mode = match found {
            Marker::Section(section) => Mode::Section(section),
            Marker::Phase(number) => Mode::Phase(number),
            Marker::End => {
                self.out.ended = true;
                on_event(ProtocolEvent::End);
                Mode::End
            }
            Marker::File(raw) => match validate_path(raw) {
                Ok(path) => {
                    self.file_path = path;
                    self.file_offset = self.pending_offset;
                    self.fence = Fence::Unknown;
                    self.held.clear();
                    on_event(ProtocolEvent::FileStarted {
                        path: &self.file_path,
                    });
                    Mode::File
                }
                Err(err) => {
                    self.warn(
                        Warning::RejectedPath {
                            path: err.path,
                            reason: err.kind,
                        },
                        on_event,
                    );
                    Mode::RejectedFile
                }
            },
        };
    }

    /// Completes whatever the current mode was writing.
    fn close(&mut self, on_event: &mut impl FnMut(ProtocolEvent<'_>)) {
        match self.mode {
            Mode::File => {
                // A held line was the closing fence.
                self.held.clear();
                let bytes = self.text.len();
                on_event(ProtocolEvent::FileCompleted {
                    path: &self.file_path,
                    bytes,
                });
                let content = std::mem::take(&mut self.text);
                let path = std::mem::take(&mut self.file_path);
                if let Some(&i) = self.file_index.get(&path) {
                    self.out.files[i].content = content;
                    self.warn(Warning::DuplicateFile { path }, on_event);
                } else {
                    self.file_index.insert(path.clone(), self.out.files.len());
                    self.out.files.push(AppFile { path, content });
                }
            }
            Mode::Section(Section::Dependencies) => {
                let before = self.out.warnings.len();
                self.out.has_dependencies = true;
                parse_dependencies(
                    &self.text,
                    &mut self.out.dependencies,
                    &mut self.out.warnings,
                );
                on_event(ProtocolEvent::Section {
                    section: Section::Dependencies,
                    value: self.text.trim(),
                });
                for warning in &self.out.warnings[before..] {
                    on_event(ProtocolEvent::Warning(warning));
                }
            }
            Mode::Section(section) => {
                let value = self.text.trim().to_owned();
                if let Some(slot) = self.out.slot(section) {
                    let previous = slot.replace(value);
                    if previous.is_some() {
                        self.warn(Warning::DuplicateSection { section }, on_event);
                    }
                }
                on_event(ProtocolEvent::Section {
                    section,
                    value: self.text.trim(),
                });
            }
            Mode::Phase(number) => {
                let body = self.text.trim().to_owned();
                on_event(ProtocolEvent::Phase {
                    number,
                    body: &body,
                });
                self.out.phases.push(RawPhase { number, body });
            }
            Mode::Preamble | Mode::RejectedFile | Mode::End => {}
        }
    }

    fn warn(&mut self, warning: Warning, on_event: &mut impl FnMut(ProtocolEvent<'_>)) {
        self.out.warnings.push(warning);
        if let Some(last) = self.out.warnings.last() {
            on_event(ProtocolEvent::Warning(last));
        }
    }
}

/// The end of the content run starting at `pos`: just after the next line break followed by
/// `=` (a possible marker), or the end of the chunk.
fn content_end(bytes: &[u8], pos: usize, stop_at_backtick: bool) -> usize {
    for i in memchr::memchr_iter(b'\n', &bytes[pos..]) {
        let next = pos + i + 1;
        if bytes
            .get(next)
            .is_none_or(|&b| b == b'=' || (stop_at_backtick && b == b'`'))
        {
            return next;
        }
    }
    bytes.len()
}

/// Whether a line start without its line break yet may still become a code fence line.
fn could_be_fence(start: &str) -> bool {
    start.len() <= MAX_MARKER_LINE
        && if start.len() < 3 {
            "```".starts_with(start)
        } else {
            start.starts_with("```")
        }
}

/// Whether a line start without its line break yet may still become a marker.
fn could_be_marker(start: &str) -> bool {
    start.len() <= MAX_MARKER_LINE
        && if start.len() < 3 {
            "===".starts_with(start)
        } else {
            start.starts_with("===")
        }
}

/// Parses a whole protocol text at once.
#[must_use]
pub fn parse(text: &str) -> ParsedGeneration {
    let mut parser = ProtocolParser::new();
    parser.feed(text, |_| {});
    parser.finish(|_| {})
}
