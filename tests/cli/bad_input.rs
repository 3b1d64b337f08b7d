//! Bad input (issue 2, "Bad input"): each bad row is rejected with its file, line,
//! column and reason while the valid rows are committed; `--strict` commits nothing;
//! unreadable files fail the whole batch; every accepted file form reads alike; usage
//! errors exit 2; and nothing panics.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{pooltrack, stdout_of, testdata};
use crate::rules::{
    RejectRow, by_status, counts, ingest_collections, ingest_results, person_report, person_status,
    read_rejects, rejects_of, round_status, run, stderr_text,
};

/// `(line, column)` of each reject, in file order.
fn lines_and_columns(rejects: &[RejectRow]) -> Vec<(u64, &str)> {
    rejects
        .iter()
        .map(|r| (r.line, r.column.as_str()))
        .collect()
}

/// Asserts the round is not in the store (nothing was committed to it).
fn assert_no_round(store: &Path, round: &str) {
    let out = run(pooltrack(store).args(["status", "--round", round, "--json"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "round {round} should not exist; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs `ingest collections FILES --round ROUND` expecting the batch to fail with exit 1
/// and a message naming `names`; returns stderr.
fn ingest_collections_fails(store: &Path, round: &str, files: &[PathBuf], names: &str) -> String {
    let out = run(pooltrack(store)
        .args(["ingest", "collections", "--round", round])
        .args(files));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(names), "message should name {names}: {err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

// ---------------------------------------------------------------------------------------
// Bad rows: rejected one by one, the rest committed
// ---------------------------------------------------------------------------------------

#[test]
fn bad_collection_rows_are_rejected_with_line_column_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = ingest_collections(dir.path(), "R1", &[testdata("bad_rows_collections.csv")]);
    assert_eq!(r["rows_read"], 14, "{r}");
    // Unreadable metadata (lines 7-11) is "not stated": those rows are kept, warned.
    assert_eq!(r["committed"], 8, "{r}");
    assert_eq!(r["rejected"], 6, "{r}");
    assert_eq!(r["warnings"], 5, "{r}");
    let rejects_file = PathBuf::from(r["rejects_file"].as_str().expect("rejects_file"));
    assert!(
        rejects_file.starts_with(dir.path()),
        "beside the store: {r}"
    );
    let rejects = read_rejects(&rejects_file);
    assert_eq!(
        lines_and_columns(&rejects),
        [
            (3, "tube"),          // too short
            (4, "tube"),          // bad characters
            (5, "tube"),          // too long (33)
            (6, "person"),        // empty
            (7, "mode"),          // "mixed"
            (8, "capacity"),      // 0
            (9, "capacity"),      // 21
            (10, "capacity"),     // "ten"
            (11, "capacity"),     // single tube of capacity 5
            (12, "collected_at"), // "yesterday morning"
            (13, ""),             // 4 fields of 6
        ]
    );
    for r in &rejects {
        let kept = (7..=11).contains(&r.line);
        assert_eq!(r.severity, if kept { "warning" } else { "error" }, "{r:?}");
        assert!(r.file.ends_with("bad_rows_collections.csv"), "{r:?}");
        assert!(!r.reason.is_empty(), "{r:?}");
    }
    let reason = |line: u64| {
        rejects
            .iter()
            .find(|r| r.line == line)
            .map(|r| r.reason.to_lowercase())
            .unwrap_or_default()
    };
    assert!(reason(3).contains("4-32"), "{}", reason(3));
    assert!(reason(4).contains("letters"), "{}", reason(4));
    assert!(reason(5).contains("4-32"), "{}", reason(5));
    assert!(reason(6).contains("empty"), "{}", reason(6));
    assert!(reason(7).contains("single") && reason(7).contains("pool"));
    for line in [8, 9, 10] {
        assert!(reason(line).contains("1 to 20"), "{}", reason(line));
    }
    assert!(reason(11).contains("single"), "{}", reason(11));
    assert!(reason(12).contains("collected_at"), "{}", reason(12));
    assert!(reason(13).contains("fields"), "{}", reason(13));
    // The offending value and the row's ids are in the report.
    let at = |line: u64| rejects.iter().find(|r| r.line == line).expect("row");
    assert_eq!(at(3).value, "AB1");
    assert_eq!(at(7).value, "mixed");
    assert_eq!(at(10).value, "ten");
    assert_eq!(at(12).value, "yesterday morning");
    assert_eq!(at(7).person, "bad-mode");
    assert_eq!(at(7).tube, "BAD-POOL-03");

    // Exactly the rows that can be placed were committed.
    let s = round_status(dir.path(), "R1");
    assert_eq!(s["persons"], 8, "{s}");
    assert_eq!(s["tubes"], 7, "{s}");
    for p in [
        "bad-good-1",
        "bad-good-2",
        "bad-good-3",
        "bad-mode",
        "bad-capacity-zero",
        "bad-capacity-21",
        "bad-capacity-word",
        "bad-single-cap5",
    ] {
        assert_eq!(person_status(dir.path(), "R1", p), "pending");
    }
}

#[test]
fn rejects_path_is_printed_in_the_text_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = stdout_of(
        pooltrack(dir.path())
            .args(["ingest", "collections", "--round", "R1"])
            .arg(testdata("bad_rows_collections.csv")),
    );
    assert!(text.contains("6 rejected"), "{text}");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("rejected and flagged rows: "))
        .unwrap_or_else(|| panic!("no rejects path in: {text}"));
    assert_eq!(read_rejects(Path::new(path.trim())).len(), 11);
}

#[test]
fn bad_result_rows_are_rejected_with_line_column_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("bad_rows_collections.csv")]);
    let r = ingest_results(dir.path(), &[testdata("bad_rows_results.csv")]);
    assert_eq!(r["rows_read"], 6, "{r}");
    assert_eq!(r["committed"], 2, "{r}");
    assert_eq!(r["rejected"], 4, "{r}");
    let rejects = rejects_of(&r);
    assert_eq!(
        lines_and_columns(&rejects),
        [
            (3, "result"),      // "maybe"
            (4, "ct_orf1ab"),   // "abc"
            (5, "ct_n"),        // "-3"
            (6, "reported_at"), // empty
        ]
    );
    assert!(rejects.iter().all(|r| r.severity == "error"));
    assert_eq!(rejects[0].value, "maybe");
    assert_eq!(rejects[1].value, "abc");
    assert_eq!(rejects[2].value, "-3");
    assert!(
        rejects[3].reason.contains("reported_at"),
        "{:?}",
        rejects[3]
    );
    assert_eq!(rejects[0].tube, "BAD-POOL-01");

    assert_eq!(person_status(dir.path(), "R1", "bad-good-1"), "negative");
    assert_eq!(person_status(dir.path(), "R1", "bad-good-3"), "positive");
    let p = person_report(dir.path(), "R1", "bad-good-3");
    assert_eq!(p["tubes"][0]["results"].as_array().map(Vec::len), Some(1));
}

