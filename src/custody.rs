//! A round's chain of custody: from the swab to the lab's door to the test.
//!
//! Inputs are the round's collections and results and its custody rows
//! (`pooltrack ingest boxes` / `receipts`, [`crate::store::custody`]). Only what had
//! happened by `as_of` counts: collections, scans and results after it are left out.
//!
//! - A tube is **received** when it was scanned at receipt (a scan naming a tube and
//!   its box receives both), or has a result (its
//!   `received_at`, else only the fact), or its box was scanned and the lab did not
//!   scan that box's tubes one by one (a box scan vouches for its tubes then).
//! - **`not_received`**: a tube collected at least `receipt_hours` before `as_of` and
//!   not received: lost or stuck. **`box_not_received`**: a box sealed that long ago
//!   of which nothing was received (one row for the box; its tubes are listed too).
//! - **`missing_from_box`**: a tube of a received box whose tubes the lab scanned one by
//!   one, with neither a scan nor a result.
//! - **`unknown_tube`**: a tube scanned at receipt, or listed in a received box, that no
//!   collection of the round lists. **`unknown_box`**: a box scanned that no manifest
//!   and no collection lists.
//! - **`received_again`**: a box or tube scanned a second time (the first scan counts).
//! - **`past_limit`**: a tube none of whose results by `as_of` (not void) was reported
//!   within `specimen_limit_hours` of its first swab, and some was past it: as the
//!   tracker reads it ([`crate::tracker::limit`]), no result of the tube counts and its
//!   persons need a resample (their status is `resample` unless a later negative tube
//!   clears it). The row shows the result that stands in for the tube. A limit other
//!   than the store's (`--specimen-limit-hours`) asks what that limit would flag; the
//!   statuses follow the store's.
//!
//! Each box's **transport** runs from its sealing (the manifest's `sealed_at`, else
//! its tubes' last collection) to its receipt (its scan, else its first tube received).

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};

use arrow_array::{Array, StringArray};
use serde::Serialize;

use crate::output::ListRow;
use crate::store::custody::Stored;
use crate::store::labels::labels;
use crate::store::segment::Scan;
use crate::store::{BatchKind, Store, read};
use crate::time::{self, Millis};
use crate::tracker::{NONE, SpecimenLimit, Statuses, read_results};
use crate::{Error, Result};

/// No time: a tube not received (yet) by `as_of`.
const UNSEEN: Millis = Millis::MAX;

/// A time kept with [`UNSEEN`] for none.
fn seen(t: Millis) -> Option<Millis> {
    (t != UNSEEN).then_some(t)
}

const HOUR_MS: f64 = 3_600_000.0;

/// The finding kinds, in the order the report lists them.
pub const KINDS: [&str; 7] = [
    "box_not_received",
    "not_received",
    "missing_from_box",
    "unknown_box",
    "unknown_tube",
    "received_again",
    "past_limit",
];

/// What the report measures against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    /// A tube not received this many hours after collection is lost or stuck.
    pub receipt_hours: f64,
    /// A result reported later than this after collection does not count.
    pub specimen_limit_hours: f64,
}

impl Limits {
    /// Checks both are a positive number of hours, at most a year.
    pub fn check(self) -> Result<Limits> {
        for (what, h) in [
            ("receipt", self.receipt_hours),
            ("specimen limit", self.specimen_limit_hours),
        ] {
            if !(h.is_finite() && h > 0.0 && h <= 8_760.0) {
                return Err(Error::Usage(format!(
                    "the {what} hours must be above 0 and at most 8760, not {h}"
                )));
            }
        }
        Ok(self)
    }

    fn ms(h: f64) -> Millis {
        // Checked hours are at most a year: the product fits an i64.
        #[allow(clippy::cast_possible_truncation)]
        let ms = (h * HOUR_MS).round() as i64;
        ms
    }
}

