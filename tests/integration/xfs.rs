//! End-to-end tests of the XFS reader against real images built by
//! `testdata/build-xfs-images.sh` (mkfs.xfs -p, loop mounts, xfs_io): every image's
//! inventory equals the tree it was made from; `ls` and `cat` agree with the trees; inode
//! numbers agree with xfs_db, the format's own tool, as do the geometry `inspect` reports;
//! Amazon Linux 2023 and RHEL 9 shaped disks scan with the built-in rules as their ext4
//! counterparts do; and damaged copies (superblock, AG headers, an inode, a directory block,
//! a bmap btree block, a truncated image) fail closed, naming the structure and its byte
//! offset, without a panic or a hang.

use crate::util;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::Value;
use util::{
    amiscan, assert_inventory_matches, damaged_files, escape_for_terminal, files, fingerprint,
    inspect_json, mentions_offset_within, mode_string, poke, read_at, run_with_deadline,
    sha256_file, sorted_names, source, utc_time, volume, Fs, Record, Scratch, Source,
};

/// Every image the XFS build script makes.
const XFS_IMAGES: &[&str] = &[
    "xfs-v5.img",
    "xfs-v5-mounted.img",
    "xfs-v4.img",
    "xfs-512inode-64kdir.img",
    "xfs-sparse-nrext64.img",
    "xfs-1k.img",
    "xfs-dirty.img",
    "xfs-al2023.img",
    "xfs-al2023-sealed.img",
    "xfs-rhel.img",
    "xfs-rhel-sealed.img",
];

/// Identifiers the build script gives the distribution-shaped disks.
const AL_ROOT_UUID: &str = "5b3e7c1a-9d2f-4e8b-a6c4-2023a1a2b3c4";
const AL_ESP_UUID: &str = "A1E5-2023";
const RHEL_ROOT_UUID: &str = "7d4c2b1a-8e9f-4a3b-9c5d-e6f7a8b9c0d1";
const RHEL_BOOT_UUID: &str = "3a9b8c7d-6e5f-4d1c-8b2a-0f1e2d3c4b5a";
const RHEL_ESP_UUID: &str = "0E1A-2B3C";

/// Scans are judged as of this day, so that the end-of-life rule does not depend on when
/// the tests run (Amazon Linux 2023 and RHEL 9 are supported then).
const AS_OF: &str = "2026-11-22";

fn ensure_xfs_images() {
    util::ensure_built("build-xfs-images.sh", ".lock-xfs");
}

/// The path of a built XFS image.
fn xfs_image(name: &str) -> PathBuf {
    util::built_image("build-xfs-images.sh", ".lock-xfs", name)
}

/// The tree an XFS image was made from.
fn xfs_tree(name: &str) -> PathBuf {
    ensure_xfs_images();
    util::tree(name)
}

fn xfs_source(tree: &str, guest: &'static str, volume: &'static str, fs: Fs) -> Source {
    ensure_xfs_images();
    source(tree, guest, volume, fs)
}

/// Runs amiscan with an image path and string arguments: `run(&img, ["cat", "/x"])` runs
/// `amiscan cat IMAGE /x` (the image goes right after the subcommand).
fn run<'a>(image_path: &'a Path, args: impl IntoIterator<Item = &'a str>) -> util::Run {
    let mut args = args.into_iter();
    let command = args.next().unwrap();
    let mut all: Vec<&OsStr> = vec![OsStr::new(command), image_path.as_os_str()];
    all.extend(args.map(OsStr::new));
    amiscan(all)
}

fn lines(run: &util::Run) -> Vec<String> {
    run.stdout_text().lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------
// xfs_db, the oracle.
// ---------------------------------------------------------------------------------------

/// `xfs_db -r -c C1 -c C2 … FILE`, its stdout (it must succeed and say nothing on stderr).
fn xfs_db(file: &Path, commands: &[&[u8]]) -> Vec<u8> {
    let mut command = crate::util::tool_command("xfs_db");
    command.arg("-r");
    for c in commands {
        command.arg("-c").arg(OsStr::from_bytes(c));
    }
    let output = command
        .arg(file)
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .output()
        .expect("xfs_db (xfsprogs) must be installed");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "xfs_db {commands:?} {} failed ({}):\n{}",
        file.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn xfs_db_text(file: &Path, commands: &[&str]) -> String {
    let commands: Vec<&[u8]> = commands.iter().map(|c| c.as_bytes()).collect();
    String::from_utf8(xfs_db(file, &commands)).unwrap()
}

/// The number after `name = ` in xfs_db's output.
fn db_field(text: &str, name: &str) -> u64 {
    let prefix = format!("{name} = ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in xfs_db output:\n{text}"))
}

/// The inode number of a path in a bare XFS image.
fn db_inode(file: &Path, path: &str) -> u64 {
    let text = xfs_db_text(file, &[&format!("path {path}"), "inode"]);
    text.trim()
        .strip_prefix("current inode number is ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("xfs_db path {path}: {text}"))
}

/// The byte offset xfs_db's `convert` gives, e.g. `convert("inode", 131)`.
fn db_byte(file: &Path, unit: &str, value: u64) -> u64 {
    let text = xfs_db_text(file, &[&format!("convert {unit} {value} byte")]);
    text.split('(')
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("xfs_db convert {unit} {value} byte: {text}"))
}

/// xfs_db's `ls` of a directory: name → inode number, without `.` and `..`. Each line is
/// `cookie inode type hash name-length name (good)`; the length says where the name ends.
fn db_listing(file: &Path, dir: &[u8]) -> BTreeMap<Vec<u8>, u64> {
    let out = xfs_db(file, &[&[b"ls ".as_slice(), dir].concat()]);
    let mut entries = BTreeMap::new();
    let mut rest = out.as_slice();
    // The first line names the directory.
    let header_end = rest.iter().position(|b| *b == b'\n').unwrap();
    rest = &rest[header_end + 1..];
    while !rest.is_empty() {
        let mut fields = Vec::new();
        for _ in 0..5 {
            let start = rest.iter().position(|b| *b != b' ').unwrap();
            rest = &rest[start..];
            let end = rest.iter().position(|b| *b == b' ').unwrap();
            fields.push(std::str::from_utf8(&rest[..end]).unwrap().to_string());
            rest = &rest[end..];
        }
        rest = &rest[1..];
        let length: usize = fields[4].parse().unwrap();
        let name = rest[..length].to_vec();
        let line_end = rest[length..].iter().position(|b| *b == b'\n').unwrap() + length;
        assert_eq!(&rest[length..line_end], b" (good)", "xfs_db ls {dir:?}");
        rest = &rest[line_end + 1..];
        if name != b"." && name != b".." {
            entries.insert(name, fields[1].parse().unwrap());
        }
    }
    entries
}

/// Copies a partition of a disk image into a file of its own (sparse), for xfs_db.
fn extract_partition(disk: &Path, number: u32, out: &Path) {
    let (start, size) = util::sfdisk_partitions(disk)[&number];
    let status = crate::util::tool_command("dd")
        .arg(format!("if={}", disk.display()))
        .arg(format!("of={}", out.display()))
        .args([
            "bs=1M",
            "iflag=skip_bytes,count_bytes",
            "conv=sparse",
            "status=none",
        ])
        .arg(format!("skip={start}"))
        .arg(format!("count={size}"))
        .status()
        .unwrap();
    assert!(status.success(), "dd of partition {number} failed");
}

// ---------------------------------------------------------------------------------------
// Damaged copies.
// ---------------------------------------------------------------------------------------

/// The records `files` still lists for a damaged image (run without a deadline: call
/// [`damaged_files`] first, which has one).
fn damaged_records(img: &Path) -> Vec<Record> {
    files(img).1
}

// ---------------------------------------------------------------------------------------
// The central check: each image's inventory equals its source trees.
// ---------------------------------------------------------------------------------------

fn record<'a>(records: &'a [Record], path: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("{path} is not in the inventory"))
}

