//! The ext2/3/4 superblock: geometry, feature flags and the checks that make them safe to use.

use super::{checksum, le16, le32, What};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

/// s_jnl_blocks: i_block's 15 words, then i_size_high and i_size.
pub(super) const JNL_BACKUP_WORDS: usize = 17;
/// Where s_jnl_blocks lies within the superblock.
pub(super) const S_JNL_BLOCKS_OFFSET: u64 = 0x10C;
/// Byte offset of the primary superblock within the volume, whatever the block size.
pub(super) const SUPERBLOCK_OFFSET: u64 = 1024;
pub(super) const SUPERBLOCK_SIZE: usize = 1024;
const EXT4_SUPER_MAGIC: u16 = 0xEF53;

/// Revision 0 ("good old") filesystems have fixed inode size and first inode.
const EXT4_GOOD_OLD_REV: u32 = 0;
pub(super) const EXT4_GOOD_OLD_INODE_SIZE: u16 = 128;
const EXT4_GOOD_OLD_FIRST_INO: u32 = 11;
/// Block sizes above 64 KiB do not exist on disk (s_log_block_size <= 6).
const EXT4_MAX_LOG_BLOCK_SIZE: u32 = 6;
const EXT4_MIN_DESC_SIZE: u16 = 32;
const EXT4_MIN_DESC_SIZE_64BIT: u16 = 64;
const EXT4_MAX_DESC_SIZE: u16 = 1024;
/// Cluster ratios beyond 2^16 blocks are refused by mke2fs and the kernel alike.
const EXT4_MAX_CLUSTER_LOG_RATIO: u32 = 16;

pub(super) const COMPAT_HAS_JOURNAL: u32 = 0x0004;
pub(super) const COMPAT_SPARSE_SUPER2: u32 = 0x0200;

pub(super) const INCOMPAT_COMPRESSION: u32 = 0x0001;
pub(super) const INCOMPAT_FILETYPE: u32 = 0x0002;
pub(super) const INCOMPAT_RECOVER: u32 = 0x0004;
pub(super) const INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
pub(super) const INCOMPAT_META_BG: u32 = 0x0010;
pub(super) const INCOMPAT_EXTENTS: u32 = 0x0040;
pub(super) const INCOMPAT_64BIT: u32 = 0x0080;
pub(super) const INCOMPAT_MMP: u32 = 0x0100;
pub(super) const INCOMPAT_FLEX_BG: u32 = 0x0200;
pub(super) const INCOMPAT_EA_INODE: u32 = 0x0400;
pub(super) const INCOMPAT_DIRDATA: u32 = 0x1000;
pub(super) const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub(super) const INCOMPAT_LARGEDIR: u32 = 0x4000;
pub(super) const INCOMPAT_INLINE_DATA: u32 = 0x8000;
pub(super) const INCOMPAT_ENCRYPT: u32 = 0x10000;
pub(super) const INCOMPAT_CASEFOLD: u32 = 0x20000;

pub(super) const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
pub(super) const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
pub(super) const RO_COMPAT_BTREE_DIR: u32 = 0x0004;
pub(super) const RO_COMPAT_HUGE_FILE: u32 = 0x0008;
pub(super) const RO_COMPAT_GDT_CSUM: u32 = 0x0010;
pub(super) const RO_COMPAT_BIGALLOC: u32 = 0x0200;
pub(super) const RO_COMPAT_METADATA_CSUM: u32 = 0x0400;

/// Incompatible features this reader understands. Anything else changes the on-disk
/// format in a way we cannot interpret, so it is refused rather than misread.
const INCOMPAT_SUPPORTED: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_META_BG
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG
    | INCOMPAT_EA_INODE
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_ENCRYPT
    | INCOMPAT_CASEFOLD;

/// blkid's notion of what ext3 may carry; anything beyond makes the volume "ext4".
const EXT3_RO_COMPAT_SUPP: u32 =
    RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;
const EXT3_INCOMPAT_SUPP: u32 = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;

