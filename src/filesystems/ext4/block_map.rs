//! Legacy ext2/ext3 block maps: 12 direct pointers in i_block, then single, double and
//! triple indirect blocks of 32-bit block numbers.

use super::superblock::Superblock;
use super::{le32, Disk, Run, What, MAX_LOGICAL_BLOCKS};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

const EXT4_NDIR_BLOCKS: u64 = 12;
/// i_block slots 12, 13 and 14 root the single, double and triple indirect trees.
const EXT4_IND_BLOCK: usize = 12;
/// Triple indirection is the deepest the format has.
const MAX_INDIRECTION: u32 = 3;
/// Indirect blocks kept per open file: one per level plus one spare, enough for a
/// sequential read to fetch each indirect block once.
const CACHED_BLOCKS: usize = 4;

/// A block-mapped inode's pointer tree, with a small cache of indirect blocks.
#[derive(Debug)]
pub(super) struct BlockMap {
    ino: u64,
    i_block: [u32; 15],
    i_block_offset: u64,
    per_block: u64,
    cache: Vec<(u64, Vec<u32>)>,
    next_victim: usize,
}

impl BlockMap {
    pub(super) fn new(ino: u64, i_block: &[u8; 60], i_block_offset: u64, sb: &Superblock) -> Self {
        let mut ptrs = [0u32; 15];
        for (i, ptr) in ptrs.iter_mut().enumerate() {
            *ptr = le32(i_block, i * 4);
        }
        Self {
            ino,
            i_block: ptrs,
            i_block_offset,
            per_block: sb.block_size / 4,
            cache: Vec::new(),
            next_victim: 0,
        }
    }

    /// Blocks addressable by 12 direct pointers and three indirect trees, capped at 2^32.
    pub(super) fn max_blocks(sb: &Superblock) -> u64 {
        let p = sb.block_size / 4;
        let total = EXT4_NDIR_BLOCKS + p + p * p + p * p * p;
        total.min(MAX_LOGICAL_BLOCKS)
    }

    fn what(&self) -> What {
        What::of_inode("ext4 indirect block map", self.ino)
    }

    /// The run of blocks starting at `logical`.
    pub(super) fn map(
        &mut self,
        disk: &Disk,
        sb: &Superblock,
        logical: u64,
    ) -> Result<Run, FsError> {
        if logical < EXT4_NDIR_BLOCKS {
            let direct = self.i_block;
            let direct = direct.get(..EXT4_NDIR_BLOCKS as usize).unwrap_or(&[]);
            let idx = usize::try_from(logical).unwrap_or(0);
            return run_in(direct, idx, logical, sb, self.what(), self.i_block_offset);
        }
        let mut rel = logical - EXT4_NDIR_BLOCKS;
        let mut span = self.per_block;
        for level in 1..=MAX_INDIRECTION {
            if rel < span {
                let slot = EXT4_IND_BLOCK + level as usize - 1;
                let root = self.i_block.get(slot).copied().unwrap_or(0);
                let root_at = self.i_block_offset + slot as u64 * 4;
                return self.walk(disk, sb, level, root, root_at, rel, span, logical);
            }
            rel -= span;
            span = span.saturating_mul(self.per_block);
        }
        Ok(Run {
            logical,
            len: MAX_LOGICAL_BLOCKS.saturating_sub(logical).max(1),
            physical: None,
        })
    }

    /// Descends `levels` indirect blocks from `ptr`, whose subtree covers `span` blocks
    /// of which `rel` is the one wanted.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        disk: &Disk,
        sb: &Superblock,
        levels: u32,
        mut ptr: u32,
        mut ptr_at: u64,
        mut rel: u64,
        mut span: u64,
        logical: u64,
    ) -> Result<Run, FsError> {
        let what = self.what();
        for _ in 0..levels {
            if ptr == 0 {
                return Ok(Run {
                    logical,
                    len: span - rel,
                    physical: None,
                });
            }
            let block = u64::from(ptr);
            if let Some(problem) = sb.block_range_problem(block, 1) {
                return Err(FsError::corrupt(
                    CorruptKind::OutOfRange,
                    what.to_string(),
                    ptr_at,
                    format!("indirect block pointer: {problem}"),
                ));
            }
            let block_offset = sb.block_offset(block).unwrap_or(u64::MAX);
            let slot = self.load(disk, sb, block, block_offset)?;
            let child_span = span / self.per_block;
            let idx = usize::try_from(rel / child_span).unwrap_or(usize::MAX);
            rel %= child_span;
            let Some((_, entries)) = self.cache.get(slot) else {
                return Err(FsError::corrupt(
                    CorruptKind::Invalid,
                    what.to_string(),
                    block_offset,
                    "indirect block cache miss",
                ));
            };
            if child_span == 1 {
                return run_in(entries, idx, logical, sb, what, block_offset);
            }
            ptr = entries.get(idx).copied().unwrap_or(0);
            ptr_at = block_offset + idx as u64 * 4;
            span = child_span;
        }
        Err(FsError::corrupt(
            CorruptKind::Invalid,
            what.to_string(),
            ptr_at,
            "indirect tree deeper than the format allows",
        ))
    }

    /// Index in the cache of indirect block `block`, reading it if needed.
    fn load(
        &mut self,
        disk: &Disk,
        sb: &Superblock,
        block: u64,
        offset: u64,
    ) -> Result<usize, FsError> {
        if let Some(pos) = self.cache.iter().position(|(b, _)| *b == block) {
            return Ok(pos);
        }
        let raw = disk.read_vec(self.what(), offset, sb.block_size)?;
        let entries: Vec<u32> = raw.chunks_exact(4).map(|c| le32(c, 0)).collect();
        if self.cache.len() < CACHED_BLOCKS {
            self.cache.push((block, entries));
            return Ok(self.cache.len() - 1);
        }
        let victim = self.next_victim % CACHED_BLOCKS;
        self.next_victim = victim + 1;
        if let Some(entry) = self.cache.get_mut(victim) {
            *entry = (block, entries);
        }
        Ok(victim)
    }
}

/// The run starting at `ptrs[idx]`: consecutive zero pointers (a hole) or pointers to
/// consecutive blocks.
fn run_in(
    ptrs: &[u32],
    idx: usize,
    logical: u64,
    sb: &Superblock,
    what: What,
    ptrs_offset: u64,
) -> Result<Run, FsError> {
    let rest = ptrs.get(idx..).unwrap_or(&[]);
    let Some(&first) = rest.first() else {
        return Err(FsError::corrupt(
            CorruptKind::OutOfRange,
            what.to_string(),
            ptrs_offset,
            "block index past the pointer array",
        ));
    };
    if first == 0 {
        let len = rest.iter().take_while(|p| **p == 0).count() as u64;
        return Ok(Run {
            logical,
            len,
            physical: None,
        });
    }
    let first = u64::from(first);
    let len = rest
        .iter()
        .enumerate()
        .take_while(|(k, p)| u64::from(**p) == first + *k as u64)
        .count() as u64;
    if let Some(problem) = sb.block_range_problem(first, len) {
        return Err(FsError::corrupt(
            CorruptKind::OutOfRange,
            what.to_string(),
            ptrs_offset + idx as u64 * 4,
            format!("block pointer: {problem}"),
        ));
    }
    Ok(Run {
        logical,
        len,
        physical: Some(first),
    })
}
