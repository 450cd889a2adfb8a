//! Where upload bytes live: one [`ObjectStore`] chosen by a URL.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use url::Url;

use crate::{Error, Result};

/// Object storage for uploads: the local file system, memory, S3 (and S3-compatible
/// stores), Google Cloud Storage or Azure Blob Storage, through [`object_store`].
///
/// Cheap to clone. Its `Debug` shows the kind of store and its location with any user
/// name, password or query stripped; credentials never appear.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<dyn ObjectStore>,
    location: String,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens the storage a URL names:
    ///
    /// | URL | store | feature |
    /// | --- | --- | --- |
    /// | `file:///var/lib/appforge/uploads` | a directory (created if missing) | always |
    /// | `memory://` | process memory (tests, prototypes) | always |
    /// | `s3://bucket/prefix` | Amazon S3 or an S3-compatible store | `s3` |
    /// | `gs://bucket/prefix` | Google Cloud Storage | `gcs` |
    /// | `az://container/prefix` | Azure Blob Storage | `azure` |
    ///
    /// Cloud credentials, regions and endpoints come from the provider's usual environment
    /// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, ...).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a URL that does not parse, a scheme that is unknown
    /// or whose feature is off; [`Error::Storage`] when the store cannot be set up.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = Url::parse(url)
            .map_err(|e| Error::InvalidArgument(format!("bad storage URL {url:?}: {e}")))?;
        let location = redacted(&parsed);
        let prefix = || Path::from_url_path(parsed.path()).map_err(object_store::Error::from);
        let inner: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| {
                    Error::InvalidArgument(format!(
                        "bad file URL {location:?}: not an absolute path"
                    ))
                })?;
                std::fs::create_dir_all(&dir).map_err(|e| {
                    Error::InvalidArgument(format!("cannot create {}: {e}", dir.display()))
                })?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?)
            }
            "memory" => Arc::new(InMemory::new()),
            #[cfg(feature = "s3")]
            "s3" | "s3a" => {
                let store = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()?;
                with_prefix(store, prefix()?)
            }
            #[cfg(feature = "gcs")]
            "gs" => {
                let store = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .build()?;
                with_prefix(store, prefix()?)
            }
            #[cfg(feature = "azure")]
            "az" | "azure" | "abfs" | "abfss" => {
                let store = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .build()?;
                with_prefix(store, prefix()?)
            }
            other => {
                let _ = prefix;
                return Err(Error::InvalidArgument(format!(
                    "unsupported storage URL scheme {other:?} (file://, memory://, s3:// with \
                     the `s3` feature, gs:// with `gcs`, az:// with `azure`)"
                )));
            }
        };
        Ok(Self { inner, location })
    }

    /// Storage over an object store built by the caller (custom endpoints, credentials or
    /// retry settings), with every key under `prefix` (empty for none). `location` is what
    /// `Debug` shows: never put a secret in it.
    #[must_use]
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, location: impl Into<String>) -> Self {
        let prefix = Path::from(prefix);
        let inner: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Self {
            inner,
            location: location.into(),
        }
    }

    /// Storage in process memory.
    #[must_use]
    pub fn in_memory() -> Self {
        Self {
            inner: Arc::new(InMemory::new()),
            location: "memory://".to_owned(),
        }
    }

    /// Where the storage is, without credentials.
    #[must_use]
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes `bytes` at `key`, replacing what was there.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`].
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.inner
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// The bytes at `key`, or `None` when nothing is there.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`].
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.inner.get(&Path::from(key)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes what is at `key`; nothing there is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`].
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The object store underneath.
    #[must_use]
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }
}

#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn with_prefix(store: impl ObjectStore, prefix: Path) -> Arc<dyn ObjectStore> {
    if prefix.as_ref().is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// The URL without user name, password, query or fragment.
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_location_carry_no_credentials() {
        let url = Url::parse("s3://AKIDSECRET:hunter2@bucket/prefix?secret=topsecret").unwrap();
        let shown = redacted(&url);
        assert!(
            !shown.contains("hunter2") && !shown.contains("topsecret"),
            "{shown}"
        );
        assert!(!shown.contains("AKIDSECRET"), "{shown}");
        assert!(shown.starts_with("s3://bucket/prefix"), "{shown}");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let e = Storage::from_url("ftp://example.com/x").unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(matches!(
            Storage::from_url("not a url"),
            Err(Error::InvalidArgument(_))
        ));
    }
}
