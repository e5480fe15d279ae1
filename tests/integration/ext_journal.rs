//! External ext journals (`mke2fs -O journal_dev`): the journal device is named for what it
//! is and holds no files; a filesystem whose log lives there and needs recovery is
//! incomplete, since that log is not replayed. e2fsprogs makes both; dumpe2fs and e2fsck
//! are the reference for what they hold.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{amiscan, inspect_json, poke, tool, Scratch};

const FS_UUID: &str = "5e1f0b7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b";
const JOURNAL_UUID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3";

fn no_images(name: &str) -> PathBuf {
    panic!("the ext_journal suite copies no built image ({name})")
}

fn uuid_bytes(uuid: &str) -> Vec<u8> {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// A journal device and an ext4 filesystem that uses it: (filesystem, journal).
///
/// mke2fs attaches an external journal only on a block device, so the filesystem is made
/// without a journal and given the superblock fields `mke2fs -J device=` sets (with
/// debugfs), and the journal's user list gets the filesystem's UUID as mke2fs writes it:
/// `s_nr_users` at 0x40 and the first UUID at 0x100 of the jbd2 superblock, which follows
/// the ext superblock's 4 KiB block.
fn make_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let journal = dir.join("journal.img");
    fs::File::create(&journal)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let journal_s = journal.to_str().unwrap();
    tool(
        "mke2fs",
        &[
            "-q",
            "-F",
            "-O",
            "journal_dev",
            "-b",
            "4096",
            "-U",
            JOURNAL_UUID,
            "-L",
            "extlog",
            journal_s,
        ],
    );
    poke(&journal, 4096 + 0x40, &1u32.to_be_bytes());
    poke(&journal, 4096 + 0x100, &uuid_bytes(FS_UUID));
    let users = tool("dumpe2fs", &["-h", journal_s]);
    assert!(
        users.contains(&format!("Journal users:            {FS_UUID}")),
        "{users}"
    );

    let tree = crate::util::os_tree(dir);
    let root = dir.join("root.img");
    let root_s = root.to_str().unwrap();
    tool(
        "mke2fs",
        &[
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-O",
            "^has_journal",
            "-U",
            FS_UUID,
            "-L",
            "root",
            "-d",
            tree.to_str().unwrap(),
            root_s,
            "32M",
        ],
    );
    tool(
        "debugfs",
        &[
            "-w",
            "-R",
            &format!("ssv journal_uuid {JOURNAL_UUID}"),
            root_s,
        ],
    );
    tool("debugfs", &["-w", "-R", "feature has_journal", root_s]);
    tool("debugfs", &["-w", "-R", "ssv journal_dev 0x0801", root_s]);
    let header = tool("dumpe2fs", &["-h", root_s]);
    assert!(
        header.contains(&format!("Journal UUID:             {JOURNAL_UUID}")),
        "{header}"
    );
    (root, journal)
}

fn volume_of<'a>(report: &'a serde_json::Value, filesystem: &str) -> &'a serde_json::Value {
    report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["filesystem"] == filesystem)
        .unwrap_or_else(|| panic!("no {filesystem} volume in {report:#}"))
}

/// The journal device is "jbd" (blkid's name) with its own label and UUID, names the
/// filesystem it serves, and holds no files: it leaves the result complete. It was
/// reported as a corrupt ext4, which made every image holding one incomplete.
#[test]
fn a_journal_device_is_named_and_holds_no_files() {
    let scratch = Scratch::new("ext_journal", "device", no_images);
    let (_, journal) = make_pair(&scratch.dir);
    // Alone, the journal device holds no operating system: incomplete for that reason only.
    let (run, report) = inspect_json(&journal);
    run.expect_code(3);
    assert!(
        report["notes"]
            .to_string()
            .contains("no operating-system root found"),
        "{report:#}"
    );
    let volume = volume_of(&report, "jbd");
    assert_eq!(volume["uuid"], JOURNAL_UUID, "{volume:#}");
    assert_eq!(volume["label"], "extlog", "{volume:#}");
    let reason = volume["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "ext4 external journal (for filesystem UUID {FS_UUID})"
        )),
        "{volume:#}"
    );
}

/// A guest whose root filesystem keeps its log on a second disk: read as it is when it
/// was shut down cleanly; read as it lies but incomplete, saying why, when it needs
/// recovery, because the committed transactions in that log are not replayed (e2fsck
/// cannot check it without the journal either).
#[test]
fn a_filesystem_needing_recovery_from_an_external_journal_is_incomplete() {
    let scratch = Scratch::new("ext_journal", "recovery", no_images);
    let (root, journal) = make_pair(&scratch.dir);
    let joined = PathBuf::from(format!("{}+{}", root.display(), journal.display()));

    let (run, report) = inspect_json(&joined);
    run.expect_code(0);
    assert_eq!(report["complete"], true, "{report:#}");
    assert_eq!(volume_of(&report, "ext4")["scanned"], true, "{report:#}");

    tool(
        "debugfs",
        &["-w", "-R", "feature needs_recovery", root.to_str().unwrap()],
    );
    let fsck = crate::util::tool_command("e2fsck")
        .arg("-fn")
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        !fsck.status.success(),
        "e2fsck checks it without its journal"
    );

    let (run, report) = inspect_json(&joined);
    run.expect_code(3);
    assert_eq!(report["complete"], false, "{report:#}");
    // The volume is read as it lies on disk, as debugfs reads it, and says why it is
    // incomplete.
    let volume = volume_of(&report, "ext4");
    assert_eq!(volume["scanned"], true, "{volume:#}");
    assert_eq!(volume["details"]["log"], "dirty", "{volume:#}");
    assert!(
        report["notes"]
            .to_string()
            .contains("external journal device and was not replayed"),
        "{report:#}"
    );
    let listed = amiscan(["ls", joined.to_str().unwrap(), "/"]);
    listed.expect_code(3);
    let debugfs = tool("debugfs", &["-R", "ls -p /", root.to_str().unwrap()]);
    for line in listed.stdout_text().lines() {
        assert!(debugfs.contains(&format!("/{line}/")), "{line}: {debugfs}");
    }
    // The journal device itself is still not what makes it incomplete.
    assert!(volume_of(&report, "jbd")["error"]
        .as_str()
        .unwrap_or_default()
        .contains("holds no files"));
}
