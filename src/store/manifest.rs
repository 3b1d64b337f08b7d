//! The manifest: the one file that says what the store holds.
//!
//! `MANIFEST.json` lists every committed batch with its source files' hashes (for
//! idempotent re-ingest) and the files it added, each with its size and xxh3-64 hash.
//! A batch is committed when the manifest naming it has been renamed into place; files
//! that no manifest names are leftovers of a crash and are removed by the next writer.
//!
//! The manifest is append-only history: a batch ingested by mistake is not deleted but
//! retracted, by a [`Retraction`] appended with who, when and why. A retracted batch's
//! files stay in the store (and in `verify`), but no reader counts its rows and its
//! sources no longer count as ingested.

use serde::{Deserialize, Serialize};

use super::MANIFEST;
use crate::time::Offset;

/// The store format this pooltrack writes.
///
/// - 1: `MANIFEST.json` lists the batches; segments state every row's mode and capacity.
/// - 2: adds retractions; collection segments may leave a row's mode or capacity
///   unstated (null), and tube-index records carry the tube's settled metadata.
/// - 3: the store is three Delta Lake tables whose logs are the commit point; the
///   batch, retraction and settings records this module defines are kept in the
///   commits (see [`super::tables`]), and there is no `MANIFEST.json`. The segments
///   are those of format 2, in new folders.
/// - 4: person indexes keyed exactly ([`super::index::PersonKeys::Exact`]): a resident
///   id's record takes 12 bytes where format 3's hashed record took 20. Nothing else
///   changes.
///
/// Formats 1 and 2 are read as they are ([`Manifest::parse`]; 1 is a subset of 2) and
/// converted to 3 by `pooltrack migrate`; a store of format 3 is read and written as
/// it is (its person indexes stay hashed, so one person keeps one key in every file).
/// A store of a later format is refused, so an older pooltrack never misreads it.
pub const FORMAT: u32 = 4;

/// The newest format kept in a `MANIFEST.json`.
pub const MANIFEST_FORMAT: u32 = 2;

/// The oldest store format this pooltrack reads.
pub const OLDEST_FORMAT: u32 = 1;

/// Store-wide settings, fixed in the manifest so every batch is read alike.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// The UTC offset in which times without an offset are read (`+08:00`).
    pub time_zone: String,
    /// Ct cut-off: a target amplifying below it is a hit.
    #[serde(deserialize_with = "f32_as_cast")]
    pub ct_cutoff: f32,
}

/// Reads a JSON number into `f32` as a cast from `f64` does: a value past `f32` (1e39)
/// reads as infinity, which the range check of the settings then names, where exact
/// float parsing would stop at "number out of range" without naming the setting.
fn f32_as_cast<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f32, D::Error> {
    #[allow(clippy::cast_possible_truncation)]
    f64::deserialize(d).map(|v| v as f32)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            time_zone: "+08:00".into(),
            ct_cutoff: 40.0,
        }
    }
}

/// What a batch ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// Collection rows.
    Collections,
    /// Result rows.
    Results,
    /// Population register rows: who must be tested. They belong to no round.
    Population,
    /// Chain-of-custody rows of one round: boxes sealed at sites and boxes or tubes
    /// scanned at a lab's receipt (`src/custody.rs`).
    Custody,
}

impl BatchKind {
    /// The word used in paths and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchKind::Collections => "collections",
            BatchKind::Results => "results",
            BatchKind::Population => "population",
            BatchKind::Custody => "custody",
        }
    }
}

/// One input file of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// The path as given on the command line.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// xxh3-128 of its content, hex: the key for "already ingested".
    pub xxh3_128: String,
}

/// A file the store holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRef {
    /// Path relative to the store root.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-64 of the content, hex.
    pub xxh3: String,
}

