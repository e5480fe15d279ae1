//! Tests of the ext4 reader against images built at test time with mke2fs, compared
//! with the directory tree they were built from; plus targeted corruption and a
//! seeded random-corruption walk.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::Ext4Fs;
use crate::checksums::ChecksumPolicy;
use crate::filesystems::test_support::{tool, Scratch};
use crate::filesystems::{FileKind, Filesystem, FsError, Metadata, NodeId, Usage};
use crate::image::{BlockSource, CorruptKind, RawImage};

// ---------------------------------------------------------------------------------------
// Scaffolding
// ---------------------------------------------------------------------------------------

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `mke2fs -q -F <args> -d src img size`.
fn mkfs(args: &[&str], src: &Path, img: &Path, size: &str) {
    run(Command::new(tool("mke2fs"))
        .args(["-q", "-F"])
        .args(args)
        .arg("-d")
        .arg(src)
        .arg(img)
        .arg(size));
}

fn debugfs(img: &Path, request: &str) -> String {
    run(Command::new(tool("debugfs"))
        .arg("-R")
        .arg(request)
        .arg(img))
}

fn open_path(img: &Path) -> Result<Ext4Fs, FsError> {
    Ext4Fs::open(Arc::new(RawImage::open(img).unwrap()))
}

fn open_img(img: &Path) -> Ext4Fs {
    open_path(img).unwrap_or_else(|e| panic!("{}: {e}", img.display()))
}

/// A whole disk in memory, for images mutated by the tests.
#[derive(Debug)]
struct Mem(Vec<u8>);

impl BlockSource for Mem {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or_else(|| crate::image::past_end(offset, buf.len() as u64, self.len()))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Opens mutated bytes with checksums ignored: what these tests corrupt is the structure
/// behind a checksum, and the checks of its fields are what they exercise (on a
/// metadata_csum image the checksum would refuse it first). Checksum verification has its
/// own tests (`open_bytes_with`).
fn open_bytes(bytes: Vec<u8>) -> Result<Ext4Fs, FsError> {
    open_bytes_with(bytes, ChecksumPolicy::Ignore)
}

fn open_bytes_with(bytes: Vec<u8>, policy: ChecksumPolicy) -> Result<Ext4Fs, FsError> {
    Ext4Fs::open_with(Arc::new(Mem(bytes)), policy)
}

/// xorshift64*: deterministic bytes without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 32) as u8).collect()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------
// The source tree
// ---------------------------------------------------------------------------------------

const BIG_DIR_ENTRIES: usize = 3000;
const SLOW_TARGET: &str = "a/rather/long/symlink/target/that/does/not/fit/in/the/sixty/bytes/of/i_block/so/it/needs/a/data/block/of/its/own";
const SPARSE_SIZE: u64 = 100 * 1024 * 1024;

fn write_file(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap();
}

fn set_mtime(path: &Path, time: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// Populates `root` with every kind of object the reader must handle. With `small`, the
/// big directory and the sparse file are left out (for fast corruption loops).
fn populate(root: &Path, small: bool) {
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    fs::create_dir_all(root).unwrap();
    write_file(&root.join("empty"), b"");
    write_file(&root.join("hello.txt"), b"hello, world\n");
    for len in [59usize, 60, 61, 1023, 1024, 1025, 4095, 4096, 4097] {
        write_file(&root.join(format!("len-{len}")), &rng.bytes(len));
    }
    write_file(&root.join("random-1m"), &rng.bytes(1 << 20));
    write_file(&root.join("random-3m-plus"), &rng.bytes(3 * (1 << 20) + 5));

    // Every other 4 KiB chunk written: dozens of extents, so the tree needs depth >= 1.
    let frag = fs::File::create(root.join("fragmented")).unwrap();
    for i in 0..40u64 {
        use std::os::unix::fs::FileExt;
        frag.write_all_at(&rng.bytes(4096), i * 8192).unwrap();
    }
    drop(frag);

    let mode_file = root.join("setuid-prog");
    write_file(&mode_file, b"#!/bin/sh\n");
    fs::set_permissions(&mode_file, fs::Permissions::from_mode(0o4755)).unwrap();
    let private = root.join("private");
    write_file(&private, b"secret");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    let owned = root.join("owned-by-big-ids");
    write_file(&owned, b"ids");
    let _ = std::os::unix::fs::chown(&owned, Some(100_000), Some(70_000));
    let owned2 = root.join("owned-by-small-ids");
    write_file(&owned2, b"ids");
    let _ = std::os::unix::fs::chown(&owned2, Some(1234), Some(5678));

    let old = root.join("old-file");
    write_file(&old, b"from the sixties");
    set_mtime(&old, UNIX_EPOCH - Duration::from_secs(300_000_000));
    set_mtime(
        &root.join("hello.txt"),
        UNIX_EPOCH + Duration::from_secs(1_000_000_000),
    );

    symlink("hello.txt", root.join("fast-link")).unwrap();
    symlink(SLOW_TARGET, root.join("slow-link")).unwrap();
    symlink("does/not/exist", root.join("dangling-link")).unwrap();
    symlink("x".repeat(59), root.join("link-59")).unwrap();
    symlink("y".repeat(60), root.join("link-60")).unwrap();

    write_file(&root.join("hard-1"), b"linked twice");
    fs::hard_link(root.join("hard-1"), root.join("hard-2")).unwrap();

    let deep = root.join("a").join("b").join("c");
    fs::create_dir_all(&deep).unwrap();
    write_file(&deep.join("leaf.txt"), b"three levels down");
    write_file(
        &root.join("a").join("b").join("mid.txt"),
        b"two levels down",
    );
    let sticky = root.join("sticky");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir(root.join("empty-dir")).unwrap();

    write_file(
        &root.join(OsStr::from_bytes(b"bad-utf8-\xff\xfe-name")),
        b"latin1",
    );
    write_file(&root.join("line\nbreak"), b"newline in name");
    write_file(&root.join("x".repeat(255)), b"longest name");

    run(Command::new("mkfifo").arg(root.join("fifo")));
    // Device nodes need CAP_MKNOD; the comparison covers whatever could be created.
    let _ = Command::new("mknod")
        .arg(root.join("null-dev"))
        .args(["c", "1", "3"])
        .status();
    let _ = Command::new("mknod")
        .arg(root.join("big-dev"))
        .args(["b", "259", "300"])
        .status();

    if small {
        return;
    }
    let big = root.join("bigdir");
    fs::create_dir(&big).unwrap();
    for i in 0..BIG_DIR_ENTRIES {
        fs::File::create(big.join(format!("entry-{i:05}-with-a-longer-name"))).unwrap();
    }
    write_file(&big.join("nonempty"), b"in the big directory");

    // A sparse file: bytes in the middle (double indirect with 1 KiB blocks) and near
    // the end (triple indirect), a hole at the end.
    let sparse = fs::File::create(root.join("sparse")).unwrap();
    sparse.set_len(SPARSE_SIZE).unwrap();
    use std::os::unix::fs::FileExt;
    sparse.write_all_at(b"MIDDLE", SPARSE_SIZE / 2).unwrap();
    sparse
        .write_all_at(&rng.bytes(10_000), 90 * 1024 * 1024 + 17)
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------

/// What both sides must agree on for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: FileKind,
    permissions: u32,
    uid: u32,
    gid: u32,
    /// Regular files and symlinks only; directory sizes differ by design.
    size: Option<u64>,
    mtime: i64,
    /// Directories are compared separately (lost+found adds a link to the root).
    nlink: Option<u32>,
    rdev: Option<(u32, u32)>,
    target: Option<Vec<u8>>,
    digest: Option<[u8; 32]>,
}

fn kind_of(ft: fs::FileType) -> FileKind {
    if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_file() {
        FileKind::File
    } else if ft.is_char_device() {
        FileKind::CharDevice
    } else if ft.is_block_device() {
        FileKind::BlockDevice
    } else if ft.is_fifo() {
        FileKind::Fifo
    } else {
        FileKind::Socket
    }
}

fn digest_reader(mut r: impl Read, buf_size: usize) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; buf_size];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.finalize().into()
}

/// path → (node, source inode number).
fn walk_source(root: &Path) -> BTreeMap<Vec<u8>, (Node, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let mut rel = prefix.clone();
            rel.push(b'/');
            rel.extend_from_slice(entry.file_name().as_bytes());
            let meta = fs::symlink_metadata(&path).unwrap();
            let kind = kind_of(meta.file_type());
            let rdev = meta.rdev();
            let node = Node {
                kind,
                permissions: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                size: matches!(kind, FileKind::File | FileKind::Symlink).then(|| meta.len()),
                mtime: meta.mtime(),
                nlink: (kind != FileKind::Dir).then(|| meta.nlink() as u32),
                rdev: matches!(kind, FileKind::CharDevice | FileKind::BlockDevice).then(|| {
                    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
                    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
                    (major as u32, minor as u32)
                }),
                target: (kind == FileKind::Symlink).then(|| {
                    fs::read_link(&path)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec()
                }),
                digest: (kind == FileKind::File)
                    .then(|| digest_reader(fs::File::open(&path).unwrap(), 1 << 16)),
            };
            if kind == FileKind::Dir {
                stack.push((path, rel.clone()));
            }
            out.insert(rel, (node, meta.ino()));
        }
    }
    out
}

/// path → (node, inode), walking the image from the root by inode number.
fn walk_image(fs: &Ext4Fs) -> BTreeMap<Vec<u8>, (Node, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(fs.root(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs.read_dir(dir).unwrap() {
            if prefix.is_empty() && entry.name == b"lost+found" {
                continue;
            }
            let mut rel = prefix.clone();
            rel.push(b'/');
            rel.extend_from_slice(&entry.name);
            let meta = fs.metadata(entry.node).unwrap();
            assert_eq!(meta.inode, entry.node);
            let node = image_node(fs, entry.node, &meta);
            if meta.kind == FileKind::Dir {
                stack.push((entry.node, rel.clone()));
            }
            assert!(
                out.insert(rel, (node, entry.node)).is_none(),
                "duplicate name"
            );
        }
    }
    out
}

fn image_node(fs: &Ext4Fs, node: NodeId, meta: &Metadata) -> Node {
    let kind = meta.kind;
    let digest = (kind == FileKind::File).then(|| {
        // Small reads go through the read-ahead buffer, large ones straight to the caller.
        let small = digest_reader(fs.open(node).unwrap(), 8192);
        if meta.size > 256 * 1024 {
            let large = digest_reader(fs.open(node).unwrap(), 1 << 20);
            assert_eq!(small, large, "buffered and direct reads differ");
        }
        small
    });
    let target = (kind == FileKind::Symlink).then(|| fs.read_link(node).unwrap());
    node_of(meta, target, digest)
}

/// What is compared of a node, from its metadata, link target and content digest.
fn node_of(meta: &Metadata, target: Option<Vec<u8>>, digest: Option<[u8; 32]>) -> Node {
    let kind = meta.kind;
    Node {
        kind,
        permissions: u32::from(meta.permissions),
        uid: meta.uid,
        gid: meta.gid,
        size: matches!(kind, FileKind::File | FileKind::Symlink).then_some(meta.size),
        mtime: meta.mtime,
        nlink: (kind != FileKind::Dir).then_some(meta.nlink),
        rdev: meta.rdev,
        target,
        digest,
    }
}

/// Everything the reader returns must match the source tree, hard links included.
fn compare(src: &Path, fs: &Ext4Fs) {
    let expected = walk_source(src);
    let actual = walk_image(fs);
    let expected_names: Vec<_> = expected
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let actual_names: Vec<_> = actual
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        expected_names.len(),
        actual_names.len(),
        "entry counts differ"
    );
    assert_eq!(expected_names, actual_names);
    let mut src_to_img: HashMap<u64, u64> = HashMap::new();
    let mut img_to_src: HashMap<u64, u64> = HashMap::new();
    for (path, (want, src_ino)) in &expected {
        let (got, img_ino) = &actual[path];
        assert_eq!(want, got, "{}", String::from_utf8_lossy(path));
        assert_eq!(
            *src_to_img.entry(*src_ino).or_insert(*img_ino),
            *img_ino,
            "hard links"
        );
        assert_eq!(
            *img_to_src.entry(*img_ino).or_insert(*src_ino),
            *src_ino,
            "hard links"
        );
    }
    // Directory link counts: 2 + subdirectories, as the source has.
    for (path, (node, ino)) in &actual {
        if node.kind == FileKind::Dir {
            let subdirs = actual
                .iter()
                .filter(|(p, (n, _))| {
                    n.kind == FileKind::Dir
                        && p.len() > path.len() + 1
                        && p.starts_with(path)
                        && p[path.len()] == b'/'
                        && !p[path.len() + 1..].contains(&b'/')
                })
                .count() as u32;
            assert_eq!(
                fs.metadata(*ino).unwrap().nlink,
                2 + subdirs,
                "{}",
                String::from_utf8_lossy(path)
            );
        }
    }
    let hard = &actual[b"/hard-1".as_slice()];
    assert_eq!(hard.1, actual[b"/hard-2".as_slice()].1);
    assert_eq!(hard.0.nlink, Some(2));
    assert_eq!(
        fs.read_dir(fs.root())
            .unwrap()
            .iter()
            .filter(|e| e.name == b"lost+found")
            .count(),
        1
    );
}

/// Builds the full tree, makes an image with `args`, checks the type name and compares.
fn roundtrip(tag: &str, args: &[&str], size: &str, type_name: &str) -> (Scratch, PathBuf) {
    roundtrip_with(tag, args, size, type_name, |_| {})
}

