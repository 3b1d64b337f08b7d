//! The codes decided without text: each round's words folded into one compact slot per
//! person, by a sorted merge per shard of the person-hash space, then each slot merged
//! with the register and decided into an [`Out`] of 32 bytes.
//!
//! The slot keeps what [`History`] keeps, in 60 bytes where a `(hash, History)` pair took
//! 144: words without their `last_at` (only the latest word's counts, and it differs
//! from its swab only for a person with several rows in a round), and a positive with
//! its clearing count in a side list of the shard, since few persons ever have one.
//! Folding goes through [`History::add`] itself, so the rules exist once.

use arrow_array::Array;
use rayon::prelude::*;

use crate::coverage::Segments;
use crate::health_code::rules::{Clearing, Code, History, Reason, Word, decide};
use crate::model::{Mode, Status};
use crate::store::Store;
use crate::store::index::{self, IndexFile};
use crate::store::read::{self, Picked};
use crate::time::Millis;
use crate::tracker::rules::{self as status_rules, Membership};
use crate::tracker::{NONE, RoundRows, read_results};
use crate::{Error, Result};

/// [`Out::round`] of a code no word decided (a registered person never swabbed).
pub(super) const NO_ROUND: u16 = u16::MAX;

/// A [`Word`] without `last_at`, as slots keep it: 20 bytes, the swab time in two
/// halves so that a slot needs no 8-byte alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Said {
    at: [u32; 2],
    row: u32,
    result: u32,
    round: u16,
    status: Status,
    single: bool,
}

impl Said {
    fn of(w: &Word) -> Said {
        let at = w.at.to_le_bytes();
        let half = |i: usize| u32::from_le_bytes([at[i], at[i + 1], at[i + 2], at[i + 3]]);
        Said {
            at: [half(0), half(4)],
            row: w.row,
            result: w.result,
            round: w.round,
            status: w.status,
            single: w.single,
        }
    }

    fn at(self) -> Millis {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.at[0].to_le_bytes());
        b[4..].copy_from_slice(&self.at[1].to_le_bytes());
        i64::from_le_bytes(b)
    }

    /// The word back, with `last_at` (which only the latest word's is read).
    fn word(self, last_at: Millis) -> Word {
        Word {
            round: self.round,
            status: self.status,
            single: self.single,
            row: self.row,
            result: self.result,
            at: self.at(),
            last_at,
        }
    }
}

/// What few persons need beyond their slot: a positive word with the negatives counted
/// towards clearing it, or a latest swab later than the one that decided their latest
/// round (several rows in it).
#[derive(Debug, Clone, Copy)]
struct Extra {
    /// Round [`NO_ROUND`]: none.
    positive: Said,
    cleared: u32,
    cleared_at: Millis,
    last_at: Option<Millis>,
}

/// One person's [`History`] in 60 bytes (a `(hash, History)` pair took 144): the
/// hash in four halves, the latest and the latest negative word, and where their
/// [`Extra`] is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: [u32; 4],
    last: Said,
    /// Round [`NO_ROUND`]: none.
    negative: Said,
    /// Index into the shard's extras, or [`NONE`].
    extra: u32,
}

// The size the memory figures count on.
const _: () = assert!(std::mem::size_of::<Slot>() == 60);

impl Slot {
    fn hash(&self) -> u128 {
        self.hash
            .iter()
            .fold(0u128, |h, &w| (h << 32) | u128::from(w))
    }
}

/// A person hash in four halves, high first.
fn halves(hash: u128) -> [u32; 4] {
    let part = |shift: u32| u32::try_from((hash >> shift) & 0xffff_ffff).unwrap_or(0);
    [part(96), part(64), part(32), part(0)]
}

/// The slots of one shard of the hash space, in hash order.
#[derive(Default)]
pub(super) struct Range {
    slots: Vec<Slot>,
    extras: Vec<Extra>,
}

impl Range {
    fn history(&self, s: &Slot) -> History {
        let e = self.extras.get(s.extra as usize);
        let positive = e.map(|e| e.positive).filter(|p| p.round != NO_ROUND);
        History {
            last: s
                .last
                .word(e.and_then(|e| e.last_at).unwrap_or(s.last.at())),
            negative: (s.negative.round != NO_ROUND).then(|| s.negative.word(s.negative.at())),
            positive: positive.map(|p| p.word(p.at())),
            cleared: positive.and(e).map_or(0, |e| e.cleared),
            cleared_at: positive.and(e).map_or(Millis::MIN, |e| e.cleared_at),
        }
    }

