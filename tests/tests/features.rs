//! What each crate's features bring in: a host pays only for what it turns on. Read from
//! `cargo tree` over the workspace's lock file (offline; nothing is downloaded).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

/// The names of the normal (non-dev, non-build) dependencies of `package` built with `args`.
fn tree(package: &str, args: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn assert_absent(tree: &BTreeSet<String>, crates: &[&str], what: &str) {
    let present: Vec<&&str> = crates.iter().filter(|c| tree.contains(**c)).collect();
    assert!(present.is_empty(), "{what} pulls in {present:?}");
}

const HTTP_STACK: &[&str] = &[
    "reqwest",
    "hyper",
    "rustls",
    "aws-lc-rs",
    "aws-lc-sys",
    "h2",
];

#[test]
fn appforge_llm_without_features_has_no_http_stack() {
    let core = tree("appforge-llm", &["--no-default-features"]);
    assert!(core.contains("appforge-llm"));
    assert_absent(&core, HTTP_STACK, "appforge-llm --no-default-features");
    let with_demo = tree(
        "appforge-llm",
        &["--no-default-features", "--features", "demo"],
    );
    assert_absent(&with_demo, HTTP_STACK, "appforge-llm with only `demo`");
}

#[test]
fn appforge_llm_providers_bring_the_http_client() {
    let anthropic = tree("appforge-llm", &[]);
    assert!(
        anthropic.contains("reqwest"),
        "the default `anthropic` feature is the client"
    );
    let openai = tree(
        "appforge-llm",
        &["--no-default-features", "--features", "openai"],
    );
    assert!(openai.contains("reqwest"));
}

#[test]
fn streaming_with_the_client_alone_builds_no_pipelines() {
    const PIPELINE_STACK: &[&str] = &[
        "schemars",
        "schemars_derive",
        "appforge-files",
        "rand",
        "zerocopy",
    ];
    let client = tree(
        "appforge-llm",
        &["--no-default-features", "--features", "anthropic"],
    );
    assert!(client.contains("reqwest"));
    assert_absent(
        &client,
        PIPELINE_STACK,
        "appforge-llm with only `anthropic`",
    );
    // `#[instrument]` is unused; its macro crate would build a second `syn`.
    assert_absent(
        &client,
        &["tracing-attributes"],
        "appforge-llm with only `anthropic`",
    );
    let example = tree("appforge-example-stream-text", &[]);
    assert_absent(&example, PIPELINE_STACK, "the stream-text example");
    let pipelines = tree(
        "appforge-llm",
        &["--no-default-features", "--features", "pipelines"],
    );
    assert!(
        pipelines.contains("schemars") && pipelines.contains("appforge-files"),
        "`pipelines` brings the structured-output schemas and the files crate"
    );
}

#[test]
fn the_demo_transcripts_are_off_by_default() {
    let manifest: toml::Table =
        std::fs::read_to_string(root().join("crates/appforge-llm/Cargo.toml"))
            .expect("the llm manifest")
            .parse()
            .expect("valid TOML");
    let default = manifest["features"]["default"]
        .as_array()
        .expect("a default feature list");
    assert!(
        !default.iter().any(|f| f.as_str() == Some("demo")),
        "embedders do not compile the demo transcripts unless they ask: {default:?}"
    );
}

#[test]
fn the_files_crate_is_small_and_apps_no_longer_needs_the_llm_client() {
    let files = tree("appforge-files", &[]);
    assert_absent(&files, HTTP_STACK, "appforge-files");
    assert_absent(&files, &["tokio", "sqlx", "schemars"], "appforge-files");
    let apps = tree("appforge-apps", &[]);
    assert!(apps.contains("appforge-files"));
    assert_absent(&apps, &["appforge-llm", "reqwest"], "appforge-apps");
}

#[test]
fn quota_and_analytics_build_their_memory_stores_without_sqlx() {
    const SQL_STACK: &[&str] = &["sqlx", "sqlx-core", "rustls", "aws-lc-rs", "libsqlite3-sys"];
    for package in ["appforge-quota", "appforge-analytics"] {
        let memory = tree(package, &["--no-default-features"]);
        assert!(memory.contains(package));
        assert_absent(
            &memory,
            SQL_STACK,
            &format!("{package} --no-default-features"),
        );
        let sqlite = tree(package, &[]);
        assert!(
            sqlite.contains("sqlx") && sqlite.contains("libsqlite3-sys"),
            "the default `sqlite` feature is the SQLite store of {package}"
        );
        let postgres = tree(
            package,
            &["--no-default-features", "--features", "postgres"],
        );
        assert!(postgres.contains("sqlx"), "{package} with `postgres`");
        assert_absent(
            &postgres,
            &["libsqlite3-sys"],
            &format!("{package} with only `postgres`"),
        );
    }
}

#[test]
fn jobs_and_apps_build_their_memory_stores_without_sqlx() {
    const SQL_STACK: &[&str] = &["sqlx", "sqlx-core", "rustls", "aws-lc-rs", "libsqlite3-sys"];
    for package in ["appforge-jobs", "appforge-apps"] {
        let memory = tree(package, &["--no-default-features"]);
        assert!(memory.contains(package));
        assert_absent(
            &memory,
            SQL_STACK,
            &format!("{package} --no-default-features"),
        );
        let sqlite = tree(package, &[]);
        assert!(
            sqlite.contains("sqlx") && sqlite.contains("libsqlite3-sys"),
            "the default `sqlite` feature is the SQLite store of {package}"
        );
        let postgres = tree(
            package,
            &["--no-default-features", "--features", "postgres"],
        );
        assert!(
            postgres.contains("sqlx") && postgres.contains("sqlx-postgres"),
            "{package} with `postgres`"
        );
        assert_absent(
            &postgres,
            &["libsqlite3-sys", "sqlx-sqlite"],
            &format!("{package} with only `postgres`"),
        );
    }
}

#[test]
fn verifying_a_stripe_webhook_needs_neither_async_stripe_nor_a_store_nor_the_quota() {
    let webhook = tree(
        "appforge-billing",
        &["--no-default-features", "--features", "webhook"],
    );
    assert!(webhook.contains("appforge-billing"));
    assert_absent(
        &webhook,
        &[
            "appforge-quota",
            "sqlx",
            "async-stripe",
            "async-stripe-billing",
            "async-stripe-checkout",
            "async-stripe-core",
            "async-stripe-types",
            "async-stripe-webhook",
            "reqwest",
        ],
        "appforge-billing with only `webhook`",
    );
    // Pure-Rust HMAC: a webhook-only host compiles no C crypto library.
    assert_absent(
        &webhook,
        &["aws-lc-rs", "aws-lc-sys", "ring"],
        "appforge-billing with only `webhook`",
    );
    let with_axum = tree(
        "appforge-billing",
        &["--no-default-features", "--features", "webhook,axum"],
    );
    assert!(with_axum.contains("axum"));
    assert_absent(
        &with_axum,
        &["appforge-quota", "sqlx", "async-stripe-billing", "reqwest"],
        "appforge-billing with `webhook` and `axum`",
    );
    let example = tree("appforge-example-stripe-webhook", &[]);
    assert_absent(
        &example,
        &[
            "appforge-quota",
            "sqlx",
            "async-stripe",
            "reqwest",
            "aws-lc-sys",
        ],
        "the stripe-webhook example",
    );
}

#[test]
fn billing_never_depends_on_the_quota_crate() {
    for features in [
        "webhook",
        "store",
        "stripe-api",
        "sqlite,postgres,axum,testing",
    ] {
        let tree = tree(
            "appforge-billing",
            &["--no-default-features", "--features", features],
        );
        assert_absent(
            &tree,
            &["appforge-quota"],
            &format!("appforge-billing with `{features}`"),
        );
    }
    let store = tree(
        "appforge-billing",
        &["--no-default-features", "--features", "store"],
    );
    assert_absent(
        &store,
        &["sqlx", "async-stripe"],
        "appforge-billing with only `store` (the memory store)",
    );
    let defaults = tree("appforge-billing", &[]);
    assert!(
        defaults.contains("async-stripe-billing") && defaults.contains("sqlx"),
        "the defaults are the Stripe calls and the SQLite store"
    );
}

#[test]
fn the_worker_and_the_command_line_are_built_from_the_library_crates_alone() {
    for binary in ["appforge-worker", "appforge-generate"] {
        let tree = tree(binary, &[]);
        assert_absent(&tree, &["appforge-server"], binary);
    }
    let generate = tree("appforge-generate", &[]);
    assert_absent(
        &generate,
        &["sqlx", "appforge-jobs", "appforge-quota", "axum"],
        "appforge-generate (a model call and files)",
    );
}
