//! Every person of a round in order, for the exports that print them all (`export
//! status`, `export health-codes`): the statuses come from the indexes and only the text
//! columns the export prints are decoded, one at a time (the whole
//! [`crate::tracker::Round`] took 21 GB at 25 million persons). Rows are made on demand
//! by [`crate::output::stream`], so they never sit in memory as text.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use rayon::prelude::*;
use serde::Serialize;

use crate::column::{PersonColumn, PersonId};
use crate::output::stream::{
    WARM_ROWS, csv_cell, csv_field, csv_float, csv_word, first_byte, warm_block,
};
use crate::output::{ListRow, RowMaker};
use crate::store::cited::{self, Cited, Files};
use crate::store::{BatchKind, Store, read};
use crate::text::{resident_key, text_at};
use crate::time::{self, Millis};
use crate::tracker::{NONE, PersonStatus, Statuses};
use crate::{Error, Result};

/// Where a row of a segment came from, as exports cite it.
pub struct Sources {
    cited: Cited,
    files: Files,
}

impl Sources {
    /// Appends `batch N, FILE line L` of row `i` to `out`.
    pub fn write(&self, i: usize, out: &mut Vec<u8>) {
        self.cited.write(i, &self.files.names, out);
    }

    /// The same onto a string.
    pub fn write_text(&self, i: usize, out: &mut String) {
        crate::text::append_bytes(out, |b| self.write(i, b));
    }

    /// Appends the same as a CSV field (quoted) to a line of bytes.
    pub fn write_csv(&self, i: usize, out: &mut Vec<u8>) {
        self.cited.write_csv(i, &self.files.names, out);
    }
}

/// The text columns an export prints, beyond the person ids and barcodes every one
/// prints.
// Each switch is one optional column, independent of the others.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    /// Collection sites.
    pub site: bool,
    /// Labs of results.
    pub lab: bool,
    /// Plates of results.
    pub plate: bool,
    /// The batch, file and line of collection and result rows.
    pub sources: bool,
}

/// The decoded text columns; those not [`Wanted`] are empty.
pub struct Texts {
    /// Person id of each collection row: a resident id is 8 bytes here, where the
    /// Parquet column read as Arrow text and joined into one array was 44 (two copies
    /// of 22), most of it fresh pages the kernel zeroed (a third of a city's export).
    pub person: PersonColumn,
    /// Barcode of each tube, by tube number (from the tube index).
    pub tube: StringArray,
    /// Site of each collection row.
    pub site: Option<StringArray>,
    /// Source of each collection row.
    pub collected: Option<Sources>,
    /// Lab of each result row.
    pub lab: Option<StringArray>,
    /// Plate of each result row.
    pub plate: Option<StringArray>,
    /// Source of each result row.
    pub reported: Option<Sources>,
}

impl Texts {
    /// Loads the columns `wanted` of `round`, beside its person ids (`person`, from
    /// [`Texts::persons`]).
    fn load(
        store: &Store,
        round: &Statuses,
        wanted: Wanted,
        person: PersonColumn,
    ) -> Result<Texts> {
        let damaged = || damaged(store, round);
        // One column at a time: reading concatenates a column's pieces, and doing that
        // for all of them at once held every column twice.
        // A row group per task: a city's collections are one file, which read whole
        // kept one core busy.
        let column = |kind: BatchKind, name: &str, rows: usize| -> Result<ArrayRef> {
            let files = read::segment_files(store, &round.name, kind);
            let parts = read::map_rows(store, &files, &[name], &[], read::Picked::All, |c| {
                c.first().cloned().ok_or_else(damaged)
            })?;
            let parts: Vec<&dyn Array> = parts.iter().map(AsRef::as_ref).collect();
            if parts.is_empty() {
                return whole_column(store, round, kind, name, rows);
            }
            Some(arrow_select::concat::concat(&parts)?)
                .filter(|a| a.len() == rows)
                .ok_or_else(damaged)
        };
        let text = |kind, name, rows| -> Result<StringArray> {
            column(kind, name, rows)?
                .as_string_opt::<i32>()
                .cloned()
                .ok_or_else(damaged)
        };
        let maybe = |want: bool, kind, name, rows| want.then(|| text(kind, name, rows)).transpose();
        let sources = |kind, rows| -> Result<Option<Sources>> {
            if !wanted.sources {
                return Ok(None);
            }
            let (cited, files) = cited::of_round(store, &round.name, kind)?;
            if cited.len() != rows {
                return Err(damaged());
            }
            Ok(Some(Sources { cited, files }))
        };
        let (rows, results) = (round.tube_of_row.len(), round.results.outcome.len());
        let (reported, collected) = rayon::join(
            || -> Result<_> {
                Ok((
                    sources(BatchKind::Results, results)?,
                    maybe(wanted.lab, BatchKind::Results, "lab", results)?,
                    maybe(wanted.plate, BatchKind::Results, "plate", results)?,
                ))
            },
            || -> Result<_> {
                Ok((
                    sources(BatchKind::Collections, rows)?,
                    round.all_barcodes(store)?,
                    maybe(wanted.site, BatchKind::Collections, "site", rows)?,
                ))
            },
        );
        let ((reported, lab, plate), (collected, tube, site)) = (reported?, collected?);
        Ok(Texts {
            person,
            tube,
            site,
            collected,
            lab,
            plate,
            reported,
        })
    }

