//! The status rules as one SQL query, for the engines a nation's rounds run on (`DuckDB`,
//! Spark, Trino...): what `pooltrack sql` prints.
//!
//! The query reads two tables, the store's Delta tables `collections` and `results`
//! registered under names the caller chooses, and computes every person's status in a
//! round as [`super::Decided`] does, with the tube that decided it:
//! - each tube's mode as deconvolution reads it: a single tube only when it holds one
//!   person and that row calls it single ([`crate::store::index::TubeMeta`]);
//! - the failed plates of the round, from its control rows and the control cut-offs;
//! - each tube's effective result among its results not on a failed plate and reported
//!   within the specimen limit of its first swab ([`super::limit`]): the latest
//!   positive if any, else the latest result ([`super::effective`]), by `reported_at`,
//!   then batch, then input order; a tube with results only past the limit shows the
//!   one the same order picks among those, and needs a resample;
//! - each membership's status by the rules of [`super::rules::decide`], and each
//!   person's status the first in order of precedence that one of their memberships
//!   gives, decided by the membership the rules would name.
//!
//! The text is built from the definitions the tracker uses: the statuses in their order
//! of precedence ([`Status::ALL`]), the condition each puts on one membership (written
//! here beside the rule it mirrors, in a `match` that a new status cannot slip past),
//! and the words of [`Outcome`], [`Mode`] and [`SampleType`]. The integration tests run
//! it in `DuckDB` and Spark against `pooltrack export status` on rounds with every status.
//!
//! The query gives the columns of `export status` but `not_counted` (whose text the
//! tracker writes; a row's result, `reported_at` and `collected_at` say the same).
//!
//! What the generator bakes in from the store, as literals: the round; the specimen
//! limit in force; the control cut-offs in force (checked against the plates the round's batches recorded as failed:
//! when a cut-off changed since, the recorded plates are listed instead); for a batch
//! read from several files, the order of its files, which orders its rows; and the rare
//! tube whose mode only a row the table does not hold stated ([`Plan::tube_modes`]).
//! So the query is exact for the store as it was when it was made; after a later batch
//! it still is unless that batch was read from several files, came after a change of
//! cut-off, or hid a tube's mode.
//!
//! One job: the query's text ([`Plan::text`]); `from_store.rs` reads what it bakes in.
//! The file passes 600 lines only with its tests.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::SpecimenLimit;
use crate::model::{Mode, Outcome, SampleType, Status};
use crate::store::{BatchKind, Store, tables};
use crate::{Error, Result};

mod from_store;

use from_store::{failed_by_controls, mode_overrides};

/// How string literals are written: the one thing the dialects disagree on here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Standard SQL (`DuckDB`, Trino, `PostgreSQL`, Polars): a quote inside a literal is
    /// doubled, a backslash is itself.
    Standard,
    /// Spark SQL: a backslash escapes the next character.
    Spark,
}

impl Dialect {
    /// `s` as a string literal.
    ///
    /// ```
    /// use pooltrack::tracker::sql::Dialect;
    /// assert_eq!(Dialect::Standard.literal(r"L'1\a"), r"'L''1\a'");
    /// assert_eq!(Dialect::Spark.literal(r"L'1\a"), r"'L\'1\\a'");
    /// ```
    pub fn literal(self, s: &str) -> String {
        let body = match self {
            Dialect::Standard => s.replace('\'', "''"),
            Dialect::Spark => s.replace('\\', "\\\\").replace('\'', "\\'"),
        };
        format!("'{body}'")
    }

    fn describe(self) -> &'static str {
        match self {
            Dialect::Standard => "standard SQL string literals (DuckDB, Trino, PostgreSQL)",
            Dialect::Spark => "Spark SQL string literals (a backslash escapes)",
        }
    }
}

/// Which list the query gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// Every person with their status, sorted by person (`pooltrack export status`).
    Status,
    /// The persons in `recall`, lowest Ct first (`pooltrack worklist recall`).
    Recall,
}

/// The names the query reads the two tables by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// The collections table.
    pub collections: String,
    /// The results table.
    pub results: String,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            collections: BatchKind::Collections.as_str().to_owned(),
            results: BatchKind::Results.as_str().to_owned(),
        }
    }
}