fn roundtrip_with(
    tag: &str,
    args: &[&str],
    size: &str,
    type_name: &str,
    tweak: fn(&Path),
) -> (Scratch, PathBuf) {
    let scratch = Scratch::new("ext4", tag);
    let src = scratch.path("src");
    populate(&src, false);
    tweak(&src);
    let img = scratch.path("img");
    mkfs(args, &src, &img, size);
    let fs = open_img(&img);
    assert_eq!(fs.type_name(), type_name);
    if let Some(pos) = args.iter().position(|a| *a == "-b") {
        assert_eq!(fs.sb.block_size.to_string(), args[pos + 1]);
    }
    if let Some(pos) = args.iter().position(|a| *a == "-C") {
        assert_eq!(fs.sb.cluster_size.to_string(), args[pos + 1]);
    }
    compare(&src, &fs);
    (scratch, img)
}

// ---------------------------------------------------------------------------------------
// Round trips, one per on-disk variant
// ---------------------------------------------------------------------------------------

pub fn ext4_default() {
    roundtrip("ext4", &["-t", "ext4", "-b", "4096"], "64M", "ext4");
}

pub fn ext4_32bit_descriptors_no_csum() {
    roundtrip(
        "ext4-32",
        &["-t", "ext4", "-b", "4096", "-O", "^64bit,^metadata_csum"],
        "64M",
        "ext4",
    );
}

pub fn ext4_1k_blocks() {
    roundtrip("ext4-1k", &["-t", "ext4", "-b", "1024"], "64M", "ext4");
}

pub fn ext4_64k_blocks() {
    roundtrip("ext4-64k", &["-t", "ext4", "-b", "65536"], "400M", "ext4");
}

pub fn ext4_128_byte_inodes() {
    roundtrip(
        "ext4-i128",
        &["-t", "ext4", "-b", "4096", "-I", "128"],
        "64M",
        "ext4",
    );
}

pub fn ext4_inline_data() {
    // mke2fs 1.47.0 with inline_data drops a sparse file's trailing hole from i_size
    // (debugfs agrees with this reader), so give the sparse file data at its end.
    let end_with_data = |src: &Path| {
        use std::os::unix::fs::FileExt;
        let f = fs::File::options()
            .write(true)
            .open(src.join("sparse"))
            .unwrap();
        f.write_all_at(b"END", SPARSE_SIZE - 3).unwrap();
    };
    let (_scratch, img) = roundtrip_with(
        "ext4-inline",
        &["-t", "ext4", "-O", "inline_data"],
        "64M",
        "ext4",
        end_with_data,
    );
    // Small files, small directories and the slow symlink must really be inline.
    for path in ["/slow-link", "/a/b", "/hello.txt", "/len-61"] {
        assert_ne!(
            inode_flags(&img, path) & 0x1000_0000,
            0,
            "{path} is not inline"
        );
    }
}

pub fn ext4_inline_data_dir_continued_in_xattr() {
    let scratch = Scratch::new("ext4", "inline-dir");
    let src = scratch.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    write_file(&src.join("d").join("f0"), b"x\n");
    write_file(&src.join("g"), b"y\n");
    write_file(&src.join("spill"), &[b'z'; 100]);
    let img = scratch.path("img");
    mkfs(
        &["-t", "ext4", "-O", "inline_data", "-I", "512"],
        &src,
        &img,
        "16M",
    );
    let stat = debugfs(&img, "stat /spill");
    assert!(stat.contains("Size of inline data: 100"), "{stat}");
    // e2fsprogs never grows an inline directory into system.data (the kernel does), so
    // write that continuation by hand: one entry, "g-again", a second link to /g.
    let fs = open_img(&img);
    let g = fs.lookup(fs.root(), b"g").unwrap().unwrap();
    let mut entry = Vec::new();
    entry.extend_from_slice(&u32::try_from(g).unwrap().to_le_bytes());
    entry.extend_from_slice(&20u16.to_le_bytes());
    entry.extend_from_slice(&[7, 1]);
    entry.extend_from_slice(b"g-again");
    entry.resize(20, 0);
    let blob = scratch.path("dirents");
    write_file(&blob, &entry);
    let write = |req: String| {
        run(Command::new(tool("debugfs"))
            .arg("-w")
            .arg("-R")
            .arg(req)
            .arg(&img))
    };
    write(format!("ea_set -f {} /d system.data", blob.display()));
    write("sif /d size 80".into());
    write("sif /g links_count 2".into());
    let fsck = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{fsck:?}");

    let fs = open_img(&img);
    let d = fs.lookup(fs.root(), b"d").unwrap().unwrap();
    let names: Vec<_> = fs
        .read_dir(d)
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.node))
        .collect();
    let f0 = fs.lookup(d, b"f0").unwrap().unwrap();
    assert_eq!(names, vec![(b"f0".to_vec(), f0), (b"g-again".to_vec(), g)]);
    assert_eq!(fs.metadata(g).unwrap().nlink, 2);
    let spill = fs.lookup(fs.root(), b"spill").unwrap().unwrap();
    assert_eq!(read_all(&fs, spill).unwrap(), vec![b'z'; 100]);
    assert_eq!(read_all(&fs, f0).unwrap(), b"x\n");
}

pub fn ext4_meta_bg() {
    // 1 KiB blocks make 8 MiB groups: 37 groups, 64-byte descriptors, 16 per block, so
    // descriptor blocks live in groups 0, 16 and 32. Few inodes per group spread the
    // tree over many groups.
    let (_scratch, img) = roundtrip(
        "ext4-metabg",
        &[
            "-t",
            "ext4",
            "-b",
            "1024",
            "-O",
            "meta_bg,^resize_inode",
            "-N",
            "4200",
        ],
        "300M",
        "ext4",
    );
    let fs = open_img(&img);
    assert!(fs.groups.len() > 32);
    assert!(fs.sb.has_incompat(super::superblock::INCOMPAT_META_BG));
    // Some inode must live past group 16, where the descriptors come from a meta_bg block.
    let ipg = u64::from(fs.sb.s_inodes_per_group);
    let big = fs.lookup(fs.root(), b"bigdir").unwrap().unwrap();
    let last = fs
        .read_dir(big)
        .unwrap()
        .iter()
        .map(|e| e.node)
        .max()
        .unwrap();
    assert!(last > 17 * ipg, "inode {last} with {ipg} per group");
}

pub fn ext4_bigalloc() {
    roundtrip(
        "ext4-bigalloc",
        &["-t", "ext4", "-O", "bigalloc", "-C", "65536"],
        "256M",
        "ext4",
    );
}

pub fn ext3_4k() {
    roundtrip("ext3", &["-t", "ext3", "-b", "4096"], "64M", "ext3");
}

pub fn ext3_1k_triple_indirect() {
    let (_scratch, img) = roundtrip("ext3-1k", &["-t", "ext3", "-b", "1024"], "64M", "ext3");
    // 90 MiB into the file is past 12 + 256 + 256^2 blocks: the triple indirect tree.
    let stat = debugfs(&img, "stat /sparse");
    assert!(stat.contains("(TIND)"), "{stat}");
}

pub fn ext2_4k() {
    roundtrip("ext2", &["-t", "ext2", "-b", "4096"], "64M", "ext2");
}

pub fn ext2_1k_128_byte_inodes() {
    roundtrip(
        "ext2-1k",
        &["-t", "ext2", "-b", "1024", "-I", "128"],
        "64M",
        "ext2",
    );
}

pub fn ext2_revision_0_without_filetype() {
    let scratch = Scratch::new("ext4", "ext2-r0");
    let src = scratch.path("src");
    populate(&src, true);
    let img = scratch.path("img");
    mkfs(&["-t", "ext2", "-r", "0"], &src, &img, "16M");
    let fs = open_img(&img);
    assert!(!fs.sb.has_incompat(super::superblock::INCOMPAT_FILETYPE));
    assert_eq!(fs.type_name(), "ext2");
    compare(&src, &fs);
}

/// i_flags of `path` as debugfs reports them.
fn inode_flags(img: &Path, path: &str) -> u32 {
    let stat = debugfs(img, &format!("stat {path}"));
    let line = stat.lines().find(|l| l.contains("Flags: 0x")).unwrap();
    let hex = line.split("Flags: 0x").nth(1).unwrap().trim();
    u32::from_str_radix(hex, 16).unwrap()
}

/// `e2fsck -fD` rebuilds directories as hash trees; the reader must list them the same.
fn check_htree(tag: &str, args: &[&str]) {
    let scratch = Scratch::new("ext4", tag);
    let src = scratch.path("src");
    populate(&src, false);
    let img = scratch.path("img");
    mkfs(args, &src, &img, "64M");
    let out = Command::new(tool("e2fsck"))
        .args(["-fyD"])
        .arg(&img)
        .output()
        .unwrap();
    // Exit code 1 means "errors corrected": the directories were optimised.
    assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
    assert_ne!(
        inode_flags(&img, "/bigdir") & 0x1000,
        0,
        "bigdir is not indexed"
    );
    let fs = open_img(&img);
    compare(&src, &fs);
}

pub fn ext4_htree_directory() {
    check_htree("htree4", &["-t", "ext4", "-b", "4096"]);
}

pub fn ext3_htree_directory_1k() {
    check_htree("htree3", &["-t", "ext3", "-b", "1024"]);
}

pub fn ext4_1k_htree_with_csum() {
    check_htree("htree4-1k", &["-t", "ext4", "-b", "1024"]);
}

/// Counts what the reader asks of the disk.
#[derive(Debug)]
struct Counting {
    inner: RawImage,
    reads: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl Counting {
    fn open(img: &Path) -> Arc<Self> {
        Arc::new(Self {
            inner: RawImage::open(img).unwrap(),
            reads: 0.into(),
            bytes: 0.into(),
        })
    }

    fn take(&self) -> (u64, u64) {
        (
            self.reads.swap(0, Ordering::Relaxed),
            self.bytes.swap(0, Ordering::Relaxed),
        )
    }
}

impl BlockSource for Counting {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.read_exact_at(offset, buf)
    }
}

pub fn sparse_file_streams_without_reading_holes() {
    for (tag, args) in [
        ("huge-sparse4", &["-t", "ext4", "-b", "4096"][..]),
        ("huge-sparse2", &["-t", "ext2", "-b", "1024"][..]),
    ] {
        let scratch = Scratch::new("ext4", tag);
        let src = scratch.path("src");
        fs::create_dir_all(&src).unwrap();
        let huge = fs::File::create(src.join("huge")).unwrap();
        huge.set_len(2 << 30).unwrap();
        use std::os::unix::fs::FileExt;
        huge.write_all_at(b"needle", 1 << 30).unwrap();
        drop(huge);
        let img = scratch.path("img");
        mkfs(args, &src, &img, "32M");
        let disk = Counting::open(&img);
        let fs = Ext4Fs::open(disk.clone()).unwrap();
        let node = fs.lookup(fs.root(), b"huge").unwrap().unwrap();
        disk.take();
        let mut reader = fs.open(node).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let (mut total, mut nonzero) = (0u64, Vec::new());
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            if let Some(i) = buf[..n].iter().position(|b| *b != 0) {
                nonzero.push((
                    total + i as u64,
                    buf[i..n].iter().take_while(|b| **b != 0).count(),
                ));
            }
            total += n as u64;
        }
        assert_eq!(total, 2 << 30);
        assert_eq!(nonzero, vec![(1 << 30, 6)]);
        // The inode, a few mapping blocks and the one data block: holes cost nothing.
        let (reads, bytes) = disk.take();
        assert!(
            reads < 20 && bytes < 64 * 1024,
            "{tag}: {reads} reads of {bytes} bytes"
        );
    }
}

pub fn contiguous_data_is_read_in_large_chunks() {
    let scratch = Scratch::new("ext4", "chunks");
    let src = scratch.path("src");
    fs::create_dir_all(&src).unwrap();
    let data = XorShift(99).bytes(3 << 20);
    write_file(&src.join("big"), &data);
    let img = scratch.path("img");
    mkfs(&["-t", "ext4", "-b", "4096"], &src, &img, "32M");
    let disk = Counting::open(&img);
    let fs = Ext4Fs::open(disk.clone()).unwrap();
    let node = fs.lookup(fs.root(), b"big").unwrap().unwrap();
    disk.take();
    // io::copy-sized reads still reach the disk as 256 KiB requests.
    let mut out = Vec::new();
    let mut reader = fs.open(node).unwrap();
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(out == data);
    let (reads, bytes) = disk.take();
    assert!(reads <= 14, "{reads} reads");
    assert!(bytes < (3 << 20) + 16 * 1024, "{bytes} bytes");
    // metadata() is one read of one inode record.
    fs.metadata(node).unwrap();
    assert_eq!(disk.take(), (1, 256));
}

pub fn mtime_epoch_and_nanoseconds() {
    let scratch = Scratch::new("ext4", "mtime");
    let src = scratch.path("src");
    fs::create_dir_all(&src).unwrap();
    write_file(&src.join("f"), b"x");
    write_file(&src.join("old"), b"x");
    set_mtime(&src.join("old"), UNIX_EPOCH - Duration::from_secs(1000));
    let img = scratch.path("img");
    mkfs(&["-t", "ext4"], &src, &img, "16M");
    // mke2fs -d does not store nanoseconds: set the extra field by hand.
    // 0x5: epoch bits 01 (add 2^32 s), nanoseconds 1.
    run(Command::new(tool("debugfs"))
        .args(["-w", "-R", "sif /f mtime 0x10"])
        .arg(&img));
    run(Command::new(tool("debugfs"))
        .args(["-w", "-R", "sif /f mtime_extra 0x5"])
        .arg(&img));
    let fs = open_img(&img);
    let f = fs.lookup(fs.root(), b"f").unwrap().unwrap();
    let meta = fs.metadata(f).unwrap();
    assert_eq!(meta.mtime, 0x10 + (1i64 << 32));
    assert_eq!(meta.mtime_nsec, 1);
    let old = fs.lookup(fs.root(), b"old").unwrap().unwrap();
    assert_eq!(fs.metadata(old).unwrap().mtime, -1000);
}

