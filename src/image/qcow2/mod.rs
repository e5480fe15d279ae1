//! qcow2 containers (versions 2 and 3), read-only.
//!
//! The virtual disk is assembled from the L1 table (loaded at open) and L2 tables (read on
//! demand into a bounded cache shared by all threads): standard clusters are read with one
//! positional read per contiguous run, zero clusters read as zeros, unallocated clusters
//! come from the backing file (or are zeros), and compressed clusters (deflate or zstd)
//! are decompressed to exactly one cluster. Extended L2 entries (subclusters) are
//! supported. Refused, each with an error naming the feature: encryption, external data
//! files, unknown incompatible features, and images qemu marked corrupt.
//!
//! Backing files are resolved relative to the overlay's directory, may be raw, qcow2 or
//! (by magic or the backing format extension) another container amiscan reads; chains are
//! limited to [`MAX_BACKING_DEPTH`] files and cycles are refused.

mod compressed;
mod header;
mod snapshot;

use crate::image::CorruptKind;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{
    corrupt_read, open_image, past_end, BlockSource, ContainerError, ContainerFormat,
    ContainerInfo, OpenError, Opened, RawImage,
};
use crate::image::cache::ShardedCache;
use header::{Compression, Errors, Header};

/// Bytes of L2 table slices kept in memory, across all threads.
pub const L2_CACHE_BYTES: usize = 32 << 20;
pub use header::{MAX_BACKING_NAME, MAX_CLUSTER_BITS, MAX_L1_ENTRIES, MIN_CLUSTER_BITS};
pub use snapshot::{MAX_SNAPSHOTS, MAX_SNAPSHOT_EXTRA, MAX_SNAPSHOT_TABLE_BYTES};

/// Most files in a backing chain, the image itself included.
pub const MAX_BACKING_DEPTH: usize = 16;

/// Bytes of L2 entries read and cached as one unit (a whole table when it is smaller).
const L2_SLICE_BYTES: u64 = 32 << 10;

/// Host offset bits of L1 and standard L2 entries (9 to 55).
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L1 entry bits that must be zero: 0 to 8 and 56 to 62.
const L1_RESERVED: u64 = 0x7f00_0000_0000_01ff;
/// Standard L2 entry bits that must be zero: 1 to 8 and 56 to 61.
const L2_RESERVED: u64 = 0x3f00_0000_0000_01fe;
const L2_COMPRESSED: u64 = 1 << 62;
const L2_ZERO: u64 = 1;

/// Big-endian fields of a byte slice; `None` past its end.
mod be {
    use crate::bytes::array;

    pub fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
        array(bytes, at).map(u16::from_be_bytes)
    }

    pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
        array(bytes, at).map(u32::from_be_bytes)
    }

    pub fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
        array(bytes, at).map(u64::from_be_bytes)
    }
}

/// Opens a qcow2 image file read-only, with its backing chain.
pub fn open(path: &Path) -> Result<Opened, ContainerError> {
    let mut visited = Vec::new();
    let layer = open_layer(path, &mut visited)?;
    Ok(Opened {
        disk: Arc::new(layer.image),
        info: layer.info,
    })
}

/// Opens a qcow2 image held by another source (an in-memory buffer, for fuzzing); `name`
/// is used in errors. Backing files cannot be resolved here and are refused.
pub fn open_source(source: Arc<dyn BlockSource>, name: &str) -> Result<Opened, ContainerError> {
    let header = header::parse(&*source, name)?;
    if let Some((at, backing)) = &header.backing {
        return Err(ContainerError::Unsupported {
            path: name.to_string(),
            feature: "qcow2 backing files".into(),
            detail: format!(
                "the image names backing file {:?} (at byte {at}), which cannot be resolved \
                 for an image that is not opened from a path",
                String::from_utf8_lossy(backing)
            ),
        });
    }
    let snapshots = snapshot::parse(&*source, name, &header)?;
    let image = Qcow2::new(source, name.to_string(), &header, None)?;
    Ok(Opened {
        disk: Arc::new(image),
        info: ContainerInfo {
            subformat: Some(header.subformat()),
            snapshots,
            ..ContainerInfo::default()
        },
    })
}

/// One opened qcow2 file, with what `inspect` reports about it.
struct Layer {
    image: Qcow2,
    info: ContainerInfo,
}

