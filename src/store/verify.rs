//! `pooltrack verify`: checks every byte the manifest names, without trusting any of it.
//!
//! Every command checks on open the files the manifest names (see [`super::checked`]);
//! `verify` goes further, the way a backup is restored to be trusted:
//!
//! - `MANIFEST.json` parses, has a known format, a readable time zone and Ct cut-off,
//!   batch ids that increase, and no file named twice or outside the store;
//! - every named file exists, is a regular file, has its recorded size and its recorded
//!   xxh3-64 hash (so a file altered in place, same size, is found);
//! - every Parquet file opens, holds the segment's row count and has the columns
//!   pooltrack writes;
//! - every sidecar index has a valid header of the right kind, the length its header
//!   promises, its records in key order, and the row count of its segment;
//! - files in the store that no manifest names (what a writer killed before its commit
//!   leaves, removed by the next writer) and missing reject reports are listed as
//!   warnings: they are not damage, the committed data is whole.
//!
//! Unlike the check every command makes ([`super::checked`]), `verify` trusts no stat
//! cache: it hashes every byte, so it also finds damage that left a file's size and
//! modification time alone (bit rot, a restore that kept the times).
//!
//! It never changes the store and takes no lock, so it may run beside a writer; a batch
//! committed while it runs is simply not seen (it reads the manifest once).
//!
//! One job: the walk over every committed byte. Its checks (manifest, segments,
//! indexes, stray files) share one report and one pass over the files, so they stay
//! together.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use rayon::prelude::*;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use super::MANIFEST;
use super::index::{self, IndexFile, Kind};
use super::manifest::{self, BatchKind, FileRef, Manifest};
use crate::model::check_round;
use crate::{Error, Result};

/// One problem found, with the file it concerns (relative to the store root).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// The file, relative to the store root (`MANIFEST.json` for the manifest itself).
    pub path: String,
    /// What is wrong, for an operator.
    pub problem: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// The store folder.
    pub store: PathBuf,
    /// Whether no damage was found (warnings do not count).
    pub healthy: bool,
    /// Committed batches the manifest lists.
    pub batches: u64,
    /// Segments (one per batch and round).
    pub segments: u64,
    /// Files the manifest names.
    pub files: u64,
    /// Bytes read and hashed.
    pub bytes_checked: u64,
    /// Rows the Parquet files hold.
    pub rows: u64,
    /// Damage: the store must not be trusted until it is restored.
    pub damage: Vec<Finding>,
    /// Not damage, but worth knowing (leftovers of an interrupted ingest...).
    pub warnings: Vec<Finding>,
}

