//! Integration tests: each runs the real `pooltrack` binary on files in testdata/ (or
//! files it writes) with a store in a temporary folder.

mod advisor;
mod bad_input;
mod bench;
mod bench_gen;
mod city;
mod clerk;
mod common;
mod concurrency;
mod coverage;
mod crash;
mod damage;
mod delta;
mod dilution;
mod edges;
mod encoding;
mod excel;
mod health_codes;
mod health_codes_rounds;
mod hostile;
mod incidents;
mod layout;
mod migrate;
mod model;
mod pipe;
mod plan;
mod plate_qc;
mod prevalence;
mod real_files;
mod retract;
mod review;
mod round_report;
mod rules;
mod security;
mod sql;
mod store_rules;
