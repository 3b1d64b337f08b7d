//! The text of the rows that decided codes, read compactly: a person id of the resident
//! number form as a number that sorts as its text, barcodes held once per tube, the
//! batch and file of a source once per run of rows, and each read row found again by
//! its rank among the rows read (a bit per row of the round), not by a search.

use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, Float32Array, StringArray};
use rayon::prelude::*;

use crate::output::stream::first_byte;
use crate::store::cited::{Cited, Files};
use crate::store::read::{self, Picked};
use crate::store::{BatchKind, Store};
use crate::time::Millis;
use crate::{Error, Result};

/// Marked positions of a numbered list (a round's rows), each with its rank among the
/// marked ones, in constant time.
#[derive(Default)]
pub(super) struct Ranks {
    bits: Vec<u64>,
    /// Marked positions before each word of `bits`.
    before: Vec<u32>,
}

impl Ranks {
    /// Marks `marks` (positions at or past `len` are left out) among `len` positions.
    pub(super) fn of(len: usize, marks: &[AtomicU64]) -> Ranks {
        let mut bits: Vec<u64> = marks
            .iter()
            .take(len.div_ceil(64))
            .map(|m| m.load(Ordering::Relaxed))
            .collect();
        // Marks past the end share the last word.
        if let Some(last) = bits.last_mut()
            && !len.is_multiple_of(64)
        {
            *last &= (1u64 << (len % 64)) - 1;
        }
        let mut before = Vec::with_capacity(bits.len());
        let mut n = 0u32;
        for b in &bits {
            before.push(n);
            n = n.saturating_add(b.count_ones());
        }
        Ranks { bits, before }
    }