/// How the query finds the round's failed plates.
#[derive(Debug, Clone, PartialEq)]
pub enum PlateQc {
    /// From the control rows: a negative control with a target Ct below `negative`
    /// fails its plate, as does a positive control without both below `positive`
    /// (without Ct values, the control's result word decides).
    Controls {
        /// The negative controls' cut-off.
        negative: f32,
        /// The positive controls' cut-off.
        positive: f32,
    },
    /// The plates (lab, plate) the round's batches recorded as failed when they were
    /// ingested: used when today's cut-offs would decide some plate otherwise.
    Recorded(Vec<(String, String)>),
}

/// The batches of a round read from several files, each with its files in the order
/// they were read: a batch's rows are in input order, file by file, then by line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileOrder(pub Vec<(u32, Vec<String>)>);

/// Everything a query is made of.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The round.
    pub round: String,
    /// The list.
    pub query: Query,
    /// How literals are written.
    pub dialect: Dialect,
    /// The tables' names.
    pub tables: Tables,
    /// How failed plates are found.
    pub plate_qc: PlateQc,
    /// The specimen limit: results reported later than this after their tube's first
    /// swab do not count.
    pub specimen_limit: SpecimenLimit,
    /// File order of the round's collections batches of several files.
    pub collections_files: FileOrder,
    /// File order of its results batches of several files.
    pub results_files: FileOrder,
    /// Tubes whose mode the tracker reads otherwise than their rows in the table say,
    /// by barcode: a tube of one person whose mode a row not in the table stated (a
    /// repeated scan kept once, or a batch retracted after a later batch added to the
    /// tube). Nearly always none.
    pub tube_modes: Vec<(String, Mode)>,
}

impl Plan {
    /// The plan of `query` for `round` of `store`: its control cut-offs (checked against
    /// the failed plates the round's batches recorded) and its batches' file order.
    pub fn of(
        store: &Store,
        round: &str,
        query: Query,
        dialect: Dialect,
        tables: Tables,
    ) -> Result<Plan> {
        store.require_round(round)?;
        if !tables::exists(store.root()) {
            return Err(Error::Usage(format!(
                "the store at {} is of an older format, without Delta tables for an engine \
                 to read: run `pooltrack migrate --store {}` first",
                store.root().display(),
                store.root().display()
            )));
        }
        let settings = &store.manifest().settings;
        let (negative, positive) = store.config()?.control_cutoffs(settings.ct_cutoff);
        let recorded: BTreeSet<(String, String)> = super::plate_qc::failed_plates(store, round)
            .into_iter()
            .map(|p| (p.lab, p.plate))
            .collect();
        let plate_qc = if failed_by_controls(store, round, (negative, positive))? == recorded {
            PlateQc::Controls { negative, positive }
        } else {
            PlateQc::Recorded(recorded.into_iter().collect())
        };
        let files = |kind: BatchKind| {
            FileOrder(
                store
                    .manifest()
                    .live_batches()
                    .filter(|b| b.kind == kind && b.sources.len() > 1)
                    .filter(|b| b.segments.iter().any(|s| s.round == round))
                    .map(|b| (b.id, b.sources.iter().map(|s| s.path.clone()).collect()))
                    .collect(),
            )
        };
        Ok(Plan {
            round: round.to_owned(),
            query,
            dialect,
            tables,
            collections_files: files(BatchKind::Collections),
            results_files: files(BatchKind::Results),
            plate_qc,
            specimen_limit: SpecimenLimit::of_store(store)?,
            tube_modes: mode_overrides(store, round)?,
        })
    }

    /// The query's text.
    pub fn text(&self) -> String {
        let mut q = String::new();
        self.header(&mut q);
        self.tubes_and_results(&mut q);
        self.memberships(&mut q);
        self.select(&mut q);
        q
    }

    fn lit(&self, s: &str) -> String {
        self.dialect.literal(s)
    }

