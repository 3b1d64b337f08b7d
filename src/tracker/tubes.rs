//! Tube facts: a round's tubes numbered in barcode order by merging the segments' tube
//! indexes, the facts of every result row (joined to its tube in the same merge), and
//! each tube's mode and capacity settled from all its rows.

use super::NONE;
use super::limit::PastLimit;
use crate::Result;
use crate::model::{Mode, Outcome};
use crate::store::index::{self, TubeKey};
use crate::store::merge::{key_cmp, merge_scans};
use crate::store::{CollectionIndex, ResultIndex};
use crate::time::Millis;

/// Per-tube columns, indexed by tube number (tubes are numbered in barcode order).
#[derive(Default)]
pub struct Tubes {
    /// The tube's first collection row in the round.
    pub row: Vec<u32>,
    /// Persons recorded in it.
    pub members: Vec<u32>,
    /// Its mode as deconvolution reads it: a tube holding more than one person is a
    /// pool whatever its rows call it; a tube no row stated a mode for is a pool.
    pub mode: Vec<Mode>,
    /// The first mode any of its rows stated.
    pub stated_mode: Vec<Option<Mode>>,
    /// Persons it may hold: the first stated capacity, else the mode's default.
    pub capacity: Vec<u8>,
    /// Rows disagreed about its mode, capacity or site (flagged for review).
    pub conflict: Vec<bool>,
    /// Its effective result row, or [`NONE`].
    pub result: Vec<u32>,
    /// Positive kept against a later non-positive result.
    pub positive_kept: Vec<bool>,
    /// Result rows per tube: `result_rows[result_start[t]..result_start[t + 1]]`.
    pub result_start: Vec<u32>,
    /// Result rows sorted by tube, then time.
    pub result_rows: Vec<u32>,
    /// The tubes whose every result came past the specimen limit, by tube: no result
    /// counts and their persons need a resample ([`super::limit`]).
    pub past_limit: Vec<PastLimit>,
    /// The first swab of each tube with a result past the specimen limit, by tube.
    pub late_first_swab: Vec<(u32, Millis)>,
}

impl Tubes {
    /// Number of tubes.
    pub fn len(&self) -> usize {
        self.row.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.row.is_empty()
    }

    /// The first swab of tube `t`, when some result of it came past the specimen limit.
    pub fn first_swab_if_late(&self, t: usize) -> Option<Millis> {
        let t = u32::try_from(t).ok()?;
        self.late_first_swab
            .binary_search_by_key(&t, |&(x, _)| x)
            .ok()
            .map(|i| self.late_first_swab[i].1)
    }

    /// Tube `t`'s results all came past the specimen limit: which stands in for them.
    // Inline: deciding asks it once per tube, from another module, of a list nearly
    // always empty.
    #[inline]
    pub fn past_limit_of(&self, t: usize) -> Option<&PastLimit> {
        if self.past_limit.is_empty() {
            return None;
        }
        let t = u32::try_from(t).ok()?;
        self.past_limit
            .binary_search_by_key(&t, |p| p.tube)
            .ok()
            .map(|i| &self.past_limit[i])
    }
}

/// What the status rules need of each result row.
#[derive(Default)]
pub struct ResultFacts {
    /// Outcome of each result row.
    pub outcome: Vec<Outcome>,
    /// Ct `ORF1ab`, NaN for none (as the index stores it: half the size of an `Option`).
    pub ct_orf1ab: Vec<f32>,
    /// Ct N, NaN for none.
    pub ct_n: Vec<f32>,
    /// Report time.
    pub reported_at: Vec<Millis>,
    /// The tube of each result row, or [`NONE`] for plate controls (not tubes).
    pub tube: Vec<u32>,
    /// Results that do not count: their plate's controls failed.
    pub void: Vec<bool>,
    /// Results that do not count: reported past the specimen limit after their tube's
    /// first swab. Empty when none is.
    pub late: Vec<bool>,
}

impl ResultFacts {
    /// A result row's two Ct values.
    // Inline: deciding reads it once per tube, from another module.
    #[inline]
    pub fn cts(&self, row: usize) -> (Option<f32>, Option<f32>) {
        let ct = |v: f32| (!v.is_nan()).then_some(v);
        (ct(self.ct_orf1ab[row]), ct(self.ct_n[row]))
    }

