//! Integration tests of appforge-llm (one binary, one module per concern).

mod client;
mod faults;
mod retry;
mod scripted;
mod support;
mod transcripts;
