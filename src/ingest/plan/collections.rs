//! Planning a collections batch: each tube's rows checked together, against each
//! other and against the store, on all cores.

use std::collections::HashMap;

use rayon::prelude::*;

use super::{Plan, flag};
use crate::column::LabelColumn;
use crate::fasthash::KeyHash;
use crate::ingest::reject::{Rejects, Severity, Where};
use crate::model::Mode;
use crate::rows::CollectionRows;
use crate::store::StoreIndex;
use crate::store::custody::Stored;
use crate::store::index::{TubeMeta, tube_key};
use crate::store::segment::{Scan, SegmentPlan};

fn describe(mode: Option<Mode>, cap: u8) -> String {
    let cap = |what: &str| match cap {
        0 => format!("{what} of unstated capacity"),
        c => format!("{what} of capacity {c}"),
    };
    match mode {
        Some(Mode::Single) => "single tube".to_owned(),
        Some(Mode::Pool) => cap("pool"),
        None => cap("tube of unstated mode"),
    }
}

/// The round's box manifest as the store records it: each boxed tube's first sealed
/// row (`ingest boxes`, or an earlier collections batch with a `box` column).
pub(crate) type StoredBoxes<'a> = HashMap<&'a str, &'a Stored, KeyHash>;

/// The first sealed row of each tube among a round's custody rows.
pub(crate) fn stored_boxes(custody: &[Stored]) -> StoredBoxes<'_> {
    let mut out = StoredBoxes::with_hasher(KeyHash);
    for s in custody.iter().filter(|s| s.kind == Scan::Sealed) {
        if let (Some(t), Some(_)) = (&s.tube, &s.box_id) {
            out.entry(t.as_str()).or_insert(s);
        }
    }
    out
}

/// Batches of this many rows and more probe the store's tube indexes through fresh
/// mappings. The library's own tests always do, so their batches go through them as
/// a city's does.
const REMAP_ROWS: usize = if cfg!(test) { 1 } else { 1 << 16 };

/// Plans a collections batch into `round`: one segment, of the rows kept, in input
/// order; and, when the batch has a `box` column, the rows that record the round's box
/// manifest ([`Plan::boxed`]), checked against the boxes the store holds (`stored`).
pub(crate) fn plan_collections(
    rows: &CollectionRows,
    round: &str,
    index: &StoreIndex,
    stored: &StoredBoxes<'_>,
    labels: &[String],
    rejects: &mut Rejects,
) -> Plan {
    // Whole tubes in the grouping's few hundred spans, checked on all cores; the spans'
    // findings are joined in span order, which is the order one pass would find them.
    let (order, cuts) = group_by_tube(rows);
    // Each span probes the store's tube indexes through mappings of its own when there
    // are several spans, and drops them after: one mapping for the whole batch kept
    // every page it touched resident (a city's second batch touches all of the first's
    // index). A lab's batch of thousands of rows touches few pages and maps nothing anew.
    let several = rows.len() >= REMAP_ROWS && cuts.len() > 2;
    let checked: Vec<Checked> = cuts
        .par_windows(2)
        .map(|w| {
            index.probe(several, |index| {
                check_tubes(rows, &order[w[0]..w[1]], round, index, stored, labels)
            })
        })
        .collect();
    drop(order);
    let mut dropped = Vec::new();
    let mut settled = Vec::new();
    let mut boxed = Vec::new();
    let mut overfull = 0;
    for c in checked {
        dropped.extend(c.dropped);
        settled.extend(c.settled);
        boxed.extend(c.boxed);
        rejects.rows.extend(c.rejects.rows);
        overfull += c.overfull;
    }
    settled.par_sort_unstable_by_key(|&(r, _)| r);
    boxed.par_sort_unstable();
    // Committed in input order (see `segment::write_collections`): every row but the
    // few dropped. The checks list those rather than the kept rows, so a city's batch
    // never holds a second and third list of all its rows beside the grouping's.
    dropped.par_sort_unstable();
    let keep = kept_rows(rows.len(), &dropped);
    let mut seg = SegmentPlan::new(round);
    seg.order = keep;
    seg.settled = settled;
    Plan {
        segments: vec![seg],
        overfull,
        positives_kept: 0,
        boxed,
    }
}

