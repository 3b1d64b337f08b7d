//! Chain-of-custody files of a round: box manifests and lab receipts, each ingest one
//! committed batch of the `custody/` table.
//!
//! - **Boxes** (`pooltrack ingest boxes FILE --round R`): columns `box`, `tube`,
//!   optional `site` and `sealed_at`. A collections file with a `box` column is a box
//!   manifest too (it has a `person` column): there a blank box means "not stated"
//!   and the row is passed over, a pool's repeated (box, tube) is kept once, and
//!   `sealed_at` defaults to nothing (`pooltrack custody` then takes the box's last
//!   collection). `ingest collections` of such a file records the same manifest in its
//!   own batch (`src/ingest/plan/collections.rs`). A tube put in a second box is
//!   refused, naming the first. A tube put in the box the store (or an earlier line)
//!   has it in already is a repeat, passed over quietly, unless the line states a
//!   sealing time not known for it yet: so a manifest ingested after the collections
//!   adds its sealing times, and the collections file given again adds nothing.
//! - **Receipts** (`pooltrack ingest receipts FILE --round R`): columns `received_at`,
//!   `box` and/or `tube` (a row scans one of them), optional `lab`. A box or tube
//!   scanned again is kept with a warning naming the earlier scan.
//!
//! Boxes and tubes nobody collected are not refused here: the manifest or the
//! collections may come later, and `pooltrack custody` lists what stays unknown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::batch::{
    IngestOptions, IngestReport, REASON_EXAMPLES, Stages, new_files, save_rejects,
    write_batch_rejects,
};
use super::reject::{Rejects, Severity, Where};
use super::row::{Part, line_no, raw, read_parallel, required, text, width_problem};
use super::table::{ReadOptions, Record, Table};
use crate::model::{check_box, check_label, check_round, check_tube};
use crate::store::custody::Stored;
use crate::store::segment::{CustodyRow, Scan, write_custody};
use crate::store::{Batch, BatchKind, Store};
use crate::time::{self, Millis, Offset};
use crate::{Error, Result};

/// Ingests box manifests (or collections files with a `box` column) into `round`.
///
/// ```
/// use pooltrack::ingest::{IngestOptions, ingest_boxes, ingest_collections};
/// use pooltrack::store::Store;
///
/// let dir = tempfile::tempdir()?;
/// let (pools, boxes) = (dir.path().join("pools.csv"), dir.path().join("boxes.csv"));
/// std::fs::write(&pools, "tube,person,mode,collected_at\nPL0001,P-1,pool,2022-04-02 08:00\n")?;
/// std::fs::write(&boxes, "box,tube,site,sealed_at\nBX01,PL0001,S1,2022-04-02 09:00\nBX01,,S1,2022-04-02 09:00\n")?;
/// let mut store = Store::open_writer(&dir.path().join("store"))?;
/// let opts = IngestOptions::default();
/// ingest_collections(&mut store, &[pools], "R1", &opts, None)?;
/// let report = ingest_boxes(&mut store, &[boxes], "R1", &opts)?;
/// assert_eq!((report.committed, report.rejected), (1, 1));
/// assert_eq!(report.reasons[0].column, "tube");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ingest_boxes(
    store: &mut Store,
    files: &[PathBuf],
    round: &str,
    opts: &IngestOptions,
) -> Result<IngestReport> {
    ingest(store, Scan::Sealed, files, round, opts)
}

/// Ingests a lab's receipt scans of boxes or tubes into `round`.
pub fn ingest_receipts(
    store: &mut Store,
    files: &[PathBuf],
    round: &str,
    opts: &IngestOptions,
) -> Result<IngestReport> {
    ingest(store, Scan::Received, files, round, opts)
}

/// A row read from a file, before the checks across rows.
#[derive(Debug, Clone)]
struct Read {
    row: CustodyRow,
    /// A collection row without a box: not stated, passed over.
    unboxed: bool,
}