// ---------------------------------------------------------------------------------------
// --strict
// ---------------------------------------------------------------------------------------

#[test]
fn strict_rejects_the_whole_collections_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "collections", "--strict", "--round", "R1"])
        .arg(testdata("bad_rows_collections.csv")));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("strict"), "{err}");
    assert!(err.contains("6 "), "{err}");
    assert_no_round(dir.path(), "R1");

    // The rejects file is still written, under the store's rejects folder.
    let rejects: Vec<PathBuf> = std::fs::read_dir(dir.path().join("rejects"))
        .expect("rejects folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert!(
        err.contains(&*rejects[0].to_string_lossy()),
        "the message names {}: {err}",
        rejects[0].display()
    );
    assert_eq!(read_rejects(&rejects[0]).len(), 11);

    // Not recorded as ingested: the same file goes in without --strict.
    let r = ingest_collections(dir.path(), "R1", &[testdata("bad_rows_collections.csv")]);
    assert_eq!(r["committed"], 8, "{r}");
}

#[test]
fn strict_rejects_the_whole_results_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("bad_rows_collections.csv")]);
    let before = round_status(dir.path(), "R1");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results", "--strict", "--json"])
        .arg(testdata("bad_rows_results.csv")));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    let after = round_status(dir.path(), "R1");
    assert_eq!(after, before);
    assert_eq!(after["tubes_with_result"], 0, "{after}");
}

