//! FAT12, FAT16 and FAT32 (the EFI system partition), read-only.
//!
//! Owns the FAT on-disk format: the boot sector (`boot_sector`), the allocation table and
//! its cluster chains (`table`), directory slots and long names (`dir`), and file contents.
//! Written here rather than taken from the `fatfs` crate because that crate drives a
//! `Read + Write + Seek` device through one shared cursor, so one instance could not serve
//! the walk's threads, and amiscan never writes to an image; this reader only uses the
//! source's positional `read_exact_at`.
//!
//! Node ids: the root directory is [`ROOT`] (1, the inode number Linux gives a FAT root);
//! every other node is the byte offset, within the volume, of its 32-byte short directory
//! entry. Those offsets are multiples of 32 past the boot sector, so they never collide
//! with the root, and `metadata` re-reads the entry from its id alone. A corrupt FAT can
//! make a subdirectory share an ancestor's clusters; its entries then have the same ids as
//! the ancestor's, which is how a walk recognises the cycle.
//!
//! Metadata is what Linux's vfat driver reports under its default mount options (umask
//! 022, no `showexec`, `tz=UTC`): owner root, directories 0755, files 0755, or 0555 with
//! the read-only attribute (ignored on directories, as Linux does without `rodir`). The
//! modification time is the entry's DOS local time taken as UTC, at two-second
//! resolution; the root has no entry and reports time 0. Sizes come from the entry (0 for
//! directories) and `nlink` is 1.

use crate::bytes::{le16, le32};
use crate::image::CorruptKind;
mod boot_sector;
mod dir;
mod table;

// They need mkfs and fsck tools: the integration binary runs them (tests/integration/readers.rs).
#[cfg(all(feature = "test-support", not(test)))]
#[doc(hidden)]
pub mod tests;

use std::io::{self, Read};
use std::sync::Arc;

use self::boot_sector::{FatType, Geometry, RootDir};
use self::dir::{dos_time_to_unix, Found, Scanner, ShortEntry, Slot, SLOT};
use self::table::Chain;
use super::{DirEntry, FileKind, FileReader, Filesystem, FsError, Metadata, NodeId, Usage};
use crate::image::{read_vec, BlockSource};

/// The root directory's node id.
pub const ROOT: NodeId = 1;

/// The most slots one directory may have (Microsoft's limit, which Linux enforces too);
/// a longer chain is corrupt, and this bounds what one `read_dir` allocates.
const MAX_DIR_SLOTS: u64 = 65536;

/// Bytes of a FAT12/16 fixed root directory read at once.
const ROOT_CHUNK: u64 = 16 * 1024;

const ENTRY: &str = "FAT directory entry";

/// A FAT filesystem.
#[derive(Debug)]
pub struct FatFs {
    source: Arc<dyn BlockSource>,
    geometry: Geometry,
}

impl FatFs {
    /// Reads and checks the boot sector; everything else is read on demand.
    pub fn open(source: Arc<dyn BlockSource>) -> Result<Self, FsError> {
        let geometry = Geometry::parse(source.as_ref())?;
        Ok(Self { source, geometry })
    }

    fn is_fat32(&self) -> bool {
        self.geometry.fat_type == FatType::Fat32
    }

