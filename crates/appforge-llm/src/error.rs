/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting or an argument is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file path from a model was refused.
    #[error(transparent)]
    InvalidPath(#[from] crate::protocol::PathError),
    /// A model's reply is not a usable change set; the raw text is kept.
    #[error(transparent)]
    ChangeSet(#[from] crate::changeset::ChangeSetError),
    /// A change set does not fit the app it was applied to; nothing was applied.
    #[error(transparent)]
    Apply(#[from] crate::changeset::ApplyError),
    /// A model's output could not be read as the pipeline's result; the raw text is kept.
    #[error(transparent)]
    Parse(#[from] crate::pipeline::ParseError),
}

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
