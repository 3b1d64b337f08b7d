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
//! | `summary.json` | the round | the [`GenSummary`], pretty JSON |
//!
//! `pooltrack gen --incidents` ([`incidents::generate`]) rewrites these files afterwards
//! to stage a failed plate, a late lab and a discordant pool, and adds the register
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
//!   `pool_size`). A pool never spans two sites, so a site's last pool may be partly
//!   filled. Collection runs from 07:00 to about 18:50: a person's slot follows their
//!   place in the site's queue, a single tube is taken in the minute after its slot,
//!   and the members of a pool are taken 30 s apart from the pool's start.
//! - **Testing.** The assay is perfect: a tube is positive iff it holds an infected
//!   person. A positive pool's ORF1ab Ct is its lowest member Ct + log2(`pool_size`)
//!   (dilution) ± 0.5; N is ORF1ab ± 1.5; a single tube's Ct is its person's ± 0.5.
//!   Cts are written with two decimals and kept below 38 (the usual cut-off is 40):
//!   the few that would reach it (high loads in large pools) are clamped to 37.99;
//!   negative tubes have empty Ct fields. A site's tubes all go to one lab
//!   (`L1`..`L4`, round robin over sites). Lab `L3` sends Ct values only: its `result`
//!   field is empty, and reading its Cts gives the same answer. Each lab fills
//!   plates `{lab}-P` + 6 digits with 94 samples, wells `A01`, `B01`, … `F12`
//!   column by column (`G12` and `H12` hold the controls). A tube is reported 3 to
//!   10 hours after its last swab.
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

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::progress::Progress;
use crate::{Error, Result};

pub mod incidents;

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
/// Seconds over which a site's queue is spread (11 h 40 min, so that the last pool
/// of 20 still ends before 19:00).
const QUEUE_SPAN: u64 = 42_000;
/// Seconds between the swabs of two members of one pool.
const POOL_STEP: i64 = 30;
/// Upper bound of every Ct written (strictly below 38).
const CT_MAX: f64 = 37.99;
/// The offset the files are written in, +08:00.
const LOCAL_OFFSET: i64 = 8 * 3600;
const HOUR: u64 = 3600;

const COLLECTIONS_HEADER: &[u8] = b"tube,person,mode,capacity,collected_at,site\n";
const RESULTS_HEADER: &[u8] = b"tube,result,ct_orf1ab,ct_n,reported_at,lab,plate,well\n";
const TRUTH_HEADER: &[u8] = b"person\n";

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
        if !(2..=MAX_POOL).contains(&self.pool_size) {
            return Err(Error::Usage(format!(
                "pool size must be between 2 and {MAX_POOL}, got {}",
                self.pool_size
            )));
        }
        Ok(())
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
    }
}

/// Generates one testing round into `out` (created if missing) and returns its summary.
///
/// Writes `collections.csv`, `results.csv`, `retest_collections.csv`,
/// `retest_results.csv`, `truth.csv` and `summary.json` (see the module docs), and
/// advances `progress` by the people written, `cfg.persons` in all (the caller knows
/// that total, so it is not reported). Work runs on rayon's pool; memory stays bounded (a few chunks of
/// 100,000 people in flight) whatever the size.
///
/// # Errors
/// [`Error::Usage`] if the config is out of range (persons 0, prevalence or pool share
/// outside \[0, 1\], pool size outside 2..=20); [`Error::Io`] if a file cannot be
/// written.
pub fn generate(
    cfg: &GenConfig,
    out: &Path,
    progress: Option<&dyn Progress>,
) -> Result<GenSummary> {
    generate_with(cfg, out, progress, Layout::new(CHUNK_PERSONS))
}

/// How people are cut into chunks, and the serial and plate ranges each chunk owns.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// People per chunk, a multiple of [`SITE_PERSONS`].
    chunk: u64,
    /// Pool serials per chunk (a pool holds at least one person and never spans two
    /// sites, and a site of 2,500 people has at most 1,250 pools of two).
    pool_stride: u64,
    /// Plates per lab per chunk for either stage.
    lab_plates: u64,
}

impl Layout {
    fn new(chunk: u64) -> Layout {
        debug_assert!(chunk > 0 && chunk.is_multiple_of(SITE_PERSONS));
        let sites = chunk / SITE_PERSONS;
        let lab_tubes = sites.div_ceil(LABS) * SITE_PERSONS;
        Layout {
            chunk,
            pool_stride: sites * SITE_PERSONS.div_ceil(2),
            lab_plates: lab_tubes.div_ceil(PLATE_SAMPLES),
        }
    }
}

/// One chunk's output, reused from chunk to chunk.
#[derive(Default)]
struct ChunkBuf {
    collections: Vec<u8>,
    results: Vec<u8>,
    retest_collections: Vec<u8>,
    retest_results: Vec<u8>,
    truth: Vec<u8>,
    counts: GenSummary,
}

