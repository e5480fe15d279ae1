//! MBR partition tables with extended and logical partitions.
//!
//! The primary table and each EBR are decoded by `mbrman`; the EBR chain is walked here
//! because `mbrman`'s own walk adds on-disk 32-bit LBAs unchecked.

use std::sync::Arc;

use super::{PartitionEntry, TableError};
use crate::image::{BlockSource, CorruptKind, MemoryImage, SourceCursor, Window};

/// Linux numbers logical partitions from 5; no real disk chains more than this many.
const MAX_LOGICAL: usize = 256;
const PROTECTIVE: u8 = 0xee;

/// The decoded primary table, or `None` when sector 0 holds no MBR signature. A sector 0
/// that cannot be read is an error, never "no MBR".
pub fn read_header(disk: &Arc<dyn BlockSource>) -> Result<Option<mbrman::MBRHeader>, TableError> {
    if disk.len() < 512 {
        return Ok(None);
    }
    let mut sector = [0u8; 512];
    disk.read_exact_at(0, &mut sector).map_err(|e| {
        TableError::new(
            CorruptKind::Unreadable,
            "MBR",
            0,
            format!("cannot be read: {e}"),
        )
    })?;
    let mut cursor = SourceCursor::new(Arc::new(MemoryImage::new(sector.to_vec())));
    Ok(mbrman::MBRHeader::read_from(&mut cursor).ok())
}

/// True when the table marks the disk as GPT (a protective or hybrid MBR).
pub fn is_protective(header: &mbrman::MBRHeader) -> bool {
    header.iter().any(|(_, entry)| entry.sys == PROTECTIVE)
}

/// True when the table has any used entry.
pub fn has_partitions(header: &mbrman::MBRHeader) -> bool {
    header.iter().any(|(_, entry)| entry.is_used())
}

fn entry(
    disk: &dyn BlockSource,
    number: u32,
    start_lba: u64,
    sectors: u64,
    sys: u8,
    signature: u32,
    table_at: u64,
) -> PartitionEntry {
    let offset = start_lba.saturating_mul(512);
    let size = sectors.saturating_mul(512);
    let end = offset.saturating_add(size);
    let problem = (end > disk.len()).then(|| {
        format!(
            "MBR entry {number} (table at byte {table_at}) ends at byte {end}, past the end of the {}-byte disk",
            disk.len()
        )
    });
    PartitionEntry {
        number,
        offset,
        size,
        type_id: format!("0x{sys:02x}"),
        name: None,
        // blkid's PARTUUID for MBR disks: disk signature and partition number.
        part_uuid: Some(format!("{signature:08x}-{number:02x}")),
        problem,
    }
}

/// Reads the primary partitions (1-4) and the logical partitions (5 on) of an MBR disk.
pub fn read(
    disk: &Arc<dyn BlockSource>,
    header: &mbrman::MBRHeader,
) -> Result<Vec<PartitionEntry>, TableError> {
    let signature = u32::from_le_bytes(header.disk_signature);
    let mut entries = Vec::new();
    let mut extended = None;
    for (index, part) in header.iter() {
        if !part.is_used() {
            continue;
        }
        let number = u32::try_from(index).unwrap_or(0);
        if part.is_extended() {
            extended = Some((u64::from(part.starting_lba), u64::from(part.sectors)));
            continue;
        }
        entries.push(entry(
            disk.as_ref(),
            number,
            u64::from(part.starting_lba),
            u64::from(part.sectors),
            part.sys,
            signature,
            0,
        ));
    }
    if let Some((start, sectors)) = extended {
        read_logical(disk, start, sectors, signature, &mut entries)?;
    }
    Ok(entries)
}

/// Follows the EBR chain. Each link must move forward inside the extended partition, so the
/// walk ends; a count cap guards against a chain of thousands of tiny links.
fn read_logical(
    disk: &Arc<dyn BlockSource>,
    extended_start: u64,
    extended_sectors: u64,
    signature: u32,
    entries: &mut Vec<PartitionEntry>,
) -> Result<(), TableError> {
    let extended_end = extended_start.saturating_add(extended_sectors);
    let mut relative = 0u64;
    for number in 5u32.. {
        let ebr_lba = extended_start.saturating_add(relative);
        let ebr_at = ebr_lba.saturating_mul(512);
        // `MBRHeader::read_from` always reads from position 0, so give it a window that
        // starts at this EBR.
        let sector = Window::new(Arc::clone(disk), ebr_at, 512).ok_or_else(|| {
            TableError::new(
                CorruptKind::OutOfRange,
                "EBR",
                ebr_at,
                "lies past the end of the disk".to_string(),
            )
        })?;
        let mut cursor = SourceCursor::new(Arc::new(sector));
        let ebr = match mbrman::MBRHeader::read_from(&mut cursor) {
            Ok(ebr) => ebr,
            // An empty extended partition need not hold an EBR at all.
            Err(_) if relative == 0 => return Ok(()),
            Err(e) => {
                return Err(TableError::new(
                    CorruptKind::Invalid,
                    "EBR",
                    ebr_at,
                    e.to_string(),
                ))
            }
        };
        let logical = &ebr.partition_1;
        if logical.is_used() {
            entries.push(entry(
                disk.as_ref(),
                number,
                ebr_lba.saturating_add(u64::from(logical.starting_lba)),
                u64::from(logical.sectors),
                logical.sys,
                signature,
                ebr_at,
            ));
        }
        let next = &ebr.partition_2;
        if !next.is_used() || next.starting_lba == 0 {
            return Ok(());
        }
        let next_relative = u64::from(next.starting_lba);
        if next_relative <= relative || extended_start.saturating_add(next_relative) >= extended_end
        {
            return Err(TableError::new(CorruptKind::Loop,
                "EBR",
                ebr_at,
                format!("link to the next EBR (relative LBA {next_relative}) does not move forward inside the extended partition"),
            ));
        }
        if entries.len() >= MAX_LOGICAL {
            return Err(TableError::new(
                CorruptKind::TooLarge,
                "EBR",
                ebr_at,
                format!("more than {MAX_LOGICAL} logical partitions"),
            ));
        }
        relative = next_relative;
    }
    Ok(())
}
