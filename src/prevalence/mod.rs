//! Prevalence by area from a round's own tubes: the maximum-likelihood prevalence of
//! first-stage tubes of mixed sizes, with a 95 % likelihood-ratio interval (see
//! [`mle`] for the likelihood, the search and why that interval), by district,
//! community, sampling site or lab.
//!
//! Which tubes count:
//! - **first-stage tubes only** ([`crate::tracker::Stages`]): the single-tube retest
//!   of a recalled person, or the resample of an invalid tube, would count the person
//!   twice and is left out;
//! - each tube's **effective result** ([`crate::tracker`]): a result from a plate whose
//!   controls failed is **void** and never counts, so a tube whose only results are
//!   void counts as without a result until it is run again;
//! - **positive** and **negative** tubes enter the likelihood; **inconclusive** (one
//!   target amplified) and **invalid** tubes, and tubes without a result, are left out
//!   as not informative, and each row says how many;
//! - a tube's size `k` is the persons recorded in it (a site's last pool may be partly
//!   filled), not the capacity it was meant for.
//!
//! Where a tube is counted:
//! - by district or community: the area its persons are registered in
//!   ([`crate::coverage::areas_of_rows`]: each field from the latest registration
//!   stating it); a tube whose persons are registered in different areas counts under
//!   [`MIXED`] (a tube's result cannot be split between areas, and assigning it to one
//!   would bias that one), a person not in the register under [`UNREGISTERED_AREA`];
//! - by site: the site of the tube's first collection row (a tube whose rows disagree is
//!   flagged by the review);
//! - by lab: the lab of its effective result.
//!
//! Each row gives the tubes and persons behind its estimate and the positives the
//! estimate implies among those persons (`prevalence × persons`, with the interval's
//! ends likewise). [`trend`] puts several rounds' rows side by side, area by area.
//!
//! ```
//! use pooltrack::ingest::{IngestOptions, ingest_collections, ingest_results};
//! use pooltrack::prevalence::{Assay, By, Prevalence};
//! use pooltrack::store::Store;
//! use pooltrack::tracker::Decided;
//!
//! let dir = tempfile::tempdir()?;
//! let (tubes, results) = (dir.path().join("tubes.csv"), dir.path().join("results.csv"));
//! let mut rows = String::from("tube,person,mode,capacity,collected_at\n");
//! for (tube, first) in [("PL-1", 0), ("PL-2", 10), ("PL-3", 20)] {
//!     for p in first..first + 10 {
//!         rows.push_str(&format!("{tube},P-{p},pool,10,2022-04-02 08:00\n"));
//!     }
//! }
//! std::fs::write(&tubes, rows)?;
//! std::fs::write(
//!     &results,
//!     "tube,result,reported_at\nPL-1,positive,2022-04-02 12:00\n\
//!      PL-2,negative,2022-04-02 12:00\nPL-3,negative,2022-04-02 12:00\n",
//! )?;
//! let mut store = Store::open_writer(&dir.path().join("store"))?;
//! let opts = IngestOptions::default();
//! ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
//! ingest_results(&mut store, &[results], &opts, None)?;
//!
//! let round = Decided::load(&store, "R1")?;
//! let p = Prevalence::compute(&store, &round, By::Round, Assay::default())?;
//! let all = &p.rows[0];
//! assert_eq!((all.tubes, all.persons, all.positive_tubes), (3, 30, 1));
//! // One of three tubes of 10 positive: p̂ = 1 − (2/3)^(1/10) = 0.03974.
//! let p_hat = all.prevalence.expect("an estimate");
//! assert!((p_hat - 0.039_735).abs() < 1e-6);
//! assert!((all.positives.expect("an estimate") - 30.0 * p_hat).abs() < 1e-9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod mle;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

pub use mle::{Assay, CHI2_95, Estimate, SizeCount, estimate, log_likelihood};

use crate::coverage::{self, AreaLevel, NO_AREA};
use crate::model::Outcome;
use crate::output::ListRow;
use crate::store::index;
use crate::store::labels::{UNSTATED, labels};
use crate::store::{BatchKind, Store};
use crate::tracker::{Decided, NONE};
use crate::{Error, Result};

/// The row of the whole round.
pub const ALL: &str = "(all)";
/// The area of tubes whose persons are registered in different areas.
pub const MIXED: &str = "(mixed)";
/// The area of tubes of persons not in the population register.
pub const UNREGISTERED_AREA: &str = "(unregistered)";
/// The lab of results that name none.
pub const NO_LAB: &str = "(no lab)";

/// What to estimate prevalence by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// The whole round only.
    Round,
    /// District of the persons' registration.
    District,
    /// District and community of the persons' registration.
    Community,
    /// The tube's sampling site.
    Site,
    /// The lab of the tube's result.
    Lab,
}

