//! Reading text cells out of Arrow string columns.
//!
//! Lists, reports and the plate QC all print cells of the store's text columns, where
//! an optional field (site, lab, plate) is stored as a null; they print it as an empty
//! cell, so one helper decides that once, below the tracker and every list.

use arrow_array::{Array, StringArray};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` to `out` as lower-case hex digits, two a byte (so hex text sorts as
/// its bytes do).
///
/// ```
/// let mut out = String::from("id ");
/// pooltrack::text::push_hex(&mut out, &[0x0f, 0xa0]);
/// assert_eq!(out, "id 0fa0");
/// ```
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// The text of row `i` of `a`: `""` for a null, and for a row past the end, so a caller
/// that has checked its columns' lengths need not check each cell again.
///
/// ```
/// use arrow_array::StringArray;
/// use pooltrack::text::text_at;
/// let site = StringArray::from(vec![Some("S1"), None]);
/// assert_eq!(text_at(&site, 0), "S1");
/// assert_eq!(text_at(&site, 1), "");
/// assert_eq!(text_at(&site, 2), "");
/// ```
pub fn text_at(a: &StringArray, i: usize) -> &str {
    if i < a.len() && a.is_valid(i) {
        a.value(i)
    } else {
        ""
    }
}
