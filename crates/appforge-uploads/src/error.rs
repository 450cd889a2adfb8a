use uuid::Uuid;

/// The error type of this crate.
///
/// Callers ask questions rather than match: [`status`](Self::status) is the HTTP status an
/// API answers with and [`code`](Self::code) a stable machine-readable name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a PNG, JPEG, WebP or GIF image (an SVG, a PDF, HTML, ...), whatever
    /// the client said they were.
    #[error("unsupported file type: only PNG, JPEG, WebP and GIF images are accepted")]
    UnsupportedFormat,

    /// The upload is larger than the byte limit.
    #[error("the upload is {size} bytes, the limit is {max}")]
    TooLarge {
        /// The upload's size in bytes (at least; a stream is cut at the limit).
        size: u64,
        /// The limit.
        max: u64,
    },

    /// A side of the image is longer than the limit; read from the header, nothing decoded.
    #[error("the image is {width} x {height} pixels, the limit is {max_side} pixels a side")]
    DimensionsTooLarge {
        /// The declared width.
        width: u32,
        /// The declared height.
        height: u32,
        /// The limit on either side.
        max_side: u32,
    },

    /// The image has more pixels than the limit, or decoding it would need more memory than
    /// allowed (a decompression bomb).
    #[error("the image has too many pixels ({width} x {height}), the limit is {max_pixels}")]
    TooManyPixels {
        /// The declared width.
        width: u32,
        /// The declared height.
        height: u32,
        /// The limit on width x height.
        max_pixels: u64,
    },

    /// The bytes start like a supported image but do not decode.
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),

    /// Storing the upload would take the owner past their storage allowance; nothing was
    /// stored.
    #[error("storage allowance exceeded: {used} of {limit} bytes used, the upload needs {size}")]
    QuotaExceeded {
        /// The bytes the owner's live uploads take.
        used: u64,
        /// The upload's size in bytes.
        size: u64,
        /// The owner's allowance in bytes.
        limit: u64,
    },

    /// No live upload of this owner has this id: another owner's upload and a deleted one
    /// are not found either.
    #[error("upload {0} not found")]
    NotFound(Uuid),

    /// An argument is invalid (a storage URL, a setting).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The object store failed.
    #[error("object storage error: {0}")]
    Storage(#[from] object_store::Error),

    /// Stored metadata cannot be read back.
    #[error("corrupt stored metadata: {0}")]
    CorruptMetadata(String),

    /// The database failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("uploads database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A migration failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("uploads migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A blocking task (decoding) panicked or was cancelled.
    #[error("the image task failed: {0}")]
    Task(String),
}

impl Error {
    /// The HTTP status an API answers with: 415 for a format that is not accepted, 413 for
    /// a file over the byte limit, 422 for an image too large in pixels or corrupt, 403 for
    /// an allowance exceeded, 404, 400, and 500 for the rest.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::UnsupportedFormat => 415,
            Self::TooLarge { .. } => 413,
            Self::DimensionsTooLarge { .. } | Self::TooManyPixels { .. } | Self::Corrupt(_) => 422,
            Self::QuotaExceeded { .. } => 403,
            Self::NotFound(_) => 404,
            Self::InvalidArgument(_) => 400,
            _ => 500,
        }
    }

    /// A stable machine-readable name: `unsupported_format`, `too_large`,
    /// `dimensions_too_large`, `too_many_pixels`, `corrupt_image`, `storage_quota_exceeded`,
    /// `not_found`, `invalid_argument` or `internal`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedFormat => "unsupported_format",
            Self::TooLarge { .. } => "too_large",
            Self::DimensionsTooLarge { .. } => "dimensions_too_large",
            Self::TooManyPixels { .. } => "too_many_pixels",
            Self::Corrupt(_) => "corrupt_image",
            Self::QuotaExceeded { .. } => "storage_quota_exceeded",
            Self::NotFound(_) => "not_found",
            Self::InvalidArgument(_) => "invalid_argument",
            _ => "internal",
        }
    }

    /// Whether the client's upload or request is at fault (a 4xx [`status`](Self::status)):
    /// its message can be shown to the user.
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status())
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