impl By {
    /// The word used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            By::Round => "round",
            By::District => "district",
            By::Community => "community",
            By::Site => "site",
            By::Lab => "lab",
        }
    }
}

/// One area of one round: the tubes behind the estimate and the estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaPrevalence {
    /// The round.
    pub round: String,
    /// The district of a community (by community only; else empty).
    pub district: String,
    /// The area: [`ALL`], a district, community, site or lab, [`MIXED`],
    /// [`UNREGISTERED_AREA`], or `(none)` / [`NO_LAB`] where the rows name none.
    pub area: String,
    /// First-stage tubes that entered the likelihood (positive or negative).
    pub tubes: u64,
    /// Persons in those tubes.
    pub persons: u64,
    /// Of those tubes, positive.
    pub positive_tubes: u64,
    /// Of those tubes, negative.
    pub negative_tubes: u64,
    /// First-stage tubes left out as inconclusive.
    pub inconclusive_tubes: u64,
    /// First-stage tubes left out as invalid.
    pub invalid_tubes: u64,
    /// First-stage tubes left out for want of a result that counts (pending, or only
    /// void results of failed plates).
    pub tubes_without_result: u64,
    /// The counted tubes by size, `size:tubes` separated by spaces (`1:40 10:960`).
    pub tubes_by_size: String,
    /// Maximum-likelihood prevalence; none without a counted tube.
    pub prevalence: Option<f64>,
    /// Lower end of its 95 % likelihood-ratio interval.
    pub lower: Option<f64>,
    /// Upper end of the interval.
    pub upper: Option<f64>,
    /// Estimated infected persons among `persons`: `prevalence × persons`.
    pub positives: Option<f64>,
    /// `lower × persons`.
    pub positives_lower: Option<f64>,
    /// `upper × persons`.
    pub positives_upper: Option<f64>,
}

impl ListRow for AreaPrevalence {
    const HEADER: &'static [&'static str] = &[
        "round",
        "district",
        "area",
        "tubes",
        "persons",
        "positive_tubes",
        "negative_tubes",
        "inconclusive_tubes",
        "invalid_tubes",
        "tubes_without_result",
        "tubes_by_size",
        "prevalence",
        "lower",
        "upper",
        "positives",
        "positives_lower",
        "positives_upper",
    ];
}

/// A round's prevalence by area.
#[derive(Debug, Clone, Serialize)]
pub struct Prevalence {
    /// The round.
    pub round: String,
    /// What the rows are by.
    pub by: By,
    /// The assay the likelihood assumes.
    pub assay: Assay,
    /// First-stage tubes.
    pub first_stage_tubes: u64,
    /// Tubes left out as follow-ups of another tube of their person (retests,
    /// resamples).
    pub follow_up_tubes: u64,
    /// The whole round ([`ALL`]) first, then each area by name.
    pub rows: Vec<AreaPrevalence>,
}

/// What a tube adds to its area.
#[derive(Debug, Default, Clone)]
struct Tally {
    /// Positive and negative tubes by size.
    sizes: BTreeMap<u32, [u64; 2]>,
    inconclusive: u64,
    invalid: u64,
    without_result: u64,
}

impl Tally {
    fn add(&mut self, size: u32, result: Option<Outcome>) {
        match result {
            Some(Outcome::Positive) => self.sizes.entry(size).or_default()[0] += 1,
            Some(Outcome::Negative) => self.sizes.entry(size).or_default()[1] += 1,
            Some(Outcome::Inconclusive) => self.inconclusive += 1,
            Some(Outcome::Invalid) => self.invalid += 1,
            None => self.without_result += 1,
        }
    }

    fn row(&self, round: &str, district: &str, area: &str, assay: Assay) -> AreaPrevalence {
        let sizes: Vec<SizeCount> = self
            .sizes
            .iter()
            .map(|(&size, &[positive, negative])| SizeCount {
                size,
                positive,
                negative,
            })
            .collect();
        let positive: u64 = sizes.iter().map(|s| s.positive).sum();
        let negative: u64 = sizes.iter().map(|s| s.negative).sum();
        let persons: u64 = sizes
            .iter()
            .map(|s| u64::from(s.size) * (s.positive + s.negative))
            .sum();
        let e = estimate(&sizes, assay);
        // Persons are far below 2^53: exact.
        #[allow(clippy::cast_precision_loss)]
        let times = |v: f64| v * persons as f64;
        AreaPrevalence {
            round: round.to_owned(),
            district: district.to_owned(),
            area: area.to_owned(),
            tubes: positive + negative,
            persons,
            positive_tubes: positive,
            negative_tubes: negative,
            inconclusive_tubes: self.inconclusive,
            invalid_tubes: self.invalid,
            tubes_without_result: self.without_result,
            tubes_by_size: sizes
                .iter()
                .map(|s| format!("{}:{}", s.size, s.positive + s.negative))
                .collect::<Vec<_>>()
                .join(" "),
            prevalence: e.map(|e| e.prevalence),
            lower: e.map(|e| e.lower),
            upper: e.map(|e| e.upper),
            positives: e.map(|e| times(e.prevalence)),
            positives_lower: e.map(|e| times(e.lower)),
            positives_upper: e.map(|e| times(e.upper)),
        }
    }
}

