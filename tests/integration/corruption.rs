//! The corruption suite: damaged and hostile variants of real test images, each of which
//! must end within its limits with a clear answer. An image amiscan could not really read
//! is never passed: exit 2 (unreadable) or 3 (incomplete), or 1 with the report marked
//! incomplete; a valid oddity (hard links by the million, a directory cycle named as
//! such) is read correctly.
//!
//! Bit flips in each structure are tested per reader, next to the parsers
//! (`src/filesystems/*/tests.rs`, `table_sanity`, the container suites); this suite works
//! on whole images through the command line.

use std::fs;
use std::path::Path;

use crate::util::{amiscan, copy_sparse, image, mkfs_ext4, noise, os_tree, scratch_dir, tool};

/// `scan --format json`: the exit code and the report.
fn scan(image: &Path) -> (crate::util::Run, serde_json::Value) {
    let run = amiscan([
        "scan",
        image.to_str().unwrap(),
        "--format",
        "json",
        "--as-of",
        "2026-11-22",
    ]);
    let report = serde_json::from_slice(&run.stdout).unwrap_or(serde_json::Value::Null);
    (run, report)
}

/// Not a pass, and says why: exit 2 with a message, 3, or 1 with the image incomplete.
fn assert_not_passed(image: &Path, what: &str) {
    let (run, report) = scan(image);
    match run.code {
        2 => assert!(!run.stderr.trim().is_empty(), "{what}: {}", run.describe()),
        3 => {
            let notes = report["images"][0]["notes"].to_string();
            let volumes = report["images"][0]["volumes"].to_string();
            assert!(
                notes.len() > 2 || volumes.contains("\"error\":\""),
                "{what}: exit 3 without a reason: {report:#}"
            );
        }
        1 => assert_eq!(
            report["images"][0]["incomplete"], true,
            "{what}: {report:#}"
        ),
        _ => panic!("{what}: {}", run.describe()),
    }
    for command in ["files", "inspect"] {
        let run = amiscan([command, image.to_str().unwrap()]);
        assert!(
            run.code == 2 || run.code == 3,
            "{what}: {command}: {}",
            run.describe()
        );
    }
}

/// debian-gpt.img (exit 0 whole) cut short at points in every structure it has: the MBR,
/// the GPT header and entries, the BIOS boot partition, the ESP, the root filesystem's
/// superblock, group descriptors, inode table, directories and file data.
#[test]
fn truncated_images_are_never_passed() {
    let source = image("debian-gpt.img");
    let (run, _) = scan(&source);
    run.expect_code(0);
    let dir = scratch_dir("corruption", "truncated");
    let mib = 1u64 << 20;
    let cuts = [
        512,
        1024,
        17_408,
        mib,
        5 * mib,
        20 * mib + 1024,
        20 * mib + 8192,
        21 * mib,
        24 * mib,
        30 * mib,
        40 * mib,
        51 * mib,
    ];
    for cut in cuts {
        let copy = dir.join(format!("cut-{cut}.img"));
        copy_sparse(&source, &copy);
        fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_len(cut)
            .unwrap();
        assert_not_passed(&copy, &format!("cut at byte {cut}"));
        fs::remove_file(&copy).unwrap();
    }
}

/// A disk of zeros and a disk of random bytes hold no operating system.
#[test]
fn zeros_and_noise_are_never_passed() {
    let dir = scratch_dir("corruption", "zeros-noise");
    let zeros = dir.join("zeros.img");
    fs::File::create(&zeros).unwrap().set_len(64 << 20).unwrap();
    assert_not_passed(&zeros, "all zeros");
    let (_, report) = scan(&zeros);
    assert!(
        report["images"][0]["notes"]
            .to_string()
            .contains("no operating-system root found"),
        "{report:#}"
    );

    let noisy = dir.join("noise.img");
    let bytes = noise(8 << 20, 0x2545_f491_4f6c_dd1d);
    fs::write(&noisy, bytes).unwrap();
    assert_not_passed(&noisy, "random bytes");
}

