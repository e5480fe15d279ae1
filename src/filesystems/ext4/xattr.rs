//! In-inode extended attributes (the ibody xattr area after i_extra_isize), read only to
//! find `system.data`, which holds the part of inline data that does not fit in i_block.
//!
//! The whole entry table is checked before the value is used, as e2fsck checks it: every
//! entry and its name inside the area, the table closed by its four zero bytes, and the
//! value inside the area, clear of the table and matching its hash. A value taken from a
//! damaged record would hand table bytes to the reader as file contents.

use super::{le16, le32, What};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

const EXT4_XATTR_MAGIC: u32 = 0xEA02_0000;
/// Size of ext4_xattr_ibody_header (just h_magic).
const IBODY_HEADER_LEN: usize = 4;
/// Fixed part of ext4_xattr_entry, before e_name.
const ENTRY_HEADER_LEN: usize = 16;
/// The four zero bytes that close the entry table.
const TABLE_END_LEN: usize = 4;
/// e_name_index of the "system." namespace.
const EXT4_XATTR_INDEX_SYSTEM: u8 = 7;
const SYSTEM_DATA_NAME: &[u8] = b"data";
/// ext4_xattr_hash_entry's shifts.
const NAME_HASH_SHIFT: u32 = 5;
const VALUE_HASH_SHIFT: u32 = 16;

/// The system.data entry, as found in the table.
struct Found {
    /// Where its entry starts, relative to the area.
    entry_at: usize,
    e_value_offs: usize,
    e_value_size: usize,
    e_hash: u32,
}

/// The value of `system.data` of an inline-data inode, which must have one (the kernel
/// creates it with the inode, empty or not; e2fsck flags its absence), with its byte
/// offset in the volume.
pub(super) fn inline_data_tail(
    area: &[u8],
    area_offset: u64,
    ino: u64,
) -> Result<(&[u8], u64), FsError> {
    let what = What::of_inode("ext4 in-inode extended attributes", ino);
    if area.len() < IBODY_HEADER_LEN || le32(area, 0) != EXT4_XATTR_MAGIC {
        return Err(FsError::corrupt(
            CorruptKind::Magic,
            what.to_string(),
            area_offset,
            format!(
                "inline-data inode has no xattr area (magic {:#010x}, not {EXT4_XATTR_MAGIC:#010x}), so no system.data",
                if area.len() < IBODY_HEADER_LEN { 0 } else { le32(area, 0) }
            ),
        ));
    }
    find_system_data(area, area_offset, ino)?.ok_or_else(|| {
        FsError::corrupt(
            CorruptKind::Invalid,
            what.to_string(),
            area_offset,
            "inline-data inode has no system.data attribute",
        )
    })
}

/// The value of `system.data` and its byte offset in the volume, or `None` when the
/// inode has no in-inode xattrs or no such attribute.
fn find_system_data(
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
    let mut found: Option<Found> = None;
    let mut pos = IBODY_HEADER_LEN;
    // Every entry is at least 16 bytes, so this ends within area.len() / 16 steps.
    loop {
        if pos + TABLE_END_LEN > area.len() {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                pos,
                "xattr entry table is not closed before the end of the inode".into(),
            ));
        }
        if le32(area, pos) == 0 {
            break;
        }
        let Some(header) = area.get(pos..pos + ENTRY_HEADER_LEN) else {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                pos,
                "xattr entry runs past the end of the inode".into(),
            ));
        };
        let e_name_len = usize::from(header.first().copied().unwrap_or(0));
        let e_name_index = header.get(1).copied().unwrap_or(0);
        let name_start = pos + ENTRY_HEADER_LEN;
        let Some(name) = area.get(name_start..name_start + e_name_len) else {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                pos,
                format!("xattr name of {e_name_len} bytes runs past the end of the inode"),
            ));
        };
        if name.is_empty() || name.contains(&0) {
            return Err(corrupt(
                CorruptKind::Invalid,
                pos,
                format!("xattr name of {e_name_len} bytes is empty or holds a NUL byte"),
            ));
        }
        if e_name_index == EXT4_XATTR_INDEX_SYSTEM && name == SYSTEM_DATA_NAME {
            if le32(header, 4) != 0 {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    pos + 4,
                    "system.data is stored in an xattr inode".into(),
                ));
            }
            found = Some(Found {
                entry_at: pos,
                e_value_offs: usize::from(le16(header, 2)),
                e_value_size: le32(header, 8) as usize,
                e_hash: le32(header, 12),
            });
        }
        pos = name_start + ((e_name_len + 3) & !3);
    }
    let table_end = pos + TABLE_END_LEN;
    let Some(entry) = found else {
        return Ok(None);
    };
    value(area, area_offset, table_end, &entry)
        .map(Some)
        .map_err(|(at, detail)| corrupt(CorruptKind::Invalid, at, detail))
}

/// The value `entry` names, checked against the area and the table ending at `table_end`;
/// on corruption, the offset within the area and why.
fn value<'a>(
    area: &'a [u8],
    area_offset: u64,
    table_end: usize,
    entry: &Found,
) -> Result<(&'a [u8], u64), (usize, String)> {
    let Found {
        entry_at,
        e_value_offs,
        e_value_size,
        e_hash,
    } = *entry;
    // e_value_offs counts from the first entry, just after the four-byte magic.
    let start = IBODY_HEADER_LEN + e_value_offs;
    let Some(value) = start
        .checked_add(e_value_size)
        .and_then(|end| area.get(start..end))
    else {
        return Err((
            entry_at + 2,
            format!(
                "system.data value ({e_value_size} bytes at offset {e_value_offs}) runs past the end of the inode"
            ),
        ));
    };
    if e_value_size > 0 && start < table_end {
        return Err((
            entry_at + 2,
            format!(
                "system.data value at offset {e_value_offs} overlaps the xattr entry table (which ends at {})",
                table_end - IBODY_HEADER_LEN
            ),
        ));
    }
    if e_hash != 0 && e_hash != entry_hash(SYSTEM_DATA_NAME, area, start, e_value_size) {
        return Err((
            entry_at + 12,
            format!("system.data hash {e_hash:#010x} does not match its name and value"),
        ));
    }
    Ok((value, area_offset + start as u64))
}

/// ext4_xattr_hash_entry: the name's bytes, then the value's 32-bit words (zero padded).
fn entry_hash(name: &[u8], area: &[u8], start: usize, size: usize) -> u32 {
    let mut hash = 0u32;
    for byte in name {
        hash = (hash << NAME_HASH_SHIFT) ^ (hash >> (32 - NAME_HASH_SHIFT)) ^ u32::from(*byte);
    }
    let mut at = start;
    while at < start + size {
        let mut word = [0u8; 4];
        for (i, byte) in word.iter_mut().enumerate() {
            *byte = area.get(at + i).copied().unwrap_or(0);
        }
        hash = (hash << VALUE_HASH_SHIFT)
            ^ (hash >> (32 - VALUE_HASH_SHIFT))
            ^ u32::from_le_bytes(word);
        at += 4;
    }
    hash
}
