//! Fail closed: an image amiscan could not really read never passes. Each test damages a
//! real image made by the filesystem's own tools in a way those tools accept, and checks
//! that every command says what could not be read and none exits 0.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{amiscan, inspect_json, mkfs_ext4, os_tree, scratch_dir};

fn run_tool(program: &str, args: &[&str], image: &Path) {
    let output = Command::new(program)
        .args(args)
        .arg(image)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The volume whose root is not a directory is named, with why, and nothing passes.
fn assert_root_refused(image: &Path, reason: &str) {
    let run = amiscan([
        "scan",
        image.to_str().unwrap(),
        "--format",
        "json",
        "--as-of",
        "2026-11-22",
    ]);
    run.expect_code(3);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["summary"]["verdict"], "incomplete", "{report:#}");
    assert_eq!(report["summary"]["results"]["pass"], 0, "{report:#}");
    let volume = &report["images"][0]["volumes"][0];
    assert_eq!(volume["scanned"], false, "{volume:#}");
    let error = volume["error"].as_str().unwrap_or_default();
    assert!(error.contains(reason), "{error}");

    let (run, inspected) = inspect_json(image);
    run.expect_code(3);
    assert_eq!(inspected["complete"], false, "{inspected:#}");
    for command in ["files", "ls"] {
        let run = amiscan([command, image.to_str().unwrap()]);
        assert_ne!(run.code, 0, "{}", run.describe());
    }
}

/// ext4 whose root inode (2) debugfs turned into a regular file, checksums kept valid:
/// 0.2.0 scanned it as an empty filesystem and passed every rule.
#[test]
fn an_ext4_root_that_is_a_regular_file_is_not_read_as_empty() {
    let dir = scratch_dir("fail_closed", "ext4-root-file");
    let tree = os_tree(&dir);
    let image = dir.join("root-file.img");
    mkfs_ext4(&tree, &image, &[], "8M");
    run_tool("debugfs", &["-w", "-R", "sif <2> mode 0100644"], &image);
    assert_root_refused(&image, "the root directory (inode 2) is a file");
}

