//! The on-disk inode record: ownership, mode, size, times, flags and the 60-byte i_block.

use super::superblock::{
    Superblock, EXT4_GOOD_OLD_INODE_SIZE, INCOMPAT_64BIT, INCOMPAT_EXTENTS, INCOMPAT_INLINE_DATA,
    JNL_BACKUP_WORDS, RO_COMPAT_HUGE_FILE,
};
use super::{le16, le32, What};
use crate::filesystems::{FileKind, FsError, Metadata};
use crate::image::CorruptKind;

pub(super) const EXT4_N_BLOCKS_BYTES: usize = 60;
/// Where i_block starts within the inode record.
pub(super) const I_BLOCK_OFFSET: u64 = 0x28;

const S_IFREG: u16 = 0o100000;
/// eh_magic, the first two bytes of an extent tree's root in i_block.
const EXT4_EXT_MAGIC: u32 = 0xF30A;
const EXT4_ENCRYPT_FL: u32 = 0x0000_0800;
const EXT4_HUGE_FILE_FL: u32 = 0x0004_0000;
const EXT4_EXTENTS_FL: u32 = 0x0008_0000;
const EXT4_EA_INODE_FL: u32 = 0x0020_0000;
const EXT4_INLINE_DATA_FL: u32 = 0x1000_0000;

/// Offset and size of i_mtime_extra: present only when i_extra_isize covers it.
const I_MTIME_EXTRA: usize = 0x88;
const EXT4_EPOCH_MASK: u32 = 0b11;

/// One inode, as read from its inode table.
#[derive(Debug, Clone)]
pub(super) struct Inode {
    pub ino: u64,
    /// Byte offset of the record within the volume.
    pub offset: u64,
    pub i_mode: u16,
    pub i_uid: u32,
    pub i_gid: u32,
    pub i_size: u64,
    pub i_mtime: i64,
    pub i_mtime_nsec: u32,
    pub i_links_count: u16,
    /// i_blocks normalised to 512-byte units.
    pub i_blocks: u64,
    pub i_flags: u32,
    pub i_block: [u8; EXT4_N_BLOCKS_BYTES],
    pub i_file_acl: u64,
    pub i_extra_isize: u16,
    /// crc32c(fs seed, inode number, generation): the seed of the checksums of the
    /// blocks this inode owns (0 without metadata_csum; set once the record is verified).
    pub csum_seed: u32,
    /// The whole record, for the in-inode extended attributes after i_extra_isize.
    pub raw: Vec<u8>,
}

/// How an inode's contents are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataLayout {
    /// In i_block and the system.data extended attribute.
    Inline,
    /// An extent tree rooted in i_block.
    Extents,
    /// Direct and (double, triple) indirect block pointers in i_block.
    BlockMap,
}