impl VerifyReport {
    fn damage(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.damage.push(Finding {
            path: path.into(),
            problem: problem.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.warnings.push(Finding {
            path: path.into(),
            problem: problem.into(),
        });
    }

    /// The error a command returns for a damaged store (exit code 3), naming the first
    /// damaged parts.
    pub fn to_error(&self) -> Option<Error> {
        if self.damage.is_empty() {
            return None;
        }
        let mut parts: Vec<String> = self
            .damage
            .iter()
            .take(3)
            .map(|f| format!("{}: {}", f.path, f.problem))
            .collect();
        if self.damage.len() > 3 {
            parts.push(format!("and {} more", self.damage.len() - 3));
        }
        Some(Error::damaged(
            &self.store,
            format!(
                "{} damaged part(s): {}",
                self.damage.len(),
                parts.join("; ")
            ),
        ))
    }
}

/// What one named file must be.
#[derive(Debug, Clone, Copy)]
enum Role {
    Parquet(BatchKind),
    Sidecar(Kind),
}

/// A file the manifest names, with what to check it against.
struct Named<'a> {
    file: &'a FileRef,
    batch: u32,
    /// Rows of the segment the file belongs to.
    rows: u64,
    role: Role,
}

/// Checks the store at `root`. Damage is reported in the result, not as an error; the
/// error cases are only "there is no store here" ([`Error::Usage`]).
pub fn verify(root: &Path) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        store: root.to_path_buf(),
        ..VerifyReport::default()
    };
    let Some(manifest) = read_history(root, &mut report)? else {
        report.healthy = false;
        return Ok(report);
    };
    check_manifest(&manifest, &mut report);
    let keys = index::PersonKeys::of_format(manifest.format);
    let named = named_files(&manifest, &mut report);
    let results: Vec<(u64, u64, Vec<Finding>)> = named
        .par_iter()
        .map(|n| check_file(root, n, keys))
        .collect();
    for (bytes, rows, findings) in results {
        report.bytes_checked += bytes;
        report.rows += rows;
        report.damage.extend(findings);
    }
    for b in &manifest.batches {
        if let Some(rejects) = &b.rejects
            && !root.join(rejects).is_file()
        {
            report.warn(
                rejects.as_str(),
                format!(
                    "the reject report of batch {} is missing (the committed rows are not affected)",
                    b.id
                ),
            );
        }
    }
    let runs = super::runs::check(root, &manifest);
    report.bytes_checked += runs.bytes;
    for (path, problem) in runs.damaged {
        report.damage(path, problem);
    }
    for (path, why) in &runs.unused {
        report.warn(path.as_str(), *why);
    }
    let mut known: HashSet<&str> = named.iter().map(|n| n.file.path.as_str()).collect();
    known.extend(runs.used.iter().map(String::as_str));
    known.extend(runs.unused.iter().map(|(p, _)| p.as_str()));
    find_orphans(root, &known, &mut report);
    let reports: HashSet<&str> = manifest
        .batches
        .iter()
        .filter_map(|b| b.rejects.as_deref())
        .collect();
    find_stale_reports(root, &reports, &mut report);
    report.damage.sort();
    report.warnings.sort();
    report.healthy = report.damage.is_empty();
    Ok(report)
}

/// The store's history: its tables' logs (format 3) or its `MANIFEST.json`. `None`
/// when it cannot be read, with the damage reported; an error only when there is no
/// store at all.
fn read_history(root: &Path, report: &mut VerifyReport) -> Result<Option<Manifest>> {
    let manifest_path = root.join(MANIFEST);
    let bytes = match fs::read(&manifest_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if super::tables::exists(root) {
                return Ok(read_tables(root, report));
            }
            if !super::has_data(root) {
                return Err(Error::Usage(format!(
                    "no store at {}: nothing to verify (give --store or POOLTRACK_STORE)",
                    root.display()
                )));
            }
            report.damage(
                format!("collections/{}", super::delta::LOG),
                format!("is missing (and there is no {MANIFEST}), but the store holds data: nothing says which batches are committed"),
            );
            return Ok(None);
        }
        Err(e) => {
            report.damage(MANIFEST, format!("cannot be read: {e}"));
            return Ok(None);
        }
    };
    report.bytes_checked += bytes.len() as u64;
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(m) => {
            if m.format > manifest::MANIFEST_FORMAT || m.format < manifest::OLDEST_FORMAT {
                report.damage(
                    MANIFEST,
                    format!(
                        "has format {}, this pooltrack reads formats {} to {} in a {MANIFEST}",
                        m.format,
                        manifest::OLDEST_FORMAT,
                        manifest::MANIFEST_FORMAT
                    ),
                );
            }
            Ok(Some(m))
        }
        Err(e) => {
            let what = if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() {
                "is JSON but not a pooltrack manifest"
            } else {
                "is not valid JSON (cut short or overwritten?)"
            };
            report.damage(MANIFEST, format!("{what}: {e}"));
            Ok(None)
        }
    }
}

