//! Integration tests: each runs the real `pooltrack` binary on files in testdata/ (or
//! files it writes) with a store in a temporary folder.

mod bad_input;
mod city;
mod common;
mod rules;
mod store_rules;
