//! The pipelines: typed request in, provider stream, typed result out.

mod output_error;
mod plan;

pub use output_error::ParseError;
pub use plan::{Phase, PhasePlan};