#[test]
fn v5_inventory_matches_source() {
    let records = assert_inventory_matches(
        "xfs-v5.img",
        &[xfs_source("xfs-v5", "/", "disk", Fs::Xfs)],
        0,
    );
    // Device numbers, which the inventory comparison does not look at.
    for (path, rdev) in [
        ("/special/char-1-3", [1, 3]),
        ("/special/block-8-1", [8, 1]),
        ("/special/char-big", [511, 70000]),
    ] {
        assert_eq!(record(&records, path).rdev, Some(rdev), "{path}");
    }
    assert!(records.len() > 2_400, "only {} records", records.len());
}

#[test]
fn v5_mounted_inventory_matches_source() {
    let records = assert_inventory_matches(
        "xfs-v5-mounted.img",
        &[xfs_source("xfs-v5-mounted", "/", "disk", Fs::Xfs)],
        0,
    );
    assert!(records.len() > 100_000, "only {} records", records.len());
    let one = record(&records, "/hard/one");
    assert_eq!(one.nlink, 3);
    assert_eq!(one.inode, record(&records, "/hard/elsewhere/three").inode);
    assert_eq!(record(&records, "/special/socket").kind, "socket");
}

#[test]
fn v4_inventory_matches_source() {
    let records = assert_inventory_matches(
        "xfs-v4.img",
        &[xfs_source("xfs-v4", "/", "disk", Fs::Xfs)],
        0,
    );
    // Without ftype, the type comes from the inode, not the directory entry.
    assert_eq!(record(&records, "/special/fifo").kind, "fifo");
    assert_eq!(record(&records, "/links/len-258").kind, "symlink");
    assert_eq!(record(&records, "/special/block-8-1").rdev, Some([8, 1]));
}

#[test]
fn dir_64k_inventory_matches_source() {
    let records = assert_inventory_matches(
        "xfs-512inode-64kdir.img",
        &[xfs_source("xfs-64kdir", "/", "disk", Fs::Xfs)],
        0,
    );
    let leaf = records
        .iter()
        .filter(|r| r.path.starts_with("/dirs/leaf/"))
        .count();
    assert_eq!(leaf, 5_000);
}

#[test]
fn sparse_inodes_nrext64_inventory_matches_source() {
    let records = assert_inventory_matches(
        "xfs-sparse-nrext64.img",
        &[xfs_source("xfs-nrext64", "/", "disk", Fs::Xfs)],
        0,
    );
    assert!(records.len() > 4_000, "only {} records", records.len());
}

#[test]
fn one_k_blocks_inventory_matches_source() {
    assert_inventory_matches(
        "xfs-1k.img",
        &[xfs_source("xfs-1k", "/", "disk", Fs::Xfs)],
        0,
    );
}

#[test]
fn al2023_inventory_matches_root_and_esp() {
    assert_inventory_matches(
        "xfs-al2023.img",
        &[
            xfs_source("xfs-al2023-root", "/", "p1", Fs::Xfs),
            xfs_source("xfs-al2023-efi", "/boot/efi", "p128", Fs::Vfat),
        ],
        0,
    );
}

#[test]
fn al2023_sealed_inventory_matches_root_and_esp() {
    assert_inventory_matches(
        "xfs-al2023-sealed.img",
        &[
            xfs_source("xfs-al2023-sealed-root", "/", "p1", Fs::Xfs),
            xfs_source("xfs-al2023-efi", "/boot/efi", "p128", Fs::Vfat),
        ],
        0,
    );
}

fn rhel_sources(root: &str) -> Vec<Source> {
    vec![
        xfs_source(root, "/", "p4", Fs::Xfs),
        xfs_source("xfs-rhel-boot", "/boot", "p3", Fs::Xfs),
        xfs_source("xfs-rhel-efi", "/boot/efi", "p2", Fs::Vfat),
    ]
}

#[test]
fn rhel_inventory_matches_root_boot_and_esp() {
    assert_inventory_matches("xfs-rhel.img", &rhel_sources("xfs-rhel-root"), 0);
}

