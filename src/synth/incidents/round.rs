//! The round's CSV files held in memory: read as the generator wrote them, written
//! back with the columns the incidents add.

use std::collections::HashSet;
use std::path::Path;

use crate::time::{self, Millis, Offset};
use crate::{Error, Result};

pub(super) const RESULT_COLUMNS: [&str; 11] = [
    "tube",
    "result",
    "ct_orf1ab",
    "ct_n",
    "reported_at",
    "lab",
    "plate",
    "well",
    "sample_type",
    "ct_ic",
    "received_at",
];
pub(super) const COLLECTION_COLUMNS: [&str; 6] =
    ["tube", "person", "mode", "capacity", "collected_at", "site"];
pub(super) const POPULATION_COLUMNS: [&str; 4] = ["person", "district", "community", "group"];

/// A row of a collections file.
pub(super) struct Collection {
    pub(super) tube: String,
    pub(super) person: String,
    pub(super) mode: String,
    pub(super) capacity: String,
    pub(super) collected_at: Millis,
    pub(super) site: String,
}

/// A row of a results file, controls included.
pub(super) struct TubeResult {
    pub(super) tube: String,
    pub(super) result: String,
    pub(super) ct_orf1ab: String,
    pub(super) ct_n: String,
    pub(super) reported_at: Millis,
    pub(super) lab: String,
    pub(super) plate: String,
    pub(super) well: String,
    pub(super) sample_type: &'static str,
    pub(super) ct_ic: String,
    pub(super) received_at: Option<Millis>,
}

/// The round as the generator wrote it, being rewritten.
pub(super) struct Round {
    pub(super) collections: Vec<Collection>,
    pub(super) results: Vec<TubeResult>,
    pub(super) retest_collections: Vec<Collection>,
    pub(super) retest_results: Vec<TubeResult>,
    pub(super) infected: HashSet<String>,
}

pub(super) fn read_csv(path: &Path, columns: &[&str]) -> Result<Vec<Vec<String>>> {
    let bad = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    let mut reader = csv::Reader::from_path(path).map_err(bad)?;
    let header = reader.headers().map_err(bad)?.clone();
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h == *c)
                .ok_or_else(|| Error::input(path, format!("no {c} column")))
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        rows.push(
            at.iter()
                .map(|&i| record.get(i).unwrap_or_default().to_owned())
                .collect(),
        );
    }
    Ok(rows)
}

fn read_time(path: &Path, text: &str) -> Result<Millis> {
    time::parse(text.as_bytes(), Offset::CHINA)
        .map_err(|e| Error::input(path, format!("time {text:?}: {e}")))
}

pub(super) fn read_collections(path: &Path) -> Result<Vec<Collection>> {
    read_csv(path, &COLLECTION_COLUMNS)?
        .into_iter()
        .map(|r| {
            let [tube, person, mode, capacity, at, site] = <[String; 6]>::try_from(r)
                .map_err(|_| Error::input(path, "a row of the wrong width"))?;
            Ok(Collection {
                collected_at: read_time(path, &at)?,
                tube,
                person,
                mode,
                capacity,
                site,
            })
        })
        .collect()
}

pub(super) fn read_results(path: &Path) -> Result<Vec<TubeResult>> {
    read_csv(path, &RESULT_COLUMNS[..8])?
        .into_iter()
        .map(|r| {
            let [tube, result, ct_orf1ab, ct_n, at, lab, plate, well] = <[String; 8]>::try_from(r)
                .map_err(|_| Error::input(path, "a row of the wrong width"))?;
            Ok(TubeResult {
                reported_at: read_time(path, &at)?,
                tube,
                result,
                ct_orf1ab,
                ct_n,
                lab,
                plate,
                well,
                sample_type: "sample",
                ct_ic: String::new(),
                received_at: None,
            })
        })
        .collect()
}

fn local(t: Millis) -> String {
    time::format_local(t, Offset::CHINA)
}

/// A collection as the fields of [`COLLECTION_COLUMNS`].
pub(super) fn collection_row(c: &Collection) -> Vec<String> {
    vec![
        c.tube.clone(),
        c.person.clone(),
        c.mode.clone(),
        c.capacity.clone(),
        local(c.collected_at),
        c.site.clone(),
    ]
}

pub(super) fn write_collections(path: &Path, rows: &[Collection]) -> Result<()> {
    let rows: Vec<Vec<String>> = rows.iter().map(collection_row).collect();
    write_csv(path, &COLLECTION_COLUMNS, &rows)
}

pub(super) fn write_results(path: &Path, rows: &[TubeResult]) -> Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.tube.clone(),
                r.result.clone(),
                r.ct_orf1ab.clone(),
                r.ct_n.clone(),
                local(r.reported_at),
                r.lab.clone(),
                r.plate.clone(),
                r.well.clone(),
                r.sample_type.to_owned(),
                r.ct_ic.clone(),
                r.received_at.map(local).unwrap_or_default(),
            ]
        })
        .collect();
    write_csv(path, &RESULT_COLUMNS, &rows)
}

pub(super) fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let bad = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    let mut w = csv::Writer::from_path(path).map_err(bad)?;
    w.write_record(header).map_err(bad)?;
    for row in rows {
        w.write_record(row).map_err(bad)?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}
