//! Raw disk images (and raw EBS snapshot dumps): the file's bytes are the disk's bytes.

use std::fs::File;
use std::io;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::Path;

use super::{check_range, BlockSource};

/// A raw image file opened read-only; positional reads only, so it is shared freely.
#[derive(Debug)]
pub struct RawImage {
    file: File,
    len: u64,
    /// `None` for a block device, whose size on the host is not a file's.
    allocated: Option<u64>,
}

impl RawImage {
    /// Opens `path` with O_RDONLY: amiscan never writes to an image. A block device is
    /// read like a file; its size comes from seeking to its end, as its metadata says 0.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let (len, allocated) = if meta.file_type().is_block_device() {
            (file.seek(SeekFrom::End(0))?, None)
        } else {
            (meta.len(), Some(meta.blocks().saturating_mul(512)))
        };
        Ok(Self {
            file,
            len,
            allocated,
        })
    }

    /// Bytes the file occupies on the host filesystem; less than `len` for a sparse file.
    pub fn allocated_size(&self) -> Option<u64> {
        self.allocated
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
