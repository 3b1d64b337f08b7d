//! File-system steps the store's durability rests on: owner-only files and folders,
//! fsync of files and of the folders that name them, and atomic replacement.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Creates `dir` and its parents, readable by the owner only (person ids are personal data).
pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Creates (or truncates) a file readable and writable by the owner only.
pub fn create_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Flushes a folder's entries to disk, so a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename,
/// fsync of the folder. A crash leaves the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut f = create_file(&tmp)?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(dir)
}

/// Writes an output file (a list, an export, a report) whole or not at all: `write`
/// fills a private temporary file beside `path`, which is then renamed into place; on
/// any error the temporary file is removed and `path` is left as it was.
pub fn replace_with(path: &Path, write: impl FnOnce(File) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("pooltrack-tmp");
    let file = create_file(&tmp)?;
    let res = write(file).and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Reads `path` front to back in 1 MiB blocks, handing each to `f`; returns the bytes
/// read. For hashing and counting files of any size in constant memory.
pub fn for_each_block(path: &Path, mut f: impl FnMut(&[u8])) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(bytes);
        }
        f(&buf[..n]);
        bytes += n as u64;
    }
}