#[test]
fn strict_accepts_a_clean_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "collections", "--strict", "--round", "R1"])
        .arg(testdata("example_collections.csv")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_eq!(round_status(dir.path(), "R1")["persons"], 13);
}

// ---------------------------------------------------------------------------------------
// Files that cannot be read as a batch
// ---------------------------------------------------------------------------------------

#[test]
fn a_file_that_is_not_csv_fails_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("photo-of-the-form.csv");
    std::fs::write(
        &png,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06",
    )
    .expect("write");
    ingest_collections_fails(dir.path(), "R1", &[png], "photo-of-the-form.csv");
    let noise = dir.path().join("noise.csv");
    std::fs::write(
        &noise,
        [0x00, 0xff, 0xfe, 0x81, 0x07, b'\n', 0xc3, 0x28, 0x00],
    )
    .expect("w");
    ingest_collections_fails(dir.path(), "R1", std::slice::from_ref(&noise), "noise.csv");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results"])
        .arg(&noise));
    assert_eq!(out.status.code(), Some(1));
    assert_no_round(dir.path(), "R1");
}

#[test]
fn an_empty_file_fails_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = ingest_collections_fails(dir.path(), "R1", &[testdata("empty.csv")], "empty.csv");
    assert!(err.contains("empty"), "{err}");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results"])
        .arg(testdata("empty.csv")));
    assert_eq!(out.status.code(), Some(1));
    assert_no_round(dir.path(), "R1");
}

#[test]
fn a_missing_required_column_fails_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = ingest_collections_fails(
        dir.path(),
        "R1",
        &[testdata("missing_column_collections.csv")],
        "missing_column_collections.csv",
    );
    assert!(err.contains("mode"), "names the missing column: {err}");
    assert_no_round(dir.path(), "R1");

    // Results without reported_at.
    ingest_collections(dir.path(), "R1", &[testdata("bad_rows_collections.csv")]);
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results"])
        .arg(testdata("missing_reported_at_column_results.csv")));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("missing_reported_at_column_results.csv"),
        "{err}"
    );
    assert!(err.contains("reported_at"), "{err}");
    assert_eq!(round_status(dir.path(), "R1")["tubes_with_result"], 0);

    // Results with neither a result column nor both Ct columns.
    let no_result = dir.path().join("no-result-column.csv");
    std::fs::write(
        &no_result,
        "tube,ct_n,reported_at\nBAD-POOL-01,30.0,2022-04-02 12:00:00\n",
    )
    .expect("write");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results"])
        .arg(&no_result));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no-result-column.csv") && err.contains("result"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_utf8_fails_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = ingest_collections_fails(
        dir.path(),
        "R1",
        &[testdata("latin1_collections.csv")],
        "latin1_collections.csv",
    );
    assert!(err.contains("UTF-8"), "{err}");
    assert_no_round(dir.path(), "R1");
}

#[test]
fn one_unreadable_file_fails_the_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A good file first, then a bad one: the good one's rows must not be committed.
    ingest_collections_fails(
        dir.path(),
        "R1",
        &[
            testdata("example_collections.csv"),
            testdata("latin1_collections.csv"),
        ],
        "latin1_collections.csv",
    );
    assert_no_round(dir.path(), "R1");
    // And the good file was not recorded as ingested.
    let r = ingest_collections(dir.path(), "R1", &[testdata("example_collections.csv")]);
    assert_eq!(r["committed"], 13, "{r}");
}

#[test]
fn a_missing_input_file_fails_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("not-there.csv");
    ingest_collections_fails(
        dir.path(),
        "R1",
        &[testdata("example_collections.csv"), missing],
        "not-there.csv",
    );
    assert_no_round(dir.path(), "R1");
}

/// Writes the first half of a fixture to `dir/name`.
fn truncated_copy(fixture: &str, dir: &Path, name: &str) -> PathBuf {
    let bytes = std::fs::read(testdata(fixture)).expect("fixture");
    let p = dir.join(name);
    std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("write");
    p
}