pub fn nodes_of_wrong_kind_are_refused() {
    let scratch = Scratch::new("ext4", "kinds");
    let src = scratch.path("src");
    populate(&src, true);
    let img = scratch.path("img");
    mkfs(&["-t", "ext4"], &src, &img, "16M");
    let fs = open_img(&img);
    let root = fs.root();
    let file = fs.lookup(root, b"hello.txt").unwrap().unwrap();
    let link = fs.lookup(root, b"fast-link").unwrap().unwrap();
    let fifo = fs.lookup(root, b"fifo").unwrap().unwrap();
    assert!(matches!(fs.read_dir(file), Err(FsError::NotADirectory)));
    assert!(matches!(fs.read_link(file), Err(FsError::NotASymlink)));
    assert!(matches!(fs.open(root), Err(FsError::NotAFile)));
    assert!(matches!(fs.open(link), Err(FsError::NotAFile)));
    assert!(matches!(fs.open(fifo), Err(FsError::NotAFile)));
    assert_eq!(fs.lookup(root, b"no-such-name").unwrap(), None);
    for bad in [0, u64::from(fs.sb.s_inodes_count) + 1, u64::MAX] {
        let err = fs.metadata(bad).unwrap_err();
        assert!(matches!(err, FsError::Corrupt { .. }), "{err}");
    }
    // An unused inode (past the ones mke2fs allocated) is not a valid node.
    assert!(fs.metadata(u64::from(fs.sb.s_inodes_count)).is_err());
}

pub fn ext4fs_is_send_and_sync_and_shared_by_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ext4Fs>();
    let scratch = Scratch::new("ext4", "threads");
    let src = scratch.path("src");
    populate(&src, true);
    let img = scratch.path("img");
    mkfs(&["-t", "ext4"], &src, &img, "16M");
    let fs = Arc::new(open_img(&img));
    let want = walk_image(&fs);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let fs = Arc::clone(&fs);
            std::thread::spawn(move || walk_image(&fs))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}

// ---------------------------------------------------------------------------------------
// Targeted corruption
// ---------------------------------------------------------------------------------------

/// A small ext4 (or other) image in memory, with helpers to find structures in it.
struct Fixture {
    _scratch: Scratch,
    img: PathBuf,
    bytes: Vec<u8>,
}

impl Fixture {
    fn new(tag: &str, args: &[&str]) -> Self {
        let scratch = Scratch::new("ext4", tag);
        let src = scratch.path("src");
        populate(&src, true);
        let img = scratch.path("img");
        mkfs(args, &src, &img, "16M");
        let bytes = fs::read(&img).unwrap();
        Self {
            _scratch: scratch,
            img,
            bytes,
        }
    }

    fn fs(&self) -> Ext4Fs {
        open_bytes(self.bytes.clone()).unwrap()
    }

    fn ino(&self, name: &[u8]) -> u64 {
        let fs = self.fs();
        fs.lookup(fs.root(), name).unwrap().unwrap()
    }

    /// Byte offset of inode `ino`'s record, as debugfs reports it.
    fn inode_offset(&self, ino: u64) -> usize {
        imap_offset(&self.img, &format!("<{ino}>"))
    }

    /// Byte offset of logical block `n` of inode `ino`, as debugfs reports it.
    fn data_block_offset(&self, ino: u64, n: u64) -> usize {
        let out = debugfs(&self.img, &format!("bmap <{ino}> {n}"));
        out.trim().parse::<usize>().unwrap() * self.block_size()
    }

    fn block_size(&self) -> usize {
        1024 << u32::from_le_bytes(self.bytes[1024 + 0x18..1024 + 0x1C].try_into().unwrap())
    }

    fn with(&self, edits: &[(usize, &[u8])]) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        for (at, data) in edits {
            bytes[*at..*at + data.len()].copy_from_slice(data);
        }
        bytes
    }
}

/// Asserts a corruption whose message holds `needle`, and returns its kind.
/// The reason a volume that needs recovery was read without its journal; the volume opens
/// and is incomplete.
fn unreplayed(result: Result<Ext4Fs, FsError>) -> String {
    let fs = result.unwrap_or_else(|e| panic!("expected the volume read as it lies, got: {e}"));
    let why = fs
        .unreplayed_journal
        .clone()
        .expect("the journal was not replayed");
    assert!(fs.incomplete_reason().is_some_and(|r| r.contains(&why)));
    assert_eq!(fs.details().unwrap().log, "dirty");
    why
}

fn assert_corrupt<T>(result: Result<T, FsError>, needle: &str) -> CorruptKind {
    match result {
        Err(e @ FsError::Corrupt { kind, .. }) => {
            assert!(
                e.to_string().contains(needle),
                "expected {needle:?} in: {e}"
            );
            kind
        }
        Err(e) => panic!("expected a corrupt error containing {needle:?}, got: {e}"),
        Ok(_) => panic!("expected a corrupt error containing {needle:?}, got success"),
    }
}

/// Reads a whole file, turning read errors into the FsError they carry.
fn read_all(fs: &Ext4Fs, node: NodeId) -> Result<Vec<u8>, FsError> {
    let mut out = Vec::new();
    fs.open(node)?
        .read_to_end(&mut out)
        .map_err(|e| match e.into_inner() {
            Some(inner) => match inner.downcast::<FsError>() {
                Ok(fs_error) => *fs_error,
                Err(other) => panic!("unexpected error {other}"),
            },
            None => panic!("error without an FsError inside"),
        })?;
    Ok(out)
}

pub fn corrupt_superblock_fields() {
    let fx = Fixture::new("sb", &["-t", "ext4"]);
    let sb = 1024;
    let kind = assert_corrupt(open_bytes(fx.with(&[(sb + 0x38, &[0, 0])])), "magic");
    assert_eq!(kind, CorruptKind::Magic);
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0x20, &0u32.to_le_bytes())])),
        "s_blocks_per_group is 0",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0x28, &0u32.to_le_bytes())])),
        "s_inodes_per_group",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0x58, &0u16.to_le_bytes())])),
        "s_inode_size 0",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0x58, &7u16.to_le_bytes())])),
        "s_inode_size 7",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0x58, &8192u16.to_le_bytes())])),
        "s_inode_size 8192",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0xFE, &0xFFFFu16.to_le_bytes())])),
        "s_desc_size",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0xFE, &32u16.to_le_bytes())])),
        "s_desc_size",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0x18, &7u32.to_le_bytes())])),
        "s_log_block_size",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb, &u32::MAX.to_le_bytes())])),
        "s_inodes_count",
    );
    assert_corrupt(
        open_bytes(fx.with(&[(sb + 0x14, &u32::MAX.to_le_bytes())])),
        "s_first_data_block",
    );
    // A block count the volume cannot hold the descriptors for.
    assert_corrupt(
        open_bytes(fx.with(&[
            (sb + 0x4, &u32::MAX.to_le_bytes()),
            (sb + 0x150, &u32::MAX.to_le_bytes()),
        ])),
        "block groups",
    );
    // An inode table pointing past the filesystem: group 0 is damaged, so the root
    // inode is unreadable and the volume says why it is incomplete.
    let gdt = if fx.block_size() == 1024 {
        2048
    } else {
        fx.block_size()
    };
    let fs = open_bytes(fx.with(&[(gdt + 0x8, &u32::MAX.to_le_bytes())])).unwrap();
    assert!(fs.incomplete_reason().unwrap().contains("inode table"));
    assert_corrupt(fs.metadata(2), "block group 0's descriptor is damaged");
    // Truncated volumes fail cleanly.
    assert!(matches!(
        open_bytes(fx.bytes[..1500].to_vec()),
        Err(FsError::Io { .. })
    ));
    assert!(open_bytes(Vec::new()).is_err());
}

pub fn unsupported_features_are_named() {
    let fx = Fixture::new("features", &["-t", "ext4"]);
    let incompat = u32::from_le_bytes(fx.bytes[1024 + 0x60..1024 + 0x64].try_into().unwrap());
    let with_incompat =
        |bit: u32| open_bytes(fx.with(&[(1024 + 0x60, &(incompat | bit).to_le_bytes())]));
    let feature = |r: Result<Ext4Fs, FsError>| match r {
        Err(FsError::Unsupported { feature }) => feature,
        other => panic!("expected unsupported, got {other:?}"),
    };
    assert_eq!(feature(with_incompat(0x1)), "ext4 feature compression");
    assert_eq!(feature(with_incompat(0x1000)), "ext4 feature dirdata");
    assert_eq!(
        feature(with_incompat(0x800_0000)),
        "ext4 feature incompat bit 0x8000000"
    );
    // needs_recovery with an empty journal (s_start 0): nothing to replay.
    let clean = with_incompat(0x4).unwrap();
    assert!(clean.disk.overlay.is_empty());
    // needs_recovery with the journal elsewhere (s_journal_inum 0): read as it lies.
    let external = fx.with(&[
        (1024 + 0x60, &(incompat | 0x4).to_le_bytes()),
        (1024 + 0xE0, &0u32.to_le_bytes()),
    ]);
    assert!(unreplayed(open_bytes(external)).contains("external journal"));
    assert!(feature(with_incompat(0x8)).starts_with("ext4 feature journal_dev"));

    // An encrypted inode: metadata is readable, contents are refused by name.
    let ino = fx.ino(b"hello.txt");
    let at = fx.inode_offset(ino) + 0x20;
    let flags = u32::from_le_bytes(fx.bytes[at..at + 4].try_into().unwrap()) | 0x800;
    let fs = open_bytes(fx.with(&[(at, &flags.to_le_bytes())])).unwrap();
    assert!(fs.metadata(ino).is_ok());
    assert!(
        matches!(fs.open(ino), Err(FsError::Unsupported { feature }) if feature == "ext4 feature encrypt")
    );
}

pub fn corrupt_extent_trees() {
    let fx = Fixture::new("extents", &["-t", "ext4"]);
    let ino = fx.ino(b"random-1m");
    let root = fx.inode_offset(ino) + 0x28;
    let fs = |edits: &[(usize, &[u8])]| open_bytes(fx.with(edits)).unwrap();
    assert_corrupt(read_all(&fs(&[(root, &[0, 0])]), ino), "magic");
    assert_corrupt(
        read_all(&fs(&[(root + 6, &100u16.to_le_bytes())]), ino),
        "eh_depth 100",
    );
    assert_corrupt(
        read_all(&fs(&[(root + 2, &5u16.to_le_bytes())]), ino),
        "eh_entries 5",
    );
    assert_corrupt(
        read_all(&fs(&[(root + 4, &200u16.to_le_bytes())]), ino),
        "eh_max 200",
    );
    // First extent: length 0, then a physical block far past the end.
    assert_corrupt(
        read_all(&fs(&[(root + 12 + 4, &0u16.to_le_bytes())]), ino),
        "length 0",
    );
    let kind = assert_corrupt(
        read_all(&fs(&[(root + 12 + 8, &u32::MAX.to_le_bytes())]), ino),
        "outside",
    );
    assert_eq!(kind, CorruptKind::OutOfRange);
    // Depth claimed 1 on a leaf: the "index" then points nowhere sensible.
    assert!(read_all(&fs(&[(root + 6, &1u16.to_le_bytes())]), ino).is_err());

    // The fragmented file has an index node in i_block pointing at a leaf block.
    let frag = fx.ino(b"fragmented");
    let froot = fx.inode_offset(frag) + 0x28;
    let depth = u16::from_le_bytes(fx.bytes[froot + 6..froot + 8].try_into().unwrap());
    assert_eq!(depth, 1, "fragmented file should need an index node");
    let leaf =
        u32::from_le_bytes(fx.bytes[froot + 12 + 4..froot + 12 + 8].try_into().unwrap()) as usize;
    let leaf_at = leaf * fx.block_size();
    assert_corrupt(read_all(&fs(&[(leaf_at, &[0, 0])]), frag), "magic");
    assert_corrupt(
        read_all(&fs(&[(leaf_at + 6, &3u16.to_le_bytes())]), frag),
        "eh_depth 3 where the parent implies 0",
    );
    assert_corrupt(
        read_all(&fs(&[(froot + 12 + 4, &u32::MAX.to_le_bytes())]), frag),
        "outside",
    );
    // Two extents out of order within the leaf.
    let second = leaf_at + 12 + 12;
    assert_corrupt(
        read_all(&fs(&[(second, &0u32.to_le_bytes())]), frag),
        "overlaps",
    );
}

