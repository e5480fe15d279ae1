//! End-to-end tests against real disk images built by `testdata/build-images.sh` with
//! mkfs, sgdisk, sfdisk and friends. Every image's contents are checked against the source
//! tree it was made from, so a reader that gets any name, mode, owner, size, time, link or
//! byte wrong fails here.

use crate::util;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use util::{
    amiscan, assert_inventory_matches, escape_for_terminal, files, fingerprint, image,
    inspect_json, mode_string, sfdisk_partitions, sorted_names, source, tree, utc_time, volume, Fs,
    ALL_IMAGES,
};

const MIB: u64 = 1 << 20;

/// Runs amiscan with an image path and string arguments: `run(&img, ["cat", "/x"])` runs
/// `amiscan cat IMAGE /x` (the image goes right after the subcommand).
fn run<'a>(image_path: &'a Path, args: impl IntoIterator<Item = &'a str>) -> util::Run {
    let mut args = args.into_iter();
    let command = args.next().unwrap();
    let mut all: Vec<&OsStr> = vec![OsStr::new(command), image_path.as_os_str()];
    all.extend(args.map(OsStr::new));
    amiscan(all)
}

// ---------------------------------------------------------------------------------------
// The central check: each image's inventory equals its source trees.
// ---------------------------------------------------------------------------------------

#[test]
fn bare_ext4_inventory_matches_source() {
    assert_inventory_matches("bare-ext4.img", &[source("basic", "/", "disk", Fs::Ext)], 0);
}

#[test]
fn ext2_inventory_matches_source() {
    assert_inventory_matches("ext2.img", &[source("basic", "/", "disk", Fs::Ext)], 0);
}

#[test]
fn ext3_inventory_matches_source() {
    assert_inventory_matches("ext3.img", &[source("basic", "/", "disk", Fs::Ext)], 0);
}

#[test]
fn ext4_1k_blocks_inventory_matches_source() {
    assert_inventory_matches("ext4-1k.img", &[source("basic", "/", "disk", Fs::Ext)], 0);
}

#[test]
fn ext4_without_64bit_inventory_matches_source() {
    assert_inventory_matches("ext4-no64.img", &[source("basic", "/", "disk", Fs::Ext)], 0);
}

#[test]
fn ext4_inline_data_inventory_matches_source() {
    assert_inventory_matches(
        "ext4-inline.img",
        &[source("basic", "/", "disk", Fs::Ext)],
        0,
    );
}

#[test]
fn debian_gpt_inventory_matches_root_and_esp() {
    let records = assert_inventory_matches(
        "debian-gpt.img",
        &[
            source("debian-root", "/", "p1", Fs::Ext),
            source("efi", "/boot/efi", "p15", Fs::Vfat),
        ],
        0,
    );
    // The long mixed-case FAT name comes back exactly, not as its 8.3 alias.
    assert!(records
        .iter()
        .any(|r| r.path == "/boot/efi/EFI/debian/Boot Manager Settings.Json"));
}

