//! Tests of the FAT reader against real images made by mkfs.vfat and mtools, hand-made
//! corruption, and seeded random byte flips.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::disallowed_names
)]

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;
use crate::filesystems::test_support::Scratch;
use crate::image::{past_end, RawImage};

/// Marsaglia's xorshift64: reproducible noise without a dependency.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// An in-memory image, with `patch` laid over `base` at `at`.
#[derive(Debug)]
struct Overlay {
    base: Arc<Vec<u8>>,
    at: usize,
    patch: Vec<u8>,
}

impl Overlay {
    fn plain(bytes: Vec<u8>) -> Arc<dyn BlockSource> {
        Arc::new(Self {
            base: Arc::new(bytes),
            at: 0,
            patch: Vec::new(),
        })
    }
}

impl BlockSource for Overlay {
    fn len(&self) -> u64 {
        self.base.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = offset as usize;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.base.get(start..end))
            .ok_or_else(|| past_end(offset, buf.len() as u64, self.len()))?;
        buf.copy_from_slice(src);
        for (i, byte) in buf.iter_mut().enumerate() {
            let pos = start + i;
            if pos >= self.at && pos < self.at + self.patch.len() {
                *byte = self.patch[pos - self.at];
            }
        }
        Ok(())
    }
}

/// What a tree holds, by '/'-joined relative path: `None` for a directory, the contents
/// and modification time for a file.
type Tree = BTreeMap<String, Option<(Vec<u8>, i64)>>;

/// Modification time given to the first source file; later ones are two seconds apart.
const MTIME: i64 = 1_600_000_000;

const LONG_SPACED: &str = "Long File Name With Spaces.txt";
const BIG: &str = "big.bin";
const MANY: &str = "many";

/// Writes the source tree the images are made from and returns what it holds.
fn populate(root: &Path) -> Tree {
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("README.TXT".into(), b"read me\n".to_vec()),
        ("grub.cfg".into(), b"set timeout=5\n".to_vec()),
        ("FOO.txt".into(), b"lower-case extension only\n".to_vec()),
        ("MixedCase.Txt".into(), b"mixed\n".to_vec()),
        (LONG_SPACED.into(), b"spaces\n".to_vec()),
        ("Ünïcödé.txt".into(), "ünïcödé\n".as_bytes().to_vec()),
        (
            "thirteen_char".into(),
            b"exactly one long-name slot\n".to_vec(),
        ),
        // In a directory of its own: mtools grows a directory by one cluster at a time, and
        // the name's 21 slots overflow a 512-byte cluster with fewer than six slots free.
        (
            format!("long names/{}.end", "x".repeat(251)),
            b"a 255-character name\n".to_vec(),
        ),
        ("empty.bin".into(), Vec::new()),
        (BIG.into(), rng.bytes(1024 * 1024 + 12_345)),
        ("EFI/BOOT/BOOTX64.EFI".into(), rng.bytes(70_001)),
        (
            "EFI/ubuntu/grub.cfg".into(),
            b"configfile $prefix/grub.cfg\n".to_vec(),
        ),
        ("EFI/ubuntu/shimx64.efi".into(), rng.bytes(4096)),
        ("deep/a/b/c/d/e/f/leaf file.txt".into(), b"deep\n".to_vec()),
        // An 8.3 name with the lower-case base bit and letters beyond ASCII, chosen to be the
        // same bytes in mtools' code page 850 as in Linux's default 437.
        ("Ünïcödé dir/ñandü.TXT".into(), b"nested unicode\n".to_vec()),
    ];
    for i in 0..60 {
        files.push((format!("{MANY}/file number {i:03}.dat"), rng.bytes(i * 37)));
    }

    let mut tree = Tree::new();
    for (i, (path, content)) in files.into_iter().enumerate() {
        let full = root.join(&path);
        let parent = full.parent().unwrap();
        fs::create_dir_all(parent).unwrap();
        fs::write(&full, &content).unwrap();
        let mtime = MTIME + 2 * i as i64;
        fs::File::options()
            .write(true)
            .open(&full)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(mtime as u64))
            .unwrap();
        let mut dir = Path::new(&path).parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            tree.insert(d.to_str().unwrap().to_string(), None);
            dir = d.parent();
        }
        tree.insert(path, Some((content, mtime)));
    }
    // Made on the image with mmd rather than copied.
    tree.insert("Empty Dir".into(), None);
    tree
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mtools(tool: &str, image: &Path) -> Command {
    let mut command = Command::new(tool);
    command
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC")
        .arg("-i")
        .arg(image);
    command
}

