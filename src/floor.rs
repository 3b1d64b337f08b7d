//! The floor under every parse of a CSV file: splitting bytes already in memory into
//! rows and fields, and nothing else.
//!
//! `pooltrack bench` times this on the generated inputs and states every step as a
//! multiple of it, so a figure says how far a step is from the least any reader of
//! those files must do. It is a lower bound, not a parser: it finds each field's end
//! (every delimiter and every `\n`) with one `memchr2` search over a whole block,
//! never restarted per line, on all cores, and counts them. Quoted fields (a
//! delimiter or a line end inside quotes), `\r\n`, a header, and blank lines are not
//! its business: a `\r` stays in the last field, a quoted comma counts as a field end
//! and a blank line as a row of one empty field. No reader that handles those, checks
//! values or keeps them can be faster on the same bytes, which is all a floor claims.
//!
//! ```
//! use pooltrack::floor::{Counts, split};
//! let csv = b"tube,person\nT1,P1\nT2,P2\n";
//! assert_eq!(split(csv, b','), Counts { bytes: 24, rows: 3, fields: 6 });
//! ```

use rayon::prelude::*;

/// Bytes per piece of parallel work: large enough that starting a piece costs nothing
/// next to searching it, small enough that both cores get many and finish together.
const PIECE: usize = 4 << 20;

/// What the floor found in some bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Bytes searched.
    pub bytes: u64,
    /// Rows: lines, a header included, and a last line without its `\n`.
    pub rows: u64,
    /// Fields: the delimiters and line ends found, plus the last line's last field.
    pub fields: u64,
}

impl Counts {
    fn add(self, o: Counts) -> Counts {
        Counts {
            bytes: self.bytes + o.bytes,
            rows: self.rows + o.rows,
            fields: self.fields + o.fields,
        }
    }
}

/// Counts the rows and fields of `block` on the calling thread: one `memchr2` pass
/// over the whole block for `delimiter` and `\n`.
pub fn split_block(block: &[u8], delimiter: u8) -> Counts {
    let mut rows = 0u64;
    let mut ends = 0u64;
    for at in memchr::memchr2_iter(delimiter, b'\n', block) {
        ends += 1;
        rows += u64::from(block.get(at) == Some(&b'\n'));
    }
    // A last line without its `\n` is a row, and its last field has no end mark.
    let open = u64::from(block.last().is_some_and(|&b| b != b'\n'));
    Counts {
        bytes: u64::try_from(block.len()).unwrap_or(u64::MAX),
        rows: rows + open,
        fields: ends + open,
    }
}

/// Counts the rows and fields of `data` on all of rayon's threads: the bytes are cut
/// into pieces of about 4 MiB, each cut moved to just after a `\n` so that no row is
/// split, and each piece is searched by [`split_block`].
pub fn split(data: &[u8], delimiter: u8) -> Counts {
    pieces(data)
        .par_iter()
        .map(|piece| split_block(piece, delimiter))
        .reduce(Counts::default, Counts::add)
}

/// `data` cut into whole lines of about [`PIECE`] bytes (the last may lack its `\n`).
fn pieces(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(data.len() / PIECE + 1);
    let mut rest = data;
    while rest.len() > PIECE {
        let cut = memchr::memchr(b'\n', &rest[PIECE..]).map_or(rest.len(), |nl| PIECE + nl + 1);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_fields_of_a_small_file() {
        let csv = b"tube,person,mode\nPL1,P1,pool\nPL1,P2,pool\nSG1,P3,single\n";
        let c = split_block(csv, b',');
        assert_eq!(
            c,
            Counts {
                bytes: 55,
                rows: 4,
                fields: 12
            }
        );
        assert_eq!(split(csv, b','), c);
        // Empty fields count; a missing last `\n` still ends the row.
        assert_eq!(
            split_block(b"a,,c\n,,\nx,y", b','),
            Counts {
                bytes: 11,
                rows: 3,
                fields: 8
            }
        );
        assert_eq!(split_block(b"", b','), Counts::default());
        assert_eq!(split_block(b"a;b,c\n", b';').fields, 2);
    }

    #[test]
    fn a_lower_bound_not_a_parser() {
        // The quoted comma and the blank line count as a parser would not.
        let c = split_block(b"\"a,b\",c\n\n", b',');
        assert_eq!((c.rows, c.fields), (2, 4));
    }

    #[test]
    fn pieces_end_at_line_ends_and_all_cores_agree_with_one() {
        let mut csv = Vec::new();
        let mut i = 0u64;
        while csv.len() < 3 * PIECE + 12_345 {
            csv.extend_from_slice(format!("T{i},31{i:016},pool,10,,S{}\n", i % 7).as_bytes());
            i += 1;
        }
        csv.extend_from_slice(b"last,row");
        let parts = pieces(&csv);
        assert!(parts.len() >= 4, "{}", parts.len());
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), csv.len());
        for p in &parts[..parts.len() - 1] {
            assert_eq!(p.last(), Some(&b'\n'));
        }
        let all = split(&csv, b',');
        assert_eq!(all, split_block(&csv, b','));
        assert_eq!(all.rows, i + 1);
        assert_eq!(all.fields, 6 * i + 2);
    }
}
