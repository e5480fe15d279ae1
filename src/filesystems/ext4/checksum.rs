//! ext4's metadata checksums and the journal superblock's: computed as the kernel and
//! e2fsprogs define them, compared with what is stored, and a mismatch turned into a
//! checksum error naming the structure and its byte offset (or counted, under
//! `ChecksumPolicy::Ignore`). Parses nothing: callers hand over bytes they have read.
//!
//! With metadata_csum every checksum is crc32c (the raw register, no final inversion),
//! seeded by the filesystem's seed (crc32c of the UUID, or s_checksum_seed with
//! metadata_csum_seed); inodes and the blocks they own add the inode number and
//! generation to it. Without metadata_csum, uninit_bg (gdt_csum) protects only the group
//! descriptors, with a crc16 of the UUID, the group number and the descriptor.

use super::superblock::Superblock;
use super::{le16, le32, What};
use crate::bytes::be32;
use crate::checksums::ChecksumGuard;
use crate::filesystems::FsError;
use crate::image::CorruptKind;

/// s_checksum: the last four bytes of the 1024-byte superblock.
const SB_CHECKSUM_AT: usize = 0x3FC;
/// s_checksum_type's one defined value.
const EXT4_CRC32C_CHKSUM: u8 = 1;
const SB_CHECKSUM_TYPE_AT: usize = 0x175;
/// bg_checksum within a group descriptor.
const BG_CHECKSUM_AT: usize = 0x1E;
/// i_checksum_lo in the 128-byte base inode, i_checksum_hi in the extra part.
const I_CHECKSUM_LO_AT: usize = 0x7C;
const I_CHECKSUM_HI_AT: usize = 0x82;
const I_GENERATION_AT: usize = 0x64;
const GOOD_OLD_INODE_SIZE: usize = 128;
/// ext4_extent_header, then eh_max entries of 12 bytes, then ext4_extent_tail.
const EXTENT_HEADER_LEN: usize = 12;
const EXTENT_ENTRY_LEN: usize = 12;
/// ext4_dir_entry_tail: a fake entry (inode 0, rec_len 12, file type 0xDE) that closes
/// every directory leaf block and holds the block's checksum in its last four bytes.
const DIR_TAIL_LEN: usize = 12;
const EXT4_FT_DIR_CSUM: u8 = 0xDE;
/// dx_root_info (8 bytes) after the `.` and `..` entries of an htree root.
const DX_ROOT_INFO_AT: usize = 24;
const DX_ROOT_INFO_LEN: u8 = 8;
/// Where dx_countlimit sits in an htree root and in an interior index node.
const DX_ROOT_COUNT_AT: usize = 32;
const DX_NODE_COUNT_AT: usize = 8;
const DX_ENTRY_LEN: usize = 8;
/// dx_tail: a reserved word, then the checksum.
const DX_TAIL_LEN: usize = 8;
/// jbd2's journal superblock: 1024 bytes, s_checksum_type at 0x50, s_checksum at 0xFC.
const JSB_LEN: usize = 1024;
const JSB_CHECKSUM_TYPE_AT: usize = 0x50;
const JSB_CHECKSUM_AT: usize = 0xFC;
const JBD2_CRC32C_CHKSUM: u8 = 4;

/// crc32c continued from the raw register `crc`, as ext4_chksum and ext2fs_crc32c_le.
fn crc32c(crc: u32, data: &[u8]) -> u32 {
    crate::crc32c::update(crc, data)
}

/// The kernel's crc16 (lib/crc16: reflected polynomial 0x8005, no inversions) started
/// from ~0, as uninit_bg descriptors use it: the catalogue's CRC-16/MODBUS. Computed once
/// per group at open (docs/dependencies.md: the `crc` crate against a table of our own).
const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);

