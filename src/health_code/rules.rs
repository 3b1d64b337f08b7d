//! The rules of health codes across rounds, on one person's words: what each round
//! said of them as of a time, folded in round order, and the code that follows.
//!
//! - **red** (`positive`): a round found them positive and fewer than
//!   `clear_negatives` negative single-tube results swabbed after it have followed,
//!   each at least `clear_gap_hours` after the one counted before (a recall, retest or
//!   resample between them starts the count again);
//! - **yellow** (`recall`, `retest_pending`, `resample`): the latest round that
//!   touched them left them so;
//! - **yellow** (`no_negative_within_48h`): they must test (registered; the window
//!   from their group or `validity_hours`) and their latest negative swab is older
//!   than the window, or they have none — unless a tube swabbed within the window
//!   awaits its result (`pending_within_48h`, green: a code does not turn yellow for
//!   the lab's delay);
//! - **green** otherwise: `negative_within_48h` (valid until the swab plus the
//!   window), or for persons who need not test `negative` / `pending`.

use serde::Serialize;

use super::Color;
use crate::model::Status;
use crate::time::Millis;
use crate::tracker::NONE;

/// What one round says of one person, as of a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    /// The round's number in the store's round order.
    pub round: u16,
    /// Their status in the round.
    pub status: Status,
    /// Whether the deciding tube is a single tube.
    pub single: bool,
    /// The collection row that decided it.
    pub row: u32,
    /// That tube's effective result row, or [`NONE`].
    pub result: u32,
    /// When that tube was swabbed.
    pub at: Millis,
    /// Their latest swab in the round.
    pub last_at: Millis,
}

/// What clears a red code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clearing {
    /// Negative single tubes needed.
    pub negatives: u32,
    /// Milliseconds between two counted negatives.
    pub gap: Millis,
}

/// One person's words folded over the rounds, oldest round first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// The latest round's word.
    pub last: Word,
    /// The latest negative word.
    pub negative: Option<Word>,
    /// The latest positive word.
    pub positive: Option<Word>,
    /// Negatives counted towards clearing it.
    pub cleared: u32,
    /// The swab of the last one counted.
    pub cleared_at: Millis,
}

impl History {
    /// A history of one word.
    pub fn new(w: Word, clearing: Clearing) -> History {
        let mut h = History {
            last: w,
            negative: None,
            positive: None,
            cleared: 0,
            cleared_at: Millis::MIN,
        };
        h.add(w, clearing);
        h
    }

    /// Adds a later round's word.
    pub fn add(&mut self, w: Word, clearing: Clearing) {
        if w.last_at >= self.last.last_at {
            self.last = w;
        }
        match w.status {
            Status::Positive => {
                if self.positive.is_none_or(|p| w.at >= p.at) {
                    self.positive = Some(w);
                    self.cleared = 0;
                    self.cleared_at = w.at;
                }
            }
            Status::Negative => {
                if self.negative.is_none_or(|n| w.at >= n.at) {
                    self.negative = Some(w);
                }
                if let Some(p) = self.positive
                    && w.single
                    && w.at > p.at
                    && (self.cleared == 0 || w.at >= self.cleared_at.saturating_add(clearing.gap))
                {
                    self.cleared += 1;
                    self.cleared_at = w.at;
                }
            }
            Status::Recall | Status::RetestPending | Status::Resample => {
                if self.positive.is_some_and(|p| w.at > p.at) {
                    self.cleared = 0;
                }
            }
            Status::Pending => {}
        }
    }
}

/// Why a code has its color.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Positive, not cleared.
    Positive,
    /// Recalled from a positive pool in their latest round.
    Recall,
    /// Retest swabbed, no result yet.
    RetestPending,
    /// A resample is due.
    Resample,
    /// Must test, and no negative swab within the window.
    NoNegative,
    /// Must test, and a negative swab within the window.
    NegativeWithin,
    /// Must test, no valid negative, but a tube swabbed within the window awaits its
    /// result.
    PendingWithin,
    /// Need not test; latest word negative.
    Negative,
    /// Need not test; latest word pending.
    Pending,
}