impl ChunkBuf {
    fn clear(&mut self) {
        self.collections.clear();
        self.results.clear();
        self.retest_collections.clear();
        self.retest_results.clear();
        self.truth.clear();
        self.counts = GenSummary::default();
    }
}

/// The output files, written chunk by chunk in order.
struct Files {
    collections: Sink,
    results: Sink,
    retest_collections: Sink,
    retest_results: Sink,
    truth: Sink,
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
    fn create(dir: &Path) -> Result<Files> {
        Ok(Files {
            collections: Sink::create(dir, "collections.csv", COLLECTIONS_HEADER)?,
            results: Sink::create(dir, "results.csv", RESULTS_HEADER)?,
            retest_collections: Sink::create(dir, "retest_collections.csv", COLLECTIONS_HEADER)?,
            retest_results: Sink::create(dir, "retest_results.csv", RESULTS_HEADER)?,
            truth: Sink::create(dir, "truth.csv", TRUTH_HEADER)?,
        })
    }

    fn write(&mut self, b: &ChunkBuf) -> Result<()> {
        self.collections.write(&b.collections)?;
        self.results.write(&b.results)?;
        self.retest_collections.write(&b.retest_collections)?;
        self.retest_results.write(&b.retest_results)?;
        self.truth.write(&b.truth)
    }
}

fn generate_with(
    cfg: &GenConfig,
    out: &Path,
    progress: Option<&dyn Progress>,
    layout: Layout,
) -> Result<GenSummary> {
    cfg.validate()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut files = Files::create(out)?;
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

/// Writes `summary.json` (pretty JSON and a final newline) into `out`.
fn write_summary(out: &Path, summary: &GenSummary) -> Result<()> {
    let path = out.join("summary.json");
    let mut json = serde_json::to_vec_pretty(summary)
        .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
    json.push(b'\n');
    std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
}

/// A pool tube being filled.
struct OpenPool {
    serial: u64,
    start: i64,
    len: usize,
    members: [u64; MAX_POOL as usize],
    cts: [Option<f64>; MAX_POOL as usize],
}

/// Generates one chunk into its buffer.
struct ChunkGen<'a> {
    cfg: &'a GenConfig,
    layout: Layout,
    chunk: u64,
    rng: Xoshiro256PlusPlus,
    buf: &'a mut ChunkBuf,
    dilution: f64,
    /// Tubes of the pooled stage and of the retest stage given to each lab so far.
    lab_tubes: [u64; LAB_COUNT],
    lab_retests: [u64; LAB_COUNT],
}

impl<'a> ChunkGen<'a> {
    fn new(cfg: &'a GenConfig, layout: Layout, chunk: u64, buf: &'a mut ChunkBuf) -> Self {
        buf.clear();
        let seed = cfg.seed ^ chunk.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ChunkGen {
            cfg,
            layout,
            chunk,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            buf,
            dilution: f64::from(cfg.pool_size).log2(),
            lab_tubes: [0; LAB_COUNT],
            lab_retests: [0; LAB_COUNT],
        }
    }

    fn run(mut self) {
        let first = self.chunk * self.layout.chunk;
        let end = (first + self.layout.chunk).min(self.cfg.persons);
        let n = end - first;
        let est = usize::try_from(n).unwrap_or(0);
        self.buf.collections.reserve(est * 68);
        self.buf
            .results
            .reserve(est * 80 / usize::from(self.cfg.pool_size));
        self.buf.counts.persons = n;
        let mut site_start = first;
        while site_start < end {
            let site_end = (site_start + SITE_PERSONS).min(end);
            self.site(site_start, site_end);
            site_start = site_end;
        }
    }

