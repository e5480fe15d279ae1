//! Partition-table sanity: disks partitioned by sfdisk and sgdisk, filesystems made by
//! mkfs.ext4 at the partitions' offsets, then the table damaged the way real disks are
//! (an entry edited in place, a disk truncated, a backup GPT overwritten or left stale).
//! Each test checks what `inspect --format json` lists for the disk, the scan's exit code
//! and notes, and, where they report the same problem, what `sfdisk --verify` and
//! `sgdisk -v` say.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use amiscan::checksums::ChecksumPolicy;
use amiscan::image::CorruptKind;
use amiscan::volumes::{self, DiskInput, ProblemKind};
use serde_json::Value;

use crate::util::{amiscan, inspect_json, poke, read_at};

const MIB: u64 = 1 << 20;
const SECTOR: u64 = 512;
/// Where MBR entry N (1-4) starts, in sector 0 or in an EBR.
const fn mbr_entry_at(number: u64) -> u64 {
    446 + 16 * (number - 1)
}

/// A scratch directory of one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("table_sanity")
            .join(format!("{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A small OS root (os-release and an fstab mounting it by label), so that only the
    /// table's problems can keep a scan of it from passing.
    fn os_tree(&self) -> PathBuf {
        let dir = self.path("root");
        fs::create_dir_all(&dir).unwrap();
        crate::util::os_tree(&dir)
    }

    /// A tree of one file, for a second filesystem.
    fn data_tree(&self) -> PathBuf {
        let tree = self.path("data-tree");
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("hidden.txt"), "not in the guest's tree\n").unwrap();
        tree
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool, failing the test unless it succeeds; returns stdout and stderr together.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut command = Command::new(program);
    command.args(args);
    let output = match stdin {
        Some(text) => {
            use std::io::Write;
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        }
        None => command.output().unwrap(),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{program} {args:?}: {text}");
    text
}

/// What a tool prints, whatever its exit code (the verifiers exit non-zero on problems).
fn report_of(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn new_disk(path: &Path, size: u64) {
    let file = fs::File::create(path).unwrap();
    file.set_len(size).unwrap();
}

/// mkfs.ext4 of `tree` at byte `offset` of the disk, `size` bytes long, checked by e2fsck.
fn mkfs_at(disk: &Path, offset: u64, size: u64, label: &str, tree: &Path) {
    let disk_arg = disk.to_str().unwrap();
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            label,
            "-d",
            tree.to_str().unwrap(),
            "-E",
            &format!("offset={offset}"),
            disk_arg,
            &format!("{}k", size / 1024),
        ],
        None,
    );
}

fn sfdisk(disk: &Path, script: &str) {
    run(
        "sfdisk",
        &["-q", "--no-reread", disk.to_str().unwrap()],
        Some(script),
    );
}

fn sgdisk(disk: &Path, args: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    all.push(disk.to_str().unwrap());
    run("sgdisk", &all, None);
}

fn le32(value: u64) -> [u8; 4] {
    u32::try_from(value).unwrap().to_le_bytes()
}

/// `amiscan scan --format json`, parsed, with its exit code.
fn scan(disk: &Path) -> (i32, Value) {
    let run = amiscan([
        "scan",
        disk.to_str().unwrap(),
        "--format",
        "json",
        "--as-of",
        "2026-11-22",
    ]);
    let report = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}; stderr:\n{}", run.describe(), run.stderr));
    (run.code, report)
}

