//! Sidecar indexes: sorted arrays of fixed-size records, memory-mapped and searched by
//! binary search, so a batch of 10,000 rows checks its tubes against a 25-million-row
//! store by touching a few pages instead of reading the round.
//!
//! File layout (little-endian): a 32-byte header — magic `PTIDX1\0\0`, kind `u32`,
//! record size `u32`, record count `u64`, 8 reserved bytes — then the records. Keyed
//! records start with the tube barcode, zero-padded to 32 bytes; barcodes hold no NUL,
//! so byte order of the padded keys is the barcodes' order.
//!
//! Kinds:
//! - [`Kind::CollectionTubes`], 48 bytes: key, first row `u32` and row count `u32` of
//!   a run of the tube's consecutive rows in the segment's Parquet file, then the
//!   tube's metadata as settled when the batch was committed ([`TubeMeta`]): mode `u8`
//!   (2 = no row has stated it yet), capacity `u8` (0 = not stated yet), flags `u8`
//!   (bit 0: rows of this batch disagree about the tube's metadata); a tube whose rows
//!   are interleaved with others' has several records. Format-1 stores wrote the flags
//!   byte as 0 and never wrote mode 2 or capacity 0, so they read unchanged.
//! - [`Kind::Persons`]: a row's person key ([`PersonKeys`], 16 bytes big-endian, so byte
//!   order is numeric order) and the row `u32`, sorted by key then row: finds a
//!   person's rows, and groups a round's rows by person by merging sorted files
//!   instead of sorting 25 million strings. Two layouts, told apart by the header's
//!   kind:
//!   - kind 2 (store formats 1 to 3, [`PersonKeys::Hashed`]): 20-byte records, the
//!     key the xxh3-128 hash of the id. At 128 bits a collision between two ids is not
//!     a practical concern (about 10^-24 for a 25-million-person round).
//!   - kind 4 (store format 4, [`PersonKeys::Exact`]): the header's reserved word holds
//!     the number of records whose key is below 2^64 (the residents: the key is a
//!     bijection of the id's 64-bit code, so two ids never share one), written first
//!     as 12 bytes each (the key's low 8 bytes, the row); then the other ids' records,
//!     20 bytes each (key at or above 2^127). Readers see 20-byte records throughout
//!     ([`Scan`] widens the short ones), so the file is one sorted array; a city of
//!     residents takes 300 MB instead of 500 MB.
//! - [`Kind::ResultTubes`], 56 bytes: key, row `u32`, outcome `u8`, 3 spare bytes,
//!   `reported_at` `i64` (ms), Ct `ORF1ab` and Ct N `f32` (NaN = no amplification),
//!   sorted by key then time: a round's effective results come from this file alone.
//!
//! One job: the index file format, written and read. The writer and the reader share
//! the record layouts above, so they stay in one file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::Mmap;

use crate::model::Mode;
pub use crate::person_key::{PersonKeys, other_person_key, resident_person_key};
use crate::{Error, Result};

const MAGIC: [u8; 8] = *b"PTIDX1\0\0";
/// Bytes of a sidecar's header, before its records.
pub(crate) const HEADER: usize = 32;

/// Length of a tube key: the longest barcode.
pub const KEY: usize = 32;

/// A tube barcode as an index key.
pub type TubeKey = [u8; KEY];

/// The index key of a barcode (which [`crate::model::check_tube`] has accepted).
pub fn tube_key(barcode: &str) -> TubeKey {
    let mut k = [0u8; KEY];
    let b = barcode.as_bytes();
    let n = b.len().min(KEY);
    k[..n].copy_from_slice(&b[..n]);
    k
}

/// A barcode's first 16 bytes as a big-endian integer: sorting by it, then by the whole
/// barcode where it ties, is sorting by barcode (barcodes hold no NUL, so the zero
/// padding sorts first, as the shorter text does), with one integer comparison for
/// nearly every pair instead of a `memcmp` reaching into the text.
///
/// ```
/// use pooltrack::store::index::tube_prefix;
/// assert!(tube_prefix(b"PL0001") < tube_prefix(b"PL00010"));
/// assert!(tube_prefix(b"PL0002") > tube_prefix(b"PL00010"));
/// ```
pub fn tube_prefix(barcode: &[u8]) -> u128 {
    let mut k = [0u8; 16];
    let n = barcode.len().min(16);
    k[..n].copy_from_slice(&barcode[..n]);
    u128::from_be_bytes(k)
}

/// What a store's sidecars are, fixed by its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sidecars {
    /// How person indexes key persons.
    pub keys: PersonKeys,
    /// Whether a tube index whose barcodes all fit in 16 bytes is written narrow
    /// ([`IndexWriter::tubes`]).
    pub narrow_tubes: bool,
}

impl Sidecars {
    /// The sidecars of a store of `format`.
    pub fn of_format(format: u32) -> Sidecars {
        Sidecars {
            keys: PersonKeys::of_format(format),
            narrow_tubes: format >= 4,
        }
    }

    /// Whether a tube index of these barcodes is written narrow.
    pub fn narrow<'a>(self, mut barcodes: impl Iterator<Item = &'a [u8]>) -> bool {
        self.narrow_tubes && barcodes.all(|b| b.len() <= 16)
    }
}

/// Partitions of the person-key space per family ([`partition_start`]) that the
/// whole-round passes split their work by.
pub const fn person_partitions(per_family: u32) -> u32 {
    3 * per_family
}

/// The first key of partition `q` of the person-key space, `None` past the last. The
/// space is cut, in key order, into three families of `per_family` (a power of two)
/// equal partitions: keys below 2^64 (exact resident keys), keys from 2^64 to 2^127
/// (half the hashed keys), keys from 2^127 (the other half, and exact keys of other
/// ids). Whichever scheme a store keys by, its keys spread evenly over the partitions
/// of one or two families, and each partition is one interval of every sorted file.
///
/// ```
/// use pooltrack::store::index::partition_start;
/// assert_eq!(partition_start(0, 4), Some(0));
/// assert_eq!(partition_start(1, 4), Some(1 << 62));
/// assert_eq!(partition_start(4, 4), Some(1 << 64));
/// assert_eq!(partition_start(5, 4), Some(1 << 125));
/// assert_eq!(partition_start(8, 4), Some(1 << 127));
/// assert_eq!(partition_start(12, 4), None);
/// ```
pub fn partition_start(q: u32, per_family: u32) -> Option<u128> {
    let bits = per_family.trailing_zeros();
    let (family, i) = (q / per_family.max(1), u128::from(q % per_family.max(1)));
    match family {
        0 => Some(i << (64 - bits)),
        1 => Some((i << (127 - bits)).max(1 << 64)),
        2 => Some(1 << 127 | i << (127 - bits)),
        _ => None,
    }
}

/// Bytes of a resident record of a [`PersonKeys::Exact`] person sidecar: the key's low
/// 8 bytes (its high 8 are zero) and the row.
const RESIDENT_RECORD: usize = 12;