#[test]
fn a_truncated_gzip_fails_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cut = truncated_copy("example_collections.csv.gz", dir.path(), "cut-short.csv.gz");
    let err = ingest_collections_fails(dir.path(), "R1", &[cut], "cut-short.csv.gz");
    assert!(!err.is_empty());
    assert_no_round(dir.path(), "R1");
}

#[test]
fn a_truncated_zstd_or_parquet_fails_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zst = truncated_copy(
        "example_collections.csv.zst",
        dir.path(),
        "cut-short.csv.zst",
    );
    ingest_collections_fails(dir.path(), "R1", &[zst], "cut-short.csv.zst");
    let pq = truncated_copy(
        "example_collections.parquet",
        dir.path(),
        "cut-short.parquet",
    );
    ingest_collections_fails(dir.path(), "R1", &[pq], "cut-short.parquet");
    assert_no_round(dir.path(), "R1");
}

// ---------------------------------------------------------------------------------------
// Accepted forms
// ---------------------------------------------------------------------------------------

#[test]
fn csv_gzip_zstd_and_parquet_ingest_alike() {
    let mut statuses: Vec<(String, Value)> = Vec::new();
    for fixture in [
        "example_collections.csv",
        "example_collections.csv.gz",
        "example_collections.csv.zst",
        "example_collections.parquet",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = ingest_collections(dir.path(), "R1", &[testdata(fixture)]);
        assert_eq!(c["rows_read"], 13, "{fixture}: {c}");
        assert_eq!(c["committed"], 13, "{fixture}: {c}");
        assert_eq!(c["rejected"], 0, "{fixture}: {c}");
        // The example's ids are made up in the form of resident identity numbers, and
        // their GB 11643 check characters are wrong: each row is kept with a warning,
        // whatever the file's form.
        assert_eq!(c["warnings"], 13, "{fixture}: {c}");
        let r = ingest_results(dir.path(), &[testdata("example_results.csv")]);
        assert_eq!(r["committed"], 4, "{fixture}: {r}");
        let s = round_status(dir.path(), "R1");
        assert_eq!(s["persons"], 13, "{fixture}: {s}");
        assert_eq!(s["tubes"], 5, "{fixture}: {s}");
        assert_eq!(s["pool_tubes"], 3, "{fixture}: {s}");
        assert_eq!(
            by_status(&s),
            counts(&[("recall", 8), ("pending", 1), ("negative", 4)]),
            "{fixture}"
        );
        // The default capacity and the site come through every form.
        let p = person_report(dir.path(), "R1", "110105198004043579");
        assert_eq!(p["tubes"][0]["capacity"], 1, "{fixture}");
        assert_eq!(p["tubes"][0]["site"], "S-HAIDIAN-02", "{fixture}");
        let p = person_report(dir.path(), "R1", "110105199909099012");
        assert_eq!(p["tubes"][0]["capacity"], 5, "{fixture}");
        assert_eq!(
            p["tubes"][0]["collected_at"], "2022-04-02T07:10:00+08:00",
            "{fixture}"
        );
        statuses.push((fixture.to_owned(), s));
    }
    for (name, s) in &statuses[1..] {
        assert_eq!(s, &statuses[0].1, "{name} differs from the plain CSV");
    }
}

