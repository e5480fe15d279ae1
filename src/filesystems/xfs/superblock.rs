//! The XFS superblock (`xfs_dsb`, sector 0 of allocation group 0): geometry, feature
//! flags, and the checks that make the geometry safe to compute with.

use super::What;
use std::sync::Arc;

use crate::bytes::{array, be16, be32, be64};
use crate::checksums::ChecksumGuard;
use crate::filesystems::FsError;
use crate::image::CorruptKind;

const XFS_SB_MAGIC: &[u8; 4] = b"XFSB";
/// Bytes of the superblock this reader decodes (through sb_meta_uuid).
pub(super) const SB_DECODED_LEN: usize = 264;
/// Byte offset of sb_crc: the CRC covers the whole first sector with this field zeroed.
pub(super) const SB_CRC_OFFSET: usize = 224;

const MIN_BLOCK_LOG: u8 = 9;
const MAX_BLOCK_LOG: u8 = 16;
const MIN_SECTOR_LOG: u8 = 9;
const MAX_SECTOR_LOG: u8 = 15;
const MIN_INODE_LOG: u8 = 8;
const MAX_INODE_LOG: u8 = 11;
/// v5 inodes carry a 176-byte core; mkfs.xfs refuses smaller than 512 bytes for them.
const MIN_V5_INODE_LOG: u8 = 9;
/// Directory blocks are at most 64 KiB (XFS_MAX_BLOCKSIZE).
const MAX_DIR_BLOCK_LOG: u8 = 16;
/// xfs_format.h: XFS_MIN_AG_BLOCKS; and an AG never exceeds 2^31 blocks (1 TiB at 512 B).
const MIN_AG_BLOCKS: u32 = 64;
const MAX_AG_BLOCK_LOG: u8 = 31;

// sb_versionnum (v4 feature bits live here as well).
const VERSION_NUMBITS: u16 = 0x000f;
const VERSION_ATTRBIT: u16 = 0x0010;
const VERSION_NLINKBIT: u16 = 0x0020;
const VERSION_QUOTABIT: u16 = 0x0040;
const VERSION_ALIGNBIT: u16 = 0x0080;
const VERSION_DALIGNBIT: u16 = 0x0100;
const VERSION_SHAREDBIT: u16 = 0x0200;
const VERSION_LOGV2BIT: u16 = 0x0400;
const VERSION_SECTORBIT: u16 = 0x0800;
const VERSION_EXTFLGBIT: u16 = 0x1000;
const VERSION_DIRV2BIT: u16 = 0x2000;
const VERSION_BORGBIT: u16 = 0x4000;
const VERSION_MOREBITSBIT: u16 = 0x8000;

// sb_features2.
const VERSION2_LAZYSBCOUNTBIT: u32 = 0x0002;
const VERSION2_ATTR2BIT: u32 = 0x0008;
const VERSION2_PARENTBIT: u32 = 0x0010;
const VERSION2_PROJID32BIT: u32 = 0x0080;
const VERSION2_CRCBIT: u32 = 0x0100;
const VERSION2_FTYPE: u32 = 0x0200;
const VERSION2_KNOWN: u32 = VERSION2_LAZYSBCOUNTBIT
    | VERSION2_ATTR2BIT
    | VERSION2_PARENTBIT
    | VERSION2_PROJID32BIT
    | VERSION2_CRCBIT
    | VERSION2_FTYPE;

// v5 feature words.
const RO_COMPAT_FINOBT: u32 = 0x1;
const RO_COMPAT_RMAPBT: u32 = 0x2;
const RO_COMPAT_REFLINK: u32 = 0x4;
const RO_COMPAT_INOBTCNT: u32 = 0x8;
const INCOMPAT_FTYPE: u32 = 0x1;
const INCOMPAT_SPINODES: u32 = 0x2;
const INCOMPAT_META_UUID: u32 = 0x4;
const INCOMPAT_BIGTIME: u32 = 0x8;
const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
const INCOMPAT_NREXT64: u32 = 0x20;
const INCOMPAT_EXCHRANGE: u32 = 0x40;
const INCOMPAT_PARENT: u32 = 0x80;
const INCOMPAT_METADIR: u32 = 0x100;
const INCOMPAT_ZONED: u32 = 0x200;
const LOG_INCOMPAT_XATTRS: u32 = 0x1;