impl Inode {
    /// Parses a record of `inode_size` bytes (at least 128, checked by the superblock).
    pub(super) fn parse(
        ino: u64,
        offset: u64,
        raw: Vec<u8>,
        sb: &Superblock,
    ) -> Result<Self, FsError> {
        let what = What::inode(ino);
        let old_size = usize::from(EXT4_GOOD_OLD_INODE_SIZE);
        if raw.len() < old_size {
            return Err(FsError::corrupt(
                CorruptKind::Truncated,
                what.to_string(),
                offset,
                "inode record shorter than 128 bytes",
            ));
        }
        let i_extra_isize = if raw.len() > old_size {
            le16(&raw, 0x80)
        } else {
            0
        };
        let extra_end = old_size + usize::from(i_extra_isize);
        if extra_end > raw.len() || i_extra_isize % 4 != 0 {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                what.to_string(),
                offset + 0x80,
                format!(
                    "i_extra_isize {i_extra_isize} is not a multiple of 4 within the {}-byte inode",
                    raw.len()
                ),
            ));
        }
        let i_mode = le16(&raw, 0x0);
        let i_uid = u32::from(le16(&raw, 0x2)) | (u32::from(le16(&raw, 0x78)) << 16);
        let i_gid = u32::from(le16(&raw, 0x18)) | (u32::from(le16(&raw, 0x7A)) << 16);
        let i_size = u64::from(le32(&raw, 0x4)) | (u64::from(le32(&raw, 0x6C)) << 32);
        let i_links_count = le16(&raw, 0x1A);
        let i_flags = le32(&raw, 0x20);

        // The kernel sign-extends the 32-bit seconds, then adds the epoch bits of the
        // extra field (so 2038..2446 is representable) when the inode is large enough.
        let mut i_mtime = i64::from(le32(&raw, 0x10) as i32);
        let mut i_mtime_nsec = 0;
        if I_MTIME_EXTRA + 4 <= extra_end {
            let extra = le32(&raw, I_MTIME_EXTRA);
            i_mtime += i64::from(extra & EXT4_EPOCH_MASK) << 32;
            i_mtime_nsec = extra >> 2;
        }

        let huge_file = sb.has_ro_compat(RO_COMPAT_HUGE_FILE);
        let mut i_blocks = u64::from(le32(&raw, 0x1C));
        if huge_file {
            i_blocks |= u64::from(le16(&raw, 0x74)) << 32;
            if i_flags & EXT4_HUGE_FILE_FL != 0 {
                i_blocks = i_blocks.saturating_mul(sb.block_size / 512);
            }
        }
        let mut i_file_acl = u64::from(le32(&raw, 0x68));
        if sb.has_incompat(INCOMPAT_64BIT) {
            i_file_acl |= u64::from(le16(&raw, 0x76)) << 32;
        }
        let mut i_block = [0u8; EXT4_N_BLOCKS_BYTES];
        if let Some(src) = raw.get(0x28..0x28 + EXT4_N_BLOCKS_BYTES) {
            i_block.copy_from_slice(src);
        }
        Ok(Self {
            ino,
            offset,
            i_mode,
            i_uid,
            i_gid,
            i_size,
            i_mtime,
            i_mtime_nsec,
            i_links_count,
            i_blocks,
            i_flags,
            i_block,
            i_file_acl,
            i_extra_isize,
            csum_seed: 0,
            raw,
        })
    }

    /// The journal inode as the superblock's backup describes it (s_jnl_blocks: i_block,
    /// i_size_high, i_size), the way e2fsck rebuilds it: a regular file with one link,
    /// with extents when i_block opens with an extent header on an extents filesystem.
    /// `offset` is placed so that errors about i_block name the backup's bytes.
    pub(super) fn from_journal_backup(
        ino: u64,
        offset: u64,
        words: &[u32; JNL_BACKUP_WORDS],
        sb: &Superblock,
    ) -> Result<Self, FsError> {
        let mut raw = vec![0u8; usize::from(EXT4_GOOD_OLD_INODE_SIZE)];
        let mut put = |at: usize, bytes: &[u8]| {
            if let Some(dst) = raw.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(0x0, &(S_IFREG | 0o600).to_le_bytes());
        put(0x1A, &1u16.to_le_bytes());
        for (i, word) in words.iter().take(EXT4_N_BLOCKS_BYTES / 4).enumerate() {
            put(I_BLOCK_OFFSET as usize + 4 * i, &word.to_le_bytes());
        }
        let [.., size_high, size_low] = *words;
        put(0x4, &size_low.to_le_bytes());
        put(0x6C, &size_high.to_le_bytes());
        let extent_magic = words.first().is_some_and(|w| w & 0xFFFF == EXT4_EXT_MAGIC);
        if extent_magic && sb.has_incompat(INCOMPAT_EXTENTS) {
            put(0x20, &EXT4_EXTENTS_FL.to_le_bytes());
        }
        Self::parse(ino, offset, raw, sb)
    }

    pub(super) fn kind(&self) -> Result<FileKind, FsError> {
        FileKind::from_mode(u32::from(self.i_mode)).ok_or_else(|| {
            FsError::corrupt(
                CorruptKind::Invalid,
                What::inode(self.ino).to_string(),
                self.offset,
                format!(
                    "i_mode {:#o} has no valid file type (inode not in use?)",
                    self.i_mode
                ),
            )
        })
    }

    pub(super) fn metadata(&self) -> Result<Metadata, FsError> {
        let kind = self.kind()?;
        let rdev =
            matches!(kind, FileKind::CharDevice | FileKind::BlockDevice).then(|| self.rdev());
        Ok(Metadata {
            kind,
            permissions: self.i_mode & 0o7777,
            uid: self.i_uid,
            gid: self.i_gid,
            size: self.i_size,
            mtime: self.i_mtime,
            mtime_nsec: self.i_mtime_nsec,
            inode: self.ino,
            nlink: u32::from(self.i_links_count),
            rdev,
        })
    }

    /// Device number: the old 8:8 encoding in i_block[0], else the new one in i_block[1].
    fn rdev(&self) -> (u32, u32) {
        let old = le32(&self.i_block, 0);
        if old != 0 {
            let dev = old & 0xFFFF;
            ((dev >> 8) & 0xFF, dev & 0xFF)
        } else {
            let dev = le32(&self.i_block, 4);
            (
                (dev & 0xF_FF00) >> 8,
                (dev & 0xFF) | ((dev >> 12) & 0xF_FF00),
            )
        }
    }

    /// Refuses contents this reader cannot decode (per-inode features).
    pub(super) fn check_readable(&self) -> Result<(), FsError> {
        if self.i_flags & EXT4_ENCRYPT_FL != 0 {
            return Err(FsError::Unsupported {
                feature: "ext4 feature encrypt".into(),
            });
        }
        Ok(())
    }

    pub(super) fn layout(&self, sb: &Superblock) -> Result<DataLayout, FsError> {
        let inline = self.i_flags & EXT4_INLINE_DATA_FL != 0;
        let extents = self.i_flags & EXT4_EXTENTS_FL != 0;
        let corrupt = |kind: CorruptKind, detail: &str| {
            FsError::corrupt(
                kind,
                What::inode(self.ino).to_string(),
                self.offset + 0x20,
                detail,
            )
        };
        match (inline, extents) {
            (true, true) => Err(corrupt(
                CorruptKind::Invalid,
                "i_flags has both INLINE_DATA and EXTENTS",
            )),
            (true, false) if !sb.has_incompat(INCOMPAT_INLINE_DATA) => Err(corrupt(
                CorruptKind::Invalid,
                "i_flags has INLINE_DATA but the filesystem lacks the inline_data feature",
            )),
            (true, false) => Ok(DataLayout::Inline),
            (false, true) => Ok(DataLayout::Extents),
            (false, false) => Ok(DataLayout::BlockMap),
        }
    }

    /// Whether a symlink keeps its target in i_block itself (kernel's
    /// ext4_inode_is_fast_symlink: no data blocks besides an xattr block).
    pub(super) fn is_fast_symlink(&self, sb: &Superblock) -> bool {
        if self.i_flags & EXT4_EA_INODE_FL != 0 {
            return self.i_size != 0 && self.i_size < EXT4_N_BLOCKS_BYTES as u64;
        }
        if self.i_flags & EXT4_INLINE_DATA_FL != 0 {
            return false;
        }
        let ea_blocks = if self.i_file_acl != 0 {
            sb.cluster_size >> 9
        } else {
            0
        };
        self.i_blocks == ea_blocks
    }

    /// The in-inode extended attribute area (after i_extra_isize), empty for 128-byte inodes.
    pub(super) fn xattr_area(&self) -> (&[u8], u64) {
        let start = usize::from(EXT4_GOOD_OLD_INODE_SIZE) + usize::from(self.i_extra_isize);
        let area = if self.raw.len() > usize::from(EXT4_GOOD_OLD_INODE_SIZE) {
            self.raw.get(start..).unwrap_or(&[])
        } else {
            &[]
        };
        (area, self.offset + start as u64)
    }
}