/// The header's kind of a [`PersonKeys::Exact`] person sidecar.
const PERSONS_EXACT: u32 = 4;

/// A persons-index record.
pub fn person_record(hash: u128, row: u32) -> [u8; 20] {
    let mut r = [0u8; 20];
    r[..16].copy_from_slice(&hash.to_be_bytes());
    r[16..].copy_from_slice(&row.to_le_bytes());
    r
}

/// The person hash and row of a persons-index record ([`person_record`]'s inverse).
pub fn person_entry(r: &[u8]) -> (u128, u32) {
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&r[..16]);
    (u128::from_be_bytes(hash), u32_at(r, 16))
}

/// What a sidecar file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// One record per tube of a collections segment.
    CollectionTubes = 1,
    /// Person key and row, sorted, for a collections or population segment.
    Persons = 2,
    /// One record per row of a results segment.
    ResultTubes = 3,
}

impl Kind {
    /// Bytes per record.
    pub fn record_size(self) -> usize {
        match self {
            Kind::CollectionTubes => 48,
            Kind::ResultTubes => 56,
            Kind::Persons => 20,
        }
    }

    /// Bytes of the sort key at the start of each record.
    pub fn key_size(self) -> usize {
        match self {
            Kind::CollectionTubes | Kind::ResultTubes => KEY,
            Kind::Persons => 16,
        }
    }

    /// Where each record holds its row (`u32`, little-endian): the field a run of
    /// several segments' records renumbers ([`super::runs`]).
    pub fn row_at(self) -> usize {
        match self {
            Kind::CollectionTubes | Kind::ResultTubes => 32,
            Kind::Persons => 16,
        }
    }

    /// The 32-byte header of a sidecar of `count` records of this kind.
    pub(crate) fn header(self, count: u64) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&(self as u32).to_le_bytes());
        let size = u32::try_from(self.record_size()).unwrap_or(u32::MAX);
        h[12..16].copy_from_slice(&size.to_le_bytes());
        h[16..24].copy_from_slice(&count.to_le_bytes());
        h
    }
}

/// The header of a person sidecar of `count` records keyed by `keys`, the first
/// `residents` with keys below 2^64 (stored short when the keys are exact).
pub(crate) fn persons_header(keys: PersonKeys, count: u64, residents: u64) -> [u8; HEADER] {
    let mut h = Kind::Persons.header(count);
    if keys == PersonKeys::Exact {
        h[8..12].copy_from_slice(&PERSONS_EXACT.to_le_bytes());
        h[24..32].copy_from_slice(&residents.to_le_bytes());
    }
    h
}

/// Stores whole person records (20 bytes each, in key order) as an exact-keyed sidecar
/// holds them: the first `residents` (keys below 2^64) in 12 bytes, the rest whole.
pub(crate) fn shorten_persons(records: &mut Vec<u8>, residents: usize) {
    let (mut to, mut from) = (0, 0);
    while from + 20 <= records.len() {
        if from < residents * 20 {
            debug_assert!(records[from..from + 8] == [0; 8], "a resident key");
            records.copy_within(from + 8..from + 20, to);
            to += RESIDENT_RECORD;
        } else {
            records.copy_within(from..from + 20, to);
            to += 20;
        }
        from += 20;
    }
    records.truncate(to);
}

/// The header of a tube sidecar of `count` records of `kind`, narrow or not
/// ([`IndexWriter::tubes`]).
pub(crate) fn tubes_header(kind: Kind, count: u64, narrow: bool) -> [u8; HEADER] {
    let mut header = kind.header(count);
    if narrow {
        let size = u32::try_from(kind.record_size() - NARROWED).unwrap_or(u32::MAX);
        header[12..16].copy_from_slice(&size.to_le_bytes());
    }
    header
}

/// Stores whole tube records (`size` bytes each) as a narrow sidecar holds them,
/// without key bytes 16 to 32.
pub(crate) fn narrow_tubes(records: &mut Vec<u8>, size: usize) {
    let (mut to, mut from) = (0, 0);
    while from + size <= records.len() {
        records.copy_within(from..from + 16, to);
        records.copy_within(from + KEY..from + size, to + 16);
        to += size - NARROWED;
        from += size;
    }
    records.truncate(to);
}

/// Writes a sidecar; records must be pushed in key order.
pub struct IndexWriter<W: Write> {
    out: BufWriter<W>,
    kind: Kind,
    count: u64,
    /// Records written short ([`PersonKeys::Exact`] residents): the first `short`.
    short: u64,
    /// Tube records written without key bytes 16 to 32 ([`NARROWED`]).
    narrow: bool,
    /// The records of a push in their stored form, when shorter.
    scratch: Vec<u8>,
}

impl<W: Write> IndexWriter<W> {
    /// Starts a sidecar of `count` records of `kind` (a person sidecar keyed by
    /// [`PersonKeys::Hashed`]).
    pub fn new(out: W, kind: Kind, count: u64) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(&kind.header(count))?;
        Ok(IndexWriter {
            out,
            kind,
            count: 0,
            short: 0,
            narrow: false,
            scratch: Vec::new(),
        })
    }

    /// Starts a tube sidecar of `count` records of `kind`, written narrow (each barcode
    /// 16 bytes or fewer, format 4: without key bytes 16 to 32) when `narrow`. Records
    /// are pushed whole either way.
    pub fn tubes(out: W, kind: Kind, count: u64, narrow: bool) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(&tubes_header(kind, count, narrow))?;
        Ok(IndexWriter {
            out,
            kind,
            count: 0,
            short: 0,
            narrow,
            scratch: Vec::new(),
        })
    }

    /// Starts a person sidecar of `count` records keyed by `keys`, the first `residents`
    /// of them with keys below 2^64 (written short when the keys are exact). Records
    /// are pushed whole (20 bytes) either way.
    pub fn persons(out: W, keys: PersonKeys, count: u64, residents: u64) -> std::io::Result<Self> {
        if keys == PersonKeys::Hashed {
            return IndexWriter::new(out, Kind::Persons, count);
        }
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(&persons_header(keys, count, residents))?;
        Ok(IndexWriter {
            out,
            kind: Kind::Persons,
            count: 0,
            short: residents,
            narrow: false,
            scratch: Vec::new(),
        })
    }

    /// Appends a record of exactly the kind's size.
    pub fn push(&mut self, record: &[u8]) -> std::io::Result<()> {
        debug_assert_eq!(record.len(), self.kind.record_size());
        self.push_all(record)
    }

    /// Appends records laid end to end, each of exactly the kind's size.
    pub fn push_all(&mut self, records: &[u8]) -> std::io::Result<()> {
        let size = self.kind.record_size();
        debug_assert_eq!(records.len() % size, 0);
        let n = (records.len() / size) as u64;
        let residents = self.short.saturating_sub(self.count).min(n);
        self.count += n;
        if residents == 0 && !self.narrow {
            return self.out.write_all(records);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(records);
        if residents > 0 {
            shorten_persons(&mut self.scratch, usize::try_from(residents).unwrap_or(0));
        }
        if self.narrow {
            narrow_tubes(&mut self.scratch, size);
        }
        self.out.write_all(&self.scratch)
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
    }
}

