//! A disk held in memory: for fuzzing and tests, where the bytes come from a buffer.

use std::io;

use super::{past_end, BlockSource};

#[derive(Debug, Clone)]
pub struct MemoryImage {
    bytes: Vec<u8>,
}

impl MemoryImage {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }
}

impl BlockSource for MemoryImage {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let source = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.bytes.get(range))
            .ok_or_else(|| past_end(offset, buf.len() as u64, self.len()))?;
        buf.copy_from_slice(source);
        Ok(())
    }
}
