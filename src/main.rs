//! The `pooltrack` command. Everything it does lives in the library; this file only
//! parses arguments, runs the subcommand and turns an error into one message and a
//! documented exit code (README, "Exit codes"):
//!
//! - 0 done (a batch committed, possibly with rejected rows listed; or nothing new);
//! - 1 batch rejected under `--strict`, or input unreadable;
//! - 2 usage error (bad option, unknown round, no store);
//! - 3 store busy (another writer, also after `--wait`) or damaged;
//! - 4 nothing committed because every new row of the ingest was refused;
//! - 5 more rows refused than `--fail-on-reject` / `--max-rejected N` allow (the valid
//!   rows were committed).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let args = cli::Cli::parse();
    let result = cli::run(args);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err
                .downcast_ref::<pooltrack::Error>()
                .map_or(1, pooltrack::Error::exit_code);
            // Each message once: an error such as "FILE: No such file or directory"
            // already holds its source's text, so a cause is shown only when it adds
            // something not yet said.
            let mut said = err.to_string();
            eprintln!("pooltrack: error: {said}");
            for cause in err.chain().skip(1) {
                let text = cause.to_string();
                if !said.contains(&text) {
                    eprintln!("  caused by: {text}");
                    said.push('\n');
                    said.push_str(&text);
                }
            }
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

/// Rust ignores SIGPIPE, so `pooltrack worklist ... | head` would panic on the closed
/// pipe. Like other Unix tools, pooltrack should simply stop when its reader has gone.
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any other thread exists; setting a
    // signal's disposition to its default is async-signal-safe and touches no Rust state.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
