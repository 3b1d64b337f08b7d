//! Security and privacy (issue 6): person ids are personal data. The store and the
//! exports are readable by their owner only; `--pseudonymize KEY_FILE` replaces person
//! ids with a keyed hash in exports and worklists; no input can make pooltrack write
//! outside the store or the named output.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{pooltrack, stdout_of, testdata};
use crate::crash::files_under;
use crate::rules::{csv_records, ingest_collections, ingest_results, run, stderr_text};

fn mode(p: &Path) -> u32 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every folder and file under `dir` (itself included), relative, with its mode.
fn tree(dir: &Path) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        out.insert(rel(dir, &d), mode(&d));
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel(dir, &p), mode(&p));
            }
        }
    }
    out
}

fn rel(root: &Path, p: &Path) -> String {
    let r = p.strip_prefix(root).expect("inside").to_string_lossy();
    if r.is_empty() {
        ".".to_owned()
    } else {
        r.into_owned()
    }
}

/// A store with collections (with a bad row), results, retests and their results of a
/// generated city with positives: every kind of file the store holds.
fn city_store(dir: &Path) -> (PathBuf, PathBuf) {
    let city = dir.join("city");
    let out = run(pooltrack(&dir.join("unused"))
        .args([
            "gen",
            "--persons",
            "3000",
            "--prevalence",
            "0.01",
            "--seed",
            "9",
            "--out",
        ])
        .arg(&city));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let store = dir.join("store");
    ingest_collections(&store, "R1", &[city.join("collections.csv")]);
    ingest_results(&store, &[city.join("results.csv")]);
    ingest_collections(&store, "R1", &[city.join("retest_collections.csv")]);
    ingest_results(&store, &[city.join("retest_results.csv")]);
    (store, city)
}

#[test]
fn the_store_and_outputs_are_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A store whose parents do not exist yet: pooltrack creates them too.
    let store = dir.path().join("new").join("store");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    ingest_results(&store, &[testdata("example_results.csv")]);
    let t = tree(&store);
    assert!(t.len() > 8, "{t:?}");
    for (p, m) in &t {
        let is_dir = store.join(p).is_dir();
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(*m, want, "{p} is {m:o}, should be {want:o}");
    }
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    for (args, out) in [
        (
            vec!["export", "status", "--round", "R1", "--out"],
            "status.csv",
        ),
        (
            vec!["export", "status", "--round", "R1", "--out"],
            "status.parquet",
        ),
        (
            vec!["worklist", "recall", "--round", "R1", "--out"],
            "recall.json",
        ),
        (
            vec!["worklist", "positives", "--round", "R1", "--out"],
            "positives.csv",
        ),
    ] {
        let path = dir.path().join(out);
        stdout_of(pooltrack(&store).args(&args).arg(&path));
        assert_eq!(mode(&path), 0o600, "{out}");
    }
    // Only the named outputs appear beside the store.
    let names: BTreeSet<String> = fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = [
        "new",
        "status.csv",
        "status.parquet",
        "recall.json",
        "positives.csv",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(names, want);
}

/// Reject reports hold person ids too: 0600 like the rest of the store, whatever the
/// process umask (the 0700 `rejects/` folder alone would keep other users out, but a
/// copied folder keeps its files' modes).
#[test]
fn reject_reports_are_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let r = ingest_collections(&store, "R1", &[testdata("bad_rows_collections.csv")]);
    let report = PathBuf::from(r["rejects_file"].as_str().expect("a rejects file"));
    assert_eq!(mode(&report), 0o600, "{}", report.display());
    // A strict run in a store of its own (the file is already ingested in the first).
    let strict = dir.path().join("strict");
    let out = run(pooltrack(&strict)
        .args(["ingest", "collections", "--round", "R1", "--strict"])
        .arg(testdata("bad_rows_collections.csv")));
    assert_eq!(out.status.code(), Some(1));
    for f in files_under(&strict.join("rejects")) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

fn write_key(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, secret).expect("key");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}

fn export_csv(store: &Path, out: &Path, key: Option<&Path>) -> Vec<BTreeMap<String, String>> {
    let mut cmd = pooltrack(store);
    cmd.args(["export", "status", "--round", "R1", "--out"])
        .arg(out);
    if let Some(k) = key {
        cmd.arg("--pseudonymize").arg(k);
    }
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}", stderr_text(&o));
    csv_records(&fs::read_to_string(out).expect("export"))
}

