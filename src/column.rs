//! A growable column of strings in one byte arena: the layout of an Arrow `StringArray`,
//! so a parsed batch becomes Arrow (and Parquet) without copying each value again.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, UInt32Array};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};

use crate::fasthash::KeyHash;
use crate::person_key::{PersonKeys, resident_person_key};
use crate::text::{resident_key, resident_text};

/// Strings stored end to end in one buffer, with Arrow's `i32` offsets.
///
/// While every value has the same width, as a city's barcodes and resident ids do, the
/// offsets are not kept: value `i` is at `i * width`. They were 4 bytes a value, 200 MB
/// of a 25 M-row collections batch; a value of another width brings them back.
#[derive(Debug, Clone, Default)]
pub struct StrColumn {
    data: Vec<u8>,
    /// A leading 0, then each value's end; empty while every value is `width` bytes.
    offsets: Vec<i32>,
    /// The width of every value while `offsets` is empty.
    width: usize,
    /// Number of values.
    len: usize,
    nulls: Option<Vec<bool>>,
}

impl StrColumn {
    /// An empty column with room for `rows` values of about `avg` bytes.
    pub fn with_capacity(rows: usize, avg: usize) -> Self {
        StrColumn {
            data: Vec::with_capacity(rows * avg),
            ..StrColumn::default()
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the column holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every value is `width` bytes and no offsets are kept.
    fn uniform(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Keeps offsets from here on: a value of another width is coming.
    fn keep_offsets(&mut self) {
        if self.uniform() {
            let w = self.width;
            self.offsets.reserve(self.len + 1);
            self.offsets
                .extend((0..=self.len).map(|k| i32::try_from(k * w).unwrap_or(i32::MAX)));
        }
    }

    fn push_bytes(&mut self, b: &[u8]) {
        if self.uniform() {
            if self.len == 0 {
                self.width = b.len();
            }
            if b.len() == self.width {
                self.data.extend_from_slice(b);
                self.len += 1;
                return;
            }
            self.keep_offsets();
        }
        self.data.extend_from_slice(b);
        let end = i32::try_from(self.data.len()).unwrap_or(i32::MAX);
        self.offsets.push(end);
        self.len += 1;
    }

    /// Appends a value.
    ///
    /// Values are validated to at most 64 characters before they get here, so the
    /// arena stays far below Arrow's 2 GiB limit per batch column; a batch over it is
    /// refused by [`StrColumn::try_push`].
    pub fn push(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
        if let Some(n) = &mut self.nulls {
            n.push(true);
        }
    }

    /// Appends a value, or reports that the column is full (2 GiB of text).
    pub fn try_push(&mut self, s: &str) -> Result<(), ColumnFull> {
        if self.data.len() + s.len() > i32::MAX as usize {
            return Err(ColumnFull);
        }
        self.push(s);
        Ok(())
    }

    /// Appends a missing value.
    pub(crate) fn push_null(&mut self) {
        let len = self.len;
        let nulls = self.nulls.get_or_insert_with(|| vec![true; len]);
        nulls.push(false);
        self.push_bytes(b"");
    }

    /// Appends `Some` as a value and `None` as missing.
    pub fn push_opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.push(s),
            None => self.push_null(),
        }
    }

    /// The `i`th value (a missing value reads as empty).
    pub fn get(&self, i: usize) -> &str {
        // Only &str values are ever pushed, and offsets fall on their boundaries.
        std::str::from_utf8(self.bytes(i)).unwrap_or_default()
    }

    /// Where the `i`th value's bytes are in `data`.
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        if self.uniform() {
            assert!(i < self.len, "value {i} of {}", self.len);
            i * self.width..(i + 1) * self.width
        } else {
            let (a, b) = (self.offsets[i], self.offsets[i + 1]);
            usize::try_from(a).unwrap_or(0)..usize::try_from(b).unwrap_or(0)
        }
    }

    /// The `i`th value's bytes: for sorting and comparing in hot loops, where
    /// re-checking UTF-8 on every comparison cost a quarter of an ingest. Byte order
    /// of UTF-8 text is its `str` order.
    pub fn bytes(&self, i: usize) -> &[u8] {
        &self.data[self.range(i)]
    }

