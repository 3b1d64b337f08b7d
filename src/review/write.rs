//! The review written out: one CSV row per flag with what was found in words, or the
//! whole review as JSON.

use std::io::Write;
use std::path::Path;

use super::{FlagKind, FlagRow, MemberRow, Review};
use crate::report::TubeLine;
use crate::{Error, Result};

impl Review {
    /// One row per flag, kinds in the order above.
    pub fn rows(&self) -> Vec<FlagRow> {
        let mut out = Vec::new();
        for d in &self.discordant_pool {
            let retests: Vec<&str> = d.retests.iter().map(|r| r.tube.tube.as_str()).collect();
            out.push(FlagRow {
                kind: FlagKind::DiscordantPool.as_str(),
                tube: d.pool.tube.clone(),
                persons: join(d.retests.iter().map(|r| r.person.as_str())),
                detail: format!(
                    "pool {}; all {} member(s) retested negative in single tube(s) {}",
                    results_in_words(&d.pool),
                    d.retests.len(),
                    retests.join(", ")
                ),
            });
        }
        for m in &self.missed_by_pooling {
            out.push(FlagRow {
                kind: FlagKind::MissedByPooling.as_str(),
                tube: m.pool.tube.clone(),
                persons: m.person.clone(),
                detail: format!(
                    "pool collected {} {}; single tube {} collected {} {}",
                    m.pool.collected_at,
                    results_in_words(&m.pool),
                    m.single.tube,
                    m.single.collected_at,
                    results_in_words(&m.single)
                ),
            });
        }
        for c in &self.changed_from_positive {
            out.push(FlagRow {
                kind: FlagKind::ChangedFromPositive.as_str(),
                tube: c.tube.tube.clone(),
                persons: join(c.persons.iter().map(String::as_str)),
                detail: format!(
                    "{} tube {}; kept positive",
                    c.tube.mode,
                    results_in_words(&c.tube)
                ),
            });
        }
        for (kind, tubes) in [
            (FlagKind::ConflictingTubeRows, &self.conflicting_tube_rows),
            (FlagKind::SharedSingleTube, &self.shared_single_tube),
        ] {
            for t in tubes {
                let rows: Vec<String> = t.rows.iter().map(stated_in_words).collect();
                let head = match kind {
                    FlagKind::SharedSingleTube => format!(
                        "called single but holds {} persons; read as a pool",
                        t.tube.members
                    ),
                    _ => format!(
                        "rows disagree; the tube is read as a {} of capacity {}",
                        t.tube.mode, t.tube.capacity
                    ),
                };
                out.push(FlagRow {
                    kind: kind.as_str(),
                    tube: t.tube.tube.clone(),
                    persons: join(t.rows.iter().map(|r| r.person.as_str())),
                    detail: format!("{head}: {}", rows.join("; ")),
                });
            }
        }
        out
    }

    /// Writes the flags as CSV (one row per flag) or JSON (grouped by kind, with counts).
    pub fn write(&self, json: bool, out: &mut dyn Write) -> Result<()> {
        let io = |e: std::io::Error| Error::io("<output>", e);
        if json {
            serde_json::to_writer_pretty(&mut *out, self).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
            return Ok(());
        }
        let mut w = csv::Writer::from_writer(out);
        let rows = self.rows();
        if rows.is_empty() {
            w.write_record(["kind", "tube", "persons", "detail"])
                .map_err(|e| io(e.into()))?;
        }
        for r in rows {
            w.serialize(r).map_err(|e| io(e.into()))?;
        }
        w.flush().map_err(io)
    }

    /// Writes to `path`, owner-readable only (person ids), whole or not at all.
    pub fn write_file(&self, json: bool, path: &Path) -> Result<()> {
        crate::store::fsutil::replace_direct(path, |out| self.write(json, out))
    }
}

/// A row's stated metadata and where it came from, for the CSV detail.
fn stated_in_words(r: &MemberRow) -> String {
    let or_none = |s: &str| {
        if s.is_empty() {
            "(none)".to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "{} mode {} capacity {} site {} ({} line {})",
        r.person,
        or_none(&r.mode),
        r.capacity.map_or("(none)".to_owned(), |c| c.to_string()),
        or_none(&r.site),
        r.source,
        r.line
    )
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(";")
}

/// "positive (Ct 28.41/29.07) reported T by LAB plate P, then negative reported ..."
fn results_in_words(t: &TubeLine) -> String {
    if t.results.is_empty() {
        return "no result".to_owned();
    }
    let ct = |c: Option<f32>| c.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    t.results
        .iter()
        .map(|r| {
            format!(
                "{} (Ct {}/{}) reported {} by lab {} plate {}",
                r.result,
                ct(r.ct_orf1ab),
                ct(r.ct_n),
                r.reported_at,
                dash(&r.lab),
                dash(&r.plate)
            )
        })
        .collect::<Vec<_>>()
        .join(", then ")
}
