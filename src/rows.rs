//! What a batch is: its rows, column by column, as read from the input files.
//!
//! The readers in [`crate::ingest`] fill these; the writers in [`crate::store`] write
//! them into segments. Neither depends on the other: both depend on these types.

use crate::column::{LabelColumn, StrColumn};
use crate::model::{Mode, Outcome, SampleType};
use crate::time::Millis;

/// Valid collection rows of one batch, column by column.
#[derive(Debug, Default)]
pub struct CollectionRows {
    /// Tube barcodes.
    pub tube: StrColumn,
    /// Person ids.
    pub person: StrColumn,
    /// Tube modes as the rows state them (`None`: blank or unreadable).
    pub mode: Vec<Option<Mode>>,
    /// Persons the tube may hold as the rows state it; 0 = not stated.
    pub capacity: Vec<u8>,
    /// When the person was swabbed.
    pub collected_at: Vec<Millis>,
    /// Sampling site, if given.
    pub site: LabelColumn,
    /// The box the tube travels in, if given: empty (no row) when no file of the batch
    /// has a `box` column, else one value per row (missing: blank, unreadable, or a
    /// file without the column).
    pub box_id: LabelColumn,
    /// Which input file of the batch (index into the batch's file list).
    pub file: Vec<u16>,
    /// Line in that file.
    pub line: Vec<u32>,
}

impl CollectionRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.mode.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.mode.is_empty()
    }
}

/// Valid result rows of one batch, column by column.
#[derive(Debug, Default)]
pub struct ResultRows {
    /// Tube barcodes.
    pub tube: StrColumn,
    /// The outcome, as reported or as read from the Ct values.
    pub outcome: Vec<Outcome>,
    /// Whether the outcome was read from Ct values (the row had no `result`).
    pub from_ct: Vec<bool>,
    /// Ct of the `ORF1ab` target; `None` = no amplification.
    pub ct_orf1ab: Vec<Option<f32>>,
    /// Ct of the N target; `None` = no amplification.
    pub ct_n: Vec<Option<f32>>,
    /// When the lab reported the result.
    pub reported_at: Vec<Millis>,
    /// Lab, if given.
    pub lab: StrColumn,
    /// Plate, if given.
    pub plate: StrColumn,
    /// Well, if given.
    pub well: StrColumn,
    /// Sample or control.
    pub sample_type: Vec<SampleType>,
    /// Ct of the internal control; `None` = no signal or no column.
    pub ct_ic: Vec<Option<f32>>,
    /// When the lab received the tube, if given.
    pub received_at: Vec<Option<Millis>>,
    /// Which input file of the batch.
    pub file: Vec<u16>,
    /// Line in that file.
    pub line: Vec<u32>,
}

impl ResultRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.outcome.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.outcome.is_empty()
    }
}

/// Valid population rows of one batch, column by column, in input order.
#[derive(Debug, Default)]
pub struct PopulationRows {
    /// Person ids.
    pub person: StrColumn,
    /// District, if given.
    pub district: StrColumn,
    /// Community (residential compound, village), if given.
    pub community: StrColumn,
    /// Key group, if given.
    pub group: StrColumn,
    /// Which input file of the batch.
    pub file: Vec<u16>,
    /// Line in that file.
    pub line: Vec<u32>,
}

impl PopulationRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.line.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }
}
