//! Raw disk images (and raw EBS snapshot dumps): the file's bytes are the disk's bytes.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::{check_range, BlockSource};

/// A raw image file opened read-only; positional reads only, so it is shared freely.
#[derive(Debug)]
pub struct RawImage {
    file: File,
    len: u64,
    allocated: u64,
}

impl RawImage {
    /// Opens `path` with O_RDONLY: amiscan never writes to an image.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        Ok(Self {
            file,
            len: meta.len(),
            allocated: meta.blocks().saturating_mul(512),
        })
    }

    /// Bytes the file occupies on the host filesystem; less than `len` for a sparse file.
    pub fn allocated_size(&self) -> Option<u64> {
        Some(self.allocated)
    }
}

impl BlockSource for RawImage {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        self.file.read_exact_at(buf, offset)
    }
}
