//! Tests of the XFS reader against images that `mkfs.xfs -p` builds at test time from a
//! generated source tree (no mount, no root), compared with that tree; targeted
//! corruption of every checked structure; and a seeded random-corruption walk.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::bmap::BlockMap;
use super::XfsFs;
use crate::filesystems::test_support::{tool, Scratch};
use crate::filesystems::{FileKind, Filesystem, FsError, NodeId};
use crate::image::{CorruptKind, MemoryImage, RawImage};

const BIG_DIR_ENTRIES: usize = 3000;
/// mkfs.xfs refuses data devices smaller than 300 MiB; the file stays sparse.
const IMAGE_SIZE: u64 = 320 << 20;

/// The source tree: every kind of node and every directory form at the default sizes.
fn populate(root: &Path, big_dir_entries: usize) {
    fs::create_dir_all(root.join("etc/ssh")).unwrap();
    fs::write(root.join("etc/hostname"), b"builder\n").unwrap();
    fs::write(
        root.join("etc/ssh/ssh_host_ed25519_key"),
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n",
    )
    .unwrap();
    fs::set_permissions(
        root.join("etc/ssh/ssh_host_ed25519_key"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(root.join("big.bin"), &big).unwrap();
    fs::write(root.join("setuid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::create_dir(root.join("sticky")).unwrap();
    fs::set_permissions(root.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    symlink("etc/hostname", root.join("short-link")).unwrap();
    symlink("x".repeat(300), root.join("remote-link")).unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"caf\xe9-\xff")),
        b"latin-1 name\n",
    )
    .unwrap();
    let block_dir = root.join("block-dir");
    fs::create_dir(&block_dir).unwrap();
    for i in 0..40 {
        fs::write(block_dir.join(format!("entry-{i:03}")), format!("{i}\n")).unwrap();
    }
    let many = root.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..big_dir_entries {
        fs::write(
            many.join(format!("file-with-a-longish-name-{i:06}")),
            i.to_string(),
        )
        .unwrap();
    }
    fs::write(many.join("payload"), b"in a big directory\n").unwrap();
    let mut deep = root.to_path_buf();
    for level in 0..12 {
        deep = deep.join(format!("d{level}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom"), b"deep\n").unwrap();
}

/// A proto file line's mode field: type, setuid, setgid, octal permissions (sticky bits
/// are not expressible and go to the caller's later chmod-free comparison).
fn proto_mode(meta: &fs::Metadata) -> String {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        'p'
    } else {
        '-'
    };
    let mode = meta.mode();
    format!(
        "{kind}{}{}{:03o}",
        if mode & 0o4000 != 0 { 'u' } else { '-' },
        if mode & 0o2000 != 0 { 'g' } else { '-' },
        mode & 0o777
    )
}

fn write_proto(dir: &Path, depth: usize, out: &mut Vec<u8>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).unwrap();
        out.extend(b" ".repeat(depth));
        out.extend(name.as_bytes());
        out.extend(format!(" {} {} {}", proto_mode(&meta), meta.uid(), meta.gid()).as_bytes());
        let ft = meta.file_type();
        if ft.is_file() {
            out.push(b' ');
            out.extend(path.as_os_str().as_bytes());
        } else if ft.is_symlink() {
            out.push(b' ');
            out.extend(fs::read_link(&path).unwrap().as_os_str().as_bytes());
        }
        out.push(b'\n');
        if ft.is_dir() {
            write_proto(&path, depth + 1, out);
            out.extend(b" ".repeat(depth));
            out.extend(b"$\n");
        }
    }
}

/// Builds an image of `src` with `mkfs.xfs -p` and the given options.
fn build(scratch: &Scratch, src: &Path, args: &[&str]) -> PathBuf {
    let mut proto = b"amiscan-test\n0 0\nd--755 0 0\n".to_vec();
    write_proto(src, 1, &mut proto);
    proto.extend(b"$\n");
    let proto_path = scratch.path("proto");
    fs::write(&proto_path, proto).unwrap();
    let img = scratch.path("xfs.img");
    let file = fs::File::create(&img).unwrap();
    file.set_len(IMAGE_SIZE).unwrap();
    let out = Command::new(tool("mkfs.xfs"))
        .args(["-q", "-f"])
        .args(args)
        .arg("-p")
        .arg(&proto_path)
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkfs.xfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    img
}

