//! Review flags: results a lab or an office should look at again before trusting them.
//!
//! - **discordant pool**: a pool whose effective result is positive, while every one of
//!   its members retested negative in a later single tube. Contamination, a weak sample
//!   lost in the retest, or a swapped tube. Only *positive* pools count: an inconclusive
//!   pool that retests all negative is the expected outcome of a weak signal, not a
//!   contradiction.
//! - **missed by pooling**: a person whose single tube is positive and who has an
//!   earlier pool tube (by collection time) whose effective result is negative: the pool
//!   diluted the sample below detection, or the person was infected in between.
//! - **changed from positive**: a tube whose positive was followed by a non-positive
//!   result; the tracker keeps it positive ([`Tubes::positive_kept`]), a person decides.
//! - **conflicting tube rows**: rows of one tube that disagree about its mode, capacity
//!   or site. Every row was kept (a membership is a physical fact); the tube keeps the
//!   first values stated, and the flag lists every row behind it.
//! - **shared single tube**: a tube its rows call single that holds more than one
//!   person. It is deconvoluted as a pool (its positive recalls everyone in it and
//!   makes no one positive); someone should find out how two swabs came to share it.
//!
//! [`flags`] finds them on the columnar arrays (row and tube numbers only); only persons
//! with several tubes can be discordant or missed, so only their row groups are walked.
//! [`Review::compute`] then reads the text of just the flagged rows.
//!
//! [`Tubes::positive_kept`]: crate::tracker::Tubes::positive_kept

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::model::{Mode, Outcome};
use crate::report::{ResultLine, TubeLine};
use crate::store::Store;
use crate::store::read::{self, CollectionText, Results};
use crate::text::text_at;
use crate::time;
use crate::tracker::{NONE, Statuses, person_groups};
use crate::{Error, Result};

/// The three kinds of flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// A positive pool whose members all retested negative.
    DiscordantPool,
    /// A positive single tube after a negative pool of the same person.
    MissedByPooling,
    /// A positive followed by a non-positive result for the same tube.
    ChangedFromPositive,
    /// Rows of one tube that disagree about its mode, capacity or site.
    ConflictingTubeRows,
    /// A tube called single that holds more than one person.
    SharedSingleTube,
}

impl FlagKind {
    /// The word used in CSV and JSON.
    ///
    /// ```
    /// use pooltrack::review::FlagKind;
    /// assert_eq!(FlagKind::MissedByPooling.as_str(), "missed_by_pooling");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::DiscordantPool => "discordant_pool",
            FlagKind::MissedByPooling => "missed_by_pooling",
            FlagKind::ChangedFromPositive => "changed_from_positive",
            FlagKind::ConflictingTubeRows => "conflicting_tube_rows",
            FlagKind::SharedSingleTube => "shared_single_tube",
        }
    }
}

/// The flags of a round as row and tube numbers, before any text is read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    /// Discordant pools: the pool tube, and for each member its pool row and the
    /// collection row of the negative single retest, in member row order.
    pub discordant: Vec<(u32, Vec<(u32, u32)>)>,
    /// Missed by pooling: (positive single tube's row, earlier negative pool's row).
    pub missed: Vec<(u32, u32)>,
    /// Tubes whose positive was kept against a later non-positive result.
    pub changed: Vec<u32>,
    /// Tubes whose rows disagree about its metadata.
    pub conflicting: Vec<u32>,
    /// Tubes called single that hold more than one person.
    pub shared_single: Vec<u32>,
}

