//! Golden files: the exact output of every report format for one small image
//! (testdata/build-golden-image.sh) whose scan has failing, passing, waived, partly waived,
//! expired-waiver, skipped and error results, plus a baseline run and the remediation
//! script. The image is scanned from its own directory by a relative name, so no host path
//! reaches the output; the version and timings are redacted.
//!
//! After an intended change of output, rewrite the files with
//! `AMISCAN_BLESS=1 cargo test --test integration golden::` and review the diff.

use crate::util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The rules of the golden scan: one of each status with the waivers of
/// tests/golden/waivers.yaml.
const SELECT: &str = "accounts.password-set,accounts.uid0,cleanup.machine-id,history.shell,\
ssh.host-keys,sshd.permit-root-login,packages.cleartext-clients,cleanup.logs,cleanup.tmp";

fn golden_dir() -> PathBuf {
    util::manifest_dir().join("tests/golden")
}

/// A directory holding the golden image and the waiver file it picks up by default.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        util::ensure_built("build-golden-image.sh", ".lock-golden");
        let dir = util::build_dir().join("golden-run");
        std::fs::create_dir_all(&dir).unwrap();
        // Copied under a name of this process, then renamed: test runners that run each
        // test in its own process (cargo nextest) would otherwise scan a half-copied image.
        let place = |from: PathBuf, name: &str| {
            let partial = dir.join(format!("{name}.{}", std::process::id()));
            std::fs::copy(from, &partial).unwrap();
            std::fs::rename(&partial, dir.join(name)).unwrap();
        };
        place(util::build_dir().join("golden/golden.img"), "golden.img");
        place(golden_dir().join("waivers.yaml"), ".amiscan-waivers.yaml");
        dir
    })
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn of(output: std::process::Output) -> Self {
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

fn scan(extra: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .current_dir(run_dir())
        .args([
            "scan",
            "golden.img",
            "--as-of",
            "2026-11-22",
            "--select",
            SELECT,
        ])
        .args(extra)
        .output()
        .unwrap();
    Output::of(output)
}

/// Replaces what legitimately changes between runs and releases.
fn redact(text: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let line = line.replace(version, "VERSION");
        let line = redact_number_after(&line, "\"duration_ms\":");
        let line = redact_attribute(&line, " time=\"");
        let line = redact_attribute(&line, "\"started_at\": \"");
        out.push_str(&line);
    }
    out
}

fn redact_number_after(line: &str, key: &str) -> String {
    match line.find(key) {
        None => line.to_string(),
        Some(at) => {
            let start = at + key.len();
            // Pretty JSON puts a space after the colon, JSON Lines does not.
            let start = start + line[start..].len() - line[start..].trim_start_matches(' ').len();
            let digits = line[start..].bytes().take_while(u8::is_ascii_digit).count();
            format!("{}0{}", &line[..start], &line[start + digits..])
        }
    }
}

fn redact_attribute(line: &str, key: &str) -> String {
    match line.find(key) {
        None => line.to_string(),
        Some(at) => {
            let start = at + key.len();
            let end = line[start..].find('"').map_or(line.len(), |e| start + e);
            format!("{}0{}", &line[..start], &line[end..])
        }
    }
}