fn open_path(img: &Path) -> XfsFs {
    XfsFs::open(Arc::new(RawImage::open(img).unwrap())).unwrap_or_else(|e| panic!("{e}"))
}

fn open_bytes(bytes: Vec<u8>) -> Result<XfsFs, FsError> {
    XfsFs::open(Arc::new(MemoryImage::new(bytes)))
}

fn read_all(fs: &XfsFs, node: NodeId) -> Result<Vec<u8>, FsError> {
    let mut data = Vec::new();
    fs.open(node)?
        .read_to_end(&mut data)
        .map_err(|e| FsError::io("file", 0, e))?;
    Ok(data)
}

/// What both sides must agree on for one path (mkfs -p does not keep mtimes).
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: FileKind,
    permissions: u32,
    uid: u32,
    gid: u32,
    size: Option<u64>,
    sha256: Option<Vec<u8>>,
    target: Option<Vec<u8>>,
}

fn walk_source(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            let mut path = prefix.clone();
            path.push(b'/');
            path.extend(entry.file_name().as_bytes());
            let ft = meta.file_type();
            let kind = FileKind::from_mode(meta.mode()).unwrap();
            out.insert(
                path.clone(),
                Node {
                    kind,
                    // mkfs -p cannot express the sticky bit.
                    permissions: meta.mode() & 0o6777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    size: ft.is_file().then_some(meta.len()),
                    sha256: ft
                        .is_file()
                        .then(|| Sha256::digest(fs::read(entry.path()).unwrap()).to_vec()),
                    target: ft.is_symlink().then(|| {
                        fs::read_link(entry.path())
                            .unwrap()
                            .as_os_str()
                            .as_bytes()
                            .to_vec()
                    }),
                },
            );
            if ft.is_dir() {
                stack.push((entry.path(), path));
            }
        }
    }
    out
}

fn walk_image(fs: &XfsFs) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(fs.root(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs.read_dir(dir).unwrap() {
            let meta = fs.metadata(entry.node).unwrap();
            let mut path = prefix.clone();
            path.push(b'/');
            path.extend(&entry.name);
            let is_file = meta.kind == FileKind::File;
            out.insert(
                path.clone(),
                Node {
                    kind: meta.kind,
                    permissions: u32::from(meta.permissions & 0o6777),
                    uid: meta.uid,
                    gid: meta.gid,
                    size: is_file.then_some(meta.size),
                    sha256: is_file
                        .then(|| Sha256::digest(read_all(fs, entry.node).unwrap()).to_vec()),
                    target: (meta.kind == FileKind::Symlink)
                        .then(|| fs.read_link(entry.node).unwrap()),
                },
            );
            if meta.kind == FileKind::Dir {
                stack.push((entry.node, path));
            }
        }
    }
    out
}

