//! `pooltrack migrate`: converts a store of format 1 or 2 (`MANIFEST.json`, segments
//! under `rounds/`) into format 3 (three Delta Lake tables, see [`super::tables`]) in
//! place, atomically.
//!
//! Under the writer's lock, with every file of the old store checked first:
//!
//! 1. each segment file gets a second name in the new layout (a hard link: no byte is
//!    copied, the old store stays whole);
//! 2. the three tables are created and every batch and retraction is committed to its
//!    table in id order, with the same records, the files under their new names;
//! 3. the commit point: `MANIFEST.json` is renamed to `MANIFEST.json.format-N` (kept
//!    as history). Until this rename every reader sees the old store, because a
//!    `MANIFEST.json` wins over tables; from it on, the new one;
//! 4. the old names are removed (`rounds/`, the population's old sidecars).
//!
//! Killed before step 3, the old store is as it was, and the next `migrate` removes the
//! half-made tables and starts again; killed after it, the next writer removes the old
//! names. Readers that were already reading the old files when step 4 ran may fail and
//! are run again: run the migration between batch jobs.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::manifest::{Batch, FileRef, MANIFEST_FORMAT};
use super::{MANIFEST, Store, WriterOptions, checked, fsutil, tables};
use crate::store::manifest::BatchKind;
use crate::{Error, Result};

/// The format a migration makes: the Delta tables, with the old store's person indexes
/// as they are (hashed keys), linked rather than rewritten.
pub const HASHED_KEYS_FORMAT: u32 = 3;

/// The old layout's folder of round segments.
pub const OLD_ROUNDS: &str = "rounds";

/// What a migration did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    /// The store.
    pub store: String,
    /// Its format before.
    pub from: u32,
    /// Its format now.
    pub to: u32,
    /// Batches committed to the tables.
    pub batches: usize,
    /// Retractions committed to the tables.
    pub retractions: usize,
    /// Segment files given their new names.
    pub files: usize,
    /// Their bytes (linked, not copied).
    pub bytes: u64,
    /// Where the old manifest was kept, relative to the store.
    pub old_manifest: Option<String>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// The new name of an old segment file, relative to the store root.
fn new_path(kind: BatchKind, old: &str) -> Result<String> {
    let parts: Vec<&str> = old.split('/').collect();
    let moved = match (kind, parts.as_slice()) {
        (BatchKind::Collections | BatchKind::Results, ["rounds", round, table, name])
            if *table == kind.as_str() =>
        {
            if name.ends_with(".parquet") {
                format!("{table}/{round}/{name}")
            } else {
                format!("{table}/{}/{round}/{name}", super::segment::PRIVATE)
            }
        }
        (BatchKind::Population, ["population", name]) => {
            if name.ends_with(".parquet") {
                format!("population/{name}")
            } else {
                format!("population/{}/{name}", super::segment::PRIVATE)
            }
        }
        _ => {
            return Err(Error::damaged(
                old,
                format!(
                    "a {} batch names a file outside its folder; pooltrack never writes one",
                    kind.as_str()
                ),
            ));
        }
    };
    Ok(moved)
}

/// The batch with its files under their new names, and the (old, new) pairs.
fn moved(batch: &Batch) -> Result<(Batch, Vec<(FileRef, String)>)> {
    let mut out = batch.clone();
    let mut pairs = Vec::new();
    let mut rename = |f: &mut FileRef| -> Result<()> {
        let new = new_path(batch.kind, &f.path)?;
        pairs.push((f.clone(), new.clone()));
        f.path = new;
        Ok(())
    };
    for s in &mut out.segments {
        rename(&mut s.parquet)?;
        rename(&mut s.tubes)?;
        if let Some(p) = &mut s.persons {
            rename(p)?;
        }
    }
    if let Some(p) = &mut out.population {
        rename(&mut p.parquet)?;
        rename(&mut p.persons)?;
    }
    Ok((out, pairs))
}

