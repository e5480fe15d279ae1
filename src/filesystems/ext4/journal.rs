//! The JBD2 journal (big-endian, unlike the rest of ext4): replaying committed
//! transactions in memory, as an overlay of replacement blocks, when the filesystem was
//! not unmounted cleanly. The volume itself is never written.

use crate::bytes::be32;
use crate::image::CorruptKind;
use std::collections::{BTreeMap, HashMap};

use super::inode::{DataLayout, Inode, I_BLOCK_OFFSET};
use super::reader::Mapper;
use super::superblock::{COMPAT_HAS_JOURNAL, SUPERBLOCK_OFFSET, S_JNL_BLOCKS_OFFSET};
use super::{checksum, Ext4Fs, What};
use crate::filesystems::{FileKind, FsError};

const JBD2_MAGIC_NUMBER: u32 = 0xC03B_3998;
/// s_jnl_backup_type: s_jnl_blocks holds the journal inode's block map and size.
const EXT3_JNL_BACKUP_BLOCKS: u8 = 1;
/// jbd2 and e2fsck refuse a journal shorter than this.
const JBD2_MIN_JOURNAL_BLOCKS: u64 = 1024;
const JBD2_DESCRIPTOR_BLOCK: u32 = 1;
const JBD2_COMMIT_BLOCK: u32 = 2;
const JBD2_SUPERBLOCK_V1: u32 = 3;
const JBD2_SUPERBLOCK_V2: u32 = 4;
const JBD2_REVOKE_BLOCK: u32 = 5;

/// Checksum v1: a crc32 of each transaction's descriptor and data blocks in its commit.
const JBD2_FEATURE_COMPAT_CHECKSUM: u32 = 0x1;
const JBD2_FEATURE_INCOMPAT_REVOKE: u32 = 0x1;
const JBD2_FEATURE_INCOMPAT_64BIT: u32 = 0x2;
const JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
const JBD2_FEATURE_INCOMPAT_CSUM_V2: u32 = 0x8;
const JBD2_FEATURE_INCOMPAT_CSUM_V3: u32 = 0x10;
const JBD2_FEATURE_INCOMPAT_FAST_COMMIT: u32 = 0x20;
const JBD2_KNOWN_INCOMPAT: u32 = JBD2_FEATURE_INCOMPAT_REVOKE
    | JBD2_FEATURE_INCOMPAT_64BIT
    | JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT
    | JBD2_FEATURE_INCOMPAT_CSUM_V2
    | JBD2_FEATURE_INCOMPAT_CSUM_V3
    | JBD2_FEATURE_INCOMPAT_FAST_COMMIT;

/// The data block's first four bytes were the journal magic and were zeroed on write.
const JBD2_FLAG_ESCAPE: u32 = 0x1;
/// No 16-byte UUID follows this tag.
const JBD2_FLAG_SAME_UUID: u32 = 0x2;
const JBD2_FLAG_LAST_TAG: u32 = 0x8;
const JOURNAL_HEADER_LEN: usize = 12;
const UUID_LEN: usize = 16;
/// jbd2_journal_block_tail / jbd2_journal_revoke_tail: a checksum closing the block.
const BLOCK_TAIL_LEN: usize = 4;
/// r_count follows the header in a revoke block.
const REVOKE_RECORDS_START: usize = 16;
/// Block writes plus revoke records one replay may collect. A full 1 GiB journal of
/// 4 KiB blocks holds at most 262 144 writes; the cap keeps a crafted log (say, revoke
/// blocks mapped many times over) from growing memory without bound.
const MAX_LOG_RECORDS: usize = 4 << 20;

/// Where a replaced block's current contents live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Replacement {
    /// Byte offset of the journal's copy within the volume.
    pub offset: u64,
    /// The copy's first four bytes must read as the JBD2 magic (they were escaped).
    pub escaped: bool,
}

impl Replacement {
    pub(super) const MAGIC: [u8; 4] = JBD2_MAGIC_NUMBER.to_be_bytes();
}

/// Filesystem blocks whose current contents live in the journal. Empty when nothing
/// was replayed.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    blocks: BTreeMap<u64, Replacement>,
    /// The journal was found through the superblock's backup of its inode.
    from_backup: bool,
}

