//! FAT volumes through the commands: every command sees the same damage, whether it reads
//! a file whole (`files --hash`), only its first kilobytes (the rules' content pass) or
//! only its metadata. dosfstools' `fsck.fat -n` is the reference for what is broken.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{amiscan, poke, read_at, Scratch};

fn no_images(name: &str) -> PathBuf {
    panic!("the fat suite copies no built image ({name})")
}

fn run_tool(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn mtools(tool: &str, image: &Path) -> Command {
    let mut command = Command::new(tool);
    command
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .arg("-i")
        .arg(image);
    command
}

/// The guest's root disk: an ext4 OS root whose fstab mounts the FAT volume labelled ESP
/// at /boot/efi (a vfat volume is never the guest's root itself).
fn ext4_root(dir: &Path) -> PathBuf {
    let tree = dir.join("root-tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::create_dir_all(tree.join("boot/efi")).unwrap();
    fs::write(
        tree.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    fs::write(
        tree.join("etc/fstab"),
        "LABEL=root / ext4 defaults 0 1\nLABEL=ESP /boot/efi vfat defaults 0 2\n",
    )
    .unwrap();
    let image = dir.join("root.img");
    run_tool(
        crate::util::tool_command("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-L", "root", "-d"])
            .arg(&tree)
            .arg(&image)
            .arg("8M"),
    );
    image
}

/// The guest argument joining the root disk and a FAT disk.
fn guest(root: &Path, fat: &Path) -> PathBuf {
    PathBuf::from(format!("{}+{}", root.display(), fat.display()))
}

/// A whole-disk FAT16 holding a 200 KiB file, copied with mcopy so its clusters are
/// contiguous; mounted by the guest at /boot/efi.
fn fat_root(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    let big: Vec<u8> = (0..200 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(tree.join("etc/motd"), big).unwrap();
    let image = dir.join("fat.img");
    fs::File::create(&image).unwrap().set_len(16 << 20).unwrap();
    run_tool(
        crate::util::tool_command("mkfs.vfat")
            .args(["-F", "16", "-n", "ESP"])
            .arg(&image),
    );
    run_tool(
        mtools("mcopy", &image)
            .args(["-s", "-m"])
            .arg(tree.join("etc"))
            .arg("::/"),
    );
    image
}

/// The clusters mtools says a file occupies, in chain order (`mshowfat` prints runs such
/// as `<3-40>`).
fn clusters(image: &Path, file: &str) -> Vec<u32> {
    let text = run_tool(mtools("mshowfat", image).arg(file));
    let runs = &text[text.find('<').unwrap()..];
    let mut out = Vec::new();
    for run in runs
        .split(['<', '>'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        match run.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u32>().unwrap()..=b.parse().unwrap()),
            None => out.push(run.parse().unwrap()),
        }
    }
    out
}

/// Writes a FAT16 entry in every copy of the table, as a tool repairing or damaging the
/// volume would: a reader that checked the copies against each other would find nothing.
fn set_fat16_entry(image: &Path, cluster: u32, value: u16) {
    let boot = read_at(image, 0, 512);
    let sector = u64::from(u16::from_le_bytes([boot[11], boot[12]]));
    let reserved = u64::from(u16::from_le_bytes([boot[14], boot[15]]));
    let fats = u64::from(boot[16]);
    let fat_sectors = u64::from(u16::from_le_bytes([boot[22], boot[23]]));
    for copy in 0..fats {
        let at = (reserved + copy * fat_sectors) * sector + 2 * u64::from(cluster);
        poke(image, at, &value.to_le_bytes());
    }
}

fn fsck_finds_damage(image: &Path) -> String {
    let output = crate::util::tool_command("fsck.fat")
        .arg("-n")
        .arg(image)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "fsck.fat -n accepts the damaged image"
    );
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// A file whose chain breaks past its first 8 KiB: `files` reads it whole and exited 3,
/// while `scan`, whose content pass reads 8 KiB, exited 0. Now both, and `ls`, name the
/// file and are incomplete.
#[test]
fn a_broken_cluster_chain_makes_every_command_incomplete() {
    let scratch = Scratch::new("fat", "broken-chain", no_images);
    let pristine = fat_root(&scratch.dir);
    let chain = clusters(&pristine, "::/etc/motd");
    let cluster_size = 200 * 1024 / chain.len() as u32;
    assert!(chain.len() > 8, "{chain:?}");
    let late = chain[8192 / cluster_size as usize + 2];
    let first = chain[0];
    let scan = |image: &Path| {
        amiscan([
            "scan",
            image.to_str().unwrap(),
            "--format",
            "json",
            "--as-of",
            "2026-11-22",
        ])
    };
    let root = ext4_root(&scratch.dir);
    // The intact image is complete, so only the damage can make it incomplete.
    let clean = scan(&guest(&root, &pristine));
    assert!(
        clean.stdout_text().contains("/boot/efi"),
        "{}",
        clean.describe()
    );
    assert!(clean.code == 0 || clean.code == 1, "{}", clean.stderr);

    // What fsck.fat says of each (it names no file for a bad cluster).
    for (case, value, fsck_says) in [
        ("ends early", 0xFFFF, "cluster chain length is"),
        ("loops", first as u16, "circular cluster chain"),
        ("free", 0, "contains a free cluster"),
        ("bad", 0xFFF7, "bad cluster"),
    ] {
        let image = scratch.dir.join(format!("{}.img", case.replace(' ', "-")));
        fs::copy(&pristine, &image).unwrap();
        set_fat16_entry(&image, late, value);
        let fsck = fsck_finds_damage(&image);
        assert!(fsck.to_lowercase().contains(fsck_says), "{case}: {fsck}");

        let joined = guest(&root, &image);
        let run = scan(&joined);
        assert_eq!(run.code, 3, "{case}: {}\n{}", run.describe(), run.stderr);
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(report["summary"]["verdict"], "incomplete", "{case}");
        assert!(
            report.to_string().contains("/boot/efi/etc/motd"),
            "{case}: {report:#}"
        );

        for command in [
            &["files", "--hash", "sha256"][..],
            &["files"],
            &["ls", "-R"],
        ] {
            let run = amiscan(command.iter().copied().chain([joined.to_str().unwrap()]));
            assert_eq!(run.code, 3, "{case}: {}\n{}", run.describe(), run.stderr);
            assert!(run.stderr.contains("motd"), "{case}: {}", run.stderr);
        }
    }
}
