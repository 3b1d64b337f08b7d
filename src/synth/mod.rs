//! Synthetic city testing rounds: a deterministic generator of the files a pooled
//! PCR round produces, for `pooltrack gen`, the demo, the tests and the benchmarks.
//!
//! [`generate`] writes one round on 2022-04-02 (local time, +08:00) into a directory.
//! Every file is CSV with a header line and `\n` line ends; every time is
//! `YYYY-MM-DD HH:MM:SS` in local time +08:00 (as [`crate::time::format_local`] with
//! [`crate::time::Offset::CHINA`] prints it).
//!
//! | file | one row per | columns |
//! | --- | --- | --- |
//! | `collections.csv` | person of the pooled stage | `tube,person,mode,capacity,collected_at,site` |
//! | `results.csv` | tube of the pooled stage | `tube,result,ct_orf1ab,ct_n,reported_at,lab,plate,well` |
//! | `retest_collections.csv` | member of a positive pool | as `collections.csv` |
//! | `retest_results.csv` | retest tube | as `results.csv` |
//! | `truth.csv` | infected person | `person` |
//! | `ct_truth.csv` | infected person (only with [`GenConfig::ct_model`]) | `person,viral_ct,tube,tube_size,infected_in_tube,tube_ct,shift,detected` |
//! | `population.csv` | registered person (only with [`GenConfig::population`]) | `person,district,community` |
//! | `summary.json` | the round | the [`GenSummary`], pretty JSON |
//!
//! `pooltrack gen --incidents` ([`incidents::generate`]) rewrites these files afterwards
//! to stage a failed plate, a late lab and a discordant pool, and adds its own register
//! `population.csv` and `incidents.json`; this module's output never changes for it.
//!
//! How the round is made:
//!
//! - **People.** Person `i` (0-based) has the 18-digit id `31` followed by `i + 1`
//!   zero-padded to 16 digits. Each 2,500 consecutive people share a sampling site
//!   `S` + 5 digits. Each person is infected independently with probability
//!   `prevalence` and then carries a viral load, a Ct drawn uniformly in \[16, 34\].
//! - **Collection.** Each person independently gets a single tube (`SG` + 9 digits,
//!   mode `single`, capacity 1) with probability `1 − pool_share`; the others are
//!   grouped, in order, into pool tubes (`PL` + 9 digits, mode `pool`, capacity
//!   `pool_size`; with [`GenConfig::pool_sizes`], site `s` uses the size
//!   `pool_sizes[s % n]`, so a round mixes sizes the way zones of a city do). A pool
//!   never spans two sites, so a site's last pool may be partly filled. Collection runs from 07:00 to about 18:50: a person's slot follows their
//!   place in the site's queue, a single tube is taken in the minute after its slot,
//!   and the members of a pool are taken 30 s apart from the pool's start.
//! - **Testing.** The assay is perfect: a tube is positive iff it holds an infected
//!   person. A positive pool's `ORF1ab` Ct is its lowest member Ct + log2(`pool_size`)
//!   (dilution) ± 0.5; N is `ORF1ab` ± 1.5; a single tube's Ct is its person's ± 0.5.
//!   Cts are written with two decimals and kept below 38 (the usual cut-off is 40):
//!   the few that would reach it (high loads in large pools) are clamped to 37.99;
//!   negative tubes have empty Ct fields. [`GenConfig::ct_model`] replaces this
//!   paragraph with the Ct model below. A site's tubes all go to one lab
//!   (`L1`..`L4`, round robin over sites). Lab `L3` sends Ct values only: its `result`
//!   field is empty, and reading its Cts gives the same answer. Each lab fills
//!   plates `{lab}-P` + 6 digits with 94 samples, wells `A01`, `B01`, … `F12`
//!   column by column (`G12` and `H12` hold the controls). A tube is reported 3 to
//!   10 hours after its last swab.
//! - **Blank optional columns.** With [`GenConfig::blank_optional`] above 0 each row
//!   (both stages) independently leaves its optional fields empty with that
//!   probability: `capacity` and `site` of a collections row; `lab`, `plate`, `well`
//!   of a results row, and its two Cts when the `result` word is written (lab `L3`'s
//!   rows keep their Cts, which are their only result). The draws come from a second
//!   random stream per chunk, so the people, tubes and results are those of the same
//!   config with nothing blank, and every status is the same.
//! - **Ct model.** With [`GenConfig::ct_model`] the assay reads viral load, and
//!   dilution can hide a positive: each infected person's viral-load Ct is drawn from
//!   a normal distribution (mean [`VIRAL_CT_MEAN`] 26, sd [`VIRAL_CT_SD`] 5) clipped
//!   to \[12, 40\]; a tube of `m` swabs whose infected members have Cts `c_i` holds
//!   the mix `c = −log2(Σ 2^−c_i / m)` (one infected member in a k-pool: its Ct +
//!   log2 k) and reads `c` plus normal noise (sd [`CT_NOISE_SD`] 0.5). A reading at or
//!   above the cut-off [`CT_CUTOFF`] (40, the store's default) is **negative**: the
//!   tube's result is written negative with no Ct, and the members of a pool missed
//!   so are not recalled. A reading below it is positive: `ORF1ab` is the reading, N is
//!   it ± 1.5 (uniform) kept below the cut-off, both in hundredths, so the model
//!   gives no inconclusive result. Retests read the person's Ct plus the same noise,
//!   against the same cut-off. `ct_truth.csv` records, for every infected person, the
//!   drawn Ct, their first-stage tube, its size and infected members, the tube's
//!   noise-free Ct, the true shift (tube Ct − person's Ct: log2 k for a pool with one
//!   infected member) and whether the tube read positive. The draws come from the
//!   chunk's stream in place of the uniform model's, so a round with the model has
//!   other times and tubes than one without; without it the files are unchanged.
//! - **Register.** With [`GenConfig::population`], `population.csv` lists every person
//!   in order with the district and community of their site (4 to 8 districts `D01`…
//!   of consecutive sites, each site a community `D01-C01`…), then 0.5 % more people
//!   (ids continuing after the last person) who got no tube, spread over the sites.
//! - **Person ids.** Person `i` (counting from 0 in row order, the register's
//!   untested persons after the round's) has one id for every seed, round and share.
//!   [`PersonIds::Numbered`] writes `31`, `i + 1` in 15 digits and the check
//!   character; [`PersonIds::Resident`] writes a district code, a birth date and a
//!   sequence taken from a one-to-one shuffle of `i` over the 467,520,000 such ids, so
//!   a city's ids are in no order and share long prefixes, as real ones do.
//! - **Retest.** Every member of a positive pool is recalled 1 to 4 hours after the
//!   pool's report and swabbed into a single tube (`RT` + 9 digits) at the same site;
//!   the retest is positive iff the person is infected (Ct = their Ct ± 0.5), the
//!   `result` field is always filled, and it is reported 2 to 6 hours later.
//!
//! The output depends only on the [`GenConfig`]: the same config gives byte-identical
//! files whatever the number of threads. People are cut into chunks of 100,000; each
//! chunk has its own random stream (Xoshiro256++ seeded from the seed and the chunk
//! index) and its own ranges of tube serials and plate numbers, so chunks are made in
//! parallel and written in order. Serials and plate numbers therefore have gaps, and
//! numbers widen past their zero padding (staying unique) only beyond about 187
//! million people (plates), 250 million (sites) or a billion (tubes).

