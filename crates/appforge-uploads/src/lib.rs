//! User uploads for appforge: reference images a user attaches to a generation ("build
//! this"), checked, re-encoded and kept in object storage, with their metadata in a store and
//! a per-owner storage allowance.
//!
//! - **Storage** through [`object_store`]: a directory, memory, S3 and S3-compatible stores,
//!   Google Cloud Storage, Azure Blob Storage, chosen by a URL ([`Storage::from_url`]).
//! - **Validation** ([`ImagePolicy`]): the format is read from the bytes (PNG, JPEG, WebP and
//!   GIF only, never the client's word), the size and the dimensions are checked before
//!   anything is decoded (a decompression bomb never allocates), and the image is decoded and
//!   re-encoded so that only pixels are stored: EXIF and whatever rides after the image data
//!   (an HTML polyglot) are dropped.
//! - **Metadata** ([`UploadStore`]): owner, content type, size, dimensions, SHA-256, created
//!   and deleted times, in memory, SQLite or PostgreSQL; the owner's allowance is checked and
//!   the record stored in one atomic step. Deleted uploads are not found and purged later.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_uploads::Result<()> {
//! use std::io::Cursor;
//!
//! use appforge_uploads::{AnyUploadStore, Error, Storage, Uploads};
//!
//! let uploads = Uploads::new(Storage::from_url("memory://")?, AnyUploadStore::default());
//! let owner = uuid::Uuid::new_v4();
//!
//! // A 2 x 2 PNG with an HTML page appended: accepted, and only its pixels are kept.
//! let mut png = Vec::new();
//! image::DynamicImage::new_rgb8(2, 2)
//!     .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
//!     .unwrap();
//! png.extend_from_slice(b"<html><script>alert(1)</script></html>");
//!
//! let upload = uploads.upload(owner, &png, 50 * 1024 * 1024).await?;
//! assert_eq!((upload.width, upload.height), (2, 2));
//! let (_, stored) = uploads.read(owner, upload.id).await?;
//! assert!(!stored.windows(6).any(|w| w == b"<html>"));
//!
//! // Another owner does not see it; once deleted, nobody does.
//! let stranger = uuid::Uuid::new_v4();
//! assert!(matches!(uploads.read(stranger, upload.id).await, Err(Error::NotFound(_))));
//! uploads.delete(owner, upload.id).await?;
//! assert!(matches!(uploads.get(owner, upload.id).await, Err(Error::NotFound(_))));
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | [`SqliteUploadStore`] |
//! | `postgres` | no | [`PgUploadStore`] |
//! | `s3` | no | `s3://` storage (Amazon S3, MinIO, R2, ...) |
//! | `gcs` | no | `gs://` storage |
//! | `azure` | no | `az://` storage |
//!
//! Without features the crate has the memory store and the file-system and memory storage,
//! and no SQL driver.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod storage;
mod store;
mod upload;
mod uploads;
mod validate;

pub use error::{Error, Result};
pub use storage::Storage;
pub use store::UploadStore;
pub use store::any::AnyUploadStore;
pub use store::memory::MemoryUploadStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::PgUploadStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::SqliteUploadStore;
pub use upload::Upload;
pub use uploads::Uploads;
pub use validate::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, ImagePolicy, MediaType, ValidatedImage,
};
