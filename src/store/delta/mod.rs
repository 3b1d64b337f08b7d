//! The Delta Lake transaction log of one table: what any Delta reader (Spark, Trino,
//! `DuckDB`, Polars, `delta-rs`) needs to see exactly the committed rows.
//!
//! A table is a folder of Parquet files and a `_delta_log/` folder of numbered commits,
//! `00000000000000000000.json`, `…001.json` and on, each a file of newline-separated JSON
//! actions (the Delta transaction protocol, reader version 1, writer version 2). The
//! table's files are those added and not removed by the commits up to the newest one. A
//! commit is made by writing a private temporary file, fsyncing it and hard-linking it
//! to its number: the link fails if the number exists, so two writers can never both
//! make version N (the protocol's "mutual exclusion"), and a reader sees a commit
//! whole or not at all. Every tenth version also gets a checkpoint
//! (`NNN.checkpoint.parquet` and `_last_checkpoint`) so that other engines need not read
//! every commit; pooltrack reads the JSON commits, which it never deletes.
//!
//! This module knows the protocol only; what pooltrack records in a commit (its batch,
//! retraction and settings records in `commitInfo`) is [`super::tables`]' business.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_schema::{DataType, Schema};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fsutil;
use crate::{Error, Result};

mod checkpoint;

pub use checkpoint::{INTERVAL as CHECKPOINT_INTERVAL, checkpoint_name, write_checkpoint};

/// The log folder's name inside a table.
pub const LOG: &str = "_delta_log";

/// The reader and writer versions of the protocol this module writes.
pub const READER_VERSION: i32 = 1;
/// See [`READER_VERSION`].
pub const WRITER_VERSION: i32 = 2;

/// A file added to the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    /// Relative to the table folder (a URI path; pooltrack's names need no escaping).
    pub path: String,
    /// Always empty: pooltrack's tables are not partitioned.
    pub partition_values: BTreeMap<String, String>,
    /// Bytes.
    pub size: u64,
    /// Milliseconds since the epoch.
    pub modification_time: i64,
    /// True: the rows are new data.
    pub data_change: bool,
    /// `{"numRecords": N}`, as a JSON string (the protocol's form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
}

/// A file taken out of the table (it stays on disk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    /// As in its [`Add`].
    pub path: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<i64>,
    /// True: rows leave the table.
    pub data_change: bool,
    /// Whether `partition_values` and `size` are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_file_metadata: Option<bool>,
    /// As in its [`Add`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_values: Option<BTreeMap<String, String>>,
    /// As in its [`Add`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The protocol versions a reader and a writer must support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    /// Lowest reader version that may read the table.
    pub min_reader_version: i32,
    /// Lowest writer version that may write it.
    pub min_writer_version: i32,
}

/// The data files' format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileFormat {
    /// `parquet`.
    pub provider: String,
    /// None.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// The table's identity, schema and properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaData {
    /// A unique id (a UUID's text).
    pub id: String,
    /// The table's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The data files' format.
    pub format: FileFormat,
    /// The schema, as the protocol's JSON text (see [`schema_string`]).
    pub schema_string: String,
    /// None: not partitioned.
    pub partition_columns: Vec<String>,
    /// Table properties (`delta.*` for engines, `pooltrack.*` for pooltrack).
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
}

/// One action of a commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `protocol`.
    Protocol(Protocol),
    /// `metaData`.
    MetaData(MetaData),
    /// `add`.
    Add(Add),
    /// `remove`.
    Remove(Remove),
    /// `commitInfo`: free-form provenance.
    CommitInfo(serde_json::Map<String, Value>),
    /// Any other action (`txn`, `cdc`, `domainMetadata`...), which pooltrack never
    /// writes: its name, so a reader can say which engine's commit it met.
    Other(String),
}