    /// Whether result row `row` was reported past the specimen limit.
    #[inline]
    pub fn is_late(&self, row: usize) -> bool {
        self.late.get(row).copied().unwrap_or(false)
    }

    /// Whether result row `row` is on a failed plate.
    #[inline]
    pub fn is_void(&self, row: usize) -> bool {
        self.void.get(row).copied().unwrap_or(false)
    }
}

// Inline: it runs per tube inside the merge, which is compiled with `merge_scans` in
// another module.
#[inline]
fn key_of(r: &[u8]) -> TubeKey {
    let mut k = [0u8; index::KEY];
    k.copy_from_slice(&r[..index::KEY]);
    k
}

/// What numbering the tubes gives.
pub(super) struct Numbered {
    pub(super) tubes: Tubes,
    /// Facts of each result row, with its tube.
    pub(super) results: ResultFacts,
    /// The tube of each tube-index record, per segment.
    pub(super) run_tube: Vec<Vec<u32>>,
    /// The tube of each row, when asked for.
    pub(super) tube_of_row: Vec<u32>,
    /// Whether the records cover every row.
    pub(super) covered: bool,
}

/// Numbers the round's tubes in barcode order by merging the segments' sorted tube
/// indexes, and reads every result row's facts from the result indexes, finding its
/// tube in the same merge: a result record comes after the tube records of its key,
/// so its tube is the last one numbered if the keys match. Nothing per tube beyond
/// the last key is kept for the join (the barcodes of 3.6 M tubes took 115 MB).
pub(super) fn number_tubes(
    segs: &[&CollectionIndex],
    rsegs: &[&ResultIndex],
    (n_rows, n_results): (usize, usize),
    fill: bool,
) -> Result<Numbered> {
    // Records bound the tubes from above. Reserving that much costs nothing untouched,
    // while growing by doubling copies and holds up to twice the final size.
    let records: usize = segs.iter().map(|s| s.tubes.len()).sum();
    let mut tubes = Tubes {
        row: Vec::with_capacity(records),
        members: Vec::with_capacity(records),
        ..Tubes::default()
    };
    let mut meta: Vec<index::TubeMeta> = Vec::with_capacity(records);
    let mut facts = ResultFacts {
        outcome: vec![Outcome::Invalid; n_results],
        ct_orf1ab: vec![f32::NAN; n_results],
        ct_n: vec![f32::NAN; n_results],
        reported_at: vec![0; n_results],
        tube: vec![NONE; n_results],
        void: Vec::new(),
        late: Vec::new(),
    };
    let mut last: Option<TubeKey> = None;
    let mut tube_of_row = if fill { vec![NONE; n_rows] } else { Vec::new() };
    // Rows the records cover: a row no record names means the store is damaged.
    let mut seen = vec![0u64; n_rows.div_ceil(64)];
    let mut run_tube: Vec<Vec<u32>> = segs
        .iter()
        .map(|s| Vec::with_capacity(s.tubes.len()))
        .collect();
    let mut visit_tube = |s: usize, r: &[u8]| {
        let key = &r[..index::KEY];
        if last.is_none_or(|k| key_cmp(&k, key, index::KEY).is_ne()) {
            last = Some(key_of(r));
            tubes.row.push(NONE);
            tubes.members.push(0);
            meta.push(index::TubeMeta::of_record(r));
        } else if let Some(m) = meta.last_mut() {
            // A later batch's record: fills in what earlier ones had not stated.
            m.settle(index::TubeMeta::of_record(r));
        }
        let id = u32::try_from(tubes.row.len() - 1).unwrap_or(NONE);
        run_tube[s].push(id);
        let first = segs[s].base.saturating_add(index::u32_at(r, 32));
        let rows = index::u32_at(r, 36);
        let t = id as usize;
        tubes.members[t] += rows;
        tubes.row[t] = tubes.row[t].min(first);
        let (a, b) = (first as usize, (first as usize + rows as usize).min(n_rows));
        if a < b {
            if fill {
                tube_of_row[a..b].fill(id);
            }
            set_bits(&mut seen, a, b);
        }
        (last, tubes.row.len())
    };
    let visit_result =
        |facts: &mut ResultFacts, s: usize, r: &[u8], last: (Option<TubeKey>, usize)| {
            let row = rsegs[s].base.saturating_add(index::u32_at(r, 32)) as usize;
            if row >= n_results {
                return;
            }
            if let (Some(k), n) = last
                && k.as_slice() == &r[..index::KEY]
            {
                facts.tube[row] = u32::try_from(n - 1).unwrap_or(NONE);
            }
            facts.outcome[row] = Outcome::from_code(r[36]).unwrap_or(Outcome::Invalid);
            facts.reported_at[row] = index::i64_at(r, 40);
            facts.ct_orf1ab[row] = index::ct_at(r, 48).unwrap_or(f32::NAN);
            facts.ct_n[row] = index::ct_at(r, 52).unwrap_or(f32::NAN);
        };
    // Equal keys come out tubes first, then segment by segment in manifest order.
    let mut scans: Vec<index::Scan<'_>> = segs
        .iter()
        .map(|s| s.tubes.scan(0..s.tubes.len()))
        .chain(rsegs.iter().map(|s| s.tubes.scan(0..s.tubes.len())))
        .collect();
    let n_tube_scans = segs.len();
    let mut at = (None, 0);
    merge_scans(&mut scans, index::KEY, |i, r| {
        if i < n_tube_scans {
            at = visit_tube(i, r);
        } else {
            visit_result(&mut facts, i - n_tube_scans, r, at);
        }
    })?;
    drop(scans);
    settle_tubes(&mut tubes, &meta);
    let covered = (0..n_rows / 64).all(|w| seen[w] == u64::MAX)
        && (n_rows.is_multiple_of(64) || seen[n_rows / 64] == (1u64 << (n_rows % 64)) - 1);
    Ok(Numbered {
        tubes,
        results: facts,
        run_tube,
        tube_of_row,
        covered,
    })
}

