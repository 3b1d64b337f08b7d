//! Planning a results batch: each tube's results against what the store holds for
//! it, and each plate's controls, which can fail the plate.

use std::collections::HashMap;

use rayon::prelude::*;

use super::{Plan, flag};
use crate::fasthash::KeyHash;
use crate::ingest::reject::{Rejects, Severity, Where};
use crate::model::{Outcome, SampleType};
use crate::rows::ResultRows;
use crate::store::index::{TubeKey, tube_key, tube_prefix};
use crate::store::manifest::FailedPlate;
use crate::store::segment::SegmentPlan;
use crate::store::{StoreIndex, TubeFacts};
use crate::time::{self, Offset};

/// The tube key of a barcode with this [`tube_prefix`], when the prefix holds all of
/// it: barcodes hold no NUL, so a zero last byte means the barcode ended within it.
fn key_of_prefix(prefix: u128) -> Option<TubeKey> {
    let bytes = prefix.to_be_bytes();
    (bytes[15] == 0).then(|| {
        let mut key = TubeKey::default();
        key[..16].copy_from_slice(&bytes);
        key
    })
}

/// Tubes looked up at a time. The library's own tests take windows of four tubes, so
/// each of their results batches goes through several windows and fresh mappings, as
/// a city's batch does.
const WINDOW: usize = if cfg!(test) { 4 } else { 1 << 16 };

/// Plans a results batch: a segment per round its tubes were collected in, rows by
/// tube then time, with each plate's controls beside its samples.
pub(crate) fn plan_results(
    rows: &ResultRows,
    index: &StoreIndex,
    labels: &[String],
    zone: Offset,
    control_cutoffs: (f32, f32),
    rejects: &mut Rejects,
) -> Plan {
    let n = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let (control_rows, order): (Vec<u32>, Vec<u32>) =
        (0..n).partition(|&i| rows.sample_type[i as usize].is_control());
    // By barcode, then time; memcmp on the text had been a third of this stage.
    let mut keyed: Vec<(u128, u32)> = order
        .par_iter()
        .map(|&i| (tube_prefix(rows.tube.bytes(i as usize)), i))
        .collect();
    drop(order);
    keyed.par_sort_unstable_by(|&(ka, a), &(kb, b)| {
        let (a, b) = (a as usize, b as usize);
        ka.cmp(&kb)
            .then_with(|| rows.tube.bytes(a).cmp(rows.tube.bytes(b)))
            .then(rows.reported_at[a].cmp(&rows.reported_at[b]))
            .then(a.cmp(&b))
    });
    let order: Vec<u32> = keyed.iter().map(|&(_, i)| i).collect();
    let at = |i: usize, tube, person| Where::row((labels, &rows.source), i, tube, person);
    let mut per_round: Vec<SegmentPlan> = Vec::new();
    // Which rounds each plate's committed samples went to: its controls go with them.
    // Only built when the batch has controls, so plain batches pay nothing for it.
    let mut plate_rounds: HashMap<(&str, &str), Vec<usize>, KeyHash> =
        HashMap::with_hasher(KeyHash);
    let mut positives_kept = 0;
    // Each tube's rows are a run of `order`; what the store knows of each tube is
    // looked up on all cores first (cursors through the sidecar indexes), then the runs
    // are checked in order. Rows sit at random in the batch now: a run's end is found
    // by the sort keys alone where they differ, and the text is read only where they tie.
    // Row numbers fit `u32` (`n` does): half the room of `usize` pairs.
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut start = 0;
    for k in 1..=keyed.len() {
        let ends = keyed.get(k).is_none_or(|&(key, i)| {
            let (first_key, first) = keyed[start];
            key != first_key || rows.tube.bytes(i as usize) != rows.tube.bytes(first as usize)
        });
        if ends {
            runs.push((
                u32::try_from(start).unwrap_or(u32::MAX),
                u32::try_from(k).unwrap_or(u32::MAX),
            ));
            start = k;
        }
    }
    type Known = (Option<TubeFacts>, Vec<(Outcome, i64)>);
    // Runs ascend by barcode: each core takes a stretch of them with one cursor. A
    // window of runs at a time, not all at once: a batch of 14 million single tubes
    // held 1.5 GB of lookups (and a second copy while rayon joined them).
    let keyed = &keyed;
    let look_up = |window: &[(u32, u32)], index: &StoreIndex| -> Vec<Known> {
        window
            .par_chunks(4096)
            .flat_map_iter(|stretch| {
                let mut cursor = index.cursor();
                stretch.iter().map(move |&(start, _)| {
                    let (prefix, i) = keyed[start as usize];
                    let key = key_of_prefix(prefix)
                        .unwrap_or_else(|| tube_key(rows.tube.get(i as usize)));
                    let facts = cursor.tube(&key);
                    let known = if facts.is_some() {
                        cursor.results(&key)
                    } else {
                        Vec::new()
                    };
                    (facts, known)
                })
            })
            .collect()
    };
    let several = runs.len() > WINDOW;
    for window in runs.chunks(WINDOW) {
        // Each window probes the tube indexes through mappings of its own when there are
        // several: one mapping for the whole batch kept every page it touched resident,
        // 618 MB of a city's batch with 30 % single tubes.
        let known = index.probe(several, |index| look_up(window, index));
        for (&(start, end), (facts, known)) in window.iter().zip(known) {
            let (start, end) = (start as usize, end as usize);
            let tube = rows.tube.get(order[start] as usize);
            let group = &order[start..end];
            let Some(facts) = facts else {
                for &i in group {
                    let why = format!(
                        "tube {tube} was never collected: no collection row in the store names it"
                    );
                    flag(
                        rejects,
                        &at(i as usize, tube, ""),
                        Severity::Error,
                        "tube",
                        why,
                    );
                }
                continue;
            };
            let round = index.round_name(facts.round);
            let slot = if let Some(s) = per_round.iter().position(|p| p.round == round) {
                s
            } else {
                per_round.push(SegmentPlan::new(round));
                per_round.len() - 1
            };
            let mut known = known;
            let mut kept_flagged = false;
            for &i in group {
                let i = i as usize;
                let this = (rows.outcome[i], rows.reported_at[i]);
                if known.contains(&this) {
                    let why =
                        "the same result for this tube is already recorded; kept once".to_owned();
                    flag(rejects, &at(i, tube, ""), Severity::Warning, "result", why);
                    continue;
                }
                let earlier_positive = known
                    .iter()
                    .filter(|(o, t)| *o == Outcome::Positive && *t <= this.1)
                    .map(|&(_, t)| t)
                    .min();
                let later_clear = known
                    .iter()
                    .filter(|(o, t)| *o != Outcome::Positive && *t >= this.1)
                    .map(|&(o, t)| (t, o))
                    .max();
                if let (Outcome::Positive, Some((t, o))) = (this.0, later_clear) {
                    let why = format!(
                        "tube {tube} already has a later {} result reported at {}; this positive keeps the tube positive and is flagged for review",
                        o.as_str(),
                        time::format(t, zone)
                    );
                    flag(rejects, &at(i, tube, ""), Severity::Warning, "result", why);
                    kept_flagged = true;
                }
                if let Some(t) = earlier_positive
                    && this.0 != Outcome::Positive
                {
                    let why = format!(
                        "tube {tube} was reported positive at {}; this later {} result does not clear it: the tube stays positive and is flagged for review",
                        time::format(t, zone),
                        this.0.as_str()
                    );
                    flag(rejects, &at(i, tube, ""), Severity::Warning, "result", why);
                    kept_flagged = true;
                }
                known.push(this);
                per_round[slot]
                    .order
                    .push(u32::try_from(i).unwrap_or(u32::MAX));
                if !control_rows.is_empty() {
                    let plate = (rows.lab.get(i), rows.plate.get(i));
                    let slots = plate_rounds.entry(plate).or_default();
                    if !slots.contains(&slot) {
                        slots.push(slot);
                    }
                }
            }
            positives_kept += u64::from(kept_flagged);
        }
    }
    plan_controls(
        rows,
        &control_rows,
        &plate_rounds,
        control_cutoffs,
        &mut per_round,
        &at,
        rejects,
    );
    Plan {
        segments: per_round,
        overfull: 0,
        positives_kept,
        boxed: Vec::new(),
    }
}