/// Rows `0..n` but `dropped` (ascending), in order.
fn kept_rows(n: usize, dropped: &[u32]) -> Vec<u32> {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let mut keep = Vec::with_capacity((n as usize).saturating_sub(dropped.len()));
    let mut from = 0;
    for &d in dropped.iter().chain(std::iter::once(&n)) {
        keep.extend(from..d.min(n));
        from = d.saturating_add(1);
    }
    keep
}

/// What checking a span of tubes found.
struct Checked {
    /// The rows not kept (a repeated membership, a barcode of another round).
    dropped: Vec<u32>,
    /// The rows whose tube's settled metadata differs from what they state (ascending).
    settled: Vec<(u32, TubeMeta)>,
    /// The rows that record a tube's box (one a tube, not in order).
    boxed: Vec<u32>,
    /// The problems found.
    rejects: Rejects,
    /// The number of overfull tubes.
    overfull: u64,
}

/// Checks the rows `order` (whole tubes, a tube's rows together) against each other and
/// the store.
///
/// A row is refused only when it cannot be placed (its barcode belongs to another
/// round); a repeat of a membership is kept once. Everything else a row says about its
/// tube is metadata: the tube keeps the first mode and capacity any of its rows stated
/// (in the store, then in this batch in input order; a repeat of a membership an earlier
/// batch recorded states nothing, as the store keeps no row of it), a row stating other values is
/// kept with a warning, and the tube is flagged for review. A box is metadata as well
/// (see [`tube_box`]).
fn check_tubes(
    rows: &CollectionRows,
    order: &[u32],
    round: &str,
    index: &StoreIndex,
    stored: &StoredBoxes<'_>,
    labels: &[String],
) -> Checked {
    let mut rejects = Rejects::default();
    let rejects = &mut rejects;
    let this_round = index.round_id(round);
    let mut dropped = Vec::new();
    // The rows kept of the tube being checked.
    let mut keep = Vec::new();
    let mut settled_rows = Vec::new();
    let mut overfull = 0;
    // Files without a `box` column cost no work per tube beyond this test.
    let has_boxes = !rows.box_id.is_empty();
    let mut boxed = Vec::new();
    let mut other_boxes: Vec<(u32, u32)> = Vec::new();
    // Per row of the tube being checked: already a member by an earlier batch.
    let mut repeats: Vec<bool> = Vec::new();
    // `Where::row`, not a closure: each call borrows its own person id's text.
    let batch = (labels, &rows.source);
    let row_no = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    let mut start = 0;
    while start < order.len() {
        let tube = rows.tube.get(order[start] as usize);
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| rows.tube.bytes(i as usize) == tube.as_bytes())
                .count();
        let group = &order[start..end];
        start = end;
        let key = tube_key(tube);
        let facts = index.tube(&key);
        if let Some(f) = facts
            && Some(f.round) != this_round
        {
            for &i in group {
                let i = i as usize;
                let why = format!(
                    "tube {tube} was collected in round {}; a barcode serves one round only",
                    index.round_name(f.round)
                );
                flag(
                    rejects,
                    &Where::row(batch, i, tube, rows.person.get(i).as_str()),
                    Severity::Error,
                    "tube",
                    why,
                );
                dropped.push(row_no(i));
            }
            continue;
        }
        // A repeat of a membership an earlier batch recorded is not stored, so what it
        // states about the tube must not settle the tube either: the metadata a tube
        // keeps always comes from a row the store holds.
        repeats.clear();
        if facts.is_some() {
            let members = index.members(&key);
            repeats.extend(
                group
                    .iter()
                    .map(|&i| members.has(rows.person.key(i as usize, index.person_keys()))),
            );
        } else {
            repeats.resize(group.len(), false);
        }
        // The group is in person order: the first row to state a value is the one
        // earliest in the input.
        let first_stating = |states: &dyn Fn(usize) -> bool| {
            group
                .iter()
                .zip(&repeats)
                .filter(|&(_, &repeat)| !repeat)
                .map(|(&i, _)| i as usize)
                .filter(|&i| states(i))
                .min()
        };
        let mut meta = facts.map_or_else(TubeMeta::default, |f| TubeMeta {
            conflict: false,
            ..f.meta
        });
        if let Some(i) = first_stating(&|i| rows.mode[i].is_some()) {
            meta.settle(TubeMeta::stated(rows.mode[i], 0));
        }
        if let Some(i) = first_stating(&|i| rows.capacity[i] != 0) {
            meta.settle(TubeMeta::stated(None, rows.capacity[i]));
        }
        // The row that first states a site; sites compare by their interned keys, and
        // the text is read only for a warning.
        let site = first_stating(&|i| rows.site.key(i) != LabelColumn::MISSING);
        let mut members = facts.map_or(0, |f| f.members);
        let mut prev: Option<usize> = None;
        let mut first_kept = None;
        keep.clear();
        for (&i, &repeat) in group.iter().zip(&repeats) {
            let i = i as usize;
            let person = || rows.person.get(i);
            if !repeat && let Some(why) = disagreement(tube, meta, site, rows, i) {
                meta.conflict = true;
                flag(
                    rejects,
                    &Where::row(batch, i, tube, person().as_str()),
                    Severity::Warning,
                    why.0,
                    why.1,
                );
            }
            if prev.is_some_and(|p| rows.person.same(p, i)) {
                let why = "the same person was scanned into this tube twice; kept once".to_owned();
                flag(
                    rejects,
                    &Where::row(batch, i, tube, person().as_str()),
                    Severity::Warning,
                    "person",
                    why,
                );
                dropped.push(row_no(i));
                continue;
            }
            prev = Some(i);
            if repeat {
                let why =
                    "this person is already recorded in this tube by an earlier batch; kept once"
                        .to_owned();
                flag(
                    rejects,
                    &Where::row(batch, i, tube, person().as_str()),
                    Severity::Warning,
                    "person",
                    why,
                );
                dropped.push(row_no(i));
                continue;
            }
            if meta.mode == Some(Mode::Single) && members >= 1 {
                let why = format!(
                    "tube {tube} is a single tube and already holds another person: kept (the swab is in the tube); a tube holding more than one person is read as a pool, so a positive recalls everyone in it, and it is flagged for review"
                );
                flag(
                    rejects,
                    &Where::row(batch, i, tube, person().as_str()),
                    Severity::Warning,
                    "person",
                    why,
                );
            }
            members += 1;
            first_kept.get_or_insert(i);
            keep.push(row_no(i));
        }
        for &k in &keep {
            let i = k as usize;
            if meta != TubeMeta::stated(rows.mode[i], rows.capacity[i]) {
                settled_rows.push((k, meta));
            }
        }
        if has_boxes {
            let found = tube_box(rows, &keep, stored.get(tube).copied(), &mut other_boxes);
            boxed.extend(found.record);
            for (k, standing) in found.refused {
                let i = k as usize;
                let b = rows.box_id.get_opt(i).unwrap_or_default();
                let why = format!(
                    "tube {tube} is already in box {}: a tube travels in one box, so the box manifest keeps {} and does not record box {b}; the membership is kept",
                    standing.describe(rows, labels),
                    standing.box_id(rows),
                );
                rejects.push(
                    &Where::row(batch, i, tube, rows.person.get(i).as_str()),
                    Severity::Warning,
                    "box",
                    why,
                    b.as_bytes(),
                );
            }
        }
        let cap = meta.effective_capacity();
        if let Some(i) = first_kept
            && members > u32::from(cap)
        {
            overfull += 1;
            let why = format!(
                "tube {tube} now holds {members} persons, more than its capacity of {cap}: kept and flagged for review"
            );
            flag(
                rejects,
                &Where::row(batch, i, tube, ""),
                Severity::Warning,
                "capacity",
                why,
            );
        }
    }
    settled_rows.sort_unstable_by_key(|&(r, _)| r);
    Checked {
        dropped,
        settled: settled_rows,
        boxed,
        rejects: std::mem::take(rejects),
        overfull,
    }
}

