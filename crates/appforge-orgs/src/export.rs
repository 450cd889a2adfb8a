//! Exports of the audit log as JSON lines or CSV, page by page.

use std::io;

use chrono::SecondsFormat;
use uuid::Uuid;

use crate::Result;
use crate::audit::{AuditEntry, AuditQuery, AuditRange};
use crate::role::Permission;
use crate::service::{Caller, Orgs};
use crate::store::OrgStore;

/// The entries an export reads from the store at a time.
const EXPORT_PAGE: u32 = 500;

/// The format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One JSON object per line (`application/x-ndjson`), as [`AuditEntry`] serializes.
    JsonLines,
    /// RFC 4180 CSV with a header line (`text/csv`). A cell starting with `=`, `+`, `-` or
    /// `@` gets a leading `'` so that spreadsheets do not run it as a formula.
    Csv,
}

impl ExportFormat {
    /// The media type to answer with.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::JsonLines => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

const CSV_HEADER: &str = "seq,id,time,actor_kind,actor_id,action,target,ip,user_agent,\
                          request_id,detail,prev_hash,hash\r\n";

fn csv_cell(out: &mut String, cell: &str) {
    let defused = cell.starts_with(['=', '+', '-', '@']);
    if defused || cell.contains([',', '"', '\r', '\n']) {
        out.push('"');
        if defused {
            out.push('\'');
        }
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

/// Writes one entry in `format`, with its line end.
fn write_entry(format: ExportFormat, entry: &AuditEntry, out: &mut String) {
    match format {
        ExportFormat::JsonLines => {
            // An entry is plain data: serializing it cannot fail.
            out.push_str(&serde_json::to_string(entry).unwrap_or_default());
            out.push('\n');
        }
        ExportFormat::Csv => {
            let id = entry
                .actor
                .id()
                .map(|id| id.to_string())
                .unwrap_or_default();
            let cells = [
                entry.seq.to_string(),
                entry.id.to_string(),
                entry.time.to_rfc3339_opts(SecondsFormat::Millis, true),
                entry.actor.kind().to_owned(),
                id,
                entry.action.clone(),
                entry.target.clone().unwrap_or_default(),
                entry.ip.clone().unwrap_or_default(),
                entry.user_agent.clone().unwrap_or_default(),
                entry.request_id.clone().unwrap_or_default(),
                if entry.detail.is_null() {
                    String::new()
                } else {
                    entry.detail.to_string()
                },
                hex::encode(entry.prev_hash),
                hex::encode(entry.hash),
            ];
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_cell(out, cell);
            }
            out.push_str("\r\n");
        }
    }
}

/// An export in progress: [`next_chunk`](Self::next_chunk) reads one page of entries from the
/// store and answers their text, so that an HTTP body can stream it without holding the
/// whole log; [`write_to`](Self::write_to) copies it all to a writer.
#[derive(Debug)]
pub struct AuditExport<S> {
    orgs: Orgs<S>,
    org: Uuid,
    range: AuditRange,
    format: ExportFormat,
    after: u64,
    started: bool,
    done: bool,
}

impl<S: OrgStore> AuditExport<S> {
    /// The next piece of the export (the CSV header comes with the first), or `None` at the
    /// end.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn next_chunk(&mut self) -> Result<Option<String>> {
        if self.done {
            return Ok(None);
        }
        let mut out = String::new();
        if !self.started && self.format == ExportFormat::Csv {
            out.push_str(CSV_HEADER);
        }
        self.started = true;
        let page = self
            .orgs
            .store()
            .audit_page(
                self.org,
                &AuditQuery::new(self.range, EXPORT_PAGE).after(self.after),
            )
            .await?;
        if page.len() < EXPORT_PAGE as usize {
            self.done = true;
        }
        for entry in &page {
            write_entry(self.format, entry, &mut out);
            self.after = entry.seq;
        }
        if out.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Writes the whole export to `out`, a page at a time; returns the bytes written.
    ///
    /// # Errors
    ///
    /// Storage errors, [`Error::Io`](crate::Error::Io).
    pub async fn write_to(mut self, out: &mut impl io::Write) -> Result<u64> {
        let mut written = 0;
        while let Some(chunk) = self.next_chunk().await? {
            out.write_all(chunk.as_bytes())?;
            written += chunk.len() as u64;
        }
        out.flush()?;
        Ok(written)
    }
}

impl<S: OrgStore> Orgs<S> {
    /// Starts an export of the org's log over `range` ([`Permission::ReadAudit`]).
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`](crate::Error::OrgNotFound),
    /// [`Error::Forbidden`](crate::Error::Forbidden); storage errors.
    pub async fn export_audit(
        &self,
        caller: &Caller,
        org: Uuid,
        range: AuditRange,
        format: ExportFormat,
    ) -> Result<AuditExport<S>> {
        self.authorize(caller, org, Permission::ReadAudit).await?;
        Ok(AuditExport {
            orgs: self.clone(),
            org,
            range,
            format,
            after: 0,
            started: false,
            done: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        let mut out = String::new();
        csv_cell(&mut out, "plain");
        out.push('|');
        csv_cell(&mut out, "a,\"b\"");
        out.push('|');
        csv_cell(&mut out, "=cmd()");
        assert_eq!(out, "plain|\"a,\"\"b\"\"\"|\"'=cmd()\"");
    }
}
