//! VirtualBox VDI containers (VirtualBox disks, Vagrant boxes): dynamic and fixed images.
//!
//! A VDI file opens with a 64-byte text banner, the signature 0xbeda107f and a version
//! (little-endian, like every field), then a header giving the virtual size, the block
//! size, where the block map and the data lie, and the image's UUIDs. The block map holds
//! one u32 per block of the virtual disk: the index of the block's copy in the data area,
//! or 0xffffffff (never written) or 0xfffffffe (discarded), which read as zeros. A fixed
//! image is the same layout with every block allocated.
//!
//! The checks are qemu's (block/vdi.c) where qemu refuses an image, so that amiscan reads
//! what qemu-img converts: version 1.1, 512-byte sectors, 1 MiB blocks, no per-block extra
//! data, no parent (differencing and undo images are refused, naming the parent's UUID).
//! Every allocated block must lie inside the file, checked once at open, so a truncated
//! image is recognised before anything is read; the map itself must lie inside the file,
//! which bounds what it allocates.

use crate::bytes::{le32, le64};
use crate::image::CorruptKind;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{
    check_range, for_each_block, read_vec, BlockSource, ContainerError, ContainerInfo, Opened,
    RawImage,
};

/// The signature at byte 0x40.
pub const SIGNATURE: u32 = 0xbeda_107f;
const SIGNATURE_AT: u64 = 0x40;
/// Version 1.1, the only one VirtualBox and qemu write and qemu opens.
const VERSION_1_1: u32 = 0x0001_0001;
/// The banner, signature, version and the version 1.1 header, up to and including the
/// parent UUID (the LCHS geometry that follows is not needed).
const HEADER_LEN: usize = 0x1C8;
const SECTOR: u64 = 512;
/// The only block size qemu opens (and VirtualBox writes).
const BLOCK_SIZE: u64 = 1 << 20;
/// Block map entries that read as zeros.
const UNALLOCATED: u32 = 0xffff_ffff;
const DISCARDED: u32 = 0xffff_fffe;

const TYPE_DYNAMIC: u32 = 1;
const TYPE_FIXED: u32 = 2;
const TYPE_UNDO: u32 = 3;
const TYPE_DIFFERENCING: u32 = 4;

// Header fields, as byte offsets in the file.
const TYPE_AT: usize = 0x4C;
const BLOCK_MAP_AT: usize = 0x154;
const DATA_AT: usize = 0x158;
const SECTOR_SIZE_AT: usize = 0x168;
const DISK_SIZE_AT: usize = 0x170;
const BLOCK_SIZE_AT: usize = 0x178;
const BLOCK_EXTRA_AT: usize = 0x17C;
const BLOCKS_AT: usize = 0x180;
const LINKAGE_UUID_AT: usize = 0x1A8;
const PARENT_UUID_AT: usize = 0x1B8;

/// Opens a VDI image read-only.
pub fn open(path: &Path) -> Result<Opened, ContainerError> {
    let name = path.display().to_string();
    let file = RawImage::open(path).map_err(|source| ContainerError::Io {
        path: name.clone(),
        source,
    })?;
    open_source(Arc::new(file), &name)
}

/// Whether a source starts like a VDI image (its signature at byte 0x40).
pub fn has_signature(source: &dyn BlockSource) -> bool {
    let mut signature = [0u8; 4];
    source.read_exact_at(SIGNATURE_AT, &mut signature).is_ok()
        && u32::from_le_bytes(signature) == SIGNATURE
}