/// Finds the flags of `round`; `groups` holds the rows of each person with more than
/// one row ([`person_groups`]).
pub fn flags(round: &Statuses, groups: &[Vec<u32>]) -> Flags {
    let outcome = |row: u32| {
        let r = round.result_of_row(row);
        (r != NONE).then(|| round.results.outcome[r as usize])
    };
    let mode = |row: u32| round.tubes.mode[round.tube_of_row[row as usize] as usize];
    let at = |row: u32| round.collected_at[row as usize];
    // (pool tube, member row, retest row) and (single row, pool row).
    type Found = (Vec<(u32, u32, u32)>, Vec<(u32, u32)>);
    let (mut retested, mut missed): Found = groups
        .par_iter()
        .fold(
            || (Vec::new(), Vec::new()),
            |(mut retested, mut missed), rows| {
                for &r in rows {
                    if mode(r) != Mode::Pool || outcome(r) != Some(Outcome::Positive) {
                        continue;
                    }
                    // The earliest later negative single tube is the retest.
                    let retest = rows
                        .iter()
                        .copied()
                        .filter(|&x| {
                            mode(x) == Mode::Single
                                && at(x) > at(r)
                                && outcome(x) == Some(Outcome::Negative)
                        })
                        .min_by_key(|&x| (at(x), x));
                    if let Some(x) = retest {
                        retested.push((round.tube_of_row[r as usize], r, x));
                    }
                }
                let single = rows
                    .iter()
                    .copied()
                    .filter(|&x| mode(x) == Mode::Single && outcome(x) == Some(Outcome::Positive))
                    .min_by_key(|&x| (at(x), x));
                if let Some(s) = single {
                    for &p in rows {
                        if mode(p) == Mode::Pool
                            && at(p) < at(s)
                            && outcome(p) == Some(Outcome::Negative)
                        {
                            missed.push((s, p));
                        }
                    }
                }
                (retested, missed)
            },
        )
        .reduce(
            || (Vec::new(), Vec::new()),
            |(mut a, mut b), (c, d)| {
                a.extend(c);
                b.extend(d);
                (a, b)
            },
        );
    retested.par_sort_unstable();
    missed.par_sort_unstable_by_key(|&(s, p)| (round.tube_of_row[p as usize], p, s));
    let mut discordant = Vec::new();
    for chunk in retested.chunk_by(|a, b| a.0 == b.0) {
        let tube = chunk[0].0;
        // Every member retested negative: the pool's row count equals the retested rows.
        if u32::try_from(chunk.len()).is_ok_and(|n| n == round.tubes.members[tube as usize]) {
            discordant.push((tube, chunk.iter().map(|&(_, r, x)| (r, x)).collect()));
        }
    }
    let tubes = &round.tubes;
    let where_ = |f: &dyn Fn(usize) -> bool| -> Vec<u32> {
        (0..tubes.len())
            .filter(|&t| f(t))
            .filter_map(|t| u32::try_from(t).ok())
            .collect()
    };
    let changed = where_(&|t| tubes.positive_kept[t]);
    let conflicting = where_(&|t| tubes.conflict.get(t) == Some(&true));
    let shared_single =
        where_(&|t| tubes.stated_mode.get(t) == Some(&Some(Mode::Single)) && tubes.members[t] > 1);
    Flags {
        discordant,
        missed,
        changed,
        conflicting,
        shared_single,
    }
}

/// A discordant pool: the pool and each member's negative retest.
#[derive(Debug, Serialize)]
pub struct DiscordantPool {
    /// The positive pool tube and its results.
    pub pool: TubeLine,
    /// Each member with their negative single retest.
    pub retests: Vec<Retest>,
}

/// A member of a discordant pool and the single tube that cleared them.
#[derive(Debug, Serialize)]
pub struct Retest {
    /// The person.
    pub person: String,
    /// Their negative single tube and its results.
    pub tube: TubeLine,
}

/// A person found positive in a single tube after a negative pool.
#[derive(Debug, Serialize)]
pub struct MissedByPooling {
    /// The person.
    pub person: String,
    /// The positive single tube.
    pub single: TubeLine,
    /// The earlier negative pool.
    pub pool: TubeLine,
}

/// A tube whose positive was followed by a non-positive result.
#[derive(Debug, Serialize)]
pub struct ChangedFromPositive {
    /// The tube with every result row (the effective one is the kept positive).
    pub tube: TubeLine,
    /// Persons in the tube.
    pub persons: Vec<String>,
}

/// A tube whose rows are flagged, with every row behind it.
#[derive(Debug, Serialize)]
pub struct TubeRows {
    /// The tube as the rules read it, with its results.
    pub tube: TubeLine,
    /// Every collection row of the tube, in row order.
    pub rows: Vec<MemberRow>,
}

/// One collection row of a flagged tube, as it was stated.
#[derive(Debug, Serialize)]
pub struct MemberRow {
    /// The person.
    pub person: String,
    /// The mode the row stated (empty: none).
    pub mode: String,
    /// The capacity the row stated.
    pub capacity: Option<u8>,
    /// The site the row stated (empty: none).
    pub site: String,
    /// When the person was swabbed.
    pub collected_at: String,
    /// Batch, source file and line of the row.
    pub batch: u32,
    /// Source file.
    pub source: String,
    /// Line in the source file.
    pub line: u64,
}