    /// `h` into a slot of `hash`, its extra (if it needs one) at `extra` or appended.
    fn slot(&mut self, hash: u128, h: &History, extra: u32) -> Slot {
        let last = Said::of(&h.last);
        let none = Said {
            round: NO_ROUND,
            ..last
        };
        let last_at = (h.last.last_at != h.last.at).then_some(h.last.last_at);
        let extra = if h.positive.is_none() && last_at.is_none() && extra == NONE {
            NONE
        } else {
            // Once a person has an extra it is kept (and rewritten): a positive never
            // goes away, and a later round may need a latest swab again.
            let entry = Extra {
                positive: h.positive.as_ref().map_or(none, Said::of),
                cleared: h.cleared,
                cleared_at: h.cleared_at,
                last_at,
            };
            if let Some(at) = self.extras.get_mut(extra as usize) {
                *at = entry;
                extra
            } else {
                self.extras.push(entry);
                u32::try_from(self.extras.len() - 1).unwrap_or(NONE)
            }
        };
        Slot {
            hash: halves(hash),
            last,
            negative: h.negative.as_ref().map_or(none, Said::of),
            extra,
        }
    }

    /// Folds a run of one round's words of the shard (sorted by hash, one a person,
    /// after the runs before it): known persons in place from `at` on, new ones into
    /// `fresh` for [`Range::merge_fresh`].
    fn fold_run(
        &mut self,
        words: &[(u128, Word)],
        at: &mut usize,
        fresh: &mut Vec<Slot>,
        clearing: Clearing,
    ) {
        let mut i = *at;
        for &(hash, w) in words {
            while i < self.slots.len() && self.slots[i].hash() < hash {
                i += 1;
            }
            if i < self.slots.len() && self.slots[i].hash() == hash {
                let s = self.slots[i];
                let mut h = self.history(&s);
                h.add(w, clearing);
                self.slots[i] = self.slot(hash, &h, s.extra);
            } else {
                let h = History::new(w, clearing);
                let s = self.slot(hash, &h, NONE);
                fresh.push(s);
            }
        }
        *at = i;
    }

    /// Merges the round's new persons in from the back, so a round that brings no one
    /// new moves no slot (and the first round's become the slots as they are).
    fn merge_fresh(&mut self, fresh: Vec<Slot>) {
        if self.slots.is_empty() {
            self.slots = fresh;
            return;
        }
        let Some(&filler) = fresh.first() else {
            return;
        };
        let old = self.slots.len();
        self.slots.resize(old + fresh.len(), filler);
        let (mut a, mut b) = (old, fresh.len());
        let mut to = self.slots.len();
        while b > 0 {
            to -= 1;
            if a > 0 && self.slots[a - 1].hash() > fresh[b - 1].hash() {
                self.slots[to] = self.slots[a - 1];
                a -= 1;
            } else {
                self.slots[to] = fresh[b - 1];
                b -= 1;
            }
        }
    }
}

/// Bytes of a [`Said`] as [`Range::save`] writes it: the swab's two halves, row,
/// result and round little-endian, then the status's place in [`Status::ALL`] with
/// the single-tube bit on top.
const SAID_BYTES: usize = 19;

/// A saved slot's flags: it has no negative word; its negative word is its latest
/// (most persons: written once); it has an extra.
const NEGATIVE_NONE: u8 = 1;
const NEGATIVE_LAST: u8 = 2;
const HAS_EXTRA: u8 = 4;

impl Said {
    fn save(self, out: &mut Vec<u8>) {
        let mut b = [0u8; SAID_BYTES];
        b[..4].copy_from_slice(&self.at[0].to_le_bytes());
        b[4..8].copy_from_slice(&self.at[1].to_le_bytes());
        b[8..12].copy_from_slice(&self.row.to_le_bytes());
        b[12..16].copy_from_slice(&self.result.to_le_bytes());
        b[16..18].copy_from_slice(&self.round.to_le_bytes());
        let status = Status::ALL.iter().position(|&s| s == self.status);
        let status = status.and_then(|s| u8::try_from(s).ok()).unwrap_or(0x7f);
        b[18] = status | (u8::from(self.single) << 7);
        out.extend_from_slice(&b);
    }

    /// A word of one of the rounds of `sizes` (collection and result rows of each), its
    /// rows within that round's; or a word of no round.
    fn restore(b: &mut Bytes<'_>, sizes: &[(usize, usize)]) -> Option<Said> {
        let said = Said {
            at: [b.u32()?, b.u32()?],
            row: b.u32()?,
            result: b.u32()?,
            round: b.u16()?,
            status: Status::ALL[0],
            single: false,
        };
        let packed = b.u8()?;
        let said = Said {
            status: *Status::ALL.get(usize::from(packed & 0x7f))?,
            single: packed & 0x80 != 0,
            ..said
        };
        if said.round == NO_ROUND {
            return Some(said);
        }
        let &(rows, results) = sizes.get(usize::from(said.round))?;
        ((said.row as usize) < rows && (said.result == NONE || (said.result as usize) < results))
            .then_some(said)
    }
}

