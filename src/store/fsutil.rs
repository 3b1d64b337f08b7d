//! File-system steps the store's durability rests on: owner-only files and folders,
//! fsync of files and of the folders that name them, and atomic replacement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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

/// Alignment and size unit of direct writes: a multiple of any disk's logical block.
const BLOCK: usize = 4096;

/// Bytes gathered before each direct write.
const DIRECT_BUFFER: usize = 4 << 20;

/// A new file written past the page cache (`O_DIRECT`) in block-aligned pieces, where
/// the file system allows it, and through it (an ordinary file) where it does not.
///
/// Why: a segment's files (820 MB at 25 M rows) are written once and fsynced; copying
/// them into the page cache first cost 1.3 s of CPU, 9 % of the ingest (in a virtual
/// machine each new cache page is also a fault in the host), while the disk took the
/// same bytes either way. Readers map the files later and read them from disk.
/// [`DirectWriter::finish`] writes the last, partial block padded with zeros, cuts the
/// file to its length and fsyncs it.
pub(crate) struct DirectWriter {
    out: Out,
    buf: Aligned,
}

/// Where the blocks go.
struct Out {
    file: File,
    path: PathBuf,
    direct: bool,
    /// A file that is not a regular file (a device, a named pipe): written in order,
    /// never at an offset, cut or synced.
    stream: bool,
    /// Bytes written so far.
    at: u64,
}

impl Out {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.stream {
            self.file.write_all(bytes)?;
            self.at += bytes.len() as u64;
            return Ok(());
        }
        if let Err(e) = self.file.write_all_at(bytes, self.at) {
            if !(self.direct && e.raw_os_error() == Some(libc::EINVAL)) {
                return Err(e);
            }
            // Some file systems accept the flag, then refuse the write: go on through
            // the page cache, rewriting this piece whole.
            self.file = OpenOptions::new().write(true).open(&self.path)?;
            self.direct = false;
            self.file.write_all_at(bytes, self.at)?;
        }
        self.at += bytes.len() as u64;
        Ok(())
    }
}

/// A block-aligned buffer inside an ordinary `Vec` (its start chosen so).
struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(size: usize) -> Aligned {
        let buf = vec![0u8; size + BLOCK];
        let start = buf.as_ptr().align_offset(BLOCK).min(BLOCK);
        Aligned { buf, start, len: 0 }
    }

    fn capacity(&self) -> usize {
        self.buf.len().saturating_sub(BLOCK)
    }

    /// Copies in as much of `data` as fits; returns how much.
    fn fill(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.capacity() - self.len);
        let at = self.start + self.len;
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// The bytes held, zero-padded to whole blocks.
    fn padded(&mut self) -> &[u8] {
        let whole = self.len.div_ceil(BLOCK) * BLOCK;
        self.buf[self.start + self.len..self.start + whole].fill(0);
        &self.buf[self.start..self.start + whole]
    }
}

impl DirectWriter {
    /// Creates (or truncates) `path`, owner-only as [`create_file`] does.
    pub fn create(path: &Path) -> Result<DirectWriter> {
        Self::create_with(path, true)
    }

    fn create_with(path: &Path, direct: bool) -> Result<DirectWriter> {
        let opened = direct
            .then(|| {
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .custom_flags(libc::O_DIRECT)
                    .open(path)
                    .ok()
            })
            .flatten();
        // File systems without direct I/O refuse the flag when opening (EINVAL).
        let (file, direct) = match opened {
            Some(f) => (f, true),
            None => (create_file(path)?, false),
        };
        Ok(DirectWriter {
            out: Out {
                file,
                path: path.to_path_buf(),
                direct,
                stream: false,
                at: 0,
            },
            buf: Aligned::new(if direct { DIRECT_BUFFER } else { 0 }),
        })
    }

