//! The round report: every figure an office needs about one round on one page —
//! status counts, plate QC, coverage of the population register, turnaround, progress
//! by hour, health-code colors, review flags, prevalence by area with its intervals,
//! the dilution risk of pooling, the chain of custody and the lab audit — gathered
//! once as [`RoundReport`],
//! which is both the JSON other systems read and what [`html`] draws.
//!
//! The round is decided once ([`Statuses::load`]) and that decision feeds every part,
//! so the parts agree with each other. Lists that grow with the city (untested
//! persons, late tubes, ...) hold only their first [`LIST_CAP`] rows beside their total
//! ([`Capped`]): the page must open in a browser at 25 million persons, and the full
//! lists are one `pooltrack worklist` or `turnaround --json` away.
//!
//! ```
//! # fn main() -> pooltrack::Result<()> {
//! # let dir = tempfile::tempdir().map_err(|e| pooltrack::Error::io("tmp", e))?;
//! # let file = |name: &str, text: &str| {
//! #     let p = dir.path().join(name);
//! #     std::fs::write(&p, text).map(|()| p).map_err(|e| pooltrack::Error::io(name, e))
//! # };
//! # let mut store = pooltrack::store::Store::open_writer(&dir.path().join("store"))?;
//! # let opts = pooltrack::ingest::IngestOptions::default();
//! # let tubes = file("tubes.csv", "tube,person,mode,collected_at\nPL0001,p1,pool,2022-04-02 08:00:00\nPL0001,p2,pool,2022-04-02 08:01:00\n")?;
//! # pooltrack::ingest::ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
//! use pooltrack::round_report::RoundReport;
//! use pooltrack::time::{parse, Offset};
//!
//! let as_of = parse(b"2022-04-03T12:00:00+08:00", Offset::UTC).expect("a time");
//! let report = RoundReport::build(&store, "R1", as_of)?;
//! assert_eq!(report.counts.persons, 2);
//! // The pool waited past its 24 h deadline; no register, so no coverage.
//! assert_eq!(report.turnaround.late_tubes.total, 1);
//! assert!(report.coverage.is_none());
//! assert_eq!(report.health_codes.green, 2); // pending: the lab's delay is not theirs
//! # Ok(()) }
//! ```

mod audit_part;
mod charts;
pub mod custody;
pub mod html;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Result;
use crate::coverage::{AreaLevel, Coverage, UnregisteredPerson, UntestedPerson};
use crate::dilution::{Dilution, DilutionOptions};
use crate::health_code::Tally;
use crate::prevalence::{AreaPrevalence, Assay, By, Prevalence};
use crate::review::{FlagRow, Review, ReviewCounts};
use crate::store::manifest::FailedPlate;
use crate::store::{Store, fsutil};
use crate::time::{self, Millis};
use crate::tracker::plate_qc;
use crate::tracker::{Counts, Statuses};
use crate::turnaround::{
    self, Deadlines, Histogram, LabStats, LateCounts, LateTube, ProgressPoint, RecallDelay, Stats,
    Turnaround,
};
use crate::worklist::{self, RerunRow};

pub use audit_part::AuditSection;

/// Rows kept of each list that can grow with the city.
pub const LIST_CAP: usize = 100;

/// A list cut to its first [`LIST_CAP`] rows, with the length of the whole list.
///
/// ```
/// use pooltrack::round_report::Capped;
/// let c = Capped::of((0..250).collect::<Vec<u32>>());
/// assert_eq!((c.total, c.first.len(), c.first[99]), (250, 100, 99));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capped<T> {
    /// Rows in the whole list.
    pub total: u64,
    /// Its first rows, at most [`LIST_CAP`], in the list's order.
    pub first: Vec<T>,
}

impl<T> Capped<T> {
    /// Keeps the first [`LIST_CAP`] rows of `all`.
    pub fn of(mut all: Vec<T>) -> Capped<T> {
        let total = all.len() as u64;
        all.truncate(LIST_CAP);
        Capped { total, first: all }
    }

    /// Whether rows were left out.
    pub(crate) fn is_cut(&self) -> bool {
        self.total > self.first.len() as u64
    }
}

