//! The status rules: from a person's tubes in a round to their status.
//!
//! In order of precedence:
//! 1. any single tube positive → `positive`;
//! 2. else any pool tube positive or inconclusive that is not followed (by collection
//!    time) by a negative single tube of theirs → `recall`, or `retest_pending` when
//!    every such pool is followed by a single tube of theirs that has no result yet;
//! 3. else any tube invalid, or single tube inconclusive, or whose every result came
//!    past the specimen limit, not followed by a negative tube of theirs → `resample`;
//! 4. else any tube without a result (and none past the limit) → `pending`;
//! 5. else `negative`.
//!
//! A tube whose every result came past the specimen limit ([`super::limit`]) has no
//! result that counts and reads as an invalid one does: it needs a resample, it does
//! not clear a positive pool as a retest, and it is not waiting for a result.
//!
//! "Single" and "pool" here are the tube's mode as deconvolution reads it, not as a
//! row called it: **a tube holding more than one person is a pool**, whatever its rows
//! say, since a positive in it cannot say which of its persons carries the virus (it
//! recalls them all and makes no one positive); a tube no row stated a mode for is a
//! pool too (its positive leads to a single retest, never to a positive unconfirmed).
//! [`crate::tracker::Tubes::mode`] holds that reading.

use crate::model::{Mode, Outcome, Status};
use crate::time::Millis;

/// One of a person's tubes, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Membership {
    /// Single or pool, as deconvolution reads the tube (see the module docs).
    pub mode: Mode,
    /// When this person was swabbed into the tube.
    pub at: Millis,
    /// The tube's effective result, if any.
    pub result: Option<Outcome>,
    /// No result counts because every one came past the specimen limit: the tube needs
    /// a resample, as an invalid result does.
    pub past_limit: bool,
    /// The lower of the tube's two Ct values, for choosing among several pools.
    pub ct: Option<f32>,
}

