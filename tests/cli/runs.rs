//! A round ingested in many batches: the writer merges the batches' sidecar indexes
//! into runs, and every output reads as it does for the same rows in one batch,
//! through retractions, damage to a run and runs removed under a reader.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{pooltrack, stdout_of};

/// A small generated city's collections cut at tube boundaries into `parts` files,
/// and its results into `result_parts`.
fn city_in_batches(dir: &Path, parts: usize, result_parts: usize) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let city = dir.join("city");
    stdout_of(
        pooltrack(&dir.join("unused"))
            .args(["gen", "--persons", "6000", "--prevalence", "0.02", "--out"])
            .arg(&city),
    );
    let cut = |file: &str, parts: usize, at_tube_ends: bool| -> Vec<PathBuf> {
        let text = fs::read_to_string(city.join(file)).expect("read the city");
        let mut lines = text.lines();
        let header = lines.next().expect("a header");
        let rows: Vec<&str> = lines.collect();
        let tube = |l: &str| l.split(',').next().unwrap_or("").to_owned();
        let mut cuts: Vec<usize> = (0..=parts).map(|i| rows.len() * i / parts).collect();
        for i in 1..parts {
            while at_tube_ends
                && cuts[i] < rows.len()
                && tube(rows[cuts[i]]) == tube(rows[cuts[i] - 1])
            {
                cuts[i] += 1;
            }
        }
        (0..parts)
            .map(|i| {
                let p = dir.join(format!("{i:02}-{file}"));
                let mut text = format!("{header}\n");
                for l in &rows[cuts[i]..cuts[i + 1]] {
                    text.push_str(l);
                    text.push('\n');
                }
                fs::write(&p, text).expect("write a part");
                p
            })
            .collect()
    };
    (
        cut("collections.csv", parts, true),
        cut("results.csv", result_parts, false),
    )
}

fn ingest(store: &Path, what: &str, file: &Path) {
    let mut cmd = pooltrack(store);
    cmd.args(["ingest", what]).arg(file);
    if what == "collections" {
        cmd.args(["--round", "R1"]);
    }
    stdout_of(&mut cmd);
}

/// Every whole-round output a reader of the round gets, by name.
fn outputs(store: &Path) -> Vec<(&'static str, String)> {
    let run = |args: &[&str]| stdout_of(pooltrack(store).args(args));
    vec![
        ("status", run(&["status", "--round", "R1", "--json"])),
        ("export status", run(&["export", "status", "--round", "R1"])),
        ("recall", run(&["worklist", "recall", "--round", "R1"])),
        ("rerun", run(&["worklist", "rerun", "--round", "R1"])),
        ("review", run(&["review", "--round", "R1"])),
        (
            "health codes",
            without_sources(&run(&["export", "health-codes", "--round", "R1"])),
        ),
    ]
}

/// A health-code export without the columns citing file, line and batch, which differ
/// between two stores given the same rows in other files.
fn without_sources(csv_text: &str) -> String {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let header = r.headers().expect("a header").clone();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].ends_with("_source"))
        .collect();
    let mut out = String::new();
    for rec in std::iter::once(Ok(header)).chain(r.records()) {
        let rec = rec.expect("a row");
        let fields: Vec<&str> = keep.iter().map(|&i| &rec[i]).collect();
        out.push_str(&fields.join("\u{1f}"));
        out.push('\n');
    }
    out
}