/// The box a tube travels in, as the box manifest has it.
#[derive(Clone, Copy)]
enum Standing<'a> {
    /// Recorded by the store.
    Stored(&'a Stored),
    /// Stated first (in input order) by this batch's row.
    Row(u32),
}

impl Standing<'_> {
    fn box_id<'r>(&'r self, rows: &'r CollectionRows) -> &'r str {
        match self {
            Standing::Stored(s) => s.box_id.as_deref().unwrap_or_default(),
            Standing::Row(r) => rows.box_id.get_opt(*r as usize).unwrap_or_default(),
        }
    }

    /// The box and where it was stated, for a warning.
    fn describe(&self, rows: &CollectionRows, labels: &[String]) -> String {
        match self {
            Standing::Stored(s) => format!(
                "{} ({} line {}, batch {})",
                self.box_id(rows),
                s.source,
                s.line,
                s.batch
            ),
            Standing::Row(r) => {
                let i = *r as usize;
                let (file, line) = rows.source.get(i);
                let file = labels.get(usize::from(file)).map_or("", String::as_str);
                format!("{} ({file} line {line})", self.box_id(rows))
            }
        }
    }
}

/// What a tube's rows say about its box.
struct TubeBox<'a> {
    /// The row to record in the box manifest, if the tube's box is new to it.
    record: Option<u32>,
    /// Rows naming another box than the one the tube stands in, each other box once
    /// (at its first row), with the box that stands.
    refused: Vec<(u32, Standing<'a>)>,
}

