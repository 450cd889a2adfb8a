//! Stream a message and print its text as it arrives: the smallest use of `appforge-llm`.
//!
//! ```text
//! ANTHROPIC_API_KEY=sk-ant-... cargo run -p appforge-example-stream-text -- "Name a habit tracker"
//! ```
//!
//! The client reads `ANTHROPIC_API_KEY` and, when set, `ANTHROPIC_BASE_URL` (the test points
//! it at a local server replaying a recorded stream). Retries, timeouts and the model
//! table's checks come with the client.

// A command-line program: the text goes to stdout, problems to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::process::ExitCode;

use appforge_llm::{Client, MessageRequest, models};
use futures::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Name an app that tracks habits, in one sentence.".to_owned());
    match run(&prompt).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(prompt: &str) -> appforge_llm::Result<()> {
    let client = Client::from_env()?;
    let request = MessageRequest::new(models::DEFAULT_MODEL, 1024).user(prompt);
    let mut stream = client.create_stream(&request).await?;
    let mut stdout = std::io::stdout();
    while let Some(event) = stream.next().await {
        if let Some(text) = event?.text() {
            print!("{text}");
            // Show each piece as soon as it arrives, not when the line ends.
            let _ = stdout.flush();
        }
    }
    println!();
    Ok(())
}
