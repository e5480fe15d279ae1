//! Reading a hosted sparse extent: grain directory → grain table → grain, with grains
//! either stored as they are or, in stream-optimized extents, as zlib behind a marker.

use crate::image::CorruptKind;
use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use flate2::{Decompress, FlushDecompress, Status};

use super::header::{self, inside, marker_type_name, Layout, SECTOR};
use crate::bytes::{le32, le64};
use crate::image::cache::ShardedCache;
use crate::image::{corrupt_read, read_vec, BlockSource, ContainerError};

/// Grain tables kept per extent, in bytes (1024 tables of the usual 2 KiB: 32 GiB mapped).
const GT_CACHE_BYTES: u64 = 2 << 20;
/// Inflated grains kept per stream-optimized extent, in bytes.
const GRAIN_CACHE_BYTES: u64 = 8 << 20;
/// A grain marker's fixed part: the grain's LBA (u64) and its compressed size (u32).
const MARKER_HEAD: u64 = 12;

/// Where a grain's bytes are.
enum Grain {
    /// Never written: reads as zeros (delta disks, whose parent would hold them, are refused).
    Unallocated,
    /// Written as zeros (GTE 1 in an extent with the zeroed-grain flag).
    Zero,
    /// At `at` in the file: the grain itself, or its marker when compressed.
    Stored { at: u64, gt: u64, entry: u64 },
}

/// One hosted sparse extent file, opened and checked.
#[derive(Debug)]
pub(super) struct SparseExtent {
    source: Arc<dyn BlockSource>,
    /// The file, as named in errors.
    name: String,
    file_len: u64,
    layout: Layout,
    grain_directory: Box<[u32]>,
    tables: ShardedCache<[u32]>,
    grains: ShardedCache<[u8]>,
}

impl SparseExtent {
    /// Opens the sparse extent in `source`. The caller has seen "KDMV" at byte 0.
    pub(super) fn open(source: Arc<dyn BlockSource>, name: &str) -> Result<Self, ContainerError> {
        let layout = header::read_layout(source.as_ref(), name)?;
        let file_len = source.len();
        // validate() checked the directory lies inside the file and is at most 16 MiB.
        let gd_bytes = usize::try_from(layout.gd_entries * 4).map_err(|_| {
            ContainerError::corrupt(
                CorruptKind::TooLarge,
                name,
                "VMDK grain directory",
                layout.gd_at,
                "too large for this machine",
            )
        })?;
        let raw = read_vec(source.as_ref(), layout.gd_at, gd_bytes).map_err(|e| {
            ContainerError::corrupt(
                CorruptKind::Unreadable,
                name,
                "VMDK grain directory",
                layout.gd_at,
                format!("cannot read: {e}"),
            )
        })?;
        let grain_directory = raw
            .chunks_exact(4)
            .map(|e| le32(e, 0))
            .collect::<Box<[u32]>>();
        let gt_bytes = u64::from(layout.gtes_per_gt) * 4;
        let tables = ShardedCache::new(cache_entries(GT_CACHE_BYTES, gt_bytes, 16, 1024));
        let grains = ShardedCache::new(if layout.compressed {
            cache_entries(GRAIN_CACHE_BYTES, layout.grain_bytes, 2, 256)
        } else {
            1
        });
        Ok(Self {
            source,
            name: name.to_string(),
            file_len,
            layout,
            grain_directory,
            tables,
            grains,
        })
    }

    /// The virtual size the header gives.
    pub(super) fn capacity(&self) -> u64 {
        self.layout.capacity_bytes
    }

    /// Entries of the grain directory held in memory.
    pub(super) fn gd_entries(&self) -> u64 {
        self.layout.gd_entries
    }

    /// Byte range of the embedded descriptor, if any.
    pub(super) fn descriptor_region(&self) -> Option<(u64, u64)> {
        self.layout.descriptor
    }

    /// The source the extent is read from.
    pub(super) fn source(&self) -> &Arc<dyn BlockSource> {
        &self.source
    }

    fn corrupt(
        &self,
        kind: CorruptKind,
        structure: impl Into<Cow<'static, str>>,
        at: u64,
        detail: &str,
    ) -> io::Error {
        corrupt_read(kind, &self.name, structure, at, detail)
    }