/// Names of feature bits, for `inspect` and for refusals.
const V4_NAMES: &[(u16, &str)] = &[
    (VERSION_ATTRBIT, "attr"),
    (VERSION_NLINKBIT, "nlink"),
    (VERSION_QUOTABIT, "quota"),
    (VERSION_ALIGNBIT, "align"),
    (VERSION_DALIGNBIT, "dalign"),
    (VERSION_SHAREDBIT, "shared"),
    (VERSION_LOGV2BIT, "logv2"),
    (VERSION_SECTORBIT, "sector"),
    (VERSION_EXTFLGBIT, "extflg"),
    (VERSION_DIRV2BIT, "dirv2"),
    (VERSION_BORGBIT, "ascii_ci"),
];
const V2_NAMES: &[(u32, &str)] = &[
    (VERSION2_LAZYSBCOUNTBIT, "lazy_count"),
    (VERSION2_ATTR2BIT, "attr2"),
    (VERSION2_PROJID32BIT, "projid32"),
    (VERSION2_CRCBIT, "crc"),
    (VERSION2_FTYPE, "ftype"),
];
const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (RO_COMPAT_FINOBT, "finobt"),
    (RO_COMPAT_RMAPBT, "rmapbt"),
    (RO_COMPAT_REFLINK, "reflink"),
    (RO_COMPAT_INOBTCNT, "inobtcount"),
];
const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (INCOMPAT_FTYPE, "ftype"),
    (INCOMPAT_SPINODES, "sparse_inodes"),
    (INCOMPAT_META_UUID, "meta_uuid"),
    (INCOMPAT_BIGTIME, "bigtime"),
    (INCOMPAT_NEEDSREPAIR, "needsrepair"),
    (INCOMPAT_NREXT64, "nrext64"),
    (INCOMPAT_EXCHRANGE, "exchange_range"),
    (INCOMPAT_PARENT, "parent_pointers"),
    (INCOMPAT_METADIR, "metadir"),
    (INCOMPAT_ZONED, "zoned"),
];
/// Incompatible features whose on-disk format this reader understands. Exchange-range
/// and parent pointers change only log items and extended attributes, which it never
/// interprets; metadir and zoned move metadata in ways it does not follow.
const INCOMPAT_READABLE: u32 = INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NREXT64
    | INCOMPAT_EXCHRANGE
    | INCOMPAT_PARENT;

/// The superblock fields this reader uses, and the geometry derived from them.
#[derive(Debug, Clone)]
pub(super) struct Superblock {
    /// Whether CRC mismatches are refused, shared by every reader of this filesystem.
    pub checksums: Arc<ChecksumGuard>,
    /// 4 or 5.
    pub version: u8,
    pub block_size: u64,
    pub block_log: u8,
    pub sector_size: u64,
    pub inode_size: u64,
    pub inode_log: u8,
    pub inodes_per_block_log: u8,
    pub ag_blocks: u64,
    pub ag_block_log: u8,
    pub ag_count: u32,
    pub data_blocks: u64,
    pub realtime_blocks: u64,
    pub root_ino: u64,
    pub log_start: u64,
    pub log_blocks: u64,
    pub dir_block_log: u8,
    /// The UUID stamped into v5 metadata: sb_meta_uuid with the meta_uuid feature, else
    /// sb_uuid (xfs_admin -U changes the first without rewriting every block).
    pub meta_uuid: [u8; 16],
    pub has_ftype: bool,
    pub has_nrext64: bool,
    pub has_bigtime: bool,
    features: Vec<&'static str>,
}

fn corrupt(kind: CorruptKind, offset: usize, detail: impl Into<String>) -> FsError {
    FsError::corrupt(
        kind,
        What::fs("xfs superblock").to_string(),
        offset as u64,
        detail,
    )
}

fn names<'t, T: Copy + std::ops::BitAnd<Output = T> + PartialEq + Default + 't>(
    bits: T,
    table: &'t [(T, &'static str)],
) -> impl Iterator<Item = &'static str> + 't {
    table
        .iter()
        .filter(move |(bit, _)| bits & *bit != T::default())
        .map(|(_, name)| *name)
}

