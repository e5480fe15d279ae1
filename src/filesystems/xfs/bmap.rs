//! The block map of an inode's data fork: packed extent records (`xfs_bmbt_rec`), either
//! inline in the inode or in the leaves of a B+tree (`xfs_bmbt_block`) whose root sits in
//! the inode. Produces one sorted, non-overlapping extent list and answers "which disk
//! blocks back logical block N".

use super::inode::{crc_with_hole, Inode, FORMAT_BTREE, FORMAT_EXTENTS};
use super::superblock::Superblock;
use super::{Disk, What};
use crate::bytes::{array, be16, be64, le32};
use crate::filesystems::stream::Run;
use crate::filesystems::FsError;
use crate::image::CorruptKind;

const BMAP_MAGIC_V4: &[u8; 4] = b"BMAP";
const BMAP_MAGIC_V5: &[u8; 4] = b"BMA3";
const RECORD_SIZE: usize = 16;
/// Long-format btree block headers: 24 bytes, 72 with the v5 self-describing fields.
const BLOCK_HEADER_V4: usize = 24;
const BLOCK_HEADER_V5: usize = 72;
const BLOCK_CRC_OFFSET: usize = 64;
/// The in-inode root (`xfs_bmdr_block`): level and record count.
const ROOT_HEADER: usize = 4;
/// xfs_bmap_compute_maxlevels gives at most 9 levels for 2^48 extents at 512-byte blocks;
/// a deeper tree is corrupt, and the bound ends a descent through pointer cycles.
const MAX_LEVELS: u16 = 9;
/// Logical offsets are 54-bit fields.
const MAX_FILE_BLOCKS: u64 = 1 << 54;

/// One mapping: `len` logical blocks from `logical`, stored from filesystem block
/// `start` (AG-encoded), or preallocated and unwritten (reads as zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    pub logical: u64,
    pub len: u64,
    pub start: u64,
    pub unwritten: bool,
}

impl Extent {
    fn end(&self) -> u64 {
        self.logical + self.len
    }
}

/// The data fork's extents, sorted and checked.
#[derive(Debug, Clone, Default)]
pub(super) struct BlockMap {
    extents: Vec<Extent>,
}

impl BlockMap {
    /// Reads the extent list of `inode` (extents or btree format).
    pub(super) fn read(disk: &Disk, sb: &Superblock, inode: &Inode) -> Result<Self, FsError> {
        let mut collector = Collector {
            sb,
            inode,
            extents: Vec::new(),
        };
        match inode.format {
            FORMAT_EXTENTS => {
                let what = What::of_inode("xfs extent list", inode.ino);
                let bytes = inode.nextents.saturating_mul(RECORD_SIZE as u64);
                if bytes > inode.data_fork.len() as u64 {
                    return Err(FsError::corrupt(
                        CorruptKind::OutOfRange,
                        what.to_string(),
                        inode.fork_offset,
                        format!(
                            "{} extents do not fit in the {}-byte data fork",
                            inode.nextents,
                            inode.data_fork.len()
                        ),
                    ));
                }
                for (i, record) in inode
                    .data_fork
                    .chunks_exact(RECORD_SIZE)
                    .take(usize::try_from(inode.nextents).unwrap_or(0))
                    .enumerate()
                {
                    collector.push(record, what, inode.fork_offset + (i * RECORD_SIZE) as u64)?;
                }
            }
            FORMAT_BTREE => collector.read_root(disk)?,
            _ => {
                return Err(FsError::corrupt(
                    CorruptKind::Invalid,
                    What::inode(inode.ino).to_string(),
                    inode.offset + 5,
                    "data fork has no block map",
                ))
            }
        }
        if collector.extents.len() as u64 != inode.nextents {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                What::inode(inode.ino).to_string(),
                inode.offset + 76,
                format!(
                    "records {} extents, its block map holds {}",
                    inode.nextents,
                    collector.extents.len()
                ),
            ));
        }
        Ok(Self {
            extents: collector.extents,
        })
    }

    pub(super) fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// The run containing logical block `logical`: the extent holding it, or the hole up
    /// to the next extent (or to the end of the address space).
    pub(super) fn map(&self, sb: &Superblock, logical: u64) -> Run {
        let next = self.extents.partition_point(|e| e.end() <= logical);
        match self.extents.get(next) {
            Some(e) if e.logical <= logical => {
                let skip = logical - e.logical;
                let block = if e.unwritten {
                    None
                } else {
                    // Checked when the extent was collected: the whole extent lies on disk.
                    sb.fsb_to_block(e.start).map(|b| b + skip)
                };
                Run {
                    logical,
                    len: e.len - skip,
                    physical: block,
                }
            }
            Some(e) => Run {
                logical,
                len: e.logical - logical,
                physical: None,
            },
            None => Run {
                logical,
                len: MAX_FILE_BLOCKS.saturating_sub(logical).max(1),
                physical: None,
            },
        }
    }
}