/// Opens the qcow2 file at `path`; `visited` holds the canonical paths of the files
/// nearer the top of the chain (for cycle detection and the depth limit).
fn open_layer(path: &Path, visited: &mut Vec<PathBuf>) -> Result<Layer, ContainerError> {
    let name = path.display().to_string();
    let err = Errors { name: &name };
    let canonical = std::fs::canonicalize(path).map_err(|e| err.io(e))?;
    visited.push(canonical);
    let file = RawImage::open(path).map_err(|e| err.io(e))?;
    let file: Arc<dyn BlockSource> = Arc::new(file);
    let header = header::parse(&*file, &name)?;
    let snapshots = snapshot::parse(&*file, &name, &header)?;
    let (backing, backing_chain) = match &header.backing {
        None => (None, Vec::new()),
        Some((at, raw_name)) => {
            let (disk, chain) = open_backing(
                path,
                &err,
                *at,
                raw_name,
                header.backing_format.as_deref(),
                visited,
            )?;
            (Some(disk), chain)
        }
    };
    let image = Qcow2::new(file, name, &header, backing)?;
    Ok(Layer {
        image,
        info: ContainerInfo {
            subformat: Some(header.subformat()),
            backing_chain,
            snapshots,
            ..ContainerInfo::default()
        },
    })
}

/// Resolves and opens the backing file named at byte `at` of `overlay`; returns its disk
/// and the chain's resolved paths, nearest first.
fn open_backing(
    overlay: &Path,
    err: &Errors<'_>,
    at: u64,
    raw_name: &[u8],
    format: Option<&str>,
    visited: &mut Vec<PathBuf>,
) -> Result<(Arc<dyn BlockSource>, Vec<String>), ContainerError> {
    const STRUCTURE: &str = "qcow2 backing file name";
    let named = Path::new(OsStr::from_bytes(raw_name));
    let shown_name = String::from_utf8_lossy(raw_name);
    let resolved = if named.is_absolute() {
        named.to_path_buf()
    } else {
        overlay.parent().unwrap_or(Path::new("")).join(named)
    };
    if visited.len() >= MAX_BACKING_DEPTH {
        return Err(err.unsupported(
            format!("backing chains of more than {MAX_BACKING_DEPTH} files"),
            format!(
                "{} names backing file {shown_name:?} at depth {}",
                overlay.display(),
                visited.len()
            ),
        ));
    }
    let canonical = std::fs::canonicalize(&resolved).map_err(|e| {
        err.corrupt(
            CorruptKind::Unreadable,
            STRUCTURE,
            at,
            format!(
                "names backing file {shown_name:?} ({}), which cannot be opened: {e}",
                resolved.display()
            ),
        )
    })?;
    if visited.contains(&canonical) {
        return Err(err.corrupt(
            CorruptKind::Loop,
            STRUCTURE,
            at,
            format!(
                "names backing file {shown_name:?} ({}), which is already in this backing \
                 chain: the chain is a cycle",
                canonical.display()
            ),
        ));
    }
    if canonical.is_dir() {
        return Err(err.corrupt(
            CorruptKind::Invalid,
            STRUCTURE,
            at,
            format!(
                "names backing file {shown_name:?} ({}), which is a directory",
                canonical.display()
            ),
        ));
    }
    let shown = canonical.display().to_string();
    let backing_err = Errors { name: &shown };
    let raw = RawImage::open(&canonical).map_err(|e| backing_err.io(e))?;
    let mut magic = [0u8; 4];
    let has_magic = raw.read_exact_at(0, &mut magic).is_ok() && magic == header::MAGIC;
    enum Kind {
        Raw,
        Qcow2,
        Other(Option<ContainerFormat>),
    }
    let kind = match format {
        Some("raw") => Kind::Raw,
        Some("qcow2") if has_magic => Kind::Qcow2,
        Some("qcow2") => {
            return Err(err.corrupt(
                CorruptKind::Magic,
                STRUCTURE,
                at,
                format!(
                    "names backing file {shown} as qcow2 (backing format extension), but it \
                     has no qcow2 magic"
                ),
            ))
        }
        Some("vmdk") => Kind::Other(Some(ContainerFormat::Vmdk)),
        Some("vpc") => Kind::Other(Some(ContainerFormat::Vhd)),
        Some("vhdx") => Kind::Other(Some(ContainerFormat::Vhdx)),
        Some("vdi") => Kind::Other(Some(ContainerFormat::Vdi)),
        Some(other) => {
            return Err(err.unsupported(
                format!("backing file format {other:?}"),
                format!("backing file {shown} would need it"),
            ))
        }
        None if has_magic => Kind::Qcow2,
        None => Kind::Other(None),
    };
    let mut chain = vec![shown.clone()];
    let disk: Arc<dyn BlockSource> = match kind {
        Kind::Raw => Arc::new(raw),
        Kind::Qcow2 => {
            let layer = open_layer(&canonical, visited)?;
            chain.extend(layer.info.backing_chain);
            Arc::new(layer.image)
        }
        Kind::Other(expected) => {
            let opened = open_image(&canonical).map_err(|e| match e {
                OpenError::Container(inner) => inner,
                OpenError::Io { path, source } => ContainerError::Io { path, source },
                other => backing_err.unsupported("this backing file", other.to_string()),
            })?;
            if let Some(expected) = expected.filter(|&f| f != opened.format) {
                return Err(err.corrupt(
                    CorruptKind::Invalid,
                    STRUCTURE,
                    at,
                    format!(
                        "names backing file {shown} as {expected} (backing format extension), \
                         but it is {}",
                        opened.format
                    ),
                ));
            }
            chain.extend(opened.info.backing_chain);
            opened.disk
        }
    };
    Ok((disk, chain))
}