/// Checks that `value` is `1 << log` with `log` in `min..=max`.
fn check_power(
    value: u64,
    log: u8,
    min: u8,
    max: u8,
    field: &str,
    at: usize,
) -> Result<(), FsError> {
    if !(min..=max).contains(&log) || value != 1u64 << log {
        return Err(corrupt(
            CorruptKind::Invalid,
            at,
            format!("{field} {value} with log2 {log} is not a power of two in 2^{min}..=2^{max}"),
        ));
    }
    Ok(())
}

impl Superblock {
    /// Decodes and checks the primary superblock from its first sector (`raw` holds at
    /// least `SB_DECODED_LEN` bytes; the CRC is checked by the caller over the sector).
    pub(super) fn parse(raw: &[u8], volume_len: u64) -> Result<Self, FsError> {
        if raw.len() < SB_DECODED_LEN {
            return Err(corrupt(
                CorruptKind::Invalid,
                0,
                format!("only {} bytes long", raw.len()),
            ));
        }
        if raw.get(0..4) != Some(XFS_SB_MAGIC.as_slice()) {
            return Err(corrupt(CorruptKind::Magic, 0, "bad magic (not XFSB)"));
        }
        let versionnum = be16(raw, 100);
        let version = (versionnum & VERSION_NUMBITS) as u8;
        if version != 4 && version != 5 {
            return Err(corrupt(
                CorruptKind::Invalid,
                100,
                format!("unknown version {version} (4 and 5 exist)"),
            ));
        }
        let byte = |at: usize| raw.get(at).copied().unwrap_or(0);
        let block_size = u64::from(be32(raw, 4));
        let block_log = byte(120);
        check_power(
            block_size,
            block_log,
            MIN_BLOCK_LOG,
            MAX_BLOCK_LOG,
            "block size",
            4,
        )?;
        let sector_size = u64::from(be16(raw, 102));
        check_power(
            sector_size,
            byte(121),
            MIN_SECTOR_LOG,
            MAX_SECTOR_LOG,
            "sector size",
            102,
        )?;
        if sector_size > block_size {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                102,
                format!("sector size {sector_size} exceeds block size {block_size}"),
            ));
        }
        let inode_size = u64::from(be16(raw, 104));
        let inode_log = byte(122);
        let min_inode_log = if version == 5 {
            MIN_V5_INODE_LOG
        } else {
            MIN_INODE_LOG
        };
        check_power(
            inode_size,
            inode_log,
            min_inode_log,
            MAX_INODE_LOG,
            "inode size",
            104,
        )?;
        if inode_size > block_size {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                104,
                format!("inode size {inode_size} exceeds block size {block_size}"),
            ));
        }
        let inodes_per_block_log = byte(123);
        if u64::from(be16(raw, 106)) != block_size >> inode_log
            || u32::from(inodes_per_block_log) != u32::from(block_log - inode_log)
        {
            return Err(corrupt(
                CorruptKind::Invalid,
                106,
                "inodes per block do not match block and inode sizes",
            ));
        }
        let ag_blocks = u64::from(be32(raw, 84));
        let ag_block_log = byte(124);
        if ag_blocks < u64::from(MIN_AG_BLOCKS)
            || ag_block_log > MAX_AG_BLOCK_LOG
            || ag_blocks > 1u64 << ag_block_log
            || ag_blocks <= 1u64 << ag_block_log.saturating_sub(1)
        {
            return Err(corrupt(
                CorruptKind::Invalid,
                84,
                format!("AG size {ag_blocks} blocks does not match its log2 {ag_block_log}"),
            ));
        }
        let ag_count = be32(raw, 88);
        let data_blocks = be64(raw, 8);
        let span = ag_blocks.saturating_mul(u64::from(ag_count));
        if ag_count == 0 || data_blocks > span || data_blocks <= span.saturating_sub(ag_blocks) {
            return Err(corrupt(
                CorruptKind::Invalid,
                8,
                format!(
                    "{data_blocks} data blocks do not fill {ag_count} AGs of {ag_blocks} blocks"
                ),
            ));
        }
        // Inode numbers are AG, block and index bit fields packed into 64 bits.
        if u32::from(ag_block_log) + u32::from(inodes_per_block_log) + 32 > 64 {
            return Err(corrupt(
                CorruptKind::Invalid,
                124,
                "inode numbers would not fit in 64 bits",
            ));
        }
        let needed = data_blocks.saturating_mul(block_size);
        if needed > volume_len {
            return Err(corrupt(CorruptKind::Truncated,
                8,
                format!(
                    "the filesystem spans {needed} bytes but the volume holds {volume_len} (truncated?)"
                ),
            ));
        }
        let dir_block_log = byte(192);
        if u32::from(block_log) + u32::from(dir_block_log) > u32::from(MAX_DIR_BLOCK_LOG) {
            return Err(corrupt(
                CorruptKind::Invalid,
                192,
                format!("directory blocks of 2^{} bytes", block_log + dir_block_log),
            ));
        }

        let features2 = be32(raw, 200) | be32(raw, 204);
        let ro_compat = be32(raw, 212);
        let incompat = be32(raw, 216);
        let log_incompat = be32(raw, 220);
        let mut features: Vec<&'static str> = Vec::new();
        let (has_ftype, has_nrext64, has_bigtime, meta_uuid_bit);
        if version == 5 {
            features.push("crc");
            features.extend(names(ro_compat, RO_COMPAT_NAMES));
            features.extend(names(incompat, INCOMPAT_NAMES));
            if log_incompat & LOG_INCOMPAT_XATTRS != 0 {
                features.push("log_xattrs");
            }
            // Unknown read-only-compatible features change nothing a reader relies on (the
            // kernel mounts such a filesystem read-only); they are shown, not refused.
            if ro_compat & !RO_COMPAT_NAMES.iter().fold(0, |a, (b, _)| a | b) != 0 {
                features.push("unknown_ro_compat");
            }
            if let Some(name) = names(incompat & !INCOMPAT_READABLE, INCOMPAT_NAMES).next() {
                return Err(FsError::Unsupported {
                    feature: format!("XFS feature {name}").into(),
                });
            }
            let unknown = incompat & !INCOMPAT_NAMES.iter().fold(0, |a, (b, _)| a | b);
            if unknown != 0 {
                return Err(FsError::Unsupported {
                    feature: format!("XFS incompatible feature bits {unknown:#x}").into(),
                });
            }
            has_ftype = incompat & INCOMPAT_FTYPE != 0;
            has_nrext64 = incompat & INCOMPAT_NREXT64 != 0;
            has_bigtime = incompat & INCOMPAT_BIGTIME != 0;
            meta_uuid_bit = incompat & INCOMPAT_META_UUID != 0;
        } else {
            features.extend(names(versionnum, V4_NAMES));
            if versionnum & VERSION_MOREBITSBIT != 0 {
                features.extend(names(features2, V2_NAMES));
            }
            if versionnum & VERSION_DIRV2BIT == 0 {
                return Err(FsError::Unsupported {
                    feature: "XFS version 1 directories".into(),
                });
            }
            if versionnum & VERSION_SHAREDBIT != 0 {
                return Err(FsError::Unsupported {
                    feature: "XFS feature shared".into(),
                });
            }
            let more = versionnum & VERSION_MOREBITSBIT != 0;
            if more && features2 & VERSION2_CRCBIT != 0 {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    200,
                    "a version 4 superblock with the CRC feature",
                ));
            }
            if more && features2 & !VERSION2_KNOWN != 0 {
                return Err(FsError::Unsupported {
                    feature: format!("XFS features2 bits {:#x}", features2 & !VERSION2_KNOWN)
                        .into(),
                });
            }
            has_ftype = more && features2 & VERSION2_FTYPE != 0;
            has_nrext64 = false;
            has_bigtime = false;
            meta_uuid_bit = false;
        }
        let uuid = array::<16>(raw, 32).unwrap_or_default();
        let meta_uuid = if meta_uuid_bit {
            array::<16>(raw, 248).unwrap_or_default()
        } else {
            uuid
        };
        let sb = Self {
            checksums: Arc::default(),
            version,
            block_size,
            block_log,
            sector_size,
            inode_size,
            inode_log,
            inodes_per_block_log,
            ag_blocks,
            ag_block_log,
            ag_count,
            data_blocks,
            realtime_blocks: be64(raw, 16),
            root_ino: be64(raw, 56),
            log_start: be64(raw, 48),
            log_blocks: u64::from(be32(raw, 96)),
            dir_block_log,
            meta_uuid,
            has_ftype,
            has_nrext64,
            has_bigtime,
            features,
        };
        if sb.version == 5 && incompat & INCOMPAT_NEEDSREPAIR != 0 {
            return Err(FsError::Unsupported {
                feature: "XFS needsrepair state (xfs_repair did not finish)".into(),
            });
        }
        if byte(126) != 0 {
            return Err(FsError::Unsupported {
                feature: "XFS filesystem whose mkfs did not finish (sb_inprogress)".into(),
            });
        }
        if sb.ino_location(sb.root_ino).is_none() {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                56,
                format!("root inode {} is outside the filesystem", sb.root_ino),
            ));
        }
        if sb.log_start != 0 {
            let log_end = sb.fsb_to_block(sb.log_start).and_then(|first| {
                first
                    .checked_add(sb.log_blocks)
                    .filter(|end| *end <= sb.data_blocks)
            });
            if log_end.is_none() || sb.log_blocks == 0 {
                return Err(corrupt(
                    CorruptKind::OutOfRange,
                    48,
                    format!(
                        "internal log of {} blocks at block {} lies outside the filesystem",
                        sb.log_blocks, sb.log_start
                    ),
                ));
            }
        }
        Ok(sb)
    }

    /// Feature names, for `inspect`.
    pub(super) fn features(&self) -> &[&'static str] {
        &self.features
    }

    pub(super) fn is_v5(&self) -> bool {
        self.version == 5
    }

    /// The byte size of a directory block.
    pub(super) fn dir_block_size(&self) -> u64 {
        self.block_size << self.dir_block_log
    }

    /// Filesystem blocks in the AG `ag` (the last AG may be short).
    pub(super) fn blocks_in_ag(&self, ag: u64) -> u64 {
        self.data_blocks
            .saturating_sub(ag.saturating_mul(self.ag_blocks))
            .min(self.ag_blocks)
    }

    /// A filesystem block number (AG in the high bits, AG block in the low `ag_block_log`
    /// bits) as a linear block index from the start of the volume, if it names a block of
    /// the data device.
    pub(super) fn fsb_to_block(&self, fsb: u64) -> Option<u64> {
        let ag = fsb.checked_shr(u32::from(self.ag_block_log))?;
        let agbno = fsb & ((1u64 << self.ag_block_log) - 1);
        if ag >= u64::from(self.ag_count) || agbno >= self.blocks_in_ag(ag) {
            return None;
        }
        ag.checked_mul(self.ag_blocks)?.checked_add(agbno)
    }

    /// The byte offset of filesystem block `fsb` in the volume.
    pub(super) fn fsb_offset(&self, fsb: u64) -> Option<u64> {
        self.fsb_to_block(fsb)?.checked_mul(self.block_size)
    }

    /// The byte offset of inode `ino`, if the number names a slot inside the data device.
    pub(super) fn ino_location(&self, ino: u64) -> Option<u64> {
        let agino_bits = u32::from(self.ag_block_log) + u32::from(self.inodes_per_block_log);
        let ag = ino.checked_shr(agino_bits)?;
        let agino = ino & ((1u64 << agino_bits) - 1);
        let agbno = agino >> self.inodes_per_block_log;
        let index = agino & ((1u64 << self.inodes_per_block_log) - 1);
        if ino == 0 || ag >= u64::from(self.ag_count) || agbno >= self.blocks_in_ag(ag) {
            return None;
        }
        let block = ag.checked_mul(self.ag_blocks)?.checked_add(agbno)?;
        block
            .checked_mul(self.block_size)?
            .checked_add(index << self.inode_log)
    }

    /// The AG an inode number lies in.
    pub(super) fn ino_ag(&self, ino: u64) -> u64 {
        let agino_bits = u32::from(self.ag_block_log) + u32::from(self.inodes_per_block_log);
        ino.checked_shr(agino_bits).unwrap_or(u64::MAX)
    }
}