/// How many flags of each kind.
#[derive(Debug, Serialize, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReviewCounts {
    /// Discordant pools.
    pub discordant_pool: u64,
    /// Persons missed by pooling (one per negative pool).
    pub missed_by_pooling: u64,
    /// Tubes changed from positive.
    pub changed_from_positive: u64,
    /// Tubes whose rows disagree about their metadata.
    pub conflicting_tube_rows: u64,
    /// Tubes called single that hold more than one person.
    pub shared_single_tube: u64,
}

/// A round's review flags with the evidence to act on each.
#[derive(Debug, Serialize)]
pub struct Review {
    /// The round.
    pub round: String,
    /// Counts by kind.
    pub counts: ReviewCounts,
    /// Positive pools whose members all retested negative.
    pub discordant_pool: Vec<DiscordantPool>,
    /// Positive single tubes after a negative pool.
    pub missed_by_pooling: Vec<MissedByPooling>,
    /// Positives followed by a non-positive result.
    pub changed_from_positive: Vec<ChangedFromPositive>,
    /// Tubes whose rows disagree about their mode, capacity or site.
    pub conflicting_tube_rows: Vec<TubeRows>,
    /// Tubes called single that hold more than one person.
    pub shared_single_tube: Vec<TubeRows>,
}

/// One flag as a CSV row.
#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
pub struct FlagRow {
    /// Which flag.
    pub kind: &'static str,
    /// The tube to look at (the pool, for missed by pooling).
    pub tube: String,
    /// The persons concerned, `;`-separated.
    pub persons: String,
    /// What was found, in words.
    pub detail: String,
}

/// Reads what the flagged rows show.
struct Evidence<'a> {
    round: &'a Statuses,
    results: Results,
    rows: CollectionText,
}

impl Evidence<'_> {
    /// The tube of collection row `row`, seen from that row, with every result row.
    fn tube(&self, row: u32) -> TubeLine {
        let s = self.round;
        let t = s.tube_of_row[row as usize] as usize;
        let c = self.rows.get(row);
        let effective = s.tubes.result[t];
        let lo = s.tubes.result_start[t] as usize;
        let hi = s.tubes.result_start[t + 1] as usize;
        let results = s.tubes.result_rows[lo..hi]
            .iter()
            .map(|&r| {
                let i = r as usize;
                let (ct_orf1ab, ct_n) = s.results.cts(i);
                ResultLine {
                    result: s.results.outcome[i].as_str(),
                    ct_orf1ab,
                    ct_n,
                    reported_at: time::format(s.results.reported_at[i], s.zone),
                    lab: text_at(&self.results.lab, i).to_owned(),
                    plate: text_at(&self.results.plate, i).to_owned(),
                    well: text_at(&self.results.well, i).to_owned(),
                    effective: r == effective,
                    void: s.results.void.get(i).copied().unwrap_or(false).then(|| {
                        format!(
                            "plate {} failed its controls",
                            text_at(&self.results.plate, i)
                        )
                    }),
                    batch: self.results.batch.get(i).copied().unwrap_or(0),
                    source: text_at(&self.results.source, i).to_owned(),
                    line: self.results.line.get(i).copied().unwrap_or(0),
                }
            })
            .collect();
        TubeLine {
            tube: c.tube.to_owned(),
            mode: s.tubes.mode[t].as_str(),
            capacity: s.tubes.capacity[t],
            members: s.tubes.members[t],
            site: c.site.to_owned(),
            collected_at: time::format(s.collected_at[row as usize], s.zone),
            result: if effective == NONE {
                String::new()
            } else {
                s.results.outcome[effective as usize].as_str().to_owned()
            },
            positive_kept: s.tubes.positive_kept[t],
            results,
            batch: c.batch,
            source: c.source.to_owned(),
            line: c.line,
        }
    }
}

impl Review {
    /// Finds the review flags of a decided round and reads the text of only the rows
    /// they concern (the round's result rows, which are few, are read whole).
    pub fn compute(store: &Store, round: &Statuses) -> Result<Review> {
        let groups = person_groups(store, &round.name)?;
        let found = flags(round, &groups);
        drop(groups);
        Review::from_flags(store, round, &found)
    }

