//! The `pooltrack` command. Everything it does lives in the library; this file only
//! parses arguments, runs the subcommand and turns an error into one message and a
//! documented exit code (0 ok, 1 rejected or unreadable input, 2 usage, 3 store busy or
//! damaged).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let args = cli::Cli::parse();
    let result = cli::run(args);
    cli::bench::report_peak_memory();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err
                .downcast_ref::<pooltrack::Error>()
                .map_or(1, pooltrack::Error::exit_code);
            eprintln!("pooltrack: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
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