/// A freshly made image holding the populated tree, in `scratch`.
fn make_image(scratch: &Scratch, mkfs_args: &[&str], size_mib: u64) -> (PathBuf, Tree) {
    let src = scratch.0.join("src");
    let tree = populate(&src);
    let image = scratch.0.join("fat.img");
    fs::File::create(&image)
        .unwrap()
        .set_len(size_mib << 20)
        .unwrap();
    run(Command::new("mkfs.vfat")
        .args(mkfs_args)
        .args(["-n", "ESP"])
        .arg(&image));
    run(mtools("mmd", &image).args(["::/EFI", "::/Empty Dir"]));
    let mut top = Vec::new();
    let mut efi = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name() == Some("EFI".as_ref()) {
            for inner in fs::read_dir(&path).unwrap() {
                efi.push(inner.unwrap().path());
            }
        } else {
            top.push(path);
        }
    }
    run(mtools("mcopy", &image)
        .args(["-s", "-m"])
        .args(&top)
        .arg("::/"));
    run(mtools("mcopy", &image)
        .args(["-s", "-m"])
        .args(&efi)
        .arg("::/EFI/"));
    (image, tree)
}

fn open_raw(image: &Path) -> FatFs {
    FatFs::open(Arc::new(RawImage::open(image).unwrap())).unwrap()
}

/// Reads the whole filesystem into a `Tree`, checking each node's metadata on the way.
fn read_tree(fs: &FatFs) -> Tree {
    let mut tree = Tree::new();
    let mut pending = vec![(String::new(), fs.root())];
    while let Some((path, dir)) = pending.pop() {
        for entry in fs.read_dir(dir).unwrap() {
            let name = String::from_utf8(entry.name.clone()).unwrap();
            let child = if path.is_empty() {
                name
            } else {
                format!("{path}/{name}")
            };
            let meta = fs.metadata(entry.node).unwrap();
            assert_eq!(meta.inode, entry.node, "{child}");
            assert_eq!((meta.uid, meta.gid, meta.nlink, meta.rdev), (0, 0, 1, None));
            assert_eq!(meta.permissions, 0o755, "{child}");
            match meta.kind {
                FileKind::Dir => {
                    assert_eq!(meta.size, 0);
                    assert!(tree.insert(child.clone(), None).is_none(), "{child} twice");
                    pending.push((child, entry.node));
                }
                FileKind::File => {
                    let mut content = Vec::new();
                    fs.open(entry.node)
                        .unwrap()
                        .read_to_end(&mut content)
                        .unwrap();
                    assert_eq!(meta.size, content.len() as u64, "{child}");
                    assert!(tree.insert(child, Some((content, meta.mtime))).is_none());
                }
                other => panic!("{child}: unexpected kind {other:?}"),
            }
        }
    }
    tree
}

/// The node a path names, resolved with `lookup`.
fn resolve(fs: &FatFs, path: &str) -> NodeId {
    path.split('/').fold(fs.root(), |dir, name| {
        fs.lookup(dir, name.as_bytes())
            .unwrap()
            .unwrap_or_else(|| panic!("{path}: {name} not found"))
    })
}

/// The raw 32-byte slot at a volume offset.
fn slot_at(fs: &FatFs, offset: u64) -> [u8; 32] {
    let mut slot = [0u8; 32];
    fs.source.read_exact_at(offset, &mut slot).unwrap();
    slot
}

