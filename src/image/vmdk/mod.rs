//! VMDK containers: hosted sparse extents ("KDMV", including stream-optimized ones with
//! zlib grains), flat and zero extents, and the text descriptor that strings extents
//! together into one virtual disk.
//!
//! Every file is opened read-only and read by position, so the disk is shared freely by
//! the walk's threads; the grain tables and inflated grains they share sit in small
//! sharded caches whose locks are never held while reading or inflating.
//!
//! Refused, with a message naming the file: delta disks (a parent link), extent types
//! other than SPARSE, FLAT, ZERO, VMFS and hosted-sparse VMFSSPARSE, extent "files" that
//! are not regular files (devices, FIFOs), and anything past the limits below.

mod descriptor;
mod header;
mod sparse;

use crate::image::CorruptKind;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::descriptor::{AccessMode, Descriptor, ExtentLine, ExtentType, MAX_DESCRIPTOR_BYTES};
use self::header::{MAGIC, MAX_GD_ENTRIES, SECTOR};
use self::sparse::SparseExtent;
use super::{
    corrupt_read, past_end, read_vec, BlockSource, ContainerError, ContainerInfo, Opened, RawImage,
};

/// Grain directory entries loaded for all of a disk's sparse extents (64 MiB).
const MAX_TOTAL_GD_ENTRIES: u64 = 4 * MAX_GD_ENTRIES;

/// The first bytes of a text descriptor (what `open_image` dispatches on).
const DESCRIPTOR_MAGIC: &[u8] = b"# Disk D";

/// Opens a VMDK read-only: a sparse or stream-optimized extent ("KDMV" at byte 0) or a
/// text descriptor naming its extent files, which are looked up next to it.
pub fn open(path: &Path) -> Result<Opened, ContainerError> {
    let shown = path.display().to_string();
    let file = open_regular(path).map_err(|source| ContainerError::Io {
        path: shown.clone(),
        source,
    })?;
    let identity = fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let allocated = file.allocated_size();
    let file = Arc::new(file);
    let source: Arc<dyn BlockSource> = Arc::clone(&file) as Arc<dyn BlockSource>;
    let mut head = [0u8; 8];
    if source.len() >= 8 {
        source
            .read_exact_at(0, &mut head)
            .map_err(|e| ContainerError::Io {
                path: shown.clone(),
                source: e,
            })?;
    }
    if head.starts_with(MAGIC) {
        let mut opened = open_sparse_file(source, &shown)?;
        opened.info.allocated_size = allocated;
        return Ok(opened);
    }
    let text = read_descriptor_file(source.as_ref(), &shown)?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut files = DiskFiles {
        dir: Some(dir),
        opened: identity.map(|key| (key, file)).into_iter().collect(),
        ..DiskFiles::default()
    };
    let opened = open_descriptor(&text, 0, &shown, &mut files)?;
    let allocated_size = allocated.map(|a| a.saturating_add(files.allocated));
    Ok(Opened {
        disk: opened.disk,
        info: ContainerInfo {
            allocated_size,
            extra_files: files.extra,
            ..opened.info
        },
    })
}

/// Opens a VMDK held in another source (a buffer when fuzzing): a single-file sparse or
/// stream-optimized extent, or a descriptor whose extents are all ZERO or NOACCESS (there
/// is no directory to find extent files in).
pub fn open_source(source: Arc<dyn BlockSource>, name: &str) -> Result<Opened, ContainerError> {
    let mut head = [0u8; 8];
    if source.len() >= 8 {
        source
            .read_exact_at(0, &mut head)
            .map_err(|e| ContainerError::Io {
                path: name.to_string(),
                source: e,
            })?;
    }
    if head.starts_with(MAGIC) {
        return open_sparse_file(source, name);
    }
    let text = read_descriptor_file(source.as_ref(), name)?;
    open_descriptor(&text, 0, name, &mut DiskFiles::default())
}

