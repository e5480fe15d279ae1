//! Free space: the records of each AG's free-space btree by block number (bnobt, rooted
//! in the AGF) and the blocks on its free list (AGFL), as byte ranges of the volume (as
//! `xfs_db freesp` counts them); and the internal log's blocks. Every btree
//! block is checked as xfs_repair checks it: magic, level, record count within what the
//! block holds, and on v5 its CRC, UUID, own address and owning AG. A block that fails
//! leaves the free space unknown: an error, never a smaller answer.

use std::ops::Range;

use super::inode::crc_with_hole;
use super::superblock::Superblock;
use super::{What, XfsFs};
use crate::bytes::{array, be16, be32, be64, le32};
use crate::filesystems::residue::{push_merged, Area, AreaKind};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

const BNOBT_MAGIC_V4: &[u8; 4] = b"ABTB";
const BNOBT_MAGIC_V5: &[u8; 4] = b"AB3B";
/// Short-form btree block header: magic, level, numrecs, left and right siblings.
const HEADER_V4: usize = 16;
/// ... then blkno, lsn, uuid, owner and crc.
const HEADER_V5: usize = 56;
const CRC_OFFSET: usize = 52;
const UUID_OFFSET: usize = 32;
const BLKNO_OFFSET: usize = 16;
const OWNER_OFFSET: usize = 48;
/// A record (and a key) is startblock and blockcount; a pointer is an AG block number.
const RECORD: usize = 8;
const POINTER: usize = 4;
/// No XFS btree is deeper than this (xfs_repair's XFS_BTREE_MAXLEVELS).
const MAX_LEVELS: u16 = 9;

/// AGF fields: the bnobt root and its level count, the free list's window.
const AGF_BNO_ROOT: usize = 16;
const AGF_BNO_LEVEL: usize = 28;
const AGF_FL_FIRST: usize = 40;
const AGF_FL_COUNT: usize = 48;
/// The AGFL (sector 3 of the AG): on v5 a header (magic, AG, UUID, LSN, CRC) before the
/// block numbers.
const AGFL_MAGIC: &[u8; 4] = b"XAFL";
const AGFL_HEADER_V5: usize = 36;
const AGFL_CRC_OFFSET: usize = 32;

pub(super) fn residue_areas(fs: &XfsFs) -> Result<Vec<Area>, FsError> {
    let mut areas = vec![Area {
        kind: AreaKind::Free,
        ranges: unallocated(fs)?,
    }];
    let sb = &fs.sb;
    if sb.log_start != 0 && sb.log_blocks != 0 {
        let start = sb.fsb_offset(sb.log_start).ok_or_else(|| {
            FsError::corrupt(
                CorruptKind::OutOfRange,
                "xfs superblock".to_string(),
                0x30,
                format!(
                    "the log starts at block {}, outside the volume",
                    sb.log_start
                ),
            )
        })?;
        let end = start.saturating_add(sb.log_blocks.saturating_mul(sb.block_size));
        areas.push(Area {
            kind: AreaKind::Journal,
            ranges: std::iter::once(start..end).collect(),
        });
    }
    Ok(areas)
}

/// The free extents of every AG, in volume order, adjacent ones merged.
pub(super) fn unallocated(fs: &XfsFs) -> Result<Vec<Range<u64>>, FsError> {
    let sb = &fs.sb;
    let mut ranges = Vec::new();
    for ag in 0..sb.ag_count {
        if let Some(Err(damage)) = fs.ags.get(ag as usize) {
            return Err(damage.error());
        }
        let mut extents = ag_free_extents(fs, ag)?;
        extents.sort_unstable();
        let ag_first = u64::from(ag) * sb.ag_blocks;
        for (start, count) in extents {
            let first = (ag_first + start) * sb.block_size;
            push_merged(&mut ranges, first..first + count * sb.block_size);
        }
    }
    Ok(ranges)
}