fn notes(report: &Value) -> Vec<String> {
    report["images"][0]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// The problems `inspect` lists for the first disk, after checking that each is also a
/// note and that the guest's completeness follows from them.
fn problems(disk: &Path) -> Vec<Value> {
    let (run, report) = inspect_json(disk);
    let problems = report["disks"][0]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems array in {report:#}"))
        .clone();
    let notes = report["notes"].as_array().unwrap();
    for problem in &problems {
        let message = problem["message"].as_str().unwrap();
        assert!(
            notes
                .iter()
                .any(|n| n.as_str().unwrap() == format!("partition table: {message}")),
            "{problem:#} is not among the notes {notes:#?}"
        );
    }
    let hides = problems.iter().any(|p| p["incomplete"] == true);
    if hides {
        run.expect_code(3);
        assert_eq!(report["complete"], false, "{report:#}");
    }
    problems
}

fn of_kind<'a>(problems: &'a [Value], kind: &str) -> Vec<&'a Value> {
    problems.iter().filter(|p| p["kind"] == kind).collect()
}

/// The scan of a disk whose table hides data is incomplete (exit 3, never a pass) and
/// says why in its notes.
fn assert_scan_incomplete(disk: &Path, why: &str) {
    let (code, report) = scan(disk);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["summary"]["verdict"], "incomplete", "{report:#}");
    let notes = notes(&report);
    assert!(notes.iter().any(|n| n.contains(why)), "{notes:#?}");
}

/// The scan of a disk whose table problems hide nothing passes, with the problem noted.
fn assert_scan_passes_with_note(disk: &Path, why: &str) {
    let (code, report) = scan(disk);
    assert_eq!(code, 0, "{report:#}");
    let notes = notes(&report);
    assert!(notes.iter().any(|n| n.contains(why)), "{notes:#?}");
}

// ---------------------------------------------------------------------------------------
// MBR
// ---------------------------------------------------------------------------------------

/// Two primary partitions, each with an ext4 filesystem; `second_start` is the sector
/// the second's entry is then edited to start at (sfdisk refuses to write an overlap,
/// even with --force, so the entry is edited in place as a disk editor would).
fn mbr_two_filesystems(scratch: &Scratch, second_start: u64, second_holds_fs: bool) -> PathBuf {
    let disk = scratch.path("mbr.img");
    new_disk(&disk, 32 * MIB);
    sfdisk(
        &disk,
        "label: dos\nstart=2048, size=16384, type=83\nstart=18432, size=16384, type=83\n",
    );
    mkfs_at(&disk, 2048 * SECTOR, 8 * MIB, "root", &scratch.os_tree());
    if second_holds_fs {
        mkfs_at(
            &disk,
            second_start * SECTOR,
            4 * MIB,
            "data",
            &scratch.data_tree(),
        );
    }
    poke(&disk, mbr_entry_at(2) + 8, &le32(second_start));
    disk
}

/// The report that started this: an MBR whose second partition starts inside the first
/// passed with no word about it. Both hold ext4, so either may have written over the
/// other: the scan is incomplete.
#[test]
fn an_mbr_partition_starting_inside_another_is_not_passed() {
    let scratch = Scratch::new("mbr-overlap");
    let disk = mbr_two_filesystems(&scratch, 10240, true);
    let verify = report_of("sfdisk", &["--verify", disk.to_str().unwrap()]);
    assert!(
        verify.contains("Partition 1: overlaps partition 2"),
        "{verify}"
    );

    let problems = problems(&disk);
    let overlaps = of_kind(&problems, "overlap");
    assert_eq!(overlaps.len(), 1, "{problems:#?}");
    let overlap = overlaps[0];
    assert_eq!(overlap["incomplete"], true);
    assert_eq!(
        overlap["offset"],
        mbr_entry_at(2),
        "the second entry's byte offset"
    );
    let message = overlap["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "partition 2 (bytes {}..{}, ext4) starts inside partition 1",
            10240 * SECTOR,
            (10240 + 16384) * SECTOR
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("bytes {}..{}", 10240 * SECTOR, 18432 * SECTOR)),
        "{message}"
    );
    assert_scan_incomplete(&disk, "starts inside partition 1");

    let table = amiscan(["inspect", disk.to_str().unwrap()]);
    let text = table.stdout_text();
    assert!(
        text.contains("Problem:    overlap (incomplete): partition 2"),
        "{text}"
    );
    // Shown once, under the disk, not again among the notes.
    assert!(!text.contains("note: partition table:"), "{text}");
}

