//! The library's progress, drawn as a bar on the terminal.

use indicatif::{ProgressBar, ProgressStyle};
use pooltrack::progress::Progress;

/// A bar on stderr (hidden when stderr is not a terminal) showing a job's progress.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar of `len` units, counted in the template's `unit` (`bytes`, `pos`).
    pub fn new(len: u64, unit: &str) -> Bar {
        let pb = ProgressBar::new(len);
        // indicatif names the total of a count `len` and of bytes `total_bytes`.
        let total = if unit == "bytes" {
            "total_bytes"
        } else {
            "len"
        };
        let template = format!("{{spinner}} {{msg}} [{{bar:30}}] {{{unit}}}/{{{total}}} ({{eta}})");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            pb.set_style(style.progress_chars("=> "));
        }
        Bar(pb)
    }

    /// Takes the bar off the terminal once the job is over, whatever its outcome.
    pub fn finish_and_clear(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn total(&self, units: u64) {
        self.0.set_length(units);
    }

    fn stage(&self, what: &str) {
        self.0.set_message(what.to_owned());
    }

    fn advance(&self, units: u64) {
        self.0.inc(units);
    }
}