/// The history of a format-3 store, its log files counted as checked bytes; damage in
/// a log is reported against the commit file.
fn read_tables(root: &Path, report: &mut VerifyReport) -> Option<Manifest> {
    match super::tables::load_every_commit(root) {
        Ok(Some(t)) => {
            if let Some(why) = &t.snapshot_problem {
                report.damage(
                    super::LOG_SNAPSHOT,
                    format!(
                        "{why}: commands read the store's history from it; delete it (it is derived from the logs, and the next command writes it again)"
                    ),
                );
            }
            for kind in super::tables::all_tables() {
                let log = super::tables::table_dir(root, kind).join(super::delta::LOG);
                for f in fs::read_dir(&log).into_iter().flatten().flatten() {
                    report.bytes_checked += f.metadata().map_or(0, |m| m.len());
                }
            }
            for d in &t.due {
                let home = t
                    .manifest
                    .batch(d.mirror.batch)
                    .map_or("its own", |b| b.kind.as_str());
                let state = match d.mirror.retraction {
                    None => format!(
                        "does not list batch {}'s file yet, though the batch is committed in the {home} table",
                        d.mirror.batch
                    ),
                    Some(r) => format!(
                        "still lists batch {}'s file, though retraction {r} took the batch back in the {home} table",
                        d.mirror.batch
                    ),
                };
                report.warn(
                    format!("{}/{}", d.table.as_str(), super::delta::LOG),
                    format!(
                        "{state}: the commit that follows here is not made (a writer stopped between the two, or is between them now); pooltrack reads the batch as committed, other engines read this table without the change until the next writer makes it"
                    ),
                );
            }
            Some(t.manifest)
        }
        Ok(None) => None,
        Err(Error::StoreDamaged { path, reason }) => {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            report.damage(if rel.is_empty() { ".".to_owned() } else { rel }, reason);
            None
        }
        Err(e) => {
            report.damage(format!("collections/{}", super::delta::LOG), e.to_string());
            None
        }
    }
}

fn check_manifest(m: &Manifest, report: &mut VerifyReport) {
    if crate::time::zone_offset(&m.settings.time_zone).is_none() {
        report.damage(
            MANIFEST,
            format!("has an unreadable time zone {:?}", m.settings.time_zone),
        );
    }
    let cutoff = m.settings.ct_cutoff;
    if !(cutoff > 0.0 && cutoff <= 100.0) {
        report.damage(
            MANIFEST,
            format!("has a Ct cut-off of {cutoff}, outside 0-100"),
        );
    }
    let mut last = 0u32;
    for b in &m.batches {
        if b.id <= last {
            report.damage(
                MANIFEST,
                format!(
                    "lists batch {} after batch {last}: batch ids must increase",
                    b.id
                ),
            );
        }
        last = last.max(b.id);
        let rows = b.rows_in_files();
        // A custody batch is its custody segment; a collections batch may carry one
        // too, its files' box column, in its own round's folder of `custody/`.
        let custody_problem = match (b.kind, &b.custody) {
            (BatchKind::Custody, Some(_)) if b.segments.is_empty() => None,
            (BatchKind::Custody, _) => Some("round segments or no custody segment"),
            (BatchKind::Collections | BatchKind::Results | BatchKind::Population, None) => None,
            (BatchKind::Collections, Some(c)) => {
                let folder = b.round.as_deref().map(|r| format!("custody/{r}/"));
                (!folder.is_some_and(|f| c.parquet.path.starts_with(&f)))
                    .then_some("a custody segment outside its round's folder of custody/")
            }
            (BatchKind::Results | BatchKind::Population, Some(_)) => Some("a custody segment"),
        };
        if let Some(what) = custody_problem {
            report.damage(
                MANIFEST,
                format!(
                    "batch {} is a {} batch but names {what}",
                    b.id,
                    b.kind.as_str(),
                ),
            );
        }
        let population = b.kind == BatchKind::Population;
        if population != b.population.is_some() || (population && !b.segments.is_empty()) {
            report.damage(
                MANIFEST,
                format!(
                    "batch {} is a {} batch but names {}",
                    b.id,
                    b.kind.as_str(),
                    if population {
                        "round segments or no population segment"
                    } else {
                        "a population segment"
                    }
                ),
            );
        }
        if rows != b.rows_committed {
            report.damage(
                MANIFEST,
                format!(
                    "batch {} says it committed {} row(s) but its segments hold {rows}",
                    b.id, b.rows_committed
                ),
            );
        }
        for s in &b.segments {
            if let Err(why) = check_round(&s.round) {
                report.damage(
                    MANIFEST,
                    format!("batch {} names round {:?}: {why}", b.id, s.round),
                );
            }
        }
    }
    report.batches = m.batches.len() as u64;
}

