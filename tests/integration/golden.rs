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
        std::fs::copy(
            util::build_dir().join("golden/golden.img"),
            dir.join("golden.img"),
        )
        .unwrap();
        std::fs::copy(
            golden_dir().join("waivers.yaml"),
            dir.join(".amiscan-waivers.yaml"),
        )
        .unwrap();
        dir
    })
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
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
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Replaces what legitimately changes between runs and releases.
fn redact(text: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let line = line.replace(version, "VERSION");
        let line = redact_number_after(&line, "\"duration_ms\":");
        let line = redact_attribute(&line, " time=\"");
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