/// The superblock fields this reader uses, plus the geometry derived from them.
#[derive(Debug, Clone)]
pub(super) struct Superblock {
    pub s_inodes_count: u32,
    pub s_blocks_count: u64,
    /// Free blocks and inodes as last written: the kernel updates them lazily, so they are
    /// estimates (used for progress only), and may exceed the totals on a hostile disk.
    pub s_free_blocks_count: u64,
    pub s_free_inodes_count: u32,
    /// The first non-reserved inode (11 on revision 0).
    pub first_ino: u32,
    pub s_first_data_block: u32,
    pub s_blocks_per_group: u32,
    pub s_inodes_per_group: u32,
    pub s_feature_compat: u32,
    pub s_feature_incompat: u32,
    pub s_feature_ro_compat: u32,
    pub s_journal_inum: u32,
    pub s_first_meta_bg: u32,
    pub s_backup_bgs: [u32; 2],
    /// Blocks reserved after each copy of the descriptor table for growing it.
    pub s_reserved_gdt_blocks: u16,
    pub s_uuid: [u8; 16],
    /// The seed of every metadata_csum checksum (0 without metadata_csum).
    pub csum_seed: u32,
    /// s_jnl_backup_type: EXT3_JNL_BACKUP_BLOCKS when `s_jnl_blocks` holds a copy of the
    /// journal inode's i_block (15 words), i_size_high and i_size.
    pub s_jnl_backup_type: u8,
    pub s_jnl_blocks: [u32; JNL_BACKUP_WORDS],
    /// Bytes per block (1 KiB to 64 KiB).
    pub block_size: u64,
    /// Bytes per allocation cluster (equals `block_size` without bigalloc).
    pub cluster_size: u64,
    /// Bytes per on-disk inode record.
    pub inode_size: u64,
    /// Bytes per group descriptor.
    pub desc_size: u64,
    pub group_count: u32,
}

/// Feature names as dumpe2fs prints them (e2fsprogs' lib/e2p/feature.c), per word.
const COMPAT_NAMES: &[(u32, &str)] = &[
    (0x0001, "dir_prealloc"),
    (0x0002, "imagic_inodes"),
    (0x0004, "has_journal"),
    (0x0008, "ext_attr"),
    (0x0010, "resize_inode"),
    (0x0020, "dir_index"),
    (0x0040, "lazy_bg"),
    (0x0100, "snapshot_bitmap"),
    (0x0200, "sparse_super2"),
    (0x0400, "fast_commit"),
    (0x0800, "stable_inodes"),
    (0x1000, "orphan_file"),
];
const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x0001, "compression"),
    (0x0002, "filetype"),
    (0x0004, "needs_recovery"),
    (0x0008, "journal_dev"),
    (0x0010, "meta_bg"),
    (0x0040, "extent"),
    (0x0080, "64bit"),
    (0x0100, "mmp"),
    (0x0200, "flex_bg"),
    (0x0400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];
const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (0x0001, "sparse_super"),
    (0x0002, "large_file"),
    (0x0008, "huge_file"),
    (0x0010, "uninit_bg"),
    (0x0020, "dir_nlink"),
    (0x0040, "extra_isize"),
    (0x0080, "snapshot"),
    (0x0100, "quota"),
    (0x0200, "bigalloc"),
    (0x0400, "metadata_csum"),
    (0x0800, "replica"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x4000, "shared_blocks"),
    (0x8000, "verity"),
    (0x10000, "orphan_present"),
];

impl Superblock {
    /// Feature names in dumpe2fs's order (compat, incompat, ro_compat; bits ascending);
    /// a bit without a name is shown as dumpe2fs does, `FEATURE_C12`.
    pub(super) fn feature_names(&self) -> Vec<String> {
        let words = [
            (self.s_feature_compat, COMPAT_NAMES, 'C'),
            (self.s_feature_incompat, INCOMPAT_NAMES, 'I'),
            (self.s_feature_ro_compat, RO_COMPAT_NAMES, 'R'),
        ];
        let mut names = Vec::new();
        for (word, table, letter) in words {
            for bit in 0..32u32 {
                let mask = 1u32 << bit;
                if word & mask == 0 {
                    continue;
                }
                names.push(table.iter().find(|(m, _)| *m == mask).map_or_else(
                    || format!("FEATURE_{letter}{bit}"),
                    |(_, n)| (*n).to_string(),
                ));
            }
        }
        names
    }