/// Each tube's area, as a number into `names` ((district, area) pairs).
struct TubeAreas {
    names: Vec<(String, String)>,
    of_tube: Vec<u32>,
}

impl Prevalence {
    /// Estimates `round`'s prevalence by `by` with `assay` (see the module docs).
    ///
    /// # Errors
    /// [`Error::Usage`] for an assay [`Assay::check`] refuses, or by district or
    /// community without a population register; a damaged store as the reads find it.
    pub fn compute(store: &Store, round: &Decided, by: By, assay: Assay) -> Result<Prevalence> {
        Self::compute_placed(store, round, by, assay, None)
    }

    /// [`Prevalence::compute`] by district or community with the round's rows already
    /// placed in the register's areas at that level (from
    /// [`Coverage::compute_with_areas`](crate::coverage::Coverage::compute_with_areas),
    /// so a report joins the register once); `None` places them here.
    pub fn compute_placed(
        store: &Store,
        round: &Decided,
        by: By,
        assay: Assay,
        placed: Option<&coverage::RowAreas>,
    ) -> Result<Prevalence> {
        let assay = assay.check()?;
        let stages = round.stages(store)?;
        let areas = tube_areas(store, round, by, placed)?;
        let t = &round.tubes;
        let mut all = Tally::default();
        let mut by_area: HashMap<u32, Tally> = HashMap::new();
        let mut first_stage = 0u64;
        for i in 0..t.len() {
            if !stages.is_first_stage(i) {
                continue;
            }
            first_stage += 1;
            let r = t.result[i];
            let result = (r != NONE).then(|| round.results.outcome.get(r as usize).copied());
            let result = result.flatten();
            all.add(t.members[i], result);
            if let Some(&a) = areas.of_tube.get(i) {
                by_area.entry(a).or_default().add(t.members[i], result);
            }
        }
        let mut rows: Vec<AreaPrevalence> = by_area
            .iter()
            .filter_map(|(&a, tally)| {
                let (district, area) = areas.names.get(a as usize)?;
                Some(tally.row(&round.name, district, area, assay))
            })
            .collect();
        rows.sort_by(|a, b| (&a.district, &a.area).cmp(&(&b.district, &b.area)));
        rows.insert(0, all.row(&round.name, "", ALL, assay));
        Ok(Prevalence {
            round: round.name.clone(),
            by,
            assay,
            first_stage_tubes: first_stage,
            follow_up_tubes: stages.follow_ups,
            rows,
        })
    }
}

/// Several rounds' rows, area by area: [`ALL`] first, then the areas by name, each
/// with its rows in the order of `rounds` (an area a round lacks has no row there).
///
/// ```
/// use pooltrack::prevalence::{AreaPrevalence, ALL, trend};
/// let row = |round: &str, area: &str| AreaPrevalence {
///     round: round.into(), district: String::new(), area: area.into(), tubes: 0,
///     persons: 0, positive_tubes: 0, negative_tubes: 0, inconclusive_tubes: 0,
///     invalid_tubes: 0, tubes_without_result: 0, tubes_by_size: String::new(),
///     prevalence: None, lower: None, upper: None, positives: None,
///     positives_lower: None, positives_upper: None,
/// };
/// let r1 = vec![row("R1", ALL), row("R1", "North"), row("R1", "South")];
/// let r2 = vec![row("R2", ALL), row("R2", "South")];
/// let t: Vec<(String, String)> =
///     trend(vec![r1, r2]).into_iter().map(|r| (r.area, r.round)).collect();
/// let want = [(ALL, "R1"), (ALL, "R2"), ("North", "R1"), ("South", "R1"), ("South", "R2")];
/// assert_eq!(t, want.map(|(a, r)| (a.to_owned(), r.to_owned())));
/// ```
pub fn trend(rounds: Vec<Vec<AreaPrevalence>>) -> Vec<AreaPrevalence> {
    let mut rows: Vec<(usize, AreaPrevalence)> = rounds
        .into_iter()
        .enumerate()
        .flat_map(|(i, rows)| rows.into_iter().map(move |r| (i, r)))
        .collect();
    rows.sort_by(|(i, a), (j, b)| {
        (a.area != ALL, &a.district, &a.area, i).cmp(&(b.area != ALL, &b.district, &b.area, j))
    });
    rows.into_iter().map(|(_, r)| r).collect()
}