/// Clusters in use as `fsck.fat -n -v` counts them (its last line: `IMAGE: 5 files,
/// 12/2000 clusters`).
fn fsck_used_clusters(image: &Path) -> u64 {
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg("-v")
        .arg(image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap();
    let counts = last.rsplit(", ").next().unwrap();
    counts.split('/').next().unwrap().parse().unwrap()
}

fn round_trip(tag: &str, mkfs_args: &[&str], size_mib: u64, expected_type: FatType) {
    let scratch = Scratch::new("fat", tag);
    let (image, expected) = make_image(&scratch, mkfs_args, size_mib);
    let fs = open_raw(&image);
    assert_eq!(fs.geometry.fat_type, expected_type);
    assert_eq!(fs.type_name(), "vfat");
    // The progress estimate's input: the clusters the table marks in use, as dosfstools
    // counts them; FAT keeps no count of files.
    let used = fsck_used_clusters(&image);
    assert!(used > 0);
    assert_eq!(
        fs.usage(),
        Usage {
            nodes: None,
            bytes: Some(used * u64::from(fs.geometry.cluster_size)),
        }
    );

    let actual = read_tree(&fs);
    let names = |t: &Tree| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&actual), names(&expected));
    for (path, want) in &expected {
        let got = &actual[path];
        match (want, got) {
            (None, None) => {}
            (Some((want_data, want_mtime)), Some((got_data, got_mtime))) => {
                assert!(want_data == got_data, "{path}: contents differ");
                assert_eq!(want_mtime, got_mtime, "{path}: mtime");
            }
            _ => panic!("{path}: kind differs"),
        }
    }

    // The root, which has no directory entry.
    let root = fs.metadata(ROOT).unwrap();
    assert_eq!(
        (root.kind, root.inode, root.permissions),
        (FileKind::Dir, ROOT, 0o755)
    );

    // mtools stores an all-lower-case 8.3 name with the NT case bits and no long name.
    let grub = resolve(&fs, "grub.cfg");
    assert_eq!(slot_at(&fs, grub)[12], 0x18);
    assert_ne!(slot_at(&fs, grub - 32)[11], 0x0F);
    let foo = resolve(&fs, "FOO.txt");
    assert_eq!(slot_at(&fs, foo)[12], 0x10);

    // Lookups are case-insensitive and accept the 8.3 alias, as on Linux.
    assert_eq!(fs.lookup(ROOT, b"GRUB.CFG").unwrap(), Some(grub));
    assert_eq!(
        resolve(&fs, "efi/boot/bootx64.efi"),
        resolve(&fs, "EFI/BOOT/BOOTX64.EFI")
    );
    let spaced = resolve(&fs, LONG_SPACED);
    let alias = slot_at(&fs, spaced);
    let alias = match Slot::parse(&alias) {
        Slot::Short(entry) => entry.display_name(false),
        other => panic!("{other:?}"),
    };
    assert_ne!(alias, LONG_SPACED.as_bytes());
    assert_eq!(fs.lookup(ROOT, &alias).unwrap(), Some(spaced));
    assert_eq!(fs.lookup(ROOT, b"no such file").unwrap(), None);

    // Small, odd-sized reads of a multi-cluster file.
    let big = resolve(&fs, BIG);
    let mut reader = fs.open(big).unwrap();
    let mut content = Vec::new();
    let mut buf = [0u8; 777];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        content.extend_from_slice(&buf[..n]);
    }
    assert!(Some(&content) == expected[BIG].as_ref().map(|(data, _)| data));

    // Wrong kinds of node.
    let efi = resolve(&fs, "EFI");
    assert!(matches!(fs.open(efi), Err(FsError::NotAFile)));
    assert!(matches!(fs.open(ROOT), Err(FsError::NotAFile)));
    assert!(matches!(fs.read_dir(big), Err(FsError::NotADirectory)));
    assert!(matches!(fs.read_link(big), Err(FsError::NotASymlink)));
    assert!(matches!(
        fs.metadata(33),
        Err(FsError::Corrupt { offset: 33, .. })
    ));
    assert!(matches!(
        fs.metadata(0),
        Err(FsError::Corrupt { offset: 0, .. })
    ));
    assert!(matches!(
        fs.metadata(u64::MAX),
        Err(FsError::Corrupt { .. })
    ));
}

pub fn fat_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<FatFs>();
}

pub fn fat12_round_trip() {
    round_trip("fat12", &["-F", "12"], 4, FatType::Fat12);
}

pub fn fat16_round_trip() {
    round_trip("fat16", &["-F", "16"], 16, FatType::Fat16);
}

pub fn fat32_round_trip() {
    // One sector per cluster, so that 40 MiB holds the 65525 clusters FAT32 needs.
    round_trip("fat32", &["-F", "32", "-s", "1"], 40, FatType::Fat32);
}

pub fn fat16_4k_sectors_round_trip() {
    round_trip("fat16-4k", &["-F", "16", "-S", "4096"], 64, FatType::Fat16);
}

