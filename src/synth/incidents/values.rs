//! What the stages share: random picks and times, whole-number casts, and the Ct,
//! hour and well formats the generator writes.

use rand_xoshiro::Xoshiro256PlusPlus;

use super::{HOUR_MS, SECOND_MS};
use crate::synth::chunk::below;
use crate::time::Millis;

/// A random element of `items`.
pub(super) fn pick<'a, T>(items: &'a [T], rng: &mut Xoshiro256PlusPlus) -> Option<&'a T> {
    let n = u64::try_from(items.len()).ok().filter(|&n| n > 0)?;
    items.get(usize::try_from(below(rng, n)).ok()?)
}

/// A whole number of seconds between `lo` and `hi` hours, in milliseconds.
pub(super) fn hours_and_seconds(rng: &mut Xoshiro256PlusPlus, lo: u64, hi: u64) -> Millis {
    let secs = lo * 3_600 + below(rng, (hi - lo) * 3_600 + 1);
    signed(secs) * SECOND_MS
}

pub(super) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A Ct in hundredths as the generator writes it, two decimals.
pub(super) fn ct_text(hundredths: u64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// A Ct in hundredths as a number for the JSON.
// Cts are below 100.00, far inside f64's exact integers.
#[allow(clippy::cast_precision_loss)]
pub(super) fn ct_value(hundredths: u64) -> f64 {
    hundredths as f64 / 100.0
}

// Turnarounds are a few days of milliseconds, far inside f64's exact integers.
#[allow(clippy::cast_precision_loss)]
pub(super) fn hours_value(ms: Millis) -> f64 {
    (ms as f64 / HOUR_MS as f64 * 100.0).round() / 100.0
}

/// Well `k` of a plate filled column by column: A01, B01, …, H01, A02, …
pub(super) fn well_name(k: u64) -> String {
    let row = char::from(b'A' + u8::try_from(k % 8).unwrap_or(0));
    format!("{row}{:02}", k / 8 + 1)
}