use std::path::Path;
use std::sync::mpsc;

use rayon::prelude::*;

use crate::progress::Progress;
use crate::{Error, Result};

mod chunk;
mod files;
pub mod incidents;
mod register;
pub mod rounds;
#[cfg(test)]
mod tests;
mod text;

use chunk::{ChunkGen, Layout};
use files::{ChunkBuf, Files, write_summary};

/// People per chunk: the unit of parallel work and of random streams.
const CHUNK_PERSONS: u64 = 100_000;
/// People per sampling site.
const SITE_PERSONS: u64 = 2_500;
/// Number of labs, `L1`..`L4`.
const LABS: u64 = 4;
/// [`LABS`] as an array length.
const LAB_COUNT: usize = 4;
/// Samples per 96-well plate; the last two wells hold the controls.
const PLATE_SAMPLES: u64 = 94;
/// The largest pool [`generate`] accepts.
const MAX_POOL: u8 = 20;
/// The most people [`generate`] accepts (above the world's population).
const MAX_PERSONS: u64 = 10_000_000_000;
/// 2022-04-02 07:00:00 +08:00, in seconds since the Unix epoch.
const DAY_START: i64 = 1_648_854_000;
/// The Ct cut-off of [`GenConfig::ct_model`]: a reading at or above it is negative
/// (the store's default `ct_cutoff`).
pub const CT_CUTOFF: f64 = 40.0;
/// Mean of the viral-load Ct of [`GenConfig::ct_model`].
pub const VIRAL_CT_MEAN: f64 = 26.0;
/// Standard deviation of the viral-load Ct of [`GenConfig::ct_model`].
pub const VIRAL_CT_SD: f64 = 5.0;
/// Standard deviation of a tube's reading around its true Ct in [`GenConfig::ct_model`].
pub const CT_NOISE_SD: f64 = 0.5;