/// The (AG block, length) records of AG `ag`'s bnobt.
fn ag_free_extents(fs: &XfsFs, ag: u32) -> Result<Vec<(u64, u64)>, FsError> {
    let sb = &fs.sb;
    let ag_base = u64::from(ag) * sb.ag_blocks * sb.block_size;
    let agf_offset = ag_base + sb.sector_size;
    let agf = fs
        .disk
        .read_vec(What::fs("xfs AGF"), agf_offset, sb.sector_size)?;
    let root = u64::from(be32(&agf, AGF_BNO_ROOT));
    let levels = be32(&agf, AGF_BNO_LEVEL);
    let ag_blocks = sb.blocks_in_ag(u64::from(ag));
    let corrupt = |at: u64, detail: String| {
        FsError::corrupt(CorruptKind::Invalid, format!("xfs AGF {ag}"), at, detail)
    };
    if levels == 0 || levels > u32::from(MAX_LEVELS) {
        return Err(corrupt(
            agf_offset + AGF_BNO_LEVEL as u64,
            format!("free-space btree of {levels} levels"),
        ));
    }
    let mut walk = Walk {
        fs,
        ag,
        ag_blocks,
        extents: Vec::new(),
        // Every block of the tree is an AG block: a walk visiting more is a loop.
        budget: ag_blocks,
    };
    walk.visit(root, levels as u16 - 1)?;
    let mut extents = walk.extents;
    extents.extend(
        free_list(fs, ag, &agf, ag_blocks)?
            .into_iter()
            .map(|b| (b, 1)),
    );
    Ok(extents)
}

/// The blocks on AG `ag`'s free list (the AGFL): free, kept for the btrees to grow into,
/// and holding whatever was there before, as free space does.
fn free_list(fs: &XfsFs, ag: u32, agf: &[u8], ag_blocks: u64) -> Result<Vec<u64>, FsError> {
    let sb = &fs.sb;
    let offset = u64::from(ag) * sb.ag_blocks * sb.block_size + 3 * sb.sector_size;
    let agfl = fs
        .disk
        .read_vec(What::fs("xfs AGFL"), offset, sb.sector_size)?;
    let corrupt = |kind: CorruptKind, at: u64, detail: String| {
        FsError::corrupt(kind, format!("xfs AGFL {ag}"), at, detail)
    };
    let header = if sb.is_v5() {
        if agfl.get(..4) != Some(AGFL_MAGIC.as_slice()) {
            return Err(corrupt(CorruptKind::Magic, offset, "bad magic".into()));
        }
        let stored = le32(&agfl, AGFL_CRC_OFFSET);
        let computed = crc_with_hole(&agfl, AGFL_CRC_OFFSET);
        sb.checksums.check(stored == computed, || {
            corrupt(
                CorruptKind::Checksum,
                offset + AGFL_CRC_OFFSET as u64,
                format!("CRC {stored:#010x} does not match the contents ({computed:#010x})"),
            )
        })?;
        AGFL_HEADER_V5
    } else {
        0
    };
    let size = (agfl.len().saturating_sub(header) / 4) as u64;
    let first = u64::from(be32(agf, AGF_FL_FIRST));
    let count = u64::from(be32(agf, AGF_FL_COUNT));
    if size == 0 || first >= size || count > size {
        return Err(corrupt(
            CorruptKind::OutOfRange,
            offset,
            format!("free list window {first}+{count} in a list of {size}"),
        ));
    }
    let mut blocks = Vec::new();
    for index in 0..count {
        let slot = ((first + index) % size) as usize;
        let at = header + slot * 4;
        let block = u64::from(be32(&agfl, at));
        if block == 0 || block >= ag_blocks {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                offset + at as u64,
                format!("free-list block {block} lies outside its AG of {ag_blocks} blocks"),
            ));
        }
        blocks.push(block);
    }
    Ok(blocks)
}

struct Walk<'a> {
    fs: &'a XfsFs,
    ag: u32,
    ag_blocks: u64,
    extents: Vec<(u64, u64)>,
    budget: u64,
}

