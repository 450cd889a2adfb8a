//! A version's files as a zip archive.

use std::io::{Cursor, Write};

use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::app::Version;
use crate::{Error, Result};

/// The version's files in a zip archive (deflate), each at its path, in the version's order.
///
/// # Errors
///
/// [`Error::Zip`] when the archive cannot be written.
pub fn export_zip(version: &Version) -> Result<Vec<u8>> {
    let zip_error = |e: &dyn std::fmt::Display| Error::Zip(e.to_string());
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for file in &version.files {
        writer
            .start_file(file.path.as_str(), options)
            .map_err(|e| zip_error(&e))?;
        writer
            .write_all(file.content.as_bytes())
            .map_err(|e| zip_error(&e))?;
    }
    let cursor = writer.finish().map_err(|e| zip_error(&e))?;
    Ok(cursor.into_inner())
}