impl Overlay {
    /// Whether the journal was read through the superblock's backup of its inode
    /// (s_jnl_blocks), the journal inode itself being unusable.
    pub(super) fn through_backup(&self) -> bool {
        self.from_backup
    }

    pub(super) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Replacement blocks among `first..=last`, in order.
    pub(super) fn range(
        &self,
        first: u64,
        last: u64,
    ) -> impl Iterator<Item = (u64, Replacement)> + '_ {
        self.blocks.range(first..=last).map(|(b, r)| (*b, *r))
    }
}

/// What replaying the journal came to.
#[derive(Debug)]
pub(super) enum Replay {
    /// The blocks committed transactions replace (empty when there was nothing to do).
    Done(Overlay),
    /// The journal superblock failed its checksum: like jbd2 and e2fsck, nothing in the
    /// journal is trusted, so nothing is replayed and the volume is read as it lies.
    Refused(FsError),
}

/// journal_superblock_t, the fields replay needs.
#[derive(Debug)]
struct JournalSuperblock {
    s_maxlen: u64,
    s_first: u64,
    s_sequence: u32,
    s_start: u64,
    s_feature_compat: u32,
    s_feature_incompat: u32,
    s_uuid: [u8; 16],
}

/// tid_gt: transaction IDs wrap, so compare by signed distance.
fn tid_gt(x: u32, y: u32) -> bool {
    (x.wrapping_sub(y) as i32) > 0
}

/// The journal inode's blocks, mapped lazily.
struct JournalFile<'a> {
    fs: &'a Ext4Fs,
    ino: u64,
    /// Where the journal inode's block mapping lies, for errors about it.
    map_offset: u64,
    mapper: Mapper,
    blocks: u64,
}

impl JournalFile<'_> {
    fn what(&self) -> What {
        What::of_inode("ext4 journal", self.ino)
    }

    /// Byte offset in the volume of journal block `index`.
    fn offset_of(&mut self, index: u64) -> Result<u64, FsError> {
        let what = self.what();
        if index >= self.blocks {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                what.to_string(),
                self.map_offset,
                format!(
                    "journal block {index} is past the journal's {} blocks",
                    self.blocks
                ),
            ));
        }
        let run = self.mapper.map(&self.fs.disk, &self.fs.sb, index)?;
        run.physical
            .and_then(|p| self.fs.sb.block_offset(p))
            .ok_or_else(|| {
                FsError::corrupt(
                    CorruptKind::Invalid,
                    what.to_string(),
                    self.map_offset,
                    format!("journal block {index} is not allocated"),
                )
            })
    }

    fn read(&mut self, index: u64) -> Result<(Vec<u8>, u64), FsError> {
        let offset = self.offset_of(index)?;
        let block = self
            .fs
            .disk
            .read_vec(self.what(), offset, self.fs.sb.block_size)?;
        Ok((block, offset))
    }
}

/// The journal inode to replay, and whether it is the superblock's backup of it.
struct JournalInode {
    inode: Inode,
    layout: DataLayout,
    from_backup: bool,
}

/// The journal inode, or, when it is unusable (unreadable, unlinked, not a regular file,
/// too short), the copy of its block map and size the superblock keeps in s_jnl_blocks,
/// as e2fsck replays it. The primary's error stands when there is no usable backup.
fn journal_inode(fs: &Ext4Fs, ino: u64) -> Result<JournalInode, FsError> {
    let error = match fs.inode(ino).and_then(|inode| usable_journal(fs, inode)) {
        Ok((inode, layout)) => {
            return Ok(JournalInode {
                inode,
                layout,
                from_backup: false,
            })
        }
        Err(error) => error,
    };
    if fs.sb.s_jnl_backup_type != EXT3_JNL_BACKUP_BLOCKS {
        return Err(error);
    }
    // Placed so that i_block's offset is s_jnl_blocks' own.
    let offset = SUPERBLOCK_OFFSET + S_JNL_BLOCKS_OFFSET - I_BLOCK_OFFSET;
    let mut backup = Inode::from_journal_backup(ino, offset, &fs.sb.s_jnl_blocks, &fs.sb)?;
    // The rebuilt inode has no stored generation: e2fsck's has i_generation 0, and so
    // has every journal inode mke2fs and tune2fs create, so extent blocks below the
    // backup's root are checked against that seed.
    if fs.sb.metadata_csum() {
        backup.csum_seed = checksum::inode_seed(&fs.sb, ino, &0u32.to_le_bytes());
    }
    let (inode, layout) = usable_journal(fs, backup).map_err(|_| error)?;
    Ok(JournalInode {
        inode,
        layout,
        from_backup: true,
    })
}