/// A batch's rows of one round: a Parquet file and its sidecar indexes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    /// The round.
    pub round: String,
    /// Rows in the Parquet file.
    pub rows: u64,
    /// The Parquet file.
    pub parquet: FileRef,
    /// Tube index (collections and results).
    pub tubes: FileRef,
    /// Person index (collections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persons: Option<FileRef>,
    /// Plate control rows (results only): the Parquet file's last `controls` rows,
    /// which the tube index leaves out (a control is not a collected tube).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub controls: u64,
    /// Plates whose controls in this segment failed (results only): their samples'
    /// results in the round do not count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_plates: Vec<FailedPlate>,
    /// The earliest `collected_at` of a collections segment's rows (ms since the
    /// epoch), as its Parquet footer's statistics also give it: ordering the rounds by
    /// their first swab then reads the log, not a footer a batch (a lab's day of
    /// batches is 2,500 footers). Absent from results segments, and from collections
    /// segments written before it was recorded (their footers are read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_collected_at: Option<i64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A plate whose controls failed: every sample result on it (same lab and plate id, in
/// the same round) is void and its tubes must be re-run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedPlate {
    /// The lab (empty when the file named none).
    pub lab: String,
    /// The plate id.
    pub plate: String,
    /// Which control failed and how, for the rerun worklist and the report.
    pub reason: String,
}

impl Segment {
    /// Every file of the segment.
    pub fn files(&self) -> impl Iterator<Item = &FileRef> {
        [&self.parquet, &self.tubes]
            .into_iter()
            .chain(self.persons.as_ref())
    }
}

/// A population batch's rows: a Parquet file in input order and its person index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PopulationSegment {
    /// Rows in the Parquet file.
    pub rows: u64,
    /// The Parquet file (`population/bNNNNNN.parquet`).
    pub parquet: FileRef,
    /// Person index: person hash and row, sorted.
    pub persons: FileRef,
}

impl PopulationSegment {
    /// Every file of the segment.
    pub fn files(&self) -> impl Iterator<Item = &FileRef> {
        [&self.parquet, &self.persons].into_iter()
    }
}

/// One committed ingest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// Sequence number, from 1.
    pub id: u32,
    /// What it ingested.
    pub kind: BatchKind,
    /// The round named on the command line (collections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<String>,
    /// When it was committed, RFC 3339.
    pub committed_at: String,
    /// Its input files.
    pub sources: Vec<Source>,
    /// Data rows read from the sources.
    pub rows_read: u64,
    /// Rows committed.
    pub rows_committed: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Rows committed or dropped with a warning.
    pub warnings: u64,
    /// The reject report, relative to the store root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
    /// What it added, one segment per round (none for population batches).
    pub segments: Vec<Segment>,
    /// What a population batch added. Absent in stores written before the population
    /// register existed, hence the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<PopulationSegment>,
    /// What a custody batch added. Absent in every other batch, hence the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody: Option<CustodySegment>,
}

/// A custody batch's rows of its round: one Parquet file in input order, no sidecar
/// (a round has about one custody row per tube, read whole).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustodySegment {
    /// Rows in the Parquet file.
    pub rows: u64,
    /// The Parquet file (`custody/<round>/bNNNNNN.parquet`).
    pub parquet: FileRef,
}

impl Batch {
    /// Every file the batch added (segments of rounds, of the population, of custody).
    pub fn files(&self) -> impl Iterator<Item = &FileRef> {
        self.segments
            .iter()
            .flat_map(Segment::files)
            .chain(self.population.iter().flat_map(PopulationSegment::files))
            .chain(self.custody.iter().map(|c| &c.parquet))
    }

    /// Rows of the batch's Parquet files: what `rows_committed` must say.
    pub fn rows_in_files(&self) -> u64 {
        self.segments.iter().map(|s| s.rows).sum::<u64>()
            + self.population.as_ref().map_or(0, |p| p.rows)
            + self.custody.as_ref().map_or(0, |c| c.rows)
    }
}

/// A batch taken back: its rows stop counting everywhere, its files stay.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retraction {
    /// Sequence number, from the same sequence as batch ids (so the log is in order).
    pub id: u32,
    /// The batch retracted.
    pub batch: u32,
    /// Why, as the clerk gave it.
    pub reason: String,
    /// Who (the `--by` option, else the login name).
    pub by: String,
    /// When it was committed, RFC 3339.
    pub at: String,
}

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub format: u32,
    /// Settings.
    pub settings: Settings,
    /// Committed batches, in order, retracted ones included.
    pub batches: Vec<Batch>,
    /// Retractions, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retractions: Vec<Retraction>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            format: FORMAT,
            settings: Settings::default(),
            batches: Vec::new(),
            retractions: Vec::new(),
        }
    }
}

