//! Zip archives of app files: every path checked and written once.

use std::collections::HashMap;
use std::io::{Cursor, Write};

use appforge_files::validate_path;
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::app::Version;
use crate::{Error, Result};

/// The version's files in a zip archive (deflate), each at its path, in the version's order;
/// see [`zip_files`].
///
/// # Errors
///
/// [`Error::InvalidPath`] for a stored path that [`validate_path`] refuses (one stored before
/// a check was added), [`Error::Zip`] when the archive cannot be written.
pub fn export_zip(version: &Version) -> Result<Vec<u8>> {
    zip_files(
        version
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.content.as_bytes())),
    )
}

/// A zip archive (deflate, mode 0644) of `(path, content)` entries.
///
/// Every path is checked with [`validate_path`] and written normalised (`./src//a.ts` as
/// `src/a.ts`). A path given more than once (after normalising) is written once, at its first
/// place, with the content given last, as writing the files one after another would leave
/// it: a zip holding one name twice is refused or extracted differently by each tool.
///
/// # Errors
///
/// [`Error::InvalidPath`] naming the first path refused, [`Error::Zip`] when the archive
/// cannot be written.
pub fn zip_files<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<Vec<u8>> {
    let mut files: Vec<(String, &[u8])> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (path, content) in entries {
        let path = validate_path(path).map_err(Error::InvalidPath)?;
        match seen.get(&path) {
            Some(&at) => files[at].1 = content,
            None => {
                seen.insert(path.clone(), files.len());
                files.push((path, content));
            }
        }
    }
    let zip_error = |e: &dyn std::fmt::Display| Error::Zip(e.to_string());
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (path, content) in files {
        writer
            .start_file(path.as_str(), options)
            .map_err(|e| zip_error(&e))?;
        writer.write_all(content).map_err(|e| zip_error(&e))?;
    }
    let cursor = writer.finish().map_err(|e| zip_error(&e))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn entries(bytes: Vec<u8>) -> Vec<(String, String)> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).unwrap();
                let mut text = String::new();
                file.read_to_string(&mut text).unwrap();
                (file.name().unwrap().into_owned(), text)
            })
            .collect()
    }

    #[test]
    fn a_path_given_twice_is_written_once_with_the_last_content() {
        let bytes = zip_files([
            ("src/a.ts", b"first".as_slice()),
            ("b.ts", b"b".as_slice()),
            ("./src//a.ts", b"second".as_slice()),
        ])
        .unwrap();
        assert_eq!(
            entries(bytes),
            [
                ("src/a.ts".to_owned(), "second".to_owned()),
                ("b.ts".to_owned(), "b".to_owned()),
            ]
        );
    }

    #[test]
    fn hostile_paths_are_refused_by_name() {
        for path in [
            "../evil",
            "/etc/passwd",
            ".GIT/config",
            "CON",
            "a\u{202E}b",
            "x./y",
        ] {
            let err = zip_files([("ok.txt", b"".as_slice()), (path, b"".as_slice())]).unwrap_err();
            match err {
                Error::InvalidPath(e) => assert_eq!(e.path, path),
                other => panic!("{path}: {other}"),
            }
        }
    }
}