fn check(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    let actual = redact(actual);
    if std::env::var_os("AMISCAN_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; write it with AMISCAN_BLESS=1 cargo test --test integration golden::",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output, first at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
             If the change is intended: AMISCAN_BLESS=1 cargo test --test integration golden::, then review \
             the diff. Whole output:\n{actual}",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

fn golden_format(format: &str, file: &str) {
    let run = scan(&["--format", format]);
    assert_eq!(run.code, 1, "{format}: {}", run.stderr);
    check(file, &run.stdout);
}

#[test]
fn table() {
    golden_format("table", "scan.txt");
}

#[test]
fn json() {
    golden_format("json", "scan.json");
}

#[test]
fn json_lines() {
    golden_format("jsonl", "scan.jsonl");
}

#[test]
fn markdown() {
    golden_format("markdown", "scan.md");
}

#[test]
fn sarif() {
    golden_format("sarif", "scan.sarif");
}

#[test]
fn junit() {
    golden_format("junit", "scan.junit.xml");
}

#[test]
fn baseline_run() {
    let baseline = golden_dir().join("baseline-v1.json");
    let baseline = baseline.to_str().unwrap();
    for (format, file) in [("json", "baseline.json"), ("table", "baseline.txt")] {
        let run = scan(&["--format", format, "--baseline", baseline]);
        assert_eq!(run.code, 1, "{format}: {}", run.stderr);
        // The baseline's path is the host's; only its file name is stable.
        check(file, &run.stdout.replace(baseline, "baseline-v1.json"));
    }
}

#[test]
fn remediation_script() {
    let script = run_dir().join("golden-fix.sh");
    let _ = std::fs::remove_file(&script);
    let run = scan(&["--format", "json", "--remediation-script", "golden-fix.sh"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    check(
        "remediation.sh",
        &std::fs::read_to_string(&script).expect("the script was written"),
    );
}

#[test]
fn stderr_names_the_waivers_to_review() {
    let run = scan(&["--format", "json"]);
    check("scan.stderr", &run.stderr);
    let quiet = scan(&["--format", "json", "--quiet"]);
    assert_eq!(quiet.stderr, "", "--quiet prints errors only");
}

// ---------------------------------------------------------------------------------------
// Why a result is incomplete: a guest whose /home has no volume and one of whose
// directories cannot be read, a disk of volumes amiscan does not read, and an image that
// cannot be opened at all.
// ---------------------------------------------------------------------------------------

/// The rules of the incomplete scans: one that reads home directories (and so meets the
/// missing /home once per check), one that walks everything, one that passes.
const NOT_READ_SELECT: &str = "creds.files,files.world-writable,cleanup.tmp";

/// A directory holding `unread.img` (built here: an ext4 OS root whose fstab mounts /home
/// from a volume the image lacks, and whose /srv/data directory inode debugfs cleared) and
/// `volume-kinds.img` (testdata/build-volume-kinds.sh), scanned by relative names.
pub fn not_read_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = util::scratch_dir("golden", "not-read");
        let tree = util::os_tree(&dir);
        std::fs::write(
            tree.join("etc/fstab"),
            "LABEL=root / ext4 defaults 0 1\n\
             UUID=00000000-0000-4000-8000-00000000beef /home ext4 defaults 0 2\n",
        )
        .unwrap();
        std::fs::write(
            tree.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        )
        .unwrap();
        std::fs::create_dir_all(tree.join("home")).unwrap();
        std::fs::create_dir_all(tree.join("root")).unwrap();
        std::fs::create_dir_all(tree.join("srv/data")).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(tree.join("srv/data").join(name), "data\n").unwrap();
        }
        let image = dir.join("unread.img");
        util::mkfs_ext4(
            &tree,
            &image,
            &[
                "-U",
                "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4f",
                "-E",
                "hash_seed=0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4f",
            ],
            "16M",
        );
        util::tool(
            "debugfs",
            &["-w", "-R", "clri /srv/data", image.to_str().unwrap()],
        );
        util::copy_sparse(&util::volume_kinds_image(), &dir.join("volume-kinds.img"));
        dir
    })
}

fn scan_not_read(images: &[&str], extra: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .current_dir(not_read_dir())
        .arg("scan")
        .args(images)
        .args([
            "--as-of",
            "2026-11-22",
            "--no-default-waivers",
            "--select",
            NOT_READ_SELECT,
        ])
        .args(extra)
        .output()
        .unwrap();
    Output::of(output)
}

#[test]
fn not_read_table() {
    let run = scan_not_read(&["unread.img", "volume-kinds.img"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    check("not-read.txt", &run.stdout);
    // Whatever the format, one line per incomplete image says why on stderr.
    check("not-read.stderr", &run.stderr);
    let quiet = scan_not_read(&["unread.img"], &["--quiet"]);
    assert_eq!(quiet.stderr, "", "--quiet prints errors only");
}

#[test]
fn not_read_markdown() {
    let run = scan_not_read(
        &["unread.img", "volume-kinds.img"],
        &["--format", "markdown"],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    check("not-read.md", &run.stdout);
}

/// An image record per image, before its findings: clean, read in part and unopenable
/// images are told apart.
#[test]
fn not_read_json_lines() {
    let run = scan_not_read(
        &["unread.img", "volume-kinds.img", "missing.img"],
        &["--format", "jsonl", "--label", "build=42"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    check("not-read.jsonl", &run.stdout);
}
