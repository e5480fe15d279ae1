//! Unallocated space: the blocks the block bitmaps mark free, as byte ranges of the volume.
//! A snapshot copies them with the rest, so what a deleted file held may still be there;
//! `inspect` says how much of it is not zero.
//!
//! A group whose bitmap was never initialised (BLOCK_UNINIT) has only its own metadata in
//! use: the backup superblock and descriptor table (with the blocks reserved to grow it)
//! where the group holds one, and its bitmaps and inode table where they lie inside it.
//! A group whose descriptor is damaged, or whose bitmap cannot be read or fails its
//! checksum, leaves the answer unknown: it is an error, never a smaller figure.

use std::ops::Range;

use super::group_desc::{self, Group};
use super::superblock::{Superblock, INCOMPAT_META_BG};
use super::{checksum, Ext4Fs, What};
use crate::filesystems::residue::{push_merged, Area, AreaKind};
use crate::filesystems::FsError;

/// The byte ranges of the volume no file, directory or metadata holds, in order, adjacent
/// ones merged.
pub(super) fn unallocated(fs: &Ext4Fs) -> Result<Vec<Range<u64>>, FsError> {
    let sb = &fs.sb;
    let what = What::fs("ext4 block bitmap");
    let ratio = (sb.cluster_size / sb.block_size).max(1);
    let per_group = u64::from(sb.s_blocks_per_group);
    let first_data = u64::from(sb.s_first_data_block);
    let mut ranges: Vec<Range<u64>> = Vec::new();
    let mut add = |first_block: u64, blocks: u64| {
        let start = first_block.saturating_mul(sb.block_size);
        let end = start.saturating_add(blocks.saturating_mul(sb.block_size));
        push_merged(&mut ranges, start..end);
    };
    for (index, desc) in fs.groups.iter().enumerate() {
        let group_index = index as u64;
        let group = desc.usable(group_index, &what)?;
        let group_first = first_data.saturating_add(group_index.saturating_mul(per_group));
        let blocks = sb.s_blocks_count.saturating_sub(group_first).min(per_group);
        if group.block_uninit {
            for (first, count) in free_in_uninit_group(sb, index, group, group_first, blocks) {
                add(first, count);
            }
            continue;
        }
        let clusters = blocks.div_ceil(ratio);
        let bitmap_bytes = (per_group / ratio).div_ceil(8);
        if let Some(problem) = sb.block_range_problem(group.block_bitmap, 1) {
            return Err(FsError::corrupt(
                crate::image::CorruptKind::OutOfRange,
                format!("ext4 block bitmap of group {index}"),
                group.block_bitmap.saturating_mul(sb.block_size),
                problem,
            ));
        }
        let offset = group.block_bitmap * sb.block_size;
        let bitmap = fs.disk.read_vec(what, offset, bitmap_bytes)?;
        checksum::block_bitmap(
            &fs.disk.guard,
            sb,
            group_index,
            group.block_bitmap_csum,
            &bitmap,
            offset,
        )?;
        let mut run: Option<u64> = None;
        for cluster in 0..=clusters {
            let free = cluster < clusters
                && bitmap
                    .get((cluster / 8) as usize)
                    .is_some_and(|byte| byte & (1 << (cluster % 8)) == 0);
            match (free, run) {
                (true, None) => run = Some(cluster),
                (false, Some(start)) => {
                    let first = group_first + start * ratio;
                    let count = ((cluster - start) * ratio).min(blocks - start * ratio);
                    add(first, count);
                    run = None;
                }
                _ => {}
            }
        }
    }
    Ok(ranges)
}

/// The free blocks of a group whose bitmap was never initialised: all but the backup
/// superblock and descriptor table it may hold, and its own bitmaps and inode table.
fn free_in_uninit_group(
    sb: &Superblock,
    index: usize,
    group: &Group,
    group_first: u64,
    blocks: u64,
) -> Vec<(u64, u64)> {
    let mut used: Vec<Range<u64>> = Vec::new();
    let has_super = u32::try_from(index).is_ok_and(|g| sb.group_has_super(g));
    if has_super {
        let table = if sb.has_incompat(INCOMPAT_META_BG) {
            0
        } else {
            group_desc::table_blocks(sb) + u64::from(sb.s_reserved_gdt_blocks)
        };
        used.push(group_first..group_first + 1 + table);
    }
    let inode_table_blocks =
        (u64::from(sb.s_inodes_per_group) * sb.inode_size).div_ceil(sb.block_size);
    used.push(group.block_bitmap..group.block_bitmap + 1);
    used.push(group.inode_bitmap..group.inode_bitmap + 1);
    used.push(group.bg_inode_table..group.bg_inode_table + inode_table_blocks);
    used.sort_by_key(|r| r.start);
    let end = group_first + blocks;
    let mut free = Vec::new();
    let mut at = group_first;
    for range in used {
        let (start, stop) = (range.start.clamp(at, end), range.end.clamp(at, end));
        if start > at {
            free.push((at, start - at));
        }
        at = at.max(stop);
    }
    if at < end {
        free.push((at, end - at));
    }
    free
}

/// Free space and the internal journal, the areas where deleted data may survive.
pub(super) fn residue_areas(fs: &Ext4Fs) -> Result<Vec<Area>, FsError> {
    let mut areas = vec![Area {
        kind: AreaKind::Free,
        ranges: unallocated(fs)?,
    }];
    let journal = super::journal::area(fs)?;
    if !journal.is_empty() {
        areas.push(Area {
            kind: AreaKind::Journal,
            ranges: journal,
        });
    }
    Ok(areas)
}