#[derive(Default)]
struct Parsed(Vec<Read>);

impl Part for Parsed {
    fn append(&mut self, later: &Self) {
        self.0.extend_from_slice(&later.0);
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

struct Columns {
    box_col: Option<usize>,
    tube: Option<usize>,
    site: Option<usize>,
    lab: Option<usize>,
    at: Option<usize>,
    /// The name of the time column read (`sealed_at`, `received_at`).
    at_name: &'static str,
    /// A collections file: a blank box is "not stated".
    collections: bool,
    width: usize,
}

fn columns(table: &Table, kind: Scan) -> Result<Columns> {
    let width = table.header().len();
    Ok(match kind {
        Scan::Sealed => Columns {
            box_col: Some(required(table, "box")?),
            tube: Some(required(table, "tube")?),
            site: table.column("site"),
            lab: None,
            at: table.column("sealed_at"),
            at_name: "sealed_at",
            collections: table.column("person").is_some(),
            width,
        },
        Scan::Received => {
            let (box_col, tube) = (table.column("box"), table.column("tube"));
            if box_col.is_none() && tube.is_none() {
                return Err(Error::input(
                    table.path(),
                    format!(
                        "the header has neither a \"box\" nor a \"tube\" column (it has: {}): a receipt scans one of them",
                        table.header().join(", ")
                    ),
                ));
            }
            Columns {
                box_col,
                tube,
                site: None,
                lab: table.column("lab"),
                at: Some(required(table, "received_at")?),
                at_name: "received_at",
                collections: false,
                width,
            }
        }
    })
}

struct RowAt<'a> {
    path: &'a Path,
    file_no: u16,
    label: &'a str,
    line: u64,
    zone: Offset,
}

fn parse_row(
    kind: Scan,
    cols: &Columns,
    at: &RowAt<'_>,
    rec: &Record,
    raw_row: &[u8],
    out: &mut Parsed,
    rejects: &mut Rejects,
) -> Result<()> {
    let (path, line) = (at.path, at.line);
    let box_id = text(path, rec, cols.box_col, line)?;
    let tube = text(path, rec, cols.tube, line)?;
    let mut bad = |column, reason: String, value: &[u8]| {
        let w = Where {
            file: at.label,
            line,
            tube,
            person: "",
        };
        rejects.push(&w, Severity::Error, column, reason, value);
    };
    if let Some((column, why, value)) = width_problem(rec, raw_row, cols.width) {
        bad(column, why, value);
        return Ok(());
    }
    let unboxed = cols.collections && box_id.is_empty();
    match kind {
        Scan::Sealed if box_id.is_empty() && !unboxed => {
            bad(
                "box",
                "box is blank: a box manifest line names the box".into(),
                b"",
            );
            return Ok(());
        }
        Scan::Sealed if tube.is_empty() => {
            bad(
                "tube",
                "tube is blank: a box manifest line names the tube put in the box".into(),
                b"",
            );
            return Ok(());
        }
        Scan::Received if box_id.is_empty() && tube.is_empty() => {
            let column = if cols.box_col.is_some() {
                "box"
            } else {
                "tube"
            };
            bad(
                column,
                "neither box nor tube is given: a receipt scans one of them".into(),
                b"",
            );
            return Ok(());
        }
        _ => {}
    }
    if !box_id.is_empty()
        && let Err(why) = check_box(box_id)
    {
        bad("box", why, raw(rec, cols.box_col));
        return Ok(());
    }
    if !tube.is_empty()
        && let Err(why) = check_tube(tube)
    {
        bad("tube", why.to_owned(), raw(rec, cols.tube));
        return Ok(());
    }
    let mut labels: [Option<String>; 2] = [None, None];
    for (k, (name, col)) in [("site", cols.site), ("lab", cols.lab)]
        .into_iter()
        .enumerate()
    {
        let value = text(path, rec, col, line)?;
        if let Err(why) = check_label(value) {
            bad(name, format!("{name} {why}"), value.as_bytes());
            return Ok(());
        }
        labels[k] = (!value.is_empty()).then(|| value.to_owned());
    }
    let at_text = text(path, rec, cols.at, line)?;
    let time: Option<Millis> = if at_text.is_empty() {
        if kind == Scan::Received {
            bad(
                "received_at",
                "received_at is blank: a receipt says when the box or tube arrived".into(),
                b"",
            );
            return Ok(());
        }
        None
    } else {
        match time::parse(at_text.as_bytes(), at.zone) {
            Ok(t) => Some(t),
            Err(e) => {
                bad(
                    cols.at_name,
                    format!("{} {e}", cols.at_name),
                    at_text.as_bytes(),
                );
                return Ok(());
            }
        }
    };
    let [site, lab] = labels;
    out.0.push(Read {
        row: CustodyRow {
            kind,
            box_id: (!box_id.is_empty()).then(|| box_id.to_owned()),
            tube: (!tube.is_empty()).then(|| tube.to_owned()),
            site,
            lab,
            at: time,
            file: at.file_no,
            line: line_no(path, line)?,
        },
        unboxed,
    });
    Ok(())
}

/// Where a box or tube was seen first: for the messages that name it.
struct Seen {
    box_id: String,
    at: Option<Millis>,
    place: String,
}

/// The checks across rows: keeps the rows to commit, in file order.
fn plan(
    kind: Scan,
    read: Vec<Read>,
    labels: &[String],
    earlier: &[Stored],
    zone: Offset,
    rejects: &mut Rejects,
) -> Vec<CustodyRow> {
    let when =
        |t: Option<Millis>| t.map_or_else(|| "-".to_owned(), |t| time::format_local(t, zone));
    let mut tube_box: HashMap<String, Seen> = HashMap::new();
    let mut scanned: HashMap<(bool, String), Seen> = HashMap::new();
    for s in earlier.iter().filter(|s| s.kind == kind) {
        let place = format!("{} line {}, batch {}", s.source, s.line, s.batch);
        match kind {
            Scan::Sealed => {
                if let (Some(t), Some(b)) = (&s.tube, &s.box_id) {
                    let seen = tube_box.entry(t.clone()).or_insert(Seen {
                        box_id: b.clone(),
                        at: s.at,
                        place,
                    });
                    // A later line of the same box may have stated its sealing.
                    if seen.box_id == *b && s.at.is_some() {
                        seen.at = s.at;
                    }
                }
            }
            Scan::Received => {
                let Some(key) = scan_key(s.tube.as_deref(), s.box_id.as_deref()) else {
                    continue;
                };
                scanned.entry(key).or_insert(Seen {
                    box_id: String::new(),
                    at: s.at,
                    place,
                });
            }
        }
    }
    let mut out = Vec::with_capacity(read.len());
    for r in read {
        if r.unboxed {
            continue;
        }
        let row = r.row;
        let label = labels.get(usize::from(row.file)).map_or("", String::as_str);
        let tube = row.tube.as_deref().unwrap_or_default();
        let w = Where {
            file: label,
            line: u64::from(row.line),
            tube,
            person: "",
        };
        let place = format!("{label} line {}", row.line);
        match kind {
            Scan::Sealed => {
                let b = row.box_id.clone().unwrap_or_default();
                if let Some(first) = tube_box.get_mut(tube) {
                    if first.box_id == b {
                        // The tube in the box it is in already (a pool's other rows in
                        // a collections file, or what the store holds): the same fact,
                        // passed over, unless the line states a sealing time the store
                        // does not have for it (a manifest after the collections' box
                        // column): then it is kept, for `pooltrack custody` to use.
                        match row.at {
                            Some(t) if first.at != Some(t) => first.at = Some(t),
                            _ => continue,
                        }
                        out.push(row);
                        continue;
                    }
                    rejects.push(
                        &w,
                        Severity::Error,
                        "box",
                        format!(
                            "tube {tube} is already in box {} ({}): a tube travels in one box",
                            first.box_id, first.place
                        ),
                        b.as_bytes(),
                    );
                    continue;
                }
                tube_box.insert(
                    tube.to_owned(),
                    Seen {
                        box_id: b,
                        at: row.at,
                        place,
                    },
                );
            }
            Scan::Received => {
                let Some(key) = scan_key(row.tube.as_deref(), row.box_id.as_deref()) else {
                    continue;
                };
                if let Some(first) = scanned.get(&key) {
                    let what = if key.0 { "tube" } else { "box" };
                    rejects.push(
                        &w,
                        Severity::Warning,
                        if key.0 { "tube" } else { "box" },
                        format!(
                            "{what} {} was already scanned at {} ({}): kept; pooltrack custody counts the first receipt and lists the repeat",
                            key.1,
                            when(first.at),
                            first.place
                        ),
                        key.1.as_bytes(),
                    );
                } else {
                    scanned.insert(
                        key,
                        Seen {
                            box_id: String::new(),
                            at: row.at,
                            place,
                        },
                    );
                }
            }
        }
        out.push(row);
    }
    out
}

fn ingest(
    store: &mut Store,
    kind: Scan,
    files: &[PathBuf],
    round: &str,
    opts: &IngestOptions,
) -> Result<IngestReport> {
    check_round(round).map_err(|why| Error::Usage(format!("--round {round:?}: {why}")))?;
    store.require_round(round)?;
    let mut report = IngestReport::empty(BatchKind::Custody);
    let mut clock = Stages(Instant::now());
    let mut sources = new_files(store, BatchKind::Custody, files, &mut report)?;
    clock.lap(&mut report, "hash");
    if sources.is_empty() {
        return Ok(report);
    }
    if sources.len() > usize::from(u16::MAX) {
        return Err(Error::Usage(format!(
            "{} new files in one ingest; at most {} a batch: split the list",
            sources.len(),
            u16::MAX
        )));
    }
    let zone = store.zone();
    let labels: Vec<String> = sources.iter().map(|(_, s)| s.path.clone()).collect();
    let mut rejects = Rejects::default();
    let mut read: Vec<Read> = Vec::new();
    let read_opts = ReadOptions {
        encoding: opts.encoding,
        delimiter: opts.delimiter,
    };
    for (no, (path, source)) in sources.iter_mut().enumerate() {
        let mut table = Table::open_with(path, &read_opts)?;
        let cols = columns(&table, kind)?;
        let file_no = u16::try_from(no).unwrap_or(u16::MAX);
        let at_path = table.path().to_path_buf();
        let label = source.path.clone();
        let mut part = Parsed::default();
        let n = read_parallel(
            &mut table,
            &mut part,
            &mut rejects,
            |line, rec, raw_row, out, rj| {
                let at = RowAt {
                    path: &at_path,
                    file_no,
                    label: &label,
                    line,
                    zone,
                };
                parse_row(kind, &cols, &at, rec, raw_row, out, rj)
            },
        )?;
        read.append(&mut part.0);
        if source.xxh3_128.is_empty() {
            let (bytes, hash) = match table.source_digest() {
                Some((bytes, hash)) => (bytes, format!("{hash:032x}")),
                None => super::batch::hash_file(path)?,
            };
            source.bytes = bytes;
            source.xxh3_128 = hash;
        }
        report.rows_read += n;
        if let Some(f) = report.files.iter_mut().find(|f| f.path == source.path) {
            f.rows = n;
        }
    }
    clock.lap(&mut report, "parse");
    let earlier = crate::store::custody::rows(store, round)?;
    let rows = plan(kind, read, &labels, &earlier, zone, &mut rejects);
    clock.lap(&mut report, "check");
    report.rejected = rejects.errors();
    report.warnings = rejects.warnings();
    report.reasons = rejects.summary(REASON_EXAMPLES);

    let rejects_dir = store.root().join("rejects");
    let what = match kind {
        Scan::Sealed => "boxes",
        Scan::Received => "receipts",
    };
    if opts.strict && report.rejected > 0 {
        let name = format!("strict-{}-{what}.csv", time::now());
        let p = save_rejects(&rejects_dir, &name, &mut rejects)?;
        return Err(Error::StrictRejected {
            rejected: report.rejected,
            rejects: p,
            reasons: std::mem::take(&mut report.reasons),
        });
    }
    if rows.is_empty() {
        if !rejects.rows.is_empty() {
            let name = format!("uncommitted-{}-{what}.csv", time::now());
            report.rejects_file = Some(save_rejects(&rejects_dir, &name, &mut rejects)?);
        }
        return Ok(report);
    }
    // A file none of whose rows is committed is not recorded as ingested.
    let mut used = vec![false; sources.len()];
    for r in &rows {
        if let Some(u) = used.get_mut(usize::from(r.file)) {
            *u = true;
        }
    }
    let id = store.manifest().next_batch_id();
    let root = store.root().to_path_buf();
    let custody = write_custody(&root, id, round, &labels, &rows)?;
    report.committed = custody.rows;
    clock.lap(&mut report, "write");
    let rejects_rel =
        write_batch_rejects(&root, id, BatchKind::Custody, &mut rejects, &mut report)?;
    let batch = Batch {
        id,
        kind: BatchKind::Custody,
        round: Some(round.to_owned()),
        committed_at: time::format(time::now(), zone),
        sources: sources
            .into_iter()
            .zip(used)
            .filter(|(_, u)| *u)
            .map(|((_, s), _)| s)
            .collect(),
        rows_read: report.rows_read,
        rows_committed: report.committed,
        rejected: report.rejected,
        warnings: report.warnings,
        rejects: rejects_rel,
        segments: Vec::new(),
        population: None,
        custody: Some(custody),
    };
    store.commit(batch)?;
    clock.lap(&mut report, "commit");
    report.batch = Some(id);
    report.rounds.push(round.to_owned());
    Ok(report)
}

/// What a receipt scan received, as the key repeat scans are found by: its tube
/// (`true`) when it names one, else its box; `None` when it names neither.
fn scan_key(tube: Option<&str>, box_id: Option<&str>) -> Option<(bool, String)> {
    match (tube, box_id) {
        (Some(t), _) => Some((true, t.to_owned())),
        (None, Some(b)) => Some((false, b.to_owned())),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(kind: Scan, text: &str) -> (Vec<Read>, Rejects) {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("f.csv");
        std::fs::write(&p, text).expect("write");
        let mut t = Table::open(&p).expect("open");
        let cols = columns(&t, kind).expect("columns");
        let mut part = Parsed::default();
        let mut rejects = Rejects::default();
        let path = p.clone();
        read_parallel(
            &mut t,
            &mut part,
            &mut rejects,
            |line, rec, raw_row, out, rj| {
                let at = RowAt {
                    path: &path,
                    file_no: 0,
                    label: "f.csv",
                    line,
                    zone: Offset::CHINA,
                };
                parse_row(kind, &cols, &at, rec, raw_row, out, rj)
            },
        )
        .expect("reads");
        (part.0, rejects)
    }

    #[test]
    fn a_manifest_line_needs_box_and_tube_and_a_readable_time() {
        let (rows, rejects) = read_text(
            Scan::Sealed,
            "box,tube,site,sealed_at\nB001,PL0001,S1,2022-04-02 09:00\n,PL0002,S1,\nB001,,S1,\nB001,PL0003,S1,yesterday\nB 1,PL0004,S1,\nB001,PL0005,,\n",
        );
        let at: Vec<(u64, &str)> = rejects.rows.iter().map(|r| (r.line, r.column)).collect();
        assert_eq!(at, [(3, "box"), (4, "tube"), (5, "sealed_at"), (6, "box")]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].row.at, None);
        assert_eq!(rows[1].row.site, None);
    }

    #[test]
    fn a_blank_box_in_a_collections_file_is_not_stated() {
        let (rows, rejects) = read_text(
            Scan::Sealed,
            "tube,person,mode,collected_at,box\nPL0001,P1,pool,2022-04-02 08:00,\nPL0002,P2,pool,2022-04-02 08:00,BX09\n",
        );
        assert!(rejects.rows.is_empty(), "{:?}", rejects.rows);
        assert_eq!(rows.iter().filter(|r| r.unboxed).count(), 1);
        let kept = plan(
            Scan::Sealed,
            rows,
            &["f.csv".into()],
            &[],
            Offset::CHINA,
            &mut Rejects::default(),
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].box_id.as_deref(), Some("BX09"));
    }

