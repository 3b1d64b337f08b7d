//! Crash and write failure (issue 6): an ingest killed with SIGKILL at 30 moments of its
//! life, and a commit that fails part-way (file-size limit, read-only folder). After
//! each, the store opens, holds exactly the batches committed before (or the killed
//! batch whole), the manifest is untouched by a failed commit, and re-running the same
//! ingest completes with the right counts and cleans up what the dead writer left.
//!
//! The helpers at the top are shared with the other fault tests (damage, concurrency,
//! hostile input, model check, security).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{json_of, pooltrack};
use crate::rules::{ingest_collections, run, stderr_text};

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// The `pooltrack` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pooltrack"))
}

/// Copies a folder tree (files and folders, with their permissions).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    fs::set_permissions(to, fs::metadata(from).expect("meta").permissions()).expect("perm");
    for e in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap_or_else(|err| panic!("{}: {err}", dest.display()));
        }
    }
}

/// Every file under a folder, recursively (empty when the folder does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The store's history as JSON, in the form of a format-2 `MANIFEST.json`
/// (`format`, `settings`, `batches`, `retractions`): read from `MANIFEST.json` in an
/// old store, else straight from the tables' Delta logs, here and not through
/// pooltrack's reader: every commit's `commitInfo.pooltrack` record, merged by id.
pub fn manifest_json(store: &Path) -> Value {
    if let Ok(text) = fs::read(store.join("MANIFEST.json")) {
        return serde_json::from_slice(&text).expect("the manifest is JSON");
    }
    let (mut batches, mut retractions, mut settings) = (Vec::new(), Vec::new(), Value::Null);
    for (path, bytes) in commits(store) {
        let text = String::from_utf8(bytes).expect("a commit is text");
        for line in text.lines() {
            let action: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let record = &action["commitInfo"]["pooltrack"];
            if !record["batch"].is_null() {
                batches.push(record["batch"].clone());
            }
            if !record["retraction"].is_null() {
                retractions.push(record["retraction"].clone());
            }
            if !record["settings"].is_null() {
                settings = record["settings"].clone();
            }
        }
    }
    batches.sort_by_key(|b| b["id"].as_u64());
    retractions.sort_by_key(|r| r["id"].as_u64());
    serde_json::json!({
        "format": 3,
        "settings": settings,
        "batches": batches,
        "retractions": retractions,
    })
}

/// Every commit of the store's tables (and an old store's `MANIFEST.json`), path
/// (relative to the store) and bytes, in order: what must be unchanged when a write
/// failed or was killed.
pub fn commits(store: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for table in [
        "collections",
        "results",
        "population",
        "custody",
        "MANIFEST.json",
    ] {
        let log = if table == "MANIFEST.json" {
            store.to_path_buf()
        } else {
            store.join(table).join("_delta_log")
        };
        let Ok(entries) = fs::read_dir(&log) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                name.is_some_and(|n| {
                    if table == "MANIFEST.json" {
                        n == table
                    } else {
                        n.len() == 25 && &n[20..] == ".json"
                    }
                })
            })
            .collect();
        files.sort();
        for f in files {
            let bytes = fs::read(&f).expect("read a commit");
            let rel = f.strip_prefix(store).expect("in the store").to_path_buf();
            out.push((rel, bytes));
        }
    }
    out
}

/// Temporary files a writer left in the tables' logs (commits it did not make).
pub fn temporary_commits(store: &Path) -> Vec<PathBuf> {
    ["collections", "results", "population", "custody"]
        .iter()
        .flat_map(|t| {
            fs::read_dir(store.join(t).join("_delta_log"))
                .into_iter()
                .flatten()
        })
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect()
}

/// Whether a store is there (of any format): its collections table has a commit, or
/// an old store's `MANIFEST.json` is there.
pub fn store_exists(store: &Path) -> bool {
    store.join("MANIFEST.json").exists()
        || commits(store)
            .iter()
            .any(|(p, _)| p.starts_with("collections"))
}

