//! `metrics-scrape` on SQLite: many scrapes, one queue aggregate per refresh interval.

use std::process::Command;

#[test]
fn scrapes_share_one_queue_aggregate_per_refresh() {
    let output = Command::new(env!("CARGO_BIN_EXE_appforge-bench"))
        .args([
            "metrics-scrape",
            "--jobs",
            "2000",
            "--seconds",
            "0.5",
            "--scrapers",
            "8",
            "--clients",
            "2",
            "--refresh-secs",
            "3600",
        ])
        .output()
        .expect("the bench binary runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {stdout:?}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(report["scenario"], "metrics-scrape");
    assert_eq!(report["queue_depth"], 2000.0);
    assert!(report["scrapes"].as_u64().unwrap() > 8, "{report}");
    assert_eq!(report["stats_refreshes"], 1.0, "{report}");
    assert!(report["quota_scraped_p99_ms"].as_f64().is_some());
    assert!(report["ops"].as_u64().unwrap() > 0, "{report}");
}