/// What to generate: the size of the city, how many are infected, how they are pooled.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Number of people tested in the round (at least 1).
    pub persons: u64,
    /// Probability that a person is infected, in \[0, 1\].
    pub prevalence: f64,
    /// Seed of the random streams; the same config gives the same bytes.
    pub seed: u64,
    /// Probability that a person is pooled rather than given a single tube, in \[0, 1\].
    pub pool_share: f64,
    /// People per pool tube, 2 to 20 (5, 10 and 20 are the validated sizes).
    pub pool_size: u8,
    /// Pool sizes by site, each 2 to 20: site `s` pools `pool_sizes[s % n]` people to a
    /// tube. Empty (the default): every site uses `pool_size`.
    pub pool_sizes: Vec<u8>,
    /// Draw Ct values from viral load and pool dilution (see the module docs): a pool
    /// whose mix reads at or above the cut-off is negative, and `ct_truth.csv` records
    /// each infected person's Ct and tube. Off (the default): the perfect assay.
    pub ct_model: bool,
    /// Share of rows, in \[0, 1\], whose optional columns are left blank: `capacity`
    /// and `site` of a collections row; `lab`, `plate`, `well` and (where the `result`
    /// word is written) both Ct values of a results row. Each row is drawn on its own,
    /// from a stream apart from the round's, so the same seed gives the same people,
    /// tubes and results whatever the share. 0 writes every column.
    pub blank_optional: f64,
    /// Also write `population.csv`, the register (`person,district,community`): every
    /// person of the round plus 0.5 % registered people who got no tube.
    pub population: bool,
    /// How person ids look: numbered in row order (the default) or spread as a city's
    /// resident ids are.
    pub ids: PersonIds,
}

/// How the generator writes person ids. Both are valid GB 11643 resident identity
/// numbers; they differ in what sorting or indexing them costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PersonIds {
    /// `31`, the person's number + 1 in 15 digits and the check character: ids in the
    /// order of the rows, differing only in their last digits.
    #[default]
    Numbered,
    /// As a city's residents' ids: one of Shanghai's 16 district codes, a birth date
    /// from 1940 to 2019, a three-digit sequence and the check character, spread over
    /// that space in no order the rows follow (467,520,000 distinct ids). Ids that
    /// share their district and birth date share 14 characters, which is what makes a
    /// city's ids costly to sort as text.
    Resident,
}

