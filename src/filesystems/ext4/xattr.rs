//! In-inode extended attributes (the ibody xattr area after i_extra_isize), read only to
//! find `system.data`, which holds the part of inline data that does not fit in i_block.

use super::{le16, le32, What};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

const EXT4_XATTR_MAGIC: u32 = 0xEA02_0000;
/// Size of ext4_xattr_ibody_header (just h_magic).
const IBODY_HEADER_LEN: usize = 4;
/// Fixed part of ext4_xattr_entry, before e_name.
const ENTRY_HEADER_LEN: usize = 16;
/// e_name_index of the "system." namespace.
const EXT4_XATTR_INDEX_SYSTEM: u8 = 7;
const SYSTEM_DATA_NAME: &[u8] = b"data";

/// The value of `system.data` and its byte offset in the volume, or `None` when the
/// inode has no in-inode xattrs or no such attribute.
pub(super) fn find_system_data(
    area: &[u8],
    area_offset: u64,
    ino: u64,
) -> Result<Option<(&[u8], u64)>, FsError> {
    let what = What::of_inode("ext4 in-inode extended attributes", ino);
    let corrupt = |kind: CorruptKind, at: usize, detail: String| {
        FsError::corrupt(kind, what.to_string(), area_offset + at as u64, detail)
    };
    if area.len() < IBODY_HEADER_LEN || le32(area, 0) != EXT4_XATTR_MAGIC {
        return Ok(None);
    }
    let entries = area.get(IBODY_HEADER_LEN..).unwrap_or(&[]);
    let base = IBODY_HEADER_LEN;
    let mut pos = 0usize;
    // Every entry is at least 16 bytes, so this ends within entries.len() / 16 steps.
    while pos + 4 <= entries.len() && le32(entries, pos) != 0 {
        let Some(header) = entries.get(pos..pos + ENTRY_HEADER_LEN) else {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                base + pos,
                "xattr entry runs past the end of the inode".into(),
            ));
        };
        let e_name_len = usize::from(header.first().copied().unwrap_or(0));
        let e_name_index = header.get(1).copied().unwrap_or(0);
        let e_value_offs = usize::from(le16(header, 2));
        let e_value_inum = le32(header, 4);
        let e_value_size = le32(header, 8) as usize;
        let name_start = pos + ENTRY_HEADER_LEN;
        let Some(name) = entries.get(name_start..name_start + e_name_len) else {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                base + pos,
                format!("xattr name of {e_name_len} bytes runs past the end of the inode"),
            ));
        };
        if e_name_index == EXT4_XATTR_INDEX_SYSTEM && name == SYSTEM_DATA_NAME {
            if e_value_inum != 0 {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    base + pos + 4,
                    "system.data is stored in an xattr inode".into(),
                ));
            }
            let value = e_value_offs
                .checked_add(e_value_size)
                .and_then(|end| entries.get(e_value_offs..end))
                .ok_or_else(|| {
                    corrupt(CorruptKind::OutOfRange,
                        base + pos + 2,
                        format!("system.data value ({e_value_size} bytes at {e_value_offs}) lies outside the inode"),
                    )
                })?;
            return Ok(Some((value, area_offset + (base + e_value_offs) as u64)));
        }
        pos = name_start + ((e_name_len + 3) & !3);
    }
    Ok(None)
}