fn is_pseudonym(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn pseudonymized_exports_and_worklists_hide_every_person_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = city_store(dir.path());
    let key_a = write_key(dir.path(), "a.key", "3q2+7w== the office's secret, 2022\n");
    let key_a2 = write_key(dir.path(), "a2.key", "  3q2+7w== the office's secret, 2022");
    let key_b = write_key(
        dir.path(),
        "b.key",
        "another office's secret, quite different",
    );

    let plain = export_csv(&store, &dir.path().join("plain.csv"), None);
    let ids: Vec<String> = plain.iter().map(|r| r["person"].clone()).collect();
    assert_eq!(ids.len(), 3000);

    let a = export_csv(&store, &dir.path().join("a.csv"), Some(&key_a));
    let a_again = export_csv(&store, &dir.path().join("a-again.csv"), Some(&key_a2));
    let b = export_csv(&store, &dir.path().join("b.csv"), Some(&key_b));
    assert_eq!(
        a, a_again,
        "the same key (whitespace aside) gives the same pseudonyms"
    );
    assert_eq!(a.len(), plain.len());
    assert!(
        a.iter().all(|r| is_pseudonym(&r["person"])),
        "{:?}",
        a.first()
    );
    let set = |rows: &[BTreeMap<String, String>]| -> BTreeSet<String> {
        rows.iter().map(|r| r["person"].clone()).collect()
    };
    assert_eq!(set(&a).len(), 3000, "distinct persons, distinct pseudonyms");
    assert!(
        set(&a).is_disjoint(&set(&b)),
        "another key, other pseudonyms"
    );
    // Sorted by pseudonym, not by the real id (whose order would leak it).
    let pseudonyms: Vec<&String> = a.iter().map(|r| &r["person"]).collect();
    assert!(pseudonyms.windows(2).all(|w| w[0] <= w[1]));
    // Everything but the id is unchanged: the same statuses, tube by tube.
    let by_tube = |rows: &[BTreeMap<String, String>]| -> BTreeMap<(String, String), usize> {
        let mut m = BTreeMap::new();
        for r in rows {
            *m.entry((r["tube"].clone(), r["status"].clone()))
                .or_default() += 1;
        }
        m
    };
    assert_eq!(by_tube(&a), by_tube(&plain));

    // No real id anywhere in any output made with the key: every format, stdout too.
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    for out in ["a.csv", "a.json", "a.parquet"] {
        let p = dir.path().join(out);
        stdout_of(
            pooltrack(&store)
                .args(["export", "status", "--round", "R1", "--out"])
                .arg(&p)
                .arg("--pseudonymize")
                .arg(&key_a),
        );
        outputs.push((out.to_owned(), fs::read(&p).expect("out")));
    }
    for list in ["recall", "resample", "positives"] {
        for format in ["csv", "json"] {
            let text = stdout_of(
                pooltrack(&store)
                    .args(["worklist", list, "--round", "R1", "--format", format])
                    .arg("--pseudonymize")
                    .arg(&key_a),
            );
            outputs.push((format!("{list}.{format}"), text.into_bytes()));
        }
    }
    for (name, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for id in &ids {
            assert!(!text.contains(id.as_str()), "{name} shows the real id {id}");
        }
    }
    // Parquet is compressed: read it back and check the column itself.
    let parquet = dir.path().join("a.parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        fs::File::open(&parquet).expect("open"),
    )
    .expect("parquet")
    .build()
    .expect("reader");
    let mut n = 0;
    for batch in reader {
        let batch = batch.expect("batch");
        let col = batch
            .column_by_name("person")
            .expect("person column")
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("text")
            .clone();
        for v in col.iter().flatten() {
            assert!(is_pseudonym(v), "{v}");
            n += 1;
        }
    }
    assert_eq!(n, 3000);

    // A worklist and the export made with the same key name the same person alike, so
    // the district office can join them.
    let positives = csv_records(&stdout_of(
        pooltrack(&store)
            .args(["worklist", "positives", "--round", "R1"])
            .arg("--pseudonymize")
            .arg(&key_a),
    ));
    assert!(!positives.is_empty(), "the generated city has positives");
    let exported: BTreeMap<&str, &str> = a
        .iter()
        .map(|r| (r["person"].as_str(), r["status"].as_str()))
        .collect();
    for p in &positives {
        assert_eq!(
            exported.get(p["person"].as_str()),
            Some(&"positive"),
            "{p:?}"
        );
    }
}

#[test]
fn a_bad_key_file_is_a_usage_error_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    let short = write_key(dir.path(), "short.key", "tiny\n");
    let open = dir.path().join("open.key");
    fs::write(&open, "a long enough secret for a key file").expect("key");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out_file = dir.path().join("out.csv");
    for (key, says) in [
        (dir.path().join("missing.key"), "missing.key"),
        (short, "at least 16"),
    ] {
        let o = run(pooltrack(&store)
            .args(["export", "status", "--round", "R1", "--out"])
            .arg(&out_file)
            .arg("--pseudonymize")
            .arg(&key));
        assert_eq!(o.status.code(), Some(2), "{}", stderr_text(&o));
        assert!(stderr_text(&o).contains(says), "{}", stderr_text(&o));
        assert!(!out_file.exists());
        let o = run(pooltrack(&store)
            .args(["worklist", "recall", "--round", "R1", "--pseudonymize"])
            .arg(&key));
        assert_eq!(o.status.code(), Some(2), "{}", stderr_text(&o));
        assert!(o.stdout.is_empty());
    }
    // A key others may read still works, with a warning.
    let o = run(pooltrack(&store)
        .args(["export", "status", "--round", "R1", "--out"])
        .arg(&out_file)
        .arg("--pseudonymize")
        .arg(&open));
    assert!(o.status.success(), "{}", stderr_text(&o));
    assert!(
        stderr_text(&o).contains("readable by others"),
        "{}",
        stderr_text(&o)
    );
}

