//! The `appforge-bench` output contract: one JSON line with the required fields.

use std::process::Command;

#[test]
fn noop_prints_one_json_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_appforge-bench"))
        .args(["noop", "--ops", "1000"])
        .output()
        .expect("the bench binary runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {stdout:?}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(report["scenario"], "noop");
    assert_eq!(report["ops"], 1000);
    assert!(report["seconds"].as_f64().is_some_and(|s| s >= 0.0));
    assert!(report["ops_per_s"].as_f64().is_some());
}

#[test]
fn unknown_scenario_fails_with_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_appforge-bench"))
        .arg("no-such-scenario")
        .output()
        .expect("the bench binary runs");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing on stdout for an error");
}

#[test]
fn analytics_ingest_writes_every_event_on_sqlite() {
    let output = Command::new(env!("CARGO_BIN_EXE_appforge-bench"))
        .args([
            "analytics-ingest",
            "--backend",
            "sqlite",
            "--events",
            "2000",
        ])
        .output()
        .expect("the bench binary runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {stdout:?}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(report["scenario"], "analytics-ingest");
    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["ops"], 2000);
    // 2000 events fit the default buffer: none is dropped, all are written.
    assert_eq!(report["written"], 2000);
    assert_eq!(report["dropped"], 0);
    assert!(report["record_p99_ns"].as_u64().is_some());
}