/// XFS whose root inode xfs_db made a regular file (its CRC recomputed).
#[test]
fn an_xfs_root_that_is_a_regular_file_is_not_read_as_empty() {
    let dir = scratch_dir("fail_closed", "xfs-root-file");
    let image = dir.join("root-file.img");
    fs::File::create(&image)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    run_tool("mkfs.xfs", &["-q", "-f"], &image);
    let output = crate::util::tool_command("xfs_db")
        .args(["-r", "-c", "sb 0", "-c", "p rootino"])
        .arg(&image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let rootino = text.split('=').nth(1).unwrap().trim().to_string();
    let inode = format!("inode {rootino}");
    run_tool(
        "xfs_db",
        &["-x", "-c", &inode, "-c", "write core.mode 0100644"],
        &image,
    );
    assert_root_refused(&image, "the root directory");
}

/// Containers amiscan does not read are named and refused (exit 2), never read as a raw
/// disk: qemu-img makes QED and Parallels images; the others get their format's
/// magic where qemu's drivers look for it, on an otherwise empty disk.
#[test]
fn containers_amiscan_does_not_read_are_named_not_read_as_raw() {
    let dir = scratch_dir("fail_closed", "unread-containers");
    let mut images: Vec<(PathBuf, &str)> = Vec::new();
    for (format, name) in [("qed", "QED"), ("parallels", "Parallels")] {
        let image = dir.join(format!("disk.{format}"));
        let status = crate::util::tool_command("qemu-img")
            .args(["create", "-q", "-f", format])
            .arg(&image)
            .arg("64M")
            .status()
            .unwrap();
        assert!(status.success(), "qemu-img create -f {format}");
        images.push((image, name));
    }
    let crafted: [(&str, usize, &[u8], &str); 4] = [
        ("bochs.img", 0, b"Bochs Virtual HD Image", "Bochs"),
        (
            "cloop.img",
            0,
            b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop",
            "cloop",
        ),
        ("cowd.vmdk", 0, b"COWD\x01\x00\x00\x00", "VMware COWD"),
        (
            "disk.dmg",
            (1 << 20) - 512,
            b"koly\x00\x00\x00\x04",
            "Apple DMG",
        ),
    ];
    for (file, at, magic, name) in crafted {
        let mut bytes = vec![0u8; 1 << 20];
        bytes[at..at + magic.len()].copy_from_slice(magic);
        let image = dir.join(file);
        fs::write(&image, bytes).unwrap();
        images.push((image, name));
    }
    for (image, name) in &images {
        let path = image.to_str().unwrap();
        for args in [
            vec!["scan", path],
            vec!["inspect", path],
            vec!["files", path],
        ] {
            let run = amiscan(&args);
            run.expect_code(2);
            assert!(
                run.stderr.contains(name) && run.stderr.contains("does not read"),
                "{}",
                run.describe()
            );
        }
    }
}

/// A vfat filesystem of `mib` MiB holding an EFI boot loader, as on an EFI system
/// partition.
fn esp_filesystem(dir: &Path, mib: u64) -> PathBuf {
    let esp = dir.join("esp.fs");
    fs::File::create(&esp).unwrap().set_len(mib << 20).unwrap();
    run_tool("mkfs.vfat", &["-F", "16"], &esp);
    let loader = dir.join("BOOTX64.EFI");
    fs::write(&loader, b"MZ not really a loader").unwrap();
    for args in [
        vec!["-i", esp.to_str().unwrap(), "::/EFI"],
        vec!["-i", esp.to_str().unwrap(), "::/EFI/BOOT"],
    ] {
        let status = crate::util::tool_command("mmd")
            .args(&args)
            .status()
            .unwrap();
        assert!(status.success(), "mmd {args:?}");
    }
    let status = crate::util::tool_command("mcopy")
        .args(["-i", esp.to_str().unwrap()])
        .arg(&loader)
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .status()
        .unwrap();
    assert!(status.success(), "mcopy");
    esp
}

/// A GPT disk whose partitions hold `contents` in order (each a file copied in at the
/// partition's start), each `part_mib` MiB, with sgdisk type codes.
fn gpt_disk(image: &Path, part_mib: u64, contents: &[(&str, Option<&Path>)]) {
    let disk_mib = 2 + part_mib * contents.len() as u64;
    fs::File::create(image)
        .unwrap()
        .set_len(disk_mib << 20)
        .unwrap();
    let mut args = Vec::new();
    for (index, (type_code, _)) in contents.iter().enumerate() {
        let number = index + 1;
        args.push(format!("--new={number}:0:+{part_mib}M"));
        args.push(format!("--typecode={number}:{type_code}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("sgdisk", &args, image);
    for (index, (_, content)) in contents.iter().enumerate() {
        let Some(content) = content else { continue };
        // sgdisk aligns to 1 MiB: partition N starts at 1 MiB + (N-1) * part_mib MiB.
        let start = (1 + part_mib * index as u64) << 20;
        let bytes = fs::read(content).unwrap();
        assert!(bytes.len() as u64 <= part_mib << 20);
        use std::os::unix::fs::FileExt;
        let disk = fs::OpenOptions::new().write(true).open(image).unwrap();
        disk.write_all_at(&bytes, start).unwrap();
    }
}

/// Every command exits 3 on `image` and names the missing operating-system root.
fn assert_no_os_root_everywhere(image: &Path) {
    let path = image.to_str().unwrap();
    let run = amiscan(["scan", path, "--format", "json", "--as-of", "2026-11-22"]);
    run.expect_code(3);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["summary"]["verdict"], "incomplete", "{report:#}");
    let notes = report["images"][0]["notes"].to_string();
    assert!(notes.contains("no operating-system root found"), "{notes}");
    for args in [
        vec!["files", path],
        vec!["ls", path],
        vec!["ls", path, "-R", "/"],
        vec!["cat", path, "/etc/os-release"],
    ] {
        let run = amiscan(&args);
        run.expect_code(3);
        assert!(
            run.stderr.contains("no operating-system root found"),
            "{}",
            run.describe()
        );
    }
    let (run, inspected) = inspect_json(image);
    run.expect_code(3);
    assert_eq!(inspected["complete"], false, "{inspected:#}");
}

/// A GPT disk holding only an EFI system partition: 0.2.0 took the vfat ESP for the guest
/// root and passed 32 rules on it (exit 0). No volume of it is an operating system.
#[test]
fn a_disk_holding_only_an_efi_system_partition_never_passes() {
    let dir = scratch_dir("fail_closed", "esp-only");
    let esp = esp_filesystem(&dir, 40);
    let image = dir.join("esp-only.img");
    gpt_disk(&image, 40, &[("EF00", Some(&esp))]);
    assert_no_os_root_everywhere(&image);
    let run = amiscan(["scan", image.to_str().unwrap(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["summary"]["results"]["pass"], 0, "{report:#}");
    let notes = report["images"][0]["notes"].to_string();
    assert!(
        notes.contains("vfat volume p1 is never taken as the root"),
        "{notes}"
    );
    // Asked for by name, the ESP is listed, and that answer is complete.
    let run = amiscan(["ls", image.to_str().unwrap(), "--volume", "p1", "/EFI/BOOT"]);
    run.expect_code(0);
    assert_eq!(run.stdout_text(), "BOOTX64.EFI\n", "{}", run.describe());
}

/// An ESP beside a data filesystem: the ESP is never the root, and the data filesystem
/// (no /etc) is shown at / but the image is incomplete. With an os-release added, the
/// same disk is complete: the exit 3 comes from the missing OS, nothing else.
#[test]
fn a_filesystem_without_an_operating_system_is_shown_but_never_complete() {
    let dir = scratch_dir("fail_closed", "no-os");
    let esp = esp_filesystem(&dir, 40);
    let tree = dir.join("data");
    fs::create_dir_all(tree.join("srv")).unwrap();
    fs::write(tree.join("srv/readme"), "data only\n").unwrap();
    let data = dir.join("data.fs");
    mkfs_ext4(&tree, &data, &[], "16M");
    let image = dir.join("no-os.img");
    gpt_disk(&image, 40, &[("EF00", Some(&esp)), ("8300", Some(&data))]);
    assert_no_os_root_everywhere(&image);
    let run = amiscan(["cat", image.to_str().unwrap(), "/srv/readme"]);
    assert_eq!(run.stdout_text(), "data only\n", "{}", run.describe());

    let os = os_tree(&dir);
    fs::create_dir_all(os.join("srv")).unwrap();
    fs::write(os.join("srv/readme"), "data only\n").unwrap();
    let root = dir.join("root.fs");
    mkfs_ext4(&os, &root, &[], "16M");
    let image = dir.join("with-os.img");
    gpt_disk(&image, 40, &[("EF00", Some(&esp)), ("8300", Some(&root))]);
    let run = amiscan(["files", image.to_str().unwrap()]);
    run.expect_code(0);
    let run = amiscan(["ls", image.to_str().unwrap(), "/etc"]);
    run.expect_code(0);
    assert_eq!(run.stdout_text(), "fstab\nos-release\n");
}

/// A RHEL-shaped disk (BIOS boot, ESP, XFS /boot, LVM PV holding root) whose PV label is
/// gone: the root on LVM cannot be read, so neither the ESP nor /boot may stand in for
/// it. 0.2.0 passed such a disk on its ESP.
#[test]
fn a_rhel_disk_whose_root_on_lvm_cannot_be_read_never_passes() {
    let source = crate::util::built_image("build-lvm-images.sh", ".lock-lvm", "lvm-rhel.img");
    let dir = scratch_dir("fail_closed", "rhel-lvm-lost");
    let image = dir.join("lvm-rhel.img");
    crate::util::copy_sparse(&source, &image);
    let (run, inspected) = inspect_json(&image);
    run.expect_code(0);
    let pv = inspected["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "p4")
        .unwrap_or_else(|| panic!("no p4: {inspected:#}"));
    let pv_offset = pv["offset"].as_u64().unwrap();
    // The LVM2 label lies in one of the first four sectors; zero them all.
    use std::os::unix::fs::FileExt;
    let disk = fs::OpenOptions::new().write(true).open(&image).unwrap();
    disk.write_all_at(&[0u8; 2048], pv_offset).unwrap();
    drop(disk);
    assert_no_os_root_everywhere(&image);
    let (_, inspected) = inspect_json(&image);
    for volume in inspected["volumes"].as_array().unwrap() {
        if volume["filesystem"] == "vfat" {
            assert!(volume["mount_point"].is_null(), "{volume:#}");
        }
    }
}

/// A partition amiscan recognises nothing in but which holds data may be a filesystem it
/// does not read: incomplete. An all-zero one is empty and does not count.
#[test]
fn an_unrecognised_partition_holding_data_is_incomplete() {
    let dir = scratch_dir("fail_closed", "unknown-data");
    let os = os_tree(&dir);
    let root = dir.join("root.fs");
    mkfs_ext4(&os, &root, &[], "8M");
    let noise = dir.join("noise.bin");
    let bytes = crate::util::noise(1 << 20, 0x9e37_79b9_7f4a_7c15);
    fs::write(&noise, bytes).unwrap();

    let image = dir.join("with-noise.img");
    gpt_disk(&image, 8, &[("8300", Some(&root)), ("8300", Some(&noise))]);
    let run = amiscan(["files", image.to_str().unwrap()]);
    run.expect_code(3);
    assert!(run.stderr.contains("holds data"), "{}", run.describe());
    let (run, inspected) = inspect_json(&image);
    run.expect_code(3);
    let p2 = inspected["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "p2")
        .unwrap()
        .to_string();
    assert!(p2.contains("holds data"), "{p2}");

    let image = dir.join("with-empty.img");
    gpt_disk(&image, 8, &[("8300", Some(&root)), ("8300", None)]);
    amiscan(["files", image.to_str().unwrap()]).expect_code(0);
    amiscan(["inspect", image.to_str().unwrap()]).expect_code(0);
}

/// `--ignore-checksums` reads what fails its checksum (for forensic use), and the result
/// is still incomplete: an XFS inode whose owner was changed behind its CRC is refused by
/// default and read with the flag, and the report says checksums were not enforced.
#[test]
fn ignore_checksums_reads_damaged_structures_and_stays_incomplete() {
    let source = crate::util::built_image("build-xfs-images.sh", ".lock-xfs", "xfs-v5.img");
    let dir = scratch_dir("fail_closed", "ignore-checksums");
    let image = dir.join("xfs-v5.img");
    crate::util::copy_sparse(&source, &image);
    let path = image.to_str().unwrap();
    let inode = crate::util::parse_inventory(&amiscan(["files", path]).stdout)
        .into_iter()
        .find(|r| r.path == "/etc/os-release")
        .expect("/etc/os-release listed")
        .inode;
    let output = crate::util::tool_command("xfs_db")
        .args(["-r", "-c", &format!("convert inode {inode} byte")])
        .arg(&image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let offset = text
        .split_whitespace()
        .next()
        .and_then(|hex| u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("xfs_db convert: {text}"));
    // di_uid, at byte 8 of the inode core: the CRC no longer matches.
    use std::os::unix::fs::FileExt;
    let disk = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let mut uid = [0u8; 1];
    disk.read_exact_at(&mut uid, offset + 11).unwrap();
    disk.write_all_at(&[uid[0] ^ 0x01], offset + 11).unwrap();
    drop(disk);

    let refused = amiscan(["cat", path, "/etc/os-release"]);
    assert_ne!(refused.code, 0, "{}", refused.describe());
    assert!(refused.stderr.contains("CRC"), "{}", refused.describe());
    assert!(refused.stdout.is_empty());

    let forensic = amiscan(["cat", "--ignore-checksums", path, "/etc/os-release"]);
    forensic.expect_code(3);
    assert!(
        forensic.stdout_text().starts_with("NAME="),
        "{}",
        forensic.describe()
    );
    assert!(
        forensic.stderr.contains("checksums are not enforced"),
        "{}",
        forensic.describe()
    );
    let run = amiscan(["scan", "--ignore-checksums", path, "--format", "json"]);
    assert_ne!(run.code, 0, "{}", run.describe());
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let notes = report["images"][0]["notes"].to_string();
    assert!(notes.contains("checksums are not enforced"), "{notes}");
}

/// `--timeout` ends a run that would take too long with exit 3 and the reason: hashing a
/// 1 TiB sparse file would take many minutes.
#[test]
fn timeout_ends_a_long_run_as_incomplete() {
    let dir = scratch_dir("fail_closed", "timeout");
    let tree = os_tree(&dir);
    fs::File::create(tree.join("huge.bin"))
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let image = dir.join("huge.img");
    mkfs_ext4(&tree, &image, &[], "16M");
    let started = std::time::Instant::now();
    let run = amiscan([
        "files",
        image.to_str().unwrap(),
        "--hash",
        "sha256",
        "--hash-max-size",
        "2199023255552",
        "--timeout",
        "1",
    ]);
    run.expect_code(3);
    assert!(
        run.stderr.contains("time limit of 1 s reached"),
        "{}",
        run.describe()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