/// Gives each opened image an id, so per-thread caches never confuse two images.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A qcow2 image's virtual disk.
pub struct Qcow2 {
    name: String,
    id: u64,
    file: Arc<dyn BlockSource>,
    file_len: u64,
    size: u64,
    cluster_bits: u32,
    /// log2 of L2 entries per table.
    l2_bits: u32,
    /// u64 words per L2 entry: 1, or 2 with extended L2 entries.
    entry_words: u64,
    extended_l2: bool,
    compression: Compression,
    l1: Vec<u64>,
    l1_offset: u64,
    slice_entries: u64,
    slices_per_table: u64,
    cache: ShardedCache<[u64]>,
    backing: Option<Arc<dyn BlockSource>>,
}

impl fmt::Debug for Qcow2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qcow2")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("cluster_bits", &self.cluster_bits)
            .field("extended_l2", &self.extended_l2)
            .field("compression", &self.compression)
            .field("backing", &self.backing)
            .finish_non_exhaustive()
    }
}

/// Where the bytes of part of the virtual disk come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Host bytes starting at this file offset.
    Data(u64),
    Zero,
    /// Not allocated here: the backing file's bytes, or zeros.
    Unallocated,
    /// The compressed cluster whose data starts at `coffset`.
    Compressed {
        coffset: u64,
        csize: u64,
    },
}

/// A piece of the virtual disk that comes from one place, within one cluster (or, for an
/// unallocated L2 table, the part of the disk that table would map).
#[derive(Debug, Clone, Copy)]
struct Extent {
    kind: Kind,
    len: u64,
    l1_index: u64,
    l2_index: u64,
    entry_at: u64,
}