/// A directory entry pointing back at the root (a cycle) and two symlinks pointing at
/// each other: the walk names the loop and ends; the scan is incomplete, never hangs.
#[test]
fn directory_cycles_and_symlink_loops_end_with_a_reason() {
    let dir = scratch_dir("corruption", "loops");
    let tree = os_tree(&dir);
    fs::create_dir_all(tree.join("srv/a")).unwrap();
    fs::write(tree.join("srv/a/file"), "x\n").unwrap();
    std::os::unix::fs::symlink("/etc/b", tree.join("etc/a")).unwrap();
    std::os::unix::fs::symlink("/etc/a", tree.join("etc/b")).unwrap();
    let img = dir.join("loops.img");
    mkfs_ext4(&tree, &img, &[], "16M");
    tool(
        "debugfs",
        &["-w", "-R", "ln <2> /srv/a/loop", img.to_str().unwrap()],
    );
    let run = amiscan(["files", img.to_str().unwrap()]);
    run.expect_code(3);
    assert!(
        run.stderr.contains("/srv/a/loop: directory loop"),
        "{}",
        run.describe()
    );
    let (run, _) = scan(&img);
    run.expect_code(3);
    let run = amiscan(["cat", img.to_str().unwrap(), "/etc/a"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("too many levels of symbolic links"),
        "{}",
        run.describe()
    );
}

/// A file whose inode claims a petabyte in a 16 MiB filesystem: every command refuses it
/// by its path, none hashes or lists it as a file too large to hash.
#[test]
fn a_file_claiming_a_petabyte_is_refused_by_every_command() {
    let dir = scratch_dir("corruption", "petabyte");
    let tree = os_tree(&dir);
    fs::write(tree.join("big"), "small\n").unwrap();
    let img = dir.join("petabyte.img");
    mkfs_ext4(&tree, &img, &[], "16M");
    tool(
        "debugfs",
        &[
            "-w",
            "-R",
            "sif /big size 0x4000000000000",
            img.to_str().unwrap(),
        ],
    );
    for args in [
        vec!["files", img.to_str().unwrap()],
        vec!["files", "--hash", "sha256", img.to_str().unwrap()],
    ] {
        let run = amiscan(&args);
        run.expect_code(3);
        assert!(run.stderr.contains("/big"), "{}", run.describe());
        assert!(
            !run.stdout_text().contains("hash_skipped"),
            "{}",
            run.describe()
        );
    }
    let (run, _) = scan(&img);
    run.expect_code(3);
    let run = amiscan(["cat", img.to_str().unwrap(), "/big"]);
    assert_ne!(run.code, 0, "{}", run.describe());
}

/// A 10 000-level directory tree (made with debugfs, which has no path-length limit): the
/// walk stops at its depth limit, names the place, and the result is incomplete.
#[test]
fn a_ten_thousand_level_tree_stops_at_the_depth_limit() {
    let dir = scratch_dir("corruption", "deep");
    let tree = os_tree(&dir);
    let img = dir.join("deep.img");
    mkfs_ext4(&tree, &img, &["-N", "12000"], "64M");
    let mut script = String::from("cd /\n");
    for _ in 0..10_000 {
        script.push_str("mkdir d\ncd d\n");
    }
    let commands = dir.join("deep.debugfs");
    fs::write(&commands, script).unwrap();
    tool(
        "debugfs",
        &[
            "-w",
            "-f",
            commands.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    let run = amiscan(["files", img.to_str().unwrap()]);
    run.expect_code(3);
    assert!(
        run.stderr.contains("deeper than 1000 levels"),
        "{}",
        run.describe()
    );
    let listed = run.stdout_text().lines().count();
    assert!((1000..1100).contains(&listed), "{listed} entries listed");
    let (run, _) = scan(&img);
    run.expect_code(3);
}

/// Directory blocks for `count` entries named `f0000000`…, all naming inode `ino` (hard
/// links: a valid if odd filesystem), in 4 KiB blocks without checksum tails.
fn directory_blocks(ino: u32, count: usize) -> Vec<u8> {
    const BLOCK: usize = 4096;
    const RECORD: usize = 16;
    let mut out = Vec::with_capacity(count.div_ceil(BLOCK / RECORD) * BLOCK);
    for chunk_start in (0..count).step_by(BLOCK / RECORD) {
        let in_block = (count - chunk_start).min(BLOCK / RECORD);
        let block_start = out.len();
        for j in 0..in_block {
            let name = format!("f{:07}", chunk_start + j);
            let rec_len = if j + 1 == in_block {
                BLOCK - RECORD * j
            } else {
                RECORD
            };
            out.extend_from_slice(&ino.to_le_bytes());
            out.extend_from_slice(&(rec_len as u16).to_le_bytes());
            out.push(name.len() as u8);
            out.push(1); // regular file
            out.extend_from_slice(name.as_bytes());
        }
        out.resize(block_start + BLOCK, 0);
    }
    out
}

/// A directory of a million entries (made by writing its blocks as a file's content and
/// then giving the inode a directory's mode): every entry is listed, the same as the
/// directory's own blocks say; under a lower `--max-entries` it is not, and says so.
#[test]
fn a_directory_of_a_million_entries_is_listed_whole() {
    const COUNT: usize = 1_000_000;
    let dir = scratch_dir("corruption", "million");
    let tree = os_tree(&dir);
    let img = dir.join("million.img");
    let build = |ino: u32| {
        fs::write(tree.join("many"), directory_blocks(ino, COUNT)).unwrap();
        mkfs_ext4(&tree, &img, &["-b", "4096", "-O", "^metadata_csum"], "64M");
    };
    // mke2fs -d numbers inodes in a fixed order: learn the os-release's, then build again.
    build(0);
    let stat = tool(
        "debugfs",
        &["-R", "stat /etc/os-release", img.to_str().unwrap()],
    );
    let ino: u32 = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("debugfs stat: {stat}"));
    build(ino);
    tool(
        "debugfs",
        &["-w", "-R", "sif /many mode 040755", img.to_str().unwrap()],
    );
    let run = amiscan(["ls", img.to_str().unwrap(), "/many"]);
    run.expect_code(0);
    let names = run.stdout_text();
    assert_eq!(names.lines().count(), COUNT);
    assert_eq!(names.lines().next(), Some("f0000000"));
    assert_eq!(names.lines().last(), Some("f0999999"));
    let run = amiscan(["files", img.to_str().unwrap()]);
    run.expect_code(0);
    let inode = format!("\"inode\":{ino},");
    let linked = run
        .stdout_text()
        .lines()
        .filter(|l| l.contains("\"path\":\"/many/f") && l.contains(&inode))
        .count();
    assert_eq!(linked, COUNT);
    // A lower cap (a bound on memory for hostile images) leaves the directory unlisted
    // and the result incomplete, in `files` and `scan` alike.
    for command in ["files", "scan"] {
        let format = if command == "scan" { "json" } else { "jsonl" };
        let run = amiscan([
            command,
            img.to_str().unwrap(),
            "--max-entries",
            "500000",
            "--format",
            format,
        ]);
        run.expect_code(3);
        // `files` names the directory on stderr; `scan` in its report's `not_read`.
        let said = format!("{}{}", run.stderr, run.stdout_text());
        assert!(
            said.contains("the guest holds more than 500000 entries (--max-entries)"),
            "{command}: {said}"
        );
    }
}

/// A child whose inode fails its checksum is named on stderr, and `ls` still lists every
/// other child of the directory (as e2fsprogs' `debugfs ls` does), with exit 3.
#[test]
fn ls_lists_the_readable_children_of_a_directory_with_one_damaged_inode() {
    let dir = scratch_dir("corruption", "ls-damaged-child");
    let tree = os_tree(&dir);
    for name in ["a", "b", "c"] {
        fs::write(tree.join("etc").join(name), name).unwrap();
    }
    let img = dir.join("ls.img");
    mkfs_ext4(&tree, &img, &["-b", "1024"], "2M");
    // "Inode 14 is part of block group 0\n\tlocated at block 37, offset 0x0500"
    let imap = tool("debugfs", &["-R", "imap /etc/b", img.to_str().unwrap()]);
    let words: Vec<&str> = imap.split_whitespace().collect();
    let block: u64 = words[words.iter().rposition(|w| *w == "block").unwrap() + 1]
        .trim_end_matches(',')
        .parse()
        .unwrap();
    let offset = u64::from_str_radix(words.last().unwrap().trim_start_matches("0x"), 16).unwrap();
    let uid_lo = block * 1024 + offset + 2;
    let byte = crate::util::read_at(&img, uid_lo, 1)[0];
    crate::util::poke(&img, uid_lo, &[byte ^ 0x5a]);
    let check = crate::util::tool_command("e2fsck")
        .args(["-fn", img.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("checksum does not match inode"),
        "e2fsck does not see the damage: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    let run = amiscan(["ls", img.to_str().unwrap(), "/etc"]);
    run.expect_code(3);
    assert_eq!(run.stdout_text(), "a\nc\nfstab\nos-release\n");
    assert!(run.stderr.contains("/etc/b:"), "{}", run.describe());
    assert!(run.stderr.contains("checksum"), "{}", run.describe());
}
