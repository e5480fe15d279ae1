//! What amiscan is given in place of an image: a text file, a few bytes, a FIFO, a
//! directory, a character device are refused with one line that says why (exit 2), in
//! every command; a real raw disk whose contents amiscan cannot read (btrfs, all zeros,
//! noise) stays a disk, read as incomplete (exit 3). `-` reads standard input, and the
//! dates of `--as-of` are strict.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{manifest_dir, run_with_deadline, scratch_dir, tool};

/// Every command that opens an image, with the arguments it needs after the image.
const COMMANDS: &[(&str, &[&str])] = &[
    ("scan", &["--no-default-waivers"]),
    ("inspect", &[]),
    ("ls", &[]),
    ("files", &[]),
    ("cat", &["/etc/os-release"]),
];

/// Runs `amiscan COMMAND IMAGE EXTRA…` under a deadline (a FIFO must not hang it).
fn run_command(command: &str, image: &Path, extra: &[&str]) -> (i32, String) {
    let mut args: Vec<OsString> = vec![command.into(), image.as_os_str().to_owned()];
    args.extend(extra.iter().map(OsString::from));
    let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    run_with_deadline(&args, false)
}

/// Every command refuses `image` with exit 2 and one stderr line holding `reason`.
fn assert_refused_everywhere(image: &Path, reason: &str) {
    for (command, extra) in COMMANDS {
        let (code, stderr) = run_command(command, image, extra);
        let what = format!("amiscan {command} {}", image.display());
        assert_eq!(code, 2, "{what}: exit {code}, stderr:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: one line on stderr, got:\n{stderr}");
        let line = lines[0];
        assert!(
            line.starts_with(&format!("amiscan: {}: ", image.display())) && line.contains(reason),
            "{what}: `{reason}` expected, got:\n{stderr}"
        );
    }
}

/// Every command reads `image` as a disk and calls it incomplete (exit 3), never refused.
fn assert_read_as_incomplete(image: &Path) {
    for (command, extra) in COMMANDS {
        let (code, stderr) = run_command(command, image, extra);
        assert_eq!(
            code,
            3,
            "amiscan {command} {}: exit {code}, stderr:\n{stderr}",
            image.display()
        );
        assert!(!stderr.contains("not a disk image"), "{stderr}");
    }
}

#[test]
fn a_text_file_is_not_a_disk_image() {
    let dir = scratch_dir("inputs", "text");
    let notes = dir.join("notes.txt");
    fs::write(&notes, "Release notes\n\n- fixed the login banner\n").unwrap();
    assert_refused_everywhere(
        &notes,
        "not a disk image: no container, partition table or filesystem recognised, and its first bytes are text",
    );
    // Sector-sized and padded with spaces: still text, no NUL anywhere.
    let padded = dir.join("padded.txt");
    let mut text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"
        .repeat(72)
        .into_bytes();
    text.truncate(4096);
    text.resize(8192, b' ');
    fs::write(&padded, &text).unwrap();
    assert_refused_everywhere(&padded, "its first bytes are text");
}

#[test]
fn a_few_bytes_or_ragged_sectors_are_not_a_disk_image() {
    let dir = scratch_dir("inputs", "short");
    let three = dir.join("three.bin");
    fs::write(&three, [0x7f, 0x00, 0x01]).unwrap();
    assert_refused_everywhere(&three, "it is 3 bytes, smaller than one 512-byte sector");
    let ragged = dir.join("ragged.bin");
    fs::write(&ragged, crate::util::noise(1000, 7)).unwrap();
    assert_refused_everywhere(
        &ragged,
        "1000 bytes are not a whole number of 512-byte sectors",
    );
}

#[test]
fn special_files_are_refused_by_kind() {
    let dir = scratch_dir("inputs", "special");
    let fifo = dir.join("pipe");
    tool("mkfifo", &[fifo.to_str().unwrap()]);
    assert_refused_everywhere(
        &fifo,
        "is a FIFO; amiscan reads image files and block devices",
    );
    let directory = dir.join("a-directory");
    fs::create_dir(&directory).unwrap();
    assert_refused_everywhere(
        &directory,
        "is a directory; amiscan reads image files and block devices",
    );
    assert_refused_everywhere(
        Path::new("/dev/null"),
        "is a character device; amiscan reads image files and block devices",
    );
}

#[test]
fn disks_amiscan_cannot_read_stay_disks() {
    let dir = scratch_dir("inputs", "unreadable-disks");
    let btrfs = dir.join("btrfs.img");
    fs::File::create(&btrfs)
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    tool("mkfs.btrfs", &["-q", btrfs.to_str().unwrap()]);
    assert_read_as_incomplete(&btrfs);
    let zeros = dir.join("zeros.img");
    fs::File::create(&zeros).unwrap().set_len(1 << 20).unwrap();
    assert_read_as_incomplete(&zeros);
    let noise = dir.join("noise.img");
    fs::write(&noise, crate::util::noise(1 << 20, 11)).unwrap();
    assert_read_as_incomplete(&noise);
}