/// One problem in the chain, a row of `pooltrack custody --out`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// The box (empty when none is known).
    #[serde(rename = "box")]
    pub box_id: String,
    /// The tube (empty for a box-level finding).
    pub tube: String,
    /// The sampling site.
    pub site: String,
    /// The lab that received or tested it.
    pub lab: String,
    /// Persons collected into the tube (tubes of the box, for a box).
    pub persons: u64,
    /// First swab of the tube, or the box's sealing.
    pub since: String,
    /// When it was received (empty when it was not).
    pub received_at: String,
    /// The result's report time (`past_limit`).
    pub reported_at: String,
    /// Hours from `since` to the receipt, the report, or `as_of` for what never came.
    pub hours: f64,
    /// The file and line of the custody row behind it (empty when none).
    pub source: String,
    /// What happened, for a person reading the list.
    pub detail: String,
}

impl ListRow for Finding {
    const HEADER: &'static [&'static str] = &[
        "kind",
        "box",
        "tube",
        "site",
        "lab",
        "persons",
        "since",
        "received_at",
        "reported_at",
        "hours",
        "source",
        "detail",
    ];
}

/// One box's trip, a row of `pooltrack custody --boxes --out`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoxTrip {
    /// The box.
    #[serde(rename = "box")]
    pub box_id: String,
    /// The site that sealed it.
    pub site: String,
    /// The lab that received it (empty when none did).
    pub lab: String,
    /// Tubes the manifest puts in it.
    pub tubes: u64,
    /// Of them, tubes no collection of the round lists.
    pub unknown_tubes: u64,
    /// Of them, tubes not received.
    pub not_received: u64,
    /// When it was sealed.
    pub sealed_at: String,
    /// When it was received (empty when it was not).
    pub received_at: String,
    /// Minutes from sealing to receipt (`None` when not received, or never sealed).
    pub transport_minutes: Option<f64>,
}

impl ListRow for BoxTrip {
    const HEADER: &'static [&'static str] = &[
        "box",
        "site",
        "lab",
        "tubes",
        "unknown_tubes",
        "not_received",
        "sealed_at",
        "received_at",
        "transport_minutes",
    ];
}

/// Findings by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Boxes of which nothing was received.
    pub box_not_received: u64,
    /// Tubes not received after `receipt_hours`.
    pub not_received: u64,
    /// Tubes missing from a box received tube by tube.
    pub missing_from_box: u64,
    /// Boxes scanned that nothing lists.
    pub unknown_box: u64,
    /// Tubes received that no collection lists.
    pub unknown_tube: u64,
    /// Repeat scans.
    pub received_again: u64,
    /// Tubes tested past the specimen limit.
    pub past_limit: u64,
    /// Persons of those tubes, who need a resample.
    pub resample_persons: u64,
}

/// Transport minutes over the received boxes, nearest-rank percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Transport {
    /// Boxes received with a known sealing.
    pub boxes: u64,
    /// Median minutes.
    pub median_minutes: Option<f64>,
    /// 90th percentile.
    pub p90_minutes: Option<f64>,
    /// Longest.
    pub max_minutes: Option<f64>,
}

/// A round's chain-of-custody report.
#[derive(Debug, Clone, Serialize)]
pub struct Custody {
    /// The round.
    pub round: String,
    /// "Now": what had happened by then counts.
    pub as_of: String,
    /// The limits applied.
    pub limits: Limits,
    /// Tubes collected by `as_of`.
    pub tubes: u64,
    /// Of them, tubes some manifest puts in a box.
    pub boxed_tubes: u64,
    /// Of them, tubes received by `as_of`.
    pub received_tubes: u64,
    /// Boxes any manifest or collection names.
    pub boxes: u64,
    /// Of them, boxes received.
    pub received_boxes: u64,
    /// Custody rows of the round in the store.
    pub custody_rows: u64,
    /// Findings by kind.
    pub counts: Counts,
    /// Every finding, by kind in [`KINDS`] order, then box and tube.
    pub findings: Vec<Finding>,
    /// Transport time of the received boxes.
    pub transport: Transport,
    /// Every box, by box.
    pub box_trips: Vec<BoxTrip>,
}

/// A scan kept as the first of its box or tube.
#[derive(Clone)]
struct Receipt {
    at: Millis,
    lab: String,
    place: String,
}