/// A reader of the bytes [`Range::save`] wrote; `None` past their end.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
}

impl Range {
    /// Persons and extras of the range.
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.slots.len(), self.extras.len())
    }

    /// The range as bytes, for the state kept between exports ([`super::state`]):
    /// every slot (hash, flags, latest word, the negative word unless it is none or
    /// the latest, the extra's place if any: 36 bytes for most persons, where a slot
    /// in memory takes 60), then every extra.
    pub(super) fn save(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.slots.len() * 40 + self.extras.len() * 40);
        for s in &self.slots {
            for h in s.hash {
                out.extend_from_slice(&h.to_le_bytes());
            }
            let negative = if s.negative.round == NO_ROUND {
                NEGATIVE_NONE
            } else if s.negative == s.last {
                NEGATIVE_LAST
            } else {
                0
            };
            let extra = if s.extra == NONE { 0 } else { HAS_EXTRA };
            out.push(negative | extra);
            s.last.save(&mut out);
            if negative == 0 {
                s.negative.save(&mut out);
            }
            if extra != 0 {
                out.extend_from_slice(&s.extra.to_le_bytes());
            }
        }
        for e in &self.extras {
            e.positive.save(&mut out);
            out.extend_from_slice(&e.cleared.to_le_bytes());
            out.extend_from_slice(&e.cleared_at.to_le_bytes());
            out.push(u8::from(e.last_at.is_some()));
            if let Some(at) = e.last_at {
                out.extend_from_slice(&at.to_le_bytes());
            }
        }
        out
    }

    /// A range back from [`Range::save`]'s bytes, of `slots` persons and `extras`
    /// extras whose words name the rounds of `sizes` (collection and result rows of
    /// each) and rows within them; `None` when the bytes are not such a range (the
    /// caller then folds the rounds again).
    pub(super) fn restore(
        bytes: &[u8],
        slots: usize,
        extras: usize,
        sizes: &[(usize, usize)],
    ) -> Option<Range> {
        // Every slot takes at least this much: a range claiming more is not one.
        if slots.checked_mul(16 + 1 + SAID_BYTES)? > bytes.len() {
            return None;
        }
        let mut b = Bytes(bytes);
        let mut range = Range {
            slots: Vec::with_capacity(slots),
            extras: Vec::with_capacity(extras.min(bytes.len() / SAID_BYTES)),
        };
        let mut last = None;
        for _ in 0..slots {
            let hash = [b.u32()?, b.u32()?, b.u32()?, b.u32()?];
            let flags = b.u8()?;
            let said = Said::restore(&mut b, sizes)?;
            let negative = match flags & (NEGATIVE_NONE | NEGATIVE_LAST) {
                0 => Said::restore(&mut b, sizes)?,
                NEGATIVE_NONE => Said {
                    round: NO_ROUND,
                    ..said
                },
                NEGATIVE_LAST => said,
                _ => return None,
            };
            let extra = if flags & HAS_EXTRA == 0 {
                NONE
            } else {
                b.u32()?
            };
            if flags & !(NEGATIVE_NONE | NEGATIVE_LAST | HAS_EXTRA) != 0
                || (extra != NONE && extra as usize >= extras)
            {
                return None;
            }
            let slot = Slot {
                hash,
                last: said,
                negative,
                extra,
            };
            // Hash order is what every merge relies on.
            if last.is_some_and(|l| l >= slot.hash()) {
                return None;
            }
            last = Some(slot.hash());
            range.slots.push(slot);
        }
        for _ in 0..extras {
            let positive = Said::restore(&mut b, sizes)?;
            let cleared = b.u32()?;
            let cleared_at = b.i64()?;
            let last_at = match b.u8()? {
                0 => None,
                1 => Some(b.i64()?),
                _ => return None,
            };
            range.extras.push(Extra {
                positive,
                cleared,
                cleared_at,
                last_at,
            });
        }
        b.0.is_empty().then_some(range)
    }
}

/// Shards of the person-key space ([`index::partition_start`]): each holds its persons'
/// slots in one allocation (125 MB at 25 M persons, whose keys fill one family of
/// shards), large enough that the allocator maps it on its own and gives it back when
/// the shard is decided, where 256 smaller ones stayed resident.
pub(super) const SHARDS: u32 = index::person_partitions(SHARDS_PER_FAMILY);

/// [`SHARDS`] per family of keys.
const SHARDS_PER_FAMILY: u32 = 16;

/// Records read and folded at a time within a shard.
const RUN: usize = 64 * 1024;

/// The records of some sorted person sidecars within one shard, merged in (hash, row)
/// order and read through the files a block at a time, rather than through the
/// mapping (ten rounds of mapped indexes stayed resident, 500 MB each at 25 M persons).
struct Records<'a> {
    scans: Vec<(index::Scan<'a>, u32)>,
    last: Option<(u128, u32)>,
}