impl Qcow2 {
    fn new(
        file: Arc<dyn BlockSource>,
        name: String,
        header: &Header,
        backing: Option<Arc<dyn BlockSource>>,
    ) -> Result<Self, ContainerError> {
        let err = Errors { name: &name };
        // l1_used <= MAX_L1_ENTRIES and the table was checked to lie in the file.
        let l1_bytes = super::read_vec(
            &*file,
            header.l1_table_offset,
            (header.l1_used * 8) as usize,
        )
        .map_err(|e| err.io(e))?;
        let l1 = l1_bytes
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let entry_words = if header.extended_l2 { 2 } else { 1 };
        let entries = 1u64 << header.l2_bits();
        let slice_entries = entries.min(L2_SLICE_BYTES / (8 * entry_words));
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            file_len: file.len(),
            file,
            size: header.size,
            cluster_bits: header.cluster_bits,
            l2_bits: header.l2_bits(),
            entry_words,
            extended_l2: header.extended_l2,
            compression: header.compression,
            l1,
            l1_offset: header.l1_table_offset,
            slice_entries,
            slices_per_table: entries / slice_entries,
            cache: ShardedCache::new(
                (L2_CACHE_BYTES / ((slice_entries * 8 * entry_words) as usize).max(1)).max(16),
            ),
            backing,
            name,
        })
    }

    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    fn wrap_io(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.name))
    }

    fn entry_error(&self, kind: CorruptKind, ext: &Extent, offset: u64, detail: &str) -> io::Error {
        corrupt_read(
            kind,
            &self.name,
            format!(
                "qcow2 L2 table entry {} of L1 entry {}",
                ext.l2_index, ext.l1_index
            ),
            offset,
            detail,
        )
    }

    /// The extent holding virtual byte `guest` (< size); `held` keeps the last L2 slice.
    fn map(&self, guest: u64, held: &mut Option<(u64, Arc<[u64]>)>) -> io::Result<Extent> {
        let cb = self.cluster_bits;
        let cs = self.cluster_size();
        let cluster = guest >> cb;
        let within = guest & (cs - 1);
        let l1_index = cluster >> self.l2_bits;
        let l2_index = cluster & ((1 << self.l2_bits) - 1);
        let to_end = self.size.saturating_sub(guest);
        let l1_at = self.l1_offset + l1_index * 8;
        let l1_structure = || format!("qcow2 L1 table entry {l1_index}");
        let l1_entry = usize::try_from(l1_index)
            .ok()
            .and_then(|i| self.l1.get(i))
            .copied()
            .ok_or_else(|| {
                corrupt_read(
                    CorruptKind::OutOfRange,
                    &self.name,
                    l1_structure(),
                    l1_at,
                    "past the L1 table",
                )
            })?;
        if l1_entry & L1_RESERVED != 0 {
            return Err(corrupt_read(
                CorruptKind::Invalid,
                &self.name,
                l1_structure(),
                l1_at,
                format!("reserved bits are set ({l1_entry:#018x})"),
            ));
        }
        let l2_offset = l1_entry & OFFSET_MASK;
        let mut ext = Extent {
            kind: Kind::Unallocated,
            len: 0,
            l1_index,
            l2_index,
            entry_at: l1_at,
        };
        if l2_offset == 0 {
            // No L2 table: everything this L1 entry maps is unallocated.
            let table_end = (l1_index + 1) << (cb + self.l2_bits);
            ext.len = (table_end - guest).min(to_end);
            return Ok(self.normalise(ext));
        }
        if !l2_offset.is_multiple_of(cs) {
            return Err(corrupt_read(
                CorruptKind::Invalid,
                &self.name,
                l1_structure(),
                l1_at,
                format!("L2 table offset {l2_offset} is not a multiple of the {cs}-byte cluster"),
            ));
        }
        if l2_offset + cs > self.file_len {
            return Err(corrupt_read(
                CorruptKind::OutOfRange,
                &self.name,
                l1_structure(),
                l1_at,
                format!(
                    "the L2 table at byte {l2_offset} runs past the end of the {}-byte file",
                    self.file_len
                ),
            ));
        }
        let slice_index = l2_index / self.slice_entries;
        let key = l1_index * self.slices_per_table + slice_index;
        if !matches!(held, Some((k, _)) if *k == key) {
            let slice = match self.cache.get(key) {
                Some(slice) => slice,
                None => {
                    let slice_bytes = self.slice_entries * 8 * self.entry_words;
                    let slice = self.load_slice(l2_offset + slice_index * slice_bytes)?;
                    self.cache.insert(key, Arc::clone(&slice));
                    slice
                }
            };
            *held = Some((key, slice));
        }
        let slice: &[u64] = held.as_ref().map_or(&[], |(_, slice)| slice);
        let word = ((l2_index % self.slice_entries) * self.entry_words) as usize;
        ext.entry_at = l2_offset + l2_index * 8 * self.entry_words;
        let entry = slice.get(word).copied().unwrap_or(0);
        let bitmap = if self.extended_l2 {
            slice.get(word + 1).copied().unwrap_or(0)
        } else {
            0
        };
        let rest_of_cluster = (cs - within).min(to_end);

        if entry & L2_COMPRESSED != 0 {
            // Offset in bits 0..x, count of additional 512-byte sectors in x..62.
            let x = 62 - (cb - 8);
            let coffset = entry & ((1 << x) - 1);
            let sectors = ((entry >> x) & ((1 << (cb - 8)) - 1)) + 1;
            let csize = sectors * 512 - (coffset & 511);
            if coffset >= self.file_len {
                return Err(self.entry_error(
                    CorruptKind::OutOfRange,
                    &ext,
                    ext.entry_at,
                    &format!(
                        "compressed data at byte {coffset} lies past the end of the {}-byte file",
                        self.file_len
                    ),
                ));
            }
            // The last sector may run past the end of the file.
            let csize = csize.min(self.file_len - coffset);
            ext.kind = Kind::Compressed { coffset, csize };
            ext.len = rest_of_cluster;
            return Ok(ext);
        }
        // Bit 0 is the zero flag (reserved with extended L2 entries, and ignored there,
        // as qemu does).
        if entry & L2_RESERVED != 0 {
            return Err(self.entry_error(
                CorruptKind::Invalid,
                &ext,
                ext.entry_at,
                &format!("reserved bits are set ({entry:#018x})"),
            ));
        }
        let host = entry & OFFSET_MASK;
        if !host.is_multiple_of(cs) {
            return Err(self.entry_error(
                CorruptKind::Invalid,
                &ext,
                ext.entry_at,
                &format!("cluster offset {host} is not a multiple of the {cs}-byte cluster"),
            ));
        }

        if !self.extended_l2 {
            ext.len = rest_of_cluster;
            ext.kind = if entry & L2_ZERO != 0 {
                Kind::Zero
            } else if host == 0 {
                Kind::Unallocated
            } else {
                Kind::Data(host + within)
            };
        } else {
            let alloc = bitmap as u32;
            let zero = (bitmap >> 32) as u32;
            if host == 0 && alloc != 0 {
                return Err(self.entry_error(
                    CorruptKind::Invalid,
                    &ext,
                    ext.entry_at + 8,
                    &format!("an unallocated cluster has allocated subclusters ({bitmap:#018x})"),
                ));
            }
            if alloc & zero != 0 {
                return Err(self.entry_error(
                    CorruptKind::Invalid,
                    &ext,
                    ext.entry_at + 8,
                    &format!("subclusters are both allocated and zero ({bitmap:#018x})"),
                ));
            }
            let sub_bits = cb - 5;
            let state = |sc: u64| {
                if zero >> sc & 1 != 0 {
                    0
                } else if alloc >> sc & 1 != 0 {
                    1
                } else {
                    2
                }
            };
            let first = within >> sub_bits;
            let mut end = first + 1;
            while end < 32 && state(end) == state(first) {
                end += 1;
            }
            ext.len = ((end << sub_bits) - within).min(to_end);
            ext.kind = match state(first) {
                0 => Kind::Zero,
                1 => Kind::Data(host + within),
                _ => Kind::Unallocated,
            };
        }
        if let Kind::Data(at) = ext.kind {
            if at + ext.len > self.file_len {
                return Err(self.entry_error(
                    CorruptKind::OutOfRange,
                    &ext,
                    ext.entry_at,
                    &format!(
                        "data cluster at byte {host} runs past the end of the {}-byte file",
                        self.file_len
                    ),
                ));
            }
        }
        Ok(self.normalise(ext))
    }

    /// Without a backing file, unallocated means zeros.
    fn normalise(&self, mut ext: Extent) -> Extent {
        if ext.kind == Kind::Unallocated && self.backing.is_none() {
            ext.kind = Kind::Zero;
        }
        ext
    }

    fn load_slice(&self, at: u64) -> io::Result<Arc<[u64]>> {
        let len = (self.slice_entries * 8 * self.entry_words) as usize;
        let mut bytes = vec![0u8; len];
        self.file
            .read_exact_at(at, &mut bytes)
            .map_err(|e| self.wrap_io(e))?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    }

    /// Unallocated bytes at `pos`: from the backing file, zeros past its end.
    fn read_backing(&self, pos: u64, part: &mut [u8]) -> io::Result<()> {
        let Some(backing) = &self.backing else {
            part.fill(0);
            return Ok(());
        };
        let available = backing.len().saturating_sub(pos).min(part.len() as u64) as usize;
        let (inside, past) = part.split_at_mut(available);
        if !inside.is_empty() {
            backing.read_exact_at(pos, inside).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{}: reading its backing file: {e}", self.name),
                )
            })?;
        }
        past.fill(0);
        Ok(())
    }

    fn read_compressed(
        &self,
        ext: &Extent,
        coffset: u64,
        csize: u64,
        pos: u64,
        part: &mut [u8],
    ) -> io::Result<()> {
        let cs = self.cluster_size();
        let request = compressed::Request {
            image: self.id,
            coffset,
            // At most two clusters (4 MiB).
            csize: csize as usize,
            cluster_size: cs as usize,
            kind: self.compression,
        };
        let within = (pos & (cs - 1)) as usize;
        let fetch = |input: &mut [u8]| self.file.read_exact_at(coffset, input);
        compressed::read(&request, within, part, &fetch).map_err(|failure| match failure {
            compressed::Failure::Io(e) => self.wrap_io(e),
            compressed::Failure::Corrupt(kind, detail) => {
                self.entry_error(kind, ext, coffset, &detail)
            }
        })
    }
}