    /// The `i`th value, or `None` when missing.
    pub fn get_opt(&self, i: usize) -> Option<&str> {
        match &self.nulls {
            Some(n) if !n[i] => None,
            _ => Some(self.get(i)),
        }
    }

    /// Removes every value, keeping the buffers' room for the next values.
    pub fn clear(&mut self) {
        self.data.clear();
        self.offsets.clear();
        self.width = 0;
        self.len = 0;
        self.nulls = None;
    }

    /// Appends every value of `other`, in order.
    pub fn append(&mut self, other: &StrColumn) {
        if other.len == 0 {
            return;
        }
        let len = self.len;
        if len == 0 && self.uniform() {
            self.width = other.width;
        }
        if self.uniform() && other.uniform() && self.width == other.width {
            self.data.extend_from_slice(&other.data);
        } else {
            self.keep_offsets();
            let base = self.data.len();
            self.data.extend_from_slice(&other.data);
            let end = |b: usize| i32::try_from(base + b).unwrap_or(i32::MAX);
            if other.uniform() {
                let w = other.width;
                self.offsets.extend((1..=other.len).map(|k| end(k * w)));
            } else {
                self.offsets.extend(
                    other.offsets[1..]
                        .iter()
                        .map(|&o| end(usize::try_from(o).unwrap_or(0))),
                );
            }
        }
        self.len += other.len;
        match (&mut self.nulls, &other.nulls) {
            (None, None) => {}
            (Some(n), None) => n.resize(n.len() + other.len, true),
            (mine, Some(theirs)) => {
                let n = mine.get_or_insert_with(|| vec![true; len]);
                n.extend_from_slice(theirs);
            }
        }
    }

    /// A new column of the values at `order`, in that order: a straight byte copy,
    /// no per-value checks.
    #[must_use]
    pub fn gather(&self, order: &[u32]) -> StrColumn {
        let total: usize = if self.uniform() {
            order.len() * self.width
        } else {
            order.iter().map(|&i| self.range(i as usize).len()).sum()
        };
        let mut out = StrColumn {
            data: Vec::with_capacity(total),
            offsets: Vec::new(),
            width: self.width,
            len: order.len(),
            nulls: self
                .nulls
                .as_ref()
                .map(|n| order.iter().map(|&i| n[i as usize]).collect()),
        };
        if !self.uniform() {
            out.offsets.reserve(order.len() + 1);
            out.offsets.push(0);
        }
        for &i in order {
            out.data
                .extend_from_slice(&self.data[self.range(i as usize)]);
            if !self.uniform() {
                out.offsets
                    .push(i32::try_from(out.data.len()).unwrap_or(i32::MAX));
            }
        }
        out
    }

    /// The values `start..start + len` as an Arrow array of their own (their text
    /// copied): a Parquet row group's worth, without the whole column's offsets.
    pub fn arrow_range(&self, start: usize, len: usize) -> StringArray {
        if len == 0 {
            return StringArray::from(Vec::<&str>::new());
        }
        let (first, last) = (self.range(start), self.range(start + len - 1));
        let data = self.data[first.start..last.end].to_vec();
        let offsets: Vec<i32> = if self.uniform() {
            (0..=len)
                .map(|k| i32::try_from(k * self.width).unwrap_or(i32::MAX))
                .collect()
        } else {
            self.offsets[start..=start + len]
                .iter()
                .map(|&o| o - self.offsets[start])
                .collect()
        };
        let nulls = self
            .nulls
            .as_ref()
            .map(|n| arrow_buffer::NullBuffer::from(&n[start..start + len]));
        StringArray::new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(data),
            nulls,
        )
    }

    /// Converts into an Arrow array without copying the text.
    pub fn into_arrow(mut self) -> StringArray {
        self.keep_offsets();
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let nulls = self.nulls.map(arrow_buffer::NullBuffer::from);
        StringArray::new(offsets, Buffer::from_vec(self.data), nulls)
    }
}

