//! A seekable, read-only `Read` view of a source, for crates that want `Read + Seek`.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use super::BlockSource;

/// A private cursor over a shared source. Writes always fail: images are read-only.
#[derive(Debug)]
pub struct SourceCursor {
    source: Arc<dyn BlockSource>,
    position: u64,
}

impl SourceCursor {
    pub fn new(source: Arc<dyn BlockSource>) -> Self {
        Self {
            source,
            position: 0,
        }
    }
}

impl Read for SourceCursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.source.len().saturating_sub(self.position);
        let take = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let Some(dst) = buf.get_mut(..take) else {
            return Ok(0);
        };
        if take == 0 {
            return Ok(0);
        }
        self.source.read_exact_at(self.position, dst)?;
        self.position = self.position.saturating_add(take as u64);
        Ok(take)
    }
}

impl Seek for SourceCursor {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.source.len().checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the disk",
            )
        })?;
        self.position = target;
        Ok(target)
    }
}

impl Write for SourceCursor {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "amiscan opens images read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
