//! Files as Chinese offices save them (issue 14, point 5): CSV in GB18030/GBK from
//! Excel on a Chinese-language Windows, read with `--encoding gb18030`; refused with a
//! hint without it; and semicolon- or tab-separated exports read with `--delimiter`.
//!
//! The GB18030 fixtures were written with Python's `'...'.encode('gb18030')` and CRLF
//! line ends, as Excel writes them; they are not UTF-8 from their second line on.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};
use crate::rules::{
    by_status, counts, rejects_of, round_status, run, stderr_text, tubes_by_result,
};

/// `ingest KIND [ARGS] FILE --json`, asserting success.
fn ingest(store: &Path, kind: &[&str], args: &[&str], file: &Path) -> Value {
    json_of(
        pooltrack(store)
            .arg("ingest")
            .args(kind)
            .args(args)
            .arg("--json")
            .arg(file),
    )
}

/// `ingest KIND [ARGS] FILE` expecting exit 1 and nothing printed; returns stderr.
fn ingest_refused(store: &Path, kind: &[&str], args: &[&str], file: &Path) -> String {
    let out = run(pooltrack(store)
        .arg("ingest")
        .args(kind)
        .args(args)
        .arg(file));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

const COLLECTIONS_R: &[&str] = &["collections", "--round", "R"];
const GB: &[&str] = &["--encoding", "gb18030"];

fn assert_file_is_not_utf8(path: &PathBuf) {
    let bytes = std::fs::read(path).expect("fixture");
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "{} must not be UTF-8",
        path.display()
    );
}

#[test]
fn gb18030_collections_and_results_ingest_with_encoding_gb18030() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collections = testdata("gb18030_collections.csv");
    let results = testdata("gb18030_results.csv");
    assert_file_is_not_utf8(&collections);
    assert_file_is_not_utf8(&results);

    let c = ingest(dir.path(), COLLECTIONS_R, GB, &collections);
    assert_eq!(
        (c["committed"].as_u64(), c["rejected"].as_u64()),
        (Some(6), Some(0)),
        "{c}"
    );
    // gbk is read as gb18030, its superset.
    let r = ingest(dir.path(), &["results"], &["--encoding", "gbk"], &results);
    assert_eq!(
        (r["committed"].as_u64(), r["rejected"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );

    // 阳性 / 阴性 were read as results: one positive pool, two negative tubes.
    let status = round_status(dir.path(), "R");
    let tubes = tubes_by_result(&status);
    assert_eq!(tubes.get("positive"), Some(&1), "{status}");
    assert_eq!(tubes.get("negative"), Some(&2), "{status}");
    assert_eq!(
        by_status(&status),
        counts(&[("recall", 3), ("negative", 3)]),
        "{status}"
    );

    // What the store gives back is UTF-8, Chinese names and sites intact.
    let recall = stdout_of(pooltrack(dir.path()).args(["worklist", "recall", "--round", "R"]));
    assert_eq!(recall.lines().count(), 4, "{recall}");
    for line in recall.lines().skip(1) {
        assert!(line.contains(",GB-POOL-01,"), "{line}");
        assert!(line.contains(",朝阳区第一采样点,"), "{line}");
        assert!(line.contains("北京第一检测实验室"), "{line}");
    }
    assert!(
        recall.contains("张伟,recall,") && recall.contains("王芳,recall,"),
        "{recall}"
    );
    let person = json_of(
        pooltrack(dir.path()).args(["status", "--round", "R", "--person", "陈静", "--json"]),
    );
    assert_eq!(person["status"], "negative", "{person}");
    assert_eq!(person["decided_by"]["site"], "海淀区第二采样点", "{person}");
}

#[test]
fn gb18030_files_without_the_option_are_refused_with_the_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (kind, file) in [
        (COLLECTIONS_R, "gb18030_collections.csv"),
        (&["results"][..], "gb18030_results.csv"),
        (COLLECTIONS_R, "gb18030_collections.csv.gz"),
    ] {
        let err = ingest_refused(dir.path(), kind, &[], &testdata(file));
        assert!(err.contains(file), "names the file: {err}");
        assert!(
            err.contains("line 2: the text is not UTF-8"),
            "names the line: {err}"
        );
        assert!(err.contains("add --encoding gb18030"), "{err}");
        // Saying utf-8 out loud changes nothing.
        let again = ingest_refused(dir.path(), kind, &["--encoding", "utf-8"], &testdata(file));
        assert_eq!(again, err);
    }
    // Nothing was committed.
    let out = run(pooltrack(dir.path()).args(["status", "--round", "R", "--json"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
}

#[test]
fn a_latin1_file_is_refused_without_the_gb18030_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = ingest_refused(
        dir.path(),
        COLLECTIONS_R,
        &[],
        &testdata("latin1_collections.csv"),
    );
    assert!(err.contains("line 3: the text is not UTF-8"), "{err}");
    assert!(!err.to_lowercase().contains("gb18030"), "{err}");

    // A Latin-1 file that happens to decode as GBK (ü + l is a GBK pair) is not Chinese
    // text: no hint either.
    let p = dir.path().join("mueller.csv");
    std::fs::write(
        &p,
        b"tube,person,mode,collected_at,site\nLAT-01,M\xfcller,single,2022-04-02 08:00:00,S\n",
    )
    .expect("write");
    let err = ingest_refused(dir.path(), COLLECTIONS_R, &[], &p);
    assert!(err.contains("line 2: the text is not UTF-8"), "{err}");
    assert!(!err.to_lowercase().contains("gb18030"), "{err}");
}

#[test]
fn a_gb18030_header_is_refused_with_the_hint_and_read_with_the_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Chinese column names pooltrack does not know (ignored once decoded).
    let (bytes, _, unmappable) = encoding_rs::GB18030
        .encode("tube,person,mode,collected_at,备注\r\nHD-01,p1,single,2022-04-02 08:00:00,无\r\n");
    assert!(!unmappable);
    let p = dir.path().join("chinese_header.csv");
    std::fs::write(&p, &bytes).expect("write");
    let err = ingest_refused(dir.path(), COLLECTIONS_R, &[], &p);
    assert!(
        err.contains("line 1: the header is not UTF-8 text; it reads as GB18030"),
        "{err}"
    );
    assert!(err.contains("add --encoding gb18030"), "{err}");
    let c = ingest(dir.path(), COLLECTIONS_R, GB, &p);
    assert_eq!(c["committed"], 1, "{c}");
}

#[test]
fn a_gzipped_gb18030_file_reads_with_the_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gz = testdata("gb18030_collections.csv.gz");
    assert_eq!(&std::fs::read(&gz).expect("fixture")[..2], b"\x1f\x8b");
    let c = ingest(dir.path(), COLLECTIONS_R, GB, &gz);
    assert_eq!(c["committed"], 6, "{c}");
    let person = json_of(
        pooltrack(dir.path()).args(["status", "--round", "R", "--person", "张伟", "--json"]),
    );
    assert_eq!(person["decided_by"]["site"], "东城区核酸采样亭", "{person}");
    assert_eq!(person["decided_by"]["tube"], "GB-POOL-01", "{person}");
}