/// The bytes of `data` with the `len`-byte field at `at` (2 or 4 bytes: a stored
/// checksum) read as zero, fed to crc32c in three parts so the buffer is never copied.
fn crc32c_skipping(crc: u32, data: &[u8], at: usize, len: usize) -> u32 {
    let head = data.get(..at).unwrap_or(data);
    let tail = at
        .checked_add(len)
        .and_then(|end| data.get(end..))
        .unwrap_or(&[]);
    const ZEROS: [u8; 4] = [0; 4];
    let crc = crc32c(crc, head);
    let crc = crc32c(crc, ZEROS.get(..len).unwrap_or(&ZEROS));
    crc32c(crc, tail)
}

fn mismatch(what: What, offset: u64, stored: u32, computed: u32) -> FsError {
    FsError::corrupt(
        CorruptKind::Checksum,
        what.to_string(),
        offset,
        format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
    )
}

/// The same for a 16-bit checksum, shown as 16 bits (as e2fsck shows it).
fn mismatch16(what: impl ToString, offset: u64, stored: u16, computed: u16) -> FsError {
    FsError::corrupt(
        CorruptKind::Checksum,
        what.to_string(),
        offset,
        format!("checksum mismatch (stored {stored:#06x}, computed {computed:#06x})"),
    )
}

/// A superblock's s_checksum_type byte (at `at`) must name crc32c (`crc32c_code`):
/// the kernel refuses any other algorithm, since nothing could then be verified.
fn checksum_type(
    guard: &ChecksumGuard,
    what: What,
    raw: &[u8],
    offset: u64,
    at: usize,
    crc32c_code: u8,
) -> Result<(), FsError> {
    let kind = raw.get(at).copied().unwrap_or(0);
    guard.check(kind == crc32c_code, || {
        FsError::corrupt(
            CorruptKind::Checksum,
            what.to_string(),
            offset + at as u64,
            format!("s_checksum_type {kind} is not crc32c ({crc32c_code})"),
        )
    })
}

/// A structure that should carry a checksum but has no room or no marker for it.
fn missing(what: What, offset: u64, detail: &str) -> FsError {
    FsError::corrupt(CorruptKind::Checksum, what.to_string(), offset, detail)
}

/// The filesystem's checksum seed (metadata_csum), derived once from the superblock.
pub(super) fn fs_seed(raw_sb: &[u8], csum_seed_feature: bool) -> u32 {
    const S_UUID_AT: usize = 0x68;
    const S_CHECKSUM_SEED_AT: usize = 0x270;
    if csum_seed_feature {
        return le32(raw_sb, S_CHECKSUM_SEED_AT);
    }
    crc32c(!0, raw_sb.get(S_UUID_AT..S_UUID_AT + 16).unwrap_or(&[]))
}

/// The superblock's own checksum (metadata_csum only): crc32c(~0) of the 1020 bytes
/// before s_checksum. `raw` is the 1024-byte superblock read at `offset`.
pub(super) fn superblock(
    guard: &ChecksumGuard,
    sb: &Superblock,
    raw: &[u8],
    offset: u64,
) -> Result<(), FsError> {
    if !sb.metadata_csum() {
        return Ok(());
    }
    let what = What::fs("ext4 superblock");
    checksum_type(
        guard,
        what,
        raw,
        offset,
        SB_CHECKSUM_TYPE_AT,
        EXT4_CRC32C_CHKSUM,
    )?;
    let stored = le32(raw, SB_CHECKSUM_AT);
    let computed = crc32c(!0, raw.get(..SB_CHECKSUM_AT).unwrap_or(raw));
    guard.check(stored == computed, || {
        mismatch(what, offset + SB_CHECKSUM_AT as u64, stored, computed)
    })
}

