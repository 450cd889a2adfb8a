use std::path::{Path, PathBuf};

/// A SQLite database file in a temporary directory, removed with this value.
#[derive(Debug)]
pub struct TempSqlite {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TempSqlite {
    /// A path for a new database file (the file itself is created by whoever opens it).
    ///
    /// # Panics
    ///
    /// Panics when no temporary directory can be created.
    #[must_use]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("appforge.db");
        Self { dir, path }
    }

    /// The database file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A `sqlite://` URL that creates the file when missing.
    #[must_use]
    pub fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.path.display())
    }

    /// The temporary directory holding the file.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TempSqlite {
    fn default() -> Self {
        Self::new()
    }
}