    /// Parses and validates the 1024-byte superblock read from byte 1024 of the volume.
    pub(super) fn parse(raw: &[u8], volume_len: u64) -> Result<Self, FsError> {
        let what = What::fs("ext4 superblock");
        let at = SUPERBLOCK_OFFSET;
        let corrupt = |kind: CorruptKind, field_offset: u64, detail: String| {
            FsError::corrupt(kind, what.to_string(), at + field_offset, detail)
        };
        if raw.len() < SUPERBLOCK_SIZE {
            return Err(corrupt(
                CorruptKind::Invalid,
                0,
                format!("only {} bytes long", raw.len()),
            ));
        }
        let s_magic = le16(raw, 0x38);
        if s_magic != EXT4_SUPER_MAGIC {
            return Err(corrupt(
                CorruptKind::Magic,
                0x38,
                format!("magic is {s_magic:#06x}, not 0xef53"),
            ));
        }
        let s_inodes_count = le32(raw, 0x0);
        let s_blocks_count_lo = le32(raw, 0x4);
        let s_free_blocks_count_lo = le32(raw, 0xC);
        let s_free_inodes_count = le32(raw, 0x10);
        let s_first_data_block = le32(raw, 0x14);
        let s_log_block_size = le32(raw, 0x18);
        let s_log_cluster_size = le32(raw, 0x1C);
        let s_blocks_per_group = le32(raw, 0x20);
        let s_clusters_per_group = le32(raw, 0x24);
        let s_inodes_per_group = le32(raw, 0x28);
        let s_rev_level = le32(raw, 0x4C);
        let s_first_ino = le32(raw, 0x54);
        let s_inode_size = le16(raw, 0x58);
        let s_feature_compat = le32(raw, 0x5C);
        let s_feature_incompat = le32(raw, 0x60);
        let s_feature_ro_compat = le32(raw, 0x64);
        let s_journal_inum = le32(raw, 0xE0);
        let s_desc_size = le16(raw, 0xFE);
        let s_first_meta_bg = le32(raw, 0x104);
        let s_blocks_count_hi = le32(raw, 0x150);
        let s_free_blocks_count_hi = le32(raw, 0x158);
        let s_backup_bgs = [le32(raw, 0x24C), le32(raw, 0x250)];
        let mut s_uuid = [0u8; 16];
        if let Some(uuid) = raw.get(0x68..0x78) {
            s_uuid.copy_from_slice(uuid);
        }
        let csum_seed = if s_feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
            checksum::fs_seed(raw, s_feature_incompat & INCOMPAT_CSUM_SEED != 0)
        } else {
            0
        };
        let s_jnl_backup_type = raw.get(0xFD).copied().unwrap_or(0);
        let mut s_jnl_blocks = [0u32; JNL_BACKUP_WORDS];
        for (i, word) in s_jnl_blocks.iter_mut().enumerate() {
            *word = le32(raw, S_JNL_BLOCKS_OFFSET as usize + 4 * i);
        }

        if s_log_block_size > EXT4_MAX_LOG_BLOCK_SIZE {
            return Err(corrupt(
                CorruptKind::Invalid,
                0x18,
                format!("s_log_block_size {s_log_block_size} gives a block size above 64 KiB"),
            ));
        }
        let block_size = 1024u64 << s_log_block_size;
        let bigalloc = s_feature_ro_compat & RO_COMPAT_BIGALLOC != 0;
        let cluster_size = if bigalloc {
            if s_log_cluster_size < s_log_block_size
                || s_log_cluster_size - s_log_block_size > EXT4_MAX_CLUSTER_LOG_RATIO
            {
                return Err(corrupt(CorruptKind::Invalid,
                    0x1C,
                    format!("s_log_cluster_size {s_log_cluster_size} is impossible for s_log_block_size {s_log_block_size}"),
                ));
            }
            1024u64 << s_log_cluster_size
        } else {
            block_size
        };
        let bits_per_bitmap = block_size * 8;
        if s_blocks_per_group == 0 {
            return Err(corrupt(
                CorruptKind::Invalid,
                0x20,
                "s_blocks_per_group is 0".into(),
            ));
        }
        if bigalloc {
            let ratio = cluster_size / block_size;
            if s_clusters_per_group == 0
                || u64::from(s_clusters_per_group) > bits_per_bitmap
                || u64::from(s_clusters_per_group) * ratio != u64::from(s_blocks_per_group)
            {
                return Err(corrupt(CorruptKind::Invalid,
                    0x24,
                    format!("s_clusters_per_group {s_clusters_per_group} does not match s_blocks_per_group {s_blocks_per_group}"),
                ));
            }
        } else if u64::from(s_blocks_per_group) > bits_per_bitmap {
            return Err(corrupt(CorruptKind::OutOfRange,
                0x20,
                format!("s_blocks_per_group {s_blocks_per_group} exceeds the {bits_per_bitmap} bits of one bitmap block"),
            ));
        }
        if s_inodes_per_group == 0 || u64::from(s_inodes_per_group) > bits_per_bitmap {
            return Err(corrupt(CorruptKind::OutOfRange,
                0x28,
                format!("s_inodes_per_group {s_inodes_per_group} is 0 or exceeds the {bits_per_bitmap} bits of one bitmap block"),
            ));
        }
        if s_inodes_count == 0 {
            return Err(corrupt(
                CorruptKind::Invalid,
                0x0,
                "s_inodes_count is 0".into(),
            ));
        }