impl<'a> Records<'a> {
    /// `sidecars` with the row number of each one's first row.
    fn open(sidecars: impl Iterator<Item = (&'a IndexFile, u32)>, shard: u32) -> Result<Self> {
        let bound = |r: u32| index::partition_start(r, SHARDS_PER_FAMILY).map(u128::to_be_bytes);
        let mut scans = Vec::new();
        for (f, base) in sidecars {
            let start = f.lower_bound_read(&bound(shard).unwrap_or([0; 16]))?;
            let end = match bound(shard + 1) {
                Some(h) => f.lower_bound_read(&h)?,
                None => f.len(),
            };
            if start < end {
                scans.push((f.scan(start..end), base));
            }
        }
        Ok(Records { scans, last: None })
    }

    /// The next (hash, row), `Ok(None)` at the end, `Err(())` where a sidecar is out of
    /// order (damage).
    fn next(&mut self) -> Result<std::result::Result<Option<(u128, u32)>, ()>> {
        let mut best: Option<(usize, (u128, u32))> = None;
        for (k, (scan, base)) in self.scans.iter_mut().enumerate() {
            let Some(rec) = scan.peek()? else {
                continue;
            };
            let mut h = [0u8; 16];
            h.copy_from_slice(&rec[..16]);
            let key = (
                u128::from_be_bytes(h),
                base.saturating_add(index::u32_at(rec, 16)),
            );
            if best.is_none_or(|(_, b)| key < b) {
                best = Some((k, key));
            }
        }
        let Some((k, key)) = best else {
            return Ok(Ok(None));
        };
        self.scans[k].0.advance();
        if self.last.is_some_and(|l| key < l) {
            return Ok(Err(()));
        }
        self.last = Some(key);
        Ok(Ok(Some(key)))
    }
}

/// Decides `s` again as of `as_of`, reduces each person to a word and folds the words
/// into `state`, one hash range at a time on all cores (a round's words are never all
/// held at once). Takes the swab times out of `s`.
pub(super) fn fold_round(
    s: &mut RoundRows,
    facts: &mut Vec<Fact>,
    round: u16,
    as_of: Millis,
    store: &Store,
    state: &mut [Range],
    clearing: Clearing,
) -> Result<()> {
    let collected_at = std::mem::take(&mut s.collected_at);
    let s: &RoundRows = s;
    let tube_of_row = &s.tube_of_row;
    let (tubes, r) = (&s.tubes, &s.results);
    let counted = |i: u32| {
        let i = i as usize;
        r.reported_at.get(i).is_some_and(|&at| at <= as_of)
            && !r.void.get(i).copied().unwrap_or(false)
    };
    // Each tube's effective result as of the time, and the status it gives a person
    // with no other tube in the round. Results past the specimen limit do not count; a
    // tube with only those needs a resample, and the one that stands in for its result
    // is shown.
    let (tube_result, tube_late): (Vec<u32>, Vec<bool>) = (0..tubes.len())
        .into_par_iter()
        .map(|t| {
            let lo = tubes.result_start.get(t).copied().unwrap_or(0) as usize;
            let hi = tubes.result_start.get(t + 1).copied().unwrap_or(0) as usize;
            let rows = tubes.result_rows.get(lo..hi).unwrap_or_default();
            let kept = || rows.iter().copied().filter(|&i| counted(i));
            let reading =
                read_results(kept().map(|i| (r.outcome[i as usize], r.is_late(i as usize))));
            let at = |k: Option<usize>| k.and_then(|k| kept().nth(k));
            match at(reading.result) {
                Some(row) => (row, false),
                None => at(reading.past_limit).map_or((NONE, false), |row| (row, true)),
            }
        })
        .unzip();
    let membership = |t: usize, at: Millis| {
        let res = tube_result[t];
        let (result, ct) = if res == NONE || tube_late[t] {
            (None, None)
        } else {
            let ct = match r.cts(res as usize) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (Some(r.outcome[res as usize]), ct)
        };
        Membership {
            mode: tubes.mode[t],
            at,
            result,
            past_limit: tube_late[t],
            ct,
        }
    };
    // What a person with one row in the tube is told: status, whether single, and the
    // result row.
    let tube_word: Vec<(u32, Status, bool)> = (0..tubes.len())
        .into_par_iter()
        .map(|t| {
            (
                tube_result[t],
                status_rules::decide(&[membership(t, 0)]).0,
                tubes.mode[t] == Mode::Single,
            )
        })
        .collect();
    // The same for each row with its swab, in row order, 16 bytes a row in place of
    // the 8 of the swab times: persons come in hash order, so each row is a look-up in
    // no order, and one look-up a row (in a loop that only gathers) cost a third of two
    // (swab time, then tube) and a third (the tube's word) in the loop that decides.
    // Refilled in place round after round: 400 MB of fresh pages a round at 25 M
    // rows were a tenth of the export's time in page faults.
    facts.clear();
    facts.par_extend(
        collected_at
            .par_iter()
            .zip(tube_of_row.par_iter())
            .map(|(&at, &t)| {
                let (result, status, single) =
                    tube_word
                        .get(t as usize)
                        .copied()
                        .unwrap_or((NONE, Status::Pending, false));
                Fact {
                    at,
                    result,
                    status,
                    single,
                }
            }),
    );
    let facts: &[Fact] = facts;
    drop((collected_at, tube_word));
    let index = store.index_of(Some(&s.name))?;
    let rid = index.round_id(&s.name).unwrap_or(0);
    let segs = index.collections_of(rid);
    let damaged = || {
        Error::damaged(
            store.root(),
            format!(
                "round {}: a person index names a row the round does not hold",
                s.name
            ),
        )
    };
    // One run of a shard's records into words: records are taken until the run is
    // full and the next one is another person, so no person is split between runs.
    let run_of = |records: &mut Records<'_>, buf: &mut Buffers| -> Result<bool> {
        let Buffers {
            pairs,
            gathered,
            words,
            pending,
        } = buf;
        pairs.clear();
        words.clear();
        pairs.extend(pending.take());
        let more = loop {
            let Ok(next) = records.next()? else {
                return Err(Error::damaged(
                    store.root(),
                    format!("round {}: a person index is out of order", s.name),
                ));
            };
            let Some(rec) = next else {
                break false;
            };
            if pairs.len() >= RUN && pairs.last().is_some_and(|l| l.0 != rec.0) {
                *pending = Some(rec);
                break true;
            }
            pairs.push(rec);
        };
        gathered.clear();
        gathered.extend(
            pairs
                .iter()
                .map(|&(_, row)| facts.get(row as usize).copied()),
        );
        let mut at = 0;
        let mut tubes_of: Vec<Membership> = Vec::new();
        let mut rows: Vec<(u32, Fact)> = Vec::new();
        while at < pairs.len() {
            let hash = pairs[at].0;
            rows.clear();
            while at < pairs.len() && pairs[at].0 == hash {
                let fact = gathered[at].ok_or_else(damaged)?;
                if fact.at <= as_of {
                    rows.push((pairs[at].1, fact));
                }
                at += 1;
            }
            let word = match rows.as_slice() {
                [] => continue,
                &[(row, f)] => Word {
                    round,
                    status: f.status,
                    single: f.single,
                    row,
                    result: f.result,
                    at: f.at,
                    last_at: f.at,
                },
                many => {
                    tubes_of.clear();
                    for &(row, f) in many {
                        let t = tube_of_row.get(row as usize).copied().unwrap_or(NONE);
                        if t as usize >= tubes.len() {
                            return Err(damaged());
                        }
                        tubes_of.push(membership(t as usize, f.at));
                    }
                    let (status, i) = status_rules::decide(&tubes_of);
                    let (row, f) = many[i];
                    Word {
                        round,
                        status,
                        single: f.single,
                        row,
                        result: f.result,
                        at: f.at,
                        last_at: tubes_of.iter().map(|m| m.at).max().unwrap_or(0),
                    }
                }
            };
            words.push((hash, word));
        }
        Ok(more)
    };
    state
        .par_iter_mut()
        .zip(0..SHARDS)
        .try_for_each_init(Buffers::default, |buf, (held, shard)| {
            let mut records =
                Records::open(segs.iter().map(|seg| (&*seg.persons, seg.base)), shard)?;
            buf.pending = None;
            let (mut at, mut fresh) = (0, Vec::new());
            loop {
                let more = run_of(&mut records, buf)?;
                held.fold_run(&buf.words, &mut at, &mut fresh, clearing);
                if !more {
                    break;
                }
            }
            held.merge_fresh(fresh);
            Ok(())
        })
}

