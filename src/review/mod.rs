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
//! The three steps have a file each: `find` walks the arrays, `evidence` reads the
//! flagged rows' text into a [`Review`], `write` puts each flag in words (CSV) or the
//! whole review out as JSON. The kinds are not split apart: one walk of the person
//! groups finds the discordant pools and the missed persons together, and one read
//! fetches the text of every flagged row.
//!
//! [`Tubes::positive_kept`]: crate::tracker::Tubes::positive_kept

use serde::Serialize;

use crate::report::TubeLine;

mod evidence;
mod find;
mod write;

pub use find::{Flags, flags};

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
