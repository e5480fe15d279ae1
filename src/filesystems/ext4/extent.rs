//! Extent trees (ext4_extent_header, ext4_extent_idx, ext4_extent): mapping a file's
//! logical blocks to physical ones, one leaf at a time.

use super::superblock::Superblock;
use super::{checksum, le16, le32, Disk, Run, What, MAX_LOGICAL_BLOCKS};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// Deepest extent tree read. The kernel builds at most 5 levels below the root, but
/// e2fsck accepts deeper trees (it only offers to make them shallower) and debugfs
/// reads them, so they are read too, each level one less deep than its parent. The
/// bound caps the blocks one lookup reads and keeps a crafted chain of index nodes
/// from costing more.
const EXT4_MAX_EXTENT_DEPTH: u16 = 32;
const HEADER_LEN: usize = 12;
const ENTRY_LEN: usize = 12;
/// ee_len above this marks an uninitialised (preallocated, reads-as-zero) extent.
const EXT_INIT_MAX_LEN: u16 = 1 << 15;

/// ext4_extent_header, validated against the node it heads.
#[derive(Debug, Clone, Copy)]
struct ExtentHeader {
    eh_entries: u16,
    eh_depth: u16,
}

impl ExtentHeader {
    fn parse(node: &[u8], what: What, offset: u64) -> Result<Self, FsError> {
        let corrupt = |kind: CorruptKind, at: u64, detail: String| {
            FsError::corrupt(kind, what.to_string(), offset + at, detail)
        };
        if node.len() < HEADER_LEN {
            return Err(corrupt(
                CorruptKind::Truncated,
                0,
                "extent node shorter than its header".into(),
            ));
        }
        let eh_magic = le16(node, 0);
        let eh_entries = le16(node, 2);
        let eh_max = le16(node, 4);
        let eh_depth = le16(node, 6);
        if eh_magic != EXT4_EXT_MAGIC {
            return Err(corrupt(
                CorruptKind::Magic,
                0,
                format!("extent header magic is {eh_magic:#06x}, not 0xf30a"),
            ));
        }
        let capacity = (node.len() - HEADER_LEN) / ENTRY_LEN;
        if usize::from(eh_max) > capacity {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                4,
                format!("eh_max {eh_max} exceeds the {capacity} entries the node can hold"),
            ));
        }
        if eh_entries > eh_max {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                2,
                format!("eh_entries {eh_entries} exceeds eh_max {eh_max}"),
            ));
        }
        if eh_depth > EXT4_MAX_EXTENT_DEPTH {
            return Err(corrupt(
                CorruptKind::TooLarge,
                6,
                format!("eh_depth {eh_depth} exceeds the maximum of {EXT4_MAX_EXTENT_DEPTH}"),
            ));
        }
        Ok(Self {
            eh_entries,
            eh_depth,
        })
    }
}

/// One leaf entry (ext4_extent), decoded.
#[derive(Debug, Clone, Copy)]
struct Extent {
    ee_block: u64,
    len: u64,
    ee_start: u64,
    uninit: bool,
}

/// A leaf node and the logical range its parent index assigns it.
#[derive(Debug)]
struct Leaf {
    first: u64,
    end: u64,
    extents: Vec<Extent>,
}

impl Leaf {
    /// The run at `logical`; an unwritten extent reads as zeros unless `unwritten_data`.
    fn lookup(&self, logical: u64, unwritten_data: bool) -> Run {
        let idx = self.extents.partition_point(|e| e.ee_block <= logical);
        if let Some(ext) = idx.checked_sub(1).and_then(|i| self.extents.get(i)) {
            let ext_end = (ext.ee_block + ext.len).min(self.end);
            if logical < ext_end {
                let physical = (unwritten_data || !ext.uninit)
                    .then(|| ext.ee_start + (logical - ext.ee_block));
                return Run {
                    logical,
                    len: ext_end - logical,
                    physical,
                };
            }
        }
        let hole_end = self
            .extents
            .get(idx)
            .map_or(self.end, |e| e.ee_block.min(self.end));
        Run {
            logical,
            len: hole_end.saturating_sub(logical).max(1),
            physical: None,
        }
    }
}

