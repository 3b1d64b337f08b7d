//! A clerk's first day (issue 15): why rows were refused is on the screen and in
//! `--json`, not only in the rejects file; a batch job can act on the exit code (4:
//! every new row refused; 5: more refused than `--fail-on-reject` / `--max-rejected`
//! allow); results do not create an empty store; a second writer can `--wait`; an
//! error is printed once; an Excel workbook is named as one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{pooltrack, testdata};
use crate::crash::bin;
use crate::rules::{round_status, run, stderr_text};

fn stdout_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A store holding the example round R1, so results have collections to go to.
fn store_with_collections() -> tempfile::TempDir {
    store_with("example_collections.csv")
}

/// A store holding round R1 of the testdata collections file `name`.
fn store_with(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "collections", "--round", "R1"])
        .arg(testdata(name)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    dir
}

/// Results none of whose tubes were collected: every row is refused.
fn uncollected_results(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("uncollected.csv");
    let mut text = String::from("tube,result,reported_at\n");
    for i in 0..6 {
        text.push_str(&format!("RC0000000{i},negative,2022-04-02 20:00:00\n"));
    }
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn every_row_refused_prints_the_reasons_and_exits_4() {
    let dir = store_with_collections();
    let file = uncollected_results(dir.path());
    let out = run(pooltrack(dir.path()).args(["ingest", "results"]).arg(&file));
    let (text, err) = (stdout_text(&out), stderr_text(&out));
    assert_eq!(out.status.code(), Some(4), "{text}{err}");
    assert!(
        text.contains("nothing committed: 6 row(s) read, 6 rejected"),
        "{text}"
    );
    // The reasons on the screen: one kind, counted, with the first three rows.
    assert!(text.contains("refused rows (6), by reason:"), "{text}");
    assert!(
        text.contains("6 × column tube: tube … was never collected"),
        "{text}"
    );
    let name = file.display().to_string();
    for line in [2, 3, 4] {
        assert!(
            text.contains(&format!(
                "{name}:{line}: tube RC0000000{} was never collected",
                line - 2
            )),
            "example of line {line}: {text}"
        );
    }
    assert!(
        !text.contains(&format!("{name}:5:")),
        "three examples: {text}"
    );
    assert!(text.contains("… and 3 more"), "{text}");
    assert!(text.contains("rejected and flagged rows: "), "{text}");
    assert!(err.contains("nothing committed"), "{err}");
    assert!(err.contains("every new row refused"), "{err}");

    // The same in --json, still valid JSON on stdout under exit 4.
    let copy = dir.path().join("again.csv");
    std::fs::copy(&file, &copy).expect("copy");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results", "--json"])
        .arg(&copy));
    assert_eq!(out.status.code(), Some(4), "{}", stderr_text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("--json");
    assert!(r["batch"].is_null(), "{r}");
    let reasons = r["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 1, "{r}");
    let g = &reasons[0];
    assert_eq!(g["severity"], "error");
    assert_eq!(g["column"], "tube");
    assert_eq!(g["count"], 6);
    assert_eq!(
        g["kind"],
        "tube … was never collected: no collection row in the store names it"
    );
    assert_eq!(
        g["reason"],
        "tube RC00000000 was never collected: no collection row in the store names it"
    );
    let ex = g["examples"].as_array().expect("examples");
    assert_eq!(ex.len(), 3, "{g}");
    assert_eq!(ex[1]["line"], 3);
    assert_eq!(ex[1]["tube"], "RC00000001");
    assert_eq!(ex[1]["file"], copy.display().to_string());

    // Nothing went in.
    assert_eq!(round_status(dir.path(), "R1")["tubes_with_result"], 0);
}

#[test]
fn reasons_group_errors_and_warnings_separately() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "collections", "--round", "R1"])
        .arg(testdata("bad_rows_collections.csv")));
    let text = stdout_text(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let errors = text.find("refused rows (6), by reason:").expect(&text);
    let warnings = text.find("warnings (5), by reason:").expect(&text);
    assert!(errors < warnings, "{text}");
    // Three rows with the same wording: said once, with the rows' places.
    assert!(
        text.contains(
            "3 × column capacity: capacity must be a whole number from 1 to 20: read as not stated; the row is kept"
        ),
        "{text}"
    );
    assert!(
        text.contains("bad_rows_collections.csv:8 (tube BAD-POOL-04)"),
        "{text}"
    );
    assert!(
        text.contains("1 × the row: the row has 4 fields but the header has 6"),
        "{text}"
    );
    // The reasons come before the pointer to the file listing every row.
    let file_line = text.find("rejected and flagged rows:").expect(&text);
    assert!(warnings < file_line, "{text}");

    let out = run(pooltrack(dir.path())
        .args(["ingest", "collections", "--round", "R2", "--json"])
        .arg(testdata("bad_rows_collections.csv")));
    // The same content: already ingested, no reasons, exit 0.
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("--json");
    assert_eq!(r["reasons"], Value::Array(Vec::new()), "{r}");
}