/// e2fsck's test of a journal inode: in use, a regular file, block-mapped, and at least
/// JBD2_MIN_JOURNAL_BLOCKS long within the volume.
fn usable_journal(fs: &Ext4Fs, inode: Inode) -> Result<(Inode, DataLayout), FsError> {
    let what = What::of_inode("ext4 journal", inode.ino);
    let corrupt = |kind: CorruptKind, at: u64, detail: String| {
        FsError::corrupt(kind, what.to_string(), inode.offset + at, detail)
    };
    if inode.i_links_count == 0 {
        return Err(corrupt(
            CorruptKind::Invalid,
            0x1A,
            "journal inode is not in use (no links)".into(),
        ));
    }
    if inode.kind()? != FileKind::File {
        return Err(corrupt(
            CorruptKind::Invalid,
            0,
            "journal inode is not a regular file".into(),
        ));
    }
    inode.check_readable()?;
    let layout = inode.layout(&fs.sb)?;
    if layout == DataLayout::Inline {
        return Err(corrupt(
            CorruptKind::Invalid,
            0,
            "journal inode has inline data".into(),
        ));
    }
    fs.check_size(&inode, layout)?;
    if inode.i_size > fs.disk.source.len() {
        return Err(corrupt(
            CorruptKind::OutOfRange,
            0x4,
            format!(
                "journal of {} bytes is larger than the volume",
                inode.i_size
            ),
        ));
    }
    let blocks = inode.i_size / fs.sb.block_size;
    if blocks < JBD2_MIN_JOURNAL_BLOCKS {
        return Err(corrupt(
            CorruptKind::Invalid,
            0x4,
            format!("journal of {blocks} blocks is shorter than the {JBD2_MIN_JOURNAL_BLOCKS} jbd2 requires"),
        ));
    }
    Ok((inode, layout))
}

/// The journal (its inode, or the superblock's backup of its map) as a file, and its
/// superblock as read.
struct Opened<'a> {
    journal: JournalFile<'a>,
    jsb: JournalSuperblock,
    raw: Vec<u8>,
    jsb_offset: u64,
    from_backup: bool,
}

fn open(fs: &Ext4Fs, ino: u64) -> Result<Opened<'_>, FsError> {
    let sb = &fs.sb;
    let what = What::of_inode("ext4 journal", ino);
    let JournalInode {
        inode,
        layout,
        from_backup,
    } = journal_inode(fs, ino)?;
    let mut journal = JournalFile {
        fs,
        ino,
        map_offset: inode.offset + I_BLOCK_OFFSET,
        mapper: Mapper::new(&inode, layout, sb)?,
        blocks: inode.i_size / sb.block_size,
    };
    let (raw, jsb_offset) = journal.read(0)?;
    let jsb = parse_superblock(&raw, jsb_offset, journal.blocks, sb.block_size, what)?;
    Ok(Opened {
        journal,
        jsb,
        raw,
        jsb_offset,
        from_backup,
    })
}