/// Decides a status from a person's tubes; returns it with the index (into
/// `tubes`) of the tube that decided it. `tubes` must not be empty.
///
/// ```
/// use pooltrack::model::{Mode, Outcome, Status};
/// use pooltrack::tracker::rules::{decide, Membership};
/// let pool = Membership {
///     mode: Mode::Pool,
///     at: 0,
///     result: Some(Outcome::Positive),
///     past_limit: false,
///     ct: Some(30.0),
/// };
/// let retest = Membership { at: 10, mode: Mode::Single, result: Some(Outcome::Negative), ct: None, ..pool };
/// assert_eq!(decide(&[pool]).0, Status::Recall);
/// assert_eq!(decide(&[pool, retest]).0, Status::Negative);
/// // A retest tested past the specimen limit does not clear the pool.
/// let late = Membership { result: None, past_limit: true, ..retest };
/// assert_eq!(decide(&[pool, late]).0, Status::Recall);
/// ```
pub fn decide(tubes: &[Membership]) -> (Status, usize) {
    use Outcome::{Inconclusive, Invalid, Negative, Positive};
    if let Some(i) = tubes
        .iter()
        .position(|t| t.mode == Mode::Single && t.result == Some(Positive))
    {
        return (Status::Positive, i);
    }
    let followed = |t: &Membership, pred: &dyn Fn(&Membership) -> bool| {
        tubes.iter().any(|x| x.at > t.at && pred(x))
    };
    let by_ct = |a: &usize, b: &usize| {
        let key = |i: &usize| tubes[*i].ct.unwrap_or(f32::INFINITY);
        key(a).total_cmp(&key(b)).then(a.cmp(b))
    };
    let mut recall = Vec::new();
    let mut pending_retest = Vec::new();
    for (i, t) in tubes.iter().enumerate() {
        if t.mode != Mode::Pool || !matches!(t.result, Some(Positive | Inconclusive)) {
            continue;
        }
        if followed(t, &|x| x.mode == Mode::Single && x.result == Some(Negative)) {
            continue;
        }
        if followed(t, &|x| {
            x.mode == Mode::Single && x.result.is_none() && !x.past_limit
        }) {
            pending_retest.push(i);
        } else {
            recall.push(i);
        }
    }
    if let Some(&i) = recall.iter().min_by(|a, b| by_ct(a, b)) {
        return (Status::Recall, i);
    }
    if let Some(&i) = pending_retest.iter().min_by(|a, b| by_ct(a, b)) {
        return (Status::RetestPending, i);
    }
    let needs_resample = |t: &Membership| {
        t.result == Some(Invalid)
            || t.past_limit
            || (t.mode == Mode::Single && t.result == Some(Inconclusive))
    };
    if let Some(i) = tubes
        .iter()
        .position(|t| needs_resample(t) && !followed(t, &|x| x.result == Some(Negative)))
    {
        return (Status::Resample, i);
    }
    if let Some(i) = tubes
        .iter()
        .position(|t| t.result.is_none() && !t.past_limit)
    {
        return (Status::Pending, i);
    }
    let latest = (0..tubes.len())
        .max_by_key(|&i| (tubes[i].at, i))
        .unwrap_or(0);
    (Status::Negative, latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mode::{Pool, Single};
    use Outcome::*;

    fn m(mode: Mode, at: i64, result: Option<Outcome>) -> Membership {
        Membership {
            mode,
            at,
            result,
            past_limit: false,
            ct: None,
        }
    }

    fn late(mode: Mode, at: i64) -> Membership {
        Membership {
            past_limit: true,
            ..m(mode, at, None)
        }
    }

    #[test]
    fn single_positive_wins_over_everything() {
        let t = [
            m(Pool, 0, Some(Positive)),
            m(Single, 5, None),
            m(Single, 9, Some(Positive)),
        ];
        assert_eq!(decide(&t), (Status::Positive, 2));
    }

    #[test]
    fn positive_pool_recalls_until_a_later_negative_single() {
        assert_eq!(decide(&[m(Pool, 0, Some(Positive))]).0, Status::Recall);
        assert_eq!(decide(&[m(Pool, 0, Some(Inconclusive))]).0, Status::Recall);
        // A single tube collected before the pool does not clear it.
        let before = [m(Single, -5, Some(Negative)), m(Pool, 0, Some(Positive))];
        assert_eq!(decide(&before), (Status::Recall, 1));
        let after = [m(Pool, 0, Some(Positive)), m(Single, 5, Some(Negative))];
        assert_eq!(decide(&after), (Status::Negative, 1));
        // A later negative pool does not clear a positive pool: only a single retest does.
        let pooled = [m(Pool, 0, Some(Positive)), m(Pool, 5, Some(Negative))];
        assert_eq!(decide(&pooled).0, Status::Recall);
    }

    #[test]
    fn retest_pending_while_the_single_tube_waits() {
        let t = [m(Pool, 0, Some(Positive)), m(Single, 5, None)];
        assert_eq!(decide(&t), (Status::RetestPending, 0));
        // An inconclusive retest leaves the pool uncleared: recall again.
        let t = [m(Pool, 0, Some(Positive)), m(Single, 5, Some(Inconclusive))];
        assert_eq!(decide(&t).0, Status::Recall);
    }

    #[test]
    fn recall_picks_the_lowest_ct_pool() {
        let mut a = m(Pool, 0, Some(Positive));
        a.ct = Some(33.0);
        let mut b = m(Pool, 1, Some(Positive));
        b.ct = Some(24.0);
        assert_eq!(decide(&[a, b]), (Status::Recall, 1));
    }

    #[test]
    fn invalid_or_inconclusive_single_needs_resample() {
        assert_eq!(decide(&[m(Pool, 0, Some(Invalid))]).0, Status::Resample);
        assert_eq!(
            decide(&[m(Single, 0, Some(Inconclusive))]).0,
            Status::Resample
        );
        let cleared = [m(Pool, 0, Some(Invalid)), m(Pool, 3, Some(Negative))];
        assert_eq!(decide(&cleared).0, Status::Negative);
        let not_after = [m(Pool, 3, Some(Invalid)), m(Pool, 0, Some(Negative))];
        assert_eq!(decide(&not_after).0, Status::Resample);
    }

    #[test]
    fn resample_outranks_pending_and_pending_outranks_negative() {
        let t = [m(Single, 0, Some(Invalid)), m(Pool, 1, None)];
        assert_eq!(decide(&t), (Status::Resample, 0));
        let t = [m(Pool, 0, Some(Negative)), m(Pool, 1, None)];
        assert_eq!(decide(&t), (Status::Pending, 1));
        let t = [m(Pool, 0, Some(Negative)), m(Single, 1, Some(Negative))];
        assert_eq!(decide(&t), (Status::Negative, 1));
    }

    #[test]
    fn a_tube_tested_past_the_specimen_limit_reads_as_an_invalid_one() {
        assert_eq!(decide(&[late(Pool, 0)]), (Status::Resample, 0));
        assert_eq!(decide(&[late(Single, 0)]), (Status::Resample, 0));
        // Cleared by a later negative tube of theirs, as an invalid result is.
        assert_eq!(
            decide(&[late(Pool, 0), m(Pool, 5, Some(Negative))]).0,
            Status::Negative
        );
        // Resample outranks pending; the late tube itself is not pending.
        assert_eq!(
            decide(&[late(Pool, 0), m(Pool, 5, None)]),
            (Status::Resample, 0)
        );
        // A late retest neither clears a positive pool nor keeps it waiting.
        let t = [m(Pool, 0, Some(Positive)), late(Single, 5)];
        assert_eq!(decide(&t), (Status::Recall, 0));
    }
}