    /// The person id of each collection row of `round`, read a row group at a time,
    /// each group's text freed as soon as it is coded.
    fn persons(store: &Store, round: &Statuses) -> Result<PersonColumn> {
        let damaged = || damaged(store, round);
        let rows = round.tube_of_row.len();
        let files = read::segment_files(store, &round.name, BatchKind::Collections);
        let coded = |a: &StringArray| {
            let mut ids = PersonColumn::default();
            ids.reserve(a.len());
            for i in 0..a.len() {
                ids.push(text_at(a, i));
            }
            ids
        };
        let parts = read::map_rows(store, &files, &["person"], &[], read::Picked::All, |c| {
            c.first()
                .and_then(|a| a.as_string_opt::<i32>())
                .map(coded)
                .ok_or_else(damaged)
        })?;
        let ids = if parts.is_empty() {
            let column = whole_column(store, round, BatchKind::Collections, "person", rows)?;
            coded(column.as_string_opt::<i32>().ok_or_else(damaged)?)
        } else {
            let mut ids = PersonColumn::default();
            ids.reserve(parts.iter().map(PersonColumn::len).sum());
            for part in &parts {
                ids.append(part);
            }
            ids
        };
        Some(ids).filter(|p| p.len() == rows).ok_or_else(damaged)
    }
}

/// Column `name` of `round`'s `kind` segments read whole: the way taken when a read a
/// row group at a time ([`read::map_rows`]) made no part. Damage unless it holds `rows`
/// rows.
fn whole_column(
    store: &Store,
    round: &Statuses,
    kind: BatchKind,
    name: &str,
    rows: usize,
) -> Result<ArrayRef> {
    read::columns(store, &round.name, kind, &[name])?
        .pop()
        .filter(|a| a.len() == rows)
        .ok_or_else(|| damaged(store, round))
}

/// The error of a round whose segment files and indexes disagree on its rows.
fn damaged(store: &Store, round: &Statuses) -> Error {
    Error::damaged(
        store.root(),
        format!(
            "round {}: the segment files and their indexes disagree on the rows",
            round.name
        ),
    )
}

/// A round's persons (and registered persons with no tube, when given) in order.
pub struct Roster {
    /// The decided round.
    pub round: Statuses,
    /// The text columns loaded.
    pub text: Texts,
    /// Registered persons with no tube in the round.
    pub untested: Vec<String>,
    /// Entries in output order: `i < persons` is `round.persons()[i]`, else
    /// `untested[i - persons]`.
    order: Vec<u32>,
    /// Each entry's pseudonym, in output order, when ids are replaced.
    pseudonyms: Option<Vec<[u8; 16]>>,
}

/// The ids of a roster's entries: entry `i < persons.len()` is the person of
/// `persons[i]`, whose id is in `person` at their row; the rest are `untested`.
#[derive(Clone, Copy)]
struct Ids<'a> {
    persons: &'a [PersonStatus],
    person: &'a PersonColumn,
    untested: &'a [String],
}