impl Manifest {
    /// Reads a manifest from the bytes of `MANIFEST.json` and checks what every reader
    /// relies on: a format this pooltrack reads, retractions that name batches it holds,
    /// a Ct cut-off in 0-100 and a time zone it knows, whose offset it returns too. The
    /// error says how the store is damaged.
    ///
    /// ```
    /// use pooltrack::store::manifest::{MANIFEST_FORMAT, Manifest};
    /// let text = r#"{"format": 2, "settings": {"time_zone": "+08:00", "ct_cutoff": 40.0}, "batches": []}"#;
    /// let (manifest, _zone) = Manifest::parse(text.as_bytes()).expect("a readable manifest");
    /// assert_eq!(manifest.format, MANIFEST_FORMAT);
    /// let newer = text.replace(r#""format": 2"#, r#""format": 99"#);
    /// assert!(Manifest::parse(newer.as_bytes()).unwrap_err().contains("newer pooltrack"));
    /// ```
    pub fn parse(bytes: &[u8]) -> std::result::Result<(Manifest, Offset), String> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("{MANIFEST} cannot be read: {e}"))?;
        if manifest.format > FORMAT {
            return Err(format!(
                "{MANIFEST} has store format {}, written by a newer pooltrack; this one reads formats {OLDEST_FORMAT} to {FORMAT}: upgrade pooltrack to read this store",
                manifest.format,
            ));
        }
        if manifest.format > MANIFEST_FORMAT {
            return Err(format!(
                "{MANIFEST} says store format {}, which keeps no {MANIFEST}: the file is not pooltrack's",
                manifest.format,
            ));
        }
        if manifest.format < OLDEST_FORMAT {
            return Err(format!(
                "{MANIFEST} has an unknown store format {}",
                manifest.format
            ));
        }
        if let Some(why) = manifest.retraction_problem() {
            return Err(format!("{MANIFEST}: {why}"));
        }
        // As `pooltrack config` and `verify` have it. Checked here too because a
        // cut-off past f32 (1e39) reads as infinity and is written back as null,
        // which no pooltrack reads: the store's next commit would break it.
        let cutoff = manifest.settings.ct_cutoff;
        if !(cutoff > 0.0 && cutoff <= 100.0) {
            return Err(format!(
                "{MANIFEST} has a Ct cut-off of {cutoff}, outside 0-100"
            ));
        }
        let zone = crate::time::zone_offset(&manifest.settings.time_zone).ok_or_else(|| {
            format!(
                "{MANIFEST} has an unreadable time zone {:?}",
                manifest.settings.time_zone
            )
        })?;
        Ok((manifest, zone))
    }

    /// The id the next batch or retraction gets.
    pub fn next_batch_id(&self) -> u32 {
        let batch = self.batches.last().map_or(0, |b| b.id);
        let retraction = self.retractions.last().map_or(0, |r| r.id);
        batch.max(retraction) + 1
    }

    /// The retraction of batch `id`, if it was retracted.
    pub fn retraction_of(&self, id: u32) -> Option<&Retraction> {
        self.retractions.iter().find(|r| r.batch == id)
    }

    /// The batches whose rows count: committed and not retracted.
    pub fn live_batches(&self) -> impl Iterator<Item = &Batch> {
        self.batches
            .iter()
            .filter(|b| self.retraction_of(b.id).is_none())
    }

    /// Batch `id`, retracted or not.
    pub fn batch(&self, id: u32) -> Option<&Batch> {
        self.batches.iter().find(|b| b.id == id)
    }

    /// What is wrong with the retractions, if anything: each must name a batch the
    /// manifest holds, once, and come after it.
    pub fn retraction_problem(&self) -> Option<String> {
        let mut seen = std::collections::HashSet::new();
        for r in &self.retractions {
            let Some(b) = self.batch(r.batch) else {
                return Some(format!(
                    "retraction {} names batch {}, which the manifest does not hold",
                    r.id, r.batch
                ));
            };
            if !seen.insert(r.batch) {
                return Some(format!("batch {} is retracted twice", r.batch));
            }
            if r.id <= b.id {
                return Some(format!(
                    "retraction {} comes before the batch {} it retracts",
                    r.id, r.batch
                ));
            }
        }
        None
    }

    /// The rounds that have collections, in first-ingest order.
    pub fn rounds(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.segments(None) {
            if !out.contains(&s.1.round.as_str()) {
                out.push(&s.1.round);
            }
        }
        out
    }

    /// Segments with their batch kind, optionally of one round.
    pub fn segments<'a>(
        &'a self,
        round: Option<&'a str>,
    ) -> impl Iterator<Item = (BatchKind, &'a Segment, u32)> + 'a {
        self.live_batches().flat_map(move |b| {
            b.segments
                .iter()
                .filter(move |s| round.is_none_or(|r| s.round == r))
                .map(move |s| (b.kind, s, b.id))
        })
    }

    /// Population segments with their batch id, oldest first: a later registration of
    /// a person replaces an earlier one.
    pub fn population(&self) -> impl Iterator<Item = (&PopulationSegment, u32)> {
        self.live_batches()
            .filter_map(|b| b.population.as_ref().map(|p| (p, b.id)))
    }

    /// Whether a committed batch of `kind` ingested a source of exactly `bytes` bytes
    /// (only such a file can be a repeat of one).
    pub fn has_source_of_size(&self, kind: BatchKind, bytes: u64) -> bool {
        self.live_batches()
            .any(|b| b.kind == kind && b.sources.iter().any(|s| s.bytes == bytes))
    }

    /// The committed, unretracted batch that ingested a source with this content, if
    /// any: a retracted batch's sources may be ingested again.
    pub fn find_source(&self, kind: BatchKind, hash: &str) -> Option<&Batch> {
        self.live_batches()
            .find(|b| b.kind == kind && b.sources.iter().any(|s| s.xxh3_128 == hash))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The fuzz target's seeds are manifests this pooltrack reads: a change of format
    /// that leaves them behind fails here, not silently in the fuzzer.
    #[test]
    fn every_fuzz_seed_is_a_readable_manifest() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/manifest");
        let mut formats = Vec::new();
        let mut retractions = 0;
        for entry in std::fs::read_dir(&seeds).expect("fuzz/seeds/manifest") {
            let path = entry.expect("a seed").path();
            let bytes = std::fs::read(&path).expect("read the seed");
            let (m, _) =
                Manifest::parse(&bytes).unwrap_or_else(|why| panic!("{}: {why}", path.display()));
            assert!(!m.batches.is_empty(), "{}", path.display());
            formats.push(m.format);
            retractions += m.retractions.len();
        }
        assert!(
            formats.contains(&MANIFEST_FORMAT) && formats.contains(&OLDEST_FORMAT),
            "{formats:?}"
        );
        assert!(retractions > 0, "no seed has a retraction");
    }

    /// Found by fuzzing: 1e39 is past f32 and read as infinity, which the next commit
    /// wrote as null; the store then could not be opened.
    #[test]
    fn a_cut_off_outside_0_to_100_is_damage() {
        let text = |cutoff: &str| {
            format!(
                r#"{{"format": 2, "settings": {{"time_zone": "+08:00", "ct_cutoff": {cutoff}}}, "batches": []}}"#
            )
        };
        assert!(Manifest::parse(text("35.5").as_bytes()).is_ok());
        for bad in ["1e39", "0", "-5", "100.5"] {
            let why = Manifest::parse(text(bad).as_bytes()).expect_err(bad);
            assert!(why.contains("Ct cut-off"), "{bad}: {why}");
        }
    }

    #[test]
    fn a_manifest_of_an_unknown_format_is_refused() {
        let text = |format: u32| {
            format!(
                r#"{{"format": {format}, "settings": {{"time_zone": "+08:00", "ct_cutoff": 40.0}}, "batches": []}}"#
            )
        };
        assert!(Manifest::parse(text(MANIFEST_FORMAT).as_bytes()).is_ok());
        let tables = Manifest::parse(text(FORMAT).as_bytes()).expect_err("format 3");
        assert!(tables.contains("keeps no"), "{tables}");
        let newer = Manifest::parse(text(FORMAT + 1).as_bytes()).expect_err("newer");
        assert!(newer.contains("newer pooltrack"), "{newer}");
        let older = Manifest::parse(text(OLDEST_FORMAT - 1).as_bytes()).expect_err("older");
        assert!(older.contains("unknown store format"), "{older}");
    }
}
