//! Review flags and turnaround (issue 3): `pooltrack review` finds each flag kind
//! exactly where the fixtures put one; `pooltrack turnaround` reproduces percentiles,
//! late tubes, progress and recall delays worked out by hand from the fixture times.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};
use crate::rules::{ingest_collections, ingest_results, run, stderr_text};

const ROUND: &str = "2022-04-02";
const AS_OF: &str = "2022-04-03 12:00:00";

fn review_store(store: &Path) {
    ingest_collections(store, ROUND, &[testdata("review_collections.csv")]);
    ingest_results(store, &[testdata("review_results.csv")]);
    ingest_collections(store, ROUND, &[testdata("review_retests_collections.csv")]);
    ingest_results(store, &[testdata("review_retest_results.csv")]);
}

fn turnaround_store(store: &Path) {
    ingest_collections(store, ROUND, &[testdata("turnaround_collections.csv")]);
    ingest_results(store, &[testdata("turnaround_results.csv")]);
}

fn turnaround(store: &Path, extra: &[&str]) -> Value {
    json_of(
        pooltrack(store)
            .args(["turnaround", "--round", ROUND, "--json", "--as-of", AS_OF])
            .args(extra),
    )
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// The milliseconds of an RFC 3339 time.
fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339")
        .timestamp_millis()
}

