//! XFS directories: the shortform list inside the inode, and the data blocks
//! (`xfs_dir2_data_hdr` / `xfs_dir3_data_hdr`) that hold the entries of the block, leaf,
//! node and btree forms. Listing never needs the hash-ordered leaf and free-index blocks:
//! every entry lives in a data block in the first 32 GiB of the directory's address space.

use super::inode::crc_with_hole;
use super::superblock::Superblock;
use super::What;
use crate::bytes::{array, be16, be32, be64, le32};
use crate::filesystems::{DirEntry, FsError};
use crate::image::CorruptKind;

const DATA_MAGIC_V4: &[u8; 4] = b"XD2D";
const BLOCK_MAGIC_V4: &[u8; 4] = b"XD2B";
const DATA_MAGIC_V5: &[u8; 4] = b"XDD3";
const BLOCK_MAGIC_V5: &[u8; 4] = b"XDB3";
/// v4: magic and three best-free pairs. v5: the self-describing header (magic, crc,
/// blkno, lsn, uuid, owner), three best-free pairs and padding.
const DATA_HEADER_V4: usize = 16;
const DATA_HEADER_V5: usize = 64;
const DATA_CRC_OFFSET: usize = 4;
/// A single-block directory ends in a tail (leaf count, stale count) preceded by its leaf
/// entries (hash, address), 8 bytes each.
const BLOCK_TAIL: usize = 8;
const LEAF_ENTRY: usize = 8;
const FREE_TAG: u16 = 0xffff;
/// Directory entries are aligned to 8 bytes.
const ALIGN: usize = 8;
/// Byte offset where a directory's leaf blocks start (XFS_DIR2_LEAF_OFFSET).
pub(super) const LEAF_OFFSET: u64 = 32 << 30;

/// Parses a shortform directory (the data fork of a local-format directory inode).
pub(super) fn parse_shortform(
    fork: &[u8],
    size: u64,
    fork_offset: u64,
    ino: u64,
    sb: &Superblock,
    entries: &mut Vec<DirEntry>,
) -> Result<(), FsError> {
    let what = What::of_inode("xfs shortform directory", ino);
    let corrupt = |kind: CorruptKind, at: usize, detail: String| {
        FsError::corrupt(kind, what.to_string(), fork_offset + at as u64, detail)
    };
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    let Some(data) = fork.get(..len) else {
        return Err(corrupt(
            CorruptKind::OutOfRange,
            0,
            format!("size {size} exceeds the {}-byte data fork", fork.len()),
        ));
    };
    let count = usize::from(data.first().copied().unwrap_or(0));
    let wide = data.get(1).copied().unwrap_or(0) != 0;
    let ino_len = if wide { 8 } else { 4 };
    let mut at = 2 + ino_len;
    if at > data.len() {
        return Err(corrupt(
            CorruptKind::Truncated,
            0,
            "header does not fit".into(),
        ));
    }
    let ftype = usize::from(sb.has_ftype);
    for _ in 0..count {
        let namelen = usize::from(data.get(at).copied().unwrap_or(0));
        let name_at = at + 3;
        let ino_at = name_at + namelen + ftype;
        let end = ino_at + ino_len;
        if namelen == 0 || end > data.len() {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                at,
                "entry runs past the directory's size".into(),
            ));
        }
        let child = if wide {
            be64(data, ino_at) & 0x00ff_ffff_ffff_ffff
        } else {
            u64::from(be32(data, ino_at))
        };
        let name = data.get(name_at..name_at + namelen).unwrap_or(&[]);
        check_entry(name, child, sb)
            .map_err(|fault| corrupt(fault.kind(), at, fault.to_string()))?;
        entries.push(DirEntry {
            name: name.to_vec(),
            node: child,
        });
        at = end;
    }
    Ok(())
}

/// What is wrong with one directory entry, before the caller places it in its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum EntryFault {
    #[error("name contains '/' or NUL")]
    Name,
    #[error("names inode {0}, outside the filesystem")]
    Inode(u64),
}

impl EntryFault {
    fn kind(self) -> CorruptKind {
        match self {
            Self::Name => CorruptKind::Invalid,
            Self::Inode(_) => CorruptKind::OutOfRange,
        }
    }
}