fn roundtrip(tag: &str, args: &[&str], big_dir_entries: usize) -> (Scratch, PathBuf) {
    let scratch = Scratch::new("xfs", tag);
    let src = scratch.path("src");
    populate(&src, big_dir_entries);
    let img = build(&scratch, &src, args);
    let fs = open_path(&img);
    assert_eq!(fs.type_name(), "xfs");
    let want = walk_source(&src);
    let got = walk_image(&fs);
    for (path, node) in &want {
        assert_eq!(
            got.get(path),
            Some(node),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
    assert_eq!(got.len(), want.len());
    // The AGI counters give the progress estimate: every node plus the root.
    assert_eq!(fs.usage().nodes, Some(got.len() as u64 + 1));
    assert!(
        fs.incomplete_reason().is_none(),
        "{:?}",
        fs.incomplete_reason()
    );
    (scratch, img)
}

// ---------------------------------------------------------------------------------------
// Round trips, one per on-disk variant
// ---------------------------------------------------------------------------------------

pub fn xfs_v5_default() {
    let (_scratch, img) = roundtrip("v5", &[], BIG_DIR_ENTRIES);
    let details = open_path(&img).details().unwrap();
    assert_eq!(details.version, Some(5));
    assert_eq!(details.log, "clean");
    assert!(details.features.iter().any(|f| f == "bigtime"));
}

pub fn xfs_v4_without_ftype() {
    let (_scratch, img) = roundtrip("v4", &["-m", "crc=0", "-n", "ftype=0"], BIG_DIR_ENTRIES);
    let details = open_path(&img).details().unwrap();
    assert_eq!(details.version, Some(4));
    assert!(!details.features.iter().any(|f| f == "ftype"));
}

pub fn xfs_64k_directory_blocks_and_1k_filesystem_blocks() {
    let (_scratch, img) = roundtrip(
        "64k",
        &["-b", "size=1024", "-n", "size=65536"],
        BIG_DIR_ENTRIES,
    );
    let details = open_path(&img).details().unwrap();
    assert_eq!((details.block_size, details.dir_block_size), (1024, 65536));
}

pub fn xfs_512_byte_inodes_sparse_chunks_and_nrext64() {
    roundtrip("nrext64", &["-i", "size=1024,sparse=1,nrext64=1"], 200);
}

pub fn xfs_is_send_and_sync_and_shared_by_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<XfsFs>();
    let (_scratch, img) = roundtrip("threads", &[], 500);
    let fs = Arc::new(open_path(&img));
    let many = fs.lookup(fs.root(), b"many").unwrap().unwrap();
    let entries = Arc::new(fs.read_dir(many).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (fs, entries) = (Arc::clone(&fs), Arc::clone(&entries));
            std::thread::spawn(move || {
                entries
                    .iter()
                    .skip(t)
                    .step_by(4)
                    .map(|e| read_all(&fs, e.node).unwrap().len())
                    .sum::<usize>()
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total > 1000);
}

// ---------------------------------------------------------------------------------------
// Targeted corruption
// ---------------------------------------------------------------------------------------

struct Small {
    _scratch: Scratch,
    bytes: Vec<u8>,
    fs: XfsFs,
}

impl Small {
    fn new(args: &[&str]) -> Self {
        let scratch = Scratch::new("xfs", "small");
        let src = scratch.path("src");
        populate(&src, 300);
        let img = build(&scratch, &src, args);
        let fs = open_path(&img);
        let bytes = fs::read(&img).unwrap();
        Self {
            _scratch: scratch,
            bytes,
            fs,
        }
    }

    fn ino(&self, path: &[&[u8]]) -> u64 {
        path.iter().fold(self.fs.root(), |dir, name| {
            self.fs.lookup(dir, name).unwrap().unwrap()
        })
    }

    fn flipped(&self, at: u64) -> XfsFs {
        let mut bytes = self.bytes.clone();
        bytes[usize::try_from(at).unwrap()] ^= 0x40;
        open_bytes(bytes).unwrap()
    }

    fn first_block_of(&self, ino: u64) -> u64 {
        let inode = self.fs.inode(ino).unwrap();
        let map = BlockMap::read(&self.fs.disk, &self.fs.sb, &inode).unwrap();
        let start = map.extents()[0].start;
        self.fs.sb.fsb_offset(start).unwrap()
    }
}

/// Asserts the corruption's structure and offset, and returns its kind.
fn assert_corrupt<T>(result: Result<T, FsError>, structure: &str, offset: u64) -> CorruptKind {
    match result {
        Err(FsError::Corrupt {
            structure: s,
            offset: o,
            kind,
            detail,
        }) => {
            assert!(s.contains(structure), "{s}: {detail} (wanted {structure})");
            assert_eq!(o, offset, "{s}: {detail}");
            kind
        }
        Err(other) => panic!("wanted corruption of {structure}, got {other}"),
        Ok(_) => panic!("wanted corruption of {structure}, got success"),
    }
}

pub fn superblock_crc_and_fields_are_checked() {
    let small = Small::new(&[]);
    // Any byte of the sector, even one this reader does not decode, is covered.
    let mut bytes = small.bytes.clone();
    bytes[400] ^= 1;
    let kind = assert_corrupt(open_bytes(bytes), "xfs superblock", 224);
    assert_eq!(kind, CorruptKind::Checksum);
    let mut bytes = small.bytes.clone();
    bytes[0] = b'Y';
    let kind = assert_corrupt(open_bytes(bytes), "xfs superblock", 0);
    assert_eq!(kind, CorruptKind::Magic);
    // A truncated volume is refused before anything is read from its missing part.
    let mut bytes = small.bytes.clone();
    bytes.truncate(bytes.len() / 2);
    let kind = assert_corrupt(open_bytes(bytes), "xfs superblock", 8);
    assert_eq!(kind, CorruptKind::Truncated);
}

pub fn unsupported_and_unknown_features_are_named() {
    let small = Small::new(&["-m", "crc=0"]);
    // v4 has no CRC, so fields can be changed directly: an unknown features2 bit.
    let mut bytes = small.bytes.clone();
    bytes[203] |= 0x40;
    match open_bytes(bytes) {
        Err(FsError::Unsupported { feature }) => {
            assert!(feature.contains("features2"), "{feature}")
        }
        other => panic!("{other:?}"),
    }
    let mut bytes = small.bytes.clone();
    bytes[100] &= !0x20; // no dirv2 bit: version 1 directories
    match open_bytes(bytes) {
        Err(FsError::Unsupported { feature }) => assert!(feature.contains("version 1 directories")),
        other => panic!("{other:?}"),
    }
}

pub fn damaged_agi_makes_its_inodes_unreadable_and_the_volume_incomplete() {
    let small = Small::new(&["-d", "agcount=4"]);
    let sb = &small.fs.sb;
    let agi1 = sb.ag_blocks * sb.block_size + 2 * sb.sector_size;
    let fs = small.flipped(agi1 + 20);
    let reason = fs.incomplete_reason().unwrap();
    assert!(reason.contains("xfs AGI 1"), "{reason}");
    let mut inodes = Vec::new();
    let mut dirs = vec![small.fs.root()];
    while let Some(dir) = dirs.pop() {
        for entry in small.fs.read_dir(dir).unwrap() {
            inodes.push(entry.node);
            if small.fs.metadata(entry.node).unwrap().kind == FileKind::Dir {
                dirs.push(entry.node);
            }
        }
    }
    let in_ag1 = inodes.iter().copied().find(|ino| sb.ino_ag(*ino) == 1);
    let in_ag0 = inodes.iter().copied().find(|ino| sb.ino_ag(*ino) == 0);
    let (in_ag1, in_ag0) = (in_ag1.expect("an inode in AG 1"), in_ag0.unwrap());
    let kind = assert_corrupt(fs.metadata(in_ag1), "xfs AGI 1", agi1 + 312);
    assert_eq!(kind, CorruptKind::Checksum);
    assert!(fs.metadata(in_ag0).is_ok());
    let agf0 = sb.sector_size;
    let fs = small.flipped(agf0 + 100);
    assert!(fs.incomplete_reason().unwrap().contains("xfs AGF 0"));
}

pub fn inode_crc_number_and_fields_are_checked() {
    let small = Small::new(&[]);
    let ino = small.ino(&[b"etc", b"hostname"]);
    let at = small.fs.sb.ino_location(ino).unwrap();
    assert_corrupt(
        small.flipped(at + 60).metadata(ino),
        &format!("xfs inode {ino}"),
        at + 100,
    );
    // Other files stay readable.
    let other = small.ino(&[b"big.bin"]);
    assert_eq!(
        read_all(&small.flipped(at + 60), other).unwrap().len(),
        3_000_000
    );
    // On v4 there is no CRC: a bad magic or format is still caught.
    let v4 = Small::new(&["-m", "crc=0"]);
    let ino = v4.ino(&[b"etc", b"hostname"]);
    let at = v4.fs.sb.ino_location(ino).unwrap();
    assert_corrupt(v4.flipped(at).metadata(ino), "xfs inode", at);
    let mut bytes = v4.bytes.clone();
    bytes[usize::try_from(at + 5).unwrap()] = 1; // local format for a regular file
    assert_corrupt(
        open_bytes(bytes).unwrap().metadata(ino),
        "xfs inode",
        at + 5,
    );
}

pub fn directory_blocks_are_checked() {
    let small = Small::new(&[]);
    for dir in [&b"block-dir"[..], b"many"] {
        let ino = small.ino(&[dir]);
        let block = small.first_block_of(ino);
        // The header's CRC covers every byte; a flipped entry byte is caught.
        let fs = small.flipped(block + 200);
        assert_corrupt(fs.read_dir(ino), "xfs directory block", block + 4);
    }
    let v4 = Small::new(&["-m", "crc=0"]);
    let ino = v4.ino(&[b"many"]);
    let block = v4.first_block_of(ino);
    let mut bytes = v4.bytes.clone();
    // The first entry's name length, made to overrun its tag.
    let at = usize::try_from(block + 16 + 8).unwrap();
    bytes[at] = 0;
    assert_corrupt(
        open_bytes(bytes).unwrap().read_dir(ino),
        "xfs directory block",
        block + 16,
    );
}

pub fn shortform_directories_are_checked() {
    let small = Small::new(&["-m", "crc=0"]);
    let etc = small.ino(&[b"etc"]);
    let inode = small.fs.inode(etc).unwrap();
    let mut bytes = small.bytes.clone();
    bytes[usize::try_from(inode.fork_offset).unwrap()] = 40; // claims 40 entries
    let end = inode.fork_offset + inode.size;
    match open_bytes(bytes).unwrap().read_dir(etc) {
        Err(FsError::Corrupt {
            structure, offset, ..
        }) => {
            assert!(structure.contains("xfs shortform directory"), "{structure}");
            assert!((inode.fork_offset..=end).contains(&offset), "{offset}");
        }
        other => panic!("{other:?}"),
    }
}

pub fn extents_outside_the_filesystem_are_refused() {
    let small = Small::new(&["-m", "crc=0"]);
    let ino = small.ino(&[b"big.bin"]);
    let inode = small.fs.inode(ino).unwrap();
    let mut bytes = small.bytes.clone();
    // Set the high bits of the record's start block: an AG that does not exist.
    bytes[usize::try_from(inode.fork_offset + 7).unwrap()] |= 0x1f;
    assert_corrupt(
        open_bytes(bytes).unwrap().open(ino).map(|_| ()),
        "xfs extent list",
        inode.fork_offset,
    );
}

pub fn random_corruption_never_panics_or_hangs() {
    let small = Small::new(&[]);
    let sb = &small.fs.sb;
    // Metadata clusters near the start of each AG and the root directory's inodes.
    let regions: Vec<u64> = (0..u64::from(sb.ag_count))
        .map(|ag| ag * sb.ag_blocks * sb.block_size)
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for _ in 0..150 {
        let mut bytes = small.bytes.clone();
        for _ in 0..1 + next() % 8 {
            let region = regions[usize::try_from(next() % regions.len() as u64).unwrap()];
            let at = region + next() % (256 * 1024);
            bytes[usize::try_from(at).unwrap()] ^= (next() as u8) | 1;
        }
        if let Ok(fs) = open_bytes(bytes) {
            let _ = crate::fuzzing::walk_filesystem(Arc::new(fs));
        }
    }
}

/// mkfs.xfs 6.1 -p writes a v5 remote symlink's target without the block header the
/// format requires; the kernel refuses to read it ("Structure needs cleaning") and
/// xfs_repair would clear the inode. The reader must refuse it too, naming the block.
pub fn remote_symlink_blocks_need_their_v5_header() {
    let scratch = Scratch::new("xfs", "symlink");
    let src = scratch.path("src");
    fs::create_dir(&src).unwrap();
    symlink("y/".repeat(500), src.join("longest-link")).unwrap();
    let img = build(&scratch, &src, &[]);
    let fs = open_path(&img);
    let link = fs.lookup(fs.root(), b"longest-link").unwrap().unwrap();
    let inode = fs.inode(link).unwrap();
    let map = BlockMap::read(&fs.disk, &fs.sb, &inode).unwrap();
    let block = fs.sb.fsb_offset(map.extents()[0].start).unwrap();
    assert_corrupt(fs.read_link(link), "xfs symlink block", block);
    // The same target on v4, where remote symlink blocks hold only the target.
    let img = build(&scratch, &src, &["-m", "crc=0"]);
    let fs = open_path(&img);
    let link = fs.lookup(fs.root(), b"longest-link").unwrap().unwrap();
    assert_eq!(fs.read_link(link).unwrap(), "y/".repeat(500).as_bytes());
}