#[cfg(any(test, feature = "test-support"))]
/// Reads the whole virtual disk of `bytes` opened with [`open_source`] in 64 KiB chunks
/// (at most 64 MiB of it), for the fuzz target and its corpus replay. Returns the bytes
/// read without error.
#[doc(hidden)]
pub fn exercise(bytes: &[u8]) -> u64 {
    const CHUNK: usize = 64 << 10;
    const LIMIT: u64 = 64 << 20;
    let source: Arc<dyn BlockSource> = Arc::new(super::MemoryImage::new(bytes.to_vec()));
    let Ok(opened) = open_source(source, "fuzz.vmdk") else {
        return 0;
    };
    let disk = opened.disk;
    let end = disk.len().min(LIMIT);
    let mut buf = vec![0u8; CHUNK];
    let (mut offset, mut good) = (0u64, 0u64);
    while offset < end {
        let n = usize::try_from(end - offset).map_or(CHUNK, |left| left.min(CHUNK));
        if let Some(chunk) = buf.get_mut(..n) {
            if disk.read_exact_at(offset, chunk).is_ok() {
                good += n as u64;
            }
        }
        offset += n as u64;
    }
    // One read across grain (and extent) boundaries must agree with the same range read
    // in two pieces: reads are positional and the caches must not change what is read.
    if end > 4096 {
        let at = end / 2 - 1000;
        let (mut whole, mut pieces) = ([0u8; 3000], [0u8; 3000]);
        let (first, second) = pieces.split_at_mut(1500);
        if disk.read_exact_at(at, &mut whole).is_ok()
            && disk.read_exact_at(at, first).is_ok()
            && disk.read_exact_at(at + 1500, second).is_ok()
        {
            assert!(whole == pieces, "split reads differ from one read at {at}");
        }
    }
    good
}

/// A single file holding a sparse extent: the header's capacity is the disk, and an
/// embedded descriptor, when there is one, gives the createType and the parent link.
fn open_sparse_file(source: Arc<dyn BlockSource>, name: &str) -> Result<Opened, ContainerError> {
    let extent = SparseExtent::open(source, name)?;
    let mut subformat = None;
    if let Some((at, len)) = extent.descriptor_region() {
        let text = read_embedded_descriptor(extent.source().as_ref(), name, at, len)?;
        let descriptor = parse_descriptor(&text, at, name)?;
        refuse_parent(&descriptor, name)?;
        subformat = descriptor.create_type;
    }
    let len = extent.capacity();
    Ok(Opened {
        disk: Arc::new(VmdkDisk {
            extents: vec![Placed {
                start: 0,
                len,
                extent: Extent::Sparse(extent),
            }],
            len,
        }),
        info: ContainerInfo {
            subformat,
            ..ContainerInfo::default()
        },
    })
}

fn read_embedded_descriptor(
    source: &dyn BlockSource,
    name: &str,
    at: u64,
    len: u64,
) -> Result<Vec<u8>, ContainerError> {
    // The header check bounds `len` by 1 MiB and the file.
    let len = usize::try_from(len.min(MAX_DESCRIPTOR_BYTES)).unwrap_or(0);
    let mut text = read_vec(source, at, len).map_err(|e| {
        ContainerError::corrupt(
            CorruptKind::Unreadable,
            name,
            "VMDK embedded descriptor",
            at,
            format!("cannot read: {e}"),
        )
    })?;
    if let Some(end) = text.iter().position(|b| *b == 0) {
        text.truncate(end);
    }
    Ok(text)
}