    fn header(&self, q: &mut String) {
        let what = match self.query {
            Query::Status => "every person's status",
            Query::Recall => "the recall list (persons in recall, lowest Ct first)",
        };
        let qc = match &self.plate_qc {
            PlateQc::Controls { negative, positive } => format!(
                "-- Plate QC: a negative control with a target Ct below {negative}, or a positive\n\
                 -- control without both below {positive}, fails its plate (lab and plate) in the\n\
                 -- round, and the plate's sample results do not count. These are the cut-offs\n\
                 -- in force; they agree with the plates the round's batches recorded as failed.\n"
            ),
            PlateQc::Recorded(plates) => format!(
                "-- Plate QC: the {} plate(s) the round's batches recorded as failed when they\n\
                 -- were ingested; the control cut-offs have changed since, so the control rows\n\
                 -- are not read again. Their sample results do not count.\n",
                plates.len()
            ),
        };
        let _ = write!(
            q,
            "-- pooltrack {}: {what} in round {},\n\
             -- by pooltrack's rules (README, \"The rules\").\n\
             -- It reads the tables {} and {}: the store's Delta tables STORE/collections\n\
             -- and STORE/results registered under those names (README, \"When one machine\n\
             -- is not enough\").\n\
             {qc}\
             -- Dialect: {}.\n",
            env!("CARGO_PKG_VERSION"),
            self.round,
            self.tables.collections,
            self.tables.results,
            self.dialect.describe(),
        );
    }

    /// `file_no`: the position of a row's file in its batch (0 for a batch of one file).
    fn file_no(&self, files: &FileOrder) -> String {
        if files.0.is_empty() {
            return "0".to_owned();
        }
        let mut e = String::from("CASE batch");
        for (batch, sources) in &files.0 {
            let _ = write!(e, " WHEN {batch} THEN CASE source");
            for (i, s) in sources.iter().enumerate() {
                let _ = write!(e, " WHEN {} THEN {i}", self.lit(s));
            }
            e.push_str(" END");
        }
        e.push_str(" ELSE 0 END");
        e
    }

    fn tubes_and_results(&self, q: &mut String) {
        let round = self.lit(&self.round);
        let (c, r) = (&self.tables.collections, &self.tables.results);
        let single = self.lit(Mode::Single.as_str());
        let pool = self.lit(Mode::Pool.as_str());
        let sample = self.lit(SampleType::Sample.as_str());
        let positive = self.lit(Outcome::Positive.as_str());
        let _ = write!(
            q,
            "WITH\n\
             -- The round's memberships: one collection row per person and tube.\n\
             round_rows AS (\n\
             \x20 SELECT person, tube, collected_at, site, batch, {} AS file_no, line\n\
             \x20 FROM {c} WHERE round = {round}\n\
             ),\n\
             -- A tube is single only when it holds one person whose row calls it single.\n\
             -- Its first swab starts the specimen limit.\n\
             tubes AS (\n\
             \x20 SELECT tube, CASE{}\n\
             \x20   WHEN COUNT(*) = 1 AND MAX(mode) = {single} THEN {single} ELSE {pool} END AS mode,\n\
             \x20   MIN(collected_at) AS first_swab\n\
             \x20 FROM {c} WHERE round = {round} GROUP BY tube\n\
             ),\n",
            self.file_no(&self.collections_files),
            self.mode_overrides(),
        );
        self.failed_plates(q);
        let _ = write!(
            q,
            "-- The sample results not on a failed plate, each marked late when reported\n\
             -- more than the specimen limit ({hours} h) after its tube's first swab: late\n\
             -- results do not count. Each tube's pick: among those that count, its latest\n\
             -- positive first, else its latest result (by reported_at, then batch, then\n\
             -- input order); a tube with only late results picks among those the same way,\n\
             -- to show which result did not count.\n\
             counted AS (\n\
             \x20 SELECT r.tube, r.result, r.ct_orf1ab, r.ct_n, r.reported_at, r.lab, r.late,\n\
             \x20   ROW_NUMBER() OVER (PARTITION BY r.tube ORDER BY r.late,\n\
             \x20     CASE WHEN r.result = {positive} THEN 0 ELSE 1 END,\n\
             \x20     r.reported_at DESC, r.batch DESC, r.file_no DESC, r.line DESC) AS pick\n\
             \x20 FROM (SELECT x.*, {} AS file_no,\n\
             \x20         CASE WHEN x.reported_at > t.first_swab + INTERVAL '{seconds}' SECOND\n\
             \x20           THEN 1 ELSE 0 END AS late\n\
             \x20       FROM {r} AS x LEFT JOIN tubes AS t ON t.tube = x.tube\n\
             \x20       WHERE x.round = {round} AND COALESCE(x.sample_type, {sample}) = {sample}) AS r\n\
             \x20 LEFT JOIN failed_plates AS f\n\
             \x20   ON f.lab = COALESCE(r.lab, '') AND f.plate = COALESCE(r.plate, '')\n\
             \x20 WHERE f.plate IS NULL\n\
             ),\n\
             effective AS (SELECT * FROM counted WHERE pick = 1),\n",
            self.file_no(&self.results_files),
            hours = self.specimen_limit.in_hours(),
            seconds = self.specimen_limit_seconds(),
        );
    }

