//! Dilution risk from a round's own Ct values: what pooling `k` swabs into one tube
//! costs in sensitivity, measured, not assumed.
//!
//! A k-pool holding one infected swab dilutes its template k-fold, which PCR reads as
//! `log2 k` more cycles: a person whose own tube reads Ct `c` reads about `c + log2 k`
//! in a k-pool, and is missed when that reaches the cut-off.
//!
//! - **Sensitivity per pool size.** Of the round's **first-stage single-tube
//!   positives** (each tube's effective result; retests left out, see
//!   [`crate::tracker::Stages`]), the share whose Ct lies within `log2 k` of the
//!   cut-off (`Ct + log2 k ≥ cut-off`) are the positives a k-pool would likely have
//!   missed; `1 −` that share is the measured sensitivity of a k-pool, by lab and for
//!   all labs. Retests are left out by default because they are the persons a pool
//!   already found, so they lack exactly the weak positives a pool misses; with
//!   [`DilutionOptions::with_retests`] they count too (an upper figure).
//! - **Measured shift.** For each positive pool whose retests found **exactly one**
//!   positive person (a positive single tube of a member), the pool's Ct minus that
//!   person's single-tube Ct: mean, p90 (nearest rank) and count by pool size (the
//!   persons recorded in the pool), against the `log2 k` expectation. A pool whose
//!   retests found two or more positives holds their summed template, not a k-fold
//!   dilution of one, and is only counted.
//!
//! Ct values: a tube's **lower stated Ct of `ORF1ab` and N** (the one that
//! amplified earlier; the tracker orders pools by the same Ct), as the store holds
//! them. A result without a Ct (a result word only) is counted apart. The cut-off is
//! the store's `ct_cutoff` (`pooltrack config`).
//!
//! [`measured_sensitivity`] gives the sensitivity per pool size alone, for the
//! planner to use in place of an assumed one.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Result;
use crate::model::{Mode, Outcome};
use crate::output::ListRow;
use crate::store::BatchKind;
use crate::store::Store;
use crate::store::labels::{Labels, labels};
use crate::tracker::{Decided, NONE, ResultFacts};

/// The lab of the rows for every lab together.
pub const ALL_LABS: &str = "(all)";
/// The lab of results that name none.
pub const NO_LAB: &str = "(no lab)";
/// The pool sizes measured when none are asked for: the validated ones.
pub const VALIDATED_SIZES: [u32; 3] = [5, 10, 20];

/// What [`Dilution::compute`] measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DilutionOptions {
    /// Pool sizes to measure the sensitivity of.
    pub pool_sizes: Vec<u32>,
    /// Count retest single tubes among the single-tube positives too.
    pub with_retests: bool,
}

impl Default for DilutionOptions {
    /// The validated sizes 5, 10 and 20; first-stage single tubes only.
    fn default() -> Self {
        DilutionOptions {
            pool_sizes: VALIDATED_SIZES.to_vec(),
            with_retests: false,
        }
    }
}

/// The measured sensitivity of one pool size, for one lab or all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSensitivity {
    /// The lab of the single tubes' results, or [`ALL_LABS`].
    pub lab: String,
    /// Persons per pool.
    pub pool_size: u32,
    /// Single-tube positives with a Ct.
    pub single_positives: u64,
    /// Of them, those with `Ct + log2 k ≥ cut-off`: a k-pool would likely miss them.
    pub within_log2k: u64,
    /// `within_log2k / single_positives`; none without a positive.
    pub share_missed: Option<f64>,
    /// `1 − share_missed`: the measured sensitivity of a k-pool.
    pub sensitivity: Option<f64>,
}

/// The measured Ct shift of one pool size, for one lab or all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolShift {
    /// The lab of the pools' results, or [`ALL_LABS`].
    pub lab: String,
    /// Persons recorded in each pool.
    pub pool_size: u32,
    /// Pools measured: positive, exactly one positive person found by the retests,
    /// both Cts stated.
    pub pools: u64,
    /// Mean of pool Ct − person's single-tube Ct.
    pub mean_shift: Option<f64>,
    /// Its 90th percentile (nearest rank).
    pub p90_shift: Option<f64>,
    /// `log2 k`: the shift of a k-fold dilution.
    pub expected_shift: f64,
}