pub fn corrupt_block_maps() {
    let fx = Fixture::new("blockmap", &["-t", "ext2", "-b", "1024"]);
    let ino = fx.ino(b"random-1m");
    let iblock = fx.inode_offset(ino) + 0x28;
    let fs = |edits: &[(usize, &[u8])]| open_bytes(fx.with(edits)).unwrap();
    // A direct pointer past the end, then the indirect and double indirect roots.
    assert_corrupt(
        read_all(&fs(&[(iblock, &u32::MAX.to_le_bytes())]), ino),
        "outside",
    );
    assert_corrupt(
        read_all(&fs(&[(iblock + 48, &u32::MAX.to_le_bytes())]), ino),
        "outside",
    );
    assert_corrupt(
        read_all(&fs(&[(iblock + 52, &0xFFFF_FF00u32.to_le_bytes())]), ino),
        "outside",
    );
    // A pointer inside the indirect block.
    let ind = u32::from_le_bytes(fx.bytes[iblock + 48..iblock + 52].try_into().unwrap()) as usize;
    assert_corrupt(
        read_all(&fs(&[(ind * 1024 + 8, &u32::MAX.to_le_bytes())]), ino),
        "outside",
    );
    // Pointing the indirect tree at the superblock is refused too, naming it.
    assert_corrupt(
        read_all(&fs(&[(iblock + 48, &1u32.to_le_bytes())]), ino),
        "block 1 lies in the filesystem's metadata (superblock)",
    );
    // i_size beyond what the map can address.
    let size_at = fx.inode_offset(ino) + 0x6C;
    assert_corrupt(
        read_all(&fs(&[(size_at, &u32::MAX.to_le_bytes())]), ino),
        "i_size",
    );
}

pub fn corrupt_directories() {
    for (tag, args) in [
        ("dir4", &["-t", "ext4"][..]),
        ("dir2", &["-t", "ext2", "-b", "1024"][..]),
    ] {
        let fx = Fixture::new(tag, args);
        let dir = fx.ino(b"a");
        let block = fx.data_block_offset(dir, 0);
        let fs = |edits: &[(usize, &[u8])]| open_bytes(fx.with(edits)).unwrap();
        // "." is the first entry; its rec_len is at +4.
        assert_corrupt(
            fs(&[(block + 4, &0u16.to_le_bytes())]).read_dir(dir),
            "rec_len 0",
        );
        assert_corrupt(
            fs(&[(block + 4, &6u16.to_le_bytes())]).read_dir(dir),
            "rec_len 6",
        );
        assert_corrupt(
            fs(&[(block + 4, &14u16.to_le_bytes())]).read_dir(dir),
            "multiple of 4",
        );
        // ".." (at +12) claims the rest of the block plus more.
        let past = u16::try_from(fx.block_size() - 12 + 4).unwrap_or(u16::MAX);
        assert_corrupt(
            fs(&[(block + 12 + 4, &past.to_le_bytes())]).read_dir(dir),
            "past the end",
        );
        // name_len longer than the record.
        assert_corrupt(fs(&[(block + 6, &[200])]).read_dir(dir), "name_len 200");
        // The third entry points at an inode beyond s_inodes_count.
        let third = block + 24;
        assert_corrupt(
            fs(&[(third, &u32::MAX.to_le_bytes())]).read_dir(dir),
            "past s_inodes_count",
        );
        // A slash in a name.
        assert_corrupt(fs(&[(third + 8, b"/")]).read_dir(dir), "invalid name");
        // A directory i_size far beyond the volume.
        let size_at = fx.inode_offset(dir) + 0x4;
        assert_corrupt(
            fs(&[(size_at, &u32::MAX.to_le_bytes())]).read_dir(dir),
            "i_size",
        );
        // Unaffected directories still read.
        assert!(fs(&[(block + 4, &0u16.to_le_bytes())])
            .read_dir(fx.ino(b"sticky"))
            .is_ok());
    }
}

pub fn corrupt_inline_data_and_symlinks() {
    let fx = Fixture::new("inline-bad", &["-t", "ext4", "-O", "inline_data"]);
    let fs = |edits: &[(usize, &[u8])]| open_bytes(fx.with(edits)).unwrap();
    let link = fx.ino(b"slow-link");
    let at = fx.inode_offset(link);
    // i_size larger than i_block plus the system.data value.
    assert_corrupt(
        fs(&[(at + 4, &1000u32.to_le_bytes())]).read_link(link),
        "inline data",
    );
    assert_corrupt(
        fs(&[(at + 4, &100_000u32.to_le_bytes())]).read_link(link),
        "PATH_MAX",
    );
    // Inline flag plus extents flag.
    let flags = u32::from_le_bytes(fx.bytes[at + 0x20..at + 0x24].try_into().unwrap()) | 0x80000;
    assert_corrupt(
        fs(&[(at + 0x20, &flags.to_le_bytes())]).read_link(link),
        "both",
    );
    // A fast symlink claiming 200 bytes.
    let fast = fx.ino(b"fast-link");
    let fat = fx.inode_offset(fast);
    assert!(fs(&[(fat + 4, &200u32.to_le_bytes())])
        .read_link(fast)
        .is_err());
    // i_extra_isize not a multiple of 4 or past the inode.
    assert_corrupt(
        fs(&[(at + 0x80, &3u16.to_le_bytes())]).metadata(link),
        "i_extra_isize",
    );
    assert_corrupt(
        fs(&[(at + 0x80, &400u16.to_le_bytes())]).metadata(link),
        "i_extra_isize",
    );
    // An inline directory whose entry has rec_len 0.
    let dir = fx.ino(b"a");
    let dat = fx.inode_offset(dir);
    assert_corrupt(
        fs(&[(dat + 0x28 + 4 + 4, &0u16.to_le_bytes())]).read_dir(dir),
        "rec_len 0",
    );
}

// ---------------------------------------------------------------------------------------
// Journal replay
// ---------------------------------------------------------------------------------------

const ORIGINAL: &[u8] = b"original contents!";
const REPLAYED: &[u8] = b"replayed contents!";
const NEW_UID: u16 = 4321;

/// An image left "needing recovery" by debugfs's journal writer, with: a committed data
/// block write, a committed inode table write (uid changed), a write revoked by a later
/// transaction, a block whose data starts with the JBD2 magic (escaped in the log), and
/// a final transaction without its commit block.
struct Journaled {
    scratch: Scratch,
    img: PathBuf,
    /// The same image after `debugfs journal_run` replayed it for real.
    replayed: PathBuf,
}

fn journaled(tag: &str, args: &[&str], jo_flags: &str) -> Journaled {
    let scratch = Scratch::new("ext4", tag);
    let src = scratch.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    write_file(&src.join("target.txt"), ORIGINAL);
    write_file(&src.join("revoked.txt"), ORIGINAL);
    write_file(&src.join("escaped.txt"), ORIGINAL);
    for i in 0..20 {
        write_file(
            &src.join("d").join(format!("f{i}")),
            format!("{i}").as_bytes(),
        );
    }
    let img = scratch.path("img");
    mkfs(args, &src, &img, "16M");
    let bytes = fs::read(&img).unwrap();
    let bs = 1024usize << u32::from_le_bytes(bytes[1024 + 0x18..1024 + 0x1C].try_into().unwrap());
    let bmap = |path: &str| {
        debugfs(&img, &format!("bmap {path} 0"))
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    let (target, revoked, escaped) = (
        bmap("/target.txt"),
        bmap("/revoked.txt"),
        bmap("/escaped.txt"),
    );
    let (itable, ioff) = imap(&img, "/target.txt");

    let block = |content: &[u8]| {
        let mut b = content.to_vec();
        b.resize(bs, 0);
        b
    };
    // The changed inode comes from debugfs on a copy, so that its checksum (metadata_csum)
    // is as valid as a kernel's journalled inode block would be.
    let with_uid = scratch.path("with-uid");
    fs::copy(&img, &with_uid).unwrap();
    run(Command::new(tool("debugfs"))
        .arg("-w")
        .arg("-R")
        .arg(format!("sif /target.txt uid {NEW_UID}"))
        .arg(&with_uid));
    let inode_block = fs::read(&with_uid).unwrap()[itable * bs..(itable + 1) * bs].to_vec();
    assert_eq!(
        inode_block[ioff + 2..ioff + 4],
        NEW_UID.to_le_bytes(),
        "debugfs set the uid"
    );
    let mut magic = vec![0xC0, 0x3B, 0x39, 0x98];
    magic.extend_from_slice(b"escaped!");
    let files = [
        ("new-target", block(REPLAYED)),
        ("new-inode", inode_block),
        ("new-revoked", block(b"must never be seen")),
        ("new-escaped", block(&magic)),
        ("uncommitted", block(b"uncommitted write!")),
    ];
    for (name, data) in &files {
        write_file(&scratch.path(name), data);
    }
    let p = |name: &str| scratch.path(name).display().to_string();
    let cmds = [
        format!("jo {jo_flags}"),
        format!("jw -b {target} {}", p("new-target")),
        format!("jw -b {itable} {}", p("new-inode")),
        format!("jw -b {revoked} {}", p("new-revoked")),
        format!("jw -r {revoked}"),
        format!("jw -b {escaped} {}", p("new-escaped")),
        format!("jw -c -b {target} {}", p("uncommitted")),
        "jc".to_string(),
    ];
    let cmd_file = scratch.path("cmds");
    write_file(&cmd_file, cmds.join("\n").as_bytes());
    run(Command::new(tool("debugfs"))
        .arg("-w")
        .arg("-f")
        .arg(&cmd_file)
        .arg(&img));
    let features = run(Command::new(tool("dumpe2fs")).arg("-h").arg(&img));
    assert!(features.contains("needs_recovery"), "{features}");

    let replayed = scratch.path("replayed");
    fs::copy(&img, &replayed).unwrap();
    run(Command::new(tool("debugfs"))
        .arg("-w")
        .arg("-R")
        .arg("jr")
        .arg(&replayed));
    Journaled {
        scratch,
        img,
        replayed,
    }
}

/// `cut_at_revoke`: debugfs's v1 (crc32) commit checksum of the revoke-only transaction
/// does not match what jbd2 computes, so jbd2 (and e2fsck, and this reader) end the log
/// before it: the revoked write stays and the escaped block is never replayed.
fn check_journal_replay(tag: &str, args: &[&str], jo_flags: &str, cut_at_revoke: bool) {
    let j = journaled(tag, args, jo_flags);
    let fs = open_img(&j.img);
    assert!(!fs.disk.overlay.is_empty());
    let truth = open_img(&j.replayed);
    assert!(truth.disk.overlay.is_empty());
    assert_eq!(walk_image(&fs), walk_image(&truth));

    let node = |name: &[u8]| fs.lookup(fs.root(), name).unwrap().unwrap();
    assert_eq!(read_all(&fs, node(b"target.txt")).unwrap(), REPLAYED);
    assert_eq!(
        fs.metadata(node(b"target.txt")).unwrap().uid,
        u32::from(NEW_UID)
    );
    let revoked = read_all(&fs, node(b"revoked.txt")).unwrap();
    let escaped = read_all(&fs, node(b"escaped.txt")).unwrap();
    if cut_at_revoke {
        assert_eq!(revoked, b"must never be seen");
        assert_eq!(escaped, ORIGINAL);
    } else {
        assert_eq!(revoked, ORIGINAL);
        assert_eq!(&escaped[..12], b"\xC0\x3B\x39\x98escaped!");
    }
    // Without replay the old contents are what the volume holds.
    let raw = fs::read(&j.img).unwrap();
    assert!(
        raw.windows(ORIGINAL.len())
            .filter(|w| *w == ORIGINAL)
            .count()
            >= 3
    );
    drop(j.scratch);
}

pub fn journal_replay_ext4_64bit_tags() {
    check_journal_replay("jnl4", &["-t", "ext4", "-b", "4096"], "", false);
}

pub fn journal_replay_ext4_csum_v3() {
    check_journal_replay("jnl4-v3", &["-t", "ext4", "-b", "4096"], "-c -v 3", false);
}

pub fn journal_replay_ext4_1k_csum_v2() {
    check_journal_replay("jnl4-v2", &["-t", "ext4", "-b", "1024"], "-c -v 2", false);
}

pub fn journal_replay_ext4_csum_v2_32bit_tags() {
    let args = ["-t", "ext4", "-b", "1024", "-O", "^64bit"];
    check_journal_replay("jnl4-v2-32", &args, "-c -v 2", false);
}

pub fn journal_replay_ext3_32bit_tags() {
    check_journal_replay("jnl3", &["-t", "ext3", "-b", "1024"], "", false);
}

pub fn journal_replay_ext3_csum_v1() {
    // Without metadata_csum, debugfs falls back to v1 (crc32) journal checksums.
    check_journal_replay("jnl3-v1", &["-t", "ext3", "-b", "1024"], "-c -v 2", true);
}

pub fn journal_features_refused_by_name() {
    let j = journaled("jnl-refuse", &["-t", "ext4", "-b", "4096"], "");
    let bytes = fs::read(&j.img).unwrap();
    let journal_start = debugfs(&j.img, "bmap <8> 0")
        .trim()
        .parse::<usize>()
        .unwrap()
        * 4096;
    let incompat_at = journal_start + 0x28;
    let incompat = u32::from_be_bytes(bytes[incompat_at..incompat_at + 4].try_into().unwrap());
    let with_incompat = |bits: u32| {
        let mut b = bytes.clone();
        b[incompat_at..incompat_at + 4].copy_from_slice(&(incompat | bits).to_be_bytes());
        open_bytes(b)
    };
    // A journal amiscan cannot replay costs its transactions, not the volume: the volume
    // is read as it lies (as debugfs reads it), incomplete, with the reason named.
    assert!(unreplayed(with_incompat(0x20)).contains("ext4 journal fast commit replay"));
    let why = unreplayed(with_incompat(0x400));
    assert!(why.contains("incompat bit 0x400"), "{why}");
    let mut b = bytes.clone();
    b[journal_start] ^= 0xFF;
    let why = unreplayed(open_bytes(b));
    assert!(why.contains("journal superblock magic"), "{why}");
}

pub fn journal_corruption_never_panics() {
    let j = journaled("jnl-fuzz", &["-t", "ext4", "-b", "1024"], "-c -v 3");
    let bytes = fs::read(&j.img).unwrap();
    let mut targets = Vec::new();
    for n in 0..10 {
        let block = debugfs(&j.img, &format!("bmap <8> {n}"))
            .trim()
            .parse::<usize>()
            .unwrap();
        targets.extend(block * 1024..block * 1024 + 1024);
    }
    let mut rng = XorShift(0x007E_A10F_5EED_0001);
    let mut opened = 0;
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(6) {
            let at = targets[rng.below(targets.len() as u64) as usize];
            b[at] = (rng.next() >> 56) as u8;
        }
        if let Ok(fs) = open_bytes(b) {
            opened += 1;
            walk_everything(&fs);
        }
    }
    assert!(opened > 0);
}

