//! The binary's subcommands as processes: `migrate`, `check-config` and `--help`.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

/// Runs `appforge-server ARGS` with exactly `env` and waits for it to exit.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_appforge-server"));
    command
        .args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap_or_else(|_| panic!("appforge-server {args:?} exits"))
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The tables of every crate the server assembles (one or more of each).
const TABLES: [&str; 14] = [
    "_appforge_quota_migrations",
    "_appforge_jobs_migrations",
    "_appforge_billing_migrations",
    "_appforge_apps_migrations",
    "_appforge_analytics_migrations",
    "_appforge_uploads_migrations",
    "_appforge_orgs_migrations",
    "usage_quotas",
    "generation_jobs",
    "stripe_customers",
    "generated_apps",
    "analytics_events",
    "uploads",
    "orgs",
];

#[tokio::test]
async fn migrate_creates_every_crates_tables_in_a_fresh_sqlite_file() {
    let db = appforge_testing::TempSqlite::new();
    let url = format!("sqlite://{}", db.path().display());
    assert!(!db.path().exists());
    let output = run(&["migrate"], &[("DATABASE_URL", &url)]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("every crate's migrations are applied (sqlite)"),
        "{stdout}"
    );

    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for table in TABLES {
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind(table)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(found, 1, "table {table}");
    }
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _appforge_jobs_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(applied > 0);
    pool.close().await;

    // Again: nothing left to apply, and check-config finds the migrations applied.
    let again = run(&["migrate"], &[("DATABASE_URL", &url)]).await;
    assert!(again.status.success(), "{:?}", text(&again));
    let check = run(&["check-config"], &[("DATABASE_URL", &url)]).await;
    let (stdout, stderr) = text(&check);
    assert!(check.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("database: sqlite"), "{stdout}");
    assert!(stdout.contains("migrations: applied"), "{stdout}");
}

#[tokio::test]
#[cfg_attr(not(appforge_pg), ignore = "needs DATABASE_URL (PostgreSQL)")]
async fn migrate_creates_every_crates_tables_on_postgres() {
    let db = appforge_testing::TestDatabase::create().await;
    let env = [
        ("DATABASE_URL", db.url()),
        ("APPFORGE_STORAGE_URL", "memory://"),
    ];
    let check = run(&["check-config"], &env).await;
    let (stdout, stderr) = text(&check);
    assert!(check.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("migrations: pending"), "{stdout}");
    let output = run(&["migrate"], &env).await;
    assert!(output.status.success(), "{:?}", text(&output));
    let pool = db.pool().await;
    for table in TABLES {
        let found: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(found, "table {table}");
    }
    let check = run(&["check-config"], &env).await;
    let (stdout, stderr) = text(&check);
    assert!(check.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("migrations: applied"), "{stdout}");
}

