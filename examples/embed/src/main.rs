//! `cargo run -p appforge-example-embed`: serves on 127.0.0.1:3001 with `embed.db`, and prints
//! a session token to call `POST /builder/ai-builder/full-app` with.

#![allow(clippy::print_stdout)]

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = appforge_example_embed::Sessions::default();
    let token = sessions.sign_in(uuid::Uuid::new_v4());
    let (app, workers) =
        appforge_example_embed::app("sqlite://embed.db?mode=rwc", sessions).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\");
    println!(
        "  -d '{{\"prompt\":\"a todo list\"}}' http://127.0.0.1:3001/builder/ai-builder/full-app"
    );
    axum::serve(listener, app).await?;
    workers.shutdown(std::time::Duration::from_secs(10)).await;
    Ok(())
}