/// Every file the manifest names, checked for being a safe, unique path inside the store.
fn named_files<'a>(m: &'a Manifest, report: &mut VerifyReport) -> Vec<Named<'a>> {
    let mut out = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut push = |report: &mut VerifyReport, file: &'a FileRef, batch: u32, rows, role| {
        report.files += 1;
        if !is_inside(&file.path) {
            report.damage(
                file.path.as_str(),
                format!(
                    "batch {batch} names a path outside the store's rounds/ and population/ folders; pooltrack never writes one"
                ),
            );
            return;
        }
        if !seen.insert(file.path.as_str()) {
            report.damage(
                file.path.as_str(),
                format!("is named twice in the manifest (again by batch {batch})"),
            );
            return;
        }
        out.push(Named {
            file,
            batch,
            rows,
            role,
        });
    };
    for b in &m.batches {
        if let Some(c) = &b.custody {
            report.segments += 1;
            let role = Role::Parquet(BatchKind::Custody);
            push(report, &c.parquet, b.id, c.rows, role);
        }
        if let Some(p) = &b.population {
            report.segments += 1;
            let role = Role::Parquet(BatchKind::Population);
            push(report, &p.parquet, b.id, p.rows, role);
            push(
                report,
                &p.persons,
                b.id,
                p.rows,
                Role::Sidecar(Kind::Persons),
            );
        }
        for seg in &b.segments {
            report.segments += 1;
            let kinds: Vec<(&FileRef, Role)> = match b.kind {
                BatchKind::Collections => {
                    let mut v = vec![
                        (&seg.parquet, Role::Parquet(b.kind)),
                        (&seg.tubes, Role::Sidecar(Kind::CollectionTubes)),
                    ];
                    match seg.files().nth(2) {
                        Some(p) => v.push((p, Role::Sidecar(Kind::Persons))),
                        None => report.damage(
                            seg.parquet.path.as_str(),
                            format!(
                                "the manifest names no person index for this collections segment of batch {}",
                                b.id
                            ),
                        ),
                    }
                    v
                }
                BatchKind::Results | BatchKind::Population | BatchKind::Custody => vec![
                    (&seg.parquet, Role::Parquet(b.kind)),
                    (&seg.tubes, Role::Sidecar(Kind::ResultTubes)),
                ],
            };
            for (file, role) in kinds {
                // Plate controls are rows of the Parquet file but not tubes of the index.
                let rows = match role {
                    Role::Sidecar(Kind::ResultTubes) => seg.rows.saturating_sub(seg.controls),
                    _ => seg.rows,
                };
                push(report, file, b.id, rows, role);
            }
        }
    }
    out
}

/// Whether a manifest path stays inside `rounds/` or `population/` of the store:
/// relative, no `..`.
fn is_inside(path: &str) -> bool {
    super::checked::inside_segments(path)
}

/// Checks one file: returns bytes hashed, Parquet rows, and the damage found.
fn check_file(root: &Path, n: &Named<'_>, keys: index::PersonKeys) -> (u64, u64, Vec<Finding>) {
    let rel = n.file.path.as_str();
    let path = root.join(rel);
    let mut found = Vec::new();
    let mut bad = |problem: String| {
        found.push(Finding {
            path: rel.to_owned(),
            problem,
        });
    };
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bad(format!(
                "is missing (named by batch {}, {} bytes)",
                n.batch, n.file.bytes
            ));
            return (0, 0, found);
        }
        Err(e) => {
            bad(format!("cannot be read: {e}"));
            return (0, 0, found);
        }
    };
    if !meta.file_type().is_file() {
        bad(format!(
            "is not a regular file (named by batch {}); pooltrack writes only regular files",
            n.batch
        ));
        return (0, 0, found);
    }
    if meta.len() != n.file.bytes {
        let how = if meta.len() < n.file.bytes {
            "truncated"
        } else {
            "has extra bytes"
        };
        bad(format!(
            "has {} bytes, the manifest says {} ({how})",
            meta.len(),
            n.file.bytes
        ));
        return (0, 0, found);
    }
    let hashed = match hash_file(&path) {
        Ok((bytes, hash)) => {
            if hash != n.file.xxh3 {
                bad(format!(
                    "its content was altered: xxh3 {hash}, the manifest says {} (same size, different bytes)",
                    n.file.xxh3
                ));
                return (bytes, 0, found);
            }
            bytes
        }
        Err(e) => {
            bad(format!("cannot be read: {e}"));
            return (0, 0, found);
        }
    };
    let rows = n.rows;
    match n.role {
        Role::Parquet(kind) => match check_parquet(&path, kind, rows) {
            Ok(()) => return (hashed, rows, found),
            Err(why) => bad(why),
        },
        Role::Sidecar(kind) => {
            if let Err(why) = check_sidecar(&path, kind, rows, keys) {
                bad(why);
            }
        }
    }
    (hashed, 0, found)
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut h = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, format!("{:016x}", h.digest())))
}