/// An overlapping partition that holds nothing recognised hides no filesystem: the
/// first one is read whole, so the overlap is a note and the scan still passes.
#[test]
fn an_empty_partition_overlapping_a_filesystem_is_a_note() {
    let scratch = Scratch::new("mbr-overlap-empty");
    let disk = mbr_two_filesystems(&scratch, 10240, false);
    let problems = problems(&disk);
    let overlaps = of_kind(&problems, "overlap");
    assert_eq!(overlaps.len(), 1, "{problems:#?}");
    assert_eq!(overlaps[0]["incomplete"], false);
    assert_scan_passes_with_note(&disk, "partitions 1 (bytes");
}

/// Logical partitions are found through the EBR chain and checked like primary ones:
/// the first logical partition's EBR entry is made to run over the second's ext4.
#[test]
fn logical_partitions_that_overlap_are_found_through_the_ebr_chain() {
    let scratch = Scratch::new("ebr-overlap");
    let disk = scratch.path("ebr.img");
    new_disk(&disk, 32 * MIB);
    sfdisk(
        &disk,
        "label: dos\nstart=2048, size=16384, type=83\nstart=18432, type=5\n\
         start=20480, size=12288, type=83\nstart=34816, size=12288, type=83\n",
    );
    let dump = run("sfdisk", &["-d", disk.to_str().unwrap()], None);
    assert!(dump.contains("start=       34816"), "{dump}");
    mkfs_at(&disk, 2048 * SECTOR, 8 * MIB, "root", &scratch.os_tree());
    mkfs_at(&disk, 34816 * SECTOR, 6 * MIB, "data", &scratch.data_tree());
    // The first EBR sits at the start of the extended partition; its first entry is p5.
    let p5_entry = 18432 * SECTOR + mbr_entry_at(1);
    assert_eq!(read_at(&disk, p5_entry + 12, 4), le32(12288));
    poke(&disk, p5_entry + 12, &le32(12288 + 8192));
    let verify = report_of("sfdisk", &["--verify", disk.to_str().unwrap()]);
    assert!(verify.contains("overlaps partition"), "{verify}");

    let problems = problems(&disk);
    let overlaps = of_kind(&problems, "overlap");
    assert_eq!(overlaps.len(), 1, "{problems:#?}");
    assert_eq!(overlaps[0]["incomplete"], true);
    assert!(
        overlaps[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("partition 6 ("),
        "{problems:#?}"
    );
    assert_scan_incomplete(&disk, "partition 6");
}

/// A disk image cut short (a failed copy, a wrong `truncate`): the last partition's tail
/// is not there. The table says so by name; the partition is not scanned.
#[test]
fn an_mbr_partition_past_the_end_of_a_truncated_disk_is_named() {
    let scratch = Scratch::new("mbr-past-end");
    let disk = scratch.path("cut.img");
    new_disk(&disk, 32 * MIB);
    sfdisk(
        &disk,
        "label: dos\nstart=2048, size=16384, type=83\nstart=18432, type=83\n",
    );
    mkfs_at(&disk, 2048 * SECTOR, 8 * MIB, "root", &scratch.os_tree());
    mkfs_at(&disk, 18432 * SECTOR, 4 * MIB, "data", &scratch.data_tree());
    fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(24 * MIB)
        .unwrap();

    let problems = problems(&disk);
    let past = of_kind(&problems, "past-end");
    assert_eq!(past.len(), 1, "{problems:#?}");
    assert_eq!(past[0]["incomplete"], true);
    assert_eq!(past[0]["offset"], mbr_entry_at(2));
    assert!(
        past[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("ends {} bytes past the end", 8 * MIB)),
        "{problems:#?}"
    );
    assert_scan_incomplete(&disk, "past the end of the");
}

// ---------------------------------------------------------------------------------------
// GPT
// ---------------------------------------------------------------------------------------

/// A 32 MiB GPT disk made by sgdisk: p1 "root" (sectors 2048-18431) holding the OS tree,
/// p2 "data" (18432-34815) holding ext4 when asked.
fn gpt_disk(scratch: &Scratch, data_fs: bool) -> PathBuf {
    let disk = scratch.path("gpt.img");
    new_disk(&disk, 32 * MIB);
    sgdisk(
        &disk,
        &[
            "-o",
            "-n",
            "1:2048:+8M",
            "-c",
            "1:root",
            "-n",
            "2:18432:+8M",
            "-c",
            "2:data",
        ],
    );
    mkfs_at(&disk, 2048 * SECTOR, 8 * MIB, "root", &scratch.os_tree());
    if data_fs {
        mkfs_at(&disk, 18432 * SECTOR, 8 * MIB, "data", &scratch.data_tree());
    }
    let verify = report_of("sgdisk", &["-v", disk.to_str().unwrap()]);
    assert!(verify.contains("No problems found"), "{verify}");
    disk
}

/// Edits the GPT entry array of one copy (`primary` or `backup`) at `entry` (0-based) and
/// byte `at` within it, then recomputes that copy's entry-array and header CRCs, as a
/// disk editor would: the copy stays valid, it just says something else.
fn edit_gpt_entry(disk: &Path, copy: &str, entry: u32, at: u32, bytes: &[u8]) {
    const SCRIPT: &str = r#"
import struct, sys, zlib
path, copy, entry, at, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), bytes.fromhex(sys.argv[5])
with open(path, "r+b") as f:
    def read(offset, n):
        f.seek(offset)
        return f.read(n)
    def write(offset, b):
        f.seek(offset)
        f.write(b)
    header_at = 512
    if copy == "backup":
        header_at = struct.unpack_from("<Q", read(512, 92), 32)[0] * 512
    header = bytearray(read(header_at, 92))
    size, = struct.unpack_from("<I", header, 12)
    lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    array_at = lba * 512
    write(array_at + entry * entry_size + at, data)
    struct.pack_into("<I", header, 88, zlib.crc32(read(array_at, count * entry_size)))
    struct.pack_into("<I", header, 16, 0)
    struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:size])))
    write(header_at, bytes(header))