pub fn small_fat32_reads_as_fat32() {
    // mkfs.fat makes FAT32 with too few clusters on request; Linux reads it as FAT32.
    let scratch = Scratch::new("fat", "small32");
    let image = scratch.0.join("fat.img");
    fs::File::create(&image).unwrap().set_len(8 << 20).unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-n", "SMALL"])
        .arg(&image));
    let fs = open_raw(&image);
    assert_eq!(fs.geometry.fat_type, FatType::Fat32);
    assert!(fs.geometry.cluster_count < 65525);
    // The volume label entry is not a file.
    assert_eq!(fs.read_dir(ROOT).unwrap(), Vec::new());
}

pub fn dos_time_matches_linux() {
    // 2020-09-13 12:26:40: date ((2020-1980)<<9 | 9<<5 | 13), time (12<<11 | 26<<5 | 20).
    assert_eq!(
        dos_time_to_unix(12 << 11 | 26 << 5 | 20, 40 << 9 | 9 << 5 | 13),
        1_600_000_000
    );
    // 1980-01-01 00:00:00, and the zero date Linux clamps to the same day.
    assert_eq!(dos_time_to_unix(0, 1 << 5 | 1), 315_532_800);
    assert_eq!(dos_time_to_unix(0, 0), 315_532_800);
    // 2000-02-29 and 2000-03-01, across a leap day.
    assert_eq!(dos_time_to_unix(0, 20 << 9 | 2 << 5 | 29), 951_782_400);
    assert_eq!(dos_time_to_unix(0, 20 << 9 | 3 << 5 | 1), 951_868_800);
    // 2107-12-31 23:59:58, the last representable moment.
    assert_eq!(
        dos_time_to_unix(23 << 11 | 59 << 5 | 29, 127 << 9 | 12 << 5 | 31),
        4_354_819_198
    );
}

pub fn short_names_decode_code_page_437() {
    let python = Command::new("python3")
        .args([
            "-c",
            "import sys; sys.stdout.write(bytes(range(128, 256)).decode('cp437'))",
        ])
        .output()
        .unwrap();
    assert!(python.status.success());
    let expected = String::from_utf8(python.stdout).unwrap();
    let actual: String = (0x80..=0xFFu8)
        .map(|b| dir::short_name_char(b, false))
        .collect();
    assert_eq!(actual, expected);
}

/// A FAT16 image, its bytes, and the filesystem read from them.
fn fat16_bytes(tag: &str) -> (Vec<u8>, FatFs) {
    let scratch = Scratch::new("fat", tag);
    let (image, _) = make_image(&scratch, &["-F", "16"], 16);
    let bytes = fs::read(image).unwrap();
    let fs = FatFs::open(Overlay::plain(bytes.clone())).unwrap();
    (bytes, fs)
}