/// The box of a tube from its kept rows (`kept`: committed memberships, any order) and
/// the box the store records for it (`stored`). A blank box is not stated; the first
/// row (in input order) that states one puts the tube in that box unless the store
/// already has it in a box; a pool's other rows naming the same box are the same fact;
/// a row naming another box is refused for the manifest only (its membership is
/// committed all the same). `scratch` is room reused from tube to tube.
fn tube_box<'a>(
    rows: &CollectionRows,
    kept: &[u32],
    stored: Option<&'a Stored>,
    scratch: &mut Vec<(u32, u32)>,
) -> TubeBox<'a> {
    let stating = || {
        kept.iter()
            .copied()
            .filter(|&k| rows.box_id.key(k as usize) != LabelColumn::MISSING)
    };
    let none = TubeBox {
        record: None,
        refused: Vec::new(),
    };
    let Some(first) = stating().min() else {
        return none;
    };
    let (standing, record) = match stored {
        Some(s) => (Standing::Stored(s), None),
        None => (Standing::Row(first), Some(first)),
    };
    let first_key = rows.box_id.key(first as usize);
    let same = |k: u32| match stored {
        Some(s) => rows.box_id.get_opt(k as usize) == s.box_id.as_deref(),
        None => rows.box_id.key(k as usize) == first_key,
    };
    // Nearly always every row names the same box: nothing is gathered.
    if stating().all(same) {
        return TubeBox { record, ..none };
    }
    scratch.clear();
    scratch.extend(
        stating()
            .filter(|&k| !same(k))
            .map(|k| (rows.box_id.key(k as usize), k)),
    );
    scratch.sort_unstable();
    scratch.dedup_by_key(|&mut (key, _)| key);
    let mut refused: Vec<(u32, Standing<'a>)> =
        scratch.iter().map(|&(_, k)| (k, standing)).collect();
    refused.sort_unstable_by_key(|&(k, _)| k);
    TubeBox { record, refused }
}