    /// The review for flags already found.
    pub fn from_flags(store: &Store, round: &Statuses, found: &Flags) -> Result<Review> {
        // Every row of a changed, conflicting or shared tube is listed.
        const CHANGED: u8 = 1;
        const CONFLICTING: u8 = 2;
        const SHARED: u8 = 4;
        let marks: Vec<u8> = {
            let mut v = vec![0u8; round.tubes.len()];
            for (tubes, mark) in [
                (&found.changed, CHANGED),
                (&found.conflicting, CONFLICTING),
                (&found.shared_single, SHARED),
            ] {
                for &t in tubes {
                    v[t as usize] |= mark;
                }
            }
            v
        };
        let rows_of = |mark: u8| -> Vec<u32> {
            if !marks.iter().any(|m| m & mark != 0) {
                return Vec::new();
            }
            (0..round.tube_of_row.len())
                .into_par_iter()
                .filter(|&r| {
                    marks
                        .get(round.tube_of_row[r] as usize)
                        .is_some_and(|m| m & mark != 0)
                })
                .filter_map(|r| u32::try_from(r).ok())
                .collect()
        };
        let changed_rows = rows_of(CHANGED);
        let conflicting_rows = rows_of(CONFLICTING);
        let shared_rows = rows_of(SHARED);
        let mut wanted: Vec<u32> = changed_rows.clone();
        wanted.extend(&conflicting_rows);
        wanted.extend(&shared_rows);
        for (_, members) in &found.discordant {
            wanted.extend(members.iter().flat_map(|&(r, x)| [r, x]));
        }
        wanted.extend(found.missed.iter().flat_map(|&(s, p)| [s, p]));
        let results = read::results(store, &round.name)?;
        if results.len() != round.results.outcome.len() {
            return Err(Error::damaged(
                store.root(),
                format!(
                    "round {}: the result segments and their indexes disagree on the rows",
                    round.name
                ),
            ));
        }
        let rows = CollectionText::fetch(store, &round.name, &wanted)?;
        let ev = Evidence {
            round,
            results,
            rows,
        };
        let person = |row: u32| ev.rows.get(row).person.to_owned();
        let discordant_pool: Vec<DiscordantPool> = found
            .discordant
            .iter()
            .map(|(_, members)| DiscordantPool {
                pool: ev.tube(members[0].0),
                retests: members
                    .iter()
                    .map(|&(r, x)| Retest {
                        person: person(r),
                        tube: ev.tube(x),
                    })
                    .collect(),
            })
            .collect();
        let missed_by_pooling: Vec<MissedByPooling> = found
            .missed
            .iter()
            .map(|&(s, p)| MissedByPooling {
                person: person(s),
                single: ev.tube(s),
                pool: ev.tube(p),
            })
            .collect();
        let mut by_tube: Vec<(u32, u32)> = changed_rows
            .iter()
            .map(|&r| (round.tube_of_row[r as usize], r))
            .collect();
        by_tube.sort_unstable();
        let changed_from_positive: Vec<ChangedFromPositive> = by_tube
            .chunk_by(|a, b| a.0 == b.0)
            .map(|rows| {
                let mut persons: Vec<String> = rows.iter().map(|&(_, r)| person(r)).collect();
                persons.sort();
                ChangedFromPositive {
                    tube: ev.tube(rows[0].1),
                    persons,
                }
            })
            .collect();
        let tube_rows = |rows: &[u32]| -> Vec<TubeRows> {
            let mut by_tube: Vec<(u32, u32)> = rows
                .iter()
                .map(|&r| (round.tube_of_row[r as usize], r))
                .collect();
            by_tube.sort_unstable();
            by_tube
                .chunk_by(|a, b| a.0 == b.0)
                .map(|rows| TubeRows {
                    tube: ev.tube(rows[0].1),
                    rows: rows
                        .iter()
                        .map(|&(_, r)| {
                            let c = ev.rows.get(r);
                            MemberRow {
                                person: c.person.to_owned(),
                                mode: c.mode.to_owned(),
                                capacity: c.capacity,
                                site: c.site.to_owned(),
                                collected_at: time::format(
                                    round.collected_at[r as usize],
                                    round.zone,
                                ),
                                batch: c.batch,
                                source: c.source.to_owned(),
                                line: c.line,
                            }
                        })
                        .collect(),
                })
                .collect()
        };
        let conflicting_tube_rows = tube_rows(&conflicting_rows);
        let shared_single_tube = tube_rows(&shared_rows);
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(Review {
            round: round.name.clone(),
            counts: ReviewCounts {
                discordant_pool: count(discordant_pool.len()),
                missed_by_pooling: count(missed_by_pooling.len()),
                changed_from_positive: count(changed_from_positive.len()),
                conflicting_tube_rows: count(conflicting_tube_rows.len()),
                shared_single_tube: count(shared_single_tube.len()),
            },
            discordant_pool,
            missed_by_pooling,
            changed_from_positive,
            conflicting_tube_rows,
            shared_single_tube,
        })
    }