    fn site(&mut self, start: u64, end: u64) {
        let site = start / SITE_PERSONS;
        let mut pool = OpenPool {
            serial: 0,
            start: 0,
            len: 0,
            members: [0; MAX_POOL as usize],
            cts: [None; MAX_POOL as usize],
        };
        let size = usize::from(self.cfg.pool_size);
        for person in start..end {
            let ct = if unit(&mut self.rng) < self.cfg.prevalence {
                self.buf.counts.infected += 1;
                push_person(&mut self.buf.truth, person);
                self.buf.truth.push(b'\n');
                Some(16.0 + 18.0 * unit(&mut self.rng))
            } else {
                None
            };
            let slot = DAY_START + secs((person - start) * QUEUE_SPAN / SITE_PERSONS);
            if unit(&mut self.rng) < self.cfg.pool_share {
                if pool.len == 0 {
                    pool.serial =
                        self.chunk * self.layout.pool_stride + self.buf.counts.pool_tubes + 1;
                    self.buf.counts.pool_tubes += 1;
                    pool.start = slot + self.seconds(0, 59);
                }
                let at = pool.start + POOL_STEP * secs(u64::try_from(pool.len).unwrap_or(0));
                push_collection(
                    &mut self.buf.collections,
                    b"PL",
                    pool.serial,
                    person,
                    false,
                    self.cfg.pool_size,
                    at,
                    site,
                );
                pool.members[pool.len] = person;
                pool.cts[pool.len] = ct;
                pool.len += 1;
                if pool.len == size {
                    self.close_pool(&pool, site);
                    pool.len = 0;
                }
            } else {
                let serial = self.chunk * self.layout.chunk + self.buf.counts.single_tubes + 1;
                self.buf.counts.single_tubes += 1;
                let at = slot + self.seconds(0, 59);
                push_collection(
                    &mut self.buf.collections,
                    b"SG",
                    serial,
                    person,
                    true,
                    1,
                    at,
                    site,
                );
                let cts = ct.map(|c| self.cts(c, 0.5));
                if cts.is_some() {
                    self.buf.counts.positive_singles += 1;
                }
                let reported = at + self.seconds(3 * HOUR, 10 * HOUR);
                self.first_stage_result(b"SG", serial, cts, reported, site);
            }
        }
        if pool.len > 0 {
            self.close_pool(&pool, site);
        }
    }

    /// Writes a full (or a site's last) pool's result and, if positive, its retests.
    fn close_pool(&mut self, pool: &OpenPool, site: u64) {
        let members = &pool.members[..pool.len];
        let cts = &pool.cts[..pool.len];
        let lowest = cts.iter().flatten().copied().reduce(f64::min);
        let last = pool.start + POOL_STEP * secs(u64::try_from(pool.len - 1).unwrap_or(0));
        let pair = lowest.map(|c| self.cts(c + self.dilution, 0.5));
        let reported = last + self.seconds(3 * HOUR, 10 * HOUR);
        self.first_stage_result(b"PL", pool.serial, pair, reported, site);
        if pair.is_none() {
            return;
        }
        self.buf.counts.positive_pools += 1;
        let lab = lab_of(site);
        for (&person, &ct) in members.iter().zip(cts) {
            let serial = self.chunk * self.layout.chunk + self.buf.counts.retest_tubes + 1;
            self.buf.counts.retest_tubes += 1;
            self.buf.counts.recalled_persons += 1;
            let at = reported + self.seconds(HOUR, 4 * HOUR);
            push_collection(
                &mut self.buf.retest_collections,
                b"RT",
                serial,
                person,
                true,
                1,
                at,
                site,
            );
            let pair = ct.map(|c| self.cts(c, 0.5));
            let done = at + self.seconds(2 * HOUR, 6 * HOUR);
            let k = self.lab_retests[lab];
            self.lab_retests[lab] += 1;
            let plate = self.plate_base() + self.layout.lab_plates + k / PLATE_SAMPLES;
            push_result(
                &mut self.buf.retest_results,
                b"RT",
                serial,
                Some(pair.is_some()),
                pair,
                done,
                lab,
                plate,
                k % PLATE_SAMPLES,
            );
        }
    }

    fn first_stage_result(
        &mut self,
        prefix: &[u8],
        serial: u64,
        cts: Option<(u32, u32)>,
        reported: i64,
        site: u64,
    ) {
        let lab = lab_of(site);
        let k = self.lab_tubes[lab];
        self.lab_tubes[lab] += 1;
        let plate = self.plate_base() + k / PLATE_SAMPLES;
        // Lab L3 sends Ct values only.
        let verdict = (lab != 2).then_some(cts.is_some());
        push_result(
            &mut self.buf.results,
            prefix,
            serial,
            verdict,
            cts,
            reported,
            lab,
            plate,
            k % PLATE_SAMPLES,
        );
    }

    fn plate_base(&self) -> u64 {
        self.chunk * 2 * self.layout.lab_plates
    }

    /// ORF1ab = `base` ± `spread`, N = ORF1ab ± 1.5, both in hundredths and below 38.
    fn cts(&mut self, base: f64, spread: f64) -> (u32, u32) {
        let orf = base + spread * (2.0 * unit(&mut self.rng) - 1.0);
        let n = orf + 1.5 * (2.0 * unit(&mut self.rng) - 1.0);
        (hundredths(orf), hundredths(n))
    }

    /// A whole number of seconds, uniform in `lo..=hi`.
    fn seconds(&mut self, lo: u64, hi: u64) -> i64 {
        secs(lo + below(&mut self.rng, hi - lo + 1))
    }
}

/// Uniform in \[0, 1) with 52 random bits.
fn unit(rng: &mut Xoshiro256PlusPlus) -> f64 {
    f64::from_bits(0x3FF0_0000_0000_0000 | (rng.next_u64() >> 12)) - 1.0
}