/// What row `i` says about its tube that differs from the tube's settled metadata
/// (`meta`, and the row that first states a `site`): the column and the warning.
fn disagreement(
    tube: &str,
    meta: TubeMeta,
    site: Option<usize>,
    rows: &CollectionRows,
    i: usize,
) -> Option<(&'static str, String)> {
    let kept = "the row is kept (the swab is in the tube) and the tube is flagged for review";
    let (mode, cap) = (rows.mode[i], rows.capacity[i]);
    if mode.is_some() && mode != meta.mode || cap != 0 && cap != meta.capacity {
        let said = describe(
            mode.or(meta.mode),
            if cap == 0 { meta.capacity } else { cap },
        );
        let column = if mode.is_some() && mode != meta.mode {
            "mode"
        } else {
            "capacity"
        };
        let why = format!(
            "tube {tube} is a {}, as its first rows state; this row says {said}: {kept} (conflicting_tube_rows)",
            describe(meta.mode, meta.capacity)
        );
        return Some((column, why));
    }
    let (first, this) = (site.map(|r| rows.site.key(r))?, rows.site.key(i));
    if this == LabelColumn::MISSING || this == first {
        return None;
    }
    match (
        site.and_then(|r| rows.site.get_opt(r)),
        rows.site.get_opt(i),
    ) {
        (Some(first), Some(this)) => Some((
            "site",
            format!(
                "tube {tube} was collected at site {first}, as its first rows state; this row says {this}: {kept} (conflicting_tube_rows)"
            ),
        )),
        _ => None,
    }
}

/// A run's barcode hash, its number and its first row.
type RunKey = (u64, u32, u32);

/// The runs of a tube's consecutive rows (their first rows) and each run's group: the
/// tubes numbered in order of first appearance; returns the number of groups too.
///
/// Input nearly always has a tube's rows together, so only runs are looked up, and a
/// city's few million lookups in one table missed the cache each time (0.85 s at 25 M
/// rows). Runs are split by their barcode hash's top byte into 256 parts, each small
/// enough for its own table to stay in cache, on all cores; a part keeps input order,
/// so each run learns the first run of its tube, and one pass numbers the tubes.
fn group_runs<'a>(
    n: usize,
    tube: impl Fn(usize) -> &'a [u8] + Sync,
    hash: impl Fn(&[u8]) -> u64 + Sync,
) -> (Vec<u32>, Vec<u32>, usize) {
    const PARTS: usize = 256;
    let row = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    let runs: Vec<u32> = (0..n)
        .into_par_iter()
        .filter(|&i| i == 0 || tube(i) != tube(i - 1))
        .map(row)
        .collect();
    let hashes: Vec<u64> = runs.par_iter().map(|&r| hash(tube(r as usize))).collect();
    let part_of = |h: u64| usize::from(h.to_be_bytes()[0]);
    let mut start = [0usize; PARTS + 1];
    for &h in &hashes {
        start[part_of(h) + 1] += 1;
    }
    for p in 0..PARTS {
        start[p + 1] += start[p];
    }
    // (hash, run, its first row) by part, each part in run order.
    let mut next = start;
    let mut by_part: Vec<RunKey> = vec![(0, 0, 0); runs.len()];
    for (r, (&h, &first_row)) in hashes.iter().zip(&runs).enumerate() {
        let at = &mut next[part_of(h)];
        by_part[*at] = (h, row(r), first_row);
        *at += 1;
    }
    drop(hashes);
    // For each run (in part order), the first run of its tube. Tables are keyed by the
    // 64-bit hash, so a lookup reads no barcode; a hit is confirmed by comparing
    // barcodes, and two tubes sharing a hash go to an exact table.
    let mut first = vec![0u32; runs.len()];
    let mut pieces: Vec<(&[RunKey], &mut [u32])> = Vec::with_capacity(PARTS);
    let mut rest = first.as_mut_slice();
    for p in 0..PARTS {
        let (head, tail) = rest.split_at_mut(start[p + 1] - start[p]);
        pieces.push((&by_part[start[p]..start[p + 1]], head));
        rest = tail;
    }
    pieces.into_par_iter().for_each_init(
        || {
            (
                HashMap::<u64, (u32, u32), KeyHash>::with_hasher(KeyHash),
                HashMap::<&[u8], u32, KeyHash>::with_hasher(KeyHash),
            )
        },
        |(seen, exact), (members, out)| {
            seen.clear();
            seen.reserve(members.len());
            exact.clear();
            for (&(h, r, i), first) in members.iter().zip(out.iter_mut()) {
                let (f, j) = *seen.entry(h).or_insert((r, i));
                *first = if f == r || tube(j as usize) == tube(i as usize) {
                    f
                } else {
                    *exact.entry(tube(i as usize)).or_insert(r)
                };
            }
        },
    );
    let mut first_of_run = vec![0u32; runs.len()];
    for (&(_, r, _), &f) in by_part.iter().zip(&first) {
        first_of_run[r as usize] = f;
    }
    drop((by_part, first));
    let mut groups = 0usize;
    let mut group = vec![0u32; runs.len()];
    for r in 0..runs.len() {
        let f = first_of_run[r] as usize;
        group[r] = if f == r {
            groups += 1;
            row(groups - 1)
        } else {
            group[f]
        };
    }
    (runs, group, groups)
}