/// Puts each control row with its plate's samples (in every round they went to) and
/// fails the plates whose controls say the run cannot be trusted.
fn plan_controls<'r>(
    rows: &'r ResultRows,
    control_rows: &[u32],
    plate_rounds: &HashMap<(&str, &str), Vec<usize>, KeyHash>,
    (negative_cutoff, positive_cutoff): (f32, f32),
    per_round: &mut [SegmentPlan],
    at: &dyn Fn(usize, &'r str, &'r str) -> Where<'r>,
    rejects: &mut Rejects,
) {
    let mut failed: Vec<((&str, &str), String)> = Vec::new();
    for &c in control_rows {
        let i = c as usize;
        let (lab, plate, label) = (rows.lab.get(i), rows.plate.get(i), rows.tube.get(i));
        let Some(slots) = plate_rounds.get(&(lab, plate)) else {
            let why = format!(
                "control {label} of plate {plate}{}: no sample of this plate is committed in this batch; send a plate's controls with its results",
                lab_phrase(lab)
            );
            flag(rejects, &at(i, label, ""), Severity::Error, "plate", why);
            continue;
        };
        for &slot in slots {
            per_round[slot].controls.push(c);
        }
        if let Some(why) = control_failure(rows, i, negative_cutoff, positive_cutoff)
            && !failed.iter().any(|(p, _)| *p == (lab, plate))
        {
            failed.push(((lab, plate), why));
        }
    }
    for ((lab, plate), reason) in failed {
        for &slot in plate_rounds.get(&(lab, plate)).into_iter().flatten() {
            per_round[slot].failed_plates.push(FailedPlate {
                lab: lab.to_owned(),
                plate: plate.to_owned(),
                reason: reason.clone(),
            });
        }
    }
}

fn lab_phrase(lab: &str) -> String {
    if lab.is_empty() {
        String::new()
    } else {
        format!(" (lab {lab})")
    }
}

