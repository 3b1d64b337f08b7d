//! The round's files: each chunk's rows appended in chunk order, and the summary.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::GenSummary;
use crate::{Error, Result};

pub(super) const COLLECTIONS_HEADER: &[u8] = b"tube,person,mode,capacity,collected_at,site\n";
pub(super) const RESULTS_HEADER: &[u8] = b"tube,result,ct_orf1ab,ct_n,reported_at,lab,plate,well\n";
pub(super) const TRUTH_HEADER: &[u8] = b"person\n";
pub(super) const POPULATION_HEADER: &[u8] = b"person,district,community\n";
pub(super) const CT_TRUTH_HEADER: &[u8] =
    b"person,viral_ct,tube,tube_size,infected_in_tube,tube_ct,shift,detected\n";

/// One chunk's output, reused from chunk to chunk.
#[derive(Default)]
pub(super) struct ChunkBuf {
    pub(super) collections: Vec<u8>,
    pub(super) results: Vec<u8>,
    pub(super) retest_collections: Vec<u8>,
    pub(super) retest_results: Vec<u8>,
    pub(super) truth: Vec<u8>,
    pub(super) population: Vec<u8>,
    pub(super) ct_truth: Vec<u8>,
    pub(super) counts: GenSummary,
}

impl ChunkBuf {
    pub(super) fn clear(&mut self) {
        self.collections.clear();
        self.results.clear();
        self.retest_collections.clear();
        self.retest_results.clear();
        self.truth.clear();
        self.population.clear();
        self.ct_truth.clear();
        self.counts = GenSummary::default();
    }
}

/// The output files, written chunk by chunk in order.
pub(super) struct Files {
    collections: Sink,
    results: Sink,
    retest_collections: Sink,
    retest_results: Sink,
    truth: Sink,
    /// `population.csv`, when the config asks for the register.
    population: Option<Sink>,
    /// `ct_truth.csv`, when the config asks for the Ct model.
    ct_truth: Option<Sink>,
}

struct Sink {
    path: PathBuf,
    file: File,
}

impl Sink {
    fn create(dir: &Path, name: &str, header: &[u8]) -> Result<Sink> {
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut sink = Sink { path, file };
        sink.write(header)?;
        Ok(sink)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))
    }
}

impl Files {
    pub(super) fn create(dir: &Path, population: bool, ct_model: bool) -> Result<Files> {
        Ok(Files {
            collections: Sink::create(dir, "collections.csv", COLLECTIONS_HEADER)?,
            results: Sink::create(dir, "results.csv", RESULTS_HEADER)?,
            retest_collections: Sink::create(dir, "retest_collections.csv", COLLECTIONS_HEADER)?,
            retest_results: Sink::create(dir, "retest_results.csv", RESULTS_HEADER)?,
            truth: Sink::create(dir, "truth.csv", TRUTH_HEADER)?,
            population: population
                .then(|| Sink::create(dir, "population.csv", POPULATION_HEADER))
                .transpose()?,
            ct_truth: ct_model
                .then(|| Sink::create(dir, "ct_truth.csv", CT_TRUTH_HEADER))
                .transpose()?,
        })
    }

    pub(super) fn write(&mut self, b: &ChunkBuf) -> Result<()> {
        self.collections.write(&b.collections)?;
        self.results.write(&b.results)?;
        self.retest_collections.write(&b.retest_collections)?;
        self.retest_results.write(&b.retest_results)?;
        self.truth.write(&b.truth)?;
        if let Some(sink) = &mut self.ct_truth {
            sink.write(&b.ct_truth)?;
        }
        match &mut self.population {
            Some(sink) => sink.write(&b.population),
            None => Ok(()),
        }
    }
}

/// Writes `summary.json` (pretty JSON and a final newline) into `out`.
pub(super) fn write_summary(out: &Path, summary: &GenSummary) -> Result<()> {
    let path = out.join("summary.json");
    let mut json = serde_json::to_vec_pretty(summary)
        .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
    json.push(b'\n');
    std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
}