        let is_64bit = s_feature_incompat & INCOMPAT_64BIT != 0;
        let (s_blocks_count, s_free_blocks_count) = if is_64bit {
            (
                u64::from(s_blocks_count_lo) | (u64::from(s_blocks_count_hi) << 32),
                u64::from(s_free_blocks_count_lo) | (u64::from(s_free_blocks_count_hi) << 32),
            )
        } else {
            (
                u64::from(s_blocks_count_lo),
                u64::from(s_free_blocks_count_lo),
            )
        };
        if u64::from(s_first_data_block) >= s_blocks_count {
            return Err(corrupt(CorruptKind::Invalid,
                0x14,
                format!("s_first_data_block {s_first_data_block} is not below s_blocks_count {s_blocks_count}"),
            ));
        }
        let groups = (s_blocks_count - u64::from(s_first_data_block))
            .div_ceil(u64::from(s_blocks_per_group));
        let group_count = u32::try_from(groups).map_err(|_| {
            corrupt(
                CorruptKind::Invalid,
                0x4,
                format!("s_blocks_count {s_blocks_count} gives {groups} block groups"),
            )
        })?;
        if u64::from(s_inodes_count) > groups * u64::from(s_inodes_per_group) {
            return Err(corrupt(CorruptKind::OutOfRange,
                0x0,
                format!("s_inodes_count {s_inodes_count} exceeds {groups} groups of {s_inodes_per_group} inodes"),
            ));
        }

        let (inode_size, first_ino) = if s_rev_level == EXT4_GOOD_OLD_REV {
            (EXT4_GOOD_OLD_INODE_SIZE, EXT4_GOOD_OLD_FIRST_INO)
        } else {
            (s_inode_size, s_first_ino)
        };
        if inode_size < EXT4_GOOD_OLD_INODE_SIZE
            || !inode_size.is_power_of_two()
            || u64::from(inode_size) > block_size
        {
            return Err(corrupt(CorruptKind::Invalid,
                0x58,
                format!("s_inode_size {inode_size} is not a power of two between 128 and the block size {block_size}"),
            ));
        }
        if first_ino < EXT4_GOOD_OLD_FIRST_INO {
            return Err(corrupt(
                CorruptKind::Invalid,
                0x54,
                format!("s_first_ino {first_ino} is below 11"),
            ));
        }