/// Every file the manifest names, relative to the store root.
pub fn named_files(store: &Path) -> BTreeSet<String> {
    let m = manifest_json(store);
    let mut out = BTreeSet::new();
    for b in m["batches"].as_array().expect("batches") {
        let population = b["population"].as_object().into_iter();
        let custody = b["custody"].as_object().into_iter();
        for s in b["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .filter_map(Value::as_object)
            .chain(population)
            .chain(custody)
        {
            for v in s.values() {
                if let Some(p) = v["path"].as_str() {
                    out.insert(p.to_owned());
                }
            }
        }
    }
    out
}

/// Files in the tables' folders (relative to the store root; logs aside) that no
/// committed batch names.
pub fn stray_files(store: &Path) -> Vec<String> {
    let named = named_files(store);
    ["collections", "results", "population", "custody", "rounds"]
        .iter()
        .flat_map(|t| files_under(&store.join(t)))
        .map(|p| {
            p.strip_prefix(store)
                .expect("inside the store")
                .to_string_lossy()
                .into_owned()
        })
        .filter(|p| !p.contains("/_delta_log/") && !named.contains(p))
        .collect()
}

/// Whether the tests run as root (as in CI), where file modes do not stop writes.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().expect("temp file");
    probe.as_file().metadata().expect("meta").uid() == 0
}

