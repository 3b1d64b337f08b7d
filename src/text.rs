//! Reading text cells out of Arrow string columns.
//!
//! Lists, reports and the plate QC all print cells of the store's text columns, where
//! an optional field (site, lab, plate) is stored as a null; they print it as an empty
//! cell, so one helper decides that once, below the tracker and every list.

use arrow_array::{Array, StringArray};

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
