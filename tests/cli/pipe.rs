//! A reader that goes away early (`pooltrack … | head`): pooltrack stops quietly with
//! exit 0, as Unix tools do, without the signal handler it no longer installs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{pooltrack, stdout_of};
use crate::rules::{ingest_collections, ingest_results};

const ROUND: &str = "2022-04-02";

/// A store in `dir` holding a generated city of `persons` in one round.
fn city_store(dir: &Path, persons: &str) -> PathBuf {
    let (city, store) = (dir.join("city"), dir.join("store"));
    stdout_of(
        pooltrack(&store)
            .args(["gen", "--persons", persons, "--seed", "5", "--out"])
            .arg(&city),
    );
    ingest_collections(&store, ROUND, &[city.join("collections.csv")]);
    ingest_results(&store, &[city.join("results.csv")]);
    store
}

#[test]
fn a_reader_that_closes_the_pipe_early_ends_the_command_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = city_store(dir.path(), "20000");
    // Each writes far more than a pipe holds (64 KiB), so the reader's close is met
    // mid-write whatever the timing: CSV, JSON, and the health codes' own writer.
    for args in [
        &["export", "status", "--round", ROUND][..],
        &["export", "status", "--round", ROUND, "--format", "json"],
        &["export", "health-codes", "--round", ROUND],
    ] {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("pooltrack"))
            .arg("--store")
            .arg(&store)
            .args(args)
            .env_remove("POOLTRACK_STORE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pooltrack starts");
        let mut reader = child.stdout.take().expect("piped stdout");
        let mut head = [0u8; 16];
        reader.read_exact(&mut head).expect("the first bytes");
        drop(reader);
        let out = child.wait_with_output().expect("pooltrack ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        // Only what the command says on any run (health codes note that there is no
        // population register): nothing about the pipe, no error, no panic.
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("pooltrack: note: no population register"))
            .collect();
        assert!(said.is_empty(), "{args:?} said: {stderr}");
        assert!(
            head.starts_with(b"person,") || head.starts_with(b"["),
            "{args:?}: {}",
            String::from_utf8_lossy(&head)
        );
    }
}

/// `--out` a named pipe (or a device, as `/dev/null`): the rows go into it in order and
/// it stays what it was; an output file is otherwise written beside and renamed into
/// place, which over a device would have put a file where the device was.
#[test]
fn an_out_path_that_is_not_a_file_is_written_into_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = city_store(dir.path(), "3000");
    let fifo = dir.path().join("rows.fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    for args in [
        &["export", "status", "--round", ROUND][..],
        &["export", "health-codes", "--round", ROUND],
        &["worklist", "recall", "--round", ROUND],
    ] {
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(&fifo).expect("read the pipe"))
        };
        let out = pooltrack(&store)
            .args(args)
            .arg("--out")
            .arg(&fifo)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Checked before the reader is joined: had the pipe been replaced, the reader
        // would wait on it for ever.
        let kind = std::fs::symlink_metadata(&fifo)
            .expect("still there")
            .file_type();
        assert!(kind.is_fifo(), "{args:?}: the pipe was replaced");
        let got = reader.join().expect("the reader");
        assert_eq!(
            got,
            stdout_of(pooltrack(&store).args(args)).into_bytes(),
            "{args:?}"
        );
        assert!(!dir.path().join("rows.pooltrack-tmp").exists());
    }
}
