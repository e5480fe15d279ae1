//! VMDK containers: every image built by `testdata/build-vmdk.sh` must present exactly the
//! disk `qemu-img convert -O raw` reads from it (whole-disk sha256 and random ranges across
//! grain boundaries, read from two threads), and its inventory must equal the source trees.
//! Damaged copies must fail cleanly, naming the file, within a deadline.

use crate::util;

use util::Rng;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use amiscan::image::{open_image, BlockSource, ContainerFormat, MemoryImage};
use util::{assert_inventory_matches, build_dir, inspect_json, manifest_dir, source, Fs, Source};

/// Generous for a debug build on a loaded 2-core machine; a hang runs forever.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Building the images.
// ---------------------------------------------------------------------------------------

fn ensure_vmdk_images() {
    util::ensure_images();
    util::ensure_built("build-vmdk.sh", ".lock-vmdk");
}

/// The path of a built VMDK, e.g. `vmdk("debian-gpt-streamOptimized.vmdk")`.
fn vmdk(name: &str) -> PathBuf {
    ensure_vmdk_images();
    let path = build_dir().join("vmdk").join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("amiscan-vmdk-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Reading the whole disk and comparing it with qemu-img's reading.
// ---------------------------------------------------------------------------------------

enum Reference {
    /// `qemu-img convert -O raw` of the image.
    Qemu,
    /// A raw file the build script made (qemu cannot read ZERO extents).
    File(&'static str),
}

fn sha256_of_source(disk: &dyn BlockSource) -> String {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < disk.len() {
        let n = (disk.len() - offset).min(buf.len() as u64) as usize;
        disk.read_exact_at(offset, &mut buf[..n])
            .unwrap_or_else(|e| panic!("reading {n} bytes at {offset}: {e}"));
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    format!("{:x}", hasher.finalize())
}

fn sha256_of_file(path: &Path) -> String {
    let mut file = fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    format!("{:x}", hasher.finalize())
}

/// The disk the library presents equals the reference byte for byte: the whole-disk
/// sha256, then 200 seeded ranges straddling 4 KiB and 64 KiB (grain) boundaries, read
/// from two threads at once.
fn assert_disk_matches(image: &Path, reference: Reference) {
    let scratch = Scratch::new(&format!(
        "raw-{}",
        image.file_stem().unwrap().to_string_lossy()
    ));
    let reference = match reference {
        Reference::Qemu => {
            let raw = scratch.path("qemu.raw");
            let status = crate::util::tool_command("qemu-img")
                .args(["convert", "-f", "vmdk", "-O", "raw"])
                .arg(image)
                .arg(&raw)
                .status()
                .expect("cannot run qemu-img");
            assert!(
                status.success(),
                "qemu-img convert {} failed",
                image.display()
            );
            raw
        }
        Reference::File(name) => vmdk(name),
    };
    let opened = open_image(image).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
    assert_eq!(opened.format, ContainerFormat::Vmdk);
    let disk = opened.disk;
    let want_len = fs::metadata(&reference).unwrap().len();
    assert_eq!(disk.len(), want_len, "{}: virtual size", image.display());
    assert_eq!(
        sha256_of_source(disk.as_ref()),
        sha256_of_file(&reference),
        "{}: the whole disk differs from {}",
        image.display(),
        reference.display()
    );

    let reference_file = Arc::new(fs::File::open(&reference).unwrap());
    let len = disk.len();
    std::thread::scope(|scope| {
        for thread in 0..2u64 {
            let disk = Arc::clone(&disk);
            let reference_file = Arc::clone(&reference_file);
            scope.spawn(move || {
                let mut rng = Rng(0x5eed_0000 + thread + len);
                for round in 0..100 {
                    let unit = if rng.below_u64(2) == 0 { 4096 } else { 65536 };
                    let boundary = (1 + rng.below_u64(len / unit - 1)) * unit;
                    let start = boundary - 1 - rng.below_u64(70_000.min(boundary - 1));
                    let size = (1 + rng.below_u64(200_000)).min(len - start);
                    let mut got = vec![0u8; size as usize];
                    let mut want = vec![0u8; size as usize];
                    disk.read_exact_at(start, &mut got).unwrap_or_else(|e| {
                        panic!("thread {thread} round {round}: {size} bytes at {start}: {e}")
                    });
                    reference_file.read_exact_at(&mut want, start).unwrap();
                    if got != want {
                        let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
                        panic!(
                            "thread {thread} round {round}: {size} bytes at {start} differ first at byte {}",
                            start + at as u64
                        );
                    }
                }
            });
        }
    });
    // Reads past the end are refused, not zero-filled.
    let mut byte = [0u8; 1];
    assert!(disk.read_exact_at(len, &mut byte).is_err());
    assert!(disk.read_exact_at(u64::MAX, &mut byte).is_err());
}

fn debian_sources() -> Vec<Source> {
    vec![
        source("debian-root", "/", "p1", Fs::Ext),
        source("efi", "/boot/efi", "p15", Fs::Vfat),
    ]
}

fn split_sources() -> Vec<Source> {
    vec![
        source("split-root", "/", "p1", Fs::Ext),
        source("split-var", "/var", "p2", Fs::Ext),
        source("split-home", "/home", "p3", Fs::Ext),
    ]
}

/// The three checks for one image: its disk, its inventory, and what inspect says.
fn check_image(name: &str, create_type: &str, reference: Reference, extra_files: &[&str]) {
    let path = vmdk(name);
    assert_disk_matches(&path, reference);

    let sources = if name.starts_with("debian-gpt") {
        debian_sources()
    } else {
        split_sources()
    };
    assert_inventory_matches(&format!("vmdk/{name}"), &sources, 0);

    let (run, report) = inspect_json(&path);
    run.expect_code(0);
    assert_eq!(report["image"]["format"], "vmdk", "{report:#}");
    assert_eq!(report["image"]["subformat"], create_type, "{report:#}");
    assert_eq!(report["complete"], true, "{report:#}");

    let opened = open_image(&path).unwrap();
    let dir = path.parent().unwrap();
    let want: Vec<String> = extra_files
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    assert_eq!(opened.info.extra_files, want, "{name}: extra files");
    assert_eq!(
        report["image"]["extra_files"],
        serde_json::json!(want),
        "{name}: inspect's extra files"
    );
    // Host allocation of every file: the image's own plus its extents'.
    let mut allocated = 0;
    for file in std::iter::once(path.clone()).chain(extra_files.iter().map(|f| dir.join(f))) {
        use std::os::unix::fs::MetadataExt;
        allocated += fs::metadata(&file).unwrap().blocks() * 512;
    }
    assert_eq!(
        opened.allocated_size,
        Some(allocated),
        "{name}: allocated size"
    );
}

macro_rules! image_test {
    ($test:ident, $name:expr, $create_type:expr, $reference:expr, [$($extra:expr),*]) => {
        #[test]
        fn $test() {
            check_image($name, $create_type, $reference, &[$($extra),*]);
        }
    };
}

image_test!(
    debian_stream_optimized,
    "debian-gpt-streamOptimized.vmdk",
    "streamOptimized",
    Reference::Qemu,
    []
);
image_test!(
    debian_monolithic_sparse,
    "debian-gpt-monolithicSparse.vmdk",
    "monolithicSparse",
    Reference::Qemu,
    []
);
image_test!(
    debian_monolithic_flat,
    "debian-gpt-monolithicFlat.vmdk",
    "monolithicFlat",
    Reference::Qemu,
    ["debian-gpt-monolithicFlat-flat.vmdk"]
);
image_test!(
    debian_two_gb_max_extent_sparse,
    "debian-gpt-twoGbMaxExtentSparse.vmdk",
    "twoGbMaxExtentSparse",
    Reference::Qemu,
    ["debian-gpt-twoGbMaxExtentSparse-s001.vmdk"]
);
image_test!(
    debian_two_gb_max_extent_flat,
    "debian-gpt-twoGbMaxExtentFlat.vmdk",
    "twoGbMaxExtentFlat",
    Reference::Qemu,
    ["debian-gpt-twoGbMaxExtentFlat-f001.vmdk"]
);
image_test!(
    debian_zeroed_grains,
    "debian-gpt-zeroed.vmdk",
    "monolithicSparse",
    Reference::Qemu,
    []
);
image_test!(
    debian_vmware_stream_with_footer,
    "debian-gpt-vmware-stream.vmdk",
    "streamOptimized",
    Reference::Qemu,
    []
);
image_test!(
    debian_compact_4k_grains,
    "debian-gpt-compact.vmdk",
    "monolithicSparse",
    Reference::Qemu,
    []
);
image_test!(
    split_stream_optimized,
    "split-gpt-streamOptimized.vmdk",
    "streamOptimized",
    Reference::Qemu,
    []
);
image_test!(
    split_monolithic_sparse,
    "split-gpt-monolithicSparse.vmdk",
    "monolithicSparse",
    Reference::Qemu,
    []
);
image_test!(
    split_monolithic_flat,
    "split-gpt-monolithicFlat.vmdk",
    "monolithicFlat",
    Reference::Qemu,
    ["split-gpt-monolithicFlat-flat.vmdk"]
);
image_test!(
    split_two_gb_max_extent_sparse,
    "split-gpt-twoGbMaxExtentSparse.vmdk",
    "twoGbMaxExtentSparse",
    Reference::Qemu,
    ["split-gpt-twoGbMaxExtentSparse-s001.vmdk"]
);
image_test!(
    split_two_gb_max_extent_flat,
    "split-gpt-twoGbMaxExtentFlat.vmdk",
    "twoGbMaxExtentFlat",
    Reference::Qemu,
    ["split-gpt-twoGbMaxExtentFlat-f001.vmdk"]
);
image_test!(
    split_three_flat_extents,
    "split-gpt-multi-flat.vmdk",
    "twoGbMaxExtentFlat",
    Reference::Qemu,
    [
        "split-gpt-multi-1.bin",
        "split-gpt-multi-2.bin",
        "split-gpt-multi-3.bin"
    ]
);
image_test!(
    split_three_flat_extents_and_zero,
    "split-gpt-multi.vmdk",
    "twoGbMaxExtentFlat",
    Reference::File("split-gpt-multi.expected.raw"),
    [
        "split-gpt-multi-1.bin",
        "split-gpt-multi-2.bin",
        "split-gpt-multi-3.bin"
    ]
);

// ---------------------------------------------------------------------------------------
// Damaged and refused images: run the binary with a deadline.
// ---------------------------------------------------------------------------------------

struct Outcome {
    code: i32,
    stderr: String,
}

/// Runs amiscan with a deadline; a signal (a crash or an abort) or the deadline fails the
/// test. stdout is discarded, stderr goes to a file so that a full pipe cannot stall it.
fn run_deadline(args: &[&std::ffi::OsStr], limit_memory: bool, _scratch: &Scratch) -> Outcome {
    let (code, stderr) = util::run_with_deadline(args, limit_memory);
    Outcome { code, stderr }
}

fn files_run(image: &Path, scratch: &Scratch) -> Outcome {
    run_deadline(
        &[
            "files".as_ref(),
            "--hash".as_ref(),
            "sha256".as_ref(),
            image.as_os_str(),
        ],
        false,
        scratch,
    )
}

/// Copies `files` (the image first) from the build directory into `scratch`.
fn copy_set(scratch: &Scratch, files: &[&str]) -> PathBuf {
    for f in files {
        fs::copy(vmdk(f), scratch.path(f)).unwrap();
    }
    scratch.path(files[0])
}

/// The first error met reading the whole disk through the library, if any (open errors
/// included).
fn first_read_error(image: &Path) -> Option<String> {
    let disk = match open_image(image) {
        Ok(opened) => opened.disk,
        Err(e) => return Some(e.to_string()),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < disk.len() {
        let n = (disk.len() - offset).min(buf.len() as u64) as usize;
        if let Err(e) = disk.read_exact_at(offset, &mut buf[..n]) {
            return Some(e.to_string());
        }
        offset += n as u64;
    }
    None
}

/// Every cut removes grains, so reading the whole disk must fail with an error naming the
/// file; the binary must fail cleanly (2 or 3, naming the file) or, where the layers above
/// the container read nothing that was cut, succeed.
///
/// Known gap above the container: volume discovery and filesystem probing treat a read
/// error as "no partition table" / "no recognised filesystem", so a cut that takes the
/// partition table or every superblock can end in exit 0 with nothing scanned (see the
/// ignored `probe_read_errors_are_not_swallowed`).
#[test]
fn truncated_copies_fail_naming_the_file() {
    let scratch = Scratch::new("truncated");
    let mut seen: BTreeMap<String, Vec<(u64, i32)>> = BTreeMap::new();
    for name in [
        "debian-gpt-streamOptimized.vmdk",
        "debian-gpt-vmware-stream.vmdk",
        "debian-gpt-monolithicSparse.vmdk",
        "debian-gpt-compact.vmdk",
    ] {
        let original = fs::read(vmdk(name)).unwrap();
        let len = original.len() as u64;
        let mut cuts = vec![
            0,
            100,
            511,
            700,
            2048,
            0x2c00,
            0x10000 + 100,
            len / 8,
            len / 3,
            len / 2,
            len * 2 / 3,
        ];
        if name.contains("vmware") {
            // Only a footer makes the end of the file matter: qemu-img's files end in
            // padding and the last grain (the backup GPT).
            cuts.extend([len - 1, len - 513, len - 1536]);
        }
        for cut in cuts {
            let copy = scratch.path(&format!("cut-{cut}-{name}"));
            let shown = copy.file_name().unwrap().to_string_lossy().into_owned();
            fs::write(&copy, &original[..cut as usize]).unwrap();
            let error = first_read_error(&copy)
                .unwrap_or_else(|| panic!("{name} cut at {cut}: the whole disk reads"));
            assert!(error.contains(&shown), "{name} cut at {cut}: {error}");
            let outcome = files_run(&copy, &scratch);
            seen.entry(name.to_string())
                .or_default()
                .push((cut, outcome.code));
            assert!(
                [2, 3].contains(&outcome.code),
                "{name} cut at {cut}: exit {}; stderr:\n{}",
                outcome.code,
                outcome.stderr
            );
            if outcome.code != 0 {
                assert!(
                    outcome.stderr.contains(&shown),
                    "{name} cut at {cut}: the message does not name the file:\n{}",
                    outcome.stderr
                );
            }
            fs::remove_file(&copy).unwrap();
        }
    }
    eprintln!("exit codes of `files` by cut: {seen:?}");
    let failed = seen
        .values()
        .flatten()
        .filter(|(_, code)| *code != 0)
        .count();
    let total = seen.values().flatten().count();
    assert_eq!(
        failed, total,
        "only {failed} of {total} truncated copies failed: {seen:?}"
    );
    // A flat extent shorter than its extent line says.
    let descriptor = copy_set(&scratch, &["debian-gpt-monolithicFlat.vmdk"]);
    let flat = vmdk("debian-gpt-monolithicFlat-flat.vmdk");
    let bytes = fs::read(&flat).unwrap();
    fs::write(
        scratch.path("debian-gpt-monolithicFlat-flat.vmdk"),
        &bytes[..bytes.len() - 4096],
    )
    .unwrap();
    let outcome = files_run(&descriptor, &scratch);
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("debian-gpt-monolithicFlat-flat.vmdk"),
        "{}",
        outcome.stderr
    );
}

/// A VMDK cut right after its first grains: every superblock read fails. The container
/// reports each failure, but probing takes them for "no recognised filesystem" and the
/// run ends complete (exit 0) with nothing scanned. Not a VMDK matter: un-ignore once
/// volume discovery and probing surface read errors.
#[test]
fn probe_read_errors_are_not_swallowed() {
    let scratch = Scratch::new("swallowed");
    let original = fs::read(vmdk("debian-gpt-compact.vmdk")).unwrap();
    let copy = scratch.path("cut.vmdk");
    fs::write(&copy, &original[..0x10000 + 100]).unwrap();
    let outcome = files_run(&copy, &scratch);
    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("cut.vmdk"), "{}", outcome.stderr);
}

/// Where a sparse extent's metadata lives, found with a few lines of independent parsing.
struct Regions {
    /// (kind, byte offset, length)
    all: Vec<(&'static str, u64, u64)>,
}

fn regions(bytes: &[u8]) -> Regions {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let mut all = vec![("header", 0, 512)];
    let mut head = 0;
    if u64_at(56) == u64::MAX {
        head = bytes.len() - 1024;
        all.push(("footer", bytes.len() as u64 - 1536, 1536));
    }
    if u64_at(28) != 0 {
        all.push(("descriptor", u64_at(28) * 512, u64_at(36) * 512));
    }
    let (capacity, grain, gtes) = (u64_at(head + 12), u64_at(head + 20), u32_at(head + 44));
    let gd_at = u64_at(head + 56) * 512;
    let gd_entries = capacity.div_ceil(grain).div_ceil(u64::from(gtes));
    all.push(("grain directory", gd_at, gd_entries * 4));
    let compressed = u32_at(8) & (1 << 16) != 0;
    for i in 0..gd_entries {
        let gde = u64::from(u32_at((gd_at + i * 4) as usize));
        if gde == 0 {
            continue;
        }
        all.push(("grain table", gde * 512, u64::from(gtes) * 4));
        for e in 0..u64::from(gtes) {
            let gte = u64::from(u32_at((gde * 512 + e * 4) as usize));
            if compressed && gte > 1 {
                all.push(("grain marker", gte * 512, 12));
            }
        }
    }
    Regions { all }
}

#[test]
fn bit_flipped_copies_never_panic_or_hang() {
    let scratch = Scratch::new("flipped");
    let mut codes: BTreeMap<(String, &str, i32), u32> = BTreeMap::new();
    let names = [
        "debian-gpt-streamOptimized.vmdk",
        "debian-gpt-vmware-stream.vmdk",
        "debian-gpt-monolithicSparse.vmdk",
        "debian-gpt-compact.vmdk",
    ];
    // 4 images x 25 rounds, two rounds at a time.
    let jobs: Vec<(usize, u64)> = (0..names.len())
        .flat_map(|n| (0..25).map(move |r| (n, r)))
        .collect();
    let originals: Vec<Vec<u8>> = names.iter().map(|n| fs::read(vmdk(n)).unwrap()).collect();
    let found: Vec<Regions> = originals.iter().map(|b| regions(b)).collect();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for worker in 0..2 {
            let tx = tx.clone();
            let jobs = &jobs;
            let (originals, found, scratch) = (&originals, &found, &scratch);
            scope.spawn(move || {
                for &(n, round) in jobs.iter().skip(worker).step_by(2) {
                    let mut rng = Rng(0xb17f_11b5 ^ (n as u64) << 32 ^ round);
                    let mut bytes = originals[n].clone();
                    let regions = &found[n].all;
                    // Pick a kind first, so the many markers do not crowd out the header.
                    let mut kinds: Vec<&str> = regions.iter().map(|r| r.0).collect();
                    kinds.dedup();
                    let kind = kinds[rng.below_u64(kinds.len() as u64) as usize];
                    let of_kind: Vec<_> = regions.iter().filter(|r| r.0 == kind).collect();
                    let (_, at, len) = *of_kind[rng.below_u64(of_kind.len() as u64) as usize];
                    let flips = 1 + rng.below_u64(4);
                    for _ in 0..flips {
                        let byte = (at + rng.below_u64(len)) as usize;
                        if byte < bytes.len() {
                            bytes[byte] ^= 1 << rng.below_u64(8);
                        }
                    }
                    let copy = scratch.path(&format!("flip-{round}-{}", names[n]));
                    fs::write(&copy, &bytes).unwrap();
                    let outcome = files_run(&copy, scratch);
                    assert!(
                        [0, 2, 3].contains(&outcome.code),
                        "{} round {round} ({kind} at {at}): exit {}:\n{}",
                        names[n],
                        outcome.code,
                        outcome.stderr
                    );
                    if outcome.code != 0 {
                        assert!(
                            outcome
                                .stderr
                                .contains(&*copy.file_name().unwrap().to_string_lossy()),
                            "{} round {round} ({kind} at {at}): exit {} but the message does not name the file:\n{}",
                            names[n],
                            outcome.code,
                            outcome.stderr
                        );
                    }
                    fs::remove_file(&copy).unwrap();
                    tx.send((names[n].to_string(), kind, outcome.code)).unwrap();
                }
            });
        }
    });
    drop(tx);
    for key in rx {
        *codes.entry(key).or_default() += 1;
    }
    eprintln!("exit codes by image and damaged region:");
    for ((name, kind, code), count) in &codes {
        eprintln!("  {name:35} {kind:16} exit {code}: {count}");
    }
    let failures: u32 = codes
        .iter()
        .filter(|((_, _, code), _)| *code != 0)
        .map(|(_, n)| n)
        .sum();
    assert!(
        failures >= 20,
        "only {failures} of 100 damaged copies were noticed: {codes:?}"
    );
}

#[test]
fn missing_extent_file_is_named() {
    let scratch = Scratch::new("missing");
    let descriptor = copy_set(&scratch, &["debian-gpt-monolithicFlat.vmdk"]);
    let outcome = run_deadline(
        &["inspect".as_ref(), descriptor.as_os_str()],
        false,
        &scratch,
    );
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    let missing = scratch.path("debian-gpt-monolithicFlat-flat.vmdk");
    assert!(
        outcome.stderr.contains(&missing.display().to_string())
            && outcome.stderr.contains("No such file"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn descriptor_with_a_parent_is_refused() {
    let scratch = Scratch::new("parent");
    let path = scratch.path("delta.vmdk");
    fs::write(
        &path,
        "# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\nparentCID=9f8e7d6c\n\
         createType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\n\n\
         # Extent description\nRW 2048 ZERO\n",
    )
    .unwrap();
    let outcome = run_deadline(&["inspect".as_ref(), path.as_os_str()], false, &scratch);
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    for needle in [
        "delta.vmdk",
        "VMDK delta disks with a parent are not supported",
        "base.vmdk",
        "9f8e7d6c",
    ] {
        assert!(
            outcome.stderr.contains(needle),
            "{needle}: {}",
            outcome.stderr
        );
    }
    // parentCID alone is enough.
    fs::write(
        &path,
        "# Disk DescriptorFile\nparentCID=12345678\ncreateType=\"vmfsSparse\"\nRW 8 ZERO\n",
    )
    .unwrap();
    let outcome = run_deadline(&["inspect".as_ref(), path.as_os_str()], false, &scratch);
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("parentCID=12345678"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn grain_marker_claiming_4_gib_is_refused_without_allocating() {
    let scratch = Scratch::new("huge-marker");
    let name = "debian-gpt-streamOptimized.vmdk";
    let mut bytes = fs::read(vmdk(name)).unwrap();
    let marker = regions(&bytes)
        .all
        .iter()
        .find(|r| r.0 == "grain marker")
        .map(|r| r.1 as usize)
        .unwrap();
    // The first marker is grain 0: the partition table, which every command reads.
    assert_eq!(&bytes[marker..marker + 8], &[0; 8]);
    bytes[marker + 8..marker + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let copy = scratch.path("huge-marker.vmdk");
    fs::write(&copy, &bytes).unwrap();

    let opened = open_image(&copy).unwrap();
    let mut sector = [0u8; 512];
    let err = opened.disk.read_exact_at(0, &mut sector).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("huge-marker.vmdk")
            && text.contains("grain marker for grain 0")
            && text.contains("claims 4294967295 compressed bytes"),
        "{text}"
    );

    // Under a 2 GiB address-space limit the binary fails cleanly: grain 0 holds the
    // partition table, so the image is unreadable (exit 2) and the message says why.
    let outcome = run_deadline(&["inspect".as_ref(), copy.as_os_str()], true, &scratch);
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("grain marker for grain 0"),
        "{}",
        outcome.stderr
    );

    // The same claim on the grains of file data in the root filesystem (p1 spans grains
    // 320..832): the walk reports it, naming the file.
    let mut bytes = fs::read(vmdk(name)).unwrap();
    for (_, at, _) in regions(&bytes).all.iter().filter(|r| r.0 == "grain marker") {
        let at = *at as usize;
        let lba = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        if (450 * 128..600 * 128).contains(&lba) {
            bytes[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        }
    }
    let copy = scratch.path("huge-markers.vmdk");
    fs::write(&copy, &bytes).unwrap();
    let outcome = run_deadline(
        &[
            "files".as_ref(),
            "--hash".as_ref(),
            "sha256".as_ref(),
            copy.as_os_str(),
        ],
        true,
        &scratch,
    );
    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("huge-markers.vmdk")
            && outcome
                .stderr
                .contains("claims 4294967295 compressed bytes"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn refuses_extent_files_that_are_not_regular_files() {
    let scratch = Scratch::new("device");
    let path = scratch.path("device.vmdk");
    fs::write(
        &path,
        "# Disk DescriptorFile\ncreateType=\"fullDevice\"\nRW 8 FLAT \"/dev/zero\" 0\n",
    )
    .unwrap();
    let outcome = run_deadline(&["inspect".as_ref(), path.as_os_str()], false, &scratch);
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("/dev/zero") && outcome.stderr.contains("not a regular file"),
        "{}",
        outcome.stderr
    );
}

// ---------------------------------------------------------------------------------------
// In-memory descriptors (no files): ZERO and NOACCESS extents, limits.
// ---------------------------------------------------------------------------------------

fn open_text(text: &str) -> Result<amiscan::image::Opened, String> {
    let source: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(text.as_bytes().to_vec()));
    amiscan::image::vmdk::open_source(source, "mem.vmdk").map_err(|e| e.to_string())
}

#[test]
fn zero_and_noaccess_extents() {
    let opened = open_text(
        "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 4 ZERO\nNOACCESS 2 ZERO\nRDONLY 2 ZERO\n",
    )
    .unwrap();
    assert_eq!(opened.info.subformat.as_deref(), Some("monolithicFlat"));
    let disk = opened.disk;
    assert_eq!(disk.len(), 8 * 512);
    let mut buf = vec![0xaau8; 2048];
    disk.read_exact_at(0, &mut buf).unwrap();
    assert!(buf.iter().all(|b| *b == 0));
    let err = disk.read_exact_at(2000, &mut buf[..100]).unwrap_err();
    assert!(err.to_string().contains("NOACCESS"), "{err}");
    disk.read_exact_at(6 * 512, &mut buf[..1024]).unwrap();
}

#[test]
fn in_memory_descriptor_cannot_name_files() {
    let err = open_text("# Disk DescriptorFile\nRW 4 FLAT \"x.bin\" 0\n").unwrap_err();
    assert!(
        err.contains("x.bin") && err.contains("not in a directory"),
        "{err}"
    );
}

#[test]
fn descriptor_limits() {
    let many = format!("# Disk DescriptorFile\n{}", "RW 1 ZERO\n".repeat(1025));
    let err = open_text(&many).unwrap_err();
    assert!(err.contains("more than 1024 extents"), "{err}");
    let huge = format!("# Disk DescriptorFile\n{}", "#".repeat(1 << 20));
    let err = open_text(&huge).unwrap_err();
    assert!(err.contains("descriptor"), "{err}");
    let err = open_text("# Disk DescriptorFile\nRW 99999999999999999 ZERO\n").unwrap_err();
    assert!(err.contains("line 2"), "{err}");
    let err = open_text("# Disk DescriptorFile\nRW 8 VMFSRDM \"/dev/sda\"\n").unwrap_err();
    assert!(err.contains("VMFSRDM"), "{err}");
    let err = open_text("# Disk DescriptorFile\ncreateType=\"x\"\n").unwrap_err();
    assert!(err.contains("no extents"), "{err}");
}

// ---------------------------------------------------------------------------------------
// The fuzz corpus, replayed on the stable toolchain.
// ---------------------------------------------------------------------------------------

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = manifest_dir().join("fuzz/corpus/vmdk");
    let mut inputs: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
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

/// Runs `exercise` on its own thread so that a panic names its input and a hang fails.
fn must_return(what: &str, bytes: Vec<u8>) -> u64 {
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| amiscan::image::vmdk::exercise(&bytes));
        let _ = done.send(result);
    });
    match wait.recv_timeout(DEADLINE) {
        Ok(Ok(good)) => good,
        Ok(Err(_)) => panic!("{what}: the VMDK reader panicked"),
        Err(_) => panic!("{what}: did not return within {DEADLINE:?} (hang?)"),
    }
}

#[test]
fn fuzz_corpus_replays() {
    let inputs = corpus();
    assert!(
        inputs.len() >= 5,
        "seed corpus missing: run testdata/build-vmdk.sh --seeds"
    );
    for (path, bytes) in inputs {
        let seed = !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("found-");
        let good = must_return(&path.display().to_string(), bytes);
        if seed {
            assert!(
                good >= 1 << 20,
                "{}: a valid seed read only {good} bytes",
                path.display()
            );
        }
    }
}

#[test]
fn mutated_seeds_never_panic_or_hang() {
    for (path, original) in corpus() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ original.len() as u64);
        for round in 0..150 {
            let mut bytes = original.clone();
            if rng.below_u64(4) == 0 {
                bytes.truncate(rng.below_u64(bytes.len() as u64) as usize);
            } else {
                // Most metadata sits in the first 64 KiB of these small files.
                for _ in 0..1 + rng.below_u64(8) {
                    let at = rng.below_u64(bytes.len().min(65536) as u64) as usize;
                    bytes[at] = match rng.below_u64(3) {
                        0 => 0,
                        1 => 0xff,
                        _ => rng.next() as u8,
                    };
                }
            }
            must_return(&format!("{} round {round}", path.display()), bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Throughput (release mode, by hand):
//   cargo test --release --test integration -- --ignored --nocapture vmdk::throughput
// ---------------------------------------------------------------------------------------

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    runs[runs.len() / 2]
}

/// Reads the whole disk in 1 MiB chunks on `threads` rayon threads; seconds taken.
fn read_all(disk: &Arc<dyn BlockSource>, threads: usize) -> f64 {
    use rayon::prelude::*;
    const CHUNK: u64 = 1 << 20;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let started = Instant::now();
    let sum: u64 = pool.install(|| {
        (0..disk.len().div_ceil(CHUNK))
            .into_par_iter()
            .map_init(
                || vec![0u8; CHUNK as usize],
                |buf, i| {
                    let at = i * CHUNK;
                    let n = (disk.len() - at).min(CHUNK) as usize;
                    disk.read_exact_at(at, &mut buf[..n]).unwrap();
                    u64::from(buf[0]) + u64::from(buf[n - 1])
                },
            )
            .sum()
    });
    std::hint::black_box(sum);
    started.elapsed().as_secs_f64()
}

#[test]
#[ignore = "a benchmark: run by hand in release mode"]
fn throughput_against_qemu_img() {
    let dir = manifest_dir().join("target/bench-images");
    let raw = dir.join("walk.img");
    if !raw.is_file() {
        eprintln!("{} is missing: run the walk benchmark first", raw.display());
        return;
    }
    let size = fs::metadata(&raw).unwrap().len() as f64 / (1 << 20) as f64;
    eprintln!("{} ({size:.0} MiB); medians of 5 runs", raw.display());
    // The same files as benches/make-container-images.sh makes.
    let containers = dir.join("containers");
    fs::create_dir_all(&containers).unwrap();
    for (file, sub) in [
        ("walk-stream.vmdk", "streamOptimized"),
        ("walk-sparse.vmdk", "monolithicSparse"),
    ] {
        let image = containers.join(file);
        if !image.is_file() {
            let status = crate::util::tool_command("qemu-img")
                .args(["convert", "-f", "raw", "-O", "vmdk", "-o"])
                .arg(format!("subformat={sub}"))
                .arg(&raw)
                .arg(&image)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let host = fs::metadata(&image).unwrap().len() as f64 / (1 << 20) as f64;
        let disk = open_image(&image).unwrap().disk;
        read_all(&disk, 2); // warm the page cache
        for threads in [1, 2] {
            let seconds = median((0..5).map(|_| read_all(&disk, threads)).collect());
            eprintln!(
                "{sub} ({host:.0} MiB file): amiscan, {threads} thread(s): {seconds:.3} s, {:.0} MiB/s",
                size / seconds
            );
        }
        let out = std::env::temp_dir().join("out.raw");
        let seconds = median(
            (0..5)
                .map(|_| {
                    let started = Instant::now();
                    let status = crate::util::tool_command("qemu-img")
                        .args(["convert", "-O", "raw"])
                        .arg(&image)
                        .arg(&out)
                        .status()
                        .unwrap();
                    assert!(status.success());
                    started.elapsed().as_secs_f64()
                })
                .collect(),
        );
        let _ = fs::remove_file(&out);
        eprintln!(
            "{sub}: qemu-img convert -O raw: {seconds:.3} s, {:.0} MiB/s",
            size / seconds
        );
    }
}

/// qemu-img's descriptor padding is sometimes not clean: bytes after the first NUL are
/// padding to every hypervisor, and must not make the image unreadable.
#[test]
fn bytes_after_the_descriptors_nul_padding_are_ignored() {
    let scratch = Scratch::new("nul-padding");
    let descriptor = copy_set(
        &scratch,
        &[
            "debian-gpt-twoGbMaxExtentSparse.vmdk",
            "debian-gpt-twoGbMaxExtentSparse-s001.vmdk",
        ],
    );
    let mut bytes = fs::read(&descriptor).unwrap();
    let nul = bytes
        .iter()
        .position(|b| *b == 0)
        .expect("qemu-img pads with NULs");
    bytes[nul + 1] = b'\n';
    bytes[nul + 3] = b'x';
    fs::write(&descriptor, &bytes).unwrap();
    let clean = open_image(&vmdk("debian-gpt-twoGbMaxExtentSparse.vmdk")).unwrap();
    let padded = open_image(&descriptor).unwrap();
    assert_eq!(padded.disk.len(), clean.disk.len());
    let mut a = vec![0u8; 1 << 20];
    let mut b = vec![0u8; 1 << 20];
    clean.disk.read_exact_at(0, &mut a).unwrap();
    padded.disk.read_exact_at(0, &mut b).unwrap();
    assert!(a == b, "the padded descriptor reads a different disk");
}

/// The sparse header checks qemu makes when it opens an extent (vmdk_open_vmdk4 and
/// vmdk_add_extent), against a fresh `qemu-img create -f vmdk` with one field changed:
/// what `qemu-img info` refuses, amiscan refuses too (exit 2), naming the field and its
/// byte offset. amiscan read grain tables of up to 8192 entries and did not look at
/// overHead. Where amiscan is stricter than qemu (version 0, grains over 16 MiB, a grain
/// directory over 4 Mi entries) docs/containers.md says why.
#[test]
fn sparse_header_fields_qemu_refuses_are_refused() {
    let scratch = Scratch::new("qemu-refuses");
    let fresh = scratch.path("fresh.vmdk");
    let status = crate::util::tool_command("qemu-img")
        .args(["create", "-q", "-f", "vmdk"])
        .arg(&fresh)
        .arg("64M")
        .status()
        .unwrap();
    assert!(status.success());
    let original = fs::read(&fresh).unwrap();
    let field = |at: usize| u64::from_le_bytes(original[at..at + 8].try_into().unwrap());
    assert_eq!(&original[..4], b"KDMV");
    assert_eq!(
        u32::from_le_bytes(original[44..48].try_into().unwrap()),
        512
    );
    assert!(field(64) > 0, "overHead");
    let qemu_refuses = |path: &Path| {
        let out = crate::util::tool_command("qemu-img")
            .arg("info")
            .arg(path)
            .output()
            .unwrap();
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let patched = |name: &str, at: usize, value: &[u8]| {
        let mut bytes = original.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        let path = scratch.path(name);
        fs::write(&path, bytes).unwrap();
        path
    };
    for (name, at, value, qemu_says, amiscan_says) in [
        (
            "gtes-1024.vmdk",
            44,
            1024u64.to_le_bytes()[..4].to_vec(),
            "L2 table size too big",
            "numGTEsPerGT at byte 44",
        ),
        (
            "overhead-past-end.vmdk",
            64,
            1_000_000u64.to_le_bytes().to_vec(),
            "File truncated",
            "overHead at byte 64",
        ),
    ] {
        let path = patched(name, at, &value);
        let qemu = qemu_refuses(&path).unwrap_or_else(|| panic!("qemu-img opens {name}"));
        assert!(qemu.contains(qemu_says), "{name}: {qemu}");
        let run = util::amiscan([OsStr::new("inspect"), path.as_os_str()]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(amiscan_says) && run.stderr.contains(name),
            "{name}: {}",
            run.stderr
        );
    }
    // Smaller grain tables than 512 entries open in both.
    let path = patched("gtes-256.vmdk", 44, &256u32.to_le_bytes());
    assert_eq!(qemu_refuses(&path), None);
    let (run, report) = inspect_json(&path);
    assert_ne!(run.code, 2, "{}", run.stderr);
    assert_eq!(report["image"]["format"], "vmdk", "{report:#}");
}