#[test]
fn review_lists_each_flag_kind_exactly_where_expected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    review_store(&store);
    let csv = stdout_of(pooltrack(&store).args(["review", "--round", ROUND]));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<(String, String, String)> = reader
        .records()
        .map(|r| {
            let r = r.expect("a CSV row");
            (r[0].to_owned(), r[1].to_owned(), r[2].to_owned())
        })
        .collect();
    let want = |k: &str, t: &str, p: &str| (k.to_owned(), t.to_owned(), p.to_owned());
    // PLPART01 is positive but one member retested positive, PLINC001 is only
    // inconclusive, PLNEG001 was never retested: none of them is flagged.
    assert_eq!(
        rows,
        vec![
            want("discordant_pool", "PLDISC01", "RV-A1;RV-A2;RV-A3"),
            want("missed_by_pooling", "PLMISS01", "RV-C1"),
            want("changed_from_positive", "PLCHG001", "RV-E1;RV-E2"),
            want("changed_from_positive", "SGCHG001", "RV-F1"),
        ]
    );

    let j = json_of(pooltrack(&store).args(["review", "--round", ROUND, "--format", "json"]));
    assert_eq!(j["counts"]["discordant_pool"], 1);
    assert_eq!(j["counts"]["missed_by_pooling"], 1);
    assert_eq!(j["counts"]["changed_from_positive"], 2);
    let d = &j["discordant_pool"][0];
    assert_eq!(d["pool"]["tube"], "PLDISC01");
    assert_eq!(d["pool"]["results"][0]["lab"], "LAB-A");
    assert_eq!(d["pool"]["results"][0]["plate"], "LAB-A-P0001");
    let retests: Vec<(String, String)> = d["retests"]
        .as_array()
        .expect("retests")
        .iter()
        .map(|r| {
            assert_eq!(r["tube"]["result"], "negative");
            (
                r["person"].as_str().expect("person").to_owned(),
                r["tube"]["tube"].as_str().expect("tube").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        retests,
        [
            ("RV-A1", "SGA00001"),
            ("RV-A2", "SGA00002"),
            ("RV-A3", "SGA00003")
        ]
        .map(|(p, t)| (p.to_owned(), t.to_owned()))
    );
    let m = &j["missed_by_pooling"][0];
    assert_eq!(m["person"], "RV-C1");
    assert_eq!(m["single"]["tube"], "SGC00001");
    assert_eq!(m["single"]["result"], "positive");
    assert_eq!(m["pool"]["tube"], "PLMISS01");
    assert_eq!(
        m["pool"]["results"][0]["reported_at"],
        "2022-04-02T13:00:00+08:00"
    );
    let c = &j["changed_from_positive"];
    assert_eq!(c[0]["tube"]["tube"], "PLCHG001");
    assert_eq!(c[0]["tube"]["result"], "positive");
    assert_eq!(c[0]["tube"]["positive_kept"], true);
    let results: Vec<&str> = c[0]["tube"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["result"].as_str().expect("result"))
        .collect();
    assert_eq!(results, ["positive", "negative"]);
    assert_eq!(strings(&c[0]["persons"]), ["RV-E1", "RV-E2"]);
    assert_eq!(c[1]["tube"]["tube"], "SGCHG001");
    assert_eq!(c[1]["tube"]["results"][1]["result"], "invalid");
    assert_eq!(strings(&c[1]["persons"]), ["RV-F1"]);
}

#[test]
fn review_before_retests_has_only_changed_flags_and_writes_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("review_collections.csv")]);
    ingest_results(&store, &[testdata("review_results.csv")]);
    // No retests yet: no pool can be discordant and no single tube missed.
    let out = dir.path().join("flags.json");
    run(pooltrack(&store)
        .args(["review", "--round", ROUND, "--out"])
        .arg(&out))
    .status
    .success()
    .then_some(())
    .expect("review --out succeeds");
    let mode = std::fs::metadata(&out)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let j: Value = serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("JSON");
    assert_eq!(j["counts"]["discordant_pool"], 0);
    assert_eq!(j["counts"]["missed_by_pooling"], 0);
    // SGCHG001's invalid result has not come yet either.
    assert_eq!(j["counts"]["changed_from_positive"], 0);

    let empty = stdout_of(pooltrack(&store).args(["review", "--round", ROUND]));
    assert_eq!(empty, "kind,tube,persons,detail\n");
    let unknown = run(pooltrack(&store).args(["review", "--round", "nope"]));
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn turnaround_percentiles_by_round_and_lab() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    turnaround_store(&store);
    let t = turnaround(&store, &[]);
    // First counted result minus earliest collection, minutes (by hand from the
    // fixtures): LAB-A: TAP00001 120, TAP00002 1500, TAS00002 60, TAP00006 60 (its
    // invalid result is its first); LAB-B: TAP00003 90, TAP00005 240, TAS00001 420.
    // Nearest rank: the value at rank ceil(p * n / 100), counting from 1.
    let nearest_rank = |mut v: Vec<f64>, p: usize| {
        v.sort_by(f64::total_cmp);
        let rank = (p * v.len()).div_ceil(100);
        v[rank.max(1) - 1]
    };
    let lab_a = vec![120.0, 1500.0, 60.0, 60.0];
    let lab_b = vec![90.0, 240.0, 420.0];
    let all: Vec<f64> = lab_a.iter().chain(&lab_b).copied().collect();
    let check = |s: &Value, v: &[f64], late: u64| {
        assert_eq!(s["tubes"], v.len() as u64);
        assert_eq!(s["median_minutes"], nearest_rank(v.to_vec(), 50));
        assert_eq!(s["p90_minutes"], nearest_rank(v.to_vec(), 90));
        assert_eq!(s["p99_minutes"], nearest_rank(v.to_vec(), 99));
        assert_eq!(s["reported_late"], late);
    };
    check(&t["round_stats"], &all, 2);
    assert_eq!(t["round_stats"]["median_minutes"], 120.0);
    assert_eq!(t["round_stats"]["p90_minutes"], 1500.0);
    assert_eq!(t["by_lab"][0]["lab"], "LAB-A");
    check(&t["by_lab"][0], &lab_a, 1);
    assert_eq!(t["by_lab"][0]["median_minutes"], 60.0);
    assert_eq!(t["by_lab"][1]["lab"], "LAB-B");
    check(&t["by_lab"][1], &lab_b, 1);
    assert_eq!(t["by_lab"][1]["median_minutes"], 240.0);
    assert_eq!(t["by_lab"].as_array().map(Vec::len), Some(2));
    // Histogram: 60 → bin 1 (twice), 90 → 1, 120 → 2, 240 → 4, 420 → 7, 1500 → 25.
    let h = &t["histogram"]["counts"];
    assert_eq!(h.as_array().map(Vec::len), Some(48));
    for (bin, n) in [(0, 0), (1, 3), (2, 1), (4, 1), (7, 1), (25, 1)] {
        assert_eq!(h[bin], n, "bin {bin}");
    }
    assert_eq!(t["histogram"]["overflow"], 0);

    let text =
        stdout_of(pooltrack(&store).args(["turnaround", "--round", ROUND, "--as-of", AS_OF]));
    assert!(text.contains("lab LAB-A"), "{text}");
    assert!(text.contains("late tubes: 4"), "{text}");
}

fn late_tubes(t: &Value) -> Vec<(String, f64, bool)> {
    t["late"]
        .as_array()
        .expect("late")
        .iter()
        .map(|l| {
            (
                l["tube"].as_str().expect("tube").to_owned(),
                l["minutes_late"].as_f64().expect("minutes"),
                l["reported_at"].is_null(),
            )
        })
        .collect()
}