/// A tube's metadata in a collections-tube record: the first mode and capacity any
/// of its rows stated, and whether rows disagreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TubeMeta {
    /// The first stated mode, if any row has stated one.
    pub mode: Option<Mode>,
    /// The first stated capacity; 0 while no row has stated one.
    pub capacity: u8,
    /// Rows of the batch disagreed with the tube's mode, capacity or site.
    pub conflict: bool,
}

/// [`TubeMeta::mode`] code of a tube no row has stated a mode for.
const MODE_UNSTATED: u8 = 2;
/// [`TubeMeta::conflict`] bit of the flags byte.
const FLAG_CONFLICT: u8 = 1;

impl TubeMeta {
    /// The metadata one row states about its tube.
    pub fn stated(mode: Option<Mode>, capacity: u8) -> TubeMeta {
        TubeMeta {
            mode,
            capacity,
            conflict: false,
        }
    }

    /// Reads the metadata of a collections-tube record.
    pub fn of_record(r: &[u8]) -> TubeMeta {
        TubeMeta {
            mode: Mode::from_code(r[40]),
            capacity: r[41],
            conflict: r[42] & FLAG_CONFLICT != 0,
        }
    }

    /// The capacity that counts: the stated one, or the mode's default while none is
    /// stated (a tube of unstated mode counts as a pool).
    pub fn effective_capacity(self) -> u8 {
        match self.capacity {
            0 => self.mode.unwrap_or(Mode::Pool).default_capacity(),
            c => c,
        }
    }

    /// The mode deconvolution reads the tube with, holding `members` persons: a pool
    /// when it holds more than one person, whatever its rows call it (a positive in
    /// it cannot say whose swab carried the virus), or when no row stated a mode.
    pub fn deconvolution_mode(self, members: u32) -> Mode {
        match self.mode {
            Some(Mode::Single) if members <= 1 => Mode::Single,
            _ => Mode::Pool,
        }
    }

    /// Fills what this one has not stated from `later`, and collects its conflicts:
    /// the first stated value of each field stands.
    pub fn settle(&mut self, later: TubeMeta) {
        self.mode = self.mode.or(later.mode);
        if self.capacity == 0 {
            self.capacity = later.capacity;
        }
        self.conflict |= later.conflict;
    }
}

/// A collections-tube record.
pub(crate) fn collection_tube_record(
    key: &TubeKey,
    first_row: u32,
    rows: u32,
    meta: TubeMeta,
) -> [u8; 48] {
    let mut r = [0u8; 48];
    r[..KEY].copy_from_slice(key);
    r[32..36].copy_from_slice(&first_row.to_le_bytes());
    r[36..40].copy_from_slice(&rows.to_le_bytes());
    r[40] = meta.mode.map_or(MODE_UNSTATED, Mode::code);
    r[41] = meta.capacity;
    r[42] = if meta.conflict { FLAG_CONFLICT } else { 0 };
    r
}

/// A result-tube record.
pub(crate) fn result_tube_record(
    key: &TubeKey,
    row: u32,
    outcome: u8,
    reported_at: i64,
    cts: (Option<f32>, Option<f32>),
) -> [u8; 56] {
    let mut r = [0u8; 56];
    r[..KEY].copy_from_slice(key);
    r[32..36].copy_from_slice(&row.to_le_bytes());
    r[36] = outcome;
    r[40..48].copy_from_slice(&reported_at.to_le_bytes());
    r[48..52].copy_from_slice(&cts.0.unwrap_or(f32::NAN).to_le_bytes());
    r[52..56].copy_from_slice(&cts.1.unwrap_or(f32::NAN).to_le_bytes());
    r
}

/// Reads a Ct stored as `f32` (NaN = no amplification) at `at` of a record.
pub fn ct_at(r: &[u8], at: usize) -> Option<f32> {
    let v = f32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
    (!v.is_nan()).then_some(v)
}

/// A sidecar's records, in bytes whose header and length [`Records::parse`] has checked:
/// what an [`IndexFile`] searches through its mapping, and what the fuzz target
/// searches in arbitrary bytes, so that the checks and searches it exercises are the
/// store's own.
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    /// The whole file, header included.
    bytes: &'a [u8],
    layout: Layout,
}

/// Bytes of the longest record, of a result tube.
const LONGEST: usize = 56;

/// Bytes a narrow tube record leaves out: key bytes 16 to 32, zero for every barcode of
/// 16 bytes or fewer (a sidecar whose barcodes all fit is written narrow in format 4).
const NARROWED: usize = 16;

/// Bytes as every reader reads them: the file's, or a copy widened from the shorter
/// form a format-4 sidecar stores (at most `N` bytes).
#[derive(Debug, Clone, Copy)]
pub enum Widened<'a, const N: usize> {
    /// The bytes in the file.
    Stored(&'a [u8]),
    /// The bytes widened, and how many there are.
    Copied([u8; N], usize),
}

impl<const N: usize> std::ops::Deref for Widened<'_, N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Widened::Stored(b) => b,
            Widened::Copied(b, n) => &b[..*n],
        }
    }
}

/// A record in its kind's whole layout.
pub type Record<'a> = Widened<'a, LONGEST>;

/// A record's key as searches compare it (eight zero bytes before a resident's stored
/// key, sixteen after a narrow tube's).
pub type Key<'a> = Widened<'a, KEY>;

/// The layout facts of a sidecar that its header gives: record size, key size, count,
/// short records at the start, narrow records. The file's length is [`Layout::len`].
#[derive(Debug, Clone, Copy)]
struct Layout {
    size: usize,
    key: usize,
    count: usize,
    /// Records stored short at the start ([`PersonKeys::Exact`] residents).
    short: usize,
    /// Tube records stored without key bytes 16 to 32 ([`NARROWED`]).
    narrow: bool,
}

impl Layout {
    /// Bytes of a record past the short ones, as stored.
    fn long_size(&self) -> usize {
        if self.narrow {
            self.size - NARROWED
        } else {
            self.size
        }
    }

    /// Where record `i` starts in the file.
    fn offset(&self, i: usize) -> usize {
        if i < self.short {
            HEADER + i * RESIDENT_RECORD
        } else {
            HEADER + self.short * RESIDENT_RECORD + (i - self.short) * self.long_size()
        }
    }

    /// Bytes of the file.
    fn len(&self) -> Option<usize> {
        let short = self.short.checked_mul(RESIDENT_RECORD)?;
        let long = (self.count - self.short).checked_mul(self.long_size())?;
        short.checked_add(long)?.checked_add(HEADER)
    }

    /// Bytes of record `i` in the file.
    fn stored_size(&self, i: usize) -> usize {
        if i < self.short {
            RESIDENT_RECORD
        } else {
            self.long_size()
        }
    }