/// Plates whose controls failed, and the tubes waiting to be run again.
#[derive(Debug, Clone, Serialize)]
pub struct PlateQc {
    /// Every failed plate of the round with the reason, in commit order.
    pub failed_plates: Vec<FailedPlate>,
    /// Tubes whose only results came from failed plates, the longest-waiting first.
    pub reruns: Capped<RerunRow>,
}

/// The round's coverage of the population register.
#[derive(Debug, Clone, Serialize)]
pub struct CoverageSection {
    /// Totals, by district and by community.
    #[serde(flatten)]
    pub totals: Coverage,
    /// Registered persons without a tube, by district, community and person.
    pub untested_persons: Capped<UntestedPerson>,
    /// Persons tested but not registered, with their first tube, by site and time.
    pub unregistered_persons: Capped<UnregisteredPerson>,
}

/// Turnaround, deadlines and progress.
#[derive(Debug, Clone, Serialize)]
pub struct TurnaroundSection {
    /// The deadlines applied (from the store's settings).
    pub deadlines: Deadlines,
    /// The round's first collection.
    pub first_collection: Option<String>,
    /// Median, p90 and p99 of the whole round (nearest rank, minutes).
    pub round_stats: Stats,
    /// The same by lab.
    pub by_lab: Vec<LabStats>,
    /// Collection to receipt, for tubes whose result gave `received_at`.
    pub transport: Stats,
    /// Receipt to report, for the same tubes.
    pub in_lab: Stats,
    /// Late tubes by kind.
    pub late_counts: LateCounts,
    /// Tubes past their deadline, the latest first.
    pub late_tubes: Capped<LateTube>,
    /// Each positive pool's recall delay, the longest first.
    pub recall_delays: Capped<RecallDelay>,
    /// Share of collected tubes with a result, hour by hour since the first collection.
    pub progress: Vec<ProgressPoint>,
    /// Turnaround in 1-hour bins.
    pub histogram: Histogram,
}

/// Review flags: counts and the flags themselves.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewSection {
    /// Flags by kind.
    pub counts: ReviewCounts,
    /// Each flag (kind, tube, persons, detail), by kind.
    pub flags: Capped<FlagRow>,
}

/// Prevalence from the round's first-stage tubes (see [`crate::prevalence`]).
#[derive(Debug, Clone, Serialize)]
pub struct PrevalenceSection {
    /// The assay assumed (`[prevalence]` in `STORE/pooltrack.toml`, else perfect).
    pub assay: Assay,
    /// First-stage tubes.
    pub first_stage_tubes: u64,
    /// Follow-up tubes left out (retests, resamples).
    pub follow_up_tubes: u64,
    /// The whole round, then each district; `null` without a population register.
    pub by_district: Option<Vec<AreaPrevalence>>,
    /// The whole round, then each lab.
    pub by_lab: Vec<AreaPrevalence>,
}

/// Everything the round report shows; serialized, it is `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    /// The round.
    pub round: String,
    /// "Now" for tubes still waiting, in the store's time zone.
    pub as_of: String,
    /// The store folder the report was made from.
    pub store: String,
    /// How many rows lists keep at most (each list gives its `total`).
    pub list_cap: usize,
    /// Persons by status, tubes by result.
    pub counts: Counts,
    /// Failed plates and reruns.
    pub plate_qc: PlateQc,
    /// Coverage of the population register; `null` when the store has none.
    pub coverage: Option<CoverageSection>,
    /// Turnaround, late tubes, recall delays, progress.
    pub turnaround: TurnaroundSection,
    /// Health-code colors.
    pub health_codes: Tally,
    /// Review flags.
    pub review: ReviewSection,
    /// Prevalence with 95 % likelihood-ratio intervals, by district and by lab.
    pub prevalence: PrevalenceSection,
    /// Measured sensitivity of each validated pool size and the Ct shift of pools.
    pub dilution: Dilution,
    /// What the report could not include, and why (no register, skipped log lines).
    pub notes: Vec<String>,
    /// The chain of custody: lost or stuck tubes, boxes, transport, specimen limit.
    pub custody: custody::CustodySection,
    /// The lab audit (`pooltrack audit` without a plan).
    pub audit: AuditSection,
    /// Health codes across every round of the store as of `as_of` (see
    /// [`crate::health_code::rounds`]), by color and reason; `null` when the store holds
    /// one round.
    pub health_codes_across_rounds: Option<crate::health_code::rounds::Counts>,
}