/// True when `next` continues a run of `kind` that is `run` bytes long.
fn continues(kind: Kind, run: u64, next: Kind) -> bool {
    match (kind, next) {
        (Kind::Data(a), Kind::Data(b)) => a.checked_add(run) == Some(b),
        (Kind::Zero, Kind::Zero) | (Kind::Unallocated, Kind::Unallocated) => true,
        _ => false,
    }
}

impl BlockSource for Qcow2 {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let total = buf.len() as u64;
        if offset.checked_add(total).is_none_or(|end| end > self.size) {
            return Err(past_end(offset, total, self.size));
        }
        let mut held = None;
        let mut lookahead: Option<Extent> = None;
        let mut done = 0u64;
        // Every extent is at least one byte long, so this ends.
        while done < total {
            let pos = offset + done;
            let ext = match lookahead.take() {
                Some(ext) => ext,
                None => self.map(pos, &mut held)?,
            };
            let remaining = total - done;
            let mut run = ext.len.min(remaining);
            if !matches!(ext.kind, Kind::Compressed { .. }) {
                // Coalesce contiguous data, zeros or unallocated ranges into one operation.
                while run < remaining {
                    let next = self.map(pos + run, &mut held)?;
                    if continues(ext.kind, run, next.kind) {
                        run += next.len.min(remaining - run);
                    } else {
                        lookahead = Some(next);
                        break;
                    }
                }
            }
            let part = buf
                .get_mut(done as usize..(done + run) as usize)
                .ok_or_else(|| past_end(pos, run, self.size))?;
            match ext.kind {
                Kind::Data(at) => self
                    .file
                    .read_exact_at(at, part)
                    .map_err(|e| self.wrap_io(e))?,
                Kind::Zero => part.fill(0),
                Kind::Unallocated => self.read_backing(pos, part)?,
                Kind::Compressed { coffset, csize } => {
                    self.read_compressed(&ext, coffset, csize, pos, part)?
                }
            }
            done += run;
        }
        Ok(())
    }
}