/// Uniform in `0..n`, for `n` at most 2^32 (Lemire's multiply-shift on 32 bits).
fn below(rng: &mut Xoshiro256PlusPlus, n: u64) -> u64 {
    debug_assert!(n > 0 && n <= 1 << 32);
    ((rng.next_u64() >> 32) * n) >> 32
}

/// Seconds as a time delta; every value here is far below `i64::MAX`.
fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// A Ct value in hundredths, clamped to \[10.00, 37.99\].
// The value is clamped to a small positive range first, so the float-to-int cast
// neither truncates nor loses the sign.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn hundredths(ct: f64) -> u32 {
    (ct.clamp(10.0, CT_MAX) * 100.0).round() as u32
}

fn lab_of(site: u64) -> usize {
    usize::try_from(site % LABS).unwrap_or(0)
}

fn digit(v: u64) -> u8 {
    b'0' + u8::try_from(v % 10).unwrap_or(0)
}

/// Appends `v` in decimal, zero-padded to at least `width` (at most 20) digits.
fn push_padded(buf: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = digit(v);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(tmp.len() - width.min(tmp.len()));
    buf.extend_from_slice(&tmp[start..]);
}

fn push_two(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&[digit(v / 10), digit(v)]);
}

/// Appends person `index`'s id: a resident identity number (`31`, the index + 1 in 15
/// digits, and the GB 11643 check character), so that ingest finds nothing to warn of.
fn push_person(buf: &mut Vec<u8>, index: u64) {
    let start = buf.len();
    buf.extend_from_slice(b"31");
    push_padded(buf, index + 1, 15);
    let check = buf
        .get(start..)
        .and_then(crate::model::resident_id_check_char)
        .unwrap_or(b'0');
    buf.push(check);
}

/// Person `index`'s id as [`push_person`] writes it.
pub(crate) fn person_id(index: u64) -> String {
    let mut buf = Vec::with_capacity(18);
    push_person(&mut buf, index);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Appends `unix_secs` as `YYYY-MM-DD HH:MM:SS` at +08:00.
fn push_time(buf: &mut Vec<u8>, unix_secs: i64) {
    let local = unix_secs + LOCAL_OFFSET;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let sod = local.rem_euclid(86_400).unsigned_abs();
    push_padded(buf, y.unsigned_abs(), 4);
    buf.push(b'-');
    push_two(buf, m);
    buf.push(b'-');
    push_two(buf, d);
    buf.push(b' ');
    push_two(buf, sod / 3600);
    buf.push(b':');
    push_two(buf, sod / 60 % 60);
    buf.push(b':');
    push_two(buf, sod % 60);
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm),
/// for years after 0.
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1).unsigned_abs();
    let m = if mp < 10 { mp + 3 } else { mp - 9 }.unsigned_abs();
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends a collections row.
#[allow(clippy::too_many_arguments)]
fn push_collection(
    buf: &mut Vec<u8>,
    prefix: &[u8],
    serial: u64,
    person: u64,
    single: bool,
    capacity: u8,
    at: i64,
    site: u64,
) {
    buf.extend_from_slice(prefix);
    push_padded(buf, serial, 9);
    buf.push(b',');
    push_person(buf, person);
    buf.extend_from_slice(if single { b",single," } else { b",pool," });
    push_padded(buf, u64::from(capacity), 1);
    buf.push(b',');
    push_time(buf, at);
    buf.extend_from_slice(b",S");
    push_padded(buf, site, 5);
    buf.push(b'\n');
}

/// Appends a results row; `verdict` None leaves the result field empty.
#[allow(clippy::too_many_arguments)]
fn push_result(
    buf: &mut Vec<u8>,
    prefix: &[u8],
    serial: u64,
    verdict: Option<bool>,
    cts: Option<(u32, u32)>,
    reported: i64,
    lab: usize,
    plate: u64,
    well: u64,
) {
    const LAB_NAMES: [&[u8]; LAB_COUNT] = [b"L1", b"L2", b"L3", b"L4"];
    buf.extend_from_slice(prefix);
    push_padded(buf, serial, 9);
    buf.extend_from_slice(match verdict {
        Some(true) => b",positive,",
        Some(false) => b",negative,",
        None => b",,",
    });
    if let Some((orf, n)) = cts {
        push_ct(buf, orf);
        buf.push(b',');
        push_ct(buf, n);
    } else {
        buf.push(b',');
    }
    buf.push(b',');
    push_time(buf, reported);
    let name = LAB_NAMES[lab];
    buf.push(b',');
    buf.extend_from_slice(name);
    buf.push(b',');
    buf.extend_from_slice(name);
    buf.extend_from_slice(b"-P");
    push_padded(buf, plate, 6);
    // Column by column: A01, B01, ..., H01, A02, ...
    buf.push(b',');
    buf.push(b'A' + u8::try_from(well % 8).unwrap_or(0));
    push_two(buf, well / 8 + 1);
    buf.push(b'\n');
}