    /// The specimen limit in seconds, to the millisecond the tracker compares at.
    fn specimen_limit_seconds(&self) -> String {
        let ms = self.specimen_limit.in_millis();
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }

    /// `WHEN tube IN (...) THEN 'single'` for the tubes in `tube_modes`.
    fn mode_overrides(&self) -> String {
        let mut e = String::new();
        for mode in [Mode::Single, Mode::Pool] {
            let tubes: Vec<String> = self
                .tube_modes
                .iter()
                .filter(|(_, m)| *m == mode)
                .map(|(t, _)| self.lit(t))
                .collect();
            if !tubes.is_empty() {
                let _ = write!(
                    e,
                    "\n    -- Read as the tube's earlier rows, not in the table, stated it.\n    \
                     WHEN tube IN ({}) THEN {}",
                    tubes.join(", "),
                    self.lit(mode.as_str())
                );
            }
        }
        e
    }

    fn failed_plates(&self, q: &mut String) {
        let round = self.lit(&self.round);
        let r = &self.tables.results;
        match &self.plate_qc {
            PlateQc::Controls { negative, positive } => {
                let by_ct =
                    "COALESCE(result_from_ct, FALSE) OR ct_orf1ab IS NOT NULL OR ct_n IS NOT NULL";
                let below = |cutoff: f32| {
                    let below = |col: &str| {
                        format!("({col} IS NOT NULL AND {col} < CAST({cutoff} AS REAL))")
                    };
                    (below("ct_orf1ab"), below("ct_n"))
                };
                let (neg_orf, neg_n) = below(*negative);
                let (pos_orf, pos_n) = below(*positive);
                let word = |o: Outcome| self.lit(o.as_str());
                let _ = write!(
                    q,
                    "-- Plates whose controls failed: a negative control that amplified, a\n\
                     -- positive control that did not (Ct values decide; without them, the word).\n\
                     failed_plates AS (\n\
                     \x20 SELECT DISTINCT COALESCE(lab, '') AS lab, plate FROM {r}\n\
                     \x20 WHERE round = {round} AND (\n\
                     \x20   (sample_type = {} AND CASE WHEN {by_ct}\n\
                     \x20     THEN {neg_orf} OR {neg_n}\n\
                     \x20     ELSE result IN ({}, {}) END)\n\
                     \x20   OR (sample_type = {} AND NOT CASE WHEN {by_ct}\n\
                     \x20     THEN {pos_orf} AND {pos_n}\n\
                     \x20     ELSE result = {} END))\n\
                     ),\n",
                    self.lit(SampleType::NegativeControl.as_str()),
                    word(Outcome::Positive),
                    word(Outcome::Inconclusive),
                    self.lit(SampleType::PositiveControl.as_str()),
                    word(Outcome::Positive),
                );
            }
            PlateQc::Recorded(plates) => {
                q.push_str(
                    "-- The plates the round's batches recorded as failed (lab, plate).\n\
                     failed_plates AS (\n",
                );
                if plates.is_empty() {
                    let _ = writeln!(q, "  SELECT lab, plate FROM {r} WHERE 1 = 0");
                }
                for (i, (lab, plate)) in plates.iter().enumerate() {
                    let _ = writeln!(
                        q,
                        "  {}SELECT {} AS lab, {} AS plate",
                        if i == 0 { "" } else { "UNION ALL " },
                        self.lit(lab),
                        self.lit(plate)
                    );
                }
                q.push_str("),\n");
            }
        }
    }