    /// Where record `i`'s stored key bytes (its first ones) go in the whole key: after
    /// eight zero bytes for a resident's, the first sixteen of a narrow tube's.
    fn key_place(&self, i: usize) -> Range<usize> {
        if i < self.short {
            8..16
        } else if self.narrow {
            0..16
        } else {
            0..self.key
        }
    }

    /// Whether record `i` is stored shorter than the kind's record.
    fn widened(&self, i: usize) -> bool {
        i < self.short || self.narrow
    }

    /// Writes record `i`, stored as `stored`, into `out` in the kind's whole layout.
    fn widen(&self, i: usize, stored: &[u8], out: &mut [u8]) {
        if i < self.short {
            out[..8].fill(0);
            out[8..20].copy_from_slice(&stored[..RESIDENT_RECORD]);
        } else if self.narrow {
            out[..16].copy_from_slice(&stored[..16]);
            out[16..KEY].fill(0);
            out[KEY..self.size].copy_from_slice(&stored[16..self.size - NARROWED]);
        } else {
            out[..self.size].copy_from_slice(&stored[..self.size]);
        }
    }
}

impl<'a> Records<'a> {
    /// Checks a sidecar's header and length against `kind`. The error says what is
    /// wrong, as the end of a sentence starting "index file".
    ///
    /// ```
    /// use pooltrack::store::index::{IndexWriter, Kind, Records, person_record};
    /// let mut w = IndexWriter::new(Vec::new(), Kind::Persons, 1)?;
    /// w.push(&person_record(7, 3))?;
    /// let bytes = w.finish()?;
    /// let records = Records::parse(&bytes, Kind::Persons).expect("a whole sidecar");
    /// assert_eq!((records.len(), records.person_row(0)), (1, 3));
    /// assert!(Records::parse(&bytes, Kind::ResultTubes).is_err());
    /// assert!(Records::parse(&bytes[..bytes.len() - 1], Kind::Persons).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parse(bytes: &'a [u8], kind: Kind) -> std::result::Result<Records<'a>, &'static str> {
        if bytes.len() < HEADER || bytes[..8] != MAGIC {
            return Err("has no valid header");
        }
        let exact = kind == Kind::Persons && u32_at(bytes, 8) == PERSONS_EXACT;
        let stated = u32_at(bytes, 12) as usize;
        let narrow = kind != Kind::Persons && stated + NARROWED == kind.record_size();
        if !(u32_at(bytes, 8) == kind as u32 || exact) || !(stated == kind.record_size() || narrow)
        {
            return Err("is of the wrong kind");
        }
        let word = |at: usize| {
            let mut c = [0u8; 8];
            c.copy_from_slice(&bytes[at..at + 8]);
            usize::try_from(u64::from_le_bytes(c)).map_err(|_| "count is too large")
        };
        let count = word(16)?;
        let short = if exact { word(24)? } else { 0 };
        if short > count {
            return Err("counts more short records than records");
        }
        let layout = Layout {
            size: kind.record_size(),
            key: kind.key_size(),
            count,
            short,
            narrow,
        };
        if layout.len() != Some(bytes.len()) {
            return Err("is truncated or has extra bytes");
        }
        Ok(Records { bytes, layout })
    }

    /// How the file keys persons (person sidecars only).
    pub fn person_keys(&self) -> PersonKeys {
        if u32_at(self.bytes, 8) == PERSONS_EXACT {
            PersonKeys::Exact
        } else {
            PersonKeys::Hashed
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.layout.count
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.layout.count == 0
    }

    /// The `i`th record's bytes as stored.
    fn stored(&self, i: usize) -> &'a [u8] {
        let layout = self.layout;
        let at = layout.offset(i);
        &self.bytes[at..at + layout.stored_size(i)]
    }

    /// The `i`th record, in the kind's whole layout.
    pub fn record(&self, i: usize) -> Record<'a> {
        let layout = self.layout;
        let stored = self.stored(i);
        if !layout.widened(i) {
            return Widened::Stored(stored);
        }
        let mut r = [0u8; LONGEST];
        layout.widen(i, stored, &mut r);
        Widened::Copied(r, self.layout.size)
    }

    /// The `i`th record's key, widened to the kind's key size.
    pub fn key(&self, i: usize) -> Key<'a> {
        let r = self.stored(i);
        if !self.layout.widened(i) {
            return Widened::Stored(&r[..self.layout.key]);
        }
        let into = self.layout.key_place(i);
        let mut k = [0u8; KEY];
        k[into.clone()].copy_from_slice(&r[..into.len()]);
        Widened::Copied(k, self.layout.key)
    }

    /// The person key and row of record `i` (person sidecars only).
    pub fn person_entry(&self, i: usize) -> (u128, u32) {
        person_entry(&self.record(i))
    }

    /// Records whose key equals `key` (a tube key, or a person hash's 16 bytes).
    ///
    /// A key has a record or a few: the end is found by galloping from the start
    /// (1, 2, 4... records on) rather than by a second search of the whole file.
    pub fn find(&self, key: &[u8]) -> Range<usize> {
        self.equal_from(self.lower_bound(key), key)
    }

    /// [`find`](Self::find), looking first from record `from` (where an earlier key's
    /// records started): when every record before it is below `key`, as when keys come
    /// in ascending order, the start is galloped to from there, a few comparisons in
    /// cache instead of a search of the whole file; otherwise the whole file is searched.
    pub fn find_near(&self, from: usize, key: &[u8]) -> Range<usize> {
        let from = from.min(self.layout.count);
        match from.checked_sub(1) {
            Some(prev) if key_cmp(&self.key(prev), key).is_ge() => self.find(key),
            _ => self.find_from(from, key),
        }
    }

    /// [`find`](Self::find) when every record before `from` is below `key`.
    fn find_from(&self, from: usize, key: &[u8]) -> Range<usize> {
        let below = |i: usize| key_cmp(&self.key(i), key).is_lt();
        let mut lo = from.min(self.layout.count);
        let (mut hi, mut step) = (lo, 1);
        while hi < self.layout.count && below(hi) {
            lo = hi + 1;
            hi += step;
            step *= 2;
        }
        let hi = hi.min(self.layout.count);
        let lower = lo + self.partition_range(lo..hi, |k| key_cmp(k, key).is_lt());
        self.equal_from(lower, key)
    }

    /// The records from `lower` on whose key equals `key`.
    fn equal_from(&self, lower: usize, key: &[u8]) -> Range<usize> {
        let equal = |i: usize| key_cmp(&self.key(i), key).is_eq();
        let mut step = 1;
        let mut hi = lower;
        while hi < self.layout.count && equal(hi) {
            hi = lower + step;
            step *= 2;
        }
        let lo = lower + step / 4;
        let hi = hi.min(self.layout.count);
        let upper = if lo >= hi {
            hi
        } else {
            lo + self.partition_range(lo..hi, |k| key_cmp(k, key).is_le())
        };
        lower..upper
    }

    /// The first record whose key is not below `key`.
    pub fn lower_bound(&self, key: &[u8]) -> usize {
        self.partition_range(0..self.layout.count, |k| key_cmp(k, key).is_lt())
    }

    /// How many records from `range.start` on satisfy `pred`, which holds for a prefix
    /// of `range`.
    fn partition_range(&self, range: Range<usize>, pred: impl Fn(&[u8]) -> bool) -> usize {
        let from = range.start;
        let (mut lo, mut hi) = (range.start, range.end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self.key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo - from
    }

    /// The person key of record `i` ([`Kind::Persons`] only).
    pub fn person(&self, i: usize) -> u128 {
        self.person_entry(i).0
    }

    /// The row of record `i` ([`Kind::Persons`] only).
    pub fn person_row(&self, i: usize) -> u32 {
        self.person_entry(i).1
    }

    /// Bytes the file has: the header and every record as stored.
    pub fn file_len(&self) -> usize {
        self.layout.len().unwrap_or(usize::MAX)
    }
}