impl Action {
    /// The action as one line of a commit file.
    fn to_line(&self) -> std::result::Result<String, serde_json::Error> {
        let (key, value) = match self {
            Action::Protocol(p) => ("protocol", serde_json::to_value(p)?),
            Action::MetaData(m) => ("metaData", serde_json::to_value(m)?),
            Action::Add(a) => ("add", serde_json::to_value(a)?),
            Action::Remove(r) => ("remove", serde_json::to_value(r)?),
            Action::CommitInfo(c) => ("commitInfo", Value::Object(c.clone())),
            Action::Other(name) => (name.as_str(), Value::Object(serde_json::Map::new())),
        };
        let mut line = serde_json::Map::new();
        line.insert(key.to_owned(), value);
        serde_json::to_string(&Value::Object(line))
    }

    /// Reads one line of a commit file.
    fn from_line(line: &str) -> std::result::Result<Action, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(map) = v else {
            return Err("an action must be a JSON object".into());
        };
        if map.len() != 1 {
            return Err(format!(
                "an action must have one key, this one has {}",
                map.len()
            ));
        }
        let Some((key, value)) = map.into_iter().next() else {
            return Err("an empty action".into());
        };
        let typed = |e: serde_json::Error| format!("{key}: {e}");
        Ok(match key.as_str() {
            "protocol" => Action::Protocol(serde_json::from_value(value).map_err(typed)?),
            "metaData" => Action::MetaData(serde_json::from_value(value).map_err(typed)?),
            "add" => Action::Add(serde_json::from_value(value).map_err(typed)?),
            "remove" => Action::Remove(serde_json::from_value(value).map_err(typed)?),
            "commitInfo" => match value {
                Value::Object(m) => Action::CommitInfo(m),
                _ => return Err("commitInfo must be an object".into()),
            },
            _ => Action::Other(key),
        })
    }
}

/// One commit read back.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Its version.
    pub version: u64,
    /// Its actions, in file order.
    pub actions: Vec<Action>,
    /// Its file, for messages.
    pub path: PathBuf,
}

/// Reads the text of a commit file: one action per line (blank lines are skipped).
/// The error names the first line that is not an action.
///
/// ```
/// use pooltrack::store::delta::{Action, commit_text, parse_commit};
/// let text = "{\"add\":{\"path\":\"R1/b000001.parquet\",\"partitionValues\":{},\"size\":9,\"modificationTime\":0,\"dataChange\":true}}\n";
/// let actions = parse_commit(text).expect("one add");
/// assert!(matches!(&actions[0], Action::Add(a) if a.size == 9));
/// assert_eq!(parse_commit(&commit_text(&actions).expect("text")).expect("again"), actions);
/// assert!(parse_commit("{}\n").unwrap_err().starts_with("line 1"));
/// ```
pub fn parse_commit(text: &str) -> std::result::Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        actions.push(Action::from_line(line).map_err(|why| format!("line {}: {why}", i + 1))?);
    }
    Ok(actions)
}

/// The text of a commit file holding `actions`, one per line.
pub fn commit_text(actions: &[Action]) -> std::result::Result<String, serde_json::Error> {
    let mut text = String::new();
    for a in actions {
        text.push_str(&a.to_line()?);
        text.push('\n');
    }
    Ok(text)
}

/// The file name of version `v`'s commit.
pub fn commit_name(v: u64) -> String {
    format!("{v:020}.json")
}

/// The versions of the commits in `table`'s log, in order, or `None` when the table has
/// no log folder. Only names of the form `NNNNNNNNNNNNNNNNNNNN.json` count; checkpoints
/// and temporary files are skipped.
pub fn versions(table: &Path) -> Result<Option<Vec<u64>>> {
    let log = table.join(LOG);
    let entries = match fs::read_dir(&log) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&log, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&log, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(v) = name
            .strip_suffix(".json")
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(v);
        }
    }
    out.sort_unstable();
    Ok(Some(out))
}