    /// One row per flag, kinds in the order above.
    pub fn rows(&self) -> Vec<FlagRow> {
        let mut out = Vec::new();
        for d in &self.discordant_pool {
            let retests: Vec<&str> = d.retests.iter().map(|r| r.tube.tube.as_str()).collect();
            out.push(FlagRow {
                kind: FlagKind::DiscordantPool.as_str(),
                tube: d.pool.tube.clone(),
                persons: join(d.retests.iter().map(|r| r.person.as_str())),
                detail: format!(
                    "pool {}; all {} member(s) retested negative in single tube(s) {}",
                    results_in_words(&d.pool),
                    d.retests.len(),
                    retests.join(", ")
                ),
            });
        }
        for m in &self.missed_by_pooling {
            out.push(FlagRow {
                kind: FlagKind::MissedByPooling.as_str(),
                tube: m.pool.tube.clone(),
                persons: m.person.clone(),
                detail: format!(
                    "pool collected {} {}; single tube {} collected {} {}",
                    m.pool.collected_at,
                    results_in_words(&m.pool),
                    m.single.tube,
                    m.single.collected_at,
                    results_in_words(&m.single)
                ),
            });
        }
        for c in &self.changed_from_positive {
            out.push(FlagRow {
                kind: FlagKind::ChangedFromPositive.as_str(),
                tube: c.tube.tube.clone(),
                persons: join(c.persons.iter().map(String::as_str)),
                detail: format!(
                    "{} tube {}; kept positive",
                    c.tube.mode,
                    results_in_words(&c.tube)
                ),
            });
        }
        for (kind, tubes) in [
            (FlagKind::ConflictingTubeRows, &self.conflicting_tube_rows),
            (FlagKind::SharedSingleTube, &self.shared_single_tube),
        ] {
            for t in tubes {
                let rows: Vec<String> = t.rows.iter().map(stated_in_words).collect();
                let head = match kind {
                    FlagKind::SharedSingleTube => format!(
                        "called single but holds {} persons; read as a pool",
                        t.tube.members
                    ),
                    _ => format!(
                        "rows disagree; the tube is read as a {} of capacity {}",
                        t.tube.mode, t.tube.capacity
                    ),
                };
                out.push(FlagRow {
                    kind: kind.as_str(),
                    tube: t.tube.tube.clone(),
                    persons: join(t.rows.iter().map(|r| r.person.as_str())),
                    detail: format!("{head}: {}", rows.join("; ")),
                });
            }
        }
        out
    }

    /// Writes the flags as CSV (one row per flag) or JSON (grouped by kind, with counts).
    pub fn write(&self, json: bool, out: &mut dyn Write) -> Result<()> {
        let io = |e: std::io::Error| Error::io("<output>", e);
        if json {
            serde_json::to_writer_pretty(&mut *out, self).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
            return Ok(());
        }
        let mut w = csv::Writer::from_writer(out);
        let rows = self.rows();
        if rows.is_empty() {
            w.write_record(["kind", "tube", "persons", "detail"])
                .map_err(|e| io(e.into()))?;
        }
        for r in rows {
            w.serialize(r).map_err(|e| io(e.into()))?;
        }
        w.flush().map_err(io)
    }

    /// Writes to `path`, owner-readable only (person ids), whole or not at all.
    pub fn write_file(&self, json: bool, path: &Path) -> Result<()> {
        crate::store::fsutil::replace_with(path, |file| {
            let mut w = std::io::BufWriter::new(file);
            self.write(json, &mut w)?;
            w.flush().map_err(|e| Error::io(path, e))
        })
    }
}