    /// The short entry a (non-root) node id names.
    fn entry(&self, node: NodeId) -> Result<ShortEntry, FsError> {
        let in_root = match self.geometry.root {
            RootDir::Fixed { offset, entries } => {
                node >= offset && node < offset + u64::from(entries) * SLOT as u64
            }
            RootDir::Chain { .. } => false,
        };
        let in_data = node >= self.geometry.data_offset && node < self.geometry.data_end();
        if !node.is_multiple_of(SLOT as u64) || !(in_root || in_data) {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                ENTRY,
                node,
                "node id is not a directory entry position",
            ));
        }
        let mut slot = [0u8; SLOT];
        self.source
            .read_exact_at(node, &mut slot)
            .map_err(|e| FsError::io(ENTRY, node, e))?;
        match Slot::parse(&slot) {
            Slot::Short(entry) => Ok(entry),
            _ => Err(FsError::corrupt(
                CorruptKind::Invalid,
                ENTRY,
                node,
                "no file or directory entry at this node id",
            )),
        }
    }

    /// Every named entry of a directory, in on-disk order.
    fn scan(&self, dir: NodeId) -> Result<Vec<Found>, FsError> {
        let (first_cluster, origin) = if dir == ROOT {
            match self.geometry.root {
                RootDir::Fixed { offset, entries } => {
                    return self.scan_fixed(offset, u64::from(entries) * SLOT as u64)
                }
                // The boot sector's root-cluster field.
                RootDir::Chain { first_cluster } => (first_cluster, 44),
            }
        } else {
            let entry = self.entry(dir)?;
            if !entry.is_dir() {
                return Err(FsError::NotADirectory);
            }
            (entry.first_cluster(self.is_fat32()), dir)
        };
        self.scan_chain(first_cluster, origin)
    }

    /// Follows a file's whole cluster chain and fails unless it covers the file's size with
    /// no loop, free, bad or out-of-range cluster on the way. Done when the file's metadata
    /// is read as well as when it is opened, so a command that reads only the start of a
    /// file (the rules' content pass) sees the same damage as one that reads it all. The
    /// walk stops after the clusters the size needs, which the volume's cluster count
    /// bounds; a chain longer than its file is what dosfstools truncates, not an error.
    fn check_file_chain(&self, node: NodeId, entry: &ShortEntry) -> Result<(), FsError> {
        let size = u64::from(entry.size);
        if size == 0 {
            return Ok(());
        }
        let clusters = size.div_ceil(u64::from(self.geometry.cluster_size));
        if clusters > u64::from(self.geometry.cluster_count) {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                ENTRY,
                node,
                format!(
                    "file size {size} needs {clusters} clusters, more than the volume's {}",
                    self.geometry.cluster_count
                ),
            ));
        }
        let first_cluster = entry.first_cluster(self.is_fat32());
        if !self.geometry.is_data_cluster(first_cluster) {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                ENTRY,
                node,
                format!(
                    "first cluster {first_cluster} is outside the volume's clusters 2..{}",
                    self.geometry.cluster_end()
                ),
            ));
        }
        let mut chain = Chain::new(self.source.as_ref(), &self.geometry, first_cluster, node);
        for done in 0..clusters {
            if chain.next_cluster()?.is_none() {
                return Err(FsError::corrupt(
                    CorruptKind::Truncated,
                    "FAT cluster chain",
                    node,
                    format!(
                        "the chain ends after {done} clusters of a {size}-byte file that needs \
                         {clusters}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The FAT12/16 root directory: `len` bytes at `offset`, read until its end slot.
    fn scan_fixed(&self, offset: u64, len: u64) -> Result<Vec<Found>, FsError> {
        let mut scanner = Scanner::default();
        let mut done = 0;
        while done < len {
            let at = offset + done;
            let chunk = ROOT_CHUNK.min(len - done);
            let bytes = read_vec(
                self.source.as_ref(),
                at,
                usize::try_from(chunk).unwrap_or(0),
            )
            .map_err(|e| FsError::io("FAT root directory", at, e))?;
            if scanner.feed(&bytes, at) {
                break;
            }
            done += chunk;
        }
        Ok(scanner.into_found())
    }

    /// A directory stored in a cluster chain.
    fn scan_chain(&self, first_cluster: u32, origin: u64) -> Result<Vec<Found>, FsError> {
        let geometry = &self.geometry;
        let cluster_size = u64::from(geometry.cluster_size);
        let mut chain = Chain::new(self.source.as_ref(), geometry, first_cluster, origin);
        let mut scanner = Scanner::default();
        let mut slots = 0;
        while let Some(cluster) = chain.next_cluster()? {
            let at = geometry.cluster_offset(cluster);
            if slots >= MAX_DIR_SLOTS {
                return Err(FsError::corrupt(
                    CorruptKind::Invalid,
                    "FAT directory",
                    at,
                    format!("directory continues past {MAX_DIR_SLOTS} entries"),
                ));
            }
            // A cluster is at most 512 KiB, checked when the boot sector was parsed.
            let bytes = read_vec(
                self.source.as_ref(),
                at,
                usize::try_from(cluster_size).unwrap_or(0),
            )
            .map_err(|e| FsError::io("FAT directory", at, e))?;
            if scanner.feed(&bytes, at) {
                break;
            }
            slots += cluster_size / SLOT as u64;
        }
        Ok(scanner.into_found())
    }
}

impl Filesystem for FatFs {
    fn type_name(&self) -> &'static str {
        "vfat"
    }

    /// Bytes from the clusters the table marks in use; FAT keeps no count of files.
    fn usage(&self) -> Usage {
        let clusters = table::used_clusters(self.source.as_ref(), &self.geometry);
        Usage {
            nodes: None,
            bytes: clusters.map(|c| c.saturating_mul(u64::from(self.geometry.cluster_size))),
        }
    }

    fn root(&self) -> NodeId {
        ROOT
    }

    fn unallocated(&self) -> Option<Result<Vec<std::ops::Range<u64>>, FsError>> {
        let geometry = &self.geometry;
        let Some(runs) = table::free_runs(self.source.as_ref(), geometry) else {
            return Some(Err(FsError::corrupt(
                CorruptKind::Invalid,
                "FAT allocation table".to_string(),
                geometry.fat_offset,
                "the table could not be read whole, so its free clusters are unknown",
            )));
        };
        let cluster = u64::from(geometry.cluster_size);
        let mut ranges = Vec::new();
        for (first, count) in runs {
            let start = geometry.cluster_offset(first);
            let end = start
                .saturating_add(u64::from(count).saturating_mul(cluster))
                .min(geometry.data_end());
            crate::filesystems::residue::push_merged(&mut ranges, start..end);
        }
        Some(Ok(ranges))
    }

    fn residue_areas(&self) -> Option<Result<Vec<crate::filesystems::residue::Area>, FsError>> {
        Some(self.unallocated()?.map(|ranges| {
            vec![crate::filesystems::residue::Area {
                kind: crate::filesystems::residue::AreaKind::Free,
                ranges,
            }]
        }))
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata, FsError> {
        if node == ROOT {
            return Ok(Metadata {
                kind: FileKind::Dir,
                permissions: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: 0,
                mtime_nsec: 0,
                inode: ROOT,
                nlink: 1,
                rdev: None,
            });
        }
        let entry = self.entry(node)?;
        if !entry.is_dir() {
            self.check_file_chain(node, &entry)?;
        }
        let (kind, permissions, size) = if entry.is_dir() {
            (FileKind::Dir, 0o755, 0)
        } else if entry.is_read_only() {
            (FileKind::File, 0o555, u64::from(entry.size))
        } else {
            (FileKind::File, 0o755, u64::from(entry.size))
        };
        Ok(Metadata {
            kind,
            permissions,
            uid: 0,
            gid: 0,
            size,
            mtime: dos_time_to_unix(entry.time, entry.date),
            mtime_nsec: 0,
            inode: node,
            nlink: 1,
            rdev: None,
        })
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>, FsError> {
        Ok(self
            .scan(dir)?
            .into_iter()
            .map(|found| DirEntry {
                name: found.name,
                node: found.offset,
            })
            .collect())
    }

    fn read_link(&self, _node: NodeId) -> Result<Vec<u8>, FsError> {
        Err(FsError::NotASymlink)
    }

    fn open(&self, node: NodeId) -> Result<FileReader<'_>, FsError> {
        if node == ROOT {
            return Err(FsError::NotAFile);
        }
        let entry = self.entry(node)?;
        if entry.is_dir() {
            return Err(FsError::NotAFile);
        }
        let size = u64::from(entry.size);
        if size == 0 {
            return Ok(Box::new(io::empty()));
        }
        self.check_file_chain(node, &entry)?;
        let first_cluster = entry.first_cluster(self.is_fat32());
        Ok(Box::new(ClusterReader {
            source: self.source.as_ref(),
            geometry: &self.geometry,
            chain: Chain::new(self.source.as_ref(), &self.geometry, first_cluster, node),
            node,
            size,
            remaining: size,
            run_offset: 0,
            run_left: 0,
        }))
    }

    /// Exact names first; then, as Linux's vfat does, a name matching a long or 8.3 name
    /// up to ASCII case (FAT names are case-insensitive).
    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>, FsError> {
        let found = self.scan(dir)?;
        if let Some(exact) = found.iter().find(|f| f.name == name) {
            return Ok(Some(exact.offset));
        }
        Ok(found
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name) || f.short_name.eq_ignore_ascii_case(name))
            .map(|f| f.offset))
    }
}

/// Streams a file by following its cluster chain as it is read, merging clusters that lie
/// next to each other on disk into one read.
struct ClusterReader<'a> {
    source: &'a dyn BlockSource,
    geometry: &'a Geometry,
    chain: Chain<'a>,
    node: NodeId,
    size: u64,
    /// File bytes not yet returned.
    remaining: u64,
    /// Volume offset and length of the contiguous clusters being read.
    run_offset: u64,
    run_left: u64,
}

impl ClusterReader<'_> {
    /// Finds the next run of adjacent clusters, no longer than the file still needs.
    fn next_run(&mut self) -> Result<(), FsError> {
        let cluster_size = u64::from(self.geometry.cluster_size);
        let first = self.chain.next_cluster()?.ok_or_else(|| {
            FsError::corrupt(
                CorruptKind::Truncated,
                "FAT cluster chain",
                self.node,
                format!(
                    "the chain ends after {} bytes of a {}-byte file",
                    self.size - self.remaining,
                    self.size
                ),
            )
        })?;
        let wanted = self.remaining.div_ceil(cluster_size);
        let mut count = 1;
        while count < wanted && self.chain.next_if_adjacent()? {
            count += 1;
        }
        self.run_offset = self.geometry.cluster_offset(first);
        self.run_left = count * cluster_size;
        Ok(())
    }
}

impl Read for ClusterReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.run_left == 0 {
            self.next_run().map_err(into_io)?;
        }
        let take = self.run_left.min(self.remaining).min(buf.len() as u64);
        let dst = buf
            .get_mut(..usize::try_from(take).unwrap_or(0))
            .unwrap_or_default();
        self.source
            .read_exact_at(self.run_offset, dst)
            .map_err(|e| into_io(FsError::io("FAT file data", self.run_offset, e)))?;
        self.run_offset += take;
        self.run_left -= take;
        self.remaining -= take;
        Ok(dst.len())
    }
}

/// Carries a filesystem error through `Read`, keeping the kind of an underlying I/O error.
fn into_io(error: FsError) -> io::Error {
    let kind = match &error {
        FsError::Io { source, .. } => source.kind(),
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, error)
}