/// A round's dilution risk (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dilution {
    /// The round.
    pub round: String,
    /// The store's Ct cut-off.
    pub ct_cutoff: f32,
    /// Which Ct is read.
    pub ct_read: &'static str,
    /// Whether retest single tubes count among the single-tube positives.
    pub with_retests: bool,
    /// Single-tube positives counted, with a Ct.
    pub single_positives: u64,
    /// Single-tube positives without a Ct (left out).
    pub single_positives_without_ct: u64,
    /// Positive pools.
    pub positive_pools: u64,
    /// Of them, measured (one positive person found, both Cts stated).
    pub pools_measured: u64,
    /// Of them, whose retests found no positive person (yet).
    pub pools_none_found: u64,
    /// Of them, whose retests found two or more positive persons.
    pub pools_several_found: u64,
    /// Of them, one positive person found but a Ct missing.
    pub pools_without_ct: u64,
    /// Sensitivity by lab (labs by name, then [`ALL_LABS`]) and pool size.
    pub sensitivity: Vec<PoolSensitivity>,
    /// Shift by lab (labs by name, then [`ALL_LABS`]) and pool size.
    pub shift: Vec<PoolShift>,
}

/// One line of the list `pooltrack dilution --out` writes: a sensitivity row
/// (`part` = `sensitivity`) or a shift row (`part` = `shift`), the other part's
/// columns empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DilutionRow {
    /// The round.
    pub round: String,
    /// `sensitivity` or `shift`.
    pub part: &'static str,
    /// The lab, or [`ALL_LABS`].
    pub lab: String,
    /// Persons per pool.
    pub pool_size: u32,
    /// Single-tube positives (sensitivity) or pools measured (shift).
    pub tubes: u64,
    /// Single-tube positives with `Ct + log2 k ≥ cut-off`.
    pub within_log2k: Option<u64>,
    /// Measured sensitivity of a k-pool.
    pub sensitivity: Option<f64>,
    /// Mean shift.
    pub mean_shift: Option<f64>,
    /// p90 shift.
    pub p90_shift: Option<f64>,
    /// `log2 k`.
    pub expected_shift: f64,
}

impl ListRow for DilutionRow {
    const HEADER: &'static [&'static str] = &[
        "round",
        "part",
        "lab",
        "pool_size",
        "tubes",
        "within_log2k",
        "sensitivity",
        "mean_shift",
        "p90_shift",
        "expected_shift",
    ];
}

/// The lower stated Ct of result row `r`.
fn lower_ct(results: &ResultFacts, r: usize) -> Option<f32> {
    match results.cts(r) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn log2(k: u32) -> f64 {
    f64::from(k).log2()
}

/// Whether a positive of Ct `ct` would likely be missed in a k-pool.
fn within(ct: f32, k: u32, cutoff: f32) -> bool {
    f64::from(ct) + log2(k) >= f64::from(cutoff)
}

/// The value at rank ⌈0.9·n⌉ of `values` (sorted in place).
fn p90(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = (9 * n).div_ceil(10).max(1);
    values.get(rank - 1).copied()
}

fn mean(values: &[f64]) -> Option<f64> {
    // Pools are far below 2^53: exact.
    #[allow(clippy::cast_precision_loss)]
    let n = values.len() as f64;
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / n)
}

/// The lab names of a round's result rows.
fn lab_of(labs: &Labels, r: u32) -> &str {
    if r == NONE {
        return NO_LAB;
    }
    labs.of_row(r as usize).unwrap_or(NO_LAB)
}