#[test]
fn round_names_cannot_leave_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    fs::create_dir(&work).expect("mkdir");
    let store = work.join("store");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    let before = tree(dir.path());
    let long = "r".repeat(65);
    for round in [
        "../x",
        "..",
        ".",
        "a/b",
        "/tmp/abs",
        ".hidden",
        "x/../../y",
        "R1/../../z",
        "a\\b",
        "",
        " ",
        "x\ty",
        &long,
    ] {
        let o = run(pooltrack(&store)
            .args(["ingest", "collections", "--round", round])
            .arg(testdata("times_collections.csv")));
        assert_eq!(
            o.status.code(),
            Some(2),
            "round {round:?}: {}",
            stderr_text(&o)
        );
        for cmd in [
            vec!["status", "--round", round],
            vec!["worklist", "recall", "--round", round],
        ] {
            let o = run(pooltrack(&store).args(&cmd));
            assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", stderr_text(&o));
        }
        let out = work.join("export.csv");
        let o = run(pooltrack(&store)
            .args(["export", "status", "--round", round, "--out"])
            .arg(&out));
        assert_eq!(o.status.code(), Some(2), "{}", stderr_text(&o));
        assert!(!out.exists());
    }
    assert_eq!(
        tree(dir.path()),
        before,
        "a refused round name created nothing"
    );
    assert!(!Path::new("/tmp/abs").exists());
}

#[test]
fn input_paths_and_names_only_ever_write_inside_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("in").join("deep").join("er");
    fs::create_dir_all(&nested).expect("mkdir");
    // A file reached through `..`, with bad rows (so a rejects report is written), and a
    // `round` column trying to steer its rows elsewhere (unknown columns are ignored).
    let text = fs::read_to_string(testdata("bad_rows_collections.csv")).expect("fixture");
    let mut lines = text.lines();
    let mut steered = format!("{},round\n", lines.next().expect("header"));
    for l in lines {
        steered.push_str(l);
        steered.push_str(",../../../escaped\n");
    }
    let file = nested.join("c.csv");
    fs::write(&file, steered).expect("write");
    let via_dotdot = nested
        .join("..")
        .join("er")
        .join("..")
        .join("er")
        .join("c.csv");
    let store = dir.path().join("store");
    let before = tree(dir.path());
    let r = ingest_collections(&store, "R1", &[via_dotdot]);
    assert!(r["committed"].as_u64() > Some(0), "{r}");
    assert!(r["rejected"].as_u64() > Some(0), "{r}");
    let after = tree(dir.path());
    let new: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    for p in &new {
        assert!(p.starts_with("store"), "{p} was created outside the store");
    }
    // Inside the store, only pooltrack's own layout: no folder named after a source.
    let dirs: BTreeSet<String> = tree(&store)
        .keys()
        .filter(|p| store.join(p).is_dir())
        .cloned()
        .collect();
    let want: BTreeSet<String> = [
        ".",
        "rejects",
        "collections",
        "collections/_delta_log",
        "collections/_pooltrack",
        "collections/_pooltrack/R1",
        "collections/R1",
        "results",
        "results/_delta_log",
        "population",
        "population/_delta_log",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(dirs, want);
    assert!(!dir.path().join("escaped").exists());

    // A named output goes exactly there: a missing folder is an error, not created.
    let o = run(pooltrack(&store)
        .args(["export", "status", "--round", "R1", "--out"])
        .arg(dir.path().join("no-such-folder").join("x.csv")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr_text(&o));
    assert!(!dir.path().join("no-such-folder").exists());
}

/// `export --out DIR` where DIR is a folder: the rename of the finished temporary file
/// fails, and the temporary file (every person id of the round) must not stay beside
/// the output.
#[test]
fn a_failed_export_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    let folder = dir.path().join("out-folder");
    fs::create_dir(&folder).expect("mkdir");
    let before = tree(dir.path());
    let o = run(pooltrack(&store)
        .args(["export", "status", "--round", "R1", "--out"])
        .arg(&folder));
    assert_ne!(o.status.code(), Some(0), "{}", stderr_text(&o));
    assert_eq!(
        tree(dir.path()),
        before,
        "a failed export left files behind"
    );
}
