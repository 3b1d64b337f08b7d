//! `pooltrack key new KEY_FILE`: a new secret for `--pseudonymize`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use pooltrack::Error;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Make a new pseudonym key: 32 random bytes from the operating system, written as
    /// 64 hex digits to a new file readable by its owner only (0600).
    #[command(after_help = "\
Keep the key like a password and back it up: the same key gives the same pseudonyms, so
files made months apart can be joined; a lost key cannot be made again. An existing file
is never overwritten (a new key would change every pseudonym).")]
    New {
        /// The key file to create.
        #[arg(value_name = "KEY_FILE")]
        path: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Args::New { path } = args;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| anyhow::anyhow!("the operating system gave no random bytes: {e}"))?;
    let mut text = String::with_capacity(65);
    for b in secret {
        text.push_str(&format!("{b:02x}"));
    }
    text.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Usage(format!(
                    "{} exists already; a key is never overwritten (its pseudonyms would all \
                     change): choose another name, or remove the old key yourself",
                    path.display()
                ))
            } else {
                Error::io(&path, e)
            }
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&path, e))?;
    eprintln!(
        "wrote a new pseudonym key to {} (0600); keep it like a password and back it up",
        path.display()
    );
    Ok(())
}
