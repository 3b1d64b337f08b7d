//! One chunk of people made into rows: each person's infection and tube, each tube's
//! result, and the retests of the positive pools' members, from the chunk's own random
//! stream and into its own serial and plate ranges.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use super::files::ChunkBuf;
use super::register::{area, untested};
use super::text::{
    hundredths, hundredths_below, push_collection, push_person, push_registered, push_result,
    push_tube,
};
use super::{
    CT_CUTOFF, CT_NOISE_SD, DAY_START, GenConfig, LAB_COUNT, LABS, MAX_POOL, PLATE_SAMPLES,
    SITE_PERSONS, VIRAL_CT_MEAN, VIRAL_CT_SD,
};

/// Seconds over which a site's queue is spread (11 h 40 min, so that the last pool
/// of 20 still ends before 19:00).
const QUEUE_SPAN: u64 = 42_000;
/// Seconds between the swabs of two members of one pool.
const POOL_STEP: i64 = 30;
const HOUR: u64 = 3600;
/// Salt of each chunk's stream of blank-field draws, so that it differs from the
/// chunk's own stream and leaving fields blank changes nothing else.
const BLANK_SALT: u64 = 0xB1A4_C0F1_E1D5_0A7E;
/// The viral-load Cts of the Ct model are clipped to this range.
const VIRAL_CT_RANGE: (f64, f64) = (12.0, CT_CUTOFF);
/// The highest Ct the Ct model writes: a positive reading stays below the cut-off.
const CT_MODEL_MAX: f64 = CT_CUTOFF - 0.01;

/// How people are cut into chunks, and the serial and plate ranges each chunk owns.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    /// People per chunk, a multiple of [`SITE_PERSONS`].
    pub(super) chunk: u64,
    /// Pool serials per chunk (a pool holds at least one person and never spans two
    /// sites, and a site of 2,500 people has at most 1,250 pools of two).
    pool_stride: u64,
    /// Plates per lab per chunk for either stage.
    lab_plates: u64,
}

impl Layout {
    pub(super) fn new(chunk: u64) -> Layout {
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

/// A pool tube being filled.
struct OpenPool {
    serial: u64,
    start: i64,
    len: usize,
    members: [u64; MAX_POOL as usize],
    cts: [Option<f64>; MAX_POOL as usize],
}

/// Generates one chunk into its buffer.
pub(super) struct ChunkGen<'a> {
    cfg: &'a GenConfig,
    layout: Layout,
    chunk: u64,
    rng: Xoshiro256PlusPlus,
    /// Draws which rows leave their optional fields blank.
    blank_rng: Xoshiro256PlusPlus,
    buf: &'a mut ChunkBuf,
    /// Tubes of the pooled stage and of the retest stage given to each lab so far.
    lab_tubes: [u64; LAB_COUNT],
    lab_retests: [u64; LAB_COUNT],
}

impl<'a> ChunkGen<'a> {
    pub(super) fn new(
        cfg: &'a GenConfig,
        layout: Layout,
        chunk: u64,
        buf: &'a mut ChunkBuf,
    ) -> Self {
        buf.clear();
        let seed = cfg.seed ^ chunk.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ChunkGen {
            cfg,
            layout,
            chunk,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            blank_rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ BLANK_SALT),
            buf,
            lab_tubes: [0; LAB_COUNT],
            lab_retests: [0; LAB_COUNT],
        }
    }

    pub(super) fn run(mut self) {
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
        if self.cfg.population && end == self.cfg.persons {
            self.untested();
        }
    }

    /// The register's people who got no tube, after the round's last person, spread
    /// evenly over the sites.
    fn untested(&mut self) {
        let persons = self.cfg.persons;
        let sites = persons.div_ceil(SITE_PERSONS);
        let n = untested(persons);
        for k in 0..n {
            let (district, community) = area(k * sites / n, sites);
            let text = format!("{district},{community}");
            push_registered(
                &mut self.buf.population,
                self.cfg.ids,
                persons + k,
                text.as_bytes(),
            );
        }
        self.buf.counts.registered += n;
    }