/// An inode's extent tree, caching the leaf last used so sequential reads walk the
/// tree once per leaf rather than once per block.
#[derive(Debug)]
pub(super) struct ExtentTree {
    ino: u64,
    root: [u8; 60],
    root_offset: u64,
    /// The inode's checksum seed, when blocks below the root carry checksums.
    csum_seed: Option<u32>,
    leaf: Option<Leaf>,
    /// Map unwritten extents to their blocks instead of zeros (see `read_unwritten`).
    unwritten_data: bool,
}

impl ExtentTree {
    /// Checks the root header in i_block (at `root_offset` in the volume). With
    /// `csum_seed` (metadata_csum), every block below the root is checked against it.
    pub(super) fn new(
        ino: u64,
        root: [u8; 60],
        root_offset: u64,
        csum_seed: Option<u32>,
    ) -> Result<Self, FsError> {
        ExtentHeader::parse(&root, What::of_inode("ext4 extent tree", ino), root_offset)?;
        Ok(Self {
            ino,
            root,
            root_offset,
            csum_seed,
            leaf: None,
            unwritten_data: false,
        })
    }

    /// Maps unwritten extents to their blocks. For directories: ext4 never preallocates
    /// directory blocks, and the kernel's directory reads (ext4_bread) and debugfs read
    /// the block an unwritten extent points at, where a regular file reads zeros.
    pub(super) fn read_unwritten(&mut self) {
        self.unwritten_data = true;
    }

    /// The run of blocks starting at `logical`.
    pub(super) fn map(
        &mut self,
        disk: &Disk,
        sb: &Superblock,
        logical: u64,
    ) -> Result<Run, FsError> {
        if let Some(leaf) = &self.leaf {
            if leaf.first <= logical && logical < leaf.end {
                return Ok(leaf.lookup(logical, self.unwritten_data));
            }
        }
        let leaf = self.walk(disk, sb, logical)?;
        let run = leaf.lookup(logical, self.unwritten_data);
        self.leaf = Some(leaf);
        Ok(run)
    }