impl Dilution {
    /// Measures `round`'s dilution risk against the store's cut-off.
    ///
    /// ```
    /// use pooltrack::dilution::{Dilution, DilutionOptions};
    /// use pooltrack::ingest::{IngestOptions, ingest_collections, ingest_results};
    /// use pooltrack::store::Store;
    /// use pooltrack::tracker::Decided;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (tubes, results) = (dir.path().join("tubes.csv"), dir.path().join("results.csv"));
    /// std::fs::write(
    ///     &tubes,
    ///     "tube,person,mode,capacity,collected_at\n\
    ///      SG-1,P-1,single,1,2022-04-02 08:00\nSG-2,P-2,single,1,2022-04-02 08:00\n\
    ///      PL-1,P-3,pool,2,2022-04-02 08:00\nPL-1,P-4,pool,2,2022-04-02 08:00\n\
    ///      RT-1,P-3,single,1,2022-04-02 15:00\nRT-2,P-4,single,1,2022-04-02 15:00\n",
    /// )?;
    /// // Cut-off 40: SG1 at 38 is within log2 5 = 2.32 of it, SG2 at 30 is not. The
    /// // pool of 2 reads 31.5, its positive member 30.5: a shift of 1 = log2 2.
    /// std::fs::write(
    ///     &results,
    ///     "tube,result,ct_orf1ab,ct_n,reported_at,lab\n\
    ///      SG-1,positive,38,38.5,2022-04-02 12:00,L1\nSG-2,positive,30.2,30,2022-04-02 12:00,L1\n\
    ///      PL-1,positive,31.5,32,2022-04-02 12:00,L1\n\
    ///      RT-1,positive,30.5,31,2022-04-02 19:00,L1\nRT-2,negative,,,2022-04-02 19:00,L1\n",
    /// )?;
    /// let mut store = Store::open_writer(&dir.path().join("store"))?;
    /// let opts = IngestOptions::default();
    /// ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
    /// ingest_results(&mut store, &[results], &opts, None)?;
    ///
    /// let round = Decided::load(&store, "R1")?;
    /// let d = Dilution::compute(&store, &round, &DilutionOptions::default())?;
    /// let all5 = d.sensitivity.iter().find(|s| s.lab == "(all)" && s.pool_size == 5).expect("a row");
    /// assert_eq!((all5.single_positives, all5.within_log2k, all5.sensitivity), (2, 1, Some(0.5)));
    /// let shift = d.shift.iter().find(|s| s.lab == "(all)").expect("a row");
    /// assert_eq!((shift.pool_size, shift.pools, shift.mean_shift), (2, 1, Some(1.0)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compute(store: &Store, round: &Decided, opts: &DilutionOptions) -> Result<Dilution> {
        let cutoff = store.manifest().settings.ct_cutoff;
        let stages = round.stages(store)?;
        let labs = labels(store, &round.name, BatchKind::Results, "lab")?;
        let (t, rs) = (&round.tubes, &round.results);
        let positive = |r: u32| r != NONE && rs.outcome.get(r as usize) == Some(&Outcome::Positive);

        // Single-tube positives by lab.
        let mut singles: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
        let mut without_ct = 0u64;
        for i in 0..t.len() {
            let r = t.result[i];
            if t.mode[i] != Mode::Single || !positive(r) {
                continue;
            }
            if !opts.with_retests && !stages.is_first_stage(i) {
                continue;
            }
            match lower_ct(rs, r as usize) {
                Some(ct) => singles.entry(lab_of(&labs, r)).or_default().push(ct),
                None => without_ct += 1,
            }
        }
        let all: Vec<f32> = singles.values().flatten().copied().collect();
        let mut sizes = opts.pool_sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        sizes.retain(|&k| k > 0);
        let sensitivity_rows = |lab: &str, cts: &[f32]| -> Vec<PoolSensitivity> {
            sizes
                .iter()
                .map(|&k| {
                    let n = cts.len() as u64;
                    let missed = cts.iter().filter(|&&c| within(c, k, cutoff)).count() as u64;
                    // Counts are far below 2^53: exact.
                    #[allow(clippy::cast_precision_loss)]
                    let share = (n > 0).then(|| missed as f64 / n as f64);
                    PoolSensitivity {
                        lab: lab.to_owned(),
                        pool_size: k,
                        single_positives: n,
                        within_log2k: missed,
                        share_missed: share,
                        sensitivity: share.map(|s| 1.0 - s),
                    }
                })
                .collect()
        };
        let mut sensitivity: Vec<PoolSensitivity> = singles
            .iter()
            .flat_map(|(lab, cts)| sensitivity_rows(lab, cts))
            .collect();
        sensitivity.extend(sensitivity_rows(ALL_LABS, &all));