/// One group descriptor's bg_checksum: the low 16 bits of crc32c(seed, group, desc)
/// with metadata_csum, else crc16(uuid, group, desc) with uninit_bg; none otherwise.
pub(super) fn group_desc(
    guard: &ChecksumGuard,
    sb: &Superblock,
    group: u64,
    desc: &[u8],
    offset: u64,
) -> Result<(), FsError> {
    let le_group = u32::try_from(group).unwrap_or(u32::MAX).to_le_bytes();
    let stored = le16(desc, BG_CHECKSUM_AT);
    let computed = if sb.metadata_csum() {
        let crc = crc32c(sb.csum_seed, &le_group);
        (crc32c_skipping(crc, desc, BG_CHECKSUM_AT, 2) & 0xFFFF) as u16
    } else if sb.has_group_desc_csum() {
        let mut crc = CRC16.digest();
        crc.update(&sb.s_uuid);
        crc.update(&le_group);
        crc.update(desc.get(..BG_CHECKSUM_AT).unwrap_or(desc));
        crc.update(desc.get(BG_CHECKSUM_AT + 2..).unwrap_or(&[]));
        crc.finalize()
    } else {
        return Ok(());
    };
    guard.check(stored == computed, || {
        let what = format!("ext4 group descriptor {group}");
        mismatch16(what, offset + BG_CHECKSUM_AT as u64, stored, computed)
    })
}

/// A group's block bitmap (`bitmap`: clusters per group / 8 bytes read at `offset`),
/// metadata_csum only: crc32c(fs seed, bitmap), of which 32-byte descriptors keep the low
/// 16 bits.
pub(super) fn block_bitmap(
    guard: &ChecksumGuard,
    sb: &Superblock,
    group: u64,
    stored: u32,
    bitmap: &[u8],
    offset: u64,
) -> Result<(), FsError> {
    if !sb.metadata_csum() {
        return Ok(());
    }
    let computed = crc32c(sb.csum_seed, bitmap);
    let (stored, computed) = if sb.desc_size >= 64 {
        (stored, computed)
    } else {
        (stored & 0xFFFF, computed & 0xFFFF)
    };
    guard.check(stored == computed, || {
        FsError::corrupt(
            CorruptKind::Checksum,
            format!("ext4 block bitmap of group {group}"),
            offset,
            format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        )
    })
}

/// The seed of the blocks inode `ino` owns: crc32c(fs seed, inode number, generation),
/// `generation` being i_generation's four bytes as stored.
pub(super) fn inode_seed(sb: &Superblock, ino: u64, generation: &[u8]) -> u32 {
    let le_ino = u32::try_from(ino).unwrap_or(u32::MAX).to_le_bytes();
    crc32c(crc32c(sb.csum_seed, &le_ino), generation)
}

/// Checks inode `ino`'s record (`raw`, s_inode_size bytes at `offset`, i_extra_isize
/// already validated) and returns the seed of the blocks it owns: crc32c(fs seed,
/// inode number, generation). 0 without metadata_csum.
pub(super) fn inode(
    guard: &ChecksumGuard,
    sb: &Superblock,
    ino: u64,
    raw: &[u8],
    i_extra_isize: u16,
    offset: u64,
) -> Result<u32, FsError> {
    if !sb.metadata_csum() {
        return Ok(0);
    }
    let generation = raw.get(I_GENERATION_AT..I_GENERATION_AT + 4).unwrap_or(&[]);
    let seed = inode_seed(sb, ino, generation);

    let base = raw.get(..GOOD_OLD_INODE_SIZE).unwrap_or(raw);
    let mut computed = crc32c_skipping(seed, base, I_CHECKSUM_LO_AT, 2);
    let mut stored = u32::from(le16(raw, I_CHECKSUM_LO_AT));
    // i_checksum_hi exists when i_extra_isize reaches past it.
    let has_hi = raw.len() > GOOD_OLD_INODE_SIZE
        && GOOD_OLD_INODE_SIZE + usize::from(i_extra_isize) >= I_CHECKSUM_HI_AT + 2;
    if let Some(extra) = raw.get(GOOD_OLD_INODE_SIZE..) {
        let hi_at = I_CHECKSUM_HI_AT - GOOD_OLD_INODE_SIZE;
        computed = if has_hi {
            crc32c_skipping(computed, extra, hi_at, 2)
        } else {
            crc32c(computed, extra)
        };
    }
    if has_hi {
        stored |= u32::from(le16(raw, I_CHECKSUM_HI_AT)) << 16;
    } else {
        computed &= 0xFFFF;
    }
    // e2fsprogs accepts an all-zero base inode whatever its checksum.
    let zeroed = base.iter().all(|b| *b == 0);
    guard.check(stored == computed || zeroed, || {
        let (what, at) = (What::inode(ino), offset + I_CHECKSUM_LO_AT as u64);
        if has_hi {
            mismatch(what, at, stored, computed)
        } else {
            mismatch16(what, at, stored as u16, computed as u16)
        }
    })?;
    Ok(seed)
}

