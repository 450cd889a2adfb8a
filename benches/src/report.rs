use std::io::Write;
use std::time::Duration;

use serde_json::{Map, Value};

/// The one JSON line a scenario prints.
#[derive(Debug)]
pub(crate) struct Report {
    fields: Map<String, Value>,
}

impl Report {
    /// A report of `ops` operations done in `elapsed`.
    pub(crate) fn new(scenario: &str, ops: u64, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // a rate, not a count
        let ops_per_s = if seconds > 0.0 {
            ops as f64 / seconds
        } else {
            0.0
        };
        let mut fields = Map::new();
        fields.insert("scenario".into(), scenario.into());
        fields.insert("ops".into(), ops.into());
        fields.insert("seconds".into(), seconds.into());
        fields.insert("ops_per_s".into(), ops_per_s.into());
        Self { fields }
    }

    /// Adds a scenario-specific field.
    #[allow(dead_code)] // used by the scenarios that later crates add
    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Writes the line to stdout.
    pub(crate) fn print(&self) {
        let line = serde_json::to_string(&self.fields).expect("a JSON object serialises");
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").expect("stdout is writable");
    }
}