impl<'a> Ids<'a> {
    /// The id of entry `i`.
    fn id(self, i: u32) -> PersonId<'a> {
        match self.persons.get(i as usize) {
            Some(p) => self.person.get(p.row as usize),
            None => PersonId::Text(self.untested_id(i)),
        }
    }

    /// The id of entry `i` when it is a registered person with no tube.
    fn untested_id(self, i: u32) -> &'a str {
        (i as usize)
            .checked_sub(self.persons.len())
            .and_then(|k| self.untested.get(k))
            .map_or("", String::as_str)
    }

    /// The resident key of entry `i`'s id, `None` when it has another form.
    fn resident_key(self, i: u32) -> Option<u64> {
        match self.persons.get(i as usize) {
            Some(p) => self.person.resident_key(p.row as usize),
            None => resident_key(self.untested_id(i).as_bytes()),
        }
    }

    /// The entries in id order.
    fn order(self) -> Result<Vec<u32>> {
        let total = self.persons.len() + self.untested.len();
        let last = u32::try_from(total)
            .map_err(|_| Error::Usage(format!("{total} persons are more than one export holds")))?;
        // Ids of the resident-number form (most of a city's) sort by their exact key,
        // which orders them as their text does; a comparison with any other id (a
        // passport, a visitor's) reads the two texts. By eight bytes of text past a
        // shared prefix instead, ids of one district and birth year tie and were
        // compared as text: 3.5 s against 0.8 s to sort 25 M such ids.
        const TEXT: u64 = u64::MAX;
        let mut keyed: Vec<Keyed> = (0..last)
            .into_par_iter()
            .map(|i| Keyed::new(self.resident_key(i).unwrap_or(TEXT), i))
            .collect();
        let residents = keyed.par_iter().filter(|k| k.key() != TEXT).count();
        if residents * 2 >= keyed.len() {
            keyed.par_sort_unstable_by(|a, b| {
                if a.key() != TEXT && b.key() != TEXT {
                    a.key().cmp(&b.key())
                } else {
                    self.id(a.entry).as_str().cmp(self.id(b.entry).as_str())
                }
            });
            return Ok(indices(keyed));
        }
        drop(keyed);
        // Eight bytes of each id as a number settle most comparisons without following
        // two pointers into the 25-million-id column; they are taken past the prefix
        // every id shares (a city's ids often start alike), so that they differ.
        let first = self.id(0);
        let shared = (0..last)
            .into_par_iter()
            .map(|i| {
                let id = self.id(i);
                id.as_bytes()
                    .iter()
                    .zip(first.as_bytes())
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .min()
            .unwrap_or(0);
        let mut keyed: Vec<Keyed> = (0..last)
            .into_par_iter()
            .map(|i| {
                let mut head = [0u8; 8];
                let id = self.id(i);
                let id = id.as_bytes().get(shared..).unwrap_or_default();
                let n = id.len().min(8);
                head[..n].copy_from_slice(&id[..n]);
                Keyed::new(u64::from_be_bytes(head), i)
            })
            .collect();
        keyed.par_sort_unstable_by(|a, b| {
            a.key()
                .cmp(&b.key())
                .then_with(|| self.id(a.entry).as_str().cmp(self.id(b.entry).as_str()))
        });
        Ok(indices(keyed))
    }
}

/// An entry and its sort key, in 12 bytes: a `(u64, u32)` pair takes 16, and a
/// city's 25 million of them are the largest thing an export holds.
#[derive(Clone, Copy)]
struct Keyed {
    key: [u32; 2],
    entry: u32,
}

impl Keyed {
    fn new(key: u64, entry: u32) -> Keyed {
        // The two halves of the key, high first.
        #[allow(clippy::cast_possible_truncation)]
        let key = [(key >> 32) as u32, key as u32];
        Keyed { key, entry }
    }

    fn key(self) -> u64 {
        (u64::from(self.key[0]) << 32) | u64::from(self.key[1])
    }
}

/// The entries of sorted keys, taken from the end a stretch at a time with the keys'
/// vector shrunk behind: the keys give back their memory as the entries fill, so the
/// two are never both whole (100 MB of a city's export peak).
fn indices(mut keyed: Vec<Keyed>) -> Vec<u32> {
    const STRETCH: usize = 1 << 20;
    let mut order = vec![0u32; keyed.len()];
    while !keyed.is_empty() {
        let from = keyed.len().saturating_sub(STRETCH);
        for (o, k) in order[from..].iter_mut().zip(&keyed[from..]) {
            *o = k.entry;
        }
        keyed.truncate(from);
        keyed.shrink_to_fit();
    }
    order
}

/// Who an entry of the roster is.
pub enum Entry<'a> {
    /// A person with a tube in the round.
    Decided(PersonStatus),
    /// A registered person with no tube: their id.
    Untested(&'a str),
}

impl Roster {
    /// Loads `round` with the text columns `wanted`, and orders its persons and the
    /// registered persons `untested` in it returns by person id.
    pub fn load(
        store: &Store,
        round: &str,
        wanted: Wanted,
        untested: impl FnOnce(&str) -> Result<Vec<String>>,
    ) -> Result<Roster> {
        let round = Statuses::load(store, round)?;
        let untested = untested(&round.name)?;
        let person = Texts::persons(store, &round)?;
        // Ordered before the other text columns are read: the sort's keys are the
        // largest thing an export holds for a moment (400 MB for a city), and beside
        // every column they made its peak.
        let ids = Ids {
            persons: round.persons(),
            person: &person,
            untested: &untested,
        };
        let order = ids.order()?;
        let text = Texts::load(store, &round, wanted, person)?;
        Ok(Roster {
            round,
            text,
            untested,
            order,
            pseudonyms: None,
        })
    }

    /// Before output rows are printed, reads a little of everything the next
    /// [`WARM_ROWS`] of them print: called with each row `at` of `rows`, it acts at
    /// the first row of each block.
    ///
    /// Rows are printed in id order and stored in the order of the files, so each
    /// output row reads a dozen places at random: its person, row, tube and result, and
    /// their text. Printed one after the other, every read waited for the one before;
    /// a city's ids (district, birth date, sequence) come in no order, and its status
    /// export took 37 s instead of 7 s. Read here in short loops of independent reads,
    /// one level of the chain at a time, the misses of a block overlap, and printing
    /// then finds the lines in the cache.
    pub fn warm(&self, at: usize, rows: &Range<usize>) {
        let Some(block) = warm_block(at, rows) else {
            return;
        };
        let (round, text) = (&self.round, &self.text);
        let persons = round.persons();
        let mut row = [NONE; WARM_ROWS];
        for (k, at) in block.enumerate() {
            let i = self.order.get(at).map_or(usize::MAX, |&i| i as usize);
            row[k] = persons.get(i).map_or(NONE, |p| p.row);
        }
        let mut sum = 0u64;
        let mut tube = [NONE; WARM_ROWS];
        for (k, &r) in row.iter().enumerate() {
            let r = r as usize;
            if let (Some(&t), Some(at)) = (round.tube_of_row.get(r), round.collected_at.get(r)) {
                tube[k] = t;
                sum = sum
                    .wrapping_add(at.unsigned_abs())
                    .wrapping_add(text.person.resident_key(r).unwrap_or(0))
                    .wrapping_add(text.site.as_ref().map_or(0, |s| first_byte(s, r)));
            }
        }
        let mut result = [NONE; WARM_ROWS];
        for (k, &t) in tube.iter().enumerate() {
            let t = t as usize;
            if let (Some(&res), Some(&mode)) = (round.tubes.result.get(t), round.tubes.mode.get(t))
            {
                result[k] = res;
                sum = sum
                    .wrapping_add(first_byte(&text.tube, t))
                    .wrapping_add(u64::from(mode as u8));
            }
        }
        let results = &round.results;
        for &res in &result {
            let i = res as usize;
            let bits = |v: &[f32]| v.get(i).map_or(0, |c| u64::from(c.to_bits()));
            if let (Some(&at), Some(&outcome)) =
                (results.reported_at.get(i), results.outcome.get(i))
            {
                sum = sum
                    .wrapping_add(at.unsigned_abs())
                    .wrapping_add(outcome as u64)
                    .wrapping_add(bits(&results.ct_orf1ab))
                    .wrapping_add(bits(&results.ct_n))
                    .wrapping_add(text.lab.as_ref().map_or(0, |l| first_byte(l, i)))
                    .wrapping_add(text.plate.as_ref().map_or(0, |l| first_byte(l, i)));
            }
        }
        std::hint::black_box(sum);
    }

    /// Replaces each id with its pseudonym (`digest` of the id, printed as hex) and
    /// orders the entries by pseudonym.
    pub fn pseudonymize(&mut self, digest: impl Fn(&str) -> [u8; 16] + Sync) {
        let mut named: Vec<([u8; 16], u32)> = self
            .order
            .par_iter()
            .map(|&i| (digest(self.id(i).as_str()), i))
            .collect();
        named.par_sort_unstable();
        let (names, order) = named.into_iter().unzip();
        self.order = order;
        self.pseudonyms = Some(names);
    }

    /// The ids of the entries.
    fn ids(&self) -> Ids<'_> {
        Ids {
            persons: self.round.persons(),
            person: &self.text.person,
            untested: &self.untested,
        }
    }

    /// The id of entry `i` (see `order`).
    fn id(&self, i: u32) -> PersonId<'_> {
        self.ids().id(i)
    }

    /// The id of entry `i` when it is a registered person with no tube.
    fn untested_id(&self, i: u32) -> &str {
        self.ids().untested_id(i)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The start of an export's CSV line for output position `at` of the lines `rows`
    /// being written: warms the block ahead ([`Roster::warm`]), writes the id (or
    /// pseudonym, through `person`) as the first field, and returns the entry.
    pub fn csv_person(
        &self,
        at: usize,
        rows: &Range<usize>,
        person: &mut String,
        out: &mut Vec<u8>,
    ) -> Entry<'_> {
        self.warm(at, rows);
        let entry = self.entry(at, person);
        csv_field(out, person.as_bytes());
        entry
    }

    /// The entry at output position `at`, and its id (or pseudonym) written to `person`.
    pub fn entry(&self, at: usize, person: &mut String) -> Entry<'_> {
        let i = self.order[at];
        person.clear();
        match &self.pseudonyms {
            Some(names) => crate::text::push_hex(person, &names[at]),
            None => person.push_str(self.id(i).as_str()),
        }
        match self.round.persons().get(i as usize) {
            Some(&p) => Entry::Decided(p),
            None => Entry::Untested(self.untested_id(i)),
        }
    }
}

