//! The internal snapshot table: listed for `inspect`, never read (the active layer is).

use crate::image::CorruptKind;
use crate::image::{read_vec, BlockSource, ContainerError, Snapshot};

use super::be;
use super::header::{Errors, Header};

/// Most snapshots amiscan lists (qemu's QCOW_MAX_SNAPSHOTS).
pub const MAX_SNAPSHOTS: u32 = 65_536;

/// Largest snapshot table amiscan reads (qemu's QCOW_MAX_SNAPSHOTS_SIZE).
pub const MAX_SNAPSHOT_TABLE_BYTES: u64 = 64 << 20;

/// Largest extra data per entry (qemu's QCOW_MAX_SNAPSHOT_EXTRA_DATA).
pub const MAX_SNAPSHOT_EXTRA: u32 = 1024;

/// Fixed part of a snapshot table entry.
const ENTRY_FIXED: u64 = 40;

/// Parses `nb_snapshots` entries at `snapshots_offset` (already checked to lie in the file).
pub fn parse(
    file: &dyn BlockSource,
    name: &str,
    header: &Header,
) -> Result<Vec<Snapshot>, ContainerError> {
    let err = Errors { name };
    let count = header.nb_snapshots;
    if count == 0 {
        return Ok(Vec::new());
    }
    if count > MAX_SNAPSHOTS {
        return Err(err.corrupt(
            CorruptKind::TooLarge,
            "qcow2 header field nb_snapshots",
            60,
            format!("is {count}, more than the limit of {MAX_SNAPSHOTS}"),
        ));
    }
    let start = header.snapshots_offset;
    // The table may not extend past the file or the size limit.
    let limit = file
        .len()
        .min(start.saturating_add(MAX_SNAPSHOT_TABLE_BYTES));
    let mut out = Vec::new();
    let mut pos = start;
    for index in 0..count {
        let structure = format!("qcow2 snapshot table entry {index}");
        // Entries are 8-byte aligned.
        pos = pos.checked_next_multiple_of(8).ok_or_else(|| {
            err.corrupt(
                CorruptKind::OutOfRange,
                structure.clone(),
                pos,
                "offset overflows",
            )
        })?;
        let past = |what: &str, at: u64| {
            err.corrupt(CorruptKind::OutOfRange,
                structure.clone(),
                at,
                format!(
                    "its {what} runs past the end of the file or the {MAX_SNAPSHOT_TABLE_BYTES}-byte \
                     table limit (byte {limit})"
                ),
            )
        };
        if pos.checked_add(ENTRY_FIXED).is_none_or(|end| end > limit) {
            return Err(past("fixed part", pos));
        }
        let fixed = read_vec(file, pos, ENTRY_FIXED as usize).map_err(|e| err.io(e))?;
        let field32 = |at: usize| be::u32_at(&fixed, at).unwrap_or(0);
        let id_len = u64::from(be::u16_at(&fixed, 12).unwrap_or(0));
        let name_len = u64::from(be::u16_at(&fixed, 14).unwrap_or(0));
        let date_sec = field32(16);
        let extra_len = field32(36);
        if extra_len > MAX_SNAPSHOT_EXTRA {
            return Err(err.corrupt(
                CorruptKind::TooLarge,
                structure.clone(),
                pos + 36,
                format!(
                    "extra data of {extra_len} bytes exceeds the limit of {MAX_SNAPSHOT_EXTRA}"
                ),
            ));
        }
        let var_at = pos + ENTRY_FIXED;
        // At most 1024 + 2 * 65535 bytes.
        let var_len = u64::from(extra_len) + id_len + name_len;
        if var_at + var_len > limit {
            return Err(past("id, name or extra data", var_at));
        }
        let var = read_vec(file, var_at, var_len as usize).map_err(|e| err.io(e))?;
        let extra_len = extra_len as usize;
        let extra = var.get(..extra_len).unwrap_or_default();
        let id = var
            .get(extra_len..extra_len + id_len as usize)
            .unwrap_or_default();
        let label = var.get(extra_len + id_len as usize..).unwrap_or_default();
        // Extra data: vm_state_size_large (8 bytes), then the disk size when it was taken;
        // without it the snapshot has the image's size.
        let virtual_size = be::u64_at(extra, 8).unwrap_or(header.size);
        out.push(Snapshot {
            id: String::from_utf8_lossy(id).into_owned(),
            name: String::from_utf8_lossy(label).into_owned(),
            virtual_size: Some(virtual_size),
            date: Some(i64::from(date_sec)),
        });
        pos = var_at + var_len;
    }
    Ok(out)
}