/// Refuses names the kernel would never store and inode numbers outside the filesystem.
fn check_entry(name: &[u8], child: u64, sb: &Superblock) -> Result<(), EntryFault> {
    if name.contains(&b'/') || name.contains(&0) {
        return Err(EntryFault::Name);
    }
    if sb.ino_location(child).is_none() {
        return Err(EntryFault::Inode(child));
    }
    Ok(())
}

/// Parses one directory data block (`block`, read at `offset`, whose disk address the
/// caller checked) into `entries`, skipping `.` and `..`.
pub(super) fn parse_data_block(
    block: &[u8],
    offset: u64,
    ino: u64,
    sb: &Superblock,
    entries: &mut Vec<DirEntry>,
) -> Result<(), FsError> {
    let what = What::of_inode("xfs directory block", ino);
    let corrupt = |kind: CorruptKind, at: usize, detail: String| {
        FsError::corrupt(kind, what.to_string(), offset + at as u64, detail)
    };
    let magic = block.get(..4).unwrap_or(&[]);
    let (header, single) = match (sb.is_v5(), magic) {
        (false, m) if m == DATA_MAGIC_V4 => (DATA_HEADER_V4, false),
        (false, m) if m == BLOCK_MAGIC_V4 => (DATA_HEADER_V4, true),
        (true, m) if m == DATA_MAGIC_V5 => (DATA_HEADER_V5, false),
        (true, m) if m == BLOCK_MAGIC_V5 => (DATA_HEADER_V5, true),
        _ => {
            return Err(corrupt(
                CorruptKind::Magic,
                0,
                "bad magic (not a directory data block)".into(),
            ))
        }
    };
    if sb.is_v5() {
        let stored = le32(block, DATA_CRC_OFFSET);
        let computed = crc_with_hole(block, DATA_CRC_OFFSET);
        sb.checksums.check(stored == computed, || {
            corrupt(
                CorruptKind::Checksum,
                DATA_CRC_OFFSET,
                format!("CRC {stored:#010x} does not match the contents ({computed:#010x})"),
            )
        })?;
        if be64(block, 8) != offset / 512 {
            return Err(corrupt(
                CorruptKind::Invalid,
                8,
                "records another block's address".into(),
            ));
        }
        if array::<16>(block, 24) != Some(sb.meta_uuid) {
            return Err(corrupt(
                CorruptKind::Invalid,
                24,
                "belongs to another filesystem (UUID)".into(),
            ));
        }
        if be64(block, 40) != ino {
            return Err(corrupt(
                CorruptKind::Invalid,
                40,
                format!("belongs to inode {}", be64(block, 40)),
            ));
        }
    }
    let end = if single {
        let leaves = usize::try_from(be32(block, block.len() - BLOCK_TAIL)).unwrap_or(usize::MAX);
        leaves
            .checked_mul(LEAF_ENTRY)
            .and_then(|l| block.len().checked_sub(BLOCK_TAIL + l))
            .filter(|end| *end >= header)
            .ok_or_else(|| {
                corrupt(
                    CorruptKind::OutOfRange,
                    block.len() - BLOCK_TAIL,
                    format!("{leaves} leaf entries do not fit in the block"),
                )
            })?
    } else {
        block.len()
    };
    let ftype = usize::from(sb.has_ftype);
    let mut at = header;
    // Every step advances by at least ALIGN bytes, so the loop ends.
    while at < end {
        if be16(block, at) == FREE_TAG {
            let len = usize::from(be16(block, at + 2));
            if len < ALIGN || len % ALIGN != 0 || at + len > end {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    at,
                    format!("unused entry of {len} bytes"),
                ));
            }
            at += len;
            continue;
        }
        let child = be64(block, at);
        let namelen = usize::from(block.get(at + 8).copied().unwrap_or(0));
        let len = (8 + 1 + namelen + ftype + 2).next_multiple_of(ALIGN);
        if namelen == 0 || at + len > end {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                at,
                "entry runs past the data area".into(),
            ));
        }
        if usize::from(be16(block, at + len - 2)) != at {
            return Err(corrupt(
                CorruptKind::Invalid,
                at + len - 2,
                "entry tag does not match its offset".into(),
            ));
        }
        let name = block.get(at + 9..at + 9 + namelen).unwrap_or(&[]);
        if name != b"." && name != b".." {
            check_entry(name, child, sb)
                .map_err(|fault| corrupt(fault.kind(), at, fault.to_string()))?;
            entries.push(DirEntry {
                name: name.to_vec(),
                node: child,
            });
        }
        at += len;
    }
    Ok(())
}