/// `export status`: every person with a tube in the round, their status, and the tube
/// and result that decided it, in person-id order (or pseudonym order).
pub struct StatusExport(pub Roster);

impl StatusExport {
    /// The text columns the export prints.
    pub const WANTED: Wanted = Wanted {
        site: true,
        lab: true,
        plate: false,
        sources: false,
    };

    /// Loads `round` for the export.
    pub fn load(store: &Store, round: &str) -> Result<StatusExport> {
        Ok(StatusExport(Roster::load(
            store,
            round,
            Self::WANTED,
            |_| Ok(Vec::new()),
        )?))
    }
}

/// One person's row of `export status` (the same columns as the worklists).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusRow<'a> {
    /// Person id (or pseudonym).
    pub person: String,
    /// Status.
    pub status: &'static str,
    /// The tube that decided the status.
    pub tube: &'a str,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// The tube's effective result, empty when none yet.
    pub result: &'static str,
    /// Ct `ORF1ab` of that result.
    pub ct_orf1ab: Option<f32>,
    /// Ct N of that result.
    pub ct_n: Option<f32>,
    /// Sampling site.
    pub site: &'a str,
    /// When this person was swabbed into the tube (RFC 3339, store zone).
    pub collected_at: String,
    /// When the result was reported, empty when none yet.
    pub reported_at: String,
    /// The lab that reported it.
    pub lab: &'a str,
    /// Why that result does not count, when it does not (past the specimen limit).
    pub not_counted: String,
    /// `collected_at` as a time, for Parquet.
    #[serde(skip)]
    pub collected_ms: Millis,
    /// `reported_at` as a time, for Parquet.
    #[serde(skip)]
    pub reported_ms: Option<Millis>,
}

