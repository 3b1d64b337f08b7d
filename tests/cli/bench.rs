//! How `pooltrack bench` measures a step: `pooltrack bench -- ARGS` runs `pooltrack
//! ARGS` as its only child and prints the step's time and peak memory after the
//! step's own output.

use crate::common::pooltrack;
use crate::rules::{run, stderr_text};

#[test]
fn a_measured_step_reports_its_own_peak_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let city = dir.path().join("city");
    let out = run(pooltrack(&dir.path().join("unused"))
        .args(["bench", "--", "gen", "--persons", "20000", "--out"])
        .arg(&city));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let figures = lines.next_back().expect("a last line");
    assert!(
        lines.any(|l| l.starts_with("generated 20000 persons")),
        "the step's own output comes first: {stdout}"
    );
    let json = figures
        .strip_prefix("pooltrack bench step: ")
        .unwrap_or_else(|| panic!("not the figures line: {figures}"));
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON figures");
    let kib = v["peak_kib"].as_i64().expect("peak_kib");
    // A pooltrack process holds some MiB at least; a generator of 20,000 persons
    // nowhere near a GiB.
    assert!((1024..1 << 20).contains(&kib), "{v}");
    assert!(v["seconds"].as_f64().is_some_and(|s| s > 0.0), "{v}");
    assert!(city.join("collections.csv").exists());

    // A step that fails fails its measurement, with the step's own message.
    let out = run(pooltrack(&dir.path().join("unused"))
        .args(["bench", "--", "--store"])
        .arg(dir.path().join("none"))
        .args(["status", "--round", "R1"]));
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("no store"),
        "{}",
        stderr_text(&out)
    );
}