fn check_parquet(path: &Path, kind: BatchKind, rows: u64) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("cannot be opened: {e}"))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| format!("is not a readable Parquet file: {e}"))?;
    let meta = reader.metadata().file_metadata();
    let n = u64::try_from(meta.num_rows()).unwrap_or(u64::MAX);
    if n != rows {
        return Err(format!("holds {n} row(s), the manifest says {rows}"));
    }
    let columns: BTreeSet<&str> = meta
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name())
        .collect();
    let wanted: &[&str] = match kind {
        BatchKind::Collections => &["round", "tube", "person", "mode", "collected_at"],
        BatchKind::Results => &["round", "tube", "result", "reported_at"],
        BatchKind::Population => &["person", "district", "community", "group"],
        BatchKind::Custody => &["round", "kind", "box", "tube", "at"],
    };
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| !columns.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "is not a {} segment: it lacks column(s) {}",
            kind.as_str(),
            missing.join(", ")
        ));
    }
    Ok(())
}

fn check_sidecar(
    path: &Path,
    kind: Kind,
    rows: u64,
    keys: index::PersonKeys,
) -> Result<(), String> {
    let reason = |e| match e {
        Error::StoreDamaged { reason, .. } => reason,
        other => other.to_string(),
    };
    let f = IndexFile::open(path, kind).map_err(reason)?;
    if kind == Kind::Persons {
        f.check_person_keys(keys).map_err(reason)?;
    }
    let count = f.len() as u64;
    match kind {
        Kind::CollectionTubes => {
            let total: u64 = (0..f.len())
                .map(|i| u64::from(index::u32_at(&f.record(i), 36)))
                .sum();
            if total != rows {
                return Err(format!(
                    "index file counts {total} row(s) in its tubes, the segment holds {rows}"
                ));
            }
        }
        Kind::Persons | Kind::ResultTubes => {
            if count != rows {
                return Err(format!(
                    "index file has {count} record(s), the segment holds {rows} row(s)"
                ));
            }
        }
    }
    let records = f.records();
    if let Some(i) = (1..f.len()).find(|&i| *records.key(i - 1) > *records.key(i)) {
        return Err(format!(
            "index file records are out of order at record {i}: lookups would miss rows"
        ));
    }
    Ok(())
}

/// Files under the store that the manifest does not name: leftovers of an interrupted
/// ingest (removed by the next writer) or files someone put there.
fn find_orphans(root: &Path, known: &HashSet<&str>, report: &mut VerifyReport) {
    let Ok(top) = fs::read_dir(root) else {
        return;
    };
    for entry in top.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.as_str() {
            // logs/ holds append-only run logs (recall runs), which the manifest does not name.
            MANIFEST | "lock" | "rejects" | "logs" | super::checked::VERIFIED
            | super::CODES_STATE | super::LOG_SNAPSHOT => {}
            // pooltrack's own temporary file names, always lower case.
            #[allow(clippy::case_sensitive_file_extension_comparisons)]
            n if n.starts_with(super::CODES_STATE) && n.ends_with(".tmp") => report.warn(
                name,
                "health codes' saved fold an interrupted export did not finish writing; harmless, the next writer removes it",
            ),
            #[allow(clippy::case_sensitive_file_extension_comparisons)]
            n if n.starts_with(super::LOG_SNAPSHOT) && n.ends_with(".tmp") => report.warn(
                name,
                "a log snapshot an interrupted command did not finish writing; harmless, the next writer removes it",
            ),
            #[allow(clippy::case_sensitive_file_extension_comparisons)]
            n if n.starts_with(super::checked::VERIFIED) && n.ends_with(".tmp") => report.warn(
                name,
                "a stat cache an interrupted command did not finish writing; harmless",
            ),
            "rounds" | "population" | "collections" | "results" | "custody" => {
                walk_segments(root, &entry.path(), known, report);
            }
            // The manifest of a store before `pooltrack migrate`, kept as history.
            n if n.starts_with(MANIFEST) && n.contains(".format-") => {}
            "MANIFEST.tmp" => report.warn(
                name,
                "a manifest an interrupted writer did not commit; the next writer removes it",
            ),
            _ => report.warn(name, "is not a file pooltrack writes"),
        }
    }
}