impl ListRow for StatusRow<'_> {
    const HEADER: &'static [&'static str] = &[
        "person",
        "status",
        "tube",
        "mode",
        "result",
        "ct_orf1ab",
        "ct_n",
        "site",
        "collected_at",
        "reported_at",
        "lab",
        "not_counted",
    ];

    fn record_batch(rows: &[Self]) -> Result<RecordBatch> {
        let schema = status_schema();
        let col = |f: for<'r> fn(&'r StatusRow<'r>) -> &'r str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
        };
        let opt = |f: for<'r> fn(&'r StatusRow<'r>) -> &'r str| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|r| Some(f(r)).filter(|s| !s.is_empty()))
                    .collect::<StringArray>(),
            )
        };
        let columns: Vec<ArrayRef> = vec![
            col(|r| r.person.as_str()),
            col(|r| r.status),
            col(|r| r.tube),
            col(|r| r.mode),
            opt(|r| r.result),
            Arc::new(rows.iter().map(|r| r.ct_orf1ab).collect::<Float32Array>()),
            Arc::new(rows.iter().map(|r| r.ct_n).collect::<Float32Array>()),
            opt(|r| r.site),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.collected_ms))
                    .with_timezone("UTC"),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| r.reported_ms)
                    .collect::<TimestampMillisecondArray>()
                    .with_timezone("UTC"),
            ),
            opt(|r| r.lab),
            opt(|r| r.not_counted.as_str()),
        ];
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// The Parquet columns of `export status` (and of the person lists that share its
/// columns): times as timestamps, blanks as nulls.
pub fn status_schema() -> Arc<Schema> {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("person", false),
        text("status", false),
        text("tube", false),
        text("mode", false),
        text("result", true),
        Field::new("ct_orf1ab", DataType::Float32, true),
        Field::new("ct_n", DataType::Float32, true),
        text("site", true),
        Field::new("collected_at", ts(), false),
        Field::new("reported_at", ts(), true),
        text("lab", true),
        text("not_counted", true),
    ]))
}

