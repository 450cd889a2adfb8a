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