/// Opens a VDI held by any source (a file, or memory when fuzzing); `name` is the file
/// name errors give.
pub fn open_source(file: Arc<dyn BlockSource>, name: &str) -> Result<Opened, ContainerError> {
    let len = file.len();
    let corrupt = |kind, at: usize, detail: String| {
        ContainerError::corrupt(kind, name, "VDI header", at as u64, detail)
    };
    let unsupported = |feature: String, detail: &str| ContainerError::Unsupported {
        path: name.to_string(),
        feature: feature.into(),
        detail: detail.to_string(),
    };
    if len < HEADER_LEN as u64 {
        return Err(corrupt(
            CorruptKind::Truncated,
            0,
            format!("the file is {len} bytes, shorter than the {HEADER_LEN}-byte header"),
        ));
    }
    let header = read_vec(file.as_ref(), 0, HEADER_LEN).map_err(|source| ContainerError::Io {
        path: name.to_string(),
        source,
    })?;
    if le32(&header, SIGNATURE_AT as usize) != SIGNATURE {
        return Err(corrupt(
            CorruptKind::Magic,
            SIGNATURE_AT as usize,
            format!("no signature {SIGNATURE:#010x}"),
        ));
    }
    let version = le32(&header, 0x44);
    if version != VERSION_1_1 {
        return Err(unsupported(
            format!("VDI version {}.{}", version >> 16, version & 0xffff),
            "only version 1.1 is read",
        ));
    }
    let image_type = le32(&header, TYPE_AT);
    let subformat = match image_type {
        TYPE_DYNAMIC => "dynamic",
        TYPE_FIXED => "fixed",
        TYPE_UNDO | TYPE_DIFFERENCING => {
            let parent = uuid(header.get(PARENT_UUID_AT..PARENT_UUID_AT + 16));
            return Err(unsupported(
                format!("VDI differencing image (parent UUID {parent})"),
                "amiscan reads dynamic and fixed VDI images only; merge the chain first, \
                 e.g. `VBoxManage clonemedium` or `qemu-img convert -O vdi`",
            ));
        }
        other => {
            return Err(unsupported(
                format!("VDI image type {other}"),
                "only dynamic (1) and fixed (2) images are read",
            ))
        }
    };
    // A linkage or parent UUID means the image is one layer of a chain: its unwritten
    // blocks live elsewhere, and reading them as zeros would be wrong.
    for (at, what) in [(LINKAGE_UUID_AT, "linkage"), (PARENT_UUID_AT, "parent")] {
        let field = header.get(at..at + 16).unwrap_or_default();
        if field.iter().any(|b| *b != 0) {
            return Err(corrupt(
                CorruptKind::Invalid,
                at,
                format!(
                    "the {what} UUID is {}: the image depends on another one",
                    uuid(Some(field))
                ),
            ));
        }
    }
    let sector_size = le32(&header, SECTOR_SIZE_AT);
    if u64::from(sector_size) != SECTOR {
        return Err(corrupt(
            CorruptKind::Invalid,
            SECTOR_SIZE_AT,
            format!("sector size {sector_size} (only 512 is defined)"),
        ));
    }
    let block_size = u64::from(le32(&header, BLOCK_SIZE_AT));
    if block_size != BLOCK_SIZE {
        return Err(corrupt(
            CorruptKind::Invalid,
            BLOCK_SIZE_AT,
            format!("block size {block_size} (only 1 MiB is read, as qemu reads)"),
        ));
    }
    let block_extra = le32(&header, BLOCK_EXTRA_AT);
    if block_extra != 0 {
        return Err(corrupt(
            CorruptKind::Invalid,
            BLOCK_EXTRA_AT,
            format!("{block_extra} extra bytes per block (only 0 is read, as qemu reads)"),
        ));
    }
    let map_at = u64::from(le32(&header, BLOCK_MAP_AT));
    let data_at = u64::from(le32(&header, DATA_AT));
    for (at, value, what) in [
        (BLOCK_MAP_AT, map_at, "block map"),
        (DATA_AT, data_at, "data"),
    ] {
        if !value.is_multiple_of(SECTOR) || value < HEADER_LEN as u64 {
            return Err(corrupt(
                CorruptKind::Invalid,
                at,
                format!(
                    "{what} offset {value} is not a multiple of 512 past the {HEADER_LEN}-byte \
                     header"
                ),
            ));
        }
    }
    let size = le64(&header, DISK_SIZE_AT);
    let blocks = u64::from(le32(&header, BLOCKS_AT));
    let needed = size.div_ceil(block_size);
    if needed > blocks {
        return Err(corrupt(
            CorruptKind::Invalid,
            BLOCKS_AT,
            format!(
                "{blocks} blocks of {block_size} bytes hold less than the {size}-byte disk \
                 ({needed} needed)"
            ),
        ));
    }
    // The map must lie in the file: that bounds its size (and this allocation) by the
    // file's. Only the entries the disk needs are kept.
    let map_len = needed * 4;
    if map_at
        .checked_add(map_len)
        .is_none_or(|end| end > len || end > data_at)
    {
        return Err(corrupt(
            CorruptKind::OutOfRange,
            BLOCK_MAP_AT,
            format!(
                "the {map_len}-byte block map at byte {map_at} runs past the data at byte \
                 {data_at} or the end of the {len}-byte file"
            ),
        ));
    }
    let map_bytes = usize::try_from(map_len).map_err(|_| {
        corrupt(
            CorruptKind::TooLarge,
            BLOCK_MAP_AT,
            "the block map is too large for this machine".into(),
        )
    })?;
    let raw_map =
        read_vec(file.as_ref(), map_at, map_bytes).map_err(|source| ContainerError::Io {
            path: name.to_string(),
            source,
        })?;
    let map: Vec<u32> = raw_map.chunks_exact(4).map(|e| le32(e, 0)).collect();
    drop(raw_map);
    for (index, &entry) in map.iter().enumerate() {
        if entry >= DISCARDED {
            continue;
        }
        let start = u64::from(entry)
            .checked_mul(block_size)
            .and_then(|o| o.checked_add(data_at));
        let first = (index as u64).saturating_mul(block_size);
        let in_disk = block_size.min(size.saturating_sub(first));
        if start
            .and_then(|s| s.checked_add(in_disk))
            .is_none_or(|end| end > len)
        {
            return Err(ContainerError::corrupt(
                CorruptKind::OutOfRange,
                name,
                format!("VDI block map entry {index}"),
                map_at.saturating_add(index as u64 * 4),
                format!(
                    "block {index} is stored as data block {entry}, past the end of the \
                     {len}-byte file (truncated?)"
                ),
            ));
        }
    }
    Ok(Opened {
        disk: Arc::new(VdiDisk {
            file,
            name: name.to_string(),
            size,
            data_at,
            map,
        }),
        info: ContainerInfo {
            subformat: Some(subformat.to_string()),
            ..ContainerInfo::default()
        },
    })
}

