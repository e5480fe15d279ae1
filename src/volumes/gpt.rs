//! GUID partition tables, read through the `gpt` crate after our own header checks.
//!
//! The crate trusts two header fields (it asserts a 128-byte entry size and reads as many
//! entries as the header claims), so both headers are validated here before it sees them.

use std::sync::Arc;

use super::{PartitionEntry, TableError};
use crate::image::{BlockSource, CorruptKind, SourceCursor};

/// Entry counts beyond this are not produced by any partitioning tool; refusing them keeps
/// a crafted header from making us read gigabytes of "entries".
const MAX_ENTRIES: u32 = 16_384;
const ENTRY_SIZE: u32 = 128;

/// The sector size of a disk whose LBA 1 holds a GPT header, trying 512 then 4096. A read
/// that fails inside the disk is an error, never "no GPT".
pub fn detect_sector_size(disk: &dyn BlockSource) -> Result<Option<u64>, TableError> {
    for size in [512u64, 4096] {
        if size.saturating_add(8) > disk.len() {
            continue;
        }
        let mut signature = [0u8; 8];
        disk.read_exact_at(size, &mut signature).map_err(|e| {
            TableError::new(
                CorruptKind::Unreadable,
                "GPT header",
                size,
                format!("cannot be read: {e}"),
            )
        })?;
        if &signature == b"EFI PART" {
            return Ok(Some(size));
        }
    }
    Ok(None)
}

/// Checks the fields the `gpt` crate would trust, in both headers that carry a signature.
fn validate_header(disk: &dyn BlockSource, at: u64, sector: u64) -> Result<(), TableError> {
    let mut header = [0u8; 92];
    if disk.read_exact_at(at, &mut header).is_err() || header.get(0..8) != Some(b"EFI PART") {
        return Ok(());
    }
    let field = |start: usize| -> u64 {
        header
            .get(start..start + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    };
    let entries_lba = field(72);
    let count_and_size = field(80);
    let count = (count_and_size & 0xffff_ffff) as u32;
    let entry_size = (count_and_size >> 32) as u32;
    if entry_size != ENTRY_SIZE {
        return Err(TableError::new(
            CorruptKind::Invalid,
            "GPT header",
            at,
            format!("partition entry size {entry_size} is not supported (only {ENTRY_SIZE})"),
        ));
    }
    if count > MAX_ENTRIES {
        return Err(TableError::new(
            CorruptKind::TooLarge,
            "GPT header",
            at,
            format!(
                "claims {count} partition entries, more than the {MAX_ENTRIES} amiscan accepts"
            ),
        ));
    }
    let array_end = entries_lba
        .checked_mul(sector)
        .and_then(|start| start.checked_add(u64::from(count) * u64::from(ENTRY_SIZE)));
    match array_end {
        Some(end) if end <= disk.len() => Ok(()),
        _ => Err(TableError::new(CorruptKind::OutOfRange,
            "GPT header",
            at,
            format!(
                "partition entry array at LBA {entries_lba} ({count} entries) runs past the end of the {}-byte disk",
                disk.len()
            ),
        )),
    }
}

/// Reads the partition entries of a GPT disk with `sector`-byte logical blocks.
pub fn read(disk: &Arc<dyn BlockSource>, sector: u64) -> Result<Vec<PartitionEntry>, TableError> {
    validate_header(disk.as_ref(), sector, sector)?;
    let backup_at = disk.len().saturating_sub(sector) / sector * sector;
    validate_header(disk.as_ref(), backup_at, sector)?;

    let block_size = if sector == 4096 {
        gpt::disk::LogicalBlockSize::Lb4096
    } else {
        gpt::disk::LogicalBlockSize::Lb512
    };
    let table = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(block_size)
        .open_from_device(SourceCursor::new(Arc::clone(disk)))
        .map_err(|e| TableError::new(CorruptKind::Invalid, "GPT header", sector, e.to_string()))?;

    let mut entries = Vec::new();
    for (number, part) in table.partitions() {
        let start = part.first_lba.checked_mul(sector);
        let end = part
            .last_lba
            .checked_add(1)
            .and_then(|lba| lba.checked_mul(sector));
        let entry_offset = part_entry_offset(table.header().part_start, *number, sector);
        let (offset, size, problem) = match (start, end) {
            (Some(start), Some(end)) if end > start && end <= disk.len() => (start, end - start, None),
            (Some(start), Some(end)) if end > start => (
                start,
                end - start,
                Some(format!(
                    "GPT entry {number} at byte {entry_offset} ends at byte {end}, past the end of the {}-byte disk",
                    disk.len()
                )),
            ),
            _ => (
                0,
                0,
                Some(format!(
                    "GPT entry {number} at byte {entry_offset} has first LBA {} after last LBA {}",
                    part.first_lba, part.last_lba
                )),
            ),
        };
        entries.push(PartitionEntry {
            number: *number,
            offset,
            size,
            type_id: part.part_type_guid.guid.to_string(),
            name: (!part.name.is_empty()).then(|| part.name.clone()),
            part_uuid: Some(part.part_guid.to_string()),
            problem,
        });
    }
    Ok(entries)
}

fn part_entry_offset(array_lba: u64, number: u32, sector: u64) -> u64 {
    array_lba
        .saturating_mul(sector)
        .saturating_add(u64::from(number.saturating_sub(1)) * u64::from(ENTRY_SIZE))
}