/// A hybrid MBR lists the ESP in the MBR too; the GPT must still be the table used.
#[test]
fn hybrid_mbr_disk_is_read_through_its_gpt() {
    let img = image("hybrid-gpt.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(0);
    assert_eq!(report["partition_table"]["scheme"], "gpt");
    assert_eq!(report["partition_table"]["hybrid_mbr"], true);
    assert_eq!(volume(&report, "p15")["mount_point"], "/boot/efi");
    assert_inventory_matches(
        "hybrid-gpt.img",
        &[
            source("debian-root", "/", "p1", Fs::Ext),
            source("efi", "/boot/efi", "p15", Fs::Vfat),
        ],
        0,
    );
}

#[test]
fn mbr_logical_inventory_matches_root_var_and_srv() {
    assert_inventory_matches(
        "mbr-logical.img",
        &[
            source("mbr-root", "/", "p1", Fs::Ext),
            source("mbr-var", "/var", "p5", Fs::Ext),
            source("mbr-srv", "/srv", "p6", Fs::Ext),
        ],
        0,
    );
}

#[test]
fn split_gpt_inventory_matches_root_var_and_home() {
    // The fstab's nofail line for a volume that is not in the image must not make the
    // result incomplete: exit 0.
    assert_inventory_matches(
        "split-gpt.img",
        &[
            source("split-root", "/", "p1", Fs::Ext),
            source("split-var", "/var", "p2", Fs::Ext),
            source("split-home", "/home", "p3", Fs::Ext),
        ],
        0,
    );
}

#[test]
fn gpt_4k_inventory_matches_source() {
    assert_inventory_matches("gpt-4k.img", &[source("basic", "/", "p1", Fs::Ext)], 0);
}

#[test]
fn bigdir_inventory_matches_source() {
    // A bare data volume: no operating-system root, so listed in full but never complete.
    let records =
        assert_inventory_matches("bigdir.img", &[source("bigdir", "/", "disk", Fs::Ext)], 3);
    assert!(records.len() > 50_000, "only {} records", records.len());
}

#[test]
fn incomplete_inventory_has_the_root_and_exits_3() {
    // p2 (btrfs) cannot be read, so /data is the root filesystem's empty directory.
    assert_inventory_matches(
        "incomplete.img",
        &[source("incomplete-root", "/", "p1", Fs::Ext)],
        3,
    );
}

#[test]
fn corrupt_gpt_inventory_still_has_partition_1() {
    assert_inventory_matches(
        "corrupt-gpt.img",
        &[source("corrupt-p1", "/", "p1", Fs::Ext)],
        3,
    );
}

// ---------------------------------------------------------------------------------------
// inspect.
// ---------------------------------------------------------------------------------------

/// The PARTUUID the debian-root fstab gives a mount point.
fn fstab_partuuid(fstab: &Path, mount_point: &str) -> String {
    let text = fs::read_to_string(fstab).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(1) == Some(&mount_point))
                .then(|| fields[0].trim_start_matches("PARTUUID=").to_string())
        })
        .unwrap()
}

#[test]
fn inspect_debian_gpt() {
    let img = image("debian-gpt.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(0);
    assert_eq!(report["partition_table"]["scheme"], "gpt");
    assert_eq!(report["partition_table"]["sector_size"], 512);
    assert_eq!(report["partition_table"]["hybrid_mbr"], false);
    let mut ids: Vec<&str> = report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["p1", "p14", "p15"]);

    let table = sfdisk_partitions(&img);
    for (id, number) in [("p1", 1), ("p14", 14), ("p15", 15)] {
        let v = volume(&report, id);
        assert_eq!(v["partition"], number);
        assert_eq!(v["offset"], table[&number].0, "{id} offset");
        assert_eq!(v["size"], table[&number].1, "{id} size");
    }
    assert_eq!(
        table[&14].0,
        2048 * 512,
        "the BIOS boot partition starts at sector 2048"
    );

    let p1 = volume(&report, "p1");
    assert_eq!(p1["filesystem"], "ext4");
    assert_eq!(p1["label"], "rootfs");
    assert_eq!(p1["uuid"], "7c3e0a51-9b2d-4e6f-8a1b-2c3d4e5f6071");
    assert_eq!(p1["mount_point"], "/");
    assert_eq!(p1["scanned"], true);
    assert!(p1["error"].is_null(), "{p1:#}");

    let fstab = tree("debian-root").join("etc/fstab");
    assert_eq!(p1["part_uuid"], fstab_partuuid(&fstab, "/"));

    let p14 = volume(&report, "p14");
    assert_eq!(p14["filesystem"], "unknown");
    assert_eq!(
        p14["type"].as_str().unwrap().to_ascii_lowercase(),
        "21686148-6449-6e6f-744e-656564454649"
    );
    assert_eq!(p14["scanned"], false);
    assert!(p14["mount_point"].is_null());
    let reason = p14["error"].as_str().unwrap();
    assert!(reason.contains("BIOS boot"), "{reason}");

    let p15 = volume(&report, "p15");
    assert_eq!(p15["filesystem"], "vfat");
    assert_eq!(p15["uuid"], "5CA1-AB1E");
    assert_eq!(p15["label"], "EFI");
    assert_eq!(p15["mount_point"], "/boot/efi");
    assert_eq!(p15["scanned"], true);
    assert_eq!(p15["part_uuid"], fstab_partuuid(&fstab, "/boot/efi"));

    assert_eq!(report["os"]["id"], "debian");
    assert_eq!(report["os"]["version_id"], "12");
    // A BIOS boot partition holds no files to miss: the result is complete.
    assert_eq!(report["complete"], true);
}

