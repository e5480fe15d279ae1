//! Where freed blocks came from. ext4 clears a deleted inode's extent map and current
//! kernels wipe a deleted directory entry's name, so the live volume no longer links a free
//! block to the file that held it. The journal may: it keeps copies of the inode-table
//! blocks and directory blocks written while the file existed, until the log wraps over
//! them. This reads those copies back (extundelete's method) to name the former path of a
//! block, when exactly one inode's logged extents claimed it. Everything here is a hint for
//! a finding's message: a copy that does not parse is passed over, never an error.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{journal, Ext4Fs, What};
use crate::bytes::{le16, le32};
use crate::filesystems::{FileKind, Filesystem};

const EXTENTS_FLAG: u32 = 0x0008_0000;
const EXTENT_MAGIC: u16 = 0xF30A;
const MODE_TYPE: u16 = 0xF000;
const MODE_FILE: u16 = 0x8000;
const MODE_DIR: u16 = 0x4000;
const ROOT_INO: u64 = 2;
/// The longest run one extent maps (an uninitialised extent's 32 767 blocks, rounded up).
const MAX_RUN: u64 = 32_768;
/// Matches whose former path is looked up, at most, per call.
const MAX_LOOKUPS: usize = 1000;
/// How deep a former path is followed up its directories.
const MAX_DEPTH: usize = 64;
/// Live entries looked at, at most, to name a former file's directory.
const MAX_LIVE_ENTRIES: usize = 200_000;

/// One inode's logged block runs: (first block, count).
struct LoggedInode {
    mode: u16,
    runs: Vec<(u64, u64)>,
}

/// What the journal's copies say.
#[derive(Default)]
struct Logged {
    /// Regular files' logged block runs by first block: (count, inode).
    file_runs: BTreeMap<u64, Vec<(u64, u64)>>,
    /// An inode's name and its directory's inode, from the first directory copy that
    /// holds both (its entry, and the directory's `.`).
    names: HashMap<u64, (Vec<u8>, u64)>,
}

/// The former path (from the volume's root) of the block at each of `offsets`, where
/// the journal's copies name exactly one regular file that held it.
pub(super) fn former_paths(fs: &Ext4Fs, offsets: &[u64]) -> Vec<Option<Vec<u8>>> {
    let mut paths = vec![None; offsets.len()];
    let Ok(copies) = journal::logged_copies(fs) else {
        return paths;
    };
    if copies.is_empty() {
        return paths;
    }
    let logged = read_copies(fs, &copies);
    let mut names = Names::new(fs, &logged);
    for (path, offset) in paths.iter_mut().zip(offsets).take(MAX_LOOKUPS) {
        let block = offset / fs.sb.block_size;
        if let Some(ino) = only_owner(&logged.file_runs, block) {
            *path = names.path_of(ino);
        }
    }
    paths
}

fn read_copies(fs: &Ext4Fs, copies: &[(u64, u64)]) -> Logged {
    let sb = &fs.sb;
    let per_block = (sb.block_size / sb.inode_size.max(1)).max(1);
    let table_blocks = (u64::from(sb.s_inodes_per_group) * sb.inode_size).div_ceil(sb.block_size);
    // Inode tables as (first block, group), sorted: one entry per group, so a large
    // volume's thousands of table blocks cost no map of their own.
    let mut tables: Vec<(u64, u64)> = fs
        .groups
        .iter()
        .enumerate()
        .filter_map(|(group, desc)| {
            let desc = desc
                .usable(group as u64, &What::fs("ext4 group descriptor"))
                .ok()?;
            Some((desc.bg_inode_table, group as u64))
        })
        .collect();
    tables.sort_unstable();
    let table_of = |block: u64| -> Option<(u64, u64)> {
        let at = tables.partition_point(|&(start, _)| start <= block);
        let &(start, group) = tables.get(at.checked_sub(1)?)?;
        let index = block - start;
        (index < table_blocks).then_some((group, index))
    };
    let read = |offset: u64| {
        fs.disk
            .read_vec(What::fs("ext4 journal copy"), offset, sb.block_size)
            .ok()
    };
    let mut logged = Logged::default();
    // Directories' logged runs, to tell which directory a block past its first (which
    // has no `.` entry) belongs to.
    let mut dir_runs: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    let mut other_blocks = Vec::new();
    for &(fs_block, offset) in copies {
        let Some((group, index)) = table_of(fs_block) else {
            other_blocks.push((fs_block, offset));
            continue;
        };
        let Some(copy) = read(offset) else { continue };
        for slot in 0..per_block {
            let at = (slot * sb.inode_size) as usize;
            let Some(raw) = copy.get(at..at + sb.inode_size as usize) else {
                break;
            };
            let ino = group * u64::from(sb.s_inodes_per_group) + index * per_block + slot + 1;
            let Some(inode) = logged_inode(raw) else {
                continue;
            };
            let runs = match inode.mode & MODE_TYPE {
                MODE_FILE => &mut logged.file_runs,
                MODE_DIR => &mut dir_runs,
                _ => continue,
            };
            for (start, count) in inode.runs {
                runs.entry(start)
                    .or_default()
                    .push((count.min(MAX_RUN), ino));
            }
        }
    }
    for (fs_block, offset) in other_blocks {
        let Some(copy) = read(offset) else { continue };
        let Some(entries) = dir_entries(&copy) else {
            continue;
        };
        let own = entries
            .iter()
            .find(|(_, name)| name.as_slice() == b".")
            .map(|(ino, _)| *ino)
            .or_else(|| only_owner(&dir_runs, fs_block));
        let Some(own) = own else { continue };
        for (ino, name) in entries {
            if name != b"." && name != b".." {
                logged.names.entry(ino).or_insert((name, own));
            }
        }
    }
    logged
}