/// Builds the overlay that replaying the internal journal of `fs` would produce, or
/// refuses the journal when its superblock (read through the journal inode or through
/// the superblock's backup of it) fails its checksum.
pub(super) fn replay(fs: &Ext4Fs) -> Result<Replay, FsError> {
    let sb = &fs.sb;
    if !sb.has_compat(COMPAT_HAS_JOURNAL) || sb.s_journal_inum == 0 {
        return Err(FsError::Unsupported {
            feature: "ext4 journal needs recovery (unclean shutdown), but the log lives on an \
                      external journal device and was not replayed"
                .into(),
        });
    }
    let ino = u64::from(sb.s_journal_inum);
    let Opened {
        mut journal,
        jsb,
        raw,
        jsb_offset,
        from_backup,
    } = open(fs, ino)?;
    let csum_v2_v3 = jsb.s_feature_incompat
        & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3)
        != 0;
    if csum_v2_v3 {
        if let Err(mismatch) = checksum::journal_superblock(&fs.disk.guard, ino, &raw, jsb_offset) {
            return Ok(Replay::Refused(mismatch));
        }
    }
    if jsb.s_start == 0 {
        // The journal was emptied: nothing to replay despite the flag.
        return Ok(Replay::Done(Overlay::default()));
    }
    if jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_FAST_COMMIT != 0 {
        return Err(FsError::Unsupported {
            feature: "ext4 journal fast commit replay".into(),
        });
    }
    let unknown = jsb.s_feature_incompat & !JBD2_KNOWN_INCOMPAT;
    if unknown != 0 {
        return Err(FsError::Unsupported {
            feature: format!(
                "ext4 journal feature incompat bit {:#x}",
                1u32 << unknown.trailing_zeros()
            )
            .into(),
        });
    }
    let log = scan(&mut journal, &jsb)?;
    let mut overlay = Overlay {
        from_backup,
        ..Overlay::default()
    };
    for (sequence, block, replacement) in log.writes {
        let revoked = log
            .revoked
            .get(&block)
            .is_some_and(|revoked_in| !tid_gt(sequence, *revoked_in));
        if revoked {
            continue;
        }
        if block >= sb.s_blocks_count {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                journal.what().to_string(),
                replacement.offset,
                format!(
                    "journal replays block {block}, outside the {}-block filesystem",
                    sb.s_blocks_count
                ),
            ));
        }
        overlay.blocks.insert(block, replacement);
    }
    Ok(Replay::Done(overlay))
}

fn parse_superblock(
    raw: &[u8],
    offset: u64,
    journal_blocks: u64,
    block_size: u64,
    what: What,
) -> Result<JournalSuperblock, FsError> {
    let corrupt = |kind: CorruptKind, at: u64, detail: String| {
        FsError::corrupt(kind, what.to_string(), offset + at, detail)
    };
    let h_magic = be32(raw, 0);
    let h_blocktype = be32(raw, 4);
    if h_magic != JBD2_MAGIC_NUMBER {
        return Err(corrupt(
            CorruptKind::Magic,
            0,
            format!("journal superblock magic is {h_magic:#010x}"),
        ));
    }
    if h_blocktype != JBD2_SUPERBLOCK_V1 && h_blocktype != JBD2_SUPERBLOCK_V2 {
        return Err(corrupt(
            CorruptKind::Invalid,
            4,
            format!("block type {h_blocktype} is not a journal superblock"),
        ));
    }
    let s_blocksize = u64::from(be32(raw, 0xC));
    let s_maxlen = u64::from(be32(raw, 0x10));
    let s_first = u64::from(be32(raw, 0x14));
    let s_sequence = be32(raw, 0x18);
    let s_start = u64::from(be32(raw, 0x1C));
    let s_feature_incompat = if h_blocktype == JBD2_SUPERBLOCK_V2 {
        be32(raw, 0x28)
    } else {
        0
    };
    if s_blocksize != block_size {
        return Err(corrupt(
            CorruptKind::Invalid,
            0xC,
            format!("journal block size {s_blocksize} differs from the filesystem's {block_size}"),
        ));
    }
    if s_maxlen > journal_blocks || s_first == 0 || s_first >= s_maxlen {
        return Err(corrupt(CorruptKind::OutOfRange,
            0x10,
            format!("s_maxlen {s_maxlen} / s_first {s_first} do not fit the {journal_blocks}-block journal"),
        ));
    }
    if s_start != 0 && (s_start < s_first || s_start >= s_maxlen) {
        return Err(corrupt(
            CorruptKind::OutOfRange,
            0x1C,
            format!("s_start {s_start} lies outside the log ({s_first}..{s_maxlen})"),
        ));
    }
    let mut s_uuid = [0u8; 16];
    if let Some(uuid) = raw.get(0x30..0x40) {
        s_uuid.copy_from_slice(uuid);
    }
    let s_feature_compat = if h_blocktype == JBD2_SUPERBLOCK_V2 {
        be32(raw, 0x24)
    } else {
        0
    };
    let v1 = s_feature_compat & JBD2_FEATURE_COMPAT_CHECKSUM != 0;
    let v2 = s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2 != 0;
    let v3 = s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3 != 0;
    if u8::from(v1) + u8::from(v2) + u8::from(v3) > 1 {
        return Err(corrupt(
            CorruptKind::Invalid,
            0x24,
            "more than one journal checksum version is enabled".into(),
        ));
    }
    Ok(JournalSuperblock {
        s_feature_compat,
        s_uuid,
        s_maxlen,
        s_first,
        s_sequence,
        s_start,
        s_feature_incompat,
    })
}