fn read_descriptor_file(source: &dyn BlockSource, name: &str) -> Result<Vec<u8>, ContainerError> {
    let len = source.len();
    if len > MAX_DESCRIPTOR_BYTES {
        return Err(ContainerError::Unsupported {
            path: name.to_string(),
            feature: format!("a {len}-byte VMDK descriptor").into(),
            detail: format!(
                "the file has no \"KDMV\" sparse header, and descriptors of at most {MAX_DESCRIPTOR_BYTES} bytes are read"
            ),
        });
    }
    let text = read_vec(source, 0, usize::try_from(len).unwrap_or(0)).map_err(|e| {
        ContainerError::corrupt(
            CorruptKind::Unreadable,
            name,
            "VMDK descriptor",
            0,
            format!("cannot read: {e}"),
        )
    })?;
    if !text.starts_with(DESCRIPTOR_MAGIC) {
        return Err(ContainerError::corrupt(
            CorruptKind::Magic,
            name,
            "VMDK descriptor",
            0,
            "neither a \"KDMV\" sparse header nor a \"# Disk DescriptorFile\" text descriptor",
        ));
    }
    // Writers pad descriptor files with NULs, and qemu-img's padding is not always clean
    // (stray bytes after the first NUL have been seen in its output). VMware and QEMU both
    // stop reading at the first NUL, so amiscan does too: what follows is not descriptor.
    let mut text = text;
    if let Some(nul) = text.iter().position(|b| *b == 0) {
        text.truncate(nul);
    }
    Ok(text)
}

fn parse_descriptor(text: &[u8], base: u64, name: &str) -> Result<Descriptor, ContainerError> {
    descriptor::parse(text).map_err(|e| {
        ContainerError::corrupt(
            e.kind,
            name,
            format!("VMDK descriptor line {}", e.line),
            base.saturating_add(e.at),
            e.detail,
        )
    })
}

fn refuse_parent(descriptor: &Descriptor, name: &str) -> Result<(), ContainerError> {
    match descriptor.parent() {
        None => Ok(()),
        Some(link) => Err(ContainerError::Unsupported {
            path: name.to_string(),
            feature: "reading a VMDK delta disk".into(),
            detail: format!(
                "the descriptor links a parent ({link}); VMDK delta disks with a parent are not supported"
            ),
        }),
    }
}

/// The files a descriptor's extents are in, opened once each.
#[derive(Default)]
struct DiskFiles {
    /// The descriptor's directory; `None` when the descriptor is not in a file.
    dir: Option<PathBuf>,
    /// Files already opened, by (device, inode), including the descriptor itself.
    opened: HashMap<(u64, u64), Arc<RawImage>>,
    /// Extent files other than the descriptor, as shown.
    extra: Vec<String>,
    allocated: u64,
    /// Grain directory entries loaded so far, across sparse extents.
    gd_entries: u64,
}

impl DiskFiles {
    /// Opens the file an extent line names (relative names against the descriptor's
    /// directory), refusing anything but a regular file.
    fn open(
        &mut self,
        name: &str,
        line: &ExtentLine,
        file: &[u8],
    ) -> Result<(Arc<dyn BlockSource>, String), ContainerError> {
        let fail = |kind, detail: String| {
            ContainerError::corrupt(
                kind,
                name,
                format!(
                    "VMDK descriptor line {} ({} extent)",
                    line.line,
                    line.kind.name()
                ),
                line.at,
                detail,
            )
        };
        let Some(dir) = &self.dir else {
            return Err(fail(
                CorruptKind::Invalid,
                format!(
                    "extent file \"{}\" cannot be opened: the descriptor is not in a directory",
                    String::from_utf8_lossy(file).escape_debug()
                ),
            ));
        };
        let relative = Path::new(OsStr::from_bytes(file));
        let path = if relative.is_absolute() {
            relative.to_path_buf()
        } else {
            dir.join(relative)
        };
        let shown = path.display().to_string();
        let meta = fs::metadata(&path).map_err(|e| {
            fail(
                CorruptKind::Unreadable,
                format!("cannot open extent file {shown}: {e}"),
            )
        })?;
        if !meta.is_file() {
            return Err(fail(CorruptKind::Invalid, format!(
                "extent file {shown} is not a regular file (a device, FIFO or directory is never read)"
            )));
        }
        let key = (meta.dev(), meta.ino());
        if let Some(file) = self.opened.get(&key) {
            return Ok((Arc::clone(file) as Arc<dyn BlockSource>, shown));
        }
        let file = Arc::new(open_regular(&path).map_err(|e| {
            fail(
                CorruptKind::Unreadable,
                format!("cannot open extent file {shown}: {e}"),
            )
        })?);
        self.allocated = self
            .allocated
            .saturating_add(file.allocated_size().unwrap_or(0));
        self.extra.push(shown.clone());
        self.opened.insert(key, Arc::clone(&file));
        Ok((file, shown))
    }
}

