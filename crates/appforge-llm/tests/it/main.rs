//! Integration tests of appforge-llm (one binary, one module per concern).

mod demo;
mod pipelines;
mod scripted;