    /// Descends from the root to the leaf whose range holds `logical`.
    fn walk(&self, disk: &Disk, sb: &Superblock, logical: u64) -> Result<Leaf, FsError> {
        let what = What::of_inode("ext4 extent tree", self.ino);
        let mut node: Vec<u8> = self.root.to_vec();
        let mut node_offset = self.root_offset;
        let mut first = 0u64;
        let mut end = MAX_LOGICAL_BLOCKS;
        let root_depth = ExtentHeader::parse(&node, what, node_offset)?.eh_depth;
        let mut expected_depth = root_depth;
        for level in 0..=EXT4_MAX_EXTENT_DEPTH {
            let header = ExtentHeader::parse(&node, what, node_offset)?;
            if let Some(seed) = self.csum_seed.filter(|_| level > 0) {
                checksum::extent_block(&disk.guard, self.ino, seed, &node, node_offset)?;
            }
            if header.eh_depth != expected_depth {
                return Err(FsError::corrupt(
                    CorruptKind::Invalid,
                    what.to_string(),
                    node_offset + 6,
                    format!(
                        "eh_depth {} where the parent implies {expected_depth}",
                        header.eh_depth
                    ),
                ));
            }
            let entries = node
                .get(HEADER_LEN..HEADER_LEN + usize::from(header.eh_entries) * ENTRY_LEN)
                .unwrap_or(&[]);
            if header.eh_depth == 0 {
                let extents =
                    parse_leaf(entries, sb, what, node_offset + HEADER_LEN as u64, first)?;
                return Ok(Leaf {
                    first,
                    end,
                    extents,
                });
            }
            if header.eh_entries == 0 {
                return Err(FsError::corrupt(
                    CorruptKind::Invalid,
                    what.to_string(),
                    node_offset + 2,
                    "index node has no entries",
                ));
            }
            let mut chosen: Option<(u64, u64)> = None;
            let mut next_start = end;
            let mut prev: Option<u64> = None;
            for (i, idx) in entries.chunks_exact(ENTRY_LEN).enumerate() {
                let ei_block = u64::from(le32(idx, 0));
                let at = node_offset + (HEADER_LEN + i * ENTRY_LEN) as u64;
                if prev.is_some_and(|p| ei_block <= p) {
                    return Err(FsError::corrupt(
                        CorruptKind::Invalid,
                        what.to_string(),
                        at,
                        "index entries are not in ascending order",
                    ));
                }
                prev = Some(ei_block);
                if ei_block <= logical {
                    let leaf = u64::from(le32(idx, 4)) | (u64::from(le16(idx, 8)) << 32);
                    if let Some(problem) = sb.block_range_problem(leaf, 1) {
                        return Err(FsError::corrupt(
                            CorruptKind::OutOfRange,
                            what.to_string(),
                            at + 4,
                            format!("child node: {problem}"),
                        ));
                    }
                    chosen = Some((ei_block, leaf));
                } else if next_start == end {
                    next_start = ei_block.min(end);
                }
            }
            let Some((ei_block, child)) = chosen else {
                // `logical` precedes every index entry: a hole up to the first one.
                return Ok(Leaf {
                    first,
                    end: next_start,
                    extents: Vec::new(),
                });
            };
            first = first.max(ei_block);
            end = end.min(next_start);
            node_offset = sb.block_offset(child).unwrap_or(u64::MAX);
            node = disk.read_vec(what, node_offset, sb.block_size)?;
            expected_depth = header.eh_depth - 1;
        }
        Err(FsError::corrupt(
            CorruptKind::Invalid,
            what.to_string(),
            self.root_offset,
            "extent tree deeper than its root claims",
        ))
    }
}

fn parse_leaf(
    entries: &[u8],
    sb: &Superblock,
    what: What,
    offset: u64,
    first: u64,
) -> Result<Vec<Extent>, FsError> {
    let mut extents = Vec::with_capacity(entries.len() / ENTRY_LEN);
    let mut prev_end = first;
    for (i, raw) in entries.chunks_exact(ENTRY_LEN).enumerate() {
        let at = offset + (i * ENTRY_LEN) as u64;
        let corrupt = |kind: CorruptKind, detail: String| {
            FsError::corrupt(kind, what.to_string(), at, detail)
        };
        let ee_block = u64::from(le32(raw, 0));
        let ee_len = le16(raw, 4);
        let ee_start = (u64::from(le16(raw, 6)) << 32) | u64::from(le32(raw, 8));
        let (len, uninit) = if ee_len > EXT_INIT_MAX_LEN {
            (ee_len - EXT_INIT_MAX_LEN, true)
        } else {
            (ee_len, false)
        };
        let len = u64::from(len);
        if len == 0 {
            return Err(corrupt(CorruptKind::Invalid, "extent of length 0".into()));
        }
        if ee_block < prev_end {
            return Err(corrupt(CorruptKind::Invalid, format!(
                "extent at logical block {ee_block} overlaps or precedes the previous one (or its index)"
            )));
        }
        if ee_block + len > MAX_LOGICAL_BLOCKS {
            return Err(corrupt(
                CorruptKind::Invalid,
                format!("extent at logical block {ee_block} of {len} blocks passes 2^32"),
            ));
        }
        if let Some(problem) = sb.block_range_problem(ee_start, len) {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                format!("extent at logical block {ee_block}: {problem}"),
            ));
        }
        prev_end = ee_block + len;
        extents.push(Extent {
            ee_block,
            len,
            ee_start,
            uninit,
        });
    }
    Ok(extents)
}