#[test]
fn rhel_sealed_inventory_matches_root_boot_and_esp() {
    assert_inventory_matches(
        "xfs-rhel-sealed.img",
        &rhel_sources("xfs-rhel-sealed-root"),
        0,
    );
}

/// A dirty log: what is on disk outside the log is still listed, exactly, but the result
/// is incomplete (the log was not replayed), and inspect says so.
#[test]
fn dirty_log_is_read_but_incomplete() {
    let img = xfs_image("xfs-dirty.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(3);
    assert_eq!(report["complete"], false, "{report:#}");
    let disk = volume(&report, "disk");
    assert_eq!(disk["filesystem"], "xfs");
    assert_eq!(disk["scanned"], true, "{disk:#}");
    assert_eq!(disk["details"]["log"], "dirty", "{disk:#}");

    let (run, records) = files(&img);
    run.expect_code(3);
    assert!(
        run.stderr.to_ascii_lowercase().contains("log"),
        "stderr does not say why the result is incomplete:\n{}",
        run.stderr
    );
    let expected = util::expected_inventory(&[xfs_source("xfs-dirty", "/", "disk", Fs::Xfs)]);
    let by_path: BTreeMap<Vec<u8>, &Record> = records.iter().map(|r| (r.path_bytes(), r)).collect();
    let mut problems = Vec::new();
    for (path, want) in &expected {
        match by_path.get(path) {
            None => problems.push(format!("{}: missing", util::shown(path))),
            Some(got) => {
                let diffs = util::field_diffs(want, got);
                if !diffs.is_empty() {
                    problems.push(format!("{}: {}", util::shown(path), diffs.join("; ")));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "xfs-dirty.img: what was on disk before the dirty mount differs:\n  {}\nstderr:\n{}",
        problems.join("\n  "),
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------
// ls and cat.
// ---------------------------------------------------------------------------------------

#[test]
fn ls_lists_source_names_sorted_and_escaped() {
    let img = xfs_image("xfs-v5.img");
    let tree = xfs_tree("xfs-v5");
    for dir in [
        "/",
        "/dirs/short",
        "/dirs/empty",
        "/dirs/block",
        "/dirs/leaf",
        "/dirs/node",
        "/names",
        "/links",
    ] {
        let out = run(&img, ["ls", dir]);
        out.expect_code(0);
        let want: Vec<String> = sorted_names(&tree.join(dir.trim_start_matches('/')))
            .iter()
            .map(|n| escape_for_terminal(n))
            .collect();
        assert_eq!(lines(&out), want, "ls {dir}");
    }
    let names = lines(&run(&img, ["ls", "/names"]));
    assert!(names.contains(&"\\xff\\xfe".to_string()), "{names:?}");
    assert!(names.contains(&"caf\\xe9".to_string()), "{names:?}");

    let img = xfs_image("xfs-v5-mounted.img");
    let out = run(&img, ["ls", "/huge"]);
    out.expect_code(0);
    let listed = lines(&out);
    assert_eq!(listed.len(), 100_001);
    assert_eq!(listed[0], "entry-000001");
    assert_eq!(listed[99_999], "entry-100000");
    assert_eq!(listed[100_000], "zz-nonempty.txt");
    let names = lines(&run(&img, ["ls", "/names"]));
    assert!(names.contains(&"new\\nline".to_string()), "{names:?}");
    assert!(names.contains(&"with space".to_string()), "{names:?}");
}

/// Splits an `ls -l` line into its seven leading fields and the name part.
fn split_long(line: &str) -> (Vec<&str>, &str) {
    let mut rest = line;
    let mut fields = Vec::new();
    for _ in 0..7 {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    (fields, rest.strip_prefix(' ').unwrap_or(rest))
}

/// `ls -l DIR` against the source's metadata: mode string, links, owner, size, time, name
/// and symlink target.
fn assert_ls_long_matches(img: &Path, tree: &Path, dir: &str) {
    let out = run(img, ["ls", "-l", dir]);
    out.expect_code(0);
    let host_dir = tree.join(dir.trim_start_matches('/'));
    let listed = lines(&out);
    let names = sorted_names(&host_dir);
    assert_eq!(listed.len(), names.len(), "ls -l {dir}:\n{listed:#?}");
    for (line, name) in listed.iter().zip(&names) {
        let path = host_dir.join(OsStr::from_bytes(name));
        let meta = fs::symlink_metadata(&path).unwrap();
        let (fields, name_part) = split_long(line);
        let date = utc_time(meta.mtime());
        let (want_date, want_time) = date.split_once(' ').unwrap();
        let nlink = if meta.is_dir() {
            2 + fs::read_dir(&path)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
                .count() as u64
        } else {
            meta.nlink()
        };
        let mut want_name = escape_for_terminal(name);
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            want_name.push_str(" -> ");
            want_name.push_str(&escape_for_terminal(target.as_os_str().as_bytes()));
        }
        let context = format!("ls -l {dir}: {line:?}");
        assert_eq!(fields[0], mode_string(&meta), "{context}");
        assert_eq!(fields[1], nlink.to_string(), "{context}");
        assert_eq!(fields[2], meta.uid().to_string(), "{context}");
        assert_eq!(fields[3], meta.gid().to_string(), "{context}");
        if !meta.is_dir()
            && !meta.file_type().is_char_device()
            && !meta.file_type().is_block_device()
        {
            assert_eq!(fields[4], meta.size().to_string(), "{context}");
        }
        assert_eq!(fields[5], want_date, "{context}");
        assert_eq!(fields[6], want_time, "{context}");
        assert_eq!(name_part, want_name, "{context}");
    }
}

#[test]
fn ls_long_matches_source_metadata() {
    let img = xfs_image("xfs-v5.img");
    let tree = xfs_tree("xfs-v5");
    for dir in [
        "/", "/links", "/perms", "/owners", "/sizes", "/times", "/names", "/dirs",
    ] {
        assert_ls_long_matches(&img, &tree, dir);
    }
    let img = xfs_image("xfs-v5-mounted.img");
    let tree = xfs_tree("xfs-v5-mounted");
    for dir in [
        "/hard",
        "/special",
        "/sparse",
        "/prealloc",
        "/reflink",
        "/frag",
        "/times",
    ] {
        assert_ls_long_matches(&img, &tree, dir);
    }
}

/// `cat PATH` returns the source's bytes.
fn assert_cat(img: &Path, tree: &Path, path: &str) {
    let out = run(img, ["cat", path]);
    out.expect_code(0);
    let want = fs::read(tree.join(path.trim_start_matches('/'))).unwrap();
    assert!(
        out.stdout == want,
        "cat {path} on {}: {} bytes, expected {}",
        img.display(),
        out.stdout.len(),
        want.len()
    );
}

#[test]
fn cat_returns_source_bytes() {
    let img = xfs_image("xfs-v5.img");
    let tree = xfs_tree("xfs-v5");
    for path in [
        "/sizes/empty",
        "/sizes/tiny",
        "/sizes/4095",
        "/sizes/4096",
        "/sizes/4097",
        "/sizes/65537",
        "/sizes/5MiB-plus-3",
        "/dirs/node/node-entry-01900",
    ] {
        assert_cat(&img, &tree, path);
    }
    let img = xfs_image("xfs-v5-mounted.img");
    let tree = xfs_tree("xfs-v5-mounted");
    for path in [
        "/sparse/holes.bin",
        "/sparse/all-hole.bin",
        "/sparse/leading-hole.bin",
        "/prealloc/unwritten.bin",
        "/prealloc/beyond-eof.bin",
        "/reflink/original",
        "/reflink/copy",
        "/hard/two",
        "/huge/zz-nonempty.txt",
    ] {
        assert_cat(&img, &tree, path);
    }
}

/// The 2 100-extent file, whose data fork is a btree: cat's bytes hash as the source does.
#[test]
fn cat_fragmented_file_matches_source_hash() {
    for (image, tree) in [
        ("xfs-v5-mounted.img", "xfs-v5-mounted"),
        ("xfs-sparse-nrext64.img", "xfs-nrext64"),
    ] {
        let img = xfs_image(image);
        let out = run(&img, ["cat", "/frag/fragmented.bin"]);
        out.expect_code(0);
        let source = xfs_tree(tree).join("frag/fragmented.bin");
        use sha2::{Digest, Sha256};
        assert_eq!(
            util::hex(&Sha256::digest(&out.stdout)),
            sha256_file(&source),
            "{image}: cat /frag/fragmented.bin ({} bytes)",
            out.stdout.len()
        );
    }
}

#[test]
fn cat_follows_inline_and_remote_symlinks() {
    for (image, tree, links) in [
        (
            "xfs-v5.img",
            "xfs-v5",
            &[
                "short", "len-258", "len-300", "len-400", "len-1000", "len-1023",
            ][..],
        ),
        (
            "xfs-v4.img",
            "xfs-v4",
            &["short", "len-258", "len-1000"][..],
        ),
        (
            "xfs-1k.img",
            "xfs-1k",
            &["short", "len-400", "len-1000", "len-1023"][..],
        ),
    ] {
        let img = xfs_image(image);
        let tree = xfs_tree(tree);
        for link in links {
            let host = tree.join("links").join(link);
            let out = run(&img, ["cat", &format!("/links/{link}")]);
            out.expect_code(0);
            assert_eq!(
                out.stdout,
                fs::read(&host).unwrap(),
                "{image}: cat /links/{link} (target of {} bytes)",
                fs::read_link(&host).unwrap().as_os_str().len()
            );
        }
        // Absolute targets resolve inside the guest; a directory symlink mid-path.
        let out = run(&img, ["cat", "/links/absolute"]);
        out.expect_code(0);
        assert_eq!(out.stdout, fs::read(tree.join("etc/os-release")).unwrap());
        let out = run(&img, ["cat", "/links/dir/a"]);
        out.expect_code(0);
        assert_eq!(out.stdout, b"short a\n");
    }
}

// ---------------------------------------------------------------------------------------
// xfs_db as the oracle: inode numbers and geometry.
// ---------------------------------------------------------------------------------------

/// For each directory, the names and inode numbers xfs_db lists equal those of `files`
/// (and xfs_db's names equal the source tree's, which checks the parsing of its output).
fn assert_inodes_match_xfs_db(image: &str, tree: &str, dirs: &[&str]) {
    let img = xfs_image(image);
    let tree = xfs_tree(tree);
    let (run, records) = files(&img);
    run.expect_code(0);
    for dir in dirs {
        let prefix = if *dir == "/" {
            b"/".to_vec()
        } else {
            format!("{dir}/").into_bytes()
        };
        let from_amiscan: BTreeMap<Vec<u8>, u64> = records
            .iter()
            .filter_map(|r| {
                let path = r.path_bytes();
                let name = path.strip_prefix(prefix.as_slice())?;
                (!name.is_empty() && !name.contains(&b'/')).then(|| (name.to_vec(), r.inode))
            })
            .collect();
        let from_xfs_db = db_listing(&img, dir.as_bytes());
        assert_eq!(
            from_xfs_db.keys().cloned().collect::<Vec<_>>(),
            sorted_names(&tree.join(dir.trim_start_matches('/'))),
            "{image}: xfs_db's listing of {dir} is not the source's"
        );
        if from_amiscan != from_xfs_db {
            let diff: Vec<String> = from_xfs_db
                .iter()
                .filter(|(n, i)| from_amiscan.get(*n) != Some(i))
                .map(|(n, i)| {
                    format!(
                        "{} xfs_db {i} amiscan {:?}",
                        util::shown(n),
                        from_amiscan.get(n)
                    )
                })
                .chain(
                    from_amiscan
                        .keys()
                        .filter(|n| !from_xfs_db.contains_key(*n))
                        .map(|n| format!("{} only in amiscan", util::shown(n))),
                )
                .take(10)
                .collect();
            panic!(
                "{image}: {dir}: inode numbers differ from xfs_db's:\n  {}",
                diff.join("\n  ")
            );
        }
    }
}

#[test]
fn inode_numbers_match_xfs_db() {
    assert_inodes_match_xfs_db(
        "xfs-v5.img",
        "xfs-v5",
        &[
            "/",
            "/dirs/short",
            "/dirs/block",
            "/dirs/leaf",
            "/dirs/node",
            "/names",
            "/special",
            "/links",
        ],
    );
    assert_inodes_match_xfs_db(
        "xfs-v5-mounted.img",
        "xfs-v5-mounted",
        &["/huge", "/hard", "/special", "/names"],
    );
    assert_inodes_match_xfs_db(
        "xfs-v4.img",
        "xfs-v4",
        &["/dirs/node", "/dirs/leaf", "/names"],
    );
    assert_inodes_match_xfs_db(
        "xfs-512inode-64kdir.img",
        "xfs-64kdir",
        &["/dirs/leaf", "/dirs/block"],
    );
    assert_inodes_match_xfs_db("xfs-1k.img", "xfs-1k", &["/dirs/node", "/dirs/leaf"]);
    assert_inodes_match_xfs_db(
        "xfs-sparse-nrext64.img",
        "xfs-nrext64",
        &["/many/d00", "/many/d39"],
    );
}

/// The superblock's geometry as xfs_db reads it.
struct Geometry {
    agcount: u64,
    agblocks: u64,
    blocksize: u64,
    inodesize: u64,
    sectsize: u64,
    dirblklog: u64,
}

fn geometry(fs_file: &Path) -> Geometry {
    let text = xfs_db_text(
        fs_file,
        &[
            "sb 0",
            "print agcount agblocks blocksize inodesize sectsize dirblklog",
        ],
    );
    Geometry {
        agcount: db_field(&text, "agcount"),
        agblocks: db_field(&text, "agblocks"),
        blocksize: db_field(&text, "blocksize"),
        inodesize: db_field(&text, "inodesize"),
        sectsize: db_field(&text, "sectsize"),
        dirblklog: db_field(&text, "dirblklog"),
    }
}

/// The `details` inspect gives an XFS volume equal xfs_db's reading of the superblock.
fn assert_details_match(details: &Value, g: &Geometry, version: u64, context: &str) {
    assert_eq!(details["version"], version, "{context}: {details:#}");
    assert_eq!(details["block_size"], g.blocksize, "{context}: {details:#}");
    assert_eq!(details["inode_size"], g.inodesize, "{context}: {details:#}");
    assert_eq!(details["sector_size"], g.sectsize, "{context}: {details:#}");
    assert_eq!(
        details["dir_block_size"],
        g.blocksize << g.dirblklog,
        "{context}: {details:#}"
    );
    assert_eq!(
        details["allocation_groups"], g.agcount,
        "{context}: {details:#}"
    );
}

fn features(details: &Value) -> BTreeSet<String> {
    details["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features in {details:#}"))
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn inspect_al2023() {
    let img = xfs_image("xfs-al2023.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(0);
    assert_eq!(report["partition_table"]["scheme"], "gpt");
    assert_eq!(report["complete"], true, "{report:#}");
    assert_eq!(report["os"]["id"], "amzn");
    assert_eq!(report["os"]["version_id"], "2023");

    let p1 = volume(&report, "p1");
    assert_eq!(p1["filesystem"], "xfs");
    assert_eq!(p1["label"], "/");
    assert_eq!(p1["uuid"], AL_ROOT_UUID);
    assert_eq!(p1["mount_point"], "/");
    assert_eq!(p1["scanned"], true, "{p1:#}");
    assert!(p1["error"].is_null(), "{p1:#}");

    let scratch = Scratch::new("xfs-tests", "inspect_al2023", xfs_image);
    let fs_file = scratch.dir.join("p1.fs");
    extract_partition(&img, 1, &fs_file);
    let g = geometry(&fs_file);
    let details = &p1["details"];
    assert_details_match(details, &g, 5, "xfs-al2023.img p1");
    assert_eq!(details["block_size"], 4096);
    assert_eq!(details["inode_size"], 512);
    assert_eq!(details["log"], "clean", "{details:#}");
    let have = features(details);
    for f in [
        "crc",
        "ftype",
        "sparse_inodes",
        "bigtime",
        "finobt",
        "reflink",
        "inobtcount",
    ] {
        assert!(have.contains(f), "p1 lacks feature {f}: {have:?}");
    }
    assert!(!have.contains("nrext64"), "{have:?}");

    let p128 = volume(&report, "p128");
    assert_eq!(p128["filesystem"], "vfat");
    assert_eq!(p128["uuid"], AL_ESP_UUID);
    assert_eq!(p128["mount_point"], "/boot/efi");
    assert_eq!(p128["scanned"], true);
    let p127 = volume(&report, "p127");
    assert_eq!(p127["scanned"], false);
    assert!(p127["mount_point"].is_null());
    assert!(
        p127["error"].as_str().unwrap().contains("BIOS boot"),
        "{p127:#}"
    );
}

#[test]
fn inspect_rhel() {
    let img = xfs_image("xfs-rhel.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(0);
    assert_eq!(report["complete"], true, "{report:#}");
    assert_eq!(report["os"]["id"], "rhel");
    assert_eq!(report["os"]["version_id"], "9.4");
    let scratch = Scratch::new("xfs-tests", "inspect_rhel", xfs_image);
    for (id, number, label, uuid, mount) in [
        ("p3", 3, "boot", RHEL_BOOT_UUID, "/boot"),
        ("p4", 4, "root", RHEL_ROOT_UUID, "/"),
    ] {
        let v = volume(&report, id);
        assert_eq!(v["filesystem"], "xfs", "{v:#}");
        assert_eq!(v["label"], label);
        assert_eq!(v["uuid"], uuid);
        assert_eq!(v["mount_point"], mount);
        assert_eq!(v["scanned"], true, "{v:#}");
        let fs_file = scratch.dir.join(format!("{id}.fs"));
        extract_partition(&img, number, &fs_file);
        assert_details_match(&v["details"], &geometry(&fs_file), 5, id);
        assert_eq!(v["details"]["log"], "clean");
        fs::remove_file(&fs_file).unwrap();
    }
    let p2 = volume(&report, "p2");
    assert_eq!(p2["filesystem"], "vfat");
    assert_eq!(p2["uuid"], RHEL_ESP_UUID);
    assert_eq!(p2["mount_point"], "/boot/efi");
    assert_eq!(volume(&report, "p1")["scanned"], false);
}

#[test]
fn inspect_bare_variants_match_xfs_db() {
    for (image, version, present, absent) in [
        (
            "xfs-v5.img",
            5,
            &[
                "crc",
                "ftype",
                "sparse_inodes",
                "bigtime",
                "finobt",
                "reflink",
            ][..],
            &["nrext64"][..],
        ),
        (
            "xfs-v4.img",
            4,
            &[][..],
            &["crc", "ftype", "bigtime", "reflink"][..],
        ),
        ("xfs-512inode-64kdir.img", 5, &["crc", "ftype"][..], &[][..]),
        (
            "xfs-sparse-nrext64.img",
            5,
            &["crc", "sparse_inodes", "nrext64"][..],
            &[][..],
        ),
        ("xfs-1k.img", 5, &["crc"][..], &[][..]),
    ] {
        let img = xfs_image(image);
        let (run, report) = inspect_json(&img);
        run.expect_code(0);
        assert_eq!(report["complete"], true, "{image}: {report:#}");
        let disk = volume(&report, "disk");
        assert_eq!(disk["filesystem"], "xfs", "{image}");
        assert_eq!(disk["scanned"], true, "{image}: {disk:#}");
        let details = &disk["details"];
        assert_details_match(details, &geometry(&img), version, image);
        assert_eq!(details["log"], "clean", "{image}: {details:#}");
        let have = features(details);
        for f in present {
            assert!(have.contains(*f), "{image} lacks feature {f}: {have:?}");
        }
        for f in absent {
            assert!(!have.contains(*f), "{image} has feature {f}: {have:?}");
        }
    }
    // The geometry the variants exist for, as the build made it.
    let g = geometry(&xfs_image("xfs-512inode-64kdir.img"));
    assert_eq!((g.inodesize, g.blocksize << g.dirblklog), (512, 65536));
    assert_eq!(geometry(&xfs_image("xfs-1k.img")).blocksize, 1024);
    assert_eq!(geometry(&xfs_image("xfs-v4.img")).inodesize, 256);
}

/// What blkid says a byte range of an image holds: (TYPE, LABEL, UUID).
fn blkid(image_path: &Path, offset: u64, size: u64) -> (String, Option<String>, Option<String>) {
    let output = crate::util::tool_command("blkid")
        .args([
            "-p",
            "-o",
            "export",
            "-O",
            &offset.to_string(),
            "-S",
            &size.to_string(),
        ])
        .arg(image_path)
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .output()
        .expect("blkid (util-linux) must be installed");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    (
        field("TYPE").unwrap_or_else(|| "unknown".into()),
        field("LABEL"),
        field("UUID"),
    )
}

/// Filesystem type, label and UUID of every volume are what blkid reports for the bytes.
#[test]
fn volume_identity_matches_blkid() {
    let mut xfs_volumes = 0;
    for name in [
        "xfs-v5.img",
        "xfs-v4.img",
        "xfs-1k.img",
        "xfs-al2023.img",
        "xfs-rhel.img",
    ] {
        let img = xfs_image(name);
        let (_, report) = inspect_json(&img);
        for v in report["volumes"].as_array().unwrap() {
            let (offset, size) = (v["offset"].as_u64().unwrap(), v["size"].as_u64().unwrap());
            let (kind, label, uuid) = blkid(&img, offset, size);
            let at = format!("{name} {}", v["id"]);
            assert_eq!(v["filesystem"], kind.as_str(), "{at}: filesystem");
            assert_eq!(v["label"].as_str(), label.as_deref(), "{at}: label");
            assert_eq!(v["uuid"].as_str(), uuid.as_deref(), "{at}: uuid");
            if kind == "xfs" {
                xfs_volumes += 1;
            }
        }
    }
    assert_eq!(xfs_volumes, 6);
}

// ---------------------------------------------------------------------------------------
// The built-in rules on Amazon Linux 2023 and RHEL 9 shaped disks.
// ---------------------------------------------------------------------------------------

fn scan(image: &str) -> (util::Run, Value) {
    util::scan_json_as_of(&xfs_image(image), AS_OF)
}

/// Every planted leftover is found, under its rule, at its path.
fn assert_planted_found(image: &str, home: &str) {
    let (run, report) = scan(image);
    run.expect_code(1);
    assert_eq!(report["summary"]["incomplete"], false, "{}", run.stderr);
    util::assert_planted_leftovers_found(image, &report, home);
}

#[test]
fn scan_al2023_finds_every_planted_leftover() {
    assert_planted_found("xfs-al2023.img", "/home/ec2-user");
}

#[test]
fn scan_rhel_finds_every_planted_leftover() {
    assert_planted_found("xfs-rhel.img", "/home/cloud-user");
}

#[test]
fn scan_sealed_images_pass() {
    for image in ["xfs-al2023-sealed.img", "xfs-rhel-sealed.img"] {
        let (run, report) = scan(image);
        let failing: Vec<String> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] != "pass" && r["status"] != "skipped")
            .map(|r| format!("{}: {} {}", r["rule"], r["status"], r["findings"]))
            .collect();
        assert!(
            failing.is_empty(),
            "{image}: rules that did not pass:\n  {}\nstderr:\n{}",
            failing.join("\n  "),
            run.stderr
        );
        run.expect_code(0);
        assert_eq!(report["summary"]["incomplete"], false);
    }
}

// ---------------------------------------------------------------------------------------
// Read-only and deterministic.
// ---------------------------------------------------------------------------------------

/// No command writes to an image. The dirty log matters most: replaying it would mean
/// writing. The two small images are hashed; every other one must keep its size and its
/// modification time (which any write, even of the same bytes, changes).
#[test]
fn images_are_never_written() {
    for name in XFS_IMAGES {
        let img = xfs_image(name);
        let hashed = ["xfs-dirty.img", "xfs-v5.img"].contains(name);
        let stamp = |img: &Path| {
            let meta = fs::metadata(img).unwrap();
            (meta.len(), meta.mtime(), meta.mtime_nsec())
        };
        let before = (hashed.then(|| fingerprint(&img)), stamp(&img));
        let mut commands = vec![
            vec!["inspect", "--format", "json"],
            vec!["ls", "-l", "/"],
            vec!["cat", "/etc/os-release"],
        ];
        if hashed {
            commands.push(vec!["ls", "-R", "/"]);
            commands.push(vec!["files", "--hash", "sha256"]);
        }
        for args in commands {
            let r = run(&img, args);
            assert!(
                [0, 2, 3].contains(&r.code),
                "{}: exit {}:\n{}",
                r.describe(),
                r.code,
                r.stderr
            );
        }
        let after = (hashed.then(|| fingerprint(&img)), stamp(&img));
        assert_eq!(after, before, "{name} changed");
    }
}

#[test]
fn inventory_is_the_same_at_any_thread_count() {
    for (name, minimum) in [("xfs-v5-mounted.img", 100_000), ("xfs-v5.img", 2_400)] {
        let img = xfs_image(name);
        let one = run(&img, ["files", "--hash", "sha256", "--threads", "1"]);
        one.expect_code(0);
        let four = run(&img, ["files", "--hash", "sha256", "--threads", "4"]);
        four.expect_code(0);
        let count = one.stdout.iter().filter(|b| **b == b'\n').count();
        assert!(count >= minimum, "{name}: only {count} lines");
        assert!(
            one.stdout == four.stdout,
            "{name}: --threads 1 and --threads 4 differ"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Damage: fail closed, name the structure and its byte offset, never panic or hang.
// ---------------------------------------------------------------------------------------

/// The primary superblock of the root partition, damaged in a byte only its CRC covers
/// (the first byte of the label): the volume is still identified as XFS by its magic, but
/// it is not scanned, the result is incomplete, and the error names the superblock at its
/// image-absolute offset. (A damaged magic makes the volume unrecognised, which is the
/// probe's business, not the reader's.)
#[test]
fn damaged_superblock_leaves_the_volume_unscanned() {
    let scratch = Scratch::new("xfs-tests", "damaged_superblock", xfs_image);
    let p1 = util::sfdisk_partitions(&xfs_image("xfs-al2023.img"))[&1].0;
    let img = scratch.copy("xfs-al2023.img");
    assert_eq!(read_at(&img, p1, 4), b"XFSB");
    // sb_fname, the label, starts at byte 108 of the superblock.
    assert_eq!(read_at(&img, p1 + 108, 2), b"/\0");
    poke(&img, p1 + 108, b"#");
    let (code, stderr) = damaged_files(&img);
    assert_eq!(code, 3, "files exit code; stderr:\n{stderr}");
    let (run, report) = inspect_json(&img);
    run.expect_code(3);
    assert_eq!(report["complete"], false);
    let v = volume(&report, "p1");
    assert_eq!(v["filesystem"], "xfs", "{v:#}");
    assert_eq!(v["scanned"], false, "{v:#}");
    let error = v["error"].as_str().unwrap_or_default();
    for text in [error, stderr.as_str()] {
        let lower = text.to_ascii_lowercase();
        assert!(
            lower.contains("xfs") && lower.contains("superblock"),
            "the error does not name the XFS superblock:\n{text}"
        );
        assert!(
            mentions_offset_within(text, p1, 512),
            "the error does not give a byte offset in the superblock ({p1}..+512):\n{text}"
        );
    }
}

/// AG 1's free-space (AGF, sector 1 of the AG) and inode (AGI, sector 2) headers, damaged.
#[test]
fn damaged_ag_headers_are_named_and_never_pass() {
    let scratch = Scratch::new("xfs-tests", "damaged_ag_headers", xfs_image);
    let g = geometry(&xfs_image("xfs-v5.img"));
    let ag1 = g.agblocks * g.blocksize;
    for (name, at, magic) in [
        ("AGF", ag1 + g.sectsize, b"XAGF"),
        ("AGI", ag1 + 2 * g.sectsize, b"XAGI"),
    ] {
        let img = scratch.copy("xfs-v5.img");
        assert_eq!(&read_at(&img, at, 4), magic, "{name} is not at byte {at}");
        poke(&img, at, b"JUNK");
        let (code, stderr) = damaged_files(&img);
        assert_ne!(code, 0, "{name} damaged, yet files exits 0:\n{stderr}");
        let (_, report) = inspect_json(&img);
        let all = format!("{}\n{stderr}", volume(&report, "disk"));
        assert!(
            all.contains(name),
            "{name} damaged: no error names it:\n{all}"
        );
        assert!(
            mentions_offset_within(&all, at, g.sectsize),
            "{name} damaged: no error gives a byte offset in it ({at}..+{}):\n{all}",
            g.sectsize
        );
        fs::remove_file(&img).unwrap();
    }
}

/// One file's inode, damaged: that file is reported with its inode number and offset, the
/// result is incomplete, and every other file is still listed, with the right bytes.
#[test]
fn damaged_inode_is_reported_and_the_rest_listed() {
    let scratch = Scratch::new("xfs-tests", "damaged_inode", xfs_image);
    let img = scratch.copy("xfs-v5.img");
    let ino = db_inode(&img, "/sizes/4096");
    let at = db_byte(&img, "inode", ino);
    assert_eq!(read_at(&img, at, 2), b"IN", "no inode at byte {at}");
    poke(&img, at, b"XX");
    let (code, stderr) = damaged_files(&img);
    assert_eq!(code, 3, "stderr:\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("/sizes/4096"))
        .unwrap_or_else(|| panic!("no stderr line names /sizes/4096:\n{stderr}"));
    assert!(
        line.contains(&format!("inode {ino}")),
        "the error does not name inode {ino}: {line}"
    );
    assert!(
        mentions_offset_within(line, at, 512),
        "the error does not give a byte offset in the inode ({at}..+512): {line}"
    );
    let records = damaged_records(&img);
    let tree = xfs_tree("xfs-v5");
    for path in ["/sizes/4095", "/sizes/4097", "/dirs/leaf/leaf-entry-00000"] {
        let r = record(&records, path);
        assert_eq!(
            r.sha256.as_deref(),
            Some(sha256_file(&tree.join(&path[1..])).as_str()),
            "{path}"
        );
    }
    assert!(records.len() > 2_400, "only {} records", records.len());
}

/// The first data block of the leaf-form directory, damaged: exit 3, and the error names
/// the directory block and its byte offset.
#[test]
fn damaged_directory_block_is_named() {
    let scratch = Scratch::new("xfs-tests", "damaged_directory_block", xfs_image);
    let img = scratch.copy("xfs-v5.img");
    let text = xfs_db_text(&img, &["path /dirs/leaf", "bmap"]);
    let block: u64 = text
        .lines()
        .find(|l| l.starts_with("data offset 0 "))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no first data block in:\n{text}"));
    let at = db_byte(&img, "fsblock", block);
    assert_eq!(
        read_at(&img, at, 4),
        b"XDD3",
        "no directory data block at byte {at}"
    );
    poke(&img, at, b"JUNK");
    let (code, stderr) = damaged_files(&img);
    assert_eq!(code, 3, "stderr:\n{stderr}");
    assert!(
        stderr.to_ascii_lowercase().contains("directory"),
        "no error names the directory block:\n{stderr}"
    );
    assert!(
        mentions_offset_within(&stderr, at, 4096),
        "no error gives a byte offset in the directory block ({at}..+4096):\n{stderr}"
    );
    assert!(stderr.contains("/dirs/leaf"), "{stderr}");
    let records = damaged_records(&img);
    assert!(records
        .iter()
        .any(|r| r.path == "/dirs/node/node-entry-01999"));
}

/// A leaf of the fragmented file's bmap btree, damaged: `cat` fails (2 or 3) and `files`
/// exits 3, each naming the btree block and its byte offset.
#[test]
fn damaged_bmap_btree_block_is_named() {
    let scratch = Scratch::new("xfs-tests", "damaged_bmbt", xfs_image);
    let img = scratch.copy("xfs-v5-mounted.img");
    let text = xfs_db_text(&img, &["path /frag/fragmented.bin", "print u3.bmbt.ptrs"]);
    // `u3.bmbt.ptrs[1-9] = 1:12345 2:…`
    let block: u64 = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("1:"))
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no bmap btree pointer in:\n{text}"));
    let at = db_byte(&img, "fsblock", block);
    assert_eq!(
        read_at(&img, at, 4),
        b"BMA3",
        "no bmap btree block at byte {at}"
    );
    poke(&img, at, b"JUNK");
    let (code, stderr) = run_with_deadline(
        &[
            OsStr::new("cat"),
            img.as_os_str(),
            OsStr::new("/frag/fragmented.bin"),
        ],
        true,
    );
    assert!(code == 2 || code == 3, "cat exit {code}:\n{stderr}");
    let named = |text: &str| {
        let lower = text.to_ascii_lowercase();
        (lower.contains("bmap") || lower.contains("bmbt") || lower.contains("btree"))
            && mentions_offset_within(text, at, 4096)
    };
    assert!(
        named(&stderr),
        "cat: no error names the bmap btree block at byte {at}:\n{stderr}"
    );
    let (code, stderr) = damaged_files(&img);
    assert_eq!(code, 3, "files; stderr:\n{stderr}");
    assert!(
        stderr.contains("/frag/fragmented.bin") && named(&stderr),
        "files: no error names the file and the bmap btree block at byte {at}:\n{stderr}"
    );
}

/// The image cut short, mid-filesystem: the filesystem is larger than what is left, so the
/// result cannot be complete: a clean failure (2 or 3) with a message from every command,
/// never a panic or a hang.
#[test]
fn truncated_image_fails_cleanly() {
    let scratch = Scratch::new("xfs-tests", "truncated", xfs_image);
    for (name, keep) in [
        ("xfs-v5.img", 256 << 20),
        ("xfs-v5.img", (100 << 20) + 123),
        ("xfs-v5-mounted.img", 300 << 20),
    ] {
        let img = scratch.copy(name);
        let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.set_len(keep).unwrap();
        drop(f);
        for command in [
            &["files", "--hash", "sha256"][..],
            &["inspect"][..],
            &["ls", "-R", "/"][..],
        ] {
            let mut args: Vec<&OsStr> = vec![OsStr::new(command[0]), img.as_os_str()];
            args.extend(command[1..].iter().map(OsStr::new));
            let (code, stderr) = run_with_deadline(&args, true);
            assert!(
                code == 2 || code == 3,
                "{name} cut at {keep}: {command:?} exit {code}:\n{stderr}"
            );
            // inspect reports on stdout; the others say on stderr what went wrong.
            if command[0] != "inspect" {
                assert!(
                    !stderr.trim().is_empty(),
                    "{name} cut at {keep}: {command:?} exits {code} without a message"
                );
            }
        }
        let (_, report) = inspect_json(&img);
        assert_eq!(report["complete"], false, "{name} cut at {keep}");
        let disk = volume(&report, "disk");
        assert!(
            !disk["error"].as_str().unwrap_or_default().is_empty(),
            "{name} cut at {keep}: inspect gives no reason: {disk:#}"
        );
        fs::remove_file(&img).unwrap();
    }
}