"#;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    run(
        "python3",
        &[
            "-c",
            SCRIPT,
            disk.to_str().unwrap(),
            copy,
            &entry.to_string(),
            &at.to_string(),
            &hex,
        ],
        None,
    );
}

/// Byte offset of the backup GPT header of a 32 MiB disk (its last sector).
const BACKUP_HEADER: u64 = 32 * MIB - SECTOR;

/// GPT entries that overlap, both copies edited alike: p2 moved to start inside p1,
/// with an ext4 there. sgdisk -v finds the same overlap.
#[test]
fn gpt_entries_that_overlap_are_not_passed() {
    let scratch = Scratch::new("gpt-overlap");
    let disk = gpt_disk(&scratch, false);
    for copy in ["primary", "backup"] {
        edit_gpt_entry(&disk, copy, 1, 32, &10240u64.to_le_bytes());
    }
    mkfs_at(&disk, 10240 * SECTOR, 4 * MIB, "data", &scratch.data_tree());
    let verify = report_of("sgdisk", &["-v", disk.to_str().unwrap()]);
    assert!(
        verify.contains("Problem: partitions 2 and 1 overlap"),
        "{verify}"
    );

    let problems = problems(&disk);
    let overlaps = of_kind(&problems, "overlap");
    assert_eq!(overlaps.len(), 1, "{problems:#?}");
    assert_eq!(overlaps[0]["incomplete"], true);
    // The second entry of the primary array (LBA 2).
    assert_eq!(overlaps[0]["offset"], 2 * SECTOR + 128);
    assert!(
        of_kind(&problems, "gpt-mismatch").is_empty(),
        "{problems:#?}"
    );
    assert_scan_incomplete(&disk, "starts inside partition 1");
}

