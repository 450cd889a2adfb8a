//! Typed, streaming, fault-tolerant generation for AI app builders.
//!
//! ```
//! let err = appforge_llm::Error::Config("max_tokens must be positive".into());
//! assert_eq!(err.to_string(), "invalid configuration: max_tokens must be positive");
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | (none) | | the client and every provider are always built |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod changeset;
mod error;
mod pipeline;
mod prompt;
pub mod protocol;

pub use changeset::{ApplyError, ApplyErrorKind, ChangeSet, ChangeSetError, Edit, FileChange};
pub use error::{Error, Result};
pub use pipeline::{ParseError, Phase, PhasePlan};
pub use prompt::{
    ChatMode, ChatRequest, FullAppRequest, HistoryMessage, HistoryRole, ModifyRequest,
    PhaseContext, PlanRequest, PromptSettings, RenderedPrompt, SystemBlock,
};
pub use protocol::AppFile;
