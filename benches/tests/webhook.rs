//! The `webhook-verify` and `webhook-e2e` scenarios print one JSON line and handle every event.

use std::process::Command;

fn run(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_appforge-bench"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("the bench binary runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {stdout:?}");
    serde_json::from_str(lines[0]).expect("a JSON line")
}

#[test]
fn webhook_verify_parses_every_copy() {
    let report = run(&[
        "webhook-verify",
        "--payload",
        "benches/fixtures/customer.subscription.updated.json",
        "--n",
        "50",
        "--threads",
        "2",
    ]);
    assert_eq!(report["scenario"], "webhook-verify");
    assert_eq!(report["ops"], 50);
    assert_eq!(report["parsed"], 50);
    assert_eq!(
        report["webhook_crate_typed"],
        report["webhook_crate_sample"]
    );
    assert!(report["payload_bytes"].as_u64().unwrap() > 6000);
}

/// A `2025-08-27.basil` subscription update (async-stripe's types are of another version):
/// billing parses every copy, the generic parser returns them untyped, the scenario finishes.
#[test]
fn webhook_verify_does_not_abort_on_a_basil_payload() {
    let report = run(&[
        "webhook-verify",
        "--payload",
        "crates/appforge-billing/tests/fixtures/versions/2025-08-27.basil-customer.subscription.updated.json",
        "--n",
        "50",
    ]);
    assert_eq!(report["ops"], 50);
    assert_eq!(report["parsed"], 50);
    assert_eq!(report["webhook_crate_sample"], 5);
    assert_eq!(report["webhook_crate_typed"], 0);
}

#[test]
fn webhook_e2e_on_sqlite_processes_every_event() {
    let report = run(&[
        "webhook-e2e",
        "--backend",
        "sqlite",
        "--events",
        "20",
        "--concurrency",
        "2",
    ]);
    assert_eq!(report["scenario"], "webhook-e2e");
    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["processed"], 20);
}