#[test]
fn rejected_rows_of_a_gb18030_file_report_their_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    // CRLF lines, a blank line 3 and a site with a line break (lines 4-5) before the
    // bad rows: the lines must be those of the file.
    let c = ingest(
        dir.path(),
        COLLECTIONS_R,
        GB,
        &testdata("gb18030_bad_rows_collections.csv"),
    );
    // The site with a line break and the unreadable mode are metadata: those rows are
    // kept with a warning; the bad time and barcode cannot be placed.
    assert_eq!(
        (c["committed"].as_u64(), c["rejected"].as_u64()),
        (Some(4), Some(2)),
        "{c}"
    );
    let rejects = rejects_of(&c);
    let found: Vec<(u64, &str, &str, &str)> = rejects
        .iter()
        .map(|r| {
            (
                r.line,
                r.column.as_str(),
                r.person.as_str(),
                r.value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (4, "site", "王芳", "朝阳区\r\n第一采样点"),
            (6, "mode", "李娜", "池子"),
            (7, "collected_at", "刘洋", "不是时间"),
            (9, "tube", "周杰", "坏条码"),
        ],
        "{rejects:?}"
    );
}

#[test]
fn a_semicolon_file_is_refused_with_the_delimiter_hint_and_read_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let semi = testdata("semicolon_collections.csv");
    let err = ingest_refused(dir.path(), COLLECTIONS_R, &[], &semi);
    assert!(
        err.contains("the header looks semicolon-separated (tube;person;mode;...)"),
        "{err}"
    );
    assert!(err.contains("add --delimiter ';'"), "{err}");

    let c = ingest(dir.path(), COLLECTIONS_R, &["--delimiter", ";"], &semi);
    assert_eq!(
        (c["committed"].as_u64(), c["rejected"].as_u64()),
        (Some(3), Some(0)),
        "{c}"
    );
    // A quoted field keeps its semicolon.
    let person =
        json_of(pooltrack(dir.path()).args(["status", "--round", "R", "--person", "p3", "--json"]));
    assert_eq!(person["decided_by"]["site"], "S-SEMI;02", "{person}");
    assert_eq!(person["decided_by"]["tube"], "SC-SG-01", "{person}");
}

#[test]
fn a_tab_file_is_read_with_delimiter_tab() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tab = testdata("tab_collections.tsv");
    let err = ingest_refused(dir.path(), COLLECTIONS_R, &[], &tab);
    assert!(err.contains("the header looks tab-separated"), "{err}");
    assert!(err.contains("add --delimiter tab"), "{err}");
    for spelling in ["tab", "\t", "\\t"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = ingest(dir.path(), COLLECTIONS_R, &["--delimiter", spelling], &tab);
        assert_eq!(c["committed"], 3, "--delimiter {spelling:?}: {c}");
        // A comma inside a tab-separated field is text.
        let person = json_of(
            pooltrack(dir.path()).args(["status", "--round", "R", "--person", "p3", "--json"]),
        );
        assert_eq!(person["decided_by"]["site"], "S-TAB, 02", "{person}");
    }
}

#[test]
fn a_delimiter_pooltrack_does_not_read_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "collections", "--round", "R", "--delimiter", "x"])
        .arg(testdata("example_collections.csv")));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("--delimiter"),
        "{}",
        stderr_text(&out)
    );
    let out = run(pooltrack(dir.path())
        .args([
            "ingest",
            "collections",
            "--round",
            "R",
            "--encoding",
            "latin1",
        ])
        .arg(testdata("example_collections.csv")));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
}

#[test]
fn utf8_and_parquet_files_read_as_before_whatever_the_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A UTF-8 file holding only ASCII is the same text in GB18030.
    let c = ingest(
        dir.path(),
        COLLECTIONS_R,
        GB,
        &testdata("example_collections.csv"),
    );
    assert_eq!(c["committed"], 13, "{c}");
    // Parquet is always UTF-8: --encoding and --delimiter do not apply to it.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ingest(
        dir.path(),
        COLLECTIONS_R,
        &["--encoding", "gb18030", "--delimiter", ";"],
        &testdata("example_collections.parquet"),
    );
    assert_eq!(p["committed"], 13, "{p}");
}