/// Opens a file read-only once it is known to be a regular file: opening a FIFO would
/// block, and a device is the host's disk, not the image's.
fn open_regular(path: &Path) -> io::Result<RawImage> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    RawImage::open(path)
}

/// Opens every extent a descriptor lists and places them one after another.
fn open_descriptor(
    text: &[u8],
    base: u64,
    name: &str,
    files: &mut DiskFiles,
) -> Result<Opened, ContainerError> {
    let descriptor = parse_descriptor(text, base, name)?;
    refuse_parent(&descriptor, name)?;
    if descriptor.extents.is_empty() {
        return Err(ContainerError::corrupt(
            CorruptKind::Invalid,
            name,
            "VMDK descriptor",
            base,
            "lists no extents",
        ));
    }
    let mut placed = Vec::with_capacity(descriptor.extents.len());
    let mut start = 0u64;
    for (index, line) in descriptor.extents.iter().enumerate() {
        let structure = format!("VMDK descriptor line {} (extent {})", line.line, index + 1);
        let at = base.saturating_add(line.at);
        let fail = |kind, detail: String| {
            ContainerError::corrupt(kind, name, structure.clone(), at, detail)
        };
        let len = line
            .sectors
            .checked_mul(SECTOR)
            .filter(|len| {
                start
                    .checked_add(*len)
                    .is_some_and(|e| e <= i64::MAX as u64)
            })
            .ok_or_else(|| {
                fail(
                    CorruptKind::TooLarge,
                    format!(
                        "{} sectors take the disk past {} bytes",
                        line.sectors,
                        i64::MAX
                    ),
                )
            })?;
        if len == 0 {
            continue;
        }
        let extent = open_extent(line, len, name, files, &fail)?;
        placed.push(Placed { start, len, extent });
        start += len;
    }
    if placed.is_empty() {
        return Err(ContainerError::corrupt(
            CorruptKind::Invalid,
            name,
            "VMDK descriptor",
            base,
            "its extents hold no sectors",
        ));
    }
    Ok(Opened {
        disk: Arc::new(VmdkDisk {
            extents: placed,
            len: start,
        }),
        info: ContainerInfo {
            subformat: descriptor.create_type,
            ..ContainerInfo::default()
        },
    })
}