/// A row as a person with only that row in the round is told: swab, status, whether
/// single, result row.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fact {
    at: Millis,
    result: u32,
    status: Status,
    single: bool,
}

/// A task's buffers for the runs it folds, reused from run to run.
#[derive(Default)]
struct Buffers {
    /// The record that starts the next run.
    pending: Option<(u128, u32)>,
    pairs: Vec<(u128, u32)>,
    gathered: Vec<Option<Fact>>,
    words: Vec<(u128, Word)>,
}

/// The late result rows of the tubes of `s` with no result that counts, with their
/// tube's first swab, by row.
pub(super) fn late_rows(s: &RoundRows) -> Vec<(u32, Millis)> {
    let t = &s.tubes;
    let mut rows: Vec<(u32, Millis)> = t
        .past_limit
        .iter()
        .flat_map(|p| {
            let tube = p.tube as usize;
            let (lo, hi) = (
                t.result_start.get(tube).copied().unwrap_or(0) as usize,
                t.result_start.get(tube + 1).copied().unwrap_or(0) as usize,
            );
            t.result_rows
                .get(lo..hi)
                .unwrap_or_default()
                .iter()
                .filter(|&&r| s.results.is_late(r as usize))
                .map(move |&r| (r, p.first_swab))
        })
        .collect();
    rows.sort_unstable();
    rows
}