#[test]
fn fail_on_reject_commits_the_valid_rows_then_exits_5() {
    let dir = store_with("bad_rows_collections.csv");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results", "--fail-on-reject", "--json"])
        .arg(testdata("bad_rows_results.csv")));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("--json");
    assert_eq!(r["rejected"], 4, "{r}");
    assert!(r["batch"].is_u64(), "valid rows committed: {r}");
    assert!(err.contains("4 row(s) refused"), "{err}");
    assert!(err.contains("committed in batch"), "{err}");

    // Under its limit, --max-rejected is a success; over it, exit 5.
    let dir = store_with("bad_rows_collections.csv");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results", "--max-rejected", "4"])
        .arg(testdata("bad_rows_results.csv")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let dir = store_with("bad_rows_collections.csv");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results", "--max-rejected", "3"])
        .arg(testdata("bad_rows_results.csv")));
    assert_eq!(out.status.code(), Some(5), "{}", stderr_text(&out));

    // --strict commits nothing (exit 1), and shows its reasons too.
    let dir = store_with("bad_rows_collections.csv");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results", "--strict"])
        .arg(testdata("bad_rows_results.csv")));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused rows (4), by reason:"), "{err}");
    assert!(err.contains("batch rejected under --strict"), "{err}");
    assert_eq!(round_status(dir.path(), "R1")["tubes_with_result"], 0);

    // The help says which is which.
    let help = stdout_text(&run(
        pooltrack(dir.path()).args(["ingest", "results", "--help"])
    ));
    for words in ["--fail-on-reject", "--max-rejected", "--strict", "--wait"] {
        assert!(help.contains(words), "{words}: {help}");
    }
    assert!(help.contains("Unlike --strict"), "{help}");
}

#[test]
fn results_into_a_missing_store_create_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("new-store");
    let out = run(pooltrack(&store)
        .args(["ingest", "results"])
        .arg(testdata("example_results.csv")));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no store at"), "{err}");
    assert!(err.contains("ingest collections"), "{err}");
    assert!(!store.exists(), "no empty store left behind");

    // Collections (and the register) still create it.
    let out = run(pooltrack(&store)
        .args(["ingest", "population"])
        .arg(testdata("population_example.csv")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert!(crate::crash::store_exists(&store));
}

/// Holds the store's writer lock as a writer does.
fn hold_lock(store: &Path) -> std::fs::File {
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(store.join("lock"))
        .expect("the store has a lock file");
    lock.try_lock().expect("this test holds the writer lock");
    lock
}

#[test]
fn wait_seconds_waits_for_the_other_writer() {
    let dir = store_with_collections();
    let lock = hold_lock(dir.path());

    // Without --wait: busy at once, naming the option.
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results"])
        .arg(testdata("example_results.csv")));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("--wait SECONDS"), "{err}");

    // With a short --wait: busy after it, saying how long it waited.
    let start = Instant::now();
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results", "--wait", "0.5"])
        .arg(testdata("example_results.csv")));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("store is busy"), "{err}");
    assert!(err.contains("waited 0.5 s"), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(500));
    // Config changes are writers too.
    let out = run(pooltrack(dir.path()).args(["config", "--ct-cutoff", "38", "--wait", "0.2"]));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("waited 0.2 s"), "{err}");

    // With a long --wait: it commits once the other writer has gone.
    let child = Command::new(bin())
        .arg("--store")
        .arg(dir.path())
        .args(["ingest", "results", "--json", "--wait", "60"])
        .arg(testdata("example_results.csv"))
        .env_remove("POOLTRACK_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pooltrack starts");
    std::thread::sleep(Duration::from_millis(700));
    drop(lock);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("--json");
    assert_eq!(r["committed"], 4, "{r}");

    let out = run(pooltrack(dir.path()).args(["ingest", "results", "--wait", "soon"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
}

#[test]
fn a_missing_file_is_reported_once() {
    let dir = store_with_collections();
    let missing = dir.path().join("no-such-file.csv");
    let out = run(pooltrack(dir.path())
        .args(["ingest", "results"])
        .arg(&missing));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "said once: {err}"
    );
    assert!(err.contains("no-such-file.csv"), "{err}");
    assert!(!err.contains("caused by"), "{err}");
}

#[test]
fn an_excel_workbook_is_named_as_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let xls = dir.path().join("old.xls");
    let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    ole.resize(512, 0);
    std::fs::write(&xls, ole).expect("write");
    for (file, what) in [
        (testdata("workbook.xlsx"), "Excel workbook (.xlsx"),
        (xls, "Excel 97-2003 workbook (.xls)"),
    ] {
        let out = run(pooltrack(dir.path())
            .args(["ingest", "collections", "--round", "R1"])
            .arg(&file));
        let err = stderr_text(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(what), "{err}");
        assert!(err.contains("not CSV"), "{err}");
        assert!(
            err.contains("File › Save As › CSV UTF-8 (comma delimited)"),
            "{err}"
        );
        assert!(!err.contains("not UTF-8"), "{err}");
    }
}

#[test]
fn every_exit_code_is_documented() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let table = &readme[readme.find("Exit codes:").expect("an exit-code table")..];
    for code in 0..=5 {
        assert!(
            table.contains(&format!("\n| {code} | ")),
            "README's exit-code table lacks {code}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let help = stdout_text(&run(pooltrack(dir.path()).arg("--help")));
    for code in ["3 store busy", "4 nothing committed", "5 more rows refused"] {
        assert!(help.contains(code), "--help: {code}: {help}");
    }
}
