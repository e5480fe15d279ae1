//! Fail closed: an image amiscan could not really read never passes. Each test damages a
//! real image made by the filesystem's own tools in a way those tools accept, and checks
//! that every command says what could not be read and none exits 0.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{amiscan, inspect_json};

fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("fail_closed")
        .join(format!("{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

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

/// A small OS root: os-release and fstab, so only the damage can keep it from passing.
fn os_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(
        tree.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    fs::write(tree.join("etc/fstab"), "LABEL=root / ext4 defaults 0 1\n").unwrap();
    tree
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
    let dir = scratch("ext4-root-file");
    let tree = os_tree(&dir);
    let image = dir.join("root-file.img");
    let status = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "root", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("8M")
        .status()
        .unwrap();
    assert!(status.success());
    run_tool("debugfs", &["-w", "-R", "sif <2> mode 0100644"], &image);
    assert_root_refused(&image, "the root directory (inode 2) is a file");
}

/// XFS whose root inode xfs_db made a regular file (its CRC recomputed).
#[test]
fn an_xfs_root_that_is_a_regular_file_is_not_read_as_empty() {
    let dir = scratch("xfs-root-file");
    let image = dir.join("root-file.img");
    fs::File::create(&image)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    run_tool("mkfs.xfs", &["-q", "-f"], &image);
    let output = Command::new("xfs_db")
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
    let dir = scratch("unread-containers");
    let mut images: Vec<(PathBuf, &str)> = Vec::new();
    for (format, name) in [("qed", "QED"), ("parallels", "Parallels")] {
        let image = dir.join(format!("disk.{format}"));
        let status = Command::new("qemu-img")
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
