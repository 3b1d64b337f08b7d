//! Synthetic city rounds (the generator lands here).