/// Why control row `i` fails its plate, if it does. Ct values decide when the row has
/// any (or its result was read from them); otherwise the lab's result word does.
fn control_failure(
    rows: &ResultRows,
    i: usize,
    negative_cutoff: f32,
    positive_cutoff: f32,
) -> Option<String> {
    let (orf, n) = (rows.ct_orf1ab.get(i), rows.ct_n.get(i));
    let by_ct = rows.from_ct[i] || orf.is_some() || n.is_some();
    let label = rows.tube.get(i);
    let show = |ct: Option<f32>| ct.map_or("no Ct".to_owned(), |c| format!("Ct {c}"));
    let cts = format!("ORF1ab {}, N {}", show(orf), show(n));
    let word = rows.outcome[i];
    match rows.sample_type[i] {
        SampleType::NegativeControl => {
            let hit = |ct: Option<f32>| ct.is_some_and(|c| c < negative_cutoff);
            let amplified = if by_ct {
                hit(orf) || hit(n)
            } else {
                matches!(word, Outcome::Positive | Outcome::Inconclusive)
            };
            amplified.then(|| {
                if by_ct {
                    format!("negative control {label} amplified ({cts}; cut-off {negative_cutoff})")
                } else {
                    format!("negative control {label} was reported {}", word.as_str())
                }
            })
        }
        SampleType::PositiveControl => {
            let hit = |ct: Option<f32>| ct.is_some_and(|c| c < positive_cutoff);
            let amplified = if by_ct {
                hit(orf) && hit(n)
            } else {
                word == Outcome::Positive
            };
            (!amplified).then(|| {
                if by_ct {
                    format!(
                        "positive control {label} did not amplify both targets ({cts}; cut-off {positive_cutoff})"
                    )
                } else {
                    format!("positive control {label} was reported {}", word.as_str())
                }
            })
        }
        SampleType::Sample => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_barcode_key_comes_from_its_prefix() {
        for b in ["PL0001", "SG000000001", "ABCDEFGHIJKLMNO"] {
            assert_eq!(
                key_of_prefix(tube_prefix(b.as_bytes())),
                Some(tube_key(b)),
                "{b}"
            );
        }
        for b in ["ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOPQRSTUVWXYZ-12345"] {
            assert_eq!(key_of_prefix(tube_prefix(b.as_bytes())), None, "{b}");
        }
    }

    /// A batch of many windows (four tubes each in tests, each through fresh mappings)
    /// finds every tube and every earlier result as one window does: the tubes never
    /// collected are refused, a second positive of a positive tube is kept, and each
    /// tube's result is the one its rows say.
    #[test]
    fn lookups_window_by_window_find_every_tube_and_its_results() {
        use crate::ingest::{IngestOptions, ingest_collections, ingest_results};
        use crate::model::Status;
        use crate::store::Store;
        use crate::tracker::Decided;

        let dir = tempfile::tempdir().expect("tmp");
        let file = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let tubes: Vec<String> = (1..=30).map(|t| format!("PL{t:04}")).collect();
        let mut pools = String::from("tube,person,mode,capacity,collected_at\n");
        for (t, tube) in tubes.iter().enumerate() {
            pools.push_str(&format!("{tube},P-{t}-a,pool,10,2022-04-02 08:00\n"));
            pools.push_str(&format!("{tube},P-{t}-b,pool,10,2022-04-02 08:01\n"));
        }
        // Tubes 1-3 positive in a first batch, so the second finds results to weigh.
        let first = (0..3).map(|t| format!("{},positive,2022-04-02 12:00\n", tubes[t]));
        let first = file(
            "first.csv",
            format!("tube,result,reported_at\n{}", first.collect::<String>()),
        );
        // Then every tube, in no order, the even ones positive, and two never collected.
        let mut second = String::from("tube,result,reported_at\n");
        for t in (0..30).rev() {
            let word = if t % 2 == 0 { "positive" } else { "negative" };
            second.push_str(&format!("{},{word},2022-04-02 13:00\n", tubes[t]));
        }
        second.push_str("ZZ0001,negative,2022-04-02 13:00\nAA0001,negative,2022-04-02 13:00\n");
        let second = file("second.csv", second);
        let pools = file("pools.csv", pools);

        let mut store = Store::open_writer(&dir.path().join("store")).expect("store");
        let opts = IngestOptions::default();
        ingest_collections(&mut store, &[pools], "R1", &opts, None).expect("collections");
        ingest_results(&mut store, &[first], &opts, None).expect("first results");
        let report = ingest_results(&mut store, &[second], &opts, None).expect("second results");
        assert_eq!((report.committed, report.rejected), (30, 2));

        let d = Decided::load(&store, "R1").expect("decided");
        let counts = d.counts();
        let of = |status| {
            counts
                .by_status
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n)
        };
        // Tube t = 1 was positive first: its later negative leaves it positive (flagged
        // for review), so the 15 even tubes and that one recall their persons.
        assert_eq!(of(Status::Recall), 2 * 16, "{counts:?}");
        assert_eq!(of(Status::Negative), 2 * 14, "{counts:?}");
    }
}
