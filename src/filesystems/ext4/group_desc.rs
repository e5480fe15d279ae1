//! The block group descriptor table: where each group's inode table lives.

use super::superblock::{Superblock, INCOMPAT_META_BG};
use super::{checksum, le16, le32, Disk, What};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

/// Group flag: the inode table was never initialised, so no inode in it is in use.
const EXT4_BG_INODE_UNINIT: u16 = 0x0001;

/// What this reader keeps of one group descriptor.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupDesc {
    /// First block of the group's inode table (bg_inode_table_lo/hi).
    pub bg_inode_table: u64,
    /// Inodes at or past this index within the group have never been used.
    pub first_unused_index: u32,
}

/// A block group whose descriptor failed its checksum: nothing it says (where the inode
/// table is, which inodes were ever used) can be trusted, so its inodes are refused with
/// the descriptor's error while every other group reads, as the kernel does read-only.
#[derive(Debug, Clone)]
pub(super) struct BadGroup {
    pub group: u64,
    offset: u64,
    kind: CorruptKind,
    detail: String,
}

impl BadGroup {
    fn new(group: u64, error: FsError) -> Self {
        let (offset, kind, detail) = match error {
            FsError::Corrupt {
                offset,
                kind,
                detail,
                ..
            } => (offset, kind, detail),
            other => (
                other.offset().unwrap_or(0),
                CorruptKind::Invalid,
                other.to_string(),
            ),
        };
        Self {
            group,
            offset,
            kind,
            detail,
        }
    }

    /// The error every inode of the group is refused with.
    pub(super) fn error(&self) -> FsError {
        FsError::corrupt(
            self.kind,
            format!("ext4 group descriptor {}", self.group),
            self.offset,
            self.detail.clone(),
        )
    }
}

/// One block group: its descriptor, or why it cannot be used.
pub(super) type Group = Result<GroupDesc, BadGroup>;

/// Reads every group descriptor, checks its checksum and parses it.
pub(super) fn read_table(disk: &Disk, sb: &Superblock) -> Result<Vec<Group>, FsError> {
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
    table: &mut Vec<Group>,
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
                Ok(()) => Ok(parse(sb, desc, at, group)?),
                Err(mismatch) => Err(BadGroup::new(group, mismatch)),
            },
        );
    }
    Ok(())
}

fn parse(sb: &Superblock, desc: &[u8], offset: u64, group: u64) -> Result<GroupDesc, FsError> {
    let lo = u64::from(le32(desc, 0x8));
    let hi = if sb.desc_size >= 64 {
        u64::from(le32(desc, 0x28))
    } else {
        0
    };
    let bg_inode_table = lo | (hi << 32);
    let inode_table_blocks =
        (u64::from(sb.s_inodes_per_group) * sb.inode_size).div_ceil(sb.block_size);
    if !sb.block_in_range(bg_inode_table, inode_table_blocks) {
        return Err(FsError::corrupt(CorruptKind::OutOfRange,
            format!("ext4 group descriptor {group}"),
            offset + 0x8,
            format!(
                "inode table at block {bg_inode_table} ({inode_table_blocks} blocks) lies outside the {}-block filesystem",
                sb.s_blocks_count
            ),
        ));
    }
    let mut first_unused_index = sb.s_inodes_per_group;
    if sb.has_group_desc_csum() {
        let bg_flags = le16(desc, 0x12);
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
    Ok(GroupDesc {
        bg_inode_table,
        first_unused_index,
    })
}