/// A row's stated metadata and where it came from, for the CSV detail.
fn stated_in_words(r: &MemberRow) -> String {
    let or_none = |s: &str| {
        if s.is_empty() {
            "(none)".to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "{} mode {} capacity {} site {} ({} line {})",
        r.person,
        or_none(&r.mode),
        r.capacity.map_or("(none)".to_owned(), |c| c.to_string()),
        or_none(&r.site),
        r.source,
        r.line
    )
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(";")
}

/// "positive (Ct 28.41/29.07) reported T by LAB plate P, then negative reported ..."
fn results_in_words(t: &TubeLine) -> String {
    if t.results.is_empty() {
        return "no result".to_owned();
    }
    let ct = |c: Option<f32>| c.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    t.results
        .iter()
        .map(|r| {
            format!(
                "{} (Ct {}/{}) reported {} by lab {} plate {}",
                r.result,
                ct(r.ct_orf1ab),
                ct(r.ct_n),
                r.reported_at,
                dash(&r.lab),
                dash(&r.plate)
            )
        })
        .collect::<Vec<_>>()
        .join(", then ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Offset;
    use crate::tracker::{Decided, ResultFacts, Tubes};
    use Mode::{Pool, Single};
    use Outcome::{Negative, Positive};

    /// A round of `tubes` (mode, outcome, members) and rows (tube, collected_at).
    fn round(tubes: &[(Mode, Option<Outcome>, u32)], rows: &[(u32, i64)]) -> Statuses {
        let mut t = Tubes::default();
        let mut results = ResultFacts::default();
        for (i, &(mode, outcome, members)) in tubes.iter().enumerate() {
            t.row.push(0);
            t.members.push(members);
            t.mode.push(mode);
            t.capacity.push(10);
            t.positive_kept.push(false);
            t.result_start
                .push(u32::try_from(results.outcome.len()).unwrap_or(NONE));
            match outcome {
                Some(o) => {
                    let r = u32::try_from(results.outcome.len()).unwrap_or(NONE);
                    t.result.push(r);
                    t.result_rows.push(r);
                    results.outcome.push(o);
                    results.ct_orf1ab.push(f32::NAN);
                    results.ct_n.push(f32::NAN);
                    results.reported_at.push(i64::try_from(i).unwrap_or(0));
                    results.void.push(false);
                }
                None => t.result.push(NONE),
            }
        }
        t.result_start
            .push(u32::try_from(results.outcome.len()).unwrap_or(NONE));
        Statuses {
            decided: Decided {
                name: "r".into(),
                zone: Offset::UTC,
                rows: rows.len(),
                tubes: t,
                results,
                single: Vec::new(),
                groups: Vec::new(),
                grouped: Vec::new(),
                run_tube: Vec::new(),
            },
            tube_of_row: rows.iter().map(|r| r.0).collect(),
            collected_at: rows.iter().map(|r| r.1).collect(),
            persons: Vec::new(),
        }
    }

    #[test]
    fn discordant_needs_every_member_cleared_by_a_later_negative_single() {
        // Tube 0: positive pool of rows 0, 1. Tubes 1, 2: negative singles.
        let tubes = [
            (Pool, Some(Positive), 2),
            (Single, Some(Negative), 1),
            (Single, Some(Negative), 1),
        ];
        let rows = [(0, 10), (0, 10), (1, 20), (2, 20)];
        let s = round(&tubes, &rows);
        let f = flags(&s, &[vec![0, 2], vec![1, 3]]);
        assert_eq!(f.discordant, vec![(0, vec![(0, 2), (1, 3)])]);
        assert!(f.missed.is_empty());
        // One member only retested: not discordant.
        assert!(flags(&s, &[vec![0, 2]]).discordant.is_empty());
        // A retest collected before the pool does not count.
        let early = round(&tubes, &[(0, 10), (0, 10), (1, 5), (2, 20)]);
        assert!(
            flags(&early, &[vec![0, 2], vec![1, 3]])
                .discordant
                .is_empty()
        );
    }

    #[test]
    fn missed_needs_an_earlier_negative_pool() {
        let tubes = [(Pool, Some(Negative), 1), (Single, Some(Positive), 1)];
        let s = round(&tubes, &[(0, 10), (1, 20)]);
        assert_eq!(flags(&s, &[vec![0, 1]]).missed, vec![(1, 0)]);
        let later = round(&tubes, &[(0, 30), (1, 20)]);
        assert!(flags(&later, &[vec![0, 1]]).missed.is_empty());
    }
}
