//! The tables' logs as last read, kept at the store's root (`log-snapshot.json`) so
//! that a command opening a store of a lab's day (thousands of commits, one a batch)
//! reads one file and the commits after it instead of every commit.
//!
//! It is derived data, like the stat cache: what [`super::read_commit`] made of each
//! commit, per table in version order. The first line names the tables, each with its
//! number of commits and its first and last commit's size and xxh3-64; then one line a
//! commit (its pooltrack record, and a mirror commit's files), the tables' in that
//! order, so that the lines are parsed on every core. A command uses a table's part only
//! while it holds: the log has at least as many commits, and its first and last commits
//! are still those bytes, so a store made again in the same folder, or a log cut short,
//! is read from its commits. Delta commits are never rewritten (pooltrack commits a
//! version once, by a hard link that fails if it exists), so the commits between those
//! two are what they were; `pooltrack verify` reads every commit and names a snapshot
//! that says otherwise.
//!
//! Any command that read [`EVERY`] or more commits past the snapshot writes a new one
//! (under a temporary name, then renamed; a command that cannot write to the store goes
//! on without it): on a lab's day of batches, about one command in sixteen.

use std::fs;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{MirrorSeen, Record, table_dir};
use crate::store::LOG_SNAPSHOT;
use crate::store::delta::{self, LOG};
use crate::store::manifest::BatchKind;

/// Commits read past the snapshot that make a command write a new one.
pub(super) const EVERY: usize = 16;

/// The layout of the file; another is not read.
const LAYOUT: u32 = 1;

/// One commit as [`super::read_commit`] read it.
pub(super) type Read = (Record, Option<MirrorSeen>);

/// A table's commits as read, in version order.
pub(super) type TableReads = (BatchKind, Vec<Read>);

/// A commit file as it was when the snapshot was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    bytes: u64,
    xxh3: u64,
}

impl Mark {
    fn of(dir: &Path, version: u64) -> Option<Mark> {
        let bytes = fs::read(dir.join(LOG).join(delta::commit_name(version))).ok()?;
        Some(Mark {
            bytes: bytes.len() as u64,
            xxh3: xxhash_rust::xxh3::xxh3_64(&bytes),
        })
    }
}

/// A commit's entry: its record and, for a mirror commit, the files it adds or removes.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    record: Record,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mirror_files: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
struct EntryRef<'a> {
    record: &'a Record,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_files: Option<&'a [String]>,
}

/// A table's part of the file's first line; its `commits` entries follow, one a line.
#[derive(Debug, Serialize, Deserialize)]
struct Part {
    table: BatchKind,
    first: Mark,
    last: Mark,
    commits: usize,
}

/// The file's first line.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    layout: u32,
    tables: Vec<Part>,
}

/// A snapshot as read from the store.
#[derive(Debug)]
pub(super) struct Snapshot {
    tables: Vec<(Part, Vec<Entry>)>,
}

impl Snapshot {
    /// The store's snapshot, if it has one this pooltrack can read. Its entries are
    /// parsed on every core: a lab's day is thousands of them.
    pub(super) fn read(root: &Path) -> Option<Snapshot> {
        let bytes = fs::read(root.join(LOG_SNAPSHOT)).ok()?;
        let (header, lines) = parse(&bytes)?;
        let mut entries = lines
            .par_iter()
            .map(|l| serde_json::from_slice::<Entry>(l).ok())
            .collect::<Option<Vec<Entry>>>()?
            .into_iter();
        let tables = header
            .tables
            .into_iter()
            .map(|t| {
                let e: Vec<Entry> = entries.by_ref().take(t.commits).collect();
                (t, e)
            })
            .collect();
        Some(Snapshot { tables })
    }

    /// The first commits of `kind`'s table as the snapshot holds them, when it holds for
    /// a log of `commits` commits (see the module docs); otherwise nothing.
    pub(super) fn take(&mut self, root: &Path, kind: BatchKind, commits: usize) -> Vec<Read> {
        let Some(at) = self.tables.iter().position(|(t, _)| t.table == kind) else {
            return Vec::new();
        };
        let (t, entries) = self.tables.swap_remove(at);
        let dir = table_dir(root, kind);
        if t.commits == 0 || t.commits > commits || !holds(&dir, &t) {
            return Vec::new();
        }
        let log = dir.join(LOG);
        entries
            .into_iter()
            .zip(0u64..)
            .map(|(e, version)| {
                let seen = match (e.record.mirror, e.mirror_files) {
                    (Some(mirror), Some(files)) => Some(MirrorSeen {
                        table: kind,
                        path: log.join(delta::commit_name(version)),
                        version,
                        mirror,
                        files,
                    }),
                    _ => None,
                };
                (e.record, seen)
            })
            .collect()
    }
}