/// The population register as the codes read it: its person sidecars, and the group
/// of every registration as a number into `groups`.
pub(super) struct Register {
    /// The population segments' Parquet files, in manifest order.
    pub files: Vec<std::path::PathBuf>,
    sidecars: Vec<IndexFile>,
    bases: Vec<u32>,
    rows: u32,
    /// The group of each registration row, or [`NONE`] (blank).
    codes: Vec<u32>,
    /// Group names by number.
    pub groups: Vec<String>,
    /// The store, for damage found while reading.
    root: std::path::PathBuf,
}

impl Register {
    /// `None` when the store holds no register.
    pub(super) fn load(store: &Store) -> Result<Option<Register>> {
        let Some(Segments {
            files,
            sidecars,
            bases,
            rows,
        }) = Segments::open(store)?
        else {
            return Ok(None);
        };
        // Each row group's groups numbered on its own (a few names, a row a number),
        // then renumbered across the register: no row's group becomes a string.
        let parts = read::map_rows(store, &files, &["group"], &[], Picked::All, |c| {
            let text = c
                .first()
                .and_then(|a| arrow_array::cast::AsArray::as_string_opt::<i32>(a.as_ref()))
                .ok_or_else(|| {
                    Error::damaged(
                        store.root(),
                        "the population register's group column does not read back",
                    )
                })?;
            let mut names: Vec<String> = Vec::new();
            let mut codes = Vec::with_capacity(text.len());
            for v in text {
                let code = match v {
                    None | Some("") => NONE,
                    Some(v) => number(&mut names, v),
                };
                codes.push(code);
            }
            Ok((names, codes))
        })?;
        let mut groups: Vec<String> = Vec::new();
        let mut codes: Vec<u32> = Vec::with_capacity(rows as usize);
        for (names, part) in parts {
            let global: Vec<u32> = names.into_iter().map(|n| number(&mut groups, &n)).collect();
            codes.extend(
                part.iter()
                    .map(|&c| global.get(c as usize).copied().unwrap_or(NONE)),
            );
        }
        if codes.len() != rows as usize {
            return Err(Error::damaged(
                store.root(),
                "the population register's group column does not read back",
            ));
        }
        Ok(Some(Register {
            root: store.root().to_path_buf(),
            files,
            sidecars,
            bases,
            rows,
            codes,
            groups,
        }))
    }

    /// Registration rows in all.
    pub(super) fn rows(&self) -> usize {
        self.rows as usize
    }

    /// The registered persons of `shard`, each once, in hash order.
    fn shard(&self, shard: u32) -> Result<Registrations<'_>> {
        Ok(Registrations {
            records: Records::open(self.sidecars.iter().zip(self.bases.iter().copied()), shard)?,
            register: self,
            run: Vec::new(),
            at: 0,
        })
    }
}

/// The number of `name` in `names`, added if new: registers name a few groups.
fn number(names: &mut Vec<String>, name: &str) -> u32 {
    let at = if let Some(k) = names.iter().position(|n| n == name) {
        k
    } else {
        names.push(name.to_owned());
        names.len() - 1
    };
    u32::try_from(at).unwrap_or(NONE)
}

/// The registered persons of a shard, in hash order ([`Register::shard`]).
struct Registrations<'a> {
    records: Records<'a>,
    register: &'a Register,
    /// A run of records with the group of each, read ahead: the groups are looked up
    /// in a loop that does nothing else, since each is a look-up in no order into the
    /// register's 25 million.
    run: Vec<(u128, u32, u32)>,
    /// The next record of `run`.
    at: usize,
}

impl Registrations<'_> {
    /// The next registration row with its group, left in place; rows past the
    /// register's end are skipped.
    fn peek(&mut self) -> Result<Option<(u128, u32, u32)>> {
        if self.at == self.run.len() {
            self.run.clear();
            self.at = 0;
            while self.run.len() < RUN {
                match self.records.next()? {
                    Err(()) => {
                        return Err(Error::damaged(
                            &self.register.root,
                            "the population register's person index is out of order",
                        ));
                    }
                    Ok(None) => break,
                    Ok(Some((_, row))) if row >= self.register.rows => {}
                    Ok(Some((hash, row))) => self.run.push((hash, row, NONE)),
                }
            }
            let codes = &self.register.codes;
            for r in &mut self.run {
                r.2 = codes.get(r.1 as usize).copied().unwrap_or(NONE);
            }
        }
        Ok(self.run.get(self.at).copied())
    }

    /// The next person: (hash, their latest registration row, the group of the latest
    /// registration that states one, or [`NONE`]). Later segments and later lines are
    /// later registrations.
    fn next(&mut self) -> Result<Option<(u128, u32, u32)>> {
        let Some(mut person) = self.peek()? else {
            return Ok(None);
        };
        self.at += 1;
        while let Some((hash, row, code)) = self.peek()? {
            if hash != person.0 {
                break;
            }
            self.at += 1;
            person.1 = row;
            if code != NONE {
                person.2 = code;
            }
        }
        Ok(Some(person))
    }
}