/// `amiscan ARGS` with `input` on standard input and $TMPDIR set to `tmp`.
fn with_stdin(args: &[&str], input: &Path, tmp: &Path) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = fs::read(input).unwrap();
    // The writer may stop early when amiscan refuses more than it allows.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        output.status.code().unwrap_or(-1),
        output.stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn scan_json(args: &[&str], stdin: Option<(&Path, &Path)>) -> (i32, serde_json::Value) {
    let mut all = vec!["scan", "--format", "json", "--as-of", "2026-11-22"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = match stdin {
        Some((input, tmp)) => with_stdin(&all, input, tmp),
        None => {
            let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
                .args(&all)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            (out.status.code().unwrap_or(-1), out.stdout, stderr)
        }
    };
    let report = serde_json::from_slice(&stdout)
        .unwrap_or_else(|e| panic!("scan {all:?}: not JSON ({e}); exit {code}:\n{stderr}"));
    (code, report)
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn standard_input_is_scanned_like_the_file_and_leaves_nothing_behind() {
    let dir = scratch_dir("inputs", "stdin");
    let tmp = dir.join("tmp");
    fs::create_dir(&tmp).unwrap();
    let sample = manifest_dir().join("testdata/sample.img");
    let qcow2 = dir.join("sample.qcow2");
    tool(
        "qemu-img",
        &[
            "convert",
            "-O",
            "qcow2",
            sample.to_str().unwrap(),
            qcow2.to_str().unwrap(),
        ],
    );
    let (code, from_file) = scan_json(&[sample.to_str().unwrap()], None);
    for piped in [&sample, &qcow2] {
        let (piped_code, from_stdin) = scan_json(&["-"], Some((piped, &tmp)));
        assert_eq!(piped_code, code, "{}", piped.display());
        let image = &from_stdin["images"][0];
        assert_eq!(image["image"]["path"], "-");
        assert_eq!(image["results"], from_file["images"][0]["results"]);
        assert_eq!(image["volumes"], from_file["images"][0]["volumes"]);
        assert_eq!(from_stdin["summary"], from_file["summary"]);
        assert_eq!(entries(&tmp), Vec::<PathBuf>::new(), "the copy is removed");
    }

    // Beyond --stdin-max-size: refused, and the partial copy is gone too.
    let (code, _, stderr) =
        with_stdin(&["inspect", "-", "--stdin-max-size", "4096"], &sample, &tmp);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("-: standard input holds more than 4096 bytes (--stdin-max-size)"),
        "{stderr}"
    );
    assert_eq!(entries(&tmp), Vec::<PathBuf>::new());

    // Text on standard input is judged like a text file.
    let notes = dir.join("notes.txt");
    fs::write(&notes, "not an image\n").unwrap();
    let (code, _, stderr) = with_stdin(&["ls", "-"], &notes, &tmp);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("-: not a disk image"), "{stderr}");
    let empty = dir.join("empty");
    fs::write(&empty, "").unwrap();
    let (code, _, stderr) = with_stdin(&["files", "-"], &empty, &tmp);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("-: is empty (0 bytes)"), "{stderr}");
    assert_eq!(entries(&tmp), Vec::<PathBuf>::new());
}

#[test]
fn as_of_takes_only_real_calendar_days() {
    let sample = manifest_dir().join("testdata/sample.img");
    let scan = |date: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
            .args([
                "scan",
                "--no-default-waivers",
                "--select",
                "system.os-end-of-life",
            ])
            .arg(&sample)
            .args(["--as-of", date])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for bad in [
        "2026-02-30",
        "2026-2-3",
        "2026-13-01",
        "0000-01-01",
        "+2026-01-01",
        "2026-01-01 ",
        "2026-01-01T00:00:00",
        "2026-01-01 10:00",
        "2027-02-29",
    ] {
        let (code, stderr) = scan(bad);
        assert_eq!(code, 2, "--as-of {bad:?}: {stderr}");
        assert!(
            stderr.contains(&format!("--as-of: `{bad}` is not a YYYY-MM-DD date")),
            "--as-of {bad:?}: {stderr}"
        );
    }
    let (code, stderr) = scan("2028-02-29");
    assert_ne!(code, 2, "the leap day 2028-02-29 exists: {stderr}");
    assert!(!stderr.contains("--as-of"), "{stderr}");
}

/// A loop device detached when dropped.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = crate::util::tool_command("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

/// A block device is read like the image file it shows (its metadata says 0 bytes; its
/// size comes from its end). Needs root, as the LVM2 images do: a read-only loop device.
#[test]
fn a_block_device_is_read_like_its_image() {
    let dir = scratch_dir("inputs", "block");
    let copy = dir.join("sample.img");
    fs::copy(manifest_dir().join("testdata/sample.img"), &copy).unwrap();
    let device = tool("losetup", &["-f", "--show", "-r", copy.to_str().unwrap()]);
    let device = Loop(device.trim().to_string());
    let (code, from_file) = scan_json(&[copy.to_str().unwrap()], None);
    let (device_code, from_device) = scan_json(&[&device.0], None);
    assert_eq!(device_code, code);
    let (file_image, device_image) = (&from_file["images"][0], &from_device["images"][0]);
    assert_eq!(
        device_image["image"]["virtual_size"],
        file_image["image"]["virtual_size"]
    );
    assert_eq!(device_image["volumes"], file_image["volumes"]);
    assert_eq!(device_image["results"], file_image["results"]);
}