fn push_ct(buf: &mut Vec<u8>, hundredths: u32) {
    let h = u64::from(hundredths);
    push_padded(buf, h / 100, 1);
    buf.push(b'.');
    push_two(buf, h % 100);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Offset, format_local, parse};
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn cfg(persons: u64, prevalence: f64, seed: u64) -> GenConfig {
        GenConfig {
            persons,
            prevalence,
            seed,
            ..GenConfig::default()
        }
    }

    /// Small chunks so that 20,000 people span several chunks and sites.
    const TEST_LAYOUT: u64 = 5_000;

    fn run(c: &GenConfig) -> (tempfile::TempDir, GenSummary) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = generate_with(c, dir.path(), None, Layout::new(TEST_LAYOUT)).expect("generate");
        (dir, s)
    }

    const FILES: [&str; 6] = [
        "collections.csv",
        "results.csv",
        "retest_collections.csv",
        "retest_results.csv",
        "truth.csv",
        "summary.json",
    ];

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).expect("read")
    }

    /// Rows of a CSV file as fields, checking the header.
    fn rows(dir: &Path, name: &str, header: &[u8]) -> Vec<Vec<String>> {
        let text = read(dir, name);
        let mut lines = text.split_terminator('\n');
        assert_eq!(
            lines.next().map(str::as_bytes),
            Some(&header[..header.len() - 1])
        );
        lines
            .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    struct Round {
        coll: Vec<Vec<String>>,
        res: Vec<Vec<String>>,
        rt_coll: Vec<Vec<String>>,
        rt_res: Vec<Vec<String>>,
        truth: HashSet<String>,
        summary: serde_json::Value,
    }

    fn load(dir: &Path) -> Round {
        let truth = rows(dir, "truth.csv", TRUTH_HEADER);
        Round {
            coll: rows(dir, "collections.csv", COLLECTIONS_HEADER),
            res: rows(dir, "results.csv", RESULTS_HEADER),
            rt_coll: rows(dir, "retest_collections.csv", COLLECTIONS_HEADER),
            rt_res: rows(dir, "retest_results.csv", RESULTS_HEADER),
            truth: truth.into_iter().map(|mut r| r.remove(0)).collect(),
            summary: serde_json::from_str(&read(dir, "summary.json")).expect("json"),
        }
    }

    /// A result row read as the tracker would: the result field, or the Cts for L3.
    fn positive(row: &[String]) -> bool {
        assert_eq!(row.len(), 8, "{row:?}");
        let by_ct = !row[2].is_empty() && !row[3].is_empty();
        assert_eq!(row[2].is_empty(), row[3].is_empty(), "{row:?}");
        match row[1].as_str() {
            "positive" => assert!(by_ct, "{row:?}"),
            "negative" => assert!(!by_ct, "{row:?}"),
            "" => assert_eq!(row[5], "L3", "{row:?}"),
            other => panic!("bad result {other}"),
        }
        if by_ct {
            for f in &row[2..4] {
                let ct: f64 = f.parse().expect("ct");
                assert!((10.0..38.0).contains(&ct), "{row:?}");
                assert_eq!(f.split('.').nth(1).map(str::len), Some(2), "{row:?}");
            }
        }
        by_ct
    }

    fn time(s: &str) -> i64 {
        parse(s.as_bytes(), Offset::CHINA).expect("time") / 1000
    }

    #[test]
    fn day_start_is_seven_in_the_morning_local() {
        assert_eq!(time("2022-04-02 07:00:00"), DAY_START);
    }

    #[test]
    fn times_match_format_local() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut values: Vec<i64> = vec![0, -28_800, DAY_START, 951_782_400, 4_107_542_399];
        values.extend((0..5_000).map(|_| secs(below(&mut rng, 1 << 32))));
        values.extend((0..5_000).map(|_| DAY_START + secs(below(&mut rng, 400_000))));
        for t in values {
            let mut buf = Vec::new();
            push_time(&mut buf, t);
            assert_eq!(
                String::from_utf8(buf).expect("ascii"),
                format_local(t * 1000, Offset::CHINA),
                "{t}"
            );
        }
    }

    #[test]
    fn numbers_are_padded_and_widen() {
        let mut b = Vec::new();
        push_padded(&mut b, 42, 9);
        b.push(b' ');
        push_padded(&mut b, 1_234_567_890, 9);
        b.push(b' ');
        push_padded(&mut b, 0, 1);
        b.push(b' ');
        push_padded(&mut b, u64::MAX, 25);
        b.push(b' ');
        push_ct(&mut b, 2_305);
        b.push(b' ');
        push_person(&mut b, 0);
        assert_eq!(
            String::from_utf8(b).expect("ascii"),
            "000000042 1234567890 0 18446744073709551615 23.05 310000000000000012"
        );
        assert_eq!(hundredths(40.3), 3_799);
        assert_eq!(hundredths(23.456), 2_346);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let c = cfg(20_000, 0.01, 5);
        let (a, _) = run(&c);
        let (b, _) = run(&c);
        let (d, _) = run(&GenConfig { seed: 6, ..c });
        for f in FILES {
            assert_eq!(read(a.path(), f), read(b.path(), f), "{f}");
        }
        for f in ["collections.csv", "results.csv", "truth.csv"] {
            assert_ne!(read(a.path(), f), read(d.path(), f), "{f}");
        }
    }

    #[test]
    fn thread_count_does_not_change_the_bytes() {
        let c = cfg(20_000, 0.02, 9);
        let gen_in = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| run(&c))
        };
        let (one, _) = gen_in(1);
        let (four, _) = gen_in(4);
        for f in FILES {
            assert_eq!(read(one.path(), f), read(four.path(), f), "{f}");
        }
    }

    #[test]
    fn pools_are_positive_iff_they_hold_an_infected_person() {
        let (dir, s) = run(&cfg(20_000, 0.01, 3));
        let r = load(dir.path());
        let mut members: HashMap<&str, Vec<&str>> = HashMap::new();
        for row in &r.coll {
            members.entry(&row[0]).or_default().push(&row[1]);
        }
        assert_eq!(members.len(), r.res.len());
        let mut l3 = 0;
        let mut positives = 0;
        for row in &r.res {
            let m = &members[row[0].as_str()];
            let infected = m.iter().any(|p| r.truth.contains(*p));
            assert_eq!(positive(row), infected, "{row:?}");
            positives += u64::from(infected);
            l3 += u64::from(row[5] == "L3");
            assert_eq!(row[1].is_empty(), row[5] == "L3", "{row:?}");
        }
        assert!(l3 > 0 && positives > 10, "{l3} {positives}");
        assert_eq!(positives, s.positive_pools + s.positive_singles);
    }

    #[test]
    fn retests_recall_exactly_the_positive_pools() {
        let (dir, _) = run(&cfg(20_000, 0.01, 4));
        let r = load(dir.path());
        let tube_of: HashMap<&str, &str> = r
            .coll
            .iter()
            .map(|row| (row[1].as_str(), row[0].as_str()))
            .collect();
        let collected: HashMap<&str, i64> = r
            .coll
            .iter()
            .map(|row| (row[1].as_str(), time(&row[4])))
            .collect();
        let site: HashMap<&str, &str> = r
            .coll
            .iter()
            .map(|row| (row[1].as_str(), row[5].as_str()))
            .collect();
        let reported: HashMap<&str, i64> = r
            .res
            .iter()
            .map(|row| (row[0].as_str(), time(&row[4])))
            .collect();
        let positive_pools: HashSet<&str> = r
            .res
            .iter()
            .filter(|row| row[0].starts_with("PL") && positive(row))
            .map(|row| row[0].as_str())
            .collect();
        let expected: HashSet<&str> = r
            .coll
            .iter()
            .filter(|row| positive_pools.contains(row[0].as_str()))
            .map(|row| row[1].as_str())
            .collect();
        let recalled: HashSet<&str> = r.rt_coll.iter().map(|row| row[1].as_str()).collect();
        assert_eq!(recalled, expected);
        assert_eq!(recalled.len(), r.rt_coll.len(), "one retest per person");
        assert!(!recalled.is_empty());
        let rt_at: HashMap<&str, i64> = r
            .rt_coll
            .iter()
            .map(|row| (row[0].as_str(), time(&row[4])))
            .collect();
        for row in &r.rt_coll {
            let person = row[1].as_str();
            assert!(row[0].starts_with("RT"));
            assert_eq!((row[2].as_str(), row[3].as_str()), ("single", "1"));
            assert_eq!(row[5], site[person]);
            let after = time(&row[4]) - reported[tube_of[person]];
            assert!((3_600..=4 * 3_600).contains(&after), "{after}");
        }
        let rt_person: HashMap<&str, &str> = r
            .rt_coll
            .iter()
            .map(|row| (row[0].as_str(), row[1].as_str()))
            .collect();
        assert_eq!(r.rt_res.len(), r.rt_coll.len());
        let mut infected = 0;
        for row in &r.rt_res {
            let person = rt_person[row[0].as_str()];
            assert!(!row[1].is_empty(), "retest results are always filled");
            assert_eq!(positive(row), r.truth.contains(person), "{row:?}");
            infected += usize::from(r.truth.contains(person));
            let after = time(&row[4]) - rt_at[row[0].as_str()];
            assert!((2 * 3_600..=6 * 3_600).contains(&after), "{after}");
        }
        assert!(infected > 0);
        // Reports follow the last swab of the tube by 3 to 10 hours.
        let mut last: HashMap<&str, i64> = HashMap::new();
        for row in &r.coll {
            let t = collected[row[1].as_str()];
            let e = last.entry(row[0].as_str()).or_insert(t);
            *e = (*e).max(t);
        }
        for (tube, at) in &reported {
            let delay = at - last[tube];
            assert!((3 * 3_600..=10 * 3_600).contains(&delay), "{tube} {delay}");
        }
    }

    #[test]
    fn summary_counts_match_the_files() {
        let c = cfg(20_000, 0.02, 11);
        let (dir, s) = run(&c);
        let r = load(dir.path());
        let n = |k: &str| r.summary[k].as_u64().expect("count");
        assert_eq!(serde_json::to_value(&s).expect("json"), r.summary);
        assert_eq!(n("persons"), 20_000);
        assert_eq!(n("persons"), u64::try_from(r.coll.len()).expect("len"));
        assert_eq!(n("infected"), u64::try_from(r.truth.len()).expect("len"));
        let count = |rows: &[Vec<String>], f: &dyn Fn(&Vec<String>) -> bool| {
            u64::try_from(rows.iter().filter(|row| f(row)).count()).expect("len")
        };
        assert_eq!(
            n("pool_tubes"),
            count(&r.res, &|row| row[0].starts_with("PL"))
        );
        assert_eq!(
            n("single_tubes"),
            count(&r.res, &|row| row[0].starts_with("SG"))
        );
        assert_eq!(
            n("positive_pools"),
            count(&r.res, &|row| row[0].starts_with("PL") && positive(row))
        );
        assert_eq!(
            n("positive_singles"),
            count(&r.res, &|row| row[0].starts_with("SG") && positive(row))
        );
        assert_eq!(
            n("recalled_persons"),
            u64::try_from(r.rt_coll.len()).expect("len")
        );
        assert_eq!(
            n("retest_tubes"),
            u64::try_from(r.rt_res.len()).expect("len")
        );
        // Roughly the configured rates.
        assert!((300..=500).contains(&s.infected), "{s:?}");
        assert!((1_850..=2_050).contains(&s.pool_tubes), "{s:?}");
        assert!((850..=1_150).contains(&s.single_tubes), "{s:?}");
    }

    #[test]
    fn tubes_respect_capacity_and_identifiers_are_unique() {
        for pool_size in [2, 5, 10, 20] {
            let c = GenConfig {
                pool_size,
                ..cfg(12_345, 0.01, 2)
            };
            let (dir, s) = run(&c);
            let r = load(dir.path());
            let mut tubes: HashMap<&str, (u64, u64, &str, &str)> = HashMap::new();
            let mut persons = HashSet::new();
            let day = (time("2022-04-02 07:00:00"), time("2022-04-02 19:00:00"));
            let mut partial = 0;
            for row in &r.coll {
                assert_eq!(row.len(), 6, "{row:?}");
                assert_eq!(row[1].len(), 18);
                assert!(
                    row[1].starts_with("31") && row[1][..17].bytes().all(|b| b.is_ascii_digit())
                );
                assert_eq!(
                    crate::model::resident_id(&row[1]),
                    crate::model::ResidentId::Valid
                );
                assert!(persons.insert(row[1].as_str()), "duplicate person {row:?}");
                let capacity: u64 = row[3].parse().expect("capacity");
                match row[2].as_str() {
                    "pool" => {
                        assert!(row[0].starts_with("PL"));
                        assert_eq!(capacity, u64::from(pool_size));
                    }
                    "single" => {
                        assert!(row[0].starts_with("SG"));
                        assert_eq!(capacity, 1);
                    }
                    other => panic!("mode {other}"),
                }
                assert_eq!(row[0].len(), 11);
                assert!(row[5].starts_with('S') && row[5].len() == 6, "{row:?}");
                let t = time(&row[4]);
                assert!(t >= day.0 && t < day.1, "{row:?}");
                let e = tubes
                    .entry(&row[0])
                    .or_insert((0, capacity, &row[5], &row[4]));
                e.0 += 1;
                assert!(e.0 <= e.1, "tube over capacity: {row:?}");
                assert_eq!(e.2, &row[5], "a tube spans two sites: {row:?}");
            }
            for (tube, (n, cap, _, _)) in &tubes {
                assert!(*n >= 1 && n <= cap, "{tube}");
                partial += u64::from(n < cap);
            }
            // At most one partial pool per site.
            assert!(partial <= c.persons.div_ceil(SITE_PERSONS), "{partial}");
            let mut all: HashSet<&str> = HashSet::new();
            for row in r.res.iter().chain(&r.rt_res) {
                assert!(all.insert(&row[0]), "duplicate tube {}", row[0]);
            }
            assert_eq!(all.len(), tubes.len() + r.rt_coll.len());
            let mut wells = HashSet::new();
            for row in r.res.iter().chain(&r.rt_res) {
                assert!(row[6].starts_with(&format!("{}-P", row[5])), "{row:?}");
                assert!(wells.insert((row[6].clone(), row[7].clone())), "{row:?}");
                let w = row[7].as_bytes();
                assert!(w.len() == 3 && (b'A'..=b'H').contains(&w[0]), "{row:?}");
                assert!(!["G12", "H12"].contains(&row[7].as_str()), "{row:?}");
            }
            assert_eq!(s.persons, c.persons);
        }
    }

    #[test]
    fn extreme_shares_and_prevalences() {
        let (dir, s) = run(&GenConfig {
            pool_share: 1.0,
            ..cfg(5_000, 0.0, 1)
        });
        assert_eq!((s.single_tubes, s.infected, s.retest_tubes), (0, 0, 0));
        assert_eq!(s.pool_tubes, 500);
        assert_eq!(read(dir.path(), "truth.csv"), "person\n");
        let (_, s) = run(&GenConfig {
            pool_share: 0.0,
            ..cfg(5_000, 1.0, 1)
        });
        assert_eq!((s.pool_tubes, s.single_tubes), (0, 5_000));
        assert_eq!((s.infected, s.positive_singles), (5_000, 5_000));
        let (_, s) = run(&GenConfig {
            pool_share: 1.0,
            ..cfg(3, 1.0, 1)
        });
        assert_eq!((s.pool_tubes, s.positive_pools, s.retest_tubes), (1, 1, 3));
    }

    /// Counts the people reported done.
    #[derive(Default)]
    struct Done(AtomicU64);

    impl Progress for Done {
        fn total(&self, _: u64) {}
        fn stage(&self, _: &str) {}
        fn advance(&self, units: u64) {
            self.0.fetch_add(units, Ordering::Relaxed);
        }
    }

    #[test]
    fn public_entry_point_and_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("new").join("round");
        let done = Done::default();
        let s = generate(&cfg(1_234, 0.05, 8), &out, Some(&done)).expect("generate");
        assert_eq!(done.0.load(Ordering::Relaxed), 1_234);
        assert_eq!(s.persons, 1_234);
        for f in FILES {
            assert!(out.join(f).is_file(), "{f}");
        }
    }

    #[test]
    fn bad_configs_are_usage_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = GenConfig::default();
        let bad = [
            GenConfig {
                persons: 0,
                ..good.clone()
            },
            GenConfig {
                persons: MAX_PERSONS + 1,
                ..good.clone()
            },
            GenConfig {
                prevalence: -0.1,
                ..good.clone()
            },
            GenConfig {
                prevalence: 1.5,
                ..good.clone()
            },
            GenConfig {
                prevalence: f64::NAN,
                ..good.clone()
            },
            GenConfig {
                pool_share: 1.01,
                ..good.clone()
            },
            GenConfig {
                pool_share: f64::NAN,
                ..good.clone()
            },
            GenConfig {
                pool_size: 1,
                ..good.clone()
            },
            GenConfig {
                pool_size: 21,
                ..good.clone()
            },
        ];
        for c in bad {
            let out = dir.path().join("x");
            match generate(&c, &out, None) {
                Err(Error::Usage(msg)) => assert!(!msg.is_empty()),
                other => panic!("{c:?}: {other:?}"),
            }
            assert!(!out.exists(), "nothing is written for a bad config");
        }
        assert!(good.validate().is_ok());
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(matches!(
            generate(&cfg(10, 0.0, 1), &file, None),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn default_layout_serials_fit_their_padding_at_city_scale() {
        let l = Layout::new(CHUNK_PERSONS);
        assert_eq!(l.pool_stride, 50_000);
        assert_eq!(l.lab_plates, 266);
        assert_eq!(u64::try_from(LAB_COUNT), Ok(LABS));
        // The documented limits of the padding: plates to 187.9 M people, sites to
        // 250 M, tube serials to 1,000 M.
        let chunks = 187_900_000 / CHUNK_PERSONS;
        assert!(chunks * 2 * l.lab_plates < 1_000_000);
        const { assert!(250_000_000 / SITE_PERSONS <= 100_000) };
        assert!(1_000_000_000 / CHUNK_PERSONS * l.pool_stride <= 1_000_000_000);
    }
}