/// Numbers each tube's area for `by` (an empty list by [`By::Round`]).
fn tube_areas(
    store: &Store,
    round: &Decided,
    by: By,
    placed: Option<&coverage::RowAreas>,
) -> Result<TubeAreas> {
    let t = &round.tubes;
    let damaged = |what: &str| {
        Error::damaged(
            store.root(),
            format!(
                "round {}: the {what} column and the indexes disagree on the rows",
                round.name
            ),
        )
    };
    // A stated label's number, or the one after the last for an unstated one.
    let with_none = |names: Vec<String>, none: &str| -> Vec<(String, String)> {
        names
            .into_iter()
            .chain(std::iter::once(none.to_owned()))
            .map(|n| (String::new(), n))
            .collect()
    };
    match by {
        By::Round => Ok(TubeAreas {
            names: Vec::new(),
            of_tube: Vec::new(),
        }),
        By::Site => {
            let sites = labels(store, &round.name, BatchKind::Collections, "site")?;
            if sites.codes.len() != round.rows {
                return Err(damaged("site"));
            }
            let none = u32::try_from(sites.names.len()).unwrap_or(UNSTATED);
            let of_tube = t
                .row
                .iter()
                .map(|&r| match sites.codes.get(r as usize) {
                    Some(&c) if c != UNSTATED => c,
                    _ => none,
                })
                .collect();
            Ok(TubeAreas {
                names: with_none(sites.names, NO_AREA),
                of_tube,
            })
        }
        By::Lab => {
            let labs = labels(store, &round.name, BatchKind::Results, "lab")?;
            if labs.codes.len() != round.results.outcome.len() {
                return Err(damaged("lab"));
            }
            let none = u32::try_from(labs.names.len()).unwrap_or(UNSTATED);
            let of_tube = t
                .result
                .iter()
                .map(|&r| match labs.codes.get(r as usize) {
                    Some(&c) if r != NONE && c != UNSTATED => c,
                    _ => none,
                })
                .collect();
            Ok(TubeAreas {
                names: with_none(labs.names, NO_LAB),
                of_tube,
            })
        }
        By::District | By::Community => {
            let level = if by == By::District {
                AreaLevel::District
            } else {
                AreaLevel::Community
            };
            let read;
            let rows = if let Some(rows) = placed {
                rows
            } else {
                read = coverage::areas_of_rows(store, &round.name, level)?;
                &read
            };
            if rows.of_row.len() != round.rows {
                return Err(damaged("person"));
            }
            register_areas(store, round, rows, by)
        }
    }
}

/// Each tube's registered area: the area all its rows share, else [`MIXED`].
fn register_areas(
    store: &Store,
    round: &Decided,
    rows: &coverage::RowAreas,
    by: By,
) -> Result<TubeAreas> {
    const UNSET: u32 = u32::MAX - 1;
    const MIXED_CODE: u32 = u32::MAX - 2;
    let mut of_tube = vec![UNSET; round.tubes.len()];
    let index = store.index_of(Some(&round.name))?;
    let rid = index.round_id(&round.name).unwrap_or(0);
    let n_rows = u32::try_from(round.rows).unwrap_or(u32::MAX);
    for (seg, run_tube) in index.collections_of(rid).iter().zip(&round.run_tube) {
        let mut scan = seg.tubes.scan(0..seg.tubes.len());
        while let Some((i, r)) = scan.record()? {
            let Some(slot) = run_tube.get(i).and_then(|&t| of_tube.get_mut(t as usize)) else {
                break;
            };
            let first = seg.base.saturating_add(index::u32_at(r, 32));
            let end = first.saturating_add(index::u32_at(r, 36)).min(n_rows);
            for &area in rows.of_row.get(first as usize..end as usize).unwrap_or(&[]) {
                if *slot == UNSET {
                    *slot = area;
                } else if *slot != area {
                    *slot = MIXED_CODE;
                }
            }
        }
    }
    let mut names: Vec<(String, String)> = rows
        .areas
        .iter()
        .map(|(district, community)| {
            if by == By::Community {
                (district.clone(), community.clone())
            } else {
                (String::new(), district.clone())
            }
        })
        .collect();
    let extra = |names: &mut Vec<(String, String)>, name: &str| {
        names.push((String::new(), name.to_owned()));
        u32::try_from(names.len() - 1).unwrap_or(UNSET)
    };
    let unregistered = extra(&mut names, UNREGISTERED_AREA);
    let mixed = extra(&mut names, MIXED);
    for a in &mut of_tube {
        *a = match *a {
            coverage::UNREGISTERED | UNSET => unregistered,
            MIXED_CODE => mixed,
            a => a,
        };
    }
    Ok(TubeAreas { names, of_tube })
}
