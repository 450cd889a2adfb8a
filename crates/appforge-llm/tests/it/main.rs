//! Integration tests of appforge-llm (one binary, one module per concern).

mod pipelines;
mod scripted;