    fn memberships(&self, q: &mut String) {
        let single = self.lit(Mode::Single.as_str());
        let negative = self.lit(Outcome::Negative.as_str());
        let rank = rank_case(self.dialect);
        let order = deciding_order();
        let _ = write!(
            q,
            "-- Each membership with its tube's mode and the result it shows, the lower of\n\
             -- that result's two Ct values, and the result the rules read (outcome: none\n\
             -- when it came past the specimen limit, and past_limit says so).\n\
             memberships AS (\n\
             \x20 SELECT m.person, m.tube, m.collected_at, m.site, m.batch, m.file_no, m.line,\n\
             \x20   t.mode, e.result, e.ct_orf1ab, e.ct_n, e.reported_at, e.lab,\n\
             \x20   CASE WHEN e.late = 0 THEN e.result END AS outcome,\n\
             \x20   COALESCE(e.late, 0) AS past_limit,\n\
             \x20   CASE WHEN e.ct_orf1ab IS NULL THEN e.ct_n WHEN e.ct_n IS NULL THEN e.ct_orf1ab\n\
             \x20     WHEN e.ct_n < e.ct_orf1ab THEN e.ct_n ELSE e.ct_orf1ab END AS ct\n\
             \x20 FROM round_rows AS m JOIN tubes AS t ON t.tube = m.tube\n\
             \x20 LEFT JOIN effective AS e ON e.tube = m.tube\n\
             ),\n\
             -- What follows each membership: the person's tubes collected later.\n\
             later AS (\n\
             \x20 SELECT m.person, m.tube,\n\
             \x20   MAX(CASE WHEN x.mode = {single} AND x.outcome = {negative} THEN 1 ELSE 0 END) AS single_negative,\n\
             \x20   MAX(CASE WHEN x.mode = {single} AND x.outcome IS NULL AND x.past_limit = 0 THEN 1 ELSE 0 END) AS single_waiting,\n\
             \x20   MAX(CASE WHEN x.outcome = {negative} THEN 1 ELSE 0 END) AS negative\n\
             \x20 FROM memberships AS m\n\
             \x20 JOIN memberships AS x ON x.person = m.person AND x.collected_at > m.collected_at\n\
             \x20 GROUP BY m.person, m.tube\n\
             ),\n\
             facts AS (\n\
             \x20 SELECT m.*, COALESCE(l.single_negative, 0) AS later_single_negative,\n\
             \x20   COALESCE(l.single_waiting, 0) AS later_single_waiting,\n\
             \x20   COALESCE(l.negative, 0) AS later_negative\n\
             \x20 FROM memberships AS m LEFT JOIN later AS l ON l.person = m.person AND l.tube = m.tube\n\
             ),\n\
             -- Each membership's rank: the first status, in order of precedence, whose\n\
             -- condition it meets. A person's status is their lowest rank.\n\
             ranked AS (\n\
             \x20 SELECT facts.*,\n\
             \x20   {rank} AS rank\n\
             \x20 FROM facts\n\
             ),\n\
             -- The membership that decides each person's status: of their lowest rank,\n\
             -- the lowest Ct, the latest or the first, as the rank says (each CASE is\n\
             -- null for all of a rank's memberships or for none, so where nulls sort\n\
             -- does not matter).\n\
             decided AS (\n\
             \x20 SELECT ranked.*, ROW_NUMBER() OVER (PARTITION BY person ORDER BY rank,\n\
             {order}) AS pick\n\
             \x20 FROM ranked\n\
             )\n"
        );
    }