fn put16(bytes: &mut [u8], at: u64, value: u16) {
    let at = at as usize;
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Offset of a cluster's FAT16 entry in the first FAT.
fn fat16_entry(fs: &FatFs, cluster: u32) -> u64 {
    fs.geometry.fat_offset + 2 * u64::from(cluster)
}

fn first_cluster(fs: &FatFs, node: NodeId) -> u32 {
    fs.entry(node).unwrap().first_cluster(fs.is_fat32())
}

/// The filesystem error that stops a file being read: from `open`, which checks the whole
/// chain, or failing that from reading it to the end.
fn read_error(fs: &FatFs, node: NodeId) -> FsError {
    let mut reader = match fs.open(node) {
        Ok(reader) => reader,
        Err(error) => return error,
    };
    let mut sink = Vec::new();
    let error = reader
        .read_to_end(&mut sink)
        .expect_err("the read should fail");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    let inner = error.into_inner().unwrap().downcast::<FsError>().unwrap();
    *inner
}

/// Asserts a corruption at `offset` whose detail holds `detail_contains`; returns its kind.
fn assert_corrupt(error: &FsError, offset: u64, detail_contains: &str) -> CorruptKind {
    match error {
        FsError::Corrupt {
            offset: at,
            kind,
            detail,
            ..
        } => {
            assert_eq!(*at, offset, "{error}");
            assert!(detail.contains(detail_contains), "{error}");
            *kind
        }
        other => panic!("expected corruption, got {other}"),
    }
}

pub fn boot_sector_corruption_is_reported() {
    let (bytes, _) = fat16_bytes("bpb");
    let cases: [(usize, &[u8], u64); 6] = [
        (11, &[0, 0], 11),       // bytes per sector 0
        (11, &[0, 3], 11),       // 768: not a power of two
        (13, &[3], 13),          // sectors per cluster 3
        (14, &[0, 0], 14),       // no reserved sectors
        (16, &[0], 16),          // no FATs
        (22, &[0xFF, 0xFF], 19), // FATs larger than the volume
    ];
    for (at, patch, offset) in cases {
        let mut bad = bytes.clone();
        bad[at..at + patch.len()].copy_from_slice(patch);
        let error = FatFs::open(Overlay::plain(bad)).expect_err("corrupt boot sector");
        assert!(
            matches!(error, FsError::Corrupt { offset: o, .. } if o == offset),
            "patch at {at}: {error}"
        );
    }
    let error = FatFs::open(Overlay::plain(bytes[..300].to_vec())).expect_err("short");
    assert!(matches!(error, FsError::Io { offset: 0, .. }));
}

pub fn file_chain_loops_are_reported() {
    let (bytes, fs) = fat16_bytes("fileloop");
    let big = resolve(&fs, BIG);
    let first = first_cluster(&fs, big);

    // A cluster that links to itself.
    let mut bad = bytes.clone();
    put16(&mut bad, fat16_entry(&fs, first), first as u16);
    let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
    assert_corrupt(&read_error(&fs_bad, big), fat16_entry(&fs, first), "loops");

    // A later cluster that links back to an earlier one.
    let mut bad = bytes.clone();
    put16(&mut bad, fat16_entry(&fs, first + 5), (first + 2) as u16);
    let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
    assert_corrupt(
        &read_error(&fs_bad, big),
        fat16_entry(&fs, first + 5),
        "loops",
    );
}

pub fn directory_chain_loops_are_reported() {
    let (bytes, fs) = fat16_bytes("dirloop");
    let many = resolve(&fs, MANY);
    let first = first_cluster(&fs, many);
    let at = fat16_entry(&fs, first) as usize;
    let second = u32::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    assert!(
        fs.geometry.is_data_cluster(second),
        "{MANY} should span clusters"
    );
    let mut bad = bytes.clone();
    put16(&mut bad, fat16_entry(&fs, second), first as u16);
    let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
    let error = fs_bad.read_dir(many).expect_err("loop");
    let kind = assert_corrupt(&error, fat16_entry(&fs, second), "loops");
    assert_eq!(kind, CorruptKind::Loop);
}

pub fn chain_links_outside_the_volume_are_reported() {
    let (bytes, fs) = fat16_bytes("pastend");
    let big = resolve(&fs, BIG);
    let first = first_cluster(&fs, big);
    let past = fs.geometry.cluster_count + 5;
    let entry = fat16_entry(&fs, first + 1);
    let cases: [(u16, &str); 4] = [
        (past as u16, "outside"),
        (1, "outside"),
        (0, "marked free"),
        (0xFFF7, "marked bad"),
    ];
    for (value, detail) in cases {
        let mut bad = bytes.clone();
        put16(&mut bad, entry, value);
        let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
        assert_corrupt(&read_error(&fs_bad, big), entry, detail);
    }

    // The chain ending early: the file is longer than its clusters.
    let mut bad = bytes.clone();
    put16(&mut bad, entry, 0xFFFF);
    let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
    assert_corrupt(&read_error(&fs_bad, big), big, "chain ends");
}

/// A chain broken past the first clusters of a file is seen by `metadata` and `open`, not
/// only by a read that reaches the break: a command that lists files, or reads only their
/// first kilobytes, must not take the file as sound.
pub fn broken_chains_are_seen_before_the_data_is_read() {
    let (bytes, fs) = fat16_bytes("wholechain");
    let big = resolve(&fs, BIG);
    let first = first_cluster(&fs, big);
    let size = fs.metadata(big).unwrap().size;
    let clusters = size.div_ceil(u64::from(fs.geometry.cluster_size));
    assert!(clusters > 20, "{BIG} should span many clusters");
    // Well past the 8 KiB the rules' content pass reads.
    let late = first + 16;
    let entry = fat16_entry(&fs, late);
    let cases: [(u16, u64, &str, CorruptKind); 4] = [
        (
            0xFFFF,
            big,
            "chain ends after 17 clusters",
            CorruptKind::Truncated,
        ),
        (first as u16, entry, "loops", CorruptKind::Loop),
        (0, entry, "marked free", CorruptKind::Invalid),
        (0xFFF7, entry, "marked bad", CorruptKind::Invalid),
    ];
    for (value, offset, detail, kind) in cases {
        let mut bad = bytes.clone();
        put16(&mut bad, entry, value);
        let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
        let error = fs_bad.metadata(big).expect_err(detail);
        assert_eq!(assert_corrupt(&error, offset, detail), kind, "{error}");
        let error = fs_bad.open(big).map(|_| ()).expect_err(detail);
        assert_eq!(assert_corrupt(&error, offset, detail), kind, "{error}");
        // The rest of the volume still reads.
        assert!(fs_bad.metadata(resolve(&fs_bad, "README.TXT")).is_ok());
    }

    // A chain longer than its file is what fsck.fat truncates: the file reads as its size.
    let last = first + u32::try_from(clusters).unwrap() - 1;
    let spare = fs.geometry.cluster_end() - 1;
    let spare_entry = fat16_entry(&fs, spare as u32);
    assert_eq!(
        &bytes[spare_entry as usize..spare_entry as usize + 2],
        &[0, 0]
    );
    let mut longer = bytes.clone();
    put16(&mut longer, fat16_entry(&fs, last), spare as u16);
    put16(&mut longer, spare_entry, 0xFFFF);
    let fs_longer = FatFs::open(Overlay::plain(longer)).unwrap();
    assert_eq!(fs_longer.metadata(big).unwrap().size, size);
    let mut content = Vec::new();
    fs_longer
        .open(big)
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content.len() as u64, size);
}