#[test]
fn turnaround_late_tubes_with_default_and_changed_deadlines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    turnaround_store(&store);
    let want = |v: &[(&str, f64, bool)]| -> Vec<(String, f64, bool)> {
        v.iter().map(|&(t, m, w)| (t.to_owned(), m, w)).collect()
    };
    // 24 h pools, 6 h singles, as of 2022-04-03 12:00: TAS00003 (12:00, no result)
    // was due 18:00, 18 h ago; TAP00004 (09:00, no result) due 04-03 09:00; TAP00002
    // reported after 25 h; TAS00001 after 7 h.
    let t = turnaround(&store, &[]);
    assert_eq!(
        late_tubes(&t),
        want(&[
            ("TAS00003", 1080.0, true),
            ("TAP00004", 180.0, true),
            ("TAP00002", 60.0, false),
            ("TAS00001", 60.0, false),
        ])
    );
    let c = &t["late_counts"];
    assert_eq!(
        (
            &c["pool_reported_late"],
            &c["pool_waiting"],
            &c["single_reported_late"],
            &c["single_waiting"]
        ),
        (&1.into(), &1.into(), &1.into(), &1.into())
    );

    // 1.5 h pools, 8 h singles: TAP00004 was due 10:30, 25.5 h before as-of; TAP00001
    // (120 min), TAP00005 (240) and TAP00002 are late; TAP00003 (exactly 90) is not;
    // TAS00001 (420) now meets its deadline; TAS00003 was due 20:00.
    let t = turnaround(
        &store,
        &[
            "--pool-deadline-hours",
            "1.5",
            "--single-deadline-hours",
            "8",
        ],
    );
    assert_eq!(
        late_tubes(&t),
        want(&[
            ("TAP00004", 1530.0, true),
            ("TAP00002", 1410.0, false),
            ("TAS00003", 960.0, true),
            ("TAP00005", 150.0, false),
            ("TAP00001", 30.0, false),
        ])
    );
    assert_eq!(t["late_counts"]["pool_reported_late"], 3);
    assert_eq!(t["late_counts"]["single_reported_late"], 0);
    assert_eq!(t["round_stats"]["reported_late"], 3);

    for bad in [
        ["--pool-deadline-hours", "0"],
        ["--single-deadline-hours", "-1"],
    ] {
        let out = run(pooltrack(&store)
            .args(["turnaround", "--round", ROUND])
            .args(bad));
        assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
        assert!(stderr_text(&out).contains("deadline"));
    }
    let out = run(pooltrack(&store).args(["turnaround", "--round", ROUND, "--as-of", "soon"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_text(&out).contains("--as-of"));
}

#[test]
fn turnaround_progress_curve_by_hour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    turnaround_store(&store);
    let t = turnaround(&store, &[]);
    assert_eq!(t["first_collection"], "2022-04-02T06:00:00+08:00");
    let p = t["progress"].as_array().expect("progress");
    // The last event is TAP00002's result, 26 h after the first collection.
    assert_eq!(p.len(), 26);
    // (hour, tubes collected by then, of them with a result by then), by hand.
    for (hour, collected, with_result) in [
        (1, 3, 0),
        (2, 4, 1),
        (4, 6, 2),
        (6, 9, 4),
        (8, 9, 6),
        (25, 9, 6),
        (26, 9, 7),
    ] {
        let x = &p[hour - 1];
        assert_eq!(x["hour"], hour as u64);
        assert_eq!(x["collected"], collected, "hour {hour}");
        assert_eq!(x["with_result"], with_result, "hour {hour}");
        let share = x["share"].as_f64().expect("share");
        assert!((share - f64::from(with_result) / f64::from(collected)).abs() < 1e-12);
    }
    // An earlier as-of cuts the curve.
    let early = json_of(pooltrack(&store).args([
        "turnaround",
        "--round",
        ROUND,
        "--json",
        "--as-of",
        "2022-04-02T09:30:00+08:00",
    ]));
    assert_eq!(early["progress"].as_array().map(Vec::len), Some(4));
}