/// How a journal's descriptor blocks lay out their tags (journal_tag_bytes()).
#[derive(Debug, Clone, Copy)]
struct TagFormat {
    bytes: usize,
    csum_v3: bool,
    is_64bit: bool,
}

impl TagFormat {
    fn of(jsb: &JournalSuperblock) -> Self {
        let incompat = jsb.s_feature_incompat;
        let is_64bit = incompat & JBD2_FEATURE_INCOMPAT_64BIT != 0;
        let csum_v2 = incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2 != 0;
        let csum_v3 = incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3 != 0;
        let bytes = match (csum_v3, csum_v2, is_64bit) {
            (true, _, _) => 16,
            (false, true, true) => 14,
            (false, true, false) => 10,
            (false, false, true) => 12,
            (false, false, false) => 8,
        };
        TagFormat {
            bytes,
            csum_v3,
            is_64bit,
        }
    }

    /// The filesystem block a tag names, and its flags.
    fn read(&self, tag: &[u8]) -> (u64, u32) {
        let low = u64::from(be32(tag, 0));
        let flags = if self.csum_v3 {
            be32(tag, 4)
        } else {
            u32::from(u16::from_be_bytes([
                tag.get(6).copied().unwrap_or(0),
                tag.get(7).copied().unwrap_or(0),
            ]))
        };
        let high = if self.is_64bit {
            u64::from(be32(tag, 8))
        } else {
            0
        };
        (low | (high << 32), flags)
    }
}

/// Committed block writes, in log order, and the latest transaction revoking each block.
struct Log {
    writes: Vec<(u32, u64, Replacement)>,
    revoked: HashMap<u64, u32>,
}

/// Which checksums the log carries (v2 and v3 share everything but the tag format).
#[derive(Debug, Clone, Copy)]
struct Checksums {
    /// crc32c of the journal UUID, the seed of every journal checksum.
    seed: u32,
    v3: bool,
}

impl Checksums {
    /// The log's v2 or v3 checksums, if it has them.
    fn of(jsb: &JournalSuperblock) -> Option<Self> {
        let incompat = jsb.s_feature_incompat;
        let v2 = incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2 != 0;
        let v3 = incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3 != 0;
        (v2 || v3).then(|| Checksums {
            seed: crc32c(!0, &jsb.s_uuid),
            v3,
        })
    }

    /// Descriptor and revoke blocks end in a crc32c of the block with that field zeroed.
    fn block_tail_ok(&self, block: &[u8]) -> bool {
        let Some(split) = block.len().checked_sub(BLOCK_TAIL_LEN) else {
            return false;
        };
        let (body, tail) = block.split_at(split);
        let crc = crc32c(crc32c(self.seed, body), &[0; BLOCK_TAIL_LEN]);
        crc == be32(tail, 0)
    }

    /// The commit block carries its crc32c in h_chksum[0].
    fn commit_ok(&self, block: &[u8]) -> bool {
        let (Some(head), Some(rest)) = (
            block.get(..COMMIT_CHKSUM_AT),
            block.get(COMMIT_CHKSUM_AT + 4..),
        ) else {
            return false;
        };
        let crc = crc32c(crc32c(crc32c(self.seed, head), &[0; 4]), rest);
        crc == be32(block, COMMIT_CHKSUM_AT)
    }