/// Writes a collections CSV of `persons` rows in pools of `pool`, tubes and persons
/// named with `prefix` so files with different prefixes never share a tube or person.
pub fn write_pools(path: &Path, prefix: &str, persons: usize, pool: usize) {
    let mut text = String::with_capacity(persons * 64 + 64);
    text.push_str("tube,person,mode,capacity,collected_at,site\n");
    for i in 0..persons {
        let s = i % 36_000;
        writeln!(
            text,
            "{prefix}{:07},{prefix}-{i:08},pool,{pool},2022-04-02 {:02}:{:02}:{:02},S-{prefix}",
            i / pool,
            7 + s / 3600,
            (s / 60) % 60,
            s % 60
        )
        .expect("write to string");
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// `status --round ROUND --json`: exit code and the persons count (when exit 0).
/// Asserts the command did not panic and did not call the store damaged.
pub fn persons_in(store: &Path, round: &str) -> (i32, Option<u64>) {
    let out = run(pooltrack(store).args(["status", "--round", round, "--json"]));
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 2,
        "status after a crash must work or say the round is unknown, got exit {code}: {}",
        stderr_text(&out)
    );
    if code != 0 {
        return (code, None);
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("status --json");
    (code, v["persons"].as_u64())
}

// ---------------------------------------------------------------------------------------
// Crash during ingest
// ---------------------------------------------------------------------------------------

/// Persons in the batch that is killed: one uninterrupted ingest of it takes about
/// 0.7 s in a debug build on 2 cores (more while other tests run), and each of the 30
/// kills is followed by a full re-run, so this bounds the test's time.
const BIG: u64 = 60_000;
/// Persons in the batch committed before the loop.
const FIRST: u64 = 40;
const KILLS: usize = 30;

#[test]
fn an_ingest_killed_at_30_moments_leaves_the_batch_whole_or_absent() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let city = dir.path().join("city");
    let generated = run(pooltrack(&dir.path().join("unused"))
        .args(["gen", "--persons", &BIG.to_string(), "--seed", "6", "--out"])
        .arg(&city));
    assert!(generated.status.success(), "{}", stderr_text(&generated));
    let big = city.join("collections.csv");

    // The store before the loop: one small committed batch, disjoint from the big one.
    let base = dir.path().join("base");
    let first = dir.path().join("first.csv");
    write_pools(&first, "FIRST", usize::try_from(FIRST).expect("small"), 10);
    ingest_collections(&base, "R1", std::slice::from_ref(&first));
    let base_commits = commits(&base);

    // Uninterrupted runs, to know how long the command lives (the shorter of two: the
    // first may pay for a cold cache).
    let mut life = Duration::MAX;
    for k in 0..2 {
        let probe = dir.path().join(format!("probe{k}"));
        copy_dir(&base, &probe);
        let t = Instant::now();
        let full = run(pooltrack(&probe)
            .args(["ingest", "collections", "--round", "R1", "--json"])
            .arg(&big));
        life = life.min(t.elapsed());
        assert!(full.status.success(), "{}", stderr_text(&full));
        assert_eq!(persons_in(&probe, "R1").1, Some(FIRST + BIG));
        fs::remove_dir_all(&probe).expect("cleanup");
    }

    // Kill moments: a few at once, the rest spread over the life, a few near and
    // after the end (where the batch may already be committed).
    let mut moments: Vec<Duration> = vec![Duration::ZERO, Duration::from_millis(2)];
    for i in 0..KILLS - 3 {
        moments.push(life.mul_f64(0.02 + 1.03 * i as f64 / (KILLS - 4) as f64));
    }
    // Well after the end, even on a loaded machine: the batch is there whole.
    moments.push(life.mul_f64(3.0));
    assert_eq!(moments.len(), KILLS);

    let delta = crate::delta::have_delta_reader("reading the tables after each kill with delta-rs");
    let (mut absent, mut whole, mut with_leftovers) = (0, 0, 0);
    let mut log = String::new();
    for (i, at) in moments.iter().enumerate() {
        let store = dir.path().join(format!("kill{i:02}"));
        copy_dir(&base, &store);
        let mut child = Command::new(bin())
            .arg("--store")
            .arg(&store)
            .args(["ingest", "collections", "--round", "R1"])
            .arg(&big)
            .env_remove("POOLTRACK_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pooltrack starts");
        std::thread::sleep(*at);
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");

        // The store opens and holds the batches before, or the killed batch whole.
        let leftovers = stray_files(&store);
        let (_, persons) = persons_in(&store, "R1");
        let committed = match persons {
            Some(n) if n == FIRST => {
                assert!(
                    commits(&store) == base_commits,
                    "kill {i} at {at:?}: the batch is absent, so the tables' logs must be as before"
                );
                absent += 1;
                false
            }
            Some(n) if n == FIRST + BIG => {
                whole += 1;
                true
            }
            other => panic!(
                "kill {i} at {at:?}: the store holds {other:?} persons, expected {FIRST} or {}",
                FIRST + BIG
            ),
        };
        with_leftovers += usize::from(!leftovers.is_empty());
        // Another engine sees the same: the batch whole or not at all.
        if delta {
            let seen = crate::delta::delta_reader(&store);
            let expect = if committed { FIRST + BIG } else { FIRST };
            assert_eq!(
                seen["collections"].rows, expect,
                "kill {i} at {at:?}: {seen:?}"
            );
        }
        let verify = run(pooltrack(&store).args(["verify", "--json"]));
        assert_eq!(
            verify.status.code(),
            Some(0),
            "kill {i} at {at:?}: verify after a crash: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            stderr_text(&verify)
        );

        // Re-running the same ingest completes with the right counts...
        let again = json_of(
            pooltrack(&store)
                .args(["ingest", "collections", "--round", "R1", "--json"])
                .arg(&big),
        );
        if committed {
            assert_eq!(again["batch"], Value::Null, "kill {i}: {again}");
            assert_eq!(
                again["files"][0]["already_in_batch"], 2,
                "kill {i}: {again}"
            );
        } else {
            assert_eq!(again["batch"], 2, "kill {i}: {again}");
            assert_eq!(again["committed"], BIG, "kill {i}: {again}");
        }
        assert_eq!(persons_in(&store, "R1").1, Some(FIRST + BIG), "kill {i}");
        // ...and leaves nothing the manifest does not name.
        assert_eq!(
            stray_files(&store),
            Vec::<String>::new(),
            "kill {i}: leftovers"
        );
        assert_eq!(temporary_commits(&store), Vec::<PathBuf>::new(), "kill {i}");
        // Re-running again is a no-op.
        let third = json_of(
            pooltrack(&store)
                .args(["ingest", "collections", "--round", "R1", "--json"])
                .arg(&big),
        );
        assert_eq!(third["batch"], Value::Null, "kill {i}: {third}");
        assert_eq!(
            manifest_json(&store)["batches"].as_array().map(Vec::len),
            Some(2)
        );
        writeln!(
            log,
            "kill {i:2} at {:>5} ms ({status}): {}, {} leftover file(s)",
            at.as_millis(),
            if committed { "whole" } else { "absent" },
            leftovers.len()
        )
        .expect("log");
        fs::remove_dir_all(&store).expect("cleanup");
    }
    eprintln!(
        "{KILLS} kills of a {} ms ingest of {BIG} rows: {absent} left the batch absent ({with_leftovers} with leftover files, cleaned by the next writer), {whole} whole; {:.1} s\n{log}",
        life.as_millis(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        absent >= 2,
        "the kills at 0 ms leave the batch absent\n{log}"
    );
    assert!(
        whole >= 1,
        "the kill after the end finds the batch whole\n{log}"
    );
}

// ---------------------------------------------------------------------------------------
// Write failure
// ---------------------------------------------------------------------------------------

/// Runs `pooltrack ARGS` with writes limited to `blocks` × 512 bytes per file (SIGXFSZ
/// ignored, so a write past the limit fails with EFBIG instead of killing the process).
fn with_file_size_limit(blocks: u64, store: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\""
        ))
        .arg(bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("POOLTRACK_STORE")
        .output()
        .expect("sh runs");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What must not change when a commit fails: the tables' commits and the counts.
struct Before {
    commits: Vec<(PathBuf, Vec<u8>)>,
    status: Value,
}

fn snapshot(store: &Path) -> Before {
    Before {
        commits: commits(store),
        status: json_of(pooltrack(store).args(["status", "--round", "R1", "--json"])),
    }
}

fn assert_unchanged(store: &Path, before: &Before, what: &str) {
    assert!(
        commits(store) == before.commits,
        "{what}: the tables' logs changed"
    );
    let now = json_of(pooltrack(store).args(["status", "--round", "R1", "--json"]));
    assert_eq!(now, before.status, "{what}: the counts changed");
}

/// Asserts a failed command: exit 1 and a message that names a file of the store.
fn assert_failed_naming_a_store_file(out: &std::process::Output, store: &Path, cause: &str) {
    let err = stderr_text(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(cause), "the error should say {cause:?}: {err}");
    let named = err
        .lines()
        .any(|l| l.contains(&*store.to_string_lossy()) && !l.ends_with(&*store.to_string_lossy()));
    assert!(
        named,
        "the error should name the file it could not write: {err}"
    );
}

#[test]
fn a_commit_that_hits_the_file_size_limit_leaves_the_store_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let first = dir.path().join("first.csv");
    write_pools(&first, "FIRST", 40, 10);
    ingest_collections(&store, "R1", &[first]);
    let big = dir.path().join("big.csv");
    write_pools(&big, "BIG", 30_000, 10);
    let before = snapshot(&store);
    let args = ["ingest", "collections", "--round", "R1", "--json"];
    let big_s = big.to_string_lossy().into_owned();
    let mut failed_files = BTreeSet::new();
    // Limits from 4 KiB to 512 KiB: the write fails in a different file each time.
    for blocks in [8, 64, 256, 1024] {
        let out = with_file_size_limit(blocks, &store, &[&args[..], &[&big_s]].concat());
        assert_failed_naming_a_store_file(&out, &store, "File too large");
        let err = stderr_text(&out);
        if let Some(f) = err.split_whitespace().find(|w| w.contains("/collections/")) {
            failed_files.insert(f.trim_end_matches(':').to_owned());
        }
        assert_unchanged(&store, &before, &format!("limit {blocks} blocks"));
    }
    assert!(
        failed_files.len() >= 2,
        "the limits should make different files fail: {failed_files:?}"
    );
    // Without the limit the same batch commits, and the dead writer's files are gone.
    let r = ingest_collections(&store, "R1", std::slice::from_ref(&big));
    assert_eq!(r["committed"], 30_000, "{r}");
    assert_eq!(stray_files(&store), Vec::<String>::new());
    assert_eq!(persons_in(&store, "R1").1, Some(30_040));
}

#[test]
fn a_commit_write_that_fails_leaves_the_tables_as_before() {
    // A batch of many small files makes a commit (its record lists every source)
    // larger than its data files, so a file-size limit lets the segments be written
    // and fails the commit itself.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let first = dir.path().join("first.csv");
    write_pools(&first, "FIRST", 40, 10);
    ingest_collections(&store, "R1", &[first]);
    let before = snapshot(&store);
    let inputs = dir
        .path()
        .join("inputs-with-a-rather-long-folder-name-to-grow-the-commit");
    fs::create_dir_all(&inputs).expect("mkdir");
    let mut args: Vec<String> = ["ingest", "collections", "--round", "R1"]
        .map(str::to_owned)
        .to_vec();
    for i in 0..150 {
        let f = inputs.join(format!("collections-from-station-{i:04}.csv"));
        write_pools(&f, &format!("M{i:04}X"), 2, 10);
        args.push(f.to_string_lossy().into_owned());
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    // 24 KiB: every segment file of 300 rows fits, the ~40 KiB commit does not.
    let out = with_file_size_limit(48, &store, &arg_refs);
    assert_failed_naming_a_store_file(&out, &store, "File too large");
    assert!(
        stderr_text(&out).contains("_delta_log"),
        "{}",
        stderr_text(&out)
    );
    assert_unchanged(&store, &before, "commit write failed");
    // The next writer commits it and removes what the failed one left.
    let r = json_of(pooltrack(&store).args(&arg_refs).arg("--json"));
    assert_eq!(r["committed"], 300, "{r}");
    let largest = commits(&store).into_iter().map(|(_, b)| b.len()).max();
    assert!(largest > Some(24 * 1024), "{largest:?}");
    assert_eq!(stray_files(&store), Vec::<String>::new());
    assert_eq!(temporary_commits(&store), Vec::<PathBuf>::new());
}

/// How to run pooltrack so that a folder without write permission stops it: as is for
/// a normal user; as root (CI), without the capabilities that bypass file modes.
fn unprivileged_prefix() -> Option<Vec<String>> {
    if !running_as_root() {
        return Some(Vec::new());
    }
    let prefix: Vec<String> = [
        "setpriv",
        "--bounding-set=-dac_override,-dac_read_search,-fowner",
        "--inh-caps=-dac_override,-dac_read_search,-fowner",
    ]
    .map(str::to_owned)
    .to_vec();
    // Check that it works here: a read-only folder must stop a write under it.
    let probe = tempfile::tempdir().ok()?;
    let ro = probe.path().join("ro");
    fs::create_dir(&ro).ok()?;
    set_mode(&ro, 0o500);
    let ok = Command::new(&prefix[0])
        .args(&prefix[1..])
        .arg("sh")
        .arg("-c")
        .arg("echo x > \"$0\"/probe 2>/dev/null")
        .arg(&ro)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| !s.success());
    set_mode(&ro, 0o700);
    ok.then_some(prefix)
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

#[test]
fn a_read_only_store_folder_fails_the_commit_and_leaves_the_store_as_before() {
    let Some(prefix) = unprivileged_prefix() else {
        eprintln!(
            "SKIPPED a_read_only_store_folder_fails_the_commit: running as root and setpriv \
             cannot drop CAP_DAC_OVERRIDE here, so a read-only folder would not stop a write"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let first = dir.path().join("first.csv");
    write_pools(&first, "FIRST", 40, 10);
    ingest_collections(&store, "R1", &[first]);
    let big = dir.path().join("big.csv");
    write_pools(&big, "BIG", 5_000, 10);
    let before = snapshot(&store);
    let run_limited = || {
        let mut cmd = match prefix.split_first() {
            None => Command::new(bin()),
            Some((head, rest)) => {
                let mut c = Command::new(head);
                c.args(rest).arg(bin());
                c
            }
        };
        let out = cmd
            .arg("--store")
            .arg(&store)
            .args(["ingest", "collections", "--round", "R1"])
            .arg(&big)
            .env_remove("POOLTRACK_STORE")
            .output()
            .expect("runs");
        assert!(
            !stderr_text(&out).contains("panicked"),
            "{}",
            stderr_text(&out)
        );
        out
    };
    // The round's folder read-only: the first segment file cannot be created.
    let round_dir = store.join("collections/R1");
    set_mode(&round_dir, 0o500);
    let out = run_limited();
    set_mode(&round_dir, 0o700);
    assert_failed_naming_a_store_file(&out, &store, "Permission denied");
    assert!(
        stderr_text(&out).contains("collections/R1/b000002"),
        "{}",
        stderr_text(&out)
    );
    assert_unchanged(&store, &before, "read-only round folder");

    // The table's log read-only: the segments are written, the commit cannot be.
    let log = store.join("collections/_delta_log");
    set_mode(&log, 0o500);
    let out = run_limited();
    set_mode(&log, 0o700);
    assert_failed_naming_a_store_file(&out, &store, "Permission denied");
    assert!(
        stderr_text(&out).contains("_delta_log"),
        "{}",
        stderr_text(&out)
    );
    assert_unchanged(&store, &before, "read-only log");

    let r = ingest_collections(&store, "R1", std::slice::from_ref(&big));
    assert_eq!(r["committed"], 5_000, "{r}");
    assert_eq!(stray_files(&store), Vec::<String>::new());
}
