//! Linear directory entries (ext4_dir_entry_2, or ext4_dir_entry without the filetype
//! feature), parsed one block or inline region at a time.
//!
//! Hashed (htree) directories need no special case: their index blocks present
//! themselves as entries with inode 0 or as `.`/`..`, which are skipped, and every
//! real entry also lives in an ordinary leaf block.

use super::{le16, le32, What};
use crate::filesystems::{DirEntry, FsError};
use crate::image::CorruptKind;

/// Smallest valid rec_len (EXT4_DIR_REC_LEN(1)): the kernel rejects anything shorter.
const EXT4_DIR_REC_LEN_MIN: u64 = 12;
const DIRENT_HEADER_LEN: u64 = 8;
/// rec_len encodings for 64 KiB blocks, where a full block does not fit in 16 bits.
const EXT4_MAX_REC_LEN: u16 = 0xFFFF;
const BIG_BLOCK_SIZE: u64 = 65536;

/// How to read entries of one filesystem.
#[derive(Debug, Clone, Copy)]
pub(super) struct DirFormat {
    /// INCOMPAT_FILETYPE: name_len is one byte followed by file_type.
    pub filetype: bool,
    pub block_size: u64,
    pub inodes_count: u32,
}

/// ext4_rec_len_from_disk.
pub(super) fn rec_len_from_disk(raw: u16, block_size: u64) -> u64 {
    if block_size < BIG_BLOCK_SIZE {
        u64::from(raw)
    } else if raw == EXT4_MAX_REC_LEN || raw == 0 {
        block_size
    } else {
        u64::from(raw & 0xFFFC) | (u64::from(raw & 3) << 16)
    }
}

/// Appends the live entries of `block` (a directory block, or an inline-data region at
/// volume offset `offset`) to `out`, skipping `.`, `..` and unused entries.
pub(super) fn parse_block(
    block: &[u8],
    offset: u64,
    ino: u64,
    format: DirFormat,
    out: &mut Vec<DirEntry>,
) -> Result<(), FsError> {
    let what = What::of_inode("ext4 directory entry", ino);
    let len = block.len() as u64;
    let mut pos = 0u64;
    // Each step advances by rec_len >= 12, so this ends within len / 12 steps.
    while pos < len {
        let at = offset + pos;
        let corrupt = |kind: CorruptKind, detail: String| {
            FsError::corrupt(kind, what.to_string(), at, detail)
        };
        let start = usize::try_from(pos).unwrap_or(usize::MAX);
        let Some(header) = block
            .get(start..)
            .and_then(|rest| rest.get(..DIRENT_HEADER_LEN as usize))
        else {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                format!("entry header at byte {pos} runs past the {len}-byte block"),
            ));
        };
        let inode = le32(header, 0);
        let rec_len = rec_len_from_disk(le16(header, 4), format.block_size);
        let name_len = if format.filetype {
            u64::from(header.get(6).copied().unwrap_or(0))
        } else {
            u64::from(le16(header, 6))
        };
        if rec_len < EXT4_DIR_REC_LEN_MIN || !rec_len.is_multiple_of(4) {
            return Err(corrupt(
                CorruptKind::Invalid,
                format!("rec_len {rec_len} is below 12 or not a multiple of 4"),
            ));
        }
        if rec_len > len - pos {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                format!(
                "rec_len {rec_len} runs past the end of the {len}-byte block (entry at byte {pos})"
            ),
            ));
        }
        if name_len > 255 || DIRENT_HEADER_LEN + name_len > rec_len {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                format!("name_len {name_len} does not fit in rec_len {rec_len}"),
            ));
        }
        if inode != 0 {
            let name_start = start + DIRENT_HEADER_LEN as usize;
            let name = block
                .get(name_start..name_start + name_len as usize)
                .ok_or_else(|| {
                    corrupt(CorruptKind::OutOfRange, "name runs past the block".into())
                })?;
            if name != b"." && name != b".." {
                if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                    return Err(corrupt(
                        CorruptKind::Invalid,
                        format!("invalid name {:?}", String::from_utf8_lossy(name)),
                    ));
                }
                if inode > format.inodes_count {
                    return Err(corrupt(
                        CorruptKind::Invalid,
                        format!(
                            "inode {inode} is past s_inodes_count {}",
                            format.inodes_count
                        ),
                    ));
                }
                out.push(DirEntry {
                    name: name.to_vec(),
                    node: u64::from(inode),
                });
            }
        }
        pos += rec_len;
    }
    Ok(())
}