/// One person's code, before any text: the word that decided it (or the register row
/// of a registered person never swabbed), why, their group, and (once the ids are read)
/// the key their id sorts by. 32 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Out {
    /// The id's key ([`super::text::resident_key`]), 0 until the ids are read.
    pub key: u64,
    /// The deciding word's swab.
    pub at: Millis,
    /// The deciding collection row, or (round [`NO_ROUND`]) the register row.
    pub row: u32,
    /// The deciding tube's result row, or [`NONE`].
    pub result: u32,
    /// Group number in the register, or [`NONE`].
    pub group: u32,
    /// The deciding word's round, or [`NO_ROUND`].
    pub round: u16,
    /// Their status in that round.
    pub status: Status,
    /// [`Reason`] as [`reason_index`], plus [`SINGLE`] and [`REGISTERED`].
    pub bits: u8,
}

/// [`Out::bits`]: the deciding tube is a single tube.
pub(super) const SINGLE: u8 = 0x10;
/// [`Out::bits`]: the person is in the register.
pub(super) const REGISTERED: u8 = 0x20;

/// Every reason, in the order of [`reason_index`].
pub(super) const REASONS: [Reason; 9] = [
    Reason::Positive,
    Reason::Recall,
    Reason::RetestPending,
    Reason::Resample,
    Reason::NoNegative,
    Reason::NegativeWithin,
    Reason::PendingWithin,
    Reason::Negative,
    Reason::Pending,
];

fn reason_index(r: Reason) -> u8 {
    match r {
        Reason::Positive => 0,
        Reason::Recall => 1,
        Reason::RetestPending => 2,
        Reason::Resample => 3,
        Reason::NoNegative => 4,
        Reason::NegativeWithin => 5,
        Reason::PendingWithin => 6,
        Reason::Negative => 7,
        Reason::Pending => 8,
    }
}

impl Out {
    /// The reason.
    pub(super) fn reason(self) -> Reason {
        REASONS[usize::from(self.bits & 0x0f).min(REASONS.len() - 1)]
    }

    /// Whether a word decided it.
    pub(super) fn by_word(self) -> bool {
        self.round != NO_ROUND
    }

    fn of(code: &Code, reg: Option<(u128, u32, u32)>) -> Out {
        let mut bits = reason_index(code.reason);
        if reg.is_some() {
            bits |= REGISTERED;
        }
        let group = reg.map_or(NONE, |r| r.2);
        match code.by {
            Some(w) => {
                if w.single {
                    bits |= SINGLE;
                }
                Out {
                    key: 0,
                    at: w.at,
                    row: w.row,
                    result: w.result,
                    group,
                    round: w.round,
                    status: w.status,
                    bits,
                }
            }
            None => Out {
                key: 0,
                at: 0,
                row: reg.map_or(NONE, |r| r.1),
                result: NONE,
                group,
                round: NO_ROUND,
                status: Status::Pending,
                bits,
            },
        }
    }
}

