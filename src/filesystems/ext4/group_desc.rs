//! The block group descriptor table: where each group's inode table lives, and which
//! groups cannot be trusted.
//!
//! Damage is per group, as debugfs and e2fsck see it: a descriptor that cannot be used
//! (an inode table outside the filesystem or over its superblock and descriptor table,
//! a checksum that does not match) marks that group `Bad`; the volume still opens, its
//! other groups read normally, the group's inodes are errors when reached, and the
//! volume says it is incomplete.

use super::superblock::{Superblock, INCOMPAT_META_BG};
use super::{checksum, le16, le32, Disk, What};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

/// Group flag: the inode table was never initialised, so no inode in it is in use.
const EXT4_BG_INODE_UNINIT: u16 = 0x0001;
/// Group flag: the block bitmap was never initialised; only the group's own metadata is
/// in use.
const EXT4_BG_BLOCK_UNINIT: u16 = 0x0002;

/// One group descriptor: usable, or damaged with the reason and where.
#[derive(Debug, Clone)]
pub(super) enum GroupDesc {
    Good(Group),
    /// Nothing of this group is read: its inodes are errors naming this damage.
    Bad {
        kind: CorruptKind,
        /// Why, for users ("inode table ... lies outside the filesystem ...").
        reason: String,
        /// Byte offset in the volume of the descriptor (or its field) at fault.
        offset: u64,
    },
}

/// What this reader keeps of a usable group descriptor.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    /// First block of the group's inode table (bg_inode_table_lo/hi).
    pub bg_inode_table: u64,
    /// Inodes at or past this index within the group have never been used.
    pub first_unused_index: u32,
    /// The group's block bitmap (bg_block_bitmap_lo/hi) and inode bitmap.
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    /// bg_block_bitmap_csum_lo/hi (the high half only in 64-byte descriptors).
    pub block_bitmap_csum: u32,
    /// The block bitmap was never initialised (BLOCK_UNINIT under a group checksum).
    pub block_uninit: bool,
}

impl GroupDesc {
    /// A damaged descriptor. Every check of a descriptor (ranges here, checksums) that
    /// fails lands here rather than failing the volume.
    pub(super) fn bad(kind: CorruptKind, offset: u64, reason: impl Into<String>) -> Self {
        Self::Bad {
            kind,
            reason: reason.into(),
            offset,
        }
    }

    /// The usable group, or an error for `what` (something in group `group`) naming the
    /// descriptor's damage.
    pub(super) fn usable(&self, group: u64, what: &What) -> Result<&Group, FsError> {
        match self {
            Self::Good(group) => Ok(group),
            Self::Bad {
                kind,
                reason,
                offset,
            } => Err(FsError::corrupt(
                *kind,
                what.to_string(),
                *offset,
                format!("block group {group}'s descriptor is damaged ({reason}), so its inodes are not read"),
            )),
        }
    }

    /// Why the group is damaged, for the volume's incomplete reason.
    pub(super) fn damage(&self) -> Option<(&str, u64)> {
        match self {
            Self::Good(_) => None,
            Self::Bad { reason, offset, .. } => Some((reason, *offset)),
        }
    }
}

/// Reads and parses every group descriptor.
pub(super) fn read_table(disk: &Disk, sb: &Superblock) -> Result<Vec<GroupDesc>, FsError> {
    let per_block = sb.block_size / sb.desc_size;
    let groups = u64::from(sb.group_count);
    let desc_blocks = groups.div_ceil(per_block);
    let meta_bg = sb.has_incompat(INCOMPAT_META_BG);
    // Superblock::parse checked that group_count * desc_size fits in the volume.
    let capacity = usize::try_from(groups).unwrap_or(0);
    let mut table = Vec::with_capacity(capacity);

    // Without meta_bg the table is contiguous, so read it in one go when it is.
    let contiguous_blocks = if meta_bg {
        desc_blocks.min(u64::from(sb.s_first_meta_bg))
    } else {
        desc_blocks
    };
    if contiguous_blocks > 0 {
        let first = descriptor_block(sb, 0);
        let count = groups.min(contiguous_blocks * per_block);
        read_descs(disk, sb, first, 0, count, &mut table)?;
    }
    let mut block_index = contiguous_blocks;
    while block_index < desc_blocks {
        let first_group = block_index * per_block;
        let count = (groups - first_group).min(per_block);
        read_descs(
            disk,
            sb,
            descriptor_block(sb, block_index),
            first_group,
            count,
            &mut table,
        )?;
        block_index += 1;
    }
    Ok(table)
}

/// Where descriptor block `index` lives (ext2fs_descriptor_block_loc2 for the primary copy).
fn descriptor_block(sb: &Superblock, index: u64) -> u64 {
    let first_data = u64::from(sb.s_first_data_block);
    // With 1 KiB blocks and s_first_data_block 0 (only bigalloc does that), block 0 is
    // the boot sector and the superblock is block 1, so group 0's table starts one later.
    let zero_adjust = u64::from(sb.block_size == 1024 && first_data == 0 && index == 0);
    if !sb.has_incompat(INCOMPAT_META_BG) || index < u64::from(sb.s_first_meta_bg) {
        return first_data + index + 1 + zero_adjust;
    }
    let per_block = sb.block_size / sb.desc_size;
    let group = index.saturating_mul(per_block);
    let has_super = u32::try_from(group).is_ok_and(|g| sb.group_has_super(g));
    first_data
        .saturating_add(group.saturating_mul(u64::from(sb.s_blocks_per_group)))
        .saturating_add(u64::from(has_super))
        .saturating_add(zero_adjust)
}