    #[test]
    fn a_tube_in_its_box_again_is_a_repeat_unless_it_states_a_new_sealing_time() {
        // What `ingest collections` of a file with a box column recorded: PL0001 and
        // PL0002 in BX01, no sealing time.
        let earlier: Vec<Stored> = ["PL0001", "PL0002"]
            .iter()
            .enumerate()
            .map(|(i, t)| Stored {
                kind: Scan::Sealed,
                box_id: Some("BX01".into()),
                tube: Some((*t).into()),
                site: Some("S1".into()),
                lab: None,
                at: None,
                batch: 1,
                source: "c.csv".into(),
                line: i as u64 + 2,
            })
            .collect();
        let (rows, _) = read_text(
            Scan::Sealed,
            "box,tube,site,sealed_at\nBX01,PL0001,S1,\nBX01,PL0002,S1,2022-04-02 09:00\nBX01,PL0002,S1,2022-04-02 09:00\nBX02,PL0001,S1,2022-04-02 09:00\n",
        );
        let mut rejects = Rejects::default();
        let kept = plan(
            Scan::Sealed,
            rows,
            &["f.csv".into()],
            &earlier,
            Offset::CHINA,
            &mut rejects,
        );
        // Line 2 says nothing new; line 3 states BX01's sealing; line 4 repeats line 3;
        // line 5 puts PL0001 in a second box.
        let lines: Vec<u32> = kept.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3]);
        assert_eq!(rejects.rows.len(), 1);
        assert_eq!((rejects.rows[0].line, rejects.rows[0].column), (5, "box"));
        assert!(
            rejects.rows[0].reason.contains("c.csv line 2, batch 1"),
            "{}",
            rejects.rows[0].reason
        );
    }

    #[test]
    fn a_tube_in_two_boxes_is_refused_and_a_repeat_scan_warned() {
        let (rows, _) = read_text(
            Scan::Sealed,
            "box,tube\nBX01,PL0001\nBX01,PL0001\nBX02,PL0001\n",
        );
        let mut rejects = Rejects::default();
        let kept = plan(
            Scan::Sealed,
            rows,
            &["f.csv".into()],
            &[],
            Offset::CHINA,
            &mut rejects,
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(rejects.rows.len(), 1);
        assert_eq!((rejects.rows[0].line, rejects.rows[0].column), (4, "box"));
        assert!(rejects.rows[0].reason.contains("already in box BX01"));

        let (rows, rj) = read_text(
            Scan::Received,
            "tube,received_at,lab\nPL0001,2022-04-02 10:00,L1\nPL0001,2022-04-02 11:00,L1\n,2022-04-02 11:00,L1\n",
        );
        assert_eq!(rj.rows.len(), 1, "the row scanning nothing");
        let mut rejects = Rejects::default();
        let kept = plan(
            Scan::Received,
            rows,
            &["f.csv".into()],
            &[],
            Offset::CHINA,
            &mut rejects,
        );
        assert_eq!(kept.len(), 2, "a repeat scan is kept");
        assert_eq!(rejects.warnings(), 1);
    }
}
