//! The generation protocol: section markers on their own lines, parsed as text streams in.
//!
//! ```text
//! ===NAME===
//! Habit Tracker
//! ===FILE:src/App.tsx===
//! export default function App() { ... }
//! ===DEPENDENCIES===
//! react: ^18.3.1
//! ===END===
//! ```

mod generation;
mod parser;
mod path;
mod scaffold;

pub use generation::{AppFile, ParsedGeneration, RawPhase, Section, Warning};
pub use parser::{ProtocolEvent, ProtocolParser, parse};
pub use path::{MAX_PATH_LEN, PathError, PathErrorKind, validate_path};
pub use scaffold::{
    DEFAULT_TOOL_VERSIONS, RefusedDependency, Scaffold, check_dependency, package_name, scaffold,
};

#[cfg(test)]
mod tests;