    fn read_file(&self, at: u64, buf: &mut [u8], what: &str) -> io::Result<()> {
        self.source.read_exact_at(at, buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: reading {what} at byte {at}: {e}", self.name),
            )
        })
    }

    /// The grain table `gt`, from the cache or the file.
    fn table(&self, gt: u64, gde: u32) -> io::Result<Arc<[u32]>> {
        if let Some(table) = self.tables.get(gt) {
            return Ok(table);
        }
        let at = u64::from(gde) * SECTOR;
        let len = u64::from(self.layout.gtes_per_gt) * 4;
        if !inside(at, len, self.file_len) {
            return Err(self.corrupt(CorruptKind::OutOfRange,
                format!("VMDK grain directory entry {gt}"),
                self.layout.gd_at + gt * 4,
                &format!(
                    "grain table at sector {gde} ({len} bytes) does not lie inside the {}-byte file",
                    self.file_len
                ),
            ));
        }
        // At most 32 KiB (MAX_GTES_PER_GT entries).
        let mut raw = vec![0u8; len as usize];
        self.read_file(at, &mut raw, &format!("VMDK grain table {gt}"))?;
        let table: Arc<[u32]> = raw.chunks_exact(4).map(|e| le32(e, 0)).collect();
        self.tables.insert(gt, Arc::clone(&table));
        Ok(table)
    }

    fn locate(&self, grain: u64) -> io::Result<Grain> {
        let per_table = u64::from(self.layout.gtes_per_gt);
        let (gt, entry) = (grain / per_table, grain % per_table);
        let gde = usize::try_from(gt)
            .ok()
            .and_then(|i| self.grain_directory.get(i))
            .copied()
            .ok_or_else(|| {
                self.corrupt(
                    CorruptKind::OutOfRange,
                    "VMDK grain directory",
                    self.layout.gd_at,
                    &format!("no entry {gt} for grain {grain}"),
                )
            })?;
        if gde == 0 {
            return Ok(Grain::Unallocated);
        }
        let table = self.table(gt, gde)?;
        let gte = usize::try_from(entry)
            .ok()
            .and_then(|i| table.get(i))
            .copied()
            .unwrap_or(0);
        Ok(match gte {
            0 => Grain::Unallocated,
            1 if self.layout.zeroed_grain => Grain::Zero,
            sector => Grain::Stored {
                at: u64::from(sector) * SECTOR,
                gt,
                entry,
            },
        })
    }

    /// Where grain table `gt` entry `entry` is in the file, for error messages.
    fn entry_at(&self, gt: u64, entry: u64) -> u64 {
        let gde = usize::try_from(gt)
            .ok()
            .and_then(|i| self.grain_directory.get(i))
            .copied()
            .unwrap_or(0);
        u64::from(gde) * SECTOR + entry * 4
    }

    /// Fills `buf` from byte `offset` of the extent; the caller keeps the range inside
    /// the capacity.
    pub(super) fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let grain_bytes = self.layout.grain_bytes;
        // Contiguous stored grains are read with one call: (file offset, buf start, len).
        let mut run: Option<(u64, usize, usize)> = None;
        let mut done = 0usize;
        while done < buf.len() {
            let position = offset + done as u64;
            let grain = position / grain_bytes;
            let within = position % grain_bytes;
            // At most one grain (16 MiB), so it fits a usize.
            let take = usize::try_from(grain_bytes - within)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            match self.locate(grain)? {
                Grain::Stored { at, gt, entry } if !self.layout.compressed => {
                    let file_at = at + within;
                    if !inside(file_at, take as u64, self.file_len) {
                        return Err(self.corrupt(
                            CorruptKind::OutOfRange,
                            format!("VMDK grain table {gt} entry {entry}"),
                            self.entry_at(gt, entry),
                            &format!(
                                "grain {grain} at byte {at} runs past the end of the {}-byte file",
                                self.file_len
                            ),
                        ));
                    }
                    run = match run {
                        Some((start, from, len)) if start + len as u64 == file_at => {
                            Some((start, from, len + take))
                        }
                        other => {
                            self.flush(other, buf)?;
                            Some((file_at, done, take))
                        }
                    };
                }
                Grain::Stored { at, gt, entry } => {
                    self.flush(run.take(), buf)?;
                    let data = self.inflated(grain, at, gt, entry)?;
                    let from = within as usize; // within < grain_bytes <= 16 MiB
                    let piece = data.get(from..from + take).ok_or_else(|| {
                        self.corrupt(
                            CorruptKind::Truncated,
                            format!("VMDK grain marker for grain {grain}"),
                            at,
                            &format!("the grain inflates to only {} bytes", data.len()),
                        )
                    })?;
                    if let Some(out) = buf.get_mut(done..done + take) {
                        out.copy_from_slice(piece);
                    }
                }
                Grain::Unallocated | Grain::Zero => {
                    self.flush(run.take(), buf)?;
                    if let Some(out) = buf.get_mut(done..done + take) {
                        out.fill(0);
                    }
                }
            }
            done += take;
        }
        self.flush(run, buf)
    }

    fn flush(&self, run: Option<(u64, usize, usize)>, buf: &mut [u8]) -> io::Result<()> {
        let Some((at, from, len)) = run else {
            return Ok(());
        };
        let out = buf.get_mut(from..from + len).ok_or_else(|| {
            io::Error::other(format!("{}: internal error: bad read run", self.name))
        })?;
        self.read_file(at, out, "VMDK grain data")
    }

    /// The inflated bytes of a compressed grain whose marker is at `at`.
    fn inflated(&self, grain: u64, at: u64, gt: u64, entry: u64) -> io::Result<Arc<[u8]>> {
        if let Some(data) = self.grains.get(grain) {
            return Ok(data);
        }
        let structure =
            format!("VMDK grain marker for grain {grain} (grain table {gt} entry {entry})");
        let fail = |kind, detail: String| self.corrupt(kind, structure.clone(), at, &detail);
        if !inside(at, MARKER_HEAD, self.file_len) {
            return Err(fail(
                CorruptKind::OutOfRange,
                format!(
                    "the marker does not lie inside the {}-byte file",
                    self.file_len
                ),
            ));
        }
        let mut head = [0u8; 16];
        let head_len = if inside(at, 16, self.file_len) {
            16
        } else {
            12
        };
        self.read_file(at, head.get_mut(..head_len).unwrap_or_default(), &structure)?;
        let (lba, size) = (le64(&head, 0), le32(&head, 8));
        if size == 0 {
            let kind = le32(&head, 12);
            return Err(fail(
                CorruptKind::Invalid,
                format!(
                    "the grain table points at a {} marker (type {kind}), not at a grain",
                    marker_type_name(kind)
                ),
            ));
        }
        let grain_sectors = self.layout.grain_bytes / SECTOR;
        let expected = grain.saturating_mul(grain_sectors);
        if lba != expected {
            return Err(fail(
                CorruptKind::Invalid,
                format!("the marker is for LBA {lba}, the grain table places it at LBA {expected}"),
            ));
        }
        // Deflate never grows data by more than a few bytes per 16 KiB; twice a grain is
        // QEMU's bound too. Checked before anything is allocated.
        let limit = self.layout.grain_bytes * 2;
        if u64::from(size) > limit {
            return Err(fail(CorruptKind::TooLarge, format!(
                "the marker claims {size} compressed bytes, more than the {limit} a {}-byte grain can take",
                self.layout.grain_bytes
            )));
        }
        let data_at = at + MARKER_HEAD;
        if !inside(data_at, u64::from(size), self.file_len) {
            return Err(fail(
                CorruptKind::OutOfRange,
                format!(
                "{size} compressed bytes at byte {data_at} run past the end of the {}-byte file",
                self.file_len
            ),
            ));
        }
        let mut compressed = vec![0u8; size as usize];
        self.read_file(data_at, &mut compressed, &structure)?;
        let grain_start = grain.saturating_mul(self.layout.grain_bytes);
        let expected_len = self
            .layout
            .capacity_bytes
            .saturating_sub(grain_start)
            .min(self.layout.grain_bytes);
        // The output is capped at one grain whatever the stream says.
        let mut out = vec![0u8; self.layout.grain_bytes as usize];
        let mut inflater = Decompress::new(true);
        let status = inflater
            .decompress(&compressed, &mut out, FlushDecompress::Finish)
            .map_err(|e| fail(CorruptKind::Invalid, format!("invalid zlib data: {e}")))?;
        let produced = inflater.total_out();
        if status != Status::StreamEnd {
            return Err(fail(
                CorruptKind::Invalid,
                if produced >= self.layout.grain_bytes {
                    format!(
                        "the zlib stream inflates to more than one grain ({} bytes)",
                        self.layout.grain_bytes
                    )
                } else {
                    format!("the zlib stream is cut short after {produced} bytes of output")
                },
            ));
        }
        if produced < expected_len {
            return Err(fail(
                CorruptKind::Invalid,
                format!("the grain inflates to {produced} bytes, {expected_len} expected"),
            ));
        }
        out.truncate(produced as usize);
        let data: Arc<[u8]> = Arc::from(out);
        self.grains.insert(grain, Arc::clone(&data));
        Ok(data)
    }
}

/// How many entries of `entry_bytes` fit `budget`, within `min..=max`.
fn cache_entries(budget: u64, entry_bytes: u64, min: usize, max: usize) -> usize {
    usize::try_from(budget / entry_bytes.max(1))
        .unwrap_or(max)
        .clamp(min, max)
}