pub fn huge_first_clusters_are_reported() {
    let (bytes, fs) = fat16_bytes("hugecluster");
    let big = resolve(&fs, BIG);
    let many = resolve(&fs, MANY);
    for node in [big, many] {
        let mut bad = bytes.clone();
        put16(&mut bad, node + 26, 0xFFF0);
        let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
        let error = if node == big {
            fs_bad.open(node).map(|_| ()).expect_err("huge cluster")
        } else {
            fs_bad.read_dir(node).map(|_| ()).expect_err("huge cluster")
        };
        assert_corrupt(&error, node, "first cluster 65520");
    }

    // A file size no chain on this volume could hold.
    let mut bad = bytes.clone();
    bad[big as usize + 28..big as usize + 32].copy_from_slice(&u32::MAX.to_le_bytes());
    let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
    assert_corrupt(&fs_bad.open(big).map(|_| ()).unwrap_err(), big, "needs");
}

pub fn fat32_huge_first_cluster_is_reported() {
    let scratch = Scratch::new("fat", "huge32");
    let (image, _) = make_image(&scratch, &["-F", "32", "-s", "1"], 40);
    let bytes = fs::read(image).unwrap();
    let fs = FatFs::open(Overlay::plain(bytes.clone())).unwrap();
    let big = resolve(&fs, BIG);
    let mut bad = bytes.clone();
    put16(&mut bad, big + 20, 0x0FFF);
    let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
    let error = fs_bad.open(big).map(|_| ()).unwrap_err();
    assert_eq!(
        assert_corrupt(&error, big, "outside"),
        CorruptKind::OutOfRange
    );

    // The root cluster field itself.
    let mut bad = bytes;
    bad[44..48].copy_from_slice(&0x0FFF_FFF0u32.to_le_bytes());
    let error = FatFs::open(Overlay::plain(bad)).unwrap_err();
    assert_corrupt(&error, 44, "root directory cluster");
}

pub fn broken_long_names_fall_back_to_the_short_name() {
    let (bytes, fs) = fat16_bytes("lfn");
    let spaced = resolve(&fs, LONG_SPACED);
    let short = match Slot::parse(&slot_at(&fs, spaced)) {
        Slot::Short(entry) => entry.display_name(true),
        other => panic!("{other:?}"),
    };
    // 30 characters take three slots, stored as 0x43, 0x02, 0x01 before the short entry.
    assert_eq!(slot_at(&fs, spaced - 32)[0], 0x01);
    assert_eq!(slot_at(&fs, spaced - 64)[0], 0x02);
    assert_eq!(slot_at(&fs, spaced - 96)[0], 0x43);
    let patches: [(u64, u8); 4] = [
        (spaced - 32 + 13, 0), // wrong checksum in the last slot
        (spaced - 64, 0x05),   // a sequence number out of order
        (spaced - 96, 0x03),   // no first-slot flag
        (spaced - 64, 0xE5),   // a deleted slot in the middle
    ];
    for (at, value) in patches {
        let mut bad = bytes.clone();
        bad[at as usize] = value;
        let fs_bad = FatFs::open(Overlay::plain(bad)).unwrap();
        let names: Vec<Vec<u8>> = fs_bad
            .read_dir(ROOT)
            .unwrap()
            .into_iter()
            .filter(|e| e.node == spaced)
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![short.clone()], "patch at {at}");
    }
}