fn holds(dir: &Path, t: &Part) -> bool {
    let last = t.commits as u64 - 1;
    Mark::of(dir, 0) == Some(t.first) && Mark::of(dir, last) == Some(t.last)
}

/// Writes a snapshot of `tables` (each table's commits in version order), best effort.
pub(super) fn save(root: &Path, tables: &[TableReads]) {
    let mut header = Header {
        layout: LAYOUT,
        tables: Vec::with_capacity(tables.len()),
    };
    for (kind, reads) in tables {
        let dir = table_dir(root, *kind);
        let Some(last) = (reads.len() as u64).checked_sub(1) else {
            continue;
        };
        let (Some(first), Some(last)) = (Mark::of(&dir, 0), Mark::of(&dir, last)) else {
            return;
        };
        header.tables.push(Part {
            table: *kind,
            first,
            last,
            commits: reads.len(),
        });
    }
    let Ok(mut bytes) = serde_json::to_vec(&header) else {
        return;
    };
    for (kind, reads) in tables {
        if !header.tables.iter().any(|t| t.table == *kind) {
            continue;
        }
        for read in reads {
            bytes.push(b'\n');
            if write_entry(&mut bytes, read).is_err() {
                return;
            }
        }
    }
    bytes.push(b'\n');
    crate::store::fsutil::save_derived(root, LOG_SNAPSHOT, &bytes);
}

fn write_entry(out: &mut Vec<u8>, (record, seen): &Read) -> serde_json::Result<()> {
    let entry = EntryRef {
        record,
        mirror_files: seen.as_ref().map(|s| s.files.as_slice()),
    };
    serde_json::to_writer(out, &entry)
}

/// The header and entry lines of a snapshot file, if it is whole and of this layout.
fn parse(bytes: &[u8]) -> Option<(Header, Vec<&[u8]>)> {
    let mut lines = bytes.split(|&b| b == b'\n');
    let header: Header = serde_json::from_slice(lines.next()?).ok()?;
    if header.layout != LAYOUT {
        return None;
    }
    let lines: Vec<&[u8]> = lines.filter(|l| !l.is_empty()).collect();
    let commits = header
        .tables
        .iter()
        .try_fold(0usize, |n, t| n.checked_add(t.commits))?;
    (lines.len() == commits).then_some((header, lines))
}

/// Where the store's snapshot, if it holds for the logs `tables` read from their
/// commit files, says otherwise than they do: what readers would take from it
/// instead. A snapshot that readers do not use (of another layout, cut short, or not
/// holding) is not a problem.
pub(super) fn disagreement(root: &Path, tables: &[TableReads]) -> Option<String> {
    let bytes = fs::read(root.join(LOG_SNAPSHOT)).ok()?;
    let (header, lines) = parse(&bytes)?;
    let mut lines = lines.into_iter();
    let mut want = Vec::new();
    for t in &header.tables {
        let entries: Vec<&[u8]> = lines.by_ref().take(t.commits).collect();
        let Some((_, reads)) = tables.iter().find(|(k, _)| *k == t.table) else {
            continue;
        };
        if t.commits == 0 || t.commits > reads.len() || !holds(&table_dir(root, t.table), t) {
            continue;
        }
        for (version, (line, read)) in entries.iter().zip(reads).enumerate() {
            want.clear();
            if write_entry(&mut want, read).is_err() || *line != want.as_slice() {
                return Some(format!(
                    "says otherwise than commit {version} of the {} table ({})",
                    t.table.as_str(),
                    delta::commit_name(version as u64)
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_whole_or_of_this_layout_is_not_read() {
        let header = |layout: u32, commits: &[usize]| {
            let parts: Vec<String> = commits
                .iter()
                .map(|c| {
                    format!(
                        r#"{{"table":"collections","first":{{"bytes":1,"xxh3":2}},"last":{{"bytes":1,"xxh3":2}},"commits":{c}}}"#
                    )
                })
                .collect();
            format!(r#"{{"layout":{layout},"tables":[{}]}}"#, parts.join(","))
        };
        let whole = format!("{}\n{{}}\n{{}}\n", header(LAYOUT, &[2]));
        assert_eq!(parse(whole.as_bytes()).map(|(_, l)| l.len()), Some(2));
        for bad in [
            format!("{}\n{{}}\n", header(LAYOUT, &[2])),
            format!("{}\n{{}}\n{{}}\n", header(LAYOUT + 1, &[2])),
            // Counts that add up past usize::MAX wrap to the lines' count in release.
            format!("{}\n{{}}\n", header(LAYOUT, &[usize::MAX, 2])),
            String::from("not json\n"),
            String::new(),
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