    /// Whether the next row leaves its optional fields blank. No draw is made when
    /// none is asked for, so such a round keeps the bytes it always had.
    fn blank(&mut self) -> bool {
        self.cfg.blank_optional > 0.0 && unit(&mut self.blank_rng) < self.cfg.blank_optional
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
        let pool_size = self.cfg.pool_size_at(site);
        let size = usize::from(pool_size);
        let registered_at = self.cfg.population.then(|| {
            let (district, community) = area(site, self.cfg.persons.div_ceil(SITE_PERSONS));
            format!("{district},{community}")
        });
        for person in start..end {
            if let Some(text) = &registered_at {
                push_registered(
                    &mut self.buf.population,
                    self.cfg.ids,
                    person,
                    text.as_bytes(),
                );
                self.buf.counts.registered += 1;
            }
            let ct = if unit(&mut self.rng) < self.cfg.prevalence {
                self.buf.counts.infected += 1;
                push_person(&mut self.buf.truth, self.cfg.ids, person);
                self.buf.truth.push(b'\n');
                Some(if self.cfg.ct_model {
                    self.viral_ct()
                } else {
                    16.0 + 18.0 * unit(&mut self.rng)
                })
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
                let blank = self.blank();
                push_collection(
                    &mut self.buf.collections,
                    b"PL",
                    pool.serial,
                    (self.cfg.ids, person),
                    false,
                    pool_size,
                    at,
                    site,
                    blank,
                );
                pool.members[pool.len] = person;
                pool.cts[pool.len] = ct;
                pool.len += 1;
                if pool.len == size {
                    self.close_pool(&pool, site, pool_size);
                    pool.len = 0;
                }
            } else {
                let serial = self.chunk * self.layout.chunk + self.buf.counts.single_tubes + 1;
                self.buf.counts.single_tubes += 1;
                let at = slot + self.seconds(0, 59);
                let blank = self.blank();
                push_collection(
                    &mut self.buf.collections,
                    b"SG",
                    serial,
                    (self.cfg.ids, person),
                    true,
                    1,
                    at,
                    site,
                    blank,
                );
                let cts = match ct {
                    Some(c) if self.cfg.ct_model => {
                        let read = self.read_ct(c);
                        self.record_truth(b"SG", serial, &[(person, c)], 1, c, read.is_some());
                        if read.is_none() {
                            self.buf.counts.missed_singles += 1;
                        }
                        read
                    }
                    _ => ct.map(|c| self.cts(c, 0.5)),
                };
                if cts.is_some() {
                    self.buf.counts.positive_singles += 1;
                }
                let reported = at + self.seconds(3 * HOUR, 10 * HOUR);
                self.first_stage_result(b"SG", serial, cts, reported, site);
            }
        }
        if pool.len > 0 {
            self.close_pool(&pool, site, pool_size);
        }
    }