// ---------------------------------------------------------------------------------------
// Random corruption
// ---------------------------------------------------------------------------------------

/// Walks everything reachable, reading every file (capped) and link; returns the number
/// of nodes visited. Errors are fine; panics and hangs are not.
fn walk_everything(fs: &Ext4Fs) -> usize {
    const MAX_NODES: usize = 20_000;
    const MAX_FILE_BYTES: u64 = 64 << 20;
    let mut seen = HashSet::new();
    let mut stack = vec![fs.root()];
    let mut buf = vec![0u8; 64 * 1024];
    while let Some(node) = stack.pop() {
        if !seen.insert(node) || seen.len() > MAX_NODES {
            continue;
        }
        let Ok(meta) = fs.metadata(node) else {
            continue;
        };
        match meta.kind {
            FileKind::Dir => {
                if let Ok(entries) = fs.read_dir(node) {
                    stack.extend(entries.iter().map(|e| e.node));
                }
            }
            FileKind::Symlink => {
                let _ = fs.read_link(node);
            }
            FileKind::File => {
                if let Ok(mut r) = fs.open(node) {
                    let mut total = 0u64;
                    while let Ok(n) = r.read(&mut buf) {
                        total += n as u64;
                        if n == 0 || total > MAX_FILE_BYTES {
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    seen.len()
}

pub fn random_byte_flips_never_panic() {
    let fixtures = [
        Fixture::new("fuzz4", &["-t", "ext4", "-b", "4096"]),
        Fixture::new("fuzz2", &["-t", "ext2", "-b", "1024"]),
        Fixture::new(
            "fuzz-inline",
            &[
                "-t",
                "ext4",
                "-O",
                "inline_data,^metadata_csum",
                "-b",
                "1024",
            ],
        ),
    ];
    let baseline: Vec<usize> = fixtures
        .iter()
        .map(|fx| walk_everything(&fx.fs()))
        .collect();
    assert!(baseline.iter().all(|n| *n > 30), "{baseline:?}");
    let mut rng = XorShift(0x00DD_BA11_5EED);
    let window = 2 << 20;
    let mut opened = 0;
    for round in 0..200 {
        let fx = &fixtures[round % fixtures.len()];
        let mut bytes = fx.bytes.clone();
        let limit = window.min(bytes.len()) as u64;
        for _ in 0..1 + rng.below(32) {
            let at = rng.below(limit) as usize;
            bytes[at] ^= 1 << rng.below(8);
            if rng.below(4) == 0 {
                bytes[at] = (rng.next() >> 56) as u8;
            }
        }
        if let Ok(fs) = open_bytes(bytes) {
            opened += 1;
            walk_everything(&fs);
        }
    }
    assert!(opened > 100, "only {opened} of 200 mutated images opened");
}

/// Corrupts only metadata that matters: superblock, descriptors, inode tables and
/// directory blocks, so that every round exercises a parser.
pub fn random_metadata_corruption_never_panics() {
    let fx = Fixture::new("fuzz-meta", &["-t", "ext4", "-b", "1024"]);
    let fs = fx.fs();
    let mut targets: Vec<usize> = Vec::new();
    let walk = walk_image(&fs);
    for (_, ino) in walk.values() {
        let at = fx.inode_offset(*ino);
        targets.extend(at..at + 256);
    }
    let dir = fx.ino(b"a");
    let block = fx.data_block_offset(dir, 0);
    targets.extend(block..block + 1024);
    targets.extend(1024..2048 + 1024);
    let mut rng = XorShift(0xC0FF_EE00_1234);
    for _ in 0..300 {
        let mut bytes = fx.bytes.clone();
        for _ in 0..1 + rng.below(8) {
            let at = targets[rng.below(targets.len() as u64) as usize];
            bytes[at] = (rng.next() >> 56) as u8;
        }
        if let Ok(fs) = open_bytes(bytes) {
            walk_everything(&fs);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------------------

/// XORs `mask` into the byte at `at`.
fn xor(bytes: &mut [u8], at: usize, mask: u8) {
    bytes[at] ^= mask;
}

/// `e2fsck -fn` over `bytes` (written beside the fixture): its whole output.
fn e2fsck_n(fx: &Fixture, bytes: &[u8]) -> String {
    let path = fx._scratch.path("for-e2fsck");
    fs::write(&path, bytes).unwrap();
    let out = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(&path)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `e2fsck -fn` flags the corruption in `bytes` with `message`.
fn assert_e2fsck_says(fx: &Fixture, bytes: &[u8], message: &str) {
    let said = e2fsck_n(fx, bytes);
    assert!(
        said.contains(message),
        "e2fsck -fn does not say {message:?}:\n{said}"
    );
}

/// One node as `image_node` reads it, with every error returned instead of unwrapped.
fn try_image_node(fs: &Ext4Fs, node: NodeId) -> Result<Node, FsError> {
    let meta = fs.metadata(node)?;
    let kind = meta.kind;
    let digest = match kind {
        FileKind::File => Some(Sha256::digest(read_all(fs, node)?).into()),
        _ => None,
    };
    let target = match kind {
        FileKind::Symlink => Some(fs.read_link(node)?),
        _ => None,
    };
    if kind == FileKind::Dir {
        fs.read_dir(node)?;
    }
    Ok(node_of(&meta, target, digest))
}

/// Compares the image with the source tree where it reads, and returns the error of each
/// path that does not (whose subtree, for a directory, is not visited).
fn compare_partial(src: &Path, fs: &Ext4Fs) -> BTreeMap<String, String> {
    let expected = walk_source(src);
    let mut errors = BTreeMap::new();
    let mut seen = Vec::new();
    let mut stack = vec![(fs.root(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs.read_dir(dir).unwrap() {
            if prefix.is_empty() && entry.name == b"lost+found" {
                continue;
            }
            let mut rel: Vec<u8> = prefix.clone();
            rel.push(b'/');
            rel.extend_from_slice(&entry.name);
            let name = String::from_utf8_lossy(&rel).into_owned();
            match try_image_node(fs, entry.node) {
                Ok(node) => {
                    let (want, _) = expected
                        .get(&rel)
                        .unwrap_or_else(|| panic!("{name} is not in the source"));
                    assert_eq!(&node, want, "{name}");
                    if node.kind == FileKind::Dir {
                        stack.push((entry.node, rel.clone()));
                    }
                }
                Err(e) => {
                    errors.insert(name, e.to_string());
                }
            }
            seen.push(rel);
        }
    }
    // Everything the source has is seen, unless it lies below a directory that failed.
    for path in expected.keys() {
        let name = String::from_utf8_lossy(path).into_owned();
        let below_failed = errors
            .keys()
            .any(|failed| name.starts_with(&format!("{failed}/")));
        assert!(
            below_failed || seen.contains(path),
            "{name} was not read, and no error says why"
        );
    }
    errors
}

/// A directory `dir` holding `target` and every name of `names` as a hard link to it: a
/// big directory for the price of one inode.
fn linked_names(dir: &Path, names: impl Iterator<Item = String>) {
    fs::create_dir_all(dir).unwrap();
    write_file(&dir.join("target"), b"one inode, many names");
    for name in names {
        fs::hard_link(dir.join("target"), dir.join(name)).unwrap();
    }
}

/// `e2fsck -fyD`: every directory of more than one block becomes a hash tree.
fn index_directories(img: &Path) {
    let out = Command::new(tool("e2fsck"))
        .arg("-fyD")
        .arg(img)
        .output()
        .unwrap();
    // Exit code 1 means "errors corrected": the directories were optimised.
    assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
}

/// A small metadata_csum image made with the extra `args`: few inodes per group so that
/// block group 1 holds some of the tree, and a directory of 300 names that `e2fsck -fD`
/// turns into a hash tree.
fn csum_fixture(tag: &str, args: &[&str]) -> Fixture {
    let scratch = Scratch::new("ext4", tag);
    let src = scratch.path("src");
    populate(&src, true);
    linked_names(
        &src.join("many"),
        (0..300).map(|i| format!("hard-link-number-{i:03}")),
    );
    let img = scratch.path("img");
    let mut all = vec!["-N", "64"];
    all.extend_from_slice(args);
    mkfs(&all, &src, &img, "16M");
    index_directories(&img);
    // e2fsck finds nothing wrong (run fails on a non-zero exit).
    run(Command::new(tool("e2fsck")).arg("-fn").arg(&img));
    let bytes = fs::read(&img).unwrap();
    Fixture {
        _scratch: scratch,
        img,
        bytes,
    }
}

impl Fixture {
    fn src(&self) -> PathBuf {
        self._scratch.path("src")
    }

    /// Byte offset of group `group`'s descriptor, from dumpe2fs's "Group descriptors at".
    fn group_desc_offset(&self, group: usize) -> usize {
        let out = run(Command::new(tool("dumpe2fs")).arg(&self.img));
        let first: usize = out
            .split("Group descriptors at ")
            .nth(1)
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let desc_size = if out.contains("Group descriptor size:") {
            usize::try_from(dumpe2fs_field(&out, "Group descriptor size")).unwrap()
        } else {
            32
        };
        first * self.block_size() + group * desc_size
    }

    /// The block debugfs names after `label` (such as `(ETB0)`) in `stat PATH`.
    fn stat_block(&self, path: &str, label: &str) -> usize {
        let stat = debugfs(&self.img, &format!("stat {path}"));
        stat.split(&format!("{label}:"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {label} in {stat}"))
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// Checks the mutation both ways: verified, exactly `failing` paths fail (each naming
/// `needle`) and the rest matches the source; ignored, the whole tree matches and the
/// mismatches are counted.
fn refused_then_ignored(fx: &Fixture, bytes: &[u8], failing: &[&str], needle: &str) {
    let fs = open_bytes_with(bytes.to_vec(), ChecksumPolicy::Verify).unwrap();
    let errors = compare_partial(&fx.src(), &fs);
    let paths: Vec<&str> = errors.keys().map(String::as_str).collect();
    assert_eq!(paths, failing, "{errors:#?}");
    for e in errors.values() {
        assert!(e.contains(needle), "expected {needle:?} in: {e}");
    }
    assert_eq!(fs.ignored_checksums(), 0);
    let fs = open_bytes_with(bytes.to_vec(), ChecksumPolicy::Ignore).unwrap();
    let errors = compare_partial(&fx.src(), &fs);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(fs.ignored_checksums() > 0);
    assert_eq!(fs.incomplete_reason(), None);
}

pub fn clean_checksummed_images_have_no_mismatch() {
    // Every structure the reader checks, read under Ignore: not one mismatch counted.
    for (tag, args) in [
        ("csum-clean", &["-t", "ext4"][..]),
        (
            "csum-clean-4k",
            &["-t", "ext4", "-b", "4096", "-I", "1024"][..],
        ),
        (
            "crc16-clean",
            &["-t", "ext4", "-O", "^metadata_csum,uninit_bg"][..],
        ),
    ] {
        let fx = csum_fixture(tag, args);
        let fs = open_bytes_with(fx.bytes.clone(), ChecksumPolicy::Ignore).unwrap();
        compare(&fx.src(), &fs);
        assert_eq!(fs.ignored_checksums(), 0, "{tag}");
        assert_eq!(fs.incomplete_reason(), None, "{tag}");
        let stat = debugfs(&fx.img, "stat /many");
        assert_ne!(inode_flags(&fx.img, "/many") & 0x1000, 0, "{stat}");
    }
}

pub fn checksum_seed_is_kept_across_a_new_uuid() {
    // With metadata_csum_seed, changing the UUID leaves every checksum as it was: a
    // reader that seeded from the UUID would refuse every structure.
    let scratch = Scratch::new("ext4", "csum-seed");
    let src = scratch.path("src");
    populate(&src, false);
    let img = scratch.path("img");
    mkfs(
        &["-t", "ext4", "-O", "metadata_csum_seed"],
        &src,
        &img,
        "64M",
    );
    run(Command::new(tool("tune2fs"))
        .args(["-U", "0b3c4a2e-7f41-4d6b-9a51-2c7e0d9f8a13"])
        .arg(&img));
    // e2fsck finds nothing wrong (run fails on a non-zero exit).
    run(Command::new(tool("e2fsck")).arg("-fn").arg(&img));
    let fs = open_img(&img);
    assert_ne!(
        fs.sb.csum_seed,
        crate::crc32c::update(!0, &fs.sb.s_uuid),
        "the seed no longer follows the UUID"
    );
    compare(&src, &fs);
}

pub fn superblock_checksum_mismatch_is_refused() {
    let fx = csum_fixture("csum-sb", &["-t", "ext4"]);
    let mut bytes = fx.bytes.clone();
    // s_volume_name: a field nothing else reads.
    xor(&mut bytes, 1024 + 0x78, 0x5A);
    assert_e2fsck_says(&fx, &bytes, "Superblock checksum does not match superblock");
    let err = open_bytes_with(bytes.clone(), ChecksumPolicy::Verify).unwrap_err();
    assert!(
        matches!(
            err,
            FsError::Corrupt {
                kind: CorruptKind::Checksum,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("ext4 superblock at byte 2044: checksum mismatch (stored 0x"),
        "{err}"
    );
    let fs = open_bytes_with(bytes, ChecksumPolicy::Ignore).unwrap();
    compare(&fx.src(), &fs);
    assert_eq!(fs.ignored_checksums(), 1);
}

/// `Group descriptor N checksum is 0xSTORED, should be 0xCOMPUTED` from e2fsck.
fn e2fsck_group_checksum(output: &str, group: usize) -> (String, String) {
    let line = output
        .lines()
        .find(|l| l.starts_with(&format!("Group descriptor {group} checksum is ")))
        .unwrap_or_else(|| panic!("e2fsck does not flag group {group}:\n{output}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (
        words[5].trim_end_matches(',').to_string(),
        words[8].trim_end_matches('.').to_string(),
    )
}

fn check_group_desc_checksum(fx: &Fixture) {
    let clean = fx.fs();
    let ipg = u64::from(clean.sb.s_inodes_per_group);
    let in_group_1: Vec<String> = walk_image(&clean)
        .iter()
        .filter(|(_, (_, ino))| (ino - 1) / ipg == 1)
        .map(|(path, _)| String::from_utf8_lossy(path).into_owned())
        .collect();
    // Of those, the ones a walk reaches: not below another one.
    let failing: Vec<&str> = in_group_1
        .iter()
        .filter(|p| !in_group_1.iter().any(|q| p.starts_with(&format!("{q}/"))))
        .map(String::as_str)
        .collect();
    assert!(failing.len() > 3, "{in_group_1:?}");

    // Free block and inode counts: bytes a reader never needs, so only a checksum can
    // tell. This is how a flipped descriptor used to scan as if nothing happened.
    let desc = fx.group_desc_offset(1);
    let mut bytes = fx.bytes.clone();
    xor(&mut bytes, desc + 0x0C, 0x5A);
    xor(&mut bytes, desc + 0x0E, 0x21);
    let (stored, computed) = e2fsck_group_checksum(&e2fsck_n(fx, &bytes), 1);
    // One bad-group state for every descriptor damage: the checksum mismatch is named
    // in the wording main's granular reader uses for a bad group.
    let mismatch = format!("checksum mismatch (stored {stored}, computed {computed})");
    let needle = format!(
        "at byte {}: block group 1's descriptor is damaged ({mismatch}), so its inodes are not read",
        desc + 0x1E
    );
    refused_then_ignored(fx, &bytes, &failing, &needle);
    let fs = open_bytes_with(bytes, ChecksumPolicy::Verify).unwrap();
    let reason = fs.incomplete_reason().unwrap();
    // The same single bad-group state, so the same incomplete reason as a damaged range.
    let said = format!(
        "ext4 block group 1's descriptor at byte {} is damaged ({mismatch}); its inodes are not read",
        desc + 0x1E
    );
    assert_eq!(reason, said);

    // Random bytes anywhere in either descriptor: never read as if nothing happened.
    let mut rng = XorShift(0x6D5C_0000_0001);
    let desc_size = fx.group_desc_offset(1) - fx.group_desc_offset(0);
    for _ in 0..50 {
        let mut bytes = fx.bytes.clone();
        let group = rng.below(2) as usize;
        for _ in 0..1 + rng.below(4) {
            let at =
                fx.group_desc_offset(0) + group * desc_size + rng.below(desc_size as u64) as usize;
            xor(&mut bytes, at, 1 + rng.below(255) as u8);
        }
        if bytes == fx.bytes {
            continue;
        }
        if let Ok(fs) = open_bytes_with(bytes, ChecksumPolicy::Verify) {
            let reason = fs
                .incomplete_reason()
                .expect("a damaged descriptor went unnoticed");
            // A bad group is named as every damaged descriptor is, checksum or range.
            assert!(
                reason.contains(&format!("ext4 block group {group}'s descriptor ")),
                "{reason}"
            );
        }
    }
}

pub fn group_descriptor_crc32c_mismatch_refuses_its_group() {
    check_group_desc_checksum(&csum_fixture("csum-gd", &["-t", "ext4"]));
}

pub fn group_descriptor_crc16_mismatch_refuses_its_group() {
    let fx = csum_fixture(
        "crc16-gd",
        &["-t", "ext4", "-O", "^metadata_csum,uninit_bg"],
    );
    let fs = fx.fs();
    assert!(!fs.sb.metadata_csum() && fs.sb.has_group_desc_csum());
    check_group_desc_checksum(&fx);
}

pub fn inode_checksum_mismatch_refuses_the_inode() {
    for (tag, args, has_hi) in [
        ("csum-inode", &["-t", "ext4"][..], true),
        ("csum-inode-128", &["-t", "ext4", "-I", "128"][..], false),
    ] {
        let fx = csum_fixture(tag, args);
        let ino = fx.ino(b"hello.txt");
        let at = fx.inode_offset(ino);
        let mut bytes = fx.bytes.clone();
        // i_atime: nothing the reader uses.
        xor(&mut bytes, at + 0x08, 0x5A);
        assert_e2fsck_says(
            &fx,
            &bytes,
            &format!("Inode {ino} passes checks, but checksum does not match inode"),
        );
        let width = if has_hi { 10 } else { 6 };
        let needle = format!(
            "ext4 inode {ino} at byte {}: checksum mismatch (stored 0x",
            at + 0x7C
        );
        refused_then_ignored(&fx, &bytes, &["/hello.txt"], &needle);
        let err = open_bytes_with(bytes, ChecksumPolicy::Verify)
            .unwrap()
            .metadata(ino)
            .unwrap_err()
            .to_string();
        let stored = err
            .split("stored ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        assert_eq!(stored.len(), width, "{tag}: {err}");

        // Any byte of any record, base or extra part: never read as if intact.
        let clean = fx.fs();
        let inode_size = usize::try_from(clean.sb.inode_size).unwrap();
        let inodes: Vec<u64> = walk_image(&clean).values().map(|(_, ino)| *ino).collect();
        let mut rng = XorShift(0x1D0_C5E5 ^ inode_size as u64);
        for _ in 0..40 {
            let ino = inodes[rng.below(inodes.len() as u64) as usize];
            let at = fx.inode_offset(ino) + rng.below(inode_size as u64) as usize;
            let mut bytes = fx.bytes.clone();
            xor(&mut bytes, at, 1 + rng.below(255) as u8);
            let fs = open_bytes_with(bytes, ChecksumPolicy::Verify).unwrap();
            assert!(fs.metadata(ino).is_err(), "{tag}: byte {at} of inode {ino}");
        }
    }
}

pub fn extent_block_checksum_mismatch_refuses_the_file() {
    let fx = csum_fixture("csum-extent", &["-t", "ext4"]);
    let ino = fx.ino(b"fragmented");
    let leaf = fx.stat_block("/fragmented", "(ETB0)") * fx.block_size();
    let eh_max = usize::from(u16::from_le_bytes([fx.bytes[leaf + 4], fx.bytes[leaf + 5]]));
    let eh_entries = usize::from(u16::from_le_bytes([fx.bytes[leaf + 2], fx.bytes[leaf + 3]]));
    assert!(eh_entries < eh_max);
    let mut bytes = fx.bytes.clone();
    // An unused entry slot: covered by the checksum, never parsed.
    xor(&mut bytes, leaf + 12 + eh_entries * 12 + 3, 0x5A);
    assert_e2fsck_says(
        &fx,
        &bytes,
        &format!("Inode {ino} extent block passes checks, but checksum does not match extent"),
    );
    let needle = format!(
        "ext4 extent block of inode {ino} at byte {}: checksum mismatch",
        leaf + 12 + eh_max * 12
    );
    refused_then_ignored(&fx, &bytes, &["/fragmented"], &needle);
}

pub fn directory_block_checksum_mismatch_refuses_the_directory() {
    let fx = csum_fixture("csum-dir", &["-t", "ext4"]);
    let dir = fx.ino(b"a");
    let block = fx.data_block_offset(dir, 0);
    let bs = fx.block_size();
    assert_eq!(
        fx.bytes[block + bs - 5],
        0xDE,
        "leaf block ends in a checksum tail"
    );
    let mut bytes = fx.bytes.clone();
    // The slack after the last entry's name ("b", third entry at +24).
    xor(&mut bytes, block + 24 + 8 + 4, 0x5A);
    assert_e2fsck_says(
        &fx,
        &bytes,
        &format!("Directory inode {dir}, block #0: directory passes checks but fails checksum"),
    );
    let needle = format!(
        "ext4 directory block of inode {dir} at byte {}: checksum mismatch",
        block + bs - 4
    );
    refused_then_ignored(&fx, &bytes, &["/a"], &needle);

    // A leaf whose tail is gone has nothing to verify against: refused too.
    let mut bytes = fx.bytes.clone();
    xor(&mut bytes, block + bs - 5, 0xFF);
    let fs = open_bytes_with(bytes, ChecksumPolicy::Verify).unwrap();
    assert_corrupt(fs.read_dir(dir), "no checksum tail");
}

pub fn htree_index_checksum_mismatch_refuses_the_directory() {
    let fx = csum_fixture("csum-htree", &["-t", "ext4"]);
    let dir = fx.ino(b"many");
    let root = fx.data_block_offset(dir, 0);
    let count = usize::from(u16::from_le_bytes([
        fx.bytes[root + 34],
        fx.bytes[root + 35],
    ]));
    assert!(count >= 2, "the root indexes {count} blocks");
    let said = format!("Problem in HTREE directory inode {dir}: root node fails checksum");
    refuse_dx_block(&fx, dir, root + 32, &said);
}

/// Flips the hash of the second entry of the htree index block whose dx_countlimit is at
/// `count_at` (an entry the linear listing never reads): e2fsck says `said`, and the
/// directory is refused naming the block's dx_tail.
fn refuse_dx_block(fx: &Fixture, dir: u64, count_at: usize, said: &str) {
    let limit = usize::from(u16::from_le_bytes([
        fx.bytes[count_at],
        fx.bytes[count_at + 1],
    ]));
    let mut bytes = fx.bytes.clone();
    xor(&mut bytes, count_at + 8, 0x5A);
    assert_e2fsck_says(fx, &bytes, said);
    let needle = format!(
        "ext4 htree index block of inode {dir} at byte {}: checksum mismatch",
        count_at + limit * 8 + 4
    );
    refused_then_ignored(fx, &bytes, &["/many"], &needle);
}

pub fn htree_interior_node_checksum_mismatch_refuses_the_directory() {
    // 5 000 long names in 1 KiB blocks: a two-level hash tree, whose interior nodes
    // (one empty entry spanning the block, then the index) carry their own dx_tail.
    let scratch = Scratch::new("ext4", "csum-htree2");
    let src = scratch.path("src");
    let names = (0..5000).map(|i| format!("hard-link-with-a-much-longer-name-number-{i:05}"));
    linked_names(&src.join("many"), names);
    let img = scratch.path("img");
    mkfs(&["-t", "ext4", "-b", "1024"], &src, &img, "32M");
    index_directories(&img);
    let htree = debugfs(&img, "htree /many");
    assert!(htree.contains("Indirect levels: 1"), "{htree}");
    // The root's first entry names the first interior node's logical block.
    let node_logical: u64 = htree
        .split("Entry #0: Hash 0x00000000, block ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = fs::read(&img).unwrap();
    let fx = Fixture {
        _scratch: scratch,
        img,
        bytes,
    };
    let dir = fx.ino(b"many");
    let node = fx.data_block_offset(dir, node_logical);
    let said = format!("Problem in HTREE directory inode {dir}: internal node fails checksum");
    refuse_dx_block(&fx, dir, node + 8, &said);
}

pub fn journal_superblock_checksum_mismatch_is_not_replayed() {
    let j = journaled("jnl-csum", &["-t", "ext4", "-b", "4096"], "-c -v 3");
    let journal_start = debugfs(&j.img, "bmap <8> 0")
        .trim()
        .parse::<usize>()
        .unwrap()
        * 4096;
    let mut bytes = fs::read(&j.img).unwrap();
    // s_padding, after s_checksum_type: covered by the checksum, read by nobody.
    xor(&mut bytes, journal_start + 0xF0, 0x5A);
    let corrupt = j.scratch.path("jsb-corrupt");
    fs::write(&corrupt, &bytes).unwrap();

    // e2fsck refuses the journal: it recovers nothing and clears it.
    let fixed = j.scratch.path("jsb-fixed");
    fs::copy(&corrupt, &fixed).unwrap();
    let out = Command::new(tool("e2fsck"))
        .arg("-fy")
        .arg(&fixed)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Journal superblock is corrupt"), "{said}");
    let truth = open_img(&fixed);
    let cat = debugfs(&fixed, "cat /target.txt");
    assert_eq!(cat.as_bytes(), ORIGINAL, "e2fsck does not replay it");

    let fs = open_bytes_with(bytes.clone(), ChecksumPolicy::Verify).unwrap();
    assert!(fs.disk.overlay.is_empty(), "the journal was replayed");
    assert_eq!(fs.details().unwrap().log, "dirty");
    let reason = fs.incomplete_reason().unwrap();
    let needle = format!(
        "ext4 journal superblock of inode 8 at byte {}: checksum mismatch",
        journal_start + 0xFC
    );
    assert!(
        reason.contains("was not replayed") && reason.contains(&needle),
        "{reason}"
    );
    assert_eq!(walk_image(&fs), walk_image(&truth));
    let target = fs.lookup(fs.root(), b"target.txt").unwrap().unwrap();
    assert_eq!(read_all(&fs, target).unwrap(), ORIGINAL);

    // Ignored, the journal is replayed as debugfs replays it.
    let fs = open_bytes_with(bytes, ChecksumPolicy::Ignore).unwrap();
    assert_eq!(fs.ignored_checksums(), 1);
    assert_eq!(fs.incomplete_reason(), None);
    assert_eq!(walk_image(&fs), walk_image(&open_img(&j.replayed)));
    assert_eq!(read_all(&fs, target).unwrap(), REPLAYED);
}

// ---------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------

/// `cargo test --release --test integration readers::ext4::metadata_walk_100k -- --ignored --nocapture`
pub fn metadata_walk_100k() {
    let scratch = Scratch::new("ext4", "bench");
    let src = scratch.path("src");
    for d in 0..100 {
        let dir = src.join(format!("dir{d:03}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..1000 {
            let mut file = fs::File::create(dir.join(format!("file{f:04}"))).unwrap();
            write!(file, "{d}/{f}").unwrap();
        }
    }
    let img = scratch.path("img");
    let started = std::time::Instant::now();
    mkfs(&["-t", "ext4", "-N", "120000"], &src, &img, "1G");
    eprintln!("image built in {:?}", started.elapsed());
    let fs = open_img(&img);
    let started = std::time::Instant::now();
    let mut nodes = Vec::new();
    let mut stack = vec![fs.root()];
    while let Some(dir) = stack.pop() {
        for e in fs.read_dir(dir).unwrap() {
            nodes.push(e.node);
            if fs.metadata(e.node).unwrap().kind == FileKind::Dir {
                stack.push(e.node);
            }
        }
    }
    eprintln!(
        "read_dir walk of {} entries (with metadata) in {:?}",
        nodes.len(),
        started.elapsed()
    );
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let mut size = 0u64;
        for n in &nodes {
            size += fs.metadata(*n).unwrap().size;
        }
        let elapsed = started.elapsed();
        eprintln!(
            "metadata() on {} inodes: {:?} ({:.2} us each, {size} bytes total)",
            nodes.len(),
            elapsed,
            elapsed.as_secs_f64() * 1e6 / nodes.len() as f64
        );
    }
    assert!(nodes.len() >= 100_100);
}

/// One `Name:   value` field of `dumpe2fs -h`.
fn dumpe2fs_field(header: &str, name: &str) -> u64 {
    header
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("dumpe2fs -h has no {name}"))
        .trim()
        .parse()
        .unwrap()
}

pub fn usage_follows_the_superblock_counts() {
    let scratch = Scratch::new("ext4", "usage");
    let src = scratch.path("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    for i in 0..20 {
        fs::write(src.join(format!("a/f{i}")), vec![7u8; i * 1000]).unwrap();
    }
    symlink("a/f1", src.join("link")).unwrap();
    let img = scratch.path("fs.img");
    for args in [&["-t", "ext4"][..], &["-t", "ext2", "-r", "0"][..]] {
        mkfs(args, &src, &img, "8M");
        let header = run(Command::new(tool("dumpe2fs")).arg("-h").arg(&img));
        let used_blocks =
            dumpe2fs_field(&header, "Block count") - dumpe2fs_field(&header, "Free blocks");
        // /, lost+found, a, a/b, 20 files and the link: what a walk meets.
        assert_eq!(
            open_img(&img).usage(),
            Usage {
                nodes: Some(25),
                bytes: Some(used_blocks * dumpe2fs_field(&header, "Block size")),
            },
            "{args:?}"
        );
    }
}

pub fn usage_clamps_hostile_counts() {
    let scratch = Scratch::new("ext4", "usage-hostile");
    let src = scratch.path("src");
    fs::create_dir_all(&src).unwrap();
    let img = scratch.path("fs.img");
    mkfs(&["-t", "ext4", "-O", "^metadata_csum"], &src, &img, "4M");
    let mut bytes = fs::read(&img).unwrap();
    // More free inodes and blocks than exist.
    bytes[1024 + 0xC..1024 + 0x10].copy_from_slice(&u32::MAX.to_le_bytes());
    bytes[1024 + 0x10..1024 + 0x14].copy_from_slice(&u32::MAX.to_le_bytes());
    let usage = open_bytes(bytes.clone()).unwrap().usage();
    assert_eq!(
        usage,
        Usage {
            nodes: Some(1),
            bytes: Some(0)
        }
    );
    // No free blocks, on a volume cut short: never more than the volume holds.
    bytes[1024 + 0xC..1024 + 0x10].copy_from_slice(&0u32.to_le_bytes());
    bytes.truncate(3 << 20);
    let usage = open_bytes(bytes).unwrap().usage();
    assert_eq!(usage.bytes, Some(3 << 20));
}

// ---------------------------------------------------------------------------------------
// Reading what e2fsck and debugfs read, and refusing what they refuse
// ---------------------------------------------------------------------------------------

/// Runs `requests` in one `debugfs -w` session on `img`: debugfs recomputes the checksums
/// of what it writes (and a second session may refuse to open what the first damaged).
fn debugfs_write(img: &Path, requests: &[&str]) {
    let script = img.with_extension("debugfs");
    fs::write(&script, requests.join("\n") + "\n").unwrap();
    run(Command::new(tool("debugfs"))
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(img));
}

/// What `e2fsck -fn` prints (it exits non-zero on the damage these tests make).
fn fsck_report(img: &Path) -> String {
    let out = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names debugfs lists in `dir` (`ls -p`: /ino/mode/uid/gid/name/size/), sorted.
fn debugfs_names(img: &Path, dir: &str) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = debugfs(img, &format!("ls -p {dir}"))
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('/').collect();
            let ino: u64 = fields.get(1)?.parse().ok()?;
            let name = *fields.get(5)?;
            (ino != 0 && name != "." && name != "..").then(|| name.as_bytes().to_vec())
        })
        .collect();
    names.sort();
    names
}

fn reader_names(fs: &Ext4Fs, dir: NodeId) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = fs
        .read_dir(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

/// The inode table block holding the record of inode `spec` (a path or `<N>`) and the
/// record's offset within it, as debugfs's imap reports them.
fn imap(img: &Path, spec: &str) -> (usize, usize) {
    let out = debugfs(img, &format!("imap {spec}"));
    let block: usize = out
        .split("located at block ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let offset = usize::from_str_radix(out.split("offset 0x").nth(1).unwrap().trim(), 16).unwrap();
    (block, offset)
}

/// Byte offset of the inode record at `spec` (a path or `<N>`).
fn imap_offset(img: &Path, spec: &str) -> usize {
    let (block, offset) = imap(img, spec);
    let bytes = fs::read(img).unwrap();
    let block_size =
        1024usize << u32::from_le_bytes(bytes[1024 + 0x18..1024 + 0x1C].try_into().unwrap());
    block * block_size + offset
}

/// A directory tree with `names` empty files of long names in /d.
fn dir_source(scratch: &Scratch, names: usize) -> PathBuf {
    let src = scratch.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..names {
        write_file(
            &src.join("d")
                .join(format!("an-entry-with-a-long-name-{i:04}")),
            b"",
        );
    }
    write_file(&src.join("hello.txt"), b"hello, world\n");
    src
}

/// A file claiming far more bytes than its mapping can address (1.8e19 in a small image)
/// was listed by the walk as "too large to hash", with nothing wrong, while reading it
/// failed. Its metadata is refused now, so every command reports the path.
pub fn sizes_the_mapping_cannot_address_are_refused_by_every_operation() {
    for (tag, args) in [
        ("huge-ext4", &["-t", "ext4"][..]),
        ("huge-ext2", &["-t", "ext2", "-b", "1024"][..]),
        ("huge-inline", &["-t", "ext4", "-O", "inline_data"][..]),
    ] {
        let scratch = Scratch::new("ext4", tag);
        let src = dir_source(&scratch, 3);
        let img = scratch.path("img");
        mkfs(args, &src, &img, "4M");
        debugfs_write(&img, &["sif /hello.txt size 0xFFFFFFFFFFFFFFF0"]);
        assert!(debugfs(&img, "stat /hello.txt").contains("Size: 18446744073709551600"));
        let fs = open_img(&img);
        let ino = fs.lookup(fs.root(), b"hello.txt").unwrap().unwrap();
        assert_corrupt(fs.metadata(ino), "i_size");
        assert_corrupt(read_all(&fs, ino), "i_size");
        // Other files are untouched.
        let d = fs.lookup(fs.root(), b"d").unwrap().unwrap();
        assert_eq!(fs.read_dir(d).unwrap().len(), 3);

        let fs: Arc<dyn Filesystem> = Arc::new(fs);
        let tree = crate::guest::Tree::single(fs, 0, crate::image::Placement::default());
        let inventory = crate::walk::walk(
            &tree,
            crate::walk::WalkOptions {
                sha256_up_to: Some(crate::walk::DEFAULT_HASH_LIMIT),
                ..Default::default()
            },
        );
        assert!(
            inventory.entries.iter().all(|e| !e.hash_skipped),
            "{tag}: a corrupt size is not a large file"
        );
        let errors: Vec<&[u8]> = inventory.errors.iter().map(|e| e.path.as_slice()).collect();
        assert_eq!(errors, vec![&b"/hello.txt"[..]], "{tag}");
    }
}

/// A directory whose extent is marked unwritten (e2fsprogs' f_uninit_dir) listed as
/// empty. The kernel and debugfs read the block; e2fsck clears the flag and keeps it.
/// Entries naming inodes that their group says were never used are errors of those
/// paths, as e2fsck reports them, while the directory itself still lists.
pub fn directories_read_their_blocks_as_the_kernel_does_and_unused_inodes_are_errors() {
    let scratch = Scratch::new("ext4", "unwritten-dir");
    let src = dir_source(&scratch, 5);
    let img = scratch.path("img");
    mkfs(&["-t", "ext4", "-b", "4096"], &src, &img, "8M");
    let want = debugfs_names(&img, "/d");
    assert_eq!(want.len(), 5);
    // i_block[4] holds the only extent's ee_len and ee_start_hi: one block, unwritten.
    assert!(debugfs(&img, "stat /d").contains("(0):"));
    debugfs_write(&img, &["sif /d block[4] 0x8001"]);
    assert!(debugfs(&img, "stat /d").contains("(0[u]):"));
    assert!(fsck_report(&img).contains("has extent marked uninitialized at block 0"));
    assert_eq!(debugfs_names(&img, "/d"), want);
    let fs = open_img(&img);
    let d = fs.lookup(fs.root(), b"d").unwrap().unwrap();
    assert_eq!(reader_names(&fs, d), want);

    // Now say group 0's inode table is unused from /d's first entry on.
    let entries = fs.read_dir(d).unwrap();
    let first = entries.iter().map(|e| e.node).min().unwrap();
    let ipg = u64::from(fs.sb.s_inodes_per_group);
    let unused = format!("set_bg 0 itable_unused {}", ipg - (first - 1));
    debugfs_write(&img, &[&unused, "set_bg 0 checksum calc"]);
    assert!(fsck_report(&img).contains("found in group 0's unused inodes area"));
    let fs = open_img(&img);
    assert_eq!(reader_names(&fs, d), want);
    for entry in fs.read_dir(d).unwrap() {
        assert_corrupt(fs.metadata(entry.node), "unused part of block group 0");
    }
    assert!(fs.metadata(d).is_ok());
}

/// A directory whose second block is a hole and whose i_size stops before its third
/// block: debugfs lists the third block's entries and e2fsck grows i_size to keep them;
/// the reader stopped at i_size.
pub fn directory_blocks_after_a_hole_are_read() {
    for (tag, args) in [
        ("hole-ext4", &["-t", "ext4", "-b", "1024"][..]),
        ("hole-ext2", &["-t", "ext2", "-b", "1024"][..]),
    ] {
        let scratch = Scratch::new("ext4", tag);
        let src = dir_source(&scratch, 60);
        let img = scratch.path("img");
        mkfs(args, &src, &img, "4M");
        let stat = debugfs(&img, "stat /d");
        assert!(stat.contains("Size: 3072"), "{stat}");
        debugfs_write(&img, &["punch /d 1 1", "sif /d size 1024"]);
        let report = fsck_report(&img);
        assert!(
            report.contains("i_size is 1024, should be 3072"),
            "{report}"
        );
        let want = debugfs_names(&img, "/d");
        let fs = open_img(&img);
        let d = fs.lookup(fs.root(), b"d").unwrap().unwrap();
        let first_block = fs.read_dir(d).unwrap();
        assert_eq!(reader_names(&fs, d), want, "{tag}");
        assert!(want.len() > 30, "{tag}: only {} entries", want.len());
        drop(first_block);
    }
}

/// An inline file whose system.data record points its value into the entry table came
/// back as its data followed by ten bytes of the record. The table is checked first.
pub fn corrupt_inline_data_xattr_records_are_refused() {
    let scratch = Scratch::new("ext4", "inline-xattr");
    let src = scratch.path("src");
    fs::create_dir_all(&src).unwrap();
    let data: Vec<u8> = (0..70u8).map(|i| b'a' + i % 26).collect();
    write_file(&src.join("f"), &data);
    let img = scratch.path("img");
    // Without metadata_csum, so that the byte edits below are what the reader meets.
    mkfs(
        &[
            "-t",
            "ext4",
            "-O",
            "inline_data,^metadata_csum",
            "-I",
            "256",
        ],
        &src,
        &img,
        "1M",
    );
    let stat = debugfs(&img, "stat /f");
    assert!(stat.contains("Size of inline data: 70"), "{stat}");
    let bytes = fs::read(&img).unwrap();
    let inode = imap_offset(&img, "/f");
    let extra = usize::from(u16::from_le_bytes(
        bytes[inode + 0x80..inode + 0x82].try_into().unwrap(),
    ));
    let area = inode + 128 + extra;
    let entry = area + 4;
    assert_eq!(&bytes[area..area + 4], &0xEA02_0000u32.to_le_bytes());
    assert_eq!(&bytes[entry + 16..entry + 20], b"data");
    let fs_with = |edits: &[(usize, &[u8])]| {
        let mut b = bytes.clone();
        for (at, new) in edits {
            b[*at..*at + new.len()].copy_from_slice(new);
        }
        open_bytes(b).unwrap()
    };
    let ino = fs_with(&[]).lookup(2, b"f").unwrap().unwrap();
    assert_eq!(read_all(&fs_with(&[]), ino).unwrap(), data);

    // e_value_offs 0: the value would start at the entry itself.
    let fs = fs_with(&[(entry + 2, &0u16.to_le_bytes())]);
    assert_corrupt(read_all(&fs, ino), "overlaps the xattr entry table");
    assert_corrupt(fs.metadata(ino), "overlaps");
    // e_value_size past the inode.
    let kind = assert_corrupt(
        read_all(&fs_with(&[(entry + 8, &200u32.to_le_bytes())]), ino),
        "runs past the end of the inode",
    );
    assert_eq!(kind, CorruptKind::Invalid);
    // A hash that does not match the value.
    assert_corrupt(
        read_all(
            &fs_with(&[(entry + 12, &0xDEAD_BEEFu32.to_le_bytes())]),
            ino,
        ),
        "hash",
    );
    // A name length of 0, and a name running past the inode.
    assert_corrupt(read_all(&fs_with(&[(entry, &[0])]), ino), "empty");
    assert_corrupt(read_all(&fs_with(&[(entry, &[250])]), ino), "runs past");
    // The area's magic gone: an inline inode without its system.data.
    let kind = assert_corrupt(read_all(&fs_with(&[(area, &[0, 0, 0, 0])]), ino), "magic");
    assert_eq!(kind, CorruptKind::Magic);
    // The record renamed: no system.data at all.
    assert_corrupt(
        read_all(&fs_with(&[(entry + 16, b"date")]), ino),
        "no system.data",
    );
}

/// Inode numbers of `names` in /, with the block group each lies in.
fn groups_of(fs: &Ext4Fs, names: &[String]) -> Vec<(String, u64, u64)> {
    let ipg = u64::from(fs.sb.s_inodes_per_group);
    names
        .iter()
        .map(|name| {
            let ino = fs.lookup(fs.root(), name.as_bytes()).unwrap().unwrap();
            (name.clone(), ino, (ino - 1) / ipg)
        })
        .collect()
}

/// One damaged group descriptor made the whole volume unreadable, while debugfs reads
/// every other group. Now the group is marked bad, its inodes are errors, the volume
/// opens incomplete and everything else reads.
pub fn one_damaged_group_descriptor_spoils_only_its_group() {
    let scratch = Scratch::new("ext4", "bad-group");
    let src = scratch.path("src");
    fs::create_dir_all(&src).unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("file-{i:02}")).collect();
    for name in &names {
        write_file(&src.join(name), name.as_bytes());
    }
    let img = scratch.path("img");
    // Eight groups of 16 inodes: the files spread over several groups.
    mkfs(
        &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "128"],
        &src,
        &img,
        "8M",
    );
    let placed = groups_of(&open_img(&img), &names);
    assert!(placed.iter().any(|(_, _, g)| *g == 1) && placed.iter().any(|(_, _, g)| *g == 0));
    for (request, cause) in [
        // Over the superblock (block 1 with 1 KiB blocks).
        (
            "set_bg 1 inode_table 1",
            "block 1 lies in the filesystem's metadata (superblock)",
        ),
        // Over the group descriptor table (block 2).
        (
            "set_bg 1 inode_table 2",
            "overlaps the superblock and group descriptors",
        ),
        // Past the end of the filesystem.
        (
            "set_bg 1 inode_table 99999999",
            "past its end (8192 blocks)",
        ),
    ] {
        let copy = scratch.path("damaged");
        fs::copy(&img, &copy).unwrap();
        debugfs_write(&copy, &[request, "set_bg 1 checksum calc"]);
        let fs = open_path(&copy).unwrap_or_else(|e| panic!("{request}: {e}"));
        let reason = fs.incomplete_reason().unwrap();
        assert!(reason.contains("block group 1's descriptor"), "{reason}");
        assert!(reason.contains(cause), "{request}: {reason}");
        for (name, ino, group) in &placed {
            if *group == 1 {
                assert_corrupt(fs.metadata(*ino), "block group 1's descriptor is damaged");
            } else {
                // debugfs reads the groups left intact, and so does the reader.
                let want = debugfs(&copy, &format!("cat /{name}"));
                assert_eq!(read_all(&fs, *ino).unwrap(), want.as_bytes(), "{request}");
            }
        }
        assert_eq!(fs.read_dir(fs.root()).unwrap().len(), names.len() + 1);
    }
}

/// A reference to block 1 of a 1 KiB-block filesystem was said to lie "outside" it; it
/// lies on the superblock, and the error says so. Past the end is said as such.
pub fn block_references_name_the_real_cause() {
    let scratch = Scratch::new("ext4", "cause");
    let src = dir_source(&scratch, 1);
    for (tag, args, field) in [
        (
            "cause-ext2",
            &["-t", "ext2", "-b", "1024", "-N", "16"][..],
            "block[0]",
        ),
        // With extents, i_block[5] is the first extent's ee_start_lo.
        (
            "cause-ext4",
            &["-t", "ext4", "-b", "1024", "-N", "16"][..],
            "block[5]",
        ),
    ] {
        let img = scratch.path(tag);
        mkfs(args, &src, &img, "100k");
        let mut cases = vec![
            (
                "1",
                "block 1 lies in the filesystem's metadata (superblock)",
            ),
            ("100", "past its end (100 blocks)"),
        ];
        if field == "block[5]" {
            // A block map's 0 is a hole; an extent's is the boot sector.
            cases.push((
                "0",
                "block 0 lies in the filesystem's metadata (boot sector)",
            ));
        }
        for (value, cause) in cases {
            let copy = scratch.path("copy");
            fs::copy(&img, &copy).unwrap();
            debugfs_write(&copy, &[&format!("sif /hello.txt {field} {value}")]);
            let fs = open_img(&copy);
            let ino = fs.lookup(fs.root(), b"hello.txt").unwrap().unwrap();
            let kind = assert_corrupt(read_all(&fs, ino), cause);
            assert_eq!(kind, CorruptKind::OutOfRange);
        }
    }
}

/// A journal inode zeroed on disk while the superblock keeps its backup (s_jnl_blocks):
/// e2fsck replays the journal through the backup; the reader refused the volume.
pub fn zeroed_journal_inode_is_replayed_through_the_superblock_backup() {
    // e2fsck rebuilds a backup as a block-mapped inode, so it replays ext3's journals
    // through it; an extent-mapped backup (ext4) is read as the extents it holds.
    for (tag, args, e2fsck_replays) in [
        ("jnl-backup3", &["-t", "ext3", "-b", "1024"][..], true),
        ("jnl-backup4", &["-t", "ext4", "-b", "4096"][..], false),
    ] {
        let j = journaled(tag, args, "");
        let header = run(Command::new(tool("dumpe2fs")).arg("-h").arg(&j.img));
        assert!(
            header.contains("Journal backup:           inode blocks"),
            "{header}"
        );
        let mut bytes = fs::read(&j.img).unwrap();
        let inode = imap_offset(&j.img, "<8>");
        let inode_size = usize::from(u16::from_le_bytes(
            bytes[1024 + 0x58..1024 + 0x5A].try_into().unwrap(),
        ));
        bytes[inode..inode + inode_size].fill(0);
        let zeroed = j.scratch.path("zeroed");
        fs::write(&zeroed, &bytes).unwrap();

        let fs = open_img(&zeroed);
        assert!(!fs.disk.overlay.is_empty(), "{tag}");
        assert!(fs.details().unwrap().log.contains("backup"), "{tag}");
        assert_eq!(walk_image(&fs), walk_image(&open_img(&j.replayed)), "{tag}");
        if e2fsck_replays {
            let fixed = j.scratch.path("fixed");
            fs::copy(&zeroed, &fixed).unwrap();
            let out = Command::new(tool("e2fsck"))
                .arg("-fy")
                .arg(&fixed)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&out.stdout);
            assert!(report.contains("recovering journal"), "{report}");
            assert_eq!(walk_image(&fs), walk_image(&open_img(&fixed)), "{tag}");
        }

        // Without a backup the journal cannot be replayed: the volume is read as it lies
        // and says so.
        bytes[1024 + 0xFD] = 0;
        assert!(!unreplayed(open_bytes(bytes)).is_empty(), "{tag}");
    }
}

/// The journal found through the superblock's backup (s_jnl_blocks) is held to the same
/// journal superblock checksum as one found through its inode: a mismatch refuses the
/// replay (the volume is read as it lies, dirty and incomplete), and only under Ignore is
/// the journal replayed through the backup.
pub fn journal_superblock_checksum_is_verified_through_the_backup() {
    let j = journaled("jnl-backup-csum", &["-t", "ext4", "-b", "4096"], "-c -v 3");
    let journal_start = debugfs(&j.img, "bmap <8> 0")
        .trim()
        .parse::<usize>()
        .unwrap()
        * 4096;
    let mut bytes = fs::read(&j.img).unwrap();
    let inode = imap_offset(&j.img, "<8>");
    let inode_size = usize::from(u16::from_le_bytes(
        bytes[1024 + 0x58..1024 + 0x5A].try_into().unwrap(),
    ));
    bytes[inode..inode + inode_size].fill(0);
    // The backup alone replays it.
    let fs = open_bytes_with(bytes.clone(), ChecksumPolicy::Verify).unwrap();
    assert!(fs.details().unwrap().log.contains("backup"));
    assert_eq!(fs.incomplete_reason(), None);
    assert_eq!(walk_image(&fs), walk_image(&open_img(&j.replayed)));

    // s_padding, after s_checksum_type: covered by the checksum, read by nobody.
    xor(&mut bytes, journal_start + 0xF0, 0x5A);
    let fs = open_bytes_with(bytes.clone(), ChecksumPolicy::Verify).unwrap();
    assert!(fs.disk.overlay.is_empty(), "the journal was replayed");
    assert_eq!(fs.details().unwrap().log, "dirty");
    let reason = fs.incomplete_reason().unwrap();
    let needle = format!(
        "ext4 journal superblock of inode 8 at byte {}: checksum mismatch",
        journal_start + 0xFC
    );
    assert!(
        reason.contains("was not replayed") && reason.contains(&needle),
        "{reason}"
    );
    let target = fs.lookup(fs.root(), b"target.txt").unwrap().unwrap();
    assert_eq!(read_all(&fs, target).unwrap(), ORIGINAL);

    let fs = open_bytes_with(bytes, ChecksumPolicy::Ignore).unwrap();
    assert_eq!(fs.ignored_checksums(), 1);
    assert!(fs.details().unwrap().log.contains("backup"));
    assert_eq!(walk_image(&fs), walk_image(&open_img(&j.replayed)));
    assert_eq!(read_all(&fs, target).unwrap(), REPLAYED);
}

/// An extent tree seven levels deep (e2fsck accepts it and only offers to make it
/// shallower; debugfs reads it) was refused for passing the kernel's five.
pub fn deep_extent_trees_are_read_as_e2fsck_accepts_them() {
    let scratch = Scratch::new("ext4", "deep-extents");
    let src = scratch.path("src");
    fs::create_dir_all(&src).unwrap();
    let data: Vec<u8> = XorShift(7).bytes(5000);
    write_file(&src.join("f"), &data);
    let img = scratch.path("img");
    mkfs(&["-t", "ext4", "-b", "1024"], &src, &img, "2M");
    // Each split of the root pushes its entries one level down.
    let mut requests = vec!["extent_open /f"];
    for _ in 0..7 {
        requests.extend(["root", "split_node"]);
    }
    requests.push("extent_close");
    debugfs_write(&img, &requests);
    let tree = debugfs(&img, "ex /f");
    assert!(tree.contains(" 7/ 7 "), "{tree}");
    let report = fsck_report(&img);
    assert!(report.contains("could be more shallow (7;"), "{report}");
    let fs = open_img(&img);
    let ino = fs.lookup(fs.root(), b"f").unwrap().unwrap();
    assert_eq!(read_all(&fs, ino).unwrap(), data);

    // A level whose depth does not follow its parent's is still refused: the leaf (the
    // deepest node) claims depth 1.
    let bytes = fs::read(&img).unwrap();
    let leaf_line = tree
        .lines()
        .find(|l| l.trim_start().starts_with("6/ 7"))
        .unwrap();
    let leaf: usize = leaf_line
        .split_whitespace()
        .nth(7)
        .unwrap()
        .parse()
        .unwrap();
    let mut bad = bytes.clone();
    bad[leaf * 1024 + 6..leaf * 1024 + 8].copy_from_slice(&1u16.to_le_bytes());
    assert_corrupt(
        read_all(&open_bytes(bad).unwrap(), ino),
        "where the parent implies 0",
    );
    // And a depth past the bound is refused before any read.
    let root = imap_offset(&img, "/f") + 0x28;
    let mut deep = bytes;
    deep[root + 6..root + 8].copy_from_slice(&33u16.to_le_bytes());
    assert_corrupt(
        read_all(&open_bytes(deep).unwrap(), ino),
        "eh_depth 33 exceeds the maximum of 32",
    );
}