/// Reads everything reachable, ignoring errors, within fixed budgets (a corrupt FAT can
/// make directories cyclic). Returns how many nodes were visited.
fn walk_everything(fs: &FatFs) -> usize {
    let mut seen_dirs = HashSet::new();
    let mut pending = vec![(fs.root(), 0)];
    let mut visited = 0;
    let mut bytes_budget: u64 = 64 << 20;
    while let Some((node, depth)) = pending.pop() {
        visited += 1;
        if visited > 20_000 {
            break;
        }
        let _ = fs.metadata(node);
        let _ = fs.read_link(node);
        if let Ok(entries) = fs.read_dir(node) {
            if !seen_dirs.insert(node) || depth > 16 {
                continue;
            }
            if let Some(first) = entries.first() {
                let _ = fs.lookup(node, &first.name);
                let _ = fs.lookup(node, b"NO-SUCH.NAM");
            }
            pending.extend(entries.into_iter().map(|e| (e.node, depth + 1)));
        } else if let Ok(reader) = fs.open(node) {
            let copied = io::copy(&mut reader.take(bytes_budget), &mut io::sink()).unwrap_or(0);
            bytes_budget = bytes_budget.saturating_sub(copied);
        }
    }
    visited
}

pub fn random_byte_flips_never_panic_or_hang() {
    let scratch = Scratch::new("fat", "fuzz");
    let mut images = Vec::new();
    for (name, args, size) in [
        ("fat12", &["-F", "12"][..], 4),
        ("fat16", &["-F", "16"][..], 16),
        ("fat32", &["-F", "32", "-s", "1"][..], 40),
    ] {
        let dir = Scratch(scratch.0.join(name));
        fs::create_dir_all(&dir.0).unwrap();
        let (image, _) = make_image(&dir, args, size);
        images.push((name, Arc::new(fs::read(image).unwrap())));
    }
    const ROUNDS: usize = 200;
    let mut rng = Xorshift(0x5EED_F00D_CAFE_1234);
    for (name, base) in images {
        let clean = FatFs::open(Overlay::plain(base.to_vec())).unwrap();
        let intact = walk_everything(&clean);
        // The first 64 KiB (boot sector, FATs, FAT12/16 root) and 64 KiB of the data region
        // (the FAT32 root and early subdirectories).
        let windows = [0, clean.geometry.data_offset as usize];
        for at in windows {
            let len = (64 << 10).min(base.len() - at);
            let (mut opened, mut nodes) = (0, 0);
            for round in 0..ROUNDS {
                let mut patch = base[at..at + len].to_vec();
                for _ in 0..=rng.below(8) {
                    // Half the flips land in the window's first 4 KiB, where the boot
                    // sector, the used part of the FAT and the first directories are dense.
                    let span = if rng.next().is_multiple_of(2) {
                        4096
                    } else {
                        len
                    };
                    let i = rng.below(span as u64) as usize;
                    patch[i] = rng.next() as u8;
                }
                let source: Arc<dyn BlockSource> = Arc::new(Overlay {
                    base: Arc::clone(&base),
                    at,
                    patch,
                });
                let started = Instant::now();
                if let Ok(fs) = FatFs::open(source) {
                    opened += 1;
                    nodes += walk_everything(&fs);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "{name} window {at} round {round} took {:?}",
                    started.elapsed()
                );
            }
            eprintln!("{name} window at {at}: {opened}/{ROUNDS} opened, {nodes} nodes walked");
            // Most flips miss the boot sector, so the walk itself gets exercised.
            assert!(
                opened >= ROUNDS / 2,
                "{name} window at {at}: only {opened} opened"
            );
        }
        assert!(
            intact > 80,
            "{name}: only {intact} nodes in the clean image"
        );
    }
}
