//! The module layout: imports among `src/` modules point one way, down the data flow.
//!
//! Each top-level module of the library sits in a layer; a module may name only modules
//! of lower layers. This test reads the sources (not the compiled crate), so it also
//! catches an import added inside a function. `cargo test --test cli layout` runs it;
//! on failure it prints every edge that points up, with the file that makes it.
//!
//! Tests (`#[cfg(test)]` modules) and doc comments are left out: a doc link to a higher
//! module explains, it does not depend. The CLI (`src/cli/`, `src/main.rs`) sits above
//! everything and may name anything.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first. The README's "Layout of the code" draws the same order.
const LAYERS: &[&[&str]] = &[
    // Leaves: no crate imports.
    &["reasons", "fasthash", "html", "text", "progress", "floor"],
    &["error"],
    // The key a person is indexed by, of their id's text or code.
    &["person_key"],
    // Vocabulary: times, ids and codes, compact columns.
    &["time", "model", "column"],
    // What a batch is.
    &["rows"],
    // Segments, indexes and the manifest: written and read back.
    &["store"],
    // Files into rows into the store; the synthetic city beside it.
    &["ingest", "synth"],
    // Statuses.
    &["tracker"],
    // CSV, JSON and Parquet writers for any list.
    &["output"],
    // Every person of a round, in order, for the exports that print them all.
    &["roster", "dilution"],
    // The lists, exports and reports, and the planner beside them.
    &["worklist", "coverage", "planner"],
    &[
        "health_code",
        "report",
        "turnaround",
        "privacy",
        "prevalence",
        "custody",
    ],
    &["review"],
    // The lab audit counts the review's discordant pools.
    &["audit"],
    &["round_report"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file belongs to (`src/store/read.rs` → `store`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments, string literals and its test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"'\"'") {
            i += 3;
        } else if b[i..].starts_with(b"'\\\"'") {
            i += 4;
        } else if b[i..].starts_with(b"r#\"") {
            let end = text[i + 3..].find("\"#").map_or(b.len(), |j| i + 3 + j + 2);
            i = end;
        } else if b[i] == b'"' {
            // Skip a string literal (escapes included) so that text in messages,
            // such as "crate::", is not read as an import.
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            out.push(char::from(b[i]));
            i += 1;
        }
    }
    out
}

/// The top-level modules that `code` names through `crate::`, alone or in a group
/// (`use crate::{store::Store, time}`).
fn named_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split at depth-0 commas.
            let mut depth = 0usize;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.push(first_ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(first_ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(first_ident(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m.starts_with(|c: char| c.is_ascii_lowercase()));
    found
}

fn first_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut unknown = BTreeMap::new();
    let mut upward = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "cli" || module == "main" || module == "lib" {
            continue;
        }
        let Some(from) = layer_of(&module) else {
            unknown.insert(module, file.display().to_string());
            continue;
        };
        let code = code_of(&fs::read_to_string(file).expect("read a source file"));
        for named in named_modules(&code) {
            if named == module {
                continue;
            }
            match layer_of(&named) {
                Some(to) if to < from => {}
                Some(_) => upward.push(format!(
                    "{} ({module}) imports {named}",
                    file.strip_prefix(&src).expect("under src").display()
                )),
                None => {
                    unknown.insert(named, file.display().to_string());
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from LAYERS in tests/cli/layout.rs: {unknown:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that point up or sideways:\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn the_reader_finds_grouped_and_nested_imports() {
    let code = code_of(
        "use crate::{store::{Store, read}, time::Millis};\n\
         // use crate::worklist;\n\
         let x = \"crate::report\";\n\
         let q = '\"'; let r = r#\"crate::html\"#;\n\
         fn f() { crate::model::check(); }\n\
         #[cfg(test)]\nmod tests { use crate::review; }",
    );
    assert_eq!(named_modules(&code), ["store", "time", "model"]);
}