    /// Writes a full (or a site's last) pool's result and, if positive, its retests.
    fn close_pool(&mut self, pool: &OpenPool, site: u64, size: u8) {
        let members = &pool.members[..pool.len];
        let cts = &pool.cts[..pool.len];
        let last = pool.start + POOL_STEP * secs(u64::try_from(pool.len - 1).unwrap_or(0));
        let pair = if self.cfg.ct_model {
            self.pool_reading(pool)
        } else {
            let lowest = cts.iter().flatten().copied().reduce(f64::min);
            lowest.map(|c| self.cts(c + f64::from(size).log2(), 0.5))
        };
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
            let blank = self.blank();
            push_collection(
                &mut self.buf.retest_collections,
                b"RT",
                serial,
                (self.cfg.ids, person),
                true,
                1,
                at,
                site,
                blank,
            );
            let pair = if self.cfg.ct_model {
                ct.and_then(|c| self.read_ct(c))
            } else {
                ct.map(|c| self.cts(c, 0.5))
            };
            let done = at + self.seconds(2 * HOUR, 6 * HOUR);
            let k = self.lab_retests[lab];
            self.lab_retests[lab] += 1;
            let plate = self.plate_base() + self.layout.lab_plates + k / PLATE_SAMPLES;
            let blank = self.blank();
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
                blank,
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
        let blank = self.blank();
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
            blank,
        );
    }

    fn plate_base(&self) -> u64 {
        self.chunk * 2 * self.layout.lab_plates
    }

    /// `ORF1ab` = `base` ± `spread`, N = `ORF1ab` ± 1.5, both in hundredths and below 38.
    fn cts(&mut self, base: f64, spread: f64) -> (u32, u32) {
        let orf = base + spread * (2.0 * unit(&mut self.rng) - 1.0);
        let n = orf + 1.5 * (2.0 * unit(&mut self.rng) - 1.0);
        (hundredths(orf), hundredths(n))
    }

    /// A viral-load Ct of the Ct model: normal, clipped.
    fn viral_ct(&mut self) -> f64 {
        let (lo, hi) = VIRAL_CT_RANGE;
        (VIRAL_CT_MEAN + VIRAL_CT_SD * self.normal()).clamp(lo, hi)
    }

    /// A standard normal draw (Box–Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        // In (0, 1]: the logarithm stays finite.
        let u1 = 1.0 - unit(&mut self.rng);
        let u2 = unit(&mut self.rng);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A tube of true Ct `ct` as the Ct model reads it: negative (`None`) at or above
    /// the cut-off, else `ORF1ab` = the reading and N = it ± 1.5, both below the cut-off.
    fn read_ct(&mut self, ct: f64) -> Option<(u32, u32)> {
        let orf = ct + CT_NOISE_SD * self.normal();
        if orf >= CT_CUTOFF {
            return None;
        }
        let n = orf + 1.5 * (2.0 * unit(&mut self.rng) - 1.0);
        Some((
            hundredths_below(orf, CT_MODEL_MAX),
            hundredths_below(n, CT_MODEL_MAX),
        ))
    }

    /// A pool's reading under the Ct model, and the truth of its infected members: the
    /// mix of `m` swabs is −log2(Σ 2^−Ct / m).
    fn pool_reading(&mut self, pool: &OpenPool) -> Option<(u32, u32)> {
        let mut infected = [(0u64, 0.0f64); MAX_POOL as usize];
        let mut n = 0;
        for (&person, ct) in pool.members[..pool.len].iter().zip(&pool.cts[..pool.len]) {
            if let Some(c) = ct {
                infected[n] = (person, *c);
                n += 1;
            }
        }
        if n == 0 {
            return None;
        }
        let infected = &infected[..n];
        let m = f64::from(u32::try_from(pool.len).unwrap_or(1));
        let load: f64 = infected.iter().map(|&(_, c)| (-c).exp2()).sum();
        let mix = -(load / m).log2();
        let read = self.read_ct(mix);
        let size = u8::try_from(pool.len).unwrap_or(MAX_POOL);
        self.record_truth(b"PL", pool.serial, infected, size, mix, read.is_some());
        if read.is_none() {
            self.buf.counts.missed_pools += 1;
        }
        read
    }

    /// Appends a `ct_truth.csv` row for each infected person of a first-stage tube.
    fn record_truth(
        &mut self,
        prefix: &[u8],
        serial: u64,
        infected: &[(u64, f64)],
        size: u8,
        tube_ct: f64,
        detected: bool,
    ) {
        use std::io::Write as _;
        for &(person, ct) in infected {
            let b = &mut self.buf.ct_truth;
            push_person(b, self.cfg.ids, person);
            // Infected persons are few: `write!` costs nothing that matters here.
            let _ = write!(b, ",{ct:.2},");
            push_tube(b, prefix, serial);
            let _ = writeln!(
                b,
                ",{size},{},{tube_ct:.2},{:.2},{detected}",
                infected.len(),
                tube_ct - ct
            );
        }
    }

    /// A whole number of seconds, uniform in `lo..=hi`.
    fn seconds(&mut self, lo: u64, hi: u64) -> i64 {
        secs(lo + below(&mut self.rng, hi - lo + 1))
    }
}

/// Uniform in \[0, 1) with 52 random bits.
pub(super) fn unit(rng: &mut Xoshiro256PlusPlus) -> f64 {
    f64::from_bits(0x3FF0_0000_0000_0000 | (rng.next_u64() >> 12)) - 1.0
}

/// Uniform in `0..n`, for `n` at most 2^32 (Lemire's multiply-shift on 32 bits).
pub(super) fn below(rng: &mut Xoshiro256PlusPlus, n: u64) -> u64 {
    debug_assert!(n > 0 && n <= 1 << 32);
    ((rng.next_u64() >> 32) * n) >> 32
}

/// Seconds as a time delta; every value here is far below `i64::MAX`.
pub(super) fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

fn lab_of(site: u64) -> usize {
    usize::try_from(site % LABS).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::CHUNK_PERSONS;

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