    fn select(&self, q: &mut String) {
        let mut word = String::from("CASE rank");
        for s in Status::ALL {
            let _ = write!(word, " WHEN {} THEN {}", s.index(), self.lit(s.as_str()));
        }
        word.push_str(" END");
        let _ = write!(
            q,
            "SELECT person, status, tube, mode, result, ct_orf1ab, ct_n, site, collected_at,\n\
             \x20 reported_at, lab\n\
             FROM (SELECT decided.*, {word} AS status FROM decided WHERE pick = 1) AS d\n"
        );
        match self.query {
            Query::Status => q.push_str("ORDER BY person\n"),
            Query::Recall => {
                let _ = write!(
                    q,
                    "WHERE status = {}\n\
                     ORDER BY COALESCE(ct, CAST({NO_CT} AS REAL)), tube, person\n",
                    self.lit(Status::Recall.as_str())
                );
            }
        }
    }
}

/// Above any Ct (they run 0 to 100): where a tube without one sorts.
const NO_CT: u32 = 1000;

/// The condition a membership meets to give its person `status`, in the columns of
/// the query's `facts` (`mode`, `outcome` and `past_limit`, and whether a later single
/// tube of the person is negative or waiting, or any later tube negative); `None` for
/// the status that is left when no other applies. These mirror
/// [`super::rules::decide`].
fn condition(status: Status, dialect: Dialect) -> Option<String> {
    let lit = |s: &str| dialect.literal(s);
    let (single, pool) = (lit(Mode::Single.as_str()), lit(Mode::Pool.as_str()));
    let [positive, inconclusive, invalid] =
        [Outcome::Positive, Outcome::Inconclusive, Outcome::Invalid].map(|o| lit(o.as_str()));
    // A positive or inconclusive pool that no later negative single tube has cleared.
    let uncleared_pool = format!(
        "mode = {pool} AND outcome IN ({positive}, {inconclusive}) AND later_single_negative = 0"
    );
    Some(match status {
        Status::Positive => format!("mode = {single} AND outcome = {positive}"),
        Status::Recall => format!("{uncleared_pool} AND later_single_waiting = 0"),
        Status::RetestPending => uncleared_pool,
        Status::Resample => format!(
            "(outcome = {invalid} OR past_limit = 1 OR (mode = {single} AND outcome = {inconclusive})) AND later_negative = 0"
        ),
        Status::Pending => "outcome IS NULL AND past_limit = 0".to_owned(),
        Status::Negative => return None,
    })
}

/// Which of a person's memberships of their status decides it (the one whose tube the
/// lists show), as [`super::rules::decide`] picks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deciding {
    /// The first, in row order.
    First,
    /// The lowest Ct (none: above every Ct), then the first.
    LowestCt,
    /// The last collected, then the last in row order.
    Latest,
}

fn deciding(status: Status) -> Deciding {
    match status {
        Status::Positive | Status::Resample | Status::Pending => Deciding::First,
        Status::Recall | Status::RetestPending => Deciding::LowestCt,
        Status::Negative => Deciding::Latest,
    }
}

/// `CASE WHEN <condition of the first status> THEN 0 ... ELSE <last> END`.
fn rank_case(dialect: Dialect) -> String {
    let mut e = String::from("CASE");
    let mut otherwise = None;
    for s in Status::ALL {
        match condition(s, dialect) {
            Some(c) => {
                let _ = write!(e, "\n      WHEN {c} THEN {}", s.index());
            }
            None => otherwise = Some(s.index()),
        }
    }
    let _ = write!(
        e,
        "\n      ELSE {} END",
        otherwise.unwrap_or(Status::ALL.len())
    );
    e
}