        let desc_size = if is_64bit {
            if !(EXT4_MIN_DESC_SIZE_64BIT..=EXT4_MAX_DESC_SIZE).contains(&s_desc_size)
                || !s_desc_size.is_power_of_two()
                || u64::from(s_desc_size) > block_size
            {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    0xFE,
                    format!("s_desc_size {s_desc_size} is not a power of two between 64 and 1024"),
                ));
            }
            s_desc_size
        } else {
            EXT4_MIN_DESC_SIZE
        };
        // The descriptor table must fit in the volume; this also bounds the allocation
        // made for it, whatever s_blocks_count claims.
        let table_bytes = groups.saturating_mul(u64::from(desc_size));
        if table_bytes > volume_len {
            return Err(corrupt(CorruptKind::OutOfRange,
                0x4,
                format!("{groups} block groups need {table_bytes} bytes of descriptors, more than the {volume_len}-byte volume"),
            ));
        }

        Ok(Self {
            s_inodes_count,
            s_blocks_count,
            s_free_blocks_count,
            s_free_inodes_count,
            first_ino,
            s_first_data_block,
            s_blocks_per_group,
            s_inodes_per_group,
            s_feature_compat,
            s_feature_incompat,
            s_feature_ro_compat,
            s_journal_inum,
            s_first_meta_bg,
            s_backup_bgs,
            s_reserved_gdt_blocks: le16(raw, 0xCE),
            s_uuid,
            csum_seed,
            s_jnl_backup_type,
            s_jnl_blocks,
            block_size,
            cluster_size,
            inode_size: u64::from(inode_size),
            desc_size: u64::from(desc_size),
            group_count,
        })
    }

    /// Refuses incompatible features whose on-disk format this reader cannot interpret.
    /// `RECOVER` is not judged here: whether the journal can be replayed is decided at open.
    pub(super) fn check_features(&self) -> Result<(), FsError> {
        let unsupported = self.s_feature_incompat & !INCOMPAT_SUPPORTED;
        if unsupported == 0 {
            return Ok(());
        }
        let name = [
            (INCOMPAT_COMPRESSION, "compression"),
            (
                INCOMPAT_JOURNAL_DEV,
                "journal_dev (external journal device, not a filesystem)",
            ),
            (INCOMPAT_DIRDATA, "dirdata"),
        ]
        .iter()
        .find(|(bit, _)| unsupported & bit != 0)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| format!("incompat bit {:#x}", 1u32 << unsupported.trailing_zeros()));
        Err(FsError::Unsupported {
            feature: format!("ext4 feature {name}").into(),
        })
    }

    pub(super) fn has_incompat(&self, bit: u32) -> bool {
        self.s_feature_incompat & bit != 0
    }

    pub(super) fn has_ro_compat(&self, bit: u32) -> bool {
        self.s_feature_ro_compat & bit != 0
    }

    pub(super) fn has_compat(&self, bit: u32) -> bool {
        self.s_feature_compat & bit != 0
    }

    /// Metadata (superblock, descriptors, inodes, extent and directory blocks) carries
    /// crc32c checksums.
    pub(super) fn metadata_csum(&self) -> bool {
        self.has_ro_compat(RO_COMPAT_METADATA_CSUM)
    }

    /// Group descriptors carry checksums, so their "uninitialised" flags are meaningful.
    pub(super) fn has_group_desc_csum(&self) -> bool {
        self.has_ro_compat(RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM)
    }

    /// The type name blkid reports: ext4 if any feature beyond ext3's set is on.
    pub(super) fn type_name(&self) -> &'static str {
        if self.s_feature_ro_compat & !EXT3_RO_COMPAT_SUPP != 0
            || self.s_feature_incompat & !EXT3_INCOMPAT_SUPP != 0
        {
            "ext4"
        } else if self.has_compat(COMPAT_HAS_JOURNAL) {
            "ext3"
        } else {
            "ext2"
        }
    }

    /// Whether block group `group` holds a backup superblock (and so its descriptors
    /// are shifted by one block under meta_bg).
    pub(super) fn group_has_super(&self, group: u32) -> bool {
        if group == 0 {
            return true;
        }
        if self.has_compat(COMPAT_SPARSE_SUPER2) {
            return group == self.s_backup_bgs[0] || group == self.s_backup_bgs[1];
        }
        if group <= 1 || !self.has_ro_compat(RO_COMPAT_SPARSE_SUPER) {
            return true;
        }
        if group & 1 == 0 {
            return false;
        }
        [3u32, 5, 7].iter().any(|base| is_power_of(group, *base))
    }

    /// Why the `count` blocks from `block` cannot hold file data or metadata pointed at
    /// from an inode or descriptor, naming the real cause: the area up to the superblock
    /// (block s_first_data_block and before), or past the end of the filesystem.
    pub(super) fn block_range_problem(&self, block: u64, count: u64) -> Option<String> {
        let first_data = u64::from(self.s_first_data_block);
        if block <= first_data {
            // With 1 KiB blocks block 0 is the boot sector and block 1 the superblock;
            // with larger blocks both share block 0.
            let area = if block < first_data {
                "boot sector"
            } else {
                "superblock"
            };
            return Some(format!(
                "block {block} lies in the filesystem's metadata ({area}), where nothing an inode or descriptor points at can be"
            ));
        }
        match block.checked_add(count) {
            Some(end) if end <= self.s_blocks_count => None,
            _ => Some(format!(
                "{count} block(s) at block {block} lie outside the filesystem, past its end ({} blocks)",
                self.s_blocks_count
            )),
        }
    }

    /// Byte offset of a block; `None` if it overflows.
    pub(super) fn block_offset(&self, block: u64) -> Option<u64> {
        block.checked_mul(self.block_size)
    }
}

fn is_power_of(mut n: u32, base: u32) -> bool {
    while n > 1 && n.is_multiple_of(base) {
        n /= base;
    }
    n == 1
}