    /// A data block's tag holds crc32c(seed, sequence, block): all 32 bits in v3, the
    /// low 16 in v2.
    fn data_ok(&self, tag: &[u8], sequence: u32, data: &[u8]) -> bool {
        let crc = crc32c(crc32c(self.seed, &sequence.to_be_bytes()), data);
        if self.v3 {
            crc == be32(tag, 12)
        } else {
            let stored = u16::from_be_bytes([
                tag.get(4).copied().unwrap_or(0),
                tag.get(5).copied().unwrap_or(0),
            ]);
            crc & 0xFFFF == u32::from(stored)
        }
    }
}

/// Offset of h_chksum[0] in a commit block, and of h_chksum_type / h_chksum_size.
const COMMIT_CHKSUM_AT: usize = 16;
const COMMIT_CHKSUM_TYPE_AT: usize = 12;
const COMMIT_CHKSUM_SIZE_AT: usize = 13;
const JBD2_CRC32_CHKSUM: u8 = 1;
const JBD2_CRC32_CHKSUM_SIZE: u8 = 4;

/// Whether a v1 commit block matches the crc32 accumulated over its transaction, or
/// carries no checksum at all (both are accepted by jbd2).
fn commit_v1_ok(block: &[u8], crc32_sum: u32) -> bool {
    let found = be32(block, COMMIT_CHKSUM_AT);
    let kind = block.get(COMMIT_CHKSUM_TYPE_AT).copied().unwrap_or(0);
    let size = block.get(COMMIT_CHKSUM_SIZE_AT).copied().unwrap_or(0);
    (found == crc32_sum && kind == JBD2_CRC32_CHKSUM && size == JBD2_CRC32_CHKSUM_SIZE)
        || (kind == 0 && size == 0 && found == 0)
}

/// crc32 big-endian (MSB first), without inversions, as the kernel's crc32_be.
fn crc32_be(mut crc: u32, data: &[u8]) -> u32 {
    for byte in data {
        let index = usize::from(((crc >> 24) as u8) ^ byte);
        crc = (crc << 8) ^ CRC32_BE_TABLE.get(index).copied().unwrap_or(0);
    }
    crc
}

#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where a bad index fails the build"
)]
const CRC32_BE_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// crc32c (Castagnoli), without the final inversion, as jbd2_chksum computes it.
fn crc32c(crc: u32, data: &[u8]) -> u32 {
    crate::crc32c::update(crc, data)
}