/// Person ids: each of the resident-number form (GB 11643: 17 digits and a check
/// character, `0`-`9` or `X`) as a 64-bit code, any other id as text.
///
/// A city's ids are nearly all of that form, so a row costs 8 bytes instead of 18
/// (250 MB of a 25 M-row batch, a gigabyte of a province's), and two ids compare as
/// integers. The code is `digits × 11 + check` (`X` = 10, `text::resident_key`): codes order as the ids'
/// text does, so sorting by code is sorting by id. Whether the check character is the
/// right one is not this column's business (see `model::check_person_id`): a wrong
/// one is kept as written.
#[derive(Debug, Clone, Default)]
pub struct PersonColumn {
    /// Each row's code, or [`PersonColumn::TEXT`] plus the row's place in `text`.
    codes: Vec<u64>,
    /// The ids of no resident-number form, in row order.
    text: StrColumn,
}

/// One id of a [`PersonColumn`], as its text.
#[derive(Debug, Clone, Copy)]
pub enum PersonId<'a> {
    /// An id of the resident-number form, written out.
    Resident([u8; 18]),
    /// Any other id.
    Text(&'a str),
}

impl PersonId<'_> {
    /// The id's bytes, without the UTF-8 check [`PersonId::as_str`] makes: the person
    /// index hashes and the collections' writer copies 25 M of them a round, where
    /// that check was a tenth of the write.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PersonId::Resident(b) => b,
            PersonId::Text(s) => s.as_bytes(),
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        match self {
            // Written from digits and `X` only.
            PersonId::Resident(b) => std::str::from_utf8(b).unwrap_or_default(),
            PersonId::Text(s) => s,
        }
    }
}

impl AsRef<str> for PersonId<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for PersonId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PersonColumn {
    /// Codes at or above this are places in the text column; every resident code is
    /// below 10^17 × 11.
    const TEXT: u64 = 1 << 62;

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether the column holds no id.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Appends an id.
    pub fn push(&mut self, id: &str) {
        let code = resident_key(id.as_bytes()).unwrap_or_else(|| {
            let k = self.text.len() as u64;
            self.text.push(id);
            Self::TEXT + k
        });
        self.codes.push(code);
    }

    /// The `i`th id.
    pub fn get(&self, i: usize) -> PersonId<'_> {
        match self.codes[i] {
            c if c < Self::TEXT => PersonId::Resident(resident_text(c)),
            c => PersonId::Text(self.text.get(usize::try_from(c - Self::TEXT).unwrap_or(0))),
        }
    }

    /// The order of the `i`th and `j`th ids' text.
    pub fn cmp(&self, i: usize, j: usize) -> std::cmp::Ordering {
        let (a, b) = (self.codes[i], self.codes[j]);
        if a < Self::TEXT && b < Self::TEXT {
            a.cmp(&b)
        } else {
            let (a, b) = (self.get(i), self.get(j));
            a.as_str().cmp(b.as_str())
        }
    }

    /// Whether the `i`th and `j`th ids are the same.
    pub fn same(&self, i: usize, j: usize) -> bool {
        self.cmp(i, j).is_eq()
    }

    /// The `i`th id's person key, as [`PersonKeys::key`] makes it of its text; an exact
    /// key of a resident id comes from its code, without writing out its text.
    pub fn key(&self, i: usize, keys: PersonKeys) -> u128 {
        match (keys, self.codes[i]) {
            (PersonKeys::Exact, c) if c < Self::TEXT => resident_person_key(c),
            _ => keys.key(self.get(i).as_str()),
        }
    }

    /// Removes every id, keeping the buffers' room.
    pub fn clear(&mut self) {
        self.codes.clear();
        self.text.clear();
    }

    /// Makes room for `additional` more ids' codes.
    pub fn reserve(&mut self, additional: usize) {
        self.codes.reserve(additional);
    }

    /// The resident key ([`resident_key`]) of the `i`th id, `None` when it has another
    /// form.
    pub fn resident_key(&self, i: usize) -> Option<u64> {
        Some(self.codes[i]).filter(|&c| c < Self::TEXT)
    }

    /// Appends every id of `other`, in order.
    pub fn append(&mut self, other: &PersonColumn) {
        let base = self.text.len() as u64;
        self.codes.extend(
            other
                .codes
                .iter()
                .map(|&c| if c < Self::TEXT { c } else { c + base }),
        );
        self.text.append(&other.text);
    }

    /// A new column of the ids at `order`, in that order.
    #[must_use]
    pub fn gather(&self, order: &[u32]) -> PersonColumn {
        let mut out = PersonColumn {
            codes: Vec::with_capacity(order.len()),
            text: StrColumn::default(),
        };
        for &i in order {
            match self.codes[i as usize] {
                c if c < Self::TEXT => out.codes.push(c),
                _ => out.push(self.get(i as usize).as_str()),
            }
        }
        out
    }

    /// The ids `start..start + len` as Arrow text.
    pub fn arrow_range(&self, start: usize, len: usize) -> StringArray {
        let mut data = Vec::with_capacity(len * 18);
        let mut offsets = Vec::with_capacity(len + 1);
        offsets.push(0i32);
        for k in start..start + len {
            data.extend_from_slice(self.get(k).as_bytes());
            offsets.push(i32::try_from(data.len()).unwrap_or(i32::MAX));
        }
        StringArray::new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(data),
            None,
        )
    }
}