/// A UUID field as VirtualBox shows it (the first three groups are little-endian).
fn uuid(field: Option<&[u8]>) -> String {
    field
        .and_then(|b| <&[u8; 16]>::try_from(b).ok())
        .map_or_else(|| "unreadable".into(), crate::bytes::mixed_endian_guid)
}

/// The virtual disk of a VDI image.
#[derive(Debug)]
struct VdiDisk {
    file: Arc<dyn BlockSource>,
    name: String,
    size: u64,
    data_at: u64,
    /// One entry per block of the disk, each allocated one checked to lie in the file.
    map: Vec<u32>,
}

impl BlockSource for VdiDisk {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        for_each_block(offset, buf, BLOCK_SIZE, |block, within, piece| {
            let entry = usize::try_from(block)
                .ok()
                .and_then(|index| self.map.get(index))
                .copied()
                // check_range kept the read inside the disk, whose blocks the map covers.
                .unwrap_or(UNALLOCATED);
            if entry >= DISCARDED {
                piece.fill(0);
                return Ok(());
            }
            // Checked at open to lie inside the file.
            let at = self.data_at + u64::from(entry) * BLOCK_SIZE + within;
            self.file.read_exact_at(at, piece).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{}: VDI data block {entry} at byte {at}: {e}", self.name),
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::MemoryImage;

    /// A VDI of `blocks` 1 MiB blocks with `map` as its block map and `stored` data blocks.
    fn image(size: u64, map: &[u32], stored: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0u8; 0x200];
        out[..40].copy_from_slice(b"<<< Oracle VM VirtualBox Disk Image >>>\n");
        out[0x40..0x44].copy_from_slice(&SIGNATURE.to_le_bytes());
        out[0x44..0x48].copy_from_slice(&VERSION_1_1.to_le_bytes());
        out[0x48..0x4C].copy_from_slice(&0x190u32.to_le_bytes());
        out[TYPE_AT..TYPE_AT + 4].copy_from_slice(&TYPE_DYNAMIC.to_le_bytes());
        out[BLOCK_MAP_AT..BLOCK_MAP_AT + 4].copy_from_slice(&0x200u32.to_le_bytes());
        let data_at = (0x200 + map.len() * 4).next_multiple_of(512);
        out[DATA_AT..DATA_AT + 4].copy_from_slice(&(data_at as u32).to_le_bytes());
        out[SECTOR_SIZE_AT..SECTOR_SIZE_AT + 4].copy_from_slice(&512u32.to_le_bytes());
        out[DISK_SIZE_AT..DISK_SIZE_AT + 8].copy_from_slice(&size.to_le_bytes());
        out[BLOCK_SIZE_AT..BLOCK_SIZE_AT + 4].copy_from_slice(&(1u32 << 20).to_le_bytes());
        out[BLOCKS_AT..BLOCKS_AT + 4].copy_from_slice(&(map.len() as u32).to_le_bytes());
        for entry in map {
            out.extend_from_slice(&entry.to_le_bytes());
        }
        out.resize(data_at, 0);
        for block in stored {
            let mut block = block.clone();
            block.resize(1 << 20, 0);
            out.extend_from_slice(&block);
        }
        out
    }

    fn open_bytes(bytes: Vec<u8>) -> Result<Opened, ContainerError> {
        open_source(Arc::new(MemoryImage::new(bytes)), "t.vdi")
    }

    #[test]
    fn reads_allocated_blocks_and_zeros_elsewhere() {
        let bytes = image(3 << 20, &[1, UNALLOCATED, 0], &[vec![7; 10], vec![9; 10]]);
        let opened = open_bytes(bytes).unwrap();
        let disk = opened.disk;
        assert_eq!(disk.len(), 3 << 20);
        let mut buf = vec![0xAAu8; 4];
        disk.read_exact_at((1 << 20) - 2, &mut buf).unwrap();
        assert_eq!(buf, [0, 0, 0, 0]);
        disk.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(buf, [9, 9, 9, 9]);
        disk.read_exact_at(2 << 20, &mut buf).unwrap();
        assert_eq!(buf, [7, 7, 7, 7]);
        assert!(disk.read_exact_at((3 << 20) - 2, &mut buf).is_err());
    }

    #[test]
    fn hostile_headers_are_refused_without_allocating() {
        let good = image(2 << 20, &[0, UNALLOCATED], &[vec![1; 4]]);
        assert!(open_bytes(good.clone()).is_ok());
        let patch = |at: usize, value: &[u8]| {
            let mut bytes = good.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            open_bytes(bytes).map(|_| ()).unwrap_err().to_string()
        };
        // A disk far larger than the map: refused before the map is read.
        assert!(patch(DISK_SIZE_AT, &u64::MAX.to_le_bytes()).contains("hold less"));
        // A map claiming 2^32 - 1 entries for a disk that needs them: past the file.
        let mut bytes = good.clone();
        bytes[DISK_SIZE_AT..DISK_SIZE_AT + 8]
            .copy_from_slice(&(u64::from(u32::MAX) << 20).to_le_bytes());
        bytes[BLOCKS_AT..BLOCKS_AT + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = open_bytes(bytes).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("block map"), "{err}");
        assert!(patch(BLOCK_SIZE_AT, &(2u32 << 20).to_le_bytes()).contains("block size"));
        assert!(patch(SECTOR_SIZE_AT, &4096u32.to_le_bytes()).contains("sector size"));
        assert!(patch(BLOCK_EXTRA_AT, &1u32.to_le_bytes()).contains("extra bytes"));
        assert!(patch(BLOCK_MAP_AT, &0x201u32.to_le_bytes()).contains("not a multiple"));
        assert!(patch(0x44, &0x0001_0000u32.to_le_bytes()).contains("VDI version 1.0"));
        assert!(patch(TYPE_AT, &4u32.to_le_bytes()).contains("differencing"));
        assert!(patch(PARENT_UUID_AT, &[1]).contains("parent UUID"));
        // A block stored past the end of the file: a truncated image, found at open.
        let err = patch(0x200, &5u32.to_le_bytes());
        assert!(err.contains("VDI block map entry 0 at byte 512"), "{err}");
        let short = good[..100].to_vec();
        assert!(open_bytes(short).is_err());
    }
}