impl RoundReport {
    /// Gathers the report of `round` with `as_of` as "now", deciding the round once.
    ///
    /// Coverage needs a population register: without one it is `None` and a note says
    /// so. Fails as the parts do: an unknown round, a damaged store, bad deadlines.
    pub fn build(store: &Store, round: &str, as_of: Millis) -> Result<RoundReport> {
        Ok(Self::build_as_of(store, round, Some(as_of))?.0)
    }

    /// [`RoundReport::build`], with "now" the round's last result (else its last
    /// collection) when `as_of` is `None`; also returns the time used and why.
    pub fn build_as_of(
        store: &Store,
        round: &str,
        as_of: Option<Millis>,
    ) -> Result<(RoundReport, Millis, turnaround::AsOf)> {
        // The register's join (coverage, and each row's district for the audit and the
        // prevalence by district) reads the register and the round's person indexes, not
        // the decided round: it runs from the start, beside the round's load and the
        // parts on tubes, so neither core waits for the other's serial stretches.
        let (tubes_side, register) = rayon::join(
            || -> Result<_> {
                let statuses = Statuses::load(store, round)?;
                let (as_of, basis) = match as_of {
                    Some(t) => (t, turnaround::AsOf::Given),
                    None => turnaround::round_as_of(&statuses),
                };
                let parts = TubeParts::compute(store, &statuses, as_of)?;
                Ok((statuses, as_of, basis, parts))
            },
            || register_join(store, round),
        );
        let (statuses, as_of, basis, parts) = tubes_side?;
        let (coverage, district_rows, note) = register?;
        let TubeParts {
            turnaround: t,
            review,
            plate_qc,
            dilution,
            custody,
            by_lab,
            mut notes,
        } = parts;
        let assay = by_lab.assay;
        let districts = district_rows.as_ref().map(|r| r.of_row.as_slice());
        let (audit, by_district) = rayon::join(
            || AuditSection::build(store, &statuses, districts),
            || {
                district_rows
                    .as_ref()
                    .map(|rows| {
                        Prevalence::compute_placed(
                            store,
                            &statuses,
                            By::District,
                            assay,
                            Some(rows),
                        )
                        .map(|p| p.rows)
                    })
                    .transpose()
            },
        );
        let (audit, by_district) = (audit?, by_district?);
        let prevalence = PrevalenceSection {
            assay,
            first_stage_tubes: by_lab.first_stage_tubes,
            follow_up_tubes: by_lab.follow_up_tubes,
            by_district,
            by_lab: by_lab.rows,
        };
        notes.extend(note);
        let untested = coverage.as_ref().map_or(0, |c| c.totals.untested);
        let counts = statuses.counts();
        let health_codes = Tally::of_counts(&counts.by_status, untested);
        let report = RoundReport {
            round: round.to_owned(),
            as_of: time::format(as_of, statuses.zone),
            store: store.root().display().to_string(),
            list_cap: LIST_CAP,
            counts,
            plate_qc,
            coverage,
            turnaround: TurnaroundSection {
                deadlines: t.deadlines,
                first_collection: t.first_collection,
                round_stats: t.round_stats,
                by_lab: t.by_lab,
                transport: t.transport,
                in_lab: t.in_lab,
                late_counts: t.late_counts,
                late_tubes: Capped {
                    total: t.late_total,
                    first: t.late,
                },
                recall_delays: Capped {
                    total: t.recall_delays_total,
                    first: t.recall_delays,
                },
                progress: t.progress,
                histogram: t.histogram,
            },
            health_codes,
            review: ReviewSection {
                counts: review.counts,
                flags: Capped::of(review.rows()),
            },
            prevalence,
            dilution,
            notes,
            custody,
            audit,
            health_codes_across_rounds: across_rounds(store, as_of)?,
        };
        Ok((report, as_of, basis))
    }

