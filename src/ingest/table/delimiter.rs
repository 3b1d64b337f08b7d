//! A header that does not name a required column may be fine but split on the wrong
//! character: `tube;person;mode` read with commas is one column. Which delimiter would
//! explain it is worth saying, since that is nearly always the fix.

/// Why column `name` is missing from a CSV `header` read split on the delimiter
/// `asked` (a comma when `None`), as [`Table::delimiter_hint`](super::Table::delimiter_hint)
/// says.
pub(super) fn delimiter_hint(header: &[String], asked: Option<u8>, name: &str) -> Option<String> {
    let used = asked.unwrap_or(b',');
    let line = header.join(&char::from(used).to_string());
    let (delimiter, word, option) = [
        (b',', "comma", "','"),
        (b';', "semicolon", "';'"),
        (b'\t', "tab", "tab"),
        (b'|', "pipe", "'|'"),
    ]
    .into_iter()
    .filter(|&(d, ..)| d != used)
    .find(|&(d, ..)| {
        let mut names = line
            .split(char::from(d))
            .map(|n| n.trim().trim_matches('"').trim());
        // More columns than the delimiter used found, one of them the missing one.
        names.clone().count() > header.len() && names.any(|n| n == name)
    })?;
    // The first names as written, a tab shown as `\t`.
    let sep = match delimiter {
        b'\t' => "\\t".to_owned(),
        d => char::from(d).to_string(),
    };
    let names: Vec<&str> = line.split(char::from(delimiter)).map(str::trim).collect();
    let mut sample = names[..names.len().min(3)].join(&sep);
    if names.len() > 3 {
        sample.push_str(&sep);
        sample.push_str("...");
    }
    let verb = if asked.is_some() { "use" } else { "add" };
    Some(format!(
        "the header looks {word}-separated ({sample}): {verb} --delimiter {option}"
    ))
}

#[cfg(test)]
mod tests {
    use crate::ingest::table::tests::stream;
    use crate::ingest::table::{ReadOptions, Table};

    #[test]
    fn a_header_split_on_another_delimiter_is_named() {
        let t = stream(
            "semi.csv",
            "Tube; Person;mode;collected_at\nT001;p;pool;x\n",
        )
        .expect("open");
        assert_eq!(t.column("tube"), None);
        let hint = t.delimiter_hint("tube").expect("a hint");
        assert_eq!(
            hint,
            "the header looks semicolon-separated (tube;person;mode;...): add --delimiter ';'"
        );
        assert_eq!(
            t.delimiter_hint("site"),
            None,
            "not in the header either way"
        );
        let hint = stream("tab.csv", "tube\tperson\nT001\tp\n")
            .expect("open")
            .delimiter_hint("person");
        assert_eq!(
            hint.as_deref(),
            Some("the header looks tab-separated (tube\\tperson): add --delimiter tab")
        );
        // A comma file read with ';' is told to use ','.
        let comma = "tube,person\nT001,p\n";
        let semi = ReadOptions {
            delimiter: Some(b';'),
            ..ReadOptions::default()
        };
        let hint = Table::from_reader("comma.csv", comma.as_bytes(), &semi)
            .expect("open")
            .delimiter_hint("tube");
        assert_eq!(
            hint.as_deref(),
            Some("the header looks comma-separated (tube,person): use --delimiter ','")
        );
        let t = stream("comma.csv", comma).expect("open");
        assert_eq!(t.delimiter_hint("site"), None);
        // A ';' inside a comma-separated header that splits into no more columns is
        // not taken for the delimiter.
        let t = stream("comma.csv", "tube,remark;person\nT001,p\n").expect("open");
        assert_eq!(t.delimiter_hint("person"), None);
    }
}
