//! VHD and VHDX: real images made by qemu-img (`testdata/build-vhd.sh`) are read through
//! amiscan and compared with qemu's own raw conversion byte for byte, inventoried against
//! their source trees, and damaged (truncated, bit-flipped, a dirty log, a parent) to check
//! that every failure is a clear error naming the file, never a panic or a hang. Hand-built
//! images cover what qemu does not write: sector bitmaps with clear bits, 4096-byte logical
//! sectors, sector bitmap entries between BAT entries, every payload block state.

use crate::util;

use util::Rng;

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiscan::image::{open_image, BlockSource, ContainerFormat, MemoryImage, Opened};
use sha2::{Digest, Sha256};

use util::{assert_inventory_matches, build_dir, inspect_json, manifest_dir, source, Fs};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// How long one run of the binary on a damaged image may take (a debug build on a loaded
/// two-core machine); a hang runs forever.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The images.
// ---------------------------------------------------------------------------------------

/// Builds the foundation images and their VHD/VHDX conversions (once per process; the
/// script's stamp makes it instant afterwards).
fn ensure_vhd_images() {
    util::ensure_images();
    util::ensure_built("build-vhd.sh", ".lock-vhd");
}

fn vhd(name: &str) -> PathBuf {
    ensure_vhd_images();
    let path = build_dir().join("vhd").join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// qemu-img's raw conversion of a built image.
fn qemu_raw(name: &str) -> PathBuf {
    let path = build_dir()
        .join("vhd")
        .join("raw")
        .join(format!("{name}.raw"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A scratch directory for damaged copies, private to this test and process.
fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("vhd-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------
// 1. Every byte of the virtual disk equals qemu-img's raw conversion.
// ---------------------------------------------------------------------------------------

fn read_disk(disk: &dyn BlockSource, at: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    disk.read_exact_at(at, &mut buf)
        .unwrap_or_else(|e| panic!("reading {len} bytes at {at}: {e}"));
    buf
}

fn read_file(file: &File, at: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, at).unwrap();
    buf
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len())
}

/// The whole disk (sha256 and chunk by chunk) and 200 seeded ranges that straddle block
/// boundaries, through amiscan and from qemu's raw conversion.
fn assert_reads_like_qemu(name: &str, format: ContainerFormat, subformat: &str) {
    let path = vhd(name);
    let image = open_image(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(image.format, format, "{name}");
    assert_eq!(image.info.subformat.as_deref(), Some(subformat), "{name}");
    let disk = image.disk;
    let raw = File::open(qemu_raw(name)).unwrap();
    let size = raw.metadata().unwrap().len();
    assert_eq!(disk.len(), size, "{name}: virtual size differs from qemu's");

    // The whole disk. Hashing 5 GiB in a debug build is slow; the chunk comparison is the
    // stronger check anyway, so only disks up to 1 GiB are also hashed.
    let hash = size <= 1 << 30;
    let (mut ours, mut theirs) = (Sha256::new(), Sha256::new());
    let chunk = 4 * MIB;
    let mut at = 0;
    while at < size {
        let len = chunk.min(size - at) as usize;
        let a = read_disk(disk.as_ref(), at, len);
        let b = read_file(&raw, at, len);
        if a != b {
            panic!(
                "{name}: byte {} differs from qemu's raw conversion",
                at + first_difference(&a, &b) as u64
            );
        }
        if hash {
            ours.update(&a);
            theirs.update(&b);
        }
        at += len as u64;
    }
    assert_eq!(ours.finalize(), theirs.finalize(), "{name}: sha256 differs");

    // Ranges around 1 MiB boundaries (every block boundary of these images is one), a few
    // bytes to a few hundred KiB long, and some anywhere.
    let mut rng = Rng(0x5eed_0000 ^ size);
    for round in 0..200 {
        let (start, len) = if round % 4 == 3 {
            let start = rng.below_u64(size);
            (start, 1 + rng.below_u64(2 * MIB))
        } else {
            let boundary = rng.below_u64(size / MIB + 1) * MIB;
            let before = rng.below_u64(70_000);
            (boundary.saturating_sub(before), 1 + rng.below_u64(300_000))
        };
        let start = start.min(size - 1);
        let len = len.min(size - start) as usize;
        let a = read_disk(disk.as_ref(), start, len);
        let b = read_file(&raw, start, len);
        assert!(
            a == b,
            "{name}: range {round} ({len} bytes at {start}) differs at byte {}",
            start + first_difference(&a, &b) as u64
        );
    }
    // Past the end is an error, not zeros.
    let mut buf = [0u8; 2];
    assert!(disk.read_exact_at(size - 1, &mut buf).is_err());
}

#[test]
fn fixed_vhd_reads_like_qemu() {
    assert_reads_like_qemu("debian-gpt-fixed.vhd", ContainerFormat::Vhd, "fixed");
    assert_reads_like_qemu("split-gpt-fixed.vhd", ContainerFormat::Vhd, "fixed");
}

#[test]
fn dynamic_vhd_reads_like_qemu() {
    assert_reads_like_qemu("debian-gpt-dynamic.vhd", ContainerFormat::Vhd, "dynamic");
    assert_reads_like_qemu("split-gpt-dynamic.vhd", ContainerFormat::Vhd, "dynamic");
}

#[test]
fn force_size_vhd_reads_like_qemu() {
    assert_reads_like_qemu("debian-gpt-force.vhd", ContainerFormat::Vhd, "dynamic");
    assert_reads_like_qemu("split-gpt-force.vhd", ContainerFormat::Vhd, "dynamic");
    // force_size keeps the original size instead of rounding it to CHS geometry.
    let original = fs::metadata(util::image("debian-gpt.img")).unwrap().len();
    let image = open_image(&vhd("debian-gpt-force.vhd")).unwrap();
    assert_eq!(image.disk.len(), original);
}

#[test]
fn dynamic_vhdx_reads_like_qemu() {
    assert_reads_like_qemu("debian-gpt-dynamic.vhdx", ContainerFormat::Vhdx, "dynamic");
    assert_reads_like_qemu("split-gpt-dynamic.vhdx", ContainerFormat::Vhdx, "dynamic");
}

#[test]
fn fixed_vhdx_reads_like_qemu() {
    assert_reads_like_qemu("debian-gpt-fixed.vhdx", ContainerFormat::Vhdx, "fixed");
    assert_reads_like_qemu("split-gpt-fixed.vhdx", ContainerFormat::Vhdx, "fixed");
}

#[test]
fn one_mib_block_vhdx_reads_like_qemu() {
    assert_reads_like_qemu("debian-gpt-1m.vhdx", ContainerFormat::Vhdx, "dynamic");
    assert_reads_like_qemu("split-gpt-1m.vhdx", ContainerFormat::Vhdx, "dynamic");
}

/// 5 GiB in 1 MiB blocks: the BAT's first sector bitmap entry lies between the entries of
/// the blocks before and after 4 GiB, where qemu-io wrote.
#[test]
fn vhdx_past_the_first_sector_bitmap_entry_reads_like_qemu() {
    assert_reads_like_qemu("interleave.vhdx", ContainerFormat::Vhdx, "dynamic");
    let disk = open_image(&vhd("interleave.vhdx")).unwrap().disk;
    assert_eq!(
        read_disk(disk.as_ref(), (4 << 30) - 4096, 8192),
        vec![0x22; 8192]
    );
    assert_eq!(
        read_disk(disk.as_ref(), (4 << 30) + MIB + 4096, 16),
        vec![0x33; 16]
    );
    assert_eq!(
        read_disk(disk.as_ref(), (5 << 30) - 512, 512),
        vec![0x44; 512]
    );
}

// ---------------------------------------------------------------------------------------
// 2. The inventory of each image equals its source trees.
// ---------------------------------------------------------------------------------------

fn debian_sources() -> Vec<util::Source> {
    vec![
        source("debian-root", "/", "p1", Fs::Ext),
        source("efi", "/boot/efi", "p15", Fs::Vfat),
    ]
}

fn split_sources() -> Vec<util::Source> {
    vec![
        source("split-root", "/", "p1", Fs::Ext),
        source("split-var", "/var", "p2", Fs::Ext),
        source("split-home", "/home", "p3", Fs::Ext),
    ]
}

fn assert_inventories(kind: &str) {
    ensure_vhd_images();
    assert_inventory_matches(&format!("vhd/debian-gpt-{kind}"), &debian_sources(), 0);
    assert_inventory_matches(&format!("vhd/split-gpt-{kind}"), &split_sources(), 0);
}

#[test]
fn fixed_vhd_inventory_matches_source() {
    assert_inventories("fixed.vhd");
}

#[test]
fn dynamic_vhd_inventory_matches_source() {
    assert_inventories("dynamic.vhd");
}

#[test]
fn force_size_vhd_inventory_matches_source() {
    assert_inventories("force.vhd");
}

#[test]
fn dynamic_vhdx_inventory_matches_source() {
    assert_inventories("dynamic.vhdx");
}

#[test]
fn fixed_vhdx_inventory_matches_source() {
    assert_inventories("fixed.vhdx");
}

#[test]
fn one_mib_block_vhdx_inventory_matches_source() {
    assert_inventories("1m.vhdx");
}

// ---------------------------------------------------------------------------------------
// 3. inspect reports the container.
// ---------------------------------------------------------------------------------------

#[test]
fn inspect_reports_format_and_subformat() {
    for (name, format, subformat) in [
        ("debian-gpt-fixed.vhd", "vhd", "fixed"),
        ("debian-gpt-dynamic.vhd", "vhd", "dynamic"),
        ("debian-gpt-force.vhd", "vhd", "dynamic"),
        ("debian-gpt-dynamic.vhdx", "vhdx", "dynamic"),
        ("debian-gpt-fixed.vhdx", "vhdx", "fixed"),
        ("split-gpt-1m.vhdx", "vhdx", "dynamic"),
    ] {
        let path = vhd(name);
        let (run, report) = inspect_json(&path);
        run.expect_code(0);
        let image = &report["image"];
        assert_eq!(image["format"], format, "{name}: {report:#}");
        assert_eq!(image["subformat"], subformat, "{name}: {report:#}");
        let raw_len = fs::metadata(qemu_raw(name)).unwrap().len();
        assert_eq!(image["virtual_size"], raw_len, "{name}");
        assert_eq!(report["partition_table"]["scheme"], "gpt", "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Damaged images, through the binary: clear errors, never a panic or a hang.
// ---------------------------------------------------------------------------------------

fn files_run(path: &Path) -> (i32, String) {
    util::run_with_deadline(
        &[
            OsStr::new("files"),
            OsStr::new("--hash"),
            OsStr::new("sha256"),
            path.as_os_str(),
        ],
        false,
    )
}

fn inspect_run(path: &Path) -> (i32, String) {
    util::run_with_deadline(&[OsStr::new("inspect"), path.as_os_str()], false)
}

/// Exit 2 or 3, and stderr names the file.
fn assert_failed_naming(path: &Path, (code, stderr): &(i32, String), what: &str) {
    assert!(
        *code == 2 || *code == 3,
        "{what}: exit {code} (expected 2 or 3); stderr:\n{stderr}"
    );
    let shown = path.display().to_string();
    assert!(
        stderr.contains(&shown),
        "{what}: exit {code}, but stderr does not name {shown}:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: a panic:\n{stderr}");
}

/// Dynamic VHDs and VHDX files cut anywhere are refused when opened: the dynamic header,
/// the BAT or a block that the BAT points to runs past the end. (A fixed VHD cut anywhere
/// loses its footer, and is then indistinguishable from a raw disk; a dynamic VHD cut by
/// exactly its 512-byte footer is still whole, and opens from the footer's copy at byte 0.)
#[test]
fn truncated_images_are_refused_naming_the_file() {
    let dir = scratch("truncated");
    for name in [
        "debian-gpt-dynamic.vhd",
        "split-gpt-dynamic.vhd",
        "debian-gpt-dynamic.vhdx",
        "debian-gpt-fixed.vhdx",
        "split-gpt-1m.vhdx",
    ] {
        let original = fs::read(vhd(name)).unwrap();
        let len = original.len() as u64;
        let mut cuts = vec![
            100,
            600,
            1500,
            70 * KIB,
            200 * KIB,
            300 * KIB,
            len / 3,
            len / 2,
            last_needed_byte(&original, name),
        ];
        if name.ends_with(".vhdx") {
            cuts.extend([MIB + 10, 2 * MIB + 100, 3 * MIB + 4096]);
        }
        for cut in cuts {
            let copy = dir.join(format!("{name}-cut-{cut}"));
            fs::write(&copy, &original[..cut as usize]).unwrap();
            let result = inspect_run(&copy);
            assert_failed_naming(&copy, &result, &format!("{name} cut at {cut}"));
            let _ = fs::remove_file(&copy);
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The last byte of the file the virtual disk needs: the end of the last block's data
/// inside the disk (the rest of a partial last block, and the footer, are not needed).
fn last_needed_byte(bytes: &[u8], name: &str) -> u64 {
    if name.ends_with(".vhdx") {
        let le16 = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
        let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let table = 192 * 1024;
        let region = |first: u8| {
            (0..le32(table + 8) as usize)
                .map(|i| table + 16 + i * 32)
                .find(|&e| bytes[e] == first)
                .map(|e| le64(e + 16) as usize)
                .unwrap()
        };
        let (bat, metadata) = (region(0x66), region(0x06));
        let item = |first: &[u8]| {
            (0..le16(metadata + 10) as usize)
                .map(|i| metadata + 32 + i * 32)
                .find(|&e| bytes[e..e + 4] == *first)
                .map(|e| metadata + le32(e + 16) as usize)
                .unwrap()
        };
        let block = u64::from(le32(item(&[0x37, 0x67, 0xA1, 0xCA])));
        let size = le64(item(&[0x24, 0x42, 0xA5, 0x2F]));
        let sector = u64::from(le32(item(&[0x1D, 0xBF, 0x41, 0x81])));
        let chunk_ratio = (1u64 << 23) * sector / block;
        return (0..size.div_ceil(block))
            .filter_map(|i| {
                let entry = le64(bat + (i + i / chunk_ratio) as usize * 8);
                (entry & 7 == 6).then(|| (entry >> 20) * MIB + block.min(size - i * block) - 1)
            })
            .max()
            .unwrap();
    }
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let be64 = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
    let size = be64(48);
    let table = be64(512 + 16) as usize;
    let block = u64::from(be32(512 + 32));
    let bitmap = (block / 512).div_ceil(8).next_multiple_of(512);
    (0..size.div_ceil(block))
        .filter_map(|i| {
            let entry = be32(table + i as usize * 4);
            (entry != u32::MAX)
                .then(|| u64::from(entry) * 512 + bitmap + block.min(size - i * block) - 1)
        })
        .max()
        .unwrap()
}

/// The byte ranges of an image that hold metadata: footers, headers, tables, the BAT.
fn metadata_areas(bytes: &[u8], name: &str) -> Vec<(u64, u64)> {
    let len = bytes.len() as u64;
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let be64 = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
    let le16 = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    if name.ends_with(".vhd") {
        let mut areas = vec![(len - 512, 512)];
        if &bytes[..8] == b"conectix" {
            let table = be64(512 + 16);
            let entries = u64::from(be32(512 + 28));
            areas.extend([(0, 512), (512, 1024), (table, entries * 4)]);
        }
        areas
    } else {
        let mut areas = vec![
            (64 * KIB, 4096),
            (128 * KIB, 4096),
            (192 * KIB, 16 + 2 * 32),
            (256 * KIB, 16 + 2 * 32),
        ];
        let table = 192 * 1024;
        for i in 0..le32(table + 8) as usize {
            let e = table + 16 + i * 32;
            let offset = le64(e + 16);
            let length = u64::from(le32(e + 24));
            if bytes[e] == 0x06 {
                // metadata: the table and the items after it
                let count = u64::from(le16(offset as usize + 10));
                areas.push((offset, 32 + count * 32));
                areas.push((offset + 64 * KIB, 64));
            } else {
                // the BAT: the entries in use
                let used = bytes[offset as usize..(offset + length) as usize]
                    .chunks(8)
                    .rposition(|e| e.iter().any(|&b| b != 0))
                    .map_or(8, |last| (last as u64 + 1) * 8);
                areas.push((offset, used));
            }
        }
        areas
    }
}

/// Seeded flips over the metadata areas of each image, patched into a private copy and
/// restored after each run; two workers. Every run must end with 0 (the damage was
/// harmless or redundant: the other header, the footer's copy), 2 or 3, never a panic or a
/// hang, and a failure must name the file.
fn mutation_rounds(test: &str, names: &[&str], rounds: u64) -> [u64; 4] {
    let dir = scratch(test);
    // (name, bytes, metadata areas)
    type Image = (String, Vec<u8>, Vec<(u64, u64)>);
    let images: Vec<Image> = names
        .iter()
        .map(|name| {
            let bytes = fs::read(vhd(name)).unwrap();
            let areas = metadata_areas(&bytes, name);
            (name.to_string(), bytes, areas)
        })
        .collect();
    let workers = 2u64;
    let tallies: Vec<[u64; 4]> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let images = &images;
                let dir = &dir;
                scope.spawn(move || {
                    let copies: Vec<(PathBuf, File)> = images
                        .iter()
                        .map(|(name, bytes, _)| {
                            let path = dir.join(format!("w{worker}-{name}"));
                            fs::write(&path, bytes).unwrap();
                            let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
                            (path, file)
                        })
                        .collect();
                    let mut tally = [0u64; 4];
                    for round in (worker..rounds).step_by(workers as usize) {
                        let mut rng = Rng(0xdead_beef_0000 ^ ((round + 1) * 0x9e37_79b9));
                        let which = rng.below_u64(images.len() as u64) as usize;
                        let (name, original, areas) = &images[which];
                        let (path, file) = &copies[which];
                        let mut touched = Vec::new();
                        for _ in 0..1 + rng.below_u64(3) {
                            let (start, len) = areas[rng.below_u64(areas.len() as u64) as usize];
                            let at = (start + rng.below_u64(len)).min(original.len() as u64 - 1);
                            let value = match rng.below_u64(3) {
                                0 => 0,
                                1 => 0xff,
                                _ => original[at as usize] ^ (1 << rng.below_u64(8)),
                            };
                            file.write_all_at(&[value], at).unwrap();
                            touched.push(at);
                        }
                        let result = files_run(path);
                        let what = format!("{name} round {round} (bytes {touched:?})");
                        match result.0 {
                            0 => tally[0] += 1,
                            2 | 3 => {
                                assert_failed_naming(path, &result, &what);
                                tally[result.0 as usize] += 1;
                            }
                            other => panic!("{what}: exit {other}; stderr:\n{}", result.1),
                        }
                        for at in touched {
                            file.write_all_at(&original[at as usize..at as usize + 1], at)
                                .unwrap();
                        }
                    }
                    tally
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let _ = fs::remove_dir_all(&dir);
    let mut total = [0u64; 4];
    for tally in tallies {
        for (sum, n) in total.iter_mut().zip(tally) {
            *sum += n;
        }
    }
    eprintln!(
        "{test}: {rounds} rounds: {} exit 0, {} exit 2, {} exit 3",
        total[0], total[2], total[3]
    );
    total
}

#[test]
fn bit_flipped_vhds_fail_cleanly() {
    let tally = mutation_rounds(
        "flipped-vhd",
        &[
            "debian-gpt-dynamic.vhd",
            "debian-gpt-fixed.vhd",
            "split-gpt-force.vhd",
        ],
        100,
    );
    assert!(
        tally[2] > 10,
        "too few refusals: damage goes unnoticed? {tally:?}"
    );
}

#[test]
fn bit_flipped_vhdx_files_fail_cleanly() {
    let tally = mutation_rounds(
        "flipped-vhdx",
        &[
            "debian-gpt-dynamic.vhdx",
            "debian-gpt-fixed.vhdx",
            "split-gpt-1m.vhdx",
        ],
        100,
    );
    assert!(
        tally[2] > 10,
        "too few refusals: damage goes unnoticed? {tally:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Refusals: a dirty log, differencing disks.
// ---------------------------------------------------------------------------------------

/// CRC-32C, bit by bit (independent of the library's table-driven one).
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Recomputes the CRC-32C of the VHDX structure of `len` bytes at `at`.
fn fix_crc(bytes: &mut [u8], at: usize, len: usize) {
    bytes[at + 4..at + 8].fill(0);
    let crc = crc32c(&bytes[at..at + len]);
    bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The VHD checksum: one's complement of the byte sum, without the field at `field`.
fn vhd_checksum(bytes: &[u8], field: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |s, (_, &b)| s.wrapping_add(u32::from(b)));
    !sum
}

fn fix_vhd_checksum(bytes: &mut [u8], at: usize, len: usize, field: usize) {
    let sum = vhd_checksum(&bytes[at..at + len], field);
    bytes[at + field..at + field + 4].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn vhdx_with_a_log_to_replay_is_refused() {
    let dir = scratch("dirty-log");
    let mut bytes = fs::read(vhd("debian-gpt-dynamic.vhdx")).unwrap();
    // The current header: the one with the higher sequence number.
    let sequence = |at: usize| u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
    let current = if sequence(128 * 1024) > sequence(64 * 1024) {
        128 * 1024
    } else {
        64 * 1024
    };
    bytes[current + 48..current + 64].copy_from_slice(b"\x01dirty-log-guid\x02");
    fix_crc(&mut bytes, current, 4096);
    let copy = dir.join("dirty.vhdx");
    fs::write(&copy, &bytes).unwrap();
    let result = inspect_run(&copy);
    assert_failed_naming(&copy, &result, "dirty log");
    assert_eq!(result.0, 2);
    assert!(
        result.1.contains("VHDX log needs replay")
            && result.1.contains("qemu-img check -r all on a copy"),
        "{}",
        result.1
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn vhd_differencing_disk_is_refused_naming_its_parent() {
    // qemu-img cannot create vpc differencing disks: make one from a dynamic disk by
    // patching the disk type (both footers) and the parent's name, fixing the checksums.
    let dir = scratch("differencing");
    let probe = crate::util::tool_command("qemu-img")
        .args(["create", "-f", "vpc", "-b", "base.vhd", "-F", "vpc"])
        .arg(dir.join("probe.vhd"))
        .output();
    if let Ok(out) = probe {
        eprintln!(
            "qemu-img create -f vpc -b: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut bytes = fs::read(vhd("debian-gpt-dynamic.vhd")).unwrap();
    let end = bytes.len() - 512;
    for at in [0, end] {
        bytes[at + 60..at + 64].copy_from_slice(&4u32.to_be_bytes());
        fix_vhd_checksum(&mut bytes, at, 512, 64);
    }
    let parent: Vec<u8> = "base.vhd"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    bytes[512 + 64..512 + 64 + parent.len()].copy_from_slice(&parent);
    fix_vhd_checksum(&mut bytes, 512, 1024, 36);
    let copy = dir.join("child.vhd");
    fs::write(&copy, &bytes).unwrap();
    let result = inspect_run(&copy);
    assert_failed_naming(&copy, &result, "differencing VHD");
    assert_eq!(result.0, 2);
    assert!(
        result
            .1
            .contains("VHD differencing disk (parent \"base.vhd\") is not supported"),
        "{}",
        result.1
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn vhdx_differencing_disk_is_refused() {
    let dir = scratch("vhdx-differencing");
    let mut bytes = fs::read(vhd("debian-gpt-1m.vhdx")).unwrap();
    // Find the file parameters item through the region and metadata tables.
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let le64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let table = 192 * 1024;
    let metadata = (0..le32(&bytes, table + 8) as usize)
        .map(|i| table + 16 + i * 32)
        .find(|&e| bytes[e..e + 4] == [0x06, 0xa2, 0x7c, 0x8b])
        .map(|e| le64(&bytes, e + 16) as usize)
        .unwrap();
    let params = (0..u16::from_le_bytes(bytes[metadata + 10..metadata + 12].try_into().unwrap())
        as usize)
        .map(|i| metadata + 32 + i * 32)
        .find(|&e| bytes[e..e + 4] == [0x37, 0x67, 0xa1, 0xca])
        .map(|e| metadata + le32(&bytes, e + 16) as usize)
        .unwrap();
    bytes[params + 4] |= 2; // HasParent
    let copy = dir.join("child.vhdx");
    fs::write(&copy, &bytes).unwrap();
    let result = inspect_run(&copy);
    assert_failed_naming(&copy, &result, "differencing VHDX");
    assert!(
        result.1.contains("VHDX differencing disk") && result.1.contains("is not supported"),
        "{}",
        result.1
    );
    let _ = fs::remove_dir_all(&dir);
}

/// A dynamic VHD whose footer at the end is damaged opens from the copy at byte 0; a fixed
/// VHD has no copy and is refused.
#[test]
fn damaged_end_footer_falls_back_to_the_copy_for_dynamic_disks_only() {
    let dir = scratch("footer-copy");
    let mut bytes = fs::read(vhd("debian-gpt-dynamic.vhd")).unwrap();
    let end = bytes.len() - 512;
    bytes[end + 100] ^= 0x40;
    let copy = dir.join("dynamic.vhd");
    fs::write(&copy, &bytes).unwrap();
    let (code, stderr) = inspect_run(&copy);
    assert_eq!(code, 0, "{stderr}");

    let mut bytes = fs::read(vhd("debian-gpt-fixed.vhd")).unwrap();
    let end = bytes.len() - 512;
    bytes[end + 100] ^= 0x40;
    let copy = dir.join("fixed.vhd");
    fs::write(&copy, &bytes).unwrap();
    let result = inspect_run(&copy);
    assert_failed_naming(&copy, &result, "fixed VHD with a bad footer checksum");
    assert!(result.1.contains("VHD footer at byte"), "{}", result.1);
    let _ = fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// Hand-built images: what qemu does not write.
// ---------------------------------------------------------------------------------------

fn open_vhd(bytes: Vec<u8>) -> Result<Opened, String> {
    amiscan::image::vhd::open_source(Arc::new(MemoryImage::new(bytes)), "t.vhd")
        .map_err(|e| e.to_string())
}

fn open_vhdx(bytes: Vec<u8>) -> Result<Opened, String> {
    amiscan::image::vhdx::open_source(Arc::new(MemoryImage::new(bytes)), "t.vhdx")
        .map_err(|e| e.to_string())
}

fn vhd_footer(disk_type: u32, data_offset: u64, size: u64) -> Vec<u8> {
    let mut f = vec![0u8; 512];
    f[..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes());
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[16..24].copy_from_slice(&data_offset.to_be_bytes());
    f[28..32].copy_from_slice(b"test");
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    f[60..64].copy_from_slice(&disk_type.to_be_bytes());
    fix_vhd_checksum(&mut f, 0, 512, 64);
    f
}

fn fixed_vhd(disk: &[u8]) -> Vec<u8> {
    let mut out = disk.to_vec();
    out.extend(vhd_footer(2, u64::MAX, disk.len() as u64));
    out
}

/// A dynamic VHD of `disk` in `block_size` blocks; `bitmap(block)` gives an allocated
/// block's sector bitmap, or `None` to leave the block unallocated.
fn dynamic_vhd(disk: &[u8], block_size: u32, bitmap: &dyn Fn(usize) -> Option<Vec<u8>>) -> Vec<u8> {
    let bs = block_size as usize;
    let blocks = disk.len().div_ceil(bs);
    let bitmap_len = (bs / 512).div_ceil(8).next_multiple_of(512);
    let table = 1536;
    let mut out = vec![0u8; table + (blocks * 4).next_multiple_of(512)];
    out[..512].copy_from_slice(&vhd_footer(3, 512, disk.len() as u64));
    let h = &mut out[512..1536];
    h[..8].copy_from_slice(b"cxsparse");
    h[8..16].fill(0xff);
    h[16..24].copy_from_slice(&(table as u64).to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&(blocks as u32).to_be_bytes());
    h[32..36].copy_from_slice(&block_size.to_be_bytes());
    fix_vhd_checksum(&mut out, 512, 1024, 36);
    out[table..].fill(0xff);
    for block in 0..blocks {
        let Some(mut map) = bitmap(block) else {
            continue;
        };
        let sector = (out.len() / 512) as u32;
        out[table + block * 4..table + block * 4 + 4].copy_from_slice(&sector.to_be_bytes());
        map.resize(bitmap_len, 0);
        out.extend(&map);
        let data = &disk[block * bs..((block + 1) * bs).min(disk.len())];
        out.extend(data);
        out.resize(out.len() + bs - data.len(), 0);
    }
    out.extend(vhd_footer(3, 512, disk.len() as u64));
    out
}

/// What a dynamic VHD built by `dynamic_vhd` must read as.
fn dynamic_vhd_expected(
    disk: &[u8],
    block_size: u32,
    bitmap: &dyn Fn(usize) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let bs = block_size as usize;
    let mut out = disk.to_vec();
    for (block, chunk) in out.chunks_mut(bs).enumerate() {
        match bitmap(block) {
            None => chunk.fill(0),
            Some(map) => {
                for (sector, data) in chunk.chunks_mut(512).enumerate() {
                    if map.get(sector / 8).copied().unwrap_or(0) & (0x80 >> (sector % 8)) == 0 {
                        data.fill(0);
                    }
                }
            }
        }
    }
    out
}

/// Some data: a pattern that differs in every sector, with zero runs.
fn test_disk(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut disk = vec![0u8; len];
    for (i, b) in disk.iter_mut().enumerate() {
        if (i / 1536) % 5 != 3 {
            *b = rng.next() as u8;
        }
    }
    disk
}

fn assert_disk_reads(disk: &dyn BlockSource, expected: &[u8], seed: u64) {
    assert_eq!(disk.len(), expected.len() as u64);
    assert_eq!(
        read_disk(disk, 0, expected.len()),
        expected,
        "the whole disk"
    );
    let mut rng = Rng(seed | 1);
    for _ in 0..300 {
        let start = rng.below_u64(expected.len() as u64) as usize;
        let len = 1 + rng.below_u64((expected.len() - start) as u64).min(20_000) as usize;
        assert!(
            read_disk(disk, start as u64, len) == expected[start..start + len],
            "{len} bytes at {start}"
        );
    }
}

#[test]
fn dynamic_vhd_honours_sector_bitmaps() {
    let disk = test_disk(300_000, 7);
    for block_size in [512u32, 4096, 65536, 2 << 20] {
        let sectors = block_size as usize / 512;
        // Block 0 all written, block 1 unallocated, block 2 none written, then mixed maps.
        let bitmap = move |block: usize| -> Option<Vec<u8>> {
            let len = sectors.div_ceil(8);
            match block % 5 {
                0 => Some(vec![0xff; len]),
                1 => None,
                2 => Some(vec![0; len]),
                3 => Some((0..len).map(|i| 0xa5u8.rotate_left(i as u32)).collect()),
                _ => Some(
                    (0..len)
                        .map(|i| if i % 3 == 0 { 0x0f } else { 0xff })
                        .collect(),
                ),
            }
        };
        let image = dynamic_vhd(&disk, block_size, &bitmap);
        let expected = dynamic_vhd_expected(&disk, block_size, &bitmap);
        let opened = open_vhd(image).unwrap();
        assert_eq!(opened.info.subformat.as_deref(), Some("dynamic"));
        assert_disk_reads(opened.disk.as_ref(), &expected, u64::from(block_size));
        // Concurrent readers see the same bytes (the bitmap states are learnt lock-free).
        let disk = Arc::clone(&opened.disk);
        std::thread::scope(|s| {
            for t in 0..4 {
                let disk = Arc::clone(&disk);
                let expected = &expected;
                s.spawn(move || assert_disk_reads(disk.as_ref(), expected, 99 + t));
            }
        });
    }
}

#[test]
fn dynamic_vhd_with_a_damaged_end_footer_opens_from_its_copy() {
    let disk = test_disk(70_000, 3);
    let all = |_: usize| Some(vec![0xffu8; 8]);
    let mut image = dynamic_vhd(&disk, 4096, &all);
    let end = image.len() - 512;
    image[end + 200] ^= 1;
    let opened = open_vhd(image.clone()).unwrap();
    assert_disk_reads(opened.disk.as_ref(), &disk, 1);
    // With both copies damaged, the error is about the footer at the end.
    image[200] ^= 1;
    let err = open_vhd(image.clone()).unwrap_err();
    assert!(
        err.starts_with(&format!("t.vhd: VHD footer at byte {end}: checksum")),
        "{err}"
    );
}

#[test]
fn hostile_vhd_fields_are_refused_before_use() {
    let disk = test_disk(64 * 1024, 5);
    let all = |_: usize| Some(vec![0xffu8; 8]);
    let good = dynamic_vhd(&disk, 4096, &all);
    open_vhd(good.clone()).unwrap();
    let end = good.len() - 512;

    // Patches header fields (fixing the checksum) and expects an error mentioning `want`.
    let header_case = |field: usize, value: &[u8], want: &str| {
        let mut image = good.clone();
        image[512 + field..512 + field + value.len()].copy_from_slice(value);
        fix_vhd_checksum(&mut image, 512, 1024, 36);
        let err = open_vhd(image).unwrap_err();
        assert!(err.starts_with("t.vhd: ") && err.contains(want), "{err}");
    };
    // A BAT of 2^32 - 1 entries of 512 bytes for a 2 TiB disk: refused, no allocation.
    {
        let mut image = good.clone();
        for at in [0, end] {
            image[at + 48..at + 56].copy_from_slice(&(u64::from(u32::MAX) * 512).to_be_bytes());
            fix_vhd_checksum(&mut image, at, 512, 64);
        }
        image[512 + 28..512 + 32].copy_from_slice(&u32::MAX.to_be_bytes());
        image[512 + 32..512 + 36].copy_from_slice(&512u32.to_be_bytes());
        fix_vhd_checksum(&mut image, 512, 1024, 36);
        let err = open_vhd(image).unwrap_err();
        assert!(
            err.contains("VHD BAT at byte 1536") && err.contains("past the end"),
            "{err}"
        );
    }
    header_case(32, &3000u32.to_be_bytes(), "not a power of two");
    header_case(32, &(512u32 << 20).to_be_bytes(), "not a power of two");
    header_case(
        28,
        &3u32.to_be_bytes(),
        "covers less than the disk's virtual size",
    );
    header_case(16, &u64::MAX.to_be_bytes(), "run past the end");
    header_case(0, b"cxsparsX", "no \"cxsparse\" cookie");
    header_case(24, &0x0002_0000u32.to_be_bytes(), "header version");

    // A BAT entry pointing past the end of the file.
    let mut image = good.clone();
    image[1536 + 8..1536 + 12].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
    let err = open_vhd(image).unwrap_err();
    assert!(
        err.starts_with("t.vhd: VHD BAT entry 2 at byte 1544: block 2 at byte"),
        "{err}"
    );

    // Footer data offsets outside the file.
    for offset in [0u64, 100, u64::MAX - 10, good.len() as u64] {
        let mut image = good.clone();
        for at in [0, end] {
            image[at + 16..at + 24].copy_from_slice(&offset.to_be_bytes());
            fix_vhd_checksum(&mut image, at, 512, 64);
        }
        let err = open_vhd(image).unwrap_err();
        assert!(err.contains("data offset"), "{err}");
    }

    // A fixed disk larger than its file.
    let mut image = fixed_vhd(&disk);
    let end = image.len() - 512;
    image[end + 48..end + 56].copy_from_slice(&(1u64 << 40).to_be_bytes());
    fix_vhd_checksum(&mut image, end, 512, 64);
    let err = open_vhd(image).unwrap_err();
    assert!(err.contains("current size"), "{err}");
}

/// How a hand-built VHDX is laid out, for tests that damage it.
struct VhdxLayout {
    bat: usize,
    metadata: usize,
}

enum Payload {
    /// A block that reads as zeros, in this state (0, 1, 2, 3 or 5), or an invalid state.
    State(u64),
    /// A present block: its bytes (the whole block, or the disk's tail for the last one).
    Data,
}

const BAT_GUID: [u8; 16] = [
    0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08,
];
const METADATA_GUID: [u8; 16] = [
    0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E,
];
const FILE_PARAMETERS_GUID: [u8; 16] = [
    0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B,
];
const DISK_SIZE_GUID: [u8; 16] = [
    0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8,
];
const PAGE_83_GUID: [u8; 16] = [
    0xAB, 0x12, 0xCA, 0xBE, 0xE6, 0xB2, 0x23, 0x45, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46,
];
const LOGICAL_SECTOR_GUID: [u8; 16] = [
    0x1D, 0xBF, 0x41, 0x81, 0x6F, 0xA9, 0x09, 0x47, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F,
];
const PHYSICAL_SECTOR_GUID: [u8; 16] = [
    0xC7, 0x48, 0xA3, 0xCD, 0x5D, 0x44, 0x71, 0x44, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56,
];

/// Builds a VHDX in memory: the header section, the BAT at 320 KiB, the metadata region
/// after it, and present blocks at the next MiB boundaries. `disk` gives present blocks
/// their bytes; `payload(block)` says which blocks are present.
fn build_vhdx(
    disk: &[u8],
    size: u64,
    block_size: u32,
    logical_sector: u32,
    fixed: bool,
    payload: &dyn Fn(u64) -> Payload,
) -> (Vec<u8>, VhdxLayout) {
    let bs = u64::from(block_size);
    let chunk_ratio = (1u64 << 23) * u64::from(logical_sector) / bs;
    let blocks = size.div_ceil(bs);
    let entries = if blocks == 0 {
        0
    } else {
        blocks + (blocks - 1) / chunk_ratio
    };
    let bat = 320 * KIB as usize;
    let bat_len = (entries as usize * 8)
        .next_multiple_of(64 * 1024)
        .max(64 * 1024);
    let metadata = bat + bat_len;
    let metadata_len = 128 * 1024;
    let mut out = vec![0u8; (metadata + metadata_len).next_multiple_of(MIB as usize)];
    out[..8].copy_from_slice(b"vhdxfile");
    for (i, at) in [64 * 1024usize, 128 * 1024].into_iter().enumerate() {
        out[at..at + 4].copy_from_slice(b"head");
        out[at + 8..at + 16].copy_from_slice(&(10 + i as u64).to_le_bytes());
        out[at + 16..at + 48].fill(0x5a + i as u8);
        out[at + 66..at + 68].copy_from_slice(&1u16.to_le_bytes());
        fix_crc(&mut out, at, 4096);
    }
    for at in [192 * 1024usize, 256 * 1024] {
        out[at..at + 4].copy_from_slice(b"regi");
        out[at + 8..at + 12].copy_from_slice(&2u32.to_le_bytes());
        for (i, (id, offset, len)) in [
            (BAT_GUID, bat, bat_len),
            (METADATA_GUID, metadata, metadata_len),
        ]
        .into_iter()
        .enumerate()
        {
            let e = at + 16 + i * 32;
            out[e..e + 16].copy_from_slice(&id);
            out[e + 16..e + 24].copy_from_slice(&(offset as u64).to_le_bytes());
            out[e + 24..e + 28].copy_from_slice(&(len as u32).to_le_bytes());
            out[e + 28..e + 32].copy_from_slice(&1u32.to_le_bytes());
        }
        fix_crc(&mut out, at, 64 * 1024);
    }
    out[metadata..metadata + 8].copy_from_slice(b"metadata");
    out[metadata + 10..metadata + 12].copy_from_slice(&5u16.to_le_bytes());
    let items: [([u8; 16], Vec<u8>, u32); 5] = [
        (
            FILE_PARAMETERS_GUID,
            [block_size.to_le_bytes(), u32::from(fixed).to_le_bytes()].concat(),
            4,
        ),
        (DISK_SIZE_GUID, size.to_le_bytes().to_vec(), 6),
        (PAGE_83_GUID, vec![0x83; 16], 6),
        (
            LOGICAL_SECTOR_GUID,
            logical_sector.to_le_bytes().to_vec(),
            6,
        ),
        (PHYSICAL_SECTOR_GUID, 4096u32.to_le_bytes().to_vec(), 6),
    ];
    let mut item_at = 64 * 1024;
    for (i, (id, value, flags)) in items.into_iter().enumerate() {
        let e = metadata + 32 + i * 32;
        out[e..e + 16].copy_from_slice(&id);
        out[e + 16..e + 20].copy_from_slice(&(item_at as u32).to_le_bytes());
        out[e + 20..e + 24].copy_from_slice(&(value.len() as u32).to_le_bytes());
        out[e + 24..e + 28].copy_from_slice(&flags.to_le_bytes());
        out[metadata + item_at..metadata + item_at + value.len()].copy_from_slice(&value);
        item_at += value.len();
    }
    for block in 0..blocks {
        let index = (block + block / chunk_ratio) as usize;
        let entry = match payload(block) {
            Payload::State(state) => state,
            Payload::Data => {
                let at = out.len().next_multiple_of(MIB as usize);
                out.resize(at, 0);
                let first = (block * bs) as usize;
                let last = (first + block_size as usize).min(size as usize);
                out.extend(&disk[first..last]);
                ((at as u64 / MIB) << 20) | 6
            }
        };
        out[bat + index * 8..bat + index * 8 + 8].copy_from_slice(&entry.to_le_bytes());
    }
    // Sector bitmap entries are not used by a disk without a parent: make them nonsense.
    for chunk in 1..=(entries / (chunk_ratio + 1)) {
        let index = (chunk * (chunk_ratio + 1) - 1) as usize;
        out[bat + index * 8..bat + index * 8 + 8]
            .copy_from_slice(&((0xfff_ffffu64 << 20) | 7).to_le_bytes());
    }
    (out, VhdxLayout { bat, metadata })
}

/// The disk a VHDX built by `build_vhdx` must read as.
fn vhdx_expected(
    disk: &[u8],
    size: u64,
    block_size: u32,
    payload: &dyn Fn(u64) -> Payload,
) -> Vec<u8> {
    let mut out = disk[..size as usize].to_vec();
    for (block, chunk) in out.chunks_mut(block_size as usize).enumerate() {
        if !matches!(payload(block as u64), Payload::Data) {
            chunk.fill(0);
        }
    }
    out
}

#[test]
fn vhdx_with_4k_sectors_reads_past_its_sector_bitmap_entries() {
    // 4096-byte sectors and 1 MiB blocks: a chunk is 32768 blocks (32 GiB). The disk is two
    // chunks and a partial block; data around both chunk boundaries, every zero state
    // elsewhere. Only the blocks with data are materialised in memory.
    let block = MIB as u32;
    let size = (2 * 32768 + 1) * MIB + 8192;
    let present = [0u64, 32767, 32768, 65535, 65536, 65537];
    let payload = move |b: u64| {
        if present.contains(&b) {
            Payload::Data
        } else {
            Payload::State([0, 1, 2, 3, 5][(b % 5) as usize])
        }
    };
    // Only the present blocks' bytes are held in memory.
    let mut disk_parts = std::collections::BTreeMap::new();
    for &b in &present {
        let len = MIB.min(size - b * MIB) as usize;
        disk_parts.insert(b, test_disk(len, b + 1));
    }
    let image = build_vhdx_sparse(size, block, 4096, &payload, &disk_parts);
    let opened = open_vhdx(image).unwrap();
    let disk = opened.disk;
    assert_eq!(disk.len(), size);
    for (&b, data) in &disk_parts {
        assert!(
            read_disk(disk.as_ref(), b * MIB, data.len()) == *data,
            "block {b}"
        );
    }
    // Straddling each boundary between a present block and the next.
    for &b in &present {
        let at = (b + 1) * MIB - 5000;
        if at + 10_000 > size {
            continue;
        }
        let got = read_disk(disk.as_ref(), at, 10_000);
        let mut want = vec![0u8; 10_000];
        if let Some(data) = disk_parts.get(&b) {
            want[..5000].copy_from_slice(&data[data.len() - 5000..]);
        }
        if let Some(data) = disk_parts.get(&(b + 1)) {
            want[5000..].copy_from_slice(&data[..5000]);
        }
        assert!(got == want, "around the end of block {b}");
    }
    // Zero blocks in every state read as zeros.
    for b in [1u64, 2, 3, 4, 5, 40000] {
        assert_eq!(
            read_disk(disk.as_ref(), b * MIB + 7, 4096),
            vec![0u8; 4096],
            "block {b}"
        );
    }
}

/// `build_vhdx` for disks too large to hold in memory: present blocks come from `parts`.
fn build_vhdx_sparse(
    size: u64,
    block_size: u32,
    logical_sector: u32,
    payload: &dyn Fn(u64) -> Payload,
    parts: &std::collections::BTreeMap<u64, Vec<u8>>,
) -> Vec<u8> {
    // Built with no data (present blocks marked ZERO), then each present block is
    // appended and its BAT entry pointed at it.
    let bs = u64::from(block_size);
    let chunk_ratio = (1u64 << 23) * u64::from(logical_sector) / bs;
    let zero_payload = |b: u64| match payload(b) {
        Payload::Data => Payload::State(2),
        other => other,
    };
    let (mut out, layout) = build_vhdx(&[], size, block_size, logical_sector, false, &zero_payload);
    for (&b, data) in parts {
        let at = out.len().next_multiple_of(MIB as usize);
        out.resize(at, 0);
        out.extend(data);
        let index = (b + b / chunk_ratio) as usize;
        let entry = (((at as u64) / MIB) << 20) | 6;
        out[layout.bat + index * 8..layout.bat + index * 8 + 8]
            .copy_from_slice(&entry.to_le_bytes());
    }
    out
}

#[test]
fn small_vhdx_reads_in_every_state_and_subformat() {
    let size = 5 * MIB + 1536;
    let disk = test_disk(size as usize, 11);
    for fixed in [false, true] {
        let payload = |b: u64| match b {
            0 | 3 | 5 => Payload::Data,
            1 => Payload::State(0),
            2 => Payload::State(2),
            _ => Payload::State(3),
        };
        let (image, _) = build_vhdx(&disk, size, MIB as u32, 512, fixed, &payload);
        let opened = open_vhdx(image).unwrap();
        let want = if fixed { "fixed" } else { "dynamic" };
        assert_eq!(opened.info.subformat.as_deref(), Some(want));
        let expected = vhdx_expected(&disk, size, MIB as u32, &payload);
        assert_disk_reads(opened.disk.as_ref(), &expected, 17);
    }
}

#[test]
fn hostile_vhdx_fields_are_refused_before_use() {
    let size = 3 * MIB;
    let disk = test_disk(size as usize, 13);
    let all = |_: u64| Payload::Data;
    let (good, layout) = build_vhdx(&disk, size, MIB as u32, 512, false, &all);
    open_vhdx(good.clone()).unwrap();
    let items = layout.metadata + 64 * 1024;
    let expect = |image: Vec<u8>, want: &str| {
        let err = open_vhdx(image).unwrap_err();
        assert!(
            err.starts_with("t.vhdx: ") && err.contains(want),
            "{err}\n(wanted {want:?})"
        );
    };

    // Payload block states: 4 is invalid, 7 only for differencing disks, present blocks
    // past the end of the file or inside the header section.
    for (entry, want) in [
        (
            4u64,
            "VHDX BAT entry 1 at byte 327688: payload block 1 has the invalid state 4",
        ),
        (
            7,
            "VHDX BAT entry 1 at byte 327688: payload block 1 is PARTIALLY_PRESENT",
        ),
        (
            (1 << 20) | 6,
            "VHDX BAT entry 1 at byte 327688: payload block 1 at byte 1048576",
        ),
        (6, "does not lie between the header section and the end"),
        ((0xfff_ffff_ffff << 20) | 6, "(truncated?)"),
    ] {
        let mut image = good.clone();
        image[layout.bat + 8..layout.bat + 16].copy_from_slice(&entry.to_le_bytes());
        if entry == (1 << 20) | 6 {
            // Points inside the file: fine (it is block 0's data). Cut the file instead.
            let cut = image.len() - 10;
            image.truncate(cut);
            expect(image, "VHDX BAT entry 2");
            continue;
        }
        expect(image, want);
    }

    // The virtual size: a 64 TiB disk needs a BAT far larger than the region (no huge
    // allocation is attempted); more than 64 TiB is refused outright.
    let with_size = |value: u64| {
        let mut image = good.clone();
        image[items + 8..items + 16].copy_from_slice(&value.to_le_bytes());
        image
    };
    expect(
        with_size(64 << 40),
        "the BAT region of 65536 bytes is too small",
    );
    expect(with_size(u64::MAX), "more than the format's 64 TiB");
    // Block size and sector sizes.
    let with_item = |at: usize, value: &[u8]| {
        let mut image = good.clone();
        image[items + at..items + at + value.len()].copy_from_slice(value);
        image
    };
    expect(
        with_item(0, &(3 * MIB as u32).to_le_bytes()),
        "block size 3145728",
    );
    expect(
        with_item(0, &(512 * MIB as u32).to_le_bytes()),
        "block size",
    );
    expect(with_item(0, &4096u32.to_le_bytes()), "block size 4096");
    expect(
        with_item(4, &2u32.to_le_bytes()),
        "VHDX differencing disk (parent unknown)",
    );
    expect(
        with_item(32, &520u32.to_le_bytes()),
        "logical sector size at byte",
    );
    expect(
        with_item(36, &1000u32.to_le_bytes()),
        "physical sector size at byte",
    );

    // Metadata table entries: an item outside the region, a duplicate, an unknown required
    // item, a wrong length, and too many entries.
    let entry = |i: usize| layout.metadata + 32 + i * 32;
    let mut image = good.clone();
    image[entry(1) + 16..entry(1) + 20].copy_from_slice(&u32::MAX.to_le_bytes());
    expect(image, "VHDX metadata entry 1 at byte");
    let mut image = good.clone();
    image.copy_within(entry(0)..entry(0) + 16, entry(2));
    expect(image, "a second file parameters item");
    let mut image = good.clone();
    image[entry(2)] ^= 0xff;
    expect(image, "(marked required) is not supported");
    let mut image = good.clone();
    image[entry(2)] ^= 0xff;
    image[entry(2) + 24] = 0; // not required: ignored
    open_vhdx(image).unwrap();
    let mut image = good.clone();
    image[entry(1) + 20] = 4;
    expect(image, "virtual disk size item at byte");
    let mut image = good.clone();
    image[layout.metadata + 10..layout.metadata + 12].copy_from_slice(&u16::MAX.to_le_bytes());
    expect(image, "65535 entries");
    let mut image = good.clone();
    image[layout.metadata] = b'M';
    expect(image, "no \"metadata\" signature");

    // Region tables: an unknown required region, a region inside the header section or
    // past the end of the file, a duplicate, a missing one. Both tables are patched.
    let regions = |patch: &dyn Fn(&mut [u8])| {
        let mut image = good.clone();
        for at in [192 * 1024usize, 256 * 1024] {
            patch(&mut image[at..at + 64 * 1024]);
            fix_crc(&mut image, at, 64 * 1024);
        }
        image
    };
    expect(
        regions(&|t| t[16] ^= 0xff),
        "(marked required) is not supported",
    );
    open_vhdx(regions(&|t| {
        t[8] = 3;
        t[80..96].fill(0x77);
    }))
    .unwrap_or_else(|e| panic!("an optional unknown region must be ignored: {e}"));
    expect(
        regions(&|t| {
            t[8] = 3;
            t[80..96].fill(0x77);
            t[108] = 1;
        }),
        "the VHDX region 77777777-7777-7777-7777-777777777777 (marked required) is not",
    );
    expect(
        regions(&|t| t[32..40].copy_from_slice(&4096u64.to_le_bytes())),
        "BAT region at byte 4096",
    );
    expect(
        regions(&|t| t[32..40].copy_from_slice(&(1u64 << 50).to_le_bytes())),
        "VHDX BAT at byte 1125899906842624",
    );
    expect(
        regions(&|t| t.copy_within(16..32, 48)),
        "a second BAT region",
    );
    expect(regions(&|t| t[8] = 1), "no metadata region");
    expect(
        regions(&|t| t[8..12].copy_from_slice(&5000u32.to_le_bytes())),
        "5000 entries",
    );

    // One damaged table: the other is used. Both: refused.
    let mut image = good.clone();
    image[192 * 1024 + 40] ^= 1;
    open_vhdx(image.clone()).unwrap();
    image[256 * 1024 + 40] ^= 1;
    expect(image, "neither region table is valid");

    // Headers: the valid one with the higher sequence number is current.
    let mut image = good.clone();
    image[128 * 1024 + 48] = 1; // header 2 (sequence 11) gets a log GUID
    fix_crc(&mut image, 128 * 1024, 4096);
    expect(
        image.clone(),
        "VHDX log needs replay (header 2 at byte 131072",
    );
    image[128 * 1024 + 100] ^= 1; // ... and then a bad CRC: header 1 is used
    open_vhdx(image.clone()).unwrap();
    image[64 * 1024 + 100] ^= 1;
    expect(image, "neither header is valid");
    let mut image = good.clone();
    image[64 * 1024 + 66] = 2;
    fix_crc(&mut image, 64 * 1024, 4096);
    image[128 * 1024] = b'H';
    expect(image, "version 2 (expected 1)");

    // Not even the identifier, or too short for the headers.
    let mut image = good.clone();
    image[3] = b'X';
    expect(image, "no \"vhdxfile\" signature");
    expect(good[..100 * 1024].to_vec(), "neither region table is valid");
    expect(good[..4].to_vec(), "VHDX file identifier at byte 0");
}

// ---------------------------------------------------------------------------------------
// The fuzz corpora, replayed; seeded mutations of the seeds in memory.
// ---------------------------------------------------------------------------------------

/// What the fuzz targets do: open, then read the virtual disk in 64 KiB chunks (at most
/// 64 MiB). Returns the bytes read.
fn exercise(format: &str, bytes: &[u8]) -> u64 {
    let source: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(bytes.to_vec()));
    let opened = match format {
        "vhd" => amiscan::image::vhd::open_source(source, "fuzz.vhd"),
        _ => amiscan::image::vhdx::open_source(source, "fuzz.vhdx"),
    };
    let Ok(opened) = opened else {
        return 0;
    };
    let disk = opened.disk;
    let end = disk.len().min(64 * MIB);
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    let mut read = 0;
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        if disk.read_exact_at(at, &mut buf[..n]).is_ok() {
            read += n as u64;
        }
        at += n as u64;
    }
    read
}

fn corpus(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut inputs: Vec<_> = fs::read_dir(manifest_dir().join("fuzz/corpus").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

/// Runs `exercise` on its own thread: a panic is reported with its input, a hang fails
/// after the deadline.
fn must_return(what: &str, format: &'static str, bytes: Vec<u8>) -> u64 {
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| exercise(format, &bytes));
        let _ = done.send(result.ok());
    });
    match wait.recv_timeout(DEADLINE) {
        Ok(Some(read)) => read,
        Ok(None) => panic!("{what}: the {format} reader panicked"),
        Err(_) => panic!("{what}: did not return within {DEADLINE:?} (hang?)"),
    }
}

fn replay(format: &'static str) {
    let inputs = corpus(format);
    assert!(inputs.len() >= 3, "fuzz/corpus/{format}: seeds missing");
    let mut opened = 0;
    for (path, bytes) in &inputs {
        let name = path.file_name().unwrap().to_string_lossy();
        let read = must_return(&path.display().to_string(), format, bytes.clone());
        if !name.starts_with("found-") {
            assert!(read > 0, "{}: a seed must open and read", path.display());
            opened += 1;
        }
    }
    assert!(opened >= 3, "fuzz/corpus/{format}: too few seeds");
    // Seeded damage of each seed: flips anywhere, and cuts.
    for (path, original) in inputs.iter().filter(|(p, _)| {
        !p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("found-")
    }) {
        let mut rng = Rng(0x0f00_d000 ^ original.len() as u64);
        for round in 0..150 {
            let mut bytes = original.clone();
            if round % 5 == 4 {
                bytes.truncate(rng.below_u64(bytes.len() as u64) as usize);
            } else {
                for _ in 0..1 + rng.below_u64(8) {
                    // Mostly in the first 512 KiB and the last 512 bytes, where the tables are.
                    let at = match rng.below_u64(4) {
                        0 => bytes.len() as u64 - 1 - rng.below_u64(512u64.min(bytes.len() as u64)),
                        _ => rng.below_u64((bytes.len() as u64).min(512 * KIB)),
                    } as usize;
                    bytes[at] = match rng.below_u64(3) {
                        0 => 0,
                        1 => 0xff,
                        _ => rng.next() as u8,
                    };
                }
            }
            must_return(&format!("{} round {round}", path.display()), format, bytes);
        }
    }
}

#[test]
fn vhd_fuzz_corpus_replays() {
    replay("vhd");
}

#[test]
fn vhdx_fuzz_corpus_replays() {
    replay("vhdx");
}

/// Writes the fuzz seeds under fuzz/corpus/vhd and fuzz/corpus/vhdx, from a 1 MiB raw disk
/// with some data: `cargo test --test integration -- --ignored vhd::write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let mut raw = vec![0u8; MIB as usize];
    let mut rng = Rng(20_261_122);
    for start in [0usize, 4096, 70_000, 300_001, 700_000, MIB as usize - 600] {
        for b in &mut raw[start..start + 500] {
            *b = rng.next() as u8;
        }
    }
    raw[510] = 0x55;
    raw[511] = 0xaa;
    let dir = manifest_dir().join("fuzz/corpus");
    fs::create_dir_all(dir.join("vhd")).unwrap();
    fs::create_dir_all(dir.join("vhdx")).unwrap();
    // Fixed: the first 64 KiB (a fixed VHD is the raw disk plus a footer).
    fs::write(dir.join("vhd/fixed-64k"), fixed_vhd(&raw[..64 * 1024])).unwrap();
    // Dynamic, 4 KiB blocks: only blocks with data allocated, some bitmaps mixed.
    let data_blocks = |bs: usize| {
        let raw = raw.clone();
        move |block: usize| raw[block * bs..(block + 1) * bs].iter().any(|&b| b != 0)
    };
    let has4k = data_blocks(4096);
    let image = dynamic_vhd(&raw, 4096, &|b| {
        has4k(b).then(|| vec![if b % 3 == 0 { 0xf0 } else { 0xff }])
    });
    fs::write(dir.join("vhd/dynamic-4k"), image).unwrap();
    let has64k = data_blocks(65536);
    let image = dynamic_vhd(&raw, 65536, &|b| {
        if has64k(b) {
            Some(vec![0xff; 16])
        } else {
            None
        }
    });
    fs::write(dir.join("vhd/dynamic-64k"), image).unwrap();
    // VHDX: 64 KiB of the raw disk in one partial 1 MiB block; 512- and 4096-byte sectors;
    // one with the sector bitmap entry between payload entries (a disk past 32 GiB).
    let size = 64 * KIB;
    let (image, _) = build_vhdx(&raw, size, MIB as u32, 512, false, &|_| Payload::Data);
    fs::write(dir.join("vhdx/dynamic-512"), image).unwrap();
    let (image, _) = build_vhdx(&raw, size, MIB as u32, 4096, true, &|_| Payload::Data);
    fs::write(dir.join("vhdx/fixed-4096"), image).unwrap();
    let mut parts = std::collections::BTreeMap::new();
    parts.insert(32768u64, raw[..64 * 1024].to_vec());
    let image = build_vhdx_sparse(
        32768 * MIB + 64 * KIB,
        MIB as u32,
        4096,
        &|b| {
            if b == 32768 {
                Payload::Data
            } else {
                Payload::State(b % 4)
            }
        },
        &parts,
    );
    fs::write(dir.join("vhdx/interleaved-4096"), image).unwrap();
    for sub in ["vhd", "vhdx"] {
        for (path, bytes) in corpus(sub) {
            eprintln!("{}: {} bytes", path.display(), bytes.len());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Throughput, against qemu-img: `cargo test --release --test integration -- --ignored
// --nocapture vhd::throughput` (needs target/bench-images/walk.img from `cargo bench --bench walk`).
// ---------------------------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Reads the whole virtual disk in 1 MiB chunks on `threads` rayon workers; seconds.
fn read_all(path: &Path, threads: usize) -> f64 {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let started = Instant::now();
    let disk = open_image(path).unwrap().disk;
    let chunks = disk.len().div_ceil(MIB);
    let checksum: u64 = pool.install(|| {
        (0..chunks)
            .into_par_iter()
            .map_init(
                || vec![0u8; MIB as usize],
                |buf, chunk| {
                    let at = chunk * MIB;
                    let len = MIB.min(disk.len() - at) as usize;
                    disk.read_exact_at(at, &mut buf[..len]).unwrap();
                    u64::from(buf[0]) + u64::from(buf[len - 1])
                },
            )
            .sum()
    });
    std::hint::black_box(checksum);
    started.elapsed().as_secs_f64()
}

fn qemu_convert(path: &Path, format: &str, out: &Path) -> f64 {
    let started = Instant::now();
    let status = crate::util::tool_command("qemu-img")
        .args(["convert", "-f", format, "-O", "raw"])
        .arg(path)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
    let elapsed = started.elapsed().as_secs_f64();
    let _ = fs::remove_file(out);
    elapsed
}

/// `qemu-img bench`: the same 1 MiB reads through qemu's block layer, without writing
/// anything; the seconds it reports.
fn qemu_bench(path: &Path, format: &str, size: u64) -> f64 {
    let out = crate::util::tool_command("qemu-img")
        .args(["bench", "-f", format, "-s", "1M", "-d", "1", "-c"])
        .arg((size / MIB).to_string())
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("Run completed in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("unexpected qemu-img bench output: {text}"))
}

#[test]
#[ignore]
fn throughput() {
    let bench = manifest_dir().join("target/bench-images");
    let walk = bench.join("walk.img");
    assert!(
        walk.is_file(),
        "{} is missing: run cargo bench --bench walk",
        walk.display()
    );
    let size = fs::metadata(&walk).unwrap().len();
    let out = std::env::temp_dir().join(format!("amiscan-vhd-bench-{}.raw", std::process::id()));
    for (name, format, options) in [
        ("walk-dynamic.vhd", "vpc", "subformat=dynamic"),
        ("walk-dynamic.vhdx", "vhdx", "subformat=dynamic"),
    ] {
        let path = bench.join(name);
        if !path.is_file() {
            let status = crate::util::tool_command("qemu-img")
                .args(["convert", "-f", "raw", "-O", format, "-o", options])
                .arg(&walk)
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success());
        }
        // Warm the page cache.
        let _ = fs::read(&path).unwrap();
        let runs = 5;
        let one = median((0..runs).map(|_| read_all(&path, 1)).collect());
        let two = median((0..runs).map(|_| read_all(&path, 2)).collect());
        let qemu = median(
            (0..runs)
                .map(|_| qemu_convert(&path, format, &out))
                .collect(),
        );
        let bench = median((0..runs).map(|_| qemu_bench(&path, format, size)).collect());
        let mib = size as f64 / MIB as f64;
        eprintln!(
            "{name} ({} MiB file, {mib:.0} MiB virtual): amiscan 1 thread {one:.3} s \
             ({:.0} MiB/s), 2 threads {two:.3} s ({:.0} MiB/s); qemu-img convert -O raw \
             {qemu:.3} s ({:.0} MiB/s); qemu-img bench (1 MiB reads) {bench:.3} s \
             ({:.0} MiB/s) [medians of {runs}]",
            fs::metadata(&path).unwrap().len() / MIB,
            mib / one,
            mib / two,
            mib / qemu,
            mib / bench
        );
    }
}

/// The virtual size qemu-img gives a VHD (`qemu-img info -f vpc`), which follows the
/// footer's creator application: Virtual PC ("vpc ") and qemu's default ("qemu") size a
/// disk by its CHS geometry, Hyper-V ("win "), Azure and qemu's force_size ("qem2") by the
/// current size, and a disk whose geometry is at its maximum by the current size too.
/// qemu-img made each disk; the footer's creator and current size are edited (both copies,
/// checksums recomputed). amiscan took the current size every time.
#[test]
fn virtual_size_follows_the_creator_as_qemu_does() {
    let dir = scratch("creator-size");
    let qemu_size = |path: &Path| -> u64 {
        let out = crate::util::tool_command("qemu-img")
            .args(["info", "--output=json", "-f", "vpc"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        info["virtual-size"].as_u64().unwrap()
    };
    for subformat in ["fixed", "dynamic"] {
        let made = dir.join(format!("{subformat}.vhd"));
        let status = crate::util::tool_command("qemu-img")
            .args(["create", "-q", "-f", "vpc", "-o"])
            .arg(format!("subformat={subformat}"))
            .arg(&made)
            .arg("100M")
            .status()
            .unwrap();
        assert!(status.success());
        let original = fs::read(&made).unwrap();
        let end = original.len() - 512;
        assert_eq!(&original[end + 28..end + 32], b"qemu");
        let chs = u64::from(u16::from_be_bytes([original[end + 56], original[end + 57]]))
            * u64::from(original[end + 58])
            * u64::from(original[end + 59])
            * 512;
        // A current size other than the geometry's: smaller for the fixed disk (the bytes
        // are there either way), one 2 MiB block larger for the dynamic one (its BAT has
        // room for it).
        let current = match subformat {
            "fixed" => 100 << 20,
            _ => chs.next_multiple_of(2 << 20),
        };
        assert_ne!(current, chs);
        let copies: &[usize] = if subformat == "fixed" {
            &[end]
        } else {
            &[0, end]
        };
        for (creator, geometry, expected) in [
            (*b"vpc ", None, chs),
            (*b"qemu", None, chs),
            (*b"win ", None, current),
            (*b"qem2", None, current),
            (*b"vpc ", Some([0xFF, 0xFF, 16, 255]), current),
        ] {
            let mut bytes = original.clone();
            for &at in copies {
                bytes[at + 28..at + 32].copy_from_slice(&creator);
                bytes[at + 48..at + 56].copy_from_slice(&current.to_be_bytes());
                if let Some(geometry) = geometry {
                    bytes[at + 56..at + 60].copy_from_slice(&geometry);
                }
                fix_vhd_checksum(&mut bytes, at, 512, 64);
            }
            let shown = String::from_utf8_lossy(&creator).trim().to_string();
            let case = format!("{subformat}-{shown}-{}", geometry.is_some());
            let path = dir.join(format!("{case}.vhd"));
            fs::write(&path, &bytes).unwrap();
            assert_eq!(qemu_size(&path), expected, "{case}: qemu-img");
            let (run, report) = inspect_json(&path);
            assert_ne!(run.code, 2, "{case}: {}", run.stderr);
            assert_eq!(
                report["image"]["virtual_size"], expected,
                "{case}: {report:#}"
            );
            // When the footer's sizes disagree, inspect says which one it took.
            let subformat_shown = report["image"]["subformat"].as_str().unwrap().to_string();
            assert_eq!(
                subformat_shown.contains("CHS geometry"),
                expected == chs,
                "{case}: {subformat_shown}"
            );
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The checksum policy: qemu-img's VHD (footers and dynamic header) and VHDX (both
/// headers) with their checksums broken are refused when verified, the default; opened
/// with `ChecksumPolicy::Ignore` they read exactly as the intact images do, and say how
/// many mismatches were let through, so the caller can report the reading incomplete.
#[test]
fn container_checksums_follow_the_policy() {
    use amiscan::checksums::ChecksumPolicy;
    use amiscan::image::{open_image_with, CorruptKind, OpenError};

    let dir = scratch("checksum-policy");
    let raw = dir.join("disk.raw");
    let mut rng = Rng(0xc5c);
    let data: Vec<u8> = (0..4 << 20).map(|_| rng.next() as u8).collect();
    fs::write(&raw, &data).unwrap();
    // (format, file, checksum fields to break, mismatches then let through)
    let vhd_end = |path: &Path| fs::metadata(path).unwrap().len() as usize - 512;
    for (format, name) in [("vpc", "disk.vhd"), ("vhdx", "disk.vhdx")] {
        let image = dir.join(name);
        let status = crate::util::tool_command("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", format])
            .arg(&raw)
            .arg(&image)
            .status()
            .unwrap();
        assert!(status.success());
        let intact = {
            let d = open_image(&image).unwrap().disk;
            read_disk(d.as_ref(), 0, d.len() as usize)
        };
        let mut bytes = fs::read(&image).unwrap();
        let (fields, expected): (Vec<usize>, u64) = if format == "vpc" {
            let end = vhd_end(&image);
            let header = u64::from_be_bytes(bytes[16..24].try_into().unwrap()) as usize;
            (vec![64, end + 64, header + 36], 2)
        } else {
            (vec![64 * 1024 + 4, 128 * 1024 + 4], 2)
        };
        for at in fields {
            bytes[at] ^= 0x5a;
        }
        let broken = dir.join(format!("broken-{name}"));
        fs::write(&broken, &bytes).unwrap();
        match open_image(&broken) {
            Err(OpenError::Container(e)) => {
                assert_eq!(e.corrupt_kind(), Some(CorruptKind::Checksum), "{e}")
            }
            other => panic!("{name}: expected a checksum error, got {other:?}"),
        }
        let verified = open_image_with(&broken, ChecksumPolicy::Verify);
        assert!(verified.is_err(), "{name}: verified by default");
        let opened = open_image_with(&broken, ChecksumPolicy::Ignore).unwrap();
        assert_eq!(opened.info.checksums_ignored, expected, "{name}");
        assert!(
            read_disk(opened.disk.as_ref(), 0, intact.len()) == intact,
            "{name}: bytes differ"
        );
        // The intact image lets nothing through.
        let clean = open_image_with(&image, ChecksumPolicy::Ignore).unwrap();
        assert_eq!(clean.info.checksums_ignored, 0, "{name}");
    }
    let _ = fs::remove_dir_all(&dir);
}