/// An open, memory-mapped sidecar.
pub struct IndexFile {
    map: Mmap,
    file: File,
    path: std::path::PathBuf,
    layout: Layout,
    keys: PersonKeys,
}

impl IndexFile {
    /// Maps `path` and checks its header and length against `kind`
    /// ([`Records::parse`]); a mismatch means the store is damaged.
    pub fn open(path: &Path, kind: Kind) -> Result<IndexFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let map = map_file(&file, path)?;
        let records = Records::parse(&map, kind)
            .map_err(|why| Error::damaged(path, format!("index file {why}")))?;
        let (layout, keys) = (records.layout, records.person_keys());
        Ok(IndexFile {
            map,
            file,
            path: path.to_path_buf(),
            layout,
            keys,
        })
    }

    /// The same file in a mapping of its own, none of its pages yet resident: a pass
    /// that probes a large index all over (a batch of millions of tubes) takes a new
    /// mapping for each stretch and drops it after, where one mapping kept every page
    /// it had touched resident until the process ended (640 MB of a city's tube index).
    pub fn remapped(&self) -> Result<IndexFile> {
        let map = map_file(&self.file, &self.path)?;
        if Some(map.len()) != self.layout.len() {
            return Err(Error::damaged(
                &self.path,
                "index file changed length while in use",
            ));
        }
        Ok(IndexFile {
            map,
            file: self
                .file
                .try_clone()
                .map_err(|e| Error::io(&self.path, e))?,
            path: self.path.clone(),
            layout: self.layout,
            keys: self.keys,
        })
    }

    /// Whether the file stores its tube records narrow (every barcode of 16 bytes or
    /// fewer, format 4).
    pub fn is_narrow(&self) -> bool {
        self.layout.narrow
    }

    /// How the file keys persons (person sidecars only).
    pub fn person_keys(&self) -> PersonKeys {
        self.keys
    }

    /// Records stored short at the start (exact person keys below 2^64).
    pub fn short_len(&self) -> usize {
        self.layout.short
    }

    /// Damage unless this person sidecar keys persons as its store does (`keys`): one
    /// person must have one key in every file the store's passes merge.
    pub fn check_person_keys(&self, keys: PersonKeys) -> Result<()> {
        if self.keys == keys {
            return Ok(());
        }
        let name = |k: PersonKeys| match k {
            PersonKeys::Hashed => "hashed (store formats 1 to 3)",
            PersonKeys::Exact => "exact (store format 4)",
        };
        Err(Error::damaged(
            &self.path,
            format!(
                "is a person index with {} keys in a store whose person indexes have {} keys",
                name(self.keys),
                name(keys)
            ),
        ))
    }

    /// Bytes of the file.
    pub fn bytes(&self) -> usize {
        self.map.len()
    }

    /// The records, to search.
    pub fn records(&self) -> Records<'_> {
        Records {
            bytes: &self.map,
            layout: self.layout,
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.layout.count
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.layout.count == 0
    }

    /// The `i`th record, in the kind's whole layout ([`Records::record`]).
    pub fn record(&self, i: usize) -> Record<'_> {
        self.records().record(i)
    }

    /// A reader of records `range` in order. Whole-file passes read through it rather
    /// than the mapping: touched mapped pages count in the process's resident memory
    /// until it exits (the 25 M-person index alone is 500 MB), a reused buffer does not.
    pub fn scan(&self, range: Range<usize>) -> Scan<'_> {
        let end = range.end.min(self.layout.count);
        Scan {
            file: self,
            buf: Vec::new(),
            stored: Vec::new(),
            buf_first: range.start,
            buf_records: 0,
            next: range.start.min(end),
            end,
        }
    }

    /// The first record whose key is not below `key`, found by reading single keys
    /// from the file rather than through the mapping. For whole-file passes: a probe
    /// through the mapping faults in the pages around it too (64 KiB by default), and
    /// the 512 searches that split a 25 M-person index kept 250 MB resident.
    pub fn lower_bound_read(&self, key: &[u8]) -> Result<usize> {
        let (mut lo, mut hi) = (0, self.layout.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let probe = self.key_read(mid)?;
            if &probe[..self.layout.key] < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The key of record `i`, read from the file (see [`IndexFile::lower_bound_read`]),
    /// zero-padded to [`KEY`] bytes.
    pub fn key_read(&self, i: usize) -> Result<[u8; KEY]> {
        let mut k = [0u8; KEY];
        let at = self.layout.offset(i) as u64;
        self.file
            .read_exact_at(&mut k[self.layout.key_place(i)], at)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(k)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kind's key length, in bytes.
    pub fn key_len(&self) -> usize {
        self.layout.key
    }

    /// [`Records::find`].
    pub fn find(&self, key: &[u8]) -> Range<usize> {
        self.records().find(key)
    }

    /// [`Records::find_near`].
    pub fn find_near(&self, from: usize, key: &[u8]) -> Range<usize> {
        self.records().find_near(from, key)
    }

    /// [`Records::lower_bound`].
    pub fn lower_bound(&self, key: &[u8]) -> usize {
        self.records().lower_bound(key)
    }

    /// The person key of record `i` ([`Kind::Persons`] only).
    pub fn person(&self, i: usize) -> u128 {
        self.records().person(i)
    }

    /// The row of record `i` ([`Kind::Persons`] only).
    pub fn person_row(&self, i: usize) -> u32 {
        self.records().person_row(i)
    }
}

/// Compares two keys as bytes, 16 at a time as big-endian integers: keys are 16 or 32
/// bytes, and a `memcmp` call per probe was most of a lookup.
fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (mut a16, mut b16) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in a16.by_ref().zip(b16.by_ref()) {
        let word = |c: &[u8]| {
            let mut w = [0u8; 16];
            w.copy_from_slice(c);
            u128::from_be_bytes(w)
        };
        match word(x).cmp(&word(y)) {
            std::cmp::Ordering::Equal => {}
            other => return other,
        }
    }
    let done = a.len().min(b.len()) / 16 * 16;
    a[done..].cmp(&b[done..])
}

/// Bytes a [`Scan`] reads at a time: large enough that a read costs little per
/// record, small enough that a merge over hundreds of segments holds little.
const SCAN_BYTES: usize = 256 * 1024;

/// Maps a sidecar file: the one place pooltrack maps memory.
fn map_file(file: &File, path: &Path) -> Result<Mmap> {
    // SAFETY: committed sidecars are never modified or truncated by pooltrack (every
    // batch writes new files), and the length is checked against the header before any
    // record is read, so the mapping stays valid while it is in use.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
    Ok(map)
}

/// Records of an [`IndexFile`] read in order into a reused buffer.
pub struct Scan<'a> {
    file: &'a IndexFile,
    buf: Vec<u8>,
    /// Records stored shorter, as read, before they are widened into `buf`.
    stored: Vec<u8>,
    /// Index of the record at the start of `buf`.
    buf_first: usize,
    /// Records held in `buf`.
    buf_records: usize,
    next: usize,
    end: usize,
}