    /// Atomic marks for `len` positions, to set from all cores with [`mark`].
    pub(super) fn marks(len: usize) -> Vec<AtomicU64> {
        (0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect()
    }

    /// The rank of `i` among the marked positions, `None` when it is not marked.
    #[inline]
    pub(super) fn rank(&self, i: u32) -> Option<usize> {
        let (w, b) = ((i / 64) as usize, i % 64);
        let word = *self.bits.get(w)?;
        if word & (1 << b) == 0 {
            return None;
        }
        let below = (word & ((1u64 << b) - 1)).count_ones();
        Some(self.before[w] as usize + below as usize)
    }

    /// The marked positions, ascending.
    pub(super) fn positions(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for (w, &word) in (0u32..).zip(&self.bits) {
            let mut word = word;
            while word != 0 {
                out.push(w * 64 + word.trailing_zeros());
                word &= word - 1;
            }
        }
        out
    }
}

/// Marks position `i` of `marks` ([`Ranks::marks`]).
#[inline]
pub(super) fn mark(marks: &[AtomicU64], i: u32) {
    if let Some(m) = marks.get((i / 64) as usize) {
        m.fetch_or(1 << (i % 64), Ordering::Relaxed);
    }
}

/// Strings end to end in one buffer.
#[derive(Default)]
pub(super) struct Arena {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Arena {
    fn push(&mut self, s: &str) -> u32 {
        self.bytes.extend_from_slice(s.as_bytes());
        self.ends.push(self.bytes.len());
        u32::try_from(self.ends.len() - 1).unwrap_or(u32::MAX)
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    fn last(&self) -> Option<&str> {
        self.ends.len().checked_sub(1).map(|i| self.get(i))
    }

    pub(super) fn append(&mut self, other: &Arena) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    /// String `i` (empty past the end).
    pub(super) fn get(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(j) => self.ends.get(j).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.bytes
            .get(start..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

/// A person id as a sort key: an id of the resident-number form (17 digits, then a
/// digit or `X`) as a number below [`OTHER`] that sorts as its text does; any other id
/// as [`OTHER`] plus its place in a list of such ids.
pub(super) const OTHER: u64 = 1 << 63;

pub(super) use crate::text::{resident_key, resident_text};

/// Person ids read for some rows: a key each, and the ids not of the resident form.
#[derive(Default)]
pub(super) struct Ids {
    pub keys: Vec<u64>,
    pub other: Arena,
}

impl Ids {
    fn push(&mut self, id: &str) {
        let key = match resident_key(id.as_bytes()) {
            Some(k) => k,
            None => OTHER | u64::from(self.other.push(id)),
        };
        self.keys.push(key);
    }

    fn append(&mut self, part: &Ids) {
        let base = self.other.len() as u64;
        self.keys.extend(
            part.keys
                .iter()
                .map(|&k| if k & OTHER == 0 { k } else { k + base }),
        );
        self.other.append(&part.other);
    }
}

/// The text of a round's collection rows that decided codes, by rank: a part per row
/// group as it was read (joining them held a 25 M-row round's text twice).
#[derive(Default)]
pub(super) struct RowsText {
    pub ranks: Ranks,
    parts: Vec<RowsPart>,
    /// The rank of each part's first row.
    starts: Vec<usize>,
    /// The ids of other forms that the parts' keys name, the round's in one list.
    pub other: Arena,
}

/// One row group's rows of [`RowsText`].
#[derive(Default)]
struct RowsPart {
    ids: Ids,
    /// Barcode of each row, as a number into `tubes`.
    tube: Vec<u32>,
    tubes: Arena,
    cited: Cited,
}

impl RowsText {
    /// The part holding rank `i`, and the row's place in it.
    fn locate(&self, i: usize) -> Option<(&RowsPart, usize)> {
        let p = self.starts.partition_point(|&s| s <= i).checked_sub(1)?;
        let part = self.parts.get(p)?;
        Some((part, i - self.starts[p]))
    }

    /// The id key of the row of rank `i` ([`OTHER`] keys into [`RowsText::other`]).
    pub(super) fn key(&self, i: usize) -> Option<u64> {
        let (part, at) = self.locate(i)?;
        part.ids.keys.get(at).copied()
    }

    /// The barcode of the row of rank `i`.
    pub(super) fn tube(&self, i: usize) -> &str {
        self.locate(i)
            .and_then(|(part, at)| part.tube.get(at).map(|&t| part.tubes.get(t as usize)))
            .unwrap_or_default()
    }

    /// Appends the source of the row of rank `i` to `out`.
    pub(super) fn cite(&self, i: usize, files: &[String], out: &mut Vec<u8>) {
        if let Some((part, at)) = self.locate(i) {
            part.cited.write(at, files, out);
        }
    }

    /// Appends the source of the row of rank `i` to a CSV line as its (quoted) field.
    pub(super) fn cite_csv(&self, i: usize, files: &[String], out: &mut Vec<u8>) {
        if let Some((part, at)) = self.locate(i) {
            part.cited.write_csv(at, files, out);
        }
    }

    /// Reads the barcode and source line of the row of rank `i`, as
    /// [`RowMaker::warm`](crate::output::RowMaker::warm) does: a sum of no meaning.
    pub(super) fn warm(&self, i: usize) -> u64 {
        self.locate(i).map_or(0, |(part, at)| {
            let tube = part
                .tube
                .get(at)
                .map_or("", |&t| part.tubes.get(t as usize));
            tube.bytes().next().map_or(0, u64::from) + part.cited.line(at)
        })
    }

    /// Drops the id keys, once the codes hold theirs.
    pub(super) fn drop_keys(&mut self) {
        for p in &mut self.parts {
            p.ids.keys = Vec::new();
        }
    }
}

fn damaged(store: &Store, what: &str) -> Error {
    Error::damaged(store.root(), format!("{what} do not read back"))
}

/// Reads the person, tube and source of the marked rows of `round`.
pub(super) fn rows_text(
    store: &Store,
    round: &str,
    ranks: Ranks,
    files: &mut Files,
) -> Result<RowsText> {
    let rows = ranks.positions();
    if rows.is_empty() {
        return Ok(RowsText {
            ranks,
            ..RowsText::default()
        });
    }
    let what = format!("round {round}: the rows that decided health codes");
    let paths = read::segment_files(store, round, BatchKind::Collections);
    // Each part numbers its few file names under the lock, once a part.
    let numbered = std::sync::Mutex::new(std::mem::take(files));
    let parts = read::map_rows(
        store,
        &paths,
        &["person", "tube", "batch", "source", "line"],
        &["source"],
        Picked::Rows(&rows),
        |c| {
            let (Some(person), Some(tube)) =
                (c[0].as_string_opt::<i32>(), c[1].as_string_opt::<i32>())
            else {
                return Err(damaged(store, &what));
            };
            let mut part = RowsPart::default();
            for i in 0..person.len() {
                part.ids.push(crate::text::text_at(person, i));
                let t = crate::text::text_at(tube, i);
                // A tube's rows are consecutive: its barcode is kept once.
                if part.tubes.last() != Some(t) {
                    part.tubes.push(t);
                }
                part.tube
                    .push(u32::try_from(part.tubes.len() - 1).unwrap_or(u32::MAX));
            }
            let mut files = numbered.lock().map_err(|_| damaged(store, &what))?;
            part.cited = c
                .get(2..5)
                .and_then(|c| Cited::of(c, &mut files))
                .ok_or_else(|| damaged(store, &what))?;
            Ok(part)
        },
    );
    *files = numbered.into_inner().unwrap_or_default();
    let mut parts = parts?;
    let mut text = RowsText {
        ranks,
        ..RowsText::default()
    };
    let mut n = 0;
    for part in &mut parts {
        text.starts.push(n);
        n += part.ids.keys.len();
        if part.cited.len() != part.ids.keys.len() {
            return Err(damaged(store, &what));
        }
        // Keys of other forms name the round's list from here on.
        let base = text.other.len() as u64;
        if part.ids.other.len() > 0 {
            for k in &mut part.ids.keys {
                if *k & OTHER != 0 {
                    *k += base;
                }
            }
            text.other.append(&std::mem::take(&mut part.ids.other));
        }
    }
    text.parts = parts;
    if n != rows.len() {
        return Err(damaged(store, &what));
    }
    Ok(text)
}

/// The text of a round's result rows that decided codes, by rank.
#[derive(Default)]
pub(super) struct ResultsText {
    pub ranks: Ranks,
    pub outcome: Option<StringArray>,
    pub ct_orf1ab: Option<Float32Array>,
    pub ct_n: Option<Float32Array>,
    pub reported_at: Vec<Millis>,
    pub lab: Option<StringArray>,
    pub plate: Option<StringArray>,
    pub cited: Cited,
    /// The result rows that came past the specimen limit of tubes with no result that
    /// counts, with their tube's first swab, by row: such a row shown is explained.
    pub late: Vec<(u32, Millis)>,
}

/// What a code prints of one result row: its rank and the columns holding it.
pub(super) struct Shown<'a> {
    pub at: usize,
    pub outcome: &'a str,
    pub ct_orf1ab: Option<f32>,
    pub ct_n: Option<f32>,
    pub reported_at: Millis,
    pub lab: &'a str,
    pub plate: &'a str,
}

impl ResultsText {
    /// The result row `row` (a round's row number) as a code prints it; `None` for no
    /// result ([`NONE`](crate::tracker::NONE)), a row not read, or columns not read.
    pub(super) fn shown(&self, row: u32) -> Option<Shown<'_>> {
        if row == crate::tracker::NONE {
            return None;
        }
        let at = self.ranks.rank(row)?;
        let (Some(outcome), Some(c1), Some(c2), Some(lab), Some(plate)) = (
            self.outcome.as_ref(),
            self.ct_orf1ab.as_ref(),
            self.ct_n.as_ref(),
            self.lab.as_ref(),
            self.plate.as_ref(),
        ) else {
            return None;
        };
        if at >= outcome.len() {
            return None;
        }
        let ct = |a: &Float32Array| (!a.is_null(at)).then(|| a.value(at));
        Some(Shown {
            at,
            outcome: crate::text::text_at(outcome, at),
            ct_orf1ab: ct(c1),
            ct_n: ct(c2),
            reported_at: self.reported_at.get(at).copied().unwrap_or(0),
            lab: crate::text::text_at(lab, at),
            plate: crate::text::text_at(plate, at),
        })
    }

    /// Reads everything a code prints of the result row of rank `i`, as
    /// [`RowMaker::warm`](crate::output::RowMaker::warm) does: a sum of no meaning.
    pub(super) fn warm(&self, i: usize) -> u64 {
        let text = |a: &Option<StringArray>| a.as_ref().map_or(0, |a| first_byte(a, i));
        let ct = |a: &Option<Float32Array>| {
            a.as_ref()
                .and_then(|a| a.values().get(i))
                .map_or(0, |v| u64::from(v.to_bits()))
        };
        let at = self.reported_at.get(i).map_or(0, |t| t.unsigned_abs());
        text(&self.outcome)
            .wrapping_add(text(&self.lab))
            .wrapping_add(text(&self.plate))
            .wrapping_add(ct(&self.ct_orf1ab))
            .wrapping_add(ct(&self.ct_n))
            .wrapping_add(at)
            .wrapping_add(self.cited.line(i))
    }
}

/// Reads the marked result rows of `round`.
pub(super) fn results_text(
    store: &Store,
    round: &str,
    ranks: Ranks,
    files: &mut Files,
) -> Result<ResultsText> {
    let rows = ranks.positions();
    let what = format!("round {round}: the results that decided health codes");
    let paths = read::segment_files(store, round, BatchKind::Results);
    let parts = if rows.is_empty() {
        Vec::new()
    } else {
        read::map_rows(
            store,
            &paths,
            &[
                "result",
                "ct_orf1ab",
                "ct_n",
                "reported_at",
                "lab",
                "plate",
                "batch",
                "source",
                "line",
            ],
            &["source"],
            Picked::Rows(&rows),
            |c| Ok(c.to_vec()),
        )?
    };
    let column = |k: usize| -> Result<ArrayRef> {
        let pieces: Vec<&dyn Array> = parts.iter().map(|p| p[k].as_ref()).collect();
        if pieces.is_empty() {
            return Ok(match k {
                1 | 2 => arrow_array::new_empty_array(&arrow_schema::DataType::Float32),
                _ => arrow_array::new_empty_array(&arrow_schema::DataType::Utf8),
            });
        }
        Ok(arrow_select::concat::concat(&pieces)?)
    };
    let text = |k: usize| -> Result<StringArray> {
        column(k)?
            .as_string_opt::<i32>()
            .cloned()
            .ok_or_else(|| damaged(store, &what))
    };
    let float = |k: usize| -> Result<Float32Array> {
        column(k)?
            .as_primitive_opt::<Float32Type>()
            .cloned()
            .ok_or_else(|| damaged(store, &what))
    };
    let mut reported_at = Vec::with_capacity(rows.len());
    let mut cited = Cited::default();
    for p in &parts {
        let at = p[3]
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| damaged(store, &what))?;
        reported_at.extend_from_slice(at.values());
        cited.append(
            p.get(6..9)
                .and_then(|c| Cited::of(c, files))
                .ok_or_else(|| damaged(store, &what))?,
        );
    }
    let out = ResultsText {
        ranks,
        outcome: Some(text(0)?),
        ct_orf1ab: Some(float(1)?),
        ct_n: Some(float(2)?),
        reported_at,
        lab: Some(text(4)?),
        plate: Some(text(5)?),
        cited,
        late: Vec::new(),
    };
    if out.reported_at.len() != rows.len() || out.cited.len() != rows.len() {
        return Err(damaged(store, &what));
    }
    Ok(out)
}

/// Reads the person ids of the marked register rows.
pub(super) fn register_ids(
    store: &Store,
    files: &[std::path::PathBuf],
    ranks: &Ranks,
) -> Result<Ids> {
    let rows = ranks.positions();
    let mut ids = Ids::default();
    if rows.is_empty() {
        return Ok(ids);
    }
    let what = "the population register's person column";
    let parts = read::map_rows(store, files, &["person"], &[], Picked::Rows(&rows), |c| {
        let person = c[0]
            .as_string_opt::<i32>()
            .ok_or_else(|| damaged(store, what))?;
        let mut part = Ids::default();
        for i in 0..person.len() {
            part.push(crate::text::text_at(person, i));
        }
        Ok(part)
    })?;
    for part in parts {
        ids.append(&part);
    }
    if ids.keys.len() != rows.len() {
        return Err(damaged(store, what));
    }
    Ok(ids)
}

/// Compares two keys as their ids' text.
pub(super) fn cmp_keys(a: u64, b: u64, other: &Arena) -> std::cmp::Ordering {
    if (a | b) & OTHER == 0 {
        return a.cmp(&b);
    }
    let (mut ta, mut tb) = ([0u8; 18], [0u8; 18]);
    let text = |k: u64, buf: &mut [u8; 18]| -> usize {
        if k & OTHER == 0 {
            *buf = resident_text(k);
            usize::MAX
        } else {
            usize::try_from(k & !OTHER).unwrap_or(usize::MAX)
        }
    };
    let (ia, ib) = (text(a, &mut ta), text(b, &mut tb));
    let sa: &[u8] = if ia == usize::MAX {
        &ta
    } else {
        other.get(ia).as_bytes()
    };
    let sb: &[u8] = if ib == usize::MAX {
        &tb
    } else {
        other.get(ib).as_bytes()
    };
    sa.cmp(sb)
}

/// Sorts `items` by the id text their keys stand for, on all cores.
pub(super) fn sort_by_id<T: Send>(items: &mut [T], key: impl Fn(&T) -> u64 + Sync, other: &Arena) {
    if other.len() == 0 {
        items.par_sort_unstable_by_key(key);
    } else {
        items.par_sort_unstable_by(|a, b| cmp_keys(key(a), key(b), other));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_keys_sort_as_their_text_and_read_back() {
        let ids = [
            "110105194912310021",
            "11010519491231002X",
            "110105194912310030",
            "000000000000000000",
            "99999999999999999X",
            "310000000000000012",
        ];
        let mut by_text: Vec<&str> = ids.to_vec();
        by_text.sort_unstable();
        let mut by_key: Vec<(u64, &str)> = ids
            .iter()
            .map(|id| (resident_key(id.as_bytes()).expect("resident form"), *id))
            .collect();
        by_key.sort_unstable();
        assert_eq!(by_key.iter().map(|x| x.1).collect::<Vec<_>>(), by_text);
        for (k, id) in by_key {
            assert!(k < OTHER);
            assert_eq!(&resident_text(k), id.as_bytes());
        }
        for other in [
            "11010519491231002x",
            "1101051949123100",
            "E12345678",
            "1101051949123100２X",
        ] {
            assert_eq!(resident_key(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn mixed_keys_compare_as_text() {
        let mut ids = Ids::default();
        let texts = [
            "310000000000000012",
            "31",
            "P-7",
            "310000000000000012a",
            "A",
            "310000000000000013",
        ];
        for t in texts {
            ids.push(t);
        }
        let mut pairs: Vec<(u64, u32)> = ids.keys.iter().copied().zip(0..).collect();
        sort_by_id(&mut pairs, |p| p.0, &ids.other);
        let got: Vec<&str> = pairs.iter().map(|&(_, i)| texts[i as usize]).collect();
        let mut want = texts.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn ranks_count_the_marks_before() {
        let marks = Ranks::marks(200);
        for i in [0, 5, 63, 64, 130, 199, 250] {
            mark(&marks, i);
        }
        let ranks = Ranks::of(200, &marks);
        assert_eq!(ranks.positions(), [0, 5, 63, 64, 130, 199]);
        assert_eq!(ranks.rank(64), Some(3));
        assert_eq!(ranks.rank(199), Some(5));
        assert_eq!(ranks.rank(6), None);
        assert_eq!(ranks.rank(250), None);
    }
}