#[derive(Default)]
struct BoxFacts {
    site: String,
    tubes: Vec<String>,
    sealed_at: Option<Millis>,
    place: String,
    scan: Option<Receipt>,
}

/// The default "now": the round's last event (collection, custody scan or result).
pub fn round_as_of(round: &Statuses, custody: &[Stored]) -> Millis {
    let last_result = round
        .results
        .reported_at
        .iter()
        .zip(&round.results.tube)
        .filter(|&(_, &t)| t != NONE)
        .map(|(&at, _)| at)
        .max();
    let last_scan = custody.iter().filter_map(|c| c.at).max();
    let last_collection = round.collected_at.iter().copied().max();
    [last_result, last_scan, last_collection]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
}

fn hours(ms: Millis) -> f64 {
    // Whole hours to two decimals: what a reader checks by hand.
    #[allow(clippy::cast_precision_loss)]
    let h = ms as f64 / HOUR_MS;
    (h * 100.0).round() / 100.0
}

fn minutes(ms: Millis) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let m = ms as f64 / 60_000.0;
    (m * 10.0).round() / 10.0
}

/// The value at rank ⌈p·n/100⌉ of sorted `v` (nearest rank).
fn nearest_rank(v: &[f64], p: usize) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = (p * v.len()).div_ceil(100).max(1);
    v.get(rank - 1).copied()
}