/// Sets each tube's mode and capacity as the rules read them from its settled
/// metadata and member count. A tube holding more than one person is deconvoluted as
/// a pool whatever its rows call it: its positive recalls everyone in it and makes
/// no one positive, as no one of them was tested alone.
fn settle_tubes(tubes: &mut Tubes, meta: &[index::TubeMeta]) {
    tubes.stated_mode = meta.iter().map(|m| m.mode).collect();
    tubes.conflict = meta.iter().map(|m| m.conflict).collect();
    tubes.capacity = meta.iter().map(|m| m.effective_capacity()).collect();
    tubes.mode = meta
        .iter()
        .zip(&tubes.members)
        .map(|(m, &members)| m.deconvolution_mode(members))
        .collect();
}

/// Sets bits `a..b` of a bitmap.
// Inline: it runs per record inside the merge, which is compiled with `merge_scans` in
// another module.
#[inline]
fn set_bits(bits: &mut [u64], a: usize, b: usize) {
    let mut i = a;
    while i < b {
        let (w, o) = (i / 64, i % 64);
        let n = (64 - o).min(b - i);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << o
        };
        bits[w] |= mask;
        i += n;
    }
}

/// The tube of each of `rows` (ascending), found by one pass over the tube indexes.
pub(super) fn tubes_of_rows(
    segs: &[&CollectionIndex],
    run_tube: &[Vec<u32>],
    rows: &[u32],
) -> Result<Vec<(u32, u32)>> {
    let mut out: Vec<(u32, u32)> = rows.iter().map(|&r| (r, NONE)).collect();
    for (seg, run_tube) in segs.iter().zip(run_tube) {
        let mut scan = seg.tubes.scan(0..seg.tubes.len());
        while let Some((i, r)) = scan.record()? {
            let first = seg.base.saturating_add(index::u32_at(r, 32));
            let end = first.saturating_add(index::u32_at(r, 36));
            let mut at = rows.partition_point(|&x| x < first);
            while at < rows.len() && rows[at] < end {
                out[at].1 = run_tube.get(i).copied().unwrap_or(NONE);
                at += 1;
            }
        }
    }
    Ok(out)
}
