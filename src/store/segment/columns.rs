//! Arrow columns built from a batch's rows: dictionaries of the few values a column
//! takes, the stated mode and capacity with their nulls, text gathered in segment order.

use std::sync::Arc;

use arrow_array::types::{ArrowDictionaryKeyType, UInt8Type};
use arrow_array::{
    ArrayRef, DictionaryArray, PrimitiveArray, StringArray, UInt8Array, UInt32Array,
};
use rayon::prelude::*;

use crate::Result;
use crate::column::StrColumn;
use crate::model::Mode;
use crate::rows::Sources;

/// The mode each row states, as keys into `modes`; null where the row stated none.
/// Without a null the column has no validity buffer, as format-1 segments had.
pub(super) fn stated_modes(
    modes: impl Iterator<Item = Option<Mode>>,
    len: usize,
    values: &[&str],
) -> Result<ArrayRef> {
    let mut keys = Vec::with_capacity(len);
    let mut valid = Vec::with_capacity(len);
    for m in modes {
        keys.push(m.map_or(0, Mode::code));
        valid.push(m.is_some());
    }
    let nulls = valid
        .contains(&false)
        .then(|| arrow_buffer::NullBuffer::from(valid));
    let keys = PrimitiveArray::<UInt8Type>::new(keys.into(), nulls);
    let values = Arc::new(StringArray::from_iter_values(values.iter()));
    Ok(Arc::new(DictionaryArray::<UInt8Type>::try_new(
        keys, values,
    )?))
}

/// The capacity each row states; null where it stated none (stored as 0 in the rows).
pub(super) fn stated_capacities(caps: impl Iterator<Item = u8>, len: usize) -> UInt8Array {
    let mut values = Vec::with_capacity(len);
    let mut valid = Vec::with_capacity(len);
    for c in caps {
        values.push(c);
        valid.push(c != 0);
    }
    let nulls = valid
        .contains(&false)
        .then(|| arrow_buffer::NullBuffer::from(valid));
    UInt8Array::new(values.into(), nulls)
}

/// A column of `keys` into `values`, as a dictionary array.
pub(super) fn dictionary<K: ArrowDictionaryKeyType>(
    keys: Vec<K::Native>,
    values: &[&str],
) -> Result<ArrayRef> {
    let keys = PrimitiveArray::<K>::new(keys.into(), None);
    let values = Arc::new(StringArray::from_iter_values(values.iter()));
    Ok(Arc::new(DictionaryArray::<K>::try_new(keys, values)?))
}

/// One batch number for every row: one-byte keys, not 100 MB of copies at 25 M rows.
pub(super) fn batch_column(batch: u32, n: usize) -> Result<ArrayRef> {
    Ok(Arc::new(DictionaryArray::<UInt8Type>::try_new(
        PrimitiveArray::new(vec![0; n].into(), None),
        Arc::new(UInt32Array::from_value(batch, 1)),
    )?))
}

/// The source file of each row in `order`, as keys into `files` (at most 65,536 files
/// a batch: more is refused before any file is read).
pub(super) fn source_keys(sources: &Sources, order: &[u32]) -> Vec<u16> {
    order
        .par_iter()
        .map(|&i| sources.file(i as usize))
        .collect()
}

pub(super) fn take(col: &StrColumn, order: &[u32]) -> StringArray {
    col.gather(order).into_arrow()
}