    /// Writes `DIR/index.html` and `DIR/report.json` (creating `DIR`; files 0600,
    /// each replaced atomically) and returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        fsutil::create_dir_all(dir)?;
        let page = dir.join("index.html");
        let json = dir.join("report.json");
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| crate::Error::io(&json, e.into()))?;
        bytes.push(b'\n');
        fsutil::write_atomic(&json, &bytes)?;
        fsutil::write_atomic(&page, html::render(self).as_bytes())?;
        Ok((page, json))
    }
}

/// The parts of the report read from the decided round's tubes (and the prevalence by
/// lab, which needs no register), each on whichever core is free.
struct TubeParts {
    turnaround: Turnaround,
    review: Review,
    plate_qc: PlateQc,
    dilution: Dilution,
    custody: custody::CustodySection,
    by_lab: Prevalence,
    notes: Vec<String>,
}

impl TubeParts {
    fn compute(store: &Store, statuses: &Statuses, as_of: Millis) -> Result<TubeParts> {
        let config = store.config()?;
        let deadlines = config.deadlines;
        let log = turnaround::recall_runs(store, &statuses.name)?;
        let notes = log
            .skipped
            .iter()
            .map(|why| format!("skipped a malformed recall-run log line: {why}"))
            .collect();
        let assay = Assay {
            sensitivity: config.prevalence.sensitivity,
            specificity: config.prevalence.specificity,
        };
        // The two longest parts (turnaround, custody) on either side.
        let ((t, review), ((custody, by_lab), (plate_qc, dilution))) = rayon::join(
            || {
                rayon::join(
                    || Turnaround::compute(store, statuses, deadlines, &log.runs, as_of, LIST_CAP),
                    || Review::compute(store, statuses),
                )
            },
            || {
                rayon::join(
                    || {
                        rayon::join(
                            || custody::CustodySection::compute(store, statuses, as_of),
                            || Prevalence::compute(store, statuses, By::Lab, assay),
                        )
                    },
                    || {
                        rayon::join(
                            || -> Result<_> {
                                Ok(PlateQc {
                                    failed_plates: plate_qc::failed_plates(store, &statuses.name),
                                    reruns: Capped::of(worklist::reruns(store, statuses)?),
                                })
                            },
                            || Dilution::compute(store, statuses, &DilutionOptions::default()),
                        )
                    },
                )
            },
        );
        Ok(TubeParts {
            turnaround: t?,
            review: review?,
            plate_qc: plate_qc?,
            dilution: dilution?,
            custody: custody?,
            by_lab: by_lab?,
            notes,
        })
    }
}

/// What the register's join gives the report: coverage, each collection row's district
/// (for the audit's strata and the prevalence by district), and a note when the store
/// has no register.
type RegisterJoin = (
    Option<CoverageSection>,
    Option<crate::coverage::RowAreas>,
    Option<String>,
);

/// One join of the register for coverage and the districts of the audit's strata and
/// of the prevalence by district.
fn register_join(store: &Store, round: &str) -> Result<RegisterJoin> {
    if store.manifest().population().next().is_none() {
        let note = "no population register in the store, so no \
                    coverage: pooltrack ingest population FILE";
        return Ok((None, None, Some(note.to_owned())));
    }
    let (totals, rows) = Coverage::compute_with_areas(store, round, AreaLevel::District)?;
    let coverage = CoverageSection {
        untested_persons: Capped::of(totals.untested(store)?),
        unregistered_persons: Capped::of(totals.unregistered(store)?),
        totals,
    };
    Ok((Some(coverage), Some(rows), None))
}

/// The codes across rounds as of the report's time, when the store holds several rounds.
fn across_rounds(
    store: &Store,
    as_of: Millis,
) -> Result<Option<crate::health_code::rounds::Counts>> {
    if store.manifest().rounds().len() < 2 {
        return Ok(None);
    }
    crate::health_code::rounds::counts_as_of(store, as_of).map(Some)
}