/// The result row tube `t` shows, and why it does not count when it does not: the
/// effective result, or the one standing in for results past the specimen limit.
// Inline: exports ask it once per person.
#[inline]
pub(crate) fn shown_result(round: &Statuses, t: usize) -> (u32, Option<String>) {
    match round.tubes.result.get(t) {
        Some(&res) if res != NONE => (res, None),
        _ => round.shown_result(t),
    }
}

impl RowMaker for StatusExport {
    type Row<'a> = StatusRow<'a>;

    const UNIQUE: &'static [&'static str] = &["person", "tube", "collected_at"];

    /// The columns built directly: no row is kept and no time is printed as text,
    /// which were a fifth of a 25-million-row Parquet export.
    fn batch(&self, rows: Range<usize>) -> Result<RecordBatch> {
        let Roster { round, text, .. } = &self.0;
        let n = rows.len();
        let words = || StringBuilder::with_capacity(n, n * 8);
        let (mut person, mut tube) = (
            StringBuilder::with_capacity(n, n * 18),
            StringBuilder::with_capacity(n, n * 12),
        );
        let (mut status, mut mode, mut result, mut site, mut lab) =
            (words(), words(), words(), words(), words());
        let mut not_counted = StringBuilder::with_capacity(n, 0);
        let (mut ct_orf1ab, mut ct_n) = (
            Float32Builder::with_capacity(n),
            Float32Builder::with_capacity(n),
        );
        let mut collected = Vec::with_capacity(n);
        let mut reported = TimestampMillisecondBuilder::with_capacity(n);
        // Blank text is a null, as in `record_batch`.
        let opt = |b: &mut StringBuilder, v: &str| {
            if v.is_empty() {
                b.append_null();
            } else {
                b.append_value(v);
            }
        };
        let mut id = String::new();
        for at in rows.clone() {
            self.warm(at, &rows);
            let entry = self.0.entry(at, &mut id);
            person.append_value(&id);
            let Entry::Decided(p) = entry else {
                // Loaded without untested persons, so never here; the row stays whole.
                for b in [&mut status, &mut tube, &mut mode] {
                    b.append_value("");
                }
                for b in [&mut result, &mut site, &mut lab, &mut not_counted] {
                    b.append_null();
                }
                ct_orf1ab.append_null();
                ct_n.append_null();
                reported.append_null();
                collected.push(0);
                continue;
            };
            let row = p.row as usize;
            let t = round.tube_of_row[row] as usize;
            status.append_value(p.status.as_str());
            tube.append_value(text_at(&text.tube, t));
            mode.append_value(round.tubes.mode[t].as_str());
            opt(
                &mut site,
                text.site.as_ref().map_or("", |s| text_at(s, row)),
            );
            collected.push(round.collected_at[row]);
            let (res, why) = shown_result(round, t);
            not_counted.append_option(why);
            if res == NONE {
                result.append_null();
                ct_orf1ab.append_null();
                ct_n.append_null();
                reported.append_null();
                lab.append_null();
            } else {
                let (r, i) = (&round.results, res as usize);
                opt(&mut result, r.outcome[i].as_str());
                let (a, b) = r.cts(i);
                ct_orf1ab.append_option(a);
                ct_n.append_option(b);
                reported.append_value(r.reported_at[i]);
                opt(&mut lab, text.lab.as_ref().map_or("", |l| text_at(l, i)));
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(person.finish()),
            Arc::new(status.finish()),
            Arc::new(tube.finish()),
            Arc::new(mode.finish()),
            Arc::new(result.finish()),
            Arc::new(ct_orf1ab.finish()),
            Arc::new(ct_n.finish()),
            Arc::new(site.finish()),
            Arc::new(TimestampMillisecondArray::from(collected).with_timezone("UTC")),
            Arc::new(reported.finish().with_timezone("UTC")),
            Arc::new(lab.finish()),
            Arc::new(not_counted.finish()),
        ];
        Ok(RecordBatch::try_new(status_schema(), columns)?)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// The lines written straight from the round, as the `csv` crate writes the rows
    /// [`RowMaker::fill`] makes (a unit test compares the two): through a row and the
    /// `csv` crate, a third of a 25-million-row export went to serializing it.
    fn csv_rows(&self, rows: Range<usize>, out: &mut Vec<u8>) -> std::io::Result<()> {
        let Roster { round, text, .. } = &self.0;
        let mut id = String::new();
        for at in rows.clone() {
            let Entry::Decided(p) = self.0.csv_person(at, &rows, &mut id, out) else {
                // Loaded without untested persons, so never here; the line stays whole.
                out.extend_from_slice(&[b','; 11]);
                out.push(b'\n');
                continue;
            };
            let row = p.row as usize;
            let t = round.tube_of_row[row] as usize;
            csv_word(out, p.status.as_str());
            csv_cell(out, text_at(&text.tube, t));
            csv_word(out, round.tubes.mode[t].as_str());
            let (res, why) = shown_result(round, t);
            let (r, res) = (&round.results, (res != NONE).then_some(res as usize));
            csv_word(out, res.map_or("", |i| r.outcome[i].as_str()));
            let (a, b) = res.map_or((None, None), |i| r.cts(i));
            for ct in [a, b] {
                out.push(b',');
                if let Some(v) = ct {
                    csv_float(out, v);
                }
            }
            csv_cell(out, text.site.as_ref().map_or("", |s| text_at(s, row)));
            // Times hold no character a CSV field quotes.
            out.push(b',');
            time::push_rfc3339(out, round.collected_at[row], round.zone);
            out.push(b',');
            if let Some(i) = res {
                time::push_rfc3339(out, r.reported_at[i], round.zone);
            }
            csv_cell(
                out,
                res.map_or("", |i| text.lab.as_ref().map_or("", |l| text_at(l, i))),
            );
            csv_cell(out, why.as_deref().unwrap_or(""));
            out.push(b'\n');
        }
        Ok(())
    }

    fn warm(&self, at: usize, rows: &Range<usize>) {
        self.0.warm(at, rows);
    }

    fn fill<'a>(&'a self, at: usize, out: &mut StatusRow<'a>) {
        let Roster { round, text, .. } = &self.0;
        let Entry::Decided(p) = self.0.entry(at, &mut out.person) else {
            // Loaded without untested persons: every entry has a tube.
            return;
        };
        let row = p.row as usize;
        out.status = p.status.as_str();
        out.tube = text_at(&text.tube, round.tube_of_row[row] as usize);
        out.mode = round.tubes.mode[round.tube_of_row[row] as usize].as_str();
        out.site = text.site.as_ref().map_or("", |s| text_at(s, row));
        out.collected_ms = round.collected_at[row];
        out.collected_at.clear();
        time::write_rfc3339(&mut out.collected_at, out.collected_ms, round.zone);
        out.reported_at.clear();
        let (res, why) = shown_result(round, round.tube_of_row[row] as usize);
        out.not_counted.clear();
        if let Some(why) = why {
            out.not_counted.push_str(&why);
        }
        if res == NONE {
            out.result = "";
            (out.ct_orf1ab, out.ct_n) = (None, None);
            out.lab = "";
            out.reported_ms = None;
        } else {
            let (r, i) = (&round.results, res as usize);
            out.result = r.outcome[i].as_str();
            (out.ct_orf1ab, out.ct_n) = r.cts(i);
            out.reported_ms = Some(r.reported_at[i]);
            time::write_rfc3339(&mut out.reported_at, r.reported_at[i], round.zone);
            out.lab = text.lab.as_ref().map_or("", |l| text_at(l, i));
        }
    }
}