/// The one inode whose logged runs in `runs` cover `block`, if exactly one does.
fn only_owner(runs: &BTreeMap<u64, Vec<(u64, u64)>>, block: u64) -> Option<u64> {
    let owners: HashSet<u64> = runs
        .range(block.saturating_sub(MAX_RUN)..=block)
        .flat_map(|(&start, runs)| {
            runs.iter()
                .filter(move |&&(count, _)| block < start.saturating_add(count))
                .map(|&(_, ino)| ino)
        })
        .collect();
    match owners.into_iter().collect::<Vec<_>>()[..] {
        [ino] => Some(ino),
        _ => None,
    }
}

/// The block runs an inode's map names: a depth-0 extent tree's extents, or a block map's
/// twelve direct blocks.
fn logged_inode(raw: &[u8]) -> Option<LoggedInode> {
    let mode = le16(raw, 0);
    if mode == 0 {
        return None;
    }
    let i_block = raw.get(0x28..0x28 + 60)?;
    let mut runs = Vec::new();
    if le32(raw, 0x20) & EXTENTS_FLAG != 0 {
        if le16(i_block, 0) != EXTENT_MAGIC || le16(i_block, 6) != 0 {
            return None;
        }
        let entries = usize::from(le16(i_block, 2)).min(4);
        for index in 0..entries {
            let e = i_block.get(12 + index * 12..24 + index * 12)?;
            let len = u64::from(le16(e, 4));
            let len = if len > 32768 { len - 32768 } else { len };
            let start = (u64::from(le16(e, 6)) << 32) | u64::from(le32(e, 8));
            if len > 0 && start > 0 {
                runs.push((start, len));
            }
        }
    } else {
        for index in 0..12 {
            let block = u64::from(le32(i_block, index * 4));
            if block > 0 {
                runs.push((block, 1));
            }
        }
    }
    (!runs.is_empty()).then_some(LoggedInode { mode, runs })
}

/// A block's directory entries (inode, name), `.` and `..` included, when it parses as a
/// directory block whose entries chain exactly to its end; else `None`.
fn dir_entries(block: &[u8]) -> Option<Vec<(u64, Vec<u8>)>> {
    let mut entries = Vec::new();
    let mut pos = 0usize;
    // Each step advances by rec_len >= 12.
    while pos < block.len() {
        let header = block.get(pos..pos + 8)?;
        let inode = u64::from(le32(header, 0));
        let rec_len = usize::from(le16(header, 4));
        let name_len = usize::from(*header.get(6)?);
        if rec_len < 12 || rec_len % 4 != 0 || pos + rec_len > block.len() || 8 + name_len > rec_len
        {
            return None;
        }
        if inode != 0 && name_len > 0 {
            let name = block.get(pos + 8..pos + 8 + name_len)?;
            if name.contains(&b'/') || name.contains(&0) {
                return None;
            }
            entries.push((inode, name.to_vec()));
        }
        pos += rec_len;
    }
    let starts_as_directory = entries.first().is_some_and(|(_, n)| n.as_slice() == b".");
    (!entries.is_empty() && (starts_as_directory || pos == block.len())).then_some(entries)
}

/// Names inodes: from the journal's directory copies, and for directories that still
/// exist, from the live tree.
struct Names<'a> {
    fs: &'a Ext4Fs,
    logged: &'a Logged,
    live: Option<HashMap<u64, Vec<u8>>>,
}

impl<'a> Names<'a> {
    fn new(fs: &'a Ext4Fs, logged: &'a Logged) -> Self {
        Names {
            fs,
            logged,
            live: None,
        }
    }

    fn path_of(&mut self, ino: u64) -> Option<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut current = ino;
        for _ in 0..MAX_DEPTH {
            if current == ROOT_INO {
                let mut path = Vec::new();
                for part in parts.iter().rev() {
                    path.push(b'/');
                    path.extend_from_slice(part);
                }
                return Some(path);
            }
            if let Some(path) = self.live_paths().get(&current) {
                let mut path = path.clone();
                for part in parts.iter().rev() {
                    path.push(b'/');
                    path.extend_from_slice(part);
                }
                return Some(path);
            }
            let (name, dir) = self.logged.names.get(&current)?;
            parts.push(name.clone());
            current = *dir;
        }
        None
    }

    /// Live directories by inode, listed once from the root, breadth first, looking at
    /// `MAX_LIVE_ENTRIES` entries at most.
    fn live_paths(&mut self) -> &HashMap<u64, Vec<u8>> {
        let fs = self.fs;
        self.live.get_or_insert_with(|| {
            let mut paths = HashMap::from([(ROOT_INO, Vec::new())]);
            let mut queue = std::collections::VecDeque::from([(ROOT_INO, Vec::new())]);
            let mut budget = MAX_LIVE_ENTRIES;
            while let Some((dir, path)) = queue.pop_front() {
                let Ok(entries) = fs.read_dir(dir) else {
                    continue;
                };
                for entry in entries {
                    budget = match budget.checked_sub(1) {
                        Some(left) => left,
                        None => return paths,
                    };
                    let is_dir = fs
                        .metadata(entry.node)
                        .is_ok_and(|m| m.kind == FileKind::Dir);
                    if is_dir && !paths.contains_key(&entry.node) {
                        let mut child = path.clone();
                        child.push(b'/');
                        child.extend_from_slice(&entry.name);
                        paths.insert(entry.node, child.clone());
                        queue.push_back((entry.node, child));
                    }
                }
            }
            paths
        })
    }
}