/// Walks the log from s_start while blocks carry the expected transaction ID, keeping
/// only transactions whose commit block was found. With checksums (v2/v3), as in jbd2,
/// a descriptor, revoke or commit block that fails its checksum ends the log before
/// its transaction, and a data block that fails its tag checksum is not replayed. With
/// v1 checksums, a commit whose crc32 does not match ends the log before it.
fn scan(journal: &mut JournalFile<'_>, jsb: &JournalSuperblock) -> Result<Log, FsError> {
    let journal_what = journal.what();
    let csum_v1 = jsb.s_feature_compat & JBD2_FEATURE_COMPAT_CHECKSUM != 0;
    let mut crc32_sum = !0u32;
    let checksums = Checksums::of(jsb);
    let tags = TagFormat::of(jsb);
    let tag_bytes = tags.bytes;
    let tail = if checksums.is_some() {
        BLOCK_TAIL_LEN
    } else {
        0
    };
    let block_size = usize::try_from(journal.fs.sb.block_size).unwrap_or(usize::MAX);
    let next = |pos: u64| {
        if pos + 1 >= jsb.s_maxlen {
            jsb.s_first
        } else {
            pos + 1
        }
    };

    let mut log = Log {
        writes: Vec::new(),
        revoked: HashMap::new(),
    };
    let mut pending_writes: Vec<(u64, Replacement)> = Vec::new();
    let mut pending_revokes: Vec<u64> = Vec::new();
    let mut records = 0usize;
    let mut count_record = |at: u64| {
        records += 1;
        if records > MAX_LOG_RECORDS {
            return Err(FsError::corrupt(
                CorruptKind::TooLarge,
                journal_what.to_string(),
                at,
                format!("the log holds more than {MAX_LOG_RECORDS} block records"),
            ));
        }
        Ok(())
    };
    let mut sequence = jsb.s_sequence;
    let mut pos = jsb.s_start;
    // A log never holds more blocks than the journal: this bounds the walk even when a
    // crafted journal loops back onto itself with matching sequence numbers.
    let mut budget = jsb.s_maxlen;
    'log: while budget > 0 {
        budget -= 1;
        let (block, block_offset) = journal.read(pos)?;
        if be32(&block, 0) != JBD2_MAGIC_NUMBER || be32(&block, 8) != sequence {
            break;
        }
        match be32(&block, 4) {
            JBD2_DESCRIPTOR_BLOCK => {
                if checksums.is_some_and(|c| !c.block_tail_ok(&block)) {
                    break;
                }
                if csum_v1 {
                    crc32_sum = crc32_be(crc32_sum, &block);
                }
                let mut at = JOURNAL_HEADER_LEN;
                let end = block_size.saturating_sub(tail);
                while at + tag_bytes <= end {
                    let tag = block.get(at..at + tag_bytes).unwrap_or(&[]);
                    let (fs_block, flags) = tags.read(tag);
                    if budget == 0 {
                        break 'log;
                    }
                    budget -= 1;
                    pos = next(pos);
                    let data_offset = journal.offset_of(pos)?;
                    let intact = match checksums {
                        Some(c) => c.data_ok(tag, sequence, &journal.read(pos)?.0),
                        None if csum_v1 => {
                            crc32_sum = crc32_be(crc32_sum, &journal.read(pos)?.0);
                            true
                        }
                        None => true,
                    };
                    if intact {
                        count_record(data_offset)?;
                        pending_writes.push((
                            fs_block,
                            Replacement {
                                offset: data_offset,
                                escaped: flags & JBD2_FLAG_ESCAPE != 0,
                            },
                        ));
                    }
                    at += tag_bytes;
                    if flags & JBD2_FLAG_SAME_UUID == 0 {
                        at += UUID_LEN;
                    }
                    if flags & JBD2_FLAG_LAST_TAG != 0 {
                        break;
                    }
                }
            }
            JBD2_COMMIT_BLOCK => {
                if checksums.is_some_and(|c| !c.commit_ok(&block)) {
                    break;
                }
                if csum_v1 && !commit_v1_ok(&block, crc32_sum) {
                    break;
                }
                crc32_sum = !0;
                log.writes
                    .extend(pending_writes.drain(..).map(|(b, r)| (sequence, b, r)));
                for block in pending_revokes.drain(..) {
                    let entry = log.revoked.entry(block).or_insert(sequence);
                    if tid_gt(sequence, *entry) {
                        *entry = sequence;
                    }
                }
                sequence = sequence.wrapping_add(1);
            }
            JBD2_REVOKE_BLOCK => {
                if checksums.is_some_and(|c| !c.block_tail_ok(&block)) {
                    break;
                }
                let r_count = usize::try_from(be32(&block, JOURNAL_HEADER_LEN)).unwrap_or(0);
                let end = r_count.min(block_size.saturating_sub(tail));
                let record = if tags.is_64bit { 8 } else { 4 };
                let mut at = REVOKE_RECORDS_START;
                while at + record <= end {
                    let mut blocknr = u64::from(be32(&block, at));
                    if tags.is_64bit {
                        blocknr = (blocknr << 32) | u64::from(be32(&block, at + 4));
                    }
                    count_record(block_offset)?;
                    pending_revokes.push(blocknr);
                    at += record;
                }
            }
            // jbd2 ends the scan at a block type it does not expect, as at a bad magic.
            _ => break,
        }
        pos = next(pos);
    }
    Ok(log)
}