/// Ct values, one a row, with "no amplification" kept as NaN: a Ct read from input is
/// a finite number (see `ingest::results::parse_ct`), so NaN is free to mean none, and
/// a row costs 4 bytes where an `Option<f32>` cost 8.
#[derive(Debug, Clone, Default)]
pub struct CtColumn(Vec<f32>);

impl CtColumn {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends a Ct (`None` or NaN: no amplification).
    pub fn push(&mut self, ct: Option<f32>) {
        self.0.push(ct.unwrap_or(f32::NAN));
    }

    /// The `i`th row's Ct.
    pub fn get(&self, i: usize) -> Option<f32> {
        Some(self.0[i]).filter(|c| !c.is_nan())
    }

    /// Appends every row of `other`.
    pub fn append(&mut self, other: &CtColumn) {
        self.0.extend_from_slice(&other.0);
    }

    /// Removes every row.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Optional times (milliseconds since the epoch, as `time::Millis`), one a row, with a
/// missing time kept as `i64::MIN` (no time pooltrack reads is that far back): 8 bytes
/// a row where an `Option<Millis>` cost 16. (`i64`, not `Millis`: columns sit beside
/// `time` in the module layers and do not name it.)
#[derive(Debug, Clone, Default)]
pub struct TimeColumn(Vec<i64>);

impl TimeColumn {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends a time, or a missing one.
    pub fn push(&mut self, t: Option<i64>) {
        self.0.push(t.unwrap_or(i64::MIN));
    }

    /// The `i`th row's time.
    pub fn get(&self, i: usize) -> Option<i64> {
        Some(self.0[i]).filter(|&t| t != i64::MIN)
    }

    /// Appends every row of `other`.
    pub fn append(&mut self, other: &TimeColumn) {
        self.0.extend_from_slice(&other.0);
    }

    /// Removes every row.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// The row keys of a [`LabelColumn`]: two bytes a row while every key fits below
/// `u16::MAX` (a city's few thousand sites), four bytes once one does not.
#[derive(Debug, Clone)]
enum Keys {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Default for Keys {
    fn default() -> Self {
        Keys::Narrow(Vec::new())
    }
}

impl Keys {
    /// A missing value among narrow keys.
    const NARROW_MISSING: u16 = u16::MAX;