impl Default for GenConfig {
    /// 100,000 people, prevalence 0.1 %, seed 1, 95 % pooled 10 to a tube.
    fn default() -> Self {
        GenConfig {
            persons: 100_000,
            prevalence: 0.001,
            seed: 1,
            pool_share: 0.95,
            pool_size: 10,
            pool_sizes: Vec::new(),
            ct_model: false,
            blank_optional: 0.0,
            population: false,
            ids: PersonIds::Numbered,
        }
    }
}

impl GenConfig {
    /// Checks the ranges [`generate`] accepts, with a message for the command line.
    fn validate(&self) -> Result<()> {
        if self.persons == 0 || self.persons > MAX_PERSONS {
            return Err(Error::Usage(format!(
                "persons must be between 1 and {MAX_PERSONS}, got {}",
                self.persons
            )));
        }
        if !(0.0..=1.0).contains(&self.prevalence) {
            return Err(Error::Usage(format!(
                "prevalence must be between 0 and 1, got {}",
                self.prevalence
            )));
        }
        if !(0.0..=1.0).contains(&self.pool_share) {
            return Err(Error::Usage(format!(
                "pool share must be between 0 and 1, got {}",
                self.pool_share
            )));
        }
        // The register adds 0.5 % untested persons past the round's.
        let numbered = self.persons.saturating_add(self.persons.div_ceil(200));
        if self.ids == PersonIds::Resident && numbered > text::RESIDENT_IDS {
            return Err(Error::Usage(format!(
                "resident ids give {} distinct persons; {} persons need {numbered}",
                text::RESIDENT_IDS,
                self.persons
            )));
        }
        if !(0.0..=1.0).contains(&self.blank_optional) {
            return Err(Error::Usage(format!(
                "blank optional share must be between 0 and 1, got {}",
                self.blank_optional
            )));
        }
        for &size in std::iter::once(&self.pool_size).chain(&self.pool_sizes) {
            if !(2..=MAX_POOL).contains(&size) {
                return Err(Error::Usage(format!(
                    "pool size must be between 2 and {MAX_POOL}, got {size}"
                )));
            }
        }
        Ok(())
    }

    /// People per pool tube at sampling site `site` (0-based).
    fn pool_size_at(&self, site: u64) -> u8 {
        let n = self.pool_sizes.len() as u64;
        if n == 0 {
            return self.pool_size;
        }
        usize::try_from(site % n)
            .ok()
            .and_then(|i| self.pool_sizes.get(i))
            .copied()
            .unwrap_or(self.pool_size)
    }
}

/// What a generated round holds; written to `summary.json` and returned by [`generate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GenSummary {
    /// People tested (rows of `collections.csv`).
    pub persons: u64,
    /// Infected people (rows of `truth.csv`).
    pub infected: u64,
    /// Pool tubes of the pooled stage.
    pub pool_tubes: u64,
    /// Single tubes of the pooled stage.
    pub single_tubes: u64,
    /// Pool tubes that tested positive.
    pub positive_pools: u64,
    /// Single tubes that tested positive.
    pub positive_singles: u64,
    /// Members of positive pools, each recalled for a single-tube retest.
    pub recalled_persons: u64,
    /// Retest tubes (rows of `retest_collections.csv` and `retest_results.csv`).
    pub retest_tubes: u64,
    /// Rows of `population.csv` when [`GenConfig::population`] wrote it (the persons
    /// and the registered people who got no tube); written only then, so that a round
    /// without it keeps its `summary.json` bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub registered: u64,
    /// Pool tubes holding an infected person that read negative under
    /// [`GenConfig::ct_model`] (dilution hid them; their members are not recalled);
    /// written only when some are, so that a round without it keeps its bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub missed_pools: u64,
    /// Single tubes of infected persons that read negative under [`GenConfig::ct_model`];
    /// written only when some are.
    #[serde(skip_serializing_if = "is_zero")]
    pub missed_singles: u64,
    /// Whether the round carries the staged incidents of [`incidents`]; written only
    /// when set, so that a plain round's `summary.json` keeps its bytes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub incidents: bool,
}