/// A GPT disk image truncated: the backup header and the end of p2 are gone. The
/// missing backup and the usable range past the end are notes (the primary is intact);
/// the partition past the end hides data.
#[test]
fn a_truncated_gpt_disk_names_its_missing_backup_and_the_partition_past_the_end() {
    let scratch = Scratch::new("gpt-truncated");
    let disk = gpt_disk(&scratch, true);
    fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(16 * MIB)
        .unwrap();
    let verify = report_of("sgdisk", &["-v", disk.to_str().unwrap()]);
    assert!(
        verify.contains("partition 2 is too big for the disk"),
        "{verify}"
    );

    let problems = problems(&disk);
    let past = of_kind(&problems, "past-end");
    assert_eq!(past.len(), 1, "{problems:#?}");
    assert_eq!(past[0]["incomplete"], true);
    let backup = of_kind(&problems, "gpt-backup-damaged");
    assert_eq!(backup.len(), 1, "{problems:#?}");
    assert_eq!(backup[0]["incomplete"], false);
    assert_eq!(backup[0]["offset"], BACKUP_HEADER);
    let range = of_kind(&problems, "gpt-range");
    assert!(
        range.iter().any(|p| p["message"]
            .as_str()
            .unwrap()
            .contains("usable range ends at LBA 65502")),
        "{problems:#?}"
    );
    assert!(range.iter().all(|p| p["incomplete"] == false));
    assert_scan_incomplete(&disk, "partition 2 (bytes");
}

/// A damaged backup GPT beside a good primary: the primary is what Linux and amiscan
/// read, so this is a note and the scan passes.
#[test]
fn a_damaged_backup_gpt_is_a_note() {
    let scratch = Scratch::new("gpt-backup-crc");
    let disk = gpt_disk(&scratch, false);
    poke(&disk, BACKUP_HEADER + 16, b"XXXX");
    let verify = report_of("sgdisk", &["-v", disk.to_str().unwrap()]);
    assert!(verify.contains("Backup header: ERROR"), "{verify}");

    let problems = problems(&disk);
    let backup = of_kind(&problems, "gpt-backup-damaged");
    assert_eq!(backup.len(), 1, "{problems:#?}");
    assert_eq!(backup[0]["incomplete"], false);
    assert!(
        backup[0]["message"]
            .as_str()
            .unwrap()
            .contains("header CRC32 is 0x58585858"),
        "{problems:#?}"
    );
    assert_scan_passes_with_note(&disk, "backup GPT fails its checks");
}

/// A damaged primary GPT header: the backup passes its checks and is used, as Linux
/// does; the root is still found and read through it.
#[test]
fn a_damaged_primary_gpt_is_read_through_its_backup() {
    let scratch = Scratch::new("gpt-primary-crc");
    let disk = gpt_disk(&scratch, false);
    poke(&disk, SECTOR + 16, b"XXXX");
    let verify = report_of("sgdisk", &["-v", disk.to_str().unwrap()]);
    assert!(verify.contains("Main header: ERROR"), "{verify}");

    let problems = problems(&disk);
    let primary = of_kind(&problems, "gpt-primary-damaged");
    assert_eq!(primary.len(), 1, "{problems:#?}");
    assert_eq!(primary[0]["incomplete"], false);
    assert_eq!(primary[0]["offset"], SECTOR);
    let (_, report) = inspect_json(&disk);
    let root = &report["volumes"][0];
    assert_eq!(root["mount_point"], "/", "{report:#}");
    assert_eq!(root["name"], "root", "{report:#}");
    assert_scan_passes_with_note(&disk, "primary GPT is damaged");
}