        // Positive pools and what their members' single tubes found.
        let mut found: Vec<(u32, Option<f32>)> = Vec::new();
        for rows in &round.group_rows {
            let tubes: Vec<usize> = rows
                .iter()
                .map(|&row| round.grouped_tube(row) as usize)
                .filter(|&i| i < t.len())
                .collect();
            let single_ct = tubes
                .iter()
                .filter(|&&i| t.mode[i] == Mode::Single && positive(t.result[i]))
                .map(|&i| lower_ct(rs, t.result[i] as usize))
                .reduce(|a, b| match (a, b) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                });
            let Some(single_ct) = single_ct else { continue };
            for &i in &tubes {
                if t.mode[i] == Mode::Pool && positive(t.result[i]) {
                    found.push((u32::try_from(i).unwrap_or(NONE), single_ct));
                }
            }
        }
        found.sort_unstable_by_key(|&(pool, _)| pool);
        let positive_pools = (0..t.len())
            .filter(|&i| t.mode[i] == Mode::Pool && positive(t.result[i]))
            .count() as u64;
        let (mut several, mut no_ct) = (0u64, 0u64);
        let mut shifts: BTreeMap<(&str, u32), Vec<f64>> = BTreeMap::new();
        let mut measured_pools = 0u64;
        let mut found_pools = 0u64;
        for group in found.chunk_by(|a, b| a.0 == b.0) {
            found_pools += 1;
            let pool = group[0].0 as usize;
            if group.len() > 1 {
                several += 1;
                continue;
            }
            let r = t.result[pool];
            match (lower_ct(rs, r as usize), group[0].1) {
                (Some(pool_ct), Some(person_ct)) => {
                    measured_pools += 1;
                    let shift = f64::from(pool_ct) - f64::from(person_ct);
                    let k = t.members[pool];
                    shifts.entry((lab_of(&labs, r), k)).or_default().push(shift);
                    shifts.entry((ALL_LABS, k)).or_default().push(shift);
                }
                _ => no_ct += 1,
            }
        }
        // Labs by name, then all labs together.
        let mut shift: Vec<PoolShift> = shifts
            .into_iter()
            .map(|((lab, k), mut v)| PoolShift {
                lab: lab.to_owned(),
                pool_size: k,
                pools: v.len() as u64,
                mean_shift: mean(&v),
                p90_shift: p90(&mut v),
                expected_shift: log2(k),
            })
            .collect();
        shift.sort_by(|a, b| {
            (a.lab == ALL_LABS, &a.lab, a.pool_size).cmp(&(b.lab == ALL_LABS, &b.lab, b.pool_size))
        });
        Ok(Dilution {
            round: round.name.clone(),
            ct_cutoff: cutoff,
            ct_read: "the lower stated Ct of ORF1ab and N",
            with_retests: opts.with_retests,
            single_positives: all.len() as u64,
            single_positives_without_ct: without_ct,
            positive_pools,
            pools_measured: measured_pools,
            pools_none_found: positive_pools.saturating_sub(found_pools),
            pools_several_found: several,
            pools_without_ct: no_ct,
            sensitivity,
            shift,
        })
    }

    /// Both parts as one list (sensitivity rows, then shift rows).
    pub fn rows(&self) -> Vec<DilutionRow> {
        let sens = self.sensitivity.iter().map(|s| DilutionRow {
            round: self.round.clone(),
            part: "sensitivity",
            lab: s.lab.clone(),
            pool_size: s.pool_size,
            tubes: s.single_positives,
            within_log2k: Some(s.within_log2k),
            sensitivity: s.sensitivity,
            mean_shift: None,
            p90_shift: None,
            expected_shift: log2(s.pool_size),
        });
        let shift = self.shift.iter().map(|s| DilutionRow {
            round: self.round.clone(),
            part: "shift",
            lab: s.lab.clone(),
            pool_size: s.pool_size,
            tubes: s.pools,
            within_log2k: None,
            sensitivity: None,
            mean_shift: s.mean_shift,
            p90_shift: s.p90_shift,
            expected_shift: s.expected_shift,
        });
        sens.chain(shift).collect()
    }
}