impl Custody {
    /// Measures `round` (loaded) against `limits` as of `as_of`, with the round's
    /// custody rows `custody` ([`crate::store::custody::rows`]).
    pub fn compute(
        store: &Store,
        round: &Statuses,
        custody: &[Stored],
        limits: Limits,
        as_of: Millis,
    ) -> Result<Custody> {
        let limits = limits.check()?;
        let zone = store.zone();
        let at = |t: Millis| time::format_local(t, zone);
        let tubes = &round.tubes;
        let n = tubes.len();
        let barcodes = LazyBarcodes {
            store,
            round,
            all: OnceCell::new(),
        };
        let find = |b: &str| -> Result<Option<usize>> {
            let barcodes = barcodes.all()?;
            let i = partition(barcodes, b);
            Ok((i < barcodes.len() && barcodes.value(i) == b).then_some(i))
        };

        // Each tube's first and last swab by `as_of`: the round's own when every swab
        // is by then (a report of a finished round), else counted again without the
        // later swabs.
        let swabs = round.swabs();
        let by_as_of;
        let (first, last) = if swabs.latest <= as_of {
            (&swabs.first, &swabs.last)
        } else {
            let mut first = vec![Millis::MAX; n];
            let mut last = vec![Millis::MIN; n];
            for (&t, &c) in round.tube_of_row.iter().zip(&round.collected_at) {
                if c <= as_of {
                    let t = t as usize;
                    first[t] = first[t].min(c);
                    last[t] = last[t].max(c);
                }
            }
            by_as_of = (first, last);
            (&by_as_of.0, &by_as_of.1)
        };
        let collected = |t: usize| first[t] != Millis::MAX;
        // The sites are read when a finding first names one: a clean round's 25 M
        // rows of a column it never prints cost a tenth of the section.
        let sites = OnceCell::new();
        let site_of = |t: usize| -> Result<String> {
            let sites = if let Some(s) = sites.get() {
                s
            } else {
                let read = labels(store, &round.name, BatchKind::Collections, "site")?;
                sites.get_or_init(|| read)
            };
            Ok(sites
                .of_row(tubes.row[t] as usize)
                .unwrap_or_default()
                .to_owned())
        };

        // Results by `as_of`: received_at, the first counted report, its lab.
        let rs = &round.results;
        // Labs as numbers (only findings print one), read beside the receipt times.
        let (received, labs) = rayon::join(
            || read::receipt_times(store, &round.name),
            || labels(store, &round.name, BatchKind::Results, "lab"),
        );
        let (received, labs) = (received?, labs?);
        let received_col = Some(&received);
        if labs.codes.len() != rs.outcome.len() {
            return Err(Error::damaged(
                store.root(),
                format!(
                    "round {}: the result segments and their indexes disagree on the rows",
                    round.name
                ),
            ));
        }
        let lab_of = |r: usize| labs.of_row(r).unwrap_or_default().to_owned();
        let mut has_result = vec![false; n];
        // Times as plain numbers, `UNSEEN` for none: an `Option` a tube doubled 3.6
        // million of them to 58 MB of fresh pages.
        let mut result_receipt: Vec<Millis> = vec![UNSEEN; n];
        let mut counted: Vec<u32> = vec![NONE; n];
        for (t, slot) in counted.iter_mut().enumerate() {
            let (lo, hi) = (
                tubes.result_start[t] as usize,
                tubes.result_start[t + 1] as usize,
            );
            for &r in &tubes.result_rows[lo..hi] {
                let r = r as usize;
                if rs.reported_at[r] > as_of {
                    continue;
                }
                has_result[t] = true;
                if let Some(a) = received_col.filter(|a| r < a.len() && a.is_valid(r)) {
                    let v = a.value(r);
                    if v <= as_of {
                        result_receipt[t] = result_receipt[t].min(v);
                    }
                }
                if *slot == NONE && !rs.void.get(r).copied().unwrap_or(false) {
                    *slot = u32::try_from(r).unwrap_or(NONE);
                }
            }
        }

        // Custody rows by `as_of`: boxes, and the first scan of each box and tube.
        let mut boxes: BTreeMap<String, BoxFacts> = BTreeMap::new();
        let mut tube_box: HashMap<String, String> = HashMap::new();
        let mut tube_scan: HashMap<String, Receipt> = HashMap::new();
        let mut findings: Vec<Finding> = Vec::new();
        let place = |s: &Stored| format!("{}:{}", s.source, s.line);
        for s in custody.iter().filter(|s| s.kind == Scan::Sealed) {
            let (Some(b), Some(t)) = (&s.box_id, &s.tube) else {
                continue;
            };
            let f = boxes.entry(b.clone()).or_default();
            if f.site.is_empty()
                && let Some(site) = &s.site
            {
                f.site.clone_from(site);
            }
            if let Some(sealed) = s.at.filter(|&a| a <= as_of) {
                f.sealed_at = Some(f.sealed_at.map_or(sealed, |o| o.max(sealed)));
            }
            if f.place.is_empty() {
                f.place = place(s);
            }
            if !tube_box.contains_key(t) {
                tube_box.insert(t.clone(), b.clone());
                f.tubes.push(t.clone());
            }
        }
        let mut scans: Vec<&Stored> = custody
            .iter()
            .filter(|s| s.kind == Scan::Received && s.at.is_some_and(|a| a <= as_of))
            .collect();
        scans.sort_by_key(|s| (s.at, s.batch, s.line));
        let mut unknown_boxes: BTreeMap<String, Receipt> = BTreeMap::new();
        for s in scans {
            let r = Receipt {
                at: s.at.unwrap_or_default(),
                lab: s.lab.clone().unwrap_or_default(),
                place: place(s),
            };
            let (key, earlier) = match (&s.tube, &s.box_id) {
                (Some(t), _) => (t.clone(), tube_scan.get(t).cloned()),
                (None, Some(b)) => (
                    b.clone(),
                    boxes
                        .get(b)
                        .and_then(|f| f.scan.clone())
                        .or_else(|| unknown_boxes.get(b).cloned()),
                ),
                (None, None) => continue,
            };
            if let Some(e) = earlier {
                let what = if s.tube.is_some() { "tube" } else { "box" };
                findings.push(Finding {
                    kind: "received_again",
                    box_id: s.box_id.clone().unwrap_or_default(),
                    tube: s.tube.clone().unwrap_or_default(),
                    site: String::new(),
                    lab: r.lab.clone(),
                    persons: 0,
                    since: at(e.at),
                    received_at: at(r.at),
                    reported_at: String::new(),
                    hours: hours(r.at - e.at),
                    source: r.place.clone(),
                    detail: format!(
                        "{what} {key} scanned again; first scanned at {} by {} ({})",
                        at(e.at),
                        or_none(&e.lab),
                        e.place
                    ),
                });
                continue;
            }
            match (&s.tube, &s.box_id) {
                (Some(t), b) => {
                    // A tube scanned with its box: the box arrived too.
                    if let Some(b) = b {
                        match boxes.get_mut(b) {
                            Some(f) if f.scan.is_none() => f.scan = Some(r.clone()),
                            Some(_) => {}
                            None => {
                                unknown_boxes.entry(b.clone()).or_insert_with(|| r.clone());
                            }
                        }
                    }
                    tube_scan.insert(t.clone(), r);
                }
                (None, Some(b)) => match boxes.get_mut(b) {
                    Some(f) => f.scan = Some(r),
                    None => {
                        unknown_boxes.insert(b.clone(), r);
                    }
                },
                (None, None) => {}
            }
        }
        // Boxes whose tubes the lab scanned one by one: there a box scan vouches for
        // no tube.
        let scanned_one_by_one: HashMap<&str, bool> = boxes
            .iter()
            .map(|(b, f)| {
                (
                    b.as_str(),
                    f.tubes.iter().any(|t| tube_scan.contains_key(t)),
                )
            })
            .collect();

        // Each collected tube: received, when, and what is wrong.
        let receipt_ms = Limits::ms(limits.receipt_hours);
        let limit = SpecimenLimit::hours(limits.specimen_limit_hours);
        // A limit other than the store's is a question asked of the round: the
        // statuses follow the store's.
        let store_limit = round.specimen_limit;
        let what_if = limit != store_limit;
        let mut received = vec![false; n];
        let mut received_at: Vec<Millis> = vec![UNSEEN; n];
        let (mut tube_count, mut boxed_tubes) = (0u64, 0u64);
        for t in (0..n).filter(|&t| collected(t)) {
            tube_count += 1;
            // A round without custody rows needs a tube's barcode only for a finding.
            let in_box = if tube_box.is_empty() {
                None
            } else {
                tube_box
                    .get(barcodes.of(t)?)
                    .and_then(|b| boxes.get(b).map(|f| (b, f)))
            };
            if in_box.is_some() {
                boxed_tubes += 1;
            }
            let one_by_one = in_box
                .is_some_and(|(b, _)| scanned_one_by_one.get(b.as_str()).copied().unwrap_or(false));
            let box_scan = in_box
                .and_then(|(_, f)| f.scan.as_ref())
                .filter(|_| !one_by_one);
            let own = if tube_scan.is_empty() {
                None
            } else {
                tube_scan.get(barcodes.of(t)?).map(|r| r.at)
            };
            let when = [own, seen(result_receipt[t]), box_scan.map(|r| r.at)]
                .into_iter()
                .flatten()
                .min();
            received[t] = when.is_some() || has_result[t];
            received_at[t] = when.unwrap_or(UNSEEN);
            let persons = u64::from(tubes.members[t]);
            let box_id = in_box.map(|(b, _)| b.clone()).unwrap_or_default();
            if !received[t] {
                let waited = as_of - first[t];
                let missing = in_box.is_some_and(|(_, f)| f.scan.is_some()) && one_by_one;
                if missing {
                    let scan = in_box.and_then(|(_, f)| f.scan.as_ref());
                    findings.push(Finding {
                        kind: "missing_from_box",
                        box_id: box_id.clone(),
                        tube: barcodes.of(t)?.to_owned(),
                        site: site_of(t)?,
                        lab: scan.map(|r| r.lab.clone()).unwrap_or_default(),
                        persons,
                        since: at(first[t]),
                        received_at: String::new(),
                        reported_at: String::new(),
                        hours: hours(waited),
                        source: scan.map(|r| r.place.clone()).unwrap_or_default(),
                        detail: format!(
                            "box {box_id} was received{} and its tubes scanned, but not this one, and it has no result",
                            scan.map(|r| format!(" at {}", at(r.at))).unwrap_or_default()
                        ),
                    });
                } else if waited >= receipt_ms {
                    let detail = match in_box {
                        Some((b, f)) => format!(
                            "in box {b}{}, not received {} h after collection",
                            f.sealed_at
                                .map(|s| format!(" sealed at {}", at(s)))
                                .unwrap_or_default(),
                            hours(waited)
                        ),
                        None => format!(
                            "in no box a manifest lists; no receipt and no result {} h after collection",
                            hours(waited)
                        ),
                    };
                    findings.push(Finding {
                        kind: "not_received",
                        box_id: box_id.clone(),
                        tube: barcodes.of(t)?.to_owned(),
                        site: site_of(t)?,
                        lab: String::new(),
                        persons,
                        since: at(first[t]),
                        received_at: String::new(),
                        reported_at: String::new(),
                        hours: hours(waited),
                        source: in_box.map(|(_, f)| f.place.clone()).unwrap_or_default(),
                        detail,
                    });
                }
            }
            // The tracker's reading of the tube's results by `as_of` against this
            // limit: no result within it and one past it.
            let (lo, hi) = (
                tubes.result_start[t] as usize,
                tubes.result_start[t + 1] as usize,
            );
            let by_now = || {
                tubes.result_rows[lo..hi]
                    .iter()
                    .map(|&r| r as usize)
                    .filter(|&r| rs.reported_at[r] <= as_of && !rs.is_void(r))
            };
            let reading = read_results(
                by_now().map(|r| (rs.outcome[r], limit.is_past(first[t], rs.reported_at[r]))),
            );
            if let Some(r) = reading.past_limit.and_then(|k| by_now().nth(k)) {
                let reported = rs.reported_at[r];
                let age = reported - first[t];
                let whose = if what_if {
                    format!(
                        "at this limit its {persons} person(s) would need a resample; \
                         the store's limit, which the statuses follow, is {} h",
                        store_limit.in_hours()
                    )
                } else {
                    format!("no result of the tube counts: resample its {persons} person(s)")
                };
                findings.push(Finding {
                    kind: "past_limit",
                    box_id,
                    tube: barcodes.of(t)?.to_owned(),
                    site: site_of(t)?,
                    lab: lab_of(r),
                    persons,
                    since: at(first[t]),
                    received_at: seen(received_at[t]).map(at).unwrap_or_default(),
                    reported_at: at(reported),
                    hours: hours(age),
                    source: String::new(),
                    detail: format!("{}: {whose}", limit.explain(first[t], reported)),
                });
            }
        }
        for (t, r) in &tube_scan {
            if find(t)?.is_none_or(|i| !collected(i)) {
                findings.push(Finding {
                    kind: "unknown_tube",
                    box_id: tube_box.get(t).cloned().unwrap_or_default(),
                    tube: t.clone(),
                    site: String::new(),
                    lab: r.lab.clone(),
                    persons: 0,
                    since: String::new(),
                    received_at: at(r.at),
                    reported_at: String::new(),
                    hours: 0.0,
                    source: r.place.clone(),
                    detail: format!(
                        "tube {t} was received at {} by {} but no collection of round {} lists it",
                        at(r.at),
                        or_none(&r.lab),
                        round.name
                    ),
                });
            }
        }
        for (b, r) in &unknown_boxes {
            findings.push(Finding {
                kind: "unknown_box",
                box_id: b.clone(),
                tube: String::new(),
                site: String::new(),
                lab: r.lab.clone(),
                persons: 0,
                since: String::new(),
                received_at: at(r.at),
                reported_at: String::new(),
                hours: 0.0,
                source: r.place.clone(),
                detail: format!(
                    "box {b} was received at {} by {} but no box manifest or collection of round {} lists it",
                    at(r.at),
                    or_none(&r.lab),
                    round.name
                ),
            });
        }

        // Each box's trip.
        let mut box_trips = Vec::with_capacity(boxes.len());
        let mut transport: Vec<f64> = Vec::new();
        let mut received_boxes = 0u64;
        for (b, f) in &boxes {
            let mut known: Vec<usize> = Vec::with_capacity(f.tubes.len());
            for t in &f.tubes {
                known.extend(find(t)?.filter(|&i| collected(i)));
            }
            let unknown = f.tubes.len() as u64 - known.len() as u64;
            let sealed = f.sealed_at.or_else(|| known.iter().map(|&i| last[i]).max());
            let first_tube = known
                .iter()
                .filter_map(|&i| seen(received_at[i]))
                .chain(
                    f.tubes
                        .iter()
                        .filter_map(|t| tube_scan.get(t).map(|r| r.at)),
                )
                .min();
            let receipt = f.scan.as_ref().map(|r| r.at).or(first_tube);
            let lab = f
                .scan
                .as_ref()
                .map(|r| r.lab.clone())
                .or_else(|| {
                    f.tubes
                        .iter()
                        .find_map(|t| tube_scan.get(t).map(|r| r.lab.clone()))
                })
                .or_else(|| {
                    known
                        .iter()
                        .find(|&&i| counted[i] != NONE)
                        .map(|&i| lab_of(counted[i] as usize))
                })
                .unwrap_or_default();
            let not_received = known.iter().filter(|&&i| !received[i]).count() as u64;
            let trip = match (sealed, receipt) {
                (Some(s), Some(r)) => Some(minutes(r - s)),
                _ => None,
            };
            // A box arrived when it or a tube of it did, its time known or not (a
            // result without received_at says the tube arrived, not when).
            let arrived = receipt.is_some()
                || known.iter().any(|&i| received[i])
                || f.tubes.iter().any(|t| tube_scan.contains_key(t));
            if arrived {
                received_boxes += 1;
                if let Some(m) = trip {
                    transport.push(m);
                }
                // Tubes the box carried that no collection lists: received unknown.
                if f.scan.is_some() {
                    let mut unknown = Vec::new();
                    for t in &f.tubes {
                        if find(t)?.is_none_or(|i| !collected(i)) && !tube_scan.contains_key(t) {
                            unknown.push(t);
                        }
                    }
                    for t in unknown {
                        findings.push(Finding {
                            kind: "unknown_tube",
                            box_id: b.clone(),
                            tube: t.clone(),
                            site: f.site.clone(),
                            lab: lab.clone(),
                            persons: 0,
                            since: String::new(),
                            received_at: receipt.map(at).unwrap_or_default(),
                            reported_at: String::new(),
                            hours: 0.0,
                            source: f.place.clone(),
                            detail: format!(
                                "the manifest puts tube {t} in box {b}, which was received, but no collection of round {} lists it",
                                round.name
                            ),
                        });
                    }
                }
            } else if let Some(s) = sealed
                && as_of - s >= receipt_ms
            {
                findings.push(Finding {
                    kind: "box_not_received",
                    box_id: b.clone(),
                    tube: String::new(),
                    site: f.site.clone(),
                    lab: String::new(),
                    persons: f.tubes.len() as u64,
                    since: at(s),
                    received_at: String::new(),
                    reported_at: String::new(),
                    hours: hours(as_of - s),
                    source: f.place.clone(),
                    detail: format!(
                        "box {b} of {} tube(s) sealed at {}: neither it nor any of its tubes received {} h later",
                        f.tubes.len(),
                        at(s),
                        hours(as_of - s)
                    ),
                });
            }
            let site = if f.site.is_empty() {
                known
                    .first()
                    .map(|&i| site_of(i))
                    .transpose()?
                    .unwrap_or_default()
            } else {
                f.site.clone()
            };
            box_trips.push(BoxTrip {
                box_id: b.clone(),
                site,
                lab,
                tubes: f.tubes.len() as u64,
                unknown_tubes: unknown,
                not_received,
                sealed_at: sealed.map(at).unwrap_or_default(),
                received_at: receipt.map(at).unwrap_or_default(),
                transport_minutes: trip,
            });
        }
        transport.sort_by(f64::total_cmp);
        let transport = Transport {
            boxes: transport.len() as u64,
            median_minutes: nearest_rank(&transport, 50),
            p90_minutes: nearest_rank(&transport, 90),
            max_minutes: transport.last().copied(),
        };

        let rank = |k: &str| KINDS.iter().position(|x| *x == k).unwrap_or(KINDS.len());
        findings.sort_by(|a, b| {
            (rank(a.kind), &a.box_id, &a.tube, &a.source).cmp(&(
                rank(b.kind),
                &b.box_id,
                &b.tube,
                &b.source,
            ))
        });
        let mut counts = Counts::default();
        for f in &findings {
            *match f.kind {
                "box_not_received" => &mut counts.box_not_received,
                "not_received" => &mut counts.not_received,
                "missing_from_box" => &mut counts.missing_from_box,
                "unknown_box" => &mut counts.unknown_box,
                "unknown_tube" => &mut counts.unknown_tube,
                "received_again" => &mut counts.received_again,
                _ => &mut counts.past_limit,
            } += 1;
            if f.kind == "past_limit" {
                counts.resample_persons += f.persons;
            }
        }
        Ok(Custody {
            round: round.name.clone(),
            as_of: at(as_of),
            limits,
            tubes: tube_count,
            boxed_tubes,
            received_tubes: received.iter().filter(|&&r| r).count() as u64,
            boxes: (boxes.len() + unknown_boxes.len()) as u64,
            received_boxes: received_boxes + unknown_boxes.len() as u64,
            custody_rows: custody.len() as u64,
            counts,
            findings,
            transport,
            box_trips,
        })
    }