impl Reason {
    /// The word in files: `no_negative_within_48h` and the like name the window.
    pub fn write(self, window_hours: f64, out: &mut String) {
        use std::fmt::Write as _;
        let _ = match self {
            Reason::Positive => write!(out, "positive"),
            Reason::Recall => write!(out, "recall"),
            Reason::RetestPending => write!(out, "retest_pending"),
            Reason::Resample => write!(out, "resample"),
            Reason::NoNegative => write!(out, "no_negative_within_{window_hours}h"),
            Reason::NegativeWithin => write!(out, "negative_within_{window_hours}h"),
            Reason::PendingWithin => write!(out, "pending_within_{window_hours}h"),
            Reason::Negative => write!(out, "negative"),
            Reason::Pending => write!(out, "pending"),
        };
    }
}

/// A person's code as of a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Code {
    /// The color.
    pub color: Color,
    /// Why.
    pub reason: Reason,
    /// The round's word whose tube decided it (none for a registered person never
    /// swabbed).
    pub by: Option<Word>,
    /// When a green code from a negative (or pending) swab lapses.
    pub valid_until: Option<Millis>,
    /// Their window in hours (0: need not test).
    pub window_hours: f64,
}

/// Decides a code as of `as_of` from a person's history (none: registered, never
/// swabbed) and their window (`None`: not registered; `Some(0)`: registered in a group
/// that need not test).
///
/// ```
/// use pooltrack::health_code::Color;
/// use pooltrack::health_code::rules::{Clearing, History, Reason, Word, decide};
/// use pooltrack::model::Status;
/// let h = 3_600_000;
/// let clearing = Clearing { negatives: 2, gap: 24 * h };
/// let word = |status, at| Word { round: 0, status, single: false, row: 0, result: 0, at, last_at: at };
/// let history = History::new(word(Status::Negative, 0), clearing);
/// let at = |t| decide(Some(&history), Some(48.0), clearing, t);
/// assert_eq!((at(47 * h).color, at(47 * h).reason), (Color::Green, Reason::NegativeWithin));
/// assert_eq!((at(49 * h).color, at(49 * h).reason), (Color::Yellow, Reason::NoNegative));
/// // Not registered: nobody asks them to test.
/// assert_eq!(decide(Some(&history), None, clearing, 49 * h).color, Color::Green);
/// ```
pub fn decide(
    history: Option<&History>,
    window_hours: Option<f64>,
    clearing: Clearing,
    as_of: Millis,
) -> Code {
    let hours = window_hours.unwrap_or(0.0);
    let code = |color, reason, by, valid_until| Code {
        color,
        reason,
        by,
        valid_until,
        window_hours: hours,
    };
    let Some(h) = history else {
        return code(Color::Yellow, Reason::NoNegative, None, None);
    };
    if let Some(p) = h.positive
        && h.cleared < clearing.negatives
    {
        return code(Color::Red, Reason::Positive, Some(p), None);
    }
    let last = h.last;
    match last.status {
        Status::Recall => return code(Color::Yellow, Reason::Recall, Some(last), None),
        Status::RetestPending => {
            return code(Color::Yellow, Reason::RetestPending, Some(last), None);
        }
        Status::Resample => return code(Color::Yellow, Reason::Resample, Some(last), None),
        Status::Positive | Status::Pending | Status::Negative => {}
    }
    if hours <= 0.0 {
        let reason = if last.status == Status::Pending {
            Reason::Pending
        } else {
            Reason::Negative
        };
        return code(Color::Green, reason, Some(last), None);
    }
    let window = crate::store::config::hours_to_millis(hours);
    if let Some(n) = h.negative {
        let until = n.at.saturating_add(window);
        if until > as_of {
            return code(Color::Green, Reason::NegativeWithin, Some(n), Some(until));
        }
    }
    if last.status == Status::Pending && last.result == NONE {
        let until = last.at.saturating_add(window);
        if until > as_of {
            return code(Color::Green, Reason::PendingWithin, Some(last), Some(until));
        }
    }
    code(
        Color::Yellow,
        Reason::NoNegative,
        Some(h.negative.unwrap_or(last)),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;
    const CLEAR: Clearing = Clearing {
        negatives: 2,
        gap: 24 * H,
    };

    fn w(round: u16, status: Status, single: bool, at: Millis) -> Word {
        Word {
            round,
            status,
            single,
            row: u32::from(round),
            result: if status == Status::Pending { NONE } else { 0 },
            at,
            last_at: at,
        }
    }

    fn fold(words: &[Word]) -> History {
        let mut h = History::new(words[0], CLEAR);
        for &x in &words[1..] {
            h.add(x, CLEAR);
        }
        h
    }

    #[test]
    fn a_positive_stays_red_until_two_single_negatives_a_day_apart() {
        let pos = w(0, Status::Positive, true, 0);
        let h = fold(&[pos, w(1, Status::Negative, true, 30 * H)]);
        assert_eq!(
            decide(Some(&h), Some(48.0), CLEAR, 40 * H).color,
            Color::Red
        );
        // A second negative only 10 h later does not count; one 24 h later does.
        let h = fold(&[
            pos,
            w(1, Status::Negative, true, 30 * H),
            w(2, Status::Negative, true, 40 * H),
        ]);
        assert_eq!(h.cleared, 1);
        let h = fold(&[
            pos,
            w(1, Status::Negative, true, 30 * H),
            w(2, Status::Negative, true, 54 * H),
        ]);
        let code = decide(Some(&h), Some(48.0), CLEAR, 60 * H);
        assert_eq!(
            (code.color, code.reason),
            (Color::Green, Reason::NegativeWithin)
        );
        assert_eq!(code.valid_until, Some(102 * H));
        // Pooled negatives do not clear; a recall between them starts again.
        let h = fold(&[
            pos,
            w(1, Status::Negative, false, 30 * H),
            w(2, Status::Negative, false, 60 * H),
        ]);
        assert_eq!(h.cleared, 0);
        let h = fold(&[
            pos,
            w(1, Status::Negative, true, 30 * H),
            w(2, Status::Recall, false, 56 * H),
            w(3, Status::Negative, true, 80 * H),
        ]);
        assert_eq!(h.cleared, 1);
    }

    #[test]
    fn the_latest_round_decides_recall_and_an_old_negative_lapses() {
        let h = fold(&[
            w(0, Status::Negative, false, 0),
            w(1, Status::Recall, false, 24 * H),
        ]);
        let code = decide(Some(&h), Some(48.0), CLEAR, 30 * H);
        assert_eq!((code.color, code.reason), (Color::Yellow, Reason::Recall));
        assert_eq!(code.by.map(|b| b.round), Some(1));
        let h = fold(&[
            w(0, Status::Recall, false, 0),
            w(1, Status::Negative, false, 24 * H),
        ]);
        let code = decide(Some(&h), Some(72.0), CLEAR, 95 * H);
        assert_eq!(
            (code.color, code.reason),
            (Color::Green, Reason::NegativeWithin)
        );
        let code = decide(Some(&h), Some(72.0), CLEAR, 96 * H);
        assert_eq!(
            (code.color, code.reason),
            (Color::Yellow, Reason::NoNegative)
        );
        // The lapsed code points at the negative that lapsed.
        assert_eq!(code.by.map(|b| b.round), Some(1));
    }

    #[test]
    fn a_pending_swab_within_the_window_keeps_green_and_nobody_unregistered_must_test() {
        let h = fold(&[
            w(0, Status::Negative, false, 0),
            w(1, Status::Pending, false, 40 * H),
        ]);
        let code = decide(Some(&h), Some(48.0), CLEAR, 50 * H);
        assert_eq!(
            (code.color, code.reason),
            (Color::Green, Reason::PendingWithin)
        );
        let code = decide(Some(&h), Some(48.0), CLEAR, 90 * H);
        assert_eq!(code.color, Color::Yellow);
        let code = decide(Some(&h), None, CLEAR, 900 * H);
        assert_eq!((code.color, code.reason), (Color::Green, Reason::Pending));
        let never = decide(None, Some(48.0), CLEAR, 0);
        assert_eq!((never.color, never.by), (Color::Yellow, None));
        let mut text = String::new();
        never.reason.write(72.0, &mut text);
        assert_eq!(text, "no_negative_within_72h");
    }
}
