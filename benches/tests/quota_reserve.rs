//! The `quota-reserve` scenario prints one JSON line and admits nothing over the limit.

use std::process::Command;

#[test]
fn memory_run_reports_no_over_admission() {
    let output = Command::new(env!("CARGO_BIN_EXE_appforge-bench"))
        .args([
            "quota-reserve",
            "--backend",
            "memory",
            "--users",
            "7",
            "--requests",
            "1000",
        ])
        .args(["--concurrency", "4"])
        .output()
        .expect("the bench binary runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {stdout:?}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(report["scenario"], "quota-reserve");
    assert_eq!(report["ops"], 1000);
    assert_eq!(report["granted"], 1000);
    assert_eq!(report["over_admitted"], 0);
    assert_eq!(report["store_mismatches"], 0);
    assert!(report["ops_per_s"].as_f64().is_some_and(|r| r > 0.0));
}