struct Collector<'a> {
    sb: &'a Superblock,
    inode: &'a Inode,
    extents: Vec<Extent>,
}

impl Collector<'_> {
    /// Decodes one packed record and appends it, refusing overlap, disorder and blocks
    /// outside the filesystem.
    fn push(&mut self, record: &[u8], what: What, at: u64) -> Result<(), FsError> {
        let corrupt = |kind: CorruptKind, detail: String| {
            FsError::corrupt(kind, what.to_string(), at, detail)
        };
        let l0 = be64(record, 0);
        let l1 = be64(record, 8);
        let extent = Extent {
            unwritten: l0 >> 63 != 0,
            logical: (l0 & ((1 << 63) - 1)) >> 9,
            start: ((l0 & 0x1ff) << 43) | (l1 >> 21),
            len: l1 & ((1 << 21) - 1),
        };
        if extent.len == 0 {
            return Err(corrupt(
                CorruptKind::Invalid,
                "extent of zero blocks".into(),
            ));
        }
        if extent.end() > MAX_FILE_BLOCKS {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                format!(
                    "extent at logical block {} runs past the largest file",
                    extent.logical
                ),
            ));
        }
        let last = extent.start.checked_add(extent.len - 1);
        let on_disk = self.sb.fsb_to_block(extent.start).is_some()
            && last.and_then(|l| self.sb.fsb_to_block(l)).is_some()
            && last
                .is_some_and(|l| l >> self.sb.ag_block_log == extent.start >> self.sb.ag_block_log);
        if !on_disk {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                format!(
                    "extent of {} blocks at filesystem block {} lies outside its allocation group",
                    extent.len, extent.start
                ),
            ));
        }
        if let Some(previous) = self.extents.last() {
            if extent.logical < previous.end() {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    format!(
                        "extent at logical block {} overlaps or precedes the one before it",
                        extent.logical
                    ),
                ));
            }
        }
        if self.extents.len() as u64 >= self.inode.nextents {
            return Err(corrupt(
                CorruptKind::Invalid,
                format!(
                    "more extents than the {} the inode records",
                    self.inode.nextents
                ),
            ));
        }
        self.extents.push(extent);
        Ok(())
    }

    fn read_root(&mut self, disk: &Disk) -> Result<(), FsError> {
        let inode = self.inode;
        let what = What::of_inode("xfs bmap btree root", inode.ino);
        let fork = &inode.data_fork;
        let corrupt = |kind: CorruptKind, at: usize, detail: String| {
            FsError::corrupt(
                kind,
                what.to_string(),
                inode.fork_offset + at as u64,
                detail,
            )
        };
        let level = be16(fork, 0);
        let numrecs = usize::from(be16(fork, 2));
        let maxrecs = fork.len().saturating_sub(ROOT_HEADER) / (2 * 8);
        if level == 0 || level > MAX_LEVELS {
            return Err(corrupt(
                CorruptKind::Invalid,
                0,
                format!("root at level {level}"),
            ));
        }
        if numrecs == 0 || numrecs > maxrecs {
            return Err(corrupt(
                CorruptKind::Invalid,
                2,
                format!("{numrecs} pointers in a root that holds {maxrecs}"),
            ));
        }
        for i in 0..numrecs {
            let at = ROOT_HEADER + maxrecs * 8 + i * 8;
            let ptr = be64(fork, at);
            self.read_block(disk, ptr, level - 1, inode.fork_offset + at as u64)?;
        }
        Ok(())
    }

    /// Reads the btree block `fsb` expected at `level`, then its children or records.
    fn read_block(
        &mut self,
        disk: &Disk,
        fsb: u64,
        level: u16,
        ptr_at: u64,
    ) -> Result<(), FsError> {
        let sb = self.sb;
        let ino = self.inode.ino;
        let what = What::of_inode("xfs bmap btree block", ino);
        let offset = sb.fsb_offset(fsb).ok_or_else(|| {
            FsError::corrupt(
                CorruptKind::OutOfRange,
                what.to_string(),
                ptr_at,
                format!("points at filesystem block {fsb}, outside the filesystem"),
            )
        })?;
        let block = disk.read_vec(what, offset, sb.block_size)?;
        let corrupt = |kind: CorruptKind, at: usize, detail: String| {
            FsError::corrupt(kind, what.to_string(), offset + at as u64, detail)
        };
        let (magic, header) = if sb.is_v5() {
            (BMAP_MAGIC_V5, BLOCK_HEADER_V5)
        } else {
            (BMAP_MAGIC_V4, BLOCK_HEADER_V4)
        };
        if block.get(..4) != Some(magic.as_slice()) {
            return Err(corrupt(CorruptKind::Magic, 0, "bad magic".into()));
        }
        if sb.is_v5() {
            let stored = le32(&block, BLOCK_CRC_OFFSET);
            let computed = crc_with_hole(&block, BLOCK_CRC_OFFSET);
            sb.checksums.check(stored == computed, || {
                corrupt(
                    CorruptKind::Checksum,
                    BLOCK_CRC_OFFSET,
                    format!("CRC {stored:#010x} does not match the contents ({computed:#010x})"),
                )
            })?;
            if be64(&block, 24) != offset / 512 {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    24,
                    "records another block's address".into(),
                ));
            }
            if array::<16>(&block, 40) != Some(sb.meta_uuid) {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    40,
                    "belongs to another filesystem (UUID)".into(),
                ));
            }
            if be64(&block, 56) != ino {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    56,
                    format!("belongs to inode {}", be64(&block, 56)),
                ));
            }
        }
        let found_level = be16(&block, 4);
        if found_level != level {
            return Err(corrupt(
                CorruptKind::Invalid,
                4,
                format!("level {found_level} where {level} belongs"),
            ));
        }
        let numrecs = usize::from(be16(&block, 6));
        let maxrecs = (block.len() - header) / RECORD_SIZE;
        if numrecs == 0 || numrecs > maxrecs {
            return Err(corrupt(
                CorruptKind::Invalid,
                6,
                format!("{numrecs} records in a block that holds {maxrecs}"),
            ));
        }
        if level == 0 {
            let records = what_records(ino);
            for i in 0..numrecs {
                let at = header + i * RECORD_SIZE;
                let record = block.get(at..at + RECORD_SIZE).unwrap_or(&[]);
                self.push(record, records, offset + at as u64)?;
            }
            return Ok(());
        }
        for i in 0..numrecs {
            let at = header + maxrecs * 8 + i * 8;
            let ptr = be64(&block, at);
            self.read_block(disk, ptr, level - 1, offset + at as u64)?;
        }
        Ok(())
    }
}

fn what_records(ino: u64) -> What {
    What::of_inode("xfs bmap btree record", ino)
}