/// An extent tree block below the root: ext4_extent_tail after eh_max entries holds
/// crc32c(inode seed, everything before it). `node` is one block at `offset` whose
/// header (eh_max) was validated.
pub(super) fn extent_block(
    guard: &ChecksumGuard,
    ino: u64,
    inode_seed: u32,
    node: &[u8],
    offset: u64,
) -> Result<(), FsError> {
    let what = What::of_inode("ext4 extent block", ino);
    let eh_max = usize::from(le16(node, 4));
    let tail_at = EXTENT_HEADER_LEN + eh_max * EXTENT_ENTRY_LEN;
    let Some(covered) = node.get(..tail_at).filter(|_| tail_at + 4 <= node.len()) else {
        return guard.check(false, || {
            missing(
                what,
                offset + 4,
                "eh_max leaves no room for the checksum tail",
            )
        });
    };
    let stored = le32(node, tail_at);
    let computed = crc32c(inode_seed, covered);
    guard.check(stored == computed, || {
        mismatch(what, offset + tail_at as u64, stored, computed)
    })
}

/// A directory block: a leaf closed by ext4_dir_entry_tail, or an htree index block
/// (root or interior node) closed by dx_tail; which one is told by the block itself, as
/// e2fsprogs does. `rec_len` decodes a rec_len field for this block size.
pub(super) fn dir_block(
    guard: &ChecksumGuard,
    ino: u64,
    inode_seed: u32,
    block: &[u8],
    offset: u64,
    rec_len: impl Fn(u16) -> u64,
) -> Result<(), FsError> {
    let len = block.len();
    if let Some(tail_at) = leaf_tail(block, &rec_len) {
        let what = What::of_inode("ext4 directory block", ino);
        let stored = le32(block, tail_at + 8);
        let computed = crc32c(inode_seed, block.get(..tail_at).unwrap_or(block));
        return guard.check(stored == computed, || {
            mismatch(what, offset + (tail_at + 8) as u64, stored, computed)
        });
    }
    let what = What::of_inode("ext4 htree index block", ino);
    let Some(count_at) = dx_count_offset(block, &rec_len) else {
        let what = What::of_inode("ext4 directory block", ino);
        return guard.check(false, || {
            missing(
                what,
                offset + len.saturating_sub(DIR_TAIL_LEN) as u64,
                "no checksum tail (metadata_csum) and not an htree index block",
            )
        });
    };
    let limit = usize::from(le16(block, count_at));
    let count = usize::from(le16(block, count_at + 2));
    let tail_at = count_at + limit * DX_ENTRY_LEN;
    if count > limit || tail_at + DX_TAIL_LEN > len {
        return guard.check(false, || {
            missing(
                what,
                offset + count_at as u64,
                &format!("dx count {count} / limit {limit} leave no room for the checksum tail"),
            )
        });
    }
    let entries = block
        .get(..count_at + count * DX_ENTRY_LEN)
        .unwrap_or(block);
    let reserved = block.get(tail_at..tail_at + 4).unwrap_or(&[]);
    let crc = crc32c(crc32c(inode_seed, entries), reserved);
    let computed = crc32c(crc, &[0; 4]);
    let stored = le32(block, tail_at + 4);
    guard.check(stored == computed, || {
        mismatch(what, offset + (tail_at + 4) as u64, stored, computed)
    })
}