#[test]
fn turnaround_recall_delay_from_an_injected_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    turnaround_store(&store);
    // Not yet run: TAP00003's positive (09:30) has waited until as-of (04-03 12:00).
    let t = turnaround(&store, &[]);
    let d = &t["recall_delays"];
    assert_eq!(d.as_array().map(Vec::len), Some(1));
    assert_eq!(d[0]["tube"], "TAP00003");
    assert!(d[0]["recall_run_at"].is_null());
    assert_eq!(d[0]["minutes"], 1590.0);

    // Runs relative to the results batch's real commit time: one before it (cannot
    // list this positive), one of another round, then the two after it.
    let manifest: Value = crate::crash::manifest_json(&store);
    let committed = ms(manifest["batches"][1]["committed_at"]
        .as_str()
        .expect("committed_at"));
    let at = |offset_ms: i64| {
        chrono::DateTime::from_timestamp_millis(committed + offset_ms)
            .expect("a time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let line =
        |round: &str, t: String| format!("{{\"round\":\"{round}\",\"at\":\"{t}\",\"rows\":1}}\n");
    let log = [
        line(ROUND, at(-60_000)),
        line("other-round", at(60_000)),
        "{\"round\": broken\n".to_owned(),
        line(ROUND, at(300_000)),
        line(ROUND, at(600_000)),
    ]
    .concat();
    std::fs::create_dir_all(store.join("logs")).expect("logs");
    std::fs::write(store.join("logs/recall-runs.jsonl"), log).expect("log");
    let out =
        run(pooltrack(&store).args(["turnaround", "--round", ROUND, "--json", "--as-of", AS_OF]));
    assert!(out.status.success());
    assert!(
        stderr_text(&out).contains("line 3"),
        "{}",
        stderr_text(&out)
    );
    let t: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let d = &t["recall_delays"][0];
    let run_at = ms(d["recall_run_at"].as_str().expect("a run"));
    assert_eq!(run_at, committed + 300_000);
    let reported = ms("2022-04-02T09:30:00+08:00");
    let minutes = d["minutes"].as_f64().expect("minutes");
    assert!((minutes - (run_at - reported) as f64 / 60_000.0).abs() < 1e-9);
}

#[test]
fn worklist_recall_logs_its_run_for_turnaround() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    turnaround_store(&store);
    let before = chrono::Utc::now().timestamp_millis();
    stdout_of(pooltrack(&store).args(["worklist", "recall", "--round", ROUND]));
    let after = chrono::Utc::now().timestamp_millis();
    let logs = store.join("logs");
    let log = std::fs::read_to_string(logs.join("recall-runs.jsonl")).expect("the run is logged");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["round"], ROUND);
    // TAP00003 holds one person.
    assert_eq!(lines[0]["rows"], 1);
    let at_text = lines[0]["at"].as_str().expect("at");
    // In the store's zone (+08:00 by default), like every other time pooltrack writes.
    assert!(at_text.ends_with("+08:00"), "{at_text}");
    let at = ms(at_text);
    assert!(
        before - 1_000 <= at && at <= after,
        "{at} not in {before}..{after}"
    );
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&logs), 0o700);
    assert_eq!(mode(&logs.join("recall-runs.jsonl")), 0o600);

    let t = json_of(pooltrack(&store).args(["turnaround", "--round", ROUND, "--json"]));
    let d = &t["recall_delays"][0];
    assert!(!d["recall_run_at"].is_null());
    let minutes = d["minutes"].as_f64().expect("minutes");
    let reported = ms("2022-04-02T09:30:00+08:00");
    let lo = (before - 1_000 - reported) as f64 / 60_000.0;
    let hi = (after - reported) as f64 / 60_000.0;
    assert!(
        minutes >= 0.0 && lo <= minutes && minutes <= hi,
        "{minutes} not in {lo}..{hi}"
    );

    // A second run appends; the store stays healthy with logs/ in it, and a writer
    // (the next ingest) leaves logs/ alone.
    stdout_of(pooltrack(&store).args(["worklist", "recall", "--round", ROUND]));
    stdout_of(pooltrack(&store).args(["verify"]));
    ingest_collections(&store, ROUND, &[testdata("review_collections.csv")]);
    let log = std::fs::read_to_string(logs.join("recall-runs.jsonl")).expect("still there");
    assert_eq!(log.lines().count(), 2);
}

#[test]
fn worklist_recall_succeeds_when_its_run_cannot_be_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    turnaround_store(&store);
    // A file where the logs folder should be: the log cannot be written, whoever runs
    // the test (root ignores read-only permissions).
    std::fs::write(store.join("logs"), "not a folder").expect("write");
    let out = run(pooltrack(&store).args(["worklist", "recall", "--round", ROUND]));
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("TA-05"));
    assert!(
        stderr_text(&out).contains("warning"),
        "{}",
        stderr_text(&out)
    );
    // Other worklists log nothing.
    std::fs::remove_file(store.join("logs")).expect("remove");
    stdout_of(pooltrack(&store).args(["worklist", "positives", "--round", ROUND]));
    assert!(!store.join("logs").exists());
}
