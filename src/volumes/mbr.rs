//! MBR partition tables with extended and logical partitions.
//!
//! The primary table and each EBR are decoded by `mbrman`; the EBR chain is walked here
//! because `mbrman`'s own walk adds on-disk 32-bit LBAs unchecked. The protective MBR of
//! a GPT disk is checked here too, as Linux checks it before it reads the GPT.

use std::sync::Arc;

use super::sanity::{ProblemKind, TableProblem};
use super::{PartitionEntry, TableError};
use crate::image::{BlockSource, CorruptKind, MemoryImage, SourceCursor, Window};

/// Linux numbers logical partitions from 5; no real disk chains more than this many.
const MAX_LOGICAL: usize = 256;
const PROTECTIVE: u8 = 0xee;
/// Where the four primary entries start in sector 0 (and in every EBR).
const TABLE_AT: u64 = 446;
const ENTRY_LEN: u64 = 16;

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

/// An ordinary entry of the MBR in front of a GPT (a hybrid MBR's), in bytes.
#[derive(Debug, Clone, Copy)]
pub struct MirrorEntry {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    pub entry_at: u64,
}

/// Checks sector 0 of a GPT disk as Linux does before it reads the GPT (a signature and a
/// protective 0xEE entry starting at LBA 1), and returns the ordinary entries beside the
/// protective one, which must mirror GPT entries. MBR LBAs count `sector`-byte blocks.
pub fn beside_gpt(
    header: Option<&mbrman::MBRHeader>,
    disk_len: u64,
    sector: u64,
) -> (Vec<TableProblem>, Vec<MirrorEntry>) {
    let note = |at: u64, message: String| {
        TableProblem::new(ProblemKind::ProtectiveMbr, at, false, message)
    };
    let Some(header) = header else {
        return (
            vec![note(
                0,
                "sector 0 holds no MBR signature, so no protective MBR: Linux reads this GPT only when booted with `gpt` on its command line".to_string(),
            )],
            Vec::new(),
        );
    };
    let mut problems = Vec::new();
    let mut mirrors = Vec::new();
    let mut protective = Vec::new();
    for (index, part) in header.iter() {
        if !part.is_used() {
            continue;
        }
        let number = u32::try_from(index).unwrap_or(0);
        let entry_at = primary_entry_at(number);
        if part.sys == PROTECTIVE {
            protective.push((entry_at, part.starting_lba, part.sectors));
        } else {
            mirrors.push(MirrorEntry {
                number,
                offset: u64::from(part.starting_lba).saturating_mul(sector),
                size: u64::from(part.sectors).saturating_mul(sector),
                entry_at,
            });
        }
    }
    match protective.as_slice() {
        [] => problems.push(note(
            TABLE_AT,
            "the MBR in front of the GPT has no protective (0xEE) entry: Linux reads the MBR's partitions instead of the GPT".to_string(),
        )),
        entries if !entries.iter().any(|(_, start, _)| *start == 1) => {
            let (at, start, _) = entries.first().copied().unwrap_or_default();
            problems.push(note(
                at,
                format!("the protective (0xEE) MBR entry starts at LBA {start}, not 1: Linux does not take it for a protective MBR and does not read the GPT"),
            ));
        }
        [(at, _, sectors)] if mirrors.is_empty() => {
            // A pure protective MBR covers the whole disk, or as much as 32 bits can say.
            let whole = (disk_len / sector).saturating_sub(1).min(u64::from(u32::MAX));
            if u64::from(*sectors) != whole && *sectors != u32::MAX {
                problems.push(note(
                    *at,
                    format!(
                        "the protective (0xEE) MBR entry covers {sectors} sectors, not the disk's {whole} after LBA 0"
                    ),
                ));
            }
        }
        _ => {}
    }
    (problems, mirrors)
}