/// A store in `dir` of one round `R1`, its collections from a file named `tubes.0`
/// holding `tubes.1` and its results from `results`, every row committed: the exports'
/// tests of their own CSV lines read it.
#[cfg(test)]
pub(crate) fn store_of_one_round(
    dir: &std::path::Path,
    tubes: (&str, &str),
    results: &str,
) -> Store {
    use crate::ingest::{IngestOptions, ingest_collections, ingest_results};
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let (tubes, results) = (write(tubes.0, tubes.1), write("results.csv", results));
    let root = dir.join("store");
    let mut writer = Store::open_writer(&root).expect("store");
    let opts = IngestOptions::default();
    let rows = |text: &str| text.lines().count().saturating_sub(1) as u64;
    let text = std::fs::read_to_string(&tubes).expect("read");
    let r = ingest_collections(&mut writer, &[tubes], "R1", &opts, None).expect("tubes");
    assert_eq!(r.committed, rows(&text));
    let text = std::fs::read_to_string(&results).expect("read");
    let r = ingest_results(&mut writer, &[results], &opts, None).expect("results");
    assert_eq!(r.committed, rows(&text));
    drop(writer);
    Store::open(&root).expect("open")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line `StatusExport::csv_rows` writes is the one the `csv` crate writes of
    /// the row `fill` makes: quoted sites and labs, pending tubes, a result past the
    /// specimen limit, Cts and none.
    #[test]
    fn status_lines_are_the_csv_crate_s_lines_of_the_filled_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_of_one_round(
            dir.path(),
            (
                "tubes.csv",
                "tube,person,mode,collected_at,site\n\
             PL-0001,310000000000000012,pool,2022-04-02 08:00,\"Site \"\"A\"\", east\"\n\
             PL-0001,310000000000000020,pool,2022-04-02 08:01:30.250,\"Site \"\"A\"\", east\"\n\
             PL-0002,p-other-1,single,2022-04-02 09:00,\n\
             PL-0003,p-other-2,single,2022-04-02 09:30,S2\n\
             PL-0004,p-other-3,single,2022-04-02 10:00,S2\n",
            ),
            "tube,result,ct_orf1ab,ct_n,reported_at,lab\n\
             PL-0001,positive,24.5,25.125,2022-04-02 14:00,\"Lab, north\"\n\
             PL-0002,negative,,,2022-04-02 15:00,L2\n\
             PL-0003,positive,31,,2022-04-06 15:00,L2\n",
        );
        let export = StatusExport::load(&store, "R1").expect("load");
        let rows = 0..export.len();
        assert_eq!(rows.len(), 5);

        let mut ours = Vec::new();
        export.csv_rows(rows.clone(), &mut ours).expect("lines");
        let mut theirs = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let mut row = StatusRow::default();
        for i in rows {
            export.fill(i, &mut row);
            theirs.serialize(&row).expect("serialize");
        }
        let theirs = theirs.into_inner().expect("flush");
        let text = String::from_utf8(ours.clone()).expect("utf-8");
        assert_eq!(text, String::from_utf8(theirs).expect("utf-8"));
        assert!(text.contains("\"Site \"\"A\"\", east\""), "{text}");
        assert!(text.contains("\"Lab, north\""), "{text}");
        assert!(text.contains(",24.5,25.125,"), "{text}");
        assert!(text.contains(".250"), "milliseconds kept: {text}");
        assert!(text.contains("past the 48 h specimen limit\"\n"), "{text}");
        assert!(
            text.ends_with(",S2,2022-04-02T10:00:00+08:00,,,\n"),
            "pending: {text}"
        );
    }
}
