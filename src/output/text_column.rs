//! An Arrow text column whose cells are written in place, for exports of millions of
//! rows: a cell is formatted straight into the column's bytes (a time, a citation, an
//! id), where filling a row of strings and copying each into a `StringBuilder` wrote
//! every byte twice.

use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray};
use arrow_buffer::{Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::ArrowError;

use crate::Result;

/// Cells of text, blank ones null when the column is nullable.
///
/// ```
/// use arrow_array::{Array, StringArray};
/// use pooltrack::output::text_column::TextColumn;
///
/// let mut c = TextColumn::new(3, 8, true);
/// c.push("a");
/// c.cell().extend_from_slice(b"b,c");
/// c.end();
/// c.end(); // nothing written: a null
/// let a = c.finish()?;
/// let a = a.as_any().downcast_ref::<StringArray>().expect("text");
/// assert_eq!((a.value(0), a.value(1), a.is_null(2)), ("a", "b,c", true));
/// # Ok::<(), pooltrack::Error>(())
/// ```
pub struct TextColumn {
    offsets: Vec<i32>,
    values: Vec<u8>,
    nulls: NullBufferBuilder,
    /// Whether a blank cell is null (else the empty text).
    blank_is_null: bool,
    /// A cell ended past `i32::MAX` bytes: [`TextColumn::finish`] refuses the column.
    overflow: bool,
}

impl TextColumn {
    /// A column with room for `rows` cells of about `bytes` each.
    pub fn new(rows: usize, bytes: usize, blank_is_null: bool) -> TextColumn {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        TextColumn {
            offsets,
            values: Vec::with_capacity(rows.saturating_mul(bytes)),
            nulls: NullBufferBuilder::new(rows),
            blank_is_null,
            overflow: false,
        }
    }

    /// The column's bytes, to append the open cell's text to; [`TextColumn::end`] closes
    /// the cell. Only UTF-8 text may be appended ([`TextColumn::finish`] checks).
    pub fn cell(&mut self) -> &mut Vec<u8> {
        &mut self.values
    }

    /// Closes the cell written since the last one closed.
    pub fn end(&mut self) {
        let start = self.offsets.last().copied().unwrap_or(0);
        let end = i32::try_from(self.values.len()).unwrap_or_else(|_| {
            self.overflow = true;
            start
        });
        if self.blank_is_null && end == start {
            self.nulls.append_null();
        } else {
            self.nulls.append_non_null();
        }
        self.offsets.push(end);
    }

    /// A whole cell.
    pub fn push(&mut self, text: &str) {
        self.values.extend_from_slice(text.as_bytes());
        self.end();
    }

    /// The column as an Arrow array; an error when its bytes are not UTF-8 or pass
    /// what 32-bit offsets address.
    pub fn finish(mut self) -> Result<ArrayRef> {
        if self.overflow {
            return Err(ArrowError::ComputeError(
                "an export's text column passed 2 GiB in one batch".into(),
            )
            .into());
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let array =
            StringArray::try_new(offsets, Buffer::from_vec(self.values), self.nulls.finish())?;
        Ok(Arc::new(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn blank_cells_are_null_only_where_the_column_says_so() {
        for blank_is_null in [false, true] {
            let mut c = TextColumn::new(0, 0, blank_is_null);
            c.push("");
            c.push("北京");
            c.end();
            let a = c.finish().expect("text");
            let a = a.as_any().downcast_ref::<StringArray>().expect("text");
            assert_eq!(a.len(), 3);
            assert_eq!(a.value(1), "北京");
            assert_eq!((a.is_null(0), a.is_null(2)), (blank_is_null, blank_is_null));
            assert!(a.is_valid(1));
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused() {
        let mut c = TextColumn::new(1, 1, false);
        c.cell().push(0xff);
        c.end();
        assert!(c.finish().is_err());
    }
}