fn entry(
    disk: &dyn BlockSource,
    number: u32,
    start_lba: u64,
    sectors: u64,
    sys: u8,
    signature: u32,
    entry_at: u64,
) -> PartitionEntry {
    let offset = start_lba.saturating_mul(512);
    let size = sectors.saturating_mul(512);
    let end = offset.saturating_add(size);
    let problem = (end > disk.len()).then(|| {
        format!(
            "MBR entry {number} (at byte {entry_at}) ends at byte {end}, past the end of the {}-byte disk",
            disk.len()
        )
    });
    PartitionEntry {
        number,
        offset,
        size,
        entry_at,
        type_id: format!("0x{sys:02x}"),
        name: None,
        // blkid's PARTUUID for MBR disks: disk signature and partition number.
        part_uuid: Some(format!("{signature:08x}-{number:02x}")),
        problem,
    }
}

/// An MBR disk's table as read.
pub struct MbrTable {
    /// Primary partitions (1-4) and logical partitions (5 on), in that order.
    pub entries: Vec<PartitionEntry>,
    /// The extended partition, which holds the EBR chain rather than a volume.
    pub extended: Option<Extended>,
    pub problems: Vec<TableProblem>,
}

/// Where the extended partition lies, in bytes, and where its entry is.
#[derive(Debug, Clone, Copy)]
pub struct Extended {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    pub entry_at: u64,
}

/// Reads the primary partitions (1-4) and the logical partitions (5 on) of an MBR disk.
pub fn read(
    disk: &Arc<dyn BlockSource>,
    header: &mbrman::MBRHeader,
) -> Result<MbrTable, TableError> {
    let signature = u32::from_le_bytes(header.disk_signature);
    let mut table = MbrTable {
        entries: Vec::new(),
        extended: None,
        problems: Vec::new(),
    };
    for (index, part) in header.iter() {
        if !part.is_used() {
            continue;
        }
        let number = u32::try_from(index).unwrap_or(0);
        let entry_at = primary_entry_at(number);
        if part.is_extended() {
            table.extended = Some(Extended {
                number,
                offset: u64::from(part.starting_lba).saturating_mul(512),
                size: u64::from(part.sectors).saturating_mul(512),
                entry_at,
            });
            continue;
        }
        table.entries.push(entry(
            disk.as_ref(),
            number,
            u64::from(part.starting_lba),
            u64::from(part.sectors),
            part.sys,
            signature,
            entry_at,
        ));
    }
    if let Some(extended) = table.extended {
        read_logical(disk, extended, signature, &mut table)?;
    }
    Ok(table)
}

fn primary_entry_at(number: u32) -> u64 {
    TABLE_AT + ENTRY_LEN * u64::from(number.saturating_sub(1))
}

/// Follows the EBR chain. Each link must move forward inside the extended partition, so the
/// walk ends; a count cap guards against a chain of thousands of tiny links.
fn read_logical(
    disk: &Arc<dyn BlockSource>,
    extended: Extended,
    signature: u32,
    table: &mut MbrTable,
) -> Result<(), TableError> {
    let extended_start = extended.offset / 512;
    let extended_end = extended_start.saturating_add(extended.size / 512);
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
            let start = ebr_lba.saturating_add(u64::from(logical.starting_lba));
            let end = start.saturating_add(u64::from(logical.sectors));
            let entry_at = ebr_at.saturating_add(TABLE_AT);
            // Linux reads such a partition all the same; what it overlaps is checked with
            // every other partition.
            if start < extended_start || end > extended_end {
                table.problems.push(TableProblem::new(
                    ProblemKind::LogicalOutsideExtended,
                    entry_at,
                    false,
                    format!(
                        "logical partition {number} (sectors {start}..{end}, EBR at byte {ebr_at}) does not lie inside extended partition {} (sectors {extended_start}..{extended_end})",
                        extended.number
                    ),
                ));
            }
            table.entries.push(entry(
                disk.as_ref(),
                number,
                start,
                u64::from(logical.sectors),
                logical.sys,
                signature,
                entry_at,
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
        if table.entries.len() >= MAX_LOGICAL {
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