fn open_extent(
    line: &ExtentLine,
    len: u64,
    name: &str,
    files: &mut DiskFiles,
    fail: &dyn Fn(CorruptKind, String) -> ContainerError,
) -> Result<Extent, ContainerError> {
    if line.access == AccessMode::NoAccess {
        return Ok(Extent::NoAccess {
            name: name.to_string(),
            line: line.line,
        });
    }
    let file = match (&line.kind, &line.file) {
        (ExtentType::Zero, _) => return Ok(Extent::Zero),
        (ExtentType::Other(kind), _) => {
            return Err(ContainerError::Unsupported {
                path: name.to_string(),
                feature: format!("the VMDK extent type {kind}").into(),
                detail: format!(
                    "descriptor line {}: SPARSE, FLAT, ZERO, VMFS and VMFSSPARSE extents are read",
                    line.line
                ),
            })
        }
        (_, None) => {
            return Err(fail(
                CorruptKind::Invalid,
                "the extent names no file".into(),
            ))
        }
        (_, Some(file)) => file,
    };
    let (source, shown) = files.open(name, line, file)?;
    match line.kind {
        ExtentType::Flat | ExtentType::Vmfs => {
            let offset = line.offset.checked_mul(SECTOR);
            let fits = offset.is_some_and(|o| header::inside(o, len, source.len()));
            match offset {
                Some(offset) if fits => Ok(Extent::Flat {
                    source,
                    name: shown,
                    offset,
                }),
                _ => Err(fail(
                    CorruptKind::OutOfRange,
                    format!(
                    "the extent needs {len} bytes from sector {} of {shown}, which holds {} bytes",
                    line.offset,
                    source.len()
                ),
                )),
            }
        }
        _ => {
            let mut magic = [0u8; 4];
            if source.len() >= 4 {
                source.read_exact_at(0, &mut magic).map_err(|e| {
                    fail(
                        CorruptKind::Unreadable,
                        format!("cannot read extent file {shown}: {e}"),
                    )
                })?;
            }
            if &magic == b"COWD" {
                return Err(ContainerError::Unsupported {
                    path: shown,
                    feature: "the VMFSSPARSE (COWD) extent format".into(),
                    detail: "only hosted sparse (\"KDMV\") extents are read".into(),
                });
            }
            let extent = SparseExtent::open(source, &shown)?;
            files.gd_entries = files.gd_entries.saturating_add(extent.gd_entries());
            if extent.capacity() < len {
                return Err(fail(CorruptKind::Invalid, format!(
                    "the extent line gives {len} bytes but the sparse header of {shown} gives a capacity of {}",
                    extent.capacity()
                )));
            }
            if files.gd_entries > MAX_TOTAL_GD_ENTRIES {
                return Err(fail(CorruptKind::TooLarge, format!(
                    "the sparse extents' grain directories hold more than {MAX_TOTAL_GD_ENTRIES} entries together"
                )));
            }
            Ok(Extent::Sparse(extent))
        }
    }
}

/// One extent of the virtual disk.
#[derive(Debug)]
enum Extent {
    Sparse(SparseExtent),
    Flat {
        source: Arc<dyn BlockSource>,
        name: String,
        offset: u64,
    },
    Zero,
    NoAccess {
        name: String,
        line: usize,
    },
}

#[derive(Debug)]
struct Placed {
    start: u64,
    len: u64,
    extent: Extent,
}

/// The virtual disk: extents placed one after another.
#[derive(Debug)]
struct VmdkDisk {
    extents: Vec<Placed>,
    len: u64,
}

impl BlockSource for VmdkDisk {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let fits = offset
            .checked_add(buf.len() as u64)
            .is_some_and(|end| end <= self.len);
        if !fits {
            return Err(past_end(offset, buf.len() as u64, self.len));
        }
        let mut index = self.extents.partition_point(|e| e.start + e.len <= offset);
        let mut done = 0usize;
        while done < buf.len() {
            let position = offset + done as u64;
            let placed = self.extents.get(index).ok_or_else(|| {
                io::Error::other(format!("VMDK: no extent holds byte {position}"))
            })?;
            let within = position - placed.start;
            let take = usize::try_from(placed.len - within)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let Some(out) = buf.get_mut(done..done + take) else {
                break;
            };
            match &placed.extent {
                Extent::Sparse(sparse) => sparse.read_at(within, out)?,
                Extent::Flat {
                    source,
                    name,
                    offset,
                } => {
                    let at = offset + within;
                    source.read_exact_at(at, out).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("{name}: reading flat extent data at byte {at}: {e}"),
                        )
                    })?
                }
                Extent::Zero => out.fill(0),
                Extent::NoAccess { name, line } => {
                    return Err(corrupt_read(
                        CorruptKind::Invalid,
                        name,
                        format!("VMDK descriptor line {line} (NOACCESS extent)"),
                        within,
                        "the descriptor marks this extent inaccessible",
                    ))
                }
            }
            done += take;
            index += 1;
        }
        Ok(())
    }
}
