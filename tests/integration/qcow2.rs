//! qcow2 images made by qemu-img (testdata/build-qcow2.sh): each variant's virtual disk,
//! read through amiscan, must equal `qemu-img convert -O raw` of it byte for byte, and its
//! inventory must equal the source trees of the image it was made from. Damaged and
//! hostile images must fail cleanly, naming the file, within a deadline.

use crate::util;

use util::Rng;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiscan::image::{open_image, qcow2, BlockSource, ContainerFormat, MemoryImage};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use util::{assert_inventory_matches, build_dir, hex, inspect_json, manifest_dir, source, Fs};

/// Generous for a debug build on a loaded 2-core machine; a hang runs forever.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Building and locating the images.
// ---------------------------------------------------------------------------------------

/// Builds the qcow2 images (once per process; instant when the stamp is current).
fn ensure_qcow2() {
    util::ensure_images();
    util::ensure_built("build-qcow2.sh", ".lock-qcow2");
}

/// The path of a built qcow2 image, e.g. `qcow2_image("plain.qcow2")`.
fn qcow2_image(name: &str) -> PathBuf {
    ensure_qcow2();
    let path = build_dir().join("qcow2").join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A scratch directory of its own for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("qcow2-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn qemu_img<I, S>(args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = crate::util::tool_command("qemu-img")
        .args(&args)
        .output()
        .expect("cannot run qemu-img");
    assert!(
        output.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
}

// ---------------------------------------------------------------------------------------
// Byte-for-byte against qemu-img.
// ---------------------------------------------------------------------------------------

/// The whole virtual disk as `qemu-img convert -O raw` writes it.
fn qemu_raw(path: &Path, dir: &Path) -> Vec<u8> {
    let raw = dir.join("qemu.raw");
    qemu_img([
        OsStr::new("convert"),
        OsStr::new("-O"),
        OsStr::new("raw"),
        path.as_os_str(),
        raw.as_os_str(),
    ]);
    let bytes = fs::read(&raw).unwrap();
    fs::remove_file(&raw).unwrap();
    bytes
}

/// Reads the whole disk in 1 MiB chunks on the rayon pool (so threads share the caches).
fn read_whole(disk: &dyn BlockSource) -> Vec<u8> {
    let mut out = vec![0u8; disk.len() as usize];
    out.par_chunks_mut(1 << 20)
        .enumerate()
        .for_each(|(i, chunk)| {
            disk.read_exact_at((i as u64) << 20, chunk)
                .unwrap_or_else(|e| panic!("read of chunk {i} failed: {e}"))
        });
    out
}

/// The image's virtual disk equals qemu's reading of it: the sha256 of the whole disk, and
/// 200 seeded ranges around cluster boundaries, read one by one.
fn assert_matches_qemu(name: &str) {
    let path = qcow2_image(name);
    let dir = scratch(&name.replace('/', "-"));
    let expected = qemu_raw(&path, &dir);
    let opened = open_image(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(opened.format, ContainerFormat::Qcow2);
    let disk = opened.disk;
    assert_eq!(disk.len(), expected.len() as u64, "{name}: virtual size");
    let whole = read_whole(&*disk);
    assert_eq!(
        hex(&Sha256::digest(&whole)),
        hex(&Sha256::digest(&expected)),
        "{name}: the whole disk differs from qemu-img convert -O raw"
    );

    let head = fs::read(&path).unwrap();
    let cluster = 1u64 << be32(&head, 20);
    let size = disk.len();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ size);
    for round in 0..200 {
        // A cluster boundary, a start a little before it, a length up to three clusters.
        let boundary = rng.below_u64(size / cluster + 1) * cluster;
        let start = boundary.saturating_sub(rng.below_u64(4096)).min(size - 1);
        let len = (1 + rng.below_u64(3 * cluster)).min(size - start);
        let mut got = vec![0u8; len as usize];
        disk.read_exact_at(start, &mut got)
            .unwrap_or_else(|e| panic!("{name}: range {round} ({start}+{len}): {e}"));
        let want = &expected[start as usize..(start + len) as usize];
        if got != want {
            let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
            panic!(
                "{name}: range {round} ({start}+{len}) differs from qemu at byte {}",
                start + first as u64
            );
        }
    }
    // Past the end is an error, not zeros.
    let mut one = [0u8; 1];
    assert!(disk.read_exact_at(size, &mut one).is_err());
    assert!(disk.read_exact_at(u64::MAX, &mut one).is_err());
    let _ = fs::remove_dir_all(&dir);
}

fn debian() -> Vec<util::Source> {
    vec![
        source("debian-root", "/", "p1", Fs::Ext),
        source("efi", "/boot/efi", "p15", Fs::Vfat),
    ]
}

fn split() -> Vec<util::Source> {
    vec![
        source("split-root", "/", "p1", Fs::Ext),
        source("split-var", "/var", "p2", Fs::Ext),
        source("split-home", "/home", "p3", Fs::Ext),
    ]
}

fn mbr() -> Vec<util::Source> {
    vec![
        source("mbr-root", "/", "p1", Fs::Ext),
        source("mbr-var", "/var", "p5", Fs::Ext),
        source("mbr-srv", "/srv", "p6", Fs::Ext),
    ]
}

/// One test per variant: the bytes against qemu, then the inventory against the sources.
macro_rules! variant {
    ($test:ident, $file:literal, $sources:expr) => {
        #[test]
        fn $test() {
            assert_matches_qemu($file);
            assert_inventory_matches(concat!("qcow2/", $file), &$sources, 0);
        }
    };
}

variant!(plain_matches_qemu_and_sources, "plain.qcow2", debian());
variant!(deflate_matches_qemu_and_sources, "deflate.qcow2", debian());
variant!(zstd_matches_qemu_and_sources, "zstd.qcow2", split());
variant!(clusters_4k_match_qemu_and_sources, "c4k.qcow2", mbr());
variant!(clusters_2m_match_qemu_and_sources, "c2m.qcow2", debian());
variant!(v2_matches_qemu_and_sources, "v2.qcow2", debian());
variant!(
    v2_deflate_matches_qemu_and_sources,
    "v2-deflate.qcow2",
    debian()
);
variant!(
    extended_l2_matches_qemu_and_sources,
    "extl2.qcow2",
    debian()
);
variant!(
    snapshot_active_layer_matches_qemu_and_sources,
    "snapshot.qcow2",
    debian()
);
variant!(overlay_matches_qemu_and_sources, "overlay.qcow2", debian());
variant!(
    raw_backed_overlay_matches_qemu_and_sources,
    "overlay-raw.qcow2",
    debian()
);
variant!(
    overlay_on_zstd_base_matches_qemu_and_sources,
    "overlay-zstdbase.qcow2",
    debian()
);
variant!(
    extended_l2_overlay_matches_qemu_and_sources,
    "overlay-extl2.qcow2",
    debian()
);
variant!(
    relative_backing_matches_qemu_and_sources,
    "sub/overlay-rel.qcow2",
    debian()
);
variant!(
    chain_of_three_matches_qemu_and_sources,
    "chain.qcow2",
    debian()
);

#[test]
fn garbled_bases_match_qemu() {
    // What the overlays are read through: their own bytes must be right too.
    assert_matches_qemu("base.qcow2");
    assert_matches_qemu("base-zstd.qcow2");
}

#[test]
fn the_overlays_hold_only_changed_clusters() {
    // Otherwise the backing files would not be read at all.
    for name in [
        "overlay.qcow2",
        "overlay-raw.qcow2",
        "overlay-extl2.qcow2",
        "chain.qcow2",
    ] {
        let overlay = fs::metadata(qcow2_image(name)).unwrap().len();
        assert!(
            overlay < 6 << 20,
            "{name} is {overlay} bytes: not a sparse overlay"
        );
    }
}

#[test]
fn reads_from_many_threads_agree() {
    let path = qcow2_image("overlay-extl2.qcow2");
    let disk = open_image(&path).unwrap().disk;
    let whole = read_whole(&*disk);
    // Small unaligned reads from 8 threads at once, each checked against the whole.
    let size = disk.len();
    let whole = Arc::new(whole);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let disk = Arc::clone(&disk);
            let whole = Arc::clone(&whole);
            std::thread::spawn(move || {
                let mut rng = Rng(t + 1);
                for _ in 0..2000 {
                    let start = rng.below_u64(size);
                    let len = (1 + rng.below_u64(10_000)).min(size - start);
                    let mut got = vec![0u8; len as usize];
                    disk.read_exact_at(start, &mut got).unwrap();
                    assert!(got == whole[start as usize..(start + len) as usize]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// inspect.
// ---------------------------------------------------------------------------------------

fn canonical(name: &str) -> String {
    fs::canonicalize(qcow2_image(name))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn inspect_reports_format_subformat_size_chain_and_snapshots() {
    let image_of = |name: &str| {
        let (run, report) = inspect_json(&qcow2_image(name));
        run.expect_code(0);
        report["image"].clone()
    };
    for (name, subformat, size) in [
        ("plain.qcow2", "v3", 55_574_528u64),
        ("v2.qcow2", "v2", 55_574_528),
        ("zstd.qcow2", "v3, zstd", 52_428_800),
        ("extl2.qcow2", "v3, extended L2", 55_574_528),
        ("c4k.qcow2", "v3", 50_331_648),
    ] {
        let image = image_of(name);
        assert_eq!(image["format"], "qcow2", "{name}: {image:#}");
        assert_eq!(image["subformat"], subformat, "{name}: {image:#}");
        assert_eq!(image["virtual_size"], size, "{name}: {image:#}");
        assert_eq!(image["backing_chain"], serde_json::json!([]), "{name}");
        assert_eq!(image["snapshots"], serde_json::json!([]), "{name}");
    }

    let chain = image_of("chain.qcow2");
    assert_eq!(
        chain["backing_chain"],
        serde_json::json!([canonical("overlay.qcow2"), canonical("base.qcow2")])
    );
    let relative = image_of("sub/overlay-rel.qcow2");
    assert_eq!(
        relative["backing_chain"],
        serde_json::json!([canonical("base.qcow2")])
    );
    let raw_backed = image_of("overlay-raw.qcow2");
    assert_eq!(
        raw_backed["backing_chain"],
        serde_json::json!([canonical("base-short.raw")])
    );

    let snapshots = image_of("snapshot.qcow2")["snapshots"].clone();
    let list = snapshots.as_array().unwrap();
    assert_eq!(list.len(), 2, "{snapshots:#}");
    assert_eq!(list[0]["id"], "1");
    assert_eq!(list[0]["name"], "snap1");
    assert_eq!(list[1]["id"], "2");
    assert_eq!(list[1]["name"], "second snapshot");
    for snapshot in list {
        assert_eq!(snapshot["virtual_size"], 55_574_528u64);
        // Taken when the images were built: after 2020, not in the future.
        let date = snapshot["date"].as_i64().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(date > 1_577_836_800 && date <= now + 60, "{snapshot:#}");
    }
}

// ---------------------------------------------------------------------------------------
// Damaged and hostile images.
// ---------------------------------------------------------------------------------------

/// `files --hash sha256` on a damaged copy: exit 0, 2 or 3, and when not 0, a message
/// naming the file. Returns the exit code.
fn files_on_damaged(path: &Path) -> i32 {
    let args = [
        OsStr::new("files"),
        OsStr::new("--hash"),
        OsStr::new("sha256"),
        path.as_os_str(),
    ];
    let (code, stderr) = util::run_with_deadline(&args, false);
    assert!(
        [0, 2, 3].contains(&code),
        "{}: exit {code}; stderr:\n{stderr}",
        path.display()
    );
    let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
    if code != 0 {
        assert!(
            stderr.contains(&file_name),
            "{}: exit {code}, but stderr does not name the file:\n{stderr}",
            path.display()
        );
    }
    code
}

/// `inspect` must refuse `path` (exit 2) with a message containing each of `needles`.
fn assert_refused(path: &Path, needles: &[&str]) -> String {
    let args = [OsStr::new("inspect"), path.as_os_str()];
    let (code, stderr) = util::run_with_deadline(&args, false);
    assert_eq!(
        code,
        2,
        "{}: expected exit 2; stderr:\n{stderr}",
        path.display()
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{}: stderr does not mention {needle:?}:\n{stderr}",
            path.display()
        );
    }
    stderr
}

#[test]
fn truncated_copies_fail_cleanly() {
    let dir = scratch("truncated");
    for name in ["plain.qcow2", "deflate.qcow2", "extl2.qcow2", "c4k.qcow2"] {
        let bytes = fs::read(qcow2_image(name)).unwrap();
        let len = bytes.len();
        let cuts = [1, 40, 100, 4096, 65_536 + 8, len / 4, len / 2, len * 3 / 4];
        for cut in cuts {
            let copy = dir.join(format!("cut-{cut}-{name}"));
            fs::write(&copy, &bytes[..cut]).unwrap();
            let code = files_on_damaged(&copy);
            assert_ne!(code, 0, "{name} cut at {cut} bytes read without error");
            fs::remove_file(&copy).unwrap();
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The byte ranges of a qcow2 file's metadata: header, L1 table, L2 tables.
fn metadata_regions(bytes: &[u8]) -> Vec<(usize, usize)> {
    let cluster = 1usize << be32(bytes, 20);
    let l1_size = be32(bytes, 36) as usize;
    let l1_offset = be64(bytes, 40) as usize;
    let l2_bytes = cluster;
    let mut regions = vec![(0, 512), (l1_offset, l1_size * 8)];
    for i in 0..l1_size {
        let l2 = (be64(bytes, l1_offset + 8 * i) & 0x00ff_ffff_ffff_fe00) as usize;
        if l2 != 0 && l2 + l2_bytes <= bytes.len() {
            regions.push((l2, l2_bytes));
        }
    }
    regions
}

#[test]
fn bit_flipped_copies_fail_cleanly() {
    let dir = scratch("flipped");
    let images: Vec<(String, Vec<u8>)> =
        ["plain.qcow2", "deflate.qcow2", "zstd.qcow2", "extl2.qcow2"]
            .iter()
            .map(|n| (n.to_string(), fs::read(qcow2_image(n)).unwrap()))
            .collect();
    let codes: Vec<i32> = (0..100u64)
        .into_par_iter()
        .map(|round| {
            let (name, original) = &images[round as usize % images.len()];
            let mut rng = Rng(0xdead_beef ^ (round + 1).wrapping_mul(0x1234_5678_9abc));
            let regions = metadata_regions(original);
            // Half the rounds hit the header, the rest the L1 or an L2 table.
            let (start, len) = if round % 2 == 0 {
                regions[0]
            } else {
                regions[1 + rng.below_u64(regions.len() as u64 - 1) as usize]
            };
            let mut bytes = original.clone();
            for _ in 0..1 + rng.below_u64(3) {
                let at = start + rng.below_u64(len as u64) as usize;
                bytes[at] ^= 1 << rng.below_u64(8);
            }
            let copy = dir.join(format!("flip-{round}-{name}"));
            fs::write(&copy, &bytes).unwrap();
            let code = files_on_damaged(&copy);
            fs::remove_file(&copy).unwrap();
            code
        })
        .collect();
    // Many flips land on bits a reader must refuse.
    let failed = codes.iter().filter(|&&c| c != 0).count();
    eprintln!(
        "bit flips: {} exit 0, {} exit 2, {} exit 3",
        codes.iter().filter(|&&c| c == 0).count(),
        codes.iter().filter(|&&c| c == 2).count(),
        codes.iter().filter(|&&c| c == 3).count()
    );
    assert!(
        failed >= 20,
        "only {failed} of 100 flipped copies were refused"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// A copy of `name` with bytes patched, in `dir`.
fn patched(dir: &Path, name: &str, patches: &[(usize, &[u8])]) -> PathBuf {
    let mut bytes = fs::read(qcow2_image(name)).unwrap();
    for (at, new) in patches {
        bytes[*at..*at + new.len()].copy_from_slice(new);
    }
    let path = dir.join(format!("patched-{}", bytes.len() ^ patches.len()));
    let path = path.with_file_name(format!(
        "{}-{}",
        path.file_name().unwrap().to_string_lossy(),
        patches
            .iter()
            .map(|(at, _)| at.to_string())
            .collect::<Vec<_>>()
            .join("_")
    ));
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn an_l1_table_of_2_pow_31_entries_is_refused_without_allocating() {
    let dir = scratch("l1-huge");
    let path = patched(&dir, "plain.qcow2", &[(36, &0x8000_0000u32.to_be_bytes())]);
    let stderr = assert_refused(&path, &["l1_size", "2147483648", "limit"]);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    // The same through the library from memory: refused at once.
    let mut bytes = fs::read(qcow2_image("plain.qcow2")).unwrap();
    bytes[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
    let started = Instant::now();
    let err = qcow2::open_source(Arc::new(MemoryImage::new(bytes)), "huge-l1.qcow2").unwrap_err();
    assert!(err.to_string().contains("huge-l1.qcow2"), "{err}");
    assert!(err.to_string().contains("l1_size"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn encryption_is_refused() {
    let dir = scratch("encrypted");
    let luks = dir.join("luks.qcow2");
    qemu_img([
        OsStr::new("create"),
        OsStr::new("-q"),
        OsStr::new("-f"),
        OsStr::new("qcow2"),
        OsStr::new("--object"),
        OsStr::new("secret,id=sec0,data=amiscan"),
        OsStr::new("-o"),
        OsStr::new("encrypt.format=luks,encrypt.key-secret=sec0"),
        luks.as_os_str(),
        OsStr::new("16M"),
    ]);
    assert_refused(&luks, &["luks.qcow2", "encryption", "LUKS"]);
    // Old AES encryption (crypt_method 1), which qemu no longer creates.
    let aes = patched(&dir, "plain.qcow2", &[(32, &1u32.to_be_bytes())]);
    assert_refused(&aes, &["encryption", "AES"]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn feature_bits_are_checked() {
    let dir = scratch("features");
    let incompatible = |bits: u64| patched(&dir, "plain.qcow2", &[(72, &bits.to_be_bytes())]);
    assert_refused(&incompatible(1 << 1), &["corrupt", "qemu-img check"]);
    assert_refused(&incompatible(1 << 9), &["incompatible feature bit 9"]);
    assert_refused(&incompatible(1 << 2), &["external data file"]);
    assert_refused(&incompatible(1 << 3), &["compression_type", "bit 3"]);
    // The dirty bit does not stop reading.
    let dirty = incompatible(1);
    let (run, report) = inspect_json(&dirty);
    run.expect_code(0);
    assert_eq!(report["image"]["format"], "qcow2");
    // An external data file made by qemu-img is refused, naming it. qemu-img resolves a
    // relative data_file against its working directory, so the path is absolute.
    let external = dir.join("external.qcow2");
    let data_option = format!("data_file={}", dir.join("external.data").display());
    qemu_img([
        OsStr::new("create"),
        OsStr::new("-q"),
        OsStr::new("-f"),
        OsStr::new("qcow2"),
        OsStr::new("-o"),
        OsStr::new(&data_option),
        external.as_os_str(),
        OsStr::new("16M"),
    ]);
    assert_refused(&external, &["external data file", "external.data"]);
    // Version 1 and unknown versions.
    assert_refused(
        &patched(&dir, "plain.qcow2", &[(4, &1u32.to_be_bytes())]),
        &["qcow (version 1)"],
    );
    assert_refused(
        &patched(&dir, "plain.qcow2", &[(4, &4u32.to_be_bytes())]),
        &["qcow2 version 4"],
    );
    assert_refused(
        &patched(&dir, "plain.qcow2", &[(20, &22u32.to_be_bytes())]),
        &["cluster_bits", "22"],
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_backing_file_is_named() {
    let dir = scratch("missing-backing");
    let lonely = dir.join("overlay.qcow2");
    fs::copy(qcow2_image("overlay.qcow2"), &lonely).unwrap();
    assert_refused(
        &lonely,
        &[
            "overlay.qcow2",
            "base.qcow2",
            &dir.join("base.qcow2").display().to_string(),
        ],
    );
    let _ = fs::remove_dir_all(&dir);
}

/// An overlay in `dir` named `name` whose backing file name is `backing` (7 bytes), made
/// by qemu-img on a placeholder and then patched, so it may point anywhere.
fn overlay_naming(dir: &Path, name: &str, backing: &str) -> PathBuf {
    let placeholder = dir.join("x.qcow2");
    if !placeholder.exists() {
        qemu_img([
            OsStr::new("create"),
            OsStr::new("-q"),
            OsStr::new("-f"),
            OsStr::new("qcow2"),
            placeholder.as_os_str(),
            OsStr::new("16M"),
        ]);
    }
    let path = dir.join(name);
    qemu_img([
        OsStr::new("create"),
        OsStr::new("-q"),
        OsStr::new("-f"),
        OsStr::new("qcow2"),
        OsStr::new("-b"),
        OsStr::new("x.qcow2"),
        OsStr::new("-F"),
        OsStr::new("qcow2"),
        path.as_os_str(),
    ]);
    let mut bytes = fs::read(&path).unwrap();
    let at = be64(&bytes, 8) as usize;
    let len = be32(&bytes, 16) as usize;
    assert_eq!(&bytes[at..at + len], b"x.qcow2");
    assert_eq!(backing.len(), len);
    bytes[at..at + len].copy_from_slice(backing.as_bytes());
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn backing_cycles_are_refused() {
    let dir = scratch("cycle");
    let a = overlay_naming(&dir, "a.qcow2", "b.qcow2");
    overlay_naming(&dir, "b.qcow2", "a.qcow2");
    assert_refused(&a, &["a.qcow2", "cycle"]);
    let own = overlay_naming(&dir, "s.qcow2", "s.qcow2");
    assert_refused(&own, &["s.qcow2", "cycle"]);
    // Through a symbolic link: the same file by another name.
    std::os::unix::fs::symlink("l.qcow2", dir.join("k.qcow2")).unwrap();
    let looped = overlay_naming(&dir, "l.qcow2", "k.qcow2");
    assert_refused(&looped, &["cycle"]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn backing_chains_are_limited_in_depth() {
    let dir = scratch("deep");
    let base = dir.join("d0.qcow2");
    qemu_img([
        OsStr::new("create"),
        OsStr::new("-q"),
        OsStr::new("-f"),
        OsStr::new("qcow2"),
        base.as_os_str(),
        OsStr::new("1M"),
    ]);
    for i in 1..=qcow2::MAX_BACKING_DEPTH {
        let path = dir.join(format!("d{i}.qcow2"));
        qemu_img([
            OsStr::new("create"),
            OsStr::new("-q"),
            OsStr::new("-f"),
            OsStr::new("qcow2"),
            OsStr::new("-b"),
            OsStr::new(&format!("d{}.qcow2", i - 1)),
            OsStr::new("-F"),
            OsStr::new("qcow2"),
            path.as_os_str(),
        ]);
    }
    // 16 files (d15 down to d0) open; 17 do not.
    let ok = dir.join(format!("d{}.qcow2", qcow2::MAX_BACKING_DEPTH - 1));
    let opened = open_image(&ok).unwrap();
    assert_eq!(
        opened.info.backing_chain.len(),
        qcow2::MAX_BACKING_DEPTH - 1
    );
    let too_deep = dir.join(format!("d{}.qcow2", qcow2::MAX_BACKING_DEPTH));
    let err = open_image(&too_deep).unwrap_err().to_string();
    assert!(err.contains("more than 16 files"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_l2_entry_is_a_read_error_naming_it() {
    // Point the first data cluster's L2 entry past the end of the file: opening works,
    // reading that cluster fails with the file, the structure and the offset.
    let original = fs::read(qcow2_image("plain.qcow2")).unwrap();
    let l1_offset = be64(&original, 40) as usize;
    let l2 = (be64(&original, l1_offset) & 0x00ff_ffff_ffff_fe00) as usize;
    let index = (0..8192)
        .find(|i| be64(&original, l2 + 8 * i) & 0x00ff_ffff_ffff_fe00 != 0)
        .unwrap();
    let mut bytes = original.clone();
    let beyond = (bytes.len() as u64 + (1 << 30)) & !0xffff;
    bytes[l2 + 8 * index..l2 + 8 * index + 8].copy_from_slice(&(beyond | 1 << 63).to_be_bytes());
    let disk = qcow2::open_source(Arc::new(MemoryImage::new(bytes)), "bad-l2.qcow2")
        .unwrap()
        .disk;
    let mut buf = vec![0u8; 4096];
    let err = disk
        .read_exact_at(index as u64 * 65536, &mut buf)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad-l2.qcow2"), "{err}");
    assert!(
        err.contains(&format!("qcow2 L2 table entry {index} of L1 entry 0")),
        "{err}"
    );
    assert!(
        err.contains(&format!("at byte {}", l2 + 8 * index)),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// The fuzz corpus.
// ---------------------------------------------------------------------------------------

#[test]
fn fuzz_corpus_opens_or_fails_without_panic() {
    let dir = manifest_dir().join("fuzz").join("corpus").join("qcow2");
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no seeds in {}", dir.display());
    let mut seeds_read = 0;
    for input in inputs {
        let bytes = fs::read(&input).unwrap();
        let (done, wait) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let result = std::panic::catch_unwind(|| qcow2::exercise(&bytes));
            let _ = done.send(result);
        });
        match wait.recv_timeout(DEADLINE) {
            Ok(Ok(read)) => {
                worker.join().unwrap();
                let is_seed = !input
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("found-");
                if is_seed {
                    assert!(read > 0, "seed {} did not read", input.display());
                    seeds_read += 1;
                }
            }
            Ok(Err(_)) => panic!("{}: the qcow2 reader panicked", input.display()),
            Err(_) => panic!("{}: did not return within {DEADLINE:?}", input.display()),
        }
    }
    assert!(seeds_read > 0);
}

// ---------------------------------------------------------------------------------------
// Throughput (run by hand).
// ---------------------------------------------------------------------------------------

/// Reads the whole virtual disk of `$QCOW2_BENCH_IMAGE` with 1 and 2 threads (4 MiB
/// chunks), five times each, and prints the median throughput:
/// `QCOW2_BENCH_IMAGE=/path/x.qcow2 cargo test --release --test integration -- --ignored --nocapture qcow2::throughput`
#[test]
#[ignore]
fn throughput() {
    let path = PathBuf::from(std::env::var("QCOW2_BENCH_IMAGE").expect("set QCOW2_BENCH_IMAGE"));
    const CHUNK: usize = 4 << 20;
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut times = Vec::new();
        for _ in 0..5 {
            // Opened afresh each time: no L2 cache carried over.
            let disk = open_image(&path).unwrap().disk;
            let chunks = disk.len().div_ceil(CHUNK as u64);
            let started = Instant::now();
            let checksum: u64 = pool.install(|| {
                (0..chunks)
                    .into_par_iter()
                    .map_init(
                        || vec![0u8; CHUNK],
                        |buf, i| {
                            let start = i * CHUNK as u64;
                            let len = (disk.len() - start).min(CHUNK as u64) as usize;
                            disk.read_exact_at(start, &mut buf[..len]).unwrap();
                            u64::from(buf[0]) + u64::from(buf[len - 1])
                        },
                    )
                    .sum()
            });
            times.push(started.elapsed().as_secs_f64());
            std::hint::black_box(checksum);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = times[2];
        let size = open_image(&path).unwrap().disk.len() as f64;
        println!(
            "{}: {threads} thread(s): median {median:.3} s, {:.0} MiB/s (runs {times:.3?})",
            path.display(),
            size / median / f64::from(1 << 20)
        );
    }
}

/// The header checks qemu makes when it opens an image (qcow2_do_open and its
/// qcow2_validate_table), for the fields amiscan reads: each copy of a fresh qemu-img
/// image with one field changed is refused by `qemu-img info` and by amiscan, which names
/// the field and its byte offset. amiscan opened the first three (a misaligned snapshot
/// table with no snapshots, no refcount table, an oversized refcount table).
#[test]
fn header_fields_qemu_refuses_are_refused() {
    let dir = scratch("qemu-refuses");
    let fresh = dir.join("fresh.qcow2");
    qemu_img([
        OsStr::new("create"),
        OsStr::new("-q"),
        OsStr::new("-f"),
        OsStr::new("qcow2"),
        fresh.as_os_str(),
        OsStr::new("64M"),
    ]);
    let original = fs::read(&fresh).unwrap();
    assert_eq!(be32(&original, 20), 16, "64 KiB clusters");
    assert_eq!(be32(&original, 60), 0, "no snapshots");
    // (name, patches, file length or 0 to keep it, qemu's words, amiscan's words)
    type Case<'a> = (&'a str, Vec<(usize, Vec<u8>)>, u64, &'a str, [&'a str; 2]);
    let cases: Vec<Case<'_>> = vec![
        (
            "snapshots-misaligned",
            vec![(64, 12_345u64.to_be_bytes().to_vec())],
            0,
            "Snapshot table offset invalid",
            ["snapshots_offset at byte 64", "not a multiple"],
        ),
        (
            "no-refcount-table",
            vec![(56, 0u32.to_be_bytes().to_vec())],
            0,
            "does not contain a reference count table",
            [
                "refcount_table_clusters at byte 56",
                "no reference count table",
            ],
        ),
        (
            // 200 clusters of 64 KiB, in a file long enough to hold them.
            "refcount-table-too-large",
            vec![(56, 200u32.to_be_bytes().to_vec())],
            16 << 20,
            "Reference count table too large",
            ["refcount_table_clusters at byte 56", "8388608"],
        ),
        (
            "refcount-table-misaligned",
            vec![(48, (65_536u64 + 512).to_be_bytes().to_vec())],
            0,
            "Reference count table offset invalid",
            ["refcount_table_offset at byte 48", "not a multiple"],
        ),
        (
            "l1-misaligned",
            vec![(40, (be64(&original, 40) + 8).to_be_bytes().to_vec())],
            0,
            "Active L1 table offset invalid",
            ["l1_table_offset at byte 40", "not a multiple"],
        ),
        (
            "too-many-snapshots",
            vec![(60, 65_537u32.to_be_bytes().to_vec())],
            0,
            "Snapshot table too large",
            ["nb_snapshots at byte 60", "65537"],
        ),
    ];
    for (name, patches, len, qemu_says, amiscan_says) in cases {
        let mut bytes = original.clone();
        for (at, new) in &patches {
            bytes[*at..*at + new.len()].copy_from_slice(new);
        }
        let path = dir.join(format!("{name}.qcow2"));
        fs::write(&path, &bytes).unwrap();
        if len > 0 {
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(len)
                .unwrap();
        }
        let qemu = crate::util::tool_command("qemu-img")
            .arg("info")
            .arg(&path)
            .output()
            .unwrap();
        let qemu_err = String::from_utf8_lossy(&qemu.stderr);
        assert!(
            !qemu.status.success() && qemu_err.contains(qemu_says),
            "{name}: qemu-img info: {qemu_err}"
        );
        let stderr = assert_refused(&path, &amiscan_says);
        assert!(stderr.contains(&format!("{name}.qcow2")), "{stderr}");
    }
    // The fresh image itself opens in both.
    let (run, _) = inspect_json(&fresh);
    assert_ne!(run.code, 2, "{}", run.stderr);
    let _ = fs::remove_dir_all(&dir);
}