/// Where the leaf tail starts, if the last 12 bytes are one (kernel's get_dirent_tail).
fn leaf_tail(block: &[u8], rec_len: &impl Fn(u16) -> u64) -> Option<usize> {
    let at = block.len().checked_sub(DIR_TAIL_LEN)?;
    let tail = block.get(at..)?;
    let is_tail = le32(tail, 0) == 0
        && rec_len(le16(tail, 4)) == DIR_TAIL_LEN as u64
        && tail.get(6) == Some(&0)
        && tail.get(7) == Some(&EXT4_FT_DIR_CSUM);
    is_tail.then_some(at)
}

/// Where dx_countlimit sits if `block` is an htree root (`.` of 12 bytes, `..` taking
/// the rest, a dx_root_info) or an interior node (one empty entry spanning the block).
fn dx_count_offset(block: &[u8], rec_len: &impl Fn(u16) -> u64) -> Option<usize> {
    let len = block.len() as u64;
    let first = rec_len(le16(block, 4));
    if first == len && block.get(6) == Some(&0) {
        return Some(DX_NODE_COUNT_AT);
    }
    let is_root = first == 12
        && rec_len(le16(block, 12 + 4)) == len.checked_sub(12)?
        && le32(block, DX_ROOT_INFO_AT) == 0
        && block.get(DX_ROOT_INFO_AT + 5) == Some(&DX_ROOT_INFO_LEN);
    is_root.then_some(DX_ROOT_COUNT_AT)
}

/// The jbd2 superblock's checksum (journal checksum v2 or v3): crc32c(~0) of its 1024
/// bytes with s_checksum zeroed, stored big-endian.
pub(super) fn journal_superblock(
    guard: &ChecksumGuard,
    ino: u64,
    raw: &[u8],
    offset: u64,
) -> Result<(), FsError> {
    let what = What::of_inode("ext4 journal superblock", ino);
    checksum_type(
        guard,
        what,
        raw,
        offset,
        JSB_CHECKSUM_TYPE_AT,
        JBD2_CRC32C_CHKSUM,
    )?;
    let sb = raw.get(..JSB_LEN).unwrap_or(raw);
    let stored = be32(sb, JSB_CHECKSUM_AT);
    let computed = crc32c_skipping(!0, sb, JSB_CHECKSUM_AT, 4);
    guard.check(stored == computed, || {
        mismatch(what, offset + JSB_CHECKSUM_AT as u64, stored, computed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_the_kernels_from_all_ones() {
        // crc16(~0, "123456789") in the kernel's lib/crc16, chained as the descriptor's
        // parts are.
        assert_eq!(CRC16.checksum(b"123456789"), 0x4B37);
        let mut chained = CRC16.digest();
        chained.update(b"1234");
        chained.update(b"56789");
        assert_eq!(chained.finalize(), 0x4B37);
    }

    #[test]
    fn skipping_reads_the_field_as_zero() {
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let zeroed = [1u8, 2, 0, 0, 5, 6, 7, 8];
        assert_eq!(
            crc32c_skipping(!0, &data, 2, 2),
            crc32c(!0, &zeroed),
            "two bytes"
        );
        let zeroed = [1u8, 2, 3, 4, 0, 0, 0, 0];
        assert_eq!(crc32c_skipping(!0, &data, 4, 4), crc32c(!0, &zeroed));
        // A field past the end leaves the data as it is, plus the zeros.
        assert_eq!(
            crc32c_skipping(!0, &data, 8, 2),
            crc32c(!0, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 0])
        );
    }
}
