//! The allocation group headers: the free-space header (AGF, sector 1 of each AG) and the
//! inode header (AGI, sector 2). Checked at open; their counters feed the usage estimate.

use super::inode::crc_with_hole;
use super::superblock::Superblock;
use super::{Disk, What};
use crate::bytes::{array, be32, le32};
use crate::filesystems::FsError;
use std::borrow::Cow;

use crate::image::CorruptKind;

const AGF_MAGIC: &[u8; 4] = b"XAGF";
const AGI_MAGIC: &[u8; 4] = b"XAGI";
const AGF_CRC_OFFSET: usize = 216;
const AGI_CRC_OFFSET: usize = 312;
const AGF_UUID_OFFSET: usize = 64;
const AGI_UUID_OFFSET: usize = 296;
const AG_VERSION: u32 = 1;

/// What one AG's headers say, or why they cannot be trusted.
#[derive(Debug, Clone, Default)]
pub(super) struct AgCounts {
    /// Inodes allocated and free within allocated inode chunks.
    pub inodes: u64,
    pub free_inodes: u64,
    /// Free blocks, including the free list and free-space btree blocks.
    pub free_blocks: u64,
}

/// A header that failed its checks: rebuilt into an error for every inode of the AG.
#[derive(Debug, Clone)]
pub(super) struct AgDamage {
    pub structure: Cow<'static, str>,
    pub offset: u64,
    pub kind: CorruptKind,
    pub detail: String,
}

impl AgDamage {
    pub(super) fn error(&self) -> FsError {
        FsError::corrupt(
            self.kind,
            self.structure.clone(),
            self.offset,
            self.detail.clone(),
        )
    }
}

impl From<FsError> for AgDamage {
    fn from(e: FsError) -> Self {
        let offset = e.offset().unwrap_or(0);
        // A failed read keeps the container's kind when the image is what is corrupt.
        let kind = e.corrupt_kind().unwrap_or(CorruptKind::Unreadable);
        match e {
            FsError::Corrupt {
                structure,
                kind,
                detail,
                ..
            } => Self {
                structure,
                offset,
                kind,
                detail,
            },
            other => Self {
                structure: "xfs allocation group header".into(),
                offset,
                kind,
                detail: other.to_string(),
            },
        }
    }
}

/// Reads and checks both headers of AG `ag`.
pub(super) fn read(disk: &Disk, sb: &Superblock, ag: u32) -> Result<AgCounts, AgDamage> {
    let base = u64::from(ag)
        .checked_mul(sb.ag_blocks)
        .and_then(|b| b.checked_mul(sb.block_size))
        .ok_or_else(|| AgDamage {
            structure: format!("xfs AG {ag}").into(),
            offset: 0,
            kind: CorruptKind::OutOfRange,
            detail: "lies past any volume".into(),
        })?;
    let agf = header(disk, sb, ag, base + sb.sector_size, Header::Agf)?;
    let agi = header(disk, sb, ag, base + 2 * sb.sector_size, Header::Agi)?;
    Ok(AgCounts {
        inodes: u64::from(be32(&agi, 16)),
        free_inodes: u64::from(be32(&agi, 28)),
        free_blocks: u64::from(be32(&agf, 52))
            + u64::from(be32(&agf, 48))
            + u64::from(be32(&agf, 60)),
    })
}

#[derive(Clone, Copy)]
enum Header {
    Agf,
    Agi,
}

fn header(
    disk: &Disk,
    sb: &Superblock,
    ag: u32,
    offset: u64,
    kind: Header,
) -> Result<Vec<u8>, AgDamage> {
    let (name, magic, crc_at, uuid_at) = match kind {
        Header::Agf => ("xfs AGF", AGF_MAGIC, AGF_CRC_OFFSET, AGF_UUID_OFFSET),
        Header::Agi => ("xfs AGI", AGI_MAGIC, AGI_CRC_OFFSET, AGI_UUID_OFFSET),
    };
    let structure: Cow<'static, str> = format!("{name} {ag}").into();
    let raw = disk.read_vec(What::fs(name), offset, sb.sector_size)?;
    let damage = |kind: CorruptKind, at: usize, detail: String| AgDamage {
        structure: structure.clone(),
        offset: offset + at as u64,
        kind,
        detail,
    };
    if raw.get(..4) != Some(magic.as_slice()) {
        return Err(damage(CorruptKind::Magic, 0, "bad magic".into()));
    }
    if sb.is_v5() {
        let stored = le32(&raw, crc_at);
        let computed = crc_with_hole(&raw, crc_at);
        sb.checksums.check(stored == computed, || {
            damage(
                CorruptKind::Checksum,
                crc_at,
                format!("CRC {stored:#010x} does not match the contents ({computed:#010x})"),
            )
        })?;
        if array::<16>(&raw, uuid_at) != Some(sb.meta_uuid) {
            return Err(damage(
                CorruptKind::Invalid,
                uuid_at,
                "belongs to another filesystem (UUID)".into(),
            ));
        }
    }
    if be32(&raw, 4) != AG_VERSION {
        return Err(damage(
            CorruptKind::Invalid,
            4,
            format!("version {}", be32(&raw, 4)),
        ));
    }
    if be32(&raw, 8) != ag {
        return Err(damage(
            CorruptKind::Invalid,
            8,
            format!("records AG number {}", be32(&raw, 8)),
        ));
    }
    let length = u64::from(be32(&raw, 12));
    if length != sb.blocks_in_ag(u64::from(ag)) {
        return Err(damage(
            CorruptKind::Invalid,
            12,
            format!("records an AG of {length} blocks"),
        ));
    }
    Ok(raw)
}
