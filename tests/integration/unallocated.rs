//! `inspect` measures each ext volume's unallocated space and how much of it still holds
//! data. e2fsprogs is the reference: dumpe2fs lists every group's free blocks, and debugfs
//! deletes a file the way `rm` does — its blocks are freed, not cleared.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{inspect_json, mkfs_ext4, tool, Scratch};

fn no_images(name: &str) -> PathBuf {
    panic!("the unallocated suite copies no built image ({name})")
}

/// An ext4 image of `tree`, made with `features` (mke2fs -O) and 1 KiB or 4 KiB blocks.
fn make(dir: &Path, name: &str, tree: &Path, features: &str, block: &str) -> PathBuf {
    let image = dir.join(name);
    let extra = ["-b", block, "-O", features, "-E", "lazy_itable_init=1"];
    mkfs_ext4(tree, &image, &extra, "24M");
    image
}

/// Free bytes as dumpe2fs lists them, group by group ("Free blocks: 10-20, 30").
fn dumpe2fs_free_bytes(image: &Path) -> u64 {
    let text = tool("dumpe2fs", &[image.to_str().unwrap()]);
    let block: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut blocks = 0;
    for line in text.lines() {
        // Group lines are indented; the header's "Free blocks:" is the lazy counter.
        let Some(list) = line.strip_prefix("  Free blocks: ") else {
            continue;
        };
        for range in list.split(", ").filter(|r| !r.is_empty()) {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            blocks += b.trim().parse::<u64>().unwrap() - a.trim().parse::<u64>().unwrap() + 1;
        }
    }
    blocks * block
}

fn unallocated(image: &Path) -> (u64, u64) {
    unallocated_with_code(image, 0)
}

/// The same for an image `inspect` exits `code` on (3 for a volume with no OS root).
fn unallocated_with_code(image: &Path, code: i32) -> (u64, u64) {
    let (run, report) = inspect_json(image);
    run.expect_code(code);
    let volume = &report["volumes"][0];
    let u = &volume["unallocated"];
    let bytes = u["bytes"].as_u64().unwrap_or_else(|| panic!("{volume}"));
    (bytes, u["nonzero_bytes"].as_u64().unwrap())
}

#[test]
fn deleted_file_content_is_measured_and_the_free_space_is_e2fsprogs_own() {
    let scratch = Scratch::new("unallocated", "deleted", no_images);
    let tree = scratch.dir.join("tree");
    fs::create_dir_all(tree.join("root/.aws")).unwrap();
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/os-release"), "ID=debian\nVERSION_ID=12\n").unwrap();
    // 64 KiB of text that is not zero, in a file deleted below.
    let secret: String = (0..2048)
        .map(|i| format!("line {i:05} of a file\n"))
        .collect();
    fs::write(tree.join("root/.aws/credentials"), &secret).unwrap();
    fs::write(tree.join("root/kept.txt"), "kept\n").unwrap();

    for (features, block) in [
        ("metadata_csum,64bit,flex_bg", "4096"),
        ("^metadata_csum,uninit_bg,^64bit", "1024"),
        ("^metadata_csum,^uninit_bg,^flex_bg", "4096"),
    ] {
        let tag = format!("{features} {block}");
        let image = make(&scratch.dir, "clean.img", &tree, features, block);
        let (bytes, nonzero) = unallocated(&image);
        assert_eq!(bytes, dumpe2fs_free_bytes(&image), "{tag}");
        assert_eq!(
            nonzero, 0,
            "{tag}: a fresh filesystem's free blocks are zero"
        );

        // `rm` through debugfs: the inode and blocks are freed, the data stays.
        tool(
            "debugfs",
            &[
                "-w",
                "-R",
                "rm /root/.aws/credentials",
                image.to_str().unwrap(),
            ],
        );
        let (bytes_after, nonzero_after) = unallocated(&image);
        assert_eq!(bytes_after, dumpe2fs_free_bytes(&image), "{tag}");
        assert!(bytes_after >= bytes + secret.len() as u64, "{tag}");
        assert!(
            nonzero_after >= secret.len() as u64 && nonzero_after < secret.len() as u64 + 8192,
            "{tag}: {nonzero_after} bytes not zero after deleting {} bytes",
            secret.len()
        );
    }
}

/// A block bitmap whose metadata_csum checksum fails leaves the unallocated space
/// unmeasured, with the reason, rather than a figure from a bitmap that cannot be trusted.
#[test]
fn a_bitmap_that_fails_its_checksum_is_not_measured() {
    let scratch = Scratch::new("unallocated", "bad-bitmap", no_images);
    let tree = scratch.dir.join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("file"), "data\n").unwrap();
    let image = make(
        &scratch.dir,
        "bad.img",
        &tree,
        "metadata_csum,64bit",
        "4096",
    );
    let text = tool("dumpe2fs", &[image.to_str().unwrap()]);
    let bitmap_block: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Block bitmap at "))
        .and_then(|rest| rest.split([' ', '(']).next())
        .unwrap()
        .parse()
        .unwrap();
    let mut bytes = fs::read(&image).unwrap();
    // A bit of group 0's bitmap, within the span its checksum covers.
    let at = (bitmap_block * 4096 + 100) as usize;
    bytes[at] ^= 0x01;
    fs::write(&image, &bytes).unwrap();
    let (_, report) = inspect_json(&image);
    let u = &report["volumes"][0]["unallocated"];
    let error = u["error"].as_str().unwrap_or_else(|| panic!("{u}"));
    assert!(error.contains("block bitmap of group 0"), "{error}");
    assert!(error.contains("checksum"), "{error}");
}

/// FAT: the clusters the allocation table marks free, as `mdir` counts them, before and
/// after a file is deleted with `mdel` (which frees its clusters and leaves their data).
#[test]
fn fat_free_clusters_match_mtools() {
    let scratch = Scratch::new("unallocated", "fat", no_images);
    let image = scratch.dir.join("esp.img");
    let image_s = image.to_str().unwrap();
    tool("mkfs.vfat", &["-C", image_s, "32768"]);
    let data = scratch.dir.join("data");
    fs::write(&data, crate::util::noise(300_000, 7)).unwrap();
    let data_s = data.to_str().unwrap();
    tool("mcopy", &["-i", image_s, data_s, "::/a"]);
    tool("mcopy", &["-i", image_s, data_s, "::/b"]);
    let mdir_free = || -> u64 {
        let listing = tool("mdir", &["-i", image_s, "::"]);
        let line = listing
            .lines()
            .find(|l| l.trim_end().ends_with("bytes free"))
            .unwrap_or_else(|| panic!("{listing}"));
        line.chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    let (bytes, nonzero) = unallocated_with_code(&image, 3);
    assert_eq!(bytes, mdir_free());
    assert_eq!(nonzero, 0, "free clusters of a fresh FAT are zero");
    tool("mdel", &["-i", image_s, "::/a"]);
    let (bytes_after, nonzero_after) = unallocated_with_code(&image, 3);
    assert_eq!(bytes_after, mdir_free());
    assert!(
        (300_000..300_000 + 8192).contains(&nonzero_after),
        "{nonzero_after}"
    );
}