#[tokio::test]
async fn migrate_names_a_database_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing/appforge.db", dir.path().display());
    let output = run(&["migrate"], &[("DATABASE_URL", &url)]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("appforge-server migrate: cannot open the database"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn check_config_prints_the_settings_in_effect_and_never_a_secret() {
    let db = appforge_testing::TempSqlite::new();
    let url = format!("sqlite://{}", db.path().display());
    let secrets = [
        ("ANTHROPIC_API_KEY", "sk-ant-check-config-secret"),
        ("OPENAI_API_KEY", "sk-openai-check-config-secret"),
        (
            "APPFORGE_JWT_SECRET",
            "jwt-check-config-secret-0123456789abcdef",
        ),
        ("APPFORGE_ADMIN_TOKEN", "admin-check-config-secret"),
        ("APPFORGE_METRICS_TOKEN", "metrics-check-config-secret"),
        ("STRIPE_SECRET_KEY", "sk_test_check_config_secret"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_check_config_secret"),
        (
            "APPFORGE_SMTP_URL",
            "smtps://mailer:smtp-check-config-secret@mail.example.com:465",
        ),
        (
            "SENTRY_DSN",
            "https://sentrycheckconfigsecret@o1.ingest.sentry.io/42",
        ),
    ];
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("APPFORGE_ADDR", "127.0.0.1:4321"),
        ("APPFORGE_WORKERS", "3"),
        ("APPFORGE_SMTP_FROM", "AppForge <no-reply@example.com>"),
    ];
    env.extend(secrets);
    let output = run(&["check-config"], &env).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    for shown in [
        "settings: valid",
        "addr: 127.0.0.1:4321",
        "workers: 3",
        "provider: anthropic",
        "no-reply@example.com",
        "check-config: ok",
        "sso: off (APPFORGE_SECRETS_KEY is not set)",
    ] {
        assert!(stdout.contains(shown), "{shown:?} in {stdout}");
    }
    // A file that does not exist yet is reported, not created.
    assert!(stdout.contains("does not exist yet"), "{stdout}");
    assert!(stdout.contains("migrations: pending"), "{stdout}");
    assert!(!db.path().exists(), "check-config created the database");
    for (name, secret) in secrets {
        let secret = match name {
            "APPFORGE_SMTP_URL" => "smtp-check-config-secret",
            "SENTRY_DSN" => "sentrycheckconfigsecret",
            _ => secret,
        };
        assert!(!stdout.contains(secret), "{name} in stdout: {stdout}");
        assert!(!stderr.contains(secret), "{name} in stderr: {stderr}");
    }
}

#[tokio::test]
async fn check_config_says_whether_single_sign_on_can_work() {
    let db = appforge_testing::TempSqlite::new();
    let url = format!("sqlite://{}", db.path().display());
    // 32 bytes of 7, base64.
    let key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let base = [
        ("DATABASE_URL", url.as_str()),
        ("APPFORGE_SECRETS_KEY", key),
    ];
    let output = run(&["check-config"], &base).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("sso: on, but APPFORGE_PUBLIC_URL is not set"),
        "{stdout}"
    );
    let mut env = base.to_vec();
    env.push(("APPFORGE_PUBLIC_URL", "https://builder.example.com"));
    let output = run(&["check-config"], &env).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("sso: on, callback https://builder.example.com/auth/sso/callback"),
        "{stdout}"
    );
    assert!(!stdout.contains(key) && !stderr.contains(key), "{stdout}");
}

#[tokio::test]
async fn check_config_names_a_bad_setting() {
    let db = appforge_testing::TempSqlite::new();
    let url = format!("sqlite://{}", db.path().display());
    for (name, value) in [
        ("APPFORGE_WORKERS", "many"),
        ("APPFORGE_JWT_SECRET", "short-check-config-secret"),
    ] {
        let output = run(&["check-config"], &[("DATABASE_URL", &url), (name, value)]).await;
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {stdout}{stderr}");
        assert!(
            stderr.contains(&format!(
                "appforge-server check-config: invalid setting {name}"
            )),
            "{stderr}"
        );
        if name == "APPFORGE_JWT_SECRET" {
            assert!(
                !stdout.contains(value) && !stderr.contains(value),
                "{stderr}"
            );
        }
        assert!(!stdout.contains("check-config: ok"), "{stdout}");
    }
}

#[tokio::test]
async fn check_config_fails_on_an_unreachable_database() {
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let postgres = format!("postgres://appforge:pg-check-config-secret@127.0.0.1:{port}/appforge");
    let output = run(&["check-config"], &[("DATABASE_URL", &postgres)]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "the database \"postgres://appforge:[redacted]@127.0.0.1:{port}/appforge\" cannot be reached"
        )),
        "{stderr}"
    );
    assert!(
        !stdout.contains("pg-check-config-secret") && !stderr.contains("pg-check-config-secret"),
        "{stdout}{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/missing/appforge.db", dir.path().display());
    let output = run(&["check-config"], &[("DATABASE_URL", &sqlite)]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("cannot be reached"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[tokio::test]
async fn help_lists_the_subcommands_and_an_unknown_one_is_refused() {
    let output = run(&["--help"], &[]).await;
    let (stdout, _) = text(&output);
    assert!(output.status.success());
    for command in ["worker", "migrate", "check-config"] {
        assert!(
            stdout.contains(&format!("appforge-server {command}")),
            "{stdout}"
        );
    }
    let output = run(&["migrat"], &[]).await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown command \"migrat\""), "{stderr}");
}
