//! The `pooltrack` command. Everything it does lives in the library; this file only
//! parses arguments, runs the subcommand and turns an error into one message and a
//! documented exit code (README, "Exit codes"):
//!
//! - 0 done (a batch committed, possibly with rejected rows listed; or nothing new);
//!   also when standard output was closed by its reader (`pooltrack … | head`);
//! - 1 batch rejected under `--strict`, or input unreadable;
//! - 2 usage error (bad option, unknown round, no store);
//! - 3 store busy (another writer, also after `--wait`) or damaged;
//! - 4 nothing committed because every new row of the ingest was refused;
//! - 5 more rows refused than `--fail-on-reject` / `--max-rejected N` allow (the valid
//!   rows were committed).

mod cli;

use std::any::Any;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    install_panic_hook();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // Rust ignores SIGPIPE, so a reader that has gone (`| head`) shows up as a
        // write error. Like other Unix tools, stop quietly then: the reader asked for
        // no more, and nothing went wrong that anyone needs to hear about.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
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

/// The process's one panic hook, set once before any other thread exists:
/// - `println!` cannot return a write error, so on a closed pipe it panics instead, and
///   the commands print their summaries with it: such a panic is the same event as a
///   broken-pipe error and ends the process the same way, quietly with exit 0;
/// - a panic of the parquet crate on a damaged input file, on a thread decoding it
///   under the library's guard, is turned into a refusal naming the file: its message
///   would only add noise above that one line;
/// - any other panic is reported as before.
fn install_panic_hook() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_closed_stdout_panic(info.payload()) {
            std::process::exit(0);
        }
        if pooltrack::ingest::table::decoding_guarded() {
            return;
        }
        report(info);
    }));
}

/// Whether a panic is `println!`'s on a closed pipe: "failed printing to stdout: Broken
/// pipe (os error 32)". The error number is matched, not the words, which the C library
/// may translate.
fn is_closed_stdout_panic(payload: &(dyn Any + Send)) -> bool {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    text.is_some_and(|t| {
        t.starts_with("failed printing to stdout:")
            && t.ends_with(&format!("(os error {})", libc::EPIPE))
    })
}

/// Whether `err` comes from writing to a pipe whose reader has closed it.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    is_pipe_error(err.as_ref())
}

/// Whether `e`, or an error it holds, is a closed pipe's. Holding is not always a
/// source: the library wraps I/O errors ([`pooltrack::Error::Io`]), and a csv
/// writer's error turned into an `io::Error` holds the pipe's error only inside the
/// csv error, which names no source.
fn is_pipe_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return true;
        }
        if let Some(inner) = io.get_ref()
            && is_pipe_error(inner)
        {
            return true;
        }
    }
    if let Some(csv) = e.downcast_ref::<csv::Error>()
        && let csv::ErrorKind::Io(io) = csv.kind()
        && is_pipe_error(io)
    {
        return true;
    }
    e.source().is_some_and(is_pipe_error)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::{is_broken_pipe, is_closed_stdout_panic};

    #[test]
    fn a_closed_pipe_is_found_however_deep_it_is_wrapped() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::from(pipe())));
        let wrapped = pooltrack::Error::io("<standard output>", pipe());
        assert!(is_broken_pipe(&anyhow::Error::from(wrapped)));
        // As `io(e.into())` leaves a csv writer's error: an io::Error of kind Other
        // holding the csv error, which holds the pipe's without naming it a source.
        let csv_error = csv::Error::from(pipe());
        let twice = pooltrack::Error::io("<output>", io::Error::other(csv_error));
        assert!(is_broken_pipe(&anyhow::Error::from(twice)));
        let other = pooltrack::Error::io("x.csv", io::Error::from(io::ErrorKind::NotFound));
        assert!(!is_broken_pipe(&anyhow::Error::from(other)));
    }

    #[test]
    fn only_println_on_a_closed_pipe_is_a_quiet_panic() {
        // The message std's print macros panic with, for the error a closed pipe gives.
        let closed = format!(
            "failed printing to stdout: {}",
            io::Error::from_raw_os_error(libc::EPIPE)
        );
        assert!(is_closed_stdout_panic(&closed));
        let full = format!(
            "failed printing to stdout: {}",
            io::Error::from_raw_os_error(libc::ENOSPC)
        );
        assert!(!is_closed_stdout_panic(&full));
        assert!(!is_closed_stdout_panic(&"index out of bounds"));
    }
}