/// The byte ranges of the volume the internal journal occupies, in journal order, adjacent
/// ones merged; empty when the volume has no internal journal.
pub(super) fn area(fs: &Ext4Fs) -> Result<Vec<std::ops::Range<u64>>, FsError> {
    let sb = &fs.sb;
    if !sb.has_compat(COMPAT_HAS_JOURNAL) || sb.s_journal_inum == 0 {
        return Ok(Vec::new());
    }
    let ino = u64::from(sb.s_journal_inum);
    let JournalInode { inode, layout, .. } = journal_inode(fs, ino)?;
    let blocks = inode.i_size / sb.block_size;
    let mut mapper = Mapper::new(&inode, layout, sb)?;
    let mut ranges = Vec::new();
    let mut logical = 0u64;
    // Each run covers at least one block, so this ends after `blocks` steps at most.
    while logical < blocks {
        let run = mapper.map(&fs.disk, sb, logical)?;
        let len = run
            .logical
            .saturating_add(run.len)
            .saturating_sub(logical)
            .clamp(1, blocks - logical);
        if let Some(physical) = run.physical {
            let first = physical.saturating_add(logical.saturating_sub(run.logical));
            if let Some(problem) = sb.block_range_problem(first, len) {
                return Err(FsError::corrupt(
                    CorruptKind::OutOfRange,
                    What::of_inode("ext4 journal", ino).to_string(),
                    inode.offset + I_BLOCK_OFFSET,
                    problem,
                ));
            }
            let start = first * sb.block_size;
            crate::filesystems::residue::push_merged(
                &mut ranges,
                start..start + len * sb.block_size,
            );
        }
        logical += len;
    }
    Ok(ranges)
}

/// Every block copy the journal still holds, old transactions included, as (filesystem
/// block, volume offset of the copy): what a descriptor block anywhere in the log area
/// names, whether or not its transaction was committed or has long been checkpointed.
/// Only the residue pass's former paths read them, as hints: a descriptor that fails its
/// checksum is skipped, and nothing here changes what the volume reads as.
pub(super) fn logged_copies(fs: &Ext4Fs) -> Result<Vec<(u64, u64)>, FsError> {
    let sb = &fs.sb;
    if !sb.has_compat(COMPAT_HAS_JOURNAL) || sb.s_journal_inum == 0 {
        return Ok(Vec::new());
    }
    let Opened {
        mut journal, jsb, ..
    } = open(fs, u64::from(sb.s_journal_inum))?;
    let checksums = Checksums::of(&jsb);
    let tags = TagFormat::of(&jsb);
    let tail = if checksums.is_some() {
        BLOCK_TAIL_LEN
    } else {
        0
    };
    let block_size = usize::try_from(sb.block_size).unwrap_or(usize::MAX);
    let next = |pos: u64| {
        if pos + 1 >= jsb.s_maxlen {
            jsb.s_first
        } else {
            pos + 1
        }
    };
    let mut copies = Vec::new();
    // One look at each block of the log area; a descriptor's tags name at most the
    // blocks that follow it, so the copies are bounded by the journal's length.
    for pos in jsb.s_first..jsb.s_maxlen {
        let (block, _) = journal.read(pos)?;
        if be32(&block, 0) != JBD2_MAGIC_NUMBER || be32(&block, 4) != JBD2_DESCRIPTOR_BLOCK {
            continue;
        }
        if checksums.is_some_and(|c| !c.block_tail_ok(&block)) {
            continue;
        }
        let mut at = JOURNAL_HEADER_LEN;
        let end = block_size.saturating_sub(tail);
        let mut data = pos;
        while at + tags.bytes <= end && copies.len() < jsb.s_maxlen as usize {
            let tag = block.get(at..at + tags.bytes).unwrap_or(&[]);
            let (fs_block, flags) = tags.read(tag);
            data = next(data);
            // An escaped copy's first four bytes were changed: it is no block's image.
            if flags & JBD2_FLAG_ESCAPE == 0 {
                copies.push((fs_block, journal.offset_of(data)?));
            }
            at += tags.bytes;
            if flags & JBD2_FLAG_SAME_UUID == 0 {
                at += UUID_LEN;
            }
            if flags & JBD2_FLAG_LAST_TAG != 0 {
                break;
            }
        }
    }
    Ok(copies)
}