/// Most virtual-disk bytes [`exercise`] reads, so a crafted huge disk cannot stall a run.
pub const EXERCISE_READ_LIMIT: u64 = 64 << 20;

#[cfg(any(test, feature = "test-support"))]
/// For the fuzz target and the corpus replay: opens `bytes` as a qcow2 image held in
/// memory and reads its virtual disk in 64 KiB chunks (up to [`EXERCISE_READ_LIMIT`]).
/// Returns the bytes read; any panic or hang is a bug.
pub fn exercise(bytes: &[u8]) -> u64 {
    let source: Arc<dyn BlockSource> = Arc::new(super::MemoryImage::new(bytes.to_vec()));
    let Ok(opened) = open_source(source, "fuzz.qcow2") else {
        return 0;
    };
    let disk = opened.disk;
    let end = disk.len().min(EXERCISE_READ_LIMIT);
    let mut buf = vec![0u8; 64 << 10];
    let mut read = 0;
    let mut pos = 0;
    while pos < end {
        let len = (end - pos).min(buf.len() as u64) as usize;
        if let Some(chunk) = buf.get_mut(..len) {
            if disk.read_exact_at(pos, chunk).is_ok() {
                read += len as u64;
            }
        }
        pos += len as u64;
    }
    // An unaligned read across cluster boundaries, and one past the end.
    let mut odd = [0u8; 1000];
    if disk.len() > 3000 {
        let _ = disk.read_exact_at(disk.len() / 2 - 500, &mut odd);
    }
    let _ = disk.read_exact_at(disk.len(), &mut odd);
    read
}
