//! Integration tests of appforge-llm (one binary, one module per concern).

mod attachments;
mod client;
mod demo;
mod faults;
mod pipelines;
mod retry;
mod scripted;
mod structured;
mod support;
mod transcripts;