/// Both copies valid but different: only a partition name differs in the backup, which
/// hides nothing (the same bytes are scanned through the primary).
#[test]
fn a_backup_gpt_that_disagrees_without_hiding_data_is_a_note() {
    let scratch = Scratch::new("gpt-mismatch-name");
    let disk = gpt_disk(&scratch, false);
    // The name field starts at byte 56 of an entry, UTF-16LE: "root" becomes "boot".
    edit_gpt_entry(&disk, "backup", 0, 56, b"b\0");

    let problems = problems(&disk);
    let mismatches = of_kind(&problems, "gpt-mismatch");
    assert!(
        mismatches
            .iter()
            .any(|p| p["message"].as_str().unwrap().contains("entry array CRC32")),
        "{problems:#?}"
    );
    assert!(
        mismatches.iter().any(|p| p["message"]
            .as_str()
            .unwrap()
            .contains("differ in entry 1;")),
        "{problems:#?}"
    );
    assert!(mismatches.iter().all(|p| p["incomplete"] == false));
    assert_scan_passes_with_note(&disk, "primary and backup GPT");
}

/// A partition deleted from the primary GPT only (the backup left as it was): the backup
/// still lists it, and an ext4 is still there. What the stale copy points at is not in
/// the scan, so the result is incomplete.
#[test]
fn a_partition_only_the_backup_gpt_lists_is_not_passed() {
    let scratch = Scratch::new("gpt-backup-only");
    let disk = gpt_disk(&scratch, true);
    // The backup: 32 sectors of entries and the header, at the end of the disk.
    let tail_at = 32 * MIB - 33 * SECTOR;
    let tail = read_at(&disk, tail_at, 33 * 512);
    sgdisk(&disk, &["-d", "2"]);
    poke(&disk, tail_at, &tail);
    let verify = report_of("sgdisk", &["-v", disk.to_str().unwrap()]);
    assert!(!verify.contains("No problems found"), "{verify}");

    let problems = problems(&disk);
    let mismatches = of_kind(&problems, "gpt-mismatch");
    let hidden: Vec<_> = mismatches
        .iter()
        .filter(|p| p["incomplete"] == true)
        .collect();
    assert_eq!(hidden.len(), 1, "{problems:#?}");
    let message = hidden[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("backup GPT entry 2 (bytes 9437184..17825792)")
            && message.contains("it holds ext4"),
        "{message}"
    );
    assert_scan_incomplete(&disk, "backup GPT entry 2");
}

/// A hybrid MBR (sgdisk -h) whose ordinary entry no longer matches the GPT entry it
/// mirrors: pointing at an ext4 the GPT does not list, it hides that filesystem; only
/// shorter than its GPT twin, it hides nothing.
#[test]
fn a_hybrid_mbr_entry_that_matches_no_gpt_entry_is_reported() {
    let scratch = Scratch::new("hybrid");
    let disk = gpt_disk(&scratch, true);
    sgdisk(&disk, &["-h", "2"]);
    // sgdisk keeps the protective entry first and mirrors the partition in the second.
    let entry = mbr_entry_at(2);
    assert_eq!(read_at(&disk, entry + 8, 4), le32(18432));
    let (_, report) = inspect_json(&disk);
    assert_eq!(report["disks"][0]["partition_table"]["hybrid_mbr"], true);
    assert_eq!(report["disks"][0]["problems"], serde_json::json!([]));

    let shorter = scratch.path("shorter.img");
    fs::copy(&disk, &shorter).unwrap();
    poke(&shorter, entry + 12, &le32(8192));
    let problems_shorter = problems(&shorter);
    let mismatch = of_kind(&problems_shorter, "hybrid-mismatch");
    assert_eq!(mismatch.len(), 1, "{problems_shorter:#?}");
    assert_eq!(mismatch[0]["incomplete"], false);
    assert_eq!(mismatch[0]["offset"], entry);
    assert_scan_passes_with_note(&shorter, "hybrid MBR entry 2");

    // An ext4 in space the GPT leaves free (from 20 MiB), reachable only through the MBR.
    mkfs_at(
        &disk,
        40960 * SECTOR,
        4 * MIB,
        "hidden",
        &scratch.data_tree(),
    );
    poke(&disk, entry + 8, &le32(40960));
    poke(&disk, entry + 12, &le32(8192));
    let problems = problems(&disk);
    let mismatch = of_kind(&problems, "hybrid-mismatch");
    assert_eq!(mismatch.len(), 1, "{problems:#?}");
    assert_eq!(mismatch[0]["incomplete"], true);
    assert!(
        mismatch[0]["message"]
            .as_str()
            .unwrap()
            .contains("no listed partition covers it; it holds ext4"),
        "{problems:#?}"
    );
    assert_scan_incomplete(&disk, "hybrid MBR entry 2");
}