/// Reject reports named like a batch's (`rejects/bNNNNNN-KIND.csv`) that no committed
/// batch names: written by an ingest killed before its commit. They are misleading (a
/// later batch may get that number and commit no rejects), so they are listed.
/// `strict-*` and `uncommitted-*` reports belong to no batch by design.
fn find_stale_reports(root: &Path, named: &HashSet<&str>, report: &mut VerifyReport) {
    let Ok(entries) = fs::read_dir(root.join("rejects")) else {
        return;
    };
    let mut stale: Vec<String> = entries
        .flatten()
        .map(|e| format!("rejects/{}", e.file_name().to_string_lossy()))
        .filter(|rel| {
            let name = &rel["rejects/".len()..];
            name.starts_with('b')
                && name[1..].chars().take_while(char::is_ascii_digit).count() == 6
                && !named.contains(rel.as_str())
        })
        .collect();
    stale.sort();
    for rel in stale {
        report.warn(
            rel,
            "a reject report no committed batch names: left by an ingest that did not commit; its rows were not refused by any batch",
        );
    }
}

/// Temporary files in a table's log: commits a writer was killed before making.
fn log_leftovers(root: &Path, log: &Path, report: &mut VerifyReport) {
    for e in fs::read_dir(log).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if super::delta::is_temporary(&name) {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            report.warn(
                rel,
                "a commit an interrupted writer did not make; the next writer removes it",
            );
        }
    }
}

fn walk_segments(root: &Path, dir: &Path, known: &HashSet<&str>, report: &mut VerifyReport) {
    let mut stack = vec![dir.to_path_buf()];
    let mut orphans = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && e.file_name() == super::delta::LOG {
                log_leftovers(root, &p, report);
                continue;
            }
            if is_dir {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            if !known.contains(rel.as_str()) {
                orphans.push(rel);
            }
        }
    }
    for rel in orphans {
        let leftover = Path::new(&rel)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('b'));
        let gathering = Path::new(&rel)
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "runs.tmp");
        let why = if leftover {
            "not named by the manifest: left by an ingest that did not commit; the next ingest removes it"
        } else if gathering {
            "a merged index a writer was moving into the round's runs folder when it was interrupted; the round's next writer finishes the move"
        } else {
            "not named by the manifest and not a file pooltrack writes"
        };
        report.warn(rel, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_must_stay_in_rounds() {
        assert!(is_inside("rounds/R1/collections/b000001.parquet"));
        assert!(!is_inside("../outside.parquet"));
        assert!(!is_inside("rounds/../../etc/passwd"));
        assert!(!is_inside("/etc/passwd"));
        assert!(!is_inside("MANIFEST.json"));
        assert!(is_inside("population/b000003.persons"));
        assert!(!is_inside("population/../../x"));
    }

    #[test]
    fn no_store_is_a_usage_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = verify(&dir.path().join("nothing")).expect_err("no store");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_manifest_that_is_not_json_is_damage() {
        let dir = tempfile::tempdir().expect("tmp");
        fs::write(dir.path().join(MANIFEST), b"{\"format\": 1, \"bat").expect("write");
        let r = verify(dir.path()).expect("report");
        assert!(!r.healthy);
        assert_eq!(r.damage[0].path, MANIFEST);
        assert!(r.damage[0].problem.contains("not valid JSON"), "{r:?}");
        assert_eq!(r.to_error().expect("error").exit_code(), 3);
    }
}