impl GenSummary {
    fn add(&mut self, o: &GenSummary) {
        self.persons += o.persons;
        self.infected += o.infected;
        self.pool_tubes += o.pool_tubes;
        self.single_tubes += o.single_tubes;
        self.positive_pools += o.positive_pools;
        self.positive_singles += o.positive_singles;
        self.recalled_persons += o.recalled_persons;
        self.retest_tubes += o.retest_tubes;
        self.registered += o.registered;
        self.missed_pools += o.missed_pools;
        self.missed_singles += o.missed_singles;
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Generates one testing round into `out` (created if missing) and returns its summary.
///
/// Writes `collections.csv`, `results.csv`, `retest_collections.csv`,
/// `retest_results.csv`, `truth.csv`, `summary.json` and, when the config asks for
/// them, `population.csv` and `ct_truth.csv` (see the module docs), and
/// advances `progress` by the people written, `cfg.persons` in all (the caller knows
/// that total, so it is not reported). Work runs on rayon's pool; memory stays bounded (a few chunks of
/// 100,000 people in flight) whatever the size.
///
/// # Errors
/// [`Error::Usage`] if the config is out of range (persons 0, prevalence, pool share or
/// blank optional share outside \[0, 1\], pool size outside 2..=20); [`Error::Io`] if a file cannot be
/// written.
pub fn generate(
    cfg: &GenConfig,
    out: &Path,
    progress: Option<&dyn Progress>,
) -> Result<GenSummary> {
    generate_with(cfg, out, progress, Layout::new(CHUNK_PERSONS))
}

fn generate_with(
    cfg: &GenConfig,
    out: &Path,
    progress: Option<&dyn Progress>,
    layout: Layout,
) -> Result<GenSummary> {
    cfg.validate()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut files = Files::create(out, cfg.population, cfg.ct_model)?;
    let chunks = cfg.persons.div_ceil(layout.chunk);
    // Chunks made in parallel per round; twice that many buffers exist at most, so
    // one group can be written while the next is generated.
    let group = u64::try_from(rayon::current_num_threads().saturating_mul(2))
        .unwrap_or(16)
        .clamp(2, 16);
    let max_bufs = 2 * group;

    let (full_tx, full_rx) = mpsc::sync_channel::<ChunkBuf>(usize::try_from(group).unwrap_or(16));
    let (free_tx, free_rx) = mpsc::channel::<ChunkBuf>();

    let summary = std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<GenSummary> {
            let mut total = GenSummary::default();
            for buf in full_rx {
                files.write(&buf)?;
                total.add(&buf.counts);
                if let Some(bar) = progress {
                    bar.advance(buf.counts.persons);
                }
                // The generator may have finished; a lost buffer is then just freed.
                let _ = free_tx.send(buf);
            }
            Ok(total)
        });

        let mut allocated = 0u64;
        let mut next = 0u64;
        'rounds: while next < chunks {
            let n = group.min(chunks - next);
            let mut bufs = Vec::new();
            while u64::try_from(bufs.len()).unwrap_or(u64::MAX) < n {
                if let Ok(b) = free_rx.try_recv() {
                    bufs.push(b);
                } else if allocated < max_bufs {
                    allocated += 1;
                    bufs.push(ChunkBuf::default());
                } else if let Ok(b) = free_rx.recv() {
                    bufs.push(b);
                } else {
                    break 'rounds; // the writer stopped: its error is returned below
                }
            }
            bufs.par_iter_mut().enumerate().for_each(|(i, buf)| {
                let index = next + u64::try_from(i).unwrap_or(0);
                ChunkGen::new(cfg, layout, index, buf).run();
            });
            for buf in bufs {
                if full_tx.send(buf).is_err() {
                    break 'rounds;
                }
            }
            next += n;
        }
        drop(full_tx);
        match writer.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })?;

    write_summary(out, &summary)?;
    Ok(summary)
}