/// Both GPT copies fail their CRCs: refused (naming the header and its offset) when
/// checksums are verified; read, and reported as incomplete, when they are ignored.
#[test]
fn a_gpt_with_no_valid_copy_is_refused_unless_checksums_are_ignored() {
    let scratch = Scratch::new("gpt-both-crc");
    let disk = gpt_disk(&scratch, false);
    poke(&disk, SECTOR + 16, b"XXXX");
    poke(&disk, BACKUP_HEADER + 16, b"XXXX");
    // sgdisk no longer takes the disk for a GPT disk at all.
    let verify = report_of("sgdisk", &["-v", disk.to_str().unwrap()]);
    assert!(verify.contains("Creating new GPT entries"), "{verify}");

    let opened = amiscan::image::open_image(&disk).unwrap();
    let inputs = [DiskInput {
        name: None,
        source: Arc::clone(&opened.disk),
    }];
    let refused = volumes::discover_disks_with(&inputs, ChecksumPolicy::Verify).unwrap_err();
    assert_eq!(refused.kind, CorruptKind::Checksum, "{refused}");
    assert_eq!(refused.offset, SECTOR, "{refused}");
    assert_eq!(
        volumes::discover_disks(&inputs).unwrap_err(),
        refused,
        "verify is the default"
    );
    amiscan(["inspect", disk.to_str().unwrap()]).expect_code(2);

    let layout = volumes::discover_disks_with(&inputs, ChecksumPolicy::Ignore).unwrap();
    assert!(layout.incomplete());
    let ignored: Vec<_> = layout.disks[0]
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::ChecksumIgnored)
        .collect();
    assert_eq!(ignored.len(), 1, "{:#?}", layout.disks[0].problems);
    assert!(ignored[0].incomplete);
    assert_eq!(
        layout
            .volumes
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>(),
        [Some("root".to_string()), Some("data".to_string())]
    );
}

/// In a guest of several disks, each disk's problems are its own, and the note names the
/// disk.
#[test]
fn a_second_disks_table_problems_name_that_disk() {
    let scratch = Scratch::new("two-disks");
    let root = gpt_disk(&scratch, false);
    let data = scratch.path("data.img");
    new_disk(&data, 32 * MIB);
    sfdisk(
        &data,
        "label: dos\nstart=2048, size=16384, type=83\nstart=18432, size=16384, type=83\n",
    );
    mkfs_at(&data, 10240 * SECTOR, 4 * MIB, "data", &scratch.data_tree());
    poke(&data, mbr_entry_at(2) + 8, &le32(10240));
    let guest = PathBuf::from(format!("{}+{}", root.display(), data.display()));

    let (run, report) = inspect_json(&guest);
    run.expect_code(3);
    assert_eq!(report["disks"][0]["problems"], serde_json::json!([]));
    let problems = report["disks"][1]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report:#}");
    assert_eq!(problems[0]["kind"], "overlap");
    let name = report["disks"][1]["name"].as_str().unwrap();
    let note = format!(
        "disk {name}: partition table: {}",
        problems[0]["message"].as_str().unwrap()
    );
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| *n == note),
        "{report:#}"
    );
    assert_scan_incomplete(
        &guest,
        &format!("disk {name}: partition table: partition 2"),
    );
}