impl Walk<'_> {
    fn visit(&mut self, agbno: u64, level: u16) -> Result<(), FsError> {
        let sb = &self.fs.sb;
        let offset = (u64::from(self.ag) * sb.ag_blocks + agbno) * sb.block_size;
        let what = format!("xfs free-space btree block {agbno} of AG {}", self.ag);
        let corrupt = |kind: CorruptKind, at: usize, detail: String| {
            FsError::corrupt(kind, what.clone(), offset + at as u64, detail)
        };
        if agbno == 0 || agbno >= self.ag_blocks {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                0,
                format!("lies outside its AG of {} blocks", self.ag_blocks),
            ));
        }
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            corrupt(
                CorruptKind::Loop,
                0,
                "the tree has more blocks than its AG".into(),
            )
        })?;
        let block =
            self.fs
                .disk
                .read_vec(What::fs("xfs free-space btree"), offset, sb.block_size)?;
        let header = check_block(sb, &block, self.ag, offset)
            .map_err(|(kind, at, detail)| corrupt(kind, at, detail))?;
        let found_level = be16(&block, 4);
        if found_level != level {
            return Err(corrupt(
                CorruptKind::Invalid,
                4,
                format!("is at level {found_level}, its parent says {level}"),
            ));
        }
        let records = usize::from(be16(&block, 6));
        let room = block.len().saturating_sub(header);
        if level == 0 {
            if records > room / RECORD {
                return Err(corrupt(
                    CorruptKind::OutOfRange,
                    6,
                    format!("{records} records do not fit in the block"),
                ));
            }
            for index in 0..records {
                let at = header + index * RECORD;
                let start = u64::from(be32(&block, at));
                let count = u64::from(be32(&block, at + 4));
                if count == 0 || start.saturating_add(count) > self.ag_blocks {
                    return Err(corrupt(
                        CorruptKind::OutOfRange,
                        at,
                        format!(
                            "free extent {start}+{count} leaves its AG of {} blocks",
                            self.ag_blocks
                        ),
                    ));
                }
                self.extents.push((start, count));
            }
            return Ok(());
        }
        let max_records = room / (RECORD + POINTER);
        if records == 0 || records > max_records {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                6,
                format!("{records} keys in a node that holds {max_records}"),
            ));
        }
        let pointers = header + max_records * RECORD;
        for index in 0..records {
            let child = u64::from(be32(&block, pointers + index * POINTER));
            self.visit(child, level - 1)?;
        }
        Ok(())
    }
}

/// Checks a bnobt block's magic and, on v5, its CRC, UUID, address and owner; returns its
/// header length, or what is wrong and where.
fn check_block(
    sb: &Superblock,
    block: &[u8],
    ag: u32,
    offset: u64,
) -> Result<usize, (CorruptKind, usize, String)> {
    let magic = if sb.is_v5() {
        BNOBT_MAGIC_V5
    } else {
        BNOBT_MAGIC_V4
    };
    if block.get(..4) != Some(magic.as_slice()) {
        return Err((CorruptKind::Magic, 0, "bad magic".into()));
    }
    if !sb.is_v5() {
        return Ok(HEADER_V4);
    }
    let stored = le32(block, CRC_OFFSET);
    let computed = crc_with_hole(block, CRC_OFFSET);
    sb.checksums.check(stored == computed, || {
        (
            CorruptKind::Checksum,
            CRC_OFFSET,
            format!("CRC {stored:#010x} does not match the contents ({computed:#010x})"),
        )
    })?;
    if array::<16>(block, UUID_OFFSET) != Some(sb.meta_uuid) {
        return Err((
            CorruptKind::Invalid,
            UUID_OFFSET,
            "belongs to another filesystem (UUID)".into(),
        ));
    }
    let blkno = be64(block, BLKNO_OFFSET);
    if blkno != offset / 512 {
        return Err((
            CorruptKind::Invalid,
            BLKNO_OFFSET,
            format!("records address {blkno} (sector), not its own"),
        ));
    }
    if be32(block, OWNER_OFFSET) != ag {
        return Err((
            CorruptKind::Invalid,
            OWNER_OFFSET,
            format!("belongs to AG {}", be32(block, OWNER_OFFSET)),
        ));
    }
    Ok(HEADER_V5)
}