    /// Opens `path`, an existing file that is not a regular file (`/dev/null`,
    /// `/dev/stdout`, a named pipe), to write into in order.
    fn stream(path: &Path) -> Result<DirectWriter> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(DirectWriter {
            out: Out {
                file,
                path: path.to_path_buf(),
                direct: false,
                stream: true,
                at: 0,
            },
            buf: Aligned::new(0),
        })
    }

    /// Writes what is left, cuts the file to the bytes written and fsyncs it.
    pub fn finish(mut self) -> io::Result<File> {
        let len = self.out.at + self.buf.len as u64;
        if self.out.stream {
            return Ok(self.out.file);
        }
        if self.buf.len > 0 {
            self.out.write_all(self.buf.padded())?;
        }
        self.out.file.set_len(len)?;
        self.out.file.sync_all()?;
        Ok(self.out.file)
    }
}

impl Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.out.direct {
            self.out.write_all(data)?;
            return Ok(data.len());
        }
        let n = self.buf.fill(data);
        if self.buf.len == self.buf.capacity() {
            self.out.write_all(self.buf.padded())?;
            self.buf.len = 0;
        }
        Ok(n)
    }

    /// Nothing to do: a partial block is written by [`DirectWriter::finish`] only.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Flushes a folder's entries to disk, so a file created or renamed in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
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

/// Saves derived data (`name` at the store's `root`: the stat cache, the log snapshot),
/// best effort: such a file only saves work, so a store that cannot be written to, or a
/// failed write, leaves the old one (or none) in place and says nothing. A temporary
/// name of this process's own keeps two commands that save at once from writing into
/// the same file; the rename makes the new one appear whole.
pub(crate) fn save_derived(root: &Path, name: &str, bytes: &[u8]) {
    let tmp = root.join(format!("{name}.{}.tmp", std::process::id()));
    let written = create_file(&tmp)
        .ok()
        .is_some_and(|mut f| std::io::Write::write_all(&mut f, bytes).is_ok());
    if !written || fs::rename(&tmp, root.join(name)).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Writes an output file (a list, an export, a review) whole or not at all: `write`
/// fills a private temporary file beside `path`, front to back and past the page cache
/// ([`DirectWriter`]: a city's export is gigabytes, and copying them into the page cache
/// cost more than making them on this project's virtual machine); it is fsynced and
/// renamed into place. On any error the temporary file is removed and `path` is left as
/// it was.
///
/// A `path` that exists and is not a regular file (`/dev/null`, `/dev/stdout`, a named
/// pipe) is written into as it is: renaming a file over it would have replaced the
/// device with a file.
pub(crate) fn replace_direct(
    path: &Path,
    write: impl FnOnce(&mut DirectWriter) -> Result<()>,
) -> Result<()> {
    if fs::metadata(path).is_ok_and(|m| !m.file_type().is_file() && !m.is_dir()) {
        let mut w = DirectWriter::stream(path)?;
        write(&mut w)?;
        w.finish().map_err(|e| Error::io(path, e))?;
        return Ok(());
    }
    let tmp = path.with_extension("pooltrack-tmp");
    let res = DirectWriter::create(&tmp)
        .and_then(|mut w| {
            write(&mut w)?;
            w.finish().map_err(|e| Error::io(&tmp, e))?;
            Ok(())
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn direct_and_buffered_files_hold_exactly_what_was_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let sizes = [
            0,
            1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            DIRECT_BUFFER,
            DIRECT_BUFFER + 5,
            2 * DIRECT_BUFFER + BLOCK + 7,
        ];
        for direct in [true, false] {
            for (k, &size) in sizes.iter().enumerate() {
                let data: Vec<u8> = (0..size)
                    .map(|i| u8::try_from((i * 7 + i / 4099) % 251).expect("below 251"))
                    .collect();
                let path = dir.path().join(format!("f{k}-{direct}"));
                let mut w = DirectWriter::create_with(&path, direct).expect("create");
                // Pieces of uneven sizes, as a Parquet or index writer hands them over.
                let mut rest = &data[..];
                let mut piece = 1000;
                while !rest.is_empty() {
                    let n = piece.min(rest.len());
                    w.write_all(&rest[..n]).expect("write");
                    rest = &rest[n..];
                    piece = piece * 3 + 1;
                }
                w.finish().expect("finish");
                let back = fs::read(&path).expect("read");
                assert_eq!(back.len(), size, "size {size}, direct {direct}");
                assert!(back == data, "content of size {size}, direct {direct}");
                let mode = fs::metadata(&path).expect("meta").permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
    }
}