impl Scan<'_> {
    /// Index of the record the next call to [`Scan::record`] returns.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Index of the end of the range.
    pub fn end(&self) -> usize {
        self.end
    }

    /// Whether a record is left in the range, with the buffer holding it.
    fn ready(&mut self) -> Result<bool> {
        if self.next >= self.end {
            return Ok(false);
        }
        if self.next >= self.buf_first + self.buf_records || self.next < self.buf_first {
            self.fill()?;
        }
        Ok(true)
    }

    /// The next record with its index, or `None` at the end of the range.
    pub fn record(&mut self) -> Result<Option<(usize, &[u8])>> {
        if !self.ready()? {
            return Ok(None);
        }
        let size = self.file.layout.size;
        let i = self.next;
        self.next += 1;
        let at = (i - self.buf_first) * size;
        Ok(Some((i, &self.buf[at..at + size])))
    }

    /// The next record, left in place.
    pub fn peek(&mut self) -> Result<Option<&[u8]>> {
        if !self.ready()? {
            return Ok(None);
        }
        let size = self.file.layout.size;
        let at = (self.next - self.buf_first) * size;
        Ok(Some(&self.buf[at..at + size]))
    }

    /// The records left in the buffer (reading the next piece of the range first when
    /// none is), laid end to end, and moves past them; `None` at the end of the range.
    /// For passes that take every record: a call per record cost a check per record
    /// (a twentieth of the register's join).
    pub fn records(&mut self) -> Result<Option<&[u8]>> {
        let Some((bytes, n)) = self.buffered()? else {
            return Ok(None);
        };
        self.next += n;
        Ok(Some(&self.buf[bytes]))
    }

    /// Where in the buffer the records left in it are (reading the next piece of the
    /// range first when none is), and how many there are.
    fn buffered(&mut self) -> Result<Option<(Range<usize>, usize)>> {
        if !self.ready()? {
            return Ok(None);
        }
        let size = self.file.layout.size;
        let upto = (self.buf_first + self.buf_records).min(self.end);
        let (from, to) = (self.next - self.buf_first, upto - self.buf_first);
        Ok(Some((from * size..to * size, upto - self.next)))
    }

    /// Moves past the record [`Scan::peek`] returned.
    pub fn advance(&mut self) {
        self.next = (self.next + 1).min(self.end);
    }

    /// The records left in the buffer (reading the next piece of the range first when
    /// none is), laid end to end, left in place: a merge takes those below another
    /// source's next key in one loop, then moves past them with [`Scan::advance_by`].
    pub fn pending(&mut self) -> Result<Option<&[u8]>> {
        Ok(self.buffered()?.map(|(bytes, _)| &self.buf[bytes]))
    }

    /// Moves past `n` records.
    pub fn advance_by(&mut self, n: usize) {
        self.next = (self.next + n).min(self.end);
    }

    /// Bytes a record.
    pub fn record_size(&self) -> usize {
        self.file.layout.size
    }

    fn fill(&mut self) -> Result<()> {
        let size = self.file.layout.size;
        let short = self.file.layout.short;
        let mut records = (SCAN_BYTES / size).max(1).min(self.end - self.next);
        let at = self.file.layout.offset(self.next) as u64;
        let file = self.file;
        let read = |buf: &mut [u8]| {
            file.file
                .read_exact_at(buf, at)
                .map_err(|e| Error::io(&file.path, e))
        };
        let layout = self.file.layout;
        if layout.widened(self.next) {
            // Records stored shorter are read as stored and widened, so every reader
            // sees one record size. (The short resident records and the others of a
            // person sidecar are stored apart: a buffer holds one or the other.)
            if self.next < short {
                records = records.min(short - self.next);
            }
            let stored = layout.stored_size(self.next);
            self.stored.resize(records * stored, 0);
            read(&mut self.stored)?;
            self.buf.resize(records * size, 0);
            let first = self.next;
            for (k, (out, r)) in self
                .buf
                .chunks_exact_mut(size)
                .zip(self.stored.chunks_exact(stored))
                .enumerate()
            {
                layout.widen(first + k, r, out);
            }
        } else {
            self.buf.resize(records * size, 0);
            read(&mut self.buf)?;
        }
        self.buf_first = self.next;
        self.buf_records = records;
        Ok(())
    }
}