/// The measured sensitivity of a k-pool in `round` for each of `pool_sizes`, all labs
/// together, from its first-stage single-tube positives (see the module docs): what a
/// plan can use in place of an assumed sensitivity per pool size. A size whose
/// `sensitivity` is `None` had no single-tube positive with a Ct to measure it by.
///
/// ```
/// # use pooltrack::ingest::{IngestOptions, ingest_collections, ingest_results};
/// # use pooltrack::store::Store;
/// # let dir = tempfile::tempdir()?;
/// # let (tubes, results) = (dir.path().join("tubes.csv"), dir.path().join("results.csv"));
/// # std::fs::write(&tubes, "tube,person,mode,collected_at\nSG-1,P-1,single,2022-04-02 08:00\nSG-2,P-2,single,2022-04-02 08:00\nSG-3,P-3,single,2022-04-02 08:00\nSG-4,P-4,single,2022-04-02 08:00\n")?;
/// # std::fs::write(&results, "tube,result,ct_orf1ab,ct_n,reported_at\nSG-1,positive,36.5,37,2022-04-02 12:00\nSG-2,positive,30,30,2022-04-02 12:00\nSG-3,positive,25,26,2022-04-02 12:00\nSG-4,positive,38.9,39,2022-04-02 12:00\n")?;
/// # let mut store = Store::open_writer(&dir.path().join("store"))?;
/// # let opts = IngestOptions::default();
/// # ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
/// # ingest_results(&mut store, &[results], &opts, None)?;
/// use pooltrack::dilution::measured_sensitivity;
/// // Single-tube positives at Ct 25, 30, 36.5 and 38.9; cut-off 40.
/// let s = measured_sensitivity(&store, "R1", &[5, 10, 20])?;
/// let by_size: Vec<(u32, Option<f64>)> = s.iter().map(|s| (s.pool_size, s.sensitivity)).collect();
/// // log2 5 = 2.32 and log2 10 = 3.32: only 38.9 reaches 40 (36.5 + 3.32 = 39.82);
/// // log2 20 = 4.32: 36.5 too (40.82).
/// assert_eq!(by_size, [(5, Some(0.75)), (10, Some(0.75)), (20, Some(0.5))]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`Decided::load`] and [`Dilution::compute`]: an unknown round, a damaged store.
pub fn measured_sensitivity(
    store: &Store,
    round: &str,
    pool_sizes: &[u32],
) -> Result<Vec<PoolSensitivity>> {
    let decided = Decided::load(store, round)?;
    let opts = DilutionOptions {
        pool_sizes: pool_sizes.to_vec(),
        with_retests: false,
    };
    let d = Dilution::compute(store, &decided, &opts)?;
    Ok(d.sensitivity
        .into_iter()
        .filter(|s| s.lab == ALL_LABS)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p90_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(p90(&mut v), Some(9.0));
        let mut v = vec![3.0];
        assert_eq!(p90(&mut v), Some(3.0));
        let mut v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(p90(&mut v), Some(10.0)); // ⌈9.9⌉ = 10
        assert_eq!(p90(&mut []), None);
    }

    #[test]
    fn within_log2k_of_the_cutoff() {
        // log2 10 = 3.3219: 36.68 + 3.3219 = 40.002 ≥ 40, 36.67 + 3.3219 < 40.
        assert!(within(36.68, 10, 40.0));
        assert!(!within(36.67, 10, 40.0));
        assert!(!within(39.5, 1, 40.0));
        assert!(within(40.5, 1, 40.0));
    }
}