    fn len(&self) -> usize {
        match self {
            Keys::Narrow(v) => v.len(),
            Keys::Wide(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of row `i` ([`LabelColumn::MISSING`] for a missing value).
    fn get(&self, i: usize) -> Option<u32> {
        match self {
            Keys::Narrow(v) => v.get(i).map(|&k| Self::widen(k)),
            Keys::Wide(v) => v.get(i).copied(),
        }
    }

    fn last(&self) -> Option<u32> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    fn widen(k: u16) -> u32 {
        if k == Self::NARROW_MISSING {
            LabelColumn::MISSING
        } else {
            u32::from(k)
        }
    }

    fn push(&mut self, key: u32) {
        if let Keys::Narrow(v) = self {
            match u16::try_from(key) {
                Ok(k) if k != Self::NARROW_MISSING => return v.push(k),
                _ if key == LabelColumn::MISSING => return v.push(Self::NARROW_MISSING),
                _ => *self = Keys::Wide(v.iter().map(|&k| Self::widen(k)).collect()),
            }
        }
        if let Keys::Wide(v) = self {
            v.push(key);
        }
    }

    fn clear(&mut self) {
        match self {
            Keys::Narrow(v) => v.clear(),
            Keys::Wide(v) => v.clear(),
        }
    }
}

/// A column of labels with few distinct values (sampling sites): each distinct value
/// stored once, each row a key into them. A 25-million-row batch's sites took 325 MB
/// as text and take 50 MB as keys (two bytes a row while there are fewer than 65,535
/// distinct values; four after).
#[derive(Debug, Clone, Default)]
pub struct LabelColumn {
    values: StrColumn,
    lookup: HashMap<Box<str>, u32, KeyHash>,
    /// Key of each row; [`LabelColumn::MISSING`] for a missing value.
    keys: Keys,
}

impl LabelColumn {
    /// The key of a missing value.
    pub const MISSING: u32 = u32::MAX;

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn key_of(&mut self, s: &str) -> u32 {
        if let Some(&k) = self.lookup.get(s) {
            return k;
        }
        let k = u32::try_from(self.values.len()).unwrap_or(Self::MISSING - 1);
        self.values.push(s);
        self.lookup.insert(s.into(), k);
        k
    }

    /// Appends `Some` as a value and `None` as missing.
    ///
    /// ```
    /// use pooltrack::column::LabelColumn;
    /// let mut c = LabelColumn::default();
    /// c.push_opt(Some("S1"));
    /// c.push_opt(None);
    /// c.push_opt(Some("S1"));
    /// assert_eq!((c.get_opt(0), c.get_opt(1), c.get_opt(2)), (Some("S1"), None, Some("S1")));
    /// assert_eq!(c.distinct(), 1);
    /// ```
    pub fn push_opt(&mut self, s: Option<&str>) {
        let key = match s {
            None => Self::MISSING,
            // Rows come in runs from one site: the previous row's key usually fits.
            Some(s) => match self.keys.last() {
                // Bytes, not text: the stored value was text when it was pushed.
                Some(k) if k != Self::MISSING && self.values.bytes(k as usize) == s.as_bytes() => k,
                _ => self.key_of(s),
            },
        };
        self.keys.push(key);
    }

    /// Appends `n` missing values: the rows of a file that has no such column.
    pub fn push_missing(&mut self, n: usize) {
        match &mut self.keys {
            Keys::Narrow(v) => v.resize(v.len() + n, Keys::NARROW_MISSING),
            Keys::Wide(v) => v.resize(v.len() + n, Self::MISSING),
        }
    }

    /// Appends the last row's value again (a missing value when there is no row).
    ///
    /// ```
    /// use pooltrack::column::LabelColumn;
    /// let mut c = LabelColumn::default();
    /// c.push_opt(Some("BX01"));
    /// assert!(c.last_is("BX01") && !c.last_is("BX02"));
    /// c.push_last();
    /// c.push_missing(1);
    /// assert_eq!((c.get_opt(1), c.get_opt(2), c.len()), (Some("BX01"), None, 3));
    /// assert!(!c.last_is("BX01"));
    /// ```
    pub fn push_last(&mut self) {
        let key = self.keys.last().unwrap_or(Self::MISSING);
        self.keys.push(key);
    }

    /// Whether the last row holds `s`: a run of equal values checks its first only.
    pub fn last_is(&self, s: &str) -> bool {
        match self.keys.last() {
            Some(k) if k != Self::MISSING => self.values.bytes(k as usize) == s.as_bytes(),
            _ => false,
        }
    }

    /// The `i`th value, or `None` when missing.
    pub fn get_opt(&self, i: usize) -> Option<&str> {
        match self.keys.get(i) {
            Some(k) if k != Self::MISSING => Some(self.values.get(k as usize)),
            _ => None,
        }
    }

    /// The `i`th row's key: equal values have equal keys ([`LabelColumn::MISSING`] for
    /// a missing value or a row past the end), so rows compare without their text.
    pub fn key(&self, i: usize) -> u32 {
        self.keys.get(i).unwrap_or(Self::MISSING)
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        self.values.len()
    }

    /// Removes every row and value, keeping the buffers' room.
    pub fn clear(&mut self) {
        self.values.clear();
        self.lookup.clear();
        self.keys.clear();
    }

    /// Appends every row of `other`, translating its keys into this column's.
    pub fn append(&mut self, other: &LabelColumn) {
        let map: Vec<u32> = (0..other.values.len())
            .map(|k| self.key_of(other.values.get(k)))
            .collect();
        for i in 0..other.keys.len() {
            let k = other.keys.get(i).unwrap_or(Self::MISSING);
            self.keys.push(if k == Self::MISSING {
                k
            } else {
                map[k as usize]
            });
        }
    }

    /// The distinct values as Arrow text, to share among dictionary arrays built a
    /// slice of rows at a time with [`LabelColumn::arrow_keys`].
    pub fn arrow_values(&self) -> ArrayRef {
        Arc::new(self.values.clone().into_arrow())
    }

    /// The keys of `rows` as Arrow dictionary keys (a missing value as null).
    ///
    /// ```
    /// use arrow_array::{Array, DictionaryArray};
    /// use pooltrack::column::LabelColumn;
    /// let mut c = LabelColumn::default();
    /// for s in [Some("S1"), None, Some("S2")] {
    ///     c.push_opt(s);
    /// }
    /// let sites = DictionaryArray::new(c.arrow_keys([2, 1].into_iter()), c.arrow_values());
    /// assert_eq!(sites.keys().value(0), 1);
    /// assert!(sites.is_null(1));
    /// ```
    pub fn arrow_keys(&self, rows: impl Iterator<Item = usize>) -> UInt32Array {
        rows.map(|i| self.keys.get(i).filter(|&k| k != Self::MISSING))
            .collect()
    }
}

/// A column reached Arrow's 2 GiB limit for one array.
#[derive(Debug, Clone, Copy)]
pub struct ColumnFull;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, DictionaryArray};

    #[test]
    fn values_and_nulls_survive_conversion() {
        let mut c = StrColumn::with_capacity(4, 4);
        c.push("tube");
        c.push_null();
        c.push("");
        c.push_opt(Some("张三"));
        assert_eq!(c.len(), 4);
        assert_eq!(c.get_opt(1), None);
        assert_eq!(c.get(3), "张三");
        let a = c.into_arrow();
        assert_eq!(a.value(0), "tube");
        assert!(a.is_null(1));
        assert!(!a.is_null(2));
        assert_eq!(a.value(3), "张三");
    }

    #[test]
    fn append_keeps_values_and_nulls() {
        let mut a = StrColumn::default();
        a.push("x");
        let mut b = StrColumn::default();
        b.push_null();
        b.push("yz");
        a.append(&b);
        a.append(&StrColumn::default());
        assert_eq!(a.len(), 3);
        assert_eq!(a.get_opt(0), Some("x"));
        assert_eq!(a.get_opt(1), None);
        assert_eq!(a.get(2), "yz");
    }

    #[test]
    fn gather_reorders_values_and_nulls() {
        let mut c = StrColumn::default();
        for v in [Some("a"), None, Some("ccc")] {
            c.push_opt(v);
        }
        let g = c.gather(&[2, 0, 1, 2]);
        let got: Vec<_> = (0..g.len()).map(|i| g.get_opt(i)).collect();
        assert_eq!(got, [Some("ccc"), Some("a"), None, Some("ccc")]);
    }

    /// A model of a column: the values as a list.
    fn model(c: &StrColumn) -> Vec<Option<String>> {
        (0..c.len())
            .map(|i| c.get_opt(i).map(str::to_owned))
            .collect()
    }

    proptest::proptest! {
        /// Whatever the widths, nulls and joins, a column holds what was pushed, and
        /// its Arrow forms (whole and by range) and gathers agree with that list.
        #[test]
        fn a_column_holds_what_was_pushed_with_or_without_offsets(
            parts in proptest::collection::vec(
                proptest::collection::vec(proptest::option::weighted(0.9, "[a-c]{0,2}|PL[0-9]{3}"), 0..12),
                1..4,
            ),
            picks in proptest::collection::vec(0usize..1000, 0..20),
            from in 0usize..40,
            take in 0usize..40,
        ) {
            let mut whole = StrColumn::default();
            let mut want: Vec<Option<String>> = Vec::new();
            for part in &parts {
                let mut c = StrColumn::with_capacity(part.len(), 5);
                for v in part {
                    c.push_opt(v.as_deref());
                }
                proptest::prop_assert_eq!(&model(&c), part);
                whole.append(&c);
                want.extend(part.iter().cloned());
            }
            proptest::prop_assert_eq!(&model(&whole), &want);
            let arrow = whole.clone().into_arrow();
            let got: Vec<Option<String>> = arrow.iter().map(|v| v.map(str::to_owned)).collect();
            proptest::prop_assert_eq!(&got, &want);
            if !want.is_empty() {
                let order: Vec<u32> = picks.iter().map(|&p| u32::try_from(p % want.len()).expect("small")).collect();
                let g = whole.gather(&order);
                let expect: Vec<Option<String>> = order.iter().map(|&i| want[i as usize].clone()).collect();
                proptest::prop_assert_eq!(model(&g), expect);
                let start = from % want.len();
                let len = take.min(want.len() - start);
                let r = whole.arrow_range(start, len);
                let got: Vec<Option<String>> = r.iter().map(|v| v.map(str::to_owned)).collect();
                proptest::prop_assert_eq!(&got[..], &want[start..start + len]);
            }
            let uniform = want.iter().all(|v| v.as_ref().map_or(0, String::len) == want.first().and_then(|v| v.as_ref()).map_or(0, String::len));
            proptest::prop_assert_eq!(whole.uniform(), uniform || want.is_empty());
            whole.clear();
            proptest::prop_assert!(whole.is_empty() && model(&whole).is_empty());
        }
    }

    proptest::proptest! {
        /// Ids of the resident-number form and others, mixed: each reads back as
        /// written, ids order and hash as their text does, and Arrow ranges agree.
        #[test]
        fn person_ids_read_back_and_order_as_their_text(
            parts in proptest::collection::vec(
                proptest::collection::vec(
                    "[0-9]{17}[0-9X]|[0-9]{17}x|[0-9]{16}[0-9X]|P-[0-9]{1,3}|31[0-9]{15}X|",
                    0..10,
                ),
                1..4,
            ),
        ) {
            let mut whole = PersonColumn::default();
            let mut want: Vec<String> = Vec::new();
            for part in &parts {
                let mut c = PersonColumn::default();
                for id in part { c.push(id); }
                whole.append(&c);
                want.extend(part.iter().cloned());
            }
            let got: Vec<String> = (0..whole.len()).map(|i| whole.get(i).to_string()).collect();
            proptest::prop_assert_eq!(&got, &want);
            for i in 0..want.len() {
                for keys in [PersonKeys::Hashed, PersonKeys::Exact] {
                    proptest::prop_assert_eq!(whole.key(i, keys), keys.key(&want[i]));
                }
                proptest::prop_assert_eq!(whole.key(i, PersonKeys::Hashed), xxhash_rust::xxh3::xxh3_128(want[i].as_bytes()));
                for j in 0..want.len() {
                    proptest::prop_assert_eq!(whole.cmp(i, j), want[i].cmp(&want[j]), "{} {}", want[i], want[j]);
                    // Exact keys are the ids: equal exactly when the ids are.
                    let same = whole.key(i, PersonKeys::Exact) == whole.key(j, PersonKeys::Exact);
                    proptest::prop_assert_eq!(same, want[i] == want[j], "{} {}", want[i], want[j]);
                }
            }
            let arrow = whole.arrow_range(0, want.len());
            let got: Vec<&str> = arrow.iter().map(Option::unwrap_or_default).collect();
            proptest::prop_assert_eq!(got, want.iter().map(String::as_str).collect::<Vec<_>>());
            whole.clear();
            proptest::prop_assert!(whole.is_empty());
        }
    }

    #[test]
    fn resident_ids_become_codes_and_others_stay_text() {
        for id in [
            "110101199001011237",
            "11010119900101123X",
            "000000000000000000",
            "999999999999999999",
        ] {
            let code = resident_key(id.as_bytes()).expect("resident form");
            assert!(code < PersonColumn::TEXT);
            assert_eq!(resident_text(code), id.as_bytes());
        }
        for id in [
            "11010119900101123x",
            "1101011990010112",
            "P-1",
            "",
            "1.10105E+17",
            "11010119900101123７",
        ] {
            assert_eq!(resident_key(id.as_bytes()), None, "{id}");
        }
        assert!(resident_key(b"999999999999999999") < resident_key(b"99999999999999999X"));
    }

    #[test]
    fn cts_and_times_keep_what_was_pushed_and_none() {
        let mut c = CtColumn::default();
        let mut t = TimeColumn::default();
        for (ct, at) in [
            (Some(0.0), Some(0)),
            (None, None),
            (Some(39.5), Some(-1)),
            (Some(100.0), Some(i64::MAX)),
        ] {
            c.push(ct);
            t.push(at);
        }
        let mut more = (CtColumn::default(), TimeColumn::default());
        more.0.push(None);
        more.1.push(Some(7));
        c.append(&more.0);
        t.append(&more.1);
        let cts: Vec<_> = (0..c.len()).map(|i| c.get(i)).collect();
        let times: Vec<_> = (0..t.len()).map(|i| t.get(i)).collect();
        assert_eq!(cts, [Some(0.0), None, Some(39.5), Some(100.0), None]);
        assert_eq!(times, [Some(0), None, Some(-1), Some(i64::MAX), Some(7)]);
        c.clear();
        t.clear();
        assert!(c.is_empty() && t.is_empty());
    }

    #[test]
    fn label_keys_widen_past_65534_values_and_keep_every_row() {
        let mut c = LabelColumn::default();
        let mut want = Vec::new();
        for i in 0..100_000u32 {
            let v = (i % 3 != 1).then(|| format!("S{i}"));
            c.push_opt(v.as_deref());
            want.push(v);
            if i == 65_533 {
                assert!(matches!(c.keys, Keys::Narrow(_)), "narrow while keys fit");
            }
        }
        assert!(matches!(c.keys, Keys::Wide(_)));
        c.push_missing(2);
        want.extend([None, None]);
        let mut joined = LabelColumn::default();
        joined.push_opt(Some("S5"));
        joined.append(&c);
        want.insert(0, Some("S5".to_owned()));
        let got: Vec<Option<String>> = (0..joined.len())
            .map(|i| joined.get_opt(i).map(str::to_owned))
            .collect();
        assert_eq!(got, want);
        assert_eq!(joined.key(6), joined.key(0), "S5 keeps one key");
    }

    #[test]
    fn default_column_converts_empty() {
        assert_eq!(StrColumn::default().into_arrow().len(), 0);
    }

    #[test]
    fn label_columns_merge_their_dictionaries_and_gather() {
        let mut a = LabelColumn::default();
        a.push_opt(Some("S2"));
        a.push_opt(Some("S1"));
        let mut b = LabelColumn::default();
        b.push_opt(Some("S1"));
        b.push_opt(None);
        b.push_opt(Some("S3"));
        a.append(&b);
        assert_eq!(a.distinct(), 3);
        let got: Vec<Option<&str>> = (0..a.len()).map(|i| a.get_opt(i)).collect();
        assert_eq!(got, [Some("S2"), Some("S1"), Some("S1"), None, Some("S3")]);
        let arrow = DictionaryArray::new(a.arrow_keys([4, 3, 0].into_iter()), a.arrow_values());
        let values = arrow.downcast_dict::<StringArray>().expect("text values");
        let got: Vec<Option<&str>> = values.into_iter().collect();
        assert_eq!(got, [Some("S3"), None, Some("S2")]);
    }
}