/// Decides every person of `state` (consumed range by range, so the slots are freed as
/// the codes are made) and every registered person, in hash order.
pub(super) fn decide_all(
    state: Vec<Range>,
    register: Option<&Register>,
    window_of: &(dyn Fn(u32) -> f64 + Sync),
    clearing: Clearing,
    as_of: Millis,
) -> Result<Vec<Out>> {
    let parts: Vec<Vec<Out>> = state
        .into_par_iter()
        .zip(0..SHARDS)
        .map(|(held, shard)| -> Result<Vec<Out>> {
            let mut regs = match register {
                Some(reg) => Some(reg.shard(shard)?),
                None => None,
            };
            let mut reg = match &mut regs {
                Some(r) => r.next()?,
                None => None,
            };
            let slots = &held.slots;
            let mut out = Vec::with_capacity(slots.len());
            let mut i = 0;
            while i < slots.len() || reg.is_some() {
                let h = slots.get(i).map(Slot::hash);
                let g = reg.map(|x| x.0);
                let (has_history, has_reg) = match (h, g) {
                    (Some(h), Some(g)) => (h <= g, g <= h),
                    (Some(_), None) => (true, false),
                    (None, _) => (false, true),
                };
                let history = has_history.then(|| held.history(&slots[i]));
                let this = if has_reg { reg } else { None };
                let window = this.map(|(_, _, code)| window_of(code));
                let code = decide(history.as_ref(), window, clearing, as_of);
                out.push(Out::of(&code, this));
                i += usize::from(has_history);
                if has_reg {
                    reg = match &mut regs {
                        Some(r) => r.next()?,
                        None => None,
                    };
                }
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let n = parts.iter().map(Vec::len).sum();
    let mut outs = Vec::with_capacity(n);
    for part in parts {
        outs.extend(part);
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health_code::rules::Code;

    /// What a code says, without the `last_at` of a word other than the latest (which
    /// nothing reads).
    fn said(c: &Code) -> impl PartialEq + std::fmt::Debug {
        (
            c.color,
            c.reason,
            c.valid_until,
            c.by.map(|w| (w.round, w.status, w.single, w.row, w.result, w.at)),
        )
    }

    #[test]
    fn compact_slots_decide_as_the_histories_they_stand_for() {
        const H: Millis = 3_600_000;
        let clearing = Clearing {
            negatives: 2,
            gap: 24 * H,
        };
        let statuses = Status::ALL;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // 3,000 persons over 8 rounds; each round swabs some of them, a few twice.
        let persons: Vec<u128> = (0..3000u128)
            .map(|p| p.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let mut sorted = persons.clone();
        sorted.sort_unstable();
        let mut range = Range::default();
        let mut plain = std::collections::BTreeMap::<u128, History>::new();
        for round in 0..8u16 {
            let mut words = Vec::new();
            for (i, &hash) in sorted.iter().enumerate() {
                if next(4) == 0 {
                    continue;
                }
                let at =
                    Millis::from(round) * 30 * H + i64::try_from(next(20 * H as u64)).unwrap_or(0);
                let last_at = if next(10) == 0 { at + 5 * H } else { at };
                let status = statuses[usize::try_from(next(6)).unwrap_or(0)];
                let w = Word {
                    round,
                    status,
                    single: next(3) == 0,
                    row: u32::try_from(i).unwrap_or(0),
                    result: if status == Status::Pending { NONE } else { 7 },
                    at,
                    last_at,
                };
                words.push((hash, w));
                plain
                    .entry(hash)
                    .and_modify(|h| h.add(w, clearing))
                    .or_insert_with(|| History::new(w, clearing));
            }
            // Two runs, as a shard's records come.
            let (a, b) = words.split_at(words.len() / 2);
            let (mut at, mut fresh) = (0, Vec::new());
            range.fold_run(a, &mut at, &mut fresh, clearing);
            range.fold_run(b, &mut at, &mut fresh, clearing);
            range.merge_fresh(fresh);
        }
        assert_eq!(range.slots.len(), plain.len());
        for (slot, (hash, h)) in range.slots.iter().zip(&plain) {
            assert_eq!(slot.hash(), *hash);
            let compact = range.history(slot);
            assert_eq!(compact.last, h.last);
            for (window, at) in [(Some(48.0), 200 * H), (Some(24.0), 260 * H), (None, 0)] {
                let want = decide(Some(h), window, clearing, at);
                let got = decide(Some(&compact), window, clearing, at);
                assert_eq!(said(&got), said(&want), "{hash:x}");
            }
        }
        assert!(!range.extras.is_empty(), "some persons needed an extra");

        // Saved and restored (the state kept between exports), the range is the same.
        let bytes = range.save();
        let (slots, extras) = range.counts();
        let sizes = [(3000, 8); 8];
        let back = Range::restore(&bytes, slots, extras, &sizes).expect("restores");
        assert_eq!(back.counts(), range.counts());
        for (a, b) in back.slots.iter().zip(&range.slots) {
            assert_eq!(a.hash(), b.hash());
            assert_eq!(back.history(a), range.history(b));
        }
        // Bytes that are not such a range are refused, never misread.
        assert!(Range::restore(&bytes[..bytes.len() - 1], slots, extras, &sizes).is_none());
        assert!(Range::restore(&bytes, slots + 1, extras, &sizes).is_none());
        assert!(
            Range::restore(&bytes, slots, extras, &sizes[..7]).is_none(),
            "words of a round the state does not hold"
        );
        assert!(
            Range::restore(&bytes, slots, extras, &[(2999, 8); 8]).is_none(),
            "a row past its round's"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Range::restore(&longer, slots, extras, &sizes).is_none());
        let swapped = Range {
            slots: vec![range.slots[1], range.slots[0]],
            extras: range.extras.clone(),
        };
        assert!(
            Range::restore(&swapped.save(), 2, extras, &sizes).is_none(),
            "out of hash order"
        );
    }
}