#[test]
fn crlf_bom_quotes_reordered_and_extra_columns_are_accepted() {
    let crlf = std::fs::read(testdata("format_crlf_collections.csv")).expect("fixture");
    assert!(
        crlf.windows(2).any(|w| w == b"\r\n"),
        "the CRLF fixture lost its line endings"
    );
    let bom = std::fs::read(testdata("format_bom_collections.csv")).expect("fixture");
    assert!(
        bom.starts_with(b"\xEF\xBB\xBF"),
        "the BOM fixture lost its BOM"
    );
    for fixture in [
        "format_crlf_collections.csv",
        "format_bom_collections.csv",
        "format_quoted_collections.csv",
        "format_reordered_collections.csv",
        "format_upper_header_collections.csv",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = ingest_collections(dir.path(), "R1", &[testdata(fixture)]);
        assert_eq!(c["committed"], 3, "{fixture}: {c}");
        assert_eq!(c["rejected"], 0, "{fixture}: {c}");
        assert_eq!(c["warnings"], 0, "{fixture}: {c}");
        let s = round_status(dir.path(), "R1");
        assert_eq!(s["persons"], 3, "{fixture}: {s}");
        assert_eq!(s["tubes"], 2, "{fixture}: {s}");
        assert_eq!(s["pool_tubes"], 1, "{fixture}: {s}");
        if fixture != "format_quoted_collections.csv" {
            // The first column (tube, or site when reordered) is read cleanly.
            let p = person_report(dir.path(), "R1", "fmt-p1");
            assert_eq!(p["tubes"][0]["tube"], "FMT-POOL-01", "{fixture}");
            assert_eq!(p["tubes"][0]["site"], "S-01", "{fixture}");
            let p = person_report(dir.path(), "R1", "fmt-p3");
            assert_eq!(p["tubes"][0]["mode"], "single", "{fixture}");
            assert_eq!(p["tubes"][0]["site"], "S-01", "{fixture}");
        }
    }
}

#[test]
fn quoted_fields_keep_their_commas_and_quotes() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(
        dir.path(),
        "R1",
        &[testdata("format_quoted_collections.csv")],
    );
    let p = person_report(dir.path(), "R1", "Wang, Li");
    assert_eq!(p["tubes"][0]["tube"], "FMT-POOL-01");
    assert_eq!(p["tubes"][0]["site"], "Site 3, Gate A");
    assert_eq!(p["tubes"][0]["members"], 2);
    let p = person_report(dir.path(), "R1", "Zhang \"Xiao\" San");
    assert_eq!(p["tubes"][0]["tube"], "FMT-SG-01");
}

#[test]
fn crlf_rejects_have_the_right_line_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("crlf_bad_rows_collections.csv")],
    );
    // The unreadable mode is a warning (the row is kept), the time an error.
    assert_eq!(r["committed"], 3, "{r}");
    assert_eq!(
        lines_and_columns(&rejects_of(&r)),
        [(3, "mode"), (5, "collected_at")]
    );
    // The evidence behind a status points at the right line too.
    let p = person_report(dir.path(), "R1", "crlf-p3");
    assert_eq!(p["tubes"][0]["line"], 4, "{p}");
}

#[test]
fn blank_lines_do_not_shift_reject_line_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("blank_lines_bad_rows_collections.csv")],
    );
    assert_eq!(r["committed"], 2, "{r}");
    assert_eq!(
        lines_and_columns(&rejects_of(&r)),
        [(3, "mode"), (7, "collected_at")]
    );
}

#[test]
fn wrong_field_count_reject_shows_the_row_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = ingest_collections(dir.path(), "R1", &[testdata("bad_rows_collections.csv")]);
    let rejects = rejects_of(&r);
    let row = rejects.iter().find(|r| r.line == 13).expect("line 13");
    assert!(
        row.value.contains("BAD-POOL-08,bad-field-count,pool,10"),
        "{row:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Usage errors
// ---------------------------------------------------------------------------------------

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = testdata("example_collections.csv");
    let example = example.to_str().expect("utf-8 path");
    for args in [
        // missing --round
        vec!["ingest", "collections", example],
        // missing files
        vec!["ingest", "collections", "--round", "R1"],
        vec!["ingest", "results"],
        // unknown subcommands
        vec!["frobnicate"],
        vec!["ingest", "photos", example],
        vec!["worklist", "everyone", "--round", "R1"],
        // a round name that cannot be a folder name
        vec!["ingest", "collections", "--round", "../escape", example],
        vec!["ingest", "collections", "--round", "", example],
        // bad option values
        vec!["worklist", "recall", "--round", "R1", "--format", "xlsx"],
        vec!["status"],
        vec![],
    ] {
        let out = run(pooltrack(dir.path()).args(&args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_text(&out)
        );
        assert!(!stderr_text(&out).is_empty(), "{args:?}");
    }
    let segments: Vec<_> = crate::crash::files_under(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(
        segments,
        Vec::<std::path::PathBuf>::new(),
        "no usage error may commit anything"
    );
}