fn read_descs(
    disk: &Disk,
    sb: &Superblock,
    block: u64,
    first_group: u64,
    count: u64,
    table: &mut Vec<GroupDesc>,
) -> Result<(), FsError> {
    let what = What::fs("ext4 group descriptor table");
    let offset = sb.block_offset(block).ok_or_else(|| {
        FsError::corrupt(
            CorruptKind::OutOfRange,
            what.to_string(),
            super::superblock::SUPERBLOCK_OFFSET,
            format!("block {block} is past any volume"),
        )
    })?;
    let len = count.saturating_mul(sb.desc_size);
    let raw = disk.read_vec(what, offset, len)?;
    let desc_size = usize::try_from(sb.desc_size).unwrap_or(usize::MAX);
    for (i, desc) in raw.chunks_exact(desc_size).enumerate() {
        let group = first_group + i as u64;
        let at = offset + i as u64 * sb.desc_size;
        table.push(
            match checksum::group_desc(&disk.guard, sb, group, desc, at) {
                Ok(()) => parse(sb, desc, at),
                // Nothing a descriptor failing its checksum says can be trusted: its
                // group is bad, as one whose inode table lies outside the filesystem.
                Err(mismatch) => {
                    let offset = mismatch.offset().unwrap_or(at);
                    let reason = match mismatch {
                        FsError::Corrupt { detail, .. } => detail,
                        other => other.to_string(),
                    };
                    GroupDesc::bad(CorruptKind::Checksum, offset, reason)
                }
            },
        );
    }
    Ok(())
}

/// Where the inode table of a descriptor may not lie: the primary superblock and
/// descriptor table (with meta_bg, the descriptor blocks before s_first_meta_bg), as
/// a half-open block range.
/// Blocks of the group descriptor table (without meta_bg: the table a backup superblock
/// is followed by).
pub(super) fn table_blocks(sb: &Superblock) -> u64 {
    u64::from(sb.group_count).div_ceil(sb.block_size / sb.desc_size)
}

fn primary_metadata(sb: &Superblock) -> (u64, u64) {
    let first_data = u64::from(sb.s_first_data_block);
    let per_block = sb.block_size / sb.desc_size;
    let mut desc_blocks = u64::from(sb.group_count).div_ceil(per_block);
    if sb.has_incompat(INCOMPAT_META_BG) {
        desc_blocks = desc_blocks.min(u64::from(sb.s_first_meta_bg));
    }
    (
        first_data,
        descriptor_block(sb, 0).saturating_add(desc_blocks),
    )
}

fn parse(sb: &Superblock, desc: &[u8], offset: u64) -> GroupDesc {
    let lo = u64::from(le32(desc, 0x8));
    let hi = if sb.desc_size >= 64 {
        u64::from(le32(desc, 0x28))
    } else {
        0
    };
    let bg_inode_table = lo | (hi << 32);
    let inode_table_blocks =
        (u64::from(sb.s_inodes_per_group) * sb.inode_size).div_ceil(sb.block_size);
    if let Some(problem) = sb.block_range_problem(bg_inode_table, inode_table_blocks) {
        return GroupDesc::bad(
            CorruptKind::OutOfRange,
            offset + 0x8,
            format!("inode table of {inode_table_blocks} blocks: {problem}"),
        );
    }
    let (meta_start, meta_end) = primary_metadata(sb);
    if bg_inode_table < meta_end && bg_inode_table + inode_table_blocks > meta_start {
        return GroupDesc::bad(
            CorruptKind::OutOfRange,
            offset + 0x8,
            format!(
                "inode table at block {bg_inode_table} ({inode_table_blocks} blocks) overlaps the superblock and group descriptors (blocks {meta_start}..{meta_end})"
            ),
        );
    }
    let mut first_unused_index = sb.s_inodes_per_group;
    let wide = |lo_at: usize, hi_at: usize| {
        let lo = u64::from(le32(desc, lo_at));
        let hi = if sb.desc_size >= 64 {
            u64::from(le32(desc, hi_at))
        } else {
            0
        };
        lo | (hi << 32)
    };
    let block_bitmap = wide(0x0, 0x20);
    let inode_bitmap = wide(0x4, 0x24);
    let block_bitmap_csum = u32::from(le16(desc, 0x18))
        | if sb.desc_size >= 64 {
            u32::from(le16(desc, 0x38)) << 16
        } else {
            0
        };
    let mut block_uninit = false;
    if sb.has_group_desc_csum() {
        let bg_flags = le16(desc, 0x12);
        block_uninit = bg_flags & EXT4_BG_BLOCK_UNINIT != 0;
        let lo = u32::from(le16(desc, 0x1C));
        let hi = if sb.desc_size >= 64 {
            u32::from(le16(desc, 0x32))
        } else {
            0
        };
        let bg_itable_unused = lo | (hi << 16);
        first_unused_index = if bg_flags & EXT4_BG_INODE_UNINIT != 0 {
            0
        } else {
            sb.s_inodes_per_group.saturating_sub(bg_itable_unused)
        };
    }
    GroupDesc::Good(Group {
        bg_inode_table,
        first_unused_index,
        block_bitmap,
        inode_bitmap,
        block_bitmap_csum,
        block_uninit,
    })
}