fn assert_same(a: &Path, b: &Path) {
    for ((what, x), (_, y)) in outputs(a).into_iter().zip(outputs(b)) {
        assert!(
            x == y,
            "{what} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn runs_in(store: &Path, table: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(store.join(table).join("_pooltrack/R1/runs"))
        .expect("the round's runs folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('r'))
        .collect();
    names.sort();
    names
}

/// Asserts that every output of `store` is as `before` (its [`outputs`] then), naming
/// the output that changed `with` what.
fn assert_unchanged(before: &[(&str, String)], store: &Path, with: &str) {
    for ((what, x), (_, y)) in before.iter().zip(outputs(store)) {
        assert!(*x == y, "{what} changed with {with}");
    }
}

/// Asserts that `verify` finds `store` healthy and warns with `words`.
fn healthy_with_warning(store: &Path, words: &str) {
    let v = verify(store);
    assert_eq!(v["healthy"], true, "{v}");
    assert!(v["warnings"].to_string().contains(words), "{v}");
}

fn verify(store: &Path) -> serde_json::Value {
    let out = pooltrack(store)
        .args(["verify", "--json"])
        .output()
        .expect("run");
    serde_json::from_slice(&out.stdout).expect("verify --json")
}

#[test]
fn a_round_of_many_batches_reads_as_the_same_rows_in_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let (collections, results) = city_in_batches(dir.path(), 9, 5);
    let (many, one) = (dir.path().join("many"), dir.path().join("one"));
    for c in &collections {
        ingest(&many, "collections", c);
    }
    for r in &results {
        ingest(&many, "results", r);
    }
    // The same rows, one batch each.
    let whole = dir.path().join("city");
    ingest(&one, "collections", &whole.join("collections.csv"));
    ingest(&one, "results", &whole.join("results.csv"));

    // Batches 1-4 merged when the fourth came, then with 5-7 when the seventh did
    // (runs of the smallest size class take in three more batches at a time); 8 and 9
    // wait. Results batches 10-13 merged; the fourteenth waits.
    assert_eq!(
        runs_in(&many, "collections"),
        ["r000001-000007-7.persons", "r000001-000007-7.tubes"]
    );
    assert_eq!(runs_in(&many, "results"), ["r000010-000013-4.tubes"]);
    assert_same(&many, &one);
    let v = verify(&many);
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");

    // A retraction inside a run retires it: the round's eight batches left are
    // merged again without it, and the round reads as if the batch had never come.
    stdout_of(pooltrack(&many).args(["retract", "--batch", "6", "--reason", "wrong round"]));
    assert_eq!(
        runs_in(&many, "collections"),
        ["r000001-000009-8.persons", "r000001-000009-8.tubes"]
    );
    let without = dir.path().join("without");
    for (i, c) in collections.iter().enumerate() {
        if i != 5 {
            ingest(&without, "collections", c);
        }
    }
    for r in &results {
        ingest(&without, "results", r);
    }
    assert_same(&many, &without);
    assert_eq!(verify(&many)["healthy"], true);

    // Once the round's batches have come, `compact` makes it one piece of each table.
    let done = serde_json::from_str::<serde_json::Value>(&stdout_of(
        pooltrack(&many).args(["compact", "--round", "R1", "--json"]),
    ))
    .expect("compact --json");
    assert_eq!(
        (
            done["collections"]["segments"].as_u64(),
            done["collections"]["pieces"].as_u64(),
            done["results"]["segments"].as_u64(),
            done["results"]["pieces"].as_u64()
        ),
        (Some(8), Some(1), Some(5), Some(1)),
        "{done}"
    );
    assert_eq!(
        runs_in(&many, "collections"),
        ["r000001-000009-8.persons", "r000001-000009-8.tubes"],
        "already one piece: nothing merged again"
    );
    assert_eq!(runs_in(&many, "results"), ["r000010-000014-5.tubes"]);
    assert_same(&many, &without);
    let v = verify(&many);
    assert_eq!(
        (v["healthy"].clone(), v["warnings"].as_array().map(Vec::len)),
        (serde_json::json!(true), Some(0)),
        "{v}"
    );
    let said = stdout_of(pooltrack(&many).args(["compact", "--round", "R1"]));
    assert!(
        said.contains("collections: 8 batch(es) read as 1 piece(s); nothing to merge"),
        "{said}"
    );
    let out = pooltrack(&many)
        .args(["compact", "--round", "R9"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown round is a usage error"
    );

    // Commands read the logs' commits from the snapshot the store keeps of them; one
    // that says otherwise than the commits is damage verify names, and without it the
    // store reads the same.
    let snapshot = many.join("log-snapshot.json");
    let text = fs::read_to_string(&snapshot).expect("a day of batches keeps a log snapshot");
    let forged = text.replacen("\"id\":2,", "\"id\":6,", 1);
    assert!(forged != text, "the snapshot holds batch 2");
    fs::write(&snapshot, forged).expect("forge");
    let v = verify(&many);
    assert_eq!(v["healthy"], false, "{v}");
    assert!(v.to_string().contains("log-snapshot.json"), "{v}");
    fs::remove_file(&snapshot).expect("remove");
    assert_eq!(verify(&many)["healthy"], true);
    assert_same(&many, &without);
}

#[test]
fn a_damaged_run_is_found_and_a_broken_one_is_read_around() {
    let dir = tempfile::tempdir().expect("tmp");
    let (collections, results) = city_in_batches(dir.path(), 4, 1);
    let store = dir.path().join("store");
    for c in &collections {
        ingest(&store, "collections", c);
    }
    ingest(&store, "results", &results[0]);
    let before = outputs(&store);
    let runs = store.join("collections/_pooltrack/R1/runs");
    let persons = runs.join("r000001-000004-4.persons");

    // A record changed inside a whole run: only a merge of the segments tells.
    let mut bytes = fs::read(&persons).expect("read the run");
    // Record 7's row: its residents' records are 12 bytes (key 8, row 4), the others'
    // 20 (key 16, row 4), as many short ones first as the header's last word says.
    let short = usize::try_from(u64::from_le_bytes(
        bytes[24..32].try_into().expect("8 bytes"),
    ))
    .expect("small");
    let row_of_7 = if 7 < short {
        32 + 12 * 7 + 8
    } else {
        32 + 12 * short + 20 * (7 - short) + 16
    };
    bytes[row_of_7] ^= 1;
    fs::write(&persons, &bytes).expect("damage the run");
    let out = pooltrack(&store).arg("verify").output().expect("run");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("r000001-000004-4.persons") && said.contains("record 7 differs"),
        "{said}"
    );

    // A run cut short is not read: the round's segments are, and nothing changes.
    bytes[row_of_7] ^= 1;
    fs::write(&persons, &bytes[..bytes.len() - 3]).expect("cut the run");
    assert_unchanged(&before, &store, "the run cut short");
    healthy_with_warning(&store, "cannot be read whole");

    // The next collections batch of the round removes it and what it left.
    fs::write(runs.join("tmp-r000001-000005-5.tubes"), b"half").expect("leftover");
    let extra = dir.path().join("extra.csv");
    fs::write(
        &extra,
        "tube,person,mode,capacity,collected_at,site\nXTRA-1,extra-1,single,1,2022-04-02 09:00:00,S1\n",
    )
    .expect("write");
    ingest(&store, "collections", &extra);
    // Batches 1-4, whose run was cut, and 6 (5 is the results') merge again.
    assert_eq!(
        runs_in(&store, "collections"),
        ["r000001-000006-5.persons", "r000001-000006-5.tubes"]
    );
    let v = verify(&store);
    assert_eq!(
        (v["healthy"].clone(), v["warnings"].as_array().map(Vec::len)),
        (serde_json::json!(true), Some(0)),
        "{v}"
    );
}

/// Stores made before runs had a folder of their own kept them among the sidecars:
/// they are read there, and the round's next writer moves them into the folder.
#[test]
fn runs_kept_among_the_sidecars_are_read_and_moved_by_the_next_writer() {
    let dir = tempfile::tempdir().expect("tmp");
    let (collections, results) = city_in_batches(dir.path(), 5, 1);
    let store = dir.path().join("store");
    for c in &collections[..4] {
        ingest(&store, "collections", c);
    }
    ingest(&store, "results", &results[0]);
    let before = outputs(&store);
    let sidecars = store.join("collections/_pooltrack/R1");
    let folder = sidecars.join("runs");
    let run = ["r000001-000004-4.persons", "r000001-000004-4.tubes"];
    assert_eq!(runs_in(&store, "collections"), run);

    // The earlier layout: the runs among the sidecars, no runs folder.
    for name in run {
        fs::rename(folder.join(name), sidecars.join(name)).expect("move the run back");
    }
    fs::remove_dir(&folder).expect("remove the runs folder");
    let v = verify(&store);
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
    // Read from there: a damaged run there is found, so it is the one read.
    let persons = sidecars.join(run[0]);
    let mut bytes = fs::read(&persons).expect("read the run");
    bytes[32 + 20 * 3 + 16] ^= 1;
    fs::write(&persons, &bytes).expect("damage the run");
    assert_eq!(verify(&store)["healthy"], false);
    bytes[32 + 20 * 3 + 16] ^= 1;
    fs::write(&persons, &bytes).expect("mend the run");
    assert_unchanged(&before, &store, "the runs among the sidecars");

    // A writer killed while moving them: one file gathered in runs.tmp. The run is
    // not whole where readers look, so they read its segments, and answer the same.
    fs::create_dir(sidecars.join("runs.tmp")).expect("mkdir");
    fs::rename(
        sidecars.join(run[1]),
        sidecars.join("runs.tmp").join(run[1]),
    )
    .expect("move");
    assert_unchanged(&before, &store, "a move interrupted");
    healthy_with_warning(&store, "finishes the move");

    // The next writer finishes the move, and merges as it would have.
    ingest(&store, "collections", &collections[4]);
    assert_eq!(runs_in(&store, "collections"), run);
    assert!(!sidecars.join("runs.tmp").exists());
    let left: Vec<String> = fs::read_dir(&sidecars)
        .expect("sidecars")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('r') && n != "runs")
        .collect();
    assert!(left.is_empty(), "runs left among the sidecars: {left:?}");
    let v = verify(&store);
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
}

/// Format 4 stores a tube index narrow when every barcode of its batch fits in 16
/// bytes, and a person index's residents in 12 bytes before the other ids' 20: a round
/// whose batches mix narrow and wide tube indexes, resident and other ids, merged into
/// runs, reads as the same rows in one batch.
#[test]
fn narrow_and_wide_indexes_merge_and_read_as_one_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let (collections, results) = city_in_batches(dir.path(), 5, 3);
    // Batches 2 and 4 get barcodes of 20 characters or more, batch 3 ids of another
    // form; results follow their tubes.
    let long = |tube: &str| format!("LONGBARCODE-{tube}");
    let mut renamed = std::collections::HashSet::new();
    for (i, part) in collections.iter().enumerate() {
        let text = fs::read_to_string(part).expect("a part");
        let mut out = String::new();
        for (n, line) in text.lines().enumerate() {
            let mut fields: Vec<String> = line.split(',').map(str::to_owned).collect();
            if n > 0 && (i == 1 || i == 3) {
                renamed.insert(fields[0].clone());
                fields[0] = long(&fields[0]);
            }
            if n > 0 && i == 2 {
                fields[1] = format!("P-{}", fields[1]);
            }
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        fs::write(part, out).expect("rewrite a part");
    }
    for part in &results {
        let text = fs::read_to_string(part).expect("a part");
        let out: String = text
            .lines()
            .map(|line| match line.split_once(',') {
                Some((tube, rest)) if renamed.contains(tube) => format!("{},{rest}\n", long(tube)),
                _ => format!("{line}\n"),
            })
            .collect();
        fs::write(part, out).expect("rewrite a part");
    }
    let whole = |parts: &[PathBuf], name: &str| -> PathBuf {
        let mut text = String::new();
        for (i, p) in parts.iter().enumerate() {
            let part = fs::read_to_string(p).expect("a part");
            let skip = usize::from(i > 0);
            for line in part.lines().skip(skip) {
                text.push_str(line);
                text.push('\n');
            }
        }
        let p = dir.path().join(name);
        fs::write(&p, text).expect("write the whole file");
        p
    };
    let (many, one) = (dir.path().join("many"), dir.path().join("one"));
    for c in &collections {
        ingest(&many, "collections", c);
    }
    for r in &results {
        ingest(&many, "results", r);
    }
    ingest(&one, "collections", &whole(&collections, "collections.csv"));
    ingest(&one, "results", &whole(&results, "results.csv"));

    // The record size each tube index states: 32 and 40 bytes narrow, 48 and 56 whole.
    let stated = |p: &Path| {
        let b = fs::read(p).expect("an index");
        u32::from_le_bytes([b[12], b[13], b[14], b[15]])
    };
    let batch = |n: u32| many.join(format!("collections/_pooltrack/R1/b{n:06}.tubes"));
    assert_eq!(
        [1, 2, 3, 4, 5].map(|n| stated(&batch(n))),
        [32, 48, 32, 48, 32]
    );
    // The run of batches 1-4 holds long barcodes: whole.
    let run = many.join("collections/_pooltrack/R1/runs/r000001-000004-4.tubes");
    assert_eq!(stated(&run), 48);
    // Batch 3's person index: no resident, so no short record.
    let persons = fs::read(many.join("collections/_pooltrack/R1/b000003.persons")).expect("index");
    assert_eq!(
        u64::from_le_bytes(persons[24..32].try_into().expect("8 bytes")),
        0
    );
    assert_same(&many, &one);
    let v = verify(&many);
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
}