/// Reads a little-endian `u32` at `at` of a record.
pub fn u32_at(r: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&r[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Reads a little-endian `i64` at `at` of a record.
pub fn i64_at(r: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&r[at..at + 8]);
    i64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_by_blocks_gives_the_records_one_by_one_gives() {
        // Enough records for three buffers, and a range that starts and ends inside one.
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("x.persons");
        let n: u32 = 30_000;
        let mut w =
            IndexWriter::new(File::create(&p).expect("f"), Kind::Persons, u64::from(n)).expect("w");
        for i in 0..n {
            w.push(&person_record(u128::from(i) * 7, i)).expect("push");
        }
        w.finish().expect("finish");
        let f = IndexFile::open(&p, Kind::Persons).expect("open");
        for range in [5..29_990, 0..0, 13_000..13_200, 0..30_000] {
            let mut one = f.scan(range.clone());
            let mut want = Vec::new();
            while let Some((_, r)) = one.record().expect("read") {
                want.push(person_entry(r));
            }
            let mut blocks = f.scan(range.clone());
            let mut got = Vec::new();
            while let Some(records) = blocks.records().expect("read") {
                assert_eq!(records.len() % 20, 0);
                got.extend(records.chunks_exact(20).map(person_entry));
            }
            assert_eq!(got.len(), range.len());
            assert_eq!(got, want);
        }
    }

    /// Tube sidecars, whole and narrow (format 4, barcodes of 16 bytes or fewer),
    /// answer every search alike and read back the same records.
    #[test]
    fn finds_every_key_and_only_those() {
        for narrow in [false, true] {
            finds_every_key_and_only_those_in(narrow);
        }
    }

    fn finds_every_key_and_only_those_in(narrow: bool) {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("x.tubes");
        let keys = ["AAAA", "BBBB", "BBBB", "BBBB1", "CCCCCCCCCCCCCCCC"];
        let mut w = IndexWriter::tubes(File::create(&p).expect("f"), Kind::ResultTubes, 5, narrow)
            .expect("w");
        for (i, k) in keys.iter().enumerate() {
            let row = u32::try_from(i).expect("small");
            w.push(&result_tube_record(
                &tube_key(k),
                row,
                1,
                7,
                (Some(20.5), None),
            ))
            .expect("push");
        }
        w.finish().expect("finish");
        let f = IndexFile::open(&p, Kind::ResultTubes).expect("open");
        assert_eq!(f.is_narrow(), narrow);
        assert_eq!(f.bytes(), HEADER + 5 * if narrow { 40 } else { 56 });
        assert_eq!(f.find(&tube_key("BBBB")), 1..3);
        assert_eq!(f.find(&tube_key("BBBB1")), 3..4);
        assert_eq!(f.find(&tube_key("AAAA")), 0..1);
        assert_eq!(f.find(&tube_key("CCCCCCCCCCCCCCCC")), 4..5);
        assert!(f.find(&tube_key("CCCCCCCCCCCCCCCCC")).is_empty());
        assert!(f.find(&tube_key("ABCD")).is_empty());
        assert!(f.find(&tube_key("ZZZZ")).is_empty());
        assert_eq!(f.lower_bound_read(&tube_key("BBBB1")).expect("read"), 3);
        assert_eq!(f.key_read(4).expect("read"), tube_key("CCCCCCCCCCCCCCCC"));
        let r = f.record(4);
        assert_eq!(r.len(), 56);
        assert_eq!(&r[..KEY], &tube_key("CCCCCCCCCCCCCCCC"));
        assert_eq!((u32_at(&r, 32), i64_at(&r, 40)), (4, 7));
        assert_eq!(ct_at(&r, 48), Some(20.5));
        assert_eq!(ct_at(&r, 52), None);
        // A scan reads the records whole, as the mapping does.
        let mut scan = f.scan(0..5);
        let mut seen = 0;
        while let Some((i, r)) = scan.record().expect("read") {
            assert_eq!(r, &*f.record(i));
            seen += 1;
        }
        assert_eq!(seen, 5);
        assert!(IndexFile::open(&p, Kind::CollectionTubes).is_err());
        let again = f.remapped().expect("remapped");
        assert_eq!((again.len(), again.bytes()), (f.len(), f.bytes()));
        assert_eq!(again.find(&tube_key("BBBB")), 1..3);
        assert_eq!(*again.record(4), *f.record(4));
        // A run's merge stores whole records narrow as the writer does.
        let mut whole: Vec<u8> = (0..5).flat_map(|i| f.record(i).to_vec()).collect();
        if narrow {
            narrow_tubes(&mut whole, 56);
        }
        assert_eq!(whole, std::fs::read(&p).expect("read")[HEADER..]);
    }

    #[test]
    fn finds_runs_of_every_length_at_every_place() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("r.persons");
        // Keys 0..12, key k repeated k times (key 0 absent), so runs of 1 to 11
        // records sit at the start, the middle and the end of the file.
        let keys: Vec<u128> = (1..12u128)
            .flat_map(|k| std::iter::repeat_n(k << 100, usize::try_from(k).expect("small")))
            .collect();
        let count = u64::try_from(keys.len()).expect("small");
        let mut w =
            IndexWriter::new(File::create(&p).expect("f"), Kind::Persons, count).expect("w");
        for (row, &k) in keys.iter().enumerate() {
            w.push(&person_record(k, u32::try_from(row).expect("small")))
                .expect("push");
        }
        w.finish().expect("finish");
        let f = IndexFile::open(&p, Kind::Persons).expect("open");
        for k in 0..13u128 {
            let expected: Vec<usize> = (0..keys.len()).filter(|&i| keys[i] == k << 100).collect();
            let found: Vec<usize> = f.find(&(k << 100).to_be_bytes()).collect();
            assert_eq!(found, expected, "key {k}");
        }
        // Looking near any record gives the same answer as a search of the whole file.
        for from in 0..=keys.len() + 1 {
            for k in 0..13u128 {
                let key = (k << 100).to_be_bytes();
                assert_eq!(
                    f.find_near(from, &key),
                    f.find(&key),
                    "from {from}, key {k}"
                );
            }
        }
        assert_eq!(key_cmp(b"ab", b"abc"), std::cmp::Ordering::Less);
        assert_eq!(key_cmp(&[1; 32], &[1; 32]), std::cmp::Ordering::Equal);
        let (mut a, b) = ([7u8; 32], [7u8; 32]);
        a[31] = 8;
        assert_eq!(key_cmp(&a, &b), std::cmp::Ordering::Greater);
    }

    /// The fuzz target's seeds are sidecars as this pooltrack writes them: a change of
    /// format that leaves them behind fails here, not silently in the fuzzer.
    #[test]
    fn every_fuzz_seed_is_a_whole_sidecar() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/index");
        let mut kinds = Vec::new();
        for entry in std::fs::read_dir(&seeds).expect("fuzz/seeds/index") {
            let path = entry.expect("a seed").path();
            let bytes = std::fs::read(&path).expect("read the seed");
            let parsed: Vec<Kind> = [Kind::CollectionTubes, Kind::Persons, Kind::ResultTubes]
                .into_iter()
                .filter(|&k| Records::parse(&bytes, k).is_ok_and(|r| !r.is_empty()))
                .collect();
            assert_eq!(parsed.len(), 1, "{}: {parsed:?}", path.display());
            kinds.extend(parsed);
        }
        for kind in [Kind::CollectionTubes, Kind::Persons, Kind::ResultTubes] {
            assert!(kinds.contains(&kind), "no seed of kind {kind:?}");
        }
    }

    /// An exact-keyed person sidecar, short resident records then whole ones, reads
    /// as one sorted array of whole records through every path: the mapping's
    /// searches, the reads' searches, scans crossing from the short records to the
    /// whole ones, a second mapping; and a length that disagrees with its two counts
    /// is damage.
    #[test]
    fn exact_person_sidecars_read_as_one_array_of_whole_records() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("e.persons");
        // Residents spread below 2^64, one of them on three rows; others above 2^127.
        let mut entries: Vec<(u128, u32)> = Vec::new();
        for i in 0..20_000u64 {
            entries.push((
                resident_person_key(i * 7919),
                u32::try_from(i).expect("small"),
            ));
        }
        entries.push((resident_person_key(7919), 20_000));
        entries.push((resident_person_key(7919), 20_001));
        for i in 0..15_000u32 {
            entries.push((other_person_key(format!("P{i}").as_bytes()), 30_000 + i));
        }
        entries.sort_unstable();
        let residents = entries.iter().filter(|(k, _)| *k < 1 << 64).count();
        assert_eq!(residents, 20_002);
        let mut w = IndexWriter::persons(
            File::create(&p).expect("f"),
            PersonKeys::Exact,
            entries.len() as u64,
            residents as u64,
        )
        .expect("w");
        // Whole records pushed one by one and in blocks, across the short ones' end.
        let records: Vec<[u8; 20]> = entries.iter().map(|&(k, r)| person_record(k, r)).collect();
        w.push_all(records[..100].as_flattened()).expect("push");
        for r in &records[100..20_500] {
            w.push(r).expect("push");
        }
        w.push_all(records[20_500..].as_flattened()).expect("push");
        w.finish().expect("finish");
        let bytes = std::fs::read(&p).expect("read");
        assert_eq!(
            bytes.len(),
            HEADER + residents * 12 + (entries.len() - residents) * 20
        );

        let f = IndexFile::open(&p, Kind::Persons).expect("open");
        assert_eq!((f.len(), f.short_len()), (entries.len(), residents));
        assert_eq!(f.person_keys(), PersonKeys::Exact);
        for (i, &(k, row)) in entries.iter().enumerate().step_by(97) {
            assert_eq!((f.person(i), f.person_row(i)), (k, row), "record {i}");
            let found: Vec<u32> = f.find(&k.to_be_bytes()).map(|j| f.person_row(j)).collect();
            let want: Vec<u32> = entries.iter().filter(|e| e.0 == k).map(|e| e.1).collect();
            assert_eq!(found, want);
            assert_eq!(
                f.lower_bound(&k.to_be_bytes()),
                f.lower_bound_read(&k.to_be_bytes()).expect("read")
            );
            assert_eq!(&f.key_read(i).expect("read")[..16], &k.to_be_bytes());
        }
        assert_eq!(f.find(&resident_person_key(7919).to_be_bytes()).len(), 3);
        assert!(f.find(&resident_person_key(3).to_be_bytes()).is_empty());
        assert_eq!(f.lower_bound(&(1u128 << 64).to_be_bytes()), residents);
        for range in [0..entries.len(), 19_990..20_010, 20_002..20_003, 5..6] {
            let mut scan = f.scan(range.clone());
            let mut got = Vec::new();
            while let Some(block) = scan.records().expect("read") {
                got.extend(block.chunks_exact(20).map(person_entry));
            }
            assert_eq!(got, entries[range].to_vec());
        }
        let again = f.remapped().expect("remapped");
        assert_eq!(
            again.find(&entries[30_000].0.to_be_bytes()),
            f.find(&entries[30_000].0.to_be_bytes())
        );
        assert!(f.check_person_keys(PersonKeys::Exact).is_ok());
        assert_eq!(
            f.check_person_keys(PersonKeys::Hashed)
                .err()
                .map(|e| e.exit_code()),
            Some(3)
        );

        // The counts and the length must agree.
        let mut more_short = bytes.clone();
        more_short[24..32].copy_from_slice(&(residents as u64 + 1).to_le_bytes());
        assert!(Records::parse(&more_short, Kind::Persons).is_err());
        let mut too_many = bytes.clone();
        too_many[24..32].copy_from_slice(&(entries.len() as u64 + 1).to_le_bytes());
        assert!(Records::parse(&too_many, Kind::Persons).is_err());
        assert!(Records::parse(&bytes[..bytes.len() - 20], Kind::Persons).is_err());
        assert!(Records::parse(&bytes, Kind::ResultTubes).is_err());

        // A merge's whole records, stored short where they are residents.
        let mut merged = records.as_flattened().to_vec();
        shorten_persons(&mut merged, residents);
        assert_eq!(merged, bytes[HEADER..]);
    }

    /// The writer stores short exactly the residents its header counts, whatever the
    /// other records hold: the file's length always agrees with its header (a fuzzed
    /// input once gave records past them keys below 2^64 too).
    #[test]
    fn an_exact_writer_shortens_exactly_the_residents_it_was_told_of() {
        let mut w = IndexWriter::persons(Vec::new(), PersonKeys::Exact, 3, 1).expect("w");
        let records = [
            person_record(5, 0),
            person_record(7, 1),
            person_record(9, 2),
        ];
        w.push_all(records[..2].as_flattened()).expect("push");
        w.push(&records[2]).expect("push");
        let file = w.finish().expect("finish");
        assert_eq!(file.len(), HEADER + 12 + 2 * 20);
        let r = Records::parse(&file, Kind::Persons).expect("whole");
        let got: Vec<(u128, u32)> = (0..3).map(|i| r.person_entry(i)).collect();
        assert_eq!(got, [(5, 0), (7, 1), (9, 2)]);
    }

    /// Every key falls in exactly the partition whose start it is at or past and the
    /// next one's it is below; partitions are in key order.
    #[test]
    fn person_partitions_cover_the_key_space_in_order() {
        for per in [1u32, 2, 16, 256] {
            let n = person_partitions(per);
            let starts: Vec<u128> = (0..n)
                .map(|q| partition_start(q, per).expect("a start"))
                .collect();
            assert_eq!(partition_start(n, per), None);
            assert_eq!(starts[0], 0);
            assert!(starts.windows(2).all(|w| w[0] < w[1]), "{per}: {starts:?}");
            let mut x = 0x2545_F491_4F6C_DD1Du64;
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                for key in [
                    u128::from(x),
                    u128::from(x) << 64 | 5,
                    other_person_key(&x.to_le_bytes()),
                ] {
                    let q = starts.partition_point(|&s| s <= key) - 1;
                    let (lo, hi) = (
                        starts[q],
                        partition_start(u32::try_from(q).expect("small") + 1, per),
                    );
                    assert!(lo <= key && hi.is_none_or(|h| key < h));
                }
            }
            // Each family's keys spread over its partitions.
            let resident: Vec<usize> = (0..4000u64)
                .map(|c| starts.partition_point(|&s| s <= resident_person_key(c)) - 1)
                .collect();
            assert!(resident.iter().all(|&q| q < per as usize));
            let used: std::collections::HashSet<usize> = resident.into_iter().collect();
            assert_eq!(used.len(), per as usize);
        }
    }

    #[test]
    fn truncated_file_is_damage() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("m.persons");
        let mut w = IndexWriter::new(File::create(&p).expect("f"), Kind::Persons, 2).expect("w");
        w.push(&person_record(1, 9)).expect("push");
        w.push(&person_record(u128::MAX, 3)).expect("push");
        w.finish().expect("finish");
        let f = IndexFile::open(&p, Kind::Persons).expect("open");
        assert_eq!((f.person(1), f.person_row(1)), (u128::MAX, 3));
        assert_eq!(f.find(&u128::MAX.to_be_bytes()), 1..2);
        assert_eq!(f.lower_bound(&2u128.to_be_bytes()), 1);
        let bytes = std::fs::read(&p).expect("read");
        std::fs::write(&p, &bytes[..bytes.len() - 3]).expect("cut");
        let err = IndexFile::open(&p, Kind::Persons).err().expect("damaged");
        assert_eq!(err.exit_code(), 3);
    }
}