/// The order among a person's memberships of their rank that puts the deciding one
/// first: by Ct for the statuses decided by the lowest Ct, the reverse of collection
/// and row order for the one decided by the latest, then row order (batch, file,
/// line), which decides the rest and breaks the ties.
fn deciding_order() -> String {
    let ranks = |d: Deciding| -> Vec<String> {
        Status::ALL
            .iter()
            .filter(|&&s| deciding(s) == d)
            .map(|s| s.index().to_string())
            .collect()
    };
    let in_ranks = |d: Deciding| match ranks(d).as_slice() {
        [] => "1 = 0".to_owned(),
        list => format!("rank IN ({})", list.join(", ")),
    };
    let (lowest, latest) = (in_ranks(Deciding::LowestCt), in_ranks(Deciding::Latest));
    let mut keys = vec![format!(
        "CASE WHEN {lowest} THEN COALESCE(ct, CAST({NO_CT} AS REAL)) END"
    )];
    for col in ["collected_at", "batch", "file_no", "line"] {
        keys.push(format!("CASE WHEN {latest} THEN {col} END DESC"));
    }
    keys.push("batch, file_no, line".to_owned());
    keys.iter()
        .map(|k| format!("    {k}"))
        .collect::<Vec<_>>()
        .join(",\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: Query, dialect: Dialect) -> Plan {
        Plan {
            round: "R1".into(),
            query,
            dialect,
            tables: Tables::default(),
            plate_qc: PlateQc::Controls {
                negative: 40.0,
                positive: 37.5,
            },
            specimen_limit: SpecimenLimit::hours(36.5),
            collections_files: FileOrder::default(),
            results_files: FileOrder::default(),
            tube_modes: Vec::new(),
        }
    }

    #[test]
    fn the_ranks_follow_the_order_of_precedence_and_negative_is_what_is_left() {
        let case = rank_case(Dialect::Standard);
        let at = |s: Status| {
            case.find(&format!("THEN {}", s.index()))
                .or_else(|| case.find(&format!("ELSE {}", s.index())))
                .unwrap_or_else(|| panic!("{s:?} has no rank in {case}"))
        };
        let places: Vec<usize> = Status::ALL.iter().map(|&s| at(s)).collect();
        assert!(places.windows(2).all(|w| w[0] < w[1]), "{case}");
        assert_eq!(Status::ALL.last(), Some(&Status::Negative));
        assert!(condition(Status::Negative, Dialect::Standard).is_none());
        assert!(case.ends_with("ELSE 5 END"), "{case}");
    }

    #[test]
    fn every_status_word_is_in_the_query_once() {
        let text = plan(Query::Status, Dialect::Standard).text();
        for s in Status::ALL {
            let word = format!("THEN '{}'", s.as_str());
            assert_eq!(text.matches(&word).count(), 1, "{word} in\n{text}");
        }
        assert!(text.contains("CAST(37.5 AS REAL)"), "{text}");
        assert!(
            text.contains("first_swab + INTERVAL '131400.000' SECOND"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("ORDER BY person"), "{text}");
    }

    #[test]
    fn the_recall_list_keeps_recall_lowest_ct_first() {
        let text = plan(Query::Recall, Dialect::Standard).text();
        assert!(
            text.contains(
                "WHERE status = 'recall'\nORDER BY COALESCE(ct, CAST(1000 AS REAL)), tube, person"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_batch_of_several_files_orders_its_rows_by_file_and_literals_follow_the_dialect() {
        let mut p = plan(Query::Status, Dialect::Spark);
        p.results_files = FileOrder(vec![(4, vec![r"lab\a.csv".into(), "lab'b.csv".into()])]);
        p.plate_qc = PlateQc::Recorded(vec![("L'1".into(), "P1".into())]);
        let text = p.text();
        assert!(
            text.contains(r"CASE batch WHEN 4 THEN CASE source WHEN 'lab\\a.csv' THEN 0 WHEN 'lab\'b.csv' THEN 1 END ELSE 0 END"),
            "{text}"
        );
        assert!(
            text.contains(r"SELECT 'L\'1' AS lab, 'P1' AS plate"),
            "{text}"
        );
        // The collections had one file a batch: input order is line order.
        assert!(text.contains("batch, 0 AS file_no, line"), "{text}");
        p.dialect = Dialect::Standard;
        assert!(p.text().contains("SELECT 'L''1' AS lab"));
    }

    #[test]
    fn no_recorded_failed_plate_is_an_empty_list() {
        let mut p = plan(Query::Status, Dialect::Standard);
        p.plate_qc = PlateQc::Recorded(Vec::new());
        let text = p.text();
        assert!(
            text.contains("failed_plates AS (\n  SELECT lab, plate FROM results WHERE 1 = 0\n)"),
            "{text}"
        );
    }
}