/// Reads every commit of `table`'s log, which must run 0, 1, 2… without a gap (pooltrack
/// never deletes a commit). `None` when the table has no log. A commit that cannot be
/// read is damage, named with its file and line.
pub fn read_log(table: &Path) -> Result<Option<Vec<Commit>>> {
    let Some(versions) = contiguous_versions(table)? else {
        return Ok(None);
    };
    read_commits(table, &versions).map(Some)
}

/// [`versions`], checked to run 0, 1, 2… without a gap: a missing commit is damage.
pub fn contiguous_versions(table: &Path) -> Result<Option<Vec<u64>>> {
    versions(table)?.map(|v| contiguous(table, v)).transpose()
}

/// `versions` of `table`'s log (as [`versions`] lists them), refused if they skip one.
pub fn contiguous(table: &Path, versions: Vec<u64>) -> Result<Vec<u64>> {
    if let Some((want, &v)) = versions
        .iter()
        .enumerate()
        .find(|&(want, &v)| v != want as u64)
    {
        return Err(Error::damaged(
            table.join(LOG).join(commit_name(v)),
            format!(
                "the log skips from version {} to {v}: a commit is missing",
                want.saturating_sub(1)
            ),
        ));
    }
    Ok(versions)
}

/// Reads the commits `versions` of `table`'s log, in that order.
pub fn read_commits(table: &Path, versions: &[u64]) -> Result<Vec<Commit>> {
    let log = table.join(LOG);
    // A store of a busy day holds hundreds of commits: read them on every core.
    versions
        .par_iter()
        .map(|&v| {
            let path = log.join(commit_name(v));
            let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| Error::damaged(&path, format!("is not UTF-8 text: {e}")))?;
            let actions = parse_commit(text).map_err(|why| Error::damaged(&path, why))?;
            Ok(Commit {
                version: v,
                actions,
                path,
            })
        })
        .collect()
}

/// Commits `actions` as version `version` of `table`: written to a temporary file in
/// the log folder, fsynced, hard-linked to its number (which fails if another writer
/// made that version first), and the folder fsynced. Either the whole commit is there
/// after a crash or none of it; a leftover temporary file is not a commit.
pub fn commit(table: &Path, version: u64, actions: &[Action]) -> Result<PathBuf> {
    let log = table.join(LOG);
    fsutil::create_dir_all(&log)?;
    let text = commit_text(actions).map_err(|e| Error::io(&log, std::io::Error::other(e)))?;
    let path = log.join(commit_name(version));
    let tmp = log.join(format!(".{version:020}.json.{}.tmp", std::process::id()));
    let mut f = fsutil::create_file(&tmp)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::damaged(
                &path,
                format!(
                    "version {version} of the table was made by another writer while this one held the store's lock: only pooltrack may write its tables"
                ),
            ));
        }
        Err(e) => return Err(Error::io(&path, e)),
    }
    fsutil::sync_dir(&log)?;
    Ok(path)
}

/// Whether `name` (in a log folder) is a leftover temporary file of a killed writer: a
/// commit or checkpoint it did not finish, or `_last_checkpoint.tmp`.
pub fn is_temporary(name: &str) -> bool {
    // pooltrack's own temporary names, always lower case.
    #[allow(clippy::case_sensitive_file_extension_comparisons)]
    let ours = name.ends_with(".tmp");
    ours
}

/// The protocol's JSON schema text for an Arrow schema of pooltrack's column types.
/// Unsigned integers become the next wider signed type (the protocol has no unsigned
/// ones; readers cast the file's values up), millisecond UTC times become `timestamp`.
pub fn schema_string(schema: &Schema) -> String {
    let fields: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": type_name(f.data_type()),
                "nullable": f.is_nullable(),
                "metadata": {},
            })
        })
        .collect();
    serde_json::json!({"type": "struct", "fields": fields}).to_string()
}

fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Boolean => "boolean",
        DataType::Int8 => "byte",
        DataType::Int16 | DataType::UInt8 => "short",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::Timestamp(_, Some(_)) => "timestamp",
        DataType::Timestamp(_, None) => "timestamp_ntz",
        DataType::Date32 => "date",
        DataType::Binary | DataType::LargeBinary => "binary",
        DataType::Dictionary(_, v) => type_name(v),
        // Int64, UInt32, UInt64 (row numbers, never near 2^63) and text.
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "long",
        _ => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, TimeUnit};

    /// A number another tool wrote in a commit means the same once pooltrack writes the
    /// commit back: JSON floats are read to the nearest `f64`, not approximately (the
    /// fuzz target found `3.0000000000000002e+93` read as a neighbour of the `f64`
    /// that `3e+93` then named).
    #[test]
    fn a_float_in_a_commit_reads_back_the_same_once_written() {
        let text = r#"{"commitInfo":{"pooltrack":{"bytes":3.0000000000000002e+93,"x":0.1}}}"#;
        let actions = parse_commit(text).expect("a commit");
        let written = commit_text(&actions).expect("written");
        assert_eq!(parse_commit(&written).expect("read back"), actions);
    }

    fn add(path: &str) -> Action {
        Action::Add(Add {
            path: path.into(),
            partition_values: BTreeMap::new(),
            size: 10,
            modification_time: 1,
            data_change: true,
            stats: Some(r#"{"numRecords":3}"#.into()),
        })
    }

    #[test]
    fn a_commit_reads_back_as_written_and_a_version_is_made_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path();
        assert!(read_log(t).expect("no log").is_none());
        let mut info = serde_json::Map::new();
        info.insert("operation".into(), Value::from("WRITE"));
        let v0 = vec![
            Action::Protocol(Protocol {
                min_reader_version: 1,
                min_writer_version: 2,
            }),
            add("R1/b000001.parquet"),
            Action::CommitInfo(info),
        ];
        commit(t, 0, &v0).expect("commit 0");
        let again = commit(t, 0, &[add("x.parquet")]).expect_err("version 0 exists");
        assert!(again.to_string().contains("another writer"), "{again}");
        let log = read_log(t).expect("read").expect("a log");
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].actions, v0);
        // No temporary file is left beside the commit.
        let names: Vec<_> = fs::read_dir(t.join(LOG)).expect("log").flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_gap_or_a_bad_line_in_the_log_is_damage_named_by_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path();
        commit(t, 0, &[add("a.parquet")]).expect("0");
        commit(t, 2, &[add("b.parquet")]).expect("2");
        let gap = read_log(t).expect_err("gap").to_string();
        assert!(
            gap.contains("00000000000000000002.json") && gap.contains("missing"),
            "{gap}"
        );
        fs::write(t.join(LOG).join(commit_name(1)), "{\"add\": 5}\n").expect("write");
        let bad = read_log(t).expect_err("bad line").to_string();
        assert!(
            bad.contains("00000000000000000001.json") && bad.contains("line 1"),
            "{bad}"
        );
    }

    #[test]
    fn unknown_actions_are_kept_by_name() {
        let a = Action::from_line(r#"{"txn": {"appId": "x", "version": 3}}"#).expect("read");
        assert_eq!(a, Action::Other("txn".into()));
        assert!(Action::from_line(r#"{"add": {}, "remove": {}}"#).is_err());
        assert!(Action::from_line("[1]").is_err());
    }

    #[test]
    fn the_schema_uses_the_protocols_types() {
        let s = Schema::new(vec![
            Field::new("tube", DataType::Utf8, false),
            Field::new("capacity", DataType::UInt8, true),
            Field::new("batch", DataType::UInt32, false),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("ct", DataType::Float32, true),
        ]);
        let v: Value = serde_json::from_str(&schema_string(&s)).expect("json");
        let types: Vec<&str> = v["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["type"].as_str().expect("type"))
            .collect();
        assert_eq!(types, ["string", "short", "long", "timestamp", "float"]);
        assert_eq!(v["fields"][1]["nullable"], Value::Bool(true));
    }
}