    /// Whether the chain shows nothing wrong.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

fn or_none(lab: &str) -> &str {
    if lab.is_empty() { "(no lab)" } else { lab }
}

/// Every tube's barcode by tube number, read when first asked for: a round's 3.6
/// million barcodes are a fifth of its custody report, and a round without custody
/// rows needs only those of its findings' tubes, usually none.
struct LazyBarcodes<'a> {
    store: &'a Store,
    round: &'a Statuses,
    all: OnceCell<StringArray>,
}

impl LazyBarcodes<'_> {
    fn all(&self) -> Result<&StringArray> {
        if let Some(all) = self.all.get() {
            return Ok(all);
        }
        let all = self.round.all_barcodes(self.store)?;
        Ok(self.all.get_or_init(|| all))
    }

    /// The barcode of tube `t`.
    fn of(&self, t: usize) -> Result<&str> {
        let all = self.all()?;
        Ok(if t < all.len() { all.value(t) } else { "" })
    }
}

/// The first index whose barcode is not below `b` (barcodes are in byte order).
fn partition(barcodes: &StringArray, b: &str) -> usize {
    let (mut lo, mut hi) = (0, barcodes.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if barcodes.value(mid).as_bytes() < b.as_bytes() {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Loads round `round` and its custody rows and measures them with the store's
/// `[custody]` limits unless `limits` is given; `as_of` defaults to the round's last
/// event ([`round_as_of`]).
pub fn load(
    store: &Store,
    round: &str,
    limits: Option<Limits>,
    as_of: Option<Millis>,
) -> Result<Custody> {
    let configured = store.config()?.custody;
    let limits = limits.unwrap_or(Limits {
        receipt_hours: configured.receipt_hours,
        specimen_limit_hours: configured.specimen_limit_hours,
    });
    let statuses = Statuses::load(store, round)?;
    let custody = crate::store::custody::rows(store, round)?;
    let as_of = as_of.unwrap_or_else(|| round_as_of(&statuses, &custody));
    Custody::compute(store, &statuses, &custody, limits, as_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_is_an_observed_value() {
        let v = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(nearest_rank(&v, 50), Some(20.0));
        assert_eq!(nearest_rank(&v, 90), Some(40.0));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn partition_finds_barcodes_in_byte_order() {
        let a = StringArray::from(vec!["PL0001", "PL0002", "PL00021", "PL0003"]);
        assert_eq!(partition(&a, "PL0002"), 1);
        assert_eq!(partition(&a, "PL00021"), 2);
        assert_eq!(partition(&a, "PL0000"), 0);
        assert_eq!(partition(&a, "PL9"), 4);
    }

    #[test]
    fn limits_must_be_positive_hours() {
        let ok = Limits {
            receipt_hours: 12.0,
            specimen_limit_hours: 48.0,
        };
        assert!(ok.check().is_ok());
        for bad in [0.0, -1.0, f64::NAN, 9_000.0] {
            let l = Limits {
                receipt_hours: bad,
                ..ok
            };
            assert!(matches!(l.check(), Err(Error::Usage(_))), "{bad}");
        }
        assert_eq!(Limits::ms(1.5), 5_400_000);
    }
}