#[test]
fn inspect_gpt_4k_uses_4096_byte_sectors() {
    let img = image("gpt-4k.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(0);
    assert_eq!(report["partition_table"]["scheme"], "gpt");
    assert_eq!(report["partition_table"]["sector_size"], 4096);
    let volumes = report["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "{report:#}");
    let p1 = volume(&report, "p1");
    // fdisk -b 4096 put it at LBA 256..8447: byte 1 MiB, 32 MiB long.
    assert_eq!(p1["offset"], 256 * 4096);
    assert_eq!(p1["size"], 8192 * 4096);
    assert_eq!(p1["part_uuid"], "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c01");
    assert_eq!(p1["name"], "root");
    assert_eq!(p1["filesystem"], "ext4");
    assert_eq!(p1["label"], "root4k");
    assert_eq!(p1["mount_point"], "/");
    assert_eq!(p1["scanned"], true);
    assert_eq!(report["os"]["id"], "debian");
}

#[test]
fn inspect_bare_filesystems() {
    for (name, fs_type) in [
        ("bare-ext4.img", "ext4"),
        ("ext2.img", "ext2"),
        ("ext3.img", "ext3"),
        ("ext4-1k.img", "ext4"),
        ("ext4-no64.img", "ext4"),
        ("ext4-inline.img", "ext4"),
        ("bigdir.img", "ext4"),
    ] {
        let (run, report) = inspect_json(&image(name));
        // bigdir.img is a data volume without an operating system: never complete.
        run.expect_code(if name == "bigdir.img" { 3 } else { 0 });
        assert_eq!(report["partition_table"]["scheme"], "none", "{name}");
        let volumes = report["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 1, "{name}");
        let v = volume(&report, "disk");
        assert_eq!(v["filesystem"], fs_type, "{name}");
        assert_eq!(v["offset"], 0, "{name}");
        assert_eq!(
            v["size"],
            if name == "bigdir.img" {
                64 * MIB
            } else {
                32 * MIB
            }
        );
        assert_eq!(v["mount_point"], "/", "{name}");
        assert_eq!(v["scanned"], true, "{name}");
        if name != "bigdir.img" {
            assert_eq!(report["os"]["id"], "debian", "{name}");
        }
        assert_eq!(report["complete"], name != "bigdir.img", "{name}");
    }
}

#[test]
fn inspect_mbr_logical_partitions() {
    let img = image("mbr-logical.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(0);
    assert_eq!(report["partition_table"]["scheme"], "mbr");
    let mut ids: Vec<&str> = report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    // The extended partition p2 is a container, not a volume.
    assert_eq!(ids, ["p1", "p5", "p6"], "{report:#}");
    let table = sfdisk_partitions(&img);
    for (id, number, fs_type, mount) in [
        ("p1", 1, "ext4", "/"),
        ("p5", 5, "ext4", "/var"),
        ("p6", 6, "ext2", "/srv"),
    ] {
        let v = volume(&report, id);
        assert_eq!(v["offset"], table[&number].0, "{id} offset");
        assert_eq!(v["size"], table[&number].1, "{id} size");
        assert_eq!(v["filesystem"], fs_type, "{id}");
        assert_eq!(v["mount_point"], mount, "{id}");
        assert_eq!(v["scanned"], true, "{id}");
        // blkid's PARTUUID for MBR disks: the disk signature and the partition number.
        assert_eq!(v["part_uuid"], format!("5ca1ab1e-{number:02x}"), "{id}");
    }
    assert_eq!(report["os"]["id"], "ubuntu");
    assert_eq!(report["complete"], true);
}

#[test]
fn inspect_split_gpt_mounts_by_uuid_and_label_and_tolerates_nofail() {
    let (run, report) = inspect_json(&image("split-gpt.img"));
    run.expect_code(0);
    let p2 = volume(&report, "p2");
    assert_eq!(p2["uuid"], "2c8d3b21-1a4f-4e6d-8c9b-8f7a6e5d4c32");
    assert_eq!(p2["mount_point"], "/var");
    let p3 = volume(&report, "p3");
    assert_eq!(p3["label"], "home");
    assert_eq!(p3["mount_point"], "/home");
    assert_eq!(volume(&report, "p1")["mount_point"], "/");
    assert_eq!(report["os"]["id"], "amzn");
    // The missing nofail volume is noted, but the result is complete.
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("/mnt/scratch")),
        "no note about the nofail line: {notes:?}"
    );
    assert_eq!(report["complete"], true);
}

#[test]
fn split_gpt_files_exit_0_despite_nofail_line() {
    let (run, records) = files(&image("split-gpt.img"));
    run.expect_code(0);
    assert!(
        !run.stderr.contains("/mnt/scratch"),
        "a nofail mount is reported as a problem:\n{}",
        run.stderr
    );
    assert!(records
        .iter()
        .any(|r| r.path == "/home/admin/.ssh/authorized_keys" && r.volume == "p3"));
}

#[test]
fn incomplete_image_exits_3_naming_the_volume() {
    let img = image("incomplete.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(3);
    assert_eq!(report["complete"], false);
    let p2 = volume(&report, "p2");
    assert_eq!(p2["filesystem"], "btrfs");
    assert_eq!(p2["scanned"], false);
    assert!(p2["error"].as_str().unwrap().contains("btrfs"), "{p2:#}");
    assert_eq!(volume(&report, "p1")["mount_point"], "/");

    let (run, _) = files(&img);
    run.expect_code(3);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("p2"))
        .unwrap_or_else(|| panic!("no stderr line names volume p2:\n{}", run.stderr));
    assert!(line.contains("incomplete.img"), "{line}");
    assert!(line.contains("btrfs"), "{line}");
    assert!(
        run.stderr.contains("/data"),
        "stderr does not say /data went unscanned:\n{}",
        run.stderr
    );
}

/// `ls` and `cat` at or under a mount point whose volume was not read must not pass off
/// the root filesystem's empty mount-point directory as the answer.
#[test]
fn ls_and_cat_under_an_unscanned_mount_exit_3_and_say_so() {
    let img = image("incomplete.img");
    for args in [
        vec!["ls", "/data"],
        vec!["ls", "-l", "/data/"],
        vec!["ls", "-R", "/"],
        vec!["ls", "/etc/../data/sub"],
        vec!["cat", "/data/secret"],
    ] {
        let run = run(&img, args.clone());
        run.expect_code(3);
        assert!(
            run.stderr.contains("/data is not scanned") && run.stderr.contains("btrfs"),
            "{args:?}: stderr does not explain the unscanned /data:\n{}",
            run.stderr
        );
    }
    // Paths that do not depend on /data stay complete.
    run(&img, ["ls", "/"]).expect_code(0);
    run(&img, ["cat", "/etc/fstab"]).expect_code(0);
}

/// Partition 2's entry in corrupt-gpt.img's primary GPT: (byte offset of the entry, byte
/// where the partition ends), read straight from the image.
fn corrupt_gpt_entry_2() -> (u64, u64) {
    let bytes = fs::read(image("corrupt-gpt.img")).unwrap();
    let header = &bytes[512..512 + 92];
    assert_eq!(&header[..8], b"EFI PART");
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let entries_at = u64_at(header, 72) * 512;
    let entry_size = u64::from(u32_at(header, 84));
    let entry_at = entries_at + entry_size;
    let entry = &bytes[entry_at as usize..(entry_at + entry_size) as usize];
    let last_lba = u64_at(entry, 40);
    (entry_at, (last_lba + 1) * 512)
}

#[test]
fn corrupt_gpt_names_image_entry_and_offset() {
    let img = image("corrupt-gpt.img");
    let image_len = fs::metadata(&img).unwrap().len();
    let (entry_at, end) = corrupt_gpt_entry_2();
    assert!(end > image_len, "the build did not cut partition 2 short");

    // The table is still read (the primary header is intact); partition 2 is reported and
    // skipped, partition 1 is scanned: a partial result, exit 3.
    let (run, report) = inspect_json(&img);
    run.expect_code(3);
    assert_eq!(report["partition_table"]["scheme"], "gpt");
    assert_eq!(report["complete"], false);
    assert_eq!(volume(&report, "p1")["scanned"], true);
    assert_eq!(volume(&report, "p1")["mount_point"], "/");
    let p2 = volume(&report, "p2");
    assert_eq!(p2["scanned"], false);
    let reason = p2["error"].as_str().unwrap();
    for part in [
        "GPT entry 2".to_string(),
        format!("byte {entry_at}"),
        format!("byte {end}"),
        format!("{image_len}-byte disk"),
    ] {
        assert!(reason.contains(&part), "{reason:?} lacks {part:?}");
    }

    let (run, _) = files(&img);
    run.expect_code(3);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("GPT entry 2"))
        .unwrap_or_else(|| panic!("no stderr line names GPT entry 2:\n{}", run.stderr));
    assert!(line.contains("corrupt-gpt.img"), "{line}");
    assert!(line.contains("p2"), "{line}");
    assert!(line.contains(&format!("byte {entry_at}")), "{line}");
}

// ---------------------------------------------------------------------------------------
// ls and cat, against the source tree.
// ---------------------------------------------------------------------------------------

fn lines(run: &util::Run) -> Vec<String> {
    run.stdout_text().lines().map(str::to_string).collect()
}

#[test]
fn ls_lists_source_names_sorted_and_escaped() {
    let img = image("bare-ext4.img");
    let basic = tree("basic");
    for dir in ["/", "/names", "/links", "/sizes", "/deep/d01"] {
        let out = run(&img, ["ls", dir]);
        out.expect_code(0);
        let mut want: Vec<Vec<u8>> = sorted_names(&basic.join(dir.trim_start_matches('/')));
        if dir == "/" {
            want.push(b"lost+found".to_vec());
            want.sort();
        }
        let want: Vec<String> = want.iter().map(|n| escape_for_terminal(n)).collect();
        assert_eq!(lines(&out), want, "ls {dir}");
    }
    // The escapes themselves, spelled out.
    let names = lines(&run(&img, ["ls", "/names"]));
    assert!(names.contains(&"caf\\xe9".to_string()), "{names:?}");
    assert!(names.contains(&"new\\nline".to_string()), "{names:?}");
    assert!(names.contains(&"été.txt".to_string()), "{names:?}");
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

#[test]
fn ls_long_matches_source_metadata() {
    let img = image("bare-ext4.img");
    let basic = tree("basic");
    for dir in [
        "/", "/links", "/perms", "/hard", "/special", "/sizes", "/names", "/old",
    ] {
        let out = run(&img, ["ls", "-l", dir]);
        out.expect_code(0);
        let host_dir = basic.join(dir.trim_start_matches('/'));
        let listed = lines(&out);
        let names = sorted_names(&host_dir);
        let shown_lines: Vec<&String> = listed
            .iter()
            .filter(|l| !(dir == "/" && l.ends_with(" lost+found")))
            .collect();
        assert_eq!(shown_lines.len(), names.len(), "ls -l {dir}:\n{listed:#?}");
        for (line, name) in shown_lines.iter().zip(&names) {
            let path = host_dir.join(OsStr::from_bytes(name));
            let meta = fs::symlink_metadata(&path).unwrap();
            let (fields, name_part) = split_long(line);
            let date = utc_time(meta.mtime());
            let (want_date, want_time) = date.split_once(' ').unwrap();
            let is_dir = meta.is_dir();
            let nlink = if is_dir {
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
            if !is_dir {
                assert_eq!(fields[4], meta.size().to_string(), "{context}");
            }
            assert_eq!(fields[5], want_date, "{context}");
            assert_eq!(fields[6], want_time, "{context}");
            assert_eq!(name_part, want_name, "{context}");
        }
    }
}

/// What `ls -R` prints for a source directory shown at `guest`: a `path:` header, the
/// sorted names, a blank line between directories, subdirectories depth-first in order.
fn expected_ls_recursive(
    host: &Path,
    guest: &[u8],
    extra_root_dirs: &[&[u8]],
    out: &mut Vec<String>,
) {
    if !out.is_empty() {
        out.push(String::new());
    }
    out.push(format!("{}:", escape_for_terminal(guest)));
    let mut names = sorted_names(host);
    names.extend(extra_root_dirs.iter().map(|n| n.to_vec()));
    names.sort();
    for name in &names {
        out.push(escape_for_terminal(name));
    }
    for name in &names {
        let child_guest = util::guest_join(guest, name);
        if extra_root_dirs.contains(&name.as_slice()) {
            // lost+found: an empty directory the source lacks.
            out.push(String::new());
            out.push(format!("{}:", escape_for_terminal(&child_guest)));
            continue;
        }
        let child = host.join(OsStr::from_bytes(name));
        if fs::symlink_metadata(&child).unwrap().is_dir() {
            expected_ls_recursive(&child, &child_guest, &[], out);
        }
    }
}

#[test]
fn ls_recursive_matches_source() {
    let img = image("bare-ext4.img");
    let basic = tree("basic");
    let out = run(&img, ["ls", "-R", "/"]);
    out.expect_code(0);
    let mut want = Vec::new();
    expected_ls_recursive(&basic, b"/", &[b"lost+found"], &mut want);
    let got = lines(&out);
    if got != want {
        let first = got
            .iter()
            .zip(&want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "ls -R / differs from the source from line {first}:\n got: {:?}\nwant: {:?}\n({} lines vs {} expected)",
            &got[first..(first + 5).min(got.len())],
            &want[first..(first + 5).min(want.len())],
            got.len(),
            want.len()
        );
    }

    // A subtree, named through a symlink to a directory: headers use the resolved path.
    let out = run(&img, ["ls", "-R", "/nested/a/docs-dir"]);
    out.expect_code(0);
    let mut want = Vec::new();
    expected_ls_recursive(&basic.join("docs"), b"/docs", &[], &mut want);
    assert_eq!(lines(&out), want);
}

#[test]
fn cat_returns_source_bytes() {
    let img = image("bare-ext4.img");
    let basic = tree("basic");
    for path in [
        "/etc/os-release",
        "/sizes/empty",
        "/sizes/one",
        "/sizes/4095",
        "/sizes/4096",
        "/sizes/4097",
        "/sizes/1MiB",
        "/sizes/5MiB",
        "/sparse/holes.bin",
        "/hard/two",
        "/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/d21/d22/d23/d24/d25/d26/d27/d28/d29/d30/bottom.txt",
    ] {
        let out = run(&img, ["cat", path]);
        out.expect_code(0);
        let want = fs::read(basic.join(path.trim_start_matches('/'))).unwrap();
        assert!(out.stdout == want, "cat {path}: {} bytes, expected {}", out.stdout.len(), want.len());
    }
}

#[test]
fn cat_follows_symlinks_inside_the_guest() {
    let img = image("bare-ext4.img");
    let basic = tree("basic");
    let os_release = fs::read(basic.join("etc/os-release")).unwrap();
    // Absolute target: the guest's /etc/os-release, not the host's.
    let out = run(&img, ["cat", "/links/absolute"]);
    out.expect_code(0);
    assert_eq!(out.stdout, os_release);
    // Five `..` from three levels down stop at the guest's root.
    let out = run(&img, ["cat", "/nested/a/b/escape"]);
    out.expect_code(0);
    assert_eq!(out.stdout, os_release);
    // Fast and slow symlinks.
    let out = run(&img, ["cat", "/links/fast"]);
    out.expect_code(0);
    assert_eq!(out.stdout, fs::read(basic.join("docs/readme.txt")).unwrap());
    let out = run(&img, ["cat", "/links/slow"]);
    out.expect_code(0);
    assert_eq!(out.stdout, b"reached through a slow symlink\n");
    // A directory symlink in the middle of a path.
    let out = run(&img, ["cat", "/nested/a/docs-dir/notes.md"]);
    out.expect_code(0);
    assert_eq!(out.stdout, fs::read(basic.join("docs/notes.md")).unwrap());
}

#[test]
fn cat_failures_exit_2_with_a_message() {
    let img = image("bare-ext4.img");
    let out = run(&img, ["cat", "/links/loop-a"]);
    out.expect_code(2);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("loop-a"), "{}", out.stderr);
    assert!(
        out.stderr.contains("too many levels of symbolic links"),
        "{}",
        out.stderr
    );

    let out = run(&img, ["cat", "/no/such/file"]);
    out.expect_code(2);
    assert!(out.stderr.contains("no such file"), "{}", out.stderr);

    let out = run(&img, ["cat", "/links/dangling"]);
    out.expect_code(2);
    assert!(out.stderr.contains("no such file"), "{}", out.stderr);

    let out = run(&img, ["cat", "/docs"]);
    out.expect_code(2);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);

    let out = run(&img, ["cat", "/etc/os-release/x"]);
    out.expect_code(2);
    assert!(out.stderr.contains("not a directory"), "{}", out.stderr);
}

#[test]
fn cat_and_ls_inside_a_volume() {
    let img = image("debian-gpt.img");
    let efi = tree("efi");
    let grub_cfg = fs::read(efi.join("EFI/debian/grub.cfg")).unwrap();
    let out = run(&img, ["cat", "--volume", "p15", "/EFI/debian/grub.cfg"]);
    out.expect_code(0);
    assert_eq!(out.stdout, grub_cfg);
    // The same file through the guest's mount tree.
    let out = run(&img, ["cat", "/boot/efi/EFI/debian/grub.cfg"]);
    out.expect_code(0);
    assert_eq!(out.stdout, grub_cfg);
    let out = run(&img, ["cat", "/boot/efi/EFI/debian/grubx64.efi"]);
    out.expect_code(0);
    assert!(out.stdout == fs::read(efi.join("EFI/debian/grubx64.efi")).unwrap());

    let out = run(&img, ["ls", "--volume", "p15", "/EFI/debian"]);
    out.expect_code(0);
    let want: Vec<String> = sorted_names(&efi.join("EFI/debian"))
        .iter()
        .map(|n| escape_for_terminal(n))
        .collect();
    assert_eq!(lines(&out), want);
    // A mount point lists the mounted filesystem.
    let out = run(&img, ["ls", "/boot/efi"]);
    out.expect_code(0);
    assert_eq!(lines(&out), ["EFI"]);

    let out = run(&img, ["cat", "--volume", "p14", "/x"]);
    out.expect_code(2);
    assert!(out.stderr.contains("p14"), "{}", out.stderr);
    let out = run(&img, ["cat", "--volume", "p9", "/x"]);
    out.expect_code(2);
    assert!(out.stderr.contains("p9"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// Read-only, determinism, and the command line itself.
// ---------------------------------------------------------------------------------------

#[test]
fn images_are_never_written() {
    for name in ALL_IMAGES {
        let img = image(name);
        let before = fingerprint(&img);
        let runs = [
            run(&img, ["inspect"]),
            run(&img, ["inspect", "--format", "json"]),
            run(&img, ["ls", "-R", "/"]),
            run(&img, ["files", "--hash", "sha256"]),
            run(&img, ["cat", "/etc/os-release"]),
        ];
        for r in &runs {
            assert!(
                [0, 2, 3].contains(&r.code),
                "{}: exit {} (crashed?):\n{}",
                r.describe(),
                r.code,
                r.stderr
            );
        }
        // A run that could not open the image would prove nothing.
        for r in &runs {
            assert!(
                !r.stderr.contains("cannot open"),
                "{}: {}",
                r.describe(),
                r.stderr
            );
        }
        assert_eq!(fingerprint(&img), before, "{name} changed");
    }
}

#[test]
fn inventory_is_the_same_at_any_thread_count() {
    // bigdir.img holds no operating system, so its listing is never complete.
    for (name, minimum, code) in [("bigdir.img", 50_001, 3), ("bare-ext4.img", 80, 0)] {
        let img = image(name);
        let one = run(&img, ["files", "--hash", "sha256", "--threads", "1"]);
        one.expect_code(code);
        let two = run(&img, ["files", "--hash", "sha256", "--threads", "2"]);
        two.expect_code(code);
        let count = one.stdout.iter().filter(|b| **b == b'\n').count();
        assert!(count >= minimum, "{name}: only {count} lines");
        assert!(
            one.stdout == two.stdout,
            "{name}: --threads 1 and --threads 2 differ"
        );
    }
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let out = amiscan(["--help"]);
    out.expect_code(0);
    let text = out.stdout_text();
    for word in ["inspect", "ls", "cat", "files", "Exit codes", "read-only"] {
        assert!(text.contains(word), "--help lacks {word:?}:\n{text}");
    }
}

#[test]
fn missing_image_exits_2_naming_it() {
    let missing = util::build_dir().join("no-such-image.img");
    for command in ["inspect", "files", "ls", "cat"] {
        let mut args = vec![OsStr::new(command), missing.as_os_str()];
        if command == "cat" {
            args.push(OsStr::new("/etc/os-release"));
        }
        let out = amiscan(args);
        out.expect_code(2);
        assert!(
            out.stderr.contains("no-such-image.img"),
            "{command}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{command} wrote to stdout");
    }
}

/// `--hash-max-size` bounds what `files --hash` reads: larger files are marked, not hashed,
/// and files at or under the bound still carry their hash.
#[test]
fn hash_max_size_marks_larger_files_unhashed() {
    let img = image("bare-ext4.img");
    let run = run(
        &img,
        ["files", "--hash", "sha256", "--hash-max-size", "4096"],
    );
    run.expect_code(0);
    let (mut hashed, mut skipped) = (0, 0);
    for line in run.stdout_text().lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        if record["type"] != "file" {
            assert!(record.get("hash_skipped").is_none(), "{line}");
            continue;
        }
        let size = record["size"].as_u64().unwrap();
        if size > 4096 {
            assert_eq!(record["hash_skipped"], true, "{line}");
            assert!(record.get("sha256").is_none(), "{line}");
            skipped += 1;
        } else {
            assert!(record["sha256"].is_string(), "{line}");
            assert!(record.get("hash_skipped").is_none(), "{line}");
            hashed += 1;
        }
    }
    assert!(
        hashed > 5 && skipped >= 3,
        "hashed {hashed}, skipped {skipped}"
    );
}

/// An empty file is not a disk: refused as unreadable (exit 2), naming it.
#[test]
fn empty_file_is_not_an_image() {
    let dir = std::env::temp_dir().join(format!("amiscan-empty-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.img");
    fs::write(&empty, b"").unwrap();
    let run = run(&empty, ["inspect"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("empty.img") && run.stderr.contains("empty"),
        "{}",
        run.stderr
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// What blkid says a byte range of an image holds: (TYPE, LABEL, UUID), TYPE "unknown"
/// when it finds nothing.
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

/// Every volume's filesystem type, label and UUID are what blkid reports for the same
/// bytes: ext2/3/4, vfat, swap, btrfs, iso9660, LUKS and unrecognised data (XFS volumes:
/// tests/integration/xfs.rs).
#[test]
fn volume_identity_matches_blkid() {
    util::ensure_built("build-volume-kinds.sh", ".lock-kinds");
    let mut kinds = std::collections::BTreeSet::new();
    for name in [
        "volume-kinds.img",
        "debian-gpt.img",
        "split-gpt.img",
        "mbr-logical.img",
        "incomplete.img",
        "ext2.img",
        "ext3.img",
        "bare-ext4.img",
    ] {
        let img = if name == "volume-kinds.img" {
            util::build_dir().join(name)
        } else {
            image(name)
        };
        let (_, report) = inspect_json(&img);
        for v in report["volumes"].as_array().unwrap() {
            let (offset, size) = (v["offset"].as_u64().unwrap(), v["size"].as_u64().unwrap());
            let (kind, label, uuid) = blkid(&img, offset, size);
            let at = format!("{name} {}", v["id"]);
            assert_eq!(v["filesystem"], kind.as_str(), "{at}: filesystem");
            assert_eq!(v["label"].as_str(), label.as_deref(), "{at}: label");
            assert_eq!(v["uuid"].as_str(), uuid.as_deref(), "{at}: uuid");
            kinds.insert(kind);
        }
    }
    let want = [
        "btrfs",
        "crypto_LUKS",
        "ext2",
        "ext3",
        "ext4",
        "iso9660",
        "swap",
        "unknown",
        "vfat",
    ];
    for kind in want {
        assert!(
            kinds.contains(kind),
            "no {kind} volume was compared: {kinds:?}"
        );
    }
}

/// `inspect`'s details of every ext volume agree with dumpe2fs: the feature list (names
/// and order), block size and inode size.
#[test]
fn ext_details_match_dumpe2fs() {
    for name in [
        "bare-ext4.img",
        "ext2.img",
        "ext3.img",
        "ext4-1k.img",
        "ext4-no64.img",
        "ext4-inline.img",
    ] {
        let img = image(name);
        let (run, report) = inspect_json(&img);
        run.expect_code(0);
        let details = &volume(&report, "disk")["details"];
        let out = crate::util::tool_command("dumpe2fs")
            .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
            .arg("-h")
            .arg(&img)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("{name}: dumpe2fs has no {key}"))
        };
        let features: Vec<&str> = details["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(
            features.join(" "),
            field("Filesystem features:"),
            "{name}: features"
        );
        assert_eq!(
            details["block_size"].as_u64().unwrap().to_string(),
            field("Block size:"),
            "{name}"
        );
        assert_eq!(
            details["inode_size"].as_u64().unwrap().to_string(),
            field("Inode size:"),
            "{name}"
        );
        assert_eq!(details["version"], serde_json::Value::Null);
    }
}