/// Removes what an earlier, killed migration made (the tables and private folders);
/// the old store's own files are left alone.
fn remove_half_made(root: &Path) -> Result<()> {
    let mut dirs = vec![
        root.join("collections"),
        root.join("results"),
        tables::table_dir(root, BatchKind::Population).join(super::delta::LOG),
        tables::table_dir(root, BatchKind::Population).join(super::segment::PRIVATE),
    ];
    dirs.retain(|d| d.exists());
    for d in dirs {
        fs::remove_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    Ok(())
}

/// Converts the store at `root` to format 3 (see the module docs). A store already of
/// format 3 is left as it is (the report says so, `from == to`).
pub fn migrate(root: &Path, wait: Duration) -> Result<MigrateReport> {
    let start = Instant::now();
    let mut store = Store::lock(
        root,
        WriterOptions {
            wait,
            create: false,
        },
    )?;
    let m = store.manifest().clone();
    let mut report = MigrateReport {
        store: root.display().to_string(),
        from: m.format,
        to: HASHED_KEYS_FORMAT,
        batches: 0,
        retractions: 0,
        files: 0,
        bytes: 0,
        old_manifest: None,
        seconds: 0.0,
    };
    if store.versions.is_some() {
        report.to = m.format;
        report.seconds = start.elapsed().as_secs_f64();
        return Ok(report);
    }
    if m.format > MANIFEST_FORMAT {
        return Err(Error::damaged(
            root,
            format!("{MANIFEST} says format {}", m.format),
        ));
    }
    // Every byte the old store names must be its own before it is given new names.
    store.check_files()?;
    remove_half_made(root)?;

    let mut batches = Vec::with_capacity(m.batches.len());
    let mut new_files = Vec::new();
    for b in &m.batches {
        let (nb, pairs) = moved(b)?;
        for (old, new) in pairs {
            if old.path != new {
                let to = root.join(&new);
                if let Some(dir) = to.parent() {
                    fsutil::create_dir_all(dir)?;
                }
                fs::hard_link(root.join(&old.path), &to).map_err(|e| Error::io(&to, e))?;
            }
            report.files += 1;
            report.bytes += old.bytes;
            new_files.push(FileRef { path: new, ..old });
        }
        batches.push(nb);
    }
    let mut dirs: Vec<&Path> = new_files
        .iter()
        .filter_map(|f| Path::new(&f.path).parent())
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs {
        fsutil::sync_dir(&root.join(d))?;
    }

    let mut versions = tables::create(root, &m.settings, HASHED_KEYS_FORMAT)?;
    // Batches and retractions in one sequence of ids, as they were committed.
    let mut at_retraction = m.retractions.iter().peekable();
    for b in &batches {
        while let Some(r) = at_retraction.next_if(|r| r.id < b.id) {
            retract(root, &mut versions, &batches, r)?;
            report.retractions += 1;
        }
        tables::commit_batch(root, &mut versions, b)?;
        report.batches += 1;
    }
    for r in at_retraction {
        retract(root, &mut versions, &batches, r)?;
        report.retractions += 1;
    }

    // The commit point.
    let kept = format!("{MANIFEST}.format-{}", m.format);
    fs::rename(root.join(MANIFEST), root.join(&kept))
        .map_err(|e| Error::io(root.join(MANIFEST), e))?;
    fsutil::sync_dir(root)?;
    report.old_manifest = Some(kept);
    checked::record(root, &new_files);

    let old = root.join(OLD_ROUNDS);
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    for b in &m.batches {
        if let Some(p) = &b.population {
            let f = root.join(&p.persons.path);
            if f.exists() {
                fs::remove_file(&f).map_err(|e| Error::io(&f, e))?;
            }
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

fn retract(
    root: &Path,
    versions: &mut tables::Versions,
    batches: &[Batch],
    r: &super::manifest::Retraction,
) -> Result<()> {
    let b = batches
        .iter()
        .find(|b| b.id == r.batch)
        .ok_or_else(|| Error::damaged(root, format!("retraction {} names no batch", r.id)))?;
    tables::commit_retraction(root, versions, b, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_names_map_into_the_tables() {
        let c = BatchKind::Collections;
        assert_eq!(
            new_path(c, "rounds/R1/collections/b000001.parquet").expect("ok"),
            "collections/R1/b000001.parquet"
        );
        assert_eq!(
            new_path(c, "rounds/R1/collections/b000001.tubes").expect("ok"),
            "collections/_pooltrack/R1/b000001.tubes"
        );
        assert_eq!(
            new_path(BatchKind::Population, "population/b000003.persons").expect("ok"),
            "population/_pooltrack/b000003.persons"
        );
        assert_eq!(
            new_path(BatchKind::Population, "population/b000003.parquet").expect("ok"),
            "population/b000003.parquet"
        );
        assert!(new_path(c, "rounds/R1/results/b000001.parquet").is_err());
        assert!(new_path(c, "../x/collections/b1.parquet").is_err());
    }
}
