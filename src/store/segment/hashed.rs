//! The writer every segment file goes through, counting and hashing what it writes so
//! the manifest can name the file with its size and checksum.

use std::io::{self, Write};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use crate::store::fsutil;
use crate::store::manifest::FileRef;
use crate::{Error, Result};

/// A writer that counts and hashes what passes through it, into a file written past
/// the page cache where the file system allows it ([`fsutil::DirectWriter`]).
pub(super) struct HashingWriter {
    file: fsutil::DirectWriter,
    hasher: Xxh3,
    bytes: u64,
}

impl Write for HashingWriter {
    // Called from the Parquet and index writers' generic code, which is instantiated in
    // sibling modules and so possibly in another codegen unit: kept inlinable there, as
    // it was when the writers shared one file.
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl HashingWriter {
    pub(super) fn create(path: &Path) -> Result<Self> {
        Ok(HashingWriter {
            file: fsutil::DirectWriter::create(path)?,
            hasher: Xxh3::new(),
            bytes: 0,
        })
    }

    /// Flushes to disk and describes the file for the manifest.
    pub(super) fn finish(self, root: &Path, path: &Path) -> Result<FileRef> {
        self.file.finish().map_err(|e| Error::io(path, e))?;
        let rel = path.strip_prefix(root).unwrap_or(path);
        Ok(FileRef {
            path: rel.to_string_lossy().into_owned(),
            bytes: self.bytes,
            xxh3: format!("{:016x}", self.hasher.digest()),
        })
    }
}