/// Row numbers with each tube's rows together (tubes in order of first appearance) and,
/// within a tube, sorted by person. Sorting all rows by string would cost seconds at
/// city scale; input nearly always arrives with a tube's rows together already, so
/// only runs are looked up (see [`group_runs`]), and a stable counting sort by group,
/// a run at a time, leaves such input in place.
///
/// Also returns where the spans of whole tubes it sorts on all cores start in that
/// order, ending with the row count, for the checks to run on the same spans.
fn group_by_tube(rows: &CollectionRows) -> (Vec<u32>, Vec<usize>) {
    let n = rows.len();
    let tube = |i: usize| rows.tube.bytes(i);
    let (runs, group, groups) = group_runs(n, tube, xxhash_rust::xxh3::xxh3_64);
    let run_rows = |r: usize| {
        let from = runs[r] as usize;
        from..runs.get(r + 1).map_or(n, |&e| e as usize)
    };
    let mut start = vec![0u32; groups + 1];
    for (r, &g) in group.iter().enumerate() {
        start[g as usize + 1] += u32::try_from(run_rows(r).len()).unwrap_or(u32::MAX);
    }
    for g in 0..groups {
        start[g + 1] += start[g];
    }
    let mut next = start.clone();
    let mut order = vec![0u32; n];
    for (r, &g) in group.iter().enumerate() {
        let at = &mut next[g as usize];
        for i in run_rows(r) {
            order[*at as usize] = u32::try_from(i).unwrap_or(u32::MAX);
            *at += 1;
        }
    }
    drop((runs, group, next));
    // Within a tube, by person then input order: duplicates become neighbours. The
    // tubes are cut into a few hundred spans of whole tubes, sorted on all cores (a
    // slice per tube cost 16 bytes for each of 3.6 million tubes).
    let spans = 256;
    let step = start.len().div_ceil(spans).max(1);
    let mut pieces: Vec<(&mut [u32], &[u32])> = Vec::with_capacity(spans);
    let mut cuts = Vec::with_capacity(spans + 1);
    let mut rest = order.as_mut_slice();
    let mut from = 0;
    for bounds in start.chunks(step) {
        let (Some(&first), Some(&last)) = (bounds.first(), bounds.last()) else {
            continue;
        };
        let end = start.get(from + bounds.len()).copied().unwrap_or(last);
        let (head, tail) = rest.split_at_mut((end - first) as usize);
        pieces.push((head, bounds));
        cuts.push(first as usize);
        rest = tail;
        from += bounds.len();
    }
    cuts.push(n);
    cuts.dedup();
    pieces.into_par_iter().for_each(|(piece, bounds)| {
        let base = bounds.first().copied().unwrap_or(0);
        let mut tubes = bounds.iter().peekable();
        while let Some(&a) = tubes.next() {
            let end = base.saturating_add(u32::try_from(piece.len()).unwrap_or(u32::MAX));
            let b = tubes.peek().map_or(end, |&&b| b);
            let g = &mut piece[(a - base) as usize..(b - base) as usize];
            if g.len() > 1 {
                g.sort_unstable_by(|&a, &b| {
                    rows.person.cmp(a as usize, b as usize).then(a.cmp(&b))
                });
            }
        }
    });
    (order, cuts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tubes interleaved as sampling stations fill several at once, some returning
    /// after many others, with persons out of order within a tube.
    fn interleaved() -> CollectionRows {
        let mut rows = CollectionRows::default();
        let mut x = 7u64;
        for i in 0..5000u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let tube = match x >> 60 {
                0..=9 => i / 7,
                10..=13 => i / 7 + 1,
                _ => (x >> 20) % (i / 7 + 1),
            };
            rows.tube.push(&format!("PL{tube:09}"));
            rows.person.push(&format!("P{}", (x >> 33) % 50));
            rows.mode.push(Some(Mode::Pool));
        }
        rows
    }

    #[test]
    fn the_kept_rows_are_every_row_but_the_dropped_in_order() {
        assert_eq!(kept_rows(5, &[]), [0, 1, 2, 3, 4]);
        assert_eq!(kept_rows(5, &[0, 2, 4]), [1, 3]);
        assert_eq!(kept_rows(3, &[0, 1, 2]), [0u32; 0]);
        assert_eq!(kept_rows(0, &[]), [0u32; 0]);
    }

    /// Tubes by first appearance, rows within a tube by person, then row.
    fn naive(rows: &CollectionRows) -> Vec<u32> {
        let mut tubes: Vec<&str> = Vec::new();
        for i in 0..rows.tube.len() {
            let t = rows.tube.get(i);
            if !tubes.contains(&t) {
                tubes.push(t);
            }
        }
        let mut order = Vec::new();
        for t in tubes {
            let mut g: Vec<u32> = (0..rows.tube.len())
                .filter(|&i| rows.tube.get(i) == t)
                .map(|i| u32::try_from(i).expect("small"))
                .collect();
            g.sort_by_key(|&i| (rows.person.get(i as usize).to_string(), i));
            order.extend(g);
        }
        order
    }

    #[test]
    fn tubes_group_in_order_of_first_appearance() {
        let rows = interleaved();
        let (order, cuts) = group_by_tube(&rows);
        assert_eq!(order, naive(&rows));
        // The spans the checks run on hold whole tubes and cover every row.
        assert_eq!((cuts.first(), cuts.last()), (Some(&0), Some(&order.len())));
        assert!(cuts.len() > 2);
        for &c in &cuts[1..cuts.len() - 1] {
            let tube = |k: usize| rows.tube.get(order[k] as usize);
            assert_ne!(tube(c), tube(c - 1), "span cut at {c} splits a tube");
        }
    }

    /// The interleaved rows with a box each: mostly the tube's own, sometimes blank,
    /// sometimes another tube's box.
    fn boxed() -> CollectionRows {
        let mut rows = interleaved();
        let mut x = 11u64;
        for i in 0..rows.len() {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let own = rows.tube.get(i)[2..].parse::<u64>().expect("a number") / 40;
            let b = match x >> 59 {
                0..=2 => None,
                3 => Some(format!("BX{:04}", own + 1 + (x >> 40) % 3)),
                _ => Some(format!("BX{own:04}")),
            };
            rows.box_id.push_opt(b.as_deref());
        }
        rows
    }

    /// `rows` with the columns the checks read besides tube, person and mode; line
    /// numbers are row numbers, so a warning's line names its row.
    fn checkable(mut rows: CollectionRows) -> CollectionRows {
        for i in 0..rows.len() {
            rows.source.push(0, u32::try_from(i).expect("small"));
            rows.capacity.push(0);
            rows.collected_at.push(0);
            rows.site.push_opt(None);
        }
        rows
    }

    /// For each tube, in input order: the first row naming a box is recorded, unless
    /// the store has the tube (then nothing is); every other box named for the tube
    /// is refused once, at its first row.
    fn naive_boxes(
        rows: &CollectionRows,
        stored: &HashMap<String, String>,
    ) -> (Vec<u32>, Vec<u32>) {
        let mut first: HashMap<&str, &str> = HashMap::new();
        let mut refused_pairs: Vec<(&str, &str)> = Vec::new();
        let mut members: Vec<(&str, String)> = Vec::new();
        let (mut record, mut refused) = (Vec::new(), Vec::new());
        for i in 0..rows.len() {
            // A person scanned into a tube again is kept once: the repeat says nothing.
            let member = (rows.tube.get(i), rows.person.get(i).to_string());
            if members.contains(&member) {
                continue;
            }
            members.push(member);
            let (tube, Some(b)) = (rows.tube.get(i), rows.box_id.get_opt(i)) else {
                continue;
            };
            let row = u32::try_from(i).expect("small");
            let standing = match (stored.get(tube), first.get(tube)) {
                (Some(s), _) => s.as_str(),
                (None, Some(f)) => f,
                (None, None) => {
                    first.insert(tube, b);
                    record.push(row);
                    continue;
                }
            };
            if b != standing && !refused_pairs.contains(&(tube, b)) {
                refused_pairs.push((tube, b));
                refused.push(row);
            }
        }
        (record, refused)
    }

    #[test]
    fn a_tube_is_recorded_in_its_first_box_and_other_boxes_are_warned_once() {
        let rows = checkable(boxed());
        let labels = ["c.csv".to_owned()];
        let index = StoreIndex::default();
        // The store has two tubes already: one in its own box, one in another.
        let stored_rows: Vec<Stored> = [("PL000000003", "BX0000"), ("PL000000050", "BX0099")]
            .iter()
            .map(|(t, b)| Stored {
                kind: Scan::Sealed,
                box_id: Some((*b).to_owned()),
                tube: Some((*t).to_owned()),
                site: None,
                lab: None,
                at: None,
                batch: 1,
                source: "boxes.csv".into(),
                line: 2,
            })
            .collect();
        let stored = stored_boxes(&stored_rows);
        let mut rejects = Rejects::default();
        let plan = plan_collections(&rows, "R1", &index, &stored, &labels, &mut rejects);
        let model: HashMap<String, String> = stored_rows
            .iter()
            .filter_map(|s| Some((s.tube.clone()?, s.box_id.clone()?)))
            .collect();
        let (record, refused) = naive_boxes(&rows, &model);
        assert_eq!(plan.boxed, record);
        let mut warned: Vec<u32> = rejects
            .rows
            .iter()
            .filter(|r| r.column == "box")
            .map(|r| u32::try_from(r.line).expect("small"))
            .collect();
        warned.sort_unstable();
        assert_eq!(warned, refused);
        assert!(!refused.is_empty() && record.len() > 100);
        // Every box warning is a warning: the rows stay committed (only repeats of a
        // person in a tube are dropped here).
        assert!(rejects.rows.iter().all(|r| r.severity == Severity::Warning));
        // Without a box column, no row is recorded and no box is looked at.
        let plain = checkable(interleaved());
        let plan = plan_collections(
            &plain,
            "R1",
            &index,
            &stored,
            &labels,
            &mut Rejects::default(),
        );
        assert!(plan.boxed.is_empty());
    }

    #[test]
    fn tubes_sharing_a_hash_stay_apart() {
        let rows = interleaved();
        let tube = |i: usize| rows.tube.bytes(i);
        let fair = group_runs(rows.tube.len(), tube, xxhash_rust::xxh3::xxh3_64);
        // Every barcode hashing alike sends every tube but the first to the exact table.
        let clash = group_runs(rows.tube.len(), tube, |_| 42);
        assert_eq!(fair, clash);
        let few = group_runs(rows.tube.len(), tube, |b| u64::from(b[b.len() - 1] % 3));
        assert_eq!(fair, few);
    }
}
